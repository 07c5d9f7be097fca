"""Alerts sent through apprise, once when a condition starts and once when it
resolves, with what that takes remembered in a state file.

core/alerts.py decides what is wrong and what changed; this module keeps
its memory and the active set in `~/.plotfleet/alerts.json` (written
atomically after every pass), so a restarted controller neither repeats an
alert nor loses its "resolved", and sends each pass's changes as ONE
message to every URL.

Wiring (plot-all):

    notifier = Notifier(config.notify, log=applog)     # once
    notifier.after_pass(result, hosts, config)          # after every pass

and `plotfleet notify-test`: `test(config.notify)`.

A notifier never raises into plotting.  A failed send (server down, an
error answer) is logged, one line through `log`, and its changes stay
pending for that URL: the next pass sends them again, with whatever is new,
in one message, until the URL takes them (at most MAX_PENDING changes are
kept per URL; older ones are dropped, and that is logged too).  A URL that
apprise cannot parse is logged and nothing is kept for it (retrying cannot
help).  The state file holds no URL, only a digest of each.  With no URLs,
after_pass still tracks the state (so the alerts active when URLs are added
are not news) and sends nothing.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from orchestrator.core.alerts import Alert, conditions, message, transitions

STATE_PATH = "~/.plotfleet/alerts.json"
MAX_PENDING = 200
VERSION = 1

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """One message to one URL: whether it went, and why not."""
    url: str                    # as shown: secrets masked
    ok: bool
    error: Optional[str] = None
    started: int = 0            # alerts it carried
    resolved: int = 0           # resolved ones it carried

    def line(self) -> str:
        what = (f" ({self.started} alert(s), {self.resolved} resolved)"
                if self.started or self.resolved else "")
        return (f"notify: sent to {self.url}{what}" if self.ok else
                f"notify: failed to send to {self.url}{what}: {self.error}")


def _digest(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def shown(url: str) -> str:
    """The URL with its secrets masked (apprise's privacy form), for logs."""
    try:
        import apprise
        with _captured():
            plugin = apprise.Apprise.instantiate(url)
        if plugin is not None:
            return plugin.url(privacy=True).split("?", 1)[0]
    except Exception:
        pass
    scheme = url.split("://", 1)[0] if "://" in url else "?"
    return f"{scheme}://..."


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: List[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@contextlib.contextmanager
def _captured():
    """apprise's log lines, kept here: none reach stderr or the root logger."""
    log = logging.getLogger("apprise")
    handler = _Lines()
    level, propagate = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    try:
        yield handler.records
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate


def _why(records: Sequence[logging.LogRecord]) -> str:
    """One line from apprise's log: its warnings, and the socket's own error."""
    parts = []
    for r in records:
        msg = " ".join(str(r.getMessage()).split()).rstrip(".")
        if r.levelno >= logging.WARNING:
            parts.append(msg)
        elif msg.startswith(("Socket Exception", "Exception")):    # not a payload line
            m = re.search(r"\[Errno -?\d+\][^\"'()]*", msg)
            parts.append(m.group(0).strip() if m else msg[:200])
    seen = []
    for p in parts:
        if p and p not in seen:
            seen.append(p)
    return "; ".join(seen) or "apprise gave no reason"


def send(url: str, title: str, body: str, notify_type: str = "info") -> Tuple[bool, Optional[str]]:
    """One message to one URL: (ok, why not).  Never raises."""
    try:
        import apprise
    except ImportError:
        return False, "apprise is not installed (pip install apprise)"
    try:
        with _captured() as records:
            ap = apprise.Apprise()
            if not ap.add(url):
                return False, "not a URL apprise can use: " + _why(records)
            ok = bool(ap.notify(body=body, title=title, notify_type=notify_type))
        return (True, None) if ok else (False, _why(records))
    except Exception as e:          # a plugin's bug must not stop plotting either
        return False, f"{type(e).__name__}: {e}"


def _usable(url: str) -> bool:
    try:
        import apprise
        with _captured():
            return apprise.Apprise.instantiate(url) is not None
    except Exception:
        return False


def test(urls: Iterable[str]) -> List[Delivery]:
    """`plotfleet notify-test`: one test message to every URL, each one's result."""
    out = []
    for url in urls:
        ok, why = send(url, "plotfleet: test message",
                       "plotfleet notify-test: alerts from this controller reach you here.")
        out.append(Delivery(shown(url), ok, why))
    return out


class Notifier:
    """The alerts of a plot-all loop: call after_pass() after every pass."""

    def __init__(self, urls: Iterable[str] = (), state_path=STATE_PATH,
                 log: Optional[Callable[[str], Any]] = None):
        self.urls: Tuple[str, ...] = tuple(u for u in (urls or ()) if u)
        self.state_path = Path(os.path.expanduser(str(state_path or STATE_PATH)))
        self._log_fn = log if log is not None else _logger.warning

    # ------------------------------------------------------------- state file

    def _log(self, line: str) -> None:
        try:
            self._log_fn(line)
        except Exception:
            _logger.warning(line)

    def load(self) -> dict:
        """The saved memory, active alerts and pending changes (empty at first)."""
        empty = {"version": VERSION, "memory": {}, "active": [], "pending": {}}
        try:
            data = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return empty
        except (OSError, ValueError) as e:
            self._log(f"notify: cannot read {self.state_path} ({e}): starting afresh")
            return empty
        if not isinstance(data, dict):
            return empty
        return {"version": VERSION, "memory": data.get("memory") or {},
                "active": data.get("active") or [], "pending": data.get("pending") or {}}

    def save(self, data: dict) -> None:
        """Atomically: a crash leaves the old file or the new one, never half."""
        d = self.state_path.parent
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".alerts.", suffix=".tmp", dir=str(d))
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.state_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def active(self) -> frozenset:
        """The alerts active after the last pass, as saved."""
        return frozenset(Alert.from_json(a) for a in self.load()["active"])

    # ------------------------------------------------------------- one pass

    def after_pass(self, result, hosts, config) -> List[Delivery]:
        """Track this pass's alerts; send what started or resolved, as one
        message per URL.  Never raises: any failure is logged and returned."""
        try:
            return self._after_pass(result, hosts, config)
        except Exception as e:
            line = f"notify: alerts not processed this pass: {type(e).__name__}: {e}"
            self._log(line)
            return [Delivery("-", False, line)]

    def _after_pass(self, result, hosts, config) -> List[Delivery]:
        data = self.load()
        before = [Alert.from_json(a) for a in data["active"]]
        now, memory = conditions(result, hosts, config, data["memory"])
        started, resolved = transitions(before, now)
        changes = ([{"change": "started", "alert": a.to_json()} for a in started]
                   + [{"change": "resolved", "alert": a.to_json()} for a in resolved])
        pending: Dict[str, list] = data["pending"]
        deliveries: List[Delivery] = []
        kept: Dict[str, list] = {}
        for url in self.urls:
            key = _digest(url)
            items = list(pending.get(key) or []) + changes
            if not items:
                continue
            if len(items) > MAX_PENDING:
                self._log(f"notify: {shown(url)}: {len(items) - MAX_PENDING} unsent "
                          f"changes dropped (more than {MAX_PENDING} pending)")
                items = items[-MAX_PENDING:]
            d = self._deliver(url, items)
            deliveries.append(d)
            if not d.ok:
                self._log(d.line())
                if _usable(url):
                    kept[key] = items       # sent again at the next pass
        self.save({"version": VERSION, "memory": memory,
                   "active": [a.to_json() for a in sorted(now, key=lambda a: a.key)],
                   "pending": kept})
        return deliveries

    def _deliver(self, url: str, items: List[dict]) -> Delivery:
        started = [Alert.from_json(i["alert"]) for i in items if i.get("change") == "started"]
        resolved = [Alert.from_json(i["alert"]) for i in items if i.get("change") == "resolved"]
        title, body = message(started, resolved)
        ok, why = send(url, title, body, "failure" if started else "success")
        return Delivery(shown(url), ok, why, len(started), len(resolved))
