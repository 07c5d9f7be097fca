"""Instant `status`: answered by a running plot-all / dashboard --serve of
the same inventory and --limit on this machine, with no new SSH session.

orchestrator/main.py asks here first: `plotfleet status ...` is looked at
before orchestrator.cli is imported (fabric, invoke and jinja2 alone cost
about 300 ms): if a controller of the same inventory file (resolved path) and
--limit is serving, its latest pass is printed (the table is rendered by the
controller, which holds the inventory, at this terminal's width).  Anything
else (another task, an unusual flag, --fresh, no controller, a stale one, one
that answers for another inventory, one not past its first pass) falls back
to the cold path without a word.  Standard library only.
"""
from __future__ import annotations

import http.client
import os
import shutil
import signal
import sys
import threading
import time
from typing import List, Optional

from orchestrator import exitcodes
from orchestrator.serve import discovery

TIMEOUT_S = 2.0     # a controller that does not answer this fast is not waited for
TRIED = False       # the entry point asked already: the status task need not ask again

_VALUE = {"--inventory": "inventory", "-i": "inventory", "--limit": "limit", "-l": "limit"}
_FLAG = {"--json": "json", "-j": "json", "--fresh": "fresh", "-f": "fresh"}


def parse(args: List[str]) -> Optional[dict]:
    """`status` flags, or None when the command line is anything else."""
    if not args or args[0] != "status":
        return None
    out = {"inventory": None, "limit": None, "json": False, "fresh": False}
    rest = list(args[1:])
    while rest:
        a = rest.pop(0)
        name, eq, value = a.partition("=")
        if name in _VALUE and a.startswith("--") and eq:
            out[_VALUE[name]] = value
        elif a in _VALUE and rest:
            out[_VALUE[a]] = rest.pop(0)
        elif a in _FLAG:
            out[_FLAG[a]] = True
        else:
            return None         # --help, a typo, ...: the cold path says what it is
    return out


def inventory_path(inventory: Optional[str]) -> str:
    """As cli._inventory_path: the flag, $PLOTFLEET_INVENTORY, inventory.yaml."""
    return inventory or os.environ.get("PLOTFLEET_INVENTORY") or "inventory.yaml"


def _color() -> str:
    """The colours rich would pick for this stdout (rendered by the controller)."""
    if not sys.stdout.isatty() or os.environ.get("TERM") == "dumb":
        return ""
    if os.environ.get("COLORTERM", "").lower() in ("truecolor", "24bit"):
        return "truecolor"
    return "256" if "256" in os.environ.get("TERM", "") else "standard"


def fetch(info: dict, path: str):
    """(status, headers, body) from the controller, or None if it cannot answer."""
    headers = {}
    if info.get("token"):
        headers["Authorization"] = f"Bearer {info['token']}"
    # TIMEOUT_S bounds each socket wait; the alarm bounds them all (a server
    # that trickles a byte a second); it needs the main thread, as the CLI has
    alarm = threading.current_thread() is threading.main_thread()
    if alarm:
        old = signal.signal(signal.SIGALRM, _too_slow)
        signal.setitimer(signal.ITIMER_REAL, 2 * TIMEOUT_S)
    try:
        conn = http.client.HTTPConnection(info["host"], int(info["port"]), timeout=TIMEOUT_S)
        try:
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            return r.status, r, r.read()
        finally:
            conn.close()
    except (OSError, KeyError, ValueError, http.client.HTTPException, _TooSlow):
        return None
    finally:
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)


class _TooSlow(Exception):
    pass


def _too_slow(signum, frame):
    raise _TooSlow()


def _note(h, now: float) -> str:
    at = float(h.getheader("X-Plotfleet-Pass-At") or 0)
    return (f"from the running {h.getheader('X-Plotfleet-Task') or 'controller'} "
            f"(pid {h.getheader('X-Plotfleet-Pid')}): its pass at "
            f"{time.strftime('%H:%M:%S', time.localtime(at))}, {max(now - at, 0):.0f} s ago")


def answer(inventory: Optional[str], limit: Optional[str], json_: bool) -> Optional[int]:
    """Print the running controller's answer and return the exit code, or
    None (nothing printed) when status must ask the hosts itself."""
    path = inventory_path(inventory)
    info = discovery.find(path, limit)
    if info is None:
        return None
    if json_:
        got = fetch(info, "/status.json")
    else:
        cols = shutil.get_terminal_size((80, 24)).columns
        got = fetch(info, f"/status.txt?width={cols}&color={_color()}"
                          f"&no_color={int('NO_COLOR' in os.environ)}")
    if got is None:
        return None
    status, h, body = got
    # another inventory answering (a reused pid, a port taken over): not ours
    if status != 200 or h.getheader("X-Plotfleet-Key") != discovery.inventory_key(path, limit):
        return None
    try:    # an answer that is not a controller's: the cold path, not a traceback
        note, text = _note(h, time.time()), body.decode()
        unreachable = int(h.getheader("X-Plotfleet-Unreachable") or 0)
    except (ValueError, OverflowError, OSError):
        return None
    try:
        if json_:
            sys.stdout.write(text)
            print(f"plotfleet: {note}", file=sys.stderr)
        else:
            sys.stdout.write(text)
            print(note)
        sys.stdout.flush()
    except BrokenPipeError:     # as cli.main: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return exitcodes.FAILED
    return exitcodes.UNREACHABLE if unreachable else exitcodes.OK


def try_answer(argv: List[str]) -> Optional[int]:
    """The exit code when a running controller answered `status` (already
    printed), else None: the CLI runs the task."""
    global TRIED
    args = parse(argv)
    if args is None or args["fresh"]:
        return None
    TRIED = True
    return answer(args["inventory"], args["limit"], args["json"])
