"""Jobs that fail, for real: real sshd plotters, real chiapos and a real
plotter command that gives up, driven through the real `plotfleet` command.

Two failures a farmer meets:
- chiapos given a parameter it rejects: k=18 with 64 buckets (at the stripe
  its override asks for) aborts with SIGABRT, C++'s `terminate called ...`
  and `what():  Triggering bucket too early`, leaving temp files behind;
- a plotter command that prints an error line and exits 1 (a mistyped
  farmer key), set through the `plotter_command` template override.

For each: status and --json carry the plotter's own error line, the plotter
backs off after the second failure in a row and not before, a finished plot
(or `plotfleet reset`) clears it, `plot-all --plots 2` exits 1 naming the
error, and the clean-up removes exactly the failed jobs' temp files.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.cli import REPO, plotfleet, started_line, status_json

# chiapos at k=18 with 64 buckets and chia's small-k stripe: dies in phase 1
BUCKETS_64 = ("plotfleet-chiapos -k {{ k }} -t {{ tmp_dir | q }} -2 {{ tmp2_dir | q }}"
              " -d {{ dst_dir | q }} -b 300 -u 64 -r 2 --stripe 2000")
CHIAPOS_ERROR = "InvalidValueException: Triggering bucket too early"
# a plotter that refuses a mistyped farmer key, as `chia plots create` does
BAD_KEY = ("sh -c 'echo \"Creating 1 plots of size {{ k }}, farmer key {{ farmer_key }}\";"
           " echo \"Error: farmer public key {{ farmer_key }} is not a valid BLS G1 element\" >&2;"
           " exit 1'")
KEY_ERROR = "Error: farmer public key 0x8f3cdeadbeef is not a valid BLS G1 element"

SCENARIOS = {
    "chiapos-rejects-buckets": dict(plotter_command=BUCKETS_64),
    "plotter-exits-1": dict(plotter_command=BAD_KEY, farmer_key="0x8f3cdeadbeef"),
}
ERRORS = {"chiapos-rejects-buckets": CHIAPOS_ERROR, "plotter-exits-1": KEY_ERROR}


def tree(root):
    """Every file under a host's folder: path -> (size, mtime_ns)."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            try:
                st = os.stat(os.path.join(d, f))
            except FileNotFoundError:
                continue
            out[os.path.join(d, f)] = (st.st_size, st.st_mtime_ns)
    return out


def host_doc(inv, name="plotter1"):
    _, doc = status_json(inv)
    return next(h for h in doc["hosts"] if h["name"] == name)


def wait_dead(inv, n, timeout=60):
    """Until status lists n dead jobs on plotter1 and no job runs; the host doc."""
    deadline = time.time() + timeout
    while True:
        h = host_doc(inv)
        if len(h["dead"]) >= n and not h["jobs"]:
            return h
        assert time.time() < deadline, h
        time.sleep(0.3)


def logs(host):
    return sorted(os.listdir(host.dirs["log"]))


def inventory(fleet, path, scenario, **vars):
    base = dict(global_stagger_m=0, polling_time_s=1, clean_after_m=10)
    return fleet.write_inventory(path, **{**base, **SCENARIOS[scenario], **vars})


def hand_plot(host, name="by-hand.log"):
    """A good k=18 plot made by hand (not by plotfleet), its log in log_dir."""
    with open(os.path.join(host.dirs["log"], name), "w") as log:
        p = subprocess.run([sys.executable, "-m", "agent", "plot-chiapos", "-k", "18",
                            "-t", host.dirs["tmp"][0], "-2", host.dirs["tmp2"],
                            "-d", host.dirs["dst"][0]],
                           stdout=log, stderr=subprocess.STDOUT, cwd=REPO, timeout=120,
                           env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert p.returncode == 0


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_failures_show_back_off_clear_and_are_cleaned_up(ssh_fleet, tmp_path, scenario):
    fleet = ssh_fleet(n_plotters=1)
    h = fleet.hosts["plotter1"]
    error = ERRORS[scenario]
    inv = inventory(fleet, tmp_path / "inventory.yaml", scenario)

    # the first failure: shown with the plotter's own words, no back-off yet
    r = plotfleet("plot-all", "--inventory", inv, "--once")
    assert r.returncode == 0 and started_line("plotter1", r.stdout), r.stdout + r.stderr
    doc = wait_dead(inv, 1)
    [dead] = doc["dead"]
    assert dead["error"] == error, dead
    assert dead["log_file"] == os.path.join(h.dirs["log"], logs(h)[0])
    assert doc["failures"]["count"] == 1 and doc["failures"]["last_error"] == error
    if scenario == "chiapos-rejects-buckets":
        # it died by SIGABRT after naming its plot, in phase 1, leaving temp files
        assert dead["plot_id"] and dead["phase"][0] == 1 and dead["tmp_files"]
        assert "terminate called after throwing" in Path(dead["log_file"]).read_text()
    else:
        assert dead["plot_id"] is None and dead["tmp_files"] == []
    r = plotfleet("status", "--inventory", inv)
    assert r.returncode == 0 and "failed jobs" in r.stdout
    assert " ".join(r.stdout.split()).count(" ".join(error.split())) == 1, r.stdout

    r = plotfleet("plot-all", "--inventory", inv, "--once")
    assert started_line("plotter1", r.stdout) and "backed off" not in r.stdout, r.stdout
    doc = wait_dead(inv, 2)
    assert doc["failures"]["count"] == 2

    # the second failure in a row: backed off, with count, error and next try
    r = plotfleet("plot-all", "--inventory", inv, "--once", "--json")
    assert r.returncode == 0, r.stderr
    [wait] = [w for w in json.loads(r.stdout)["decisions"]["waits"]
              if w["host"] == "plotter1" and w["subject"] == "plotter"]
    assert wait["blocked"] and wait["reason"].startswith(
        "backed off: 2 failed jobs in a row (max_failures 2), last error: " + error)
    # failure_backoff_m (60) after the last failure; the host is this machine, so
    # only the gap between the controller's and the agent's reading (ms) differs
    due = doc["failures"]["last_at"] + 3600
    assert any(f"next try at {time.strftime('%H:%M:%S', time.localtime(due + d))}, or now "
               f"with `plotfleet reset plotter1`" in wait["reason"] for d in (-1, 0, 1)), wait
    assert len(logs(h)) == 2                       # nothing started
    r = plotfleet("status", "--inventory", inv)
    assert "backed off: 2 failed jobs in a row" in " ".join(r.stdout.split())

    # clean-up: exactly the failed jobs' temp files, once they rest clean_after_m
    decoys = [Path(h.dirs["tmp"][0], "plot-k18-2026-01-01-00-00-" + "e" * 64 + ".plot.tmp"),
              Path(h.dirs["tmp"][0], "notes.txt")]
    for d in doc["dead"]:
        if d["plot_id"]:        # its id outside its tmp dirs: not its temp file
            decoys.append(Path(h.dirs["dst"][0], d["plot_id"] + ".notes.tmp"))
    for p in decoys:
        p.write_text("keep me")
    failed_files = {f for d in doc["dead"] for f in d["tmp_files"]}
    assert all(os.path.exists(f) for f in failed_files)
    before = tree(h.root)
    inv = inventory(fleet, tmp_path / "inventory.yaml", scenario, clean_after_m=0.02)
    time.sleep(1.5)                                   # 0.02 m: the files rest
    r = plotfleet("plot-all", "--inventory", inv, "--once", "--check")
    assert r.returncode == 0
    assert r.stdout.count(" would clean up plotter1 job ") == \
        len([d for d in doc["dead"] if d["tmp_files"]])
    assert tree(h.root) == before
    r = plotfleet("plot-all", "--inventory", inv, "--once")
    assert r.returncode == 0, r.stderr
    assert len(re.findall(r" plotter1 job [0-9a-f]{8} cleaned up \(", r.stdout)) == \
        len([d for d in doc["dead"] if d["tmp_files"]])
    after = tree(h.root)
    assert after == {p: v for p, v in before.items() if p not in failed_files}
    assert all(p.exists() for p in decoys)
    doc = host_doc(inv)
    assert [d["tmp_files"] for d in doc["dead"]] == [[], []]   # still listed, nothing left
    assert {d["error"] for d in doc["dead"]} == {error}

    # a finished plot clears the back-off: the next job starts
    hand_plot(h)
    assert host_doc(inv)["failures"]["count"] == 0
    r = plotfleet("plot-all", "--inventory", inv, "--once")
    assert started_line("plotter1", r.stdout) and "backed off" not in r.stdout, r.stdout
    wait_dead(inv, 3)
    r = plotfleet("plot-all", "--inventory", inv, "--once")   # 1 in a row: not backed off
    assert started_line("plotter1", r.stdout), r.stdout
    wait_dead(inv, 4)
    r = plotfleet("plot-all", "--inventory", inv, "--once")
    assert "backed off: 2 failed jobs in a row" in r.stdout
    # and so does the operator's reset, for any controller (it lives on the host)
    r = plotfleet("reset", "plotter1", "--inventory", inv)
    assert r.returncode == 0 and "plotter1: failures reset" in r.stdout, r.stderr
    assert host_doc(inv)["failures"]["count"] == 0
    r = plotfleet("plot-all", "--inventory", inv, "--once")
    assert started_line("plotter1", r.stdout), r.stdout


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_plots_n_ends_naming_the_error(ssh_fleet, tmp_path, scenario):
    fleet = ssh_fleet(n_plotters=1)
    inv = inventory(fleet, tmp_path / "inventory.yaml", scenario)
    started = time.monotonic()
    r = plotfleet("plot-all", "--inventory", inv, "--plots", 2, timeout=120)
    took = time.monotonic() - started
    assert r.returncode == 1, r.stdout + r.stderr
    err = r.stderr.strip().splitlines()
    assert "no further progress is possible" in err[0]
    failed = [line for line in err[1:] if "failed: " in line]
    assert len(failed) == 2 and all(line.startswith("plotter1: job ") and
                                    line.endswith(ERRORS[scenario]) for line in failed), err
    assert "Traceback" not in r.stderr
    # a run asking for more ends as soon as the plotter is backed off
    r = plotfleet("plot-all", "--inventory", inv, "--plots", 3, timeout=120)
    assert r.returncode == 1
    assert any(line.startswith("plotter1: backed off: 2 failed jobs in a row")
               and ERRORS[scenario] in line for line in r.stderr.splitlines()), r.stderr
    assert len(logs(fleet.hosts["plotter1"])) == 2 and took < 120


def failed_by_hand(host, n):
    """n failed jobs in host's log dir, run as another controller would have
    (its agent notes each job's log in the machine's record, agent/facts/joblogs.py):
    the logs alone tell the next controller about them."""
    from agent.facts import joblogs
    from agent.vocab.lognames import new_log_name
    for i in range(n):
        log = Path(host.dirs["log"], new_log_name("chiapos", time.time() - 60 + i))
        joblogs.remember([os.path.realpath(log)], time.time())
        with open(log, "w") as out:
            subprocess.run(["sh", "-c", "echo 'Error: farmer public key 0x8f3cdeadbeef is not"
                            " a valid BLS G1 element'; exit 1"], stdout=out, stderr=out)


def test_an_unreachable_plotter_alone_does_not_end_the_run(ssh_fleet, tmp_path):
    fleet = ssh_fleet(n_plotters=2, n_harvesters=1)
    inv = inventory(fleet, tmp_path / "inventory.yaml", "plotter-exits-1",
                    connect_timeout_s=2, require_mounted_farm=False)
    failed_by_hand(fleet.hosts["plotter2"], 2)
    fleet.stop("plotter2")
    out = open(tmp_path / "run.out", "w+")
    ctl = subprocess.Popen([sys.executable, "-m", "orchestrator", "plot-all", "--inventory",
                            str(inv), "--plots", "6"], cwd=REPO, stdout=out, stderr=out,
                           env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        # plotter1 backs off; plotter2 may come back: the run goes on
        deadline = time.time() + 60
        while len(logs(fleet.hosts["plotter1"])) < 2 or \
                "backed off" not in Path(out.name).read_text():
            assert time.time() < deadline and ctl.poll() is None, Path(out.name).read_text()
            time.sleep(0.3)
        time.sleep(4)                                   # a few more passes
        assert ctl.poll() is None, Path(out.name).read_text()
        # plotter2 returns, backed off by its own logs; the harvester is now down
        fleet.stop("harvester1")
        fleet.start("plotter2")
        assert ctl.wait(60) == 4, Path(out.name).read_text()[-3000:]
    finally:
        if ctl.poll() is None:
            ctl.kill()
    text = Path(out.name).read_text()
    assert len(logs(fleet.hosts["plotter2"])) == 2      # it started nothing
    err = text[text.index("no further progress is possible"):]
    assert "plotter1: backed off: 2 failed jobs in a row" in err
    assert "plotter2: backed off: 2 failed jobs in a row" in err and KEY_ERROR in err


def test_defaults_plot_end_to_end(ssh_fleet, tmp_path):
    """No plotter tuning at all: chiapos k=18 with its defaults (buckets and
    stripe derived from k, default threads and buffer), archived to a harvester."""
    from chiapos import DiskProver
    import yaml
    fleet = ssh_fleet(n_plotters=1, n_harvesters=1)
    inv = fleet.write_inventory(tmp_path / "inventory.yaml", global_stagger_m=0,
                                polling_time_s=1, require_mounted_farm=False)
    doc = yaml.safe_load(inv.read_text())
    p1 = doc["all"]["children"]["plotters"]["hosts"]["plotter1"]
    for key in ("threads", "buckets", "buffer"):
        del p1[key]
    assert {k for k in p1 if k in ("threads", "buckets", "buffer", "buffer_mib")} == set()
    inv.write_text(yaml.safe_dump(doc))
    r = plotfleet("plot-all", "--inventory", inv, "--plots", 2, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    farm = [os.path.join(d, n) for d in fleet.hosts["harvester1"].dirs["farm"]
            for n in os.listdir(d) if n.endswith(".plot")]
    assert len(farm) == 2
    for path in farm:
        assert DiskProver(path).get_id().hex() in path
    h = fleet.hosts["plotter1"]
    for log in logs(h):
        text = Path(h.dirs["log"], log).read_text()
        assert "Using 32 buckets" in text and "stripe size 1736" in text
    assert not os.listdir(h.dirs["tmp"][0]) and host_doc(inv)["dead"] == []


def test_a_job_piped_through_tee_is_never_dead_nor_cleaned(ssh_fleet, tmp_path):
    fleet = ssh_fleet(n_plotters=1)
    h = fleet.hosts["plotter1"]
    log = Path(h.dirs["log"], "tee.log")
    cmd = (f"{sys.executable} -m agent plot-chiapos -k 22 -t {h.dirs['tmp'][0]} "
           f"-2 {h.dirs['tmp2']} -d {h.dirs['dst'][0]} -r 1 2>&1 | tee {log} > /dev/null")
    shell = subprocess.Popen(["sh", "-c", cmd], cwd=REPO, start_new_session=True,
                             env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        deadline = time.time() + 30
        while "Computing table 2" not in (log.read_text() if log.exists() else ""):
            assert time.time() < deadline
            time.sleep(0.1)
        job = next(p for p in psutil.Process(shell.pid).children()
                   if "plot-chiapos" in " ".join(p.cmdline()))
        os.killpg(shell.pid, signal.SIGSTOP)            # quiet: its files rest
        inv = fleet.write_inventory(tmp_path / "inventory.yaml", clean_after_m=0,
                                    kill_after_m=0, global_max_jobs=1)
        time.sleep(1)
        doc = host_doc(inv)
        [j] = doc["jobs"]
        assert (j["pid"], j["log_file"]) == (job.pid, str(log))     # found through the pipe
        assert j["plot_id"] and j["phase"][0] == 1 and doc["dead"] == []
        before = tree(h.root)
        assert any(j["plot_id"] in p for p in before)
        r = plotfleet("plot-all", "--inventory", inv, "--once")
        assert r.returncode == 0 and "clean" not in r.stdout, r.stdout
        assert tree(h.root) == before
        assert host_doc(inv)["dead"] == [] and host_doc(inv)["failures"]["count"] == 0
    finally:
        try:
            os.killpg(shell.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shell.wait(10)


def test_kill_all_acts_on_a_job_whose_plot_id_is_not_known(ssh_fleet, tmp_path):
    """A job whose output goes nowhere plotfleet can read: no log, so no plot
    id, yet kill --all ends it and removes exactly its temp files (the files
    it holds open name its plot)."""
    fleet = ssh_fleet(n_plotters=1)
    h = fleet.hosts["plotter1"]
    job = subprocess.Popen([sys.executable, "-m", "agent", "plot-chiapos", "-k", "22",
                            "-t", h.dirs["tmp"][0], "-2", h.dirs["tmp2"],
                            "-d", h.dirs["dst"][0], "-r", "1"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
                           start_new_session=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        deadline = time.time() + 30
        while len(os.listdir(h.dirs["tmp"][0])) < 3:
            assert time.time() < deadline
            time.sleep(0.1)
        job.send_signal(signal.SIGSTOP)
        other = Path(h.dirs["tmp"][0], "plot-k22-2026-01-01-00-00-" + "f" * 64 + ".plot.tmp")
        other.write_text("another plot's")
        inv = fleet.write_inventory(tmp_path / "inventory.yaml")
        [j] = host_doc(inv)["jobs"]
        assert j["pid"] == job.pid and j["plot_id"] is None and j["log_file"] is None
        before = tree(h.root)
        mine = {p for p in before if p != str(other) and
                p.startswith((h.dirs["tmp"][0] + "/", h.dirs["tmp2"] + "/"))}
        r = plotfleet("kill", "--all", "--yes", "--json", "--inventory", inv)
        assert r.returncode == 0, r.stderr
        [done] = json.loads(r.stdout)["done"]
        assert done["pid"] == job.pid and sorted(done["removed"]) == sorted(mine)
        assert job.wait(10) == -signal.SIGTERM
        assert tree(h.root) == {p: v for p, v in before.items() if p not in mine}
    finally:
        if job.poll() is None:
            job.send_signal(signal.SIGCONT)
            job.kill()
            job.wait(10)


@pytest.mark.parametrize("k", [19, 20])
def test_chiapos_defaults_make_a_plot_at_small_k(tmp_path, k):
    """An inventory naming only plotter and k: the command plotfleet builds
    from its defaults makes a real plot (k=18 runs end to end above)."""
    from orchestrator.core.plotcmd import build_argv
    from orchestrator.config.inventory import load_inventory
    from tests.agent_helpers import AgentProc, host_dirs, wait_for
    d, config = host_dirs(tmp_path / "host")
    inv = tmp_path / "inventory.yaml"
    inv.write_text(f"all:\n  children:\n    plotters:\n      hosts:\n        p1:\n"
                   f"          plotter: chiapos\n          k: {k}\n"
                   f"          tmp_dirs: [{d['tmp']}]\n          dst_dirs: [{d['dst']}]\n"
                   f"          log_dir: {d['log']}\n")
    host = load_inventory(inv).host("p1")
    argv = build_argv(host, d["tmp"], d["dst"])
    assert "-u" in argv and argv[argv.index("-u") + 1] == {19: "64", 20: "128"}[k]
    agent = AgentProc()
    try:
        r = agent.ok("start_job", config=config, argv=list(argv), plotter="chiapos", k=k,
                     tmp_dir=d["tmp"], dst_dir=d["dst"], limits={})
        snap = wait_for(lambda: (lambda s: s if s["plots"] and not s["jobs"] else None)(
            agent.ok("snapshot", config=config)), 120, every=0.5)
        [plot] = snap["plots"]
        assert plot["k"] == k and snap["dead"] == [] and snap["failures"]["count"] == 0
        assert "Renamed final file" in Path(r["log_file"]).read_text()
    finally:
        agent.close()
