"""Failed jobs, decided centrally: back off a plotter whose jobs keep
failing, and clean up after a failed job once its temp files rest.

Pure: every fact comes from the hosts (each agent counts its plotter's
failures in a row from its own logs, see agent/facts/failures.py), every
threshold from the inventory (max_failures, failure_backoff_m,
clean_after_m).  A restarted controller, or a second one, decides the same.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import List, Mapping, Optional, Tuple

from orchestrator.core.decisions import CleanDead, Wait, WaitKind
from orchestrator.core.state import FleetState, Host, HostState


@dataclass(frozen=True)
class BackedOff:
    """A plotter that gets no new job until `next_try` (controller clock)."""
    host: str
    count: int
    max_failures: int
    last_error: Optional[str]
    next_try: float

    def reason(self, now: float) -> str:
        # the next try as a time, not a countdown: the reason stays the same
        # from pass to pass, so a log or an alert says it once
        when = time.strftime("%H:%M:%S", time.localtime(self.next_try))
        return (f"backed off: {self.count} failed jobs in a row (max_failures "
                f"{self.max_failures}), last error: {self.last_error or 'none in its log'}; "
                f"next try at {when}, or now with `plotfleet reset {self.host}`")


def _minutes(s: float) -> str:
    return f"{s / 60:.0f}m" if s >= 60 else f"{s:.0f}s"


def _backed_off(name: str, host: Host, count: int, last_at: float, last_error,
                host_now: Optional[float], now: float) -> Optional[BackedOff]:
    if count < host.max_failures:
        return None
    host_now = now if host_now is None else host_now
    left = last_at + host.failure_backoff_m * 60.0 - host_now
    if left <= 0:
        return None
    return BackedOff(name, count, host.max_failures, last_error, now + left)


def backoff(host: Host, hs: HostState, host_now: Optional[float],
            now: float) -> Optional[BackedOff]:
    """Whether this plotter is backed off now: max_failures failed jobs in a
    row, the last one less than failure_backoff_m ago (host clock).  A
    finished plot, or the operator's reset, ends it.  A plotter with
    cuda_devices backs off GPU by GPU (device_backoff): it is backed off
    only when every one of its GPUs is."""
    if host.cuda_devices:
        offs = [device_backoff(host, hs, d, host_now, now) for d in host.cuda_devices]
        if all(offs):
            return min(offs, key=lambda o: o.next_try)
        return None
    f = hs.failures
    return _backed_off(host.name, host, f.count, f.last_at, f.last_error, host_now, now)


def device_backoff(host: Host, hs: HostState, device: int, host_now: Optional[float],
                   now: float) -> Optional[BackedOff]:
    """Whether one GPU of a plotter is backed off: its own jobs' failures in a
    row (their log names say their GPU), so a failing GPU holds no other up."""
    f = (hs.failures.devices or {}).get(str(device)) or {}
    return _backed_off(f"{host.name} GPU {device}", host, int(f.get("count") or 0),
                       float(f.get("last_at") or 0.0), f.get("last_error"), host_now, now)


def backoffs(state: FleetState, hosts: Mapping[str, Host], host_clock,
             now: float) -> Tuple[BackedOff, ...]:
    """Every reachable plotter backed off now, in the state's order."""
    out = []
    for hs in state.hosts:
        host = hosts.get(hs.name)
        if host is not None and host.is_plotter and hs.reachable:
            b = backoff(host, hs, host_clock(hs), now)
            if b is not None:
                out.append(b)
    return tuple(out)


@dataclass(frozen=True)
class HoldJob:
    """Suspend a multi-plot job whose plots keep failing their proof check.
    An endless job is never restarted, so a back-off alone would never
    reach it; the job stays suspended, with `reason`, until the operator
    resumes it."""
    host: str
    pid: int
    started_at: float
    plot_id: Optional[str]
    reason: str

    def describe(self) -> str:
        return f"{self.host}: job pid {self.pid}: {self.reason}"


def bad_plot_holds(state: FleetState, hosts: Mapping[str, Host], host_clock,
                   now: float) -> Tuple[HoldJob, ...]:
    """The running multi-plot jobs (count != 1) of plotters backed off for
    plots that failed their check (max_failures of them in a row)."""
    out: List[HoldJob] = []
    for hs in state.hosts:
        host = hosts.get(hs.name)
        if host is None or not host.is_plotter or not hs.reachable:
            continue
        f = hs.failures
        if f.quarantined < host.max_failures or backoff(host, hs, host_clock(hs), now) is None:
            continue
        reason = (f"making bad plots: {f.quarantined} in a row failed their proof check "
                  f"(max_failures {host.max_failures}), last: {f.last_error}; "
                  f"`plotfleet reset {hs.name}`, then `plotfleet resume`")
        out += [HoldJob(hs.name, j.pid, j.started_at, j.plot_id, reason)
                for j in hs.jobs if j.count != 1 and j.state == "running"]
    return tuple(out)


def cleanups(state: FleetState, hosts: Mapping[str, Host],
             host_clock) -> Tuple[Tuple[CleanDead, ...], Tuple[Wait, ...]]:
    """The failed jobs whose temp files go now, and why the others wait.

    Only what its host reported: files named for its plot id, the dirs its
    log names; the agent checks again, on the host, before removing any.
    `host_clock(hs)` is the host's time now."""
    cleans: List[CleanDead] = []
    waits: List[Wait] = []
    for hs in state.hosts:
        host = hosts.get(hs.name)
        if host is None or not host.is_plotter or not hs.reachable:
            continue
        now = host_clock(hs)
        for d in hs.dead:
            if not d.tmp_files or not d.plot_id:
                continue
            subject = f"failed job {d.plot_id[:8]}"
            if not (d.tmp_dir or d.tmp2_dir):
                waits.append(Wait(hs.name, subject, "its log names no tmp dir: "
                                  "clean it with `plotfleet kill`", kind=WaitKind.CLEAN_UP))
                continue
            rest = host.clean_after_m * 60.0
            age = (now - d.changed_at) if now is not None and d.changed_at else rest
            if age < rest:
                waits.append(Wait(hs.name, subject, f"clean-up once its temp files rest "
                                  f"{_minutes(rest)} (changed {_minutes(max(age, 0))} ago)",
                                  kind=WaitKind.CLEAN_UP))
                continue
            cleans.append(CleanDead(hs.name, d.plot_id, d.log_file, len(d.tmp_files),
                                    d.tmp_bytes, d.error))
    return tuple(cleans), tuple(waits)
