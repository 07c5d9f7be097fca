"""Torn, zero-filled and impostor psutil wheels in the wheelhouse.

Real wheels from a real `pip download` (tests/test_platforms.py's `wheels`),
damaged on disk; real hosts behind sshd whose interpreters lack psutil.
A wheel that cannot give the host a psutil that imports is never shipped,
never unpacked as good and never remembered; the host's row says why in one
line, the other hosts deploy.
"""
import base64
import hashlib
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from orchestrator.remote import deploy, wheelhouse
from orchestrator.remote.wheelhouse import HostPlatform
from tests.cli import plotfleet
from tests.test_platforms import OFFLINE, _own, _py_key, arm64, py38, wheels  # noqa: F401

X86_38 = HostPlatform("x86_64", 64, "glibc", (2, 36), (3, 8))
ARM_311 = HostPlatform("aarch64", 64, "glibc", (2, 36), (3, 11))


def _one(wheels, arch):
    return next(p for p in Path(wheels).glob("*.whl") if f"manylinux_2_28_{arch}" in p.name)


def x86_name(wheels):
    return _one(wheels, "x86_64").name


def _rename_arch(name, src, dst):
    return name.replace(src, dst)


def _rewrite(src: Path, dest: Path, change):
    """A copy of the wheel whose members pass through change(name, data) -> data."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, change(info.filename, zin.read(info.filename)))


def _torn(src, dest):
    data = src.read_bytes()
    dest.write_bytes(data[:len(data) // 2])


def _zeros(src, dest):
    dest.write_bytes(b"\0" * src.stat().st_size)


def _tampered(src, dest):      # a member changed, RECORD not: the wheel's own hashes tell
    _rewrite(src, dest, lambda n, d: d + b"\n# changed\n" if n == "psutil/__init__.py" else d)


def _not_psutil(src, dest):    # another project's wheel under psutil's name
    shutil.copy(next(Path("/opt/pypi/files").glob("six-*.whl")), dest)


@pytest.mark.parametrize("damage, why", [
    (_torn, "is damaged"), (_zeros, "is damaged"), (_tampered, "does not match its RECORD"),
    (_not_psutil, "holds no psutil-"), ("impostor", "is an impostor: its WHEEL file says cp36-abi3-manylinux_2_28_x86_64, "
                 "not its name's cp36-abi3-manylinux_2_28_aarch64")])
def test_a_bad_wheel_is_never_picked_and_the_error_names_it(wheels, tmp_path, monkeypatch,
                                                           damage, why):
    for k, v in OFFLINE.items():
        monkeypatch.setenv(k, v)
    wh = tmp_path / "wh"
    wh.mkdir()
    x86 = _one(wheels, "x86_64")
    if damage == "impostor":    # the x86_64 build, renamed for aarch64
        bad = wh / _rename_arch(x86.name, "x86_64", "aarch64")
        shutil.copy(x86, bad)
        platform = ARM_311
    else:
        bad = wh / x86.name
        damage(x86, bad)
        platform = X86_38
    rejected = []
    assert wheelhouse.pick(str(wh), platform, rejected) is None
    assert len(rejected) == 1 and rejected[0].startswith(f"{bad.name} {why}"), rejected
    if damage is _torn:     # the one line deploy shows (after an offline pip tried to help)
        with pytest.raises(wheelhouse.WheelError) as e:
            wheelhouse.ensure(str(wh), platform)
        msg = str(e.value)
        assert "\n" not in msg and f"({bad.name} {why}" in msg, msg
    assert bad.exists(), "the user's file is left for them to look at"

    # a whole wheel beside it is picked, though the bad one's name ranks first
    if damage == "impostor":
        good = wh / _one(wheels, "aarch64").name
        shutil.copy(_one(wheels, "aarch64"), good)
    else:   # a name with fewer of the tags its WHEEL file lists is still honest
        good = wh / "psutil-7.2.2-cp36-abi3-manylinux2010_x86_64.whl"
        shutil.copy(x86, good)
    assert wheelhouse.pick(str(wh), platform) == good


def _perfect_impostor(x86: Path, dest_dir: Path) -> Path:
    """The x86_64 build with its name, WHEEL tags and RECORD all saying aarch64:
    only the host can tell."""
    name = _rename_arch(x86.name, "x86_64", "aarch64")
    with zipfile.ZipFile(x86) as z:
        files = {n: z.read(n) for n in z.namelist()}
    wheel_file = next(n for n in files if n.endswith(".dist-info/WHEEL"))
    record = next(n for n in files if n.endswith(".dist-info/RECORD"))
    files[wheel_file] = files[wheel_file].replace(b"x86_64", b"aarch64")
    digest = base64.urlsafe_b64encode(hashlib.sha256(files[wheel_file]).digest()).rstrip(b"=")
    files[record] = b"".join(
        (f"{wheel_file},sha256={digest.decode()},{len(files[wheel_file])}".encode()
         if ln.startswith(wheel_file.encode() + b",") else ln) + b"\n"
        for ln in files[record].splitlines())
    with zipfile.ZipFile(dest_dir / name, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in files.items():
            z.writestr(n, d)
    return dest_dir / name


def test_deploy_ships_no_bad_psutil_and_the_other_hosts_deploy(
        ssh_fleet, tmp_path, wheels, arm64, py38):
    fleet = ssh_fleet(3)
    old, pi = _own(tmp_path, py38, "python3.8"), _own(tmp_path, arm64, "arm64-python")
    wh = tmp_path / "wh"
    wh.mkdir()
    x86 = _one(wheels, "x86_64")
    _torn(x86, wh / x86.name)                                           # for plotter2 (x86_64 3.8)
    shutil.copy(x86, wh / _rename_arch(x86.name, "x86_64", "aarch64"))  # for plotter3 (aarch64)
    inv = fleet.write_inventory(tmp_path / "inv.yaml", extra_vars_per_host={
        "plotter2": {"ansible_python_interpreter": old},
        "plotter3": {"ansible_python_interpreter": pi}})
    home = Path(os.environ["HOME"], ".plotfleet")
    before = set(home.glob("psutil-*"))

    r = plotfleet("deploy", "--wheelhouse", wh, "--inventory", inv, env=OFFLINE, timeout=90)
    rows = dict(ln.split(": ", 1) for ln in r.stdout.splitlines())
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stdout + r.stderr
    assert rows["plotter1"].startswith("agent "), rows
    assert rows["plotter2"].startswith("not deployed: ") and f"{x86.name} is damaged" in rows["plotter2"]
    assert "is an impostor: its WHEEL file says" in rows["plotter3"], rows
    assert set(home.glob("psutil-*")) == before
    for python in (old, pi):
        assert not list(home.glob(f".psutil-*-{_py_key(python)}"))

    # the perfect impostor (tags and RECORD rewritten too) gets as far as the
    # host, whose own interpreter refuses it: not unpacked as good, not remembered
    wh2 = tmp_path / "wh2"
    wh2.mkdir()
    fake = _perfect_impostor(x86, wh2)
    assert wheelhouse.pick(str(wh2), ARM_311) == fake
    r = plotfleet("deploy", "--wheelhouse", wh2, "--inventory", inv, "--limit", "plotter1:plotter3",
                  env=OFFLINE, timeout=90)
    rows = dict(ln.split(": ", 1) for ln in r.stdout.splitlines())
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stdout + r.stderr
    assert rows["plotter1"].startswith("agent "), rows
    assert rows["plotter3"].startswith(f"not deployed: psutil from {fake.name} does not load "
                                       "on this host: "), rows
    assert set(home.glob("psutil-*")) == before
    assert not list(home.glob(f".psutil-*-{_py_key(pi)}"))


def test_a_deployed_copy_torn_on_the_host_is_deployed_again(ssh_fleet, tmp_path, wheels, py38):
    """The host's own copies (complete by their .ok) zero-filled since: the
    agent that dies of it is deployed again in place, not reported as there."""
    fleet = ssh_fleet(2)
    old = _own(tmp_path, py38, "python3.8")
    inv = fleet.write_inventory(tmp_path / "inv.yaml", extra_vars_per_host={
        "plotter2": {"ansible_python_interpreter": old}})
    r = plotfleet("deploy", "--wheelhouse", wheels, "--inventory", inv, env=OFFLINE, timeout=90)
    assert r.returncode == 0, r.stdout + r.stderr
    home = Path(os.environ["HOME"], ".plotfleet")
    (agent,) = {p.parent.parent for p in home.glob("agent-*/agent/serve.py")
                if p.parent.parent.name[len("agent-"):] in r.stdout}
    (vendor,) = [d for d in home.glob("psutil-*") if x86_name(wheels) in (d / "VERSION").read_text()]
    so = next((vendor / "psutil").glob("_psutil_linux*.so"))
    for f in (agent / "agent" / "serve.py", so):
        f.write_bytes(b"\0" * f.stat().st_size)

    r = plotfleet("deploy", "--wheelhouse", wheels, "--inventory", inv, env=OFFLINE, timeout=90)
    rows = dict(ln.split(": ", 1) for ln in r.stdout.splitlines())
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stdout + r.stderr
    assert all(v.startswith(f"agent {agent.name[6:]} uploaded") for v in rows.values()), rows
    assert so.read_bytes()[:4] == b"\x7fELF"
    assert (agent / "agent" / "serve.py").read_bytes() == (deploy.AGENT_DIR / "serve.py").read_bytes()
