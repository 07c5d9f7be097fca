"""Moving plots: start the detached transfer runner (plotter), digest a
plot or a copy, promote a copy that matches its source (harvester), remove
a source a copy was shown to match (plotter), clean a stale copy."""
import json
import os
import shutil
import stat
import sys
import time
from typing import Optional

from ..facts import checks, disks, drive_health, plotfile
from ..vocab import names
from ..facts.procs import maybe_receiving, rsync_targets, runner_alive
from ..facts.snapshot import FRESH_S, read_transfers, transfers_dir
from ..launch import transfer
from .common import ActionError, _agent_env, _spawn, check_inside, host_lock
from ..protocol import op
from ..vocab import wire
from ..vocab.wire import ErrorCode


def _plot_in_dst(config, plot):
    path = check_inside(plot, disks.dirs_of(config, "dst"))
    if not names.is_moved(path):
        raise ActionError("not a plot: %s" % plot)
    if not os.path.lexists(path):
        raise ActionError("no such plot: %s" % plot)
    # as named, and as resolved: a symlink in dst (even to a real plot) is no plot
    for p in dict.fromkeys((os.path.expanduser(plot), path)):
        try:
            regular = stat.S_ISREG(os.lstat(p).st_mode)
        except OSError as e:
            raise ActionError("cannot read %s: %s" % (plot, e.strerror or e))
        if not regular:
            raise ActionError("not a regular file, not a plot: %s is %s"
                              % (plot, disks.file_kind(p)))
    return path


def transfer_state_path(plot_path):
    return os.path.join(transfers_dir(), os.path.basename(plot_path) + ".json")


def _queues():
    """{queue file: queue} of the transfer queues whose runner still works."""
    d = transfers_dir()
    out = {}
    try:
        files = [n for n in os.listdir(d) if n.endswith(transfer.QUEUE_SUFFIX)]
    except OSError:
        return out
    for n in files:
        path = os.path.join(d, n)
        q = transfer.load_queue(path)
        if q and runner_alive(q.get("pid"), q.get("started_at", 0)):
            out[path] = q
        elif q and q.get("pid"):        # its runner was killed: nothing works it any more
            try:
                os.remove(path)
            except OSError:
                pass
            shutil.rmtree(path[:-len(transfer.QUEUE_SUFFIX)] + ".work", ignore_errors=True)
    return out


@op(wire.TransferStartedReply)
def start_transfer(agent, config: wire.Config, plot: str, to_dir: str,
                   to_host: Optional[str] = None, mode: Optional[str] = "ssh",
                   ssh: Optional[wire.SshTarget] = None, bwlimit_kbps: Optional[int] = 0,
                   dest_dir: Optional[str] = None, fsync: Optional[bool] = False,
                   farm_dirs: Optional[list] = None, queue: Optional[list] = None,
                   batch_bytes: Optional[int] = 0, after_check: Optional[bool] = False):
    """Send `plot`, then each plot of `queue` (paths), back to back, to one
    drive: one detached runner (agent/launch/transfer.py), or the one already
    sending to that drive, whose queue they join.  `dest_dir` is to_dir as
    the harvester resolved it; a local copy only ever goes into one of
    `farm_dirs`, the harvester's own (resolved) farm dirs.  Plots adding up
    to `batch_bytes` go in one rsync run.  `after_check`: each plot is
    copied only once its proof check lets it (transfer.gate)."""
    plots = [plot] + list(queue or ())
    srcs = [_plot_in_dst(config, p) for p in plots]
    if len(set(srcs)) != len(srcs):
        raise ActionError("a plot is named twice in one queue", code=ErrorCode.BAD_REQUEST)
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
    specs = []
    for src in srcs:
        state = transfer_state_path(src)
        specs.append({"plot": src, "to_host": to_host, "to_dir": to_dir, "dest_dir": dest,
                      "mode": mode, "ssh": ssh, "fsync": bool(fsync),
                      "bwlimit_kbps": int(bwlimit_kbps or 0), "after_check": bool(after_check),
                      "size_bytes": os.path.getsize(src), "state_file": state,
                      "progress_log": state[:-5] + ".progress"})
    where = [mode, to_host, dest]
    # under the host lock: two controllers asking at once start one rsync, not
    # two writing the same partial, and a runner ending its queue either
    # takes these plots or has left it for a new runner
    with host_lock():
        there, already = None, []
        for t in read_transfers(config):
            if t["plot"] in srcs and t["status"] in ("running", "queued"):
                if (t["to_host"], t["to_dir"]) != (to_host, to_dir):
                    raise ActionError("transfer of %s already %s to %s:%s (pid %s)"
                                      % (t["plot"], t["status"], t["to_host"], t["to_dir"],
                                         t["pid"]), code=ErrorCode.BUSY)
                # on its way there already (another controller's pass): asked
                # again, it is done, and the drive's claim stays with its runner
                specs = [sp for sp in specs if sp["plot"] != t["plot"]]
                there = t["pid"]
                already.append(t["plot"])
        if not specs:
            return {"pid": there, "joined": True, "already": already}
        for spec in specs:              # an earlier, failed attempt
            for stale in (spec["state_file"], spec["progress_log"][:-9] + ".runner.log"):
                try:
                    os.remove(stale)
                except OSError:
                    pass
        now = time.time()
        ready = [transfer.gate(s) == "go" for s in specs]
        joined = next(((f, q) for f, q in _queues().items() if q.get("dest") == where), None)
        if joined is not None:
            queue_file, q = joined
            if not q.get("gated") and not all(ready):
                # a runner of an agent before gates (an upgrade while it works)
                # would copy a plot whose check is not over: not into its queue
                raise ActionError("the runner sending to %s:%s predates proof-check gates: "
                                  "a plot still being checked goes after it" % (to_host, dest),
                                  code=ErrorCode.BUSY)
            q["items"] += specs
            transfer.save_queue(queue_file, q)
            pid = q["pid"]
        else:
            queue_file = os.path.join(transfers_dir(), "q-%d-%s%s" % (
                int(now * 1000), os.path.basename(srcs[0])[:40], transfer.QUEUE_SUFFIX))
            q = {"dest": where, "pid": None, "started_at": now, "items": specs,
                 "gated": True}             # its runner copies a plot only when gate() lets it
            transfer.save_queue(queue_file, q)
            runner_log = queue_file[:-len(transfer.QUEUE_SUFFIX)] + ".runner.log"
            try:
                proc = _spawn([sys.executable, "-m", "agent", "transfer", json.dumps(
                    {"queue_file": queue_file, "batch_bytes": int(batch_bytes or 0)})],
                    runner_log, _agent_env())
            except OSError:
                os.remove(queue_file)
                raise
            agent.children.append(proc)
            q["pid"], pid = proc.pid, proc.pid
            transfer.save_queue(queue_file, q)
        for i, spec in enumerate(specs):    # visible at once: a new runner's first is
            first = i == 0 and joined is None and ready[0]      # on its way already
            transfer.write_state(spec, pid=pid, started_at=now,
                                 status="running" if first else "queued")
    return {"pid": pid, "joined": joined is not None, "already": already}


def _receiving(agent, path, sent=False):
    """`sent`: the sender's runner recorded this file whole (its rsync moved
    on or ended), so only an rsync holding it open still writes it: an idle
    server in its dir is the next batch's, about to write another file."""
    _, rsyncs = agent.all_jobs()
    named, idle_dirs = rsync_targets(rsyncs)
    if sent:
        return path in named
    try:
        fresh = time.time() - os.path.getmtime(path) < FRESH_S
    except OSError:
        fresh = False
    return maybe_receiving(path, named, idle_dirs, fresh)


def _partial(agent, config, partial, sent=False):
    path = check_inside(partial, disks.dirs_of(config, "farm"))
    if not names.is_partial(path):
        raise ActionError("not a transfer temp file: %s" % partial)
    if _receiving(agent, path, sent):
        raise ActionError("still being received: %s" % path)
    return path


DIGEST_LIMITS = {"edge": 64 << 20, "block": 16 << 20, "offsets": 4096}


def _spec(spec):
    """A digest spec from the controller, checked (digests read what it says)."""
    if not isinstance(spec, dict):
        raise ActionError("digest spec must be an object", code=ErrorCode.BAD_REQUEST)
    try:
        edge, block = int(spec["edge"]), int(spec["block"])
        offsets = [int(o) for o in spec.get("offsets") or ()]
        full_below = int(spec.get("full_below") or 0)
    except (KeyError, TypeError, ValueError):
        raise ActionError("bad digest spec: %r" % (spec,), code=ErrorCode.BAD_REQUEST)
    if not (0 < edge <= DIGEST_LIMITS["edge"] and 0 < block <= DIGEST_LIMITS["block"]
            and len(offsets) <= DIGEST_LIMITS["offsets"] and full_below >= 0):
        raise ActionError("digest spec out of bounds: %r" % (spec,), code=ErrorCode.BAD_REQUEST)
    return {"edge": edge, "block": block, "offsets": offsets, "full_below": full_below}


def _digest(path, spec):
    try:
        return plotfile.digest(path, spec)
    except OSError as e:
        raise ActionError("cannot read %s: %s" % (path, e.strerror or e), code=ErrorCode.UNREADABLE)


def _expect(expect):
    if not isinstance(expect, dict) or not isinstance(expect.get("sha256"), str):
        raise ActionError("expect must carry the source's digest", code=ErrorCode.BAD_REQUEST)
    return dict(expect, spec=_spec(expect.get("spec")), size=int(expect["size"]))


def _extent_error(path):
    try:
        return plotfile.extent_error(path)
    except OSError as e:
        raise ActionError("cannot read %s: %s" % (path, e.strerror or e), code=ErrorCode.UNREADABLE)


@op(wire.DigestReply)
def digest(agent, config: wire.Config, path: str, spec: dict):
    """The digest of a plot in a dst dir (plotter) or of a plot or transfer
    temp file in a farm dir (harvester), under the controller's spec."""
    real = check_inside(path, disks.dirs_of(config, "dst", "farm"))
    if not (names.is_moved(real) or names.is_partial(real)):
        raise ActionError("not a plot: %s" % path)
    d = _digest(real, _spec(spec))
    d["header_error"] = plotfile.header_problem(real, d["header"]) or _extent_error(real)
    return d


def _drive_dirs(config, path):
    """The farm dirs on the drive `path` is on (its dir, if that is gone)."""
    dev = disks.device_of(os.path.dirname(path))
    return [os.path.dirname(path)] if dev is None else disks.farm_dirs_on(config, dev)


def _confirm_final(config, final, expect):
    """A file already under the final name: the plot, or a conflict."""
    have = _digest(final, expect["spec"])
    ok, why = plotfile.same(have, expect)
    if not ok:
        detail = "%s holds other bytes than the plot of that name: %s" % (final, why)
        with host_lock():
            drive_health.record_conflict(final, why)
        raise ActionError(detail, code=ErrorCode.CONFLICT)
    return have


@op(wire.PromoteReply)
def promote(agent, config: wire.Config, partial: str, expect: dict,
            sent: Optional[bool] = False):
    """Give a complete copy its final name: only when its bytes match the
    source's digest (`expect`: {"size", "sha256", "spec"}), its header its
    name, and only once its data and then the rename are on disk.

    A copy that does not match is removed (it is only ever a temp file; the
    plot is sent again).  A file that already holds the final name is never
    replaced: with the same bytes it confirms the copy (a promote repeated
    after a controller died), with other bytes it is a conflict.  `sent`:
    the sender recorded the copy whole (see _receiving)."""
    expect = _expect(expect)
    path = check_inside(partial, disks.dirs_of(config, "farm"))
    if not names.is_partial(path):
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
        raise ActionError("no such partial: %s" % path, code=ErrorCode.VANISHED)
    path = _partial(agent, config, partial, sent)
    have = _digest(path, expect["spec"])
    ok, why = plotfile.same(have, expect)
    problem = (plotfile.header_problem(final, have["header"]) or _extent_error(path)) if ok \
        else None
    if not ok or problem:
        os.remove(path)
        raise ActionError("copy %s differs from its source: %s: removed, to be sent again"
                          % (path, why or problem), code=ErrorCode.MISMATCH)
    plotfile.fsync_file(path)
    with host_lock():
        if os.path.lexists(final):      # appeared meanwhile: never overwritten
            raise ActionError("%s appeared while promoting: left as it is" % final,
                              code=ErrorCode.CONFLICT)
        os.rename(path, final)
        plotfile.fsync_dir(os.path.dirname(final))
        drive_health.clear(_drive_dirs(config, final))
    return dict(have, path=final, size_bytes=have["size"], already=False)


def _durable(path):
    plotfile.fsync_file(path)
    plotfile.fsync_dir(os.path.dirname(path))


@op(wire.RemovePlotReply)
def remove_plot(agent, config: wire.Config, plot: str, proof: dict):
    """Delete a source plot once a harvester showed a copy under its final
    name with the same bytes: `proof` is that copy's digest ({"size",
    "sha256", "spec"}), and this host computes its own to compare."""
    path = _plot_in_dst(config, plot)
    proof = _expect(proof)
    mine = _digest(path, proof["spec"])
    ok, why = plotfile.same(mine, proof)
    if not ok:
        raise ActionError("the copy does not hold this plot's bytes (%s): %s kept"
                          % (why, path), code=ErrorCode.MISMATCH)
    os.remove(path)
    for extra in (checks.record_path(path), checks.record_path(path)[:-5] + ".log",
                  transfer_state_path(path), transfer_state_path(path)[:-5] + ".progress",
                  transfer_state_path(path)[:-5] + ".runner.log"):
        try:
            os.remove(extra)
        except OSError:
            pass
    return {"removed": path, "size_bytes": mine["size"]}


@op(wire.CleanPartialReply)
def clean_partial(agent, config: wire.Config, partial: str):
    """Remove a transfer temp file on a farm dir that no rsync writes."""
    path = _partial(agent, config, partial)
    try:
        os.remove(path)
    except FileNotFoundError:
        raise ActionError("no such partial: %s" % path, code=ErrorCode.VANISHED)
    return {"removed": path}
