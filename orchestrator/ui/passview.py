"""plot-all's own output: a pass's events and waits, as a farmer reads them.

In a terminal, one live status region (rich Live: the fleet summary and why
nothing more was started or moved) stays at the bottom, and each event is
printed once, as a line above it.  When stdout is not a terminal (a log
file, a pipe, systemd), one plain line per event, and a wait only when it
first appears or its reason changes: an hour of passes is not an hour of
repeated tables.
"""
from __future__ import annotations

import time
from typing import Dict, Mapping, Optional, Tuple

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from orchestrator.core.events import EventKind
from orchestrator.ui import dirtables, eventline, views

WAIT_ROWS = 12      # the live region shows this many waits at most


class PassPrinter:
    """`verbose`: each event's full `detail` line instead of its short one."""

    def __init__(self, console: Console, hosts: Mapping, tty: Optional[bool] = None,
                 verbose: bool = False, marks: Optional[eventline.Marks] = None):
        self.console, self.hosts = console, hosts
        self.tty = console.is_terminal if tty is None else tty
        self.verbose = verbose
        self.marks = marks or eventline.marks_for(stream=console.file)
        self.live: Optional[Live] = None
        self.said: Dict[Tuple[str, str], str] = {}   # (host, subject) -> reason last printed
        self.keys_said: Tuple[str, ...] = ()          # the key lines last printed

    def __enter__(self):
        if self.tty:
            self.live = Live(Text("gathering..."), console=self.console, auto_refresh=False,
                             transient=False)
            self.live.start()
        return self

    def __exit__(self, *exc):
        if self.live is not None:
            self.live.stop()
            self.live = None

    def lines(self, events, state, stamp: str) -> list:
        """The key lines when they changed (whole: they name the dirs), then
        one line per event (folded), each cut to the terminal's width."""
        places = eventline.places_for(state, self.hosts)
        out = []
        keys = tuple(places.key_lines())
        if events and keys != self.keys_said and not self.verbose:
            out.extend(Text(k, style="dim") for k in keys)
            self.keys_said = keys
        width = self.console.width if self.tty else None    # a log line is never cut
        for e in eventline.fold([e.to_json() for e in events]):
            text = eventline.render(e, stamp, places, self.marks, width, self.verbose)
            text.no_wrap = width is not None and not self.verbose
            out.append(text)
        return out

    def print(self, texts) -> None:
        for text in texts:
            if text.no_wrap:
                self.console.print(text, no_wrap=True, overflow="crop")
            else:       # the terminal wraps it: a copy of it is one line
                self.console.print(text, soft_wrap=True)

    def show(self, result) -> None:
        # a log (journal, file) has no screen to date it: each line carries its day
        stamp = time.strftime("%H:%M:%S" if self.tty else "%Y-%m-%d %H:%M:%S")
        self.print(self.lines(result.events, result.state, stamp))
        if self.live is not None:
            self.live.update(self._region(result, stamp), refresh=True)
            return
        now = {(w.host, w.subject): w.reason for w in result.waits}
        for w in result.waits:
            if self.said.get((w.host, w.subject)) != w.reason:
                self.console.print(Text(f"{stamp} {w.describe()}"), soft_wrap=True)
        self.said = now
        if not result.events and not result.waits:
            self.console.print(Text(f"{stamp} nothing to do"), soft_wrap=True)

    def _region(self, result, stamp: str):
        # each plotter's plotting and archiving line says its own waits
        lines = dirtables.status_lines(result.outlooks, dirtables.host_keys(
            result.state, self.hosts)) if result.outlooks else None
        pending = [w for w in result.waits if lines is None or w.subject != "plotter"]
        places = eventline.places_for(result.state, self.hosts)
        waits = [eventline.wait_text(w, places, self.marks, self.console.width)
                 for w in pending[:WAIT_ROWS]]
        if len(pending) > WAIT_ROWS:
            waits.append(Text(f"... and {len(pending) - WAIT_ROWS} more waits"))
        # the fleet as this pass left it: it agrees with the events printed above it
        head = [views.summary_table(result.after, self.hosts, note=result.backpressure,
                                    model=result.farm, replot=result.wave)]
        if lines is not None:
            head.append(lines)
        return Group(*head, Text(f"pass {stamp}: {len(result.events)} events"), *waits)


def left_running(state, events=(), started=()) -> str:
    """What a Ctrl-C leaves running on the hosts, on one line: the jobs (by
    plot id once they have one, else pid or log) and the transfers that the
    last pass saw, those it started, and the jobs this run started since
    (`started`: (host, log file); a pass cut short by the Ctrl-C)."""
    hosts = state.hosts if state is not None else ()
    jobs: Dict[Tuple[str, str], str] = {}
    for h in hosts:
        for j in h.jobs:
            jobs[(h.name, j.log_file or str(j.pid))] = \
                f"{h.name} {(j.plot_id or '')[:8] or 'pid %d' % j.pid}"
    for e in events:
        if e.kind == EventKind.JOB_STARTED:
            jobs.setdefault((e.host, e.subject), f"{e.host} pid {e.pid}")
    for host, log in started:
        name = (log or "").rsplit("/", 1)[-1].rsplit(".log", 1)[0]
        jobs.setdefault((host, log), f"{host} {name}")
    moves = [f"{dirtables.plot_label(t.plot)} {h.name} -> {t.to_host}"
             for h in hosts for t in h.transfers if t.status == "running"]
    moves += [f"{eventline.plot_id(e.to_json())} {e.host} -> {e.to_host}"
              for e in events if e.kind == EventKind.TRANSFER_STARTED]
    if not jobs and not moves:
        return "stopped (Ctrl-C); no job or transfer was running"

    def some(what, items):
        n = len(items)
        shown = ", ".join(items[:6]) + (f", +{n - 6} more" if n > 6 else "")
        return f"{n} {what}{'' if n == 1 else 's'} ({shown})"
    parts = [some("job", list(jobs.values()))] if jobs else []
    parts += [some("transfer", moves)] if moves else []
    return f"stopped (Ctrl-C); left running on the hosts: {' and '.join(parts)}"
