"""Push the agent to a host, once per agent version.

The agent's *.py files are named by a content hash and unpacked into
`~/.plotfleet/agent-<hash>/` on the host.  One shell round trip tells whether
that folder is complete (`.ok`) and whether the host's interpreter has psutil;
only then is anything uploaded.  A host without psutil gets the controller's
own psutil package (an abi3 build) in `agent-<hash>/vendor/`.

Unpacking goes to a temp folder that is renamed into place with `.ok`
already inside, so a half-done deploy is never taken for a complete one, and
two controllers deploying at once both end up with the same folder.

A runner is anything with `run(cmd, timeout) -> (rc, out, err)` (a shell
command on the host) and `put(data, path)` (path relative to the host's home).
"""
from __future__ import annotations

import hashlib
import io
import os
import secrets
import shlex
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

from orchestrator.errors import SessionError

AGENT_DIR = Path(__file__).resolve().parent.parent / "agent"
BASE = ".plotfleet"                 # under the login user's home
MIN_PYTHON = (3, 8)

# Runs on the host with its own interpreter (3.8+): unpack, mark, rename.
INSTALL_PY = r"""
import os, shutil, sys, tarfile, tempfile
archive, target, version = sys.argv[1:4]
tmp = tempfile.mkdtemp(prefix=".unpack-", dir=".")
try:
    with tarfile.open(archive) as t:
        kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        t.extractall(tmp, **kw)
    with open(os.path.join(tmp, "VERSION"), "w") as f:
        f.write(version + "\n")
    open(os.path.join(tmp, ".ok"), "w").close()
    try:
        os.rename(tmp, target)
    except OSError:
        if not os.path.exists(os.path.join(target, ".ok")):
            raise                   # not a concurrent deploy of the same thing
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
    vendor: bool                    # serve with vendor/ on PYTHONPATH
    python_version: str


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


def vendor_files(prefix: str = "") -> Dict[str, bytes]:
    """The controller's installed psutil package, as files under `prefix`psutil/."""
    import psutil
    root = Path(psutil.__file__).parent
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts and "tests" not in p.parts:
            out[prefix + "psutil/" + p.relative_to(root).as_posix()] = p.read_bytes()
    out[prefix + ".ok"] = b""       # vendor/.ok: this vendor folder is complete
    return out


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


def _probe(runner, bundle: Bundle, python: str, timeout: float) -> dict:
    name = f"agent-{bundle.hash}"
    py = python_argv(python)
    check = 'import sys; print("python=%d.%d.%d" % sys.version_info[:3]); import psutil; print("psutil=1")'
    cmd = (f"mkdir -p ~/{BASE} && cd ~/{BASE} && echo home=$HOME; "
           f"test -f {name}/.ok && echo agent=1; "
           f"test -f {name}/vendor/.ok && echo vendor=1; "
           f"{py} -c {shlex.quote(check)} 2>/dev/null; true")
    rc, out, err = runner.run(cmd, timeout)
    facts = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    if rc != 0 or "home" not in facts:
        raise SessionError(f"deploy: cannot prepare ~/{BASE}: {(err or out).strip()[-200:]}")
    if "python" not in facts:
        raise SessionError(f"deploy: python interpreter {python!r} not found on host")
    version = tuple(int(x) for x in facts["python"].split("."))
    if version[:2] < MIN_PYTHON:
        raise SessionError(f"deploy: {python} is Python {facts['python']}, agent needs 3.8+")
    return facts


def _install(runner, files: Dict[str, bytes], target: str, version: str,
             python: str, timeout: float):
    upload = f"upload-{secrets.token_hex(6)}.tar.gz"
    runner.put(pack(files), f"{BASE}/{upload}")
    cmd = (f"cd ~/{BASE} && {python_argv(python)} -c {shlex.quote(INSTALL_PY)} "
           f"{upload} {shlex.quote(target)} {version}")
    rc, out, err = runner.run(cmd, timeout)
    if rc != 0:
        last = (err or out).strip().splitlines()[-1:] or ["exit %d" % rc]
        raise SessionError(f"deploy: unpacking agent failed: {last[0]}")


def deploy(runner, python: str = "python3", bundle: Optional[Bundle] = None,
           timeout: float = 60.0) -> Deployed:
    bundle = bundle or agent_bundle()
    name = f"agent-{bundle.hash}"
    facts = _probe(runner, bundle, python, timeout)
    need_vendor = "psutil" not in facts
    uploaded = False
    if "agent" not in facts:
        files = dict(bundle.files)
        if need_vendor:
            files.update(vendor_files("vendor/"))
        _install(runner, files, name, bundle.hash, python, timeout)
        uploaded = True
    elif need_vendor and "vendor" not in facts:
        _install(runner, vendor_files(), f"{name}/vendor", bundle.hash, python, timeout)
        uploaded = True
    return Deployed(bundle.hash, f"{facts['home']}/{BASE}/{name}", uploaded,
                    need_vendor, facts["python"])


def serve_command(d: Deployed, python: str) -> str:
    """The shell command that runs the agent in the foreground on the host."""
    env = "PYTHONUNBUFFERED=1 "
    if d.vendor:
        env += f"PYTHONPATH={shlex.quote(d.dir + '/vendor')} "
    return f"cd {shlex.quote(d.dir)} && {env}exec {python_argv(python)} -m agent serve"
