"""One snapshot of a host: jobs, dirs, plots, transfers, partials, dead jobs.

Several simulated hosts may share one machine, so everything is filtered by
the host's configured dirs: a job counts when its tmp or dst dir lies inside
them, a transfer when its source plot does.
"""
import json
import os
import time

import psutil

from . import disks, failures, lognames
from .procs import ProcScanner, held_open, maybe_receiving, rsync_targets

FRESH_S = 60.0   # a partial this fresh may belong to an idle rsync server

DEAD_KEEP_S = 86400.0   # dead_keep_h's default: a dead job without leftovers stays a day


def state_dir():
    return os.path.join(os.path.expanduser("~"), ".plotfleet")


def transfers_dir():
    return os.path.join(state_dir(), "transfers")


def _match_dir(path, cdirs, kinds):
    """The configured spelling of `path` if it is one of the dirs of `kinds`."""
    if not path:
        return path
    real = disks.expand(path)
    for kind, raw, r in cdirs:
        if kind in kinds and r == real:
            return raw
    return path


def _own_jobs(all_jobs, cdirs):
    """The jobs whose tmp or dst dir lies inside this host's configured dirs,
    their dirs in the configured spelling."""
    tmp = [r for k, _, r in cdirs if k in ("tmp", "tmp2")]
    dst = [r for k, _, r in cdirs if k == "dst"]
    out = []
    for j in all_jobs:
        try:
            ok = ((j["tmp_dir"] and disks.inside(j["tmp_dir"], tmp)) or
                  (j["dst_dir"] and disks.inside(j["dst_dir"], dst)))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            continue
        j = dict(j)
        j["tmp_dir"] = _match_dir(j["tmp_dir"], cdirs, ("tmp",))
        j["tmp2_dir"] = _match_dir(j["tmp2_dir"], cdirs, ("tmp2", "tmp"))
        j["dst_dir"] = _match_dir(j["dst_dir"], cdirs, ("dst",))
        out.append(j)
    return out


class Held:
    """Which files under some dirs a process holds open: the process table
    is walked once, and only if someone asks."""

    def __init__(self, dirs):
        self.dirs = dirs
        self._paths = None

    def __contains__(self, path):
        if self._paths is None:
            self._paths = held_open(self.dirs)
        return path in self._paths


class Agent:
    """Caches that outlive one request: process classification, log tails,
    analysed job logs."""

    def __init__(self):
        self.scanner = ProcScanner()
        self.logs = failures.LogBook()
        self.children = []    # Popen objects we started, reaped here

    def reap(self):
        self.children = [p for p in self.children if p.poll() is None]

    # -- jobs -------------------------------------------------------------
    def all_jobs(self):
        """(every plot job on the machine, rsync processes)."""
        self.reap()
        return self.scanner.scan()

    def host_jobs(self, config):
        return _own_jobs(self.all_jobs()[0], disks.config_dirs(config))

    # -- the whole picture -----------------------------------------------------
    def snapshot(self, config):
        now = time.time()
        cdirs = disks.config_dirs(config)
        if (config or {}).get("create_dirs"):
            # opt-in only: on a real host a missing dir is usually an unmounted
            # drive, and creating it would fill the root disk instead
            for _kind, _raw, real in cdirs:
                os.makedirs(real, exist_ok=True)
        all_jobs, rsyncs = self.all_jobs()
        jobs = _own_jobs(all_jobs, cdirs)
        stall = float((config or {}).get("stall_after_s") or 1800.0)

        temp_dirs = [r for k, _, r in cdirs if k in ("tmp", "tmp2")]
        for j in jobs:
            temp_dirs += [disks.expand(d) for d in (j["tmp_dir"], j["tmp2_dir"]) if d]
        by_id = disks.temp_bytes_by_id(temp_dirs)
        for j in jobs:
            if j["plot_id"]:
                j["tmp_bytes"] = by_id.get(j["plot_id"], (0, []))[0]
            idle = j["log_idle_s"]
            j["stalled"] = bool(idle is not None and idle > stall)

        dirs, plots = [], []
        for kind, raw, real in cdirs:
            d = disks.dir_info(real, kind)
            d["path"] = raw
            if kind == "farm" and d["error"] is None:
                d["error"] = disks.unmounted_farm(real, config)
            if kind == "dst":
                plots += disks.plots_in(real)
            if kind == "farm" and d["error"] is None:
                farm = disks.plots_in(real)
                d["plot_count"] = len(farm)
                d["plot_bytes"] = sum(p["size_bytes"] for p in farm)
            dirs.append(d)

        logs = _log_entries(config)     # one listing of log_dir per snapshot
        dead, failed = self.failed_jobs(config, logs, all_jobs, temp_dirs, by_id, now)
        return {
            "host_time": now,
            "last_start": max([j["started_at"] for j in jobs] +
                              [lognames.latest_start(e.name for e in logs)]),
            "jobs": jobs,
            "dirs": dirs,
            "plots": plots,
            "transfers": read_transfers(config),
            "partials": self.partials([r for k, _, r in cdirs if k == "farm"], rsyncs, now),
            "dead": dead,
            "failures": failed,
        }

    def partials(self, farm, rsyncs, now):
        out = []
        if not farm:
            return out
        found = [p for d in dict.fromkeys(farm) for p in disks.partials_in(d)]
        if not found:
            return out
        named, idle_dirs = rsync_targets(rsyncs)
        for path, final, size, mtime in found:
            receiving = maybe_receiving(path, named, idle_dirs, now - mtime < FRESH_S)
            out.append({"path": path, "final_name": final, "size_bytes": size,
                        "receiving": receiving})
        return out

    def failed_jobs(self, config, entries, all_jobs, temp_dirs, by_id, now):
        """(dead jobs, failures in a row) from the host's job logs."""
        log_dir = (config or {}).get("log_dir")
        none = {"count": 0, "last_error": None, "last_at": 0.0, "last_log": None,
                "reset_at": 0.0}
        if not log_dir:
            return [], none
        log_dir = disks.expand(log_dir)
        recs = failures.records(log_dir, entries, self.logs)
        # every job on the machine counts: a hand-started job may write here
        live = failures.Live(logs={j["log_file"] for j in all_jobs if j["log_file"]},
                             ids={j["plot_id"] for j in all_jobs if j["plot_id"]},
                             held=Held([log_dir] + temp_dirs), by_id=by_id)
        keep = (config or {}).get("dead_keep_s")
        keep = DEAD_KEEP_S if keep is None else float(keep)
        dead = failures.dead_jobs(recs, live, keep, now)
        run = failures.failure_run(recs, live, failures.read_reset(state_dir(), log_dir))
        return dead, run


def _log_entries(config):
    """The *.log entries of the host's log_dir ([] if none or unreadable)."""
    log_dir = (config or {}).get("log_dir")
    if not log_dir:
        return []
    try:
        with os.scandir(disks.expand(log_dir)) as it:
            return [e for e in it if e.name.endswith(".log")]
    except OSError:
        return []


def _runner_alive(pid, started_at):
    if not pid:
        return False
    try:
        p = psutil.Process(pid)
        # a reused pid belongs to a process younger than the record
        return p.status() != psutil.STATUS_ZOMBIE and p.create_time() <= started_at + 5
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def progress_bytes(path):
    """Last byte count rsync --info=progress2 printed into `path`."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 4096))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return 0
    best = 0
    for chunk in tail.replace("\r", "\n").split("\n"):
        parts = chunk.split()
        if len(parts) >= 2 and parts[1].endswith("%"):
            try:
                best = int(parts[0].replace(",", ""))
            except ValueError:
                pass
    return best


def read_transfer_record(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_transfers(config):
    dst = disks.dirs_of(config, "dst")
    d = transfers_dir()
    out = []
    try:
        names = sorted(n for n in os.listdir(d) if n.endswith(".json"))
    except OSError:
        return out
    for n in names:
        rec = read_transfer_record(os.path.join(d, n))
        if not rec or not rec.get("plot") or not disks.inside(rec["plot"], dst):
            continue
        status = rec.get("status", "running")
        error = rec.get("error")
        if status == "running" and not _runner_alive(rec.get("pid"), rec.get("started_at", 0)):
            rec = read_transfer_record(os.path.join(d, n)) or rec   # it may just have ended
            status, error = rec.get("status", "running"), rec.get("error")
            if status == "running":
                status, error = "failed", "interrupted"
        size = int(rec.get("size_bytes") or 0)
        done = size if status == "copied" else progress_bytes(rec.get("progress_log") or "")
        # when it stopped: its last progress or its last state change
        ended = 0.0 if status == "running" else max(
            _mtime(os.path.join(d, n)), _mtime(rec.get("progress_log") or ""))
        out.append({"plot": rec["plot"], "to_host": rec.get("to_host"),
                    "to_dir": rec.get("to_dir"), "size_bytes": size,
                    "bytes_done": min(done, size) if size else done,
                    "pid": rec.get("pid"), "status": status,
                    "started_at": rec.get("started_at", 0.0), "error": error,
                    "ended_at": ended})
    return out


def _mtime(path):
    try:
        return os.stat(path).st_mtime if path else 0.0
    except OSError:
        return 0.0
