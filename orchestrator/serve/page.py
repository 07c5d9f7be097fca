"""/: one small read-only HTML page of the latest Picture.

Self-contained (inline CSS, no script, no font or image from anywhere: the
box may have no internet), it reloads itself every `refresh` seconds and
lays its tables out as cards on a phone.  Every value from a host or the
inventory is escaped.  The figures carry `data-fig` (and rows `data-job`,
`data-transfer`, `data-drive`, `data-down`) so they can be read back.
"""
from __future__ import annotations

import time
from html import escape
from typing import Iterable, Optional

from orchestrator.core import plotsize
from orchestrator.core.decisions import human_bytes
from orchestrator.core.state import phase_str
from orchestrator.core.wave import wave
from orchestrator.serve.picture import Picture, transfer_rate
from orchestrator.ui import dirtables, eventline

CSS = """
:root{color-scheme:light dark;--bar:#4a8;--bg2:rgba(127,127,127,.15)}
body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;padding:12px;max-width:1200px}
h1{font-size:1.3em;margin:0 0 4px}h2{font-size:1.05em;margin:18px 0 6px}
.sub{opacity:.7;font-size:.9em}.bad{color:#d33}.ok{color:#2a7}
.sum{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:8px}
.sum div{background:var(--bg2);border-radius:8px;padding:8px}
.sum b{display:block;font-size:1.4em}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:4px 6px;
border-bottom:1px solid var(--bg2);vertical-align:top}td{overflow-wrap:anywhere}
.bar{background:var(--bg2);border-radius:4px;height:10px;min-width:60px}
.bar i{display:block;height:100%;background:var(--bar);border-radius:4px}
.full i{background:#d83}
ul.ev{list-style:none;padding:0;margin:0}ul.ev li{padding:3px 0;border-bottom:1px solid var(--bg2);
overflow-wrap:anywhere}
.why{display:grid;grid-template-columns:max-content 1fr;gap:2px 8px;margin:4px 0}
.why span{overflow-wrap:anywhere}.warn{color:#b80}
.card{background:var(--bg2);border-radius:8px;padding:8px;margin:0 0 8px}
.card h3{margin:0 0 4px;font-size:1em}.key{opacity:.7;font-size:.85em;overflow-wrap:anywhere}
@media (max-width:640px){
 thead{display:none}table,tbody,tr,td{display:block;width:auto}
 tr{background:var(--bg2);border-radius:8px;margin:0 0 8px;padding:6px}
 td{border:0;padding:1px 0}td[data-l]:before{content:attr(data-l) ": ";opacity:.7}
 .wide{display:none}}
"""


def _dur(s: Optional[float]) -> str:
    if s is None:
        return "-"
    s = int(max(s, 0))
    h, rem = divmod(s, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60}:{rem % 60:02d}"


def _bar(fraction: float, warn: bool = False) -> str:
    pct = max(0.0, min(fraction, 1.0)) * 100
    return f'<div class="bar{" full" if warn else ""}"><i style="width:{pct:.1f}%"></i></div>'


def _table(cols, rows: Iterable[str], empty: str) -> str:
    rows = list(rows)
    if not rows:
        return f'<p class="sub">{escape(empty)}</p>'
    head = "".join(f'<th{" class=wide" if c.startswith("~") else ""}>{escape(c.lstrip("~"))}</th>'
                   for c in cols)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _td(label: str, value: str, wide: bool = False) -> str:
    """A cell; `value` is already HTML.  On a phone the label goes in front."""
    return f'<td data-l="{escape(label)}"{" class=wide" if wide else ""}>{value}</td>'


def _dirs(k, j) -> str:
    """`t0 → dst`: a job's dirs by its host's key."""
    if k is None:
        return f"{j.tmp_dir or '-'} → {j.dst_dir or '-'}"
    return f"{k.short('tmp', j.tmp_dir)} → {k.short('dst', j.dst_dir)}"


def _plotter(o, keys) -> str:
    """One plotter's card: why it plots or not, why it archives or not (the
    terminal's plotting and archiving lines), its tmp and dst dirs' readiness."""
    k = keys.get(o.host)
    plotting = dirtables.plotting_text(o, k).plain if k else (o.plotting_reason or o.plotting)
    archiving = dirtables.archiving_text(o, keys).plain if k else (o.archiving_reason or "")
    bad = o.plotting in ("blocked", "failed", "unreachable")
    tmp = "".join(
        f'<tr data-tmp="{escape(o.host)}:{escape(v.path)}" data-ready="{int(v.ready)}">'
        f'{_td("tmp", escape(k.short("tmp", v.path) if k else v.path))}'
        f'{_td("ready", "<span class=ok>ready</span>" if v.ready else f"<span class=warn>{escape(v.rule)}</span>")}'
        f'{_td("phases", escape(dirtables.phases_str(v.phases)))}'
        f'{_td("free", "-" if v.free_bytes is None else human_bytes(v.free_bytes))}</tr>'
        for v in o.tmp)
    dst = "".join(
        f'<tr data-dst="{escape(o.host)}:{escape(r.path)}" data-state="{escape(r.state)}">'
        f'{_td("dst", escape(k.short("dst", r.path) if k else r.path))}'
        f'{_td("plots", str(r.plots))}{_td("state", escape(r.state))}'
        f'{_td("why", escape(r.reason or ""))}'
        f'{_td("free", "-" if r.free_bytes is None else human_bytes(r.free_bytes))}</tr>'
        for r in o.dst)
    line = k.line(("tmp", "dst")) if k else ""
    return (f'<div class="card" data-plotter="{escape(o.host)}"><h3>{escape(o.host)}</h3>'
            f'<div class="why"><b>plotting</b><span data-why="plotting"'
            f'{" class=bad" if bad else ""}>{escape(plotting)}</span>'
            f'<b>archiving</b><span data-why="archiving">{escape(archiving)}</span></div>'
            + (f'<div class="key">key {escape(line)}</div>' if line else "")
            + (_table(("tmp", "ready", "phases", "free"), [tmp], "") if tmp else "")
            + (_table(("dst", "plots", "state", "why", "free"), [dst], "") if dst else "")
            + "</div>")


def summary(p: Picture) -> dict:
    """The page's headline figures (each shown with its data-fig name)."""
    st = p.state
    up = [h for h in st.hosts if h.reachable]
    model = p.farm
    fig = {"hosts-up": len(up), "hosts-down": len(st.hosts) - len(up),
           "jobs": sum(len(h.jobs) for h in up),
           "plots-waiting": sum(len(h.plots) for h in up),
           "transfers": sum(1 for h in up for x in h.transfers if x.status == "running"),
           "drives": len(model.drives), "farm-dirs": sum(len(d.dirs) for d in model.drives),
           "farm-free": human_bytes(model.room)}
    w = p.wave if p.wave is not None else wave(st, p.hosts)
    if w.active:                # the replot wave, with its deadline's verdict
        fig.update({"replot-old": w.old, "replot-new": w.new, "replot-24h": w.replaced_24h})
        if w.verdict:
            fig["replot-verdict"] = w.verdict
    return fig


def render(p: Optional[Picture], refresh: float, task: str) -> str:
    head = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<meta http-equiv="refresh" content="{max(int(refresh), 2)}">'
            f'<title>plotfleet</title><style>{CSS}</style></head><body>')
    if p is None:
        return head + f"<h1>plotfleet</h1><p>{escape(task)}: waiting for the first pass…</p></body></html>"
    st, now = p.state, p.at
    fig = summary(p)
    labels = {"hosts-up": "hosts up", "hosts-down": "hosts down", "jobs": "jobs",
              "plots-waiting": "plots waiting", "transfers": "transfers", "drives": "farm drives",
              "farm-dirs": "farm dirs", "farm-free": "farm free", "replot-old": "old plots left",
              "replot-new": "new plots", "replot-24h": "replaced in 24 h",
              "replot-verdict": "replot " + (f"by {p.wave.deadline}" if p.wave and
                                             p.wave.deadline else "wave")}
    bad = {"hosts-down": bool(fig.get("hosts-down")),
           "replot-verdict": bool(p.wave and p.wave.behind)}
    cards = "".join(
        f'<div>{labels[k]}<b data-fig="{k}"{" class=bad" if bad.get(k) else ""}>'
        f'{escape(str(v))}</b></div>' for k, v in fig.items())
    out = [head, f'<h1>plotfleet</h1><p class="sub">{escape(task)} · pass {p.number} at '
                 f'<span data-fig="pass-at" data-at="{p.at:.3f}">'
                 f'{time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(p.at))}</span>'
                 f' ({p.seconds:.1f} s) · read-only</p>', f'<div class="sum">{cards}</div>']

    down = [h for h in st.hosts if not h.reachable]
    if down:
        out.append('<h2 class="bad">hosts down</h2>' + _table(("host", "why"), (
            f'<tr data-down="{escape(h.name)}">{_td("host", escape(h.name))}'
            f'{_td("why", escape(h.error or "unknown"))}</tr>' for h in down), ""))

    keys = dirtables.host_keys(st, p.hosts)
    if p.outlooks:
        out.append("<h2>plotters</h2>" + "".join(_plotter(o, keys) for o in p.outlooks))

    def _kind(j) -> str:       # k with its compression, a level never without its format
        if j.compression is not None and j.compression.format == plotsize.POS2:
            return plotsize.kind_label(j.k, j.compression)
        return str(j.k) if j.compression is None else f"{j.k} {j.compression.label()}"

    rows = []
    for h in st.hosts:
        for j in sorted(h.jobs, key=lambda j: j.started_at):
            phase = phase_str(j.phase)
            state = "stalled" if j.stalled else j.state
            rows.append(f'<tr data-job="{escape(h.name)}:{j.pid}">'
                        f'{_td("plot", escape((j.plot_id or "?")[:8]))}{_td("host", escape(h.name))}'
                        f'{_td("phase", phase)}'
                        f'{_td("state", escape(state) if state == "running" else f"<span class=bad>{escape(state)}</span>")}'
                        f'{_td("wall", _dur(j.elapsed_s))}{_td("k", escape(_kind(j)))}'
                        f'{_td("dirs", escape(_dirs(keys.get(h.name), j)))}'
                        f'{_td("tmp size", human_bytes(j.tmp_bytes))}</tr>')
    out.append("<h2>jobs</h2>" + _table(("plot", "host", "phase", "state", "wall", "k", "dirs",
                                         "tmp size"), rows, "no jobs"))

    rows = []
    for h in st.hosts:
        for x in h.transfers:
            frac = x.bytes_done / x.size_bytes if x.size_bytes else 0.0
            rate = transfer_rate(h.host_time or now, x)
            status = x.status + (f" ({x.error})" if x.error else "")
            rows.append(f'<tr data-transfer="{escape(x.plot.rsplit("/", 1)[-1])}" '
                        f'data-progress="{frac * 100:.1f}">'
                        f'{_td("plot", escape(x.plot.rsplit("/", 1)[-1][:48]))}'
                        f'{_td("from → to", escape(f"{h.name} → {x.to_host}:{x.to_dir}"))}'
                        f'{_td("progress", _bar(frac) + f"{frac:.0%} of {human_bytes(x.size_bytes)}")}'
                        f'{_td("rate", f"{human_bytes(rate)}/s" if rate else "-")}'
                        f'{_td("status", escape(status))}</tr>')
    out.append("<h2>transfers</h2>" + _table(("plot", "from → to", "progress", "rate", "status"),
                                             rows, "no transfers"))

    rows = [f'<tr data-quarantined="{escape(q.path.rsplit("/", 1)[-1])}">'
            f'{_td("host", escape(h.name))}{_td("plot", escape(q.path), True)}'
            f'{_td("why", f"<span class=bad>{escape(q.reason)}</span>")}</tr>'
            for h in st.hosts for q in h.quarantine]
    rows += [f'<tr data-checking="{escape((c.plot or "?").rsplit("/", 1)[-1])}">'
             f'{_td("host", escape(h.name))}{_td("plot", escape(c.plot or "?"), True)}'
             f'{_td("why", "checking")}</tr>' for h in st.hosts for c in h.checks]
    out.append("<h2>proof checks</h2>" + _table(("host", "~plot", "why"), rows,
                                                "no check running, no plot in quarantine"))

    model = p.farm
    rows = []
    for d in sorted(model.drives, key=lambda d: (d.host, d.dirs[0])):
        used = (d.total_bytes - d.free_bytes) / d.total_bytes if d.total_bytes else 0.0
        k = keys.get(d.host)
        dirs = ", ".join(k.short("farm", x) if k else x for x in d.dirs)
        rows.append(f'<tr data-drive="{escape(d.label())}" data-used="{used * 100:.1f}" '
                    f'data-dirs="{len(d.dirs)}">'
                    f'{_td("drive", escape(f"{d.host}:{d.device}"))}{_td("dirs", escape(dirs))}'
                    f'{_td("fill", _bar(used, used > 0.95))}'
                    f'{_td("used", f"{used:.0%}")}{_td("free", human_bytes(max(d.room, 0)))}'
                    f'{_td("plots", str(d.plot_count))}</tr>')
    for host, path, why in model.unusable:
        rows.append(f'<tr data-drive="{escape(host)}:{escape(path)}" data-used="">'
                    f'{_td("drive", escape(host))}{_td("dirs", escape(path))}'
                    f'{_td("fill", f"<span class=bad>{escape(why)}</span>")}'
                    f'{_td("used", "")}{_td("free", "")}{_td("plots", "")}</tr>')
    out.append("<h2>harvester drives</h2>" + _table(
        ("drive", "dirs", "fill", "used", "free", "plots"), rows, "no harvester drives"))

    # the lines plot-all prints (newest first here), wrapping at a phone's width
    places = eventline.Places(keys)
    items = [f'<li{" class=bad" if e.failed else ""}>'
             f'<span class="sub">{time.strftime("%H:%M:%S", time.localtime(at))}</span> '
             f'{escape(eventline.render(e.to_json(), "", places).plain)}</li>'
             for at, e in reversed(p.events)]
    out.append("<h2>recent events</h2>" + (f'<ul class="ev">{"".join(items)}</ul>' if items
                                           else '<p class="sub">no events yet</p>'))
    out.append("</body></html>")
    return "".join(out)
