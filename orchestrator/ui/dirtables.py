"""plotman's dir tables and first line, per plotter, fleet-wide: each
plotter's tmp dirs (phases, ready or the rule holding it, free space) and
dst dirs (plots waiting, free, inbound phases, archive priority or why its
plots wait); a plotting and an archiving line per plotter; the harvester
drives grouped by harvester.  Rows name dirs by their dir key
(ui/dirkeys.py); host names are never cut (they wrap).

What is shown comes from core/outlook.py, i.e. from the scheduler's and
archiver's own verdicts; nothing is judged here.
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence

from rich import box
from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from agent.vocab import names
from orchestrator.core import plotsize
from orchestrator.core.decisions import human_bytes
from orchestrator.core.farm import Farm, farm
from orchestrator.core.outlook import PlotterOutlook
from orchestrator.core.paths import PathIndex
from orchestrator.core.state import phase_str
from orchestrator.core.state import FleetState, Host, HostState
from orchestrator.ui.dirkeys import DirKey, dir_key, key_line

KINDS = (("tmp", "tmp_dirs"), ("dst", "dst_dirs"), ("farm", "farm_dirs"))


def _size(n: Optional[int]) -> str:
    return "-" if n is None else human_bytes(n)


def phases_str(phases, max_num: int = 5) -> str:
    """`1:3 2:1 [+2] 4:0`: plotman's compact phases (first and last, the middle elided)."""
    ps = [phase_str(p) for p in phases]
    if len(ps) <= max_num:
        return " ".join(ps) or "-"
    first = max_num // 2
    last = max_num - first
    return " ".join(ps[:first]) + f" [+{len(ps) - max_num}] " + " ".join(ps[-last:])


class HostKeys:
    """One host's dir keys, by kind: from its inventory dirs (what rows refer
    to), else from the dirs it reported; `short(kind, path)` matches a path
    as the host reported it (resolved, trailing slash) to its configured dir."""

    def __init__(self, host: Optional[Host], hs: Optional[HostState]):
        self.keys: Dict[str, DirKey] = {}
        self.index: Dict[str, PathIndex] = {}
        for kind, attr in KINDS:
            paths = list(getattr(host, attr)) if host is not None else []
            if not paths and hs is not None:
                paths = [d.path for d in hs.dirs if d.kind == kind]
            self.keys[kind] = dir_key(paths)
            self.index[kind] = PathIndex(paths)

    def short(self, kind: str, path: Optional[str]) -> str:
        if not path:
            return "-"
        found = self.index[kind].find(path) if kind in self.index else None
        key = self.keys.get(kind)
        return key(found or path) if key is not None else path

    def line(self, kinds: Sequence[str] = ("tmp", "dst", "farm")) -> str:
        return key_line((k, self.keys[k]) for k in kinds if k in self.keys)


def host_keys(state: FleetState, hosts: Mapping[str, Host]) -> Dict[str, HostKeys]:
    return {hs.name: HostKeys(hosts.get(hs.name), hs) for hs in state.hosts}


def keys_caption(state: FleetState, keys: Mapping[str, HostKeys],
                 kinds: Sequence[str] = ("tmp", "dst"), with_jobs: bool = False) -> Optional[Text]:
    """The key lines for the hosts shown in one table: `plotter1: tmp /mnt/nvme/ · dst /mnt/d/`
    (`with_jobs`, the jobs table's: only hosts with a job or a failed job in it)."""
    lines = []
    for hs in state.hosts:
        if with_jobs and not (hs.jobs or hs.dead):
            continue
        k = keys.get(hs.name)
        line = k.line(kinds) if k is not None else ""
        if line:
            lines.append(f"{hs.name}: {line}")
    return Text("\n".join("key " + line for line in lines), style="dim") if lines else None


# ---------------------------------------------------------------- first line

plot_label = names.label      # a plot as plotman names one: the first 8 of its id


def _farm(keys: Mapping[str, HostKeys], host: str, path: str) -> str:
    """`harvester1:hdd07`: a farm dir by its harvester's dir key."""
    k = keys.get(host)
    return f"{host}:{k.short('farm', path) if k is not None else path}"


def _sending(s, keys) -> str:
    pct = f"{s.bytes_done / s.size_bytes:.0%}" if s.size_bytes else "?%"
    return (f"{plot_label(s.plot)} -> {_farm(keys, s.to_host, s.to_dir)} (rsync pid "
            f"{s.pid or '?'}, {pct}, {human_bytes(s.bytes_done)}/{human_bytes(s.size_bytes)})")


def plotting_text(o: PlotterOutlook, keys: HostKeys) -> Text:
    if o.plotting in ("started", "ready") and o.start is not None:
        where = f"tmp {keys.short('tmp', o.start.tmp_dir)} -> dst {keys.short('dst', o.start.dst_dir)}"
        if o.plotting == "started":
            # its plot id comes with its log's first lines: the jobs table names it then
            return Text(f"started a job: {where}", style="green")
        return Text(f"ready: next job {where}", style="green")
    if o.plotting == "failed":
        return Text(o.plotting_reason or "start failed", style="red")
    if o.plotting == "failed":
        return Text(o.plotting_reason or "start failed", style="red")
    if o.plotting == "unreachable":
        return Text(f"unreachable: {o.plotting_reason}", style="red")
    return Text(o.plotting_reason or o.plotting, style="red" if o.plotting == "blocked" else "")


def archiving_text(o: PlotterOutlook, keys: Mapping[str, HostKeys]) -> Text:
    if o.sending:
        return Text("sending " + "; ".join(_sending(s, keys) for s in o.sending), style="green")
    if o.next_transfers:
        t = o.next_transfers[0]
        more = f" (+{len(o.next_transfers) - 1})" if len(o.next_transfers) > 1 else ""
        return Text(f"next: {plot_label(t.plot)} -> {_farm(keys, t.to_host, t.to_dir)}{more}",
                    style="green")
    if o.archiving == "unreachable":
        return Text("its plots and transfers are not known this pass", style="red")
    if o.archiving_reason:
        n = o.plots_waiting
        return Text(f"{n} plot{'' if n == 1 else 's'} waiting: {o.archiving_reason}",
                    style="yellow")
    return Text("no plots waiting", style="dim")


def status_lines(outlooks: Sequence[PlotterOutlook], keys: Mapping[str, HostKeys],
                 title: Optional[str] = "plotting and archiving") -> Optional[Table]:
    """Per plotter, plotman's first line: Plotting: ... Archiving: ..."""
    if not outlooks:
        return None
    t = Table(title=title, show_header=False, box=None, pad_edge=False,
              title_justify="left")
    t.add_column(overflow="fold", style="bold", max_width=24)   # the host: wrapped, never cut
    t.add_column(no_wrap=True, style="dim")
    t.add_column(overflow="fold")
    for o in outlooks:
        k = keys[o.host]
        t.add_row(Text(o.host), "plotting", plotting_text(o, k))
        t.add_row("", "archiving", archiving_text(o, keys))
    return t


# ---------------------------------------------------------------- tmp and dst

def tmp_table(o: PlotterOutlook, keys: HostKeys) -> Table:
    t = Table(title="tmp", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
              show_edge=False)
    t.add_column("tmp", overflow="fold")
    t.add_column("ready", overflow="fold")
    t.add_column("phases", overflow="fold")
    t.add_column("free", justify="right", no_wrap=True)
    for v in o.tmp:
        ready = Text("ready", style="green") if v.ready else Text(v.rule, style="yellow")
        t.add_row(Text(keys.short("tmp", v.path)), ready, phases_str(v.phases),
                  _size(v.free_bytes))
    return t


def dst_table(o: PlotterOutlook, keys: HostKeys, farm_keys: Mapping[str, HostKeys] = None
              ) -> Table:
    t = Table(title="dst", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
              show_edge=False)
    t.add_column("dst", overflow="fold")
    t.add_column("plots", justify="right", no_wrap=True)
    t.add_column("free", justify="right", no_wrap=True)
    t.add_column("inbound", overflow="fold")
    t.add_column("pri", justify="right", no_wrap=True)
    t.add_column("archiving", overflow="fold", ratio=1)
    for r in o.dst:
        if r.state in ("sending", "next"):
            host, _, path = (r.to or "").partition(":")
            why = Text(f"{r.state} {plot_label(r.plot)} -> {_farm(farm_keys or {}, host, path)}",
                       style="green")
        else:
            style = {"waiting": "yellow", "error": "red"}.get(r.state, "dim")
            why = Text(r.reason or "-", style=style)
        t.add_row(Text(keys.short("dst", r.path)), str(r.plots), _size(r.free_bytes),
                  phases_str(r.phases), str(r.priority) if r.priority else "-", why)
    return t


def plotter_tables(outlooks: Sequence[PlotterOutlook], keys: Mapping[str, HostKeys],
                   side_by_side: bool = False):
    """Per plotter: its key line, its tmp table and its dst table."""
    parts = []
    for o in outlooks:
        if o.plotting == "unreachable":
            continue
        k = keys[o.host]
        line = k.line(("tmp", "dst"))
        head = Text(o.host, style="bold")
        if line:
            head.append(f"  key: {line}", style="")
        parts.append(head)
        if side_by_side:
            grid = Table.grid(padding=(0, 2), expand=False)
            grid.add_column()
            grid.add_column()
            grid.add_row(tmp_table(o, k), dst_table(o, k, keys))
            parts.append(grid)
        else:
            parts += [tmp_table(o, k), dst_table(o, k, keys)]
    return Group(*parts)


# ---------------------------------------------------------------- harvesters

def plot_kinds_str(kinds) -> str:
    """`40×k32 3×k32 C7 2×k32 GH C7`: plots by k, and by compression (a level
    always with its format) where compressed."""
    out = []
    for k, comp, n in kinds:
        out.append(f"{n}×{plotsize.kind_label(k, comp)}")
    return " ".join(out) or "-"


def _merge_kinds(dirs) -> list:
    """[(k, Compression or None, count)] over the farm dirs' plot_kinds."""
    counts: Dict[tuple, int] = {}
    for d in dirs:
        for k, level, fmt, n, _median in getattr(d, "plot_kinds", ()) or ():
            key = (k or 0, plotsize.compression(fmt, level))
            counts[key] = counts.get(key, 0) + n
    return [(k, c, n) for (k, c), n in sorted(
        counts.items(), key=lambda kv: (kv[0][0], kv[0][1] is not None,
                                        plotsize.label(kv[0][1])))]


def drives_table(state: FleetState, hosts: Mapping[str, Host], bar_width: int = 12,
                 keys: Optional[Mapping[str, HostKeys]] = None, model: Optional[Farm] = None
                 ) -> Table:
    """Harvester drives grouped by harvester: dirs on one disk share a row;
    a drive that takes nothing says why (read-only, not mounted, set aside).
    `model`: the pass's farm (computed when not given)."""
    keys = keys or host_keys(state, hosts)
    model = farm(state, hosts) if model is None else model
    shown = FleetState(tuple(hs for hs in state.hosts
                             if hosts.get(hs.name) is not None and hosts[hs.name].is_harvester))
    t = Table(title="harvester drives", expand=True, caption_justify="left",
              caption=keys_caption(shown, keys, ("farm",)))
    t.add_column("drive", overflow="fold", ratio=1)
    t.add_column("fill", no_wrap=True, width=bar_width)
    t.add_column("used", justify="right", no_wrap=True)
    t.add_column("free", justify="right", no_wrap=True)
    t.add_column("plots", overflow="fold", ratio=1)
    by_host = {hs.name: hs for hs in state.hosts}
    names = list(dict.fromkeys([d.host for d in model.drives] + [u[0] for u in model.unusable]))
    for name in names:
        k = keys.get(name) or HostKeys(hosts.get(name), by_host[name])
        t.add_row(Text(f"{name}:", style="bold"), "", "", "", "")   # its key: the caption
        dirs = {d.path: d for d in by_host[name].dirs if d.kind == "farm"}
        for d in sorted((d for d in model.drives if d.host == name), key=lambda d: d.dirs[0]):
            used = (d.total_bytes - d.free_bytes) / d.total_bytes if d.total_bytes else 0.0
            label = ", ".join(k.short("farm", p) for p in d.dirs)
            kinds = _merge_kinds(dirs[p] for p in d.dirs if p in dirs)
            t.add_row(Text("  " + label), ProgressBar(total=1, completed=used, width=bar_width),
                      f"{used:.0%}", human_bytes(max(d.room, 0)),
                      Text(plot_kinds_str(kinds) if kinds else str(d.plot_count)))
        for host, path, why in model.unusable:
            if host == name:
                t.add_row(Text("  " + k.short("farm", path)), "", "", "", Text(why, style="red"))
    return t
