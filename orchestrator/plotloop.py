"""One plot-all pass, and the loop around it.

gather -> schedule + archive (pure) -> apply -> render.  Nothing is
remembered between passes except which jobs this run started (for --plots N)
and the starts whose answer was lost (asked again, by their request id, at the
next pass): whatever the controller forgets, the next pass sees again on the
hosts.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Mapping, Optional, Set, Tuple

from agent.logparse import analyze_log

from . import apply as apply_mod
from .archiver import archive
from .model import FleetState, Host
from .scheduler import schedule


@dataclass
class PassResult:
    state: FleetState
    lines: list
    backpressure: Optional[str]
    started: list
    failed: list = field(default_factory=list)     # the lines of `lines` that are failures


@dataclass
class RunTracker:
    """The jobs this run started, followed until their plots are archived."""
    limit: Optional[int]
    started: Set[Tuple[str, str]] = field(default_factory=set)     # (host, log_file)
    plot_ids: dict = field(default_factory=dict)                    # (host, log) -> id
    unanswered: tuple = ()            # apply.Unanswered: starts that may be running

    @property
    def remaining(self) -> Optional[int]:
        if self.limit is None:
            return None
        return max(self.limit - len(self.started) - len(self.unanswered), 0)

    def learn(self, state: FleetState, fleet, hosts: Mapping[str, Host]) -> None:
        for h in state.hosts:
            for j in h.jobs:
                if (h.name, j.log_file) in self.started and j.plot_id:
                    self.plot_ids[(h.name, j.log_file)] = j.plot_id
        for key in self.started - set(self.plot_ids):
            host, log = key
            if any(j.log_file == log for j in state.host(host).jobs):
                continue
            try:   # finished between two polls: its log names the plot
                data = fleet.call(host, "read_log", config=hosts[host].agent_config(),
                                  path=log, offset=0, max_bytes=65536)["data"]
            except Exception:
                continue
            info = analyze_log(data)
            if info and info["plot_id"]:
                self.plot_ids[key] = info["plot_id"]

    def done(self, state: FleetState, with_harvesters: bool) -> bool:
        """All N started, none still plotting, none still waiting or moving."""
        if self.limit is None or len(self.started) < self.limit or self.unanswered:
            return False
        if len(self.plot_ids) < len(self.started):
            return False
        ids = set(self.plot_ids.values())
        for h in state.hosts:
            if not h.reachable and h.name in {host for host, _ in self.started}:
                return False
            if any(j.log_file and (h.name, j.log_file) in self.started for j in h.jobs):
                return False
            if with_harvesters and any(p.plot_id in ids for p in h.plots):
                return False
            if any(_id_in(t.plot, ids) for t in h.transfers):
                return False
        return True


def _id_in(path: str, ids) -> bool:
    return any(i in path for i in ids)


def run_pass(fleet, hosts: Mapping[str, Host], check: bool, tracker: RunTracker) -> PassResult:
    out = apply_mod.Outcome()
    # before the snapshot and the schedule: a start that did happen is then
    # seen as a job, and counted among this run's
    tracker.unanswered = apply_mod.ask_again(fleet, tracker.unanswered, out)
    tracker.started.update((host, log) for host, _pid, log in out.started)
    state = fleet.gather()
    decision = schedule(state, hosts, time.time(), max_new=tracker.remaining)
    for w in decision.waits:
        out.add(f"{w.host}: waiting: {w.reason}")
    apply_mod.start_jobs(fleet, hosts, decision.starts, out, check)
    tracker.unanswered += tuple(out.unanswered)
    tracker.started.update((host, log) for host, _pid, log in out.started)
    arch = archive(state, hosts)
    apply_mod.archive(fleet, hosts, arch, out, check)
    for w in arch.waits:
        out.add(f"{w.host}: {w.subject}: {w.reason}")
    return PassResult(state, out.lines, decision.backpressure, out.started, out.failed)
