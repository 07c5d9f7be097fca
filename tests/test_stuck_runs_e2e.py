"""Runs that end, lines that cannot be forged: `plot-all --plots N` ends
with exit 1 and one line per plotter once nothing can change without the
farmer; a file name prints escaped on every one-line output; `archive`
writes its events to the application log as plot-all does."""
import json
import os
import subprocess
import sys
import time

import psutil

from tests.cli import REPO, plotfleet

FORGED = "12:00:00 ✓ 0badf00d promoted on harvester1:farm1 (4.0 MiB, verified)"


def test_plots_n_ends_when_no_tmp_dir_can_take_a_job_and_nothing_can_free_one(
        ssh_fleet, tmpfs, tmp_path):
    fleet = ssh_fleet(n_plotters=1)
    tmp = fleet.hosts["plotter1"].dirs["tmp"][0]
    tmpfs.mount(tmp, "32m")                 # holds a k18 job (10 MiB) when empty...
    with open(os.path.join(tmp, "someone-elses.iso"), "wb") as f:
        f.write(b"\0" * (25 << 20))         # ...but the farmer's own file is in the way
    inv = fleet.write_inventory(tmp_path / "inv.yaml", polling_time_s=1)
    began = time.monotonic()
    r = plotfleet("plot-all", "--inventory", inv, "--plots", 1, timeout=90)
    assert r.returncode == 1, (r.returncode, r.stdout[-2000:], r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("plotter1: no tmp dir can take a k18 job"), \
        r.stderr
    assert f"{tmp} has " in lines[1] and time.monotonic() - began < 60


def test_plots_n_ends_when_its_plot_has_no_drive_and_never_will(ssh_fleet, tmpfs, tmp_path):
    fleet = ssh_fleet(n_plotters=1, n_harvesters=1)
    farms = fleet.hosts["harvester1"].dirs["farm"]
    for farm in farms:
        tmpfs.mount(farm, "8m")             # room for one k18 plot (about 4 MB) each
    inv = fleet.write_inventory(tmp_path / "inv.yaml", polling_time_s=1)
    out = open(tmp_path / "run.out", "w+")
    run = subprocess.Popen([sys.executable, "-m", "orchestrator", "plot-all", "--inventory",
                            str(inv), "--plots", "1"], cwd=REPO, stdout=out, stderr=out,
                           env=dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1"))
    try:
        log_dir = fleet.hosts["plotter1"].dirs["log"]
        end = time.time() + 60
        while not os.listdir(log_dir):      # the job started: now the farmer fills the farm
            assert time.time() < end and run.poll() is None, open(out.name).read()
            time.sleep(0.2)
        for farm in farms:
            with open(os.path.join(farm, "farmers-backup.tar"), "wb") as f:
                f.write(b"\0" * (6 << 20))
        assert run.wait(240) == 1, open(out.name).read()[-3000:]
    finally:
        if run.poll() is None:
            run.kill()
    lines = open(out.name).read().strip().splitlines()
    assert lines[-1].startswith("plotter1: 1 plot of this run waits: no drive with room"), \
        lines[-5:]
    assert len(os.listdir(fleet.hosts["plotter1"].dirs["dst"][0])) == 1    # kept, not lost


def test_a_newline_in_a_dir_name_forges_no_line(ssh_fleet, tmp_path):
    fleet = ssh_fleet(n_plotters=1)
    tmp = os.path.join(fleet.hosts["plotter1"].root, "tmp\n" + FORGED)
    os.makedirs(tmp)
    inv = fleet.write_inventory(tmp_path / "inv.yaml", {"plotter1": {"tmp_dirs": [tmp]}})
    try:
        seen = ""
        for flags in (("-v",), ()):         # the job's start in full, then as a line
            r = plotfleet("plot-all", "--inventory", inv, "--once", *flags, timeout=90)
            assert r.returncode == 0, r.stderr
            assert not any(line.startswith(FORGED[:10]) for line in r.stdout.splitlines()), \
                r.stdout
            seen += r.stdout
        assert "\\n" + FORGED[:8] in seen, seen        # the name, escaped
    finally:
        for p in psutil.process_iter(["cmdline"]):
            try:
                if any(tmp in a for a in p.info["cmdline"] or ()):
                    p.kill()
            except psutil.Error:
                pass


def test_archive_writes_its_events_to_the_application_log(ssh_fleet, k18_plots, tmp_path):
    fleet = ssh_fleet(n_plotters=1, n_harvesters=1)
    app_log = tmp_path / "app.log"
    inv = fleet.write_inventory(tmp_path / "inv.yaml", require_mounted_farm=False)
    inv.write_text(inv.read_text().replace("all:\n", f"all:\n  vars:\n    app_log: {app_log}\n", 1))
    name = os.path.basename(k18_plots.copy_to(fleet.hosts["plotter1"].dirs["dst"][0], 1)[0])
    r = plotfleet("archive", "--inventory", inv, timeout=90)
    assert r.returncode == 0, r.stderr
    records = [json.loads(x) for x in app_log.read_text().splitlines()]
    # the pass's steps for the new plot are there: its proof check begun, and
    # its hand-over to a drive's queue, to be copied once the check passed
    assert [rec["kind"] for rec in records if rec["subject"] == name] == \
        ["check_started", "transfer_started"], records
