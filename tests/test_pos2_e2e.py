"""PoS2 end to end: plotter pos2 (chia_rs from PyPI, through the agent's own
launcher) on a real sshd plotter, archived with real rsync to harvester
drives that are real separate filesystems, next to v1 plots and DrPlotter's;
and the v2 files that must never reach a farm: torn, impostor, still written."""
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from agent.facts import plotfile
from agent.vocab import names
from tests.cli import REPO, plotfleet, status_json
from tests.pos2plots import make_v2
from tests.test_archive_e2e import archive_pass, farm_drives, mount_farms

DRPLOT = "drplot-pro4x-2024-01-24-00-35-372b8c5b9948587dcf4e6b66565cd382.drplot"


def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _farm_files(fleet):
    return {n: os.path.join(d, n) for d in farm_drives(fleet) for n in os.listdir(d)}


def test_plot_all_makes_v2_plots_and_farms_them_beside_v1_and_drplots(ssh_fleet, tmpfs,
                                                                       tmp_path, k18_plots):
    fleet = ssh_fleet(n_plotters=1, n_harvesters=1)
    mount_farms(fleet, tmpfs)
    h = fleet.hosts["harvester1"]
    # the farm already holds a v1 plot and a DrPlotter plot
    v1 = k18_plots.get(1)[0]
    Path(h.dirs["farm"][0], v1.name).write_bytes(v1.read_bytes())
    Path(h.dirs["farm"][1], DRPLOT).write_bytes(os.urandom(4096))
    kept = {n: _sha(p) for n, p in _farm_files(fleet).items()}
    inv = fleet.write_inventory(tmp_path / "inv.yaml", plotter="pos2", k=18, strength=2,
                                polling_time_s=1, global_stagger_m=0, global_max_jobs=1)

    r = plotfleet("status", "--inventory", inv)
    assert r.returncode == 0, r.stdout + r.stderr
    # no v2 plot seen yet: room is planned with CHIP-48's figure, said to be assumed
    assert "x v2 k18 s2 (size assumed)" in r.stdout, r.stdout

    r = plotfleet("plot-all", "--inventory", inv, "--plots", 2, timeout=240)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr

    farmed = {n: p for n, p in _farm_files(fleet).items() if n.endswith(".plot2")}
    assert len(farmed) == 2, _farm_files(fleet)
    for n, p in farmed.items():
        assert names.parse(n).k == 18 and plotfile.inspect(p) == (None, (2, "pos2"))
    assert {n: _sha(p) for n, p in _farm_files(fleet).items() if n in kept} == kept
    assert not [n for n in _farm_files(fleet) if n.endswith(names.PARTIAL_SUFFIX)]
    p = fleet.hosts["plotter1"]
    assert os.listdir(p.dirs["dst"][0]) == [] and os.listdir(p.dirs["tmp"][0]) == []
    logs = [Path(p.dirs["log"], n).read_text() for n in os.listdir(p.dirs["log"])]
    assert len(logs) == 2 and all("plot-pos2: wrote plot-k18-" in t for t in logs)

    _, doc = status_json(inv)
    farm = [d for hs in doc["hosts"] if hs["name"] == "harvester1" for d in hs["dirs"]
            if d["kind"] == "farm"]
    assert sum(d["plot_count"] for d in farm) == 4          # 1 v1, 2 v2, 1 DrPlotter
    kinds = {(k, level, fmt): n for d in farm for k, level, fmt, n, _ in d["plot_kinds"]}
    assert kinds[(18, 2, "pos2")] == 2 and kinds[(18, 0, None)] == 1
    r = plotfleet("status", "--inventory", inv)
    assert "2 x v2 k18 s2" in r.stdout and "(size assumed)" not in r.stdout, r.stdout


def _held_for_writing(path):
    """A real process holding `path` open for writing (as chia_rs does while it plots)."""
    p = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                          "f = open(sys.argv[1], 'r+b'); print('open', flush=True)\n"
                          "time.sleep(600)", str(path)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "open"
    return p


def test_torn_impostor_and_unfinished_v2_files_never_reach_a_farm(ssh_fleet, tmpfs, tmp_path,
                                                                  v2_plots):
    fleet = ssh_fleet(n_plotters=1, n_harvesters=1)
    mount_farms(fleet, tmpfs)
    p, h = fleet.hosts["plotter1"], fleet.hosts["harvester1"]
    dst, farm = Path(p.dirs["dst"][0]), Path(h.dirs["farm"][0])
    good, torn, impostor, written = v2_plots.get(4)
    data = good.read_bytes()
    Path(dst, good.name).write_bytes(data)
    # an interrupted transfer of the good plot: a torn partial with a valid header
    Path(farm, good.name + names.PARTIAL_SUFFIX).write_bytes(data[:len(data) - 5000])
    # a torn final: its writer died mid-write, the header is whole
    Path(dst, torn.name).write_bytes(torn.read_bytes()[:-3000])
    # an impostor: a k18 v2 file under a k20 name
    fake = "plot-k20-" + names.parse(impostor.name).plot_id + ".plot2"
    Path(dst, fake).write_bytes(impostor.read_bytes())
    # still being written by its plotter (chia_rs writes under the final name)
    Path(dst, written.name).write_bytes(written.read_bytes())
    writer = _held_for_writing(Path(dst, written.name))
    try:
        inv = fleet.write_inventory(tmp_path / "inv.yaml", plotter="pos2", k=18)
        _, doc = status_json(inv)
        listed = {os.path.basename(x["path"]): x for hs in doc["hosts"] for x in hs["plots"]}
        assert written.name not in listed           # open for writing: no finished plot
        assert "torn" in listed[torn.name]["error"]
        assert "header says k18, name says k20" in listed[fake]["error"]
        assert listed[good.name]["error"] is None and listed[good.name]["kind"] == "v2 k18 s2"

        deadline = time.monotonic() + 60
        while not Path(farm, good.name).exists() and not any(
                Path(d, good.name).exists() for d in farm_drives(fleet)):
            r = archive_pass(inv)
            assert time.monotonic() < deadline, r.text
            time.sleep(0.3)
        r = archive_pass(inv)
        assert f"{fake}: waiting: not archived: header says k18, name says k20" in r.text
        final = [Path(d, good.name) for d in farm_drives(fleet) if Path(d, good.name).exists()]
        assert len(final) == 1 and final[0].read_bytes() == data
        assert not (dst / good.name).exists()       # removed once the copy was proven
        on_farm = set(_farm_files(fleet))
        assert on_farm == {good.name}, on_farm      # no torn, impostor or unfinished file
        for n in (torn.name, fake, written.name):
            assert (dst / n).exists()               # never deleted: the farmer decides
        r = plotfleet("status", "--inventory", inv)
        assert "not archived: header says k18, name says k20" in r.stdout, r.stdout
        assert "not archived: torn: " in r.stdout and "1×v2 k18 s2" in r.stdout
    finally:
        writer.kill()
        writer.wait()


def test_a_running_v2_job_is_shown_and_no_final_name_exists_until_it_is_done(ssh_fleet, tmp_path):
    fleet = ssh_fleet(n_plotters=1)
    p = fleet.hosts["plotter1"]
    # strength 9 at k18: over a minute of work, stopped once it has started
    inv = fleet.write_inventory(tmp_path / "inv.yaml", plotter="pos2", k=18, strength=9)
    r = plotfleet("plot-all", "--inventory", inv, "--once", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    deadline = time.monotonic() + 30
    while True:
        _, doc = status_json(inv)
        jobs = doc["hosts"][0]["jobs"]
        if jobs and jobs[0]["phase"] == [1, 0]:
            break
        assert time.monotonic() < deadline, jobs
        time.sleep(0.3)
    job = jobs[0]
    os.kill(job["pid"], 19)                 # SIGSTOP: it stays mid-plot
    try:
        assert (job["plotter"], job["kind"], job["k"]) == ("pos2", "v2 k18 s9", 18)
        # chia_rs plots in memory, then writes: only ever to the temp name
        temp = os.listdir(p.dirs["tmp"][0])
        assert set(temp) <= {f"plot-k18-{job['plot_id']}.plot2.tmp"}, temp
        assert os.listdir(p.dirs["dst"][0]) == []       # no final name while it works
        r = plotfleet("status", "--inventory", inv)
        assert "v2 k18 s9" in r.stdout, r.stdout
        r = plotfleet("kill", "--inventory", inv, job["plot_id"][:8], "--yes", timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert os.listdir(p.dirs["tmp"][0]) == [] and os.listdir(p.dirs["dst"][0]) == []
    finally:
        try:
            os.kill(job["pid"], 9)
        except ProcessLookupError:
            pass
