"""Logs on the hosts: find a plot's log on whichever host holds it and
stream it; collect every log for analyze (through the agents, or from a
local folder)."""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Mapping, Tuple

from agent.vocab.logread import LogState, analyze_log
from agent.facts.procs import held_open
from orchestrator.core.analysis import Collected, add_log, check_run
from orchestrator.errors import one_line

from orchestrator.errors import UserError
from orchestrator.core.state import FleetState, Host

HEAD = 65536   # a log names its plot id in its first lines


def find_log(fleet, state: FleetState, hosts: Mapping[str, Host], prefix: str) -> Tuple[str, str]:
    """(host, log path) of the one job, dead job or finished log with that id prefix."""
    prefix = prefix.lower()
    found = {}
    for h in state.hosts:
        for j in h.jobs:
            if j.plot_id and j.plot_id.startswith(prefix) and j.log_file:
                found[(h.name, j.log_file)] = j.plot_id
        for d in h.dead:
            if d.plot_id.startswith(prefix):
                found[(h.name, d.log_file)] = d.plot_id
    if not found:   # finished plots: look through the logs themselves
        for h in state.hosts:
            if not h.reachable or not hosts[h.name].is_plotter:
                continue
            agent = fleet.agent(h.name)
            for entry in agent.list_logs().logs:
                head = agent.read_log(path=entry["path"], offset=0, max_bytes=HEAD).data
                info = analyze_log(head)
                if info and info["plot_id"] and info["plot_id"].startswith(prefix):
                    found[(h.name, entry["path"])] = info["plot_id"]
    if not found:
        raise UserError(f"no log for plot id starting {prefix!r}")
    if len(set(found.values())) > 1:
        raise UserError(f"plot id prefix {prefix!r} is ambiguous: " + "; ".join(
            f"{host}: {pid[:12]}" for (host, _), pid in sorted(found.items())))
    return next(iter(found))


def stream_log(fleet, host: Host, path: str, follow: bool, interval: float = 1.0) -> Iterator[str]:
    """The log's text in chunks; with follow, new text as it comes, until the
    plot is finished (a dead job's log is followed until interrupted, like tail -f)."""
    offset = 0
    state = LogState()
    pending = ""
    while True:
        res = fleet.agent(host.name).read_log(path=path, offset=offset, max_bytes=1 << 20)
        if res.data:
            yield res.data
            if follow:
                lines = (pending + res.data).split("\n")
                pending = lines.pop()
                for line in lines:
                    state.feed(line)
        grew = res.offset != offset
        offset = res.offset
        if not grew:
            if not follow or state.finished:
                return
            time.sleep(interval)


def collect_local(folder: str, host: str = "local") -> Collected:
    col = Collected()
    held = held_open([os.path.realpath(folder)])     # logs of jobs running here
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
        add_log(col, host, path, text, os.path.getmtime(path),
                live=os.path.realpath(path) in held)
    return col


def _host_logs(fleet, h) -> Collected:
    col = Collected()
    try:
        logs = fleet.agent(h.name).list_logs().logs
    except Exception as e:
        col.unreadable.append((h.name, f"unreachable: {one_line(e)}"))
        col.down.append(h.name)
        return col
    try:
        col.checks += [check_run(h, rec) for rec in
                       fleet.agent(h.name).check_history().checks]
    except Exception as e:
        col.unreadable.append((f"{h.name}: proof checks", one_line(e)))
    for entry in logs:
        try:
            text = read_whole(fleet, h, entry["path"])
        except Exception as e:
            col.unreadable.append((f"{h.name}:{entry['path']}", one_line(e)))
            continue
        add_log(col, h.name, entry["path"], text, entry["mtime"], live=entry.get("live", False))
    return col


def collect_fleet(fleet, hosts) -> Collected:
    """Every log in every plotter's log_dir, read through its agent, hosts in parallel."""
    plotters = [h for h in hosts if h.is_plotter]
    col = Collected()
    if not plotters:
        return col
    with ThreadPoolExecutor(max_workers=min(16, len(plotters))) as pool:
        for part in pool.map(lambda h: _host_logs(fleet, h), plotters):
            col.runs += part.runs
            col.unreadable += part.unreadable
            col.unfinished += part.unfinished
            col.failed += part.failed
            col.down += part.down
            col.checks += part.checks
    return col


def read_whole(fleet, host, path: str, chunk: int = 4 << 20) -> str:
    parts, offset = [], 0
    while True:
        res = fleet.agent(host.name).read_log(path=path, offset=offset, max_bytes=chunk)
        parts.append(res.data)
        if res.offset >= res.size or res.offset == offset:
            return "".join(parts)
        offset = res.offset
