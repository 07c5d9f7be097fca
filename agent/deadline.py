"""The deadline of the request being carried out.

The controller sends `timeout_s`: how long it will wait for the answer.  The
agent's deadline is the moment the request line arrived here, on this host's
monotonic clock, plus that.  No wall clock of either machine is compared, so a
host whose clock is off by hours (or jumps under NTP) keeps the same
deadlines.  The agent's deadline falls after the controller's by the time the
line spent on the wire; the controller sends a little less than it waits
(orchestrator/remote/session.py) so a refusal still finds it listening, and an op
that acts also carries an id, so an act done just as the controller gave up
is found by that id when it asks again (carried_out.py).

A request taken up after its deadline (it waited behind a slow one) is not
carried out; an op that waits (the host lock) waits no longer than the
deadline; an op that acts checks it once more at the last moment before it
acts.
"""
import threading
import time

from .vocab.wire import ErrorCode

NO_DEADLINE_WAIT_S = 60.0   # a request without timeout_s (old controller) waits this long at most

_now = threading.local()


class DeadlineExpired(Exception):
    """The request's deadline passed before it was carried out (nothing was done)."""
    code = ErrorCode.DEADLINE_EXPIRED


READ_RESERVE = 1 / 3        # of a request's time, kept for answering after reading logs
READ_RESERVE_MIN_S = 1.0
NO_DEADLINE_READ_S = 5.0    # reading per request without timeout_s (or outside one)


def begin(arrival, timeout_s):
    """The request that arrived at `arrival` (time.monotonic()) is being carried out."""
    _now.deadline = None if timeout_s is None else arrival + timeout_s
    _now.timeout_s = timeout_s
    _now.began = time.monotonic()


def reading_over():
    """Must reading (logs) stop now, so the request is answered in time?  A
    reader stops between chunks, keeps its offset and goes on with the next
    request; the answer says what was left unread.  Leaves a third of the
    request's time (at least READ_RESERVE_MIN_S) for everything else; without
    a deadline, NO_DEADLINE_READ_S of reading per request; outside a request
    (a test, a bench), no limit."""
    left = remaining()
    if left is not None:
        return left < max(READ_RESERVE_MIN_S, READ_RESERVE * _now.timeout_s)
    began = getattr(_now, "began", None)
    return began is not None and time.monotonic() - began > NO_DEADLINE_READ_S


def end():
    _now.deadline = None
    _now.timeout_s = None
    _now.began = None


def remaining():
    """Seconds left before the current request's deadline (None: it has none)."""
    d = getattr(_now, "deadline", None)
    return None if d is None else d - time.monotonic()


def check(what):
    """DeadlineExpired unless the current request may still `what`."""
    left = remaining()
    if left is not None and left <= 0:
        raise DeadlineExpired("%s: the request's deadline (%gs) passed, nothing done"
                              % (what, _now.timeout_s))


def wait_limit():
    """How long an op may wait for something (a lock) before giving up."""
    left = remaining()
    return NO_DEADLINE_WAIT_S if left is None else max(left, 0.0)
