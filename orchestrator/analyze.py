"""analyze: phase times of finished plots, aggregated by host, tmp dir, plotter, k.

Logs come from the fleet's agents (list_logs + read_log) or a local folder;
parsing is the agent's own logparse (one parser for both live phases and
history).  A log that cannot be read or parsed is counted and named, not fatal.
"""
from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

from agent.logparse import analyze_log

PHASES = ("p1", "p2", "p3", "p4", "total")
DAY = 86400.0


@dataclass(frozen=True)
class Run:
    host: str
    log: str
    plotter: str
    k: int
    tmp_dir: str
    times: Tuple[Optional[float], ...]     # p1..p4, total (seconds)
    finished_at: float                     # epoch (log mtime)


@dataclass
class Collected:
    runs: List[Run] = field(default_factory=list)
    unreadable: List[Tuple[str, str]] = field(default_factory=list)   # (where, why)
    unfinished: int = 0


def add_log(col: Collected, host: str, path: str, text, mtime: float) -> None:
    try:
        info = analyze_log(text)
    except Exception as e:   # a parser bug must not hide the other logs
        col.unreadable.append((f"{host}:{path}", f"parse error: {e}"))
        return
    if info is None:
        col.unreadable.append((f"{host}:{path}", "not a plot log"))
        return
    if not info["finished"] or info["total_s"] is None:
        col.unfinished += 1
        return
    col.runs.append(Run(host, path, info["plotter"], info["k"] or 0, info["tmp_dir"] or "?",
                        tuple(info["phase_s"]) + (info["total_s"],), mtime))


def collect_local(folder: str, host: str = "local") -> Collected:
    col = Collected()
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            continue
        try:
            with open(path, "rb") as f:
                text = f.read()
        except OSError as e:
            col.unreadable.append((path, e.strerror or str(e)))
            continue
        add_log(col, host, path, text, os.path.getmtime(path))
    return col


def collect_fleet(fleet, hosts) -> Collected:
    """Every log in every plotter's log_dir, read through its agent."""
    col = Collected()
    for h in hosts:
        if not h.is_plotter:
            continue
        try:
            logs = fleet.call(h.name, "list_logs", config=h.agent_config())["logs"]
        except Exception as e:
            col.unreadable.append((h.name, f"unreachable: {e}"))
            continue
        for entry in logs:
            try:
                text = read_whole(fleet, h, entry["path"])
            except Exception as e:
                col.unreadable.append((f"{h.name}:{entry['path']}", str(e)))
                continue
            add_log(col, h.name, entry["path"], text, entry["mtime"])
    return col


def read_whole(fleet, host, path: str, chunk: int = 4 << 20) -> str:
    parts, offset = [], 0
    while True:
        res = fleet.call(host.name, "read_log", config=host.agent_config(), path=path,
                         offset=offset, max_bytes=chunk)
        parts.append(res["data"])
        if res["offset"] >= res["size"] or res["offset"] == offset:
            return "".join(parts)
        offset = res["offset"]


def _p90(xs: List[float]) -> float:
    xs = sorted(xs)
    if len(xs) == 1:
        return xs[0]
    # linear interpolation between closest ranks (numpy's default)
    pos = 0.9 * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def stats(values: Iterable[Optional[float]]) -> Optional[dict]:
    xs = [v for v in values if v is not None]
    if not xs:
        return None
    return {"mean": statistics.fmean(xs), "median": statistics.median(xs), "p90": _p90(xs)}


GROUPINGS = {
    "host": lambda r: r.host,
    "tmp_dir": lambda r: f"{r.host}:{r.tmp_dir}",
    "plotter": lambda r: r.plotter,
    "k": lambda r: f"k{r.k}",
}


def aggregate(runs: List[Run]) -> Dict[str, List[dict]]:
    """{grouping: [{"key", "count", "p1": stats, ..., "total": stats}]}"""
    out = {}
    for name, keyf in GROUPINGS.items():
        groups: Dict[str, List[Run]] = {}
        for r in runs:
            groups.setdefault(keyf(r), []).append(r)
        out[name] = [dict(key=key, count=len(rs),
                          **{ph: stats(r.times[i] for r in rs) for i, ph in enumerate(PHASES)})
                     for key, rs in sorted(groups.items())]
    return out


def plots_per_day(runs: List[Run]) -> Dict[str, float]:
    """Finished plots per day over the span the logs cover, per host and fleet."""
    def rate(rs):
        start = min(r.finished_at - (r.times[-1] or 0) for r in rs)
        end = max(r.finished_at for r in rs)
        return len(rs) * DAY / max(end - start, 1.0)
    per = {}
    for r in runs:
        per.setdefault(r.host, []).append(r)
    out = {h: rate(rs) for h, rs in sorted(per.items())}
    if runs:
        out["fleet"] = rate(runs)
    return out


def report(col: Collected) -> dict:
    return {"plots": len(col.runs), "unfinished": col.unfinished,
            "unreadable": [{"where": w, "why": y} for w, y in col.unreadable],
            "groups": aggregate(col.runs), "plots_per_day": plots_per_day(col.runs)}
