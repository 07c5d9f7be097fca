"""The invoke tasks: `invoke <task>` in a checkout, `plotfleet <task>` installed.

Each task: load the inventory (one-line error, exit 2, on a mistake), open
the fleet, do one thing, render it.  Exit 4 when a host was unreachable (as
Ansible does).
"""
from __future__ import annotations

import functools
import json
from dataclasses import asdict
import os
import sys
import time

from invoke import Collection, Exit, Task, task
from invoke.parser import Argument
from rich.console import Console
from rich.text import Text

from orchestrator.core.keys import KEYS
from orchestrator.core import plotcmd as commands

from orchestrator import exitcodes
from orchestrator.ui import views
from orchestrator.errors import AgentError, SessionError, UserError, one_line
from orchestrator.remote.fleet import Fleet
from orchestrator.config.inventory import load_inventory, unknown_keys_warning
from orchestrator.ui.eventline import printable

# no markup in what is printed: it is full of paths and host messages, and a
# dir named `tmp[/x]` must print as it is (styles come from rich Text)
console = Console(markup=False)
errors = Console(stderr=True, markup=False)     # prompts and failures: stdout stays the report


def _inventory_path(inventory):
    return inventory or os.environ.get("PLOTFLEET_INVENTORY") or "inventory.yaml"


STRICT = os.environ.get("PLOTFLEET_STRICT") == "1"     # or --strict, before or after the task


def read_inventory(inventory):
    """The inventory the flags name; a missing one says where one comes from."""
    path = _inventory_path(inventory)
    if not os.path.exists(path):
        how = ("" if inventory else
               f" ($PLOTFLEET_INVENTORY is {os.environ['PLOTFLEET_INVENTORY']!r})"
               if os.environ.get("PLOTFLEET_INVENTORY") else " (the default)")
        raise UserError(f"{path}: inventory not found{how}: name one with --inventory PATH or "
                        f"$PLOTFLEET_INVENTORY; inventory.example.yaml shows one")
    inv = load_inventory(path, strict=STRICT)
    warning = unknown_keys_warning(inv)
    if warning:     # other tools' vars load; a typo is named, once
        errors.print(f"plotfleet: warning: {printable(warning)}", soft_wrap=True)
    return inv


def load(inventory, limit):
    """(Inventory, selected hosts, name -> Host) or a one-line UserError."""
    inv = read_inventory(inventory)
    selected = inv.select(limit)
    for h in selected:          # a broken plotter_command fails before any host is touched
        if h.is_plotter:
            commands.validate(h)
    return inv, selected, {h.name: h for h in inv.hosts}


def one_line_errors(fn):
    """User mistakes end as one line on stderr and exit 2, never a traceback."""
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except UserError as e:
            raise Exit(f"plotfleet: {printable(e)}", code=e.exit_code)
    return wrapper


def number_flag(flag, value, kind, lo, hi):
    """A numeric flag (invoke passes strings): a bad value is one line, exit 2."""
    try:
        n = kind(value)
    except (TypeError, ValueError):
        n = None
    if n is None or not lo <= n <= hi:
        raise UserError(f"{flag} must be a number from {lo} to {hi}, got {value}")
    return n


def _exit_for(state):
    if any(not h.reachable for h in state.hosts):
        raise Exit(code=exitcodes.UNREACHABLE)


def helps(*keys, **extra):
    """invoke refuses help for parameters a task lacks: pick the common ones."""
    return {**{k: COMMON_HELP[k] for k in keys}, **extra}


COMMON_HELP = {
    "inventory": "inventory file (default inventory.yaml or $PLOTFLEET_INVENTORY)",
    "limit": "Ansible host pattern, e.g. 'plotters:!p3'",
    "json": "print one JSON document instead of tables",
    "check": "show the decisions, change nothing",
}
VERBOSE_HELP = "each event's full line (paths whole, every reason) instead of its short one"
SERVE_HELP = ("HOST:PORT: serve /metrics, /status.json and a web page, read-only "
              "(127.0.0.1 unless told; other addresses need serve_token)")


@task(help=helps("inventory", "limit", "json",
                 fresh="ask the hosts even while a plot-all/dashboard --serve of this "
                       "inventory runs here"))
@one_line_errors
def status(c, inventory=None, limit=None, json_=False, fresh=False):
    """Show every job, dir, waiting plot and transfer across the fleet."""
    from orchestrator.serve import instant
    if not fresh and not instant.TRIED:     # `invoke status`: the entry point did not ask
        code = instant.answer(inventory, limit, json_)
        if code is not None:
            raise Exit(code=code)
    inv, selected, hosts = load(inventory, limit)
    from orchestrator.plotloop import look
    with Fleet(selected) as fleet:
        # what a pass would decide now, applying nothing
        seen = look(fleet, hosts, inv.controller.replot_deadline)
    state = seen.state
    if json_:
        print(json.dumps(seen.status_json(), indent=1))
    else:
        console.print(views.status_view(state, hosts, seen.outlooks, width=console.width,
                                        model=seen.farm, backoffs=seen.backoffs,
                                        replot=seen.wave))
    _exit_for(state)


@task(help=helps("inventory", "limit", "json",
                 prepare="fetch a psutil wheel for every host's platform into the wheelhouse; deploy nothing",
                 wheelhouse="psutil wheels for hosts without psutil (default ~/.plotfleet/wheelhouse,"
                            " or $PLOTFLEET_WHEELHOUSE)"))
@one_line_errors
def deploy(c, inventory=None, limit=None, json_=False, prepare=False, wheelhouse=None):
    """Push the agent to every host (only where that version is missing)."""
    inv, selected, hosts = load(inventory, limit)
    wheels = os.path.abspath(os.path.expanduser(wheelhouse)) if wheelhouse else None
    if prepare:
        fleet = Fleet(selected, wheelhouse=wheels)
        try:
            rows = fleet.prepare_wheels(wheels)
        finally:
            fleet.close()
        if json_:
            print(json.dumps({n: {"ok": ok, "detail": line} for n, (ok, line) in rows.items()}, indent=1))
        else:
            for name, (ok, line) in rows.items():
                console.print(f"{name}: {line}", soft_wrap=True)    # one line, however long
        if not all(ok for ok, _ in rows.values()):
            raise Exit(code=exitcodes.FAILED)
        return
    with Fleet(selected, wheelhouse=wheels) as fleet:
        fleet.open()
        report = fleet.deploy_report()
        state = fleet.gather()
    if json_:
        print(json.dumps(report, indent=1))
    else:
        for name, line in report.items():
            console.print(f"{name}: {line}", soft_wrap=True)    # one line, however long
    _exit_for(state)


def _poll_interval(selected):
    return min((h.polling_time_s for h in selected if h.is_plotter),
               default=KEYS["polling_time_s"].default)


@task(name="plot-all", help=helps("inventory", "limit", "json", "check",
                                  once="run one pass and exit",
                                  plots="start at most N jobs, return when their plots are archived (multi-plot "
                                        "jobs, count != 1: N plots; the jobs keep running)",
                                  serve=SERVE_HELP, verbose=VERBOSE_HELP))
@one_line_errors
def plot_all(c, inventory=None, limit=None, check=False, once=False, plots=None, json_=False,
             serve=None, verbose=False):
    """Start plot jobs fleet-wide and archive finished plots, every polling_time_s."""
    from orchestrator.plotloop import Loop, RunTracker, between_passes
    from orchestrator.serve.server import Serving
    from orchestrator.ui.passview import PassPrinter, left_running
    from orchestrator.unattended import Unattended
    if plots is not None:
        plots = number_flag("--plots", plots, int, 0, 10 ** 6)
    inv, selected, hosts = load(inventory, limit)
    tracker = RunTracker(limit=plots, endless=any(h.is_plotter and h.count != 1
                                                  for h in selected))
    has_harvesters = any(h.is_harvester for h in selected)
    interval = _poll_interval(selected)
    state, events = None, ()
    end = None

    def say(result):
        if json_:
            print(json.dumps({**result.to_json(), "actions": [
                e.detail for e in result.events] + [w.describe() for w in result.waits]}),
                flush=True)
        else:
            printer.show(result)
    # the server listens (or refuses, one line) before any host is touched
    with Serving(serve, _inventory_path(inventory), limit, inv.controller, hosts, "plot-all",
                 refresh=interval) as latest, \
            Fleet(selected) as fleet, PassPrinter(console, hosts, verbose=verbose) as printer, \
            Unattended(inv.controller, check, hosts) as unattended:
        try:
            for result in Loop(fleet, hosts, tracker, check,
                               observers=(latest.observe, unattended, say),
                               deadline=inv.controller.replot_deadline):
                state, events = result.state, result.events
                if once or check:
                    break
                end = tracker.verdict(state, result.waits, selected, has_harvesters)
                if end is not None:
                    break
                between_passes(fleet, interval if plots is None else min(interval, 2.0))
        except KeyboardInterrupt:
            errors.print(left_running(state, events, sorted(tracker.started)), soft_wrap=True)
            raise Exit(code=exitcodes.INTERRUPTED)
    if once or check:
        _exit_for(state)
    if end is not None and end.code:
        errors.print(f"plotfleet: stopped: {len(tracker.started)} of {plots} jobs started, "
                     f"{end.failed} of them failed; no further progress is possible",
                     markup=False, soft_wrap=True)
        for line in end.lines:      # one line each, however narrow the terminal
            errors.print(printable(line), markup=False, soft_wrap=True)
        raise Exit(code=end.code)


@task(positional=["host"], auto_shortflags=False,
      help=helps("inventory", "json", host="plotter name or Ansible host pattern"))
@one_line_errors
def reset(c, host, inventory=None, json_=False):
    """Clear a plotter's failure back-off: its failed jobs so far no longer count."""
    inv, selected, hosts = load(inventory, host)      # HOST is a host pattern
    plotters = [h for h in selected if h.is_plotter]
    if not plotters:
        raise UserError(f"reset {host}: no plotter matches")
    done, failed = {}, False
    with Fleet(plotters) as fleet:
        for h in plotters:
            try:
                res = fleet.agent(h.name).reset_failures()
                done[h.name] = {"reset_at": res.reset_at}
                if not json_:
                    console.print(f"{h.name}: failures reset; it may start jobs again",
                                  markup=False)
            except Exception as e:      # one host down must not stop the others
                done[h.name] = {"error": one_line(e)}
                errors.print(f"{h.name}: reset failed: {one_line(e)}", markup=False)
                failed = True
    if json_:
        print(json.dumps({"reset": done}, indent=1))
    if failed:
        raise Exit(code=exitcodes.UNREACHABLE)


@task(positional=["plot"], auto_shortflags=False,
      help=helps("inventory", "limit", "json",
                 plot="the quarantined plot: its path, file name or plot id (8+ hex digits)",
                 delete="remove it for good instead of archiving it"))
@one_line_errors
def release(c, plot, inventory=None, limit=None, delete=False, json_=False):
    """A quarantined plot, on the farmer's word: archived anyway, or (--delete) removed."""
    from orchestrator.remote import proofs
    inv, selected, hosts = load(inventory, limit)
    plotters = [h for h in selected if h.is_plotter]
    with Fleet(plotters) as fleet:
        state = fleet.gather()
        try:
            host, q, res = proofs.release(fleet, state, plot, delete)
        except (AgentError, SessionError) as e:
            errors.print(f"plotfleet: release {plot}: {one_line(e)}", markup=False)
            raise Exit(code=1)
    if json_:
        print(json.dumps({"host": host, "plot": q.path, "reason": q.reason, **asdict(res)}))
    elif delete:
        console.print(f"{host}: deleted {q.path} (quarantined: {q.reason})")
    else:
        console.print(f"{host}: {q.path} released to {res.path}: the next pass archives "
                      f"it unchecked (quarantined: {q.reason})")


@task(name="check", help=helps("inventory", "limit", "json",
                               sample="check N random plots per drive (default: all)"))
@one_line_errors
def check_farm(c, inventory=None, limit=None, sample=None, json_=False):
    """Check plots already on harvester drives, one drive at a time per harvester, at idle
    priority: bad ones are reported, never moved.  Exit 1 when one is bad."""
    from orchestrator.remote import proofs
    n = 0 if sample is None else number_flag("--sample", sample, int, 1, 10 ** 7)
    inv, selected, hosts = load(inventory, limit)
    harvesters = [h for h in selected if h.is_harvester]
    if not harvesters:
        raise UserError(f"check: no harvester in {'--limit ' + limit if limit else 'the inventory'}")
    with Fleet(harvesters) as fleet:
        report = proofs.check_farm(fleet, harvesters, n)
    if json_:
        print(json.dumps({"checks": [{"host": x.host, "path": x.path,
                                      "check": asdict(x.check) if x.check else None}
                                     for x in report.checks],
                          "errors": [{"where": w, "error": e} for w, e in report.errors]}))
    else:
        console.print(views.farm_check_view(report))
    if report.errors:
        raise Exit(code=exitcodes.UNREACHABLE)
    if any(x.bad for x in report.checks):
        raise Exit(code=1)


@task(help=helps("inventory", "limit", "json", "check", verbose=VERBOSE_HELP))
@one_line_errors
def archive(c, inventory=None, limit=None, check=False, json_=False, verbose=False):
    """One archiving pass: move finished plots to harvester drives."""
    from orchestrator.core.plan import archive_plan
    from orchestrator.core.result import PassResult
    from orchestrator.plotloop import carry_out
    from orchestrator.unattended.applog import AppLog
    inv, selected, hosts = load(inventory, limit)
    with Fleet(selected) as fleet:
        state = fleet.gather()
        plan = archive_plan(state, hosts)
        done = carry_out(fleet, hosts, plan, check)
    if not check:       # in the application log as plot-all's are (`history` shows them)
        with AppLog(inv.controller) as log:
            log.record(PassResult(state, done.events, plan.waits, (), None))
    waits = [w.describe() for w in plan.waits]
    if json_:
        print(json.dumps({"actions": [e.detail for e in done.events] + waits,
                          "events": [e.to_json() for e in done.events],
                          "waits": [asdict(w) for w in plan.waits]}))
    else:
        from orchestrator.ui import eventline
        from orchestrator.ui.passview import PassPrinter
        printer = PassPrinter(console, hosts, verbose=verbose)
        printer.print(printer.lines(done.events, state, time.strftime("%H:%M:%S")))
        places = eventline.places_for(state, hosts)
        for w in plan.waits:
            console.print(eventline.wait_text(w, places, printer.marks,
                                              console.width if printer.tty else None),
                          soft_wrap=not printer.tty)
        if not done.events and not waits:
            console.print("nothing to archive")
    _exit_for(state)


class _PrefixOrAll(Argument):
    """The plot-id positional, not required once --all was given.

    invoke requires every positional; `kill --all` must still parse.
    """
    all_arg = None

    @property
    def value(self):
        v = Argument.value.fget(self)
        return "" if v is None and self.all_arg is not None and self.all_arg.value else v

    @value.setter
    def value(self, arg):
        self.set_value(arg, cast=True)


class ControlTask(Task):
    def get_arguments(self, *a, **kw):
        args = super().get_arguments(*a, **kw)
        by_name = {x.name: x for x in args}
        old = by_name["plot_id"]
        new = _PrefixOrAll(names=old.names, kind=old.kind, default=None,
                           help=old.help, positional=True, attr_name=old.attr_name)
        new.all_arg = by_name["all_"]
        return [new if x is old else x for x in args]


CONTROL_HELP = helps("inventory", "limit", "check", "json",
                     plot_id="plot id prefix (unique across the fleet)",
                     all="every job within --limit")


def _control(inventory, limit, plot_id, all_, check, json_, op, include_dead=False,
             confirm=None):
    """Shared body of suspend/resume/kill: select, confirm, send, report."""
    from orchestrator.core.control import select
    from orchestrator.remote.control import act
    inv, selected, hosts = load(inventory, limit)
    say = (lambda *a: None) if json_ else console.print
    done = ()
    failed = False
    with Fleet(selected) as fleet:
        state = fleet.gather()
        chosen = select(state, plot_id, all_, include_dead=include_dead)
        if not chosen:
            say(f"no jobs to {op}")
        if check:
            for t in chosen:
                say(f"would {op}: {t.describe()}"
                    + (f", removing {views.human_bytes(t.tmp_bytes)} of temp files"
                       if op == "kill" else ""))
            if json_:
                print(json.dumps({"would": [dict(t.to_json(), op=op) for t in chosen]}, indent=1))
            return state
        if confirm and not confirm(chosen):
            raise Exit("plotfleet: aborted, nothing changed", code=exitcodes.FAILED)
        done = act(fleet, hosts, chosen, op)
        for d in done:
            t, res = d.target, d.result
            if d.error is not None:
                errors.print(f"{t.host}: {op} {(t.plot_id or '?')[:12]} failed: {d.error}",
                             style="red", markup=False)
                failed = True
                continue
            if op == "kill":
                say(f"killed {t.describe()}: removed {len(res.removed)} files, "
                    f"freed {views.human_bytes(res.freed_bytes)} ({res.freed_bytes} bytes)")
                for path in res.removed:
                    say(f"  {path}")
            else:
                past = {"suspend": "suspended", "resume": "resumed"}[op]
                say(f"{past} {t.host}: {t.plot_id[:12] if t.plot_id else '?'} "
                    f"(pid {t.pid}, was {t.state}, now {res.state})")
    if json_:
        print(json.dumps({"done": [d.to_json() for d in done]}, indent=1))
    for h in state.hosts:      # their jobs were not seen, so not acted on
        if not h.reachable:
            errors.print(f"{h.name}: unreachable, not included: {h.error}", markup=False)
    if failed:
        raise Exit(code=exitcodes.FAILED)
    _exit_for(state)
    return state


@task(klass=ControlTask, positional=["plot_id"], help=CONTROL_HELP)
@one_line_errors
def suspend(c, plot_id=None, all_=False, inventory=None, limit=None, check=False, json_=False):
    """Suspend a job (SIGSTOP): it keeps its place in the schedule."""
    _control(inventory, limit, plot_id, all_, check, json_, "suspend")


@task(klass=ControlTask, positional=["plot_id"], help=CONTROL_HELP)
@one_line_errors
def resume(c, plot_id=None, all_=False, inventory=None, limit=None, check=False, json_=False):
    """Resume a suspended job (SIGCONT)."""
    _control(inventory, limit, plot_id, all_, check, json_, "resume")


def _ask(chosen):
    """Confirmation on the terminal; no terminal (or no answer) means no."""
    errors.print("will kill and delete the temp files of:", markup=False)
    for t in chosen:
        errors.print(f"  {t.describe()}, {views.human_bytes(t.tmp_bytes)} of temp files",
                     markup=False)
    try:
        return errors.input("kill? [y/N] ").strip().lower() in ("y", "yes")
    except (EOFError, KeyboardInterrupt):
        return False


@task(klass=ControlTask, positional=["plot_id"],
      help={**CONTROL_HELP, "yes": "do not ask for confirmation"})
@one_line_errors
def kill(c, plot_id=None, all_=False, inventory=None, limit=None, check=False, yes=False,
         json_=False):
    """Kill a job (or clean up a dead one) and remove exactly its temp files."""
    _control(inventory, limit, plot_id, all_, check, json_, "kill", include_dead=True,
             confirm=None if yes else _ask)


@task(help=helps("inventory", "limit", "json",
                 logs="read plot logs from this local folder instead of the fleet",
                 csv="print the per-group figures as CSV"))
@one_line_errors
def analyze(c, inventory=None, limit=None, logs=None, json_=False, csv=False):
    """Phase times of finished plots: count, mean, median, p90 by host, tmp dir, plotter, k."""
    from orchestrator.core import analysis as an
    from orchestrator.remote import logs as host_logs
    if json_ and csv:
        raise UserError("--json and --csv: pick one")
    if logs:
        if not os.path.isdir(logs):
            raise UserError(f"--logs {logs}: not a folder")
        col = host_logs.collect_local(logs)
    else:
        inv, selected, hosts = load(inventory, limit)
        with Fleet(selected) as fleet:
            col = host_logs.collect_fleet(fleet, selected)
    rep = an.report(col)
    if json_:
        print(json.dumps(rep, indent=1))
    elif csv:
        views.analyze_csv(rep, sys.stdout)
    else:
        console.print(views.analyze_view(rep))
    if col.down:
        raise Exit(code=exitcodes.UNREACHABLE)


@task(positional=["plot_id"], help=helps("inventory", "limit", plot_id="plot id prefix",
                                         follow="keep printing as the log grows"))
@one_line_errors
def logs(c, plot_id, inventory=None, limit=None, follow=False):
    """Print (or follow) a job's log from whichever host holds it."""
    from orchestrator.errors import AgentError, SessionError
    from orchestrator.remote.logs import find_log, stream_log
    inv, selected, hosts = load(inventory, limit)
    with Fleet(selected) as fleet:
        host = "?"
        try:
            host, path = find_log(fleet, fleet.gather(), hosts, plot_id)
            for chunk in stream_log(fleet, hosts[host], path, follow):
                sys.stdout.write(chunk)
                sys.stdout.flush()
        except KeyboardInterrupt:
            pass
        except (SessionError, AgentError) as e:     # the host went away mid-read
            raise Exit(f"plotfleet: {host}: {one_line(e)}", code=exitcodes.FAILED)


@task(help=helps("inventory", "limit", plot="also run the plot-all loop (autostart)",
                 refresh="seconds between polls (default 2)", serve=SERVE_HELP))
@one_line_errors
def dashboard(c, inventory=None, limit=None, plot=False, refresh=None, serve=None):
    """Full-screen live view of the fleet; q or Ctrl-C quits."""
    from orchestrator.plotloop import Loop, RunTracker
    from orchestrator.serve.server import Serving
    from orchestrator.ui.dashboard import run_dashboard
    from orchestrator.unattended import Unattended
    every = 2.0 if refresh is None else number_flag("--refresh", refresh, float, 0.1, 3600)
    inv, selected, hosts = load(inventory, limit)
    with Serving(serve, _inventory_path(inventory), limit, inv.controller, hosts, "dashboard",
                 refresh=max(every, 5.0)) as latest, \
            Fleet(selected) as fleet, Unattended(inv.controller, not plot, hosts) as unattended:
        loop = Loop(fleet, hosts, RunTracker(limit=None), plot=plot,
                    observers=(unattended, latest.observe),
                    deadline=inv.controller.replot_deadline)
        run_dashboard(loop.step, hosts, refresh=every)


@task(help=helps("json", inventory="check this inventory's keys first (a wrong one: one line, exit 2)"))
@one_line_errors
def keys(c, inventory=None, json_=False):
    """Every inventory key: type, default, limits and what it does."""
    from rich.table import Table
    from orchestrator.core.keys import KINDS, reference
    if inventory is not None:
        read_inventory(inventory)
    rows = reference()
    if json_:
        print(json.dumps(rows, indent=1))
        return
    t = Table(title="inventory keys")
    for col in ("key", "type", "default", "limits", "hosts", "doc"):
        t.add_column(col, overflow="fold")
    for i, r in enumerate(rows):
        if i and r["section"] != rows[i - 1]["section"]:
            t.add_section()
        default = "-" if r["default"] is None else json.dumps(r["default"])
        hosts = r["roles"][0] if len(r["roles"]) == 1 else "any" if r["roles"] else "groups"
        t.add_row(r["name"], KINDS[r["type"]], default, r["limits"],
                  hosts + (" (required)" if r["required"] else ""), r["doc"])
    console.print(t)


_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _duration_flag(flag, value):
    """`30m`, `2h`, `1d`, `1w` or seconds -> seconds; a bad value is one line, exit 2."""
    import re
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([smhdw]?)\s*", str(value))
    if not m:
        raise UserError(f"{flag} must be like 30m, 2h, 1d, 1w or a number of seconds,"
                        f" got {value}")
    return float(m.group(1)) * _DURATION_UNITS[m.group(2)]


HISTORY_LINES = 50         # `history` without -n: the newest this many


@task(auto_shortflags=False,        # -h is --help
      help=helps("inventory", "json",
                 since="only what is this recent: 30m, 2h, 1d, 1w or seconds",
                 host="only this host: a name or a glob (p*)",
                 n=f"how many, the newest (default {HISTORY_LINES}; --json: all; 0: all)",
                 verbose=VERBOSE_HELP))
@one_line_errors
def history(c, inventory=None, since=None, host=None, json_=False, n=None, verbose=False):
    """What plot-all did for this inventory's hosts, newest last, from its application log."""
    from orchestrator.unattended import applog
    from orchestrator.ui import eventline
    from orchestrator.ui.history import history_lines
    after = None if since is None else time.time() - _duration_flag("--since", since)
    count = None if n is None else number_flag("-n", n, int, 0, 10 ** 9)
    inv = read_inventory(inventory)
    path = inv.controller.app_log
    if path is None or not applog.files(path):
        say = errors.print if json_ else console.print
        say(f"{inv.path}: app_log is false: no application log" if path is None
            else f"no application log at {path} yet", soft_wrap=True)
        if json_:
            print("[]")
        return
    names = {h.name for h in inv.hosts}
    # another inventory's controller may share the log: its hosts are not ours
    records = [r for r in applog.read(path, since=after, host=host)
               if r.get("host") in names or not r.get("host")]
    if count is None and not json_:
        count = HISTORY_LINES
    shown = records[-count:] if count else records
    if json_:
        print(json.dumps(shown, indent=1))
        return
    tty = console.is_terminal
    if len(shown) < len(records):
        console.print(Text(f"the newest {len(shown)} of {len(records)} events (-n 0: all)",
                           style="dim"))
    places = eventline.places_for(None, {h.name: h for h in inv.hosts})
    if not verbose:
        for line in places.key_lines():
            console.print(Text(line, style="dim"), soft_wrap=True)
    for text in history_lines(shown, places, eventline.marks_for(stream=console.file),
                              console.width if tty else None, verbose):
        console.print(text, no_wrap=True, overflow="crop") if tty else \
            console.print(text, soft_wrap=True)
    if not records:
        console.print("no events" + (" in that time" if since else ""))


@task(positional=["action"], auto_shortflags=False,
      help=helps("inventory", "limit", action="install | status | logs | uninstall",
                 name="unit name: plotfleet-NAME.service (default: the inventory's file name)"))
@one_line_errors
def service(c, action, inventory=None, limit=None, name=None):
    """Run plot-all as a systemd user service on this box (install / status / logs / uninstall)."""
    from orchestrator import service as svc
    if action not in ("install", "status", "logs", "uninstall"):
        raise UserError(f"service {action}: pick install, status, logs or uninstall")
    path = _inventory_path(inventory)
    if action == "install":
        load(path, limit)           # a broken inventory is refused before anything is written
    name = name or os.path.splitext(os.path.basename(path))[0]
    if not svc.NAME.match(name):
        raise UserError(f"--name {name!r}: letters, digits, '.', '_' and '-' only")
    unit = svc.build(path, limit, name)
    if action == "install":
        ok, lines = svc.install(unit)
    elif action == "uninstall":
        ok, lines = svc.uninstall(unit)
    else:
        rc, out = (svc.status if action == "status" else svc.logs)(unit)
        ok, lines = rc == 0, [out or f"{unit.name}: no answer from systemd"]
    for line in lines:
        console.print(line, soft_wrap=True)
    if not ok:
        raise Exit(code=exitcodes.FAILED)


@task(name="notify-test", help=helps("inventory"))
@one_line_errors
def notify_test(c, inventory=None):
    """Send one test message to every apprise URL in the inventory's `notify`."""
    from orchestrator.unattended import notify
    inv = read_inventory(inventory)
    if not inv.controller.notify:
        raise UserError(f"{inv.path}: no notify URLs (set notify: under all.vars)")
    failed = False
    for d in notify.test(inv.controller.notify):
        console.print(d.line(), soft_wrap=True)
        failed = failed or not d.ok
    if failed:
        raise Exit(code=exitcodes.FAILED)


class OptionalFileTask(Task):
    """Its positional may be left out (program.py fills in "")."""

    def get_arguments(self, *a, **kw):
        args = super().get_arguments(*a, **kw)
        for x in args:
            if x.positional:
                x.optional = True
        return args


@task(name="import-plotman", klass=OptionalFileTask, positional=["file"], help=helps(
    "inventory", "limit",
    file="a plotman.yaml on this machine: translated here, no inventory needed",
    path="without FILE: plotman.yaml on each inventory host, read over SSH (default: "
         "plotman's own, $XDG_CONFIG_HOME or ~/.config, /plotman/plotman.yaml)"))
@one_line_errors
def import_plotman(c, file=None, inventory=None, limit=None, path=None):
    """Print an inventory translated from a plotman.yaml (this machine's, or each host's)."""
    from orchestrator.config import plotman_import as pm
    if file:        # a farmer coming from plotman has no inventory yet
        from agent.ops.common import ActionError
        from agent.ops.plotman_config import read_plotman_config
        try:
            got = read_plotman_config(None, file)      # the agent's own narrow reader
            done = [pm.translate("localhost", got["text"])]
        except ActionError as e:
            raise UserError(str(e)) from None
        except pm.PlotmanConfigError as e:
            raise UserError(f"{file}: {e}") from None
        print(pm.inventory_yaml(done, {"localhost": {"ansible_connection": "local"}}, {}),
              end="")
        return
    inv, selected, hosts = load(inventory, limit)
    if path is not None and not path.endswith((".yaml", ".yml")):
        raise UserError(f"--path must name a .yaml file, got {path}")
    args = {"path": path} if path else {}
    with Fleet(selected) as fleet:
        answers = fleet.on_all(lambda agent: agent.read_plotman_config(**args))
    done, unread = [], {}
    for h in selected:
        got = answers[h.name]
        if isinstance(got, str):
            unread[h.name] = got
            continue
        try:
            done.append(pm.translate(h.name, got.text))
        except pm.PlotmanConfigError as e:
            unread[h.name] = f"{got.path}: {e}"
    print(pm.inventory_yaml(done, {h.name: pm.connection_vars(h) for h in selected}, unread),
          end="")
    for name, why in unread.items():
        errors.print(f"plotfleet: {name}: {why}")
    if unread:
        raise Exit(code=exitcodes.UNREACHABLE)


# every task, once, by what a farmer does with it (`plotfleet --help` lists them so)
GROUPS = (
    ("run", (plot_all, dashboard, archive, service)),
    ("look", (status, logs, analyze, history, keys, check_farm)),
    ("act", (suspend, resume, kill, reset, release, deploy, notify_test)),
    ("migrate", (import_plotman,)),
)
ns = Collection(*(t for _, tasks in GROUPS for t in tasks))


def _strict(argv):
    """`--strict` anywhere: unknown inventory keys are an error, for every task."""
    global STRICT
    if "--strict" in argv[1:]:
        STRICT = True
        argv = [a for a in argv if a != "--strict"]
    return argv


def run(argv) -> None:
    """Run the command line (orchestrator/main.py calls this)."""
    from orchestrator.program import PlotfleetProgram
    program = PlotfleetProgram(ns, GROUPS, COMMON_HELP)
    try:
        try:
            program.run(_strict(argv))
        finally:
            sys.stdout.flush()      # here, not at exit: a closed pipe is caught below
    except BrokenPipeError:
        # the reader left (`status --json | head -1`): stop quietly, as rich
        # does for tables; stdout goes to /dev/null so the exit flush is silent
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(exitcodes.FAILED)
