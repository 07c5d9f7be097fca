"""One plot-all pass, and the one loop around it.

A pass (`run_pass`):

    carry_out(plan_before(...))     the lost starts asked again, multi-plot jobs guarded
    fleet.gather()          -> FleetState                        (remote/fleet.py)
    plan(state, hosts, ...) -> Plan                              (core/plan.py, pure)
    apply(fleet, hosts, plan, check) -> outcomes                 (remote/apply.py)
    follow_up(outcomes, ...) -> FollowUp, applied at once        (core/followup.py, pure)
    -> PassResult: the state, events, waits, and the view (outlooks, farm,
       back-offs) every face reads                                (core/result.py)

`Loop` is the loop body, written once: each pass, the run learns from it
(core/run.py) and every observer is handed the result: the CLI's printer,
the dashboard, the web server's Latest, the application log and the alerts
(unattended/).  None of them gathers, schedules or archives on its own.

Nothing is remembered between passes except which jobs this run started (for
--plots N) and the starts whose answer was lost (asked again, by their
request id, at the next pass): whatever the controller forgets, the next pass
sees again on the hosts (failures in a row included: each agent counts them
from its logs).
"""
from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Iterator, Mapping, Optional, Tuple

from orchestrator.core.events import Event
from orchestrator.core.failures import backoffs
from orchestrator.core.followup import follow_up
from orchestrator.core.outlook import outlook
from orchestrator.core.plan import AskAgain, Plan, plan, plan_before
from orchestrator.core.result import PassResult  # noqa: F401  (re-exported: one pass as data)
from orchestrator.core.run import RunEnd, RunTracker  # noqa: F401  (the loop's run, re-exported)
from orchestrator.core.scheduler import host_clock
from orchestrator.core.state import FleetState, Host
from orchestrator.core.wave import wave
from orchestrator.remote.apply import apply


@dataclass(frozen=True)
class Done:
    """What carrying out a plan and its follow-ups came to."""
    events: Tuple[Event, ...]
    asks: Tuple[AskAgain, ...]                  # starts still without an answer
    started: Tuple[Tuple[str, int, str], ...]   # (host, pid, log_file)


def carry_out(fleet, hosts: Mapping[str, Host], plan: Plan, check: bool,
              tracker: Optional[RunTracker] = None) -> Done:
    """Apply the plan, then what core decides follows from its outcomes,
    until nothing more follows: all within this pass.  The run (`tracker`)
    learns each round's starts and lost answers as soon as they come, so a
    Ctrl-C later in the pass still knows them."""
    events, asks, started = [], [], []
    while plan:
        outcomes = apply(fleet, hosts, plan, check)
        more = follow_up(outcomes, hosts, time.time())
        if tracker is not None:
            tracker.started.update((host, log) for host, _pid, log in more.started)
            tracker.unanswered += more.asks
        events += [e for o in outcomes for e in o.events] + list(more.events)
        asks += more.asks
        started += more.started
        plan = more.plan
    return Done(tuple(events), tuple(asks), tuple(started))


@contextmanager
def _actions_finish_first():
    """A Ctrl-C while a plan is carried out stops the loop once the plan's
    requests are answered (each bounded by request_timeout_s), so a job
    started in this pass is known by its log, never half-sent; a second
    Ctrl-C stops at once.  Only the main thread takes signals (the
    dashboard's passes run in their own and stop when it quits)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []

    def later(signum, frame):
        if caught:
            raise KeyboardInterrupt
        caught.append(signum)
    old = signal.signal(signal.SIGINT, later)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if caught:
        raise KeyboardInterrupt


def _result(state: FleetState, hosts: Mapping[str, Host], p: Plan, now: float,
            events: Tuple[Event, ...] = (), deadline: Optional[str] = None) -> PassResult:
    return PassResult(state, events, p.waits, p.plotter_waits, p.backpressure, p.to_json(),
                      outlook(state, hosts, p.schedule, p.archive, events), p.farm,
                      backoffs(state, hosts, lambda hs: host_clock(hs, state, now), now),
                      wave(state, hosts, deadline))


def run_pass(fleet, hosts: Mapping[str, Host], check: bool, tracker: RunTracker,
             deadline: Optional[str] = None) -> PassResult:
    """gather -> plan (core) -> apply (remote) -> follow up (core), as data;
    `deadline`: replot_deadline, for the replot wave's verdict."""
    asks, tracker.unanswered = tracker.unanswered, ()    # asked again: answered or kept
    with _actions_finish_first():
        before = carry_out(fleet, hosts, plan_before(fleet.hosts, asks), check, tracker)
    state = fleet.gather()
    now = time.time()
    p = plan(state, hosts, now, max_new=tracker.remaining)
    with _actions_finish_first():
        done = carry_out(fleet, hosts, p, check, tracker)
    return _result(state, hosts, p, now, before.events + done.events, deadline)


def look(fleet, hosts: Mapping[str, Host], deadline: Optional[str] = None) -> PassResult:
    """A pass that applies nothing (`status`, the dashboard without --plot):
    the plan on this snapshot, as plot-all --check would make it."""
    state = fleet.gather()
    now = time.time()
    return replace(_result(state, hosts, plan(state, hosts, now), now, deadline=deadline),
                   backpressure=None)


NEWS_GAP_S = 1.0    # a pass woken by news comes no sooner after the last: news that comes together is acted on together


def between_passes(fleet, seconds: float) -> None:
    """The wait after a pass: `seconds` (polling_time_s), or less when a
    plotter's agent has news the next pass acts on (a plot landed, a check or
    a transfer ended: Fleet.wait_for_news), so a plot goes on as soon as it
    can, not a whole polling_time_s later."""
    began = time.monotonic()
    fleet.wait_for_news(seconds)
    time.sleep(max(0.0, min(seconds, NEWS_GAP_S) - (time.monotonic() - began)))


Observer = Callable[[PassResult], None]


class Loop:
    """The plot-all loop body, written once: `step()` runs one pass (or,
    without `plot`, one look), lets the run learn from it and hands it to
    every observer, in order; iterating steps for ever."""

    def __init__(self, fleet, hosts: Mapping[str, Host], tracker: RunTracker,
                 check: bool = False, plot: bool = True, observers: Iterable[Observer] = (),
                 deadline: Optional[str] = None):
        self.fleet, self.hosts, self.tracker = fleet, hosts, tracker
        self.deadline = deadline        # replot_deadline (all.vars)
        self.check, self.plot = check, plot
        self.observers = list(observers)

    def step(self) -> PassResult:
        began = time.monotonic()
        if self.plot:
            result = run_pass(self.fleet, self.hosts, self.check, self.tracker, self.deadline)
        else:
            result = look(self.fleet, self.hosts, self.deadline)
        result = replace(result, seconds=time.monotonic() - began)
        self.tracker.learn(result.state, hosts=self.hosts)
        for observe in self.observers:
            observe(result)
        return result

    def __iter__(self) -> Iterator[PassResult]:
        while True:
            yield self.step()
