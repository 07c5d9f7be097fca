"""Replotting, just in time: which old plots give way to a new one (pure).

A finished new plot that finds no drive with room goes to the drive whose
replaceable plots (a `replot` rule matches them, agent/vocab/replot.py), once
removed, make room for it with the fewest deletions; ties go to the drive
whose chosen plots are oldest, then lowest in k and level.  Within a drive
the largest replaceable plots go first (fewest deletions), and no more of
them than the plot needs: without the last one chosen the room falls short.
Never for farm_reserve_bytes: a drive already below its reserve is skipped.

The harvesters' ledgers (agent/facts/ledger.py) come first:
- a plot that has its set of deletions goes where its room was made; if that
  drive cannot take it now, it may go where room is free, but nothing new is
  deleted for it anywhere;
- room freed for a plot and still pending is that plot's: other plots see
  the drive without it;
- while a set waits for its plot (no live claim: its transfer failed, its
  controller died, its drive was set aside), nothing new is deleted on the
  fleet: that room is used first.  A waiting set whose plot its plotter (it
  answered this pass) no longer has nor sends no longer holds anything: its
  harvester is told the plot is gone with the next claim, and its room is
  anyone's;
- replot_max_deletes_per_hour counts the harvester's own records plus what
  this pass plans.
The plan names every deletion (a Deletion on the StartTransfer); apply makes
exactly those, and the harvester checks each again before it deletes.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Dict, Iterable, Mapping, Optional, Sequence, Set, Tuple

from agent.vocab import replot as rules
from orchestrator.core.decisions import human_bytes
from orchestrator.core.state import FleetState, Host, OldPlot, ReplotSet


@dataclass(frozen=True)
class Deletion:
    """One old plot a harvester deletes to make room for a new one."""
    host: str                # harvester
    path: str
    size_bytes: int
    rule: str                # the rule it matched, as the harvester reported it
    for_plot: str            # the new plot's file name

    def describe(self) -> str:
        return (f"{self.host}:{self.path} ({human_bytes(self.size_bytes)}, {self.rule}) "
                f"for {self.for_plot}")


@dataclass(frozen=True)
class Ledger:
    """The fleet's replot sets as one pass sees them."""
    sets: Dict[str, Tuple[str, ReplotSet]] = field(default_factory=dict)   # plot name ->
    waiting: Tuple[str, ...] = ()       # why no new deletion: a set waits for its plot
    gone: Dict[str, Tuple[str, ...]] = field(default_factory=dict)  # harvester -> plot ids
    held: Dict[Tuple[str, str], Dict[str, int]] = field(default_factory=dict)  # (host, dir)


def ledger(state: FleetState, hosts: Mapping[str, Host], present: Mapping[str, Set[str]]
           ) -> Ledger:
    """`present`: plotter -> the plot names waiting on it or being sent from
    it, for each plotter of the run that answered.  A waiting set whose plot
    its own plotter (the set names it) no longer has is gone."""
    sets, waiting, gone, held = {}, [], {}, {}
    for hs in state.hosts:
        host = hosts.get(hs.name)
        if host is None or not host.is_harvester or not hs.reachable:
            continue
        for s in hs.replot.sets:
            if not s.pending:
                continue
            if s.from_host in present and s.plot not in present[s.from_host] \
                    and not s.claimed:
                gone.setdefault(hs.name, ())
                gone[hs.name] += (s.plot_id,)
                continue            # on no plotter: its room is anyone's
            sets[s.plot] = (hs.name, s)
            held.setdefault((hs.name, s.dir), {})[s.plot] = s.freed
            if not s.claimed:
                waiting.append(f"room freed on {hs.name}:{s.dir} for {s.plot} "
                               f"({human_bytes(s.freed)}) waits for it: no new deletion")
    return Ledger(sets, tuple(waiting), gone, held)


def new_plot_matches(host: Host, to_dir: str, name: str) -> Optional[str]:
    """The rule of the harvester that the new plot would match where it goes."""
    hit = rules.first_match(host.replot, posixpath.join(to_dir, name))
    return None if hit is None else f"rule {hit[0] + 1} ({rules.describe(hit[1])})"


def pick(old: Sequence[OldPlot], need: int, taken: Set[str]) -> Optional[Tuple[OldPlot, ...]]:
    """The fewest of `old` (largest first, oldest first among equals) whose
    sizes reach `need`, none in `taken`; None when they cannot."""
    chosen, total = [], 0
    for p in sorted(old, key=lambda p: (-p.size_bytes, p.date or "9999", p.k, p.level, p.path)):
        if total >= need:
            break
        if p.path in taken:
            continue
        chosen.append(p)
        total += p.size_bytes
    return tuple(chosen) if total >= need and chosen else None


def rank(chosen: Sequence[OldPlot], order: int) -> tuple:
    """Fewest deletions, then the oldest plots, then the lowest k and level."""
    return (len(chosen), min((p.date or "9999") for p in chosen),
            max(p.k for p in chosen), max(p.level for p in chosen), order)


@dataclass(frozen=True)
class Option:
    """A drive a new plot could replace old plots on."""
    drive: object            # the archiver's drive
    host: Host               # its harvester
    to_dir: str
    need: int                # bytes the plot takes there (less a partial of it already there)
    room: int                # free minus reserve minus room held for other plots
    below_reserve: bool
    old: Tuple[OldPlot, ...]
    stopped: Optional[str]
    order: int


@dataclass(frozen=True)
class Choice:
    drive: object
    to_dir: str
    deletions: Tuple[Deletion, ...]
    reason: str


def choose(name: str, options: Iterable[Option], led: Ledger,
           deletes_done: Mapping[str, int], taken: Set[str]):
    """Where a plot with no drive with room goes by replacing old plots: a
    Choice, or the one line saying why nothing is deleted for it."""
    if name in led.sets:
        where, s = led.sets[name]
        return (f"its room was made on {where}:{s.dir}, which cannot take it now: "
                f"nothing new is deleted for it")
    if led.waiting:
        return led.waiting[0]
    best, why_not = None, []
    for o in options:
        if not o.host.replot:
            continue
        label = f"{o.host.name}:{o.to_dir}"
        if o.stopped:
            why_not.append(f"{label}: replotting stopped: {o.stopped}")
            continue
        if o.below_reserve:
            why_not.append(f"{label}: below its farm_reserve_bytes (never deleted for)")
            continue
        matched = new_plot_matches(o.host, o.to_dir, name)
        if matched:
            why_not.append(f"{label}: {name} would match {matched} itself: refused")
            continue
        chosen = pick(o.old, o.need - o.room, taken)
        if chosen is None:
            continue
        cap = o.host.replot_max_deletes_per_hour
        done = deletes_done.get(o.host.name, 0)
        if done + len(chosen) > cap:
            why_not.append(f"{label}: replot_max_deletes_per_hour: {done} deleted in the last "
                           f"hour, {len(chosen)} more would pass {cap}")
            continue
        key = rank(chosen, o.order)
        if best is None or key < best[0]:
            best = (key, o, chosen)
    if best is None:
        return "; ".join(why_not) if why_not else None
    _, o, chosen = best
    dels = tuple(Deletion(o.host.name, p.path, p.size_bytes, p.rule, name) for p in chosen)
    return Choice(o.drive, o.to_dir, dels,
                  f"replot: {len(dels)} old plot(s) on {o.host.name}:{o.to_dir} "
                  f"({human_bytes(sum(p.size_bytes for p in chosen))}) make room")
