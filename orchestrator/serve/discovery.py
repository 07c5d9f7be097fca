"""Where a running controller with --serve says it can be reached.

One small JSON file per (inventory file, --limit), in the controller's
state dir (~/.plotfleet/serve/), written when the server listens and
removed when it stops.  A file whose pid is gone is stale (a controller
killed with SIGKILL) and ignored.  Standard library only: `status` reads it
before anything heavy is imported.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
from typing import Optional

DIR = os.path.join("~", ".plotfleet", "serve")
MAX_BYTES = 64 * 1024       # what write() puts there is a few hundred bytes


def inventory_key(inventory_path: str, limit: Optional[str]) -> str:
    """The same inventory means the same file (resolved) and the same --limit."""
    real = os.path.realpath(inventory_path)
    return hashlib.sha256(f"{real}\0{limit or ''}".encode()).hexdigest()[:16]


def path_for(inventory_path: str, limit: Optional[str]) -> str:
    return os.path.join(os.path.expanduser(DIR), inventory_key(inventory_path, limit) + ".json")


def write(inventory_path: str, limit: Optional[str], info: dict) -> str:
    """Atomically, readable by this user only (it may hold the token)."""
    path = path_for(inventory_path, limit)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(dict(info, inventory=os.path.realpath(inventory_path), limit=limit or ""), f)
    os.replace(tmp, path)
    return path


def remove(path: str) -> None:
    """Only our own: a newer controller of the same inventory may have replaced it."""
    try:
        with open(path) as f:
            if json.load(f).get("pid") != os.getpid():
                return
        os.unlink(path)
    except (OSError, ValueError):
        pass


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except PermissionError:
        return True
    except (OSError, TypeError, ValueError):
        return False
    return True


def _read(path: str):
    """The file's JSON, from a small regular file only: a FIFO or a link to
    /dev/zero put in its place is not waited on."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_BYTES:
            return None
        return json.loads(os.read(fd, MAX_BYTES))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


def find(inventory_path: str, limit: Optional[str]) -> Optional[dict]:
    """The running controller of this inventory and limit, or None."""
    info = _read(path_for(inventory_path, limit))
    if not isinstance(info, dict) or not _alive(info.get("pid")):
        return None
    if info.get("inventory") != os.path.realpath(inventory_path) \
            or info.get("limit") != (limit or ""):
        return None
    port, token = info.get("port"), info.get("token")
    if not isinstance(info.get("host"), str) or type(port) is not int or not 0 < port < 65536 \
            or not isinstance(token, (str, type(None))):
        return None                 # not what write() wrote
    return info
