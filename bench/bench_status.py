"""status over 20 real sshd hosts, side by side with Ansible's raw no-op.

    python3 bench/bench_status.py [--hosts 20] [--rounds 5] [--polls 30]

Prints, in one run over the same inventory file:
  - cold `plotfleet status` (new process, new SSH connections, agent already
    deployed) vs `ansible all -m raw -a true --forks N` over the same hosts,
    also with fresh connections (ControlMaster=no), and for reference with
    Ansible's ControlPersist masters kept from its previous run;
  - a warm poll of all hosts over the persistent sessions (median of --polls);
  - agent CPU per poll with 20 plot jobs on one host (user+sys of the agent
    process, measured by psutil, divided by the polls).
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestrator.remote.fleet import Fleet  # noqa: E402
from orchestrator.config.inventory import load_inventory  # noqa: E402
from tests.sshhosts import SshFleet  # noqa: E402


def timed(cmd, env=None):
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    return time.perf_counter() - t, r


def median_ms(xs):
    return statistics.median(xs) * 1000


def start_jobs(host, n, k=25):
    """n real chiapos jobs on one host, stopped right after they start (no CPU
    stolen from the measurement; the agent's work per job is the same)."""
    procs = []
    tmp = host.dirs["tmp"][0]
    for i in range(n):
        log = open(os.path.join(host.dirs["log"], f"bench-{i:02d}.log"), "w")
        p = subprocess.Popen([sys.executable, "-m", "agent", "plot-chiapos", "-k", str(k),
                              "-t", tmp, "-2", host.dirs["tmp2"], "-d", host.dirs["dst"][0],
                              "-b", "64", "-u", "32", "-r", "1"],
                             stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                             env=dict(os.environ, PYTHONPATH=str(REPO)),
                             start_new_session=True)
        procs.append(p)
    time.sleep(1.5)
    for p in procs:
        p.send_signal(signal.SIGSTOP)
    return procs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--polls", type=int, default=30)
    a = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="plotfleet-bench-"))
    fleet = SshFleet(base, n_plotters=a.hosts)
    try:
        inv = fleet.write_inventory(base / "inventory.yaml")
        env = dict(os.environ, PYTHONPATH=str(REPO), ANSIBLE_HOST_KEY_CHECKING="True")
        pf = [sys.executable, "-m", "orchestrator", "status", "--inventory", str(inv), "--json"]
        first, r = timed(pf, env)                      # deploys the agent once
        assert r.returncode == 0, r.stderr
        cold = [timed(pf, env)[0] for _ in range(a.rounds)]
        ans_cmd = ["ansible", "all", "-i", str(inv), "-m", "raw", "-a", "true",
                   "--forks", str(a.hosts)]
        # cold = fresh SSH connections for both; Ansible's default ControlPersist
        # would reuse the previous run's master connections from run 2 on
        ans_env = dict(env, ANSIBLE_SSH_ARGS="-o ControlMaster=no")
        ans = []
        for _ in range(a.rounds):
            t, r = timed(ans_cmd, ans_env)
            assert r.returncode == 0, r.stdout + r.stderr
            ans.append(t)
        ans_cp = []     # for reference: Ansible reusing ControlPersist masters
        timed(ans_cmd, env)
        for _ in range(a.rounds):
            ans_cp.append(timed(ans_cmd, env)[0])

        hosts = load_inventory(str(inv)).hosts
        with Fleet(hosts) as f:
            f.gather()
            warm = []
            for _ in range(a.polls):
                t = time.perf_counter()
                state = f.gather()
                warm.append(time.perf_counter() - t)
            assert all(h.reachable for h in state.hosts)

            target = hosts[0]
            jobs = start_jobs(fleet.hosts[target.name], 20)
            try:
                sess = f.sessions[target.name]
                f.gather()
                agent = psutil.Process(sess.request("hello")["pid"])
                c0 = agent.cpu_times()
                n = a.polls
                for _ in range(n):
                    snap = sess.request("snapshot", config=target.agent_config())
                c1 = agent.cpu_times()
                seen = len(snap["jobs"])
            finally:
                for p in jobs:
                    p.send_signal(signal.SIGCONT)
                    p.kill()
                    p.wait()
        cpu_ms = ((c1.user - c0.user) + (c1.system - c0.system)) / n * 1000

        print(f"\nplotfleet status bench: {a.hosts} sshd hosts on loopback, "
              f"{os.cpu_count()} cores, median of {a.rounds} runs")
        print(f"{'what':52} {'plotfleet':>12} {'baseline':>12}")
        print(f"{'cold status (first run, deploys agent)':52} {first * 1000:10.0f}ms {'':>12}")
        print(f"{'cold status vs ansible all -m raw -a true':52} "
              f"{median_ms(cold):10.0f}ms {median_ms(ans):10.0f}ms")
        print(f"{'  (ansible reusing ControlPersist connections)':52} {'':>12} "
              f"{median_ms(ans_cp):10.0f}ms")
        print(f"{'warm poll of all hosts (median of %d)' % a.polls:52} "
              f"{median_ms(warm):10.1f}ms {median_ms(cold):10.0f}ms  (baseline: cold status)")
        print(f"{'agent CPU per poll, %d jobs on one host' % seen:52} {cpu_ms:10.2f}ms")
        print("targets: warm <= 150 ms, cold < ansible, agent <= 20 ms CPU/poll")
    finally:
        fleet.stop_all()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
