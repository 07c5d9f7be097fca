"""The farmer's proof-check commands, carried out over the fleet.

- `release`: a quarantined plot goes back to be archived (unchecked), or is
  deleted; only ever on the farmer's command, never plotfleet's decision.
- `check_farm`: plots already on harvester drives are checked where they
  are, one drive at a time per harvester (harvesters in parallel), at idle
  priority; bad ones are reported, never moved.
"""
from __future__ import annotations

import posixpath
import time
from dataclasses import dataclass
from typing import List, Optional, Tuple

from orchestrator.core.state import Check, FleetState, Host, Quarantined
from orchestrator.errors import AgentError, SessionError, UserError, one_line

POLL_S = 0.5


def matching(state: FleetState, spec: str) -> List[Tuple[str, Quarantined]]:
    """The quarantined plots `spec` names: a path, a file name, or a plot id
    prefix (at least 8 hex digits)."""
    spec = spec.strip()
    out = []
    for hs in state.hosts:
        for q in hs.quarantine:
            name = posixpath.basename(q.path)
            if spec in (q.path, name) or (len(spec) >= 8 and q.plot_id
                                          and q.plot_id.startswith(spec.lower())):
                out.append((hs.name, q))
    return out


def release(fleet, state: FleetState, spec: str, delete: bool) -> Tuple[str, Quarantined, object]:
    """Release (or delete) the one quarantined plot `spec` names:
    (host, the plot, the agent's answer).  UserError when none or several
    match; AgentError/SessionError when its host refuses or cannot."""
    found = matching(state, spec)
    if not found:
        down = [h.name for h in state.hosts if not h.reachable]
        raise UserError(f"release {spec}: no quarantined plot matches"
                        + (f" (unreachable: {', '.join(down)})" if down else ""))
    if len(found) > 1:
        raise UserError(f"release {spec}: {len(found)} quarantined plots match: "
                        + ", ".join(f"{h}:{q.path}" for h, q in found))
    host, q = found[0]
    return host, q, fleet.agent(host).release_plot(plot=q.path, delete=delete)


@dataclass(frozen=True)
class FarmCheck:
    """One plot checked where it lies on a harvester drive."""
    host: str
    path: str
    check: Optional[Check]          # None: its check left no record

    @property
    def bad(self) -> bool:
        return self.check is not None and self.check.status == "failed"


@dataclass(frozen=True)
class FarmReport:
    checks: Tuple[FarmCheck, ...]
    errors: Tuple[Tuple[str, str], ...]      # (host or host:dir, why)


def _settings(h: Host) -> dict:
    out = {"challenges": h.check_challenges, "min_ratio": h.check_min_ratio,
           "challenges_v2": h.check_challenges_v2}
    if h.check_command:
        out["command"] = h.check_command
    return out


def _drives(hs) -> List[List[str]]:
    """The harvester's usable farm dirs, grouped by drive."""
    by_dev = {}
    for d in hs.dirs:
        if d.kind == "farm" and d.error is None and d.plot_count:
            by_dev.setdefault(d.device, []).append(d.path)
    return list(by_dev.values())


def _one_harvester(fleet, h: Host, hs, sample: int):
    """Check its drives one after the other; (FarmChecks, errors)."""
    if not hs.reachable:
        return [], [(h.name, f"unreachable: {hs.error}")]
    found, errors = [], []
    for drive in _drives(hs):
        for farm_dir in drive:
            try:
                plots = fleet.agent(h.name).start_drive_check(
                    farm_dir=farm_dir, sample=sample, settings=_settings(h)).plots
                got = {}
                while plots:
                    got = fleet.agent(h.name).read_checks(plots=plots).checks
                    if all(c is not None and c["status"] != "running" for c in got.values()):
                        break
                    time.sleep(POLL_S)
            except (AgentError, SessionError) as e:
                errors.append((f"{h.name}:{farm_dir}", one_line(e)))
                continue
            for path in plots:
                rec = got.get(path)
                c = None if rec is None else Check(**{k: v for k, v in rec.items()
                                                      if k in Check.__dataclass_fields__})
                found.append(FarmCheck(h.name, path, c))
    return found, errors


def check_farm(fleet, harvesters: List[Host], sample: int = 0) -> FarmReport:
    """Every harvester's drives checked, harvesters in parallel."""
    state = fleet.gather(harvesters)        # before: the pool's threads each run one harvester
    results = fleet._map(lambda h: _one_harvester(fleet, h, state.host(h.name), sample),
                         harvesters)
    checks, errors = [], []
    for found, errs in results:
        checks += found
        errors += errs
    return FarmReport(tuple(checks), tuple(errors))
