"""The agent as the controller sees it: a real `python -m agent serve` process
spoken to over JSON lines, driving real chiapos jobs and real rsync."""
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from tests.agent_helpers import MADMAX_LOG, chiapos_argv, host_dirs, wait_for


@pytest.fixture
def host(tmp_path):
    return host_dirs(tmp_path / "host")


@pytest.fixture
def reaper():
    """pids to kill at the end whatever happens."""
    pids = []
    yield pids
    for pid in pids:
        try:
            p = psutil.Process(pid)
            p.send_signal(signal.SIGCONT)
            p.kill()
        except psutil.Error:
            pass


def start(agent, host, k=20, limits=None, plot_id=None, reaper=None):
    d, config = host
    resp = agent.raw("start_job", config=config, argv=chiapos_argv(d, k, plot_id),
                     plotter="chiapos", k=k, tmp_dir=d["tmp"], dst_dir=d["dst"],
                     limits=limits or {})
    if resp["ok"] and reaper is not None:
        reaper.append(resp["result"]["pid"])
    return resp


def jobs(agent, config):
    return {j["pid"]: j for j in agent.ok("snapshot", config=config)["jobs"]}


def job_with_temp_files(agent, config, pid):
    def ready():
        j = jobs(agent, config).get(pid)
        return j if j and j["plot_id"] and j["tmp_bytes"] > 0 else None
    return wait_for(ready, 30)


def test_hello(agent):
    r = agent.ok("hello")
    assert r["version"] == "dev" and r["pid"] > 0 and r["psutil"] == psutil.__version__


def test_k18_job_is_seen_then_finishes_into_a_plot(agent, host, reaper):
    d, config = host
    r = start(agent, host, k=18, reaper=reaper)["result"]
    assert r["log_file"].startswith(d["log"]) and r["log_file"].endswith("_chiapos.log")
    snaps = []

    def finished():
        s = agent.ok("snapshot", config=config)
        snaps.append(s)
        return s["plots"] and not s["jobs"]
    wait_for(finished, 60, every=0.02)
    seen = [j for s in snaps for j in s["jobs"] if j["pid"] == r["pid"]]
    assert seen, "the running job never showed in a snapshot"
    j = seen[-1]
    assert (j["plotter"], j["k"], j["tmp_dir"], j["dst_dir"], j["tmp2_dir"], j["log_file"]) == \
        ("chiapos", 18, d["tmp"], d["dst"], d["tmp2"], r["log_file"])
    assert j["state"] == "running" and j["started_at"] <= time.time()
    # unknown (null) only until its log has a line, then only forward
    unknown = [j["phase"] is None for j in seen]
    assert unknown == sorted(unknown, reverse=True) and not unknown[-1]
    phases = [tuple(j["phase"]) for j in seen if j["phase"] is not None]
    assert phases == sorted(phases)
    plot = snaps[-1]["plots"][0]
    assert plot["k"] == 18 and plot["plot_id"] and plot["plot_id"] in plot["path"]
    assert plot["size_bytes"] == os.path.getsize(plot["path"])
    assert os.listdir(d["tmp"]) == [] and snaps[-1]["dead"] == []
    kinds = {x["kind"]: x for x in snaps[-1]["dirs"]}
    assert set(kinds) == {"tmp", "tmp2", "dst", "log", "farm"}
    assert kinds["tmp"]["device"] == kinds["dst"]["device"] and kinds["tmp"]["free_bytes"] > 0


def test_suspend_and_resume_change_state(agent, host, reaper):
    d, config = host
    pid = start(agent, host, k=20, reaper=reaper)["result"]["pid"]
    assert agent.ok("suspend", config=config, pid=pid) == {"pid": pid, "state": "suspended"}
    j = jobs(agent, config)[pid]
    assert j["state"] == "suspended"
    cpu = j["cpu_s"]
    time.sleep(0.3)
    j = jobs(agent, config)[pid]
    assert j["state"] == "suspended" and j["cpu_s"] == cpu
    agent.ok("resume", config=config, pid=pid)
    assert jobs(agent, config)[pid]["state"] == "running"
    wait_for(lambda: agent.ok("snapshot", config=config)["plots"], 60)


def test_suspend_refuses_a_process_that_is_not_a_plot_job(agent, host):
    _, config = host
    r = agent.raw("suspend", config=config, pid=os.getpid())
    assert not r["ok"] and "not a plot job of this host" in r["error"]


def test_kill_removes_exactly_its_temp_files(agent, host, reaper):
    d, config = host
    a = start(agent, host, k=20, reaper=reaper)["result"]["pid"]
    b = start(agent, host, k=20, reaper=reaper)["result"]["pid"]
    ja = job_with_temp_files(agent, config, a)
    agent.ok("suspend", config=config, pid=a)
    jb = job_with_temp_files(agent, config, b)
    agent.ok("suspend", config=config, pid=b)
    pa, pb = ja["plot_id"], jb["plot_id"]
    # files a careless kill could take: a finished plot bearing the same id,
    # another plot's temp file, a stranger
    keep = [os.path.join(d["tmp"], "plot-k20-2026-01-01-00-00-%s.plot" % pa),
            os.path.join(d["tmp"], "other-%s.tmp" % ("c" * 64)),
            os.path.join(d["tmp2"], "notes.txt")]
    for p in keep:
        with open(p, "w") as f:
            f.write("x")
    mine = {os.path.join(dd, n) for dd in (d["tmp"], d["tmp2"]) for n in os.listdir(dd)
            if pa in n and not n.endswith(".plot")}
    theirs = {os.path.join(dd, n) for dd in (d["tmp"], d["tmp2"]) for n in os.listdir(dd)
              if pb in n}
    r = agent.ok("kill", config=config, plot_id=pa, pid=a)
    assert set(r["removed"]) == mine and r["freed_bytes"] > 0
    assert not psutil.pid_exists(a) or psutil.Process(a).status() == psutil.STATUS_ZOMBIE
    for p in keep:
        assert os.path.exists(p)
    assert all(os.path.exists(p) for p in theirs)
    assert a not in jobs(agent, config) and b in jobs(agent, config)
    # kill refuses to clean a live job's files without its pid
    r = agent.raw("kill", config=config, plot_id=pb, pid=None)
    assert not r["ok"] and "running job" in r["error"]
    agent.ok("kill", config=config, plot_id=pb, pid=b)
    assert not any(pb in n for dd in (d["tmp"], d["tmp2"]) for n in os.listdir(dd))


def test_a_job_that_died_shows_as_dead_and_kill_cleans_it(agent, host, reaper):
    d, config = host
    pid = start(agent, host, k=20, reaper=reaper)["result"]["pid"]
    j = job_with_temp_files(agent, config, pid)
    os.kill(pid, signal.SIGKILL)
    dead = wait_for(lambda: agent.ok("snapshot", config=config)["dead"], 10)
    assert [x["plot_id"] for x in dead] == [j["plot_id"]]
    assert dead[0]["log_file"] == j["log_file"] and dead[0]["tmp_bytes"] > 0
    # its files changed a moment ago: kill waits until they rest (kill_quiet_s)
    r = agent.raw("kill", config=config, plot_id=j["plot_id"], pid=None)
    assert not r["ok"] and "changed" in r["error"] and "nothing removed" in r["error"]
    assert sorted(os.path.join(d["tmp"], n) for n in os.listdir(d["tmp"])) == \
        [f for f in dead[0]["tmp_files"] if f.startswith(d["tmp"] + "/")]
    r = agent.ok("kill", config=dict(config, kill_quiet_s=0), plot_id=j["plot_id"], pid=None)
    assert set(r["removed"]) == set(dead[0]["tmp_files"])
    assert os.listdir(d["tmp"]) == []


def test_start_rechecks_limits_under_the_lock(agent, host, reaper):
    d, config = host
    first = start(agent, host, k=20, reaper=reaper)["result"]["pid"]
    agent.ok("suspend", config=config, pid=first)
    r = start(agent, host, limits={"tmpdir_max_jobs": 1}, reaper=reaper)
    assert not r["ok"] and r["error"] == "tmpdir max jobs 1/1 on %s" % d["tmp"]
    r = start(agent, host, limits={"global_max_jobs": 1}, reaper=reaper)
    assert not r["ok"] and r["error"] == "max jobs 1/1"
    r = start(agent, host, limits={"global_stagger_s": 3600}, reaper=reaper)
    assert not r["ok"] and r["error"].startswith("stagger:")
    assert list(jobs(agent, config)) == [first]
    r = start(agent, host, limits={"tmpdir_max_jobs": 2, "global_max_jobs": 2}, reaper=reaper)
    assert r["ok"]


def test_paths_outside_configured_dirs_are_refused(agent, host, tmp_path):
    d, config = host
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    plot = outside / ("plot-k18-2026-01-01-00-00-%s.plot" % ("d" * 64))
    plot.write_bytes(b"x" * 10)
    sneaky = os.path.join(d["dst"], "..", "elsewhere", plot.name)
    os.symlink(str(plot), os.path.join(d["dst"], "link.plot"))
    spec = {"edge": 1, "block": 1, "offsets": [], "full_below": 100}
    proof = {"size": 10, "sha256": "0" * 64, "method": "full", "spec": spec}
    cases = [
        ("read_log", dict(path="/etc/passwd")),
        ("read_log", dict(path=os.path.join(d["log"], "..", "..", "elsewhere", "x.log"))),
        ("remove_plot", dict(plot=str(plot), proof=proof)),
        ("remove_plot", dict(plot=sneaky, proof=proof)),
        ("remove_plot", dict(plot=os.path.join(d["dst"], "link.plot"), proof=proof)),
        ("digest", dict(path=str(plot), spec=spec)),
        ("start_transfer", dict(plot=str(plot), to_host="h", to_dir=d["farm"], mode="local",
                                farm_dirs=[d["farm"]])),
        ("promote", dict(partial=str(plot) + ".plotfleet-tmp", expect=proof)),
        ("note_drive_failure", dict(to_dir=str(outside), key="k", at=0, error="x")),
        ("clean_partial", dict(partial=str(outside / "a.plot.plotfleet-tmp"))),
        ("start_job", dict(argv=["true"], plotter="chiapos", k=18, tmp_dir=str(outside),
                           dst_dir=d["dst"], limits={})),
    ]
    for op, args in cases:
        r = agent.raw(op, config=config, **args)
        assert not r["ok"] and r["error"].startswith("refusing path outside configured dirs"), \
            (op, r)
    assert plot.exists()
    r = agent.raw("kill", config=config, plot_id="", pid=None)
    assert not r["ok"] and "bad plot id" in r["error"]
    assert agent.raw("no_such_op")["error"].startswith("ValueError: unknown op")
    agent.p.stdin.write("{not json\n")
    agent.p.stdin.flush()
    import json
    assert json.loads(agent.p.stdout.readline())["ok"] is False
    assert agent.ok("hello")["pid"]   # the loop survived


def test_odd_processes_never_break_a_snapshot(agent, host, tmp_path, reaper):
    d, config = host
    sleeper = "import time; time.sleep(30)"
    odd = [
        ["chia_plot", "-k", "zz", "-t", d["tmp"], "--size=", "-2"],
        ["bladebit", "diskplot", "-t1"],
        ["bladebit_cuda", "-k", "-n", "cudaplot", "--disk-128", d["dst"]],
        ["chia", "plots", "create", "-k"],
    ]
    procs = [subprocess.Popen(["bash", "-c", 'exec -a "$0" %s -c "%s" "$@"'
                               % (sys.executable, sleeper)] + argv) for argv in odd]
    reaper.extend(p.pid for p in procs)
    zombie = subprocess.Popen(["bash", "-c", "exec -a chia_plot true"])
    time.sleep(0.2)                      # exited, never waited: a zombie
    churn = subprocess.Popen(["bash", "-c",
                              'for i in $(seq 300); do (exec -a chia_plot true -t "%s") & done; wait'
                              % d["tmp"]])
    reaper.append(churn.pid)
    for _ in range(20):
        agent.ok("snapshot", config=config)
    churn.wait(30)
    s = agent.ok("snapshot", config=config)
    by_pid = {j["pid"]: j for j in s["jobs"]}
    # the garbage chia_plot names our tmp dir: reported, with defaults for the rest
    assert by_pid[procs[0].pid]["plotter"] == "madmax" and by_pid[procs[0].pid]["k"] == 32
    assert by_pid[procs[2].pid]["plotter"] == "bladebit"
    assert procs[1].pid not in by_pid and procs[3].pid not in by_pid
    zombie.wait()
    for p in procs:
        p.kill()
        p.wait()


def test_transfer_local_then_promote_then_remove(agent, host, reaper):
    d, config = host
    start(agent, host, k=18, reaper=reaper)
    plot = wait_for(lambda: agent.ok("snapshot", config=config)["plots"], 60)[0]
    size = plot["size_bytes"]
    r = agent.ok("start_transfer", config=config, plot=plot["path"], to_host="self",
                 to_dir=d["farm"], mode="local", ssh=None, bwlimit_kbps=1500,
                 farm_dirs=[d["farm"]])
    reaper.append(r["pid"])
    name = os.path.basename(plot["path"])
    statuses, receiving = [], []
    while True:
        s = agent.ok("snapshot", config=config)
        t = [t for t in s["transfers"] if t["plot"] == plot["path"]]
        assert len(t) == 1 and t[0]["to_dir"] == d["farm"] and t[0]["size_bytes"] == size
        statuses.append(t[0]["status"])
        receiving += [p["receiving"] for p in s["partials"]]
        # nothing incomplete ever carries the final name
        assert name not in os.listdir(d["farm"])
        if t[0]["status"] != "running":
            break
        time.sleep(0.1)
    assert statuses[0] == "running" and statuses[-1] == "copied"
    assert t[0]["bytes_done"] == size and True in receiving
    partial = s["partials"][0]
    assert partial["final_name"] == name and partial["size_bytes"] == size
    assert not partial["receiving"]
    farm = [x for x in s["dirs"] if x["kind"] == "farm"][0]
    assert farm["plot_count"] == 0
    spec = {"edge": 4096, "block": 512, "offsets": [1, 99, 12345], "full_below": 0}
    src = agent.ok("digest", config=config, path=plot["path"], spec=spec)
    assert src["method"] == "sampled" and src["header"]["format"] == "v1"
    assert src["header_error"] is None
    expect = dict(src, spec=spec)
    r = agent.ok("promote", config=config, partial=partial["path"], expect=expect)
    assert (r["path"], r["size_bytes"], r["sha256"]) == (os.path.join(d["farm"], name), size,
                                                         src["sha256"])
    # a proof naming other bytes never deletes the source
    r = agent.raw("remove_plot", config=config, plot=plot["path"],
                  proof=dict(expect, sha256="0" * 64))
    assert not r["ok"] and r["code"] == "mismatch" and os.path.exists(plot["path"])
    agent.ok("remove_plot", config=config, plot=plot["path"], proof=expect)
    s = agent.ok("snapshot", config=config)
    assert s["plots"] == [] and s["transfers"] == [] and s["partials"] == []
    assert os.listdir(d["farm"]) == [name]
    assert os.path.getsize(os.path.join(d["farm"], name)) == size
    assert [x for x in s["dirs"] if x["kind"] == "farm"][0]["plot_count"] == 1


def test_interrupted_transfer_is_failed_and_its_partial_can_be_cleaned(agent, host, reaper):
    d, config = host
    start(agent, host, k=18, reaper=reaper)
    plot = wait_for(lambda: agent.ok("snapshot", config=config)["plots"], 60)[0]
    r = agent.ok("start_transfer", config=config, plot=plot["path"], to_host="self",
                 to_dir=d["farm"], mode="local", bwlimit_kbps=200,
                 farm_dirs=[d["farm"]])
    runner = psutil.Process(r["pid"])
    wait_for(lambda: runner.children(recursive=True), 10)
    time.sleep(0.5)
    rsyncs = runner.children(recursive=True)
    runner.kill()          # the runner dies first: nobody records rsync's exit
    for p in rsyncs:
        p.kill()
    stopped = time.time()
    t = wait_for(lambda: [t for t in agent.ok("snapshot", config=config)["transfers"]
                          if t["status"] == "failed"], 10)[0]
    assert t["error"] == "interrupted" and 0 <= t["bytes_done"] < plot["size_bytes"]
    # when it stopped (its last progress), for rerouting after a long outage
    assert t["started_at"] <= t["ended_at"] <= stopped + 1
    partial = agent.ok("snapshot", config=config)["partials"][0]["path"]
    agent.ok("clean_partial", config=config, partial=partial)
    assert os.listdir(d["farm"]) == []


def test_read_and_list_logs(agent, host, reaper):
    d, config = host
    log = start(agent, host, k=18, reaper=reaper)["result"]["log_file"]
    wait_for(lambda: agent.ok("snapshot", config=config)["plots"], 60)
    logs = agent.ok("list_logs", config=config)["logs"]
    assert [x["path"] for x in logs] == [log]
    r = agent.ok("read_log", config=config, path=log, offset=0, max_bytes=100)
    assert len(r["data"]) == 100 and r["offset"] == 100 and r["size"] == logs[0]["size"]
    r = agent.ok("read_log", config=config, path=log, offset=100, max_bytes=10 ** 6)
    assert "Renamed final file" in r["data"] and r["offset"] == r["size"]


def test_snapshot_cpu_with_twenty_jobs(agent, host, reaper):
    """Prints (does not assert) the agent's CPU per snapshot with 20 jobs."""
    d, config = host
    log_text = "".join(line + "\n" for line, _ in MADMAX_LOG[:20])
    for i in range(18):   # fake madmax jobs: real processes with real logs
        path = os.path.join(d["log"], "mm%02d.log" % i)
        with open(path, "w") as f:
            f.write(log_text)
        with open(path, "a") as out:
            p = subprocess.Popen(["bash", "-c", 'exec -a chia_plot %s -c "import time; '
                                  'time.sleep(60)" -t %s/ -d %s/' % (sys.executable, d["tmp"],
                                                                     d["dst"])],
                                 stdout=out)
        reaper.append(p.pid)
    for _ in range(2):
        pid = start(agent, host, k=20, reaper=reaper)["result"]["pid"]
        agent.ok("suspend", config=config, pid=pid)
    wait_for(lambda: len(jobs(agent, config)) == 20, 10)
    me = psutil.Process(agent.p.pid)
    agent.ok("snapshot", config=config)
    n = 20
    before = sum(me.cpu_times()[:2])
    for _ in range(n):
        s = agent.ok("snapshot", config=config)
    per = (sum(me.cpu_times()[:2]) - before) / n
    assert len(s["jobs"]) == 20
    assert {tuple(j["phase"]) for j in s["jobs"] if j["plotter"] == "madmax"} == {(2, 1)}
    print("\nagent CPU per snapshot with 20 jobs, %d processes: %.1f ms"
          % (len(psutil.pids()), per * 1000))


def test_transfer_over_ssh_to_a_harvester(agent, host, reaper, ssh_fleet, k18_plots):
    d, config = host
    fleet = ssh_fleet(n_plotters=0, n_harvesters=1)
    hv = fleet.hosts["harvester1"]
    farm = hv.dirs["farm"][0]
    harvester_config = {"farm_dirs": list(hv.dirs["farm"]), "require_mounted_farm": False}
    src = str(k18_plots.copy_to(d["dst"], 1)[0])
    size = os.path.getsize(src)
    r = agent.ok("start_transfer", config=config, plot=src, to_host="harvester1",
                 to_dir=farm, mode="ssh", bwlimit_kbps=0,
                 ssh={"host": hv.address, "port": hv.port, "user": "root",
                      "key": fleet.client_key, "known_hosts": fleet.known_hosts})
    reaper.append(r["pid"])
    t = wait_for(lambda: [t for t in agent.ok("snapshot", config=config)["transfers"]
                          if t["status"] != "running"], 30)[0]
    assert (t["status"], t["bytes_done"], t["error"]) == ("copied", size, None)
    name = os.path.basename(src)
    assert os.listdir(farm) == [name + ".plotfleet-tmp"]
    partial = agent.ok("snapshot", config=harvester_config)["partials"][0]
    spec = {"edge": 4096, "block": 512, "offsets": [7], "full_below": 1 << 30}
    expect = dict(agent.ok("digest", config=config, path=src, spec=spec), spec=spec)
    assert expect["method"] == "full"
    agent.ok("promote", config=harvester_config, partial=partial["path"], expect=expect)
    agent.ok("remove_plot", config=config, plot=src, proof=expect)
    assert os.listdir(farm) == [name] and not os.path.exists(src)


def test_kill_by_pid_refuses_a_reused_pid(agent, host, reaper):
    """The snapshot saw job A at pid P; A died and job B was given P.  A kill
    meant for A (pid P, A's start time) must not hit B."""
    d, config = host
    a = start(agent, host, k=22, reaper=reaper)["result"]["pid"]
    seen = job_with_temp_files(agent, config, a)
    wait_for(lambda: time.time() > seen["started_at"] + 3.5, 10)   # B starts visibly later
    os.kill(a, signal.SIGKILL)
    wait_for(lambda: a not in jobs(agent, config) and not psutil.pid_exists(a), 10)  # reaped
    argv = [sys.executable, "-m", "agent", "plot-chiapos"] + chiapos_argv(d, 22)[1:]
    b = None
    for _ in range(50):         # other processes may fork in between: try again
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(a - 1))
        b = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        reaper.append(b.pid)
        if b.pid == a:
            break
        b.kill()
        b.wait()
    assert b.pid == a, "could not reuse pid %d" % a
    jb = wait_for(lambda: jobs(agent, config).get(a), 10)
    assert jb["started_at"] > seen["started_at"] + 2
    for op, extra in (("kill", {"plot_id": seen["plot_id"]}), ("suspend", {})):
        r = agent.raw(op, config=config, pid=a, started_at=seen["started_at"], **extra)
        assert not r["ok"] and "is another process now" in r["error"], r
    assert psutil.Process(a).status() not in (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE)
    assert b.poll() is None and any(seen["plot_id"] in n for n in os.listdir(d["tmp"]))
    # with its own start time, B is the one meant
    agent.ok("kill", config=config, pid=a, started_at=jb["started_at"])
    assert b.wait(10) == -signal.SIGTERM


def test_a_dead_jobs_files_stay_while_held_open_or_changing(agent, host, reaper, tmp_path):
    d, config = host
    pid = start(agent, host, k=20, reaper=reaper)["result"]["pid"]
    j = job_with_temp_files(agent, config, pid)
    os.kill(pid, signal.SIGKILL)
    [dead] = wait_for(lambda: agent.ok("snapshot", config=config)["dead"], 10)
    files = sorted(dead["tmp_files"])
    assert files and dead["tmp_dir"] == d["tmp"] and dead["changed_at"] > 0
    # the same plot id outside its tmp dirs is not its temp file for clean_dead
    stray = os.path.join(d["dst"], "notes-%s.txt" % j["plot_id"])
    with open(stray, "w") as f:
        f.write("mine")
    quiet = dict(config, kill_quiet_s=0, clean_quiet_s=0)
    # another process holds one of them: the job is not dead, nothing goes
    with open(files[0], "rb") as held:
        holder = subprocess.Popen(["sleep", "60"], stdin=held)
    reaper.append(holder.pid)
    snap = wait_for(lambda: agent.ok("snapshot", config=config), 5)
    assert snap["dead"] == [] and snap["failures"]["count"] == 0
    for op, args in (("kill", dict(pid=None)), ("clean_dead", dict(log_file=j["log_file"]))):
        r = agent.raw(op, config=quiet, plot_id=j["plot_id"], **args)
        assert not r["ok"] and "is open in pid %d" % holder.pid in r["error"], r
    assert all(os.path.exists(f) for f in files)
    holder.kill()
    holder.wait()
    # changed a moment ago: kill (kill_quiet_s) and clean-up (clean_quiet_s) wait
    os.utime(files[-1])
    for op, args in (("kill", dict(pid=None)), ("clean_dead", dict(log_file=j["log_file"]))):
        r = agent.raw(op, config=dict(config, kill_quiet_s=30, clean_quiet_s=30),
                      plot_id=j["plot_id"], **args)
        assert not r["ok"] and "changed" in r["error"] and "nothing removed" in r["error"], r
    assert all(os.path.exists(f) for f in files)
    # a log that is not this plot's is no licence
    r = agent.raw("clean_dead", config=quiet, plot_id="e" * 64, log_file=j["log_file"])
    assert not r["ok"] and "is not the log of failed plot" in r["error"]
    r = agent.ok("clean_dead", config=quiet, plot_id=j["plot_id"], log_file=j["log_file"])
    assert sorted(r["removed"]) == files and os.path.exists(stray)
    assert agent.ok("snapshot", config=config)["failures"]["count"] == 1


def test_a_job_that_cannot_start_is_a_failure_with_the_reason(agent, host):
    d, config = host
    r = agent.raw("start_job", config=config, argv=["/opt/nowhere/chia_plot", "-k", "32"],
                  plotter="madmax", k=32, tmp_dir=d["tmp"], dst_dir=d["dst"], limits={})
    assert not r["ok"] and r["error"].startswith("cannot start /opt/nowhere/chia_plot")
    snap = agent.ok("snapshot", config=config)
    [dead] = snap["dead"]
    assert dead["error"] == "plotfleet: cannot start /opt/nowhere/chia_plot: No such file or directory"
    assert dead["plot_id"] is None and dead["plotter"] == "madmax"
    assert snap["failures"]["count"] == 1 and snap["failures"]["last_error"] == dead["error"]
    agent.ok("reset_failures", config=config)
    assert agent.ok("snapshot", config=config)["failures"]["count"] == 0
