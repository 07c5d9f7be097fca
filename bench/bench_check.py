"""What a proof check costs, beside reading the whole plot, and what that
means for a k32 plot next to the transfer it comes before.

    python3 bench/bench_check.py [--dir /var/tmp/plotfleet-bench-check]
                                 [--ks 18,22,25] [--survey 20] [--v2-ks 24,28]
                                 [--disk-mbps 250] [--seek-ms 8] [--net-mbps 110]

For each k, a real chiapos plot (made once into --dir with the agent's own
`plot-chiapos`, then reused) is checked the way a plotter checks it: the
detached runner `python -m agent check` (nice 19, idle I/O, 30 challenges
from the plot id, each quality fetched as a full proof and validated with
chiapos' Verifier), the plot first dropped from the page cache
(posix_fadvise DONTNEED), so the disk delivers what the check reads.
Beside it, in the same run, the baseline: the same plot, dropped from the
cache again, read whole (1 MiB reads).  For both: seconds, bytes asked for
(rchar), read calls (syscr), bytes the disk delivered (the child's
ru_inblock).  And the same plot with a third of its middle overwritten with
random bytes: how fast a bad one fails.

Then --survey fresh k18 plots, good and corrupted, for the ratios the
check sees (min_ratio's default 0.3 against what good plots give).

With --v2-ks, PoS2 plots (chia_rs, made once with the agent's
`plot-pos2`): the qualities of 30 challenges alone, then with the 4 full
proofs a plotter's check solves and validates (check_challenges_v2).

Last, an extrapolation to a k32 plot (101.4 GiB) on a --disk-mbps drive
with --seek-ms seeks, sent over a --net-mbps link: the check's bytes and
read calls grow with k as the fit over the measured ks says (least squares
in k), each read call counted as a seek (an upper bound: chiapos reads a
park, then its neighbours); the transfer and a full read at those speeds.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

K32_BYTES = 108_836_000_000          # chia's k32 plot: 101.4 GiB


def plot_for(d, k, v2=False):
    """A real plot of size k in d (chiapos; `v2`: PoS2 through chia_rs), made once."""
    if v2:
        d = os.path.join(d, "v2")
    have = sorted(glob.glob(os.path.join(d, "plots", "plot-k%d-*.plot%s" % (k, "2" if v2 else ""))))
    if have:
        return have[0]
    os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
    print("making a k%d %s plot (once; kept in %s) ..." % (k, "PoS2" if v2 else "chiapos", d),
          flush=True)
    make = ["plot-pos2", "-k", str(k)] if v2 else ["plot-chiapos", "-k", str(k), "-b", "1000",
                                                    "-r", "2"]
    with open(os.path.join(d, "plot-k%d.log" % k), "w") as log:
        subprocess.run([sys.executable, "-m", "agent"] + make +
                       ["-t", os.path.join(d, "tmp"), "-d", os.path.join(d, "plots")],
                       cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=True,
                       env=dict(os.environ, PYTHONPATH=REPO))
    return plot_for(os.path.dirname(d) if v2 else d, k, v2)


def evict(path):
    """Drop the plot from the page cache (written back first: dirty pages stay)."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def children_inblock():
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_inblock * 512


def run_check(path, home, **settings):
    """The plotter's own runner on `path`, cold: its record and what the disk gave."""
    evict(path)
    before = children_inblock()
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "agent", "check",
                    json.dumps(dict(settings, plots=[path]))],
                   cwd=REPO, check=True, env=dict(os.environ, PYTHONPATH=REPO, HOME=home))
    wall = time.monotonic() - t0
    from agent.facts import checks
    os.environ["HOME"], old = home, os.environ["HOME"]
    try:
        rec = checks.read(path)
    finally:
        os.environ["HOME"] = old
    rec["disk_bytes"] = children_inblock() - before
    rec["wall"] = wall
    return rec


FULL_READ = r"""
import os, sys, time
path = sys.argv[1]
t0 = time.monotonic()
with open(path, "rb", buffering=0) as f:
    while f.read(1 << 20):
        pass
io = dict(l.split(":") for l in open("/proc/self/io"))
print(time.monotonic() - t0, int(io["rchar"]), int(io["syscr"]))
"""


def full_read(path):
    """The baseline: the whole plot read, cold, in a child of its own."""
    evict(path)
    before = children_inblock()
    out = subprocess.run([sys.executable, "-c", FULL_READ, path], check=True,
                         stdout=subprocess.PIPE, text=True).stdout.split()
    return {"seconds": float(out[0]), "bytes_read": int(out[1]), "reads": int(out[2]),
            "disk_bytes": children_inblock() - before}


def corrupted(path, d):
    bad = os.path.join(d, "bad-" + os.path.basename(path))
    if not os.path.exists(bad):
        shutil.copyfile(path, bad)
        n = os.path.getsize(bad)
        with open(bad, "r+b") as f:
            f.seek(n // 3)
            f.write(os.urandom(n // 3))
    return bad


def mib(n):
    return "%.1f MiB" % (n / 2 ** 20)


def fit(xs, ys):
    """Least-squares line y = a + b x."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    return my - b * mx, b


def survey(n, home):
    """Ratios of n fresh k18 plots and of the same plots corrupted."""
    from tests.sshhosts import make_plot
    from agent.launch.check import check
    from pathlib import Path
    tmp = Path(tempfile.mkdtemp(prefix="bench-check-survey-"))
    good, bad = [], []
    try:
        for i in range(n):
            p = make_plot(tmp / "plots", tmp / "tmp")
            good.append(check({}, str(p)))
            b = corrupted(str(p), str(tmp))
            bad.append(check({}, b))
            os.remove(p)
            os.remove(b)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return good, bad


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/var/tmp/plotfleet-bench-check")
    ap.add_argument("--ks", default="18,22,25")
    ap.add_argument("--survey", type=int, default=20)
    ap.add_argument("--v2-ks", default="", help="PoS2 plots to check too, e.g. 24,28")
    ap.add_argument("--disk-mbps", type=float, default=250.0)
    ap.add_argument("--seek-ms", type=float, default=8.0)
    ap.add_argument("--net-mbps", type=float, default=110.0, help="MB/s (1 Gbit/s: ~110)")
    a = ap.parse_args(argv)
    ks = [int(k) for k in a.ks.split(",")]
    home = tempfile.mkdtemp(prefix="bench-check-home-")
    os.makedirs(os.path.join(home, ".plotfleet", "checks"))
    rows = []
    try:
        for k in ks:
            path = plot_for(a.dir, k)
            size = os.path.getsize(path)
            chk = run_check(path, home)
            whole = full_read(path)
            badrec = run_check(corrupted(path, a.dir), home)
            rows.append((k, size, chk, whole, badrec))
        print()
        print("%-4s %-11s | %-62s | %-36s | %s" % (
            "k", "plot", "check (30 challenges, cold; wall at nice 19 / CPU)",
            "full read (baseline, cold)", "corrupted copy"))
        for k, size, c, w, b in rows:
            print("k%-3d %-11s | %6.2fs/%5.2fs %5s %-8s read %-11s %6d calls disk %-10s | "
                  "%6.2fs read %-11s %6d calls disk %-9s | %s in %.2fs" % (
                      k, mib(size), c["seconds"], c["cpu_seconds"], c["status"],
                      "%d/30" % (c["proofs"] or 0),
                      mib(c["bytes_read"]), c["reads"], mib(c["disk_bytes"]),
                      w["seconds"], mib(w["bytes_read"]), w["reads"], mib(w["disk_bytes"]),
                      b["status"] + (": " + b["error"] if b["error"] else ""), b["seconds"]))
        for k, size, c, w, b in rows:
            print("k%d: the check asked for %.1f%% of the plot's bytes (%s) and took %.0f%% of "
                  "a full read's time" % (k, 100.0 * c["bytes_read"] / size, mib(c["bytes_read"]),
                                          100.0 * c["seconds"] / max(w["seconds"], 1e-9)))
        if len(rows) >= 2:
            a0, b0 = fit([r[0] for r in rows], [r[2]["bytes_read"] for r in rows])
            a1, b1 = fit([r[0] for r in rows], [r[2]["reads"] for r in rows])
            by32, calls32 = max(a0 + b0 * 32, 0), max(a1 + b1 * 32, 0)
            disk = a.disk_mbps * 1e6
            check32 = by32 / disk + calls32 * a.seek_ms / 1000.0
            print()
            print("k32 (101.4 GiB), fitted over k%s: the check reads ~%s in ~%d calls"
                  % ("/".join(str(k) for k in ks), mib(by32), calls32))
            print("  check on a %.0f MB/s disk, %.0f ms a seek (every call a seek): ~%.0fs"
                  % (a.disk_mbps, a.seek_ms, check32))
            print("  full read of the plot on that disk: %.0fs;  transfer at %.0f MB/s: %.0fs"
                  % (K32_BYTES / disk, a.net_mbps, K32_BYTES / (a.net_mbps * 1e6)))
            print("  the check costs %.1f%% of the transfer it comes before, and runs while "
                  "the previous plot is sent" % (100.0 * check32 / (K32_BYTES /
                                                                    (a.net_mbps * 1e6))))
        for k in [int(x) for x in a.v2_ks.split(",") if x]:
            path = plot_for(a.dir, k, v2=True)
            size = os.path.getsize(path)
            q = run_check(path, home, challenges_v2=0)
            full = run_check(path, home, challenges_v2=4)
            whole = full_read(path)
            print()
            print("PoS2 k%d (%s): qualities of 30 challenges %.2fs wall, %.2fs CPU (%d found, "
                  "read %s in %d calls); with 4 full proofs solved and validated %.2fs wall, "
                  "%.2fs CPU; full read %.2fs"
                  % (k, mib(size), q["seconds"], q["cpu_seconds"], q["proofs"] or 0,
                     mib(q["bytes_read"]), q["reads"], full["seconds"], full["cpu_seconds"],
                     whole["seconds"]))
        if a.survey:
            good, bad = survey(a.survey, home)
            ratios = sorted(g["ratio"] for g in good)
            print()
            print("%d fresh k18 plots, 30 challenges each: ratio min %.2f, median %.2f, max "
                  "%.2f; under 0.7: %d; failed (below 0.3 twice): %d"
                  % (len(good), ratios[0], ratios[len(ratios) // 2], ratios[-1],
                     sum(1 for r in ratios if r < 0.7),
                     sum(1 for g in good if g["status"] != "passed")))
            print("the same plots, a third of the middle overwritten: %d of %d failed; "
                  "the prover raised on %d (%s), the ratio decided %d"
                  % (sum(1 for b in bad if b["status"] == "failed"), len(bad),
                     sum(1 for b in bad if b.get("rounds") == []),
                     sorted({(b["error"] or "").split(":")[0] for b in bad
                             if b.get("rounds") == []}),
                     sum(1 for b in bad if b.get("rounds"))))
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
