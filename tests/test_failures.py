"""Back-off, clean-up and the end of a `--plots N` run: pure decisions over
what the hosts reported (the e2e tests make real jobs fail)."""
import time

from orchestrator.core.failures import cleanups
from orchestrator.core.state import DeadJob, Failures
from orchestrator.plotloop import RunTracker
from orchestrator.core.scheduler import schedule
from tests.factories import (NOW, down, fleet, host_state, inventory, job, plotter, replace)

ERR = "InvalidValueException: Triggering bucket too early"


def failed(count, ago_s=60.0, error=ERR):
    return Failures(count=count, last_error=error, last_at=NOW - ago_s, last_log="/log/x.log")


def waits(state, hosts, now=NOW):
    return {w.host: w for w in schedule(state, hosts, now).waits}


def clock(t):
    return time.strftime("%H:%M:%S", time.localtime(t))


def test_back_off_after_max_failures_for_failure_backoff_m():
    p = plotter(global_stagger_m=0, max_failures=2, failure_backoff_m=60)
    hs = host_state(p)
    # one failure in a row: a job starts
    d = schedule(fleet(replace(hs, failures=failed(1))), inventory(p), NOW)
    assert len(d.starts) == 1
    # two: backed off, saying how many, the error and when the next try comes
    w = waits(fleet(replace(hs, failures=failed(2, ago_s=600))), inventory(p))["p1"]
    assert w.blocked and w.reason.startswith(
        f"backed off: 2 failed jobs in a row (max_failures 2), last error: {ERR}; "
        f"next try at {clock(NOW + 50 * 60)}")
    assert w.reason.endswith("or now with `plotfleet reset p1`")
    # the back-off ends failure_backoff_m after the last failure (host clock)
    d = schedule(fleet(replace(hs, failures=failed(2, ago_s=3601))), inventory(p), NOW)
    assert len(d.starts) == 1
    # a plotter that tolerates more
    p5 = replace(p, max_failures=5)
    assert len(schedule(fleet(replace(hs, failures=failed(4))), inventory(p5), NOW).starts) == 1


def test_back_off_uses_the_hosts_clock():
    p = plotter(global_stagger_m=0, failure_backoff_m=10)
    # the host's clock is an hour behind the laptop's: its failure was 5 min ago
    hs = host_state(p, host_time=NOW - 3600)
    hs = replace(hs, failures=Failures(count=2, last_error=None, last_at=NOW - 3600 - 300))
    w = waits(fleet(hs), inventory(p))["p1"]
    assert w.blocked and f"last error: none in its log; next try at {clock(NOW + 300)}" in w.reason


def test_a_plotter_where_no_job_could_ever_fit_is_blocked():
    p = plotter(global_stagger_m=0, k=32)
    hs = host_state(p)
    tiny = tuple(replace(d, total_bytes=10 << 30, free_bytes=10 << 30)
                 if d.kind == "tmp" else d for d in hs.dirs)
    w = waits(fleet(replace(hs, dirs=tiny)), inventory(p))["p1"]
    assert w.blocked and w.reason.startswith("no tmp dir could ever hold a k32 job")
    # a missing dir may be mounted again: an ordinary wait
    w = waits(fleet(host_state(p, errors={"/t0": "missing", "/t1": "missing"})),
              inventory(p))["p1"]
    assert not w.blocked


def dead(plot_id="ab" * 32, changed_ago=600.0, files=("/t0/x.tmp",), **fields):
    base = dict(plot_id=plot_id, log_file="/log/a.log", phase=(1, 2), tmp_files=files,
                tmp_bytes=4096 * len(files), ended_at=NOW - changed_ago, error=ERR,
                tmp_dir="/t0", tmp2_dir="/t0", changed_at=NOW - changed_ago)
    base.update(fields)
    return DeadJob(**base)


def test_clean_up_once_temp_files_rest_clean_after_m():
    p = plotter(clean_after_m=5)
    jobs = (dead(), dead(plot_id="cd" * 32, changed_ago=60, log_file="/log/b.log"),
            dead(plot_id="ef" * 32, files=()),
            dead(plot_id=None, files=()),
            dead(plot_id="12" * 32, tmp_dir=None, tmp2_dir=None, log_file="/log/c.log"))
    state = fleet(replace(host_state(p), dead=jobs))
    cleans, later = cleanups(state, inventory(p), lambda hs: hs.host_time)
    assert [(c.plot_id, c.log_file, c.files) for c in cleans] == [("ab" * 32, "/log/a.log", 1)]
    assert cleans[0].describe() == f"p1: failed job abababab, 1 temp files (4.0 KiB): {ERR}"
    assert [(w.subject, w.reason) for w in later] == [
        ("failed job cdcdcdcd", "clean-up once its temp files rest 5m (changed 1m ago)"),
        ("failed job 12121212", "its log names no tmp dir: clean it with `plotfleet kill`")]
    # an unreachable host: nothing decided for it
    assert cleanups(fleet(down(p)), inventory(p), lambda hs: NOW) == ((), ())


def tracker_after(started, limit, state=None):
    """A tracker that started these (host, log) jobs and has seen `state`."""
    t = RunTracker(limit=limit)
    t.started |= set(started)
    if state is not None:
        t.learn(state, fleet=None, hosts={})
    return t


def test_a_run_ends_once_its_jobs_failed_and_every_plotter_is_blocked():
    p1, p2 = plotter("p1", global_stagger_m=0), plotter("p2", global_stagger_m=0)
    hosts = inventory(p1, p2)
    gone = dead(log_file="/log/a.log", files=())
    s1 = replace(host_state(p1), dead=(gone,), failures=failed(2))
    state = fleet(s1, host_state(p2))
    t = tracker_after({("p1", "/log/a.log")}, limit=3, state=state)
    # p2 may still start a job: the run goes on
    assert t.verdict(state, schedule(state, hosts, NOW).waits, [p1, p2], False) is None
    # p2 unreachable: it may come back, the run goes on
    state = fleet(s1, down(p2))
    assert t.verdict(state, schedule(state, hosts, NOW).waits, [p1, p2], False) is None
    # both backed off: the run ends, 1, a line per failed job and per plotter
    state = fleet(s1, replace(host_state(p2), failures=failed(3)))
    end = t.verdict(state, schedule(state, hosts, NOW).waits, [p1, p2], False)
    assert end.code == 1 and end.lines[0] == f"p1: job abababab (a.log) failed: {ERR}"
    assert [line.split(":")[0] for line in end.lines[1:]] == ["p1", "p2"]
    assert all("backed off" in line for line in end.lines[1:])
    # a job of the run still running: not yet
    running = replace(s1, jobs=(job(log_file="/log/b.log", pid=7),))
    state = fleet(running, replace(host_state(p2), failures=failed(3)))
    t2 = tracker_after({("p1", "/log/a.log"), ("p1", "/log/b.log")}, limit=3, state=state)
    assert t2.verdict(state, schedule(state, hosts, NOW).waits, [p1, p2], False) is None


def test_a_run_whose_n_jobs_all_ended_reports_the_failed_ones():
    p = plotter(global_stagger_m=0)
    s = replace(host_state(p), dead=(dead(log_file="/log/a.log", files=()),))
    t = tracker_after({("p1", "/log/a.log"), ("p1", "/log/b.log")}, limit=2, state=fleet(s))
    t.plot_ids[("p1", "/log/b.log")] = "cd" * 32           # b made its plot
    end = t.verdict(fleet(s), (), [p], False)
    assert end.code == 1 and end.lines == (f"p1: job abababab (a.log) failed: {ERR}",)
    # once seen failed, it stays failed when its entry ages out (dead_keep_h)
    assert t.verdict(fleet(host_state(p)), (), [p], False) == end
    # with another host down the code says so
    other = plotter("p9")
    assert t.verdict(fleet(s, down(other)), (), [p], False).code == 4
    # none failed: done, 0
    ok = tracker_after({("p1", "/log/a.log"), ("p1", "/log/b.log")}, limit=2)
    ok.plot_ids.update({("p1", "/log/a.log"): "ab" * 32, ("p1", "/log/b.log"): "cd" * 32})
    assert ok.verdict(fleet(host_state(p)), (), [p], False).code == 0


def test_status_and_dashboard_show_the_error_and_the_back_off():
    from rich.console import Console
    from orchestrator.ui import dashboard
    from orchestrator.ui import views
    import time
    now = time.time()           # views read the clock: the host's is the laptop's here
    p = plotter(global_stagger_m=0)
    hs = replace(host_state(p, host_time=now),
                 dead=(dead(plot_id=None, phase=None, files=(), ended_at=now - 60),),
                 failures=Failures(count=2, last_error=ERR, last_at=now - 60))
    state, hosts = fleet(hs, now=now), inventory(p)
    for renderable in (views.status_view(state, hosts),
                       dashboard.render(state, hosts, [], width=220, height=40)):
        con = Console(record=True, width=220, height=40)
        con.print(renderable)
        text = con.export_text()
        flat = " ".join(text.split())
        assert "failed jobs" in text and "Triggering bucket too early" in text
        assert "p1: backed off: 2 failed jobs in a row" in flat
        # phase unknown (its log holds no line), ended a minute ago, its error
        assert any("? p1 ?:? 1:00 ago - InvalidValueException" in
                   " ".join(line.replace("│", " ").split()) for line in text.splitlines())
