"""suspend / resume / kill / logs end to end: the real CLI over real sshd
hosts acting on real chiapos jobs (k=22, ~30 s of work, so a job is still
running when the test acts; stopped jobs cost nothing)."""
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.cli import REPO, plotfleet, status_json

ID_A = "abcd01" + "0" * 58
ID_B = "abcd02" + "1" * 58     # shares "abcd0" with A: an ambiguous prefix
ID_C = "c0ffee" + "2" * 58


def start_job(host, plot_id, k=22, stop=True):
    """A chiapos job started by hand (plotfleet sees it like any other), once
    it has temp files; SIGSTOPped unless stop=False."""
    log = Path(host.dirs["log"], f"{plot_id[:8]}.log")
    with open(log, "wb") as out:
        p = subprocess.Popen(
            [sys.executable, "-m", "agent", "plot-chiapos", "-k", str(k), "-t", host.dirs["tmp"][0],
             "-2", host.dirs["tmp2"], "-d", host.dirs["dst"][0], "-b", "64", "-u", "32",
             "-r", "1", "--id", plot_id],
            stdout=out, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True,
            env=dict(os.environ, PYTHONPATH=str(REPO)))
    deadline = time.time() + 20
    # until its temp files hold data, so the bytes a kill frees are a real check
    while "Computing table 1" not in log.read_text(errors="replace") or \
            sum(temp_files(host, plot_id).values()) == 0:
        assert p.poll() is None and time.time() < deadline, log.read_text()
        time.sleep(0.05)
    if stop:
        p.send_signal(signal.SIGSTOP)
        wait_status(p.pid, psutil.STATUS_STOPPED)
    return p


def end(*procs):
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
        p.wait(10)


def wait_status(pid, status, timeout=5.0):
    deadline = time.time() + timeout
    while psutil.Process(pid).status() != status:
        assert time.time() < deadline, psutil.Process(pid).status()
        time.sleep(0.01)


def temp_files(host, plot_id):
    """{path: size} of the job's temp files, found independently of plotfleet."""
    out = {}
    for d in host.dirs["tmp"] + [host.dirs["tmp2"]]:
        for n in os.listdir(d):
            if plot_id in n:
                try:
                    out[os.path.join(d, n)] = os.path.getsize(os.path.join(d, n))
                except FileNotFoundError:   # a running job deletes its sort buckets
                    pass
    return out


def tree(root):
    """Every file under a host's folder: path -> (size, mtime_ns)."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            st = os.stat(os.path.join(d, f))
            out[os.path.join(d, f)] = (st.st_size, st.st_mtime_ns)
    return out


def jobs_by_id(doc):
    return {j["plot_id"]: dict(j, host=h["name"]) for h in doc["hosts"] for j in h["jobs"]}


def cpu_s(pid):
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def test_suspend_resume_by_prefix_all_within_limit_and_stalled(ssh_fleet, tmp_path):
    fleet = ssh_fleet(n_plotters=2)
    p1, p2 = fleet.hosts["plotter1"], fleet.hosts["plotter2"]
    a = start_job(p1, ID_A, stop=False)
    b = start_job(p2, ID_B)
    b_stopped = time.time()
    try:
        inv = fleet.write_inventory(tmp_path / "inventory.yaml")
        r = plotfleet("suspend", "abcd01", "--inventory", inv)
        assert r.returncode == 0, r.stderr
        assert "suspended plotter1: abcd01" in r.stdout
        assert psutil.Process(a.pid).status() == psutil.STATUS_STOPPED
        used = cpu_s(a.pid)
        _, doc = status_json(inv)
        jobs = jobs_by_id(doc)
        assert (jobs[ID_A]["host"], jobs[ID_A]["pid"], jobs[ID_A]["state"]) == \
            ("plotter1", a.pid, "suspended")
        assert not jobs[ID_A]["stalled"]               # default stall_after_m is 30
        assert jobs[ID_A]["tmp_bytes"] == sum(temp_files(p1, ID_A).values()) > 0
        time.sleep(0.5)
        assert cpu_s(a.pid) == used                    # really stopped

        r = plotfleet("resume", "abcd01", "--inventory", inv)
        assert r.returncode == 0, r.stderr
        assert psutil.Process(a.pid).status() != psutil.STATUS_STOPPED
        assert jobs_by_id(status_json(inv)[1])[ID_A]["state"] == "running"
        deadline = time.time() + 5
        while cpu_s(a.pid) < used + 0.2:               # and really working again
            assert time.time() < deadline
            time.sleep(0.05)

        # --all acts only within --limit: plotter2's job is left alone
        r = plotfleet("suspend", "--all", "--limit", "plotter1", "--inventory", inv, "--json")
        assert r.returncode == 0, r.stderr
        done = json.loads(r.stdout)["done"]
        assert [(d["host"], d["pid"], d["state"]) for d in done] == \
            [("plotter1", a.pid, "suspended")]
        r = plotfleet("resume", "--all", "--limit", "plotter1", "--inventory", inv)
        assert r.returncode == 0 and "resumed plotter1: abcd01" in r.stdout
        assert "plotter2" not in r.stdout
        assert psutil.Process(b.pid).status() == psutil.STATUS_STOPPED
        jobs = jobs_by_id(status_json(inv)[1])
        assert (jobs[ID_A]["state"], jobs[ID_B]["state"]) == ("running", "suspended")
        a.send_signal(signal.SIGSTOP)     # A's part is done: spare the CPU

        # a suspended job's log stops growing: stalled after stall_after_m
        # (0.1 = 6 s, the inventory's floor; B has been stopped that long by now)
        time.sleep(max(0.0, b_stopped + 6.5 - time.time()))
        quick = fleet.write_inventory(tmp_path / "quick.yaml", stall_after_m=0.1)
        jobs = jobs_by_id(status_json(quick)[1])
        assert (jobs[ID_B]["state"], jobs[ID_B]["stalled"]) == ("suspended", True)
        assert jobs[ID_B]["log_idle_s"] > 6
        r = plotfleet("status", "--inventory", quick)
        row = next(line for line in r.stdout.splitlines() if ID_B[:8] in line)
        assert "stalled" in row
    finally:
        end(a, b)


def test_kill_refusals_check_and_exact_cleanup(ssh_fleet, tmp_path, k18_plots):
    fleet = ssh_fleet(n_plotters=1)
    h = fleet.hosts["plotter1"]
    a = start_job(h, ID_A)
    b = start_job(h, ID_B)
    try:
        # things a sloppy kill would take along
        k18_plots.copy_to(h.dirs["dst"][0], n=1)
        Path(h.dirs["tmp"][0], "notes.txt").write_text("mine")
        Path(h.dirs["tmp2"], "plot-k18-2026-01-01-00-00-" + "9" * 64 + ".plot.2.tmp").write_text("x")
        inv = fleet.write_inventory(tmp_path / "inventory.yaml")
        before = tree(h.root)
        mine = temp_files(h, ID_A)
        assert len(mine) > 3 and sum(mine.values()) > 0 and temp_files(h, ID_B)

        r = plotfleet("kill", "abcd0", "--yes", "--inventory", inv)
        assert r.returncode == 2 and "Traceback" not in r.stderr
        err = r.stderr.strip().splitlines()
        assert len(err) == 1 and "ambiguous" in err[0]
        assert ID_A[:12] in err[0] and ID_B[:12] in err[0]

        r = plotfleet("kill", "abcd01", "--inventory", inv)      # no --yes, no terminal
        assert r.returncode == 1 and "aborted, nothing changed" in r.stderr
        r = plotfleet("kill", "abcd01", "--check", "--inventory", inv)
        assert r.returncode == 0 and "would kill: plotter1: abcd01" in r.stdout
        time.sleep(0.2)
        assert tree(h.root) == before
        assert psutil.Process(a.pid).status() == psutil.STATUS_STOPPED

        log_a = Path(h.dirs["log"], f"{ID_A[:8]}.log")
        text_a = log_a.read_text()
        r = plotfleet("kill", "abcd01", "--yes", "--json", "--inventory", inv)
        assert r.returncode == 0, r.stderr
        [done] = json.loads(r.stdout)["done"]
        assert a.wait(5) == -signal.SIGTERM               # the process ended first
        assert sorted(done["removed"]) == sorted(mine)
        assert done["freed_bytes"] == sum(mine.values())
        after = tree(h.root)
        # its log says it was killed on request (no failure), the rest is as it was
        added = log_a.read_text()[len(text_a):]
        assert log_a.read_text().startswith(text_a) and \
            added.strip().startswith("plotfleet: killed on request at ")
        assert {p: v for p, v in after.items() if p != str(log_a)} == \
            {p: v for p, v in before.items() if p not in mine and p != str(log_a)}
        assert psutil.Process(b.pid).status() == psutil.STATUS_STOPPED

        # the human report names the files and the bytes
        r = plotfleet("kill", ID_B[:7], "--yes", "--inventory", inv)
        assert r.returncode == 0, r.stderr
        assert "removed" in r.stdout and "bytes)" in r.stdout
        assert not temp_files(h, ID_B)
    finally:
        end(a, b)


def test_killed_by_signal_job_is_dead_with_leftovers_and_kill_cleans(ssh_fleet, tmp_path):
    fleet = ssh_fleet(n_plotters=1)
    h = fleet.hosts["plotter1"]
    c = start_job(h, ID_C)
    c.send_signal(signal.SIGKILL)
    c.wait(5)
    left = temp_files(h, ID_C)
    assert sum(left.values()) > 0
    inv = fleet.write_inventory(tmp_path / "inventory.yaml")
    _, doc = status_json(inv)
    [host] = doc["hosts"]
    assert host["jobs"] == []
    [dead] = host["dead"]
    assert dead["plot_id"] == ID_C and dead["phase"][0] == 1
    assert sorted(dead["tmp_files"]) == sorted(left) and dead["tmp_bytes"] == sum(left.values())
    assert dead["log_file"] == str(Path(h.dirs["log"], ID_C[:8] + ".log"))
    r = plotfleet("status", "--inventory", inv)
    row = next(line for line in r.stdout.splitlines() if ID_C[:8] in line)
    assert "dead" in row

    # its files changed a moment ago: kill refuses until they rest kill_after_m
    before = tree(h.root)
    r = plotfleet("kill", "c0ffee", "--yes", "--inventory", inv)
    assert r.returncode == 1 and "changed" in r.stderr and "nothing removed" in r.stderr
    assert tree(h.root) == before
    inv = fleet.write_inventory(tmp_path / "inventory.yaml", kill_after_m=0.02)
    deadline = time.time() + 10
    while time.time() - max(os.path.getmtime(p) for p in left) < 0.02 * 60 + 0.2:
        assert time.time() < deadline
        time.sleep(0.1)
    r = plotfleet("kill", "c0ffee", "--yes", "--json", "--inventory", inv)
    assert r.returncode == 0, r.stderr
    [done] = json.loads(r.stdout)["done"]
    assert (done["state"], done["pid"]) == ("dead", None)
    assert sorted(done["removed"]) == sorted(left) and done["freed_bytes"] == sum(left.values())
    assert tree(h.root) == {p: v for p, v in before.items() if p not in left}
    # the log stays (history for analyze); nothing is left to clean
    [dead] = status_json(inv)[1]["hosts"][0]["dead"]
    assert dead["tmp_files"] == [] and dead["tmp_bytes"] == 0
    r = plotfleet("kill", "--all", "--yes", "--inventory", inv, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["done"] == []


def test_logs_prints_and_follows_from_the_host_holding_the_job(ssh_fleet, tmp_path):
    fleet = ssh_fleet(n_plotters=2)
    p2 = fleet.hosts["plotter2"]
    job = start_job(p2, ID_C, stop=False)
    try:
        inv = fleet.write_inventory(tmp_path / "inventory.yaml")
        log = Path(p2.dirs["log"], ID_C[:8] + ".log")
        job.send_signal(signal.SIGSTOP)
        wait_status(job.pid, psutil.STATUS_STOPPED)
        r = plotfleet("logs", "c0ff", "--inventory", inv)
        assert r.returncode == 0, r.stderr
        assert r.stdout == log.read_text() and "ID: " + ID_C in r.stdout

        r = plotfleet("logs", "dddd", "--inventory", inv)
        assert r.returncode == 2 and "no log for plot id starting 'dddd'" in r.stderr

        size = log.stat().st_size
        follow = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "logs", "c0ff", "--follow", "--inventory",
             str(inv)], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        got = b""

        def read_until(n):
            nonlocal got
            deadline = time.time() + 20
            while len(got) < n:
                assert time.time() < deadline and follow.poll() is None, got[-300:]
                if select.select([follow.stdout], [], [], 0.2)[0]:
                    got += os.read(follow.stdout.fileno(), 65536)
        try:
            read_until(size)                          # what was there
            job.send_signal(signal.SIGCONT)           # and what the job writes next
            read_until(size + 200)
        finally:
            follow.send_signal(signal.SIGINT)         # Ctrl-C ends --follow cleanly
            rest, err = follow.communicate(timeout=10)
        got += rest
        assert follow.returncode == 0 and b"Traceback" not in err, err
        assert log.read_bytes().startswith(got)
        assert got.count(b"\n") > log.read_bytes()[:size].count(b"\n")
    finally:
        end(job)

    # a finished plot's log: --follow prints it all and returns by itself
    done = start_job(fleet.hosts["plotter1"], ID_A, k=18, stop=False)
    assert done.wait(30) == 0
    r = plotfleet("logs", ID_A[:10], "--follow", "--inventory", inv, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == Path(fleet.hosts["plotter1"].dirs["log"], ID_A[:8] + ".log").read_text()
    assert "Renamed final file" in r.stdout
