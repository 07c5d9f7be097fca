"""An agent that cannot hang the controller or multiply (issue 9, item 8).

Requests carry a deadline, start_job an id the host remembers, and an agent
whose channel is gone leaves.  Everything here runs the real agent: as a
child process over pipes, or behind real sshd hosts driven by a real
controller.  "Stuck" is made real: the hosts' lock held by another process,
or the sshd session carrying the channel stopped (the network path is gone
while TCP stays up).
"""
import json
import os
import subprocess
import sys
import threading
import uuid
from contextlib import contextmanager

import psutil
import pytest

from orchestrator.errors import LostReply
from orchestrator.remote.session import Session
from tests.agent_helpers import AgentProc, chiapos_argv, host_dirs, wait_for
from tests.cli import REPO, status_json

LOCK = os.path.expanduser("~/.plotfleet/host.lock")
HOLD = ("import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n")


@contextmanager
def host_lock_held():
    """Another process holds the agents' host lock until the block ends."""
    os.makedirs(os.path.dirname(LOCK), exist_ok=True)
    p = subprocess.Popen([sys.executable, "-c", HOLD, LOCK], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "locked\n"
        yield p
    finally:
        p.stdin.close()
        p.wait(10)


def send(agent, **req):
    agent.p.stdin.write(json.dumps(req) + "\n")
    agent.p.stdin.flush()


def answer(agent):
    return json.loads(agent.p.stdout.readline())


def fresh_id():
    """A request id never used before (the hosts' record of ids is shared by every run)."""
    return uuid.uuid4().hex


def start_req(d, config, rid, request_id, timeout_s):
    return dict(id=rid, op="start_job", timeout_s=timeout_s, request_id=request_id,
                config=config, argv=chiapos_argv(d), plotter="chiapos", k=18,
                tmp_dir=d["tmp"], dst_dir=d["dst"], limits={})


def agents_under(fleet, name):
    """The agent processes serving sessions of this test host's sshd."""
    out = []
    for p in psutil.Process(fleet.sshd_pid(name)).children(recursive=True):
        try:
            if "agent" in p.cmdline() and "serve" in p.cmdline():
                out.append(p)
        except psutil.Error:
            pass
    return out


def gone(p):
    try:
        return p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def reaper():
    procs = []
    yield procs
    for pid in procs:
        try:
            psutil.Process(pid).kill()
        except psutil.Error:
            pass


# --- the agent over pipes ------------------------------------------------------

def test_lock_held_past_the_deadline_starts_nothing_then_the_id_starts_one_job(tmp_path, reaper):
    d, config = host_dirs(tmp_path / "host")
    job_a = fresh_id()
    first = AgentProc()
    try:
        with host_lock_held():
            send(first, **start_req(d, config, 1, job_a, timeout_s=0.5))
            r = answer(first)
            assert (r["ok"], r["code"]) == (False, "deadline_expired"), r
            assert os.listdir(d["log"]) == []            # nothing was started
        # the controller asks again with the same id: now it runs
        send(first, **start_req(d, config, 2, job_a, timeout_s=5))
        r = answer(first)
        assert r["ok"], r
        reaper.append(r["result"]["pid"])
        started = r["result"]
    finally:
        first.close()
    # a new agent (a reconnect, another controller) asked the same again:
    # the host's record answers, no second job
    second = AgentProc()
    try:
        send(second, **start_req(d, config, 1, job_a, timeout_s=5))
        again = answer(second)
    finally:
        second.close()
    assert again["ok"] and again["result"]["replayed"], again
    assert {k: again["result"][k] for k in ("pid", "log_file")} == started
    assert os.listdir(d["log"]) == [os.path.basename(started["log_file"])]


def test_a_request_taken_up_after_its_deadline_is_dropped(tmp_path):
    d, config = host_dirs(tmp_path / "host")
    agent = AgentProc()
    try:
        with host_lock_held():
            # the first waits for the lock 1.5 s; the second waits behind it
            # in the agent's queue past its own 0.5 s
            send(agent, **start_req(d, config, 1, fresh_id(), timeout_s=1.5))
            send(agent, **start_req(d, config, 2, fresh_id(), timeout_s=0.5))
            send(agent, id=3, op="hello", timeout_s=0.5)
            replies = [answer(agent) for _ in range(3)]
        hello = agent.ok("hello")
    finally:
        agent.close()
    assert [(r["id"], r.get("code")) for r in replies] == [
        (1, "deadline_expired"), (2, "deadline_expired"), (3, "deadline_expired")]
    assert "start_job: the request's deadline (0.5s) passed" in replies[1]["error"]
    assert os.listdir(d["log"]) == []
    assert hello["pid"] > 0                     # and the agent goes on serving


def test_refusals_carry_a_code(tmp_path):
    d, config = host_dirs(tmp_path / "host")
    agent = AgentProc()
    try:
        codes = [agent.raw("no_such_op")["code"],
                 agent.raw("hello", timeout_s="soon")["code"],
                 agent.raw("kill", config=config, plot_id="nope")["code"],
                 agent.raw("start_job", config=config, argv=["x"], tmp_dir=d["tmp"],
                           dst_dir=d["dst"], request_id="../../etc")["code"]]
        agent.p.stdin.write("[1, 2]\n")
        agent.p.stdin.flush()
        not_object = answer(agent)
    finally:
        agent.close()
    assert codes == ["unknown_op", "bad_request", "refused", "bad_request"]
    assert (not_object["ok"], not_object["code"]) == (False, "bad_request")


def test_remembered_request_ids_are_pruned_by_age_and_count(tmp_path, monkeypatch):
    from agent.ops import carried_out
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(carried_out, "MAX_ENTRIES", 3)
    now = 1_000_000.0
    carried_out.remember("old", "start_job", {"pid": 1}, now=now - carried_out.KEEP_S - 1)
    for i in range(4):
        carried_out.remember(f"r{i}", "start_job", {"pid": 10 + i}, now=now + i)
    assert carried_out.lookup("old") is None
    assert carried_out.lookup("r0") is None                 # the oldest beyond the count
    assert [carried_out.lookup(f"r{i}") for i in (1, 2, 3)] == [
        {"pid": 11}, {"pid": 12}, {"pid": 13}]
    assert os.listdir(tmp_path / ".plotfleet") == ["carried-out.json"]


# --- behind real sshd --------------------------------------------------------

def test_an_agent_whose_channel_closed_exits_while_its_request_is_stuck(ssh_fleet, tmp_path):
    fleet = ssh_fleet(1)
    host = fleet.model_host("plotter1")
    d = {k: (v[0] if isinstance(v, list) else v) for k, v in fleet.hosts["plotter1"].dirs.items()}
    s = Session(host, request_timeout_s=60)
    failed = []

    def stuck_request():
        try:
            s.request("start_job", config=host.agent_config(), argv=chiapos_argv(d),
                      plotter="chiapos", k=18, tmp_dir=d["tmp"], dst_dir=d["dst"],
                      request_id=fresh_id())
        except Exception as e:
            failed.append(e)

    with host_lock_held() as holder:
        agent = psutil.Process(s.request("hello")["pid"])
        stuck = threading.Thread(target=stuck_request, daemon=True)
        stuck.start()
        wait_for(lambda: any(f.path == LOCK for f in agent.open_files()), 10)
        fleet.stop("plotter1")               # the channel closes under the stuck request
        wait_for(lambda: gone(agent), 10)    # GRACE_S after stdin EOF, lock still held
        assert holder.poll() is None
        stuck.join(60)
    s.close()
    assert [type(e) for e in failed] == [LostReply]
    assert os.listdir(d["log"]) == []


def test_a_reconnect_ends_its_cut_off_agent_and_no_other(ssh_fleet):
    fleet = ssh_fleet(1)
    host = fleet.model_host("plotter1")
    with Session(host) as ours, Session(host) as other_controller:
        old = psutil.Process(ours.request("hello")["pid"])
        theirs = other_controller.request("hello")["pid"]
        carrier = old.parent()               # the sshd session behind our channel
        carrier.suspend()                    # cut off: no EOF ever reaches the agent
        try:
            with pytest.raises(LostReply, match="did not answer hello within 1s"):
                ours.request("hello", timeout=1)
            assert not gone(old)
            new = ours.request("hello")["pid"]      # reconnects, ends exactly the old one
            assert new != old.pid
            wait_for(lambda: gone(old), 10)
            assert other_controller.request("hello")["pid"] == theirs
        finally:
            carrier.resume()


def test_a_fake_agent_answering_a_json_list_is_a_host_error(ssh_fleet, tmp_path):
    fake = tmp_path / "python-with-fake-agent"
    fake.write_text(f"""#!/bin/sh
case "$*" in *"-m agent serve"*) while read -r line; do echo '[1, 2]'; done; exit 0;; esac
exec {sys.executable} "$@"
""")
    fake.chmod(0o755)
    fleet = ssh_fleet(2)
    with pytest.raises(LostReply) as e:
        Session(fleet.model_host("plotter2", python=str(fake))).open()
    why = "agent sent a bad answer to hello: b'[1, 2]\\n'"
    assert str(e.value) == why
    # as a user meets it: that host's row says so, the other is fine, exit 4
    inv = fleet.write_inventory(tmp_path / "inventory.yaml", extra_vars_per_host={
        "plotter2": {"ansible_python_interpreter": str(fake)}})
    r, doc = status_json(inv)
    assert r.returncode == 4 and "Traceback" not in r.stderr, r.stderr
    hosts = {h["name"]: h for h in doc["hosts"]}
    assert (hosts["plotter2"]["reachable"], hosts["plotter2"]["error"]) == (False, why)
    assert hosts["plotter1"]["reachable"]


# --- plot-all end to end ---------------------------------------------------------

def _plot_all(inv, out):
    return subprocess.Popen([sys.executable, "-m", "orchestrator", "plot-all", "--inventory",
                             str(inv), "--plots", "1", "--json"], cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=out,
                            stderr=subprocess.PIPE, text=True)


def _actions(path):
    lines = []
    for line in path.read_text().splitlines():
        lines += json.loads(line)["actions"]
    return lines


def _plots(h):
    return [p for p in os.listdir(h.dirs["dst"][0]) if p.endswith(".plot")]


def test_host_lock_held_past_the_deadline_one_job_starts_never_two(ssh_fleet, tmp_path):
    fleet = ssh_fleet(1)
    h = fleet.hosts["plotter1"]
    # nothing but the start stagger and max jobs would stop a second start
    inv = fleet.write_inventory(tmp_path / "inventory.yaml", request_timeout_s=2,
                                global_stagger_m=0, polling_time_s=0.5)
    out = tmp_path / "passes.jsonl"
    with open(out, "w") as f, host_lock_held():
        ctl = _plot_all(inv, f)
        # two passes whose start waited for the lock until its deadline
        wait_for(lambda: sum("deadline" in a for a in _actions(out)) >= 2, 60, every=0.2)
        assert os.listdir(h.dirs["log"]) == []
    _, err = ctl.communicate(timeout=120)
    assert ctl.returncode == 0, err
    actions = _actions(out)
    refused = [a for a in actions if "deadline" in a]
    assert refused[0] == ("plotter1: start job failed: host lock held by another process "
                          "past the request's deadline, nothing done")
    assert sum(a.startswith("started on plotter1") for a in actions) == 1
    assert len(os.listdir(h.dirs["log"])) == 1 and len(_plots(h)) == 1
    wait_for(lambda: not agents_under(fleet, "plotter1"), 10)   # none left behind


def test_a_start_whose_answer_was_lost_is_asked_again_not_started_twice(ssh_fleet, tmp_path):
    fleet = ssh_fleet(1)
    h = fleet.hosts["plotter1"]
    inv = fleet.write_inventory(tmp_path / "inventory.yaml", request_timeout_s=6,
                                global_stagger_m=0, polling_time_s=0.5)
    out = tmp_path / "passes.jsonl"
    carrier = None
    try:
        with open(out, "w") as f:
            with host_lock_held():
                ctl = _plot_all(inv, f)

                def waiting_for_the_lock():
                    for a in agents_under(fleet, "plotter1"):
                        try:
                            if any(x.path == LOCK for x in a.open_files()):
                                return a
                        except psutil.Error:
                            pass
                agent = wait_for(waiting_for_the_lock, 60, every=0.02)
                carrier = agent.parent()
                carrier.suspend()        # its answer will never reach the controller
            # lock released: the agent starts the job within its deadline and
            # answers into the stopped sshd; the controller times out, reconnects
            # and asks again with the same request id
            _, err = ctl.communicate(timeout=180)
        assert ctl.returncode == 0, err
        actions = _actions(out)
        assert any(a.startswith("plotter1: start job got no answer (agent did not answer "
                                "start_job within 6s)") for a in actions), actions
        assert sum(a.startswith("started on plotter1 (its answer was lost, the host "
                                "remembers it)") for a in actions) == 1, actions
        assert not any(a.startswith("started on plotter1:") for a in actions), actions
        assert len(os.listdir(h.dirs["log"])) == 1 and len(_plots(h)) == 1
        wait_for(lambda: gone(agent), 10)       # the cut-off agent was ended
    finally:
        if carrier is not None:
            carrier.resume()
