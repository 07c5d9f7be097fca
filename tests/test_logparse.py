"""Phase tracking from plot logs, per DESIGN.md's tables, on a real chiapos
log and on madmax / bladebit logs in those plotters' formats."""
import os
import subprocess
import sys

import pytest

from agent.facts.logparse import LogTail
from agent.vocab.logread import analyze_log
from tests.agent_helpers import (
    BLADEBIT_CUDA_LOG, BLADEBIT_CUDA_TIMES, BLADEBIT_DISK_LOG, BLADEBIT_DISK_TIMES,
    BLADEBIT_RAM_LOG, BLADEBIT_RAM_TIMES, DST_A, MADMAX_LOG, MADMAX_TIMES, PID_A, ROOT,
    TMP2_A, TMP_A, design_phase, text_of)

PLOT_ID = "5e" * 32


@pytest.fixture(scope="session")
def chiapos_log(tmp_path_factory):
    """A real k=18 plot made by the agent's chiapos launcher; its log bytes."""
    base = tmp_path_factory.mktemp("logparse")
    dirs = [base / n for n in ("tmp", "tmp2", "dst")]
    for d in dirs:
        d.mkdir()
    log = base / "job.log"
    with open(log, "wb") as out:
        rc = subprocess.call(
            [sys.executable, "-m", "agent", "plot-chiapos", "-k", "18", "-t", str(dirs[0]),
             "-2", str(dirs[1]), "-d", str(dirs[2]), "-b", "300", "-u", "32", "--id", PLOT_ID],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, timeout=120)
    assert rc == 0, log.read_text()
    assert len(list(dirs[2].glob("*.plot"))) == 1
    return log.read_bytes(), [str(d) for d in dirs]


def follow(tmp_path, pieces):
    """Append pieces to a log one by one, polling a LogTail after each."""
    path = tmp_path / "follow.log"
    path.write_bytes(b"")
    tail = LogTail(str(path))
    seen, written = [], 0
    for piece in pieces:
        with open(path, "ab") as f:
            f.write(piece)
        written += len(piece)
        tail.poll()
        assert tail.offset == written
        seen.append(tail.phase)
    return tail, seen


def test_chiapos_log_cut_at_every_marker_and_mid_line(chiapos_log, tmp_path):
    data, _ = chiapos_log
    lines = data.split(b"\n")
    # cut points: every line boundary that carries a phase marker, and the
    # middle of every such line
    cuts, pos = set(), 0
    for line in lines:
        end = pos + len(line) + 1
        if design_phase([line.decode()]) != (0, 0) or b"Starting phase" in line:
            cuts.update({pos, pos + len(line) // 2, pos + len(line), min(end, len(data))})
        pos = end
    cuts = sorted(c for c in cuts if 0 < c <= len(data))
    assert len(cuts) > 60
    pieces, prev = [], 0
    for c in cuts + [len(data)]:
        pieces.append(data[prev:c])
        prev = c
    tail, seen = follow(tmp_path, pieces)
    done = (0, 0)
    for cut, phase in zip(cuts, seen):
        complete = data[:cut].decode().split("\n")[:-1]   # a cut line is not parsed yet
        assert phase == design_phase(complete), (cut, complete[-1:])
        assert phase >= done, "phase went backwards at byte %d" % cut
        done = phase
    assert tail.phase == (5, 3) and tail.finished
    assert tail.plot_id == PLOT_ID and tail.k == 18 and tail.plotter == "chia"


def test_partial_line_waits_for_its_newline(tmp_path):
    tail, seen = follow(tmp_path, [b"Starting phase 1/4: Forward\n", b"Computing tab",
                                   b"le 3", b"\n", b"Backpropagating on table 7"])
    assert seen == [(1, 0), (1, 0), (1, 0), (1, 3), (1, 3)]


def test_ansi_timestamps_junk_and_crlf_do_not_change_phases(chiapos_log, tmp_path):
    data, _ = chiapos_log
    noisy = b""
    for i, line in enumerate(data.split(b"\n")[:-1]):
        noisy += b"\x1b[1;32m2026-11-25T00:48:06.%03d \x1b[0m" % (i % 1000) + line + b"\x1b[0m\r\n"
        if i % 50 == 0:
            noisy += b"\xff\xfe\x00\x1b[31mjunk \x80\x81 Computing\r\n"
    info = analyze_log(noisy)
    plain = analyze_log(data)
    assert info["phase"] == plain["phase"] == [5, 3]
    assert info["plot_id"] == PLOT_ID and info["k"] == 18
    # streaming the noisy log in odd-sized chunks gives the same sequence
    step = 997
    tail, seen = follow(tmp_path, [noisy[i:i + step] for i in range(0, len(noisy), step)])
    assert tail.phase == (5, 3) and seen == sorted(seen)


def test_analyze_chiapos_figures_equal_the_log(chiapos_log):
    data, (tmp, tmp2, dst) = chiapos_log
    text = data.decode()
    info = analyze_log(text)
    import re
    want = [float(re.search(r"Time for phase %d = ([\d.]+)" % n, text).group(1))
            for n in range(1, 5)]
    assert info["phase_s"] == want
    assert info["total_s"] == float(re.search(r"Total time = ([\d.]+)", text).group(1))
    assert (info["plotter"], info["plot_id"], info["k"], info["finished"]) == \
        ("chia", PLOT_ID, 18, True)
    assert (info["tmp_dir"], info["tmp2_dir"], info["dst_dir"]) == (tmp, tmp2, dst)
    assert info["start_time"] and abs(info["start_time"] - os.path.getmtime(dst)) < 120


@pytest.mark.parametrize("log,times,plotter", [
    (MADMAX_LOG, MADMAX_TIMES, "madmax"),
    (BLADEBIT_RAM_LOG, BLADEBIT_RAM_TIMES, "bladebit"),
    (BLADEBIT_DISK_LOG, BLADEBIT_DISK_TIMES, "bladebit"),
    (BLADEBIT_CUDA_LOG, BLADEBIT_CUDA_TIMES, "bladebit"),
], ids=["madmax", "bladebit-ramplot", "bladebit-diskplot", "bladebit-cudaplot"])
def test_other_plotters_phases_and_figures(log, times, plotter, tmp_path):
    pieces = [(line + "\n").encode() for line, _ in log]
    tail, seen = follow(tmp_path, pieces)
    assert seen == [phase for _, phase in log]
    assert tail.plotter == plotter and tail.plot_id == PID_A and tail.k == 32
    assert tail.finished
    info = analyze_log(text_of(log))
    for key, want in times.items():
        assert info[key] == want, key
    if plotter == "madmax" or log is BLADEBIT_DISK_LOG:
        assert (info["tmp_dir"], info["tmp2_dir"]) == (TMP_A, TMP2_A)
    assert info["dst_dir"].rstrip("/") == DST_A.rstrip("/")


def test_unfinished_log_is_not_finished(tmp_path):
    text = text_of(MADMAX_LOG[:21])
    info = analyze_log(text)
    assert info["finished"] is False and info["phase"] == [2, 2]
    assert analyze_log("hello\nworld\n") is None


def test_only_new_bytes_are_read_and_rewrite_restarts(tmp_path):
    path = tmp_path / "job.log"
    path.write_bytes(text_of(MADMAX_LOG[:12]).encode())
    tail = LogTail(str(path))
    first = tail.poll()
    assert first == path.stat().st_size and tail.phase == (1, 3)
    assert tail.poll() == 0                     # nothing new, nothing read
    more = text_of(MADMAX_LOG[12:21]).encode()
    with open(path, "ab") as f:
        f.write(more)
    assert tail.poll() == len(more) and tail.offset == first + len(more)
    assert tail.phase == (2, 2)
    # a new, shorter log under the same name (rotation) is read from the start
    os.remove(path)
    path.write_bytes(text_of(BLADEBIT_RAM_LOG[:10]).encode())
    tail.plotter_hint = None
    tail.poll()
    assert tail.phase == (1, 0) and tail.plotter == "bladebit"


def test_huge_log_streams_in_bounded_chunks(tmp_path):
    path = tmp_path / "big.log"
    filler = b"\tBucket 7 uniform sort. Ram: 0.273GiB, u_sort min: 0.000GiB\n" * 40000
    with open(path, "wb") as f:
        f.write(b"Starting phase 1/4: Forward Propagation\nComputing table 2\n")
        for _ in range(3):
            f.write(filler)
        f.write(b"Computing table 5\n" + filler + b"Starting phase 2/4: Back\n" + filler)
    tail = LogTail(str(path))
    tail.poll()
    assert tail.offset == path.stat().st_size and tail.phase == (2, 0)
    assert len(tail.pending) == 0


# -- the error line of a failed job ----------------------------------------------

def run_log(tmp_path, argv, name="job.log"):
    """Run a real command with its output in a log, as a job would; (rc, bytes)."""
    log = tmp_path / name
    with open(log, "wb") as out:
        rc = subprocess.call(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, timeout=120)
    return rc, log.read_bytes()


def chiapos_argv(tmp_path, *extra):
    for d in ("t", "d"):
        (tmp_path / d).mkdir(exist_ok=True)
    return [sys.executable, "-m", "agent", "plot-chiapos", "-k", "18", "-t", str(tmp_path / "t"),
            "-d", str(tmp_path / "d"), "-b", "300", "-r", "2", *extra]


def test_a_cpp_abort_is_its_what_line(tmp_path):
    rc, text = run_log(tmp_path, chiapos_argv(tmp_path, "-u", "64", "--stripe", "2000"))
    assert rc == -6                                  # SIGABRT
    info = analyze_log(text, "chiapos")
    assert info["error"] == "InvalidValueException: Triggering bucket too early"
    assert not info["finished"] and info["plot_id"] and info["phase"][0] == 1


def test_a_plotter_error_is_its_own_line_not_the_wrappers_vague_one(tmp_path):
    rc, text = run_log(tmp_path, chiapos_argv(tmp_path, "-u", "128", "--stripe", "2000"))
    assert rc == 1
    info = analyze_log(text, "chiapos")
    assert info["error"] == "Caught plotting error: Stripe size too large"
    assert info["plot_id"] is None and info["lines"] > 0


def test_a_traceback_gives_the_exception_not_a_frame(tmp_path):
    script = ("def load(k):\n    raise ValueError('farmer key ' + k + ' is not 48 bytes')\n"
              "try:\n    load('0x8f3c')\nexcept ValueError as e:\n"
              "    raise RuntimeError('cannot create plot') from e\n")
    rc, text = run_log(tmp_path, [sys.executable, "-c", script])
    assert rc == 1 and b'File "<string>", line' in text
    assert analyze_log(text, "chia")["error"] == "RuntimeError: cannot create plot"
    rc, text = run_log(tmp_path, [sys.executable, "-c", script.split("try:")[0] + "load('x')\n"])
    assert analyze_log(text, "chia")["error"] == "ValueError: farmer key x is not 48 bytes"


@pytest.mark.parametrize("lines, error", [
    (["Multi-threaded pipelined Chia k32 plotter - 974d6e5",
      "Invalid buckets parameter: 2^3 (supported: 2^[4..16])"],
     "Invalid buckets parameter: 2^3 (supported: 2^[4..16])"),
    (["Multi-threaded pipelined Chia k32 plotter - 974d6e5",
      "Failed to write to tmpdir directory: '/mnt/nvme/tmp/'"],
     "Failed to write to tmpdir directory: '/mnt/nvme/tmp/'"),
    (["\x1b[31mError: Could not find farmer key\x1b[0m\r"], "Error: Could not find farmer key"),
    (["Starting phase 1/4: Forward Propagation into tmp files... Wed Nov 25 05:44:57 2026",
      "plotfleet: killed on request at 2026-11-25 05:45:00"], None),
])
def test_error_lines_of_other_plotters(lines, error):
    info = analyze_log("\n".join(lines) + "\n", "madmax" if "Multi" in lines[0] else "chia")
    assert info["error"] == error
    assert info["killed"] == lines[-1].startswith("plotfleet: killed")


def test_logs_of_jobs_that_went_well_have_no_error(chiapos_log):
    assert analyze_log(chiapos_log[0])["error"] is None
    for log in (MADMAX_LOG, BLADEBIT_RAM_LOG, BLADEBIT_DISK_LOG, BLADEBIT_CUDA_LOG):
        assert analyze_log(text_of(log))["error"] is None
