"""The JSON-lines loop: one request per line in, one response per line out.

A reader thread takes lines off stdin as they come and notes when each
arrived (a request's deadline counts from then, see deadline.py); the main
thread carries them out one at a time.  stdin EOF, the parent gone or SIGTERM
end the loop, and the watchdog ends a stuck one (watchdog.py).
"""
import json
import os
import queue
import sys
import threading
import time

from . import deadline, protocol
from .facts.snapshot import Agent
from .ops.common import ActionError
from .vocab.wire import ErrorCode
from .watchdog import Watchdog

OPS = protocol.declared()       # every op of agent/ops/, as its handler declares it


def _one_line(e):
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _error(rid, code, message):
    return {"id": rid, "ok": False, "code": ErrorCode(code).value, "error": message}


def _timeout(req):
    t = req.pop("timeout_s", None)
    if t is None:
        return None
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0:
        raise ActionError("timeout_s must be a positive number, got %r" % (t,),
                          code=ErrorCode.BAD_REQUEST)
    return float(t)


def handle(agent, line, arrival=None):
    """One request line -> one response dict (never raises)."""
    arrival = time.monotonic() if arrival is None else arrival
    rid = None
    try:
        try:
            req = json.loads(line)
        except ValueError as e:
            return _error(rid, ErrorCode.BAD_REQUEST, "ValueError: %s" % _one_line(e))
        if not isinstance(req, dict):
            return _error(rid, ErrorCode.BAD_REQUEST, "ValueError: request must be a JSON object")
        rid = req.pop("id", None)
        name = req.pop("op", None)
        if not isinstance(name, str) or name not in OPS:
            return _error(rid, ErrorCode.UNKNOWN_OP, "ValueError: unknown op: %r" % (name,))
        op = OPS[name]
        deadline.begin(arrival, _timeout(req))
        why = op.check(req)
        if why:
            return _error(rid, ErrorCode.BAD_REQUEST, why)
        deadline.check(name)        # it waited behind another request too long
        args = {k: req[k] for k in op.args if k in req}
        return {"id": rid, "ok": True, "result": op.handler(agent, **args)}
    except (ActionError, deadline.DeadlineExpired) as e:
        return _error(rid, e.code, _one_line(e))
    except Exception as e:
        return _error(rid, ErrorCode.INTERNAL, "%s: %s" % (type(e).__name__, _one_line(e)))
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
    agent.mail = lambda: not inbox.empty()     # ops/news.py stops waiting for it
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
