"""psutil for a host's own platform, from a wheelhouse on the controller.

A host whose Python lacks psutil gets the files of a psutil wheel built for
that host (its machine, libc and Python), never the controller's own psutil:
a Mac or an x86_64 laptop would hand a Raspberry Pi code it cannot load.

The host's platform comes from the facts deploy's probe prints
(`machine= bits= libc= python= impl= abiflags=`).  Which wheels fit is
packaging's tag logic (`packaging.tags.cpython_tags` over the platform tags
the host's glibc or musl supports); the wheelhouse (default
`<state dir>/wheelhouse`, `--wheelhouse DIR` or $PLOTFLEET_WHEELHOUSE) is
filled by `pip download --only-binary=:all: --platform ... psutil`, by
`plotfleet deploy --prepare` for the whole inventory, or by the first deploy
that finds no fitting wheel there.  No fitting wheel and none to download:
a WheelError whose one line names the fix.
"""
from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags, parse_tag
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from orchestrator.errors import SessionError

PACKAGE = "psutil"
PIP_TIMEOUT_S = 120.0               # one `pip download`; offline, pip's own timeout ends it sooner
RETRY_FAILED_S = 600.0              # a failed download is not tried again for every host at once
# the oldest glibc minor each arch had manylinux wheels for (PEP 600's 2_5 / 2_17 floors)
_GLIBC_FLOOR = {"x86_64": 5, "i686": 5}
_LEGACY = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


class WheelError(SessionError):
    """No psutil wheel for the host's platform can be had."""


@dataclass(frozen=True)
class HostPlatform:
    machine: str                    # uname machine: x86_64, aarch64, armv7l
    bits: int                       # the interpreter's: a 32-bit Pi OS on a 64-bit kernel says 32
    libc: str                       # glibc | musl | "" (unknown)
    libc_version: Tuple[int, ...]
    python: Tuple[int, int]
    impl: str = "cpython"
    abiflags: str = ""

    @classmethod
    def from_facts(cls, facts: dict) -> "HostPlatform":
        libc, _, version = facts.get("libc", "").partition("-")
        try:
            libc_version = tuple(int(x) for x in version.split(".")[:2])
        except ValueError:
            libc_version = ()
        major, minor = (int(x) for x in facts["python"].split(".")[:2])
        return cls(machine=facts.get("machine", "?"), bits=int(facts.get("bits") or 64),
                   libc=libc, libc_version=libc_version, python=(major, minor),
                   impl=facts.get("impl", "cpython"), abiflags=facts.get("abiflags", "-").strip("-"))

    @property
    def archs(self) -> List[str]:
        """As packaging reads a 32-bit interpreter on a 64-bit kernel."""
        arch = self.machine.lower().replace("-", "_").replace(".", "_")
        if self.bits == 32:
            arch = {"x86_64": "i686", "aarch64": "armv8l"}.get(arch, arch)
        return {"armv8l": ["armv8l", "armv7l"]}.get(arch, [arch])

    def platform_tags(self) -> List[str]:
        """Most specific first, as packaging's _linux_platforms gives them on the host."""
        out = []
        for arch in self.archs:
            if self.libc == "glibc" and len(self.libc_version) == 2 and self.libc_version[0] == 2:
                for minor in range(self.libc_version[1], _GLIBC_FLOOR.get(arch, 17) - 1, -1):
                    out.append(f"manylinux_2_{minor}_{arch}")
                    if (2, minor) in _LEGACY:
                        out.append(f"{_LEGACY[(2, minor)]}_{arch}")
            elif self.libc == "musl" and len(self.libc_version) == 2 and self.libc_version[0] == 1:
                out += [f"musllinux_1_{m}_{arch}" for m in range(self.libc_version[1], -1, -1)]
        return out + [f"linux_{arch}" for arch in self.archs]

    @property
    def abi(self) -> str:
        return f"cp{self.python[0]}{self.python[1]}{self.abiflags}"

    def tags(self) -> List[Tag]:
        """Every wheel tag the host's interpreter takes, best first (packaging.tags)."""
        if self.impl != "cpython":
            return []               # psutil publishes CPython wheels only
        platforms = self.platform_tags()
        return (list(cpython_tags(self.python, [self.abi], platforms))
                + list(compatible_tags(self.python, f"cp{self.python[0]}{self.python[1]}", platforms)))

    def describe(self) -> str:
        libc = f"{self.libc} {'.'.join(map(str, self.libc_version))}" if self.libc else "unknown libc"
        bits = ", 32-bit" if self.bits == 32 and self.machine in ("aarch64", "x86_64") else ""
        return f"linux {self.machine}{bits}, {libc}, CPython {self.python[0]}.{self.python[1]}"


def default_dir() -> str:
    from orchestrator.config.controller import ControllerConfig
    return os.environ.get("PLOTFLEET_WHEELHOUSE") or os.path.join(
        ControllerConfig().state_dir, "wheelhouse")


def _requires_python_ok(wheel: Path, python: Tuple[int, int]) -> bool:
    """The wheel's Requires-Python admits the host's Python (unreadable: trust the tags)."""
    try:
        with zipfile.ZipFile(wheel) as z:
            meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
            for line in z.read(meta).decode(errors="replace").splitlines():
                if line.lower().startswith("requires-python:"):
                    spec = SpecifierSet(line.split(":", 1)[1].strip())
                    return spec.contains(f"{python[0]}.{python[1]}", prereleases=True)
                if not line.strip():
                    break
    except (OSError, StopIteration, zipfile.BadZipFile, InvalidSpecifier):
        pass
    return True


def check(wheel: Path) -> Optional[str]:
    """Why the wheel cannot be shipped as it is (None: it is whole and what its
    name says): every member's CRC, the wheel's own RECORD hashes, and its
    WHEEL file's tags against the file name (a renamed x86_64 build is not an
    aarch64 one)."""
    try:
        name, version, _, tags = parse_wheel_filename(wheel.name)
        with zipfile.ZipFile(wheel) as z:
            if z.testzip() is not None:
                return "is damaged (a CRC does not match: torn or overwritten)"
            info = f"{name}-{version}.dist-info/"
            if info + "RECORD" not in z.namelist() or info + "WHEEL" not in z.namelist():
                return f"holds no {info} RECORD and WHEEL (not a {name} wheel)"
            for line in z.read(info + "RECORD").decode().splitlines():
                member, _, rest = line.partition(",")
                algo, _, digest = rest.partition(",")[0].partition("=")
                if not digest:
                    continue        # RECORD itself, signatures
                got = base64.urlsafe_b64encode(hashlib.new(algo, z.read(member)).digest())
                if got.rstrip(b"=").decode() != digest:
                    return f"does not match its RECORD ({member} was changed)"
            said = {t for ln in z.read(info + "WHEEL").decode().splitlines()
                    if ln.lower().startswith("tag:") for t in parse_tag(ln.split(":", 1)[1].strip())}
            if not set(tags) <= said:
                return (f"is an impostor: its WHEEL file says {max(map(str, said), default='no tags')}, "
                        f"not its name's {max(map(str, set(tags) - said))}")
    except (OSError, zipfile.BadZipFile, KeyError, ValueError, UnicodeDecodeError,
            InvalidWheelFilename, EOFError) as e:
        return f"is damaged ({str(e) or type(e).__name__})"
    return None


_checked: Dict[tuple, Optional[str]] = {}   # (path, size, mtime) -> check()


def _check_cached(wheel: Path) -> Optional[str]:
    st = wheel.stat()
    key = (str(wheel), st.st_size, st.st_mtime_ns)
    if key not in _checked:
        _checked[key] = check(wheel)
    return _checked[key]


def pick(wheelhouse: str, platform: HostPlatform, rejected: Optional[List[str]] = None
         ) -> Optional[Path]:
    """The newest whole psutil wheel in the wheelhouse that the host takes, or
    None; `rejected` gets a line for each fitting one that check() refused."""
    rank = {t: i for i, t in enumerate(platform.tags())}
    fitting = []
    for path in sorted(Path(wheelhouse).glob("*.whl")) if os.path.isdir(wheelhouse) else ():
        try:
            name, version, _, tags = parse_wheel_filename(path.name)
        except InvalidWheelFilename:
            continue
        fits = [rank[t] for t in tags if t in rank]
        if name != PACKAGE or not fits or not _requires_python_ok(path, platform.python):
            continue
        fitting.append(((version, -min(fits)), path))
    for _, path in sorted(fitting, key=lambda kp: kp[0], reverse=True):
        try:
            why = _check_cached(path)
        except OSError as e:
            why = f"is unreadable ({e.strerror or e})"
        if why is None:
            return path
        if rejected is not None:
            rejected.append(f"{path.name} {why}")
    return None


def pip_download_argv(dest: str, platform: HostPlatform) -> List[str]:
    """`pip download` of a psutil wheel for the host's platform only."""
    argv = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--no-deps",
            "--disable-pip-version-check", "--dest", dest,
            "--python-version", f"{platform.python[0]}.{platform.python[1]}",
            "--implementation", "cp"]
    for abi in (platform.abi, "abi3", "none"):
        argv += ["--abi", abi]
    for tag in platform.platform_tags():
        argv += ["--platform", tag]
    return argv + [PACKAGE]


_lock = threading.Lock()
_failed: Dict[tuple, Tuple[float, str]] = {}    # (wheelhouse, platform) -> (when, why)


def fetch(wheelhouse: str, platform: HostPlatform, timeout: float = PIP_TIMEOUT_S) -> Optional[str]:
    """Download a fitting wheel into the wheelhouse: None, or why it could not."""
    os.makedirs(wheelhouse, exist_ok=True)
    # into a temp dir, then renamed in: the wheelhouse only ever holds whole wheels
    with tempfile.TemporaryDirectory(prefix=".download-", dir=wheelhouse) as tmp:
        try:
            p = subprocess.run(pip_download_argv(tmp, platform), capture_output=True, text=True,
                               timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return f"pip download timed out after {timeout:g}s"
        except OSError as e:
            return f"cannot run pip: {e.strerror or e}"
        if p.returncode != 0:
            lines = [ln.strip() for ln in (p.stderr or p.stdout).splitlines() if ln.strip()]
            why = next((ln for ln in reversed(lines) if ln.startswith("ERROR:")), lines[-1] if lines else "")
            return "pip download failed: " + (why[len("ERROR:"):].strip() if why.startswith("ERROR:")
                                              else why or f"exit {p.returncode}")
        for whl in Path(tmp).glob("*.whl"):
            os.replace(whl, Path(wheelhouse) / whl.name)
    return None


def ensure(wheelhouse: str, platform: HostPlatform) -> Path:
    """A wheel for the host: from the wheelhouse, else downloaded once; else WheelError."""
    found = pick(wheelhouse, platform)
    if found:
        return found
    rejected: List[str] = []
    key = (os.path.abspath(wheelhouse), platform)
    with _lock, _file_lock(wheelhouse):     # one download at a time, across threads and controllers
        found = pick(wheelhouse, platform, rejected)
        if found:
            return found
        when, why = _failed.get(key, (0.0, ""))
        if not why or time.monotonic() - when > RETRY_FAILED_S:
            why = fetch(wheelhouse, platform)
            if why:
                _failed[key] = (time.monotonic(), why)
            else:
                _failed.pop(key, None)
                rejected.clear()
                found = pick(wheelhouse, platform, rejected)
                if found:
                    return found
                why = "pip download brought no wheel that fits"
    if rejected:        # what the user put there and why it is not used, first
        why = "; ".join(rejected) + "; " + why
    raise WheelError(
        f"no psutil wheel for {platform.describe()} in {wheelhouse} ({why}): install "
        f"python3-psutil with the host's package manager, or put a psutil wheel for it "
        f"in {wheelhouse}")


class _file_lock:
    def __init__(self, wheelhouse: str):
        self.path = os.path.join(wheelhouse, ".lock")
        self.fd = None

    def __enter__(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)           # closing drops the lock


def package_files(wheel: Path, prefix: str = "") -> Dict[str, bytes]:
    """The wheel's psutil package as files under `prefix`psutil/ (its tests left out)."""
    out = {}
    with zipfile.ZipFile(wheel) as z:
        for name in sorted(z.namelist()):
            if name.startswith(PACKAGE + "/") and not name.endswith("/") \
                    and "/tests/" not in name and "__pycache__" not in name:
                out[prefix + name] = z.read(name)
    if not out:
        raise WheelError(f"{wheel} holds no {PACKAGE} package")
    return out


def prepare(wheelhouse: str, platforms) -> Dict[HostPlatform, str]:
    """Fill the wheelhouse for these platforms: {platform: wheel name or the WheelError line}."""
    out = {}
    for p in dict.fromkeys(platforms):
        try:
            out[p] = ensure(wheelhouse, p).name
        except WheelError as e:
            out[p] = str(e)
    return out
