"""Any host: psutil built for the host's own platform, and bastions checked.

Real foreign hosts: Debian's arm64 and armhf CPython 3.11 run under
qemu-user (sysroots built once by .ci/qemu_python.sh into /opt), and a real
CPython 3.8, each as a host's ansible_python_interpreter behind real sshd,
none with psutil.  Wheels are real psutil wheels fetched by a real
`pip download`.  ProxyJump goes through a real second sshd.
"""
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from packaging.tags import sys_tags

from orchestrator.errors import SessionError
from orchestrator.remote import deploy, wheelhouse
from orchestrator.remote.session import Session
from orchestrator.remote.wheelhouse import HostPlatform
from tests.cli import plotfleet
from tests.test_archive_e2e import assert_all_archived, give_plots, on_farm, partials

ARM64 = "/opt/plotfleet-arm64/bin/python3"
ARMHF = "/opt/plotfleet-armhf/bin/python3"
# the machine image's pyenv (root's, not the test run's own HOME)
PY38 = os.path.expanduser("~root/.pyenv/versions/3.8.18/bin/python3.8")
ELF_MACHINE = {b"\xb7\x00": "aarch64", b"\x3e\x00": "x86_64", b"\x28\x00": "arm"}
# this machine's pip has its own find-links, extra index and timeout: all off,
# and an index that refuses at once: a controller with no network
OFFLINE = {"PIP_CONFIG_FILE": "/dev/null", "PIP_FIND_LINKS": "", "PIP_NO_INDEX": "1",
           "PIP_DEFAULT_TIMEOUT": "2", "PIP_RETRIES": "0"}


def _need(path, how):
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: run {how} (.ci/run does)")
    return path


def _own(tmp_path, python, name):
    """A wrapper of its own around `python`: an interpreter no earlier run remembered."""
    w = tmp_path / f"{name}-{uuid.uuid4().hex[:8]}"
    w.write_text(f"#!/bin/sh\nexec {python} \"$@\"\n")
    w.chmod(0o755)
    return str(w)


def _lacks_psutil(python):
    r = subprocess.run([python, "-c", "import psutil"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "No module named 'psutil'" in r.stderr, r


def _py_key(python):
    """The tail of deploy's per-interpreter marker name."""
    return deploy.marker_name(deploy.agent_bundle(), python).rsplit("-", 1)[-1]


def _facts(python):
    """The facts deploy's probe prints, from that interpreter itself."""
    out = subprocess.run([python, "-c", deploy._CHECK], capture_output=True, text=True,
                         timeout=30).stdout
    return dict(w.split("=", 1) for w in out.split() if "=" in w)


@pytest.fixture(scope="session")
def arm64():
    return _need(ARM64, ".ci/qemu_python.sh arm64")


@pytest.fixture(scope="session")
def armhf():
    return _need(ARMHF, ".ci/qemu_python.sh armhf")


@pytest.fixture(scope="session")
def py38():
    return _need(PY38, "pyenv install 3.8.18")




# --- which wheel fits: packaging's tags --------------------------------------------

def test_a_hosts_tags_are_what_packaging_computes_on_that_host(py38):
    # this interpreter: packaging's own sys_tags
    assert HostPlatform.from_facts(_facts(sys.executable)).tags() == list(sys_tags())
    # a real 3.8: the packaging its pip vendors, run by 3.8 itself
    own = subprocess.run([py38, "-c", "from pip._vendor.packaging.tags import sys_tags; "
                                      "print(' '.join(map(str, sys_tags())))"],
                         capture_output=True, text=True, timeout=30, check=True).stdout.split()
    p38 = HostPlatform.from_facts(_facts(py38))
    assert p38.python == (3, 8) and p38.abi == "cp38"
    # (packaging releases differ only in the order of the pure-Python "-any" tags)
    assert [str(t) for t in p38.tags() if t.platform != "any"] == \
        [t for t in own if not t.endswith("-any")]


def test_platform_tags_for_hosts_unlike_this_one():
    pi32 = HostPlatform("aarch64", 32, "glibc", (2, 31), (3, 9))     # 32-bit Pi OS, 64-bit kernel
    assert pi32.platform_tags()[:2] == ["manylinux_2_31_armv8l", "manylinux_2_30_armv8l"]
    assert "manylinux_2_17_armv7l" in pi32.platform_tags() and "linux_armv7l" in pi32.platform_tags()
    alpine = HostPlatform("x86_64", 64, "musl", (1, 2), (3, 12))
    assert alpine.platform_tags() == ["musllinux_1_2_x86_64", "musllinux_1_1_x86_64",
                                      "musllinux_1_0_x86_64", "linux_x86_64"]
    old = HostPlatform("aarch64", 64, "glibc", (2, 17), (3, 8))
    assert old.platform_tags() == ["manylinux_2_17_aarch64", "manylinux2014_aarch64", "linux_aarch64"]
    assert HostPlatform("x86_64", 64, "", (), (3, 11)).platform_tags() == ["linux_x86_64"]


@pytest.fixture(scope="session")
def wheels(tmp_path_factory):
    """A wheelhouse filled by a real `pip download` for three platforms."""
    d = str(tmp_path_factory.mktemp("wheelhouse"))
    got = wheelhouse.prepare(d, [HostPlatform("aarch64", 64, "glibc", (2, 36), (3, 11)),
                                 HostPlatform("x86_64", 64, "glibc", (2, 36), (3, 8)),
                                 HostPlatform("aarch64", 64, "musl", (1, 2), (3, 11))])
    assert all(v.endswith(".whl") for v in got.values()), got
    return d


def test_the_wheel_picked_is_the_one_the_host_can_load(wheels):
    def pick(*a):
        w = wheelhouse.pick(wheels, HostPlatform(*a))
        return w and w.name
    assert "manylinux2014_aarch64" in pick("aarch64", 64, "glibc", (2, 36), (3, 11))
    assert "musllinux_1_2_aarch64" in pick("aarch64", 64, "musl", (1, 2), (3, 12))
    assert "x86_64" in pick("x86_64", 64, "glibc", (2, 28), (3, 8))
    assert pick("aarch64", 64, "glibc", (2, 12), (3, 11)) is None    # older than manylinux2014
    assert pick("armv7l", 32, "glibc", (2, 36), (3, 11)) is None     # psutil ships no armv7
    assert pick("aarch64", 64, "musl", (1, 1), (3, 11)) is None
    assert pick("ppc64le", 64, "glibc", (2, 36), (3, 11)) is None


# --- real foreign hosts behind sshd ---------------------------------------------------

def _vendored_arch(vendor_dir):
    so = next(Path(vendor_dir, "psutil").glob("_psutil_linux*.so"))
    return ELF_MACHINE.get(so.read_bytes()[18:20], "?")


def test_arm64_harvester_and_python38_host_get_a_psutil_built_for_them(
        ssh_fleet, tmp_path, k18_plots, arm64, py38):
    _lacks_psutil(arm64)
    _lacks_psutil(py38)
    fleet = ssh_fleet(1, 2)
    pi, old = _own(tmp_path, arm64, "arm64-python"), _own(tmp_path, py38, "python3.8")
    inv = fleet.write_inventory(tmp_path / "inv.yaml", extra_vars_per_host={
        "harvester1": {"ansible_python_interpreter": pi},
        "harvester2": {"ansible_python_interpreter": old}})
    wh = tmp_path / "wheelhouse"

    # online: --prepare fills the wheelhouse for every host's platform
    r = plotfleet("deploy", "--prepare", "--wheelhouse", wh, "--inventory", inv, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = json.loads(r.stdout)
    assert rows["harvester1"]["detail"].startswith("linux aarch64, glibc 2.36, CPython 3.11: psutil-")
    assert "manylinux2014_aarch64" in rows["harvester1"]["detail"]
    assert rows["harvester2"]["detail"].startswith("linux x86_64, glibc 2.36, CPython 3.8: psutil-")
    for python in (pi, old):    # prepare deploys nothing: no interpreter remembered
        assert not list(Path(os.path.expanduser("~/.plotfleet")).glob(f".psutil-*-{_py_key(python)}"))

    # offline from here: what deploy ships comes from the wheelhouse alone
    env = {**OFFLINE, "PLOTFLEET_WHEELHOUSE": str(wh)}
    r = plotfleet("deploy", "--inventory", inv, env=env, timeout=90)
    assert r.returncode == 0, r.stdout + r.stderr
    line = {ln.split(":", 1)[0]: ln for ln in r.stdout.splitlines()}
    assert "(python 3.11.2, psutil from psutil-" in line["harvester1"] and "aarch64" in line["harvester1"]
    assert "(python 3.8.18, psutil from psutil-" in line["harvester2"] and "x86_64" in line["harvester2"]

    r = plotfleet("status", "--inventory", inv, "--json", env=env, timeout=90)
    assert r.returncode == 0, r.stdout + r.stderr
    hosts = {h["name"]: h for h in json.loads(r.stdout)["hosts"]}
    assert all(h["reachable"] for h in hosts.values()), hosts
    farm = [d for d in hosts["harvester1"]["dirs"] if d["kind"] == "farm"]
    assert len(farm) == 2 and all(d["error"] is None and d["free_bytes"] > 0 for d in farm)

    # the agents really run on those psutils: the arm64 one's is an aarch64 build
    for h, python, arch, version in ((fleet.model_host("harvester1", python=pi), pi, "aarch64", "3.11.2"),
                                     (fleet.model_host("harvester2", python=old), old, "x86_64", "3.8.18")):
        with Session(h, wheelhouse=str(wh)) as s:
            assert s.info["python"] == version
            assert s.deployed.vendor and _vendored_arch(s.deployed.vendor_dir) == arch
            assert arch in Path(s.deployed.vendor_dir, "VERSION").read_text()

    # archiving a real k18 plot to the arm64 harvester
    plots = give_plots(fleet, k18_plots, per_plotter=1)
    deadline = time.monotonic() + 60
    while not (on_farm(fleet, plots) == plots.ids and not partials(fleet)):
        r = plotfleet("archive", "--inventory", inv, "--limit", "plotter1:harvester1", "--json",
                      env=env, timeout=60)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stdout + r.stderr
        assert time.monotonic() < deadline, r.stdout
        time.sleep(0.3)
    found = assert_all_archived(fleet, plots)
    assert all("/harvester1/" in p[0] for p in found.values())


def _no_wheel(platform, wh):
    return (f"no psutil wheel for {platform} in {wh} (pip download failed: "), (
        f"): install python3-psutil with the host's package manager, or put a psutil wheel "
        f"for it in {wh}")


def test_no_wheel_to_be_had_names_the_fix_and_marks_nothing_good(
        ssh_fleet, tmp_path, fresh_agent, monkeypatch, arm64, armhf):
    fleet = ssh_fleet(2)
    for k, v in OFFLINE.items():
        monkeypatch.setenv(k, v)
    empty = tmp_path / "empty-wheelhouse"
    home = Path(os.path.expanduser("~/.plotfleet"))   # the hosts' HOME: tests/sshhosts.py
    before = set(home.glob("psutil-*"))
    pi = _own(tmp_path, arm64, "arm64-python")
    t = time.monotonic()
    with pytest.raises(SessionError) as e:
        Session(fleet.model_host("plotter1", python=pi), agent_dir=fresh_agent,
                wheelhouse=str(empty)).open()
    head, tail = _no_wheel("linux aarch64, glibc 2.36, CPython 3.11", empty)
    assert str(e.value).startswith(head) and str(e.value).endswith(tail), str(e.value)
    assert "\n" not in str(e.value)
    assert time.monotonic() - t < 20, "an offline controller is not waited on"
    # nothing half-deployed, nothing marked good
    assert not (home / f"agent-{deploy.agent_bundle(fresh_agent).hash}").exists()
    assert set(home.glob("psutil-*")) == before

    # a real armv7 host (qemu-arm): no psutil wheel exists for it at all; its
    # row in `plotfleet deploy` says so, the other host deploys
    v7 = _own(tmp_path, armhf, "armv7-python")
    inv = fleet.write_inventory(tmp_path / "inv.yaml", extra_vars_per_host={
        "plotter2": {"ansible_python_interpreter": v7}})
    r = plotfleet("deploy", "--wheelhouse", empty, "--inventory", inv, env=OFFLINE, timeout=90)
    rows = dict(ln.split(": ", 1) for ln in r.stdout.splitlines())
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert rows["plotter1"].startswith("agent ")
    head, tail = _no_wheel("linux armv7l, glibc 2.36, CPython 3.11", empty)
    assert rows["plotter2"].startswith("not deployed: " + head) and rows["plotter2"].endswith(tail)
    assert not list(home.glob(f".psutil-*-{_py_key(v7)}"))


def test_armv7_takes_the_error_path_with_the_network_too(tmp_path, armhf):
    # online, pip itself finds no armv7 psutil: the same one line
    p = HostPlatform.from_facts(_facts(armhf))
    assert (p.machine, p.bits, p.archs) == ("armv7l", 32, ["armv7l"])
    with pytest.raises(wheelhouse.WheelError) as e:
        wheelhouse.ensure(str(tmp_path / "wh"), p)
    assert "No matching distribution found for psutil" in str(e.value), str(e.value)
    assert str(e.value).endswith(f"or put a psutil wheel for it in {tmp_path / 'wh'}")


# --- bastions ----------------------------------------------------------------------------

def _known_hosts(fleet, tmp_path, *names):
    lines = [ln for ln in Path(fleet.known_hosts).read_text().splitlines()
             if any(ln.startswith(f"[{fleet.hosts[n].address}]:{fleet.hosts[n].port} ") for n in names)]
    p = tmp_path / ("known_hosts-" + "-".join(names or ("none",)))
    p.write_text("".join(ln + "\n" for ln in lines))
    return str(p)


def test_every_proxyjump_hop_has_its_host_key_checked(ssh_fleet, tmp_path):
    fleet = ssh_fleet(2)        # plotter1 is the bastion, plotter2 the host behind it
    b, t = fleet.hosts["plotter1"], fleet.hosts["plotter2"]
    jump = f"root@{b.address}:{b.port}"
    inv = fleet.write_inventory(tmp_path / "inv.yaml", extra_vars_per_host={"plotter2": {
        "ansible_ssh_common_args": f"-o ProxyJump={jump} -o UserKnownHostsFile="
                                   + _known_hosts(fleet, tmp_path, "plotter2")}})
    from orchestrator.config.inventory import load_inventory
    host = load_inventory(inv).host("plotter2")
    assert host.proxy_jump == jump

    # the bastion's key is not known: refused, and the error names the bastion
    with pytest.raises(SessionError) as e:
        Session(host).open()
    assert str(e.value) == (f"bastion {jump}: host key for [{b.address}]:{b.port} is not in "
                            f"{host.known_hosts_file} (set host_key_checking: false to accept "
                            f"unknown keys)")

    # both known: the chain works, and really goes through the bastion
    both = _known_hosts(fleet, tmp_path, "plotter1", "plotter2")
    from dataclasses import replace
    with Session(replace(host, known_hosts_file=both)) as s:
        assert s.request("hello")["pid"] > 0
    fleet.stop("plotter1")
    with pytest.raises(SessionError, match=f"^bastion {jump}: connection refused$"):
        Session(replace(host, known_hosts_file=both, connect_timeout_s=1.0)).open()
    fleet.start("plotter1")

    # a bastion that answers with another key: refused as an impostor, named
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "fake")],
                   check=True)
    fake = tmp_path / "known_hosts-fake-bastion"
    fake.write_text(Path(_known_hosts(fleet, tmp_path, "plotter2")).read_text() + f"[{b.address}]:{b.port} "
                    + " ".join((tmp_path / "fake.pub").read_text().split()[:2]) + "\n")
    with pytest.raises(SessionError, match=rf"^bastion {jump}: host key for {b.address}:{b.port} "
                                           "does not match known_hosts \\(possible impostor"):
        Session(replace(host, known_hosts_file=str(fake))).open()

    # the host behind a known bastion is checked too
    with pytest.raises(SessionError, match=rf"^host key for \[{t.address}\]:{t.port} is not in "):
        Session(replace(host, known_hosts_file=_known_hosts(fleet, tmp_path, "plotter1"))).open()

    # opting out skips the check on every hop
    with Session(replace(host, known_hosts_file=_known_hosts(fleet, tmp_path),
                         host_key_checking=False)) as s:
        assert s.request("hello")["pid"] > 0


def test_a_proxyjump_from_ssh_config_is_checked_the_same(ssh_fleet, tmp_path, monkeypatch):
    fleet = ssh_fleet(2)
    b, t = fleet.hosts["plotter1"], fleet.hosts["plotter2"]
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(
        f"Host farm-bastion\n  HostName {b.address}\n  Port {b.port}\n  User root\n"
        f"  IdentityFile {fleet.client_key}\n"
        f"Host {t.address}\n  ProxyJump farm-bastion\n")
    monkeypatch.setenv("HOME", str(home))
    host = fleet.model_host("plotter2", known_hosts_file=_known_hosts(fleet, tmp_path, "plotter2"))
    with pytest.raises(SessionError, match=rf"^bastion farm-bastion: host key for \[{b.address}\]:{b.port} "
                                           "is not in "):
        Session(host).open()
    from dataclasses import replace
    both = _known_hosts(fleet, tmp_path, "plotter1", "plotter2")
    with Session(replace(host, known_hosts_file=both)) as s:
        assert s.request("hello")["pid"] > 0


def test_a_chain_of_two_bastions_names_the_hop_whose_key_is_unknown(ssh_fleet, tmp_path):
    from dataclasses import replace
    fleet = ssh_fleet(3)        # plotter1 -> plotter2 -> plotter3
    b1, b2 = fleet.hosts["plotter1"], fleet.hosts["plotter2"]
    jump = f"root@{b1.address}:{b1.port},root@{b2.address}:{b2.port}"
    host = fleet.model_host("plotter3", proxy_jump=jump,
                            known_hosts_file=_known_hosts(fleet, tmp_path, "plotter1", "plotter3"))
    with pytest.raises(SessionError, match=rf"^bastion root@{b2.address}:{b2.port}: host key for "
                                           rf"\[{b2.address}\]:{b2.port} is not in "):
        Session(host).open()
    every = _known_hosts(fleet, tmp_path, "plotter1", "plotter2", "plotter3")
    with Session(replace(host, known_hosts_file=every)) as s:
        assert s.request("hello")["pid"] > 0


def test_the_first_deploy_fills_an_empty_wheelhouse_itself(ssh_fleet, tmp_path, py38):
    fleet = ssh_fleet(1)
    wh = tmp_path / "wheelhouse"                    # online, and nothing prepared
    host = fleet.model_host("plotter1", python=_own(tmp_path, py38, "python3.8"))
    with Session(host, wheelhouse=str(wh)) as s:
        assert s.info["python"] == "3.8.18" and s.deployed.wheel
        assert [p.name for p in wh.glob("*.whl")] == [s.deployed.wheel]
        assert _vendored_arch(s.deployed.vendor_dir) == "x86_64"
    with Session(host, wheelhouse=str(wh)) as again:    # remembered: no wheel needed again
        assert not again.deployed.uploaded and again.deployed.vendor_dir == s.deployed.vendor_dir
