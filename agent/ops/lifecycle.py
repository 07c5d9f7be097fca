"""The agent process itself: its hello, and ending an agent a controller gave up on."""
import os
import platform

import psutil

from ..facts.procs import PSUTIL_ERRORS
from ..protocol import PROTOCOL_VERSION, op
from ..vocab import wire
from ..vocab.wire import ErrorCode
from .common import ActionError

PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def version():
    """The deployed content hash (VERSION next to the package), else "dev"."""
    for d in (PACKAGE, os.path.dirname(PACKAGE)):
        try:
            with open(os.path.join(d, "VERSION")) as f:
                return f.read().strip() or "dev"
        except OSError:
            pass
    return "dev"


@op(wire.HelloReply)
def hello(agent):
    """Who answers: the controller redeploys an agent of another protocol."""
    me = psutil.Process()
    return {"version": version(), "protocol": PROTOCOL_VERSION,
            "python": platform.python_version(), "pid": me.pid,
            "started_at": me.create_time(), "psutil": psutil.__version__}


def _is_agent(cmdline):
    return any(cmdline[i:i + 3] == ["-m", "agent", "serve"] for i in range(len(cmdline)))


@op(wire.EndAgentReply)
def end_agent(agent, pid: int, started_at: float):
    """End an agent the controller abandoned (its channel was cut while it was
    stuck): only the process with exactly that pid and start time, only if it
    runs `-m agent serve` as this user; SIGTERM.  Agents of other controllers
    differ in one or the other and are never touched."""
    try:
        pid, started_at = int(pid), float(started_at)
    except (TypeError, ValueError):
        raise ActionError("end_agent needs pid and started_at", code=ErrorCode.BAD_REQUEST)
    if pid == os.getpid():
        raise ActionError("refusing to end the agent answering", code=ErrorCode.REFUSED)
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
