"""The JSON-lines loop: one request per line in, one response per line out."""
import json
import os
import platform
import sys

import psutil

from . import actions
from .reserve import reserve_drive
from .snapshot import Agent

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
    return {"version": version(), "python": platform.python_version(),
            "pid": os.getpid(), "psutil": psutil.__version__}


def snapshot(agent, config=None, **_):
    return agent.snapshot(config or {})


OPS = {
    "hello": hello, "snapshot": snapshot, "start_job": actions.start_job,
    "suspend": actions.suspend, "resume": actions.resume, "kill": actions.kill,
    "start_transfer": actions.start_transfer, "promote": actions.promote,
    "remove_plot": actions.remove_plot, "clean_partial": actions.clean_partial,
    "read_log": actions.read_log, "list_logs": actions.list_logs,
    "reserve_drive": reserve_drive,
    "clean_dead": actions.clean_dead, "reset_failures": actions.reset_failures,
}


def _one_line(e):
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def handle(agent, line):
    rid = None
    try:
        req = json.loads(line)
        if not isinstance(req, dict):
            raise ValueError("request must be a JSON object")
        rid = req.get("id")
        op = req.get("op")
        if op not in OPS:
            raise ValueError("unknown op: %r" % (op,))
        args = {k: v for k, v in req.items() if k not in ("id", "op")}
        if op != "hello" and "config" not in args:
            args["config"] = {}
        return {"id": rid, "ok": True, "result": OPS[op](agent, **args)}
    except actions.ActionError as e:
        return {"id": rid, "ok": False, "error": _one_line(e)}
    except TypeError as e:
        return {"id": rid, "ok": False, "error": "bad arguments: %s" % _one_line(e)}
    except Exception as e:
        return {"id": rid, "ok": False, "error": "%s: %s" % (type(e).__name__, _one_line(e))}


def serve():
    # The protocol owns the real stdout; anything else printing (a library,
    # a stray print) goes to stderr instead of corrupting the channel.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    agent = Agent()
    for line in sys.stdin:
        if not line.strip():
            continue
        out.write(json.dumps(handle(agent, line)) + "\n")
        out.flush()
    return 0
