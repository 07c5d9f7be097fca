"""dashboard: a full-screen rich Live view over the persistent sessions.

A poller thread gathers every `refresh` seconds (a warm poll is one round
trip per host) and, with --plot, runs a plot-all pass instead (plotman's
interactive mode with autostart).  The main thread only draws and reads
keys, so q, Ctrl-C and terminal resizes are answered at once even while a
slow host holds up a poll.  Jobs keep running on the hosts after quitting.
"""
from __future__ import annotations

import collections
import os
import select
import sys
import termios
import threading
import time
import tty
from contextlib import contextmanager

from rich import box
from rich.console import Console, Group
from rich.layout import Layout
from rich.live import Live
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from orchestrator.core.outlook import judge
from orchestrator.ui import dirtables, eventline, views
from orchestrator.core.state import FleetState

WIDE = 200          # from here on jobs and the side tables sit side by side
COMPACT = 100       # below this the jobs table drops k, paths and pid


def _light(table: Table) -> Table:
    """Header rule only: a small terminal keeps its rows for data."""
    table.box = box.SIMPLE_HEAD
    table.show_edge = False
    table.pad_edge = False
    return table


def drives_table(state: FleetState, hosts, bar_width: int = 12, keys=None) -> Table:
    return dirtables.drives_table(state, hosts, bar_width, keys)


def render(state: FleetState, hosts, log, note=None, width=80, height=24,
           polled_at=None, outlooks=None) -> Layout:
    """The whole screen; every panel crops rather than fails when space is short.
    `outlooks`: the pass's (core/outlook.py); judged on `state` when not given."""
    if outlooks is None:
        outlooks = judge(state, hosts, time.time())
    keys = dirtables.host_keys(state, hosts)
    title = "plotfleet"
    if polled_at:
        title += time.strftime(" · polled %H:%M:%S", time.localtime(polled_at))
    lines = dirtables.status_lines(outlooks, keys, title=None)
    # the plotting and archiving lines (2 a plotter), the summary (6 rows), the frame
    top_size = min(8 + 2 * len(outlooks), max(height // 3, 3))
    log_size = min(10, max(height // 4, 3), max(len(log), 1) + 2)    # no room kept for no news
    mid_size = max(height - top_size - log_size, 0)
    wide = width >= WIDE
    # jobs keep what they need (title, header, rule, rows) before the side tables
    n_rows = sum(len(h.jobs) + len(h.dead) for h in state.hosts)
    jobs_size = min(n_rows + 3, max(mid_size - 2, 3))
    if width >= COMPACT:
        columns = views.JOB_COLUMNS
        # the other columns take about 75 cells (wide: the side panel takes a third)
        room = (width * 3 // 5 if wide else width) - 75
        path_width = max(room // 2, 8)
    else:
        columns, path_width = views.COMPACT_JOB_COLUMNS, None
    jobs = Layout(_light(views.jobs_table(state, columns, path_width, keys=keys)), name="jobs")
    # left: what is wrong, then the dirs as the scheduler and archiver see them;
    # right: the drives, then transfers (their progress is also on each
    # plotter's archiving line).  Below COMPACT they stack, each cropped.
    split = COMPACT <= width and not wide
    region = width * 2 // 5 if wide else width // 2 if split else width
    left = [dirtables.plotter_tables(outlooks, keys, side_by_side=region >= 110)]
    right = [_light(drives_table(state, hosts, bar_width=8, keys=keys))]
    if any(h.transfers for h in state.hosts):
        right.append(_light(views.transfers_table(state)))
    dead = views.dead_table(state, hosts)
    if dead is not None:
        left.insert(0, _light(dead))          # failures before dirs and space
    down = views.down_table(state)
    if down is not None:
        left.insert(0, _light(down))          # a host that is down matters most
    if split:
        side = Layout(name="side", ratio=1)
        side.split_row(Layout(Group(*left), name="dirs", ratio=1),
                       Layout(Padding(Group(*right), (0, 0, 0, 1)), name="farm", ratio=1))
    else:
        side = Layout(Group(*left, *right), name="side", ratio=1)
    mid = Layout(name="mid", size=mid_size)
    if wide:
        jobs.ratio = 3
        side.ratio = 2
        side.update(Padding(Group(*left, *right), (0, 0, 0, 2)))
        mid.split_row(jobs, side)
    else:
        jobs.size = jobs_size
        mid.split_column(jobs, side)
    shown = list(log)[-max(log_size - 2, 1):]      # the newest lines that fit
    places, marks = eventline.places_for(state, hosts), eventline.marks_for()
    text = Text("\n").join(eventline.render(e, stamp, places, marks, width - 4)
                           for stamp, e in shown) if shown else Text("no actions yet")
    text.no_wrap, text.overflow = True, "ellipsis"
    bottom = Layout(Panel(text, title="actions (q quits)"), name="log", size=log_size)
    root = Layout()
    summary = views.summary_table(state, hosts, note=note)
    top = Group(lines, summary) if lines is not None else summary     # why-not lines first
    root.split_column(Layout(Panel(top, title=title), name="top", size=top_size), mid, bottom)
    return root


@contextmanager
def keys():
    """Yield a function returning the key pressed since last call, or None.

    cbreak mode (keys without Enter, Ctrl-C still a signal); the terminal
    is restored however the dashboard ends.
    """
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


class Poller(threading.Thread):
    """Gathers (or runs plot-all passes) in the background; the latest result
    is read by the drawing thread."""

    def __init__(self, fleet, hosts, plot: bool, refresh: float, after=None, on_poll=None):
        super().__init__(name="dashboard-poll", daemon=True)
        self.after = after          # each plot-all pass, to the app log and the notifier
        self.on_poll = on_poll      # each poll (state, events, seconds, decisions): --serve
        from orchestrator.plotloop import RunTracker
        self.fleet, self.hosts, self.plot, self.refresh = fleet, hosts, plot, refresh
        self.tracker = RunTracker(limit=None)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.state = FleetState(())
        self.note = None
        self.polled_at = None
        self.version = 0
        self.log = collections.deque(maxlen=200)
        self.outlooks = None        # the last plot-all pass's; None: judged on the state

    def poll_once(self) -> None:
        from orchestrator.plotloop import run_pass
        stamp = time.strftime("%H:%M:%S")
        began = time.monotonic()
        if self.plot:
            result = run_pass(self.fleet, self.hosts, False, self.tracker)
            if self.after is not None:
                self.after(result, self.hosts)
            state, note = result.state, result.backpressure
            lines = eventline.fold([e.to_json() for e in result.events])
            events, decisions = result.events, result.decisions
            outlooks = result.outlooks
        else:
            state, note, lines = self.fleet.gather(), None, []
            events, decisions = (), None
            outlooks = judge(state, self.hosts, time.time())
        if self.on_poll is not None:
            self.on_poll(state, events, time.monotonic() - began, decisions)
        with self.lock:
            self.state, self.note, self.polled_at = state, note, time.time()
            self.outlooks = outlooks
            self.log.extend((stamp, e) for e in lines)
            self.version += 1

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.poll_once()
            except Exception as e:       # show it and keep polling: never a dead screen
                with self.lock:
                    self.log.append((time.strftime('%H:%M:%S'), {
                        "kind": "poll_failed", "host": "controller", "subject": "", "failed": True,
                        "detail": f"poll failed: {type(e).__name__}: {e}",
                        "why": f"{type(e).__name__}: {e}"}))
                    self.version += 1
            self.stop.wait(self.refresh)

    def view(self):
        with self.lock:
            return (self.version, self.state, self.note, list(self.log), self.polled_at,
                    self.outlooks)


def run_dashboard(fleet, hosts, plot=False, refresh=2.0, console=None, after=None,
                  on_poll=None) -> None:
    console = console or Console()
    poller = Poller(fleet, hosts, plot, refresh, after, on_poll)
    poller.start()
    try:
        with keys() as key, Live(console=console, screen=True, auto_refresh=False) as live:
            drawn, drawn_at = None, 0.0
            while True:
                version, state, note, log, polled_at, outlooks = poller.view()
                size = console.size
                now = time.monotonic()
                # redraw on news, on a resize, and each second (elapsed times move)
                if (version, size) != drawn or now - drawn_at >= 1.0:
                    live.update(render(state, hosts, log, note, size.width, size.height,
                                       polled_at, outlooks), refresh=True)
                    drawn, drawn_at = (version, size), now
                if key() in ("q", "Q"):
                    return
                time.sleep(0.05)
    except KeyboardInterrupt:
        return
    finally:
        # a plot-all pass in flight finishes its actions before the sessions close
        poller.stop.set()
        try:
            poller.join()
        except KeyboardInterrupt:    # a second Ctrl-C: leave now
            pass
