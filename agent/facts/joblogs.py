"""The logs plot jobs wrote: started by an agent here, or seen as a live
job's log.  A file in log_dir that is neither and in which no plotter
speaks is not a job (failures.py), so never a failed one.

One record per machine in the state dir, shared by every agent and
controller, as the other records are (statefile.py).
"""
import os

from .. import statefile

NAME = "job-logs.json"
KEEP = 20000            # the newest logs kept: years of jobs


class _Cache:
    stamp = None
    paths = {}


def _load():
    try:
        st = os.stat(statefile.path(NAME))
        stamp = (st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = None
    if stamp != _Cache.stamp:
        _Cache.paths, _Cache.stamp = statefile.load(NAME) if stamp else {}, stamp
    return _Cache.paths


def wrote(path):
    """Did a plot job write the log at `path`?"""
    return path in _load()


def remember(paths, now):
    """Note logs plot jobs write (a no-op for the ones already noted)."""
    known = _load()
    new = [p for p in paths if p and p not in known]
    if not new:
        return
    rec = dict(known)
    rec.update((p, now) for p in new)
    if len(rec) > KEEP:
        rec = dict(sorted(rec.items(), key=lambda kv: kv[1])[-KEEP:])
    statefile.save(NAME, rec)
    _Cache.paths, _Cache.stamp = rec, None
