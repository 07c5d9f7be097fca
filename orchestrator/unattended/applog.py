"""The application log: the controller's own history of what plot-all did.

One JSON line per event of a pass (core/events.py), with the controller's
clock (`at`, epoch seconds) and that host's clock (`host_time`: its snapshot's
clock plus the time since the gather; null when unknown), and one line per
`blocked` wait (kind "blocked") when it is new for its host and subject;
`note()` adds a line of the controller's own (a notifier's failed send).
The file is `app_log` in the inventory (all.vars), rotated by size
(`app_log_max_bytes`, `app_log_backups`: plotfleet.log.1 is the newest
backup).  Writing never stops plotting: a failed write (disk full, read-only)
is said once on stderr and the pass carries on.  `plotfleet history` reads
it back with `read()`.
"""
from __future__ import annotations

import fnmatch
import json
import logging
import logging.handlers
import os
import re
import sys
import time
from typing import Dict, List, Optional, Tuple

from orchestrator.config.controller import ControllerConfig
from orchestrator.errors import one_line

FIELDS = ("at", "host_time", "kind", "host", "subject", "detail", "failed")


class _Rotating(logging.handlers.RotatingFileHandler):
    """The stdlib's size rotation; with no backups the file is emptied at the
    limit (the stdlib would let it grow); a failure goes to the AppLog."""

    def __init__(self, path, max_bytes, backups, on_error):
        super().__init__(path, maxBytes=max_bytes, backupCount=backups,
                         encoding="utf-8", delay=True)
        self.on_error = on_error

    def doRollover(self):
        if self.backupCount > 0:
            return super().doRollover()
        if self.stream:
            self.stream.close()
            self.stream = None
        with open(self.baseFilename, "w", encoding="utf-8"):
            pass

    def handleError(self, record):
        self.on_error(sys.exc_info()[1])


class AppLog:
    """`AppLog(inv.controller)`, once per run; `record(result)` after each pass.

    Keeps, per (host, subject), what was last logged for it, so a blocked
    wait is logged when it starts or its reason changes, not every pass."""

    def __init__(self, config: ControllerConfig, stderr=None):
        self.path: Optional[str] = config.app_log
        self.stderr = stderr
        self.reported = False           # a failed write is said once
        self.failures = 0               # writes that failed
        self._last: Dict[Tuple[str, str], tuple] = {}
        self._dir_made = False
        self._handler: Optional[_Rotating] = None
        if self.path:
            self._handler = _Rotating(self.path, config.app_log_max_bytes,
                                      config.app_log_backups, self._failed)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self._handler is not None:
            try:
                self._handler.close()
            except Exception as e:      # a last flush to a full disk
                self._failed(e)
            self._handler = None

    def lines(self, result, now: Optional[float] = None) -> List[dict]:
        """The records `record()` would write for this pass (and remembers them)."""
        at = time.time() if now is None else float(now)
        state = result.state
        since = at - state.now if state.now else 0.0
        clocks = {h.name: h.host_time for h in state.hosts if h.reachable and h.host_time}
        down = {h.name for h in state.hosts if not h.reachable}

        def line(kind, host, subject, detail, failed, **facts):
            t = clocks.get(host)
            return {"at": round(at, 3), "host_time": None if t is None else round(t + since, 3),
                    "kind": kind, "host": host, "subject": subject, "detail": detail,
                    "failed": bool(failed), **facts}

        out = []
        for e in result.events:
            # the event's facts too: `history` draws the line plot-all drew
            out.append(line(**e.to_json()))
            self._last[(e.host, e.subject)] = ("event", e.kind, e.detail)
        blocked = set()
        for w in result.waits:
            if not w.blocked:
                continue
            blocked.add((w.host, w.subject))
            said = ("blocked", w.reason)
            if self._last.get((w.host, w.subject)) != said:
                out.append(line("blocked", w.host, w.subject, w.describe(), False,
                                why=w.reason))
                self._last[(w.host, w.subject)] = said
        for key, said in list(self._last.items()):
            # a block that ended is logged again if it comes back (an
            # unreachable host's block is not known to have ended)
            if said[0] == "blocked" and key not in blocked and key[0] not in down:
                del self._last[key]
        return out

    def record(self, result, now: Optional[float] = None) -> int:
        """Append a pass (orchestrator.plotloop.PassResult) to the log; never
        raises.  Returns how many lines it wrote (0 with the log off, or
        when writing failed)."""
        try:
            out = self.lines(result, now)
        except Exception as e:          # a malformed result must not stop plotting
            self._failed(e)
            return 0
        return self._write(out)

    def note(self, kind: str, detail: str, host: str = "", subject: str = "",
             failed: bool = False, now: Optional[float] = None) -> int:
        """One line that is not a pass's event (a notifier's failed send:
        `log=lambda line: applog.note("notify_failed", line, failed=True)`);
        host_time null.  Never raises; returns the lines written (0 or 1)."""
        at = time.time() if now is None else float(now)
        return self._write([{"at": round(at, 3), "host_time": None, "kind": kind,
                             "host": host, "subject": subject, "detail": str(detail),
                             "failed": bool(failed)}])

    def _write(self, out: List[dict]) -> int:
        if self._handler is None or not out:
            return 0
        if not self._dir_made:
            try:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                self._dir_made = True
            except OSError as e:
                self._failed(e)
                return 0
        before = self.failures
        for rec in out:
            text = json.dumps(rec, default=str)         # ASCII: its length is its size
            self._handler.handle(logging.makeLogRecord({"msg": text, "args": None}))
        return len(out) - (self.failures - before)

    def _failed(self, exc) -> None:
        self.failures += 1
        if self.reported:
            return
        self.reported = True
        why = one_line(exc) if exc is not None else "unknown error"
        try:
            print(f"plotfleet: app log {self.path}: cannot write ({why});"
                  " plotting carries on without it", file=self.stderr or sys.stderr, flush=True)
        except Exception:
            pass


def files(path: str) -> List[str]:
    """The log and its rotated backups that exist, oldest first."""
    folder, base = os.path.split(path)
    backup = re.compile(re.escape(base) + r"\.(\d+)$")
    try:
        names = os.listdir(folder or ".")
    except OSError:
        names = []
    numbered = sorted(((int(m.group(1)), n) for n in names for m in [backup.match(n)] if m),
                      reverse=True)
    out = [os.path.join(folder, n) for _, n in numbered]
    return out + ([path] if os.path.isfile(path) else [])


def read(path: str, since: Optional[float] = None, host: Optional[str] = None) -> List[dict]:
    """Every record in the log and its backups, oldest first: those at or
    after `since` (controller epoch), for `host` (a name or a glob) only.
    Lines that are not a JSON record (a torn last line) are skipped."""
    out = []
    for name in files(path):
        try:
            with open(name, encoding="utf-8", errors="replace") as f:
                for text in f:
                    try:
                        rec = json.loads(text)
                    except ValueError:
                        continue
                    if not isinstance(rec, dict) or not isinstance(rec.get("at"), (int, float)):
                        continue
                    if since is not None and rec["at"] < since:
                        continue
                    if host is not None and not fnmatch.fnmatchcase(str(rec.get("host")), host):
                        continue
                    out.append(rec)
        except OSError:
            continue        # rotated away while reading
    return out
