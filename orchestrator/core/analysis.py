"""analyze: phase times of finished plots, aggregated by host, tmp dir, plotter, k.

Pure: logs come in as text (remote/logs.py collects them from the fleet's
agents or a local folder); parsing is the agent's own logparse (one parser
for both live phases and history).  A log that cannot be read or parsed is
counted and named, not fatal.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

from agent.vocab import lognames
from agent.vocab.logread import analyze_plots
from orchestrator.core import plotsize

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
    finished_at: float                     # epoch: start + total from the log, else log mtime
    compression: str = "C0"                # level with its format: C7 (bladebit), GH C7
    kind: str = ""                         # k with it, as status says: k32 C7, v2 k28 s2


@dataclass(frozen=True)
class Failed:
    """A plot that never finished and whose job is gone (not one killed on request)."""
    host: str
    log: str
    plotter: str
    error: Optional[str]


@dataclass
class Collected:
    runs: List[Run] = field(default_factory=list)
    unreadable: List[Tuple[str, str]] = field(default_factory=list)   # (where, why)
    unfinished: int = 0
    failed: List[Failed] = field(default_factory=list)
    down: List[str] = field(default_factory=list)        # hosts that could not be asked
    checks: List["CheckRun"] = field(default_factory=list)


@dataclass(frozen=True)
class CheckRun:
    """One finished proof check of a new plot, with who made the plot."""
    host: str
    plotter: str
    device: str                     # "GPU 0" (cuda_device), else "cpu"
    level: str                      # C0, C7, GH C7 ...
    status: str                     # passed | failed | not_checked
    ratio: Optional[float]
    seconds: Optional[float]
    bytes_read: Optional[int]
    error: Optional[str] = None


def check_run(host, rec: dict) -> "CheckRun":
    """A check history record of `host` (an inventory Host) as a CheckRun."""
    level = plotsize.label(plotsize.compression(rec.get("compress_format"),
                                                rec.get("compress") or 0))
    device = f"GPU {host.cuda_device}" if host.cuda_device is not None else (
        "GPU" if host.bladebit_mode == "cudaplot" or host.plotter == "gigahorse" else "cpu")
    return CheckRun(host.name, host.plotter, device, level, str(rec.get("status")),
                    rec.get("ratio"), rec.get("seconds"), rec.get("bytes_read"),
                    rec.get("error"))


def check_report(checks: List[CheckRun]) -> Dict[str, List[dict]]:
    """Check results by plotter (host and program), device and level: how
    many passed, failed (quarantined), were not checked; the median ratio
    and what a check cost."""
    keys = {"plotter": lambda c: f"{c.host} {c.plotter}",
            "device": lambda c: f"{c.host} {c.device}",
            "level": lambda c: c.level}
    out: Dict[str, List[dict]] = {}
    for grouping, key in keys.items():
        groups: Dict[str, List[CheckRun]] = {}
        for c in checks:
            groups.setdefault(key(c), []).append(c)
        rows = []
        for k, cs in sorted(groups.items()):
            ratios = [c.ratio for c in cs if c.ratio is not None]
            secs = [c.seconds for c in cs if c.seconds is not None]
            rows.append({"key": k, "checked": len(cs),
                         "passed": sum(1 for c in cs if c.status == "passed"),
                         "failed": sum(1 for c in cs if c.status == "failed"),
                         "not_checked": sum(1 for c in cs if c.status == "not_checked"),
                         "median_ratio": statistics.median(ratios) if ratios else None,
                         "mean_seconds": statistics.mean(secs) if secs else None,
                         "mean_bytes_read": statistics.mean(
                             [c.bytes_read for c in cs if c.bytes_read is not None] or [0])})
        out[grouping] = rows
    return out


def add_log(col: Collected, host: str, path: str, text, mtime: float,
            live: bool = False) -> None:
    """Add one log's plots: finished ones as runs; unfinished ones as failed,
    unless its job still runs (`live`: the last plot is in progress) or was
    killed on request."""
    where = path if host == "local" else f"{host}:{path}"
    try:
        plots = analyze_plots(text, lognames.plotter_of(path))   # chiapos reads like chia
    except Exception as e:   # a parser bug must not hide the other logs
        col.unreadable.append((where, f"parse error: {type(e).__name__}: {e}"))
        return
    if plots is None:
        col.unreadable.append((where, "not a plot log"))
        return
    done = [p for p in plots if p["finished"] and p["total_s"] is not None]
    col.unfinished += len(plots) - len(done)
    for i, p in enumerate(plots):
        if p["finished"] or p["killed"] or (live and i == len(plots) - 1):
            continue
        col.failed.append(Failed(host, path, p["plotter"] or "?", p["error"]))
    # without timestamps in the log, the last plot ended at the log's mtime
    # and each earlier one when the next began
    end = mtime
    found = []
    for p in reversed(done):
        finished_at = p["start_time"] + p["total_s"] if p["start_time"] else end
        comp = plotsize.compression(p.get("compress_format"), p.get("compress"))
        found.append(Run(host, path, p["plotter"], p["k"] or 0, p["tmp_dir"] or "?",
                         tuple(p["phase_s"]) + (p["total_s"],), finished_at,
                         plotsize.label(comp), _kind(p["k"] or 0, comp)))
        end = finished_at - p["total_s"]
    col.runs.extend(reversed(found))


def _kind(k: int, comp) -> str:
    """k and level: "k32 C0", "k32 GH C7"; a PoS2 plot as status says it, "v2 k28 s2"."""
    if comp is not None and comp.format == plotsize.POS2:
        return plotsize.kind_label(k, comp)
    return f"k{k} {plotsize.label(comp)}"


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
    "fleet": lambda r: "fleet",
    "host": lambda r: r.host,
    "tmp_dir": lambda r: f"{r.host}:{r.tmp_dir}",
    "plotter": lambda r: r.plotter,
    "k": lambda r: f"k{r.k}",
    "compression": lambda r: r.kind or f"k{r.k} {r.compression}",
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
    """Everything `analyze` shows, as plain data (the --json document)."""
    failed_by: Dict[str, Dict[str, int]] = {"host": {}, "plotter": {}}
    for f in col.failed:
        for grouping, key in (("host", f.host), ("plotter", f.plotter)):
            failed_by[grouping][key] = failed_by[grouping].get(key, 0) + 1
    return {"plots": len(col.runs), "unfinished": col.unfinished,
            "failed": len(col.failed),
            "failed_by": {g: dict(sorted(v.items())) for g, v in failed_by.items()},
            "failures": [{"host": f.host, "log": f.log, "plotter": f.plotter,
                          "error": f.error} for f in col.failed],
            "unreadable": [{"where": w, "why": y} for w, y in col.unreadable],
            "down": list(col.down),
            "groups": aggregate(col.runs), "plots_per_day": plots_per_day(col.runs),
            "checks": check_report(col.checks),
            "runs": [{"host": r.host, "log": r.log, "plotter": r.plotter, "k": r.k,
                      "compression": r.compression,
                      "tmp_dir": r.tmp_dir, "finished_at": r.finished_at,
                      **dict(zip(PHASES, r.times))} for r in col.runs]}
