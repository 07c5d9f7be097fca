"""dashboard: a full-screen rich Live view over the persistent sessions.

A poller thread runs the loop's pass (plotloop.Loop.step) every `refresh`
seconds: a look at the fleet (a warm poll is one round trip per host) or,
with --plot, a plot-all pass (plotman's interactive mode with autostart).  The main thread only draws and reads
keys, so q, Ctrl-C and terminal resizes are answered at once even while a
slow host holds up a poll.  Jobs keep running on the hosts after quitting.
"""
from __future__ import annotations

import collections
import io
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

from orchestrator.core.decisions import human_bytes
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


def fleet_line(state: FleetState, hosts, model, note=None, replot=None) -> Text:
    """The fleet summary in one line (a small screen has no rows for a table)."""
    up = [h for h in state.hosts if h.reachable]
    down = len(state.hosts) - len(up)
    waiting = [p for h in up for p in h.plots]
    n = len(model.drives)
    t = Text(f"hosts {len(up)} up")
    if down:
        t.append(f", {down} down", style="red")
    t.append(f" · jobs {sum(len(h.jobs) for h in up)} · waiting {len(waiting)} · transfers "
             f"{sum(1 for h in up for x in h.transfers if x.status == 'running')} · farm "
             f"{human_bytes(model.room)} free on {n} drive{'' if n == 1 else 's'}")
    if replot is not None and replot.active:
        t.append(f" · {replot.line()}", style="red" if replot.behind else "")
    if note:
        t.append(f" · {note}", style="yellow")
    return t


def _height(renderable, width: int) -> int:
    """Lines `renderable` takes at `width` (rendered off screen)."""
    con = Console(width=max(width, 1), file=io.StringIO(), color_system=None, legacy_windows=False)
    return len(con.render_lines(renderable, con.options, pad=False))


def stack(sections, width: int, height: int, name: str) -> Layout:
    """Sections in priority order, each as tall as it needs while the
    height lasts; one that does not fit whole is cropped if its title,
    header and a row still fit (4 lines), else left out with what follows."""
    parts, left = [], height
    for i, r in enumerate(sections):
        if left <= 0:
            break
        need = _height(r, width)
        if need > left and left < 4:
            break
        size = min(need, left)
        parts.append(Layout(r, name=f"{name}{i}", size=size))
        left -= size
    col = Layout(name=name)
    if left > 0:
        parts.append(Layout(Text(" "), name=f"{name}-rest", size=left))
    if parts:
        col.split_column(*parts)
    return col


def render(state: FleetState, hosts, log, note=None, width=80, height=24,
           polled_at=None, outlooks=None, model=None, backoffs=None, replot=None) -> Layout:
    """The whole screen; what matters most first: each plotter's plotting and
    archiving line, the jobs, the transfers, the drives, then what fits
    (hosts down and failed jobs, the tmp and dst tables); the actions below.
    From WIDE columns, jobs, transfers and drives on the left, the rest on the
    right.  `outlooks`, `model` (the farm), `backoffs`: the pass's
    (core/result.py); for a caller without a pass, the outlooks are judged on `state`."""
    if outlooks is None:
        outlooks = judge(state, hosts, time.time())
    model = farm(state, hosts) if model is None else model
    keys = dirtables.host_keys(state, hosts)
    title = "plotfleet"
    if polled_at:
        title += time.strftime(" · polled %H:%M:%S", time.localtime(polled_at))
    lines = dirtables.status_lines(outlooks, keys, title=None)
    roomy, small = height >= 50, height < 30
    summary = views.summary_table(state, hosts, note=note, model=model, replot=replot) \
        if roomy else fleet_line(state, hosts, model, note, replot)
    # why-not lines first; a small screen keeps its rows for the jobs, transfers, drives
    top = (lines if small else Group(lines, summary)) if lines is not None else summary
    # a small screen: the title on a line of its own, no frame
    top_panel = Group(Text(title, style="bold reverse"), top) if small else Panel(top, title=title)
    top_size = min(_height(top_panel, width), max(height // 3, 4) if not roomy else height // 2)
    mid_size = max(height - top_size - 3, 0)          # the actions: one line at least
    wide = width >= WIDE
    main_width = width * 3 // 5 if wide else width
    if main_width >= COMPACT:
        columns = views.JOB_COLUMNS
        path_width = max((main_width - 75) // 2, 8)    # the other columns take about 75 cells
    else:
        columns, path_width = views.COMPACT_JOB_COLUMNS, None
    first = [_light(views.jobs_table(state, columns, path_width, keys=keys))]
    if any(h.transfers for h in state.hosts):
        first.append(_light(views.transfers_table(state, keys=keys,
                                                  compact=main_width < COMPACT)))
    first.append(_light(drives_table(state, hosts, bar_width=8, keys=keys, model=model)))
    rest = [t for t in (views.down_table(state), views.dead_table(state, hosts, backoffs=backoffs)) if t is not None]
    rest = [_light(t) for t in rest]
    side_width = width - main_width - 2 if wide else width
    rest.append(dirtables.plotter_tables(outlooks, keys, side_by_side=side_width >= 110))
    # what the tables leave of the middle goes to the actions, as far as they have lines
    need = max(sum(_height(r, main_width) for r in first), sum(_height(r, side_width) for r in rest)
               ) if wide else sum(_height(r, width) for r in first + rest)
    # the actions come last: what the tables leave, up to 10 lines
    log_size = 3 + min(max(mid_size - need, 0), max(len(log) - 1, 0), 8)
    mid_size -= log_size - 3
    if wide:
        mid = Layout(name="mid", size=mid_size)
        mid.split_row(stack(first, main_width, mid_size, "main"),
                      Layout(Padding(stack(rest, side_width, mid_size, "side"), (0, 0, 0, 2)),
                             name="side", size=width - main_width))
    else:
        mid = stack(first + rest, width, mid_size, "mid")
        mid.size = mid_size
    shown = list(log)[-max(log_size - 2, 1):]      # the newest lines that fit
    places, marks = eventline.places_for(state, hosts), eventline.marks_for()
    text = Text("\n").join(eventline.render(e, stamp, places, marks, width - 4)
                           for stamp, e in shown) if shown else Text("no actions yet")
    text.no_wrap, text.overflow = True, "ellipsis"
    bottom = Layout(Panel(text, title="actions (q quits)"), name="log", size=log_size)
    root = Layout()
    root.split_column(Layout(top_panel, name="top", size=top_size), mid, bottom)
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
                  result.outlooks, result.farm, result.backoffs, result.wave)


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
