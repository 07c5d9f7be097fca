"""Carry decisions out through the fleet's agent sessions.

The only place where scheduler/archiver output turns into requests.  Every
action is independent: a refusal or a failing host becomes a log line and the
rest go on.  Under --check nothing is sent; the log says what would be done.
"""
from __future__ import annotations

import posixpath
import time
import uuid
from dataclasses import dataclass, field
from typing import List, Mapping, Optional, Tuple

from .actions import StartJob, StartTransfer, human_bytes, remove_after_promote
from .errors import AgentError, LostReply, SessionError
from .model import Host


# the agent's promote refusal when neither the partial nor the final file is there
VANISHED = "no such partial"
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
    """What a pass did, as plain lines (no markup: paths and host messages are
    shown as they are); `failed` are the lines that report a failure."""
    lines: List[str] = field(default_factory=list)
    failed: List[str] = field(default_factory=list)
    started: List[tuple] = field(default_factory=list)    # (host, pid, log_file)
    unanswered: List[Unanswered] = field(default_factory=list)

    def add(self, line: str) -> None:
        self.lines.append(line)

    def fail(self, line: str) -> None:
        self.lines.append(line)
        self.failed.append(line)


def _call(fleet, host: str, op: str, out: Outcome, what: str, **args) -> Optional[dict]:
    try:
        return fleet.call(host, op, **args)
    except (AgentError, SessionError) as e:
        out.fail(f"{host}: {what} failed: {e}")
        return None


def start_args(h: Host, s: StartJob) -> dict:
    """The start_job request for one decision, with a fresh request id."""
    return dict(config=h.agent_config(), argv=list(s.argv), plotter=s.plotter, k=s.k,
                tmp_dir=s.tmp_dir, dst_dir=s.dst_dir, tmp2_dir=s.tmp2_dir,
                limits={"global_max_jobs": h.global_max_jobs,
                        "tmpdir_max_jobs": h.tmp_overrides.get(s.tmp_dir, {}).get(
                            "tmpdir_max_jobs", h.tmpdir_max_jobs),
                        "global_stagger_s": h.global_stagger_m * 60.0},
                request_id=uuid.uuid4().hex)


def _started(out: Outcome, s: StartJob, res: dict) -> None:
    out.started.append((s.host, res["pid"], res["log_file"]))
    if res.get("replayed"):
        out.add(f"started on {s.host} (its answer was lost, the host remembers it): "
                f"{s.describe()} (pid {res['pid']})")
    else:
        out.add(f"started on {s.host}: {s.describe()} (pid {res['pid']})")


def start_jobs(fleet, hosts: Mapping[str, Host], starts, out: Outcome, check: bool) -> None:
    for s in starts:
        if check:
            out.add(f"would start on {s.host}: {s.describe()}")
            continue
        args = start_args(hosts[s.host], s)
        try:
            res = fleet.call(s.host, "start_job", **args)
        except LostReply as e:
            out.fail(f"{s.host}: start job got no answer ({e}); asking again next pass")
            out.unanswered.append(Unanswered(s, args, time.time()))
            continue
        except (AgentError, SessionError) as e:
            out.fail(f"{s.host}: start job failed: {e}")
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
                out.fail(f"{s.host}: start job still unanswered after {ASK_AGAIN_S:g}s, "
                         f"no longer asked: {e}")
            continue
        except AgentError as e:
            if e.code == "deadline_expired" and now - u.sent_at < ASK_AGAIN_S:
                # this try did nothing, but the agent that got the first one
                # may still be finishing it: only its record can tell
                still.append(u)
            else:
                out.fail(f"{s.host}: start job failed: {e}")
            continue
        _started(out, s, res)
    return tuple(still)


def clean_dead(fleet, hosts: Mapping[str, Host], cleans, out: Outcome, check: bool) -> None:
    """Clean up after failed jobs; the agent re-checks every guard (plot id,
    the job's own tmp dirs, nothing holds them, nothing changed lately)."""
    for c in cleans:
        if check:
            out.add(f"would clean up after {c.describe()}")
            continue
        res = _call(fleet, c.host, "clean_dead", out, f"clean-up of {c.plot_id[:8]}",
                    config=hosts[c.host].agent_config(), plot_id=c.plot_id,
                    log_file=c.log_file)
        if res is not None:
            out.add(f"cleaned up after {c.describe()}: removed {len(res['removed'])} files, "
                    f"{human_bytes(res['freed_bytes'])}")


def transfer_args(plotter: Host, harvester: Host, t: StartTransfer) -> dict:
    """The start_transfer request for one plot (the plotter sends it itself)."""
    return dict(config=plotter.agent_config(), plot=t.plot, to_host=t.to_host, to_dir=t.to_dir,
                mode=t.mode, bwlimit_kbps=plotter.transfer_bwlimit_kbps,
                size_bytes=t.size_bytes,
                ssh={"host": harvester.address, "port": harvester.port, "user": harvester.user,
                     "key": plotter.transfer_ssh_key, "known_hosts": plotter.transfer_known_hosts})


def archive(fleet, hosts: Mapping[str, Host], decision, out: Outcome, check: bool) -> None:
    # finish what arrived first: a promoted plot frees its drive for the next
    resend = []
    for p in decision.promotes:
        if check:
            out.add(f"would promote: {p.describe()}")
            continue
        try:
            res = fleet.call(p.host, "promote", config=hosts[p.host].agent_config(),
                             partial=p.partial, size_bytes=p.size_bytes)
        except AgentError as e:
            if str(e).startswith(VANISHED):     # copy lost (drive swapped, file deleted)
                out.add(f"{p.host}: the copy of {posixpath.basename(p.plot)} vanished before "
                        f"its promote: sending it again")
                resend.append(StartTransfer(p.from_host, p.plot, p.size_bytes, p.host,
                                            posixpath.dirname(p.partial),
                                            hosts[p.from_host].transfer, "copy vanished"))
            else:
                out.fail(f"{p.host}: promote failed: {e}")
            continue
        except SessionError as e:
            out.fail(f"{p.host}: promote failed: {e}")
            continue
        out.add(f"promoted: {p.describe()}")
        try:
            rm = remove_after_promote(p, res["size_bytes"])
        except ValueError as e:
            out.fail(str(e))
            continue
        if _call(fleet, rm.host, "remove_plot", out, "remove source",
                 config=hosts[rm.host].agent_config(), plot=rm.plot,
                 confirmed_size=rm.confirmed_size) is not None:
            out.add(f"removed source: {rm.describe()}")
    for c in decision.cleans:
        if check:
            out.add(f"would clean: {c.describe()}")
            continue
        if _call(fleet, c.host, "clean_partial", out, "clean", config=hosts[c.host].agent_config(),
                 partial=c.partial) is not None:
            out.add(f"cleaned: {c.describe()}")
    for t in tuple(decision.transfers) + tuple(resend):
        if check:
            out.add(f"would transfer: {t.describe()}")
            continue
        # claim the drive on the harvester first: another controller may have
        # chosen it in the same moment
        if _call(fleet, t.to_host, "reserve_drive", out, f"claim {t.to_host}:{t.to_dir}",
                 config=hosts[t.to_host].agent_config(), to_dir=t.to_dir, plot=t.plot,
                 size_bytes=t.size_bytes,
                 reserve_bytes=hosts[t.to_host].farm_reserve_bytes) is None:
            continue
        res = _call(fleet, t.from_host, "start_transfer", out, "transfer",
                    **transfer_args(hosts[t.from_host], hosts[t.to_host], t))
        if res is not None:
            out.add(f"transfer: {t.describe()} (pid {res['pid']})")
