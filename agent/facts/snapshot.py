"""One snapshot of a host: jobs, dirs, plots, transfers, partials, dead jobs.

Several simulated hosts may share one machine, so everything is filtered by
the host's configured dirs: a job counts when its tmp or dst dir lies inside
them, a transfer when its source plot does.
"""
import json
import os
import re
import shutil
import subprocess
import time

import psutil

from . import checks
from ..vocab import compression
from . import disks
from . import mounts

from . import drive_health

from . import failures
from . import joblogs

from ..vocab import lognames, names

from . import plotfile

from . import claim_record, ledger
from ..vocab import replot

from . import probe
from .procs import ProcScanner, held_open, maybe_receiving, rsync_targets, runner_alive
from .. import statefile
from ..statefile import state_dir, transfers_dir
from .news import Watch
from ..vocab.wire import DirError
from ..vocab import wire

REPLACEABLE_SHOWN = 16   # the largest replaceable plots a farm dir lists (one plot's worth)
FRESH_S = 60.0   # a partial this fresh may belong to an idle rsync server

DEAD_KEEP_S = 86400.0   # dead_keep_h's default: a dead job without leftovers stays a day


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

    def __init__(self, dirs, writing=False):
        self.dirs = dirs
        self.writing = writing
        self._paths = None

    def __contains__(self, path):
        if self._paths is None:
            self._paths = held_open(self.dirs, self.writing)
        return path in self._paths


class Agent:
    """Caches that outlive one request: process classification, log tails,
    analysed job logs."""

    def __init__(self):
        self.scanner = ProcScanner()
        self.logs = failures.LogBook()
        self.children = []    # Popen objects we started, reaped here
        self.prober = probe.Prober()
        self._rsync_version = None
        self._headers = {}      # plot path -> ((size, mtime), header error)
        self._pools = {}        # farm plot path -> ((size, mtime), pool kind)
        self.watch = Watch()    # facts/news.py: what a pass acts on ...
        self.news_base = None   # ... as it was when the last snapshot began
        self.mail = lambda: False   # is another request waiting? (serve.py says)

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
        c = config or {}
        probed = self.probe_dirs(config)
        self.news_base = self.watch.items(config)   # after the probe: no hung dir is read
        cdirs = disks.config_dirs(config)
        # transfer records before the process table: a record that says
        # "copied" then means its rsync had ended before the scan, so its
        # partial is never seen as still receiving
        transfers = read_transfers(config)
        all_jobs, rsyncs = self.all_jobs()
        jobs = _own_jobs(all_jobs, cdirs)
        stall = wire.setting(c, "stall_after_s")

        temp_dirs = [r for k, _, r in cdirs if k in ("tmp", "tmp2")]
        for j in jobs:
            temp_dirs += [disks.expand(d) for d in (j["tmp_dir"], j["tmp2_dir"]) if d]
        by_id = disks.temp_bytes_by_id(temp_dirs)
        for j in jobs:
            if j["plot_id"]:
                j["tmp_bytes"] = by_id.get(j["plot_id"], (0, []))[0]
            idle = j["log_idle_s"]
            j["stalled"] = bool(idle is not None and idle > stall)

        farm = {probed[_key(raw)]["real"]: probed[_key(raw)]["st_dev"]
                for kind, raw, _ in cdirs if kind == "farm" and probed[_key(raw)]["st_dev"]}
        health = drive_health.drive_state(
            farm, wire.setting(c, "drive_fail_window_s"), wire.setting(c, "drive_cooldown_s"), now)
        dirs, plots, drive_failures = [], [], []
        writing = Held([r for k, _, r in cdirs if k == "dst"], writing=True)
        table = mounts.table()
        for kind, raw, real in cdirs:
            p = probed[_key(raw)]
            d = disks.dir_info(raw, kind, p, mounts.where(p["real"], table))
            if kind == "farm" and d["error"] is None:
                why = disks.unmounted_farm(p["st_dev"], config)
                if why:
                    d["error"], d["error_code"] = why, DirError.NOT_MOUNTED
            if kind == "farm" and d["error"] is None and health.get(p["real"], {}).get("until"):
                h = health[p["real"]]
                d["set_aside_until"] = h["until"]
                d["error_code"] = DirError.SET_ASIDE
                d["error"] = "set aside until %s: %s" % (
                    time.strftime("%H:%M", time.localtime(h["until"])), h["error"])
            if kind == "farm":
                drive_failures += [{"dir": raw, "key": k}
                                   for k in health.get(p["real"], {}).get("failures", [])]
            if kind == "dst" and d["error_code"] != DirError.NOT_RESPONDING:
                plots += [self.proven(x) for x in
                          self.finished(disks.plots_in(real, moved_only=True), writing)]
                plots += [_not_a_plot(path, what) for path, what in disks.not_regular(real)]
            if kind == "farm" and d["error_code"] not in (DirError.NOT_RESPONDING, DirError.MISSING,
                                                           DirError.NOT_DIR):
                farm_plots = disks.plots_in(real)
                d["plot_count"] = sum(x["plots"] for x in farm_plots)
                d["plot_bytes"] = sum(x["size_bytes"] for x in farm_plots)
                d["plot_kinds"] = disks.plot_kinds(farm_plots)
                d["replaceable"] = self.replaceable(farm_plots, c.get("replot"))
            dirs.append(d)

        bound = ledger.bindings() if plots else {}     # replotting: the drive each is bound to
        for x in plots:
            b = bound.get(os.path.basename(x["path"]))
            x["bound_to"] = [b["to_host"], b["to_dir"]] if b else None
        quarantine = checks.quarantined(
            [raw for kind, raw, _ in cdirs
             if kind == "dst" and probed[_key(raw)]["error_code"] != DirError.NOT_RESPONDING])
        logs = _log_entries(config)     # one listing of log_dir per snapshot
        joblogs.remember([j["log_file"] for j in all_jobs], now)    # held by a plot job
        dead, failed, finished = self.failed_jobs(config, logs, all_jobs, temp_dirs, by_id, now,
                                                  quarantine)
        pending = sorted(self.logs.pending | {j["log_file"] for j in jobs
                                              if j.pop("log_complete", True) is False})
        return {
            "host_time": now,
            "last_start": max([j["started_at"] for j in jobs] +
                              [lognames.latest_start(e.name for e in logs)]),
            "jobs": jobs,
            "dirs": dirs,
            "plots": plots,
            "transfers": transfers,
            "checks": [dict(checks.public(r), plot=r["plot"]) for r in checks.running(
                [r for k, _, r in cdirs if k in ("dst", "farm")])],
            "quarantine": quarantine,
            "partials": self.partials([r for k, _, r in cdirs if k == "farm"], rsyncs, now),
            "dead": dead,
            "finished": finished,
            "failures": failed,
            "conflicts": drive_health.conflicts(set(farm)),
            "drive_failures": drive_failures,
            "rsync_version": self.rsync_version(),
            "logs_pending": pending,
            "replot": self.replot_ledger(config, farm, now),
        }

    def replaceable(self, farm_plots, rules):
        """{"count", "bytes", "plots": the REPLACEABLE_SHOWN largest, oldest
        first}: the farm plots a replot rule matches (agent/vocab/replot.py)."""
        if not rules:
            return {"count": 0, "bytes": 0, "plots": []}
        header = replot.needs_header(rules)
        found = []
        for p in farm_plots:
            pool = self._pool(p) if header else None
            hit = replot.first_match(rules, p["path"], pool)
            if hit is None:
                continue
            facts = replot.name_facts(os.path.basename(p["path"]))
            found.append({"path": p["path"], "size_bytes": p["size_bytes"], "k": p["k"],
                          "level": p["compress"], "date": facts["date"],
                          "rule": "rule %d (%s)" % (hit[0] + 1, replot.describe(hit[1]))})
        found.sort(key=lambda x: (-x["size_bytes"], x["date"] or "9999", x["k"], x["level"],
                                  x["path"]))
        return {"count": len(found), "bytes": sum(x["size_bytes"] for x in found),
                "plots": found[:REPLACEABLE_SHOWN]}

    def _pool(self, plot):
        version = (plot["size_bytes"], plot["mtime"])
        seen = self._pools.get(plot["path"])
        if seen is None or seen[0] != version:
            try:
                with open(plot["path"], "rb") as f:
                    kind = replot.pool_of_header(f.read(plotfile.HEADER_BYTES))
            except OSError:
                kind = None
            if len(self._pools) > 100000:
                self._pools.clear()
            seen = self._pools[plot["path"]] = (version, kind)
        return seen[1]

    def replot_ledger(self, config, farm, now):
        if not farm:
            return {"sets": [], "deletes_last_hour": 0, "stopped": []}
        return ledger.snapshot(list(farm), claim_record.claimed_plots(config, now), now)

    def finished(self, plots, writing):
        """The finished plots among plot-named files in a dst dir: not one
        that a process holds open for writing (its plotter is still at it),
        each `checked`."""
        return [self.checked(p) for p in plots if p["path"] not in writing]

    def checked(self, plot):
        """A finished plot with `error` set when its header contradicts its
        name (a file impersonating a plot is never sent as that plot), and
        its compression (header, else name).  Read once per file version,
        not on every poll."""
        version = (plot["size_bytes"], plot["mtime"])
        seen = self._headers.get(plot["path"])
        if seen is None or seen[0] != version:
            level = compression.from_name(os.path.basename(plot["path"]))
            try:
                error, level = plotfile.inspect(plot["path"])
            except OSError as e:
                error = "unreadable: %s" % (e.strerror or e)
            if len(self._headers) > 10000:
                self._headers.clear()
            seen = self._headers[plot["path"]] = (version, error, level)
        plot["error"] = seen[1]
        plot["compress"], plot["compress_format"] = seen[2]
        return plot

    def proven(self, plot):
        """A finished plot with `check`: its proof check's record (status
        running | interrupted | passed | failed | not_checked | released,
        ratio, the prover's error, cost), or None before its check."""
        rec = checks.read(plot["path"], plot["size_bytes"], plot["mtime"])
        plot["check"] = None if rec is None else checks.public(rec)
        return plot

    def probe_dirs(self, config):
        """{expanded configured path: probe} of every configured dir; a dir
        that does not answer within dir_timeout_s is not responding, and kept
        away from until it does.  Missing dirs listed in create_dirs (those
        inside the inventory's own folder, a demo's) are made first; any other
        missing dir stays missing: on a real host it is usually an unmounted
        drive, and creating it would fill the root disk instead."""
        c = config or {}
        timeout = wire.setting(c, "dir_timeout_s")
        paths = disks.configured_paths(config)
        probed = self.prober.probe(paths, timeout)
        made = c.get("create_dirs") or ()
        made = {os.path.normpath(os.path.expanduser(p)) for p in
                (made if isinstance(made, (list, tuple)) else ())}
        if made:
            missing = [p for p, i in probed.items()
                       if i["error_code"] == DirError.MISSING and p in made]
            for p in missing:
                try:
                    os.makedirs(p, exist_ok=True)
                except OSError:
                    pass
            if missing:
                probed.update(self.prober.probe(missing, timeout))
        return probed

    def rsync_version(self):
        """This host's rsync, e.g. [3, 2, 7] (asked once per agent), or None."""
        if self._rsync_version is None:
            self._rsync_version = list(rsync_version() or ())
        return self._rsync_version or None

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

    def failed_jobs(self, config, entries, all_jobs, temp_dirs, by_id, now, quarantine=()):
        """(dead jobs, failures in a row, finished jobs) from the host's job
        logs; a plot in `quarantine` is a failure of the job that made it."""
        log_dir = (config or {}).get("log_dir")
        none = {"count": 0, "last_error": None, "last_at": 0.0, "last_log": None,
                "reset_at": 0.0, "quarantined": 0}
        if not log_dir:
            return [], none, []
        log_dir = disks.expand(log_dir)
        recs = failures.records(log_dir, entries, self.logs)
        # every job on the machine counts: a hand-started job may write here
        live = failures.Live(logs={j["log_file"] for j in all_jobs if j["log_file"]},
                             ids={j["plot_id"] for j in all_jobs if j["plot_id"]},
                             held=Held([log_dir] + temp_dirs), by_id=by_id)
        keep = (config or {}).get("dead_keep_s")
        keep = DEAD_KEEP_S if keep is None else float(keep)
        dead = failures.dead_jobs(recs, live, keep, now)
        reset_at = failures.read_reset(state_dir(), log_dir)
        bad = {q["plot_id"]: q["reason"] for q in quarantine if q["plot_id"]}
        run = failures.failure_run(recs, live, reset_at, quarantined=bad)
        # an endless job's log never ends: its bad plots are counted from the
        # quarantine, back to the newest plot that passed its check
        n, newest = checks.bad_in_row(quarantine, disks.dirs_of(config, "dst"), reset_at)
        if n > run["count"]:
            run.update(count=n, last_error="plot quarantined: %s" % newest["reason"],
                       last_at=newest["quarantined_at"], last_log=None, quarantined=n)
        gpus = {lognames.device_of(r.path) for r in recs} - {None}
        run["devices"] = {str(d): failures.failure_run(recs, live, reset_at, d, bad)
                          for d in sorted(gpus)}
        return dead, run, failures.finished_jobs(recs, live, keep, now)


def _not_a_plot(path, what):
    """A plot-named entry that is no regular file: listed with why, so its row
    says it, and never archived (the controller sends no plot with an error)."""
    p = names.parse(path)
    return {"path": path, "size_bytes": 0, "k": p.k if p else 0,
            "plot_id": p.plot_id if p else None, "mtime": 0.0,
            "format": p.format if p else None, "plots": 1,
            "compress": 0, "compress_format": None,
            "error": "not a regular file (%s): never sent" % what}


RSYNC_VERSION = "rsync-version.json"


def rsync_version():
    """(3, 2, 7) for the rsync on PATH, or None.  `rsync --version` is a
    process start on every new agent's first snapshot (half its time on a
    bare host): the answer is kept in the state dir for that very binary
    (path, size, mtime), so a cold `status` asks it once per rsync upgrade."""
    exe = shutil.which("rsync")
    if exe is None:
        return None
    try:
        st = os.stat(exe)
    except OSError:
        return None
    key = "%s:%d:%d" % (os.path.realpath(exe), st.st_size, st.st_mtime_ns)
    rec = statefile.load(RSYNC_VERSION)
    if rec.get("key") == key and isinstance(rec.get("version"), list):
        return tuple(rec["version"]) or None
    try:
        out = subprocess.run([exe, "--version"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, timeout=10).stdout
        v = parse_rsync_version(out.decode("utf-8", "replace"))
    except (OSError, subprocess.SubprocessError):
        return None             # not kept: asked again next time
    try:
        statefile.save(RSYNC_VERSION, {"key": key, "version": list(v or ())})
    except OSError:
        pass                    # a read-only home: asked again by the next agent
    return v


def parse_rsync_version(text):
    """(3, 2, 7) from `rsync --version` output, or None."""
    m = re.search(r"rsync\s+version\s+v?(\d+)\.(\d+)\.(\d+)", text or "")
    return tuple(int(x) for x in m.groups()) if m else None




def _key(raw):
    return os.path.normpath(os.path.expanduser(raw))


def _log_entries(config):
    """The *.log entries of the host's log_dir ([] if none, unreadable or
    not responding)."""
    log_dir = (config or {}).get("log_dir")
    if not log_dir or not disks.responsive(log_dir):
        return []
    try:
        with os.scandir(disks.expand(log_dir)) as it:
            return [e for e in it if e.name.endswith(".log")]
    except OSError:
        return []




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


def read_transfers(config):
    dst = disks.dirs_of(config, "dst")
    d = transfers_dir()
    out = []
    try:
        names = sorted(n for n in os.listdir(d) if n.endswith(".json"))
    except OSError:
        return out
    for n in names:
        rec = statefile.read(os.path.join(d, n))
        if not rec or not rec.get("plot") or not disks.inside(rec["plot"], dst):
            continue
        status = rec.get("status", "running")
        error = rec.get("error")
        if status == "queued" and not runner_alive(rec.get("pid"), rec.get("started_at", 0)):
            rec = statefile.read(os.path.join(d, n)) or rec   # it may just have begun
            status = rec.get("status", "running")
            if status == "queued":
                continue        # its runner is gone before it began: the plot just waits
        if status == "running" and not runner_alive(rec.get("pid"), rec.get("started_at", 0)):
            rec = statefile.read(os.path.join(d, n)) or rec   # it may just have ended
            status, error = rec.get("status", "running"), rec.get("error")
            if status == "running":
                status, error = "failed", "interrupted"
        size = int(rec.get("size_bytes") or 0)
        done = size if status == "copied" else 0 if status == "queued" else \
            progress_bytes(rec.get("progress_log") or "")
        # when it stopped: its last progress or its last state change
        ended = 0.0 if status in ("running", "queued") else max(
            _mtime(os.path.join(d, n)), _mtime(rec.get("progress_log") or ""))
        out.append({"plot": rec["plot"], "to_host": rec.get("to_host"),
                    "to_dir": rec.get("to_dir"), "size_bytes": size,
                    "bytes_done": min(done, size) if size else done,
                    "pid": rec.get("pid"), "status": status,
                    "started_at": rec.get("started_at", 0.0), "error": error,
                    "ended_at": ended, "fault": rec.get("fault") if status == "failed" else None,
                    "fatal": bool(rec.get("fatal")) and status == "failed",
                    "exit_code": rec.get("exit_code")})
    return out


def _mtime(path):
    try:
        return os.stat(path).st_mtime if path else 0.0
    except OSError:
        return 0.0
