"""Alerts: what is wrong in the fleet now, and what changed since the last pass.

Pure.  `conditions()` reads one plot-all pass (plotloop.PassResult: its
state, events and waits) and says what is wrong NOW, one `Alert` per thing,
each under a key that stays the same pass after pass while the thing lasts.
`transitions()` compares two such sets by key: what started, what resolved.
`message()` puts everything of one pass into one message.  Sending, and
keeping the memory and the active set across restarts, is unattended/notify.py's.

The memory `conditions()` takes and returns is plain JSON (it is persisted):

    down_since  host -> controller clock when it was first seen unreachable
    farm_plots  harvester -> its farm plot count at the last pass it answered
    held        host ("" for the farm) -> the alerts its last answer gave

A host that does not answer says nothing about its jobs, dirs or back-off:
those alerts are held as they were (unknown is not resolved), and so is the
farm's while a harvester is down.

Conditions (key: what):

    backed_off:HOST          a plotter backed off after failed jobs in a row
    stalled:HOST:LOG         a job whose log stopped growing (Job.stalled)
    host_down:HOST           unreachable for alert_host_down_m or longer
    drive:HOST:PATH          a dir that reports an error, or was set aside
    plots_dropped:HOST       a harvester's farm plot count fell since the
                             last pass by more than its replot ledger's new
                             deletions explain (one pass, then it resolves)
    replot_stopped:HOST:DIR  deleting gave no space back: replotting stopped
                             on that drive (agent/ops/replot.py says why)
    replot_behind            the replot wave will not make replot_deadline
                             at the last 24 h's rate
    farm_full                the farm holds alert_farm_free_plots or fewer
                             more plots (of the plotters' largest k)
    copy_conflict:HOST:PLOT  a copy conflict or mismatch this pass (one
    copy_mismatch:HOST:PLOT  pass, then it resolves)
    quarantined:HOST:PLOT    a plot that failed its proof check, while it
                             waits in quarantine (one alert per plot)
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, Iterable, List, Mapping, Optional, Tuple

from orchestrator.core.decisions import WaitKind
from orchestrator.core.events import EventKind
from orchestrator.core.farm import farm
from orchestrator.core.keys import KEYS
from orchestrator.core.state import Host, HostState, phase_str
from orchestrator.core.wave import wave

COPY_KINDS = (EventKind.COPY_CONFLICT, EventKind.COPY_MISMATCH)
FARM = ""                   # the scope of the farm-wide alert in `held`


@dataclass(frozen=True)
class Alert:
    key: str            # the same thing has the same key every pass
    host: str           # "" for the farm as a whole
    subject: str        # what it is about, short: "plotter", "/mnt/f0", a job
    text: str           # the one line a person reads

    @property
    def kind(self) -> str:
        return self.key.split(":", 1)[0]

    def to_json(self) -> dict:
        return {"key": self.key, "host": self.host, "subject": self.subject,
                "text": self.text}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Alert":
        return cls(str(d["key"]), str(d.get("host", "")), str(d.get("subject", "")),
                   str(d.get("text", "")))


def _setting(config, name: str):
    """The controller's setting `name`, else its default (core/keys.py)."""
    value = getattr(config, name, None) if config is not None else None
    return KEYS[name].default if value is None else value


def _job_id(j) -> str:
    return j.plot_id[:8] if j.plot_id else f"pid {j.pid}"


def _own(hs: HostState, backed: Mapping[str, Any]) -> List[Alert]:
    """The alerts only a host's own answer can give: back-off, stalls, dirs."""
    out = []
    name = hs.name
    wait = backed.get(name)
    if wait is not None:
        f = hs.failures
        if f.count:
            text = (f"{name}: plotter backed off after {f.count} failed jobs in a row; "
                    f"last error: {f.last_error or 'none in its log'}")
        else:
            text = f"{name}: plotter {wait.reason}"
        out.append(Alert(f"backed_off:{name}", name, "plotter", text))
    for j in hs.jobs:
        if j.stalled and not j.paused:      # suspended for room: silent by design
            jid = _job_id(j)
            ident = j.log_file or f"pid {j.pid}"    # its plot id may come later
            idle = f", log silent {j.log_idle_s / 60:.0f} min" if j.log_idle_s else ""
            out.append(Alert(f"stalled:{name}:{ident}", name, f"job {jid}",
                             f"{name}: job {jid} stalled in phase {phase_str(j.phase)} "
                             f"(tmp {j.tmp_dir}{idle})"))
    for q in hs.quarantine:
        plot = q.path.rsplit("/", 1)[-1]
        out.append(Alert(f"quarantined:{name}:{plot}", name, plot,
                         f"{name}: {plot} failed its proof check and is quarantined in "
                         f"{q.path.rsplit('/', 1)[0]}: {q.reason}"))
    for d in hs.dirs:
        if d.error or d.set_aside_until is not None:
            out.append(Alert(f"drive:{name}:{d.path}", name, d.path,
                             f"{name}: {d.kind} dir {d.path}: {d.error or 'set aside'}"))
    return out


def _farm_alert(result, hosts: Mapping[str, Host], free_plots: int,
                held: Dict[str, list]) -> List[Alert]:
    ks = [h.k for h in hosts.values() if h.is_plotter]
    if not ks:
        return []
    model = result.farm if getattr(result, "farm", None) is not None else farm(result.state, hosts)
    if not model.asked:
        return []
    if model.down:          # its room is not known: as it was
        return [Alert.from_json(a) for a in held.get(FARM, ())]
    k = max(ks)
    fits = model.fits(k)
    out = []
    if fits <= free_plots:
        out.append(Alert("farm_full", FARM, "farm",
                         f"farm nearly full: room for {fits} more k{k} plots "
                         f"(alert_farm_free_plots {free_plots})"))
    held[FARM] = [a.to_json() for a in out]
    return out


def conditions(result, hosts: Mapping[str, Host], config,
               memory: Optional[Mapping[str, Any]]
               ) -> Tuple[FrozenSet[Alert], Dict[str, Any]]:
    """What is wrong now, from one pass, and the memory for the next pass.

    `result`: a plotloop.PassResult; `config`: anything with
    `alert_host_down_m` and `alert_farm_free_plots` (None: the defaults);
    `memory`: what the previous call returned (None or {} at first)."""
    memory = memory or {}
    down_m = float(_setting(config, "alert_host_down_m"))
    free_plots = int(_setting(config, "alert_farm_free_plots"))
    state = result.state
    now = state.now
    down_since: Dict[str, float] = dict(memory.get("down_since") or {})
    farm_plots: Dict[str, int] = dict(memory.get("farm_plots") or {})
    replotted: Dict[str, int] = dict(memory.get("replotted") or {})
    held: Dict[str, list] = {k: list(v) for k, v in (memory.get("held") or {}).items()}
    backed = {w.host: w for w in result.waits
              if w.kind is WaitKind.BACKED_OFF}
    alerts: List[Alert] = []
    for hs in state.hosts:
        name = hs.name
        if not hs.reachable:
            since = down_since.setdefault(name, now)
            if now - since >= down_m * 60.0:
                alerts.append(Alert(f"host_down:{name}", name, "host",
                                    f"{name}: unreachable for more than {down_m:g} min: "
                                    f"{hs.error or 'no answer'}"))
            alerts += [Alert.from_json(a) for a in held.get(name, ())]
            continue
        down_since.pop(name, None)
        own = _own(hs, backed)
        if own:
            held[name] = [a.to_json() for a in own]
        else:
            held.pop(name, None)
        alerts += own
        host = hosts.get(name)
        if host is not None and host.is_harvester:
            count = sum(d.plot_count for d in hs.dirs if d.kind == "farm")
            before = farm_plots.get(name)
            # the ledger's deletions since the last pass explain that much of a drop
            deleted = sum(len(s.deletions) for s in hs.replot.sets)
            explained = max(0, deleted - replotted.get(name, deleted))
            replotted[name] = deleted
            if before is not None and count < before - explained:
                gone = ", ".join(f"{d.path} ({d.error})" for d in hs.dirs
                                 if d.kind == "farm" and d.error)
                alerts.append(Alert(f"plots_dropped:{name}", name, "farm plots",
                                    f"{name}: farm plot count dropped from {before} to "
                                    f"{count} ({count - before}"
                                    + (f", {explained} of them replotted" if explained else "")
                                    + ")" + (f"; unusable: {gone}" if gone else "")))
            for path, why in hs.replot.stopped:
                alerts.append(Alert(f"replot_stopped:{name}:{path}", name, path,
                                    f"{name}: replotting stopped on {path}: {why}"))
            farm_plots[name] = count
    alerts += _farm_alert(result, hosts, free_plots, held)
    deadline = _setting(config, "replot_deadline")
    w = wave(state, hosts, deadline) if deadline else None
    if w is not None and w.behind:
        alerts.append(Alert("replot_behind", FARM, "replot",
                            f"replot wave behind for {deadline}: {w.verdict}"))
    for e in result.events:
        if e.kind in COPY_KINDS:
            alerts.append(Alert(f"{e.kind}:{e.host}:{e.subject}", e.host, e.subject,
                                e.detail))
    return frozenset(_by_key(alerts).values()), {
        "down_since": down_since, "farm_plots": farm_plots, "held": held,
        "replotted": replotted}


def _by_key(alerts: Iterable[Alert]) -> "OrderedDict[str, Alert]":
    """One alert per key (the first one given wins)."""
    out: "OrderedDict[str, Alert]" = OrderedDict()
    for a in alerts:
        out.setdefault(a.key, a)
    return out


def transitions(active_before: Iterable[Alert], active_now: Iterable[Alert]
                ) -> Tuple[Tuple[Alert, ...], Tuple[Alert, ...]]:
    """(started, resolved), by key, each sorted by key.  A resolved alert is
    given as it was last active."""
    before, now = _by_key(active_before), _by_key(active_now)
    started = tuple(now[k] for k in sorted(now) if k not in before)
    resolved = tuple(before[k] for k in sorted(before) if k not in now)
    return started, resolved


def message(started: Iterable[Alert], resolved: Iterable[Alert]) -> Tuple[str, str]:
    """One message for everything of one pass: (title, body).  The body
    lists the new alerts, then the resolved ones, one line each, by host."""
    started = sorted(started, key=lambda a: (a.host, a.key))
    resolved = sorted(resolved, key=lambda a: (a.host, a.key))
    if len(started) + len(resolved) == 1:
        a = (started or resolved)[0]
        title = f"plotfleet: {'resolved: ' if resolved else ''}{a.text}"
    else:
        parts = []
        if started:
            parts.append(f"{len(started)} alert{'s' if len(started) != 1 else ''}")
        if resolved:
            parts.append(f"{len(resolved)} resolved")
        hosts = sorted({a.host or "farm" for a in started + resolved})
        title = f"plotfleet: {', '.join(parts)} ({', '.join(hosts)})"
    lines = [f"ALERT {a.text}" for a in started]
    lines += [f"RESOLVED {a.text}" for a in resolved]
    return title, "\n".join(lines)
