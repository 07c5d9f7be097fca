"""The invoke tasks: `invoke <task>` in a checkout, `plotfleet <task>` installed.

Each task: load the inventory (one-line error, exit 2, on a mistake), open
the fleet, do one thing, render it.  Exit 4 when a host was unreachable (as
Ansible does).
"""
from __future__ import annotations

import functools
import json
import os
import sys
import time

from invoke import Collection, Exit, Program, task
from rich.console import Console

from . import views
from .errors import UserError
from .fleet import Fleet
from .inventory import load_inventory

UNREACHABLE_EXIT = 4
console = Console()


def _inventory_path(inventory):
    return inventory or os.environ.get("PLOTFLEET_INVENTORY") or "inventory.yaml"


def load(inventory, limit):
    """(Inventory, selected hosts, name -> Host) or a one-line UserError."""
    inv = load_inventory(_inventory_path(inventory))
    selected = inv.select(limit)
    return inv, selected, {h.name: h for h in inv.hosts}


def one_line_errors(fn):
    """User mistakes end as one line on stderr and exit 2, never a traceback."""
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except UserError as e:
            raise Exit(f"plotfleet: {e}", code=e.exit_code)
    return wrapper


def _exit_for(state):
    if any(not h.reachable for h in state.hosts):
        raise Exit(code=UNREACHABLE_EXIT)


COMMON_HELP = {
    "inventory": "inventory file (default inventory.yaml or $PLOTFLEET_INVENTORY)",
    "limit": "Ansible host pattern, e.g. 'plotters:!p3'",
    "json": "print one JSON document instead of tables",
    "check": "show the decisions, change nothing",
}


@task(help=COMMON_HELP)
@one_line_errors
def status(c, inventory=None, limit=None, json_=False):
    """Show every job, dir, waiting plot and transfer across the fleet."""
    inv, selected, hosts = load(inventory, limit)
    with Fleet(selected) as fleet:
        state = fleet.gather()
    if json_:
        print(json.dumps(state.to_json(), indent=1))
    else:
        console.print(views.status_view(state, hosts))
    _exit_for(state)


@task(help=COMMON_HELP)
@one_line_errors
def deploy(c, inventory=None, limit=None, json_=False):
    """Push the agent to every host (only where that version is missing)."""
    inv, selected, hosts = load(inventory, limit)
    with Fleet(selected) as fleet:
        fleet.open()
        report = fleet.deploy_report()
        state = fleet.gather()
    if json_:
        print(json.dumps(report, indent=1))
    else:
        for name, line in report.items():
            console.print(f"{name}: {line}")
    _exit_for(state)


def _poll_interval(selected):
    return min((h.polling_time_s for h in selected if h.is_plotter), default=20.0)


@task(name="plot-all", help={**COMMON_HELP,
                             "once": "run one pass and exit",
                             "plots": "start at most N jobs, return when their plots are archived"})
@one_line_errors
def plot_all(c, inventory=None, limit=None, check=False, once=False, plots=None, json_=False):
    """Start plot jobs fleet-wide and archive finished plots, every polling_time_s."""
    from .plotloop import RunTracker, run_pass
    inv, selected, hosts = load(inventory, limit)
    if plots is not None:
        plots = int(plots)
        if plots < 0:
            raise UserError("--plots must be a number >= 0")
    tracker = RunTracker(limit=plots)
    has_harvesters = any(h.is_harvester for h in selected)
    interval = _poll_interval(selected)
    state = None
    with Fleet(selected) as fleet:
        try:
            while True:
                result = run_pass(fleet, hosts, check, tracker)
                state = result.state
                tracker.learn(state, fleet, hosts)
                if json_:
                    print(json.dumps({**state.to_json(), "actions": result.lines}))
                else:
                    console.print(views.summary_table(state, hosts, note=result.backpressure))
                    console.print(views.action_log(result.lines or ["nothing to do"],
                                                   title=time.strftime("pass %H:%M:%S")))
                if once or check or tracker.done(state, has_harvesters):
                    break
                time.sleep(interval if plots is None else min(interval, 2.0))
        except KeyboardInterrupt:
            console.print("stopped; jobs and transfers keep running on the hosts")
            return
    if once or check:
        _exit_for(state)


@task(help=COMMON_HELP)
@one_line_errors
def archive(c, inventory=None, limit=None, check=False, json_=False):
    """One archiving pass: move finished plots to harvester drives."""
    from . import apply as apply_mod
    from .archiver import archive as decide
    inv, selected, hosts = load(inventory, limit)
    with Fleet(selected) as fleet:
        state = fleet.gather()
        out = apply_mod.Outcome()
        decision = decide(state, hosts)
        apply_mod.archive(fleet, hosts, decision, out, check)
        for w in decision.waits:
            out.add(f"{w.host}: {w.subject}: {w.reason}")
    if json_:
        print(json.dumps({"actions": out.lines}))
    else:
        console.print(views.action_log(out.lines or ["nothing to archive"]))
    _exit_for(state)


ns = Collection(status, deploy, plot_all, archive)
program = Program(namespace=ns, name="plotfleet", binary="plotfleet", version="0.1.0")


def main():
    program.run()
