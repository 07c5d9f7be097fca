"""What a plot-all pass would act on, as a set that grows when there is news.

Items: a finished plot in a dst dir (unchanged for QUIET_S), a proof check
of one that ended, a transfer that ended (copied or failed).  The snapshot
keeps the set as it was when it began (`Agent.news_base`); the `news` op
(ops/news.py) waits until the set holds an item the base did not, so the
controller's next pass comes at once instead of at the next polling_time_s.
Only additions are news: what a pass itself does (a source removed, a plot
quarantined, a transfer or a check started) never wakes it again.
"""
import os
import time

from ..vocab import names
from . import checks, disks
from .. import statefile
from ..statefile import transfers_dir

QUIET_S = 0.5       # a plot file unchanged this long is written (one written in place keeps changing)
_ENDED = ("running", "queued")      # transfer and check states that are not news


class Watch:
    """Reads the items cheaply: records are parsed again only when they change."""

    def __init__(self):
        self._records = {}      # record path -> (mtime_ns, status)

    def _status(self, path):
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            return None
        seen = self._records.get(path)
        if seen is None or seen[0] != mtime:
            rec = statefile.read(path) or {}
            if len(self._records) > 10000:
                self._records.clear()
            seen = self._records[path] = (mtime, rec.get("status"))
        return seen[1]

    def items(self, config):
        now = time.time()
        out = set()
        for spelled in (config or {}).get("dst_dirs") or ():
            # only dst dirs are resolved here (config_dirs would resolve them
            # all, a hung farm mount too); a dir the last probe found not
            # responding is left to the snapshot's probe
            if not disks.responsive(spelled):
                continue
            d = disks.expand(spelled)
            try:
                entries = list(os.scandir(d))
            except OSError:
                continue
            for e in entries:
                if not names.is_moved(e.name):
                    continue
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                if now - st.st_mtime < QUIET_S:
                    continue
                out.add("plot " + e.path)
                status = self._status(checks.record_path(e.path))
                if status and status not in _ENDED:
                    out.add("check %s %s" % (status, e.path))
        try:
            records = [n for n in os.listdir(transfers_dir()) if n.endswith(".json")]
        except OSError:
            records = []
        for n in records:
            status = self._status(os.path.join(transfers_dir(), n))
            if status and status not in _ENDED:
                out.add("transfer %s %s" % (status, n))
        return frozenset(out)
