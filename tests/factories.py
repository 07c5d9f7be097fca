"""Builders of inventories and FleetStates for the pure core's tests and bench.

Every host gets its own disk per configured dir (device "<host>:<path>")
unless a test says otherwise, and plenty of room; jobs are given an age and
get `started_at` on the host's clock.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, Optional, Sequence

from orchestrator.core.state import (Check, Dir, FleetState, Host, HostState, Job, Partial, Plot,
                                Transfer, expected_plot_bytes)

NOW = 1_700_000_000.0          # the laptop's clock in these tests
MiB = 2 ** 20
GiB = 2 ** 30
TiB = 2 ** 40
PLOT_ID = "ab" * 32


def plotter(name: str = "p1", **fields) -> Host:
    base = dict(name=name, roles=("plotter",), groups=frozenset({"plotters"}),
                address=f"{name}.lan", tmp_dirs=("/t0", "/t1"), dst_dirs=("/d0",),
                plotter="chia", k=32, global_stagger_m=30.0, global_max_jobs=0,
                tmpdir_max_jobs=3, tmpdir_stagger_phase_major=2, tmpdir_stagger_phase_minor=1,
                tmpdir_stagger_phase_limit=1,
                # the rules of one plot per drive per pass, one transfer at a
                # time (tests/test_queues.py takes the keys' defaults: queues)
                max_transfers_per_plotter=1, transfer_queue_s=0)
    base.update(fields)
    return Host(**base)


def harvester(name: str = "h1", **fields) -> Host:
    base = dict(name=name, roles=("harvester",), groups=frozenset({"harvesters"}),
                address=f"{name}.lan", farm_dirs=("/f0",))
    base.update(fields)
    return Host(**base)


def inventory(*hosts: Host) -> Dict[str, Host]:
    return {h.name: h for h in hosts}


def job(tmp: str = "/t0", dst: str = "/d0", phase=(1, 0), age_s: float = 7200.0, k: int = 32,
        host_time: float = NOW, state: str = "running", pid: int = 1000, **fields) -> Job:
    base = dict(plot_id=None, plotter="chia", k=k, pid=pid, phase=None if phase is None else tuple(phase), state=state,
                tmp_dir=tmp, dst_dir=dst, log_file=f"/log/{pid}.log", elapsed_s=age_s,
                tmp_bytes=0, started_at=host_time - age_s)
    base.update(fields)
    return Job(**base)


def jobs_in(*phases, tmp: str = "/t0", dst: str = "/d0", k: int = 32, age_s: float = 7200.0,
            host_time: float = NOW):
    """One old job per phase given, in one tmp dir."""
    return tuple(job(tmp=tmp, dst=dst, phase=p, k=k, age_s=age_s + i, pid=2000 + i,
                     host_time=host_time) for i, p in enumerate(phases))


def host_dirs(host: Host, free: Optional[Dict[str, int]] = None, devices: Optional[Dict[str, str]] = None,
              errors: Optional[Dict[str, str]] = None, default_free: int = 100 * TiB):
    """A Dir for each configured dir of host: free bytes and device per path overridable."""
    free, devices, errors = free or {}, devices or {}, errors or {}
    out = []
    for kind, paths in (("tmp", host.tmp_dirs), ("tmp2", (host.tmp2_dir,) if host.tmp2_dir else ()),
                        ("dst", host.dst_dirs), ("farm", host.farm_dirs)):
        for p in paths:
            f = free.get(p, default_free)
            out.append(Dir(path=p, kind=kind, total_bytes=max(f, 200 * TiB), free_bytes=f,
                           device=devices.get(p, f"{host.name}:{p}"), error=errors.get(p)))
    return tuple(out)


def host_state(host: Host, jobs: Sequence[Job] = (), plots: Sequence[Plot] = (),
               transfers: Sequence[Transfer] = (), partials: Sequence[Partial] = (),
               free: Optional[Dict[str, int]] = None, devices: Optional[Dict[str, str]] = None,
               errors: Optional[Dict[str, str]] = None, default_free: int = 100 * TiB,
               host_time: float = NOW, dirs=None) -> HostState:
    return HostState(name=host.name, roles=host.roles, reachable=True, jobs=tuple(jobs),
                     dirs=dirs if dirs is not None else host_dirs(host, free, devices, errors, default_free),
                     plots=tuple(plots), transfers=tuple(transfers), partials=tuple(partials),
                     host_time=host_time)


def down(host: Host, error: str = "ssh: connection refused") -> HostState:
    return HostState(name=host.name, roles=host.roles, reachable=False, error=error)


def fleet(*states: HostState, now: float = NOW) -> FleetState:
    return FleetState(hosts=tuple(states), now=now)


PASSED = Check("passed", "chiapos", 0.9, 27, 30)


def plot_file(dst: str = "/d0", n: int = 0, k: int = 32, size: Optional[int] = None,
              mtime: float = NOW - 3600, check: Optional[Check] = PASSED) -> Plot:
    """A finished plot; its proof check passed unless `check` says otherwise."""
    pid = f"{n:064x}"
    return Plot(path=f"{dst}/plot-k{k}-2024-01-01-00-00-{pid}.plot",
                size_bytes=size if size is not None else expected_plot_bytes(k), k=k,
                plot_id=pid, mtime=mtime, check=check)


def transfer(plot: Plot, to_host: str = "h1", to_dir: str = "/f0", done: int = 0,
             status: str = "running", **fields) -> Transfer:
    base = dict(plot=plot.path, to_host=to_host, to_dir=to_dir, bytes_done=done,
                pid=4242 if status == "running" else None, size_bytes=plot.size_bytes,
                status=status)
    base.update(fields)
    return Transfer(**base)


def partial(plot: Plot, farm_dir: str = "/f0", size: int = 0, receiving: bool = False) -> Partial:
    name = os.path.basename(plot.path)
    return Partial(path=f"{farm_dir}/.{name}.partial", final_name=name, size_bytes=size,
                   receiving=receiving)


def replace(obj, **fields):
    return dataclasses.replace(obj, **fields)


def big_fleet(plotters: int = 1000, jobs_per_plotter: int = 16, harvesters: int = 50,
              plots_per_plotter: int = 2):
    """A fleet at full tilt, for the bench: every plotter has jobs spread over
    its tmp dirs at various phases and finished plots waiting."""
    hosts, states = [], []
    tmp_dirs = tuple(f"/t{i}" for i in range(8))
    dst_dirs = ("/d0", "/d1")
    for i in range(plotters):
        h = plotter(f"p{i:04d}", tmp_dirs=tmp_dirs, dst_dirs=dst_dirs, global_max_jobs=20,
                    tmpdir_max_jobs=3, global_stagger_m=30.0 if i % 2 else 5.0,
                    max_transfers_per_plotter=1)
        js = tuple(job(tmp=tmp_dirs[j % 8], dst=dst_dirs[j % 2], pid=10_000 + j,
                       phase=(1 + j // 5, (j * 3) % 7), age_s=600.0 + 1800 * j)
                   for j in range(jobs_per_plotter))
        plots = tuple(plot_file(dst_dirs[n % 2], n=i * 100 + n, mtime=NOW - 100 * n)
                      for n in range(plots_per_plotter))
        hosts.append(h)
        states.append(host_state(h, jobs=js, plots=plots, default_free=20 * TiB))
    for i in range(harvesters):
        h = harvester(f"h{i:03d}", farm_dirs=tuple(f"/f{n}" for n in range(24)),
                      farm_reserve_bytes=GiB)
        hosts.append(h)
        states.append(host_state(h, default_free=18 * TiB))
    return fleet(*states), inventory(*hosts)
