"""The application log (orchestrator.unattended.applog.py) and `plotfleet history`.

Real files, PassResults built from the dataclasses (tests/factories.py), and
the real command line reading back what AppLog wrote."""
import io
import json
import re
import os
import time

import pytest
from rich.console import Console

from orchestrator.config.controller import ControllerConfig
from orchestrator.core.decisions import Wait
from orchestrator.core.events import Event
from orchestrator.plotloop import PassResult
from orchestrator.unattended.applog import AppLog, files, read
from orchestrator.ui import eventline
from orchestrator.ui.dirtables import HostKeys
from orchestrator.ui.history import history_lines
from tests import factories as f
from tests.cli import plotfleet

P1, P2, H1 = f.plotter("p1"), f.plotter("p2"), f.harvester("h1")


def result(events=(), waits=(), now=f.NOW, p1_clock=f.NOW + 100.0):
    state = f.fleet(f.host_state(P1, host_time=p1_clock), f.host_state(P2, host_time=now - 7.0),
                    f.down(H1), now=now)
    return PassResult(state=state, events=tuple(events), waits=tuple(waits),
                      plotter_waits=(), backpressure=None)


def started(host="p1", n=0):
    return Event("job_started", host, "/t0", f"{host}: started job {n} in /t0")


def config(tmp_path, **kw):
    return ControllerConfig(app_log=str(tmp_path / "state" / "plotfleet.log"), **kw)


def lines(path):
    with open(path) as fh:
        return [json.loads(line) for line in fh]


def test_one_line_per_event_with_both_clocks(tmp_path):
    cfg = config(tmp_path)
    events = [started(), Event("transfer_failed", "h1", "x.plot", "h1: rsync: boom", True),
              started("p2"), Event("copy_promoted", "nowhere", "y.plot", "promoted y")]
    with AppLog(cfg) as log:        # its dir is made
        assert log.record(result(events), now=f.NOW + 5) == 4
    got = lines(cfg.app_log)
    assert got == [
        {"at": f.NOW + 5, "host_time": f.NOW + 105, "kind": "job_started", "host": "p1",
         "subject": "/t0", "detail": "p1: started job 0 in /t0", "failed": False},
        {"at": f.NOW + 5, "host_time": None, "kind": "transfer_failed", "host": "h1",
         "subject": "x.plot", "detail": "h1: rsync: boom", "failed": True},
        {"at": f.NOW + 5, "host_time": f.NOW - 2, "kind": "job_started", "host": "p2",
         "subject": "/t0", "detail": "p2: started job 0 in /t0", "failed": False},
        {"at": f.NOW + 5, "host_time": None, "kind": "copy_promoted", "host": "nowhere",
         "subject": "y.plot", "detail": "promoted y", "failed": False},
    ]
    assert read(cfg.app_log) == got


def test_the_controller_clock_is_now_when_not_given(tmp_path):
    cfg = config(tmp_path)
    before = time.time()
    with AppLog(cfg) as log:
        log.record(result([started()], now=before - 1.0))
    (rec,) = lines(cfg.app_log)
    assert before - 0.001 <= rec["at"] <= time.time() + 0.01     # kept to the millisecond
    assert rec["host_time"] == pytest.approx(f.NOW + 100.0 + rec["at"] - (before - 1.0), abs=0.01)


def test_a_blocked_wait_is_logged_when_it_starts_or_changes_not_every_pass(tmp_path):
    cfg = config(tmp_path)
    backed = Wait("p1", "plotter", "backed off: 2 failed jobs in a row", blocked=True)
    other = Wait("p2", "x.plot", "transfer running", blocked=False)      # never logged
    with AppLog(cfg) as log:
        log.record(result(waits=[backed, other]), now=f.NOW + 1)
        log.record(result(waits=[backed, other]), now=f.NOW + 2)          # same: not again
        log.record(result([started("p2")], waits=[backed]), now=f.NOW + 3)
        worse = Wait("p1", "plotter", "backed off: 3 failed jobs in a row", blocked=True)
        log.record(result(waits=[worse]), now=f.NOW + 4)                  # changed
        log.record(result(waits=[worse]), now=f.NOW + 5)
        log.record(result(), now=f.NOW + 6)                               # it ended
        log.record(result(waits=[worse]), now=f.NOW + 7)                  # back again
    got = [(r["at"] - f.NOW, r["kind"], r["host"], r["detail"]) for r in lines(cfg.app_log)]
    assert got == [
        (1, "blocked", "p1", "p1: plotter: waiting: backed off: 2 failed jobs in a row"),
        (3, "job_started", "p2", "p2: started job 0 in /t0"),
        (4, "blocked", "p1", "p1: plotter: waiting: backed off: 3 failed jobs in a row"),
        (7, "blocked", "p1", "p1: plotter: waiting: backed off: 3 failed jobs in a row"),
    ]


def test_an_unreachable_hosts_block_is_not_logged_again_when_it_returns(tmp_path):
    cfg = config(tmp_path)
    block = Wait("h1", "plotter", "no tmp dir could ever hold a k32 job", blocked=True)
    with AppLog(cfg) as log:
        log.record(result(waits=[block]), now=f.NOW + 1)     # h1 is down in these states
        log.record(result(), now=f.NOW + 2)
        log.record(result(waits=[block]), now=f.NOW + 3)
    assert [r["at"] - f.NOW for r in lines(cfg.app_log)] == [1]


def test_it_rotates_at_the_size_limit(tmp_path):
    cfg = config(tmp_path, app_log_max_bytes=4096, app_log_backups=3)
    with AppLog(cfg) as log:
        for n in range(300):
            log.record(result([started(n=n)]), now=f.NOW + n)
    names = files(cfg.app_log)
    assert [os.path.basename(p) for p in names] == [
        "plotfleet.log.3", "plotfleet.log.2", "plotfleet.log.1", "plotfleet.log"]
    assert not os.path.exists(cfg.app_log + ".4")
    sizes = [os.path.getsize(p) for p in names]
    assert all(s <= 4096 for s in sizes) and all(s > 3500 for s in sizes[:-1]), sizes
    kept = read(cfg.app_log)        # oldest first: the newest records, in order, none lost
    ns = [int(r["at"] - f.NOW) for r in kept]
    assert ns == list(range(300 - len(ns), 300)) and len(ns) > 60
    assert sum(len(lines(p)) for p in names) == len(ns)


def test_with_no_backups_the_file_is_emptied_at_the_limit(tmp_path):
    cfg = config(tmp_path, app_log_max_bytes=4096, app_log_backups=0)
    with AppLog(cfg) as log:
        for n in range(200):
            log.record(result([started(n=n)]), now=f.NOW + n)
    assert files(cfg.app_log) == [cfg.app_log]
    assert os.path.getsize(cfg.app_log) <= 4096
    assert int(lines(cfg.app_log)[-1]["at"] - f.NOW) == 199


@pytest.mark.parametrize("where", ["under_a_file", "disk_full"])
def test_a_write_that_fails_never_raises_and_is_said_once(tmp_path, where):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    path = str(blocker / "state" / "plotfleet.log") if where == "under_a_file" else "/dev/full"
    if where == "disk_full" and not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    err = io.StringIO()
    log = AppLog(ControllerConfig(app_log=path), stderr=err)
    for n in range(3):
        assert log.record(result([started(n=n)], waits=[
            Wait("p1", "plotter", f"blocked {n}", blocked=True)]), now=f.NOW + n) == 0
    log.close()
    said = err.getvalue().splitlines()
    assert len(said) == 1 and said[0].startswith(f"plotfleet: app log {path}: cannot write ("), said
    assert said[0].endswith("); plotting carries on without it")
    assert log.failures >= 3


def test_a_note_is_one_line_beside_the_events(tmp_path):
    cfg = config(tmp_path)
    with AppLog(cfg) as log:
        log.record(result([started()]), now=f.NOW)
        assert log.note("notify_failed", "notify: json://127.0.0.1:9/x: connection refused",
                        failed=True, now=f.NOW + 1) == 1
    assert lines(cfg.app_log)[1] == {
        "at": f.NOW + 1, "host_time": None, "kind": "notify_failed", "host": "", "subject": "",
        "detail": "notify: json://127.0.0.1:9/x: connection refused", "failed": True}


def test_the_log_off_writes_nothing(tmp_path):
    log = AppLog(ControllerConfig(app_log=None))
    assert log.record(result([started()])) == 0
    log.close()


def test_read_skips_what_is_not_a_record_and_filters(tmp_path):
    cfg = config(tmp_path)
    with AppLog(cfg) as log:
        log.record(result([started("p1", 0), started("p2", 1)]), now=f.NOW)
        log.record(result([started("p1", 2)]), now=f.NOW + 3600)
    with open(cfg.app_log, "a") as fh:
        fh.write("not json\n[1, 2]\n{\"no\": \"at\"}\n{\"at\": 1, \"kind\": \"job_st")  # torn
    assert [r["detail"] for r in read(cfg.app_log)] == [
        "p1: started job 0 in /t0", "p2: started job 1 in /t0", "p1: started job 2 in /t0"]
    assert [r["detail"] for r in read(cfg.app_log, since=f.NOW + 1)] == ["p1: started job 2 in /t0"]
    assert len(read(cfg.app_log, host="p1")) == 2
    assert len(read(cfg.app_log, host="p*")) == 3
    assert read(cfg.app_log, host="p") == []
    assert read(str(tmp_path / "missing.log")) == []


def test_history_lines_are_plot_alls_lines_dated_failed_in_red():
    recs = [{"at": f.NOW, "kind": "job_started", "host": "p1", "subject": "/t0/l.log",
             "detail": "p1: tmp[/x] ok", "failed": False, "dir": "/t/tmp[/x]", "to_dir": "/d",
             "what": "chiapos k18", "pid": 12},
            {"at": f.NOW + 1, "kind": "transfer_failed", "host": "h1", "detail": "h1: boom",
             "failed": True}]
    places = eventline.Places({"p1": HostKeys(f.plotter("p1", tmp_dirs=("/t/tmp[/x]",)), None)})
    lines = history_lines(recs, places, eventline.ASCII)
    day = [time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(f.NOW + i)) for i in (0, 1)]
    assert [t.plain for t in lines] == [
        f"{day[0]} > p1 chiapos k18 x] -> d (pid 12)",           # not markup
        f"{day[1]} x h1 transfer failed: boom"]
    assert [t.style for t in lines] == ["", "red"]
    out = io.StringIO()
    Console(file=out, width=200).print(lines[0])
    assert "x] -> d" in out.getvalue()


# ---- plotfleet history: the real CLI ------------------------------------------

@pytest.fixture
def logged(tmp_path):
    """An inventory whose app_log AppLog filled: 3 days old, 1 hour old, just now."""
    inv = tmp_path / "inv.yaml"
    # its hosts: p1, p2, h1; another inventory's controller logs `other` to the same file
    inv.write_text("all:\n  vars: {app_log: state/plotfleet.log, app_log_max_bytes: 4096}\n"
                   "  children:\n    plotters:\n      hosts:\n"
                   + "".join(f"        {p}: {{tmp_dirs: [/t0], dst_dirs: [/d0], log_dir: /l}}\n"
                             for p in ("p1", "p2"))
                   + "    harvesters:\n      hosts:\n        h1: {farm_dirs: [/f1]}\n")
    cfg = ControllerConfig(app_log=str(tmp_path / "state" / "plotfleet.log"),
                           app_log_max_bytes=4096)
    now = time.time()
    with AppLog(cfg) as log:
        log.record(result([started("p1", 0)]), now=now - 3 * 86400)
        for n in range(40):        # enough to rotate: history reads the backups too
            log.record(result([started("p2", n)]), now=now - 3600 + n)
        log.record(result([started("other", 99)]), now=now - 1)
        log.record(result([Event("transfer_failed", "h1", "z.plot", "h1: disk gone", True)],
                          waits=[Wait("p1", "plotter", "backed off", blocked=True)]), now=now)
    assert len(files(cfg.app_log)) > 1
    return inv, cfg


def test_history_json_is_every_record_oldest_first(logged):
    inv, cfg = logged
    r = plotfleet("history", "--inventory", inv, "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got == [r for r in read(cfg.app_log) if r["host"] != "other"]
    assert [g["kind"] for g in got] == ["job_started"] * 41 + ["transfer_failed", "blocked"]
    assert got[0]["detail"] == "p1: started job 0 in /t0"


def test_history_since_and_host(logged):
    inv, _ = logged
    def kinds(*args):
        r = plotfleet("history", "--inventory", inv, "--json", *args)
        assert r.returncode == 0, r.stderr
        return [(g["host"], g["kind"]) for g in json.loads(r.stdout)]
    assert len(kinds("--since", "1d")) == 42
    assert kinds("--since", "30m") == [("h1", "transfer_failed"), ("p1", "blocked")]
    assert kinds("--since", "600") == kinds("--since", "10m") == kinds("--since", "30m")
    assert len(kinds("--since", "1w")) == 43
    assert kinds("--host", "p1") == [("p1", "job_started"), ("p1", "blocked")]
    assert kinds("--host", "p1", "--since", "2h") == [("p1", "blocked")]
    assert len(kinds("--host", "p*")) == 42
    assert kinds("--host", "[h]?") == [("h1", "transfer_failed")]


def test_history_prints_its_hosts_lines_newest_last(logged):
    inv, _ = logged
    r = plotfleet("history", "--inventory", inv, "--since", "2h", "--host", "h1")
    assert r.returncode == 0, r.stderr
    [line] = [x for x in r.stdout.splitlines() if not x.startswith("key ")]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (✗|x) h1 z.plot transfer failed: "
                        r"disk gone", line), r.stdout
    r = plotfleet("history", "--inventory", inv, "-n", "3")
    lines = [x for x in r.stdout.splitlines() if not x.startswith("key ")]
    assert lines[0] == "the newest 3 of 43 events (-n 0: all)", r.stdout
    assert [x.split(" ", 3)[3] for x in lines[1:]] == [
        "p2 t0 job started · started job 39 in /t0",     # an event logged without its facts
        "h1 z.plot transfer failed: disk gone",
        "p1 plotter blocked · backed off"], r.stdout      # newest last
    r = plotfleet("history", "--inventory", inv, "-n", "0")
    assert " other " not in r.stdout and len(r.stdout.splitlines()) == 43     # (no dir key here)
    r = plotfleet("history", "--inventory", inv, "--json", "-n", "2")
    assert [g["kind"] for g in json.loads(r.stdout)] == ["transfer_failed", "blocked"]


@pytest.mark.parametrize("bad", ["1x", "yesterday", "-1d", "1 d h", ""])
def test_a_bad_since_is_one_line_exit_2(logged, bad):
    inv, _ = logged
    r = plotfleet("history", "--inventory", inv, "--since", bad)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr == (f"plotfleet: --since must be like 30m, 2h, 1d, 1w or a number of"
                        f" seconds, got {bad}\n")


def test_history_without_a_log_says_so(tmp_path):
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  vars: {app_log: nothing/here.log}\n")
    r = plotfleet("history", "--inventory", inv)
    assert (r.returncode, r.stdout) == (0, f"no application log at {tmp_path}/nothing/here.log yet\n")
    r = plotfleet("history", "--inventory", inv, "--json")     # stdout stays JSON
    assert (r.returncode, r.stdout) == (0, "[]\n")
    assert r.stderr == f"no application log at {tmp_path}/nothing/here.log yet\n"
