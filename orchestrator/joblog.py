"""Find a plot's log on whichever host holds it, and stream it."""
from __future__ import annotations

import time
from typing import Iterator, Mapping, Tuple

from agent.logparse import LogState, analyze_log

from .errors import UserError
from .model import FleetState, Host

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
            cfg = hosts[h.name].agent_config()
            for entry in fleet.call(h.name, "list_logs", config=cfg)["logs"]:
                head = fleet.call(h.name, "read_log", config=cfg, path=entry["path"],
                                  offset=0, max_bytes=HEAD)["data"]
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
    cfg = host.agent_config()
    state = LogState()
    pending = ""
    while True:
        res = fleet.call(host.name, "read_log", config=cfg, path=path, offset=offset,
                         max_bytes=1 << 20)
        if res["data"]:
            yield res["data"]
            if follow:
                lines = (pending + res["data"]).split("\n")
                pending = lines.pop()
                for line in lines:
                    state.feed(line)
        grew = res["offset"] != offset
        offset = res["offset"]
        if not grew:
            if not follow or state.finished:
                return
            time.sleep(interval)
