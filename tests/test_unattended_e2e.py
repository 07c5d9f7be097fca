"""plot-all left alone, end to end: what it did lands in the application log
(in order, readable with `history`), and alerts reach the farmer once per
condition, through a real apprise over real HTTP, with plotting never held
up by the notifier."""
import json
import re
import time

import yaml

from tests.cli import plotfleet
from tests.test_failures_e2e import KEY_ERROR, SCENARIOS, logs, wait_dead
from tests.test_notify_e2e import inbox  # noqa: F401,F811  (a fixture: an HTTP server for apprise)


def with_controller(inv, **controller):
    """The inventory with controller-wide keys under all.vars."""
    doc = yaml.safe_load(inv.read_text())
    doc["all"]["vars"] = controller
    inv.write_text(yaml.safe_dump(doc))
    return inv


def test_the_application_log_holds_every_job_copy_and_removal_in_order(ssh_fleet, tmp_path,
                                                                      tmpfs):
    fleet = ssh_fleet(n_plotters=1, n_harvesters=1)
    fleet.farms_mounted = True
    for d in fleet.hosts["harvester1"].dirs["farm"]:
        tmpfs.mount(d, "64m")
    log = tmp_path / "controller" / "plotfleet.log"
    inv = with_controller(fleet.write_inventory(tmp_path / "inv.yaml", global_stagger_m=0,
                                                polling_time_s=1),
                          app_log=str(log))
    r = plotfleet("plot-all", "--inventory", inv, "--plots", 2, timeout=180)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    records = [json.loads(line) for line in log.read_text().splitlines()]
    kinds = [x["kind"] for x in records]
    started = [x for x in records if x["kind"] == "job_started"]
    promoted = [x for x in records if x["kind"] == "copy_promoted"]
    removed = [x for x in records if x["kind"] == "source_removed"]
    assert (len(started), len(promoted), len(removed)) == (2, 2, 2), kinds
    for p in promoted:      # each source removed after its own copy was verified
        later = [x for x in records[records.index(p):] if x["kind"] == "source_removed"
                 and x["subject"] == p["subject"]]
        assert later, (p, kinds)
        assert "digest" in p["detail"] and p["host"] == "harvester1"
    assert kinds.index("job_started") < kinds.index("copy_promoted")
    for x in records:       # both clocks, in order
        assert x["at"] > 0 and x["host_time"] and abs(x["host_time"] - x["at"]) < 60
    assert [x["at"] for x in records] == sorted(x["at"] for x in records)
    h = plotfleet("history", "--inventory", inv, "--json")
    assert h.returncode == 0 and json.loads(h.stdout) == records
    mine = json.loads(plotfleet("history", "--inventory", inv, "--host", "plotter1",
                                "--json").stdout)
    assert mine == [x for x in records if x["host"] == "plotter1"]
    table = plotfleet("history", "--inventory", inv, "--host", "plotter1")
    # plot-all's own lines, dated: two starts, no promote (that was the harvester's)
    assert len(re.findall(r"^\S+ \S+ (▶|>) plotter1 chiapos k18 ", table.stdout, re.M)) == 2, \
        table.stdout
    assert " promoted on " not in table.stdout


def test_a_failing_plotter_alerts_once_and_resolves_once(ssh_fleet, tmp_path, inbox):
    fleet = ssh_fleet(n_plotters=1)
    h = fleet.hosts["plotter1"]
    inv = with_controller(fleet.write_inventory(tmp_path / "inv.yaml", global_stagger_m=0,
                                                polling_time_s=1, clean_after_m=10,
                                                **SCENARIOS["plotter-exits-1"]),
                          notify=[inbox.url], app_log=str(tmp_path / "plotfleet.log"))
    for n in (1, 2):        # two failed jobs in a row
        assert plotfleet("plot-all", "--inventory", inv, "--once").returncode == 0
        wait_dead(inv, n)
    posts = []
    for _ in range(3):      # backed off: one alert, however many passes see it
        r = plotfleet("plot-all", "--inventory", inv, "--once")
        assert r.returncode == 0 and "backed off" in r.stdout
        posts += inbox.take()
    assert len(posts) == 1, posts
    assert "backed off" in posts[0]["message"] and KEY_ERROR in posts[0]["message"]
    assert len(logs(h)) == 2                          # nothing more was started
    # the operator clears it: one "resolved", and nothing after
    assert plotfleet("reset", "plotter1", "--inventory", inv).returncode == 0
    plotfleet("plot-all", "--inventory", inv, "--once")
    resolved = inbox.take()
    assert len(resolved) == 1 and "resolved" in (resolved[0]["title"] + resolved[0]["message"]).lower()
    assert "backed off" in resolved[0]["message"]


def test_a_notifier_that_is_down_never_stops_plotting(ssh_fleet, tmp_path):
    fleet = ssh_fleet(n_plotters=1)
    log = tmp_path / "plotfleet.log"
    inv = with_controller(fleet.write_inventory(tmp_path / "inv.yaml", global_stagger_m=0,
                                                polling_time_s=1,
                                                **SCENARIOS["plotter-exits-1"]),
                          notify=["json://127.0.0.1:9/"], app_log=str(log))   # nothing listens
    for n in (1, 2):
        assert plotfleet("plot-all", "--inventory", inv, "--once").returncode == 0
        wait_dead(inv, n)
    t = time.monotonic()
    r = plotfleet("plot-all", "--inventory", inv, "--once")
    assert r.returncode == 0 and "backed off" in r.stdout and "Traceback" not in r.stderr
    assert time.monotonic() - t < 30
    failed = [json.loads(x) for x in log.read_text().splitlines()
              if json.loads(x)["kind"] == "notify_failed"]
    assert failed and failed[0]["failed"] and "127.0.0.1" in failed[0]["detail"]
