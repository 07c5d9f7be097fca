"""Which finished plots get their proof check, and which go to quarantine.

Pure.  A plot is archived only once its check is over (Check.done: passed,
not checked with a reason, or released by the farmer); the archiver skips
the others, and this module says why each waits:

- no check yet (or one that was interrupted): StartCheck, while fewer than
  `check_parallel` checks run on the plotter (the agent counts again under
  its host lock, so two controllers never run more).  Every such plot
  starts at once, spread over the runners free (`runner`), each checking
  its plots in turn: a GPU plotter's plots, a few seconds apart, are not
  checked one per pass;
- a check running: a Wait saying so;
- a check that failed: Quarantine, which moves the plot to
  `<dst>/quarantine/` (the agent refuses unless the plot's own record
  failed).  plotfleet never deletes it: only `plotfleet release`.

Checks run while other plots are copied: nothing here waits on transfers.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Mapping, Tuple

from orchestrator.core.decisions import Wait
from orchestrator.core.state import FleetState, Host, HostState


@dataclass(frozen=True)
class StartCheck:
    """Run the proof check of one finished plot on its plotter."""
    host: str
    plot: str
    challenges: int
    min_ratio: float
    challenges_v2: int
    command: str = ""               # check_command ("" : none)
    max_running: int = 1
    reason: str = "new plot"
    runner: int = 0                 # which runner this pass starts on the plotter checks it

    def settings(self) -> dict:
        out = {"challenges": self.challenges, "min_ratio": self.min_ratio,
               "challenges_v2": self.challenges_v2}
        if self.command:
            out["command"] = self.command
        return out

    def describe(self) -> str:
        return (f"{self.host}:{posixpath.basename(self.plot)}: {self.challenges} challenges, "
                f"min ratio {self.min_ratio:g} ({self.reason})")


@dataclass(frozen=True)
class Quarantine:
    """Move a plot that failed its check into `<dst>/quarantine/`."""
    host: str
    plot: str
    reason: str                     # the prover's words, or the ratio found

    def describe(self) -> str:
        return f"{self.host}:{posixpath.basename(self.plot)}: {self.reason}"


@dataclass(frozen=True)
class CheckDecision:
    starts: Tuple[StartCheck, ...] = ()
    quarantines: Tuple[Quarantine, ...] = ()
    waits: Tuple[Wait, ...] = ()


def _start(host: Host, path: str, reason: str, runner: int) -> StartCheck:
    return StartCheck(host.name, path, host.check_challenges, host.check_min_ratio,
                      host.check_challenges_v2, host.check_command or "",
                      host.check_parallel, reason, runner)


def _plotter(host: Host, hs: HostState):
    starts: List[StartCheck] = []
    quarantines: List[Quarantine] = []
    waits: List[Wait] = []
    own_farm = [d.rstrip("/") for d in host.farm_dirs]
    running = len({c.pid for c in hs.checks if c.status == "running"})     # runners
    free, new = max(0, host.check_parallel - running), 0
    for p in sorted(hs.plots, key=lambda p: (p.mtime, p.path)):     # oldest first
        name = posixpath.basename(p.path)
        if p.error or posixpath.dirname(p.path).rstrip("/") in own_farm:
            continue                # the archiver says why (or farmed where it is)
        c = p.check
        if c is None or c.status == "interrupted":
            why = "new plot" if c is None else "its last check was interrupted"
            if free:
                starts.append(_start(host, p.path, why, new % free))
                new += 1
            else:
                waits.append(Wait(host.name, name, f"proof check waits: {running}/"
                                                   f"{host.check_parallel} checks running"))
        elif c.status == "running":
            waits.append(Wait(host.name, name, "proof check running"))
        elif c.status == "failed":
            quarantines.append(Quarantine(host.name, p.path, c.error or "check failed"))
    return starts, quarantines, waits


def checked_now(starts: Tuple[StartCheck, ...]) -> FrozenSet[Tuple[str, str]]:
    """(plotter, plot) of the checks that begin the moment they start: the
    first plot of each runner (the others wait their turn in it).  These the
    archiver hands over with their check (archiver.py `checking`); a plot
    still waiting its turn waits to be proven, or its runner would hold a
    drive for a check not even begun."""
    first: Dict[Tuple[str, int], str] = {}
    for s in starts:
        first.setdefault((s.host, s.runner), s.plot)
    return frozenset((host, plot) for (host, _), plot in first.items())


def checks(state: FleetState, hosts: Mapping[str, Host]) -> CheckDecision:
    """The proof checks to start and the plots to quarantine, fleet-wide."""
    starts: List[StartCheck] = []
    quarantines: List[Quarantine] = []
    waits: List[Wait] = []
    for hs in state.hosts:
        host = hosts.get(hs.name)
        if host is None or not host.is_plotter or not hs.reachable:
            continue
        s, q, w = _plotter(host, hs)
        starts += s
        quarantines += q
        waits += w
    return CheckDecision(tuple(starts), tuple(quarantines), tuple(waits))
