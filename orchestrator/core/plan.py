"""One pass's plan: every action core decides, as frozen data, in the order
remote/apply.py carries it out.

A pass is plan, apply, follow up (plotloop.py):

    plan_before(hosts, unanswered)      -> Plan  asks again, guards (before the snapshot)
    plan(state, hosts, now, max_new)    -> Plan  guards, holds, starts, clean-ups,
                                           proof checks and quarantines, archiving
    apply(fleet, hosts, plan, check)    -> outcomes (core/outcomes.py)
    follow_up(outcomes, now)            -> FollowUp (core/followup.py): its Plan is
                                           applied at once, in the same pass

The plan is the same with or without --check; only apply differs (it says
what it would do).  What a run remembers between passes is small: the starts
whose answer was lost (asked again) and how many more jobs it may start.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Iterable, Mapping, Optional, Tuple

from orchestrator.core.archiver import ArchiveDecision, archive
from orchestrator.core.checker import Quarantine, StartCheck, checked_now, checks
from orchestrator.core.decisions import (CleanDead, CleanPartial, NoteDriveFailure, Promote,
                                         RemoveSource, StartJob, StartTransfer, Wait)
from orchestrator.core.failures import HoldJob, bad_plot_holds, cleanups
from orchestrator.core.farm import Farm, farm
from orchestrator.core.scheduler import Decision, host_clock, schedule
from orchestrator.core.state import FleetState, Host, expected_plot_bytes


@dataclass(frozen=True)
class GuardRoom:
    """A plotter with multi-plot jobs suspends those whose dst cannot take
    their plot and resumes the ones it suspended that fit again (the host
    decides which: agent/ops/room.py)."""
    host: str
    plot_bytes: int

    def describe(self) -> str:
        return f"{self.host}: multi-plot jobs kept within their dst room"


@dataclass(frozen=True)
class AskAgain:
    """A start whose answer was lost, sent again with its request id: the
    host answers what it did if the first one ran, or runs it now, never both."""
    start: StartJob
    args: dict = field(compare=False, hash=False)     # the request as first sent
    sent_at: float = 0.0

    def describe(self) -> str:
        return f"ask {self.start.host} again: {self.start.describe()}"


@dataclass(frozen=True)
class Plan:
    asks: Tuple[AskAgain, ...] = ()
    guards: Tuple[GuardRoom, ...] = ()
    holds: Tuple[HoldJob, ...] = ()         # endless jobs making bad plots: suspended
    starts: Tuple[StartJob, ...] = ()
    cleanups: Tuple[CleanDead, ...] = ()
    # a plot is proven before it moves: the bad ones quarantined, new ones checked
    quarantines: Tuple[Quarantine, ...] = ()
    checks: Tuple[StartCheck, ...] = ()
    notes: Tuple[NoteDriveFailure, ...] = ()
    # finish what arrived first: a promoted plot frees its drive for the next
    promotes: Tuple[Promote, ...] = ()
    removals: Tuple[RemoveSource, ...] = ()
    cleans: Tuple[CleanPartial, ...] = ()
    transfers: Tuple[StartTransfer, ...] = ()
    waits: Tuple[Wait, ...] = ()             # everything not done, and why
    # what it was decided from, for the pass's view (core/outlook.py)
    schedule: Optional[Decision] = field(default=None, compare=False)
    archive: Optional[ArchiveDecision] = field(default=None, compare=False)
    farm: Optional[Farm] = field(default=None, compare=False)

    @property
    def actions(self) -> tuple:
        return (self.asks + self.guards + self.holds + self.starts + self.cleanups
                + self.quarantines + self.checks + self.notes
                + self.promotes + self.removals + self.cleans + self.transfers)

    def __bool__(self) -> bool:
        return bool(self.actions)

    @property
    def plotter_waits(self) -> Tuple[Wait, ...]:
        return self.schedule.waits if self.schedule is not None else ()

    @property
    def backpressure(self) -> Optional[str]:
        return self.schedule.backpressure if self.schedule is not None else None

    def to_json(self) -> dict:
        """plot-all --json's `decisions`."""
        return {"starts": [asdict(s) for s in self.starts],
                "waits": [asdict(w) for w in self.waits],
                "cleanups": [asdict(c) for c in self.cleanups],
                "holds": [asdict(h) for h in self.holds],
                "checks": [asdict(c) for c in self.checks],
                "quarantines": [asdict(q) for q in self.quarantines],
                "transfers": [asdict(t) for t in self.transfers],
                # replotting: the old plots each transfer deletes for its plot first
                "deletions": [asdict(d) for t in self.transfers for d in t.deletions],
                "promotes": [asdict(p) for p in self.promotes],
                "cleans": [asdict(c) for c in self.cleans],
                "drive_failures": [asdict(n) for n in self.notes]}


def _guard(h: Host) -> GuardRoom:
    return GuardRoom(h.name, expected_plot_bytes(h.k, h.compression))


def plan_before(hosts: Iterable[Host], asks: Iterable[AskAgain]) -> Plan:
    """Before the snapshot: the starts whose answer was lost, asked again (one
    that did happen is then seen as a job, and counted among this run's), and
    each plotter with multi-plot jobs (count != 1) guards its dst room."""
    return Plan(asks=tuple(asks),
                guards=tuple(_guard(h) for h in hosts if h.is_plotter and h.count != 1))


def archive_plan(state: FleetState, hosts: Mapping[str, Host],
                 model: Optional[Farm] = None) -> Plan:
    """The archive half of a pass (plot-all's, and the `archive` task's):
    new plots proven (checks started, failed ones quarantined), proven ones
    sent."""
    proofs = checks(state, hosts)
    arch = archive(state, hosts, model, checked_now(proofs.starts))
    return Plan(quarantines=proofs.quarantines, checks=proofs.starts, notes=arch.notes,
                promotes=arch.promotes, cleans=arch.cleans, transfers=arch.transfers,
                waits=proofs.waits + arch.waits, archive=arch, farm=model)


def plan(state: FleetState, hosts: Mapping[str, Host], now: float,
         max_new: Optional[int] = None) -> Plan:
    """Everything one pass does after its snapshot, and why the rest waits."""
    model = farm(state, hosts)          # once a pass: scheduler, archiver and views read it
    # a multi-plot job on a count: 1 host (started by hand) is guarded too
    stray = tuple(_guard(hosts[hs.name]) for hs in state.hosts
                  if hs.name in hosts and hosts[hs.name].count == 1
                  and any(j.count != 1 for j in hs.jobs))
    clock = lambda hs: host_clock(hs, state, now)   # noqa: E731
    decision = schedule(state, hosts, now, max_new=max_new, model=model)
    cleans, clean_waits = cleanups(state, hosts, clock)
    arch = archive_plan(state, hosts, model)
    return Plan(guards=stray, holds=bad_plot_holds(state, hosts, clock, now),
                starts=decision.starts, cleanups=cleans, quarantines=arch.quarantines,
                checks=arch.checks, notes=arch.notes,
                promotes=arch.promotes, cleans=arch.cleans, transfers=arch.transfers,
                waits=decision.waits + clean_waits + arch.waits,
                schedule=decision, archive=arch.archive, farm=model)
