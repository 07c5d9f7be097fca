"""Replotting's deletions, made on the harvester under a drive claim
(agent/ops/claims.py), recorded in the ledger (agent/facts/ledger.py).

The controller names the plots to delete for one new plot; this host checks
all of it again, under the host lock, and deletes nothing unless every check
holds:
  - the harvester has replot rules and the new plot does not match them
    where it goes (a new plot is never replaceable);
  - the drive is healthy: answering, mounted, not set aside, and replotting
    was not stopped on it (space that did not come back);
  - the new plot has no set yet (one set per plot id), and no earlier set on
    this host still waits for its plot (that room is used first), unless the
    controller, having seen every plotter, declares that plot gone;
  - the hourly cap (replot_max_deletes_per_hour) holds, counted from the ledger;
  - the drive is not below its farm_reserve_bytes (never deleted for), the
    deletions are needed (the room is not there without them), enough, and
    no more than needed (without the smallest one the room falls short);
  - each plot named is still there as the controller saw it: a regular file
    (not a link) in a farm dir of this drive, of the size planned, matching a
    rule, open in no process, and not being received or sent.
Then the set is written (fsync'd) before the first deletion, the plots go,
and free space must grow by what they held on disk; when it does not, the
drive is marked stopped (replot-stopped.json) with why.
"""
import os
import stat
import time
from typing import Optional

from .. import statefile
from ..facts import claim_record, disks, ledger as ledger_mod, plotfile
from ..vocab import replot as rules_mod
from ..facts.procs import held_open, rsync_targets
from .common import PLOT_ID, ActionError, check_inside, host_lock
from ..protocol import op
from ..vocab import wire
from ..vocab.wire import ErrorCode

SPACE_WAIT_S = 2.0          # a filesystem may take a moment to account freed blocks
SPACE_SLACK = 0.95          # free space must grow by at least this share of the blocks freed


def _free(path):
    vfs = os.statvfs(path)
    return vfs.f_bavail * vfs.f_frsize


def held_for_others(ledger, same_drive, plot, farm):
    """Bytes freed on this drive for other plots whose sets still wait."""
    dirs = set(same_drive)
    return sum(int(e.get("freed") or 0) for e in ledger.values()
               if e.get("dir") in dirs and e.get("plot") != plot
               and ledger_mod.pending(e, farm))


def _refuse(message, code=ErrorCode.REPLOT_REFUSED):
    raise ActionError(message, code=code)


def _pool(path):
    try:
        with open(path, "rb") as f:
            return rules_mod.pool_of_header(f.read(plotfile.HEADER_BYTES))
    except OSError:
        return None


def _recheck(want, farm, same_drive, rules, held, named, new_plots):
    """One plot the controller named, checked again as it is now."""
    if not isinstance(want, dict) or not isinstance(want.get("path"), str):
        _refuse("each deletion needs a path", ErrorCode.BAD_REQUEST)
    path = want["path"]
    if not disks.inside(path, farm):
        _refuse("refusing path outside the farm dirs: %s" % path)
    real = os.path.join(disks.expand(os.path.dirname(path)), os.path.basename(path))
    if os.path.dirname(real) not in same_drive:
        _refuse("%s is not on the drive being claimed" % path)
    try:
        st = os.lstat(real)
    except OSError:
        _refuse("%s is gone" % path, ErrorCode.VANISHED)
    if not stat.S_ISREG(st.st_mode):
        _refuse("%s is not a regular file" % path)
    if st.st_nlink > 1:     # its bytes stay under the other name: no room is freed
        _refuse("%s has other hard links (%d names): deleting it frees nothing"
                % (path, st.st_nlink))
    name = os.path.basename(real)
    facts = rules_mod.name_facts(name)
    if facts is None:
        _refuse("%s is not named as a plot" % path)
    if facts["plot_id"] in new_plots:
        _refuse("%s is a plot replotting brought: never replaced" % path)
    if st.st_size != int(want.get("size_bytes") or -1):
        _refuse("%s changed: %d bytes, planned for %s" % (path, st.st_size,
                                                          want.get("size_bytes")))
    pool = _pool(real) if rules_mod.needs_header(rules) else None
    hit = rules_mod.first_match(rules, real, pool)
    if hit is None:
        _refuse("%s no longer matches a replot rule" % path)
    if real in held:
        _refuse("%s is open in process %s" % (path, ",".join(str(p) for p in sorted(held[real]))))
    if real in named or os.path.exists(real + disks.PARTIAL_SUFFIX):
        _refuse("%s is in transfer" % path)
    return {"name": name, "path": real, "size_bytes": st.st_size,
            "blocks_bytes": st.st_blocks * 512,
            "rule": "rule %d (%s)" % (hit[0] + 1, rules_mod.describe(hit[1]))}


def _shown(c):
    return {k: c[k] for k in ("name", "path", "size_bytes", "rule")}


def _stop(same_drive, why, now):
    rec = ledger_mod.stopped()
    for d in same_drive:
        rec[d] = {"why": why, "at": now}
    statefile.save(ledger_mod.STOPPED, rec, durable=True)


def make_room(agent, config, ledger, claims, target, same_drive, key, plot, plot_id, need,
              reserve, deletions, holder, from_host, max_per_hour, now, claim_first):
    """Delete `deletions` for `plot` (call under the host lock), or refuse
    them all.  {"deleted": [...], "freed": bytes, "space_ok", "space_error"}."""
    from .claims import _set_aside
    nothing = {"deleted": [], "freed": 0, "space_ok": True, "space_error": None}
    if not deletions:
        return nothing
    farm = disks.dirs_of(config, "farm")
    rules = (config or {}).get("replot") or []
    if not rules:
        _refuse("no replot rules on this harvester: nothing is replaceable")
    if not isinstance(plot_id, str) or not PLOT_ID.match(plot_id):
        _refuse("a deletion needs the new plot's id", ErrorCode.BAD_REQUEST)
    facts = rules_mod.name_facts(plot)
    if facts is None or facts["plot_id"] != plot_id:
        _refuse("%s is not the plot of id %s" % (plot, plot_id[:16]), ErrorCode.BAD_REQUEST)
    hit = rules_mod.first_match(rules, os.path.join(target, plot))
    if hit is not None:
        _refuse("the plot in transfer, %s, matches rule %d (%s) itself: a new plot is never "
                "replaceable, nothing deleted" % (plot, hit[0] + 1, rules_mod.describe(hit[1])))
    stopped = ledger_mod.stopped()
    for d in same_drive:
        if d in stopped:
            _refuse("replotting stopped on %s: %s" % (d, stopped[d].get("why")))
    aside = _set_aside(config, same_drive, int(key.split(":", 1)[0]), now)
    if aside:
        _refuse("%s: %s" % (target, aside), ErrorCode.DRIVE_ERROR)
    if plot_id in ledger:
        e = ledger[plot_id]
        _refuse("%s already has its set of deletions (on %s): its room is used, nothing new "
                "deleted" % (plot, e.get("dir")))
    claimed = {p["plot"] for c in claims.values() for p in claim_record.plots(c)}
    for pid, e in ledger_mod.mine(ledger, farm).items():
        if not ledger_mod.pending(e, farm) or e.get("plot") in claimed:
            continue
        _refuse("room freed on %s for %s still waits for it: no new deletion"
                % (e.get("dir"), e.get("plot")))
    if max_per_hour is not None:
        done = ledger_mod.deletes_since(ledger_mod.mine(ledger, farm), now - ledger_mod.HOUR_S)
        if done + len(deletions) > int(max_per_hour):
            _refuse("replot_max_deletes_per_hour: %d deleted in the last hour, %d more would "
                    "pass %d" % (done, len(deletions), int(max_per_hour)))
    free = _free(target)
    if free < reserve:
        _refuse("%s is below its farm_reserve_bytes (%d free, %d kept): plots are never "
                "deleted for the reserve" % (target, free, reserve))
    held = held_open(same_drive)
    named, _ = rsync_targets(agent.all_jobs()[1])
    new_plots = set(ledger)
    checked = [_recheck(d, farm, same_drive, rules, held, named, new_plots) for d in deletions]
    if len({c["path"] for c in checked}) != len(checked):
        _refuse("a plot is named twice", ErrorCode.BAD_REQUEST)
    room = free - reserve - held_for_others(ledger, same_drive, plot, farm)
    total = sum(c["size_bytes"] for c in checked)
    if room >= need:
        _refuse("%s has room for %s without deleting" % (target, plot))
    if room + total < need:
        _refuse("deleting them frees %d bytes, %s needs %d more" % (total, plot, need - room),
                ErrorCode.NO_ROOM)
    if room + total - min(c["size_bytes"] for c in checked) >= need:
        _refuse("more deletions than %s needs: nothing deleted" % plot)
    entry = {"plot": plot, "dir": target, "drive": key, "holder": holder,
             "from_host": from_host, "at": now,
             "need": need, "freed": 0, "space_ok": None, "released_at": None,
             "deletions": [dict(_shown(c), at=now) for c in checked]}
    ledger[plot_id] = entry
    statefile.save(ledger_mod.NAME, ledger_mod.prune(ledger, farm, now), durable=True)
    claim_first([c["name"] for c in checked])  # the claim names them before any goes
    done, failed = [], None
    for c in checked:
        try:
            os.remove(c["path"])
        except OSError as e:        # a drive gone read-only mid-way: stop there
            failed = "could not delete %s: %s" % (c["path"], e.strerror or e)
            break
        done.append(c)
    for d in {os.path.dirname(c["path"]) for c in done}:
        plotfile.fsync_dir(d)
    entry["deletions"] = [dict(_shown(c), at=now) for c in done]
    total = sum(c["size_bytes"] for c in done)
    want = int(SPACE_SLACK * sum(c["blocks_bytes"] for c in done))
    end = time.monotonic() + SPACE_WAIT_S
    while True:
        grew = _free(target) - free
        if grew >= want or time.monotonic() >= end:
            break
        time.sleep(0.1)
    ok = grew >= want and failed is None
    entry["freed"] = total if grew >= want else max(0, grew)
    entry["space_ok"] = ok
    why = None
    if failed:
        why = "%s; replotting stopped on this drive" % failed
    elif not ok:
        why = ("deleting %d plot(s) (%d bytes on disk) gave back %d bytes: snapshots, a recycle "
               "bin or a filesystem that frees lazily; replotting stopped on this drive"
               % (len(done), want, max(0, grew)))
    if why:
        _stop(same_drive, why, now)
    statefile.save(ledger_mod.NAME, ledger, durable=True)
    return {"deleted": [_shown(c) for c in done],
            "freed": entry["freed"], "space_ok": ok, "space_error": why}



@op(wire.BindReplotReply)
def bind_replot(agent, config: wire.Config, plot: str, to_host: str, to_dir: str,
                holder: Optional[str] = None):
    """On the plotter, before a harvester deletes anything for `plot`: the
    plot is bound to that one drive for as long as it waits here.  Each
    harvester's ledger sees only its own sets, so two controllers that chose
    different harvesters for one plot, or a later pass while the first
    harvester is unreachable, could otherwise delete for it twice; a binding
    elsewhere refuses that (the snapshot reports it, and the plan keeps to it)."""
    path = check_inside(plot, disks.dirs_of(config, "dst"))
    name = os.path.basename(path)
    if not os.path.isfile(path):
        raise ActionError("no such plot: %s" % plot, code=ErrorCode.MISSING)
    now = time.time()
    with host_lock():
        rec = ledger_mod.bindings()
        b = rec.get(name)
        if b and (b.get("to_host"), b.get("to_dir")) != (to_host, to_dir):
            _refuse("%s is bound to %s:%s by %s: nothing is deleted for it elsewhere"
                    % (name, b.get("to_host"), b.get("to_dir"), b.get("holder")))
        rec[name] = {"path": path, "to_host": to_host, "to_dir": to_dir, "holder": holder,
                     "at": (b or {}).get("at", now)}
        statefile.save(ledger_mod.BINDINGS, rec, durable=True)
    return {"plot": name, "to_host": to_host, "to_dir": to_dir}
