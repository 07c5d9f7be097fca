"""Where the replot wave stands (pure): old plots left and new plots on the
farm, per harvester and fleet-wide, how many old plots went in the last 24 h
(the harvesters' ledgers), and when, at that rate, the last one goes.

With `replot_deadline` (a date, the v1 phase-out's end, which Chia has not
fixed: nothing about fork heights lives in code) the wave is "on track, N
days to spare" or "behind: needs M plots/day, makes K".
"""
from __future__ import annotations

import datetime
import math
from dataclasses import dataclass
from typing import Mapping, Optional, Tuple

from orchestrator.core.state import FleetState, Host

DAY_S = 86400.0


@dataclass(frozen=True)
class HarvesterWave:
    host: str
    old: int                # replaceable plots left
    new: int                # the other plots on its farm
    replaced_24h: int       # old plots deleted for new ones in the last 24 h


@dataclass(frozen=True)
class Wave:
    harvesters: Tuple[HarvesterWave, ...]
    old: int
    new: int
    replaced_24h: int
    days_left: Optional[float]      # at the last 24 h's rate (None: no rate, or done)
    deadline: Optional[str]
    verdict: Optional[str]          # "on track, N days to spare" | "behind: ..." | "done"
    behind: bool = False

    @property
    def active(self) -> bool:
        """Any harvester has replot rules: the wave is worth showing."""
        return bool(self.harvesters)

    def line(self) -> str:
        end = f", last old plot in {self.days_left:.1f} days at this rate" \
            if self.days_left is not None else ""
        verdict = f"; {self.verdict}" if self.verdict else ""
        return (f"replot: {self.old} old plots left, {self.new} new; "
                f"{self.replaced_24h} replaced in 24 h{end}{verdict}")

    def to_json(self) -> dict:
        return {"old": self.old, "new": self.new, "replaced_24h": self.replaced_24h,
                "days_left": self.days_left, "deadline": self.deadline,
                "verdict": self.verdict, "behind": self.behind,
                "harvesters": [{"host": h.host, "old": h.old, "new": h.new,
                                "replaced_24h": h.replaced_24h} for h in self.harvesters]}


def wave(state: FleetState, hosts: Mapping[str, Host], deadline: Optional[str] = None,
         today: Optional[datetime.date] = None) -> Wave:
    rows = []
    for hs in state.hosts:
        host = hosts.get(hs.name)
        if host is None or not host.is_harvester or not host.replot or not hs.reachable:
            continue
        # a dir under two names (a link) is one dir: its plots count once
        farm = list({d.resolved or d.path: d for d in reversed(hs.dirs)
                     if d.kind == "farm"}.values())
        old = sum(d.replaceable_count for d in farm)
        total = sum(d.plot_count for d in farm)
        since = hs.host_time - DAY_S
        done = sum(1 for s in hs.replot.sets for d in s.deletions if d.at >= since)
        rows.append(HarvesterWave(hs.name, old, max(0, total - old), done))
    old = sum(r.old for r in rows)
    new = sum(r.new for r in rows)
    rate = sum(r.replaced_24h for r in rows)
    days_left = old / rate if rate and old else (0.0 if rows and not old else None)
    verdict, behind = None, False
    if rows and not old:
        verdict = "done: no old plots left"
    elif deadline and rows:
        today = today or datetime.date.today()
        left = (datetime.date.fromisoformat(deadline) - today).days
        need = math.ceil(old / left) if left > 0 else old
        if left > 0 and days_left is not None and days_left <= left:
            verdict = f"on track, {int(left - days_left)} days to spare"
        else:
            behind = True
            verdict = f"behind: needs {need} plots/day, makes {rate}"
    return Wave(tuple(rows), old, new, rate, days_left, deadline, verdict, behind)
