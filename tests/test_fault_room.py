"""The room guard when an endless job's staging dir is remounted read-only
or removed under it (real tmpfs, real chiapos jobs, real sshd): the job is
suspended with the reason (chiapos would retry its final copy every five
minutes, saying nothing to plotfleet), a job into a healthy dir plots on,
and both go on once the drive is back."""
import os
import shutil
import subprocess
import sys
import time

from tests.cli import plotfleet, status_json
from tests.test_control_e2e import REPO
from tests.test_endless_e2e import events, stopped


def _job(p, dst, k, log):
    return subprocess.Popen(
        [sys.executable, "-m", "agent", "plot-chiapos", "-k", str(k), "-t", p.dirs["tmp"][0],
         "-2", p.dirs["tmp2"], "-d", dst, "-b", "64", "-u", "32", "-r", "1", "-n", "0"],
        stdout=log, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)))


def _wait(what, deadline=20):
    end = time.time() + deadline
    while not what():
        assert time.time() < end
        time.sleep(0.1)


def test_a_staging_dir_gone_read_only_or_removed_suspends_only_its_job(ssh_fleet, tmp_path, tmpfs):
    fleet = ssh_fleet(n_plotters=1)
    p = fleet.hosts["plotter1"]
    ok, ro, gone = p.dirs["dst"][0], str(tmp_path / "dst-ro"), str(tmp_path / "dst-gone")
    tmpfs.mount(ro, "64m")
    os.makedirs(gone)
    inv = fleet.write_inventory(tmp_path / "inventory.yaml", global_max_jobs=3,
                                dst_dirs=[ok, ro, gone])
    logs = {d: tmp_path / f"job-{i}.log" for i, d in enumerate((ok, ro, gone))}
    # k20 plots (~6 s each) where the drive goes: a pass lands mid-plot
    jobs = {d: _job(p, d, 18 if d == ok else 20, open(logs[d], "wb")) for d in (ok, ro, gone)}
    try:
        for d in (ro, gone):    # past chiapos' own check of the final dir: making its plot
            _wait(lambda: "Starting phase 1/4" in logs[d].read_text())
        subprocess.run(["mount", "-o", "remount,ro", ro], check=True)
        shutil.rmtree(gone)
        deadline, out = time.time() + 30, []
        while not (stopped(jobs[ro].pid) and stopped(jobs[gone].pid)):
            for d, j in jobs.items():
                assert j.poll() is None, logs[d].read_text()
            assert time.time() < deadline, "\n".join(out)
            r = plotfleet("plot-all", "--inventory", inv, "--once", "--json", timeout=30)
            assert "Traceback" not in r.stderr, r.stderr
            out.append(r.stdout)
        assert not stopped(jobs[ok].pid)
        said = {e["detail"] for o in out for e in events(o) if e["kind"] == "job_suspended_no_room"}
        assert f"plotter1: job pid {jobs[ro].pid} suspended: {ro} cannot take its plot: " \
               "read-only file system" in said, said
        assert f"plotter1: job pid {jobs[gone].pid} suspended: {gone} cannot take its plot: " \
               "missing" in said, said
        r, doc = status_json(inv)          # and status says why
        (seen,) = [{j["pid"]: j for j in h["jobs"]} for h in doc["hosts"] if h["name"] == "plotter1"]
        assert seen[jobs[ro].pid]["paused"] == f"{ro} cannot take its plot: read-only file system"
        assert seen[jobs[gone].pid]["paused"] == f"{gone} cannot take its plot: missing"
        assert seen[jobs[ok].pid]["state"] == "running"

        # the drives are back: the jobs go on
        subprocess.run(["mount", "-o", "remount,rw", ro], check=True)
        os.makedirs(gone)
        r = plotfleet("plot-all", "--inventory", inv, "--once", "--json", timeout=30)
        resumed = {e["detail"].split()[3] for e in events(r.stdout) if e["kind"] == "job_resumed_room"}
        assert resumed == {str(jobs[ro].pid), str(jobs[gone].pid)}, r.stdout
        assert not any(stopped(j.pid) for j in jobs.values())
        assert all(j.poll() is None for j in jobs.values())
    finally:
        for j in jobs.values():
            j.kill()
            j.wait()
