"""A plotter's snapshot with a huge log in its log_dir, beside one with none.

    python3 bench/bench_logs.py [--sizes 200,1000] [--timeout 8]

For each case (no log, then a log of each size in MB, made of a real chia
log's lines repeated), a fresh `python -m agent serve` answers snapshots with
`timeout_s` = --timeout, as the controller asks them, until no log is left
unread.  Printed per case, in one run:
  - the first snapshot's answer time against its deadline (the promise: an
    answer by the deadline, whatever the logs);
  - the warm snapshot time once everything is read (what every later pass costs);
  - how many snapshots it took to read the log through (its first and last
    32 MB: agent/facts/logparse.py), and their time added up.
Before this bench's change, the 200 MB case answered its first snapshot
after about 20 s whatever the deadline (issue 25).
"""
from __future__ import annotations

import argparse
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

from agent.vocab import lognames  # noqa: E402

# a real chiapos/chia log's lines (chia plots create, k=32: its phase 1 bucket lines)
HEAD = (b"2021-05-01T10:00:00.000 chia.plotting.create_plots : INFO Starting plot 1/1\n"
        b"Starting plotting progress into temporary dirs: /mnt/tmp/00 and /mnt/tmp/00\n"
        b"ID: " + b"3f" * 32 + b"\nPlot size is: 32\nBuffer size is: 3389MiB\n"
        b"Using 128 buckets\nUsing 2 threads of stripe size 65536\n"
        b"Starting phase 1/4: Forward Propagation into tmp files... Sat May  1 10:00:00 2021\n")
LINES = (b"\tBucket 0 uniform sort. Ram: 3.250GiB, u_sort min: 0.563GiB, qs min: 0.281GiB.\n"
         b"\tBucket 1 uniform sort. Ram: 3.250GiB, u_sort min: 0.563GiB, qs min: 0.281GiB.\n"
         b"Computing table 2\n"
         b"\tBucket 2 QS. Ram: 3.250GiB, u_sort min: 1.125GiB, qs min: 0.281GiB. force_qs: 1\n")


def make_log(log_dir: str, mb: int) -> str:
    path = os.path.join(log_dir, lognames.new_log_name("chia", time.time() - 3600))
    block = LINES * ((1 << 20) // len(LINES))
    with open(path, "wb") as f:
        f.write(HEAD)
        for _ in range(mb):
            f.write(block)
    return path


class Agent:
    def __init__(self):
        self.p = subprocess.Popen([sys.executable, "-m", "agent", "serve"], cwd=REPO,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.n = 0

    def call(self, op, **args):
        self.n += 1
        t = time.perf_counter()
        self.p.stdin.write(json.dumps(dict(args, id=self.n, op=op)) + "\n")
        self.p.stdin.flush()
        resp = json.loads(self.p.stdout.readline())
        return time.perf_counter() - t, resp

    def snapshot(self, config, timeout_s):
        return self.call("snapshot", config=config, timeout_s=timeout_s)

    def close(self):
        self.p.stdin.close()
        self.p.wait(30)


def case(base: Path, mb: int, timeout_s: float) -> dict:
    d = {k: str(base / k) for k in ("tmp", "dst", "log")}
    for p in d.values():
        os.makedirs(p, exist_ok=True)
    config = {"tmp_dirs": [d["tmp"]], "dst_dirs": [d["dst"]], "log_dir": d["log"]}
    size = os.path.getsize(make_log(d["log"], mb)) if mb else 0
    agent = Agent()
    agent.call("hello")             # started, as the controller's session does first
    try:
        times, pending = [], True
        while pending:
            took, resp = agent.snapshot(config, timeout_s)
            assert resp["ok"], resp
            times.append(took)
            pending = resp["result"].get("logs_pending")    # before issue 25: no such field
        _, _ = agent.snapshot(config, timeout_s)
        warm, _ = agent.snapshot(config, timeout_s)
    finally:
        agent.close()
        shutil.rmtree(base)
    return {"mb": mb, "first_s": times[0], "max_s": max(times), "snapshots": len(times),
            "warm_ms": warm * 1000, "through_s": sum(times) if size else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="200,1000")
    ap.add_argument("--timeout", type=float, default=8.0)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    rows = [case(root / "none", 0, args.timeout)]
    for mb in (int(x) for x in args.sizes.split(",")):
        rows.append(case(root / f"log{mb}", mb, args.timeout))
    shutil.rmtree(root, ignore_errors=True)
    print(f"snapshot with timeout_s={args.timeout:g} (deadline); one fresh agent per case")
    print(f"{'log in log_dir':>16} {'1st answer':>11} {'slowest':>9} {'snapshots':>10}"
          f" {'read through':>13} {'warm':>9}")
    for r in rows:
        name = f"{r['mb']} MB" if r["mb"] else "none (baseline)"
        through = f"{r['through_s']:.1f}s" if r["through_s"] else "-"
        print(f"{name:>16} {r['first_s']:>10.2f}s {r['max_s']:>8.2f}s {r['snapshots']:>10}"
              f" {through:>13} {r['warm_ms']:>7.1f}ms")
    late = [r for r in rows if r["max_s"] > args.timeout]
    print("every answer by its deadline" if not late else f"LATE: {late}")


if __name__ == "__main__":
    main()
