"""`plotfleet status` end to end over real sshd hosts."""
import time

from tests.cli import plotfleet, status_json


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
