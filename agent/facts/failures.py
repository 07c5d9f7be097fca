"""Failed jobs, read from the host's own logs.

A job log (in log_dir) whose plot never finished is a dead (failed) job
once nothing is still writing it: no live job has it as its log, no process
holds it open (whatever the job's stdout is: a file, a pipe through `tee`, a
terminal), no live job plots the same plot id, and no process holds one of
that plot id's temp files.  Its error is the log's own last error line.

"In a row" is the plotter's most recent jobs by start time as its logs show
them: failures are counted from the newest log back to the newest finished
plot, skipping jobs still running and jobs `plotfleet kill` ended, and
stopping at the operator's reset (`plotfleet reset HOST`), a marker in the
agent's state dir.  Nothing is remembered in the controller: a restarted or
second controller reads the same count.
"""
import hashlib
import os

from . import joblogs
from .. import statefile
from .logparse import LogTail
from ..vocab import lognames
from ..vocab.logread import analyze_log

HEAD = 16 << 10         # every plotter names its plot id within this


def reset_path(state_dir, log_dir):
    """The reset marker of the plotter whose (resolved) log dir this is:
    hosts sharing a machine share the state dir, never a log dir."""
    key = hashlib.sha256(log_dir.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return os.path.join(state_dir, "failures", key + ".reset")


def read_reset(state_dir, log_dir):
    """When failures were last reset (epoch seconds), 0.0 if never."""
    try:
        with open(reset_path(state_dir, log_dir)) as f:
            return float(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0.0


def write_reset(state_dir, log_dir, now):
    path = reset_path(state_dir, log_dir)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    statefile.write_text(path, "%.6f\n" % now)
    return now


def _analyse(path, limit):
    try:
        with open(path, "rb") as f:
            text = f.read(limit)
    except OSError:
        return None
    return analyze_log(text, lognames.plotter_of(path))


class LogBook:
    """What each job log in log_dir says, read incrementally: a log is read
    once, from where the last request stopped (a huge one across requests,
    each stopping at its deadline), and old logs only their head.

    A log tells of a job when a plotter speaks in it (its banner or its
    markers), or when a plot job wrote it (joblogs: started by an agent, or
    seen as a live job's log): any other file in log_dir is not a job, so
    never a failed one.  A log not read to its end yet says nothing yet
    (`pending`)."""

    def __init__(self):
        self.tails = {}      # path -> LogTail
        self.heads = {}      # path -> ((size, mtime), plot id or None)
        self.pending = set()     # logs not read to their end at the last look

    def info(self, path, stamp):
        tail = self.tails.get(path)
        if tail is None:
            tail = self.tails[path] = LogTail(path, lognames.plotter_of(path))
        tail.poll()
        if not tail.complete:
            self.pending.add(path)
            return None
        self.pending.discard(path)
        st = tail.state
        if st.plotter is None or not (st.spoken or joblogs.wrote(path)):
            return None
        return st.summary()

    def plot_id(self, path, stamp):
        """The plot id a log names, reading only its head when not read yet."""
        tail = self.tails.get(path)
        if tail is not None and tail.complete and tail.size == stamp[0]:
            return tail.plot_id
        hit = self.heads.get(path)
        if hit is None or hit[0] != stamp:
            info = _analyse(path, HEAD)
            hit = (stamp, info["plot_id"] if info else None)
            self.heads[path] = hit
        return hit[1]

    def prune(self, log_dir, seen):
        for cache in (self.tails, self.heads):
            for p in list(cache):
                if p not in seen and p.startswith(log_dir + os.sep):
                    del cache[p]
        self.pending &= set(self.tails)


class Record:
    """One log in log_dir: when its job started and last wrote; what it says
    is read on demand."""
    __slots__ = ("path", "stamp", "started", "ended", "book")

    def __init__(self, path, stamp, started, ended, book):
        self.path, self.stamp, self.started, self.ended = path, stamp, started, ended
        self.book = book

    @property
    def info(self):
        """The log's summary, or None when it is no job log (no plotter
        speaks in it and its name is not a plotfleet job log's)."""
        return self.book.info(self.path, self.stamp)


def records(log_dir, entries, book):
    """Records of the logs among `entries` (os.DirEntry of log_dir), newest
    start first: the start a plotfleet log name tells, else its mtime."""
    out, seen = [], set()
    for e in entries:
        path = os.path.join(log_dir, e.name)
        seen.add(path)
        try:
            st = e.stat()
        except OSError:
            continue
        started = lognames.started_at(e.name) or st.st_mtime
        out.append(Record(path, (st.st_size, st.st_mtime), started, st.st_mtime, book))
    book.prune(log_dir, seen)
    out.sort(key=lambda r: r.started, reverse=True)
    return out


class Live:
    """What is still running on the host: jobs' logs and plot ids, files some
    process holds open (a lazy Held), and each plot id's temp files."""

    def __init__(self, logs, ids, held, by_id):
        self.logs, self.ids, self.held, self.by_id = logs, ids, held, by_id

    def runs(self, rec, info):
        """Is something still writing this job's log, plotting its plot or
        holding one of its temp files?"""
        pid = info["plot_id"]
        if rec.path in self.logs or (pid is not None and pid in self.ids):
            return True
        return rec.path in self.held or (pid is not None and any(
            f in self.held for f in self.by_id.get(pid, (0, []))[1]))


def dead_jobs(recs, live, keep_s, now):
    """The snapshot's `dead` entries (fields as DESIGN.md, and more): a dead
    job is listed while it has temp files left, and keep_s after it ended."""
    out = []
    for r in recs:
        if r.path in live.logs:
            continue
        if now - r.ended > keep_s and (
                not live.by_id or r.book.plot_id(r.path, r.stamp) not in live.by_id):
            continue            # old, and nothing of it left: history only
        info = r.info
        # cheap checks first: the process table is walked only for candidates
        if info is None or info["finished"] or live.runs(r, info):
            continue
        pid = info["plot_id"]
        tmp_bytes, files = live.by_id.get(pid, (0, [])) if pid else (0, [])
        changed = 0.0
        for f in files:
            try:
                changed = max(changed, os.stat(f).st_mtime)
            except OSError:
                pass
        out.append({
            "plot_id": pid, "log_file": r.path,
            "phase": list(info["phase"]) if info["lines"] else None,
            "ended_at": r.ended, "started_at": r.started, "error": info["error"],
            "killed": info["killed"], "plotter": info["plotter"], "k": info["k"] or 0,
            "tmp_dir": info["tmp_dir"], "tmp2_dir": info["tmp2_dir"],
            "tmp_files": sorted(files), "tmp_bytes": tmp_bytes, "changed_at": changed,
        })
    return out


def finished_jobs(recs, live, keep_s, now):
    """The snapshot's `finished` entries: each job log that finished its plot
    within keep_s, with the plot id it names, so a controller that started
    the job and missed its end between two polls still knows its plot."""
    out = []
    for r in recs:
        if r.path in live.logs or now - r.ended > keep_s:
            continue
        info = r.info
        if info is not None and info["finished"] and info["plot_id"]:
            out.append({"log_file": r.path, "plot_id": info["plot_id"], "ended_at": r.ended})
    return out


def failure_run(recs, live, reset_at, device=None, quarantined=None):
    """{"count", "last_error", "last_at", "last_log", "reset_at", "quarantined"}:
    the failed jobs in a row, newest first, back to the newest finished plot
    that is not in quarantine (`device`: of the jobs pinned to that GPU only,
    their log names say which; `quarantined`: plot id -> why: a plot that
    failed its proof check is a failure of the job that made it).  A
    multi-plot log counts by its last plot."""
    quarantined = quarantined or {}
    count, bad, last = 0, 0, None
    for r in recs:
        if r.started <= reset_at:
            break
        if device is not None and lognames.device_of(r.path) != device:
            continue
        if r.path in live.logs:
            continue
        info = r.info
        if info is None or info["killed"]:
            continue
        reason = quarantined.get(info["plot_id"]) if info["finished"] else None
        if info["finished"] and reason is None:
            break
        if reason is None and live.runs(r, info):
            continue
        count += 1
        bad += 1 if reason is not None else 0
        if last is None:
            last = (r, dict(info, error="plot quarantined: %s" % reason) if reason else info)
    return {"count": count, "last_error": last[1]["error"] if last else None,
            "last_at": last[0].ended if last else 0.0,
            "last_log": last[0].path if last else None, "reset_at": reset_at,
            "quarantined": bad}
