"""Alerts end to end: a real apprise over real HTTP (a `json://` URL to a
server this test runs on 127.0.0.1), the state in a real file."""
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

pytest.importorskip("apprise")

from orchestrator.core.scheduler import schedule
from orchestrator.core.state import Failures
from orchestrator.plotloop import PassResult
from orchestrator.unattended.notify import Notifier, test as notify_test
from tests.factories import NOW, fleet, harvester, host_state, inventory, plotter, replace

ERR = "InvalidValueException: Triggering bucket too early"
CONFIG = SimpleNamespace(notify=(), alert_host_down_m=10.0, alert_farm_free_plots=0)


class Inbox:
    """An HTTP server taking apprise's JSON posts (status: what it answers)."""

    def __init__(self, port=0):
        inbox = self
        self.posts, self.status = [], 200

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                inbox.posts.append(json.loads(body))
                self.send_response(inbox.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"json://127.0.0.1:{self.port}/"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def take(self):
        out, self.posts = self.posts, []
        return out


@pytest.fixture
def inbox():
    box = Inbox()
    yield box
    box.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def a_pass(hosts, *states, now=NOW):
    st = fleet(*states, now=now)
    d = schedule(st, hosts, now)
    return PassResult(st, (), d.waits, d.waits, d.backpressure)


P = plotter(global_stagger_m=0, max_failures=2, failure_backoff_m=60)
HOSTS = inventory(P)


def failing():
    return replace(host_state(P), failures=Failures(count=2, last_error=ERR, last_at=NOW - 60))


def test_a_failing_plotter_one_alert_when_it_starts_one_resolved_when_it_clears(inbox, tmp_path):
    log = []
    n = Notifier([inbox.url], state_path=tmp_path / "alerts.json", log=log.append)
    assert n.after_pass(a_pass(HOSTS, host_state(P)), HOSTS, CONFIG) == []
    sent = n.after_pass(a_pass(HOSTS, failing()), HOSTS, CONFIG)
    assert [(d.ok, d.started, d.resolved) for d in sent] == [(True, 1, 0)]
    [post] = inbox.take()
    assert post["type"] == "failure"
    assert post["title"].startswith("plotfleet: p1: plotter backed off after 2 failed jobs")
    assert post["message"] == (f"ALERT p1: plotter backed off after 2 failed jobs in a row; "
                               f"last error: {ERR}")
    for _ in range(3):                   # still failing: nothing more
        assert n.after_pass(a_pass(HOSTS, failing()), HOSTS, CONFIG) == []
    assert inbox.take() == []
    n.after_pass(a_pass(HOSTS, host_state(P)), HOSTS, CONFIG)     # a plot finished
    [post] = inbox.take()
    assert post["type"] == "success" and post["title"].startswith("plotfleet: resolved: p1:")
    assert post["message"].startswith("RESOLVED p1: plotter backed off")
    n.after_pass(a_pass(HOSTS, host_state(P)), HOSTS, CONFIG)
    assert inbox.take() == [] and log == []
    # the state file names no URL (they hold tokens)
    assert str(inbox.port) not in (tmp_path / "alerts.json").read_text()


def test_a_harvester_drive_removed_between_passes(inbox, tmp_path):
    h = harvester(farm_dirs=("/f0", "/f1"))
    hosts = inventory(P, h)
    n = Notifier([inbox.url], state_path=tmp_path / "alerts.json")
    full = host_state(h)
    full = replace(full, dirs=tuple(replace(d, plot_count=40) for d in full.dirs))
    n.after_pass(a_pass(hosts, host_state(P), full), hosts, CONFIG)
    assert inbox.take() == []
    pulled = host_state(h, errors={"/f1": "missing"})
    pulled = replace(pulled, dirs=tuple(replace(d, plot_count=40 if d.path == "/f0" else 0)
                                        for d in pulled.dirs))
    n.after_pass(a_pass(hosts, host_state(P), pulled), hosts, CONFIG)
    [post] = inbox.take()          # both alerts of the pass, in one message
    assert post["title"] == "plotfleet: 2 alerts (h1)"
    assert post["message"].splitlines() == [
        "ALERT h1: farm dir /f1: missing",
        "ALERT h1: farm plot count dropped from 80 to 40 (-40); unusable: /f1 (missing)"]


def test_the_notify_server_down_never_raises_the_failure_is_logged_and_sent_later(tmp_path):
    port = free_port()             # nothing listens there
    log = []
    n = Notifier([f"json://127.0.0.1:{port}/"], state_path=tmp_path / "alerts.json",
                 log=log.append)
    [d] = n.after_pass(a_pass(HOSTS, failing()), HOSTS, CONFIG)
    assert not d.ok and d.started == 1
    assert len(log) == 1 and "\n" not in log[0]
    assert log[0].startswith(f"notify: failed to send to json://127.0.0.1:{port}/")
    assert log[0].endswith("(1 alert(s), 0 resolved): A Connection error occurred sending "
                           "JSON notification to 127.0.0.1; [Errno 111] Connection refused")
    # the plotter keeps failing while the server is down: tried again, logged again
    n.after_pass(a_pass(HOSTS, failing()), HOSTS, CONFIG)
    assert len(log) == 2
    # the server comes back: what it missed arrives, once, in one message
    box = Inbox(port)
    try:
        [d] = n.after_pass(a_pass(HOSTS, failing()), HOSTS, CONFIG)
        assert d.ok
        [post] = box.take()
        assert post["message"].startswith("ALERT p1: plotter backed off")
        assert n.after_pass(a_pass(HOSTS, failing()), HOSTS, CONFIG) == []
        assert box.take() == []
        # and an error answer is a failure too
        box.status = 500
        [d] = n.after_pass(a_pass(HOSTS, host_state(P)), HOSTS, CONFIG)
        assert not d.ok and len(log) == 3 and "500" in log[2]
        box.status = 200
        box.take()
        n.after_pass(a_pass(HOSTS, host_state(P)), HOSTS, CONFIG)
        [post] = box.take()
        assert post["message"].startswith("RESOLVED p1: plotter backed off")
    finally:
        box.close()


def test_a_bad_url_or_a_broken_state_file_never_raises(tmp_path, inbox):
    log = []
    state = tmp_path / "alerts.json"
    state.write_text("{ not json")
    n = Notifier(["nosuchservice://x/y", inbox.url], state_path=state, log=log.append)
    sent = n.after_pass(a_pass(HOSTS, failing()), HOSTS, CONFIG)
    assert [d.ok for d in sent] == [False, True]
    assert "starting afresh" in log[0]
    assert "not a URL apprise can use" in log[1]
    assert len(inbox.take()) == 1
    # nothing kept for a URL that can never work
    assert json.loads(state.read_text())["pending"] == {}
    # a broken pass result: logged, not raised
    assert not n.after_pass(None, HOSTS, CONFIG)[0].ok
    assert log[-1].startswith("notify: alerts not processed this pass: AttributeError")


def test_a_restarted_controller_neither_repeats_an_alert_nor_loses_its_resolved(inbox, tmp_path):
    state = tmp_path / "state" / "alerts.json"
    Notifier([inbox.url], state_path=state).after_pass(a_pass(HOSTS, failing()), HOSTS, CONFIG)
    assert len(inbox.take()) == 1
    again = Notifier([inbox.url], state_path=state)          # a new process, same file
    assert again.after_pass(a_pass(HOSTS, failing()), HOSTS, CONFIG) == []
    assert inbox.take() == []
    [d] = Notifier([inbox.url], state_path=state).after_pass(
        a_pass(HOSTS, host_state(P)), HOSTS, CONFIG)
    assert d.ok and d.resolved == 1
    [post] = inbox.take()
    assert post["message"].startswith("RESOLVED p1: plotter backed off")


def test_without_urls_the_state_is_tracked_and_nothing_sent(inbox, tmp_path):
    state = tmp_path / "alerts.json"
    quiet = Notifier([], state_path=state)
    assert quiet.after_pass(a_pass(HOSTS, failing()), HOSTS, CONFIG) == []
    assert [a.key for a in quiet.active()] == ["backed_off:p1"]
    # URLs added later: what was already wrong is not news; its end is
    n = Notifier([inbox.url], state_path=state)
    assert n.after_pass(a_pass(HOSTS, failing()), HOSTS, CONFIG) == []
    n.after_pass(a_pass(HOSTS, host_state(P)), HOSTS, CONFIG)
    [post] = inbox.take()
    assert post["message"].startswith("RESOLVED p1:")


def test_notify_test_reports_each_url(inbox):
    down = f"json://user:secret@127.0.0.1:{free_port()}/"
    results = notify_test([inbox.url, down, "nosuchservice://x"])
    assert [r.ok for r in results] == [True, False, False]
    [post] = inbox.take()
    assert post["title"] == "plotfleet: test message"
    assert "secret" not in results[1].url and "secret" not in results[1].line()
    assert results[2].error.startswith("not a URL apprise can use")
