"""Endless jobs and full disks: a job making many plots (-n N, 0 for no end)
is suspended (SIGSTOP) while its dst (staging) dir cannot take the plot it
is making (too little room, or the drive gone or read-only), and resumed
(SIGCONT) once it can.  GPU plotters do not check for room themselves, and
a plot every few minutes fills a drive between two archive passes.

`guard_room` runs at every plot-all pass (the controller asks, before its
snapshot).  Per dst device, jobs are served furthest along first: each needs
the size of its plot (the largest finished plot of its k in that dir, else
the controller's estimate `plot_bytes`) less what it already wrote there.

The agent resumes only jobs it suspended itself: it records them (pid and
start time, the reason) in ~/.plotfleet/room-suspended.json, under the host
lock.  A job the operator suspended is not in the record and stays
suspended; an operator's suspend or resume of a job takes it out of the
record (`forget`), so the operator's word is the last.
"""
import os
import signal
import time
from typing import Optional

import psutil

from .. import statefile
from ..facts import disks
from ..facts.procs import PSUTIL_ERRORS
from .common import host_lock
from ..protocol import op
from ..vocab import wire
from ..vocab.wire import DirError

RECORD = "room-suspended.json"
# jobs suspended on the controller's decision, with why (making bad plots):
# shown like the room's, resumed only by the operator
HELD = "held-suspended.json"
# a dst in this state would lose the plot at its final copy: the job waits
# (its temp files kept) until the drive is back; not_responding is unknown
CANNOT_TAKE = (DirError.MISSING, DirError.READ_ONLY, DirError.NOT_WRITABLE, DirError.NOT_DIR,
               DirError.UNREADABLE)


def _entries(name=RECORD):
    rec = statefile.load(name)
    jobs = rec.get("jobs")
    return jobs if isinstance(jobs, list) else []


def _find(entries, pid, started_at):
    for e in entries:
        if e.get("pid") == pid and abs(float(e.get("started_at", 0)) - started_at) < 1.0:
            return e
    return None


def paused(jobs):
    """{pid: reason} of these jobs that the agent suspended for room, or held
    on the controller's word (for the snapshot: status shows why a job is
    suspended)."""
    room, held = _entries(), _entries(HELD)
    out = {}
    for j in jobs:
        e = _find(room, j["pid"], j["started_at"]) or _find(held, j["pid"], j["started_at"])
        if e is not None:
            out[j["pid"]] = e.get("reason") or "no room"
    return out


def forget(pid):
    """The operator suspended or resumed `pid`: it is no longer ours to resume."""
    with host_lock():
        for name in (RECORD, HELD):
            entries = [e for e in _entries(name) if e.get("pid") != pid]
            statefile.save(name, {"jobs": entries})


def hold(pid, started_at, reason):
    """`pid` was suspended for `reason` (not room): said in the snapshot,
    never resumed by the room guard; the operator's resume forgets it."""
    with host_lock():
        entries = [e for e in _entries(HELD) if e.get("pid") != pid]
        entries.append({"pid": pid, "started_at": started_at, "reason": reason})
        statefile.save(HELD, {"jobs": entries})


def _signal(pid, sig):
    try:
        p = psutil.Process(pid)
        family = [p] + p.children(recursive=True)
    except PSUTIL_ERRORS:
        return False
    for q in family:
        try:
            q.send_signal(sig)
        except PSUTIL_ERRORS:
            pass
    return True


def _largest_plot(real, k):
    sizes = [p["size_bytes"] for p in disks.plots_in(real) if p["k"] == k]
    return max(sizes) if sizes else 0


def _dst_of(job, dsts):
    """(configured, resolved) dst dir of a job, or None when not configured."""
    d = job.get("dst_dir")
    if not d:
        return None
    for raw, real in dsts:
        if d == raw or disks.expand(d) == real:
            return raw, real
    return None


def _needs(jobs, dsts, plot_bytes):
    """[(job, dst raw, dst real, bytes it still needs there)] of multi-plot jobs."""
    out = []
    for j in jobs:
        if j.get("count", 1) == 1:
            continue
        where = _dst_of(j, dsts)
        if where is None:
            continue
        raw, real = where
        size = _largest_plot(real, j["k"]) or int(plot_bytes or 0)
        written = 0
        if j.get("plot_id"):
            written = sum(disks.files_with_id([real], j["plot_id"]).values())
        out.append((j, raw, real, max(0, size - written)))
    return out


@op(wire.GuardRoomReply)
def guard_room(agent, config: wire.Config, plot_bytes: Optional[int] = None):
    """Suspend the multi-plot jobs whose dst cannot take their plot, resume
    the ones this agent suspended that now fit.  -> {"suspended": [..],
    "resumed": [..]}, each {pid, plot_id, dst_dir, reason}."""
    cdirs = disks.config_dirs(config)
    dsts = [(raw, real) for kind, raw, real in cdirs if kind == "dst"]
    probed = agent.probe_dirs(config)
    suspended, resumed = [], []
    with host_lock():
        jobs = agent.host_jobs(config)
        entries = [e for e in _entries() if any(
            j["pid"] == e.get("pid") and abs(j["started_at"] - float(e.get("started_at", 0))) < 1.0
            for j in jobs)]                     # gone jobs are no one's any more
        budget = {}
        wants = _needs(jobs, dsts, plot_bytes)
        # furthest along first: it is closest to writing its plot
        wants.sort(key=lambda w: tuple(w[0]["phase"] or (-1, -1)), reverse=True)
        for j, raw, real, need in wants:
            p = probed.get(os.path.normpath(os.path.expanduser(raw))) or {}
            lost = p.get("error_code") in CANNOT_TAKE
            if not lost and (p.get("error") or p.get("free_bytes") is None):
                continue                        # not responding: nothing known
            ours = _find(entries, j["pid"], j["started_at"])
            if j["state"] == "suspended" and ours is None:
                continue                        # the operator's: left alone
            what = {"pid": j["pid"], "plot_id": j.get("plot_id"), "dst_dir": raw}
            if lost:
                fits = False
                reason = "%s cannot take its plot: %s" % (raw, p["error"])
            else:
                dev = p.get("st_dev")
                free = budget.get(dev, p["free_bytes"])
                fits = free >= need
                budget[dev] = free - need if fits else free
                reason = "no room in %s: %d bytes free, its plot needs %d more" % (
                    raw, free, need)
            if not fits:
                if j["state"] == "running" and _signal(j["pid"], signal.SIGSTOP):
                    entries.append({"pid": j["pid"], "started_at": j["started_at"],
                                    "reason": reason, "at": time.time()})
                    suspended.append(dict(what, reason=reason))
                elif ours is not None:
                    ours["reason"] = reason
            elif ours is not None:
                if _signal(j["pid"], signal.SIGCONT):
                    entries.remove(ours)
                    resumed.append(dict(what, reason="%s has %d bytes free, its plot needs %d"
                                        % (raw, free, need)))
        statefile.save(RECORD, {"jobs": entries})
    _settle([w["pid"] for w in suspended], psutil.STATUS_STOPPED)
    return {"suspended": suspended, "resumed": resumed}


def _settle(pids, status, timeout=2.0):
    """Answer once the process table shows the signals landed (as jobs.suspend)."""
    end = time.time() + timeout
    for pid in pids:
        while time.time() < end:
            try:
                if psutil.Process(pid).status() == status:
                    break
            except PSUTIL_ERRORS:
                break
            time.sleep(0.01)
