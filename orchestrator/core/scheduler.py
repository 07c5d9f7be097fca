"""When and where to start the next plot job: plotman's rules, for a fleet.

Pure: `schedule(state, hosts, now)` reads one FleetState (what every host
reported) and the inventory's Hosts (the policy) and returns a Decision.
Each plotter is judged as plotman's `maybe_start_new_plot` judges its box,
with plotman's keys and meanings:

- global_stagger_m: the youngest job on the plotter (any job: hand-started,
  suspended and stalled ones count) must be at least this old.  Ages come
  from the host's own clock (job.started_at vs the host's time), so a laptop
  whose clock is off does not break the stagger.
- global_max_jobs: at most this many jobs on the plotter (0 = no limit; for
  multi-plot jobs, count != 1, 0 means one: such jobs run on, and the
  scheduler's part is to keep that many running, restarting one that died
  after the failure back-off allows).
- per tmp dir (each key overridable per dir in tmp_overrides): fewer than
  tmpdir_stagger_phase_limit jobs before phase
  tmpdir_stagger_phase_major:minor, fewer than tmpdir_max_jobs jobs, and
  room for one more job's temp files.  A job whose phase is unknown (None:
  no line of its log read yet) is left out of these rules, as plotman's
  phases_permit_new_job leaves it out; it still counts for global_max_jobs
  and the stagger.
- the readiest tmp dir wins (an empty one, else the one whose jobs are
  furthest along, compared as sorted phases, as plotman's max does); the dst
  dir: the tmp dir itself when it is also a dst dir (plotman's rule, which
  makes an inventory without dst_dirs plot into tmp2, else into the tmp dir),
  else the one with most room left for one more plot after the jobs already
  heading there, ties to the one fewest jobs head to.
- at most one new job per plotter per pass, `max_new` per pass overall.

Failures (core/failures.py): a plotter whose last max_failures jobs
failed in a row gets no job for failure_backoff_m after the last failure;
its wait says how many, the last error and when the next try comes, and is
`blocked`, as is a plotter on which no tmp dir could ever hold a job.

Fleet backpressure: when the farm (free bytes on the reachable harvesters'
drives, minus their reserve) cannot take one more plot of size k after every
plot already waiting, moving or being plotted, no job of that k starts.
With no harvesters in the run (none in the inventory, or left out by
--limit) plots simply stay in their dst dirs, within the dst room check.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from orchestrator.core.decisions import StartJob, Wait, WaitKind, human_bytes
from orchestrator.core.farm import Farm, farm, settled as farm_settled
from orchestrator.core.paths import PathIndex, norm
from orchestrator.core.plotcmd import build_argv
from orchestrator.core.failures import backoff, device_backoff
from orchestrator.core.state import (Dir, FleetState, Host, HostState, Job, Phase,
                                     expected_plot_bytes, expected_tmp_bytes, phase_str)


@dataclass(frozen=True)
class Decision:
    starts: Tuple[StartJob, ...]
    waits: Tuple[Wait, ...]
    backpressure: Optional[str]


def job_age_s(job: Job, host_now: Optional[float]) -> float:
    if host_now is not None and job.started_at > 0:
        return max(0.0, host_now - job.started_at)
    return job.elapsed_s


def host_clock(hs: HostState, state: FleetState, now: float) -> Optional[float]:
    """The host's time now: its reported time plus what passed here since."""
    if not hs.host_time:
        return None
    since = now - state.now if state.now and now >= state.now else 0.0
    return hs.host_time + since


# ---------------------------------------------------------------- backpressure

class FarmBudget:
    """Room left on the farm (core/farm.py) after everything already headed for it."""

    def __init__(self, state: FleetState, hosts: Mapping[str, Host], model: Optional[Farm] = None):
        model = farm(state, hosts) if model is None else model
        self.enabled = model.asked
        self.down = list(model.down)
        # replotting: what old plots hold is room too, while any is left
        self.replaceable = model.replaceable
        self.free = model.room + self.replaceable
        self.drives = len(model.drives)
        self.observed = model.observed      # sizes learnt from the farm (Gigahorse levels)
        self.pending_bytes = 0
        self.pending_count = 0
        if not self.enabled:
            return
        for hs in state.hosts:
            host = hosts.get(hs.name)
            if host is None or not hs.reachable or not host.is_plotter:
                continue
            moving = set()
            for t in hs.transfers:
                if t.in_flight:
                    self.add(max(0, t.size_bytes - t.bytes_done))
                if t.in_flight or t.status == "copied":
                    moving.add(t.plot)
            for p in hs.plots:
                if p.path not in moving:
                    self.add(p.size_bytes)
            for j in hs.jobs:
                self.add(self.plot_bytes(j.k, j.compression))

    def add(self, nbytes: int) -> None:
        self.pending_bytes += nbytes
        self.pending_count += 1

    def plot_bytes(self, k: int, compression=None) -> int:
        return expected_plot_bytes(k, compression, self.observed)

    def blocks(self, k: int, compression=None) -> Optional[str]:
        if not self.enabled or self.free - self.pending_bytes >= self.plot_bytes(k, compression):
            return None
        s = "" if self.drives == 1 else "s"
        down = f" ({len(self.down)} harvester(s) unreachable: {'; '.join(self.down[:3])})" \
            if self.down else ""
        old = f" (with {human_bytes(self.replaceable)} of old plots to replace)" \
            if self.replaceable else ""
        return (f"farm full: {human_bytes(self.free)} free{old} on {self.drives} drive{s}, "
                f"{self.pending_count} plots ({human_bytes(self.pending_bytes)}) already "
                f"headed there{down}")


# ---------------------------------------------------------------- one plotter

def tmp_rules(host: Host, tmp_dir: str) -> Tuple[int, Phase, int]:
    """(tmpdir_max_jobs, stagger phase, phase limit) for one tmp dir, with its
    tmp_overrides (the one lookup: the agent's own re-check gets the same)."""
    o = host.tmp_overrides.get(tmp_dir) or host.tmp_overrides.get(norm(tmp_dir)) or {}
    return (o.get("tmpdir_max_jobs", host.tmpdir_max_jobs),
            (o.get("tmpdir_stagger_phase_major", host.tmpdir_stagger_phase_major),
             o.get("tmpdir_stagger_phase_minor", host.tmpdir_stagger_phase_minor)),
            o.get("tmpdir_stagger_phase_limit", host.tmpdir_stagger_phase_limit))


def _uses_tmp(host: Host) -> bool:
    return not (host.plotter == "bladebit" and host.bladebit_mode != "diskplot")


def _device_use(by_dir: Dict[str, List[Job]], dirs: Dict[str, Dir], cost) -> Dict[str, int]:
    """device -> bytes the jobs on it will still need (dirs on one disk share it)."""
    out: Dict[str, int] = {}
    for path, jobs in by_dir.items():
        d = dirs.get(path)
        if d is not None:
            out[d.device] = out.get(d.device, 0) + sum(cost(j) for j in jobs)
    return out


@dataclass(frozen=True)
class TmpVerdict:
    """One tmp dir as the scheduler judges it: ready for a new job, or the
    rule that holds it (`phase limit`, `max jobs`, `dir error`, `room`),
    with the scheduler's own words.  The views show these as they are."""
    path: str
    phases: Tuple[Phase, ...]       # of the jobs using it, sorted
    rule: Optional[str]             # None: ready
    reason: str
    free_bytes: Optional[int]       # None: not reported
    room_bytes: Optional[int]       # free after what its jobs (on that disk) still need

    @property
    def ready(self) -> bool:
        return self.rule is None


def tmp_verdicts(host: Host, hs: HostState,
                 tmp_jobs: Optional[Dict[str, List[Job]]] = None) -> Tuple[TmpVerdict, ...]:
    """Every tmp dir of the plotter, in inventory order, judged by plotman's
    tmp-dir rules: what `_pick_tmp` picks from, and what the tmp table shows."""
    if tmp_jobs is None:
        tmp_jobs = _group(hs.jobs, PathIndex(host.tmp_dirs), "tmp_dir")
    dirs = PathIndex(host.tmp_dirs).dirs(hs.dirs)
    need = expected_tmp_bytes(host.k)
    still = _device_use(tmp_jobs, dirs,
                        lambda j: max(0, expected_tmp_bytes(j.k) - j.tmp_bytes)
                        if j.phase is None or j.phase[0] < 5 else 0)
    out = []
    for path in host.tmp_dirs:
        phases = sorted(j.phase for j in tmp_jobs.get(path, ()) if j.phase is not None)
        max_jobs, milestone, limit = tmp_rules(host, path)
        early = [p for p in phases if p < milestone]
        d = dirs.get(path)
        free = d.free_bytes if d is not None and not d.error else None
        room = free - still.get(d.device, 0) if free is not None else None
        if len(early) >= limit:
            rule, why = "phase limit", (f"{path} in {', '.join(map(phase_str, early))} "
                                        f"< {phase_str(milestone)}")
        elif len(phases) >= max_jobs:
            rule, why = "max jobs", f"{path} has {len(phases)}/{max_jobs} jobs"
        elif _uses_tmp(host) and (d is None or d.error):
            rule, why = "dir error", f"{path}: {d.error if d is not None else 'not reported'}"
        elif _uses_tmp(host) and room < need:
            rule, why = "room", (f"{path} {human_bytes(max(0, room))} "
                                 f"free for new jobs, one needs {human_bytes(need)}")
        else:
            rule, why = None, "empty" if not phases else "jobs in " + ", ".join(map(phase_str, phases))
        out.append(TmpVerdict(path, tuple(phases), rule, why, free, room))
    return tuple(out)


def _pick_tmp(host: Host, hs: HostState, tmp_jobs: Dict[str, List[Job]]):
    """(tmp_dir, why) for the readiest tmp dir, or (None, reason)."""
    verdicts = tmp_verdicts(host, hs, tmp_jobs)
    ready = [(not v.phases, v.phases, v.path) for v in verdicts if v.ready]
    blocked = [v.reason for v in verdicts if v.rule not in (None, "room")]
    full = [v.reason for v in verdicts if v.rule == "room"]
    if ready:
        best = max(ready, key=lambda r: (r[0], r[1]))
        return best[2], ("empty" if best[0] else "jobs in " + ", ".join(map(phase_str, best[1])))
    if not blocked:
        return None, "tmp dir full: " + "; ".join(full)
    return None, "no tmp dir ready: " + "; ".join(blocked + [f + " (full)" for f in full])


def _pick_dst(host: Host, hs: HostState, dst_jobs: Dict[str, List[Job]],
              tmp: Optional[str] = None):
    """(dst_dir, room) with most room for one more plot, or (None, reason).
    A tmp dir that is also a dst dir is its own job's dst, as in plotman."""
    dirs = PathIndex(host.dst_dirs).dirs(hs.dirs)
    # sized by k and compression; a Gigahorse level with no size table is
    # taken as uncompressed here (never less room than the plot needs)
    need = expected_plot_bytes(host.k, host.compression)
    heading = _device_use(dst_jobs, dirs, lambda j: expected_plot_bytes(j.k, j.compression))
    best, best_key, problems = None, None, []
    own = PathIndex(host.dst_dirs).find(tmp) if tmp is not None else None
    for i, path in enumerate(host.dst_dirs):
        if own is not None and path != own:
            continue
        d = dirs.get(path)
        n = len(dst_jobs.get(path, ()))
        if d is None or d.error:
            problems.append(f"{path}: {d.error if d is not None else 'not reported'}")
            continue
        room = d.free_bytes - heading.get(d.device, 0)
        if room < need:
            problems.append(f"{path} {human_bytes(d.free_bytes)} free, {n} job{'' if n == 1 else 's'} "
                            f"heading there")
            continue
        key = (room, -n, -i)
        if best_key is None or key > best_key:
            best, best_key = (path, room), key
    if best is None:
        return None, f"dst full: {'; '.join(problems)}; a k{host.k} plot needs {human_bytes(need)}"
    return best, None


def _group(jobs: Sequence[Job], index: PathIndex, attr: str) -> Dict[str, List[Job]]:
    out: Dict[str, List[Job]] = {}
    for j in jobs:
        p = index.find(getattr(j, attr))
        if p is not None:
            out.setdefault(p, []).append(j)
    return out


def never_fits(host: Host, hs: HostState, fleet_idle: bool = False) -> Optional[str]:
    """Why no job could ever start on this plotter as configured, else None:
    no tmp or dst dir, or no tmp dir that could hold one job even when empty;
    with `fleet_idle` (no job or transfer runs anywhere in the fleet that
    could free room: hosts may share a disk), no tmp dir with room for one
    now, counting what clean-up of its failed jobs frees: only the farmer can
    free the rest.  (A dir with an error, e.g. missing, may come back: an
    ordinary wait.)"""
    if not host.tmp_dirs:
        return "no tmp_dirs configured"
    if not host.dst_dirs:
        return "no dst_dirs configured"
    if not _uses_tmp(host):
        return None
    need = expected_tmp_bytes(host.k)
    dirs = PathIndex(host.tmp_dirs).dirs(hs.dirs)
    if any(dirs.get(p) is None or dirs[p].error for p in host.tmp_dirs):
        return None
    why = [f"{p} holds {human_bytes(dirs[p].total_bytes)} in all" for p in host.tmp_dirs
           if dirs[p].total_bytes < need]
    if len(why) == len(host.tmp_dirs):
        return (f"no tmp dir could ever hold a k{host.k} job ({human_bytes(need)}): "
                + "; ".join(why))
    return _no_room_ever(host, hs, dirs, need) if fleet_idle else None


def _no_room_ever(host: Host, hs: HostState, dirs, need: int) -> Optional[str]:
    """No tmp dir has room for a job, and nothing the fleet does will make
    any: its room now plus its failed jobs' temp files (cleaned up) is short."""
    index = PathIndex(host.tmp_dirs)
    freed: Dict[str, int] = {}
    for d in hs.dead:
        p = index.find(d.tmp_dir)
        if p is not None:
            freed[p] = freed.get(p, 0) + d.tmp_bytes
    why = []
    for path in host.tmp_dirs:
        d = dirs.get(path)
        room = d.free_bytes + freed.get(path, 0)
        if room >= need:
            return None
        why.append(f"{path} has {human_bytes(d.free_bytes)} free")
    return (f"no tmp dir can take a k{host.k} job ({human_bytes(need)}) and no job runs "
            f"that could free room: " + "; ".join(why))


def blocked(host: Host, hs: HostState, host_now: Optional[float],
            now: float, fleet_idle: bool = False) -> Optional[Wait]:
    """The wait of a plotter that gets no job until the operator acts (or its
    back-off ends): backed off after failures, or nothing could ever fit."""
    off = backoff(host, hs, host_now, now)
    if off is not None:
        return Wait(host.name, "plotter", off.reason(now), blocked=True, kind=WaitKind.BACKED_OFF)
    never = never_fits(host, hs, fleet_idle)
    if never is not None:
        return Wait(host.name, "plotter", never, blocked=True, kind=WaitKind.NEVER_FITS)
    return None


def judge_plotter(host: Host, hs: HostState, host_now: Optional[float], now: float = 0.0):
    """A StartJob for this plotter now, or the Wait saying why not.

    Farm backpressure and the per-pass cap are the caller's.
    """
    stop = blocked(host, hs, host_now, now)
    if stop is not None:
        return stop
    return _judge(host, hs, host_now)


def _judge(host: Host, hs: HostState, host_now: Optional[float]):
    """The StartJob plotman's rules allow now, or the Wait naming the rule that holds."""
    def wait(reason: str) -> Wait:
        return Wait(host.name, "plotter", reason, kind=WaitKind.RULE)

    jobs = hs.jobs
    ages = [job_age_s(j, host_now) for j in jobs]
    if hs.last_start and host_now is not None:
        # a job that already finished still counts: starts stay staggered
        ages.append(max(0.0, host_now - hs.last_start))
    if ages:
        youngest = min(ages)
        stagger = host.global_stagger_m * 60.0
        if youngest < stagger:
            return wait(f"stagger {int(youngest)}s/{int(stagger)}s")
    # multi-plot jobs run on: keep global_max_jobs of them (0: one, or one
    # per GPU of cuda_devices) going; global_max_jobs caps GPU jobs too
    most = host.global_max_jobs or (len(host.cuda_devices) if host.cuda_devices
                                    else (1 if host.count != 1 else 0))
    if most and len(jobs) >= most:
        return wait(f"max jobs {len(jobs)}/{most}")
    tmp, why_tmp = _pick_tmp(host, hs, _group(jobs, PathIndex(host.tmp_dirs), "tmp_dir"))
    if tmp is None:
        return wait(why_tmp)
    dst, why_dst = _pick_dst(host, hs, _group(jobs, PathIndex(host.dst_dirs), "dst_dir"), tmp)
    if dst is None:
        return wait(why_dst)
    dst_dir, room = dst
    device, why_gpu = _pick_device(host, hs, host_now)
    if why_gpu is not None:
        return wait(why_gpu)
    pinned = host if device is None else replace(host, cuda_device=device, cuda_devices=())
    gpu = f", GPU {device} free" if device is not None else ""
    return StartJob(host=host.name, tmp_dir=tmp, dst_dir=dst_dir, tmp2_dir=host.tmp2_dir,
                    plotter=host.plotter, k=host.k,
                    argv=build_argv(pinned, tmp, dst_dir),
                    reason=f"tmp {tmp} {why_tmp}, dst {dst_dir} {human_bytes(room)} free{gpu}",
                    device=device)


def _pick_device(host: Host, hs: HostState, host_now: Optional[float]):
    """(GPU, None) for a plotter with cuda_devices: the first listed GPU with
    no job on it (a job's GPU is read back from its argv, so one started by
    hand counts; a job that names none runs on the plotter's GPU 0) and not
    backed off; (None, why) when there is none; (None, None) without
    cuda_devices."""
    if not host.cuda_devices:
        return None, None
    busy = {0 if j.device is None else j.device for j in hs.jobs}
    why = []
    for d in host.cuda_devices:
        if d in busy:
            why.append(f"GPU {d} busy")
            continue
        off = device_backoff(host, hs, d, host_now, host_now or 0.0)
        if off is not None:
            why.append(f"GPU {d} backed off ({off.count} failed jobs in a row)")
            continue
        return d, None
    return None, "no GPU free: " + ", ".join(why)


# ---------------------------------------------------------------- the fleet

def schedule(state: FleetState, hosts: Mapping[str, Host], now: float,
             max_new: Optional[int] = None, model: Optional[Farm] = None) -> Decision:
    """Which plot jobs to start in this pass, and why every other plotter waits.
    `model`: the pass's farm (core/farm.py), when it was computed already."""
    by_name = {hs.name: hs for hs in state.hosts}
    budget = FarmBudget(state, hosts, model)
    starts: List[StartJob] = []
    waits: List[Wait] = []
    backpressure: Optional[str] = None
    # nothing runs anywhere that could free room (an unreachable host may; a
    # plot waiting in a dst dir, perhaps on a tmp disk, may be archived away)
    idle = all(hs.reachable and not hs.jobs and not any(p.error is None for p in hs.plots)
               and not any(t.in_flight for t in hs.transfers) for hs in state.hosts)
    settled = farm_settled(state, hosts)
    for name, host in hosts.items():             # inventory order: deterministic
        hs = by_name.get(name)
        if not host.is_plotter or hs is None:
            continue
        if not hs.reachable:
            waits.append(Wait(name, "plotter", f"unreachable: {hs.error or 'no answer'}",
                              kind=WaitKind.UNREACHABLE))
            continue
        stop = blocked(host, hs, host_clock(hs, state, now), now, idle)
        if stop is not None:
            waits.append(stop)
            continue
        full = budget.blocks(host.k, host.compression)
        if full:
            backpressure = backpressure or full
            # full for good when the farm can make no room by itself
            waits.append(Wait(name, "plotter", "farm full", blocked=settled,
                              kind=WaitKind.FARM_FULL))
            continue
        verdict = judge_plotter(host, hs, host_clock(hs, state, now), now)
        if isinstance(verdict, Wait):
            waits.append(verdict)
        elif max_new is not None and len(starts) >= max_new:
            waits.append(Wait(name, "plotter", f"plot limit reached: {max_new} new jobs allowed",
                              kind=WaitKind.PLOT_LIMIT))
        else:
            starts.append(verdict)
            budget.add(budget.plot_bytes(verdict.k, host.compression))
    return Decision(tuple(starts), tuple(waits), backpressure)
