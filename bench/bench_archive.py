"""Archiving 8 real plots: plotfleet (parallel, one per drive) vs one at a time.

    python3 bench/bench_archive.py [--bwlimit 2000] [--per-plotter 2] [--poll 0.25] [--trace]

Needs root (it mounts tmpfs drives).  Sets up 4 real sshd plotters and 2
real sshd harvesters on loopback, each harvester with 2 drives (separate
tmpfs filesystems), and real chiapos k=18 plots, 2 per plotter.  Then, in
one run, moves the same plots:

  - baseline: plotman-style, one plot at a time: the plotter's rsync over
    ssh to the harvester drive with most room (the same rsync argv plotfleet's
    agent uses: same flags, same bandwidth limit), then rename and delete
    the source;
  - plotfleet, cold: `plotfleet archive` passes (each a new controller
    process: connect, snapshot every host, decide, act) back to back until
    every plot sits on a farm drive;
  - plotfleet, warm: one controller keeping its sessions open and passing
    every --poll seconds, as `plot-all` does (gather, archiver, apply: the
    same code `archive` runs).  With 100 GiB plots a transfer lasts many
    minutes and a pass is noise; with 4 MiB plots a cold pass costs half a
    transfer, which the warm loop shows without.

Every transfer is limited to --bwlimit KB/s, so the figures reflect
transfers bound by disk or network (as real 100 GiB plots are) rather than
the CPU of this small machine, where 4 unthrottled rsyncs would just share
2 cores.  After each run every plot is checked: on a farm drive,
byte-identical, readable by chiapos' DiskProver, gone from its plotter.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent.transfer import rsync_argv  # noqa: E402
from tests.cli import plotfleet  # noqa: E402
from tests.sshhosts import PlotCache, SshFleet  # noqa: E402

PARTIAL = ".plotfleet-tmp"


def mount(path, size):
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                   check=True)


def drives(fleet):
    return [d for h in fleet.hosts.values() if h.role == "harvester" for d in h.dirs["farm"]]


def place_plots(fleet, plots, per_plotter):
    """Copy the plots into the plotters' dst dirs: {dst path: (sha256, plotter)}."""
    out = {}
    plotters = [h for h in fleet.hosts.values() if h.role == "plotter"]
    for i, src in enumerate(plots):
        h = plotters[i // per_plotter]
        dst = Path(h.dirs["dst"][0], src.name)
        shutil.copyfile(src, dst)
        out[str(dst)] = (hashlib.sha256(src.read_bytes()).hexdigest(), h.name)
    return out


def verify(fleet, placed):
    from chiapos import DiskProver
    farmed = {n: os.path.join(d, n) for d in drives(fleet) for n in os.listdir(d)}
    assert not [n for n in farmed if not n.endswith(".plot")], f"leftovers: {sorted(farmed)}"
    for src, (digest, _) in placed.items():
        assert not os.path.exists(src), f"source kept: {src}"
        name = os.path.basename(src)
        path = farmed[name]
        assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == digest, path
        assert DiskProver(path).get_id().hex() == name[-69:-5]
    assert len(farmed) == len(placed)
    return sorted({os.path.dirname(p) for p in farmed.values()})


def harvester_of(fleet, drive):
    return next(h for h in fleet.hosts.values() if drive in h.dirs.get("farm", ()))


def sequential(fleet, placed, bwlimit):
    """plotman's way: one rsync at a time, each to the drive with most room."""
    for src in placed:
        drive = max(drives(fleet), key=lambda d: (os.statvfs(d).f_bavail, d))
        h = harvester_of(fleet, drive)
        spec = {"plot": src, "to_dir": drive, "mode": "ssh", "bwlimit_kbps": bwlimit,
                "ssh": {"host": h.address, "port": h.port, "user": "root",
                        "key": fleet.client_key, "known_hosts": fleet.known_hosts}}
        subprocess.run(rsync_argv(spec), check=True, stdout=subprocess.DEVNULL)
        part = os.path.join(drive, os.path.basename(src) + PARTIAL)
        os.rename(part, part[:-len(PARTIAL)])
        os.remove(src)


def with_plotfleet(fleet, inv, placed, timeout=600):
    passes = 0
    deadline = time.monotonic() + timeout
    while any(os.path.exists(src) for src in placed) or \
            any(n.endswith(PARTIAL) for d in drives(fleet) for n in os.listdir(d)):
        if time.monotonic() > deadline:
            raise SystemExit("plotfleet archive never finished")
        r = plotfleet("archive", "--inventory", inv, "--json", timeout=120)
        if r.returncode != 0:
            raise SystemExit(f"plotfleet archive failed ({r.returncode}): {r.stdout}{r.stderr}")
        json.loads(r.stdout)
        passes += 1
    return passes


def warm_plotfleet(inv, placed, poll, trace=False, timeout=600):
    from orchestrator import apply
    from orchestrator.archiver import archive
    from orchestrator.fleet import Fleet
    from orchestrator.inventory import load_inventory
    hosts = {h.name: h for h in load_inventory(inv).hosts}
    passes = 0
    t0 = time.monotonic()
    deadline = t0 + timeout
    with Fleet(list(hosts.values())) as fleet:
        while True:
            state = fleet.gather()
            passes += 1
            if not any(p.path in placed for h in state.hosts for p in h.plots) and \
                    not any(h.partials for h in state.hosts):
                return passes
            out = apply.Outcome()
            d = archive(state, hosts)
            apply.archive(fleet, hosts, d, out, check=False)
            if trace:       # when each decision was carried out, for tuning
                for line in out.lines + [f"{w.host}: {w.subject}: {w.reason}" for w in d.waits]:
                    print(f"{time.monotonic() - t0:6.2f} {line}")
            if any("failed" in line for line in out.lines) or time.monotonic() > deadline:
                raise SystemExit("archiving failed: " + "\n".join(out.lines))
            time.sleep(poll)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bwlimit", type=int, default=2000, help="KB/s per transfer (both ways)")
    ap.add_argument("--per-plotter", type=int, default=2, help="plots per plotter (4 plotters)")
    ap.add_argument("--poll", type=float, default=0.25, help="warm loop: seconds between passes")
    ap.add_argument("--trace", action="store_true", help="print the warm loop's actions, timed")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench_archive: needs root to mount tmpfs drives")
    base = Path(tempfile.mkdtemp(prefix="bench-archive-"))
    fleets, mounted = [], []
    size = f"{max(16, 4 * args.per_plotter * 2)}m"

    def new_fleet(name):
        """Fresh hosts and drives per run: no run sees another's leftovers."""
        fleet = SshFleet(base / name, n_plotters=4, n_harvesters=2)
        fleets.append(fleet)
        for d in drives(fleet):
            mount(d, size)
            mounted.append(d)
        inv = fleet.write_inventory(base / name / "inventory.yaml",
                                    transfer_bwlimit_kbps=args.bwlimit)
        return fleet, inv

    try:
        n = 4 * args.per_plotter
        t = time.perf_counter()
        plots = PlotCache(base / "cache").get(n)
        print(f"made {n} real chiapos k=18 plots in {time.perf_counter() - t:.1f} s "
              f"({sum(p.stat().st_size for p in plots) / 2**20:.1f} MiB)")
        print(f"fleet: 4 plotters, 2 harvesters x 2 drives (tmpfs {size} each), real sshd "
              f"on 127.0.0.x; every transfer limited to {args.bwlimit} KB/s so the comparison "
              f"is bound by transfer bandwidth, not by this machine's {os.cpu_count()} cores")

        fleet, _ = new_fleet("sequential")
        placed = place_plots(fleet, plots, args.per_plotter)
        t = time.perf_counter()
        sequential(fleet, placed, args.bwlimit)
        seq_s = time.perf_counter() - t
        verify(fleet, placed)

        fleet, inv = new_fleet("cold")
        placed = place_plots(fleet, plots, args.per_plotter)
        t = time.perf_counter()
        cold_passes = with_plotfleet(fleet, inv, placed)
        cold_s = time.perf_counter() - t
        used = verify(fleet, placed)

        fleet, inv = new_fleet("warm")
        placed = place_plots(fleet, plots, args.per_plotter)
        t = time.perf_counter()
        warm_passes = warm_plotfleet(inv, placed, args.poll, args.trace)
        warm_s = time.perf_counter() - t
        used_warm = verify(fleet, placed)

        print(f"one at a time (plotman-style rsync)           {seq_s:6.1f} s  ({n} plots)")
        print(f"plotfleet, cold `archive` passes ({cold_passes:2d})        {cold_s:6.1f} s  "
              f"{seq_s / cold_s:.2f}x faster  (onto {len(used)} drives)")
        print(f"plotfleet, warm loop as plot-all ({warm_passes:2d} passes) {warm_s:6.1f} s  "
              f"{seq_s / warm_s:.2f}x faster  (onto {len(used_warm)} drives)")
        print("target >= 2.5x; one transfer per drive at a time, 4 drives")
        print("all plots verified: on a farm drive, byte-identical, DiskProver-readable, "
              "gone from their plotters")
    finally:
        for fleet in fleets:
            fleet.stop_all()
        for d in reversed(mounted):
            subprocess.run(["umount", "-l", d], check=False)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
