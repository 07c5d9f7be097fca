"""Proof checks and the quarantine, as the host sees them.

A check's record (agent/launch/check.py writes it) lives in
~/.plotfleet/checks/, one per plot path; it belongs to that file only while
the file keeps the size and mtime it was checked at (a plot made again
under the same name is checked again).  A check whose runner died while
"running" reads "interrupted", and is started again.

The quarantine is `<dst>/quarantine/`: a plot that failed its check waits
there, never archived, never deleted by plotfleet, with `<plot>.json`
beside it saying why (its own record, so the reason survives the state
dir).  Only the farmer's `plotfleet release` moves it on.
"""
import hashlib
import json
import os

import psutil

from . import disks
from .procs import runner_alive
from .. import statefile
from ..statefile import state_dir
from ..vocab import wire

QUARANTINE = "quarantine"
GIVE_UP = 3         # checks of one plot that ended without a result: it fails


def checks_dir():
    return os.path.join(state_dir(), "checks")


def _tag(path):
    return hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def passed_path(dir_real):
    """When the newest plot that passed its check in this dir was made."""
    return os.path.join(checks_dir(), "passed.%s" % _tag(dir_real))


def note_passed(plot_path, mtime):
    """A plot of this dir passed: bad plots before it are no longer "in a row"."""
    path = passed_path(os.path.dirname(disks.expand(plot_path)))
    if mtime <= last_passed([os.path.dirname(disks.expand(plot_path))]):
        return
    statefile.write_text(path, "%.6f\n" % mtime)


def last_passed(dirs_real):
    best = 0.0
    for d in dirs_real:
        try:
            with open(passed_path(d)) as f:
                best = max(best, float(f.read().strip() or 0))
        except (OSError, ValueError):
            pass
    return best


def bad_in_row(quarantine, dst_real, reset_at):
    """(how many, the newest) of the quarantined plots made after the newest
    plot that passed in these dst dirs (and after the operator's reset): an
    endless job's bad plots in a row, which its log alone cannot tell."""
    since = max(last_passed(dst_real), reset_at)
    bad = sorted((q for q in quarantine if q["mtime"] > since), key=lambda q: -q["mtime"])
    return len(bad), (bad[0] if bad else None)


HISTORY_MAX = 4 << 20      # the history file is halved past this


def history_path():
    return os.path.join(checks_dir(), "history.jsonl")


def add_history(rec):
    """One finished check, appended: what `analyze` reports per plotter,
    device and level after the plot itself is long archived."""
    path = history_path()
    line = json.dumps(rec) + "\n"
    try:
        if os.path.getsize(path) > HISTORY_MAX:     # keep the newer half
            with open(path) as f:
                lines = f.readlines()
            tmp = path + ".%d.tmp" % os.getpid()
            with open(tmp, "w") as f:
                f.writelines(lines[len(lines) // 2:])
            os.replace(tmp, path)
    except OSError:
        pass
    with open(path, "a") as f:
        f.write(line)


def history(dirs_real):
    """The finished checks of plots in `dirs_real` (or their quarantine)."""
    out = []
    try:
        with open(history_path()) as f:
            lines = f.readlines()
    except OSError:
        return out
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue        # a line cut by a crash
        d = os.path.dirname(rec.get("plot") or "")
        if os.path.basename(d) == QUARANTINE:
            d = os.path.dirname(d)
        if isinstance(rec, dict) and d in dirs_real:
            out.append(rec)
    return out


def record_path(plot_path):
    """The record of the check of the file at `plot_path` (a plot's name and
    a hash of its dir: its copy on a farm drive has a record of its own)."""
    real = disks.expand(plot_path)
    return os.path.join(checks_dir(), "%s.%s.json" % (os.path.basename(real),
                                                      _tag(os.path.dirname(real))))


def quarantine_dir(dst_dir):
    return os.path.join(disks.expand(dst_dir), QUARANTINE)


def public(rec):
    """A record as the snapshot carries it."""
    keys = ("status", "method", "ratio", "proofs", "challenges", "error", "seconds",
            "bytes_read", "reads", "cpu_seconds", "started_at", "finished_at", "pid")
    return {k: rec.get(k) for k in keys}


def read(plot_path, size=None, mtime=None):
    """The check record of this file as it is now, or None (never checked,
    or checked as another file of that name)."""
    rec = statefile.read(record_path(plot_path))
    if rec is None or disks.expand(rec.get("plot") or "") != disks.expand(plot_path):
        return None
    if size is not None and rec.get("size_bytes") not in (None, size):
        return None
    if mtime is not None and rec.get("mtime") is not None and abs(rec["mtime"] - mtime) > 1e-3:
        return None
    if rec.get("status") == "running" and not runner_alive(rec.get("pid"), rec.get("started_at", 0)):
        rec = statefile.read(record_path(plot_path)) or rec     # it may just have ended
        if rec.get("status") == "running" and (rec.get("attempts") or 1) >= GIVE_UP:
            # a plot that kills the prover every time must not be checked for
            # ever (nor archived): it fails, the farmer may release it
            rec = dict(rec, status="failed", error="its check ended without a result %d times "
                                                   "(the prover died on this plot?)" % GIVE_UP)
        elif rec.get("status") == "running":
            rec = dict(rec, status="interrupted", error="the check ended without a result")
    return rec


def may_go(plot_path):
    """May the plot at `plot_path`, as it is now, be copied to a farm drive?
    "go" (its check lets it: wire.CHECK_LETS_GO), "wait" (its check runs),
    or "no": it failed, its check ended without a result, or there is no
    check of this file (never made, made of another file of that name, or
    the plot is gone)."""
    try:
        st = os.stat(plot_path)
    except OSError:
        return "no"
    status = (read(plot_path, st.st_size, st.st_mtime) or {}).get("status")
    if status in wire.CHECK_LETS_GO:
        return "go"
    return "wait" if status == "running" else "no"


def runners_dir():
    return os.path.join(checks_dir(), "runners")


def note_runner(pid, started_at, plots):
    """A check runner and the plots it was given: what `running` reads, so a
    snapshot loads the records of the checks at work, not of every plot
    ever checked (a farm checked by `plotfleet check` leaves thousands)."""
    os.makedirs(runners_dir(), exist_ok=True)
    path = os.path.join(runners_dir(), "%d.json" % pid)
    statefile.write(path, {"pid": pid, "started_at": started_at, "plots": plots})


def running(dirs):
    """Records of checks running on plots under `dirs` (expanded)."""
    out = []
    try:
        names = sorted(n for n in os.listdir(runners_dir()) if n.endswith(".json"))
    except OSError:
        return out
    for n in names:
        marker = statefile.read(os.path.join(runners_dir(), n)) or {}
        if not runner_alive(marker.get("pid"), marker.get("started_at", 0)):
            try:                        # its records read "interrupted" (read)
                os.remove(os.path.join(runners_dir(), n))
            except OSError:
                pass
            continue
        for p in marker.get("plots") or ():
            rec = statefile.read(record_path(p))
            if not rec or rec.get("status") != "running" or not rec.get("plot"):
                continue
            if disks.inside(rec["plot"], dirs) and \
                    runner_alive(rec.get("pid"), rec.get("started_at", 0)):
                out.append(rec)
    return out


def prune():
    """Forget the records of files gone since their check (a farm plot
    replaced or moved), but never one of a check at work.  Read in full:
    for `plotfleet check`'s start, not for every snapshot."""
    try:
        names = [n for n in os.listdir(checks_dir()) if n.endswith(".json")]
    except OSError:
        return 0
    gone = 0
    for n in names:
        path = os.path.join(checks_dir(), n)
        rec = statefile.read(path)
        if not rec or not rec.get("plot") or os.path.lexists(rec["plot"]):
            continue
        if rec.get("status") == "running" and runner_alive(rec.get("pid"),
                                                           rec.get("started_at", 0)):
            continue
        for extra in (path, path[:-5] + ".log"):
            try:
                os.remove(extra)
            except OSError:
                pass
        gone += 1
    return gone


def quarantined(dst_dirs):
    """Plots waiting in the quarantine of each dst dir, each with why."""
    out = []
    for raw in dst_dirs:
        q = quarantine_dir(raw)
        for p in disks.plots_in(q):
            why = statefile.read(p["path"] + ".json") or {}
            p.update(dst_dir=raw, reason=why.get("reason") or "no reason recorded",
                     ratio=why.get("ratio"), method=why.get("method"),
                     quarantined_at=why.get("at") or p["mtime"])
            out.append(p)
    return out
