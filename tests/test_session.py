"""Session: connect over real sshd, deploy the agent once, talk on one channel."""
import os
import re
import shutil
import subprocess
import sys
import time
import uuid

import psutil
import pytest

from orchestrator.errors import AgentError, SessionError
from orchestrator.remote.session import Session




def test_deploy_uploads_once_per_agent_version(ssh_fleet, fresh_agent):
    fleet = ssh_fleet(1)
    host = fleet.model_host("plotter1")
    with Session(host, agent_dir=fresh_agent) as s:
        assert s.deployed.uploaded
        first = s.deployed.hash
        assert s.request("hello")["pid"] > 0
    with Session(host, agent_dir=fresh_agent) as s:
        assert not s.deployed.uploaded
        assert s.deployed.hash == first
        remote = s.deployed.dir
    assert open(os.path.join(remote, "VERSION")).read().strip() == first
    assert os.path.exists(os.path.join(remote, ".ok"))

    (fresh_agent / "_stamp.py").write_text(f"# {uuid.uuid4()}\n")
    with Session(host, agent_dir=fresh_agent) as s:
        assert s.deployed.uploaded
        assert s.deployed.hash != first
        assert s.request("hello")["pid"] > 0
    shutil.rmtree(os.path.expanduser(f"~/.plotfleet/agent-{first}"), ignore_errors=True)


def test_an_agent_folder_remade_without_ok_is_set_aside_not_a_dead_end(ssh_fleet, fresh_agent):
    """An agent still running from a folder a redeploy set aside used to write
    its late imports' bytecode back at the old path: agent-<hash>/ without
    .ok, which every later deploy then failed to rename onto ("Directory not
    empty"), for good.  Such a folder is never complete, so it is replaced;
    and a running agent writes no bytecode into its folder."""
    fleet = ssh_fleet(1)
    host = fleet.model_host("plotter1")
    with Session(host, agent_dir=fresh_agent) as s:
        folder = s.deployed.dir
        s.request("snapshot", config=host.agent_config())
    made = {p for p in _tree(folder)}
    assert any(p.endswith(".pyc") for p in made), "compiled at install"
    with Session(host, agent_dir=fresh_agent) as s:
        s.request("snapshot", config=host.agent_config())
    assert _tree(folder) == made, "the agent wrote into its own folder"

    shutil.rmtree(folder)
    junk = os.path.join(folder, "agent", "__pycache__")
    os.makedirs(junk)
    open(os.path.join(junk, "serve.cpython-311.pyc"), "wb").close()
    with Session(host, agent_dir=fresh_agent) as s:
        assert s.deployed.uploaded
        assert s.request("hello")["pid"] > 0
    assert os.path.exists(os.path.join(folder, ".ok"))
    assert not [d for d in os.listdir(os.path.dirname(folder))
                if d.startswith((".stale-", ".unpack-"))]


def _tree(folder):
    return {os.path.relpath(os.path.join(d, f), folder)
            for d, _, files in os.walk(folder) for f in files}


def _wheel_version(d):
    return d.wheel.split("-")[1]


def test_host_python_without_psutil_gets_one_built_for_it(ssh_fleet, fresh_agent, tmp_path):
    venv = tmp_path / "bare-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    bare = str(venv / "bin" / "python")
    lacks = subprocess.run([bare, "-c", "import psutil"], capture_output=True)
    assert lacks.returncode != 0, "the test venv must not have psutil"

    fleet = ssh_fleet(1)
    host = fleet.model_host("plotter1", python=bare)
    with Session(host, agent_dir=fresh_agent) as s:
        assert s.deployed.vendor and "x86_64" in s.deployed.wheel
        assert s.info["psutil"] == _wheel_version(s.deployed)
        snap = s.request("snapshot", config=host.agent_config())
        vendor_dir = s.deployed.vendor_dir
    tmp = [d for d in snap["dirs"] if d["kind"] == "tmp"]
    assert tmp and tmp[0]["free_bytes"] > 0
    with Session(host, agent_dir=fresh_agent) as again:     # already there: nothing sent
        assert not again.deployed.uploaded and again.deployed.vendor_dir == vendor_dir
        assert again.info["psutil"] == s.info["psutil"]


def test_unknown_host_key_is_refused_unless_checking_is_off(ssh_fleet, tmp_path):
    fleet = ssh_fleet(1)
    h = fleet.hosts["plotter1"]
    other = tmp_path / "known_hosts_without_it"
    other.write_text("[127.0.0.9]:22 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEhWLgU2vd0j6f8zJRCi6ZNUmLKsQMWhUHFg8CRn5uN4\n")

    strict = fleet.model_host("plotter1", known_hosts_file=str(other))
    with pytest.raises(SessionError) as e:
        Session(strict).open()
    assert str(e.value) == (f"host key for [{h.address}]:{h.port} is not in {other} "
                            "(set host_key_checking: false to accept unknown keys)")
    assert f"[{h.address}]" not in other.read_text()      # nothing was learnt

    loose = fleet.model_host("plotter1", known_hosts_file=str(other), host_key_checking=False)
    with Session(loose) as s:
        assert s.request("hello")["pid"] > 0
    assert f"[{h.address}]" not in other.read_text()


def test_wrong_client_key_fails_at_once_with_reason(ssh_fleet, tmp_path):
    fleet = ssh_fleet(1)
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    host = fleet.model_host("plotter1", key_file=str(stranger))
    t = time.monotonic()
    addr = re.escape(fleet.hosts["plotter1"].address)
    with pytest.raises(SessionError, match=rf"^authentication failed for root@{addr} with key "):
        Session(host).open()
    assert time.monotonic() - t < 1.0, "auth failures are not retried"


def test_agent_refusal_keeps_the_channel(ssh_fleet):
    fleet = ssh_fleet(1)
    with Session(fleet.model_host("plotter1")) as s:
        pid = s.request("hello")["pid"]
        with pytest.raises(AgentError):
            s.request("no_such_op")
        assert s.request("hello")["pid"] == pid


def test_lost_channel_fails_one_request_then_reconnects(ssh_fleet):
    fleet = ssh_fleet(1)
    with Session(fleet.model_host("plotter1")) as s:
        pid = s.request("hello")["pid"]
        fleet.stop("plotter1")
        fleet.start("plotter1")
        with pytest.raises(SessionError):
            s.request("hello", timeout=5)
        assert s.request("hello")["pid"] != pid


def test_local_connection_speaks_the_same_protocol(ssh_fleet):
    fleet = ssh_fleet(1)
    host = fleet.model_host("plotter1", connection="local")
    with Session(host) as s:
        pid = s.request("hello")["pid"]
        assert pid != os.getpid()
        assert psutil.Process(pid).ppid() == os.getpid()   # our child, no sshd involved
        snap = s.request("snapshot", config=host.agent_config())
        assert {d["kind"] for d in snap["dirs"]} >= {"tmp", "tmp2", "dst", "log"}
    assert not psutil.pid_exists(pid)          # closing stdin ended it, and it was reaped


def test_host_that_never_greets_times_out_with_one_line(capfd):
    # a real TCP listener that accepts and stays silent, like a hung sshd
    import socket
    from orchestrator.core.state import Host
    with socket.socket() as silent:
        silent.bind(("127.0.0.5", 0))
        silent.listen(8)
        host = Host(name="hung", address="127.0.0.5", port=silent.getsockname()[1],
                    user="root", connect_timeout_s=0.5)
        t = time.monotonic()
        with pytest.raises(SessionError) as e:
            Session(host).open()
    assert str(e.value) == "timed out after 0.5s waiting for the SSH server"
    assert time.monotonic() - t < 4.0, "bounded retries"
    assert "Traceback" not in capfd.readouterr().err


def test_an_agent_that_dies_says_why(ssh_fleet, tmp_path):
    # an interpreter that works for deploy but whose agent dies at start-up
    wrapper = tmp_path / "python-that-dies"
    wrapper.write_text(f"""#!/bin/sh
case "$*" in *"-m agent serve"*) echo "agent: cannot open /dev/nowhere" >&2; exit 3;; esac
exec {sys.executable} "$@"
""")
    wrapper.chmod(0o755)
    fleet = ssh_fleet(1)
    with pytest.raises(SessionError) as e:
        Session(fleet.model_host("plotter1", python=str(wrapper))).open()
    assert str(e.value) == "agent exited: agent: cannot open /dev/nowhere"


def test_changed_host_key_is_refused_as_a_mismatch(ssh_fleet, tmp_path):
    fleet = ssh_fleet(1)
    h = fleet.hosts["plotter1"]
    impostor = tmp_path / "impostor"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(impostor)], check=True)
    known = tmp_path / "known_hosts"
    known.write_text(f"[{h.address}]:{h.port} " + " ".join(
        (tmp_path / "impostor.pub").read_text().split()[:2]) + "\n")
    with pytest.raises(SessionError,
                       match=rf"^host key for {re.escape(h.address)}:{h.port} does not match known_hosts"):
        Session(fleet.model_host("plotter1", known_hosts_file=str(known))).open()


def test_sshd_coming_back_during_connect_is_retried(ssh_fleet):
    import threading
    import socket
    fleet = ssh_fleet(1)
    h = fleet.hosts["plotter1"]
    fleet.stop("plotter1")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((h.address, h.port), timeout=1).close()
    restart = threading.Timer(0.3, fleet.start, args=("plotter1",))
    t = time.monotonic()
    restart.start()
    try:
        with Session(fleet.model_host("plotter1")) as s:   # the first attempt is refused
            assert s.request("hello")["pid"] > 0
        assert time.monotonic() - t >= 0.3
    finally:
        restart.join()


def test_missing_interpreter_is_named(ssh_fleet, fresh_agent):
    fleet = ssh_fleet(1)
    host = fleet.model_host("plotter1", python="/opt/nowhere/python3")
    with pytest.raises(SessionError) as e:
        Session(host, agent_dir=fresh_agent).open()
    assert str(e.value) == "deploy: python interpreter '/opt/nowhere/python3' not found on host"


def test_without_a_known_hosts_file_the_users_ssh_files_decide(ssh_fleet, tmp_path, monkeypatch):
    fleet = ssh_fleet(1)
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    host = fleet.model_host("plotter1", known_hosts_file=None)

    (home / ".ssh" / "known_hosts").write_text("")
    with pytest.raises(SessionError, match=f"is not in {home}/.ssh/known_hosts "):
        Session(host).open()

    # ~/.ssh/config's UserKnownHostsFile is honoured, as by ssh itself
    (home / ".ssh" / "config").write_text(f"Host *\n  UserKnownHostsFile {fleet.known_hosts}\n")
    with Session(host) as s:
        assert s.request("hello")["pid"] > 0


def test_interpreter_that_loses_psutil_later_gets_one_shipped(ssh_fleet, fresh_agent, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    lent = tmp_path / "lent"                           # the host's own psutil, for now
    shutil.copytree(os.path.dirname(psutil.__file__), lent / "psutil")
    lends = os.path.join(site, "lend-psutil.pth")
    with open(lends, "w") as f:
        f.write(str(lent) + "\n")
    fleet = ssh_fleet(1)
    host = fleet.model_host("plotter1", python=py)
    with Session(host, agent_dir=fresh_agent) as s:
        assert not s.deployed.vendor
    with Session(host, agent_dir=fresh_agent) as s:   # remembered: not checked again
        assert not s.deployed.uploaded and not s.deployed.vendor

    os.remove(lends)                                   # psutil uninstalled on the host
    shutil.rmtree(lent)
    with Session(host, agent_dir=fresh_agent) as s:
        assert s.deployed.vendor and s.deployed.wheel
        assert s.info["psutil"] == _wheel_version(s.deployed)
