"""status over 20 real sshd hosts, side by side with Ansible's raw no-op.

    python3 bench/bench_status.py [--hosts 20] [--rounds 5] [--polls 30]

Prints, in one run over the same inventory file:
  - cold `plotfleet status` (new process, new SSH connections, agent already
    deployed) vs `ansible all -m raw -a true --forks N` over the same hosts,
    also with fresh connections (ControlMaster=no), and for reference with
    Ansible's ControlPersist masters kept from its previous run;
  - a warm poll of all hosts over the persistent sessions (median of --polls);
  - agent CPU per poll with 20 plot jobs on one host (user+sys of the agent
    process, measured by psutil, divided by the polls);
  - where a cold status spends its time on one host, measured host after
    host (no contention of our own) and given as medians over the hosts:
    TCP + key exchange + auth, one exec (sshd's session and the login
    shell, with whatever its rc files run), Python start (-S), psutil's
    import, the agent's imports, a new agent's first snapshot and a warm
    one; and on the controller, its own imports.  Each step is an exec of
    its own minus the step before, so they add up to one cold agent.
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

from orchestrator.remote import deploy  # noqa: E402
from orchestrator.remote.fleet import Fleet  # noqa: E402
from orchestrator.remote.session import Session  # noqa: E402
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


def _exec_s(runner, cmd):
    t = time.perf_counter()
    rc, out, err = runner.run(cmd, 30)
    assert rc == 0, (cmd, err)
    return time.perf_counter() - t


def breakdown(hosts, reps=2):
    """[(step, median ms over hosts)] of one cold agent, host after host."""
    bundle = deploy.agent_bundle(None)
    rows = {}
    for _ in range(reps):
        for h in hosts:
            s = Session(h)
            t = time.perf_counter()
            runner = s._runner()
            got = {"TCP + key exchange + auth (paramiko)": time.perf_counter() - t}
            py = deploy.python_argv(h.python)
            here = (f'cd ~/{deploy.BASE}/agent-{bundle.hash} && PYTHONPATH="$(tail -n 1 '
                    f'../{deploy.marker_name(bundle, h.python)})" ')
            steps = [("sshd session + login shell (rc files)", "true"),
                     ("Python start (-S)", f"{py} -S -c pass"),
                     ("psutil import", here + f"{py} -S -c 'import psutil'"),
                     ("agent imports", here + f"{py} -S -c 'import agent.serve'")]
            before = 0.0
            for label, cmd in steps:
                took = min(_exec_s(runner, cmd) for _ in range(2))
                got[label] = max(0.0, took - before)
                before = took
            s.close()
            s = Session(h)
            t = time.perf_counter()
            s.open()
            got["(whole start: connect to agent's hello)"] = time.perf_counter() - t
            for label in ("first snapshot of a new agent", "warm snapshot"):
                t = time.perf_counter()
                s.request("snapshot", config=h.agent_config())
                got[label] = time.perf_counter() - t
            s.close()
            for k, v in got.items():
                rows.setdefault(k, []).append(v)
    ctl = []
    for _ in range(3):
        bare = timed([sys.executable, "-c", "pass"])[0]
        ctl.append(timed([sys.executable, "-c", "import orchestrator.cli"],
                         dict(os.environ, PYTHONPATH=str(REPO)))[0] - bare)
    out = [(k, median_ms(v)) for k, v in rows.items()]
    return out + [("controller: its imports (once per command)", median_ms(ctl))]


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
        ans_cmd = ["ansible", "all", "-i", str(inv), "-m", "raw", "-a", "true",
                   "--forks", str(a.hosts)]
        # cold = fresh SSH connections for both; Ansible's default ControlPersist
        # would reuse the previous run's master connections from run 2 on
        ans_env = dict(env, ANSIBLE_SSH_ARGS="-o ControlMaster=no")
        # interleaved, first one then the other first: the machine's load
        # (other work on its 2 cores) falls on both alike
        cold, ans, ratios = [], [], []
        for i in range(a.rounds):
            pair = {}
            for which in (("pf", "ans") if i % 2 == 0 else ("ans", "pf")):
                t, r = timed(pf, env) if which == "pf" else timed(ans_cmd, ans_env)
                assert r.returncode == 0, r.stdout + r.stderr
                pair[which] = t
            cold.append(pair["pf"])
            ans.append(pair["ans"])
            ratios.append(pair["pf"] / pair["ans"])
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
        steps = breakdown(hosts)

        print(f"\nplotfleet status bench: {a.hosts} sshd hosts on loopback, "
              f"{os.cpu_count()} cores, median of {a.rounds} runs")
        print(f"{'what':52} {'plotfleet':>12} {'baseline':>12}")
        print(f"{'cold status (first run, deploys agent)':52} {first * 1000:10.0f}ms {'':>12}")
        print(f"{'cold status vs ansible all -m raw -a true':52} "
              f"{median_ms(cold):10.0f}ms {median_ms(ans):10.0f}ms")
        print(f"{'  ratio, pair by pair (median; each pair side by side)':52} "
              f"{statistics.median(ratios):11.2f}x  ({', '.join(f'{x:.2f}' for x in ratios)})")
        print(f"{'  (ansible reusing ControlPersist connections)':52} {'':>12} "
              f"{median_ms(ans_cp):10.0f}ms")
        print(f"{'warm poll of all hosts (median of %d)' % a.polls:52} "
              f"{median_ms(warm):10.1f}ms {median_ms(cold):10.0f}ms  (baseline: cold status)")
        print(f"{'agent CPU per poll, %d jobs on one host' % seen:52} {cpu_ms:10.2f}ms")
        print(f"where a cold status spends its time per host (one host at a time, median of "
              f"{len(hosts)} hosts; load average {os.getloadavg()[0]:.1f})")
        for label, ms in steps:
            print(f"  {label:50} {ms:10.1f}ms")
        print("targets: warm <= 150 ms, cold < ansible, agent <= 20 ms CPU/poll")
    finally:
        fleet.stop_all()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
