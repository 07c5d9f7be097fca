"""One plot-all pass, and the loop around it.

gather -> schedule + clean-ups + archive (pure) -> apply -> render.  Nothing
is remembered between passes except which jobs this run started (for
--plots N) and the starts whose answer was lost (asked again, by their
request id, at the next pass): whatever the controller forgets, the next pass
sees again on the hosts (failures in a row included: each agent counts them
from its logs).
"""
from __future__ import annotations

import os
import posixpath
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, Mapping, Optional, Set, Tuple

from agent.vocab.logread import analyze_log

from orchestrator import exitcodes
from orchestrator.remote import apply as apply_mod
from orchestrator.core.archiver import archive
from orchestrator.core.checker import checks
from orchestrator.core.failures import bad_plot_holds, cleanups
from orchestrator.core.decisions import Wait
from orchestrator.core.events import Event
from orchestrator.core.outlook import outlook, status_json
from orchestrator.core.state import FleetState, Host
from orchestrator.core.scheduler import host_clock, schedule

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class PassResult:
    """One pass: what it saw, decided and did, as data (ui/ renders it)."""
    state: FleetState
    events: Tuple[Event, ...]       # what was done (or tried and failed)
    waits: Tuple[Wait, ...]         # everything not done, and why
    plotter_waits: Tuple[Wait, ...]  # the scheduler's, one per plotter not started on
    backpressure: Optional[str]
    decisions: dict = field(default_factory=dict)   # what was decided, as JSON
    outlooks: tuple = ()            # core/outlook.py: each plotter's dirs and lines

    def to_json(self) -> dict:
        """plot-all --json: the status document, the decisions, the events."""
        return {**status_json(self.state, self.outlooks), "decisions": self.decisions,
                "events": [e.to_json() for e in self.events]}


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
    unanswered: tuple = ()            # apply.Unanswered: starts that may be running
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

    def learn(self, state: FleetState, fleet, hosts: Mapping[str, Host]) -> None:
        if self.endless:
            self._count_plots(state, hosts)
        for h in state.hosts:
            for j in h.jobs:
                if (h.name, j.log_file) in self.started and j.plot_id:
                    self.plot_ids[(h.name, j.log_file)] = j.plot_id
            for d in h.dead:    # failed stays failed once its entry ages out
                if (h.name, d.log_file) in self.started:
                    self.failed[(h.name, d.log_file)] = d
        for key in self.started - set(self.plot_ids):
            host, log = key
            h = state.host(host)
            if not h.reachable or key in self.failed or any(j.log_file == log for j in h.jobs):
                continue
            try:   # finished between two polls: its log names the plot
                data = fleet.call(host, "read_log", path=log, offset=0, max_bytes=1 << 20)["data"]
            except Exception:
                continue
            info = analyze_log(data)
            if info and info["plot_id"] and info["finished"]:
                self.plot_ids[key] = info["plot_id"]

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
        if self._archiving(state, with_harvesters, ids):
            return None
        failed = [_failed_line(host, d) for (host, _), (kind, d) in outcomes.items()
                  if kind == "failed"]
        code = exitcodes.UNREACHABLE if any(not h.reachable for h in state.hosts) else exitcodes.FAILED
        if len(self.started) >= self.limit:
            return RunEnd(exitcodes.OK) if not failed else RunEnd(code, tuple(failed), len(failed))
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
            return None if self._archiving(state, with_harvesters, self.made) else RunEnd(exitcodes.OK)
        lines = _all_blocked(state, waits, run_hosts, idle=True)
        if lines is None:
            return None
        code = exitcodes.UNREACHABLE if any(not h.reachable for h in state.hosts) else exitcodes.FAILED
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


def _ids_in(path: str):
    m = _HEX64.search(posixpath.basename(path))
    return (m.group(0),) if m else ()


def _failed_line(host: str, d) -> str:
    what = "was killed" if d.killed else "failed"
    return (f"{host}: job {(d.plot_id or '?')[:8]} ({posixpath.basename(d.log_file)}) {what}: "
            f"{d.error or 'no error line in its log'}")


def _id_in(path: str, ids) -> bool:
    return any(i in path for i in ids)


def archive_step(fleet, hosts: Mapping[str, Host], state: FleetState, out, check: bool):
    """The archive half of a pass (plot-all's, and the `archive` task's):
    decide from the state, carry it out; (the proof checks' decision, the
    archive decision), for their waits."""
    proofs = checks(state, hosts)
    apply_mod.proof_checks(fleet, proofs, out, check)
    decision = archive(state, hosts)
    apply_mod.archive(fleet, hosts, decision, out, check)
    return proofs, decision


def run_pass(fleet, hosts: Mapping[str, Host], check: bool, tracker: RunTracker) -> PassResult:
    out = apply_mod.Outcome()
    # before the snapshot and the schedule: a start that did happen is then
    # seen as a job, and counted among this run's
    tracker.unanswered = apply_mod.ask_again(fleet, tracker.unanswered, out)
    tracker.started.update((host, log) for host, _pid, log in out.started)
    if not check:       # multi-plot jobs: suspended while their dst has no room
        apply_mod.guard_room(fleet, hosts, out)
    state = fleet.gather()
    if not check:       # a multi-plot job on a count: 1 host (started by hand) is guarded too
        stray = {hs.name for hs in state.hosts
                 if hs.name in hosts and hosts[hs.name].count == 1
                 and any(j.count != 1 for j in hs.jobs)}
        if stray:
            apply_mod.guard_room(fleet, hosts, out, names=stray)
    now = time.time()
    holds = bad_plot_holds(state, hosts, lambda hs: host_clock(hs, state, now), now)
    apply_mod.hold_jobs(fleet, holds, out, check)
    decision = schedule(state, hosts, now, max_new=tracker.remaining)
    apply_mod.start_jobs(fleet, hosts, decision.starts, out, check)
    tracker.unanswered += tuple(out.unanswered)
    tracker.started.update((host, log) for host, _pid, log in out.started)
    cleans, clean_waits = cleanups(state, hosts, lambda hs: host_clock(hs, state, now))
    apply_mod.clean_dead(fleet, hosts, cleans, out, check)
    proofs, arch = archive_step(fleet, hosts, state, out, check)
    waits = decision.waits + clean_waits + proofs.waits + arch.waits
    decisions = {"starts": [asdict(s) for s in decision.starts],
                 "waits": [asdict(w) for w in waits],
                 "checks": [asdict(c) for c in proofs.starts],
                 "holds": [asdict(h) for h in holds],
                 "quarantines": [asdict(q) for q in proofs.quarantines],
                 "cleanups": [asdict(c) for c in cleans],
                 "transfers": [asdict(t) for t in arch.transfers],
                 "promotes": [asdict(p) for p in arch.promotes],
                 "cleans": [asdict(c) for c in arch.cleans],
                 "drive_failures": [asdict(n) for n in arch.notes]}
    return PassResult(state, tuple(out.events), waits,
                      decision.waits, decision.backpressure, decisions,
                      outlook(state, hosts, decision, arch, out.events))


class Unattended:
    """What a pass leaves behind for a farmer who is not watching: its events
    in the application log (remote/applog.py) and alerts where the farmer is
    (remote/notify.py).  Neither may ever stop plotting: both swallow their
    own failures (the log records a failed send).  Under --check nothing is
    recorded and nothing is sent."""

    def __init__(self, controller, check: bool = False):
        from orchestrator.remote.applog import AppLog
        from orchestrator.remote.notify import Notifier
        self.check = check
        self.controller = controller
        self.log = AppLog(controller)
        self.notifier = Notifier(controller.notify,
                                 state_path=os.path.join(controller.state_dir, "alerts.json"),
                                 log=lambda line: self.log.note("notify_failed", line,
                                                                failed=True))

    def after(self, result: PassResult, hosts: Mapping[str, Host]) -> None:
        if self.check:
            return
        self.log.record(result)
        self.notifier.after_pass(result, hosts, self.controller)

    def close(self) -> None:
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
