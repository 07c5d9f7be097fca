"""Plot jobs: start one (at most once per request id, within the limits,
under the host lock), suspend, resume, kill (exactly its own temp files),
clean up after a failed one, reset a plotter's failure count."""
import os
import re
import signal
import sys
import time
from typing import Optional

import psutil

from ..facts import disks, failures, joblogs
from ..vocab import lognames, plotters
from ..vocab.logread import KILLED_MARK
from ..facts.procs import PSUTIL_ERRORS, held_open, open_paths
from ..statefile import state_dir
from . import carried_out, room
from .. import deadline
from .common import (CLEAN_QUIET_S, KILL_QUIET_S, PLOT_ID, ActionError, _agent_env, _log_dir,
                     _spawn, check_inside, host_lock)
from ..protocol import op
from ..vocab import wire
from ..vocab.wire import ErrorCode


def check_limits(jobs, limits, tmp_real, now, last_start=0.0):
    """One-line reason why another job may not start now, or None."""
    limits = limits or {}
    gmax = int(limits.get("global_max_jobs") or 0)
    if gmax and len(jobs) >= gmax:
        return "max jobs %d/%d" % (len(jobs), gmax)
    tmax = int(limits.get("tmpdir_max_jobs") or 0)
    on_tmp = [j for j in jobs if j["tmp_dir"] and disks.expand(j["tmp_dir"]) == tmp_real]
    if tmax and len(on_tmp) >= tmax:
        return "tmpdir max jobs %d/%d on %s" % (len(on_tmp), tmax, tmp_real)
    stagger = float(limits.get("global_stagger_s") or 0)
    latest = max([j["started_at"] for j in jobs] + [last_start])
    if stagger and latest and now - latest < stagger:
        return "stagger: last job started %.0fs ago < %.0fs" % (now - latest, stagger)
    return None


LAUNCHERS = dict(plotters.LAUNCHERS.values())


def _device(argv):
    """The GPU a job's argv pins it to (its plotter's own flag), else None."""
    try:
        info = plotters.classify(list(argv))
        return int(info["device"]) if isinstance(info, dict) and "device" in info else None
    except (TypeError, ValueError):
        return None
REQUEST_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")


@op(wire.StartJobReply)
def start_job(agent, config: wire.Config, argv: list, tmp_dir: str, dst_dir: str,
              plotter: Optional[str] = None, k: Optional[int] = None,
              limits: Optional[wire.Limits] = None, request_id: Optional[str] = None,
              nice: Optional[int] = None):
    """Start one plot job; with `request_id`, at most once: asked again with the
    same id (its answer was lost), it answers what it did the first time."""
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise ActionError("argv must be a non-empty list of strings")
    if request_id is not None and not (isinstance(request_id, str) and REQUEST_ID.match(request_id)):
        raise ActionError("bad request_id: %r" % (request_id,), code=ErrorCode.BAD_REQUEST)
    cdirs = disks.config_dirs(config)
    tmps = [r for kd, _, r in cdirs if kd == "tmp"]
    dsts = [r for kd, _, r in cdirs if kd == "dst"]
    tmp_real = check_inside(tmp_dir, tmps)
    if tmp_real not in tmps:
        raise ActionError("tmp_dir is not a configured tmp dir: %s" % tmp_dir)
    dst_real = check_inside(dst_dir, dsts)
    if dst_real not in dsts:
        raise ActionError("dst_dir is not a configured dst dir: %s" % dst_dir)
    log_dir = (config or {}).get("log_dir")
    if not log_dir:
        raise ActionError("no log_dir configured")
    log_dir = disks.expand(log_dir)
    os.makedirs(log_dir, exist_ok=True)
    env = None
    if argv[0] in LAUNCHERS:      # the agent's own launchers (chiapos, pos2)
        argv = [sys.executable, "-m", "agent", LAUNCHERS[argv[0]]] + argv[1:]
        env = _agent_env()
    with host_lock():
        done = carried_out.lookup(request_id)
        if done is not None:        # an agent before this one started it
            return dict(done, replayed=True)
        jobs = agent.host_jobs(config)
        why = check_limits(jobs, limits, tmp_real, time.time(), lognames.newest_start(log_dir))
        if why:
            raise ActionError(why)
        deadline.check("start_job")     # the last moment: the controller still listens
        log_path = os.path.join(log_dir, lognames.new_log_name(plotter or "plot",
                                                               device=_device(argv)))
        joblogs.remember([log_path], time.time())     # a job's log, whatever it prints
        try:
            proc = _spawn(argv, log_path, env)
        except OSError as e:
            raise ActionError("cannot start %s: %s" % (argv[0], e.strerror or e))
        agent.children.append(proc)
        if nice is not None:
            _renice(proc.pid, nice)
        result = {"pid": proc.pid, "log_file": log_path}
        carried_out.remember(request_id, "start_job", result)
    return result


def _renice(pid, nice):
    """Run the job at `nice`, as plotman renices its jobs (to 15).  Raising
    priority (a lower value) needs root; the job then runs as it is."""
    try:
        psutil.Process(pid).nice(int(nice))
    except (PSUTIL_ERRORS + (ValueError, TypeError)):
        pass


EXEC_WAIT_S = 5.0       # how long a job this agent just started may take to exec


def _host_job(agent, config, pid, started_at=None):
    """The host's job with this pid; with `started_at` (what the snapshot
    reported) it must also be the same process, not a later one given a
    reused pid."""
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        raise ActionError("bad pid: %r" % (pid,))
    # a job this agent has just started may not have exec'd its plotter yet
    # (it is still `python -m agent` between fork and exec): wait for it
    mine = any(c.pid == pid and c.poll() is None for c in agent.children)
    until = time.monotonic() + (EXEC_WAIT_S if mine else 0.0)
    while True:
        for j in agent.host_jobs(config):
            if j["pid"] == pid:
                if started_at is not None and abs(float(started_at) - j["started_at"]) > 1.0:
                    raise ActionError("pid %d is another process now (started %s, the job "
                                      "seen started %s): nothing done" % (
                                          pid, _clock(j["started_at"]), _clock(started_at)))
                return j
        if time.monotonic() >= until:
            raise ActionError("pid %d is not a plot job of this host" % pid)
        time.sleep(0.05)


def _clock(t):
    return time.strftime("%H:%M:%S", time.localtime(float(t)))


def _family(pid):
    p = psutil.Process(pid)
    try:
        kids = p.children(recursive=True)
    except PSUTIL_ERRORS:
        kids = []
    return [p] + kids


def _signal(agent, config, pid, sig, state, started_at=None):
    j = _host_job(agent, config, pid, started_at)
    try:
        for p in _family(j["pid"]):
            try:
                p.send_signal(sig)
            except PSUTIL_ERRORS:
                pass
    except PSUTIL_ERRORS:
        raise ActionError("pid %d is gone" % j["pid"])
    # Signals land asynchronously (a process in disk I/O stops a moment
    # later); answer once the process table agrees.
    want_stopped = sig == signal.SIGSTOP
    end = time.time() + 2.0
    while time.time() < end:
        try:
            stopped = psutil.Process(j["pid"]).status() == psutil.STATUS_STOPPED
        except PSUTIL_ERRORS:
            break
        if stopped == want_stopped:
            break
        time.sleep(0.01)
    return {"pid": j["pid"], "state": state}


@op(wire.JobStateReply)
def suspend(agent, config: wire.Config, pid: int, started_at: Optional[float] = None,
            reason: Optional[str] = None):
    """SIGSTOP a job of this host's dirs.  `started_at` as the snapshot
    reported it: a pid now held by a later process is refused.  `reason`
    (the controller's, e.g. a job making bad plots) is kept and shown until
    the operator resumes it."""
    out = _signal(agent, config, pid, signal.SIGSTOP, "suspended", started_at)
    room.forget(out["pid"])     # the operator's now: not resumed when room frees up
    if reason:
        room.hold(out["pid"], _host_job(agent, config, pid, started_at)["started_at"], reason)
    return out


@op(wire.JobStateReply)
def resume(agent, config: wire.Config, pid: int, started_at: Optional[float] = None):
    """SIGCONT a job, as suspend checks it."""
    out = _signal(agent, config, pid, signal.SIGCONT, "running", started_at)
    room.forget(out["pid"])
    return out


def _wait_gone(agent, procs, timeout):
    """Wait until each process ended; the ones still alive at the timeout.

    A zombie has ended: its parent (maybe not us, e.g. the shell that started
    a job by hand) reaps it when it likes.  psutil.wait_procs would wait
    the whole timeout for one.
    """
    end = time.time() + timeout
    while True:
        agent.reap()
        alive = []
        for p in procs:
            try:
                if p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except PSUTIL_ERRORS:
                pass
        if not alive or time.time() > end:
            return alive
        time.sleep(0.02)


def _ids_held(procs, dirs):
    """Plot ids named by the files these processes hold open in `dirs`: the
    id of a job whose log has not named it yet (or cannot be found)."""
    prefixes = tuple(d.rstrip(os.sep) + os.sep for d in dirs)
    ids = set()
    for p in procs:
        for path in open_paths(p.pid):
            if path.startswith(prefixes):
                m = disks.HEX64.search(os.path.basename(path))
                if m:
                    ids.add(m.group(0))
    return ids


def _mark_killed(config, log_file):
    """Note in the job's log that it was killed on request: a kill is no
    failure, and the log says why it ended."""
    if not log_file or not (config or {}).get("log_dir"):
        return
    try:
        path = check_inside(log_file, [_log_dir(config)])
        with open(path, "a") as f:
            f.write("\n%s at %s\n" % (KILLED_MARK, time.strftime("%Y-%m-%d %H:%M:%S")))
    except (ActionError, OSError):
        pass


def _guarded(files, quiet_s, now=None):
    """Refuse (ActionError) unless no process holds any of `files` open and
    none changed in the last quiet_s seconds."""
    now = time.time() if now is None else now
    if not files:
        return
    held = held_open({os.path.dirname(p) for p in files})
    busy = sorted(p for p in files if p in held)
    if busy:
        pids = sorted(set().union(*(held[p] for p in busy)))
        raise ActionError("%s is open in pid %s: nothing removed" % (
            busy[0], ", ".join(map(str, pids))))
    for p in sorted(files):
        try:
            age = now - os.stat(p).st_mtime
        except OSError:
            continue
        if age < quiet_s:
            raise ActionError("%s changed %.0fs ago (< %.0fs): nothing removed" % (
                p, max(age, 0), quiet_s))


def _remove(files):
    removed, freed = [], 0
    for path, size in sorted(files.items()):
        try:
            os.remove(path)
            removed.append(path)
            freed += size
        except FileNotFoundError:
            pass
        except OSError as e:
            raise ActionError("cannot remove %s: %s" % (path, e.strerror))
    return {"removed": removed, "freed_bytes": freed}


def _job_files(config, plot_id):
    """{path: size} of a plot id's temp files in the configured tmp and tmp2
    dirs, and its unfinished copies (*.tmp) in the dst dirs."""
    files = disks.files_with_id(disks.dirs_of(config, "tmp", "tmp2"), plot_id)
    files.update(disks.files_with_id(disks.dirs_of(config, "dst"), plot_id,
                                     lambda n: n.endswith(".tmp")))
    return files


def _refuse_if_running(agent, config, plot_id):
    for j in agent.host_jobs(config):
        if j["plot_id"] == plot_id:
            raise ActionError("plot %s belongs to running job pid %d" % (plot_id, j["pid"]))


@op(wire.RemovedFilesReply)
def kill(agent, config: wire.Config, plot_id: Optional[str] = None, pid: Optional[int] = None,
         started_at: Optional[float] = None):
    """End a job (pid given) and remove its temp files; or (no pid) remove a
    dead job's, only when no process holds them and they rest kill_quiet_s.

    A running job's plot id may not be known yet (its log has not named it):
    the files it holds open name it."""
    if plot_id is not None and (not isinstance(plot_id, str) or not PLOT_ID.match(plot_id)):
        raise ActionError("bad plot id: %r" % (plot_id,))
    if pid is None:
        if plot_id is None:
            raise ActionError("bad plot id: None (a dead job is named by its plot id)")
        _refuse_if_running(agent, config, plot_id)
        files = _job_files(config, plot_id)
        _guarded(files, float((config or {}).get("kill_quiet_s", KILL_QUIET_S)))
        return _remove(files)
    j = _host_job(agent, config, pid, started_at)
    if plot_id and j["plot_id"] and j["plot_id"] != plot_id:
        raise ActionError("pid %d plots %s, not %s" % (j["pid"], j["plot_id"], plot_id))
    try:
        procs = _family(j["pid"])
    except PSUTIL_ERRORS:
        procs = []
    ids = {i for i in (plot_id, j["plot_id"]) if i}
    if not ids:
        ids = _ids_held(procs, disks.dirs_of(config, "tmp", "tmp2"))
    for p in procs:
        try:
            # TERM first, then CONT: a stopped job wakes with TERM already
            # pending and dies without running (or writing) another step
            p.terminate()
            p.send_signal(signal.SIGCONT)
        except PSUTIL_ERRORS:
            pass
    alive = _wait_gone(agent, procs, 10)
    for p in alive:
        try:
            p.kill()
        except PSUTIL_ERRORS:
            pass
    _wait_gone(agent, alive, 5)
    log = j["log_file"]
    if not ids and log:     # it may have named its plot in its last words
        try:
            st = os.stat(log)
            named = agent.logs.plot_id(log, (st.st_size, st.st_mtime))    # its head only
            if named:
                ids.add(named)
        except OSError:
            pass
    _mark_killed(config, log)
    files = {}
    for i in ids:
        files.update(_job_files(config, i))
    _guarded(files, 0.0)        # the job is gone: nobody else may hold them
    return _remove(files)


@op(wire.RemovedFilesReply)
def clean_dead(agent, config: wire.Config, plot_id: str, log_file: str):
    """Remove a failed job's temp files: only files named for its plot id,
    only in the tmp and tmp2 dirs its log names (and this host configures),
    only when no process holds any of them and none changed in the last
    clean_quiet_s seconds, and only while its log still says it failed."""
    if not isinstance(plot_id, str) or not PLOT_ID.match(plot_id):
        raise ActionError("bad plot id: %r" % (plot_id,))
    log = check_inside(log_file, [_log_dir(config)])
    _refuse_if_running(agent, config, plot_id)
    if log in held_open([os.path.dirname(log)]):
        raise ActionError("%s is open: its job is alive" % log)
    try:
        st = os.stat(log)
    except OSError as e:
        raise ActionError("cannot read %s: %s" % (log, e.strerror))
    info = agent.logs.info(log, (st.st_size, st.st_mtime))     # read up to the deadline
    if log in agent.logs.pending:
        raise ActionError("%s is not read to its end yet: nothing removed" % log)
    if not info or info["plot_id"] != plot_id or info["finished"]:
        raise ActionError("%s is not the log of failed plot %s" % (log, plot_id))
    configured = disks.dirs_of(config, "tmp", "tmp2")
    own = []
    for d in (info["tmp_dir"], info["tmp2_dir"]):
        if d and disks.expand(d) in configured:
            own.append(disks.expand(d))
    if not own:
        raise ActionError("the log of %s names no configured tmp dir" % plot_id[:12])
    files = disks.files_with_id(own, plot_id)
    _guarded(files, float((config or {}).get("clean_quiet_s", CLEAN_QUIET_S)))
    return _remove(files)


@op(wire.ResetReply)
def reset_failures(agent, config: wire.Config):
    """The operator's reset: failed jobs so far no longer hold this plotter back."""
    return {"reset_at": failures.write_reset(state_dir(), _log_dir(config), time.time())}
