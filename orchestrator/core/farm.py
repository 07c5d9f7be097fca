"""The one farm model: the harvester drives this run can send plots to, and
their room after each harvester's reserve.  Scheduler (backpressure),
archiver (where each plot goes) and views (the summary, the dashboard) all
read it, so "room for N" and the backpressure note never disagree.

A drive is a device on one harvester: two farm dirs on one disk are one
drive.  Only harvesters this run asked count (--limit may leave some out);
one that did not answer adds no room.  A farm dir with an error (missing,
read-only, not mounted, not responding, set aside) is no drive: it is
listed in `unusable`, with why.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Tuple

from orchestrator.core import plotsize
from orchestrator.core.plotsize import Compression
from orchestrator.core.state import FleetState, Host, OldPlot, expected_plot_bytes


@dataclass(frozen=True)
class Drive:
    host: str
    device: str
    dirs: Tuple[str, ...]           # the farm dirs on it, as the host reported them
    free_bytes: int
    total_bytes: int
    reserve_bytes: int              # the harvester's farm_reserve_bytes
    plot_count: int
    resolved: Dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    # replotting: bytes of the plots a replot rule matches here, the largest
    # of them (core/replot.py picks among these), why replotting stopped here
    replaceable_bytes: int = 0
    replaceable_count: int = 0
    old: Tuple[OldPlot, ...] = field(default=(), compare=False, hash=False)
    stopped: Optional[str] = None

    @property
    def room(self) -> int:
        """Bytes a plot may still take here (free minus the reserve)."""
        return self.free_bytes - self.reserve_bytes

    def label(self) -> str:
        return f"{self.host}:{self.dirs[0]}"


@dataclass(frozen=True)
class Farm:
    drives: Tuple[Drive, ...]
    unusable: Tuple[Tuple[str, str, str], ...] = ()     # (host, dir, why)
    down: Tuple[str, ...] = ()      # "harvester: why" of the ones that did not answer
    asked: bool = False             # this run has harvesters at all
    # sizes of plots seen on the fleet, by (k, compression): Gigahorse's sizes
    observed: plotsize.Observed = field(default_factory=dict, compare=False, hash=False)
    # (label, count) of the plots on these drives, by k and compression
    kinds: Tuple[Tuple[str, int], ...] = ()

    @property
    def room(self) -> int:
        return sum(max(0, d.room) for d in self.drives)

    @property
    def replaceable(self) -> int:
        """Bytes replotting may still free (drives where it is not stopped)."""
        return sum(d.replaceable_bytes for d in self.drives if not d.stopped)

    def plot_bytes(self, k: int, compression: Optional[Compression] = None) -> int:
        return expected_plot_bytes(k, compression, self.observed)

    def estimate(self, k: int, compression: Optional[Compression] = None) -> plotsize.Estimate:
        """A plot's size with where it comes from (`assumed`: no plot of the
        kind seen yet, a planning figure)."""
        return plotsize.estimate(k, compression, self.observed)

    def fits(self, k: int, compression: Optional[Compression] = None) -> int:
        return self.room // self.plot_bytes(k, compression)


def observed(state: FleetState) -> plotsize.Observed:
    """Sizes of the plots the fleet holds (waiting in dst dirs, and each farm
    dir's median by kind), for sizes no table gives."""
    seen = []
    for hs in state.hosts:
        seen += [(p.k, p.compression, p.size_bytes) for p in hs.plots if not p.error]
        for d in hs.dirs:
            for k, level, fmt, count, median in d.plot_kinds:
                seen += [(k, plotsize.compression(fmt, level), median)] * min(int(count), 1000)
    return plotsize.observe(seen)


def farm(state: FleetState, hosts: Mapping[str, Host]) -> Farm:
    drives, unusable, down = [], [], []
    kinds: Dict[str, int] = {}
    asked = False
    for hs in state.hosts:
        host = hosts.get(hs.name)
        if host is None or not host.is_harvester:
            continue
        asked = True
        if not hs.reachable:
            down.append(f"{hs.name}: {hs.error}")
            continue
        own: Dict[str, dict] = {}
        stopped = dict(hs.replot.stopped)
        for d in hs.dirs:
            if d.kind != "farm":
                continue
            if d.error:
                unusable.append((hs.name, d.path, d.error))
                continue
            g = own.setdefault(d.device, {"dirs": [], "free": d.free_bytes,
                                          "total": d.total_bytes, "plots": 0, "resolved": {},
                                          "old_bytes": 0, "old_count": 0, "old": [],
                                          "stopped": None})
            g["dirs"].append(d.path)
            real = d.resolved or d.path
            if real in g["resolved"].values():
                # one dir under two names (listed twice, or through a link):
                # its plots are counted, and offered for deletion, once
                g["resolved"][d.path] = real
                continue
            if host.replot:
                g["old_bytes"] += d.replaceable_bytes
                g["old_count"] += d.replaceable_count
                g["old"] += d.replaceable
            g["stopped"] = g["stopped"] or stopped.get(d.resolved or d.path)
            g["plots"] += d.plot_count
            for k, level, fmt, count, _ in d.plot_kinds:
                c = plotsize.compression(fmt, level)
                name = plotsize.kind_label(k, c) if c is not None else f"k{k} C0"
                kinds[name] = kinds.get(name, 0) + int(count)
            g["resolved"][d.path] = d.resolved or d.path
        for device, g in own.items():
            drives.append(Drive(hs.name, device, tuple(g["dirs"]), g["free"], g["total"],
                                host.farm_reserve_bytes, g["plots"], g["resolved"],
                                g["old_bytes"], g["old_count"], tuple(g["old"]), g["stopped"]))
    return Farm(tuple(drives), tuple(unusable), tuple(down), asked, observed(state),
                tuple(sorted(kinds.items())))


def settled(state: FleetState, hosts: Mapping[str, Host]) -> bool:
    """Can the farm make no more room by itself?  Every harvester answers,
    every farm dir is usable (none set aside, missing or unmounted: those may
    come back), no transfer temp file waits to be cleaned and no farm plot
    matches a replot rule (replotting frees room).  Then a plot no drive has
    room for waits for the farmer."""
    harvesters = [h for h in state.hosts if h.name in hosts and hosts[h.name].is_harvester]
    return bool(harvesters) and all(
        h.reachable and not h.partials and all(d.error is None and not d.replaceable_count
                                               for d in h.dirs if d.kind == "farm")
        for h in harvesters)
