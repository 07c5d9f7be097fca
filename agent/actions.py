"""What the controller may ask a host to do.

Every op checks its paths against the host's configured dirs first and
answers with a one-line ActionError when it refuses.  Waiting for the host
lock ends at the request's deadline (deadline.py); what is done under it
cannot be cut in half by the watchdog (watchdog.critical).
"""
import errno
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager

import psutil

from . import carried_out, deadline, disks, drive_health, failures, lognames, plotfile
from .logparse import KILLED_MARK, analyze_log
from .snapshot import FRESH_S, state_dir, transfers_dir, read_transfers
from .procs import PSUTIL_ERRORS, held_open, maybe_receiving, open_paths, rsync_targets
from .transfer import write_state
from .watchdog import critical

AGENT_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLOT_ID = re.compile(r"^[0-9a-f]{64}$")
KILL_QUIET_S = 60.0     # kill_after_m's default: a dead job's files must rest this long
CLEAN_QUIET_S = 300.0   # clean_after_m's default, for automatic clean-up


class ActionError(Exception):
    """A refusal: the message is the one line the controller shows; `code`
    tells callers what kind of refusal it is without reading the message."""

    def __init__(self, message, code="refused"):
        super().__init__(message)
        self.code = code


def check_inside(path, dirs):
    if not isinstance(path, str) or not path:
        raise ActionError("bad path: %r" % (path,))
    if not disks.inside(path, dirs):
        raise ActionError("refusing path outside configured dirs: %s" % path)
    return disks.expand(path)


def _all_dirs(config):
    return [r for _, _, r in disks.config_dirs(config)]


@contextmanager
def host_lock():
    """Exclusive per-machine lock: two controllers never start past the limits.

    Waited for until the request's deadline at most (DeadlineExpired, nothing
    done): a lock held by a stuck process never holds a request past the
    moment its controller stops listening.
    """
    os.makedirs(state_dir(), exist_ok=True)
    fd = os.open(os.path.join(state_dir(), "host.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _acquire(fd)
        with critical():
            yield
    finally:
        os.close(fd)


def _acquire(fd):
    end = time.monotonic() + deadline.wait_limit()
    pause = 0.002
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
        left = end - time.monotonic()
        if left <= 0:
            raise deadline.DeadlineExpired(
                "host lock held by another process past the request's deadline, nothing done")
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.05)


def _spawn(argv, log_path, env=None):
    """Start a detached process (own session, survives SSH loss) logging to
    log_path.  When it cannot start, the log says why: a failed job like any
    other, counted for back-off."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
    try:
        with open(os.devnull, "rb") as null:
            return subprocess.Popen(argv, stdin=null, stdout=fd, stderr=fd,
                                    start_new_session=True, close_fds=True, env=env)
    except OSError as e:
        os.write(fd, ("plotfleet: cannot start %s: %s\n" % (argv[0], e.strerror or e)).encode())
        raise
    finally:
        os.close(fd)


def _agent_env():
    env = dict(os.environ)
    pp = env.get("PYTHONPATH")
    env["PYTHONPATH"] = AGENT_PARENT + (os.pathsep + pp if pp else "")
    return env


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


REQUEST_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")


def start_job(agent, config, argv, plotter=None, k=None, tmp_dir=None, dst_dir=None,
              limits=None, request_id=None, **_):
    """Start one plot job; with `request_id`, at most once: asked again with the
    same id (its answer was lost), it answers what it did the first time."""
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise ActionError("argv must be a non-empty list of strings")
    if request_id is not None and not (isinstance(request_id, str) and REQUEST_ID.match(request_id)):
        raise ActionError("bad request_id: %r" % (request_id,), code="bad_request")
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
    if argv[0] == "plotfleet-chiapos":
        argv = [sys.executable, "-m", "agent", "plot-chiapos"] + argv[1:]
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
        log_path = os.path.join(log_dir, lognames.new_log_name(plotter or "plot"))
        try:
            proc = _spawn(argv, log_path, env)
        except OSError as e:
            raise ActionError("cannot start %s: %s" % (argv[0], e.strerror or e))
        agent.children.append(proc)
        result = {"pid": proc.pid, "log_file": log_path}
        carried_out.remember(request_id, "start_job", result)
    return result


def _host_job(agent, config, pid, started_at=None):
    """The host's job with this pid; with `started_at` (what the snapshot
    reported) it must also be the same process, not a later one given a
    reused pid."""
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        raise ActionError("bad pid: %r" % (pid,))
    for j in agent.host_jobs(config):
        if j["pid"] == pid:
            if started_at is not None and abs(float(started_at) - j["started_at"]) > 1.0:
                raise ActionError("pid %d is another process now (started %s, the job "
                                  "seen started %s): nothing done" % (
                                      pid, _clock(j["started_at"]), _clock(started_at)))
            return j
    raise ActionError("pid %d is not a plot job of this host" % pid)


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


def suspend(agent, config, pid, started_at=None, **_):
    return _signal(agent, config, pid, signal.SIGSTOP, "suspended", started_at)


def resume(agent, config, pid, started_at=None, **_):
    return _signal(agent, config, pid, signal.SIGCONT, "running", started_at)


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


def kill(agent, config, plot_id=None, pid=None, started_at=None, **_):
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
            with open(log, "rb") as f:
                info = analyze_log(f.read(failures.MAX_READ))
            if info and info["plot_id"]:
                ids.add(info["plot_id"])
        except OSError:
            pass
    _mark_killed(config, log)
    files = {}
    for i in ids:
        files.update(_job_files(config, i))
    _guarded(files, 0.0)        # the job is gone: nobody else may hold them
    return _remove(files)


def clean_dead(agent, config, plot_id, log_file, **_):
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
        with open(log, "rb") as f:
            info = analyze_log(f.read(failures.MAX_READ), lognames.plotter_of(log))
    except OSError as e:
        raise ActionError("cannot read %s: %s" % (log, e.strerror))
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


def reset_failures(agent, config, **_):
    """The operator's reset: failed jobs so far no longer hold this plotter back."""
    return {"reset_at": failures.write_reset(state_dir(), _log_dir(config), time.time())}


# -- transfers -----------------------------------------------------------------

def _plot_in_dst(config, plot):
    path = check_inside(plot, disks.dirs_of(config, "dst"))
    if not path.endswith(".plot"):
        raise ActionError("not a plot: %s" % plot)
    if not os.path.isfile(path):
        raise ActionError("no such plot: %s" % plot)
    return path


def transfer_state_path(plot_path):
    return os.path.join(transfers_dir(), os.path.basename(plot_path) + ".json")


def start_transfer(agent, config, plot, to_host, to_dir, mode="ssh", ssh=None,
                   bwlimit_kbps=0, dest_dir=None, fsync=False, farm_dirs=None, **_):
    """Start the detached rsync of one plot.  `dest_dir` is to_dir as the
    harvester resolved it; a local copy only ever goes into one of
    `farm_dirs`, the harvester's own (resolved) farm dirs."""
    src = _plot_in_dst(config, plot)
    if mode not in ("ssh", "local"):
        raise ActionError("bad transfer mode: %r" % (mode,))
    dest = dest_dir or to_dir
    if not isinstance(dest, str) or not dest.startswith(("/", "~")):
        raise ActionError("to_dir must be an absolute path: %r" % (dest,))
    ssh = ssh or {}
    if mode == "ssh":
        for key in ("host", "user", "key"):
            if not ssh.get(key):
                raise ActionError("ssh transfer needs ssh.%s" % key)
    else:
        dest = disks.expand(dest)
        allowed = [disks.expand(d) for d in farm_dirs or () if isinstance(d, str)]
        if dest not in allowed:
            raise ActionError("a local transfer goes only into a farm dir of the harvester: %s"
                              % dest)
    os.makedirs(transfers_dir(), exist_ok=True)
    spec = {"plot": src, "to_host": to_host, "to_dir": to_dir, "dest_dir": dest,
            "mode": mode, "ssh": ssh, "fsync": bool(fsync),
            "bwlimit_kbps": int(bwlimit_kbps or 0), "size_bytes": os.path.getsize(src),
            "state_file": transfer_state_path(src),
            "progress_log": transfer_state_path(src)[:-5] + ".progress"}
    runner_log = spec["progress_log"][:-9] + ".runner.log"
    # under the host lock: two controllers asking at once start one rsync, not
    # two writing the same partial
    with host_lock():
        for t in read_transfers(config):
            if t["plot"] == src and t["status"] == "running":
                raise ActionError("transfer of %s already running (pid %s)" % (src, t["pid"]))
        for stale in (runner_log, spec["state_file"]):     # an earlier, failed attempt
            try:
                os.remove(stale)
            except OSError:
                pass
        started = time.time()
        proc = _spawn([sys.executable, "-m", "agent", "transfer", json.dumps(spec)],
                      runner_log, _agent_env())
        agent.children.append(proc)
        # Visible at once, unless the runner already wrote its own (newer) record.
        write_state(spec, exclusive=True, status="running", pid=proc.pid, started_at=started)
    return {"pid": proc.pid}


def _receiving(agent, path):
    _, rsyncs = agent.all_jobs()
    named, idle_dirs = rsync_targets(rsyncs)
    try:
        fresh = time.time() - os.path.getmtime(path) < FRESH_S
    except OSError:
        fresh = False
    return maybe_receiving(path, named, idle_dirs, fresh)


def _partial(agent, config, partial):
    path = check_inside(partial, disks.dirs_of(config, "farm"))
    if not path.endswith(".plot" + disks.PARTIAL_SUFFIX):
        raise ActionError("not a transfer temp file: %s" % partial)
    if _receiving(agent, path):
        raise ActionError("still being received: %s" % path)
    return path


DIGEST_LIMITS = {"edge": 64 << 20, "block": 16 << 20, "offsets": 4096}


def _spec(spec):
    """A digest spec from the controller, checked (digests read what it says)."""
    if not isinstance(spec, dict):
        raise ActionError("digest spec must be an object", code="bad_request")
    try:
        edge, block = int(spec["edge"]), int(spec["block"])
        offsets = [int(o) for o in spec.get("offsets") or ()]
        full_below = int(spec.get("full_below") or 0)
    except (KeyError, TypeError, ValueError):
        raise ActionError("bad digest spec: %r" % (spec,), code="bad_request")
    if not (0 < edge <= DIGEST_LIMITS["edge"] and 0 < block <= DIGEST_LIMITS["block"]
            and len(offsets) <= DIGEST_LIMITS["offsets"] and full_below >= 0):
        raise ActionError("digest spec out of bounds: %r" % (spec,), code="bad_request")
    return {"edge": edge, "block": block, "offsets": offsets, "full_below": full_below}


def _digest(path, spec):
    try:
        return plotfile.digest(path, spec)
    except OSError as e:
        raise ActionError("cannot read %s: %s" % (path, e.strerror or e), code="unreadable")


def _expect(expect):
    if not isinstance(expect, dict) or not isinstance(expect.get("sha256"), str):
        raise ActionError("expect must carry the source's digest", code="bad_request")
    return dict(expect, spec=_spec(expect.get("spec")), size=int(expect["size"]))


def digest(agent, config, path, spec, **_):
    """The digest of a plot in a dst dir (plotter) or of a plot or transfer
    temp file in a farm dir (harvester), under the controller's spec."""
    real = check_inside(path, disks.dirs_of(config, "dst", "farm"))
    if not (real.endswith(".plot") or real.endswith(".plot" + disks.PARTIAL_SUFFIX)):
        raise ActionError("not a plot: %s" % path)
    d = _digest(real, _spec(spec))
    d["header_error"] = plotfile.header_problem(real, d["header"])
    return d


def _drive_dirs(config, path):
    """The real farm dirs on the same device as `path`'s dir."""
    try:
        dev = os.stat(os.path.dirname(path)).st_dev
    except OSError:
        return [os.path.dirname(path)]
    out = []
    for d in disks.dirs_of(config, "farm"):
        if not disks.responsive(d):
            continue
        try:
            if os.stat(d).st_dev == dev:
                out.append(d)
        except OSError:
            pass
    return out


def _confirm_final(config, final, expect):
    """A file already under the final name: the plot, or a conflict."""
    have = _digest(final, expect["spec"])
    ok, why = plotfile.same(have, expect)
    if not ok:
        detail = "%s holds other bytes than the plot of that name: %s" % (final, why)
        with host_lock():
            drive_health.record_conflict(final, why)
        raise ActionError(detail, code="conflict")
    return have


def promote(agent, config, partial, expect, **_):
    """Give a complete copy its final name: only when its bytes match the
    source's digest (`expect`: {"size", "sha256", "spec"}), its header its
    name, and only once its data and then the rename are on disk.

    A copy that does not match is removed (it is only ever a temp file; the
    plot is sent again).  A file that already holds the final name is never
    replaced: with the same bytes it confirms the copy (a promote repeated
    after a controller died), with other bytes it is a conflict."""
    expect = _expect(expect)
    path = check_inside(partial, disks.dirs_of(config, "farm"))
    if not path.endswith(".plot" + disks.PARTIAL_SUFFIX):
        raise ActionError("not a transfer temp file: %s" % partial)
    final = path[:-len(disks.PARTIAL_SUFFIX)]
    if os.path.lexists(final):
        have = _confirm_final(config, final, expect)
        _durable(final)
        if os.path.exists(path) and not _receiving(agent, path):
            os.remove(path)             # a second copy of what is already there
        with host_lock():
            drive_health.clear(_drive_dirs(config, final))
        return dict(have, path=final, size_bytes=have["size"], already=True)
    if not os.path.exists(path):
        raise ActionError("no such partial: %s" % path, code="vanished")
    path = _partial(agent, config, partial)
    have = _digest(path, expect["spec"])
    ok, why = plotfile.same(have, expect)
    problem = plotfile.header_problem(final, have["header"]) if ok else None
    if not ok or problem:
        os.remove(path)
        raise ActionError("copy %s differs from its source: %s: removed, to be sent again"
                          % (path, why or problem), code="mismatch")
    plotfile.fsync_file(path)
    with host_lock():
        if os.path.lexists(final):      # appeared meanwhile: never overwritten
            raise ActionError("%s appeared while promoting: left as it is" % final,
                              code="conflict")
        os.rename(path, final)
        plotfile.fsync_dir(os.path.dirname(final))
        drive_health.clear(_drive_dirs(config, final))
    return dict(have, path=final, size_bytes=have["size"], already=False)


def _durable(path):
    plotfile.fsync_file(path)
    plotfile.fsync_dir(os.path.dirname(path))


def remove_plot(agent, config, plot, proof, **_):
    """Delete a source plot once a harvester showed a copy under its final
    name with the same bytes: `proof` is that copy's digest ({"size",
    "sha256", "spec"}), and this host computes its own to compare."""
    path = _plot_in_dst(config, plot)
    proof = _expect(proof)
    mine = _digest(path, proof["spec"])
    ok, why = plotfile.same(mine, proof)
    if not ok:
        raise ActionError("the copy does not hold this plot's bytes (%s): %s kept"
                          % (why, path), code="mismatch")
    os.remove(path)
    for extra in (transfer_state_path(path), transfer_state_path(path)[:-5] + ".progress",
                  transfer_state_path(path)[:-5] + ".runner.log"):
        try:
            os.remove(extra)
        except OSError:
            pass
    return {"removed": path, "size_bytes": mine["size"]}


def clean_partial(agent, config, partial, **_):
    path = _partial(agent, config, partial)
    try:
        os.remove(path)
    except FileNotFoundError:
        raise ActionError("no such partial: %s" % path, code="vanished")
    return {"removed": path}


# -- logs ----------------------------------------------------------------------

def _log_dir(config):
    d = (config or {}).get("log_dir")
    if not d:
        raise ActionError("no log_dir configured")
    return disks.expand(d)


def read_log(agent, config, path, offset=0, max_bytes=65536, **_):
    p = check_inside(path, [_log_dir(config)])
    offset, max_bytes = max(0, int(offset or 0)), min(max(1, int(max_bytes or 65536)), 4 << 20)
    try:
        with open(p, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(min(offset, size))
            data = f.read(max_bytes)
    except OSError as e:
        raise ActionError("cannot read %s: %s" % (p, e.strerror))
    return {"data": data.decode("utf-8", "replace"), "offset": min(offset, size) + len(data),
            "size": size}


def list_logs(agent, config, **_):
    """Every *.log of log_dir; `live` when a job still writes it (a job's
    log, or a file some process holds open)."""
    d = _log_dir(config)
    out = []
    live = {j["log_file"] for j in agent.all_jobs()[0] if j["log_file"]}
    held = held_open([d])
    try:
        for e in sorted(os.scandir(d), key=lambda e: e.name):
            if e.name.endswith(".log") and e.is_file():
                st = e.stat()
                path = os.path.join(d, e.name)
                out.append({"path": path, "size": st.st_size, "mtime": st.st_mtime,
                            "live": path in live or path in held})
    except OSError:
        pass
    return {"logs": out}
