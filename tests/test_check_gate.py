"""A plot handed over with its proof check: the controller gives a plot whose
check this pass starts to a drive's queue at once (core/archiver.py
`checking`), and the plotter's runner copies it only once its own check
record lets it (agent/launch/transfer.py gate).  The gate's rules run here on
real files, real check records and real processes in this run's HOME; the
runner itself, over real sshd and rsync, in test_check_gate_e2e.py."""
import os
import subprocess
import time

import psutil

from agent import statefile
from agent.launch import check, transfer
from agent.ops.transfers import transfer_state_path
from orchestrator.core.archiver import archive
from orchestrator.core.checker import checked_now, checks
from orchestrator.core.plan import archive_plan
from orchestrator.core.state import Check
from tests.agent_helpers import host_dirs, wait_for
from tests.factories import (GiB, fleet, harvester, host_state, inventory, partial,
                             plot_file, plotter)
from tests.test_replot_plan import PLOT, farm_dir, old, setup


# --- the plan: who is handed over with its check ---------------------------------

def test_a_plot_whose_check_starts_this_pass_is_handed_over_on_that_condition():
    p, h = plotter("p1"), harvester("h1")
    new = plot_file(n=1, check=None)
    st = fleet(host_state(p, plots=(new,)), host_state(h))
    d = archive(st, inventory(p, h), checking=frozenset({("p1", new.path)}))
    [t] = d.transfers
    assert t.plot == new.path and "sent once its proof check passes" in t.reason
    # the same plot, its check not started by this pass: it waits for it
    assert not archive(st, inventory(p, h)).transfers


def test_a_plot_checked_in_an_earlier_pass_waits_for_its_result():
    # a check already running (another pass started it): not handed over
    # again and again, each time only to be given back after GATE_WAIT_S
    p, h = plotter("p1"), harvester("h1")
    new = plot_file(n=1, check=Check(status="running", pid=77, started_at=1.0))
    st = fleet(host_state(p, plots=(new,)), host_state(h))
    assert not archive(st, inventory(p, h), checking=frozenset()).transfers


def test_no_old_plot_is_deleted_for_a_plot_still_being_checked():
    # a full farm with an old plot a replot rule matches: the plot that
    # passed gets its room, the one still being checked does not
    dirs = [farm_dir("/f0", 10 * GiB, [old("/f0/a.plot", 120 * GiB)])]
    state, hosts, _ = setup(dirs)
    [t] = archive(state, hosts).transfers
    assert [x.path for x in t.deletions] == ["/f0/a.plot"]
    new = plot_file("/d0", n=1, size=PLOT, check=None)
    state, hosts, _ = setup(dirs, plots=(new,))
    d = archive(state, hosts, checking=frozenset({("p1", new.path)}))
    assert d.transfers == ()
    assert any("nothing is deleted for a plot whose proof check did not pass" in w.reason
               for w in d.waits), d.waits


def test_a_whole_copy_of_a_plot_still_being_checked_is_not_promoted():
    # its copy is there, whole: confirmed only once its check passed
    p, h = plotter("p1"), harvester("h1", farm_dirs=("/f0",))
    new = plot_file(n=1, check=None)
    st = fleet(host_state(p, plots=(new,)),
               host_state(h, partials=(partial(new, "/f0", new.size_bytes),)))
    d = archive(st, inventory(p, h), checking=frozenset({("p1", new.path)}))
    assert not d.promotes
    proven = plot_file(n=1)
    st = fleet(host_state(p, plots=(proven,)),
               host_state(h, partials=(partial(proven, "/f0", proven.size_bytes),)))
    assert archive(st, inventory(p, h)).promotes


# --- the runner's gate: real files, records and processes ------------------------

def a_plot(tmp_path, i=0):
    path = tmp_path / ("plot-k18-2026-12-05-16-27-%064x.plot" % i)
    path.write_bytes(os.urandom(4096))
    return str(path)


def gated(path):
    return {"plot": path, "after_check": True}


def checking_in(path, proc):
    """The record a check runner (the real process `proc`) writes as it begins."""
    check.write_record(path, status="running", pid=proc.pid,
                       started_at=psutil.Process(proc.pid).create_time())


def test_a_plot_goes_only_once_its_check_lets_it(tmp_path):
    path = a_plot(tmp_path)
    assert transfer.gate(gated(path)) == "no"           # never checked
    assert transfer.gate({"plot": path}) == "go"        # not handed over on that condition
    runner = subprocess.Popen(["sleep", "60"])
    try:
        checking_in(path, runner)
        assert transfer.gate(gated(path)) == "wait"
        for status, verdict in (("passed", "go"), ("not_checked", "go"), ("released", "go"),
                                ("failed", "no")):
            check.write_record(path, status=status)
            assert transfer.gate(gated(path)) == verdict, status
    finally:
        runner.kill()
        runner.wait()


def test_a_check_whose_runner_died_lets_nothing_go(tmp_path):
    path = a_plot(tmp_path)
    runner = subprocess.Popen(["sleep", "60"])
    checking_in(path, runner)
    assert transfer.gate(gated(path)) == "wait"
    runner.kill()
    runner.wait()
    assert transfer.gate(gated(path)) == "no"       # interrupted: checked again, then sent


def test_a_plot_changed_since_it_passed_does_not_go(tmp_path):
    path = a_plot(tmp_path)
    check.write_record(path, status="passed")
    assert transfer.gate(gated(path)) == "go"
    with open(path, "r+b") as f:        # same size, other bytes: another file now
        f.write(os.urandom(16))
    os.utime(path, (time.time() + 5, time.time() + 5))
    assert transfer.gate(gated(path)) == "no"
    os.remove(path)
    assert transfer.gate(gated(path)) == "no"


def test_the_wait_for_a_check_is_bounded(tmp_path):
    # a runner that waits writes nothing, and writing is what keeps its
    # drive claim alive: past GATE_WAIT_S the plot goes back to the controller
    path = a_plot(tmp_path)
    runner = subprocess.Popen(["sleep", "60"])
    try:
        checking_in(path, runner)
        waiting, now = {}, time.time()
        assert transfer.gate(gated(path), waiting, now) == "wait"
        assert transfer.gate(gated(path), waiting, now + transfer.GATE_WAIT_S / 2) == "wait"
        assert transfer.gate(gated(path), waiting, now + transfer.GATE_WAIT_S + 1) == "no"
        assert transfer.GATE_WAIT_S < 120 / 2      # well inside a claim's CLAIM_S
    finally:
        runner.kill()
        runner.wait()


# --- the agent: a runner's queue, through `python -m agent serve` ----------------

def dst_plot(d, i, k18_plots, tmp_path):
    [src] = k18_plots.copy_to(tmp_path / f"made{i}", 1) if i == 0 else \
        k18_plots.copy_to(tmp_path / f"made{i}", i + 1)[i:]
    path = os.path.join(d["dst"], src.name)
    os.rename(src, path)
    return path


def test_a_runner_sends_the_plot_whose_check_passed_past_one_still_checked(
        agent, tmp_path, k18_plots):
    d, config = host_dirs(tmp_path / "host")
    first, second = (dst_plot(d, i, k18_plots, tmp_path) for i in (0, 1))
    checker = subprocess.Popen(["sleep", "60"])       # the first one's check, at work
    try:
        checking_in(first, checker)
        check.write_record(second, status="passed")
        r = agent.ok("start_transfer", config=config, plot=first, queue=[second],
                     to_host="self", to_dir=d["farm"], mode="local", farm_dirs=[d["farm"]],
                     after_check=True)
        runner = psutil.Process(r["pid"])
        name = os.path.basename
        wait_for(lambda: name(second) in os.listdir(d["farm"]) or
                 name(second) + ".plotfleet-tmp" in os.listdir(d["farm"]), 30)
        wait_for(lambda: (statefile.read(transfer_state_path(second)) or {}).get("status")
                 == "copied", 30)
        assert [n for n in os.listdir(d["farm"]) if name(first) in n] == []
        assert runner.is_running()          # still waiting for the first one's check
        check.write_record(first, status="failed", error="Invalid size for deltas: 47187")
        # it gives the plot back, and ends (a zombie until its agent reaps it)
        wait_for(lambda: not os.path.exists(transfer_state_path(first)), 10)
        wait_for(lambda: not runner.is_running() or runner.status() == psutil.STATUS_ZOMBIE, 10)
        assert [n for n in os.listdir(d["farm"]) if name(first) in n] == []
    finally:
        checker.kill()
        checker.wait()


def test_a_runner_from_before_gates_is_given_no_plot_still_being_checked(
        agent, tmp_path, k18_plots):
    # an upgrade while an older agent's runner works through its queue: that
    # runner copies whatever it is given, so a plot whose check is not over
    # does not join it
    d, config = host_dirs(tmp_path / "host")
    plot = dst_plot(d, 0, k18_plots, tmp_path)
    old_runner = subprocess.Popen(["sleep", "60"])
    checker = subprocess.Popen(["sleep", "60"])
    try:
        started = psutil.Process(old_runner.pid).create_time()
        os.makedirs(statefile.transfers_dir(), exist_ok=True)
        queue = os.path.join(statefile.transfers_dir(), "q-1-old" + transfer.QUEUE_SUFFIX)
        statefile.write(queue, {"dest": ["local", "self", d["farm"]], "pid": old_runner.pid,
                                "started_at": started, "items": []})
        checking_in(plot, checker)
        r = agent.raw("start_transfer", config=config, plot=plot, to_host="self",
                      to_dir=d["farm"], mode="local", farm_dirs=[d["farm"]], after_check=True)
        assert not r["ok"] and r["code"] == "busy" and "predates" in r["error"], r
        assert statefile.read(queue)["items"] == []
        check.write_record(plot, status="passed")      # once it passed, it may join
        r = agent.ok("start_transfer", config=config, plot=plot, to_host="self",
                     to_dir=d["farm"], mode="local", farm_dirs=[d["farm"]], after_check=True)
        assert r["joined"] and len(statefile.read(queue)["items"]) == 1
    finally:
        for p in (old_runner, checker):
            p.kill()
            p.wait()


def test_only_the_first_plot_of_each_check_runner_is_handed_over_with_its_check():
    # three new plots, one check runner (check_parallel 1): the first one's
    # check begins now; the others wait their turn in it, and for their
    # result, before a drive is held for them
    p, h = plotter("p1", k=18), harvester("h1", farm_dirs=("/f0", "/f1", "/f2"))
    new = tuple(plot_file(n=i, k=18, size=2_000_000, check=None, mtime=1000.0 + i)
                for i in range(3))      # small: a queue would take them all
    st = fleet(host_state(p, plots=new), host_state(h))
    proofs = checks(st, inventory(p, h))
    assert [s.plot for s in proofs.starts] == [x.path for x in new]
    assert {s.runner for s in proofs.starts} == {0}
    d = archive_plan(st, inventory(p, h))
    assert [t.plot for t in d.transfers] == [new[0].path]
    # two runners (check_parallel 2): each one's first may go (as the
    # plotter's lanes let it), the plot behind them in a runner never
    p2 = plotter("p1", k=18, check_parallel=2)
    st = fleet(host_state(p2, plots=new), host_state(h))
    proofs = checks(st, inventory(p2, h))
    assert checked_now(proofs.starts) == {("p1", new[0].path), ("p1", new[1].path)}
    d = archive_plan(st, inventory(p2, h))
    assert new[0].path in [t.plot for t in d.transfers]
    assert new[2].path not in [t.plot for t in d.transfers]
