"""Jobs that make many plots (count): the command line each plotter gets, the
scheduler keeping that many running, and --plots N counting plots."""
from orchestrator.core.plotcmd import build_argv
from orchestrator.core.scheduler import schedule
from orchestrator.plotloop import RunTracker
from tests.factories import (NOW, fleet, harvester, host_state, inventory, job, plot_file,
                             plotter, replace, transfer)
from tests.test_failures import failed

KEYS = dict(farmer_key="ab" * 48, pool_key="cd" * 48)


def n_of(argv):
    return argv[argv.index("-n") + 1] if "-n" in argv else None


def test_count_is_the_plotters_own_n_and_zero_is_without_end():
    cases = [("chia", {}), ("madmax", KEYS), ("bladebit", KEYS), ("chiapos", {})]
    one = [n_of(build_argv(plotter(plotter=p, k=32, **kw), "/t0", "/d0")) for p, kw in cases]
    assert one == ["1", "1", "1", None]             # as before: one plot per job
    many = [n_of(build_argv(plotter(plotter=p, k=32, count=5, **kw), "/t0", "/d0"))
            for p, kw in cases]
    assert many == ["5", "5", "5", "5"]
    # no end: madmax's -1; chia and bladebit have no such value (a huge -n, as
    # farmers pass); the chiapos launcher takes 0
    endless = [n_of(build_argv(plotter(plotter=p, k=32, count=0, **kw), "/t0", "/d0"))
               for p, kw in cases]
    assert endless == ["1000000", "-1", "1000000", "0"]


def test_an_endless_plotter_keeps_global_max_jobs_running_zero_meaning_one():
    p = plotter(count=0, global_stagger_m=0, global_max_jobs=0)
    running = host_state(p, jobs=[job(count=0, plots_done=7, phase=(1, 2))])
    d = schedule(fleet(running), inventory(p), NOW)
    assert d.starts == () and [w.reason for w in d.waits] == ["max jobs 1/1"]
    # it died: started again...
    (s,) = schedule(fleet(host_state(p)), inventory(p), NOW).starts
    assert n_of(s.argv) == "1000000"                  # chia: a huge -n
    # ...until its failures back it off
    backed = replace(host_state(p), failures=failed(2))
    (w,) = schedule(fleet(backed), inventory(p), NOW).waits
    assert w.blocked and "backed off" in w.reason
    two = plotter(count=0, global_stagger_m=0, global_max_jobs=2, tmpdir_stagger_phase_limit=9)
    assert len(schedule(fleet(host_state(two, jobs=[job(count=0)])), inventory(two),
                        NOW).starts) == 1


def test_plots_n_counts_this_runs_plots_until_they_are_archived():
    k = 25
    p, h = plotter(count=0, k=k), harvester()
    hosts = inventory(p, h)
    old = plot_file(k=k, n=1)
    t = RunTracker(limit=2, endless=True)
    runs = lambda *plots, transfers=(): fleet(
        host_state(p, jobs=[job(count=0, k=k)], plots=plots, transfers=transfers), host_state(h))
    t.learn(runs(old), None, hosts)                 # there before the run: not counted
    new1, new2 = plot_file(k=k, n=2), plot_file(k=k, n=3)
    t.learn(runs(old, new1), None, hosts)
    assert t.remaining is None and t.verdict(runs(old, new1), (), [p, h], True) is None
    t.learn(runs(old, new2, transfers=[transfer(new2)]), None, hosts)    # new1 archived
    assert t.made == {new1.plot_id, new2.plot_id} and t.remaining == 0
    # new2 still on its way: not yet; archived: done, the job still running
    assert t.verdict(runs(old, new2, transfers=[transfer(new2)]), (), [p, h], True) is None
    assert t.verdict(runs(old), (), [p, h], True).code == 0


def test_a_job_suspended_for_room_says_why_and_is_not_stalled():
    from rich.console import Console
    from orchestrator.ui import views
    from tests.test_alerts import Passes
    p = plotter(count=0)
    why = "no room in /d0: 1000 bytes free, its plot needs 4849664 more"
    paused = job(pid=7, count=0, plots_done=4, phase=(5, 3), state="suspended", stalled=True,
                 log_idle_s=7200.0, paused=why)
    assert Passes(inventory(p)).run(host_state(p, jobs=[paused])) == ([], [])
    console = Console(width=250, record=True)
    console.print(views.jobs_table(fleet(host_state(p, jobs=[paused]))))
    text = console.export_text()
    assert f"suspended: {why}" in text and "5:3 #5/∞" in text and "stalled" not in text
