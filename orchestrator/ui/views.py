"""rich renderables built from a FleetState (and a pass's decisions).

Pure presentation: every function takes state, returns a renderable.  Every
value that comes from a host or the inventory (names, paths, devices, log
lines, error messages) goes in as Text, never as a markup string: a dir named
`tmp[/x]` is shown as it is instead of breaking the table.
"""
from __future__ import annotations

import time
from typing import Iterable, Mapping, Optional, Sequence

from rich import box
from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from orchestrator.core.decisions import human_bytes as _human_bytes
from orchestrator.core import plotsize
from orchestrator.core.farm import Farm, farm
from orchestrator.core.state import FleetState, Host, phase_str
from orchestrator.core import failures
from orchestrator.core.wave import wave
from orchestrator.core.outlook import judge
from orchestrator.core.scheduler import host_clock
from orchestrator.ui import dirtables


def human_bytes(n: Optional[float]) -> str:
    return "-" if n is None else _human_bytes(n)


def human_duration(s: Optional[float]) -> str:
    if s is None:
        return "-"
    s = int(max(s, 0))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def plot_kind(k: int, compression) -> str:
    """k and level as one short label: "k32" (uncompressed), "k32 C7", "k32 GH C7",
    "v2 k28 s2"."""
    return plotsize.kind_label(k, compression)


def _k_cell(k: int, compression) -> str:
    """The jobs table's k column: "32", "32 C7", and a PoS2 job whole: "v2 k28 s2"."""
    kind = plot_kind(k, compression)
    return kind[1:] if kind.startswith("k") else kind


def job_state(job) -> str:
    # a job the agent suspended for room is silent by design, not stalled
    return "stalled" if job.stalled and not job.paused else job.state


def summary_table(state: FleetState, hosts: Mapping[str, Host], note: Optional[str] = None,
                  model: Optional[Farm] = None, deadline: Optional[str] = None,
                  replot=None) -> Table:
    """The fleet in a few rows; `model`: the pass's farm, `replot`: its wave
    (core/result.py; computed, with `deadline` for its verdict, when not given)."""
    up = [h for h in state.hosts if h.reachable]
    jobs = [j for h in up for j in h.jobs]
    by_phase = {}
    for j in jobs:
        major = "?" if j.phase is None else j.phase[0]
        by_phase[major] = by_phase.get(major, 0) + 1
    waiting = [p for h in up for p in h.plots]
    model = farm(state, hosts) if model is None else model
    kinds = sorted({(hosts[h.name].k, hosts[h.name].compression) for h in state.hosts
                    if h.name in hosts and hosts[h.name].is_plotter},
                   key=lambda kc: (kc[0], plotsize.label(kc[1])))
    fits = ", ".join(f"{model.fits(k, c)} x {plot_kind(k, c)}"
                     + (" (size assumed)" if model.estimate(k, c).assumed else "")
                     for k, c in kinds) or "-"

    t = Table(title="fleet", show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    down = len(state.hosts) - len(up)
    hosts_row = Text(f"{len(up)} up")
    if down:
        hosts_row.append(", ").append(f"{down} down", style="red")
    t.add_row("hosts", hosts_row)
    t.add_row("jobs", f"{len(jobs)}" + (" (" + ", ".join(
        f"phase {p}: {n}" for p, n in sorted(by_phase.items(), key=lambda kv: str(kv[0]))) + ")" if jobs else ""))
    t.add_row("plots waiting", f"{len(waiting)} ({human_bytes(sum(p.size_bytes for p in waiting))})")
    transfers = [x for h in up for x in h.transfers if x.status == "running"]
    queued = sum(1 for h in up for x in h.transfers if x.status == "queued")
    t.add_row("transfers", str(len(transfers)) + (f" (+{queued} queued)" if queued else ""))
    n = len(model.drives)
    t.add_row("farm", f"{human_bytes(model.room)} free on {n} drive{'' if n == 1 else 's'} "
                      f"(after reserve), room for {fits}")
    if model.kinds:
        t.add_row("farm plots", ", ".join(f"{n} x {kind}" for kind, n in model.kinds))
    w = wave(state, hosts, deadline) if replot is None else replot
    if w.active:                # the replot wave: where it stands
        t.add_row("replot", Text(w.line()[len("replot: "):], style="red" if w.behind else ""))
    if note:
        t.add_row("note", Text(note, style="yellow"))
    return t


JOB_COLUMNS = ("plot id", "host", "k", "tmp", "dst", "wall", "phase", "tmp size", "pid", "state")
COMPACT_JOB_COLUMNS = ("plot id", "host", "phase", "wall", "tmp size", "state")
# status below 100 columns: the dirs stay (by their key), k and pid go
COMPACT_STATUS_JOB_COLUMNS = ("plot id", "host", "tmp", "dst", "wall", "phase", "tmp size",
                              "state")


def _tail(path: Optional[str], width: Optional[int]) -> str:
    """A path cut to `width` from the left: the end (the drive) is what tells dirs apart."""
    if not path:
        return "-"
    if width is None or len(path) <= width:
        return path
    return "…" + path[-(width - 1):] if width > 1 else "…"


tail = _tail


def _progress(j) -> str:
    """The phase of the plot in progress; a multi-plot job adds plots done
    (of its count, or of no end: ∞)."""
    if j.count == 1:
        return phase_str(j.phase)
    return f"{phase_str(j.phase)} #{j.plots_done + 1}/{j.count or '∞'}"


def jobs_table(state: FleetState, columns: Sequence[str] = JOB_COLUMNS,
               path_width: Optional[int] = None, keys=None) -> Table:
    """Jobs by host (oldest first), then the dead ones; `columns` picks which
    to show, `path_width` cuts tmp and dst paths to their last characters;
    with `keys` (ui/dirtables.host_keys) they are named by their dir key
    instead, the key lines in the caption, and host names wrap, never cut."""
    t = Table(title="jobs", caption=dirtables.keys_caption(state, keys, with_jobs=True) if keys else None,
              caption_justify="left")
    for col in columns:
        if col == "host" and keys:
            t.add_column(col, overflow="fold")
        else:
            t.add_column(col, no_wrap=col not in ("tmp", "dst"))

    def tail(path, width, kind="tmp", host=""):
        if keys and host in keys:
            return keys[host].short(kind, path)
        return _tail(path, width)
    for h in state.hosts:
        for j in sorted(h.jobs, key=lambda j: j.started_at):
            st = job_state(j)
            style = {"suspended": "yellow", "stalled": "red"}.get(st, "")
            cells = {"plot id": Text((j.plot_id or "?")[:8]), "host": Text(h.name),
                     "k": _k_cell(j.k, j.compression),
                     "tmp": Text(tail(j.tmp_dir, path_width, "tmp", h.name)),
                     "dst": Text(tail(j.dst_dir, path_width, "dst", h.name)),
                     "wall": human_duration(j.elapsed_s), "phase": _progress(j),
                     "tmp size": human_bytes(j.tmp_bytes), "pid": str(j.pid),
                     "state": Text(f"{st}: {j.paused}" if j.paused else st, style=style)}
            t.add_row(*(cells[c] for c in columns))
        for d in h.dead:
            cells = {"plot id": Text((d.plot_id or "?")[:8]), "host": Text(h.name),
                     "phase": phase_str(d.phase),
                     "k": str(d.k) if d.k else "",
                     "tmp": Text(tail(d.tmp_dir, path_width, "tmp", h.name)),
                     "tmp size": human_bytes(d.tmp_bytes), "pid": "-",
                     "state": Text("killed" if d.killed else "dead", style="red")}
            t.add_row(*(cells.get(c, "") for c in columns))
    return t


def dead_table(state: FleetState, hosts: Mapping[str, Host],
               now: Optional[float] = None, backoffs=None) -> Optional[Table]:
    """Failed jobs with their own error line, and the plotters backed off
    (`backoffs`: the pass's, core/failures.py; found on `state` when not given)."""
    now = time.time() if now is None else now
    rows = [(h, d) for h in state.hosts for d in h.dead]
    if backoffs is None:
        backoffs = failures.backoffs(state, hosts, lambda hs: host_clock(hs, state, now), now)
    off = [f"{b.host}: {b.reason(now)}" for b in backoffs]
    if not rows and not off:
        return None
    t = Table(title="failed jobs", title_style="red",
              caption=Text("\n".join(off)) if off else None, caption_style="red",
              caption_justify="left")
    for col in ("plot id", "host", "phase", "ended", "leftovers", "error"):
        t.add_column(col, no_wrap=col != "error")
    for h, d in sorted(rows, key=lambda r: -r[1].ended_at):
        ago = (h.host_time or now) - d.ended_at if d.ended_at else None
        left = f"{len(d.tmp_files)} files, {human_bytes(d.tmp_bytes)}" if d.tmp_files else "-"
        err = "killed on request" if d.killed else (d.error or "no error line in its log")
        t.add_row(Text((d.plot_id or "?")[:8]), Text(h.name),
                  phase_str(d.phase),
                  f"{human_duration(ago)} ago" if ago is not None else "-", left,
                  Text(err, style="" if d.killed else "red"))
    return t


def device_name(d) -> str:
    """`/mnt/hdd07 (sdh1)`: the mount and disk a farmer knows, else the number."""
    if d.mount:
        return f"{d.mount} ({d.disk})" if d.disk else d.mount
    return d.device or ""


def dirs_table(state: FleetState, width: Optional[int] = None) -> Table:
    """Every dir by its whole name (the legend of the dir keys), grouped by
    host: the host on a line of its own, never cut; paths wrap, never cut."""
    t = Table(title="dirs", box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("kind", no_wrap=True)
    t.add_column("path", overflow="fold", ratio=3)
    t.add_column("free", justify="right", no_wrap=True)
    narrow = width is not None and width < 100
    if not narrow:
        t.add_column("total", justify="right", no_wrap=True)
    t.add_column("used", no_wrap=True)
    t.add_column("plots", justify="right", no_wrap=True)
    t.add_column("device", overflow="fold", ratio=2)
    for h in state.hosts:
        if not h.dirs:
            continue
        blank = [""] * (5 if narrow else 6)
        t.add_row("", Text(h.name, style="bold"), *blank)
        for d in h.dirs:
            if d.error:         # why it takes nothing, where long text may wrap
                t.add_row(d.kind, Text(d.path), *blank[:-1], Text(d.error, style="red"))
                continue
            used = 1 - d.free_bytes / d.total_bytes if d.total_bytes else 0
            cells = [d.kind, Text(d.path), human_bytes(d.free_bytes),
                     human_bytes(d.total_bytes), ProgressBar(total=1, completed=used, width=8),
                     str(d.plot_count) if d.kind == "farm" else "", Text(device_name(d))]
            if narrow:
                del cells[3]
            t.add_row(*cells)
        t.add_section()
    return t


def transfers_table(state: FleetState, now: Optional[float] = None, keys=None,
                    compact: bool = False) -> Table:
    """Every transfer: the plot by its id, where from and to (a farm dir by
    its harvester's key when `keys` are given); `compact` (a narrow screen):
    one "from -> to" column and no byte counts, so no column is crushed."""
    t = Table(title="transfers")
    cols = (("plot", "route", "progress", "eta", "status") if compact else
            ("plot", "from", "to", "progress", "done", "rate", "eta", "status"))
    for col in cols:
        # names wrap, never cut; numbers stay on one line
        t.add_column(col, no_wrap=col not in ("from", "to", "status", "done", "route"),
                     overflow="fold" if col in ("from", "to", "status", "done", "route")
                     else "ellipsis")
    for h in state.hosts:
        for x in h.transfers:
            size = x.size_bytes or 1
            elapsed = max((h.host_time or time.time()) - x.started_at, 1e-3) if x.started_at else None
            rate = x.bytes_done / elapsed if elapsed else None
            eta = (x.size_bytes - x.bytes_done) / rate if rate else None
            k = (keys or {}).get(x.to_host)
            to = f"{x.to_host}:{k.short('farm', x.to_dir) if k is not None else x.to_dir}"
            status = Text(x.status + (f" ({x.fault})" if x.fault else
                                      f" ({x.error})" if x.error else ""),
                          style={"failed": "red", "copied": "green"}.get(x.status, ""))
            bar = ProgressBar(total=size, completed=x.bytes_done, width=10)
            left = human_duration(eta) if x.status == "running" else "-"
            if compact:
                t.add_row(Text(dirtables.plot_label(x.plot)), Text(f"{h.name} -> {to}"),
                          Group(bar, f"{x.bytes_done / size:.0%}"), left, status)
                continue
            t.add_row(Text(dirtables.plot_label(x.plot)), Text(h.name), Text(to), bar,
                      f"{human_bytes(x.bytes_done)}/{human_bytes(x.size_bytes)}",
                      f"{human_bytes(rate)}/s" if rate else "-", left, status)
    return t


FAULTS = {"drive": "the harvester drive", "plotter": "on the plotter's side",
          "network": "network or harvester down"}


def copy_problems_table(state: FleetState) -> Optional[Table]:
    """What holds plots back, in the words of whoever said it: a final name
    on a drive holding other bytes (a conflict, left as it is), a plot
    whose header names another plot, a failed transfer (retried)."""
    rows = [(h.name, c.path, f"conflict, left as it is: {c.detail}")
            for h in state.hosts for c in h.conflicts]
    rows += [(h.name, p.path, f"not archived: {p.error}")
             for h in state.hosts for p in h.plots if p.error]
    rows += [(h.name, t.plot, f"transfer to {t.to_host}:{t.to_dir} failed "
                              f"({FAULTS.get(t.fault, 'cause unknown')}): {t.error}")
             for h in state.hosts for t in h.transfers if t.status == "failed"]
    if not rows:
        return None
    t = Table(title="archiving problems", title_style="red")
    t.add_column("host", no_wrap=True)
    t.add_column("file", overflow="fold", ratio=1)
    t.add_column("why", ratio=2)
    for host, path, why in rows:
        t.add_row(Text(host), Text(path.rsplit("/", 1)[-1]), Text(why, style="red"))
    return t


def checks_table(state: FleetState, now: Optional[float] = None) -> Optional[Table]:
    """Proof checks: the quarantine (why, in the prover's words or as the
    ratio found), the checks running, and plots archived unchecked (why)."""
    now = time.time() if now is None else now
    rows = [(h.name, q.path, "quarantine", q.reason, "red")
            for h in state.hosts for q in h.quarantine]
    for h in state.hosts:
        for c in h.checks:
            took = (h.host_time or now) - c.started_at if c.started_at else None
            rows.append((h.name, c.plot or "?", "checking",
                         f"for {human_duration(took)}" if took is not None else "", ""))
        for p in h.plots:
            if p.check is not None and p.check.status == "not_checked":
                rows.append((h.name, p.path, "not checked", p.check.error or "", "yellow"))
    if not rows:
        return None
    t = Table(title="proof checks", title_style="red" if any(r[2] == "quarantine" for r in rows)
              else "", caption="release a quarantined plot: plotfleet release [--delete] PLOT"
              if any(r[2] == "quarantine" for r in rows) else None, caption_justify="left")
    t.add_column("host", no_wrap=True)
    t.add_column("plot", overflow="fold", ratio=1)
    t.add_column("state", no_wrap=True)
    t.add_column("why", ratio=2)
    for host, path, what, why, style in rows:
        t.add_row(Text(host), Text(path), Text(what, style=style), Text(why, style=style))
    return t


def farm_check_view(report) -> Group:
    """`plotfleet check`: the bad plots in the prover's words, then a count
    per harvester (passed, bad, not checked), then what could not be asked."""
    parts = []
    bad = [x for x in report.checks if x.bad]
    if bad:
        t = Table(title="bad plots (left where they are)", title_style="red")
        for col in ("host", "plot", "why"):
            t.add_column(col, overflow="fold")
        for x in bad:
            t.add_row(Text(x.host), Text(x.path), Text(x.check.error or "", style="red"))
        parts.append(t)
    t = Table(title="farm check")
    for col in ("host", "checked", "passed", "bad", "not checked", "bytes read", "time"):
        t.add_column(col, justify="left" if col == "host" else "right")
    for host in dict.fromkeys(x.host for x in report.checks):
        mine = [x.check for x in report.checks if x.host == host and x.check is not None]
        count = lambda s: sum(1 for c in mine if c.status == s)
        t.add_row(Text(host), str(len(mine)), str(count("passed")),
                  Text(str(count("failed")), style="red" if count("failed") else ""),
                  str(len(mine) - count("passed") - count("failed")),
                  human_bytes(sum(c.bytes_read or 0 for c in mine)),
                  seconds(sum(c.seconds or 0 for c in mine)))
    if not report.checks:
        t.add_row(Text("no plots on the drives asked"), "", "", "", "", "", "")
    parts.append(t)
    for where, why in report.errors:
        parts.append(Text(f"{where}: not checked: {why}", style="red"))
    return Group(*parts)


def down_table(state: FleetState) -> Optional[Table]:
    down = [h for h in state.hosts if not h.reachable]
    if not down:
        return None
    t = Table(title="unreachable", title_style="red")
    t.add_column("host")
    t.add_column("reason")
    for h in down:
        t.add_row(Text(h.name), Text(h.error or "unknown", style="red"))
    return t


def status_view(state: FleetState, hosts: Mapping[str, Host], outlooks=None,
                width: Optional[int] = None, model: Optional[Farm] = None,
                backoffs=None, deadline: Optional[str] = None, replot=None) -> Group:
    """`status`: the fleet, each plotter's plotting and archiving line, the
    jobs, each plotter's tmp and dst tables, the dirs, the harvester drives.
    `outlooks` (core/outlook.py), `model` (the farm) and `backoffs` are the
    pass's (core/result.PassResult); for a caller that has no pass, the
    outlooks are judged on `state` as plot-all --check would."""
    if outlooks is None:
        outlooks = judge(state, hosts, time.time())
    model = farm(state, hosts) if model is None else model
    keys = dirtables.host_keys(state, hosts)
    wide = width is not None and width >= 120
    columns = JOB_COLUMNS if width is None or width >= 100 else COMPACT_STATUS_JOB_COLUMNS
    parts = [summary_table(state, hosts, model=model, deadline=deadline, replot=replot)]
    lines = dirtables.status_lines(outlooks, keys)
    if lines is not None:
        parts.append(lines)
    parts += [jobs_table(state, columns, keys=keys),
              dirtables.plotter_tables(outlooks, keys, side_by_side=wide),
              dirs_table(state, width)]
    if any(hosts.get(h.name) is not None and hosts[h.name].is_harvester for h in state.hosts):
        parts.append(dirtables.drives_table(state, hosts, keys=keys, model=model))
    dead = dead_table(state, hosts, backoffs=backoffs)
    if dead is not None:
        parts.append(dead)
    if any(h.transfers for h in state.hosts):
        parts.append(transfers_table(state))
    problems = copy_problems_table(state)
    if problems is not None:
        parts.append(problems)
    proofs = checks_table(state)
    if proofs is not None:
        parts.append(proofs)
    down = down_table(state)
    if down is not None:
        parts.append(down)
    return Group(*parts)


ANALYZE_PHASES = ("p1", "p2", "p3", "p4", "total")


def seconds(s: float) -> str:
    """Phase times: tenths below a minute (small k plots take seconds), else h:mm:ss."""
    return f"{s:.1f}s" if s < 60 else human_duration(s)


def analyze_view(rep: dict) -> Group:
    parts = []
    for grouping, rows in rep["groups"].items():
        t = Table(title=f"by {grouping}")
        t.add_column(grouping)
        t.add_column("plots", justify="right")
        for ph in ANALYZE_PHASES:
            t.add_column(f"{ph} mean/med/p90", justify="right")
        for row in rows:
            cells = []
            for ph in ANALYZE_PHASES:
                s = row[ph]
                cells.append("-" if s is None else " / ".join(
                    seconds(s[m]) for m in ("mean", "median", "p90")))
            t.add_row(Text(str(row["key"])), str(row["count"]), *cells)
        parts.append(t)
    rate = Table(title="plots per day")
    rate.add_column("host")
    rate.add_column("plots/day", justify="right")
    for host, r in rep["plots_per_day"].items():
        rate.add_row(Text(host), f"{r:.1f}")
    parts.append(rate)
    note = (f"{rep['plots']} finished plots, {rep['unfinished']} unfinished, "
            f"{len(rep['unreadable'])} unreadable, {rep['failed']} failed")
    parts.append(Text(note))
    if rep["failed"]:
        failed = Table(title="failed jobs", title_style="red")
        failed.add_column("by")
        failed.add_column("", no_wrap=True)
        failed.add_column("failed", justify="right")
        for grouping, counts in rep["failed_by"].items():
            for key, n in counts.items():
                failed.add_row(grouping, Text(key), str(n))
        parts.append(failed)
    for grouping, rows in (rep.get("checks") or {}).items():
        if not rows:
            continue
        t = Table(title=f"proof checks by {grouping}")
        for col in (grouping, "checked", "passed", "quarantined", "not checked",
                    "median ratio", "mean time", "mean read"):
            t.add_column(col, justify="left" if col == grouping else "right")
        for r in rows:
            t.add_row(Text(r["key"]), str(r["checked"]), str(r["passed"]),
                      Text(str(r["failed"]), style="red" if r["failed"] else ""),
                      str(r["not_checked"]),
                      "-" if r["median_ratio"] is None else f"{r['median_ratio']:.2f}",
                      "-" if r["mean_seconds"] is None else seconds(r["mean_seconds"]),
                      human_bytes(r["mean_bytes_read"]))
        parts.append(t)
    if rep["unreadable"]:
        bad = Table(title="not analysed", title_style="red")
        bad.add_column("log", no_wrap=True)     # the name is what one looks for
        bad.add_column("why")
        for u in rep["unreadable"]:
            bad.add_row(Text(u["where"]), Text(u["why"], style="red"))
        parts.append(bad)
    return Group(*parts)


def analyze_csv(rep: dict, stream) -> None:
    """One row per group; plots_per_day filled for the fleet and host rows."""
    import csv
    w = csv.writer(stream)
    w.writerow(["grouping", "key", "count"] + [f"{ph}_{m}" for ph in ANALYZE_PHASES
                                                for m in ("mean", "median", "p90")]
               + ["plots_per_day"])
    rates = rep["plots_per_day"]
    for grouping, rows in rep["groups"].items():
        for row in rows:
            vals = []
            for ph in ANALYZE_PHASES:
                s = row[ph]
                vals += ["" if s is None else f"{s[m]:.3f}" for m in ("mean", "median", "p90")]
            rate = rates.get(row["key"]) if grouping in ("fleet", "host") else None
            w.writerow([grouping, row["key"], row["count"]] + vals
                       + ["" if rate is None else f"{rate:.3f}"])
