"""What every op shares: its refusal (ActionError, with a code), the check
that a path lies in the host's configured dirs, the host lock, and starting
a detached process.

Waiting for the host lock ends at the request's deadline (deadline.py);
what is done under it cannot be cut in half by the watchdog
(watchdog.critical).
"""
import errno
import fcntl
import os
import re
import subprocess
import time
from contextlib import contextmanager

from .. import deadline
from ..facts import disks
from .. import statefile
from ..vocab.wire import ErrorCode
from ..watchdog import critical

AGENT_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLOT_ID = re.compile(r"^[0-9a-f]{64}$")
KILL_QUIET_S = 60.0     # kill_after_m's default: a dead job's files must rest this long
CLEAN_QUIET_S = 300.0   # clean_after_m's default, for automatic clean-up


class ActionError(Exception):
    """A refusal: the message is the one line the controller shows; `code`
    (vocab/wire.py's ErrorCode) tells callers what kind of refusal it is
    without reading the message."""

    def __init__(self, message, code=ErrorCode.REFUSED):
        super().__init__(message)
        self.code = ErrorCode(code)


def check_inside(path, dirs):
    if not isinstance(path, str) or not path:
        raise ActionError("bad path: %r" % (path,))
    if not disks.inside(path, dirs):
        raise ActionError("refusing path outside configured dirs: %s" % path)
    return disks.expand(path)


def _all_dirs(config):
    return [r for _, _, r in disks.config_dirs(config)]


@contextmanager
def host_lock():
    """Exclusive per-machine lock: two controllers never start past the limits.

    Waited for until the request's deadline at most (DeadlineExpired, nothing
    done): a lock held by a stuck process never holds a request past the
    moment its controller stops listening.
    """
    fd = statefile.open_host_lock()
    try:
        _acquire(fd)
        with critical():
            yield
    finally:
        os.close(fd)


def _acquire(fd):
    end = time.monotonic() + deadline.wait_limit()
    pause = 0.002
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
        left = end - time.monotonic()
        if left <= 0:
            raise deadline.DeadlineExpired(
                "host lock held by another process past the request's deadline, nothing done")
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.05)


def _spawn(argv, log_path, env=None):
    """Start a detached process (own session, survives SSH loss) logging to
    log_path.  When it cannot start, the log says why: a failed job like any
    other, counted for back-off."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
    try:
        with open(os.devnull, "rb") as null:
            return subprocess.Popen(argv, stdin=null, stdout=fd, stderr=fd,
                                    start_new_session=True, close_fds=True, env=env)
    except OSError as e:
        os.write(fd, ("plotfleet: cannot start %s: %s\n" % (argv[0], e.strerror or e)).encode())
        raise
    finally:
        os.close(fd)


def _agent_env():
    env = dict(os.environ)
    pp = env.get("PYTHONPATH")
    env["PYTHONPATH"] = AGENT_PARENT + (os.pathsep + pp if pp else "")
    return env


def _log_dir(config):
    d = (config or {}).get("log_dir")
    if not d:
        raise ActionError("no log_dir configured")
    return disks.expand(d)
