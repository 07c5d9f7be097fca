"""Today's plotters: bladebit v3 (ramplot, diskplot, cudaplot), `chia plotters
...`, Gigahorse; compressed plots (level + format), their sizes, and the
plotter options farmers set.

Phase tests replay lines users pasted into those projects' issue threads
(cited beside each excerpt, ids shortened where the post cut them); where
no pasted log shows a line, it is taken from the plotter's source and says
so.  The sizes are Chia's published table (docs.chia.net "K Sizes", plot
compression).
"""
import os
import struct
import subprocess
import sys
import textwrap
import time

import pytest

from agent.facts import plotfile
from agent.facts.procs import ProcScanner
from agent.vocab import compression
from agent.vocab.logread import LogState, analyze_plots
from agent.vocab.plotters import classify
from orchestrator.core import plotsize
from orchestrator.core.farm import farm
from orchestrator.core.plotcmd import build_argv
from orchestrator.core.plotsize import BLADEBIT, GIGAHORSE, Compression
from orchestrator.core.state import Dir, FleetState, Host, HostState, Plot
from orchestrator.ui.views import jobs_table, summary_table
from tests.test_inventory import load_error, plotter_with

ID_405 = "552902f432b15e12882744c0a931367c804b2fa172e7958434a7a3392f4f6f67"


def phases(lines, plotter=None):
    """(phase after each line, final state) of lines fed in order."""
    st = LogState(plotter)
    seen = []
    for line in lines:
        st.feed(line)
        seen.append(st.phase)
    return seen, st


def check(log, plotter=None):
    seen, st = phases([l for l, _ in log], plotter)
    assert seen == [p for _, p in log]
    return st


# ---- bladebit v3 -----------------------------------------------------------------

# Chia-Network/bladebit issue #405 (bladebit_cuda cudaplot, alpha 4.3, endless -n 999999);
# the two phase-3 lines marked "source" are cuda/CudaPlotPhase3.cu's own strings
# (the post stops after "Step 2"): the same log says "Table" then "tables".
CUDAPLOT_405 = [
    ("Generating plot 48 / 999999: " + ID_405, (0, 2)),
    ("Plot temporary file: /home/mnt/pw/plot-k32-c01-2023-09-10-11-26-" + ID_405
     + ".plot.tmp", (0, 2)),
    ("Generating F1", (1, 0)),
    ("Finished F1 in 2.75 seconds.", (1, 1)),
    ("Table 2 completed in 6.19 seconds with 4294967296 entries.", (1, 2)),
    ("Table 3 completed in 13.09 seconds with 4294859086 entries.", (1, 3)),
    ("Table 7 completed in 6.95 seconds with 4292384371 entries.", (1, 7)),
    ("Finalizing Table 7", (1, 7)),
    ("Finalized Table 7 in 3.98 seconds.", (1, 7)),
    ("Completed Phase 1 in 68.00 seconds", (2, 0)),
    ("Marked Table 6 in 2.16 seconds.", (2, 1)),
    ("Marked Table 3 in 2.17 seconds.", (2, 4)),
    ("Completed Phase 2 in 8.66 seconds", (3, 0)),
    ("Compressing Table 2 and 3...", (3, 2)),
    ("  Step 1 completed step in 4.72 seconds.", (3, 2)),
    # source: CudaPlotPhase3.cu "Completed table %u in ... with %llu / %llu entries"
    ("Completed table 3 in 10.03 seconds with 3440565428 / 4294859086 entries ( 80.11% ).",
     (3, 2)),
    # source: CudaPlotPhase3.cu "Compressing tables %u and %u..."
    ("Compressing tables 3 and 4...", (3, 3)),
]
# Chia-Network/bladebit issue #417 (`chia plotters bladebit cudaplot -n 30`, chia's
# timestamps): every plot says "Completed Plot 1"; the write ends the plot.
CUDAPLOT_417_END = [
    ("[Sep 24 10:54:58] Completed Phase 3 in 189.95 seconds", (4, 0)),
    ("[Sep 24 10:54:58] Completed Plot 1 in 245.15 seconds ( 4.09 minutes )", (5, 1)),
    ("[Sep 24 10:58:26] Completed writing plot in 207.92 seconds", (5, 2)),
]


def test_cudaplot_phases_from_real_logs():
    st = check(CUDAPLOT_405 + CUDAPLOT_417_END)
    assert (st.plotter, st.plot_id, st.k) == ("bladebit", ID_405, 32)
    assert (st.compress, st.compress_format) == (1, BLADEBIT)     # from c01 in the name
    assert st.finished and st.copy_s == 207.92 and st.phase_s[:3] == [68.0, 8.66, 189.95]


def test_cudaplot_endless_log_counts_each_plot():
    # Chia-Network/bladebit issue #417, the grep the user posted (plots 1 and 2 of 30)
    text = textwrap.dedent("""\
        [Sep 24 10:50:53] Generating plot 1 / 30: e9a0eb597518ddbb97343345983e84566dbd5b93395061dea3441e7b5d4f38cc
        [Sep 24 10:51:36] Completed Phase 1 in 42.56 seconds
        [Sep 24 10:51:49] Completed Phase 2 in 12.64 seconds
        [Sep 24 10:54:58] Completed Phase 3 in 189.95 seconds
        [Sep 24 10:54:58] Completed Plot 1 in 245.15 seconds ( 4.09 minutes )
        [Sep 24 10:58:26] Completed writing plot in 207.92 seconds
        [Sep 24 10:58:26] Generating plot 2 / 30: ce1e7063cfab574a9c82d3762d05eadc3d7254301d8be4a8167ec93296f50fd0
        [Sep 24 10:59:09] Completed Phase 1 in 42.96 seconds
        """)
    plots = analyze_plots(text)
    assert [(p["plot_id"][:6], p["finished"], p["phase"]) for p in plots] == [
        ("e9a0eb", True, [5, 2]), ("ce1e70", False, [2, 0])]
    assert plots[0]["total_s"] == 245.15


def test_diskplot_and_ramplot_phases_from_real_logs():
    # Chia-Network/bladebit issue #247 (v2.0.0 diskplot, the start of its log)
    st = check([
        ("Generating plot 1 / 1: dd00d83240d2702dc3f8e41b091f5fff3454180f6742dce2e69b4e4e7472dcd3",
         (0, 2)),
        ("Started plot.", (0, 2)),
        ("Running Phase 1", (1, 0)),
        ("Table 1: F1 generation", (1, 0)),
        ("Generating f1...", (1, 0)),
        # Chia-Network/bladebit issue #241 (v2.0.0 diskplot, further on)
        ("Completed table 6 in 258.88 seconds with 4292668351 entries.", (1, 6)),
        ("Table 6 I/O wait time: 71.12 seconds.", (1, 6)),
        ("Completed table 7 in 180.81 seconds with 4290327812 entries.", (1, 7)),
    ], "bladebit")
    assert st.plot_id.startswith("dd00d832")
    # Chia-Network/bladebit issue #139 (1.2.2 ramplot, the mode v3 keeps)
    check([
        ("Generating plot 1 / 1: 36b5eef35bfdb93eceab14a99266a3ceec15a04d8943300bf3d9fd35a2508f1d",
         (0, 2)),
        ("Running Phase 1", (1, 0)),
        ("Generating F1...", (1, 0)),
        ("Finished F1 generation in 6.43 seconds.", (1, 1)),
        ("Progress update: 0.01", (1, 1)),        # chia's wrapper adds these
        ("Forward propagating to table 2...", (1, 2)),
        ("Finished forward propagating table 2 in 129.21 seconds.", (1, 2)),
    ], "bladebit")


def test_bladebit_header_tells_the_level():
    # Chia-Network/bladebit issue #448 (bladebit_cuda 3.1.0, --compress 3 --disk-128)
    _, st = phases(["Bladebit Chia Plotter", "Version      : 3.1.0",
                    "[Global Plotting Config]", " Will create 1 plots.",
                    " Compression Level     : 3", " Benchmark mode        : disabled"])
    assert (st.plotter, st.compress, st.compress_format) == ("bladebit", 3, BLADEBIT)


# ---- Gigahorse -------------------------------------------------------------------

GH_9_ID = "4a34eda13d95ef4fd882f9be5a2bbc47be8f7b515fd4fbeb5071605ef9e6f12f"
GH_109_PREV = "071fc7f794f95efe354cb33abfc5d9ee65c94931c9e464d2c0cbc783d6d4379b"
GH_109_ID = "b499fb004552a86954112c2d9972bde6a75bbadd8caa0ddd1c2cebd0a6fb40cc"


def test_gigahorse_phases_from_real_logs():
    # madMAx43v3r/chia-gigahorse issue #9 (cuda_plot_k32.exe -n 1 ... -M 8)
    st = check([
        ("Chia k32 next-gen CUDA plotter - 15133ec", (0, 0)),
        ("Plot Format: mmx-v2.4", (0, 0)),
        ("Crafting plot 1 out of 1 (2023/02/10 22:33:41)", (0, 1)),
        ("Working Directory:   E:\\Chia\\", (0, 1)),
        ("Working Directory 2: @RAM", (0, 1)),
        ("Compression Level: C1 (xbits = 15, final table = 3)", (0, 1)),
        ("Plot Name: plot-k32-c1-2023-02-10-22-33-" + GH_9_ID, (1, 0)),
        ("[P1] Setup took 0.357 sec", (1, 0)),
        ("[P1] Table 1 took 48.173 sec, 4294967296 entries, 16788599 max, 66554 tmp, "
         "0 GB/s up, 10.1828 GB/s down", (1, 2)),
    ])
    assert (st.plotter, st.plot_id, st.k) == ("gigahorse", GH_9_ID, 32)
    assert (st.compress, st.compress_format) == (1, GIGAHORSE)
    assert st.tmp_dir == "E:\\Chia\\"
    # madMAx43v3r/chia-gigahorse issue #120 (phase 3, with timestamps)
    check([
        ("[2023/05/12 17:08:33] [P3] Table 4 LPSK took 7.645 sec, 3465218063 entries, "
         "14612664 max, 57953 tmp, 4.77787 GB/s up, 6.67106 GB/s down", (3, 4)),
        ("[2023/05/12 17:08:46] [P3] Table 5 PDSK took 4.743 sec, 3531368675 entries", (3, 5)),
        ("[2023/05/12 17:11:30] [P3] Table 5 NSK took 153.267 sec, 3531368675 entries", (3, 5)),
        ("[2023/05/12 17:11:43] [P3] Table 6 PDSK took 13.57 sec, 3710832729 entries", (3, 6)),
    ], "gigahorse")


def test_gigahorse_copy_of_the_previous_plot_does_not_move_this_one():
    # madMAx43v3r/chia-gigahorse issue #109 (cuda_plot_k32 -n 2 -C 8): plot 2's
    # phase 1 runs while plot 1 (named in the copy lines) is copied out.  The
    # first line is plot 1's own "Plot Name:", rebuilt from the copy's path.
    prev = "plot-k32-c8-2023-05-07-02-23-" + GH_109_PREV
    seen, st = phases([
        "Plot Name: " + prev,
        "Crafting plot 2 out of 2 (2023/05/07 03:06:10)",
        "Compression Level: C8 (xbits = 8, final table = 4)",
        "Plot Name: plot-k32-c8-2023-05-07-03-06-" + GH_109_ID,
        "[P1] Setup took 2.553 sec",
        "Waiting for disk flush to complete ...",
        "Flushing to disk took 144.137 sec",
        "Started copy to /mnt/plot1_31/" + prev + ".plot",
        "[P1] Table 1 took 3.339 sec, 4294967296 entries, 16788599 max, 66554 tmp, 0 GB/s up, "
        "10.1828 GB/s down",
        "Copy to /mnt/plot1_31/" + prev + ".plot finished, took 299.365 sec, 243.915 MB/s",
    ], "gigahorse")
    assert seen[-3:] == [(1, 0), (1, 2), (1, 2)]
    assert st.plot_id == GH_109_ID and not st.finished and st.copy_s is None
    assert (st.compress, st.compress_format) == (8, GIGAHORSE)
    assert st.earlier[0]["plot_id"] == GH_109_PREV and st.earlier[0]["finished"]


# ---- compression level: command line, file name, header ----------------------------

@pytest.mark.parametrize("argv, want", [
    # Chia-Network/bladebit issue #448
    (r".\bladebit_cuda.exe -f xch -c xch --threads 14 -n 1 --compress 3 cudaplot "
     r"--disk-128 -t1 Z:\TMP\ Z:\NFT", ("bladebit", 3, BLADEBIT, r"Z:\NFT", "cudaplot")),
    # Chia-Network/bladebit issue #400 (-z is --compress)
    (r"bladebit_cuda.exe -t 20 -z 7 -n 20 -m -f x -c y cudaplot --device 0 --disk-128 "
     r"-t1 E:\CHIA\ -t2 D:\CHIAPP\ M:\chiapp\Z7", ("bladebit", 7, BLADEBIT, r"M:\chiapp\Z7",
                                                    "cudaplot")),
    # madMAx43v3r/chia-gigahorse issue #237
    ("./cuda_plot_k32 -n -1 -C 18 -M 64 -S 2 -t Z:/Tmp/ -2 Z:/Tmp/ -d S:/NFT/ -c c -f f",
     ("gigahorse", 18, GIGAHORSE, "S:/NFT/", None)),
    ("/opt/gh/cuda_plot_k32_v3 -n 1 -t /ssd/ -d /hdd/ -f f -p p",     # -C unset: its 1
     ("gigahorse", 1, GIGAHORSE, "/hdd/", None)),
    ("chia_plot -n 1 -k 32 -C 7 -t /t/ -d /d/ -f f -p p",   # Gigahorse's CPU chia_plot
     ("madmax", 7, GIGAHORSE, "/d/", None)),
    ("bladebit -f f -p p -n 1 ramplot /d", ("bladebit", 0, None, "/d", "ramplot")),
])
def test_level_from_the_command_line(argv, want):
    info = classify(argv.split())
    assert (info["plotter"], info["compress"], info["compress_format"], info["dst_dir"],
            info.get("mode")) == want


@pytest.mark.parametrize("argv, want", [
    # chia/plotters/plotters.py: chiapos in-process (reads like chia plots create),
    # bladebit and madmax as a parent of their binary; bladebit's --compress defaults to 1
    ("/v/bin/python /v/bin/chia plotters chiapos -k 32 -t /t -2 /t2 -d /d -n 1",
     ("chia", None, 0, "/t", "/d")),
    ("/v/bin/python /v/bin/chia plotters bladebit cudaplot -d /d --device 1 -n 10",
     ("bladebit", True, 1, None, "/d")),
    ("chia plotters bladebit diskplot -t /t -d /d --compress 0", ("bladebit", True, 0, "/t", "/d")),
    ("chia plotters madmax -k 32 -t /t/ -d /d/ -n -1 -v 128 -K 2",
     ("madmax", True, 0, "/t/", "/d/")),
])
def test_chia_plotters_command_lines(argv, want):
    info = classify(argv.split())
    assert (info["plotter"], info.get("wrapper"), info["compress"], info.get("tmp_dir"),
            info["dst_dir"]) == want


def test_level_from_the_file_name():
    # bladebit pads its level (PlotTools.cpp "plot-k32-c%02u-"), Gigahorse does not
    assert compression.from_name("plot-k32-c07-2023-09-12-19-26-" + ID_405 + ".plot") == \
        (7, BLADEBIT)
    assert compression.from_name("plot-k32-c7-2023-02-10-22-33-" + GH_9_ID + ".plot") == \
        (7, GIGAHORSE)
    assert compression.from_name("plot-k32-c18-2023-11-15-22-33-" + GH_9_ID + ".plot") == \
        (18, GIGAHORSE)
    assert compression.from_name("plot-k32-2021-06-21-01-00-" + GH_9_ID + ".plot") == (0, None)


def v2_header(plot_id, k, memo, level):
    """A v2 plot header as bladebit's PlotWriter::BeginPlotInternal writes it."""
    flags = 1 if level else 0
    return (struct.pack("<II", 0x544F4C50, 2) + plot_id + bytes([k]) +
            struct.pack(">H", len(memo)) + memo + struct.pack("<I", flags) +
            (bytes([level]) if level else b"") + b"\0" * 80)


def test_level_from_the_header(k18_plots, tmp_path):
    real = k18_plots.copy_to(tmp_path, 1)[0]       # a real chiapos plot: v1, uncompressed
    problem, level = plotfile.inspect(str(real))
    assert problem is None and level == (0, None)
    with open(real, "rb") as f:
        assert plotfile.read_header(f.read(plotfile.HEADER_BYTES))["format"] == "v1"
    pid = bytes(range(32))
    memo = bytes(range(112))            # pool contract memo: 32 + 48 + 32 bytes
    h = plotfile.read_header(v2_header(pid, 32, memo, 7))
    assert (h["format"], h["plot_id"], h["k"], h["compress"], h["compress_format"]) == \
        ("v2", pid.hex(), 32, 7, BLADEBIT)
    assert plotfile.read_header(v2_header(pid, 32, memo, 0))["compress"] == 0
    assert plotfile.read_header(v2_header(pid, 32, memo, 7)[:150])["compress"] is None
    # the header wins over a name that says another level
    name = tmp_path / ("plot-k32-c03-2023-09-12-19-26-" + pid.hex() + ".plot")
    name.write_bytes(v2_header(pid, 32, memo, 5))
    # (a header alone is a torn plot: its tables are missing, and it is said so)
    problem, level = plotfile.inspect(str(name))
    assert level == (5, BLADEBIT) and problem.startswith("torn: ")


# ---- sizes -------------------------------------------------------------------------

# docs.chia.net "K Sizes": GiB by level, k32 k33 k34
CHIA_TABLE = {1: (87.5, 179.6, 368.2), 2: (86.0, 176.6, 362.1), 3: (84.5, 173.4, 355.9),
              4: (82.9, 170.2, 349.4), 5: (81.3, 167.0, 343.0), 6: (79.6, 163.8, 336.6),
              7: (78.0, 160.6, 330.2), 9: (75.2, 154.1, 315.5)}


@pytest.mark.parametrize("level", sorted(CHIA_TABLE))
@pytest.mark.parametrize("k", [32, 33, 34])
def test_bladebit_sizes_are_chias_table(k, level):
    got = plotsize.plot_bytes(k, Compression(BLADEBIT, level))
    assert got == pytest.approx(CHIA_TABLE[level][k - 32] * 2 ** 30, rel=1e-9)


def test_uncompressed_sizes_follow_chias_current_formula():
    # "New est. size (GB)" of the same page: 108.88 GB for k32, not the 0.762 factor's 106.4
    for k, gb in ((32, 108.8844003), (33, 224.469379), (34, 462.339915)):
        assert plotsize.plot_bytes(k) / 1e9 == pytest.approx(gb, rel=1e-6)
    assert plotsize.label(None) == "C0"
    # a real C9 plot (Chia-Network/bladebit issue #315: 80799203328 bytes) is the table's
    assert plotsize.plot_bytes(32, Compression(BLADEBIT, 9)) == pytest.approx(80799203328, rel=0.01)


def test_gigahorse_size_is_learned_from_the_fleet():
    gh7 = Compression(GIGAHORSE, 7)
    none = plotsize.estimate(32, gh7, {})
    assert none.bytes == plotsize.plot_bytes(32) and "no GH C7 k32 plot seen yet" in none.source
    farm_dir = Dir("/f", "farm", 10 ** 13, 10 ** 12, "d1", plot_count=3,
                   plot_kinds=((32, 7, GIGAHORSE, 3, 70_000_000_000), (32, 0, None, 1, 108 * 10 ** 9)))
    waiting = Plot("/d/p.plot", 69_000_000_000, k=32, compress=7, compress_format=GIGAHORSE)
    hv = HostState("hv", ("harvester",), True, dirs=(farm_dir,))
    pl = HostState("pl", ("plotter",), True, plots=(waiting,))
    hosts = {"hv": Host("hv", roles=("harvester",)),
             "pl": Host("pl", roles=("plotter",), plotter="gigahorse", compress=7)}
    model = farm(FleetState((hv, pl)), hosts)
    assert model.plot_bytes(32, gh7) == 70_000_000_000        # median of 4 seen
    assert model.fits(32, gh7) == 10 ** 12 // 70_000_000_000
    assert model.fits(32, Compression(BLADEBIT, 7)) == 10 ** 12 // int(78.0 * 2 ** 30)
    # the summary says the level, on both sides: what fits and what the drives hold
    from rich.console import Console
    con = Console(width=200, record=True)
    con.print(summary_table(FleetState((hv, pl)), hosts))
    text = con.export_text()
    assert "room for 14 x k32 GH C7" in text and "3 x k32 GH C7" in text and "1 x k32 C0" in text
    assert FleetState((pl,)).to_json()["hosts"][0]["plots"][0]["compression"] == "GH C7"


# ---- `chia plotters bladebit`: parent and child are one job ---------------------------

PARENT = r'''
import subprocess, sys
# like chia/plotters/plotters_util.py run_plotter: the binary's stdout is a pipe,
# which the parent prints to its own stdout (the job's log)
child = subprocess.Popen(["bladebit_cuda", sys.argv[-1], "--threads", "2", "--count", "3",
                          "--farmer-key", "aa", "--pool-contract", "xch1x", "--compress", "7",
                          "cudaplot", "--device", "0", DST], executable=sys.executable,
                         stdout=subprocess.PIPE, text=True)
print("Progress update: 0.0", flush=True)
for line in child.stdout:
    print(line, end="", flush=True)
child.wait()
'''
CHILD = r'''
import sys, time
for line in LINES:
    print(line, flush=True)
time.sleep(30)
'''


def test_chia_plotters_bladebit_parent_and_child_are_one_job(tmp_path):
    """The real binaries are not installed here: the parent is a Python script
    named `chia` run as `python .../chia plotters bladebit cudaplot ...` (the
    argv chia's console script has), and the child a Python process whose
    argv[0] is `bladebit_cuda` with chia's exact argument list for it, plus
    the script path after argv[0].  Like chia's run_plotter, the parent
    relays the child's stdout into its own, the job's log."""
    dst = tmp_path / "dst"
    dst.mkdir()
    (tmp_path / "bin").mkdir()
    child_py = tmp_path / "child.py"
    child_py.write_text("LINES = %r\n" % [l for l, _ in CUDAPLOT_405[:6]] + CHILD)
    chia = tmp_path / "bin" / "chia"
    chia.write_text("DST = %r\n" % str(dst) + PARENT)
    log = tmp_path / "job.log"
    with open(log, "w") as out:
        parent = subprocess.Popen([sys.executable, str(chia), "plotters", "bladebit", "cudaplot",
                                   "-d", str(dst), "--compress", "7", "-n", "3", str(child_py)],
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        scanner = ProcScanner()
        deadline = time.time() + 10
        while True:
            jobs = [j for j in scanner.scan()[0] if j["log_file"] == str(log)
                    or j["pid"] == parent.pid or j.get("wrapper_pid") == parent.pid]
            if len(jobs) == 1 and jobs[0]["pid"] != parent.pid and jobs[0]["phase"] == [1, 3]:
                break
            assert time.time() < deadline, jobs
            time.sleep(0.1)
        job = jobs[0]
        assert job["wrapper_pid"] == parent.pid and job["pid"] != parent.pid
        assert (job["plotter"], job["compress"], job["compress_format"], job["dst_dir"]) == \
            ("bladebit", 7, BLADEBIT, str(dst))
        assert job["log_file"] == str(log) and job["plot_id"] == ID_405
        assert job["started_at"] <= time.time() and job["elapsed_s"] >= 0
    finally:
        for p in ([parent] + [psutil_child for psutil_child in _children(parent.pid)]):
            p.kill()
        parent.wait(timeout=5)


def _children(pid):
    import psutil
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


# ---- plotter options: templates and one-line errors ------------------------------------

KEYS = dict(farmer_key="a" * 96, pool_contract="xch1abc")


def test_every_plotter_renders_its_options():
    cuda = Host("g1", roles=("plotter",), plotter="bladebit", bladebit_mode="cudaplot",
                compress=7, cuda_device=1, disk_128=True, tmp_dirs=("/t",), **KEYS)
    assert build_argv(cuda, "/t", "/d") == (
        "bladebit_cuda", "-t", "2", "-f", "a" * 96, "-c", "xch1abc", "-n", "1", "--compress",
        "7", "cudaplot", "--device", "1", "--disk-128", "-t1", "/t", "/d")
    gh = Host("g2", roles=("plotter",), plotter="gigahorse", compress=18, cuda_device=0,
              executable="/opt/gh/cuda_plot_k32_v3", **KEYS)
    assert build_argv(gh, "/ssd", "/hdd") == (
        "/opt/gh/cuda_plot_k32_v3", "-n", "1", "-C", "18", "-t", "/ssd/", "-d", "/hdd/",
        "-f", "a" * 96, "-c", "xch1abc", "-g", "0")
    assert build_argv(Host("g3", plotter="gigahorse", k=33, compress=1, **KEYS), "/s", "/h")[0] \
        == "cuda_plot_k33"
    chia = Host("c", plotter="chia", nobitfield=True, exclude_final_dir=True,
                executable="/opt/chia/venv/bin/chia")
    argv = build_argv(chia, "/t", "/d")
    assert argv[:3] == ("/opt/chia/venv/bin/chia", "plots", "create") and argv[-2:] == ("-e", "-x")
    mm = build_argv(Host("m", plotter="madmax", n_buckets3=128, rmulti2=2, **KEYS), "/t", "/d")
    assert mm[:10] == ("chia_plot", "-k", "32", "-r", "2", "-u", "128", "-v", "128", "-K") \
        and mm[10] == "2"
    # chia's classify reads back what the templates render
    back = classify(list(build_argv(cuda, "/t", "/d")))
    assert (back["compress"], back["compress_format"], back["mode"]) == (7, BLADEBIT, "cudaplot")


@pytest.mark.parametrize("change, message", [
    ({"compress": 8, "plotter": "bladebit", "bladebit_mode": "cudaplot", "k": 32},
     "compress bladebit makes levels 0-7 and 9 (there is no C8), got 8"),
    ({"compress": 9, "plotter": "bladebit", "k": 32},
     "compress bladebit ramplot makes levels up to 7, got 9"),
    ({"compress": 3, "plotter": "bladebit", "bladebit_mode": "diskplot", "k": 32},
     "compress bladebit diskplot makes no compressed plots (use bladebit_mode cudaplot or ramplot)"),
    ({"compress": 2}, "compress plotter chiapos makes no compressed plots, got 2"),
    ({"compress": 21, "plotter": "gigahorse", "k": 32}, "compress Gigahorse makes levels 1-20, got 21"),
    ({"compress": -1}, "compress must be at least 0, got -1"),
    ({"disk_128": "true", "plotter": "bladebit", "bladebit_mode": "cudaplot", "k": 32},
     "disk_128 needs compress 1 or more (bladebit cannot plot uncompressed plots in that mode)"),
    ({"disk_16": "true", "plotter": "bladebit", "k": 32},
     "disk_16 is for bladebit_mode cudaplot, not ramplot"),
    ({"disk_16": "true", "disk_128": "true", "compress": 1, "plotter": "bladebit",
      "bladebit_mode": "cudaplot", "k": 32}, "disk_16 and disk_128 cannot both be set"),
    ({"cuda_device": 0}, "cuda_device is for plotter bladebit or gigahorse, not chiapos"),
    ({"n_buckets3": 128, "plotter": "chia", "k": 32}, "n_buckets3 is for plotter madmax, not chia"),
    ({"n_buckets3": 8, "plotter": "madmax", "k": 32}, "n_buckets3 must be at least 16, got 8"),
    ({"nobitfield": "true", "plotter": "madmax", "k": 32},
     "nobitfield is for plotter chia, not madmax"),
    ({"executable": "/usr/bin/chia"}, "executable plotter chiapos runs in the agent's own launcher"),
    ({"plotter": "gigahorse", "k": 28}, "k 28 is not allowed for plotter gigahorse "
                                        "(Gigahorse's GPU plotter makes k29 to k34)"),
])
def test_plotter_options_are_checked_at_load(tmp_path, monkeypatch, change, message):
    assert load_error(tmp_path, monkeypatch, plotter_with(**change)) == \
        f"inventory.yaml: host plotter03: {message}"


def test_an_untuned_gigahorse_host_gets_cuda_plots_own_level(tmp_path, monkeypatch):
    from orchestrator.config.inventory import load_inventory
    monkeypatch.chdir(tmp_path)
    (tmp_path / "inventory.yaml").write_text(plotter_with(plotter="gigahorse", k=32))
    host = load_inventory("inventory.yaml").host("plotter03")
    assert host.compression == Compression(GIGAHORSE, 1) and host.compress == 1


def test_status_shows_the_level(tmp_path):
    from rich.console import Console
    from orchestrator.core.state import host_state_from_snapshot
    job = {"plot_id": ID_405, "plotter": "bladebit", "k": 32, "pid": 7, "phase": [3, 2],
           "state": "running", "tmp_dir": None, "dst_dir": "/d", "log_file": "/l/x.log",
           "elapsed_s": 60.0, "tmp_bytes": 0, "compress": 7, "compress_format": "bladebit"}
    hs = host_state_from_snapshot("g1", ("plotter",), {"jobs": [job]})
    con = Console(width=200, record=True)
    con.print(jobs_table(FleetState((hs,))))
    assert "32 C7" in con.export_text()
    assert hs.to_json()["jobs"][0]["compression"] == "C7"


def test_analyze_groups_runs_by_level():
    from orchestrator.core import analysis as an
    col = an.Collected()
    text = "".join(l + "\n" for l, _ in CUDAPLOT_405 + CUDAPLOT_417_END)
    an.add_log(col, "g1", "/l/2026-01-01T00_00_00.000000_bladebit.log", text, 1e9)
    rep = an.report(col)
    assert [(g["key"], g["count"]) for g in rep["groups"]["compression"]] == [("k32 C1", 1)]
    assert rep["runs"][0]["compression"] == "C1"
