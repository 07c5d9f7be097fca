"""An agent whose controller is gone leaves, even while a request is stuck.

The agent serves one controller over one channel.  When that channel closes
(stdin EOF), its parent (sshd, or the local controller) is gone, or the
controller that abandoned it asks a new agent to end it (SIGTERM, see
ops/lifecycle.end_agent), nobody will read its answers any more.  The serving loop
then stops after the request in hand; if that request is stuck (a lock, a
hung disk), the watchdog ends the process GRACE_S later, so agents never pile
up on a host whose controller keeps reconnecting.

It never ends the process inside `critical()`: the short check-and-act
sections under the host lock (start a job and record its request id) either
happen whole or not at all.
"""
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager

GRACE_S = 2.0          # the request in hand may finish this long after the channel closed
POLL_S = 0.5           # how often the parent is looked at
CRITICAL_WAIT_S = 10.0  # a check-and-act section stuck longer than this (hung disk) is left

_critical = threading.Lock()


@contextmanager
def critical():
    """A section the watchdog waits for before it ends the process."""
    with _critical:
        yield


class Watchdog:
    def __init__(self, on_close):
        self.on_close = on_close            # called once, from the watchdog thread
        self.closing = threading.Event()
        self.parent = os.getppid()

    def start(self):
        # the handler only sets a flag: the main thread may be anywhere
        signal.signal(signal.SIGTERM, lambda *_: self.closing.set())
        threading.Thread(target=self._run, name="watchdog", daemon=True).start()

    def _run(self):
        while not self.closing.wait(POLL_S):
            if os.getppid() != self.parent:
                self.closing.set()
        self.on_close()
        # the serving loop ends by itself after the request in hand; this
        # thread ends the process only if that request is still stuck
        time.sleep(GRACE_S)
        _critical.acquire(timeout=CRITICAL_WAIT_S)
        try:
            sys.stderr.write("agent: channel closed, leaving a request unfinished\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os._exit(0)
