"""Carry decisions out through the fleet's agent sessions.

The only place where scheduler/archiver decisions turn into requests.  Every
action is independent: a refusal or a failing host becomes a failed Event
(core/events.py) and the rest go on.  Under --check nothing is sent; the
`would_*` events say what would be done.
"""
from __future__ import annotations

import posixpath
import time
import uuid
from dataclasses import dataclass, field
from typing import List, Mapping, Optional, Tuple

from orchestrator.core import copycheck
from orchestrator.core.decisions import Promote, StartJob, StartTransfer, human_bytes, remove_after_promote
from orchestrator.core.archiver import PARTIAL_SUFFIX
from orchestrator.core.events import Event
from orchestrator.core.scheduler import tmp_rules
from orchestrator.errors import AgentError, LostReply, SessionError
from orchestrator.core.state import Host, expected_plot_bytes

# a start whose answer was lost is asked about again for this long; after
# that the host's own record still keeps it from running twice
ASK_AGAIN_S = 600.0


@dataclass(frozen=True)
class Unanswered:
    """A start_job that went out and got no answer: it may be running."""
    start: StartJob
    args: dict              # the request as sent, request_id included
    sent_at: float


@dataclass
class Outcome:
    """What a pass did: its events (core/events.py), the jobs it started and
    the starts whose answer was lost."""
    events: List[Event] = field(default_factory=list)
    started: List[tuple] = field(default_factory=list)    # (host, pid, log_file)
    unanswered: List[Unanswered] = field(default_factory=list)

    def add(self, kind: str, host: str, subject: str, detail: str, **facts) -> None:
        self.events.append(Event(kind, host, subject, detail, **facts))

    def fail(self, kind: str, host: str, subject: str, detail: str, **facts) -> None:
        self.events.append(Event(kind, host, subject, detail, failed=True, **facts))

    @property
    def lines(self) -> List[str]:
        return [e.detail for e in self.events]


def _call(fleet, host: str, op: str, out: Outcome, what: str, subject: str = "",
          facts: Optional[dict] = None, **args) -> Optional[dict]:
    try:
        return fleet.call(host, op, **args)
    except (AgentError, SessionError) as e:
        out.fail("request_failed", host, subject or what, f"{host}: {what} failed: {e}",
                 why=f"{what} failed: {e}", **(facts or {}))
        return None


def guard_room(fleet, hosts: Mapping[str, Host], out: Outcome, names=None) -> None:
    """Each plotter with multi-plot jobs (count != 1, or the hosts `names`)
    suspends those whose dst cannot take their plot and resumes the ones it
    suspended that now fit (agent/ops/room.py decides, on the host); what it
    did becomes events."""
    targets = [h for h in fleet.hosts if h.is_plotter and
               (h.count != 1 if names is None else h.name in names)]
    if not targets:
        return

    def one(h: Host):
        try:
            return fleet.call(h.name, "guard_room",
                              plot_bytes=expected_plot_bytes(h.k, h.compression))
        except (AgentError, SessionError):
            return None         # the snapshot that follows says what is wrong
    for h, res in zip(targets, fleet._map(one, targets)):
        for kind, items in (("job_suspended_no_room", (res or {}).get("suspended", ())),
                            ("job_resumed_room", (res or {}).get("resumed", ()))):
            for j in items:
                verb = "suspended" if kind == "job_suspended_no_room" else "resumed"
                out.add(kind, h.name, (j.get("plot_id") or str(j["pid"]))[:12],
                        f"{h.name}: job pid {j['pid']} {verb}: {j['reason']}",
                        plot_id=j.get("plot_id"), pid=j["pid"], why=j["reason"])


def start_args(h: Host, s: StartJob) -> dict:
    """The start_job request for one decision, with a fresh request id."""
    return dict(argv=list(s.argv), plotter=s.plotter, k=s.k,
                tmp_dir=s.tmp_dir, dst_dir=s.dst_dir,
                limits={"global_max_jobs": h.global_max_jobs,
                        "tmpdir_max_jobs": tmp_rules(h, s.tmp_dir)[0],
                        "global_stagger_s": h.global_stagger_m * 60.0},
                nice=h.nice, request_id=uuid.uuid4().hex)


def _job_facts(s: StartJob, **more) -> dict:
    return dict(dir=s.tmp_dir, to_dir=s.dst_dir, what=f"{s.plotter} k{s.k}", **more)


def _started(out: Outcome, s: StartJob, res: dict) -> None:
    out.started.append((s.host, res["pid"], res["log_file"]))
    facts = _job_facts(s, pid=res["pid"], why=s.reason)
    if res.get("replayed"):
        out.add("job_started", s.host, res["log_file"],
                f"started on {s.host} (its answer was lost, the host remembers it): "
                f"{s.describe()} (pid {res['pid']})", **facts)
    else:
        out.add("job_started", s.host, res["log_file"],
                f"started on {s.host}: {s.describe()} (pid {res['pid']})", **facts)


def start_jobs(fleet, hosts: Mapping[str, Host], starts, out: Outcome, check: bool) -> None:
    for s in starts:
        if check:
            out.add("would_start_job", s.host, s.tmp_dir, f"would start on {s.host}: {s.describe()}",
                    **_job_facts(s, why=s.reason))
            continue
        args = start_args(hosts[s.host], s)
        try:
            res = fleet.call(s.host, "start_job", **args)
        except LostReply as e:
            out.fail("job_start_unanswered", s.host, s.tmp_dir,
                     f"{s.host}: start job got no answer ({e}); asking again next pass",
                     **_job_facts(s, why=f"no answer ({e}); asking again next pass"))
            out.unanswered.append(Unanswered(s, args, time.time()))
            continue
        except (AgentError, SessionError) as e:
            out.fail("job_start_failed", s.host, s.tmp_dir, f"{s.host}: start job failed: {e}",
                     **_job_facts(s, why=str(e)))
            continue
        _started(out, s, res)


def ask_again(fleet, unanswered, out: Outcome, now: Optional[float] = None
              ) -> Tuple[Unanswered, ...]:
    """Send each unanswered start_job again with its request id: the host
    answers what it did if the first one ran, or runs it now (its limits
    checked again), never both.  Returns the ones still without an answer."""
    now = time.time() if now is None else now
    still = []
    for u in unanswered:
        s = u.start
        try:
            res = fleet.call(s.host, "start_job", **u.args)
        except (LostReply, SessionError) as e:
            if now - u.sent_at < ASK_AGAIN_S:
                still.append(u)
            else:
                out.fail("job_start_unanswered", s.host, s.tmp_dir,
                         f"{s.host}: start job still unanswered after {ASK_AGAIN_S:g}s, "
                         f"no longer asked: {e}",
                         **_job_facts(s, why=f"still unanswered after {ASK_AGAIN_S:g}s, "
                                             f"no longer asked: {e}"))
            continue
        except AgentError as e:
            if e.code == "deadline_expired" and now - u.sent_at < ASK_AGAIN_S:
                # this try did nothing, but the agent that got the first one
                # may still be finishing it: only its record can tell
                still.append(u)
            else:
                out.fail("job_start_failed", s.host, s.tmp_dir, f"{s.host}: start job failed: {e}",
                         **_job_facts(s, why=str(e)))
            continue
        _started(out, s, res)
    return tuple(still)


def clean_dead(fleet, hosts: Mapping[str, Host], cleans, out: Outcome, check: bool) -> None:
    """Clean up after failed jobs; the agent re-checks every guard (plot id,
    the job's own tmp dirs, nothing holds them, nothing changed lately)."""
    for c in cleans:
        if check:
            out.add("would_clean_dead", c.host, c.plot_id, f"would clean up after {c.describe()}",
                    plot_id=c.plot_id, size_bytes=c.size_bytes, why=c.error)
            continue
        res = _call(fleet, c.host, "clean_dead", out, f"clean-up of {c.plot_id[:8]}", c.plot_id,
                    {"plot_id": c.plot_id}, plot_id=c.plot_id, log_file=c.log_file)
        if res is not None:
            out.add("cleaned_dead", c.host, c.plot_id,
                    f"cleaned up after {c.describe()}: removed {len(res['removed'])} files, "
                    f"{human_bytes(res['freed_bytes'])}", plot_id=c.plot_id,
                    size_bytes=res["freed_bytes"], why=f"{len(res['removed'])} files removed")


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


def _resend(p: Promote, hosts: Mapping[str, Host], why: str) -> StartTransfer:
    return StartTransfer(p.from_host, p.plot, p.size_bytes, p.host, posixpath.dirname(p.partial),
                         hosts[p.from_host].transfer, why,
                         dest_dir=posixpath.dirname(p.partial))


def promote(fleet, hosts: Mapping[str, Host], p: Promote, out: Outcome) -> Optional[StartTransfer]:
    """Check one copy against its source and finish it: both hosts digest
    the same random ranges (copycheck.py), the harvester renames only a
    matching copy, and the plotter deletes its source only once it has
    compared the final file's digest with its own.  Returns the transfer to
    start again when the copy was lost or did not match."""
    name = posixpath.basename(p.plot)
    spec = copycheck.spec()
    at = dict(dir=posixpath.dirname(p.partial), size_bytes=p.size_bytes)     # the copy
    src = _call(fleet, p.from_host, "digest", out, f"digest of {name}", name,
                {"dir": posixpath.dirname(p.plot)}, path=p.plot, spec=spec)
    if src is None:
        return None
    if src.get("header_error"):
        out.fail("plot_header_mismatch", p.from_host, name,
                 f"{p.from_host}: {name} not archived: {src['header_error']}",
                 dir=posixpath.dirname(p.plot), why=f"not archived: {src['header_error']}")
        return None
    try:
        res = fleet.call(p.host, "promote", partial=p.partial, expect=copycheck.expect(src, spec))
    except AgentError as e:
        if e.code == "vanished":        # copy lost (drive swapped, file deleted)
            out.add("copy_vanished", p.host, name,
                    f"{p.host}: the copy of {name} vanished before its promote: sending it again",
                    why="vanished before its promote: sending it again", **at)
            return _resend(p, hosts, "copy vanished")
        if e.code == "mismatch":
            out.fail("copy_mismatch", p.host, name, f"{p.host}: {e}", why=str(e), **at)
            return _resend(p, hosts, "the copy there did not match its source")
        if e.code == "conflict":
            out.fail("copy_conflict", p.host, name,
                     f"{p.host}: conflict: {e}; {name} stays on {p.from_host} and goes to "
                     f"another drive", why=f"{e}; stays on {p.from_host}, goes to another drive",
                     **at)
            return None
        out.fail("promote_failed", p.host, name, f"{p.host}: promote failed: {e}",
                 why=str(e), **at)
        return None
    except SessionError as e:
        out.fail("promote_failed", p.host, name, f"{p.host}: promote failed: {e}",
                 why=str(e), **at)
        return None
    try:
        rm = remove_after_promote(p, src, dict(res, spec=spec))
    except ValueError as e:
        out.fail("copy_mismatch", p.host, name, str(e), why=str(e), **at)
        return None
    how = f"{res['method']} digest, {human_bytes(res['bytes_read'])} read on each side"
    out.add("copy_confirmed" if res.get("already") else "copy_promoted", p.host, name,
            f"{'confirmed' if res.get('already') else 'promoted'}: {p.describe()} ({how})",
            why=f"{res['method']} digest", **at)
    if _call(fleet, rm.host, "remove_plot", out, "remove source", name,
             {"dir": posixpath.dirname(rm.plot)}, plot=rm.plot, proof=rm.proof) is not None:
        out.add("source_removed", rm.host, name, f"removed source: {rm.describe()}",
                dir=posixpath.dirname(rm.plot), size_bytes=rm.confirmed_size,
                why=f"copy verified by {rm.proof.get('method', '?')} digest")
    return None


def hold_jobs(fleet, holds, out: Outcome, check: bool) -> None:
    """Suspend the multi-plot jobs that keep making bad plots, with why."""
    for h in holds:
        subject = (h.plot_id or str(h.pid))[:12]
        if check:
            out.add("would_suspend_job", h.host, subject, f"would suspend {h.describe()}",
                    pid=h.pid, plot_id=h.plot_id, why=h.reason)
            continue
        if _call(fleet, h.host, "suspend", out, f"suspend of pid {h.pid}", subject, pid=h.pid,
                 started_at=h.started_at, reason=h.reason) is not None:
            out.fail("job_suspended_bad_plots", h.host, subject, f"suspended {h.describe()}",
                     pid=h.pid, plot_id=h.plot_id, why=h.reason)


def proof_checks(fleet, decision, out: Outcome, check: bool) -> None:
    """Start the proof checks and quarantine the plots that failed theirs
    (core/checker.py decided); a refusal is a failed event, the rest go on."""
    for q in decision.quarantines:
        name = posixpath.basename(q.plot)
        facts = dict(dir=posixpath.dirname(q.plot), why=q.reason)
        if check:
            out.add("would_quarantine", q.host, name, f"would quarantine {q.describe()}",
                    **facts)
            continue
        res = _call(fleet, q.host, "quarantine_plot", out, f"quarantine of {name}", name,
                    plot=q.plot, reason=q.reason)
        if res is not None:
            out.fail("plot_quarantined", q.host, name,
                     f"{q.host}: {name} failed its proof check and waits in "
                     f"{posixpath.dirname(res['path'])}: {q.reason} (never archived; "
                     f"`plotfleet release` is the farmer's call)", **facts)
    for s in decision.starts:
        name = posixpath.basename(s.plot)
        at = dict(dir=posixpath.dirname(s.plot))
        if check:
            out.add("would_check", s.host, name, f"would check {s.describe()}", **at)
            continue
        try:
            res = fleet.call(s.host, "start_check", plot=s.plot, settings=s.settings(),
                             max_running=s.max_running)
        except AgentError as e:
            if e.code in ("busy", "exists"):    # another controller's check: next pass
                continue
            out.fail("check_failed_to_start", s.host, name,
                     f"{s.host}: proof check of {name} did not start: {e}", why=str(e), **at)
            continue
        except SessionError as e:
            out.fail("check_failed_to_start", s.host, name,
                     f"{s.host}: proof check of {name} did not start: {e}", why=str(e), **at)
            continue
        out.add("check_started", s.host, name, f"proof check: {s.describe()} (pid {res['pid']})",
                pid=res["pid"], **at)


def archive(fleet, hosts: Mapping[str, Host], decision, out: Outcome, check: bool) -> None:
    for n in decision.notes:
        if check:
            out.add("would_record_drive_failure", n.host, n.to_dir,
                    f"would record on {n.host}: {n.describe()}", dir=n.to_dir, why=n.error)
            continue
        if _call(fleet, n.host, "note_drive_failure", out, f"record for {n.to_dir}", n.to_dir,
                 {"dir": n.to_dir}, to_dir=n.to_dir, key=n.key, at=n.at,
                 error=n.error, fatal=n.fatal, plot=n.plot) is not None:
            out.fail("drive_failure_recorded", n.host, n.to_dir,
                     f"drive failure recorded: {n.describe()}", dir=n.to_dir,
                     why=("fatal for the drive: " if n.fatal else "") + n.error)
    # finish what arrived first: a promoted plot frees its drive for the next
    resend = []
    for p in decision.promotes:
        if check:
            out.add("would_promote", p.host, posixpath.basename(p.plot),
                    f"would check and promote: {p.describe()}", dir=posixpath.dirname(p.partial),
                    size_bytes=p.size_bytes, why=p.reason)
            continue
        again = promote(fleet, hosts, p, out)
        if again is not None:
            resend.append(again)
    for c in decision.cleans:
        if check:
            out.add("would_clean_partial", c.host, c.partial, f"would clean: {c.describe()}",
                    dir=posixpath.dirname(c.partial), why=c.reason)
            continue
        if _call(fleet, c.host, "clean_partial", out, "clean", c.partial,
                 {"dir": posixpath.dirname(c.partial)}, partial=c.partial) is not None:
            out.add("partial_cleaned", c.host, c.partial, f"cleaned: {c.describe()}",
                    dir=posixpath.dirname(c.partial), why=c.reason)
    for t in tuple(decision.transfers) + tuple(resend):
        if check:
            out.add("would_transfer", t.from_host, posixpath.basename(t.plot),
                    f"would transfer: {t.describe()}", **_move_facts(t))
            continue
        # claim the drive on the harvester first: another controller may have
        # chosen it in the same moment
        try:
            fleet.call(t.to_host, "reserve_drive", to_dir=t.to_dir, plot=t.plot, size_bytes=t.size_bytes,
                       reserve_bytes=hosts[t.to_host].farm_reserve_bytes)
        except AgentError as e:
            if e.code == "exists":      # the final name is taken there: is it this plot?
                dest = t.dest_dir or t.to_dir
                promote(fleet, hosts, Promote(
                    t.to_host, posixpath.join(dest, posixpath.basename(t.plot) + PARTIAL_SUFFIX),
                    t.size_bytes, t.from_host, t.plot,
                    "a file of its name is already there: compared first"), out)
            else:
                out.fail("claim_failed", t.to_host, t.to_dir,
                         f"{t.to_host}: claim {t.to_host}:{t.to_dir} failed: {e}",
                         dir=t.to_dir, why=str(e))
            continue
        except SessionError as e:
            out.fail("claim_failed", t.to_host, t.to_dir,
                     f"{t.to_host}: claim {t.to_host}:{t.to_dir} failed: {e}",
                     dir=t.to_dir, why=str(e))
            continue
        res = _call(fleet, t.from_host, "start_transfer", out, "transfer",
                    posixpath.basename(t.plot), _move_facts(t),
                    **transfer_args(hosts[t.from_host], hosts[t.to_host], t))
        if res is not None:
            out.add("transfer_started", t.from_host, posixpath.basename(t.plot),
                    f"transfer: {t.describe()} (pid {res['pid']})",
                    **_move_facts(t, pid=res["pid"]))
