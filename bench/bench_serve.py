"""Instant status over 20 real sshd hosts, while `plot-all --serve` runs.

    python3 bench/bench_serve.py [--hosts 20] [--rounds 7]

Side by side in one run over the same inventory file:
  - instant `plotfleet status --json`: answered by the running plot-all
    (new process, no SSH);
  - cold `plotfleet status --json --fresh`: new process, new SSH connections
    to every host (agent already deployed);
  - `ansible all -m raw -a true` over the same hosts with fresh connections
    (ControlMaster=no), the no-op any Ansible-based status would pay at least.
Medians of --rounds runs each.  Targets: instant <= 150 ms, >= 15x faster than cold.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestrator.serve import discovery  # noqa: E402
from tests.sshhosts import SshFleet  # noqa: E402


def timed(cmd, env):
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    return time.perf_counter() - t, r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="plotfleet-bench-serve-"))
    fleet = SshFleet(base, n_plotters=a.hosts)
    proc = None
    try:
        # no jobs (their tmp dir is missing, so none starts): the bench
        # measures status, not plotting on a shared box
        inv = fleet.write_inventory(base / "inventory.yaml", polling_time_s=5,
                                    tmp_dirs=[str(base / "no-such-tmp")])
        env = dict(os.environ, PYTHONPATH=str(REPO), ANSIBLE_HOST_KEY_CHECKING="True")
        status = [sys.executable, "-m", "orchestrator", "status", "--inventory", str(inv), "--json"]
        _, r = timed(status + ["--fresh"], env)      # deploys the agent once
        assert r.returncode == 0, r.stderr
        proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "plot-all", "--inventory",
                                 str(inv), "--serve", "127.0.0.1:0"],
                                cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while True:
            _, r = timed(status, env)
            if "from the running plot-all" in r.stderr:
                break
            assert time.monotonic() < deadline and proc.poll() is None, "plot-all never served"
            time.sleep(0.5)
        instant, cold, ans = [], [], []
        for _ in range(a.rounds):
            t, r = timed(status, env)
            assert r.returncode == 0 and "from the running plot-all" in r.stderr, r.stderr
            assert len(json.loads(r.stdout)["hosts"]) == a.hosts
            instant.append(t)
        for _ in range(a.rounds):
            t, r = timed(status + ["--fresh"], env)
            assert r.returncode == 0 and "from the running" not in r.stderr, r.stderr
            cold.append(t)
        ans_env = dict(env, ANSIBLE_SSH_ARGS="-o ControlMaster=no")
        for _ in range(a.rounds):
            t, r = timed(["ansible", "all", "-i", str(inv), "-m", "raw", "-a", "true",
                          "--forks", str(a.hosts)], ans_env)
            assert r.returncode == 0, r.stdout + r.stderr
            ans.append(t)
        med = {k: statistics.median(v) * 1000 for k, v in
               (("instant", instant), ("cold", cold), ("ansible", ans))}
        print(f"\nplotfleet instant status bench: {a.hosts} sshd hosts on loopback, "
              f"{os.cpu_count()} cores, plot-all --serve running, median of {a.rounds} runs")
        print(f"{'instant status --json (from the running plot-all)':52} {med['instant']:8.0f} ms")
        print(f"{'cold status --json --fresh (new SSH sessions)':52} {med['cold']:8.0f} ms")
        print(f"{'ansible all -m raw -a true (ControlMaster=no)':52} {med['ansible']:8.0f} ms")
        print(f"instant is {med['cold'] / med['instant']:.1f}x faster than cold, "
              f"{med['ansible'] / med['instant']:.1f}x faster than ansible")
        print("targets: instant <= 150 ms, >= 15x faster than cold")
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        fleet.stop_all()
        try:
            os.unlink(discovery.path_for(str(base / "inventory.yaml"), None))
        except OSError:
            pass
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
