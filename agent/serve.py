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


from . import deadline, protocol
from .facts.procs import PSUTIL_ERRORS
from .facts.snapshot import Agent
from .ops import checks, claims, jobs, logs, plotman_config, room, transfers
from .ops.common import ActionError
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


def hello(agent):
    me = psutil.Process()
    return {"version": version(), "protocol": protocol.PROTOCOL_VERSION,
            "python": platform.python_version(), "pid": me.pid,
            "started_at": me.create_time(), "psutil": psutil.__version__}


def snapshot(agent, config):
    snap = agent.snapshot(config or {})
    why = room.paused(snap["jobs"])     # suspended by the agent for room: say why
    for j in snap["jobs"]:
        j["paused"] = why.get(j["pid"])
    return snap


def _is_agent(cmdline):
    return any(cmdline[i:i + 3] == ["-m", "agent", "serve"] for i in range(len(cmdline)))


def end_agent(agent, pid, started_at):
    """End an agent the controller abandoned (its channel was cut while it was
    stuck): only the process with exactly that pid and start time, only if it
    runs `-m agent serve` as this user.  Agents of other controllers differ in
    one or the other and are never touched."""
    try:
        pid, started_at = int(pid), float(started_at)
    except (TypeError, ValueError):
        raise ActionError("end_agent needs pid and started_at", code="bad_request")
    if pid == os.getpid():
        raise ActionError("refusing to end the agent answering", code="refused")
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
    "hello": hello, "snapshot": snapshot, "end_agent": end_agent,
    "start_job": jobs.start_job, "suspend": jobs.suspend, "resume": jobs.resume,
    "kill": jobs.kill, "clean_dead": jobs.clean_dead, "reset_failures": jobs.reset_failures,
    "start_transfer": transfers.start_transfer, "digest": transfers.digest,
    "promote": transfers.promote, "remove_plot": transfers.remove_plot,
    "clean_partial": transfers.clean_partial,
    "reserve_drive": claims.reserve_drive, "note_drive_failure": claims.note_drive_failure,
    "read_log": logs.read_log, "list_logs": logs.list_logs,
    "read_plotman_config": plotman_config.read_plotman_config,
    "guard_room": room.guard_room,
    "start_check": checks.start_check, "quarantine_plot": checks.quarantine_plot,
    "release_plot": checks.release_plot, "start_drive_check": checks.start_drive_check,
    "read_checks": checks.read_checks,
}
assert set(OPS) == set(protocol.OPS), "every op declared in protocol.py, and only those"


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
        raise ActionError("timeout_s must be a positive number, got %r" % (t,),
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
        why = protocol.check(op, req)
        if why:
            return _error(rid, "bad_request", why)
        deadline.check(op)          # it waited behind another request too long
        args = {k: req[k] for k in protocol.OPS[op] if k in req}
        return {"id": rid, "ok": True, "result": OPS[op](agent, **args)}
    except (ActionError, deadline.DeadlineExpired) as e:
        return _error(rid, e.code, _one_line(e))
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
