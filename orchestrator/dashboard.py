"""dashboard: a full-screen rich Live view over the persistent sessions.

Polls every `refresh` seconds (a warm poll is one round trip per host), and
with --plot runs a plot-all pass on each poll (plotman's interactive mode with
autostart).  q or Ctrl-C quits; jobs keep running on the hosts.
"""
from __future__ import annotations

import collections
import os
import select
import sys
import termios
import time
import tty
from contextlib import contextmanager

from rich.console import Console, Group
from rich.layout import Layout
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from . import views
from .model import FleetState


def drives_table(state: FleetState) -> Table:
    t = Table(title="harvester drives", expand=True)
    t.add_column("drive")
    t.add_column("fill", ratio=1)
    t.add_column("free", justify="right")
    t.add_column("plots", justify="right")
    for (host, _dev), (free, total, dirs, plots) in sorted(views.farm_drives(state).items()):
        used = (total - free) / total if total else 0
        t.add_row(f"{host}:{dirs[0]}", ProgressBar(total=1, completed=used),
                  views.human_bytes(free), str(plots))
    return t


def render(state: FleetState, hosts, log, note=None, width=80, height=24) -> Layout:
    """The whole screen; every panel crops rather than fails when space is short."""
    root = Layout()
    top = Layout(Panel(views.summary_table(state, hosts, note=note), title="plotfleet"),
                 name="top", size=min(9, max(height // 3, 3)))
    jobs = Layout(views.jobs_table(state), name="jobs", ratio=2)
    side = [drives_table(state)]
    if any(h.transfers for h in state.hosts):
        side.insert(0, views.transfers_table(state))
    down = views.down_table(state)
    if down is not None:
        side.append(down)
    mid = Layout(name="mid", ratio=3)
    if width >= 120:
        mid.split_row(jobs, Layout(Group(*side), name="side", ratio=1))
    else:
        mid.split_column(jobs, Layout(Group(*side), name="side", ratio=1))
    bottom = Layout(Panel(Text("\n".join(list(log)[-8:]) or "no actions yet"),
                          title="actions (q quits)"), name="log", size=min(10, max(height // 4, 3)))
    root.split_column(top, mid, bottom)
    return root


@contextmanager
def keys():
    """Yield a function returning the key pressed since last call, or None."""
    if not sys.stdin.isatty():
        yield lambda: None
        return
    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    try:
        def poll():
            r, _, _ = select.select([fd], [], [], 0)
            return os.read(fd, 1).decode(errors="replace") if r else None
        yield poll
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


def run_dashboard(fleet, hosts, plot=False, refresh=2.0, console=None) -> None:
    from .plotloop import RunTracker, run_pass
    console = console or Console()
    log = collections.deque(maxlen=200)
    tracker = RunTracker(limit=None)
    state = FleetState(())
    note = None
    with keys() as key, Live(console=console, screen=True, auto_refresh=False) as live:
        next_poll = 0.0
        try:
            while True:
                now = time.time()
                if now >= next_poll:
                    if plot:
                        result = run_pass(fleet, hosts, False, tracker)
                        state, note = result.state, result.backpressure
                        stamp = time.strftime("%H:%M:%S")
                        log.extend(f"{stamp} {line}" for line in result.lines
                                   if "waiting" not in line)
                    else:
                        state = fleet.gather()
                    next_poll = now + refresh
                size = console.size
                live.update(render(state, hosts, log, note, size.width, size.height),
                            refresh=True)
                k = key()
                if k in ("q", "Q"):
                    return
                time.sleep(0.1)
        except KeyboardInterrupt:
            return
