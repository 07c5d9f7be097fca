"""A new plot handed over with its proof check, end to end over real sshd and
rsync with real k18 plots: the pass that starts a plot's check hands it to a
drive's queue too, and the plotter's runner copies it the moment its check
passes, not a pass later.  A check that ends without a result lets nothing
go: the runner gives the plot back and the farm never sees a byte of it.
"""
import os
import time

import psutil

from agent import statefile
from agent.facts import checks
from agent.ops.transfers import transfer_state_path
from tests.test_archive_e2e import (archive_pass, archive_until, assert_all_archived,
                                    farm_drives, give_plots, partials)
from tests.test_proof_check_e2e import FarmWatch, corrupt_middle


def dst_plots(fleet):
    return [os.path.join(h.dirs["dst"][0], n) for h in fleet.hosts.values()
            if h.role == "plotter" for n in sorted(os.listdir(h.dirs["dst"][0]))
            if n.endswith(".plot")]


def wait_for(what, done, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        got = done()
        if got:
            return got
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def test_a_new_plot_is_copied_the_moment_its_check_passes(ssh_fleet, tmp_path, k18_plots):
    fleet = ssh_fleet(n_plotters=1, n_harvesters=1)
    plots = give_plots(fleet, k18_plots, per_plotter=2, proven=False)
    inv = fleet.write_inventory(tmp_path / "inv.yaml")        # nothing tuned
    srcs = dst_plots(fleet)
    first = archive_pass(inv).text
    for src in srcs:                    # one pass begins both checks, one runner
        assert f"proof check: plotter1:{os.path.basename(src)}" in first, first
    # the plot whose check begins now is handed over with it; the one behind
    # it in the check runner waits for its result
    handed = [x for x in first.splitlines() if x.startswith("transfer: ")]
    assert len(handed) == 1 and "sent once its proof check passes" in handed[0], first
    [src] = [s for s in srcs if os.path.basename(s) in handed[0]]
    # no pass now: its copy begins after its check passed, without one
    rec = wait_for(f"{src} copied", lambda: (
        (statefile.read(transfer_state_path(src)) or {}).get("status") == "copied"
        and statefile.read(transfer_state_path(src))))
    check = checks.read(src)
    assert check["status"] == "passed", check
    assert rec["started_at"] >= check["finished_at"], (rec, check)
    archive_until(inv, fleet, plots)
    assert_all_archived(fleet, plots)


def check_runner(src):
    """The live process checking `src` (its check record names it)."""
    rec = checks.read(src) or {}
    if rec.get("status") != "running":
        return None
    try:
        return psutil.Process(rec["pid"])
    except (psutil.Error, KeyError, TypeError):
        return None


def test_a_check_that_dies_lets_nothing_go_and_the_plot_is_checked_again(
        ssh_fleet, tmp_path, k18_plots):
    fleet = ssh_fleet(n_plotters=1, n_harvesters=1)
    plots = give_plots(fleet, k18_plots, per_plotter=1, proven=False)
    [src] = dst_plots(fleet)
    name = os.path.basename(src)
    # a check long enough to be killed at work (3000 challenges: seconds at k18)
    slow = fleet.write_inventory(tmp_path / "slow.yaml", check_challenges=3000)
    with FarmWatch(farm_drives(fleet)) as seen:
        first = archive_pass(slow).text
        assert "sent once its proof check passes" in first, first
        runner = wait_for("its check running", lambda: check_runner(src), timeout=20)
        assert os.path.exists(transfer_state_path(src))     # queued behind its check
        runner.kill()               # the check ends without a result
        # the transfer runner gives the plot back: its record goes, its queue ends
        wait_for("the plot handed back", lambda: not os.path.exists(transfer_state_path(src)),
                 timeout=10)
        assert checks.read(src)["status"] == "interrupted"
    # while its check was at work and after it died, not a byte of it reached the farm
    assert not [n for n in seen.names if name in n], seen.names
    assert not partials(fleet) and os.path.exists(src)
    # the next passes check it again (nothing tuned now) and send it
    inv = fleet.write_inventory(tmp_path / "inv.yaml")
    outs = archive_until(inv, fleet, plots)
    assert "its last check was interrupted" in "\n".join(outs), outs
    assert_all_archived(fleet, plots)


def test_a_bad_plot_handed_over_with_its_check_never_reaches_the_farm(
        ssh_fleet, tmp_path, k18_plots):
    fleet = ssh_fleet(n_plotters=1, n_harvesters=1)
    [src] = k18_plots.copy_to(fleet.hosts["plotter1"].dirs["dst"][0], 1)
    corrupt_middle(src)             # header, name and size intact: only the prover tells
    name = src.name
    inv = fleet.write_inventory(tmp_path / "inv.yaml")        # nothing tuned
    with FarmWatch(farm_drives(fleet)) as seen:
        first = archive_pass(inv).text
        [line] = [x for x in first.splitlines() if x.startswith("transfer: ")]
        assert name in line and "sent once its proof check passes" in line, first
        # the runner gives it back when its check fails: its record goes
        wait_for("the plot handed back", lambda: not os.path.exists(transfer_state_path(
            str(src))), timeout=30)
        assert checks.read(str(src))["status"] == "failed"
        text = archive_pass(inv).text
    assert f"plotter1: {name} failed its proof check and waits in" in text, text
    assert not [n for n in seen.names if name in n], seen.names
    assert not partials(fleet) and not any(os.listdir(d) for d in farm_drives(fleet))
    assert os.path.exists(os.path.join(os.path.dirname(src), "quarantine", name))
