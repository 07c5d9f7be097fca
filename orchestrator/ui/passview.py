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

from orchestrator.core.events import Event
from orchestrator.ui import dirtables, views

WAIT_ROWS = 12      # the live region shows this many waits at most


def event_text(e: Event, stamp: str) -> Text:
    return Text(f"{stamp} {e.detail}", style="red" if e.failed else "")


class PassPrinter:
    def __init__(self, console: Console, hosts: Mapping, tty: Optional[bool] = None):
        self.console, self.hosts = console, hosts
        self.tty = console.is_terminal if tty is None else tty
        self.live: Optional[Live] = None
        self.said: Dict[Tuple[str, str], str] = {}   # (host, subject) -> reason last printed

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

    def show(self, result) -> None:
        stamp = time.strftime("%H:%M:%S")
        wrap = not self.tty         # a log line is never cut in two
        for e in result.events:
            self.console.print(event_text(e, stamp), soft_wrap=wrap)
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
        waits = [Text(w.describe(), style="yellow" if w.blocked else "dim")
                 for w in pending[:WAIT_ROWS]]
        if len(pending) > WAIT_ROWS:
            waits.append(Text(f"... and {len(pending) - WAIT_ROWS} more waits"))
        head = [views.summary_table(result.state, self.hosts, note=result.backpressure,
                                    model=result.farm)]
        if lines is not None:
            head.append(lines)
        return Group(*head, Text(f"pass {stamp}: {len(result.events)} events"), *waits)
