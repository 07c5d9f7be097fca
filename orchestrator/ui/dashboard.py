"""dashboard: a full-screen rich Live view over the persistent sessions.

A poller thread runs the loop's pass (plotloop.Loop.step) every `refresh`
seconds: a look at the fleet (a warm poll is one round trip per host) or,
with --plot, a plot-all pass (plotman's interactive mode with autostart).  The main thread only draws and reads
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

from orchestrator.core.farm import farm
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


def drives_table(state: FleetState, hosts, bar_width: int = 12, keys=None, model=None) -> Table:
    return dirtables.drives_table(state, hosts, bar_width, keys, model)


def render(state: FleetState, hosts, log, note=None, width=80, height=24,
           polled_at=None, outlooks=None, model=None, backoffs=None) -> Layout:
    """The whole screen; every panel crops rather than fails when space is short.
    `outlooks`, `model` (the farm), `backoffs`: the pass's (core/result.py);
    for a caller without a pass, the outlooks are judged on `state`."""
    if outlooks is None:
        outlooks = judge(state, hosts, time.time())
    model = farm(state, hosts) if model is None else model
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
    right = [_light(drives_table(state, hosts, bar_width=8, keys=keys, model=model))]
    if any(h.transfers for h in state.hosts):
        right.append(_light(views.transfers_table(state)))
    dead = views.dead_table(state, hosts, backoffs=backoffs)
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
    summary = views.summary_table(state, hosts, note=note, model=model)
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
    """Runs the loop's passes (plotloop.Loop.step: a plot-all pass, or a
    look without --plot) in the background; the latest result is read by the
    drawing thread.  It gathers, schedules and archives nothing itself."""

    def __init__(self, step, refresh: float):
        super().__init__(name="dashboard-poll", daemon=True)
        self.step, self.refresh = step, refresh
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.result = None          # the latest core/result.PassResult
        self.polled_at = None
        self.version = 0
        self.log = collections.deque(maxlen=200)

    def poll_once(self) -> None:
        stamp = time.strftime("%H:%M:%S")
        result = self.step()
        with self.lock:
            self.result, self.polled_at = result, time.time()
            self.log.extend((stamp, e) for e in eventline.fold([e.to_json() for e in result.events]))
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
            return self.version, self.result, list(self.log), self.polled_at


def screen(result, hosts, log, width, height, polled_at) -> Layout:
    """The screen for the latest pass (an empty fleet before the first)."""
    if result is None:
        return render(FleetState(()), hosts, log, None, width, height, polled_at, ())
    return render(result.state, hosts, log, result.backpressure, width, height, polled_at,
                  result.outlooks, result.farm, result.backoffs)


def run_dashboard(step, hosts, refresh=2.0, console=None) -> None:
    """`step`: one pass of the loop (plotloop.Loop.step), run every `refresh` s."""
    console = console or Console()
    poller = Poller(step, refresh)
    poller.start()
    try:
        with keys() as key, Live(console=console, screen=True, auto_refresh=False) as live:
            drawn, drawn_at = None, 0.0
            while True:
                version, result, log, polled_at = poller.view()
                size = console.size
                now = time.monotonic()
                # redraw on news, on a resize, and each second (elapsed times move)
                if (version, size) != drawn or now - drawn_at >= 1.0:
                    live.update(screen(result, hosts, log, size.width, size.height, polled_at),
                                refresh=True)
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
