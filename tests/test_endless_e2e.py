"""An endless job end to end over real sshd: the chiapos launcher with count 0
(-n 0) makes k18 plots one after another into a small staging dir (tmpfs);
plot-all archives each plot as it lands while the job runs on, the agent
suspends the job while its staging dir has no room and resumes it once a
transfer frees some, a killed job is started again, and a job the operator
suspended stays suspended."""
import json
import os
import signal
import time

import psutil

from tests.cli import plotfleet

MiB = 2 ** 20


def farm_plots(fleet):
    h = fleet.hosts["harvester1"]
    return sorted(n for d in h.dirs["farm"] for n in os.listdir(d) if n.endswith(".plot"))


def the_job(stdout):
    """plotter1's one job as the last pass of a `plot-all --json` run saw it
    (each pass looks after the agent's room guard has run)."""
    doc = json.loads([line for line in stdout.splitlines() if line.startswith("{")][-1])
    (jobs,) = [h["jobs"] for h in doc["hosts"] if h["name"] == "plotter1"]
    assert len(jobs) == 1, jobs
    return jobs[0]


def stopped(pid):
    return psutil.Process(pid).status() == psutil.STATUS_STOPPED


def events(stdout):
    return [e for line in stdout.splitlines() if line.startswith("{")
            for e in json.loads(line)["events"]]


def test_endless_job_archived_as_it_plots_suspended_when_full_restarted_when_killed(
        ssh_fleet, tmp_path, tmpfs):
    fleet = ssh_fleet(n_plotters=1, n_harvesters=1)
    p, h = fleet.hosts["plotter1"], fleet.hosts["harvester1"]
    staging = p.dirs["dst"][0]
    tmpfs.mount(staging, "10m")             # two k18 plots (~3.8 MiB each), not three
    for d in h.dirs["farm"]:
        tmpfs.mount(d, "64m")               # two drives: two transfers at once
    fleet.farms_mounted = True
    inv = fleet.write_inventory(tmp_path / "inventory.yaml", count=0, global_max_jobs=1,
                                global_stagger_m=0, polling_time_s=0.5,
                                max_transfers_per_plotter=2)
    pids = []
    try:
        # N plots archived: plot-all returns, the one job runs on
        r = plotfleet("plot-all", "--inventory", inv, "--plots", 2, "--json", timeout=90)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr
        assert len(farm_plots(fleet)) >= 2
        job = the_job(r.stdout)
        pids.append(job["pid"])
        assert job["count"] == 0 and job["plots_done"] >= 2
        assert psutil.Process(job["pid"]).status() != psutil.STATUS_ZOMBIE

        # staging full (no harvester in the pass): the agent stops the job
        out = [r.stdout]
        deadline = time.time() + 30
        while not stopped(job["pid"]):
            assert time.time() < deadline, "\n".join(out)
            r = plotfleet("plot-all", "--inventory", inv, "--limit", "plotter1", "--once",
                          "--json", timeout=30)
            out.append(r.stdout)
        job = the_job(out[-1])
        assert job["state"] == "suspended" and "no room in " in job["paused"]
        free = os.statvfs(staging).f_bavail * os.statvfs(staging).f_frsize
        assert free < 4 * MiB                               # it was full indeed
        log = open(job["log_file"], errors="replace").read()
        assert "No space left" not in log and "error" not in log.lower()
        # the agent's doing (in the last passes of the run above, or in these)
        stops = [e for o in out for e in events(o) if e["kind"] == "job_suspended_no_room"]
        assert stops and {e["host"] for e in stops} == {"plotter1"}
        assert all("no room in " in e["detail"] for e in stops)

        # a transfer frees room: the agent resumes it, and the next plot comes
        before = job["plots_done"]
        r = plotfleet("plot-all", "--inventory", inv, "--plots", 1, "--json", timeout=60)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr
        assert any(e["kind"] == "job_resumed_room" for e in events(r.stdout))
        job = the_job(r.stdout)
        assert job["pid"] == pids[0] and job["plots_done"] > before

        # killed: the scheduler starts the job again (the back-off allows one)
        os.kill(job["pid"], signal.SIGKILL)
        r = plotfleet("plot-all", "--inventory", inv, "--plots", 1, "--json", timeout=60)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr
        job = the_job(r.stdout)
        pids.append(job["pid"])
        assert job["pid"] != pids[0] and job["count"] == 0

        # the operator's suspend is the last word: room or not, it stays stopped
        r = plotfleet("suspend", "--all", "--inventory", inv, "--limit", "plotter1",
                      timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr

        def has_room():
            st = os.statvfs(staging)
            return st.f_bavail * st.f_frsize > 4 * MiB

        def one_pass():
            r = plotfleet("plot-all", "--inventory", inv, "--once", "--json", timeout=30)
            assert not [e for e in events(r.stdout) if e["kind"] == "job_resumed_room"]
            return r.stdout
        for _ in range(3):
            if has_room():
                break
            one_pass()              # archives what waits in staging
        assert has_room()
        last = one_pass()           # its guard finds room, and leaves the job alone
        assert has_room() and stopped(job["pid"])
        job = the_job(last)
        assert job["state"] == "suspended" and job["paused"] is None
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_an_endless_job_started_by_hand_on_a_count_1_host_is_guarded_too(
        ssh_fleet, tmp_path, tmpfs):
    """The inventory says nothing of endless jobs (count 1, the default), yet a
    farmer starts one by hand into a small staging dir: once the dir cannot
    take its next plot, the agent stops it all the same."""
    import subprocess
    import sys
    from tests.test_control_e2e import REPO
    fleet = ssh_fleet(n_plotters=1)
    p = fleet.hosts["plotter1"]
    staging = p.dirs["dst"][0]
    tmpfs.mount(staging, "6m")              # one k18 plot (~3.8 MiB), not two
    inv = fleet.write_inventory(tmp_path / "inventory.yaml", global_max_jobs=1)
    with open(os.path.join(p.dirs["log"], "by-hand.log"), "wb") as log:
        job = subprocess.Popen(
            [sys.executable, "-m", "agent", "plot-chiapos", "-k", "18", "-t", p.dirs["tmp"][0],
             "-2", p.dirs["tmp2"], "-d", staging, "-b", "64", "-u", "32", "-r", "1", "-n", "0"],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True,
            env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        out = []
        deadline = time.time() + 40
        while not stopped(job.pid):
            assert job.poll() is None, open(os.path.join(p.dirs["log"], "by-hand.log")).read()
            assert time.time() < deadline, "\n".join(out)
            r = plotfleet("plot-all", "--inventory", inv, "--once", "--json", timeout=30)
            out.append(r.stdout)
            time.sleep(0.3)
        stops = [e for o in out for e in events(o) if e["kind"] == "job_suspended_no_room"]
        assert stops and "no room in " in stops[0]["detail"], out[-1]
        r = plotfleet("plot-all", "--inventory", inv, "--once", "--json", timeout=30)
        seen = the_job(r.stdout)
        assert seen["pid"] == job.pid and seen["count"] == 0 and "no room in " in seen["paused"]
        assert len([n for n in os.listdir(staging) if n.endswith(".plot")]) == 1
    finally:
        job.kill()
        job.wait()
