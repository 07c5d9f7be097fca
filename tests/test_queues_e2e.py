"""Transfer queues end to end, over real sshd and rsync with real k18
plots: one `plotfleet archive` pass hands a plotter's runner its queue, the
runner sends it back to back with no pass (and no controller) behind it,
and a later pass verifies and promotes each copy before its source goes.
A batch (plots in one rsync run) cut mid-way loses only the file it was on.
"""
import json
import os
import time

import psutil

from tests.cli import plotfleet, status_json
from tests.test_archive_e2e import (PARTIAL, DriveSampler, archive_pass, archive_until,
                                    assert_all_archived, farm_drives, farm_fleet, give_plots,
                                    partials)


def settled_partials(fleet, plots, timeout=60.0):
    """Wait (no plotfleet pass running) until every plot is a whole partial
    on a farm drive and no rsync writes; {plot id: partial path}."""
    deadline = time.monotonic() + timeout
    while True:
        found = {}
        for p in partials(fleet):
            pid = os.path.basename(p)[:-len(PARTIAL)].rsplit("-", 1)[1][:64]
            if os.path.getsize(p) == plots.size.get(pid):
                found[pid] = p
        busy = bool(our_rsyncs(fleet))
        if set(found) == plots.ids and not busy:
            return found
        assert time.monotonic() < deadline, f"the queue never finished: {sorted(found)}"
        time.sleep(0.2)


def test_one_pass_hands_over_a_queue_the_runner_sends_by_itself(ssh_fleet, tmpfs, tmp_path,
                                                                k18_plots):
    # nothing tuned but a bandwidth limit slow enough to see the queue at work
    began = time.time()
    fleet = farm_fleet(ssh_fleet, tmpfs, n_plotters=1, n_harvesters=1)
    plots = give_plots(fleet, k18_plots, per_plotter=6)
    inv = fleet.write_inventory(tmp_path / "inv.yaml", transfer_bwlimit_kbps=4000)
    with DriveSampler(farm_drives(fleet)) as s:
        first = archive_pass(inv).text
        assert first.count("transfer: ") == 6, first         # all handed over at once
        r, doc = status_json(inv)
        states = sorted(t["status"] for h in doc["hosts"] for t in h["transfers"])
        assert len(states) == 6 and set(states) <= {"queued", "running", "copied"}, states
        # no pass now: the runner works through its queue alone
        settled_partials(fleet, plots)
        outs = archive_until(inv, fleet, plots)
    found = assert_all_archived(fleet, plots)
    assert len(found) == 6
    assert max(s.max_open.values()) == 1, f"a drive had two writers: {s.max_open}"
    assert max(s.max_unfinished.values()) == 1, f"two partials growing on one drive: {s.max_unfinished}"
    text = "\n".join(outs)
    assert text.count("promoted: ") == 6 and text.count("removed source: ") == 6, text
    # what the runner did shows in the record as it does for a transfer a pass began
    r = plotfleet("history", "--inventory", inv, "--json")
    assert r.returncode == 0, r.stderr
    # (the log is this worker's, shared with other tests: this test's records)
    kinds = [e["kind"] for e in json.loads(r.stdout) if e["at"] >= began]
    assert kinds.count("transfer_started") == 6 and kinds.count("copy_promoted") == 6


def our_rsyncs(fleet):
    """The rsyncs writing into this fleet's drives (the other worker's tests
    run rsyncs of their own on this machine)."""
    drives = farm_drives(fleet)
    return [p for p in psutil.process_iter(["name", "cmdline"])
            if p.info["name"] == "rsync"
            and any(d in a for a in p.info["cmdline"] or () for d in drives)]


def test_a_batch_cut_mid_way_loses_only_the_file_it_was_on(ssh_fleet, tmpfs, tmp_path,
                                                           k18_plots):
    fleet = farm_fleet(ssh_fleet, tmpfs, n_plotters=1, n_harvesters=1)
    plots = give_plots(fleet, k18_plots, per_plotter=5)
    # the default batch_bytes (8 GiB) puts every plot of the queue in one
    # rsync run; one drive, so all five go to it
    inv = fleet.write_inventory(tmp_path / "inv.yaml", transfer_bwlimit_kbps=1500,
                                max_transfers_per_plotter=1)
    first = archive_pass(inv).text
    assert first.count("transfer: ") == 5, first
    deadline = time.monotonic() + 60
    while True:             # cut it once two files are whole and the third has begun
        whole = [p for p in partials(fleet) if os.path.getsize(p) in plots.size.values()]
        if len(partials(fleet)) >= 3 and len(whole) >= 2:
            break
        assert time.monotonic() < deadline, partials(fleet)
        time.sleep(0.05)
    victims = [p for p in our_rsyncs(fleet) if any("batch" in a for a in p.info["cmdline"])]
    assert victims, "no batch rsync to cut"
    for v in victims:
        v.kill()
    time.sleep(1.0)
    r, doc = status_json(inv)
    states = sorted(t["status"] for h in doc["hosts"] for t in h["transfers"])
    # the whole ones are copies to verify, the cut one failed, the rest back to wait
    assert states.count("copied") >= 2 and states.count("failed") == 1, states
    [cut] = [t for h in doc["hosts"] for t in h["transfers"] if t["status"] == "failed"]
    assert cut["error"] == "rsync killed by signal 9", cut        # the cause, not progress
    assert "queued" not in states and "running" not in states, states
    outs = archive_until(inv, fleet, plots, timeout=90)
    assert_all_archived(fleet, plots)
    text = "\n".join(outs)
    assert text.count("removed source: ") == 5, text


def runners_cmd(procs):
    return " ".join(a for p in procs for a in p.cmdline())


def test_a_runner_killed_mid_queue_loses_nothing_and_the_next_passes_finish(
        ssh_fleet, tmpfs, tmp_path, k18_plots):
    """The runner itself dies (OOM killer, reboot of its session) with plots
    still queued: the one on its way resumes, the queued ones are placed
    again, and every plot arrives once."""
    fleet = farm_fleet(ssh_fleet, tmpfs, n_plotters=1, n_harvesters=1)
    plots = give_plots(fleet, k18_plots, per_plotter=5)
    inv = fleet.write_inventory(tmp_path / "inv.yaml", transfer_bwlimit_kbps=1500,
                                max_transfers_per_plotter=1, batch_bytes=0)
    first = archive_pass(inv).text
    assert first.count("transfer: ") == 5, first
    deadline = time.monotonic() + 60
    while not any(os.path.getsize(p) > 0 for p in partials(fleet)):
        assert time.monotonic() < deadline, "nothing arrived"
        time.sleep(0.05)
    deadline = time.monotonic() + 20
    while not our_rsyncs(fleet):        # (between two plots of the queue for a moment)
        assert time.monotonic() < deadline, "no rsync of this fleet"
        time.sleep(0.01)
    runners = {p.parent() for p in our_rsyncs(fleet)}
    assert len(runners) == 1 and "transfer" in runners_cmd(runners), runners
    runners = list(runners)
    # the runner first: killed after its rsync, it could still see the rsync
    # die and say so ('rsync killed by signal 9'), which is another test
    for p in runners + runners[0].children(recursive=True):
        p.kill()
    time.sleep(0.5)
    r, doc = status_json(inv)
    states = sorted(t["status"] for h in doc["hosts"] for t in h["transfers"])
    assert "queued" not in states and "running" not in states, states   # nothing pretends
    errors = {t["error"] for h in doc["hosts"] for t in h["transfers"] if t["status"] == "failed"}
    assert errors == {"interrupted"}, doc       # the plot it was on, said so
    archive_until(inv, fleet, plots, timeout=90)
    assert_all_archived(fleet, plots)
