"""The JSON-lines loop: one request per line in, one response per line out.

A reader thread takes lines off stdin as they come and notes when each
arrived (a request's deadline counts from then, see deadline.py); the main
thread carries them out one at a time.  stdin EOF, the parent gone or SIGTERM
end the loop, and the watchdog ends a stuck one (watchdog.py).
"""
import json
import os
import platform
import queue
import sys
import threading
import time

import psutil

from . import actions, deadline
from .procs import PSUTIL_ERRORS
from . import reserve
from .reserve import reserve_drive
from .snapshot import Agent
from .watchdog import Watchdog

HERE = os.path.dirname(os.path.abspath(__file__))


def version():
    """The deployed content hash (VERSION next to the package), else "dev"."""
    for d in (HERE, os.path.dirname(HERE)):
        try:
            with open(os.path.join(d, "VERSION")) as f:
                return f.read().strip() or "dev"
        except OSError:
            pass
    return "dev"


def hello(agent, **_):
    me = psutil.Process()
    return {"version": version(), "python": platform.python_version(),
            "pid": me.pid, "started_at": me.create_time(), "psutil": psutil.__version__}


def snapshot(agent, config=None, **_):
    return agent.snapshot(config or {})


def _is_agent(cmdline):
    return any(cmdline[i:i + 3] == ["-m", "agent", "serve"] for i in range(len(cmdline)))


def end_agent(agent, pid=None, started_at=None, **_):
    """End an agent the controller abandoned (its channel was cut while it was
    stuck): only the process with exactly that pid and start time, only if it
    runs `-m agent serve` as this user.  Agents of other controllers differ in
    one or the other and are never touched."""
    try:
        pid, started_at = int(pid), float(started_at)
    except (TypeError, ValueError):
        raise actions.ActionError("end_agent needs pid and started_at", code="bad_request")
    if pid == os.getpid():
        raise actions.ActionError("refusing to end the agent answering", code="refused")
    try:
        p = psutil.Process(pid)
        ours = (abs(p.create_time() - started_at) < 0.01 and p.uids().real == os.getuid()
                and _is_agent(p.cmdline()))
        if not ours:
            return {"ended": False}
        p.terminate()
        p.resume()          # a stopped agent takes its SIGTERM now
    except PSUTIL_ERRORS:
        return {"ended": False}
    return {"ended": True}


OPS = {
    "hello": hello, "snapshot": snapshot, "start_job": actions.start_job,
    "suspend": actions.suspend, "resume": actions.resume, "kill": actions.kill,
    "start_transfer": actions.start_transfer, "promote": actions.promote,
    "remove_plot": actions.remove_plot, "clean_partial": actions.clean_partial,
    "read_log": actions.read_log, "list_logs": actions.list_logs,
    "reserve_drive": reserve_drive, "end_agent": end_agent,
    "clean_dead": actions.clean_dead, "reset_failures": actions.reset_failures,
    "digest": actions.digest, "note_drive_failure": reserve.note_drive_failure,
}
NO_CONFIG = ("hello", "end_agent")


def _one_line(e):
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _error(rid, code, message):
    return {"id": rid, "ok": False, "code": code, "error": message}


def _timeout(req):
    t = req.pop("timeout_s", None)
    if t is None:
        return None
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0:
        raise actions.ActionError("timeout_s must be a positive number, got %r" % (t,),
                                  code="bad_request")
    return float(t)


def handle(agent, line, arrival=None):
    """One request line -> one response dict (never raises)."""
    arrival = time.monotonic() if arrival is None else arrival
    rid = None
    try:
        try:
            req = json.loads(line)
        except ValueError as e:
            return _error(rid, "bad_request", "ValueError: %s" % _one_line(e))
        if not isinstance(req, dict):
            return _error(rid, "bad_request", "ValueError: request must be a JSON object")
        rid = req.pop("id", None)
        op = req.pop("op", None)
        if op not in OPS:
            return _error(rid, "unknown_op", "ValueError: unknown op: %r" % (op,))
        deadline.begin(arrival, _timeout(req))
        deadline.check(op)          # it waited behind another request too long
        if op not in NO_CONFIG and "config" not in req:
            req["config"] = {}
        return {"id": rid, "ok": True, "result": OPS[op](agent, **req)}
    except (actions.ActionError, deadline.DeadlineExpired) as e:
        return _error(rid, e.code, _one_line(e))
    except TypeError as e:
        return _error(rid, "bad_request", "bad arguments: %s" % _one_line(e))
    except Exception as e:
        return _error(rid, "internal", "%s: %s" % (type(e).__name__, _one_line(e)))
    finally:
        deadline.end()


def _read(stdin, inbox, dog):
    try:
        for raw in stdin:
            inbox.put((time.monotonic(), raw))
    except (OSError, ValueError):
        pass
    dog.closing.set()               # EOF: the channel closed
    inbox.put(None)


def serve():
    # The protocol owns the real stdout; anything else printing (a library,
    # a stray print) goes to stderr instead of corrupting the channel.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    agent = Agent()
    inbox = queue.Queue()
    dog = Watchdog(on_close=lambda: inbox.put(None))
    threading.Thread(target=_read, args=(sys.stdin.buffer, inbox, dog), name="stdin",
                     daemon=True).start()
    dog.start()
    while True:
        item = inbox.get()
        if item is None:
            return 0
        arrival, line = item
        if not line.strip():
            continue
        resp = handle(agent, line, arrival)
        try:
            out.write(json.dumps(resp) + "\n")
            out.flush()
        except (OSError, ValueError):
            return 0                # nobody reads the answers any more
