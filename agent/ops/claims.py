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
import os
import time
from typing import Optional

from ..facts import disks

from ..facts import drive_health

from .. import statefile
from .common import ActionError, check_inside, host_lock
from ..facts.probe import probe_one
from ..protocol import op
from ..vocab import wire
from ..vocab.wire import ErrorCode

CLAIM_S = 120.0


NAME = "drive-claims.json"


def _growing(path, now):
    try:
        return now - os.stat(path).st_mtime < CLAIM_S
    except OSError:
        return False


def _alive(claim, now, farm=()):
    final = os.path.join(claim["dir"], claim["plot"])
    dirs = [d for d in (claim["dir"],) + tuple(farm) if disks.responsive(d)]
    if not disks.responsive(claim["dir"]):
        return False                       # its drive is not responding: nothing arrives there
    if any(os.path.exists(os.path.join(d, claim["plot"])) for d in dirs):
        return False                       # arrived (here or elsewhere): the drive is free again
    partial = final + disks.PARTIAL_SUFFIX
    return now - claim["at"] < CLAIM_S or _growing(partial, now)


@op(wire.ReserveDriveReply)
def reserve_drive(agent, config: wire.Config, to_dir: str, plot: str, size_bytes: int,
                  reserve_bytes: Optional[int] = 0):
    """Claim the drive of `to_dir` for `plot`: refused (code "drive_error")
    when the dir cannot take files, ("exists") when a file already holds the
    plot's final name there (the controller then compares it), ("busy") while
    another plot is on its way, ("no_room") without room."""
    farm = disks.dirs_of(config, "farm")
    target = check_inside(to_dir, farm)
    plot = os.path.basename(plot)
    # every farm dir afresh, each within dir_timeout_s: a dead mount among
    # them must not hang the claim (nor the ones below, which then skip it)
    probes = agent.probe_dirs(config)
    probed = probes.get(os.path.normpath(os.path.expanduser(to_dir))) or next(
        (p for p in probes.values() if p["real"] == target), None) or probe_one(target)
    why = probed["error"] or disks.unmounted_farm(probed["st_dev"], config)
    if why:
        raise ActionError("%s: %s" % (target, why), code=ErrorCode.DRIVE_ERROR)
    dev = probed["st_dev"]
    if os.path.lexists(os.path.join(target, plot)):
        raise ActionError("%s already holds %s" % (target, plot), code=ErrorCode.EXISTS)
    same_drive = disks.farm_dirs_on(config, dev)
    # one machine may serve several inventory hosts (tests): a drive is the
    # device as seen through this host's farm dirs
    key = "%d:%s" % (dev, ",".join(sorted(same_drive)))
    now = time.time()
    with host_lock():
        claims = {k: c for k, c in statefile.load(NAME).items() if _alive(c, now, farm)}
        claim = claims.get(key)
        if claim and claim["plot"] != plot:
            raise ActionError("drive busy: %s is on its way to %s" % (claim["plot"], claim["dir"]),
                              code=ErrorCode.BUSY)
        have = 0
        for d in same_drive:
            for path, final, size, mtime in disks.partials_in(d):
                if final == plot:
                    have = max(have, size)
                elif now - mtime < CLAIM_S:
                    raise ActionError("drive busy: %s is still arriving in %s" % (final, d),
                                      code=ErrorCode.BUSY)
        vfs = os.statvfs(target)
        free = vfs.f_bavail * vfs.f_frsize
        need = int(size_bytes) - have + int(reserve_bytes or 0)
        if free < need:
            raise ActionError("no room on %s: %d bytes free, %d needed" % (target, free, need),
                              code=ErrorCode.NO_ROOM)
        claims[key] = {"plot": plot, "dir": target, "at": now}
        statefile.save(NAME, claims)
    return {"drive": key}




@op(wire.NoteDriveFailureReply)
def note_drive_failure(agent, config: wire.Config, to_dir: str, key: str, at: float, error: str,
                       fatal: Optional[bool] = False, plot: Optional[str] = None):
    """A transfer into this farm dir failed by the drive's fault (the
    plotter's rsync said so): keep it in the drive's record, and end that
    plot's claim on the drive (its transfer is over)."""
    farm = disks.dirs_of(config, "farm")
    real = check_inside(to_dir, farm)
    if real not in farm:
        raise ActionError("not a farm dir: %s" % to_dir)
    if not isinstance(key, str) or not key:
        raise ActionError("bad failure key: %r" % (key,), code=ErrorCode.BAD_REQUEST)
    with host_lock():
        added = drive_health.record_failure(real, key, float(at), error, bool(fatal))
        if plot:
            name = os.path.basename(plot)
            claims = statefile.load(NAME)
            left = {k: c for k, c in claims.items()
                    if not (c.get("plot") == name and c.get("dir") == real)}
            if len(left) != len(claims):
                statefile.save(NAME, left)
    return {"recorded": added}
