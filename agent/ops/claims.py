"""Drive claims on a harvester: one writer into a drive at a time, even when
two controllers decide at once; and the deletions replotting makes under a
claim (agent/ops/replot.py, the ledger in agent/facts/ledger.py).

The claim record and its lifetime: agent/facts/claim_record.py.  A claim
whose transfer could not start is released at once (release_drive).
"""
import os
import time
from typing import Optional

from ..facts import disks, drive_health
from ..facts import claim_record, ledger as ledger_mod
from ..facts.probe import probe_one
from .. import statefile
from .common import ActionError, check_inside, host_lock
from ..protocol import op
from ..vocab import replot as rules_mod
from ..vocab import wire
from ..vocab.wire import ErrorCode

CLAIM_S, NAME = claim_record.CLAIM_S, claim_record.NAME     # the record: facts/claim_record.py


def _probe(agent, config, to_dir, target):
    probes = agent.probe_dirs(config)
    return probes.get(os.path.normpath(os.path.expanduser(to_dir))) or next(
        (p for p in probes.values() if p["real"] == target), None) or probe_one(target)


def _set_aside(config, same_drive, dev, now):
    c = config or {}
    state = drive_health.drive_state(
        {d: dev for d in same_drive},
        wire.setting(c, "drive_fail_window_s"), wire.setting(c, "drive_cooldown_s"), now)
    for d in same_drive:
        if state.get(d, {}).get("until"):
            return "set aside after failed transfers: %s" % state[d]["error"]
    return None


def _release(ledger, gone, claims, farm, now):
    """Sets whose plot a controller found on no plotter (every plotter
    answered, no transfer names it): their room is anyone's now."""
    claimed = {p["plot"] for c in claims.values() for p in claim_record.plots(c)}
    changed = False
    for pid in gone:
        e = ledger.get(pid) if isinstance(pid, str) else None
        if e and ledger_mod.pending(e, farm) and e.get("plot") not in claimed:
            e["released_at"] = now
            changed = True
    if changed:
        statefile.save(ledger_mod.NAME, ledger, durable=True)


@op(wire.ReserveDriveReply)
def reserve_drive(agent, config: wire.Config, to_dir: str, plot: str, size_bytes: int,
                  reserve_bytes: Optional[int] = 0, holder: Optional[str] = None,
                  plot_id: Optional[str] = None, deletions: Optional[list] = None,
                  max_deletes_per_hour: Optional[int] = None, gone: Optional[list] = None,
                  from_host: Optional[str] = None, queue: Optional[list] = None):
    """Claim the drive of `to_dir` for `plot`, and the plots of `queue`
    ([{"plot", "size_bytes", "plot_id"}], sent after it by the same runner):
    refused (code "drive_error") when the dir cannot take files, ("exists")
    when a file already holds the final name of one of them there (the
    controller then compares it), ("busy") while another holder's plot is on
    its way, ("no_room") without room for them all.  The holder of a live
    claim extends it: a runner's queue grows while it writes.

    With `deletions` ([{"path", "size_bytes", "rule"}], replotting), the
    plots named are deleted under the claim to make room for this one, after
    every check in agent/ops/replot.py; refused as a whole otherwise."""
    from . import replot            # the deletions made under a claim
    farm = disks.dirs_of(config, "farm")
    target = check_inside(to_dir, farm)
    plot = os.path.basename(plot)
    more = []
    for q in queue or ():
        if not isinstance(q, dict) or not isinstance(q.get("plot"), str):
            raise ActionError("bad queue entry: %r" % (q,), code=ErrorCode.BAD_REQUEST)
        more.append({"plot": os.path.basename(q["plot"]), "plot_id": q.get("plot_id"),
                     "size_bytes": int(q.get("size_bytes") or 0), "deletions": []})
    if more and deletions:
        raise ActionError("a plot that replotting makes room for is claimed alone",
                          code=ErrorCode.BAD_REQUEST)
    names = [plot] + [m["plot"] for m in more]
    # every farm dir afresh, each within dir_timeout_s: a dead mount among
    # them must not hang the claim (nor the ones below, which then skip it)
    probed = _probe(agent, config, to_dir, target)
    why = probed["error"] or disks.unmounted_farm(probed["st_dev"], config)
    if why:
        raise ActionError("%s: %s" % (target, why), code=ErrorCode.DRIVE_ERROR)
    dev = probed["st_dev"]
    for name in names:
        if os.path.lexists(os.path.join(target, name)):
            raise ActionError("%s already holds %s" % (target, name), code=ErrorCode.EXISTS)
        hit = rules_mod.first_match((config or {}).get("replot"), os.path.join(target, name))
        if hit is not None:         # the next plot could replace it there
            raise ActionError("the plot in transfer, %s, matches rule %d (%s) itself in %s: a "
                              "new plot is never sent where it is replaceable, nothing deleted"
                              % (name, hit[0] + 1, rules_mod.describe(hit[1]), target),
                              code=ErrorCode.REPLOT_REFUSED)
    same_drive = disks.farm_dirs_on(config, dev)
    # one machine may serve several inventory hosts (tests): a drive is the
    # device as seen through this host's farm dirs
    key = "%d:%s" % (dev, ",".join(sorted(same_drive)))
    now = time.time()
    named, holder = bool(holder), holder or "controller:unnamed"
    with host_lock():
        claims = {k: c for k, c in statefile.load(NAME).items()
                  if claim_record.alive(c, now, farm)}
        claim = claims.get(key)
        # the same named holder (a runner: its queue grows) extends its claim;
        # holders that gave no name are never taken for one another
        mine = claim is not None and named and claim.get("holder") == holder \
            and claim.get("dir") == target
        if claim and not mine and all(p["plot"] != plot for p in claim_record.plots(claim)):
            raise ActionError("drive busy: %s is on its way to %s (claimed by %s)"
                              % (claim_record.plots(claim)[0]["plot"], claim["dir"], claim.get("holder")),
                              code=ErrorCode.BUSY)
        # the plots already under this claim: their runner writes them
        ours = {p["plot"]: p for p in claim_record.plots(claim or {})} if mine else {}
        have = {}
        for d in same_drive:
            for path, final, size, mtime in disks.partials_in(d):
                if final in names or final in ours:
                    have[final] = max(have.get(final, 0), size)
                elif now - mtime < CLAIM_S:
                    raise ActionError("drive busy: %s is still arriving in %s" % (final, d),
                                      code=ErrorCode.BUSY)
        # still to come under the claim, besides these plots
        coming = sum(max(0, int(p.get("size_bytes") or 0) - have.get(n, 0))
                     for n, p in ours.items() if n not in names
                     and not os.path.exists(os.path.join(target, n)))
        try:
            ledger = ledger_mod.load(strict=bool(deletions))
        except ledger_mod.Unreadable as e:
            raise ActionError(str(e), code=ErrorCode.REPLOT_REFUSED)
        _release(ledger, gone or [], claims, farm, now)
        need = int(size_bytes) - have.get(plot, 0) + coming + sum(
            max(0, m["size_bytes"] - have.get(m["plot"], 0)) for m in more)

        before = next((p.get("deletions") or [] for p in claim_record.plots(claim or {})
                       if p["plot"] == plot), [])

        def save_claim(deleted):
            entry = {"plot": plot, "plot_id": plot_id, "deletions": before + deleted,
                     "size_bytes": int(size_bytes)}
            kept = [p for n, p in ours.items() if n not in names      # not yet arrived
                    and not os.path.exists(os.path.join(target, n))]
            claims[key] = {"holder": holder, "dir": target, "plots": kept + [entry] + more,
                           "taken_at": (claim or {}).get("taken_at", now), "renewed_at": now,
                           "expires_at": now + CLAIM_S}
            statefile.save(NAME, claims, durable=bool(deleted))

        made = replot.make_room(agent, config, ledger, claims, target, same_drive, key, plot,
                                plot_id, need, int(reserve_bytes or 0), deletions or [],
                                holder, from_host, max_deletes_per_hour, now, save_claim)
        if not made["space_ok"]:
            # the deletions did not give their space back: no transfer goes
            # there on this claim (the controller says why and stops)
            return dict(made, drive=key, holder=holder, expires_at=None)
        vfs = os.statvfs(target)
        free = vfs.f_bavail * vfs.f_frsize
        # room freed for other plots, still waiting for them, is theirs
        held = replot.held_for_others(ledger, same_drive, plot, farm)
        if free - held < need + int(reserve_bytes or 0) and not made["deleted"]:
            raise ActionError("no room on %s: %d bytes free, %d kept for plots whose room was "
                              "made earlier, %d needed" % (target, free, held,
                                                           need + int(reserve_bytes or 0)),
                              code=ErrorCode.NO_ROOM)
        save_claim([d["name"] for d in made["deleted"]])
    return {"drive": key, "holder": holder, "expires_at": now + CLAIM_S,
            "deleted": made["deleted"], "freed": made["freed"], "space_ok": made["space_ok"],
            "space_error": made["space_error"]}


def _end_claim(real, plot):
    """Take `plot` out of its claim on the farm dir `real` (under the host
    lock): its transfer is over, or never began; a claim left with no plot
    ends.  How many claims ended (0 or 1)."""
    name = os.path.basename(plot)
    claims = statefile.load(NAME)
    left, changed = {}, False
    for k, c in claims.items():
        entries = claim_record.plots(c)
        if c.get("dir") == real and any(p["plot"] == name for p in entries):
            changed = True
            rest = [p for p in entries if p["plot"] != name]
            if rest:
                left[k] = dict(c, plots=rest)
            continue
        left[k] = c
    if changed:
        statefile.save(NAME, left)
    return len(claims) - len(left)


@op(wire.ReleaseDriveReply)
def release_drive(agent, config: wire.Config, to_dir: str, plot: str):
    """End `plot`'s claim on the drive of `to_dir`: its transfer did not
    start, and the drive must not wait CLAIM_S for a plot that is not coming."""
    real = check_inside(to_dir, disks.dirs_of(config, "farm"))
    with host_lock():
        return {"released": _end_claim(real, plot)}


@op(wire.NoteDriveFailureReply)
def note_drive_failure(agent, config: wire.Config, to_dir: str, key: str, at: float, error: str,
                       fatal: Optional[bool] = False, plot: Optional[str] = None):
    """A transfer into this farm dir failed by the drive's fault (the
    plotter's rsync said so): keep it in the drive's record, and end that
    plot's claim on the drive (its transfer is over)."""
    farm = disks.dirs_of(config, "farm")
    real = check_inside(to_dir, farm)
    if real not in farm:
        raise ActionError("not a farm dir: %s" % to_dir)
    if not isinstance(key, str) or not key:
        raise ActionError("bad failure key: %r" % (key,), code=ErrorCode.BAD_REQUEST)
    with host_lock():
        added = drive_health.record_failure(real, key, float(at), error, bool(fatal))
        if plot:
            _end_claim(real, plot)
    return {"recorded": added}
