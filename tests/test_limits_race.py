"""Limits hold where the jobs are: a job is seen from its exec to its exit,
even by an agent that first met its process between fork and exec, so
three controllers at once never push a plotter past its limits."""
import os
import subprocess
import sys
import time

import psutil

from agent.facts.procs import classify
from tests.agent_helpers import host_dirs, wait_for
from tests.cli import REPO

# the child sleeps as its parent, then execs into what reads as a madmax job
FORK_THEN_EXEC = r"""
import os, sys, time
tmp, dst = sys.argv[1], sys.argv[2]
pid = os.fork()
if pid == 0:
    time.sleep(float(sys.argv[3]))
    os.execv(sys.executable, ["chia_plot", "-c", "import time; time.sleep(60)",
                              "-t", tmp + "/", "-d", dst + "/"])
print(pid, flush=True)
os.waitpid(pid, 0)
"""


def test_a_process_caught_before_its_exec_is_a_job_once_it_execs(agent, tmp_path):
    d, config = host_dirs(tmp_path / "host")
    parent = subprocess.Popen([sys.executable, "-c", FORK_THEN_EXEC, d["tmp"], d["dst"], "1.5"],
                              stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        # the agent meets the child while it still runs its parent's argv
        assert child not in {j["pid"] for j in agent.ok("snapshot", config=config)["jobs"]}

        def counted():
            return child in {j["pid"] for j in agent.ok("snapshot", config=config)["jobs"]}
        wait_for(counted, 20, every=0.2)
    finally:
        for p in psutil.Process(parent.pid).children(recursive=True) + [psutil.Process(parent.pid)]:
            try:
                p.kill()
            except psutil.Error:
                pass
        parent.wait(10)


def _jobs_by_host(hosts):
    """{host: [tmp dir of each plot job]} from the process table itself."""
    out = {name: [] for name in hosts}
    for p in psutil.process_iter(["cmdline"]):
        try:
            info = classify(p.info["cmdline"] or [])
        except Exception:
            continue
        if not isinstance(info, dict) or info["plotter"] != "chiapos":
            continue
        tmp = os.path.normpath(info.get("tmp_dir") or "")
        for name, h in hosts.items():
            if tmp in [os.path.normpath(t) for t in h.dirs["tmp"]]:
                out[name].append(tmp)
    return out


def test_three_controllers_at_once_never_pass_the_limits(ssh_fleet, tmp_path):
    fleet = ssh_fleet(n_plotters=2)
    per_host = {}
    for name, h in fleet.hosts.items():
        tmps = [os.path.join(h.root, "tmpA"), os.path.join(h.root, "tmpB")]
        for t in tmps:
            os.makedirs(t, exist_ok=True)
        h.dirs["tmp"] = tmps
        per_host[name] = {"tmp_dirs": tmps}
    inv = fleet.write_inventory(tmp_path / "inv.yaml", per_host, global_max_jobs=2,
                                tmpdir_max_jobs=1, global_stagger_m=0, polling_time_s=1)
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")
    runs = [subprocess.Popen([sys.executable, "-m", "orchestrator", "plot-all", "--inventory",
                              str(inv)], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True) for _ in range(3)]
    breaches, samples, most = [], 0, 0
    try:
        end = time.time() + 60
        while time.time() < end:
            for name, tmps in _jobs_by_host(fleet.hosts).items():
                most = max(most, len(tmps))
                if len(tmps) > 2 or len(set(tmps)) < len(tmps):
                    breaches.append((round(time.time() - end + 60, 1), name, sorted(tmps)))
            samples += 1
            time.sleep(0.1)
    finally:
        for r in runs:
            r.terminate()
        errs = [r.communicate(timeout=30)[1] for r in runs]
        for p in psutil.process_iter(["cmdline"]):     # the detached jobs
            try:
                if "plot-chiapos" in (p.info["cmdline"] or []) and any(
                        str(fleet.base) in a for a in p.info["cmdline"]):
                    p.kill()
            except psutil.Error:
                pass
    assert most == 2, (most, errs)      # the limits were reached, so they were tested
    assert breaches == [], f"{len(breaches)} of {samples} samples over the limits: {breaches[:5]}"
