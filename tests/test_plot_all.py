"""`plotfleet plot-all` end to end: real sshd plotters running real chiapos jobs."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.cli import REPO, plotfleet, status_json

STARTED = re.compile(r"Starting phase 1/4: .*? (\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})")


def log_starts(log_dir):
    """Start times (epoch) of every plot log in a dir, read from the logs themselves."""
    out = []
    for name in sorted(os.listdir(log_dir)):
        text = Path(log_dir, name).read_text(errors="replace")
        m = STARTED.search(text)
        assert m, f"{name} never started phase 1:\n{text[:500]}"
        out.append(time.mktime(time.strptime(" ".join(m.group(1).split()),
                                             "%a %b %d %H:%M:%S %Y")))
    return out


def hand_job(host, k=25, tmp=None):
    """A chiapos job started by hand (not by plotfleet), stopped so it stays in phase 1."""
    log = open(os.path.join(host.dirs["log"], "by-hand.log"), "w")
    p = subprocess.Popen([sys.executable, "-m", "agent", "plot-chiapos", "-k", str(k),
                          "-t", tmp or host.dirs["tmp"][0], "-2", host.dirs["tmp2"],
                          "-d", host.dirs["dst"][0], "-b", "64", "-u", "32", "-r", "1"],
                         stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                         env=dict(os.environ, PYTHONPATH=str(REPO)), start_new_session=True)
    deadline = time.time() + 20
    while "Computing table" not in Path(log.name).read_text(errors="replace"):
        assert time.time() < deadline and p.poll() is None
        time.sleep(0.1)
    p.send_signal(signal.SIGSTOP)
    return p


def loop_until_a_job_starts(inv, host, output):
    """`plotfleet plot-all` (looping) as a subprocess, once it has started a job on host."""
    ctl = subprocess.Popen([sys.executable, "-m", "orchestrator", "plot-all", "--inventory",
                            str(inv)], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                           stdout=output, stderr=output, text=True)
    deadline = time.time() + 30
    while not os.listdir(host.dirs["log"]):
        assert time.time() < deadline and ctl.poll() is None
        time.sleep(0.1)
    return ctl


def end(p):
    try:
        p.send_signal(signal.SIGCONT)
        p.kill()
        p.wait(10)
    except (ProcessLookupError, psutil.NoSuchProcess):
        pass


def test_plots_n_on_three_plotters_staggered_and_finished(ssh_fleet, tmp_path):
    fleet = ssh_fleet(n_plotters=3)
    inv = fleet.write_inventory(tmp_path / "inventory.yaml", global_stagger_m=0.05,
                                polling_time_s=1, tmpdir_max_jobs=2, global_max_jobs=2,
                                tmpdir_stagger_phase_limit=2)
    r = plotfleet("plot-all", "--inventory", inv, "--plots", 6, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    total = 0
    for name, h in fleet.hosts.items():
        starts = log_starts(h.dirs["log"])
        plots = [p for p in os.listdir(h.dirs["dst"][0]) if p.endswith(".plot")]
        assert len(plots) == len(starts) >= 1
        total += len(plots)
        # starts on one plotter are at least global_stagger_m (3 s) apart
        gaps = [b - a for a, b in zip(starts, starts[1:])]
        assert all(g >= 3 - 1 for g in gaps), (name, gaps)   # log clock has 1 s resolution
        assert not [f for f in os.listdir(h.dirs["tmp"][0])], "temp files left behind"
    assert total == 6
    # one line per start: the plotter, what runs, its dirs by key (no UTF-8 locale asked: ASCII)
    assert re.search(r"^\S+ \S+ (▶|>) plotter1 chiapos k18 \S+ (→|->) \S+ \(pid \d+\)",
                     r.stdout, re.M), r.stdout


def test_hand_started_job_counts_and_phase_gating_blocks(ssh_fleet, tmp_path):
    fleet = ssh_fleet(n_plotters=1)
    h = fleet.hosts["plotter1"]
    job = hand_job(h)
    try:
        inv = fleet.write_inventory(tmp_path / "inventory.yaml", global_stagger_m=0,
                                    tmpdir_max_jobs=2, tmpdir_stagger_phase_limit=1)
        r = plotfleet("plot-all", "--inventory", inv, "--once")
        assert r.returncode == 0, r.stderr
        assert "no tmp dir ready" in r.stdout and "1:" in r.stdout
        assert os.listdir(h.dirs["log"]) == ["by-hand.log"]     # nothing started
        _, doc = status_json(inv)
        jobs = doc["hosts"][0]["jobs"]
        assert [j["pid"] for j in jobs] == [job.pid] and jobs[0]["state"] == "suspended"
        # with tmpdir_max_jobs 1 the reason is the job count
        inv = fleet.write_inventory(tmp_path / "inventory.yaml", global_stagger_m=0,
                                    tmpdir_max_jobs=1, global_max_jobs=1)
        r = plotfleet("plot-all", "--inventory", inv, "--once")
        assert "max jobs 1/1" in r.stdout
        assert os.listdir(h.dirs["log"]) == ["by-hand.log"]
    finally:
        end(job)


def test_check_changes_nothing(ssh_fleet, tmp_path):
    fleet = ssh_fleet(n_plotters=2)
    inv = fleet.write_inventory(tmp_path / "inventory.yaml", global_stagger_m=0)
    def tree():
        return {n: sorted((d, sorted(files)) for d, _, files in os.walk(h.root))
                for n, h in fleet.hosts.items()}
    before = tree()
    r = plotfleet("plot-all", "--inventory", inv, "--check")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(" would start plotter") == 2, r.stdout
    time.sleep(1)
    assert tree() == before
    for n, h in fleet.hosts.items():
        assert os.listdir(h.dirs["log"]) == [] and os.listdir(h.dirs["tmp"][0]) == []


def test_jobs_survive_controller_killed(ssh_fleet, tmp_path):
    fleet = ssh_fleet(n_plotters=1)
    h = fleet.hosts["plotter1"]
    inv = fleet.write_inventory(tmp_path / "inventory.yaml", global_stagger_m=0, k=20,
                                polling_time_s=1)
    ctl = loop_until_a_job_starts(inv, h, output=subprocess.DEVNULL)
    ctl.kill()
    ctl.wait()
    fleet.stop("plotter1")            # the SSH connection is gone too
    deadline = time.time() + 120
    while not [p for p in os.listdir(h.dirs["dst"][0]) if p.endswith(".plot")]:
        assert time.time() < deadline, "job did not survive its controller"
        time.sleep(0.5)


def test_two_controllers_at_once_stay_within_limits(ssh_fleet, tmp_path):
    fleet = ssh_fleet(n_plotters=2)
    inv = fleet.write_inventory(tmp_path / "inventory.yaml", global_stagger_m=0, k=20,
                                global_max_jobs=1, tmpdir_max_jobs=1)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "orchestrator", "plot-all", "--inventory", str(inv), "--once"]
    runs = [subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in runs]
    for h in fleet.hosts.values():
        assert len(os.listdir(h.dirs["log"])) == 1, outs
    assert "refused" in outs[0][0] + outs[1][0] or sum(
        len(re.findall(r" (▶|>) plotter\d \S+ k20 ", o[0])) for o in outs) == 2


def test_broken_template_is_one_line(ssh_fleet, tmp_path):
    fleet = ssh_fleet(n_plotters=1)
    inv = fleet.write_inventory(tmp_path / "inventory.yaml",
                                plotter_command="plotfleet-chiapos -k {{ k }")
    r = plotfleet("plot-all", "--inventory", inv, "--once")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "plotter1" in lines[0] and "plotter_command" in lines[0]
    assert "Traceback" not in r.stderr
    assert os.listdir(fleet.hosts["plotter1"].dirs["log"]) == []


def test_ctrl_c_stops_the_loop_cleanly_and_jobs_keep_running(ssh_fleet, tmp_path):
    fleet = ssh_fleet(n_plotters=1)
    h = fleet.hosts["plotter1"]
    inv = fleet.write_inventory(tmp_path / "inventory.yaml", global_stagger_m=0, k=21,
                                polling_time_s=1)
    ctl = loop_until_a_job_starts(inv, h, output=subprocess.PIPE)
    ctl.send_signal(signal.SIGINT)
    out, err = ctl.communicate(timeout=30)
    assert ctl.returncode == 130, err               # interrupted, as a shell knows it
    assert "Traceback" not in err and "left running on the hosts: 1 job (plotter1 " in err
    _, doc = status_json(inv)
    assert len(doc["hosts"][0]["jobs"]) == 1          # the job it started runs on
    for j in doc["hosts"][0]["jobs"]:
        end(psutil.Process(j["pid"]))


def test_check_json_prints_the_decisions_and_events_as_data(ssh_fleet, tmp_path):
    fleet = ssh_fleet(n_plotters=2)
    inv = fleet.write_inventory(tmp_path / "inventory.yaml", global_stagger_m=0)
    r = plotfleet("plot-all", "--inventory", inv, "--once", "--check", "--json")
    assert r.returncode == 0, r.stderr
    [line] = r.stdout.splitlines()               # one JSON line per pass
    doc = __import__("json").loads(line)
    starts = doc["decisions"]["starts"]
    assert {s["host"] for s in starts} == {"plotter1", "plotter2"}
    for s in starts:
        h = fleet.hosts[s["host"]]
        assert s["tmp_dir"] == h.dirs["tmp"][0] and s["dst_dir"] == h.dirs["dst"][0]
        assert s["tmp2_dir"] == h.dirs["tmp2"] and (s["plotter"], s["k"]) == ("chiapos", 18)
        assert s["argv"][0] == "plotfleet-chiapos" and h.dirs["tmp"][0] in s["argv"]
    assert {(e["kind"], e["host"]) for e in doc["events"]} == {
        ("would_start_job", "plotter1"), ("would_start_job", "plotter2")}
    assert all(set(e) >= {"kind", "host", "subject", "detail"} for e in doc["events"])
    assert {h["name"] for h in doc["hosts"]} == {"plotter1", "plotter2"}    # the status doc
    for h in fleet.hosts.values():
        assert os.listdir(h.dirs["log"]) == []


def test_a_log_of_plot_all_says_each_wait_once_not_every_pass(ssh_fleet, tmp_path):
    """Not a terminal: one plain line per event, a wait only when it first
    appears or changes; an hour of passes is not an hour of tables."""
    fleet = ssh_fleet(n_plotters=1)
    h = fleet.hosts["plotter1"]
    inv = fleet.write_inventory(tmp_path / "inventory.yaml", polling_time_s=0.3,
                                tmp_dirs=[str(h.root / "no-such-tmp")])
    out = open(tmp_path / "plot-all.log", "w+")
    ctl = subprocess.Popen([sys.executable, "-m", "orchestrator", "plot-all", "--inventory",
                            str(inv)], cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                           env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        deadline = time.time() + 60
        while Path(out.name).read_text().count("no-such-tmp: missing") < 1:
            assert time.time() < deadline and ctl.poll() is None, Path(out.name).read_text()
            time.sleep(0.2)
        time.sleep(3)                                 # several more passes
    finally:
        ctl.send_signal(signal.SIGINT)
        ctl.wait(30)
    text = Path(out.name).read_text()
    assert text.count("no-such-tmp: missing") == 1, text
    [line] = [x for x in text.splitlines() if "no-such-tmp" in x]     # one line, never cut
    assert line.endswith("plotter1: plotter: waiting: no tmp dir ready: "
                         f"{h.root / 'no-such-tmp'}: missing"), line
    assert "┏" not in text and "│" not in text, "tables printed into a log"
