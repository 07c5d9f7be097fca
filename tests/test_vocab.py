"""The shared vocabulary: one plot-name parser, one spec per format and per
plotter, and what the PoS2 format spec reads from real chia_rs files."""
import os
import shutil
import struct
import subprocess
import sys

import pytest

from agent.facts import disks, plotfile
from agent.vocab import formats, names
from agent.vocab.plotters import PLOTTERS, classify
from orchestrator.core import plotcmd
from tests.cli import REPO
from tests.pos2plots import make_v2

ID = "5e" * 32


@pytest.mark.parametrize("name, want", [
    (f"plot-k32-2021-06-21-01-00-{ID}.plot", (32, None, "v1")),
    (f"plot-k32-c07-2023-09-12-19-26-{ID}.plot", (32, "07", "v1")),      # bladebit
    (f"plot-k32-c18-2023-11-15-22-33-{ID}.plot", (32, "18", "v1")),      # Gigahorse
    (f"plot-k28-{ID}.plot2", (28, None, "pos2")),                       # create_v2_plots
    (f"plot-k28-{ID}.gplot", (28, None, "pos2_group")),
    # github.com/drnick23/drplotterv3 README, "Plotting File:"
    ("drplot-pro4x-2024-01-24-00-35-372b8c5b9948587dcf4e6b66565cd382.drplot",
     (0, "pro4x", "drplot")),
])
def test_every_plot_name_form_is_read_by_the_one_parser(name, want):
    p = names.parse(name)
    assert (p.k, p.level, p.format) == want
    assert names.parse("/farm/a/" + name + names.PARTIAL_SUFFIX) == p   # a temp name's final
    assert names.is_plot(name) and not names.is_plot(name + names.PARTIAL_SUFFIX)


@pytest.mark.parametrize("name", [
    f"plot-k32-{ID}.plot",                  # a v1 name always has its date
    f"plot-k28-c07-{ID}.plot2",             # PoS2 has no compression level
    f"plot-k32-2021-06-21-01-00-{ID[:-2]}.plot",
    f"plot-k32-2021-06-21-01-00-{ID}.plot.tmp",
    "notes.plot2", f"plot-k28-{ID}.plot3",
])
def test_names_that_are_no_plot(name):
    assert names.parse(name) is None and not names.is_plot(name)


def test_a_log_line_names_its_plot_without_a_suffix():
    p = names.find(f"Plot Name: plot-k32-2023-02-10-22-33-{ID}")
    assert (p.k, p.plot_id, p.suffix) == (32, ID, None)
    assert names.label(f"/dst/plot-k28-{ID}.plot2") == ID[:8]


def test_templates_and_process_reading_share_one_flag_table(tmp_path):
    """A job built by a template is read back from its argv as what it was asked."""
    from tests.factories import plotter as host
    for plotter, extra in (("chia", {}), ("madmax", {"farmer_key": "f" * 96, "pool_key": "p" * 96}),
                           ("bladebit", {"farmer_key": "f" * 96, "pool_key": "p" * 96,
                                         "bladebit_mode": "diskplot", "buckets": 256}),
                           ("gigahorse", {"farmer_key": "f" * 96, "pool_key": "p" * 96,
                                          "compress": 7, "cuda_device": 1}),
                           ("chiapos", {"k": 18, "buckets": 32}), ("pos2", {"k": 20, "strength": 3})):
        k = extra.pop("k", 32)
        h = host(plotter=plotter, k=k, **extra)
        argv = list(plotcmd.build_argv(h, "/t/x", "/d/y"))
        if argv[0].startswith("plotfleet-"):
            argv = [sys.executable, "-m", "agent", argv[0].split("-", 1)[1].replace(
                "chiapos", "plot-chiapos").replace("pos2", "plot-pos2")] + argv[1:]
        info = classify(argv)
        assert info["plotter"] == plotter and info["k"] == k, (plotter, argv, info)
        assert info["tmp_dir"].rstrip("/") == "/t/x" and info["dst_dir"].rstrip("/") == "/d/y"
    assert info["compress"] == 3 and info["compress_format"] == "pos2"


# -- PoS2 files as chia_rs 0.53 writes them ---------------------------------------

@pytest.fixture(scope="module")
def v2(tmp_path_factory):
    d = tmp_path_factory.mktemp("v2")
    made, log = make_v2(d, k=18, strength=2)
    (k20,), _ = make_v2(d, k=20, strength=3)
    return made[0], k20, log


def test_the_launcher_logs_start_id_end_and_size_and_leaves_no_temp_file(v2):
    plot, k20, log = v2
    size = os.path.getsize(plot)
    assert "plot-pos2: chia_rs 0.53" in log and f"plotting {plot.name}" in log
    assert f"wrote {plot.name}: {size} bytes" in log
    assert sorted(os.listdir(plot.parent)) == sorted([plot.name, k20.name])
    # a k18 file is about 0.65 MB: chia_rs.expected_plot_size (4.8 MB) is no file size
    assert 500_000 < size < 900_000


def test_the_v2_header_declares_the_files_extent_and_its_plot_count(v2):
    for path, k, strength in ((v2[0], 18, 2), (v2[1], 20, 3)):
        data = path.read_bytes()
        h = formats.read_header(data[:formats.HEADER_BYTES])
        assert data[:4] == b"PoS2" and (h["format"], h["k"], h["strength"]) == ("pos2", k, strength)
        assert h["group_size"] == 1         # create_v2_single_plot_group: a group of one
        spec = formats.FORMATS["pos2"]
        assert spec.extent(h, lambda o, n: data[o:o + n], len(data)) == len(data)
        assert plotfile.inspect(str(path)) == (None, (strength, "pos2"))


def _copy(src, dst, data):
    dst.write_bytes(data)
    return str(dst)


def test_torn_unfinished_and_impostor_v2_files_are_no_plots(v2, tmp_path):
    plot = v2[0]
    data = plot.read_bytes()
    k20 = v2[1].read_bytes()
    cases = {
        "cut by one byte": data[:-1],
        "cut in its chunks": data[:len(data) // 2],
        "zero-filled tail": data[:-4096] + bytes(4096),
        "grown": data + b"x",
        # what chia_rs leaves while it writes: the index offset is written last
        "unfinished": data[:42] + bytes(8) + data[50:],
        "magic in lower case": b"pos2" + data[4:],
    }
    got = {}
    for what, body in cases.items():
        p = _copy(plot, tmp_path / plot.name, body)
        got[what] = plotfile.inspect(p)[0]
    assert got.pop("magic in lower case") is None          # any case is PoS2's magic
    assert "torn" in got["cut by one byte"] and "torn" in got["cut in its chunks"]
    assert got["zero-filled tail"] and got["grown"] and "unfinished" in got["unfinished"]
    # an impostor: a k20 file under a k18 name
    p = _copy(plot, tmp_path / plot.name, k20)
    assert "header says k20, name says k18" in plotfile.inspect(p)[0]
    # the header's id is the group's: a name with another id is not refused for it
    other = tmp_path / f"plot-k18-{'ab' * 32}.plot2"
    assert plotfile.inspect(_copy(plot, other, data))[0] is None


def test_a_group_counts_as_the_plots_its_header_holds(v2, tmp_path):
    data = bytearray(v2[0].read_bytes())
    data[39:41] = struct.pack("<H", 3)          # a group of three, as a farm holds them
    (tmp_path / f"plot-k18-{'cd' * 32}.gplot").write_bytes(bytes(data))
    shutil.copy(v2[0], tmp_path)
    (tmp_path / "drplot-eco3x-2024-01-24-00-35-372b8c5b9948587dcf4e6b66565cd382.drplot").write_bytes(b"x")
    found = {p["format"]: p for p in disks.plots_in(str(tmp_path))}
    assert found["pos2_group"]["plots"] == 3 and found["pos2"]["plots"] == 1
    assert found["drplot"]["k"] == 32
    assert set(found) == {"pos2", "pos2_group", "drplot"}
    assert {p["format"] for p in disks.plots_in(str(tmp_path), moved_only=True)} == {
        "pos2", "pos2_group"}          # DrPlotter's plots are never moved


def test_without_chia_rs_the_launcher_fails_with_one_line(tmp_path):
    # -S: no site-packages, so no chia_rs: the one line names the interpreter
    r = subprocess.run([sys.executable, "-S", "-m", "agent", "plot-pos2", "-k", "18",
                        "-t", str(tmp_path), "-d", str(tmp_path)], capture_output=True,
                       text=True, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"plot-pos2: error: chia_rs is not installed for {sys.executable}; "
        "plotter pos2 needs chia_rs >= 0.53"]
    assert os.listdir(tmp_path) == []


def test_the_pos2_spec_has_no_buckets_and_its_launcher_flags_once():
    spec = PLOTTERS["pos2"]
    assert spec.buckets is None and spec.flag("strength") == "-s"
