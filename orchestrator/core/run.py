"""What one plot-all run remembers, and when a `--plots N` run ends: pure.

RunTracker follows the jobs this run started, from each pass's snapshot
alone (a job that finished between two polls is in its host's `finished`),
until their plots are archived or no further progress is possible.  It also
keeps the little a plan needs from earlier passes: the starts whose answer
was lost (core/plan.py asks them again) and how many more jobs may start.
"""
from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Set, Tuple

from orchestrator.exitcodes import FAILED, OK, UNREACHABLE
from orchestrator.core.state import FleetState, Host

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class RunEnd:
    """Why a `--plots N` run ends: code 0 (its plots are archived), 1 (no
    further progress is possible; `lines` say why, one per plotter or failed
    job), 4 (that, and a host was unreachable)."""
    code: int
    lines: Tuple[str, ...] = ()
    failed: int = 0             # of this run's jobs


@dataclass
class RunTracker:
    """The jobs this run started, followed until their plots are archived,
    or until no further progress is possible."""
    limit: Optional[int]
    started: Set[Tuple[str, str]] = field(default_factory=set)     # (host, log_file)
    plot_ids: dict = field(default_factory=dict)                    # (host, log) -> id
    unanswered: tuple = ()            # core.plan.AskAgain: starts that may be running
    failed: dict = field(default_factory=dict)      # (host, log) -> DeadJob, once seen
    # multi-plot jobs (count != 1): --plots N counts plots, not jobs.  A plot
    # is this run's when its id was not on its plotter at the run's first look
    endless: bool = False
    baseline: dict = field(default_factory=dict)    # host -> plot ids seen first
    made: Set[str] = field(default_factory=set)     # plot ids made in this run

    @property
    def remaining(self) -> Optional[int]:
        if self.limit is None:
            return None
        if self.endless:    # keep the jobs running (restarts too) until N are made
            return None if len(self.made) < self.limit else 0
        return max(self.limit - len(self.started) - len(self.unanswered), 0)

    def _count_plots(self, state: FleetState, hosts: Mapping[str, Host]) -> None:
        for h in state.hosts:
            host = hosts.get(h.name)
            if not h.reachable or host is None or not host.is_plotter:
                continue
            ids = {p.plot_id for p in h.plots if p.plot_id}
            ids |= {i for t in h.transfers for i in _ids_in(t.plot)}
            if h.name not in self.baseline:
                self.baseline[h.name] = ids
            else:
                self.made |= ids - self.baseline[h.name]

    def learn(self, state: FleetState, fleet=None, hosts: Mapping[str, Host] = None) -> None:
        """Follow this run's jobs in one snapshot (pure: a job that finished
        between two polls is in its host's `finished`, with its plot id).
        `fleet` is not used; callers written before the snapshot fact pass one."""
        hosts = hosts or {}
        if self.endless:
            self._count_plots(state, hosts)
        for h in state.hosts:
            for j in h.jobs:
                if (h.name, j.log_file) in self.started and j.plot_id:
                    self.plot_ids[(h.name, j.log_file)] = j.plot_id
            for d in h.dead:    # failed stays failed once its entry ages out
                if (h.name, d.log_file) in self.started:
                    self.failed[(h.name, d.log_file)] = d
            for f in h.finished:
                key = (h.name, f.log_file)
                if key in self.started and key not in self.failed:
                    self.plot_ids.setdefault(key, f.plot_id)

    def _outcomes(self, state: FleetState) -> Dict[Tuple[str, str], tuple]:
        """(host, log) -> ("running" | "failed" | "done" | "unknown", detail)."""
        out = {}
        for key in sorted(self.started):
            host, log = key
            h = next((x for x in state.hosts if x.name == host), None)
            if key in self.failed:
                out[key] = ("failed", self.failed[key])
            elif h is None or not h.reachable:
                out[key] = ("unknown", None)
            elif any(j.log_file == log for j in h.jobs):
                out[key] = ("running", None)
            elif key in self.plot_ids:
                out[key] = ("done", self.plot_ids[key])
            else:
                out[key] = ("unknown", None)      # the next pass reads its log
        return out

    def _archiving(self, state: FleetState, with_harvesters: bool, ids) -> bool:
        for h in state.hosts:
            if with_harvesters and any(p.plot_id in ids for p in h.plots):
                return True
            if any(_id_in(t.plot, ids) for t in h.transfers):
                return True
        return False

    def verdict(self, state: FleetState, waits, run_hosts, with_harvesters: bool
                ) -> Optional[RunEnd]:
        """None while the run may still make progress, else how it ends."""
        if self.limit is None or self.unanswered:
            return None     # a start whose answer was lost may be running
        if self.endless:
            return self._plots_verdict(state, waits, run_hosts, with_harvesters)
        outcomes = self._outcomes(state)
        if any(kind in ("running", "unknown") for kind, _ in outcomes.values()):
            return None
        ids = {v for kind, v in outcomes.values() if kind == "done"}
        stuck = _archive_stuck(state, waits, ids) if with_harvesters else None
        if stuck:
            return RunEnd(UNREACHABLE if any(not h.reachable for h in state.hosts) else FAILED,
                          tuple(stuck))
        if self._archiving(state, with_harvesters, ids):
            return None
        failed = [_failed_line(host, d) for (host, _), (kind, d) in outcomes.items()
                  if kind == "failed"]
        # a plot of this run that failed its proof check is a failed job too
        failed += [f"{h.name}: plot {q.plot_id[:8]} failed its proof check and waits in "
                   f"quarantine: {q.reason}" for h in state.hosts for q in h.quarantine
                   if q.plot_id in ids]
        code = UNREACHABLE if any(not h.reachable for h in state.hosts) else FAILED
        if len(self.started) >= self.limit:
            return RunEnd(OK) if not failed else RunEnd(code, tuple(failed), len(failed))
        # fewer than N started: can any plotter of the run still start one?
        lines = _all_blocked(state, waits, run_hosts, idle=False)
        if lines is None:
            return None
        return RunEnd(code, tuple(failed + (lines or ["no plotter in this run"])), len(failed))


    def _plots_verdict(self, state: FleetState, waits, run_hosts, with_harvesters: bool
                       ) -> Optional[RunEnd]:
        """--plots N over multi-plot jobs: done once N plots of this run are
        archived (the jobs keep running); stuck when no plotter of the run has
        a job and each is blocked (backed off after failures, or never fits)."""
        if len(self.made) >= self.limit:
            stuck = _archive_stuck(state, waits, self.made) if with_harvesters else None
            if stuck:
                return RunEnd(UNREACHABLE if any(not h.reachable for h in state.hosts)
                              else FAILED, tuple(stuck))
            return None if self._archiving(state, with_harvesters, self.made) else RunEnd(OK)
        lines = _all_blocked(state, waits, run_hosts, idle=True)
        if lines is None:
            return None
        code = UNREACHABLE if any(not h.reachable for h in state.hosts) else FAILED
        return RunEnd(code, tuple(lines or ["no plotter in this run"]))



def _all_blocked(state: FleetState, waits, run_hosts, idle: bool):
    """The reasons of the run's plotters when every one is blocked (backed
    off, or never fits; with `idle`, also running no job), else None: one of
    them may come back, or start a job yet."""
    stuck = {w.host: w for w in waits if w.subject == "plotter" and w.blocked}
    lines = []
    for h in run_hosts:
        if not h.is_plotter:
            continue
        hs = next((x for x in state.hosts if x.name == h.name), None)
        if hs is None or not hs.reachable or (idle and hs.jobs) or h.name not in stuck:
            return None
        lines.append(f"{h.name}: {stuck[h.name].reason}")
    return lines


def _archive_stuck(state: FleetState, waits, ids):
    """One line per plotter when every plot of `ids` still on a plotter waits
    on something only the farmer can change (the archiver's blocked waits: no
    drive has or will have room, a plot not archived for its own fault) and
    none is on its way, else None: the fleet may archive them yet."""
    blocked = {(w.host, w.subject): w for w in waits if w.blocked}
    lines, waiting = {}, 0
    for h in state.hosts:
        if any(_id_in(t.plot, ids) for t in h.transfers if t.status != "failed"):
            return None
        for p in h.plots:
            if p.plot_id not in ids:
                continue
            waiting += 1
            w = blocked.get((h.name, posixpath.basename(p.path)))
            if w is None:
                return None
            n, _ = lines.get(h.name, (0, w.reason))
            lines[h.name] = (n + 1, w.reason)
    if not waiting:
        return None
    return [f"{host}: {n} plot{'s' if n > 1 else ''} of this run wait{'' if n > 1 else 's'}:"
            f" {reason}" for host, (n, reason) in lines.items()]


def _ids_in(path: str):
    m = _HEX64.search(posixpath.basename(path))
    return (m.group(0),) if m else ()


def _failed_line(host: str, d) -> str:
    what = "was killed" if d.killed else "failed"
    return (f"{host}: job {(d.plot_id or '?')[:8]} ({posixpath.basename(d.log_file)}) {what}: "
            f"{d.error or 'no error line in its log'}")


def _id_in(path: str, ids) -> bool:
    return any(i in path for i in ids)
