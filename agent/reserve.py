"""Drive claims on a harvester: one transfer into a drive at a time, even when
two controllers decide at once.

The controller claims the target drive here before the plotter starts its
rsync.  A claim is taken under the host lock and refused while another plot's
claim is alive, or another plot's partial is still growing on that drive.  A
claim lives CLAIM_S after it was taken and then for as long as its partial
keeps growing; it ends when the plot arrives under its final name.  Nothing
needs releasing: a controller killed mid-pass leaves a claim that simply
expires.
"""
import json
import os
import time

from . import disks
from .actions import ActionError, check_inside, host_lock
from .snapshot import state_dir

CLAIM_S = 120.0


def _path():
    return os.path.join(state_dir(), "drive-claims.json")


def _load():
    try:
        with open(_path()) as f:
            claims = json.load(f)
        return claims if isinstance(claims, dict) else {}
    except (OSError, ValueError):
        return {}


def _save(claims):
    tmp = _path() + ".tmp"
    with open(tmp, "w") as f:
        json.dump(claims, f)
    os.replace(tmp, _path())


def _growing(path, now):
    try:
        return now - os.stat(path).st_mtime < CLAIM_S
    except OSError:
        return False


def _alive(claim, now):
    final = os.path.join(claim["dir"], claim["plot"])
    if os.path.exists(final):
        return False                       # arrived: the drive is free again
    partial = final + disks.PARTIAL_SUFFIX
    return now - claim["at"] < CLAIM_S or _growing(partial, now)


def reserve_drive(agent, config, to_dir, plot, size_bytes, reserve_bytes=0, **_):
    farm = disks.dirs_of(config, "farm")
    target = check_inside(to_dir, farm)
    plot = os.path.basename(plot)
    try:
        dev = os.stat(target).st_dev
    except OSError as e:
        raise ActionError("%s: %s" % (target, e.strerror))
    unmounted = disks.unmounted_farm(target, config)
    if unmounted:
        raise ActionError("%s: %s" % (target, unmounted))
    same_drive = [d for d in dict.fromkeys(farm) if _device(d) == dev]
    # one machine may serve several inventory hosts (tests): a drive is the
    # device as seen through this host's farm dirs
    key = "%d:%s" % (dev, ",".join(sorted(same_drive)))
    now = time.time()
    with host_lock():
        claims = {k: c for k, c in _load().items() if _alive(c, now)}
        claim = claims.get(key)
        if claim and claim["plot"] != plot:
            raise ActionError("drive busy: %s is on its way to %s" % (claim["plot"], claim["dir"]))
        have = 0
        for d in same_drive:
            for path, final, size, mtime in disks.partials_in(d):
                if final == plot:
                    have = max(have, size)
                elif now - mtime < CLAIM_S:
                    raise ActionError("drive busy: %s is still arriving in %s" % (final, d))
        vfs = os.statvfs(target)
        free = vfs.f_bavail * vfs.f_frsize
        need = int(size_bytes) - have + int(reserve_bytes or 0)
        if free < need:
            raise ActionError("no room on %s: %d bytes free, %d needed" % (target, free, need))
        claims[key] = {"plot": plot, "dir": target, "at": now}
        _save(claims)
    return {"drive": key}


def _device(path):
    try:
        return os.stat(path).st_dev
    except OSError:
        return None
