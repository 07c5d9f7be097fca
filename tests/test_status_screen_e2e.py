"""`plotfleet status` over real sshd hosts whose dirs share long prefixes:
dir keys, each plotter's tmp and dst tables and its plotting / archiving
line, agreeing with what `plot-all --check` decides on the same fleet."""
import json
import os
import re

from tests.cli import plotfleet, status_json
from tests.test_control_e2e import ID_A, end, start_job

PLOTTERS = ("plotter1", "plotter2", "plotter3")


def long_prefixed_fleet(ssh_fleet):
    """3 plotters with tmp dirs <root>/plotter-nvme/00..03 and dst dirs
    <root>/plotter-hdd/00..01, 2 harvesters."""
    fleet = ssh_fleet(n_plotters=3, n_harvesters=2)
    for name in PLOTTERS:
        h = fleet.hosts[name]
        h.dirs["tmp"] = [str(h.root / "plotter-nvme" / f"{i:02d}") for i in range(4)]
        h.dirs["dst"] = [str(h.root / "plotter-hdd" / f"{i:02d}") for i in range(2)]
        for d in h.dirs["tmp"] + h.dirs["dst"]:
            os.makedirs(d)
    return fleet


def test_status_names_dirs_by_key_and_agrees_with_plot_all_check(ssh_fleet, tmp_path, k18_plots):
    fleet = long_prefixed_fleet(ssh_fleet)
    p1, p2 = fleet.hosts["plotter1"], fleet.hosts["plotter2"]
    [waiting] = k18_plots.copy_to(p2.dirs["dst"][1], n=1, proven=True)   # its check passed
    job = start_job(p1, ID_A)           # in phase 1 on tmp 00: it holds that dir
    try:
        inv = fleet.write_inventory(tmp_path / "inventory.yaml", global_stagger_m=0)
        r, doc = status_json(inv)
        assert r.returncode == 0, r.stderr
        hosts = {h["name"]: h for h in doc["hosts"]}
        tmp1 = {t["path"]: t for t in hosts["plotter1"]["tmp"]}
        assert tmp1[p1.dirs["tmp"][0]]["rule"] == "phase limit"
        assert tmp1[p1.dirs["tmp"][0]]["phases"][0][0] == 1
        assert [t["ready"] for t in hosts["plotter1"]["tmp"]] == [False, True, True, True]
        assert all(t["free_bytes"] > 0 for t in hosts["plotter1"]["tmp"])
        dst2 = {d["path"]: d for d in hosts["plotter2"]["dst"]}
        assert (dst2[p2.dirs["dst"][1]]["plots"], dst2[p2.dirs["dst"][1]]["priority"],
                dst2[p2.dirs["dst"][1]]["state"]) == (1, 1, "next")
        assert dst2[p2.dirs["dst"][0]]["priority"] is None
        assert hosts["plotter2"]["archiving"]["state"] == "next"
        assert "tmp" not in hosts["harvester1"]

        # the same fleet as plot-all --check decides it
        r = plotfleet("plot-all", "--inventory", inv, "--check", "--json")
        assert r.returncode == 0, r.stderr
        decisions = json.loads(r.stdout.splitlines()[-1])["decisions"]
        starts = {s["host"]: s for s in decisions["starts"]}
        for name in PLOTTERS:
            plotting = hosts[name]["plotting"]
            assert plotting["state"] == "ready" and \
                plotting["start"]["tmp_dir"] == starts[name]["tmp_dir"], (name, plotting)
        assert starts["plotter1"]["tmp_dir"] == p1.dirs["tmp"][1]     # 00 is held
        [sent] = decisions["transfers"]
        assert sent["plot"] == str(waiting)
        # (which harvester may differ: two gathers, two drives with about the same room)
        assert hosts["plotter2"]["archiving"]["next"][0]["plot"] == sent["plot"]

        for width in (80,):             # 120 columns: tests/test_dir_tables.py
            r = plotfleet("status", "--inventory", inv, env={"COLUMNS": str(width)})
            assert r.returncode == 0, r.stderr
            text = r.stdout
            assert max(map(len, text.splitlines())) <= width
            flat = " ".join(text.replace("│", " ").split())
            solid = "".join(flat.split())       # a long key wraps anywhere at 80 columns
            for name in PLOTTERS:
                root = fleet.hosts[name].root
                assert (f"{name}key:tmp{root}/plotter-nvme/·dst{root}/plotter-hdd/"
                        in solid), (width, text)
            rows = re.findall(r"^(0[0-3])\s+(ready|phase limit|max jobs|room|dir error)\s",
                              text, re.M)
            assert [n for n, _ in rows] == ["00", "01", "02", "03"] * 3, text
            assert rows[0][1] == "phase limit" and rows[1][1] == "ready"
            assert "plotter1 plotting ready: next job tmp 01 -> dst" in flat
            assert f"archiving next: {waiting.name.rsplit('-', 1)[1][:8]} -> harvester" in flat
            for name in ("harvester1", "harvester2"):
                assert f"key{name}:farm{fleet.hosts[name].root}/" in solid, text
    finally:
        end(job)
