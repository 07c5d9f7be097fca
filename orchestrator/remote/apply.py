"""Carry out a plan (core/plan.py) through the fleet's agent sessions.

The only place where decisions turn into requests.  `apply` returns one
outcome per action (core/outcomes.py) and decides nothing: what follows
from an outcome (a resend, a promote after a taken name, a source removal,
asking a lost start again) is core/followup.py's.  Every action is
independent: a refusal or a failing host is a Failed outcome with its event
and the rest go on.  Under --check nothing is sent; the `would_*` events say
what would be done.
"""
from __future__ import annotations

import posixpath
import time
import uuid
from typing import List, Mapping, Optional, Tuple, Union

from orchestrator.core import copycheck
from orchestrator.core.checker import Quarantine, StartCheck
from orchestrator.core.failures import HoldJob
from orchestrator.core.decisions import (CleanDead, CleanPartial, NoteDriveFailure, Promote,
                                         RemoveSource, StartJob, StartTransfer, human_bytes)
from orchestrator.core.events import Event
from orchestrator.core.outcomes import (CopyLost, Failed, NameTaken, Outcome, Promoted, Started,
                                        Unanswered)
from orchestrator.core.plan import AskAgain, GuardRoom, Plan
from orchestrator.core.scheduler import tmp_rules
from orchestrator.errors import AgentError, LostReply, SessionError
from orchestrator.core.state import Host


def _done(action, kind: str, host: str, subject: str, detail: str, **facts) -> Outcome:
    return Outcome(action, (Event(kind, host, subject, detail, **facts),))


def _failed(action, kind: str, host: str, subject: str, detail: str, e=None,
            **facts) -> Failed:
    return Failed(action, (Event(kind, host, subject, detail, failed=True, **facts),),
                  getattr(e, "code", None), str(e) if e is not None else detail)


def _call(fleet, action, host: str, op: str, what: str, subject: str,
          facts: Optional[dict] = None, **args) -> Union[dict, Failed]:
    """The reply, or the Failed outcome saying `what` failed."""
    try:
        return fleet.call(host, op, **args)
    except (AgentError, SessionError) as e:
        return _failed(action, "request_failed", host, subject, f"{host}: {what} failed: {e}", e,
                       why=f"{what} failed: {e}", **(facts or {}))


def guard_room(fleet, guards: Tuple[GuardRoom, ...]) -> List[Outcome]:
    """Every guard at once (agent/ops/room.py decides which jobs, on the
    host); what each did becomes events.  A failed one says nothing: the
    snapshot that follows says what is wrong."""
    replies = fleet.call_each([(g.host, "guard_room", {"plot_bytes": g.plot_bytes})
                               for g in guards])
    out = []
    for g, res in zip(guards, replies):
        if isinstance(res, Exception):
            out.append(Failed(g, (), getattr(res, "code", None), str(res)))
            continue
        events = []
        for kind, items in (("job_suspended_no_room", res.get("suspended", ())),
                            ("job_resumed_room", res.get("resumed", ()))):
            verb = "suspended" if kind == "job_suspended_no_room" else "resumed"
            for j in items:
                events.append(Event(kind, g.host, (j.get("plot_id") or str(j["pid"]))[:12],
                                    f"{g.host}: job pid {j['pid']} {verb}: {j['reason']}",
                                    plot_id=j.get("plot_id"), pid=j["pid"], why=j["reason"]))
        out.append(Outcome(g, tuple(events)))
    return out


def start_args(h: Host, s: StartJob) -> dict:
    """The start_job request for one decision, with a fresh request id."""
    return dict(argv=list(s.argv), plotter=s.plotter, k=s.k,
                tmp_dir=s.tmp_dir, dst_dir=s.dst_dir,
                limits={"global_max_jobs": h.global_max_jobs,
                        "tmpdir_max_jobs": tmp_rules(h, s.tmp_dir)[0],
                        "global_stagger_s": h.global_stagger_m * 60.0},
                nice=h.nice, request_id=uuid.uuid4().hex)


def _started(action, s: StartJob, res: dict) -> Started:
    if res.get("replayed"):
        line = (f"started on {s.host} (its answer was lost, the host remembers it): "
                f"{s.describe()} (pid {res['pid']})")
    else:
        line = f"started on {s.host}: {s.describe()} (pid {res['pid']})"
    return Started(action, (Event("job_started", s.host, res["log_file"], line,
                                  **s.facts(pid=res["pid"], why=s.reason)),),
                   res["pid"], res["log_file"])


def start_job(fleet, hosts: Mapping[str, Host], s: StartJob, check: bool) -> Outcome:
    if check:
        return _done(s, "would_start_job", s.host, s.tmp_dir, f"would start on {s.host}: {s.describe()}",
                     **s.facts(why=s.reason))
    args = start_args(hosts[s.host], s)
    try:
        res = fleet.call(s.host, "start_job", **args)
    except LostReply as e:
        return Unanswered(s, (), args, time.time(), str(e))
    except (AgentError, SessionError) as e:
        return _failed(s, "job_start_failed", s.host, s.tmp_dir, f"{s.host}: start job failed: {e}", e,
                       **s.facts(why=str(e)))
    return _started(s, s, res)


def ask_again(fleet, a: AskAgain) -> Outcome:
    """The lost start sent again with its request id (core/followup.py
    decides whether to keep asking)."""
    try:
        res = fleet.call(a.start.host, "start_job", **a.args)
    except (LostReply, SessionError) as e:
        return Unanswered(a, (), a.args, a.sent_at, str(e))
    except AgentError as e:
        return Failed(a, (), e.code, str(e))
    return _started(a, a.start, res)


def clean_dead(fleet, c: CleanDead, check: bool) -> Outcome:
    """Clean up after a failed job; the agent re-checks every guard (plot id,
    the job's own tmp dirs, nothing holds them, nothing changed lately)."""
    if check:
        return _done(c, "would_clean_dead", c.host, c.plot_id, f"would clean up after {c.describe()}",
                     plot_id=c.plot_id, size_bytes=c.size_bytes, why=c.error)
    res = _call(fleet, c, c.host, "clean_dead", f"clean-up of {c.plot_id[:8]}", c.plot_id,
                {"plot_id": c.plot_id}, plot_id=c.plot_id, log_file=c.log_file)
    if isinstance(res, Failed):
        return res
    return _done(c, "cleaned_dead", c.host, c.plot_id,
                 f"cleaned up after {c.describe()}: removed {len(res['removed'])} files, "
                 f"{human_bytes(res['freed_bytes'])}", plot_id=c.plot_id,
                 size_bytes=res["freed_bytes"], why=f"{len(res['removed'])} files removed")


def note_drive_failure(fleet, n: NoteDriveFailure, check: bool) -> Outcome:
    if check:
        return _done(n, "would_record_drive_failure", n.host, n.to_dir,
                     f"would record on {n.host}: {n.describe()}", dir=n.to_dir, why=n.error)
    res = _call(fleet, n, n.host, "note_drive_failure", f"record for {n.to_dir}", n.to_dir,
                {"dir": n.to_dir}, to_dir=n.to_dir, key=n.key, at=n.at, error=n.error,
                fatal=n.fatal, plot=n.plot)
    if isinstance(res, Failed):
        return res
    # done, and a failure all the same: the drive failed a transfer
    return Outcome(n, (Event("drive_failure_recorded", n.host, n.to_dir,
                             f"drive failure recorded: {n.describe()}", failed=True, dir=n.to_dir,
                             why=("fatal for the drive: " if n.fatal else "") + n.error),))


def hold_job(fleet, h: HoldJob, check: bool) -> Outcome:
    """Suspend a multi-plot job that keeps making bad plots, with why (the
    agent keeps the reason and shows it until the operator resumes it)."""
    subject = (h.plot_id or str(h.pid))[:12]
    facts = dict(pid=h.pid, plot_id=h.plot_id, why=h.reason)
    if check:
        return _done(h, "would_suspend_job", h.host, subject, f"would suspend {h.describe()}",
                     **facts)
    res = _call(fleet, h, h.host, "suspend", f"suspend of pid {h.pid}", subject, facts,
                pid=h.pid, started_at=h.started_at, reason=h.reason)
    if isinstance(res, Failed):
        return res
    return Outcome(h, (Event("job_suspended_bad_plots", h.host, subject,
                             f"suspended {h.describe()}", failed=True, **facts),))


def quarantine(fleet, q: Quarantine, check: bool) -> Outcome:
    """Move a plot that failed its proof check to `<dst>/quarantine/` (the
    agent refuses unless the plot's own check record failed)."""
    name = posixpath.basename(q.plot)
    facts = dict(dir=posixpath.dirname(q.plot), why=q.reason)
    if check:
        return _done(q, "would_quarantine", q.host, name, f"would quarantine {q.describe()}",
                     **facts)
    res = _call(fleet, q, q.host, "quarantine_plot", f"quarantine of {name}", name, facts,
                plot=q.plot, reason=q.reason)
    if isinstance(res, Failed):
        return res
    return Outcome(q, (Event("plot_quarantined", q.host, name,
                             f"{q.host}: {name} failed its proof check and waits in "
                             f"{posixpath.dirname(res['path'])}: {q.reason} (never archived; "
                             f"`plotfleet release` is the farmer's call)", failed=True,
                             **facts),))


def start_check(fleet, s: StartCheck, check: bool) -> Outcome:
    """Start a plot's proof check on its plotter.  A host already running
    as many (another controller's) says busy: nothing to say, next pass."""
    name = posixpath.basename(s.plot)
    at = dict(dir=posixpath.dirname(s.plot))
    if check:
        return _done(s, "would_check", s.host, name, f"would check {s.describe()}", **at)
    try:
        res = fleet.call(s.host, "start_check", plot=s.plot, settings=s.settings(),
                         max_running=s.max_running)
    except AgentError as e:
        if e.code in ("busy", "exists"):
            return Failed(s, (), e.code, str(e))
        return _failed(s, "check_failed_to_start", s.host, name,
                       f"{s.host}: proof check of {name} did not start: {e}", e, why=str(e), **at)
    except SessionError as e:
        return _failed(s, "check_failed_to_start", s.host, name,
                       f"{s.host}: proof check of {name} did not start: {e}", e, why=str(e), **at)
    return _done(s, "check_started", s.host, name,
                 f"proof check: {s.describe()} (pid {res['pid']})", pid=res["pid"], **at)


def transfer_args(plotter: Host, harvester: Host, t: StartTransfer) -> dict:
    """The start_transfer request for one plot (the plotter sends it itself)."""
    return dict(plot=t.plot, to_host=t.to_host, to_dir=t.to_dir,
                dest_dir=t.dest_dir or t.to_dir, fsync=t.fsync, mode=t.mode,
                bwlimit_kbps=plotter.transfer_bwlimit_kbps, farm_dirs=list(harvester.farm_dirs),
                ssh={"host": harvester.address, "port": harvester.port, "user": harvester.user,
                     "key": plotter.transfer_ssh_key, "known_hosts": plotter.transfer_known_hosts})


def _move_facts(t: StartTransfer, **more) -> dict:
    return dict(dir=posixpath.dirname(t.plot), to_host=t.to_host, to_dir=t.to_dir,
                size_bytes=t.size_bytes, why=t.reason, **more)


def promote(fleet, p: Promote, check: bool) -> Outcome:
    """Check one copy against its source and finish it: both hosts digest
    the same random ranges (copycheck.py) and the harvester renames only a
    matching copy.  Promoted carries both digests (the source's removal is
    core's decision); CopyLost a copy gone or not matching."""
    name = posixpath.basename(p.plot)
    at = dict(dir=posixpath.dirname(p.partial), size_bytes=p.size_bytes)     # the copy
    if check:
        return _done(p, "would_promote", p.host, name, f"would check and promote: {p.describe()}",
                     dir=posixpath.dirname(p.partial), size_bytes=p.size_bytes, why=p.reason)
    spec = copycheck.spec()
    src = _call(fleet, p, p.from_host, "digest", f"digest of {name}", name,
                {"dir": posixpath.dirname(p.plot)}, path=p.plot, spec=spec)
    if isinstance(src, Failed):
        return src
    if src.get("header_error"):
        return _failed(p, "plot_header_mismatch", p.from_host, name,
                       f"{p.from_host}: {name} not archived: {src['header_error']}",
                       dir=posixpath.dirname(p.plot), why=f"not archived: {src['header_error']}")
    try:
        res = fleet.call(p.host, "promote", partial=p.partial, expect=copycheck.expect(src, spec))
    except AgentError as e:
        if e.code == "vanished":        # copy lost (drive swapped, file deleted)
            return CopyLost(p, (Event("copy_vanished", p.host, name,
                                      f"{p.host}: the copy of {name} vanished before its "
                                      f"promote: sending it again",
                                      why="vanished before its promote: sending it again",
                                      **at),), "copy vanished")
        if e.code == "mismatch":
            return CopyLost(p, (Event("copy_mismatch", p.host, name, f"{p.host}: {e}",
                                      failed=True, why=str(e), **at),),
                            "the copy there did not match its source")
        if e.code == "conflict":
            return _failed(p, "copy_conflict", p.host, name,
                           f"{p.host}: conflict: {e}; {name} stays on {p.from_host} and goes to "
                           f"another drive", e,
                           why=f"{e}; stays on {p.from_host}, goes to another drive", **at)
        return _failed(p, "promote_failed", p.host, name, f"{p.host}: promote failed: {e}", e,
                       why=str(e), **at)
    except SessionError as e:
        return _failed(p, "promote_failed", p.host, name, f"{p.host}: promote failed: {e}", e,
                       why=str(e), **at)
    how = f"{res['method']} digest, {human_bytes(res['bytes_read'])} read on each side"
    done = "confirmed" if res.get("already") else "promoted"
    return Promoted(p, (Event(f"copy_{done}", p.host, name, f"{done}: {p.describe()} ({how})",
                              why=f"{res['method']} digest", **at),),
                    src, dict(res, spec=spec))


def remove_source(fleet, r: RemoveSource) -> Outcome:
    name = posixpath.basename(r.plot)
    res = _call(fleet, r, r.host, "remove_plot", "remove source", name,
                {"dir": posixpath.dirname(r.plot)}, plot=r.plot, proof=r.proof)
    if isinstance(res, Failed):
        return res
    return _done(r, "source_removed", r.host, name, f"removed source: {r.describe()}",
                 dir=posixpath.dirname(r.plot), size_bytes=r.confirmed_size,
                 why=f"copy verified by {r.proof.get('method', '?')} digest")


def clean_partial(fleet, c: CleanPartial, check: bool) -> Outcome:
    if check:
        return _done(c, "would_clean_partial", c.host, c.partial, f"would clean: {c.describe()}",
                     dir=posixpath.dirname(c.partial), why=c.reason)
    res = _call(fleet, c, c.host, "clean_partial", "clean", c.partial,
                {"dir": posixpath.dirname(c.partial)}, partial=c.partial)
    if isinstance(res, Failed):
        return res
    return _done(c, "partial_cleaned", c.host, c.partial, f"cleaned: {c.describe()}",
                 dir=posixpath.dirname(c.partial), why=c.reason)


def transfer(fleet, hosts: Mapping[str, Host], t: StartTransfer, check: bool) -> Outcome:
    name = posixpath.basename(t.plot)
    if check:
        return _done(t, "would_transfer", t.from_host, name, f"would transfer: {t.describe()}",
                     **_move_facts(t))
    # claim the drive on the harvester first: another controller may have
    # chosen it in the same moment
    try:
        fleet.call(t.to_host, "reserve_drive", to_dir=t.to_dir, plot=t.plot,
                   size_bytes=t.size_bytes, reserve_bytes=hosts[t.to_host].farm_reserve_bytes)
    except AgentError as e:
        if e.code == "exists":      # the final name is taken there: is it this plot?
            return NameTaken(t, ())
        return _failed(t, "claim_failed", t.to_host, t.to_dir,
                       f"{t.to_host}: claim {t.to_host}:{t.to_dir} failed: {e}", e,
                       dir=t.to_dir, why=str(e))
    except SessionError as e:
        return _failed(t, "claim_failed", t.to_host, t.to_dir,
                       f"{t.to_host}: claim {t.to_host}:{t.to_dir} failed: {e}", e,
                       dir=t.to_dir, why=str(e))
    res = _call(fleet, t, t.from_host, "start_transfer", "transfer", name, _move_facts(t),
                **transfer_args(hosts[t.from_host], hosts[t.to_host], t))
    if isinstance(res, Failed):
        return res
    return _done(t, "transfer_started", t.from_host, name,
                 f"transfer: {t.describe()} (pid {res['pid']})", **_move_facts(t, pid=res["pid"]))


def apply(fleet, hosts: Mapping[str, Host], plan: Plan, check: bool) -> Tuple[Outcome, ...]:
    """Carry out every action of `plan`, in the plan's order: one outcome each."""
    out: List[Outcome] = [ask_again(fleet, a) for a in plan.asks]
    if plan.guards and not check:
        out += guard_room(fleet, plan.guards)
    out += [hold_job(fleet, h, check) for h in plan.holds]
    out += [start_job(fleet, hosts, s, check) for s in plan.starts]
    out += [clean_dead(fleet, c, check) for c in plan.cleanups]
    out += [quarantine(fleet, q, check) for q in plan.quarantines]
    out += [start_check(fleet, s, check) for s in plan.checks]
    out += [note_drive_failure(fleet, n, check) for n in plan.notes]
    out += [promote(fleet, p, check) for p in plan.promotes]
    out += [remove_source(fleet, r) for r in plan.removals]
    out += [clean_partial(fleet, c, check) for c in plan.cleans]
    out += [transfer(fleet, hosts, t, check) for t in plan.transfers]
    return tuple(out)
