"""One event, one line: what a farmer reads in plot-all, archive, the
dashboard, `history`, the web page and the journal.

    19:34:18 ✓ 33edc5e6 promoted on hv1:farm1 (4.0 MiB, verified)
    19:34:16 → 33edc5e6 plotter1:dst → hv1:farm1 (4.0 MiB)
    19:34:18 ▶ plotter1 chiapos k18 tmp0 → dst (pid 8489)

A plot is the first 8 characters of its id and a dir its suffix after the
host's key line (ui/dirkeys.py, the tables' own keys), so a line fits 80
columns; the cause (`why`) takes the width that is left and is cut there.
Rendered from an event's JSON (core/events.py `to_json`, the application
log's records are the same), so a kind this module does not know (a new
one, an old log's) still gets a line: its host, its plot or subject, its
kind in words and its cause.  `-v` prints `detail`, the full line.
"""
from __future__ import annotations

import os
import posixpath
import re
import sys
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional

from rich.text import Text

from orchestrator.core.decisions import human_bytes
from orchestrator.ui.dirtables import HostKeys, plot_label

FOLD = 5            # more events of one kind in one pass than this: one line
# what may not reach a one-line output as it is: C0 and C1 controls (a newline
# in a file name would start a forged line; ESC drives the terminal), DEL,
# and Unicode's own line and paragraph separators
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text) -> str:
    """`text` on one line, whatever it holds: controls escaped as Python
    writes them (a file name `a<newline>b` prints as `a\\nb`)."""
    return _UNPRINTABLE.sub(lambda m: _NAMED.get(m.group(0)) or
                            (f"\\x{ord(m.group(0)):02x}" if ord(m.group(0)) < 0x100
                             else f"\\u{ord(m.group(0)):04x}"), str(text))


@dataclass(frozen=True)
class Marks:
    start: str
    move: str
    ok: str
    fail: str
    note: str
    arrow: str
    cut: str
    dot: str


UTF8 = Marks("▶", "→", "✓", "✗", "·", "→", "…", "·")
ASCII = Marks(">", "->", "ok", "x", "-", "->", "...", "-")


def utf8_locale(environ: Mapping[str, str] = os.environ, stream=None) -> bool:
    """The first of LC_ALL, LC_CTYPE, LANG that is set names UTF-8 (as
    setlocale reads them), and the stream can encode it."""
    enc = getattr(stream or sys.stdout, "encoding", None) or ""
    if enc and "utf" not in enc.lower():
        return False
    for var in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = environ.get(var)
        if value:
            return bool(re.search(r"utf-?8", value, re.I))
    return False


def marks_for(environ: Mapping[str, str] = os.environ, stream=None) -> Marks:
    return UTF8 if utf8_locale(environ, stream) else ASCII


# kind -> (mark, what the line says); {id} the plot, {at} host:dir, {to}
# the other end, {dir}/{to_dir} a dir of the event's host, {what} the plotter
TEMPLATES: Dict[str, tuple] = {
    "job_started": ("start", "{host} {what} {dir} {arrow} {to_dir}"),
    "job_start_failed": ("fail", "{host} start {what} {dir} failed"),
    "job_start_unanswered": ("fail", "{host} start {what} {dir}"),
    "cleaned_dead": ("ok", "{host} job {id} cleaned up"),
    "clean_failed": ("fail", "{host} job {id} clean-up failed"),
    "transfer_started": ("move", "{id} {at} {arrow} {to}"),
    "copy_promoted": ("ok", "{id} promoted on {at}"),
    "copy_confirmed": ("ok", "{id} confirmed on {at}"),
    "source_removed": ("ok", "{id} source removed from {at}"),
    "partial_cleaned": ("note", "{id} partial cleaned on {at}"),
    "copy_vanished": ("note", "{id} copy vanished on {at}"),
    "copy_mismatch": ("fail", "{id} copy on {at} differs"),
    "copy_conflict": ("fail", "{id} conflict on {at}"),
    "promote_failed": ("fail", "{id} promote on {at} failed"),
    "plot_header_mismatch": ("fail", "{id} on {at}"),
    "claim_failed": ("fail", "{at} claim failed"),
    "drive_failure_recorded": ("fail", "{at} drive failure"),
    "request_failed": ("fail", "{host} {id}"),
    "job_suspended_no_room": ("note", "{host} job {id} suspended"),
    "job_resumed_room": ("note", "{host} job {id} resumed"),
    "blocked": ("note", "{host} {subject} blocked"),       # the application log's waits
    "check_started": ("note", "{id} proof check on {at}"),
    "check_failed_to_start": ("fail", "{id} proof check on {at} did not start"),
    "plot_quarantined": ("fail", "{id} quarantined on {at}"),
    "job_suspended_bad_plots": ("fail", "{host} job {id} suspended"),
    # replotting: the subject is the old plot, `plot_id` the new one it made room for
    "replot_deleted": ("note", "{old} deleted on {at} for {id}"),
    "replot_refused": ("fail", "{id} nothing deleted on {host} for it"),
    "replot_space_missing": ("fail", "{at} deleting gave no room for {id}"),
    "would_replot_delete": ("note", "would delete {old} on {at} for {id}"),
    # --check: what a pass would do
    "would_start_job": ("note", "would start {host} {what} {dir} {arrow} {to_dir}"),
    "would_transfer": ("note", "would send {id} {at} {arrow} {to}"),
    "would_promote": ("note", "would promote {id} on {at}"),
    "would_clean_dead": ("note", "would clean up {host} job {id}"),
    "would_clean_partial": ("note", "would clean {id} partial on {at}"),
    "would_record_drive_failure": ("note", "would record {at} drive failure"),
    "would_check": ("note", "would check {id} on {at}"),
    "would_quarantine": ("note", "would quarantine {id} on {at}"),
    "would_suspend_job": ("note", "would suspend {host} job {id}"),
}
# facts in parentheses, per kind (any kind: size, then pid)
VERIFIED = {"copy_promoted", "copy_confirmed"}
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


class Places:
    """host + path -> `host:suffix` by that host's key (ui/dirtables.HostKeys)."""

    def __init__(self, keys: Optional[Mapping[str, HostKeys]] = None):
        self.keys = dict(keys or {})
        self._swaps = None

    def short(self, host: str, path: Optional[str]) -> str:
        if not path:
            return ""
        k = self.keys.get(host)
        if k is not None:
            for kind in ("tmp", "dst", "farm"):
                if k.index[kind].find(path) is not None:
                    return k.short(kind, path)
        return posixpath.basename(path.rstrip("/")) or path

    def at(self, host: str, path: Optional[str]) -> str:
        return f"{host}:{self.short(host, path)}" if path else host

    def shorten(self, text: str) -> str:
        """Every configured dir named in `text` (a cause) by its suffix, as
        the line names them; longest first, so a dir inside another stays whole."""
        if self._swaps is None:
            swaps = {}
            for k in self.keys.values():
                for kind, key in k.keys.items():
                    if key.prefix:
                        for path, short in key.short.items():
                            swaps.setdefault(path.rstrip("/"), short)
            self._swaps = sorted(swaps.items(), key=lambda kv: -len(kv[0]))
        for path, short in self._swaps:
            if path in text:
                text = text.replace(path, short)
        return text

    def key_lines(self) -> List[str]:
        """`key localhost: tmp, dst, farm /srv/demo/`, one per host with a key."""
        out = []
        for name, k in self.keys.items():
            line = k.line()
            if line:
                out.append(f"key {name}: {line}")
        return out


def plot_id(e: Mapping) -> str:
    """The first 8 of the event's plot id, from its facts or its subject."""
    pid = e.get("plot_id")
    if pid:
        return str(pid)[:8].lower()
    m = _HEX64.search(str(e.get("subject") or ""))
    return m.group(0)[:8].lower() if m else ""


def _words(kind: str) -> str:
    return kind.replace("_", " ")


def _parens(e: Mapping) -> str:
    bits = []
    if e.get("size_bytes") is not None:
        bits.append(human_bytes(e["size_bytes"]))
    if e.get("kind") in VERIFIED:
        bits.append("verified")
    if e.get("pid") is not None:
        bits.append(f"pid {e['pid']}")
    return f" ({', '.join(bits)})" if bits else ""


FACTS = ("plot_id", "dir", "to_host", "to_dir", "size_bytes", "pid", "what", "why")


def _template(e: Mapping) -> Optional[tuple]:
    """The kind's template, when the record carries the facts it is made of
    (a record from before they were logged is said generically)."""
    found = TEMPLATES.get(str(e.get("kind") or ""))
    return found if found is not None and any(e.get(k) is not None for k in FACTS) else None


def head(e: Mapping, places: Places, m: Marks) -> tuple:
    """(mark, the line without its cause) for one event as JSON."""
    kind = str(e.get("kind") or "")
    host = str(e.get("host") or "")
    found = _template(e)
    if found is None:           # a kind made after this module: said generically
        subject = plot_id(e) or places.short(host, e.get("dir")) or _short_subject(e)
        mark = "fail" if e.get("failed") else "note"
        text = f"{host} {subject} {_words(kind)}"
    else:
        mark, template = found
        text = template.format(
            host=host, id=plot_id(e), what=e.get("what") or "", arrow=m.arrow,
            subject=plot_id(e) or _short_subject(e), old=_subject_id(e),
            dir=places.short(host, e.get("dir")), to_dir=places.short(host, e.get("to_dir")),
            at=places.at(host, e.get("dir")),
            to=places.at(str(e.get("to_host") or host), e.get("to_dir")))
        if e.get("failed"):
            mark = "fail"
    text = " ".join(printable(text).split()) + printable(_parens(e))
    return getattr(m, mark), text


def _subject_id(e: Mapping) -> str:
    """The first 8 of the id in the event's subject (a plot file's name)."""
    m = _HEX64.search(str(e.get("subject") or ""))
    return m.group(0)[:8].lower() if m else _short_subject(e)


def _short_subject(e: Mapping) -> str:
    s = str(e.get("subject") or "")
    return posixpath.basename(s.rstrip("/")) if "/" in s else s


def why(e: Mapping) -> str:
    """The cause alone; a record without one gives its detail, less its host."""
    w = e.get("why")
    if w:
        return str(w)
    detail = str(e.get("detail") or "")
    host = str(e.get("host") or "")
    if host and detail.startswith(host + ": "):
        detail = detail[len(host) + 2:]
    return detail if _template(e) is None else ""


def fit(text: str, width: Optional[int], m: Marks) -> str:
    """`text` cut to `width` cells, marked as cut."""
    if width is None or len(text) <= width:
        return text
    return text[:max(width - len(m.cut), 0)] + m.cut


def line(e: Mapping, stamp: str, places: Places, m: Marks = UTF8,
         width: Optional[int] = None) -> str:
    """`19:34:18 ✓ 33edc5e6 promoted on hv1:farm1 (4.0 MiB, verified)`: the
    cause after it as far as `width` allows (no width: all of it)."""
    mark, text = head(e, places, m)
    first = f"{stamp} {mark} {text}" if stamp else f"{mark} {text}"
    cause = printable(places.shorten(why(e)))
    if not cause:
        return fit(first, width, m)
    sep = ": " if e.get("failed") else f" {m.dot} "
    room = None if width is None else width - len(first) - len(sep)
    if room is not None and room < 8:       # no room worth a cut cause
        return fit(first, width, m)
    return first + sep + fit(" ".join(cause.split()), room, m)


def fold(events: Iterable[Mapping], limit: int = FOLD) -> List[Mapping]:
    """One pass's events with more than `limit` of one kind folded into
    one summary event (kind, hosts, count, the plots it was about)."""
    events = list(events)
    by_kind: Dict[str, list] = {}
    for e in events:
        by_kind.setdefault(str(e.get("kind")), []).append(e)
    out, done = [], set()
    for e in events:
        kind = str(e.get("kind"))
        group = by_kind[kind]
        if len(group) <= limit:
            out.append(e)
            continue
        if kind in done:
            continue
        done.add(kind)
        hosts = ", ".join(dict.fromkeys(str(g.get("host")) for g in group))
        ids = [i for i in (plot_id(g) for g in group) if i]
        out.append({"kind": kind, "host": hosts, "subject": "", "failed": any(
            g.get("failed") for g in group), "folded": len(group),
            "detail": f"{len(group)} x {kind} on {hosts}",
            "why": ", ".join(ids) if ids else why(group[-1])})
    return out


def folded_head(e: Mapping, m: Marks) -> tuple:
    mark = m.fail if e.get("failed") else m.note
    return mark, f"{e['folded']} x {_words(str(e['kind']))} on {e['host']}"


def render(e: Mapping, stamp: str, places: Places, m: Marks = UTF8,
           width: Optional[int] = None, verbose: bool = False) -> Text:
    """One line as rich Text (red when it failed): `line`, a folded
    summary, or with `verbose` today's full `detail`."""
    style = "red" if e.get("failed") else ""
    if verbose:
        detail = printable(e.get("detail", ""))
        return Text(f"{stamp} {detail}" if stamp else detail, style=style)
    if e.get("folded"):
        mark, text = folded_head(e, m)
        text = printable(text)
        first = f"{stamp} {mark} {text}" if stamp else f"{mark} {text}"
        room = None if width is None else width - len(first) - 2
        cause = printable(e.get("why") or "")
        if cause and (room is None or room >= 8):
            first += ": " + fit(cause, room, m)
        return Text(fit(first, width, m), style=style)
    return Text(line(e, stamp, places, m, width), style=style)


def wait_text(w, places: Places, m: Marks = UTF8, width: Optional[int] = None) -> Text:
    """A wait (core/decisions.Wait) on one line: `localhost 9a2d26e0: plotter busy`."""
    subject = plot_label(w.subject) if w.subject.endswith(".plot") else \
        places.short(w.host, w.subject) if "/" in w.subject else w.subject
    return Text(fit(printable(f"{w.host} {subject}: {' '.join(printable(w.reason).split())}"),
                    width, m), style="yellow" if w.blocked else "dim")


def places_for(state, hosts) -> Places:
    """Every inventory host's keys (its configured dirs; else what it reported)."""
    from orchestrator.ui.dirtables import host_keys
    return Places(host_keys(state, hosts)) if state is not None else Places(
        {name: HostKeys(h, None) for name, h in hosts.items()})
