"""Time one schedule() and one archive() decision on a simulated big fleet.

    python3 bench/bench_scheduler.py [--plotters 1000] [--jobs 16] [--runs 7]

Prints the median of several runs of each decision beside two baselines
measured in the same run on the same machine: building the FleetState
itself, and a naive scheduler pass that re-scans every job of the plotter
for each tmp dir and each rule (what a straightforward port of plotman's
per-dir loop costs).  Target: <= 0.5 s per decision.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from orchestrator.core.archiver import archive          # noqa: E402
from orchestrator.core.scheduler import job_age_s, schedule   # noqa: E402
from tests.factories import NOW, big_fleet          # noqa: E402

TARGET_S = 0.5


def naive(state, hosts):
    """plotman's loop done per host without grouping: every rule re-scans all jobs."""
    verdicts = 0
    by_name = {h.name: h for h in state.hosts}
    for name, host in hosts.items():
        hs = by_name[name]
        if not host.is_plotter:
            continue
        for d in host.tmp_dirs:
            phases = sorted(j.phase for j in hs.jobs if j.tmp_dir == d)
            early = [j for j in hs.jobs if j.tmp_dir == d and j.phase < (2, 1)]
            ages = [job_age_s(j, hs.host_time) for j in hs.jobs]
            verdicts += len(phases) + len(early) + (min(ages) > 0)
        for d in host.dst_dirs:
            verdicts += sum(1 for j in hs.jobs if j.dst_dir == d)
    return verdicts


def timed(fn, runs):
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out), result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plotters", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=16)
    ap.add_argument("--harvesters", type=int, default=50)
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args(argv)

    build_s, (state, hosts) = timed(lambda: big_fleet(a.plotters, a.jobs, a.harvesters), 3)
    naive_s, _ = timed(lambda: naive(state, hosts), a.runs)
    sched_s, decision = timed(lambda: schedule(state, hosts, NOW), a.runs)
    arch_s, arch = timed(lambda: archive(state, hosts), a.runs)

    njobs = sum(len(h.jobs) for h in state.hosts)
    nplots = sum(len(h.plots) for h in state.hosts)
    print(f"fleet: {a.plotters} plotters x {a.jobs} jobs ({njobs} jobs, {nplots} plots waiting), "
          f"{a.harvesters} harvesters; median of {a.runs} runs")
    print(f"  {'build FleetState (baseline)':34s} {build_s * 1000:8.1f} ms")
    print(f"  {'naive re-scan pass (baseline)':34s} {naive_s * 1000:8.1f} ms")
    print(f"  {'schedule()':34s} {sched_s * 1000:8.1f} ms   "
          f"{len(decision.starts)} starts, {len(decision.waits)} waits")
    print(f"  {'archive()':34s} {arch_s * 1000:8.1f} ms   "
          f"{len(arch.transfers)} transfers, {len(arch.waits)} waits")
    worst = max(sched_s, arch_s)
    verdict = "ok" if worst <= TARGET_S else "TOO SLOW"
    print(f"target <= {TARGET_S:.1f} s per decision: {verdict}")
    return 0 if worst <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
