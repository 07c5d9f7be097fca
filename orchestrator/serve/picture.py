"""The latest pass, as the server shows it: one immutable Picture, swapped
whole after each pass, so /metrics, /status.json and the page of one request
all come from the same pass.  The counters (failed jobs, archived plots) are
this controller's since it started, as Prometheus counters are.
"""
from __future__ import annotations

import os
import posixpath
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, Iterable, Mapping, Optional, Tuple

from agent.vocab import names
from orchestrator.core import failures, plotsize
from orchestrator.core.events import Event, EventKind
from orchestrator.core.farm import Farm, farm
from orchestrator.core.scheduler import host_clock
from orchestrator.core.state import FleetState, Host
from orchestrator.core.wave import Wave, wave

RECENT = 50         # events kept for the page


def level_of(record) -> str:
    """The compression label (`C0`, bladebit's `C7`, Gigahorse's `GH C7`: a
    level never without its format) of a job or plot; "" for records that
    carry none."""
    if not hasattr(record, "compression"):
        return ""
    return plotsize.label(record.compression)


def transfer_rate(host_time: float, x) -> Optional[float]:
    """Bytes per second of one transfer so far (views' transfers table, too)."""
    if not x.started_at or not host_time:
        return None
    return x.bytes_done / max(host_time - x.started_at, 1e-3)


@dataclass(frozen=True)
class Picture:
    state: FleetState
    hosts: Mapping[str, Host]
    number: int                     # passes since this controller started
    at: float                       # when the pass ended (this machine's clock)
    seconds: float                  # how long it took
    events: Tuple[Tuple[float, Event], ...] = ()     # recent, oldest first
    failed: Mapping[tuple, int] = field(default_factory=dict)    # (host, dir, plotter, k, level)
    archived: Mapping[tuple, int] = field(default_factory=dict)  # (host, dir, k, level)
    farm: Optional[Farm] = None     # the pass's farm model (core/farm.py)
    outlooks: tuple = ()            # the pass's plotter outlooks (core/outlook.py)
    backoffs: tuple = ()            # the plotters backed off (core/failures.py)
    wave: Optional[Wave] = None     # where replotting stands, with its deadline (core/wave.py)


class Latest:
    """The one Picture everybody reads; the pass loop replaces it."""

    def __init__(self, hosts: Mapping[str, Host], task: str, key: str):
        self.hosts, self.task, self.key = hosts, task, key
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._picture: Optional[Picture] = None
        self._seen_dead = set()
        self._failed: Dict[tuple, int] = {}
        self._archived: Dict[tuple, int] = {}
        self._events: Tuple[Tuple[float, Event], ...] = ()

    @property
    def picture(self) -> Optional[Picture]:
        with self._lock:
            return self._picture

    def observe(self, result) -> Picture:
        """Take one pass (core/result.PassResult): the loop's observer.  The
        page shows the fleet as the pass left it (a job it started is there,
        as in the terminal's live region): at k18 a job can start and end
        between two gathers, and would never appear."""
        return self.update(result.after, result.events, result.seconds, result.decisions,
                           result.farm, result.outlooks, result.backoffs, result.wave)

    def update(self, state: FleetState, events: Iterable[Event] = (), seconds: float = 0.0,
               decisions: Optional[dict] = None, model: Optional[Farm] = None,
               outlooks: tuple = (), backoffs: Optional[tuple] = None,
               replot: Optional[Wave] = None) -> Picture:
        """`model`, `backoffs`, `replot`: the pass's; computed here, once, when not given."""
        now = time.time()
        model = farm(state, self.hosts) if model is None else model
        replot = wave(state, self.hosts) if replot is None else replot
        if backoffs is None:
            backoffs = failures.backoffs(state, self.hosts,
                                         lambda hs: host_clock(hs, state, now), now)
        events = tuple(events)
        with self._lock:
            for h in state.hosts:
                for d in h.dead:
                    if d.killed or (h.name, d.log_file) in self._seen_dead:
                        continue
                    self._seen_dead.add((h.name, d.log_file))
                    key = (h.name, d.tmp_dir or "", d.plotter or "", str(d.k or ""), level_of(d))
                    self._failed[key] = self._failed.get(key, 0) + 1
            farm_dir = {(p["host"], posixpath.basename(p["plot"])): posixpath.dirname(p["partial"])
                        for p in (decisions or {}).get("promotes", ())}
            for e in events:
                if e.kind == EventKind.COPY_PROMOTED:
                    p = names.parse(e.subject)
                    key = (e.host, farm_dir.get((e.host, e.subject), ""),
                           str(p.k) if p and p.k else "", "")
                    self._archived[key] = self._archived.get(key, 0) + 1
            self._events = (self._events + tuple((now, e) for e in events))[-RECENT:]
            number = 1 if self._picture is None else self._picture.number + 1
            self._picture = Picture(state, self.hosts, number, now, seconds, self._events,
                                    dict(self._failed), dict(self._archived), model,
                                    tuple(outlooks), tuple(backoffs), replot)
            return self._picture


def document(p: Picture, latest: Latest) -> dict:
    """/status.json: `status --json`'s document (FleetState.to_json), and
    which controller and pass it comes from."""
    return {**p.state.to_json(),
            "controller": {"task": latest.task, "pid": latest.pid, "pass": p.number,
                           "pass_at": p.at, "pass_seconds": p.seconds}}
