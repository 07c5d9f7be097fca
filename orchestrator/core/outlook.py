"""Each plotter as one pass sees it: its tmp dirs, its dst dirs, and one line
each for plotting and archiving (plotman's tmp and dst tables, and its first
line), as data for ui/ and --json.

Nothing here judges anything itself: tmp readiness is the scheduler's
`tmp_verdicts` (what `_pick_tmp` picks from), the plotting line is the
scheduler's StartJob or Wait for the plotter, archive priority is the
archiver's own plot order (`dst_ranks`) and a dst dir's reason is the
archiver's Wait for its first plot.  Given the decisions of one pass, the
tables cannot disagree with what that pass did.
"""
from __future__ import annotations

import posixpath
from dataclasses import asdict, dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

from orchestrator.core.archiver import ArchiveDecision, archive, archive_order, dst_ranks
from orchestrator.core.decisions import StartJob, StartTransfer
from orchestrator.core.events import EventKind
from orchestrator.core.paths import PathIndex
from orchestrator.core.scheduler import Decision, TmpVerdict, schedule, tmp_verdicts
from orchestrator.core.state import FleetState, Host, HostState, Phase


@dataclass(frozen=True)
class DstRow:
    path: str
    plots: int                      # finished plots waiting in it
    plot_bytes: int
    free_bytes: Optional[int]       # None: not reported, or the dir has an error
    phases: Tuple[Phase, ...]       # of the jobs that will write their plot here
    priority: Optional[int]         # the archiver's order among this plotter's dst dirs, 1 first
    state: str                      # sending | next | waiting | empty | error
    reason: Optional[str]           # the archiver's wait for `plot`, or the dir's error
    plot: Optional[str] = None      # the plot it concerns: in flight, next, or waiting first
    to: Optional[str] = None        # sending | next: "harvester:dir"
    error: Optional[str] = None


@dataclass(frozen=True)
class Sending:
    """A transfer in flight from this plotter."""
    plot: str
    to_host: str
    to_dir: str
    pid: Optional[int]
    bytes_done: int
    size_bytes: int


@dataclass(frozen=True)
class PlotterOutlook:
    host: str
    tmp: Tuple[TmpVerdict, ...]
    dst: Tuple[DstRow, ...]
    plotting: str                   # started | ready | failed | waiting | blocked | unreachable
    start: Optional[StartJob]       # the job started (or, with nothing applied, due)
    started_log: Optional[str]      # its log file, once the host started it
    plotting_reason: Optional[str]  # the scheduler's wait when no job starts; why a start failed
    archiving: str                  # sending | next | waiting | idle | unreachable
    sending: Tuple[Sending, ...]
    next_transfers: Tuple[StartTransfer, ...]
    archiving_reason: Optional[str]  # why nothing more is sent (the first plot's wait)
    plots_waiting: int

    def to_json(self) -> dict:
        d = asdict(self)
        for t in d["tmp"]:
            t["phases"] = [list(p) for p in t["phases"]]
            t["ready"] = t["rule"] is None
        for r in d["dst"]:
            r["phases"] = [list(p) for p in r["phases"]]
        if d["start"] is not None:
            d["start"]["argv"] = list(d["start"]["argv"])
        return d


def _base(path: str) -> str:
    return posixpath.basename(path.rstrip("/"))


def _dst_rows(host: Host, hs: HostState, arch: ArchiveDecision) -> Tuple[DstRow, ...]:
    index = PathIndex(host.dst_dirs)
    dirs = index.dirs(hs.dirs)
    prio = dst_ranks(host, hs)
    rank = {p.path: i for i, p in enumerate(archive_order(host, hs))}
    waits = {w.subject: w.reason for w in arch.waits if w.host == host.name}
    going = {t.plot: t for t in arch.transfers if t.from_host == host.name}
    running = {t.plot: t for t in hs.transfers if t.in_flight}
    plots_in: Dict[str, list] = {}
    for p in hs.plots:
        d = index.find(posixpath.dirname(p.path))
        if d is not None:
            plots_in.setdefault(d, []).append(p)
    heading: Dict[str, List[Phase]] = {}
    for j in hs.jobs:
        d = index.find(j.dst_dir)
        if d is not None and j.phase is not None:
            heading.setdefault(d, []).append(j.phase)
    rows = []
    for path in host.dst_dirs:
        d = dirs.get(path)
        # in the archiver's order: the first waiting plot speaks for the dir
        plots = sorted(plots_in.get(path, ()), key=lambda p: rank.get(p.path, 0))
        err = d.error if d is not None else "not reported"
        sending = sorted((running[p.path] for p in plots if p.path in running),
                         key=lambda t: t.status != "running")     # the one on its way first
        nxt = [p for p in plots if p.path in going]
        waiting = [(p.path, waits[_base(p.path)]) for p in plots if _base(p.path) in waits]
        plot = to = reason = None
        if sending:
            state, plot, to = "sending", sending[0].plot, f"{sending[0].to_host}:{sending[0].to_dir}"
        elif nxt:
            t = going[nxt[0].path]
            state, plot, to = "next", t.plot, f"{t.to_host}:{t.to_dir}"
        elif waiting:
            state, (plot, reason) = "waiting", waiting[0]
        elif any(not p.proven for p in plots):
            # its plots wait for their proof check first (never "empty")
            first = next(p for p in plots if not p.proven)
            state, plot = "checking", first.path
            reason = first.check.summary() if first.check is not None else "proof check to start"
        elif err:
            state, reason = "error", err
        else:
            state = "empty"
        rows.append(DstRow(path, len(plots), sum(p.size_bytes for p in plots),
                           d.free_bytes if d is not None and not d.error else None,
                           tuple(sorted(heading.get(path, ()))), prio.get(path), state, reason,
                           plot, to, err))
    return tuple(rows)


def plotter_outlook(host: Host, hs: HostState, decision: Decision, arch: ArchiveDecision,
                    started: Mapping[str, str] = None, failed: Mapping[str, str] = None
                    ) -> PlotterOutlook:
    """One plotter in one pass.  `started`: host -> log file of the job the
    pass started there, `failed`: host -> why its start failed (both from the
    pass's events, see `start_outcomes`); without them the pass applied nothing."""
    started, failed = started or {}, failed or {}
    if not hs.reachable:
        return PlotterOutlook(host.name, (), (), "unreachable", None, None,
                              hs.error or "no answer", "unreachable", (), (),
                              hs.error or "no answer", 0)
    start = next((s for s in decision.starts if s.host == host.name), None)
    wait = next((w for w in decision.waits if w.host == host.name and w.subject == "plotter"),
                None)
    if start is not None and host.name in failed:
        plotting = "failed"
    elif start is not None:
        plotting = "started" if host.name in started else "ready"
    else:
        plotting = "blocked" if wait is not None and wait.blocked else "waiting"
    sending = tuple(Sending(t.plot, t.to_host, t.to_dir, t.pid, t.bytes_done, t.size_bytes)
                    for t in hs.transfers if t.status == "running")
    nxt = tuple(t for t in arch.transfers if t.from_host == host.name)
    dst = _dst_rows(host, hs, arch)
    waits = {w.subject: w.reason for w in arch.waits if w.host == host.name}
    first_wait = next((waits[_base(p.path)] for p in archive_order(host, hs)
                       if _base(p.path) in waits), None)
    if sending:
        archiving = "sending"
    elif nxt:
        archiving = "next"
    elif first_wait is not None:
        archiving = "waiting"
    else:
        archiving = "idle"
    return PlotterOutlook(host.name, tmp_verdicts(host, hs), dst, plotting, start,
                          started.get(host.name),
                          failed.get(host.name) if start else (
                              wait.reason if wait else "not judged"),
                          archiving, sending, nxt, first_wait, len(hs.plots))


def outlook(state: FleetState, hosts: Mapping[str, Host], decision: Decision,
            arch: ArchiveDecision, events: Iterable = ()) -> Tuple[PlotterOutlook, ...]:
    """Every plotter of the state, in the state's order, for one pass's
    decisions and (when it applied them) its events."""
    started, failed = start_outcomes(events)
    return tuple(plotter_outlook(hosts[hs.name], hs, decision, arch, started, failed)
                 for hs in state.hosts
                 if hs.name in hosts and hosts[hs.name].is_plotter)


def start_outcomes(events: Iterable) -> Tuple[Dict[str, str], Dict[str, str]]:
    """(host -> log file of the job the pass started there, host -> why its
    start failed), from the pass's job_started / job_start_* events."""
    started, failed = {}, {}
    for e in events:
        if e.kind == EventKind.JOB_STARTED:
            started[e.host] = e.subject
        elif e.kind in (EventKind.JOB_START_FAILED, EventKind.JOB_START_UNANSWERED):
            failed[e.host] = e.detail
    return started, failed


def judge(state: FleetState, hosts: Mapping[str, Host], now: float
          ) -> Tuple[PlotterOutlook, ...]:
    """The outlook of a pass that applies nothing (`status`, the dashboard
    without --plot): the scheduler's and archiver's decisions on this state,
    as plot-all --check would make them."""
    return outlook(state, hosts, schedule(state, hosts, now), archive(state, hosts))


def status_json(state: FleetState, outlooks: Iterable[PlotterOutlook]) -> dict:
    """The status document with each plotter's outlook merged into its host:
    `tmp`, `dst` (the tables' rows), `plotting` and `archiving` (the lines)."""
    doc = state.to_json()
    by_host = {o.host: o.to_json() for o in outlooks}
    for h in doc["hosts"]:
        o = by_host.get(h["name"])
        if o is None:
            continue
        h["tmp"], h["dst"] = o["tmp"], o["dst"]
        h["plotting"] = {k: o[k] for k in ("start", "started_log")}
        h["plotting"].update(state=o["plotting"], reason=o["plotting_reason"])
        h["archiving"] = {"state": o["archiving"], "sending": o["sending"],
                          "next": o["next_transfers"], "reason": o["archiving_reason"],
                          "plots_waiting": o["plots_waiting"]}
    return doc
