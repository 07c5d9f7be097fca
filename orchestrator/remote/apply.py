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

import os
import posixpath
import socket
import time
import uuid
from dataclasses import asdict
from typing import Callable, Dict, List, Mapping, Optional, Tuple, TypeVar, Union

from agent.vocab.wire import ErrorCode, Limits, SshTarget, StartJobReply
from orchestrator.core import copycheck
from orchestrator.core.checker import Quarantine, StartCheck
from orchestrator.core.failures import HoldJob
from orchestrator.core.decisions import (CleanDead, CleanPartial, NoteDriveFailure, Promote,
                                         RemoveSource, StartJob, StartTransfer, human_bytes)
from orchestrator.core.events import Event, EventKind
from orchestrator.core.outcomes import (CopyLost, Failed, NameTaken, Outcome, Promoted, Started,
                                        Unanswered)
from orchestrator.core.plan import AskAgain, GuardRoom, Plan
from orchestrator.core.scheduler import tmp_rules
from orchestrator.errors import AgentError, LostReply, SessionError
from orchestrator.core.state import Host


R = TypeVar("R")


def _done(action, kind: EventKind, host: str, subject: str, detail: str, **facts) -> Outcome:
    return Outcome(action, (Event(kind, host, subject, detail, **facts),))


def _failed(action, kind: EventKind, host: str, subject: str, detail: str, e=None,
            **facts) -> Failed:
    return Failed(action, (Event(kind, host, subject, detail, failed=True, **facts),),
                  getattr(e, "code", None), str(e) if e is not None else detail)


def _call(ask: Callable[[], R], action, host: str, what: str, subject: str,
          facts: Optional[dict] = None) -> Union[R, Failed]:
    """ask() (one request through the typed client): its reply, or the Failed
    outcome saying `what` failed (its cause replaces the facts' reason)."""
    try:
        return ask()
    except (AgentError, SessionError) as e:
        return _failed(action, EventKind.REQUEST_FAILED, host, subject,
                       f"{host}: {what} failed: {e}", e,
                       **dict(facts or {}, why=f"{what} failed: {e}"))


def guard_room(fleet, guards: Tuple[GuardRoom, ...]) -> List[Outcome]:
    """Every guard at once (agent/ops/room.py decides which jobs, on the
    host); what each did becomes events.  A failed one says nothing: the
    snapshot that follows says what is wrong."""
    replies = fleet.each([(g.host, lambda agent, g=g: agent.guard_room(plot_bytes=g.plot_bytes))
                          for g in guards])
    out = []
    for g, res in zip(guards, replies):
        if isinstance(res, Exception):
            out.append(Failed(g, (), getattr(res, "code", None), str(res)))
            continue
        events = []
        for kind, items in ((EventKind.JOB_SUSPENDED_NO_ROOM, res.suspended),
                            (EventKind.JOB_RESUMED_ROOM, res.resumed)):
            verb = "suspended" if kind is EventKind.JOB_SUSPENDED_NO_ROOM else "resumed"
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
                limits=Limits(global_max_jobs=h.global_max_jobs,
                              tmpdir_max_jobs=tmp_rules(h, s.tmp_dir)[0],
                              global_stagger_s=h.global_stagger_m * 60.0),
                nice=h.nice, request_id=uuid.uuid4().hex)


def _started(action, s: StartJob, res: StartJobReply) -> Started:
    if res.replayed:
        line = (f"started on {s.host} (its answer was lost, the host remembers it): "
                f"{s.describe()} (pid {res.pid})")
    else:
        line = f"started on {s.host}: {s.describe()} (pid {res.pid})"
    return Started(action, (Event(EventKind.JOB_STARTED, s.host, res.log_file, line,
                                  **s.facts(pid=res.pid, why=s.reason)),),
                   res.pid, res.log_file)


def start_job(fleet, hosts: Mapping[str, Host], s: StartJob, check: bool) -> Outcome:
    if check:
        return _done(s, EventKind.WOULD_START_JOB, s.host, s.tmp_dir, f"would start on {s.host}: {s.describe()}",
                     **s.facts(why=s.reason))
    args = start_args(hosts[s.host], s)
    try:
        res = fleet.agent(s.host).start_job(**args)
    except LostReply as e:
        return Unanswered(s, (), args, time.time(), str(e))
    except (AgentError, SessionError) as e:
        return _failed(s, EventKind.JOB_START_FAILED, s.host, s.tmp_dir, f"{s.host}: start job failed: {e}", e,
                       **s.facts(why=str(e)))
    return _started(s, s, res)


def ask_again(fleet, a: AskAgain) -> Outcome:
    """The lost start sent again with its request id (core/followup.py
    decides whether to keep asking)."""
    try:
        res = fleet.agent(a.start.host).start_job(**a.args)
    except (LostReply, SessionError) as e:
        return Unanswered(a, (), a.args, a.sent_at, str(e))
    except AgentError as e:
        return Failed(a, (), e.code, str(e))
    return _started(a, a.start, res)


def clean_dead(fleet, c: CleanDead, check: bool) -> Outcome:
    """Clean up after a failed job; the agent re-checks every guard (plot id,
    the job's own tmp dirs, nothing holds them, nothing changed lately)."""
    if check:
        return _done(c, EventKind.WOULD_CLEAN_DEAD, c.host, c.plot_id, f"would clean up after {c.describe()}",
                     plot_id=c.plot_id, size_bytes=c.size_bytes, why=c.error)
    res = _call(lambda: fleet.agent(c.host).clean_dead(plot_id=c.plot_id, log_file=c.log_file),
                c, c.host, f"clean-up of {c.plot_id[:8]}", c.plot_id, {"plot_id": c.plot_id})
    if isinstance(res, Failed):
        return res
    return _done(c, EventKind.CLEANED_DEAD, c.host, c.plot_id,
                 f"cleaned up after {c.describe()}: removed {len(res.removed)} files, "
                 f"{human_bytes(res.freed_bytes)}", plot_id=c.plot_id,
                 size_bytes=res.freed_bytes, why=f"{len(res.removed)} files removed")


def note_drive_failure(fleet, n: NoteDriveFailure, check: bool) -> Outcome:
    if check:
        return _done(n, EventKind.WOULD_RECORD_DRIVE_FAILURE, n.host, n.to_dir,
                     f"would record on {n.host}: {n.describe()}", dir=n.to_dir, why=n.error)
    res = _call(lambda: fleet.agent(n.host).note_drive_failure(
                    to_dir=n.to_dir, key=n.key, at=n.at, error=n.error, fatal=n.fatal, plot=n.plot),
                n, n.host, f"record for {n.to_dir}", n.to_dir, {"dir": n.to_dir})
    if isinstance(res, Failed):
        return res
    # done, and a failure all the same: the drive failed a transfer
    return Outcome(n, (Event(EventKind.DRIVE_FAILURE_RECORDED, n.host, n.to_dir,
                             f"drive failure recorded: {n.describe()}", failed=True, dir=n.to_dir,
                             why=("fatal for the drive: " if n.fatal else "") + n.error),))


def hold_job(fleet, h: HoldJob, check: bool) -> Outcome:
    """Suspend a multi-plot job that keeps making bad plots, with why (the
    agent keeps the reason and shows it until the operator resumes it)."""
    subject = (h.plot_id or str(h.pid))[:12]
    facts = dict(pid=h.pid, plot_id=h.plot_id, why=h.reason)
    if check:
        return _done(h, EventKind.WOULD_SUSPEND_JOB, h.host, subject,
                     f"would suspend {h.describe()}", **facts)
    res = _call(lambda: fleet.agent(h.host).suspend(pid=h.pid, started_at=h.started_at,
                                                     reason=h.reason),
                h, h.host, f"suspend of pid {h.pid}", subject, facts)
    if isinstance(res, Failed):
        return res
    return Outcome(h, (Event(EventKind.JOB_SUSPENDED_BAD_PLOTS, h.host, subject,
                             f"suspended {h.describe()}", failed=True, **facts),))


def quarantine(fleet, q: Quarantine, check: bool) -> Outcome:
    """Move a plot that failed its proof check to `<dst>/quarantine/` (the
    agent refuses unless the plot's own check record failed)."""
    name = posixpath.basename(q.plot)
    facts = dict(dir=posixpath.dirname(q.plot), why=q.reason)
    if check:
        return _done(q, EventKind.WOULD_QUARANTINE, q.host, name,
                     f"would quarantine {q.describe()}", **facts)
    res = _call(lambda: fleet.agent(q.host).quarantine_plot(plot=q.plot, reason=q.reason),
                q, q.host, f"quarantine of {name}", name, facts)
    if isinstance(res, Failed):
        return res
    return Outcome(q, (Event(EventKind.PLOT_QUARANTINED, q.host, name,
                             f"{q.host}: {name} failed its proof check and waits in "
                             f"{posixpath.dirname(res.path)}: {q.reason} (never archived; "
                             f"`plotfleet release` is the farmer's call)", failed=True,
                             **facts),))


def start_checks(fleet, ss: List[StartCheck], check: bool) -> List[Outcome]:
    """Start one runner checking these plots of one plotter in turn.  A host
    already running as many (another controller's) says busy: nothing to
    say, next pass."""
    s = ss[0]
    name = posixpath.basename(s.plot)
    at = dict(dir=posixpath.dirname(s.plot))
    if check:
        return [_done(x, EventKind.WOULD_CHECK, x.host, posixpath.basename(x.plot),
                      f"would check {x.describe()}", dir=posixpath.dirname(x.plot))
                for x in ss]
    try:
        res = fleet.agent(s.host).start_check(plot=s.plot, settings=s.settings(),
                                              max_running=s.max_running,
                                              more=[x.plot for x in ss[1:]])
    except (AgentError, SessionError) as e:
        if isinstance(e, AgentError) and e.code in ("busy", "exists"):
            return [Failed(x, (), e.code, str(e)) for x in ss]
        first = _failed(s, EventKind.CHECK_FAILED_TO_START, s.host, name,
                        f"{s.host}: proof check of {name}"
                        + (f" and {len(ss) - 1} more" if len(ss) > 1 else "")
                        + f" did not start: {e}", e, why=str(e), **at)
        return [first] + [Failed(x, (), first.code, first.error) for x in ss[1:]]
    return [_done(x, EventKind.CHECK_STARTED, x.host, posixpath.basename(x.plot),
                  f"proof check: {x.describe()} (pid {res.pid}"
                  + (f", {i} ahead of it" if i else "") + ")", pid=res.pid,
                  dir=posixpath.dirname(x.plot)) for i, x in enumerate(ss)]


def check_runners(starts: Tuple[StartCheck, ...]) -> List[List[StartCheck]]:
    """The plan's proof checks as the runners they form: (plotter, runner)."""
    groups: Dict[tuple, List[StartCheck]] = {}
    for s in starts:
        groups.setdefault((s.host, s.runner), []).append(s)
    return list(groups.values())


def transfer_args(plotter: Host, harvester: Host, t: StartTransfer, queue=()) -> dict:
    """The start_transfer request for one plot, and the plots of `queue`
    behind it (the plotter sends them itself).  Every plot goes after its
    proof check: the runner copies none whose check does not let it, be it
    still running (handed over as its check starts) or failed since."""
    return dict(plot=t.plot, to_host=t.to_host, to_dir=t.to_dir, after_check=True,
                queue=[q.plot for q in queue], batch_bytes=plotter.batch_bytes,
                dest_dir=t.dest_dir or t.to_dir, fsync=t.fsync, mode=t.mode,
                bwlimit_kbps=plotter.transfer_bwlimit_kbps, farm_dirs=list(harvester.farm_dirs),
                ssh=SshTarget(host=harvester.address, port=harvester.port, user=harvester.user,
                              key=plotter.transfer_ssh_key, known_hosts=plotter.transfer_known_hosts))


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
        return _done(p, EventKind.WOULD_PROMOTE, p.host, name, f"would check and promote: {p.describe()}",
                     dir=posixpath.dirname(p.partial), size_bytes=p.size_bytes, why=p.reason)
    spec = copycheck.spec()
    digest = _call(lambda: fleet.agent(p.from_host).digest(path=p.plot, spec=spec),
                   p, p.from_host, f"digest of {name}", name, {"dir": posixpath.dirname(p.plot)})
    if isinstance(digest, Failed):
        return digest
    if digest.header_error:
        return _failed(p, EventKind.PLOT_HEADER_MISMATCH, p.from_host, name,
                       f"{p.from_host}: {name} not archived: {digest.header_error}",
                       dir=posixpath.dirname(p.plot), why=f"not archived: {digest.header_error}")
    src = asdict(digest)
    try:
        res = fleet.agent(p.host).promote(partial=p.partial, expect=copycheck.expect(src, spec),
                                           sent=p.sent)
    except AgentError as e:
        if e.code is ErrorCode.VANISHED:    # copy lost (drive swapped, file deleted)
            return CopyLost(p, (Event(EventKind.COPY_VANISHED, p.host, name,
                                      f"{p.host}: the copy of {name} vanished before its "
                                      f"promote: sending it again",
                                      why="vanished before its promote: sending it again",
                                      **at),), "copy vanished")
        if e.code is ErrorCode.MISMATCH:
            return CopyLost(p, (Event(EventKind.COPY_MISMATCH, p.host, name, f"{p.host}: {e}",
                                      failed=True, why=str(e), **at),),
                            "the copy there did not match its source")
        if e.code is ErrorCode.CONFLICT:
            return _failed(p, EventKind.COPY_CONFLICT, p.host, name,
                           f"{p.host}: conflict: {e}; {name} stays on {p.from_host} and goes to "
                           f"another drive", e,
                           why=f"{e}; stays on {p.from_host}, goes to another drive", **at)
        return _failed(p, EventKind.PROMOTE_FAILED, p.host, name, f"{p.host}: promote failed: {e}", e,
                       why=str(e), **at)
    except SessionError as e:
        return _failed(p, EventKind.PROMOTE_FAILED, p.host, name, f"{p.host}: promote failed: {e}", e,
                       why=str(e), **at)
    how = f"{res.method} digest, {human_bytes(res.bytes_read)} read on each side"
    done, kind = (("confirmed", EventKind.COPY_CONFIRMED) if res.already
                  else ("promoted", EventKind.COPY_PROMOTED))
    return Promoted(p, (Event(kind, p.host, name, f"{done}: {p.describe()} ({how})",
                              why=f"{res.method} digest", **at),),
                    src, dict(asdict(res), spec=spec))


def remove_source(fleet, r: RemoveSource) -> Outcome:
    name = posixpath.basename(r.plot)
    res = _call(lambda: fleet.agent(r.host).remove_plot(plot=r.plot, proof=r.proof),
                r, r.host, "remove source", name, {"dir": posixpath.dirname(r.plot)})
    if isinstance(res, Failed):
        return res
    return _done(r, EventKind.SOURCE_REMOVED, r.host, name, f"removed source: {r.describe()}",
                 dir=posixpath.dirname(r.plot), size_bytes=r.confirmed_size,
                 why=f"copy verified by {r.proof.get('method', '?')} digest")


def clean_partial(fleet, c: CleanPartial, check: bool) -> Outcome:
    if check:
        return _done(c, EventKind.WOULD_CLEAN_PARTIAL, c.host, c.partial, f"would clean: {c.describe()}",
                     dir=posixpath.dirname(c.partial), why=c.reason)
    res = _call(lambda: fleet.agent(c.host).clean_partial(partial=c.partial),
                c, c.host, "clean", c.partial, {"dir": posixpath.dirname(c.partial)})
    if isinstance(res, Failed):
        return res
    return _done(c, EventKind.PARTIAL_CLEANED, c.host, c.partial, f"cleaned: {c.describe()}",
                 dir=posixpath.dirname(c.partial), why=c.reason)


# who holds the drive claims this controller run takes (agent/ops/claims.py)
HOLDER = f"controller:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def replot_args(harvester: Host, t: StartTransfer) -> dict:
    """The replot part of a claim: the deletions planned for this plot."""
    if not t.deletions:
        return {}
    return {"plot_id": t.plot_id, "from_host": t.from_host,
            "max_deletes_per_hour": harvester.replot_max_deletes_per_hour,
            "deletions": [{"path": d.path, "size_bytes": d.size_bytes} for d in t.deletions]}


def _deletion_facts(t: StartTransfer, path: str, size: int, rule: str) -> dict:
    return dict(dir=posixpath.dirname(path), size_bytes=size, plot_id=t.plot_id,
                why=f"{rule}, room for {posixpath.basename(t.plot)}")


def _replot_refused(t: StartTransfer, host: str, why: str, e=None) -> Failed:
    name = posixpath.basename(t.plot)
    return _failed(t, EventKind.REPLOT_REFUSED, host, name,
                   f"{host}: nothing deleted for {name}: {why}", e, plot_id=t.plot_id, why=why)


def verified_on_plotter(fleet, t: StartTransfer) -> Optional[Failed]:
    """Before anything is deleted for it, the new plot is checked on its
    plotter: its header names it (id, k), its size is the one planned, its
    digest reads, and its proof check passed (read there now, not from the
    pass's snapshot).  None when it holds, else the Failed outcome saying why."""
    name = posixpath.basename(t.plot)
    at = {"dir": posixpath.dirname(t.plot)}
    d = _call(lambda: fleet.agent(t.from_host).digest(path=t.plot, spec=copycheck.spec()),
              t, t.from_host, f"digest of {name}", name, at)
    if isinstance(d, Failed):
        return d
    proof = _call(lambda: fleet.agent(t.from_host).read_checks(plots=[t.plot]),
                  t, t.from_host, f"proof check of {name}", name, at)
    if isinstance(proof, Failed):
        return proof
    rec = proof.checks.get(t.plot) or {}
    why = d.header_error or (
        f"size {d.size} is not the {t.size_bytes} planned" if d.size != t.size_bytes
        else f"its header names plot {d.header.get('plot_id')}"
        if d.header.get("plot_id") != t.plot_id
        else f"its proof check did not pass ({rec.get('status') or 'never checked'})"
        if rec.get("status") != "passed" else None)
    return _replot_refused(t, t.from_host, f"{name} not verified: {why}") if why else None


def bind(fleet, t: StartTransfer) -> Optional[Failed]:
    """The plotter binds the plot to this drive before anything is deleted
    for it (agent/ops/replot.py bind_replot): another controller, or a later
    pass, that chose another harvester for it is refused there."""
    try:
        fleet.agent(t.from_host).bind_replot(plot=t.plot, to_host=t.to_host, to_dir=t.to_dir,
                                             holder=HOLDER)
    except (AgentError, SessionError) as e:
        return _replot_refused(t, t.from_host, str(e), e)
    return None


def runner_holder(plotter: str) -> str:
    """Who holds the claim of a drive a plotter's runner writes: the runner,
    whichever controller (or pass) handed it its plots, so its queue grows
    under one claim."""
    return f"runner:{plotter}"


def queues(transfers: Tuple[StartTransfer, ...]) -> List[List[StartTransfer]]:
    """The plan's transfers as the queues they form, in the plan's order: the
    plots one plotter sends to one drive (a plot that replotting makes room
    for goes alone, under its own claim)."""
    groups: Dict[tuple, List[StartTransfer]] = {}
    out: List[List[StartTransfer]] = []
    for t in transfers:
        key = (t.from_host, t.to_host, t.to_dir, t.dest_dir, t.mode, t.fsync)
        if t.deletions or key not in groups:
            out.append([t])
            if not t.deletions:
                groups[key] = out[-1]
        else:
            groups[key].append(t)
    return out


def _would_transfer(t: StartTransfer) -> Outcome:
    return Outcome(t, tuple(
        Event(EventKind.WOULD_REPLOT_DELETE, d.host, posixpath.basename(d.path),
              f"would delete on {d.describe()}",
              **_deletion_facts(t, d.path, d.size_bytes, d.rule)) for d in t.deletions) + (
        Event(EventKind.WOULD_TRANSFER, t.from_host, posixpath.basename(t.plot),
              f"would transfer: {t.describe()}", **_move_facts(t)),))


def transfer(fleet, hosts: Mapping[str, Host], t: StartTransfer, check: bool,
             gone: Tuple[str, ...] = ()) -> Outcome:
    """One plot's transfer: a queue of one (transfer_queue)."""
    return transfer_queue(fleet, hosts, [t], check, gone)[0]


def transfer_queue(fleet, hosts: Mapping[str, Host], ts: List[StartTransfer], check: bool,
                   gone: Tuple[str, ...] = ()) -> List[Outcome]:
    """Claim the drive for every plot of one queue (queues()), make the
    plot's room there when the plan says so (replotting, a queue of one: the
    harvester deletes the old plots named, after checking each again), then
    hand the plots to the plotter's runner in one request (they join its
    queue when it already writes that drive).  One outcome per plot; a name
    already taken there has each plot claimed on its own, to tell which.
    `gone`: ids of plots whose room the harvester still keeps though their
    plotter no longer has them."""
    if check:
        return [_would_transfer(t) for t in ts]
    head = ts[0]
    name = posixpath.basename(head.plot)
    if head.deletions:
        refused = verified_on_plotter(fleet, head) or bind(fleet, head)
        if refused is not None:
            return [refused]
    # claim the drive on the harvester first: another controller may have
    # chosen it in the same moment; replotting's deletions happen there,
    # under that claim, right before the transfer starts
    harvester = hosts[head.to_host]
    try:
        claim = fleet.agent(head.to_host).reserve_drive(
            to_dir=head.to_dir, plot=head.plot, size_bytes=head.size_bytes,
            reserve_bytes=harvester.farm_reserve_bytes, gone=list(gone),
            holder=HOLDER if head.deletions else runner_holder(head.from_host),
            queue=[{"plot": t.plot, "size_bytes": t.size_bytes, "plot_id": t.plot_id}
                   for t in ts[1:]],
            **{"plot_id": head.plot_id, **replot_args(harvester, head)})
    except AgentError as e:
        if e.code is ErrorCode.EXISTS:  # the final name is taken there: is it this plot?
            if len(ts) == 1:
                return [NameTaken(head, ())]
            return [transfer(fleet, hosts, t, check, gone) for t in ts]
        if head.deletions:
            return [_replot_refused(head, head.to_host, str(e), e)]
        return _claim_failed(ts, e)
    except SessionError as e:
        return _claim_failed(ts, e)
    deleted = tuple(
        Event(EventKind.REPLOT_DELETED, head.to_host, d["name"],
              f"replot: deleted {head.to_host}:{d['path']} ({human_bytes(d['size_bytes'])}, "
              f"{d['rule']}) to make room for {name}",
              **_deletion_facts(head, d["path"], d["size_bytes"], d["rule"]))
        for d in claim.deleted)
    if not claim.space_ok:
        # the deletions gave no space back: no transfer there; the drive stops replotting
        return [Failed(head, deleted + (Event(
            EventKind.REPLOT_SPACE_MISSING, head.to_host, head.to_dir,
            f"{head.to_host}:{head.to_dir}: {claim.space_error}; {name} is not sent there",
            failed=True, dir=head.to_dir, plot_id=head.plot_id, why=claim.space_error),),
            None, claim.space_error or "")]
    args = transfer_args(hosts[head.from_host], harvester, head, ts[1:])
    res = _call(lambda: fleet.agent(head.from_host).start_transfer(**args),
                head, head.from_host, "transfer", name, _move_facts(head))
    if isinstance(res, Failed):
        # nothing is coming: the drive is free for the next plot now, not in CLAIM_S
        for t in ts:
            try:
                fleet.agent(t.to_host).release_drive(to_dir=t.to_dir, plot=t.plot)
            except (AgentError, SessionError):
                break       # the claim expires by itself (agent/facts/claim_record.py)
        first = Failed(head, deleted + res.events, res.code, res.error) if deleted else res
        return [first] + [Failed(t, (), res.code, res.error) for t in ts[1:]]
    joined = ", joins the queue it is at" if res.joined else ""
    # a plot already on its way there (another controller's pass sent it) is
    # no new transfer: nothing to say
    return [Outcome(t, ()) if t.plot in res.already else Outcome(t, (deleted if i == 0 else ()) + (
        Event(EventKind.TRANSFER_STARTED, t.from_host, posixpath.basename(t.plot),
              f"transfer: {t.describe()} (pid {res.pid}" + (f", {i} queued ahead" if i else "")
              + joined + ")", **_move_facts(t, pid=res.pid)),))
        for i, t in enumerate(ts)]


def _claim_failed(ts: List[StartTransfer], e) -> List[Outcome]:
    """The drive refused the queue: said once, for its first plot; the others
    wait for the next pass with it."""
    head = ts[0]
    first = _failed(head, EventKind.CLAIM_FAILED, head.to_host, head.to_dir,
                    f"{head.to_host}: claim {head.to_host}:{head.to_dir} failed: {e}"
                    + (f" ({len(ts)} plots)" if len(ts) > 1 else ""), e,
                    dir=head.to_dir, why=str(e))
    return [first] + [Failed(t, (), first.code, first.error) for t in ts[1:]]


def apply(fleet, hosts: Mapping[str, Host], plan: Plan, check: bool) -> Tuple[Outcome, ...]:
    """Carry out every action of `plan`, in the plan's order: one outcome each."""
    out: List[Outcome] = [ask_again(fleet, a) for a in plan.asks]
    if plan.guards and not check:
        out += guard_room(fleet, plan.guards)
    out += [hold_job(fleet, h, check) for h in plan.holds]
    out += [start_job(fleet, hosts, s, check) for s in plan.starts]
    out += [clean_dead(fleet, c, check) for c in plan.cleanups]
    out += [quarantine(fleet, q, check) for q in plan.quarantines]
    out += [o for ss in check_runners(plan.checks) for o in start_checks(fleet, ss, check)]
    out += [note_drive_failure(fleet, n, check) for n in plan.notes]
    out += [promote(fleet, p, check) for p in plan.promotes]
    out += [remove_source(fleet, r) for r in plan.removals]
    out += [clean_partial(fleet, c, check) for c in plan.cleans]
    gone = dict(plan.archive.gone) if plan.archive is not None else {}
    out += [o for q in queues(plan.transfers)
            for o in transfer_queue(fleet, hosts, q, check, gone.get(q[0].to_host, ()))]
    return tuple(out)
