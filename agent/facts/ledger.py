"""The replot ledger: one set of deletions per new plot id, on the harvester
(~/.plotfleet/replot-ledger.json), shared by every controller that reaches
this machine and surviving restarts.

    {plot_id: {"plot": new plot's file name, "dir": the farm dir it goes to,
               "drive": the drive's claim key, "holder": who deleted,
               "from_host": the plotter the new plot comes from,
               "at": when (this host's clock), "need": bytes the plot needed,
               "deletions": [{"name", "path", "size_bytes", "rule", "at"}],
               "freed": bytes free space grew by, "space_ok": bool,
               "released_at": null | when its plot was declared gone}}

A set is written (fsync'd) before its first deletion, so a crash leaves a
record of what may be gone.  It is *pending* until its plot arrives under its
final name in a farm dir of this host, or a controller that saw its plotter
no longer have it declares the plot gone (released: its room is anyone's).  While
pending, its freed room is its plot's alone.  Entries that ended are kept a
week (the replacement rate, the hourly cap), then dropped.

Drives where deleting did not give the space back (snapshots, a recycle bin,
a filesystem that frees lazily) are kept in replot-stopped.json: no more
replotting there until the farmer clears it.
"""
import json
import os
import time

from .. import statefile

NAME = "replot-ledger.json"
STOPPED = "replot-stopped.json"
KEEP_S = 7 * 86400.0
HOUR_S = 3600.0


class Unreadable(Exception):
    """The ledger is there but cannot be read: nothing may be deleted."""


def load(strict=False):
    """The ledger; with `strict`, a ledger that exists and cannot be read
    raises Unreadable (an empty one would let a plot's deletions be made
    twice)."""
    rec = statefile.load(NAME)
    if strict and not rec and os.path.exists(statefile.path(NAME)):
        try:
            with open(statefile.path(NAME)) as f:
                ok = isinstance(json.load(f), dict)
        except (OSError, ValueError):
            ok = False
        if not ok:
            raise Unreadable("%s cannot be read: no deletion until it is repaired"
                             % statefile.path(NAME))
    return {k: v for k, v in rec.items() if isinstance(v, dict)}


def arrived(entry, farm_dirs):
    """Has the set's plot arrived under its final name in one of `farm_dirs`?"""
    name = entry.get("plot") or ""
    return bool(name) and any(os.path.isfile(os.path.join(d, name)) for d in farm_dirs)


def pending(entry, farm_dirs):
    return not entry.get("released_at") and not arrived(entry, farm_dirs)


def mine(ledger, farm_dirs):
    """The sets whose room is on one of this host's farm dirs."""
    dirs = set(farm_dirs)
    return {pid: e for pid, e in ledger.items() if e.get("dir") in dirs}


def deletes_since(ledger, since):
    return sum(1 for e in ledger.values() for d in e.get("deletions") or ()
               if float(d.get("at") or 0) >= since)


def prune(ledger, farm_dirs, now):
    return {pid: e for pid, e in ledger.items()
            if pending(e, farm_dirs) or now - float(e.get("at") or 0) < KEEP_S}


def stopped():
    """{real farm dir: {"why", "at"}}: drives where replotting stopped."""
    return {d: e for d, e in statefile.load(STOPPED).items() if isinstance(e, dict)}


def snapshot(farm_dirs, alive_plots, now=None):
    """The ledger as the controller sees it: this host's sets, each with
    `pending`, `arrived` and `claimed` (a live claim holds it: its transfer is
    under way), the deletions of the last hour, and the stopped drives."""
    now = time.time() if now is None else now
    out = []
    for pid, e in sorted(mine(load(), farm_dirs).items(), key=lambda x: x[1].get("at", 0)):
        got = arrived(e, farm_dirs)
        out.append(dict(e, plot_id=pid, arrived=got,
                        pending=not got and not e.get("released_at"),
                        claimed=e.get("plot") in alive_plots))
    dirs = set(farm_dirs)
    return {"sets": out,
            "deletes_last_hour": deletes_since({s["plot_id"]: s for s in out}, now - HOUR_S),
            "stopped": [dict(e, dir=d) for d, e in stopped().items() if d in dirs]}


BINDINGS = "replot-bindings.json"


def bindings():
    """{plot name: {"path", "to_host", "to_dir", "holder", "at"}} on a plotter:
    the drive each plot is bound to since deletions were begun for it there
    (agent/ops/replot.py bind_replot); a plot no longer where it was is free."""
    return {n: b for n, b in statefile.load(BINDINGS).items()
            if isinstance(b, dict) and os.path.isfile(str(b.get("path") or ""))}
