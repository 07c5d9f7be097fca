"""`plotfleet status` end to end over real sshd hosts."""
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.cli import REPO, plotfleet, status_json


def test_status_json_over_three_hosts_shows_dirs_and_waiting_plots(ssh_fleet, tmp_path, k18_plots):
    fleet = ssh_fleet(n_plotters=3)
    waiting = k18_plots.copy_to(fleet.hosts["plotter2"].dirs["dst"][0], n=1)[0]
    inv = fleet.write_inventory(tmp_path / "inventory.yaml")
    r, doc = status_json(inv)
    assert r.returncode == 0, r.stderr
    hosts = {h["name"]: h for h in doc["hosts"]}
    assert set(hosts) == {"plotter1", "plotter2", "plotter3"}
    for h in hosts.values():
        assert h["reachable"] and h["error"] is None and h["roles"] == ["plotter"]
        kinds = {d["kind"] for d in h["dirs"]}
        assert {"tmp", "tmp2", "dst", "log"} <= kinds
        for d in h["dirs"]:
            assert d["total_bytes"] > 0 and 0 < d["free_bytes"] <= d["total_bytes"] and d["device"]
    assert [p["path"] for p in hosts["plotter2"]["plots"]] == [str(waiting)]
    assert hosts["plotter2"]["plots"][0]["size_bytes"] == waiting.stat().st_size
    assert hosts["plotter1"]["plots"] == []


def test_one_host_down_is_listed_with_reason_and_exit_4(ssh_fleet, tmp_path):
    fleet = ssh_fleet(n_plotters=3)
    inv = fleet.write_inventory(tmp_path / "inventory.yaml")
    fleet.stop("plotter2")
    t0 = time.monotonic()
    r, doc = status_json(inv)
    assert r.returncode == 4
    hosts = {h["name"]: h for h in doc["hosts"]}
    assert not hosts["plotter2"]["reachable"]
    assert "refused" in hosts["plotter2"]["error"]
    assert hosts["plotter1"]["reachable"] and hosts["plotter3"]["reachable"]
    # the table form names the host and the reason too
    r = plotfleet("status", "--inventory", inv)
    assert r.returncode == 4
    assert "plotter2" in r.stdout and "refused" in r.stdout
    assert time.monotonic() - t0 < 60


def test_bad_inventory_is_one_line_exit_2_no_traceback(tmp_path):
    inv = tmp_path / "inventory.yaml"
    inv.write_text("all:\n  children:\n    plotters:\n      hosts:\n        plotter03:\n"
                   "          tmp_dirs: 5\n          dst_dirs: [/d]\n          log_dir: /l\n")
    r = plotfleet("status", "--inventory", inv)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "inventory.yaml: host plotter03: tmp_dirs must be a list of paths, got 5" in lines[0]


def test_limit_matching_nothing_is_one_line(tmp_path, ssh_fleet):
    fleet = ssh_fleet(n_plotters=1)
    inv = fleet.write_inventory(tmp_path / "inventory.yaml")
    r = plotfleet("status", "--inventory", inv, "--limit", "nosuch*")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "nosuch*" in r.stderr


def test_bad_flags_are_one_line_exit_2(tmp_path):
    for args in (["status", "--bogus"], ["nosuchtask"], ["kill"],
                 ["plot-all", "--plots", "abc"], ["plot-all", "--plots", "-1"]):
        r = plotfleet(*args, "--inventory", tmp_path / "never-read.yaml") \
            if args[0] == "plot-all" else plotfleet(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, args
        if "--plots" in args:      # the flag is judged before the inventory is read
            assert "--plots must be a number" in r.stderr


def test_dirs_named_like_markup_print_as_they_are_and_plot_all_goes_on(ssh_fleet, tmp_path):
    fleet = ssh_fleet(n_plotters=1, n_harvesters=1)
    p, hv = fleet.hosts["plotter1"], fleet.hosts["harvester1"]
    tmp, dst, log = str(p.root / "tmp[/x]"), str(p.root / "dst[bold]"), str(p.root / "logs[/]")
    farm = str(hv.root / "farm[/red]")
    for d in (tmp, dst, log, farm):
        os.makedirs(d)
    inv = fleet.write_inventory(tmp_path / "inventory.yaml", global_stagger_m=0,
                                polling_time_s=0.5, extra_vars_per_host={
                                    "plotter1": {"tmp_dirs": [tmp], "dst_dirs": [dst],
                                                 "log_dir": log},
                                    "harvester1": {"farm_dirs": [farm]}})
    wide = {"COLUMNS": "600", "LANG": "C.UTF-8"}    # rows on one line each, to find the paths in them
    r = plotfleet("plot-all", "--inventory", inv, "--plots", 1, timeout=180, env=wide)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and r.stderr == ""
    # each event on one line: dirs by their suffix after the key line, as they are
    # (`tmp[/x]` is the dir x] in tmp[: its key is `{root}/tmp[/`)
    assert f"key plotter1: tmp {p.root}/tmp[/ · dst {p.root}/" in r.stdout, r.stdout
    assert f"key harvester1: farm {hv.root}/farm[/" in r.stdout, r.stdout
    assert "chiapos k18 x] → dst[bold] (pid " in r.stdout, r.stdout
    assert "plotter1:dst[bold] → harvester1:red] (" in r.stdout, r.stdout
    assert "spread: harvester1:red] has " in r.stdout, r.stdout
    r = plotfleet("plot-all", "--inventory", inv, "--once", "--check", "-v", env=wide)
    assert f"would start on plotter1: chiapos k18 tmp {tmp} -> dst {dst}" in r.stdout, r.stdout
    assert len([f for f in os.listdir(farm) if f.endswith(".plot")]) == 1
    r = plotfleet("status", "--inventory", inv, env=wide)
    assert r.returncode == 0, r.stdout + r.stderr
    for d in (tmp, dst, log, farm):
        assert d in r.stdout


def test_status_json_into_a_pipe_closed_early_ends_quietly(ssh_fleet, tmp_path):
    fleet = ssh_fleet(n_plotters=1)
    dst = Path(fleet.hosts["plotter1"].dirs["dst"][0])
    # more JSON than a pipe holds, so the writer meets the closed pipe
    for i in range(600):
        (dst / f"plot-k18-2024-01-01-00-00-{i:064x}.plot").write_bytes(b"")
    inv = fleet.write_inventory(tmp_path / "inventory.yaml")
    cmd = [sys.executable, "-m", "orchestrator", "status", "--inventory", str(inv), "--json"]
    producer = subprocess.Popen(cmd, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = subprocess.Popen(["head", "-1"], stdin=producer.stdout, stdout=subprocess.PIPE)
    producer.stdout.close()             # only head reads it now
    first, _ = head.communicate(timeout=60)
    err = producer.communicate(timeout=60)[1].decode()
    assert first == b"{\n"
    assert err == "", err                # no BrokenPipeError, no "Exception ignored"
    assert producer.returncode == 1
