"""Push the agent to a host, once per agent version.

The agent's *.py files are named by a content hash and unpacked into
`~/.plotfleet/agent-<hash>/` on the host.  One shell round trip tells whether
that folder is complete (`.ok`) and whether the host's interpreter has psutil;
only then is anything uploaded.  When all is there, that same round trip
starts the agent (start_script), so a warm connect costs one exec.  A host without psutil gets
the psutil package of a wheel built for its own machine, libc and Python
(orchestrator/remote/wheelhouse.py), unpacked into `~/.plotfleet/psutil-<wheel>/`
(shared by agent versions) and remembered per interpreter once an agent
answered with it.  No wheel for the host: nothing is uploaded or marked good.

Unpacking goes to a temp folder that is renamed into place with `.ok`
already inside, so a half-done deploy is never taken for a complete one, and
two controllers deploying at once both end up with the same folder.

A runner is anything with `run(cmd, timeout) -> (rc, out, err)` (a shell
command on the host) and `put(data, path)` (path relative to the host's home).
"""
from __future__ import annotations

import hashlib
import io
import secrets
import shlex
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

from orchestrator.errors import SessionError
from orchestrator.remote import wheelhouse

AGENT_DIR = Path(__file__).resolve().parents[2] / "agent"
BASE = ".plotfleet"                 # under the login user's home
MIN_PYTHON = (3, 8)
# The agent never writes bytecode: an agent still running from a folder that a
# redeploy set aside would otherwise remake agent-<hash>/ at its old path (by a
# late import) without .ok.  Its .pyc files are compiled at install instead.
NO_PYC = "PYTHONDONTWRITEBYTECODE=1 "

# Runs on the host with its own interpreter (3.8+): unpack, mark, rename.
INSTALL_PY = r"""
import compileall, os, shutil, sys, tarfile, tempfile
archive, target, version = sys.argv[1:4]
replace = "replace" in sys.argv[4:]
tmp = tempfile.mkdtemp(prefix=".unpack-", dir=".")

def set_aside(path):
    # renamed away first (one step), then deleted: a reader never sees half of it
    stale = tempfile.mkdtemp(prefix=".stale-", dir=".")
    try:
        os.rename(path, os.path.join(stale, "old"))
    except FileNotFoundError:       # a concurrent deploy set it aside first
        pass
    shutil.rmtree(stale, ignore_errors=True)

try:
    with tarfile.open(archive) as t:
        kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        t.extractall(tmp, **kw)
    if "import-psutil" in sys.argv[4:]:     # a psutil that does not load here is never marked good
        sys.path.insert(0, os.path.abspath(tmp))
        try:
            import psutil
            psutil.Process().name()
        except Exception as e:
            why = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            sys.stderr.write("psutil from %s does not load on this host: %s\n" % (version, why))
            sys.exit(3)
    else:   # compiled now: the agent runs without writing bytecode (see serve_command)
        compileall.compile_dir(tmp, ddir=os.path.abspath(target), quiet=2)
    with open(os.path.join(tmp, "VERSION"), "w") as f:
        f.write(version + "\n")
    open(os.path.join(tmp, ".ok"), "w").close()
    if replace and os.path.exists(target):  # a copy that answers wrongly
        set_aside(target)
    for attempt in range(3):
        try:
            os.rename(tmp, target)
            break
        except OSError:
            if os.path.exists(os.path.join(target, ".ok")):
                break               # a concurrent deploy of the same thing
            # a folder without .ok: half deleted, or remade by an old agent's
            # late import; never complete, so it is set aside
            set_aside(target)
    else:
        raise OSError("%s: cannot be put in place" % target)
finally:
    shutil.rmtree(tmp, ignore_errors=True)
    os.remove(archive)
"""


@dataclass(frozen=True)
class Bundle:
    hash: str                       # first 12 hex of sha256 over names + contents
    files: Dict[str, bytes]         # "agent/x.py" -> content


@dataclass(frozen=True)
class Deployed:
    hash: str
    dir: str                        # absolute agent-<hash> folder on the host
    uploaded: bool                  # anything was sent this time
    vendor: bool                    # serve with a shipped psutil on PYTHONPATH
    python_version: str
    vendor_dir: Optional[str] = None    # absolute psutil-<wheel> folder on the host
    wheel: Optional[str] = None         # the wheel it came from (when chosen this time)


def agent_bundle(agent_dir: Optional[Path] = None) -> Bundle:
    root = Path(agent_dir or AGENT_DIR)
    paths = sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    if not paths:
        raise SessionError(f"no agent sources in {root}")
    files = {"agent/" + p.relative_to(root).as_posix(): p.read_bytes() for p in paths}
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name] + b"\0")
    return Bundle(h.hexdigest()[:12], files)


def vendor_name(wheel: Path) -> str:
    """The host folder for a wheel's psutil: named by the wheel's content."""
    return "psutil-" + hashlib.sha256(wheel.read_bytes()).hexdigest()[:12]


def pack(files: Dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.endswith(".so") else 0o644
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def python_argv(python: str) -> str:
    """The interpreter as quoted shell words ("/usr/bin/env python3" stays two words)."""
    return " ".join(shlex.quote(w) for w in shlex.split(python))


# The host's platform (for a psutil wheel that fits it) comes before the
# psutil import, which fails where psutil is missing.  libc: glibc's own
# version, else musl's loader says its version.
_CHECK = r"""
import sys, os
print("python=%d.%d.%d" % sys.version_info[:3])
try:
    libc = "glibc-" + os.confstr("CS_GNU_LIBC_VERSION").split()[1]
except (ValueError, OSError, AttributeError, IndexError):
    import glob, subprocess
    ld = sorted(glob.glob("/lib/ld-musl-*.so.1"))
    out = subprocess.run(ld[:1], stderr=subprocess.PIPE).stderr.decode() if ld else ""
    libc = "musl-" + out.split("Version", 1)[1].split()[0] if "Version" in out else ""
print("machine=%s bits=%d impl=%s abiflags=%s libc=%s" % (
    os.uname().machine, 64 if sys.maxsize > 2 ** 32 else 32,
    sys.implementation.name, sys.abiflags or "-", libc))
import psutil
print("psutil=1")
print(os.path.dirname(os.path.dirname(psutil.__file__)), file=sys.stderr)
"""
# The agent runs with -S: no site module, no .pth files, a faster start-up on
# every host (site processing is most of a bare interpreter's start).  It
# needs nothing but the stdlib and psutil, whose folder goes on PYTHONPATH.


def start_script(bundle: Bundle, python: str, serve: bool = True,
                 trust_cache: bool = True) -> str:
    """One shell round trip: start the agent if it is ready, else say what is missing.

    Its first line is `plotfleet-serve k=v ...` (the agent runs from here on,
    and reads the requests already sent) or `plotfleet-deploy k=v ...` with the
    facts deploy needs: home, agent=1 if complete, vendors=psutil-<id>,... for
    the shipped psutils there, python=X.Y.Z if the interpreter runs, its
    machine, bits, impl, abiflags and libc, and psutil=1 if it has psutil.
    An interpreter once seen with psutil (its own, or one shipped to it) is
    remembered in a marker file, so a warm start is one Python start-up, not
    two (cached=1 says so; without trust_cache the marker is dropped and the
    interpreter checked again).
    """
    name, py = f"agent-{bundle.hash}", python_argv(python)
    marker = marker_name(bundle, python)
    run = (f'cd {name} && PYTHONPATH="$(tail -n 1 ../{marker})" {NO_PYC}PYTHONUNBUFFERED=1 '
           f'exec {py} -S -m agent serve')
    lines = [f"mkdir -p ~/{BASE} && cd ~/{BASE} || exit 1"]
    if serve:
        if trust_cache:     # a shipped psutil's marker says so on its first line
            lines.append(f'if [ -f {name}/.ok ] && [ -f {marker} ]; then w=$(head -n 1 {marker}); '
                         f'case "$w" in vendor=psutil-*) ;; *) w=;; esac; '
                         f'echo "plotfleet-serve home=$HOME cached=1 $w"; {run}; fi')
        else:
            lines.append(f"rm -f {marker}")
    # each session writes its own new marker ($$): sessions starting at once
    # on one home never truncate or move each other's
    lines.append(f"facts=$({py} -c {shlex.quote(_CHECK)} 2>{marker}.new.$$ | tr '\\n' ' ')")
    if serve:
        lines.append(f'case "$facts" in *psutil=1*) if [ -f {name}/.ok ]; then mv {marker}.new.$$ {marker}; '
                     f'echo "plotfleet-serve home=$HOME $facts"; {run}; fi;; esac')
    lines.append(f'rm -f {marker}.new.$$; a=; [ -f {name}/.ok ] && a=agent=1; v=; '
                 f'for d in psutil-*/.ok; do [ -f "$d" ] && v="$v${{d%/.ok}},"; done; '
                 f'[ -n "$v" ] && v="vendors=$v"; '
                 f'echo "plotfleet-deploy home=$HOME $a $v $facts"')
    return "\n".join(lines) + "\n"


def marker_name(bundle: Bundle, python: str) -> str:
    """Per agent version and interpreter: the folder it imports psutil from, on its last line."""
    return f".psutil-{bundle.hash}-{hashlib.sha256(python.encode()).hexdigest()[:12]}"


def parse_status(line: str, python: str):
    """(kind, facts) from start_script's first line; SessionError if it is not one."""
    words = line.split()
    if not words or words[0] not in ("plotfleet-serve", "plotfleet-deploy"):
        raise SessionError(f"deploy: unexpected answer from host: {line.strip()[:80]!r}")
    facts = dict(w.split("=", 1) for w in words[1:] if "=" in w)
    kind = words[0].split("-")[1]
    if kind == "deploy":
        if "python" not in facts:
            raise SessionError(f"deploy: python interpreter {python!r} not found on host")
        version = tuple(int(x) for x in facts["python"].split("."))
        if version[:2] < MIN_PYTHON:
            raise SessionError(f"deploy: {python} is Python {facts['python']}, agent needs 3.8+")
    return kind, facts


def probe(runner, bundle: Bundle, python: str, timeout: float) -> dict:
    """The facts deploy needs, asked without starting the agent."""
    rc, out, err = runner.run(start_script(bundle, python, serve=False), timeout)
    if rc != 0 or not out.strip():
        raise SessionError(f"deploy: cannot prepare ~/{BASE}: {(err or out).strip()[-200:]}")
    return parse_status(out.splitlines()[0], python)[1]


def _install(runner, files: Dict[str, bytes], target: str, version: str,
             python: str, timeout: float, replace: bool = False, flag: str = ""):
    upload = f"upload-{secrets.token_hex(6)}.tar.gz"
    runner.put(pack(files), f"{BASE}/{upload}")
    cmd = (f"cd ~/{BASE} && {python_argv(python)} -c {shlex.quote(INSTALL_PY)} "
           f"{upload} {shlex.quote(target)} {shlex.quote(version)}" + (" replace" if replace else "")
           + (f" {flag}" if flag else ""))
    rc, out, err = runner.run(cmd, timeout)
    if rc == 3:                         # the host's own interpreter refused the psutil
        raise wheelhouse.WheelError((err or out).strip().splitlines()[-1])
    if rc != 0:
        last = (err or out).strip().splitlines()[-1:] or ["exit %d" % rc]
        raise SessionError(f"deploy: unpacking agent failed: {last[0]}")


def install(runner, facts: dict, bundle: Bundle, python: str, timeout: float = 60.0,
            replace: bool = False, wheels: Optional[str] = None) -> Deployed:
    """Upload what the probe's facts say is missing (nothing if all is there);
    `replace`: the agent folder there is wrong, put a fresh one in its place.
    A host without psutil needs a wheel for its platform from the wheelhouse
    `wheels` (default wheelhouse.default_dir()): without one, WheelError, and
    nothing is uploaded."""
    name, home = f"agent-{bundle.hash}", facts["home"]
    vendor = wheel = None
    if "psutil" not in facts:           # chosen first: no wheel, no half-deployed host
        platform = wheelhouse.HostPlatform.from_facts(facts)
        wheel = wheelhouse.ensure(wheels or wheelhouse.default_dir(), platform)
        vendor = vendor_name(wheel)
    uploaded = False
    if "agent" not in facts:
        _install(runner, dict(bundle.files), name, bundle.hash, python, timeout, replace)
        uploaded = True
    if vendor and (replace or vendor not in facts.get("vendors", "").split(",")):
        _install(runner, wheelhouse.package_files(wheel), vendor, wheel.name, python, timeout,
                 replace, flag="import-psutil")
        uploaded = True
    return Deployed(bundle.hash, f"{home}/{BASE}/{name}", uploaded, vendor is not None,
                    facts["python"], vendor and f"{home}/{BASE}/{vendor}",
                    wheel.name if wheel else None)


def remember(runner, d: Deployed, bundle: Bundle, python: str, timeout: float):
    """The interpreter's agent answered with the shipped psutil: start it so from now on."""
    if not d.vendor_dir:
        return
    marker = marker_name(bundle, python)
    vendor = d.vendor_dir.rsplit("/", 1)[-1]
    cmd = (f"cd ~/{BASE} && printf '%s\\n' {shlex.quote('vendor=' + vendor)} "
           f"{shlex.quote(d.vendor_dir)} > {marker}.new.$$ && mv {marker}.new.$$ {marker}")
    rc, out, err = runner.run(cmd, timeout)
    if rc != 0:
        raise SessionError(f"deploy: cannot write ~/{BASE}/{marker}: {(err or out).strip()[-120:]}")


def ready(facts: dict, bundle: Bundle, python_version: str) -> Deployed:
    """What start_script found already deployed (it is serving)."""
    vendor = facts.get("vendor")
    return Deployed(bundle.hash, f"{facts['home']}/{BASE}/agent-{bundle.hash}", False,
                    vendor is not None, facts.get("python", python_version),
                    vendor and f"{facts['home']}/{BASE}/{vendor}")


def serve_command(d: Deployed, python: str) -> str:
    """The shell command that runs the agent in the foreground on the host."""
    env = f"{NO_PYC}PYTHONUNBUFFERED=1 "
    if d.vendor_dir:
        env += f"PYTHONPATH={shlex.quote(d.vendor_dir)} "
    return f"cd {shlex.quote(d.dir)} && {env}exec {python_argv(python)} -m agent serve"
