"""suspend / resume / kill: pick jobs by plot-id prefix across the fleet.

Selection is pure (state in, targets out); the tasks in cli.py send the
requests.  A prefix must name exactly one job fleet-wide, else the matches
are listed and nothing is done.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

from orchestrator.errors import UserError
from orchestrator.core.state import FleetState


@dataclass(frozen=True)
class Target:
    host: str
    plot_id: Optional[str]
    pid: Optional[int]          # None: a dead job (only its temp files remain)
    state: str                  # running | suspended | stalled | dead
    tmp_bytes: int
    tmp_files: int = 0          # dead jobs: how many leftovers there are
    started_at: Optional[float] = None   # as the snapshot saw it: a reused pid is refused

    def describe(self) -> str:
        pid = f"pid {self.pid}" if self.pid else "no process"
        return f"{self.host}: {(self.plot_id or '?')[:12]} ({self.state}, {pid})"

    def to_json(self) -> dict:
        return {"host": self.host, "plot_id": self.plot_id, "pid": self.pid,
                "state": self.state, "tmp_bytes": self.tmp_bytes}


def targets(state: FleetState) -> List[Target]:
    out = []
    for h in state.hosts:
        for j in h.jobs:
            out.append(Target(h.name, j.plot_id, j.pid,
                              "stalled" if j.stalled else j.state, j.tmp_bytes,
                              started_at=j.started_at or None))
        for d in h.dead:
            if d.plot_id:       # one that died before naming its plot left nothing to name
                out.append(Target(h.name, d.plot_id, None, "dead", d.tmp_bytes,
                                  len(d.tmp_files)))
    return out


def select(state: FleetState, prefix: Optional[str], all_: bool,
           include_dead: bool = False) -> Tuple[Target, ...]:
    """The jobs a control command acts on, or a UserError saying why none."""
    pool = [t for t in targets(state) if include_dead or t.state != "dead"]
    if all_ == bool(prefix):
        raise UserError("give a plot id prefix or --all (not both)")
    if all_:   # a dead job with nothing left to clean is history, not a target
        return tuple(t for t in pool if t.state != "dead" or t.tmp_files)
    prefix = prefix.lower()
    matches = [t for t in pool if t.plot_id and t.plot_id.startswith(prefix)]
    if not matches:
        down = [h.name for h in state.hosts if not h.reachable]
        raise UserError(f"no job with plot id starting {prefix!r}"
                        + (f" (unreachable: {', '.join(down)})" if down else ""))
    if len(matches) > 1:
        raise UserError(f"plot id prefix {prefix!r} is ambiguous: "
                        + "; ".join(t.describe() for t in matches))
    return tuple(matches)
