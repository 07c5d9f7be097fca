"""What follows from what a plan came to, decided in the same pass.

`follow_up(outcomes, hosts, now)` reads the outcomes remote/apply.py
returned (core/outcomes.py) and decides, as the pass goes on:

- a copy that vanished or did not match its source: sent again, to the
  drive it was on (its claim is made again first), unless the promote only
  compared a file that stood under the final name;
- a claim that found the plot's final name taken: that file is compared
  with the source (a Promote), so a copy finished by an earlier controller
  is confirmed and a different file is a conflict, left alone;
- a promoted copy: its source is removed, only with digests that agree
  (decisions.remove_after_promote);
- a start whose answer was lost: asked again next pass, by its request id,
  for ASK_AGAIN_S; after that the host's own record still keeps it from
  running twice.

Its Plan is applied at once; its events are the decisions to stop trying.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Iterable, List, Mapping, Tuple

from agent.vocab.wire import ErrorCode
from orchestrator.core.archiver import PARTIAL_SUFFIX
from orchestrator.core.decisions import Promote, StartJob, StartTransfer, remove_after_promote
from orchestrator.core.events import Event, EventKind
from orchestrator.core.outcomes import (CopyLost, Failed, NameTaken, Outcome, Promoted, Started,
                                        Unanswered)
from orchestrator.core.plan import AskAgain, Plan
from orchestrator.core.state import Host

# a start whose answer was lost is asked about again for this long
ASK_AGAIN_S = 600.0


@dataclass(frozen=True)
class FollowUp:
    plan: Plan                                  # applied at once, in the same pass
    events: Tuple[Event, ...] = ()              # what is no longer tried, and why
    asks: Tuple[AskAgain, ...] = ()             # asked again at the next pass
    started: Tuple[Tuple[str, int, str], ...] = ()  # (host, pid, log_file) of jobs started


def _resend(p: Promote, hosts: Mapping[str, Host], why: str) -> StartTransfer:
    return StartTransfer(p.from_host, p.plot, p.size_bytes, p.host, posixpath.dirname(p.partial),
                         hosts[p.from_host].transfer, why,
                         dest_dir=posixpath.dirname(p.partial))


def _compare(t: StartTransfer) -> Promote:
    dest = t.dest_dir or t.to_dir
    return Promote(t.to_host, posixpath.join(dest, posixpath.basename(t.plot) + PARTIAL_SUFFIX),
                   t.size_bytes, t.from_host, t.plot,
                   "a file of its name is already there: compared first", resend=False)


def follow_up(outcomes: Iterable[Outcome], hosts: Mapping[str, Host], now: float) -> FollowUp:
    promotes: List[Promote] = []
    removals, transfers, events, asks, started = [], [], [], [], []
    for o in outcomes:
        a = o.action
        if isinstance(o, Started):
            host = a.start.host if isinstance(a, AskAgain) else a.host
            started.append((host, o.pid, o.log_file))
        elif isinstance(o, Unanswered) and isinstance(a, StartJob):
            events.append(Event(EventKind.JOB_START_UNANSWERED, a.host, a.tmp_dir,
                                f"{a.host}: start job got no answer ({o.error}); "
                                f"asking again next pass", failed=True,
                                **a.facts(why=f"no answer ({o.error}); asking again next pass")))
            asks.append(AskAgain(a, o.args, o.sent_at))
        elif isinstance(o, (Unanswered, Failed)) and isinstance(a, AskAgain):
            s = a.start
            # a try that expired did nothing, but the agent that got the first
            # one may still be finishing it: only its record can tell
            waiting = isinstance(o, Unanswered) or o.code == ErrorCode.DEADLINE_EXPIRED
            if waiting and now - a.sent_at < ASK_AGAIN_S:
                asks.append(a)
            elif isinstance(o, Unanswered):
                why = f"still unanswered after {ASK_AGAIN_S:g}s, no longer asked: {o.error}"
                events.append(Event(EventKind.JOB_START_UNANSWERED, s.host, s.tmp_dir,
                                    f"{s.host}: start job {why}", failed=True, **s.facts(why=why)))
            else:
                events.append(Event(EventKind.JOB_START_FAILED, s.host, s.tmp_dir,
                                    f"{s.host}: start job failed: {o.error}", failed=True,
                                    **s.facts(why=o.error)))
        elif isinstance(o, NameTaken):
            promotes.append(_compare(a))
        elif isinstance(o, CopyLost) and a.resend:
            transfers.append(_resend(a, hosts, o.why))
        elif isinstance(o, Promoted):
            try:
                removals.append(remove_after_promote(a, o.source, o.copy))
            except ValueError as e:
                events.append(Event(EventKind.COPY_MISMATCH, a.host, posixpath.basename(a.plot), str(e),
                                    failed=True, why=str(e), dir=posixpath.dirname(a.partial),
                                    size_bytes=a.size_bytes))
    return FollowUp(Plan(promotes=tuple(promotes), removals=tuple(removals),
                         transfers=tuple(transfers)),
                    tuple(events), tuple(asks), tuple(started))
