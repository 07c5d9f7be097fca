"""The fleet as a pass left it: the pass's snapshot (taken before it acted)
with its own actions applied, so a summary printed under the pass's events
agrees with them (a job started is counted, a transfer started is running, a
plot whose source was removed is no longer waiting).  Pure: from the
snapshot and the events' facts (core/events.py) alone; the next gather is
the truth again.
"""
from __future__ import annotations

import posixpath
import re
from dataclasses import replace
from typing import Dict, Iterable, List, Set

from orchestrator.core.events import Event
from orchestrator.core.state import FleetState, Job, Transfer

_WHAT = re.compile(r"^(\S+) k(\d+)$")       # "chiapos k18"


def _job(e: Event) -> Job:
    m = _WHAT.match(e.what or "")
    return Job(plot_id=e.plot_id, plotter=m.group(1) if m else "?",
               k=int(m.group(2)) if m else 0, pid=e.pid or 0, phase=None, state="running",
               tmp_dir=e.dir, dst_dir=e.to_dir, log_file=e.subject, elapsed_s=0.0, tmp_bytes=0)


def after_actions(state: FleetState, events: Iterable[Event]) -> FleetState:
    started: Dict[str, List[Job]] = {}
    sent: Dict[str, List[Transfer]] = {}
    gone: Dict[str, Set[str]] = {}          # host -> plot file names no longer there
    for e in events:
        if e.failed:
            continue
        if e.kind == "job_started" and e.pid is not None:
            started.setdefault(e.host, []).append(_job(e))
        elif e.kind == "transfer_started" and e.dir and e.to_host:
            sent.setdefault(e.host, []).append(Transfer(
                plot=posixpath.join(e.dir, e.subject), to_host=e.to_host, to_dir=e.to_dir or "",
                bytes_done=0, pid=e.pid, size_bytes=e.size_bytes or 0))
        elif e.kind == "source_removed":
            gone.setdefault(e.host, set()).add(e.subject)
    if not (started or sent or gone):
        return state
    hosts = []
    for hs in state.hosts:
        names = gone.get(hs.name, set())
        known = {j.log_file for j in hs.jobs}
        hosts.append(replace(
            hs, jobs=hs.jobs + tuple(j for j in started.get(hs.name, ()) if j.log_file not in known),
            plots=tuple(p for p in hs.plots if posixpath.basename(p.path) not in names),
            transfers=tuple(t for t in hs.transfers if posixpath.basename(t.plot) not in names)
            + tuple(sent.get(hs.name, ()))))
    return replace(state, hosts=tuple(hosts))
