"""Proof checks: start the detached check of a plot (agent/launch/check.py),
move a plot that failed it into its dst dir's quarantine, and release a
quarantined plot on the farmer's own command (back to be archived, or
deleted).  plotfleet never deletes a quarantined plot by itself: only
`release` with delete=True, which only the `plotfleet release --delete`
command sends."""
import json
import os
import random
import sys
import time

from typing import Optional

from ..facts import checks, disks, plotfile
from .. import statefile
from ..launch.check import write_record
from ..protocol import op
from ..vocab import names, wire
from ..vocab.wire import ErrorCode
from .common import ActionError, _agent_env, _spawn, check_inside, host_lock

CHECK_KEYS = frozenset(("challenges", "min_ratio", "challenges_v2", "command"))


def _a_plot(path):
    if names.parse(os.path.basename(path)) is None or not os.path.isfile(path):
        raise ActionError("no such plot: %s" % path, code=ErrorCode.VANISHED)
    return path


def _settings(settings):
    settings = dict(settings or {})
    unknown = sorted(set(settings) - CHECK_KEYS)
    if unknown:
        raise ActionError("check settings have unknown keys: %s" % ", ".join(unknown),
                          code=ErrorCode.BAD_REQUEST)
    return settings


def _launch(agent, config, paths, settings, max_running):
    """Spawn one runner checking `paths` in turn, under the host lock: at
    most `max_running` runners under this host's dirs, one per plot."""
    os.makedirs(checks.checks_dir(), exist_ok=True)
    runner_log = checks.record_path(paths[0])[:-5] + ".log"
    with host_lock():
        busy = checks.running(disks.dirs_of(config, "dst", "farm"))
        if any(disks.expand(r["plot"]) in paths for r in busy):
            raise ActionError("check of %s already running" % paths[0], code=ErrorCode.EXISTS)
        runners = {r.get("pid") for r in busy}
        if len(runners) >= max(1, int(max_running)):
            raise ActionError("%d checks running already (at most %d)"
                              % (len(runners), max_running), code=ErrorCode.BUSY)
        try:
            os.remove(runner_log)       # an earlier attempt's
        except OSError:
            pass
        started = time.time()
        attempts = {}
        for p in paths:         # a check that died before is tried again, a few times
            prev = checks.read(p)
            attempts[p] = ((prev.get("attempts") or 1) + 1
                           if prev and prev.get("status") == "interrupted" else 1)
        spec = dict(settings, plots=paths, attempts=attempts)
        proc = _spawn([sys.executable, "-m", "agent", "check", json.dumps(spec)], runner_log,
                      _agent_env())
        agent.children.append(proc)
        checks.note_runner(proc.pid, started, paths)
        for p in paths:         # visible at once: queued behind the first
            write_record(p, status="running", pid=proc.pid, started_at=started,
                         attempts=attempts[p])
    return {"pid": proc.pid, "plots": paths}


@op(wire.CheckStartedReply)
def start_check(agent, config: wire.Config, plot: str, settings: Optional[dict] = None,
                max_running: Optional[int] = 1, more: Optional[list] = None):
    """Start the check of one plot in a dst dir, and of the plots of `more`
    after it, by one runner: at most `max_running` runners at once on this
    host."""
    dst = disks.dirs_of(config, "dst")
    paths = [_a_plot(check_inside(p, dst)) for p in [plot] + list(more or ())]
    if len(set(paths)) != len(paths):
        raise ActionError("a plot is named twice", code=ErrorCode.BAD_REQUEST)
    return _launch(agent, config, paths, _settings(settings), max_running)


@op(wire.CheckStartedReply)
def start_drive_check(agent, config: wire.Config, farm_dir: str, sample: Optional[int] = 0,
                      settings: Optional[dict] = None):
    """`plotfleet check`: check the plots of one farm dir (a random `sample`
    of them, 0: all) in one runner, at idle priority; nothing is moved.
    One at a time per host: the controller starts the next drive after."""
    real = check_inside(farm_dir, disks.dirs_of(config, "farm"))
    checks.prune()              # records of farm plots gone since (replotted, moved)
    plots = sorted(p["path"] for p in disks.plots_in(real))
    if sample and len(plots) > sample:
        plots = sorted(random.sample(plots, int(sample)))
    if not plots:
        return {"pid": None, "plots": []}
    return _launch(agent, config, plots, _settings(settings), 1)


@op(wire.ReadChecksReply)
def read_checks(agent, config: wire.Config, plots: list):
    """{path: the check record of each plot (or None)} under dst or farm dirs:
    the record of the file there now (a file made again, or put there, under
    a checked plot's name has none: its check is not the other's)."""
    dirs = disks.dirs_of(config, "dst", "farm")
    out = {}
    for p in plots:
        path = check_inside(p, dirs)
        try:
            st = os.stat(path)
        except OSError:
            out[p] = None
            continue
        rec = checks.read(path, st.st_size, st.st_mtime)
        out[p] = None if rec is None else checks.public(rec)
    return {"checks": out}


def _forget(path):
    for extra in (checks.record_path(path), checks.record_path(path)[:-5] + ".log"):
        try:
            os.remove(extra)
        except OSError:
            pass


@op(wire.CheckHistoryReply)
def check_history(agent, config: wire.Config):
    """The finished checks of this host's new plots (dst dirs), for `analyze`."""
    return {"checks": checks.history(disks.dirs_of(config, "dst"))}


@op(wire.QuarantineReply)
def quarantine_plot(agent, config: wire.Config, plot: str, reason: str):
    """Move a plot whose check failed into `<its dst>/quarantine/`, with
    `<plot>.json` beside it saying why.  Only a plot whose own check record
    failed: a controller's mistake never quarantines a good plot."""
    path = _a_plot(check_inside(plot, disks.dirs_of(config, "dst")))
    st = os.stat(path)
    rec = checks.read(path, st.st_size, st.st_mtime)
    if rec is None or rec.get("status") != "failed":
        raise ActionError("%s has no failed check: not quarantined" % path, code=ErrorCode.REFUSED)
    qdir = os.path.join(os.path.dirname(path), checks.QUARANTINE)
    dest = os.path.join(qdir, os.path.basename(path))
    with host_lock():
        os.makedirs(qdir, exist_ok=True)
        if os.path.lexists(dest):
            raise ActionError("%s is already in quarantine" % dest, code=ErrorCode.EXISTS)
        why = {"reason": reason, "ratio": rec.get("ratio"), "method": rec.get("method"),
               "error": rec.get("error"), "at": time.time(), "from": path,
               "check": checks.public(rec)}
        with open(dest + ".json.tmp", "w") as f:
            json.dump(why, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(dest + ".json.tmp", dest + ".json")
        os.rename(path, dest)           # same dir tree: a rename, the bytes stay put
        plotfile.fsync_dir(qdir)
        plotfile.fsync_dir(os.path.dirname(path))
        _forget(path)
    return {"path": dest, "reason": reason}


@op(wire.ReleaseReply)
def release_plot(agent, config: wire.Config, plot: str, delete: Optional[bool] = False):
    """The farmer's decision on a quarantined plot: back into its dst dir,
    to be archived without another check, or (delete) removed for good."""
    dsts = disks.dirs_of(config, "dst")
    path = check_inside(plot, dsts)
    if os.path.basename(os.path.dirname(path)) != checks.QUARANTINE:
        raise ActionError("not in a quarantine: %s" % path, code=ErrorCode.REFUSED)
    path = _a_plot(path)
    why = path + ".json"
    with host_lock():
        if delete:
            os.remove(path)
            for extra in (why, why + ".tmp"):
                try:
                    os.remove(extra)
                except OSError:
                    pass
            return {"removed": path}
        back = os.path.join(os.path.dirname(os.path.dirname(path)), os.path.basename(path))
        if os.path.lexists(back):
            raise ActionError("%s exists: %s left in quarantine" % (back, path), code=ErrorCode.EXISTS)
        reason = (statefile.read(why) or {}).get("reason")
        os.rename(path, back)
        os.makedirs(checks.checks_dir(), exist_ok=True)
        write_record(back, status="released", error=reason, finished_at=time.time())
        try:
            os.remove(why)
        except OSError:
            pass
    return {"path": back, "released": True}
