"""The detached transfer runner: `python -m agent transfer SPEC_JSON`.

It works through a queue of plots bound for one harvester drive, back to
back, so the next plot starts the moment the last one is written, not at
the controller's next pass.  The queue lives in
~/.plotfleet/transfers/<queue>.queue.json ({"dest", "pid", "items": [one
spec per plot]}); start_transfer (agent/ops/transfers.py) makes it and may
append to it while the runner lives, both under the host lock.  The runner
takes plots from its head under the same lock and, when it finds it empty,
removes it and ends: an append either lands before that or starts a new
runner.  If the controller dies, the queue finishes its plots and stops.

Each plot goes to `<dest_dir>/<plot name>.plotfleet-tmp` (never a *.plot
name: only the harvester's promote gives the final name, after comparing the
copy's bytes with the source's; the controller relays it at its next pass),
and its state is recorded in ~/.plotfleet/transfers/<plot name>.json:
queued -> running -> copied on exit 0, failed otherwise, with rsync's most
specific error line and whose fault it was (rsync_errors.py).  Plots whose
sizes add up to at most `batch_bytes` go in one rsync run (one SSH channel):
each is still written and later verified under its own partial name, so a
cut run loses only the file it was on (the ones before it are complete and
promoted after their digests are compared; the one it was on resumes).  A
failed run ends the queue: the plots still queued are handed back (their
records removed), for the controller to place again.

`dest_dir` is the target as the harvester resolved it (`~` expanded there:
with --protect-args the remote side expands nothing); `to_dir` is the
configured spelling, kept for the record.  `--fsync` (rsync >= 3.2.4 on both
ends; the controller knows both versions) makes rsync sync the data itself;
should a receiving rsync refuse it anyway, the copy is redone once without
it, which costs the drive nothing: promote syncs the file in any case.
"""
import contextlib
import fcntl
import json
import os
import shlex
import shutil
import subprocess
import sys
import time

from ..facts import checks
from ..facts.disks import PARTIAL_SUFFIX
from ..launch.rsync_errors import BEGUN, classify
from .. import statefile

QUEUE_SUFFIX = ".queue.json"
GATE_POLL_S = 0.1       # how often a runner waiting for a plot's proof check looks again
# How long a plot may wait for its check at the head of the queue: a runner
# that waits writes nothing, and writing is what keeps its drive claim alive
# (facts/claim_record.py, CLAIM_S 120 s).  A plot whose check takes longer
# goes back to the controller, which sends it once its check has passed.
GATE_WAIT_S = 30.0


def _ssh_prefix(spec):
    s = spec["ssh"]
    ssh = ["ssh", "-i", s["key"], "-p", str(int(s.get("port") or 22)),
           "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
    if s.get("known_hosts"):
        ssh += ["-o", "UserKnownHostsFile=" + s["known_hosts"]]
    host = s["host"]
    if ":" in host:
        host = "[%s]" % host
    return ["-e", " ".join(shlex.quote(a) for a in ssh)], "%s@%s:" % (s["user"], host)


def rsync_argv(spec, fsync=None, batch_dir=None):
    """rsync of one plot to its partial name; with `batch_dir` (a dir of
    links named <plot>.plotfleet-tmp), of every plot linked there."""
    name = os.path.basename(spec["plot"]) + PARTIAL_SUFFIX
    # --append-verify: a resumed partial is checked with rsync's whole-file
    # checksum, the part already there included
    argv = ["rsync", "--inplace", "--append-verify", "--no-compress", "-t",
            "--protect-args", "--info=progress2"]
    if batch_dir:
        # the links' targets under the links' names; each file's name is
        # printed as it begins, so a cut run tells which ones were whole
        argv += ["-r", "--copy-links", "--out-format=" + BEGUN + "%n"]
    if spec.get("fsync") if fsync is None else fsync:
        argv.append("--fsync")
    if spec.get("bwlimit_kbps"):
        argv.append("--bwlimit=%d" % int(spec["bwlimit_kbps"]))
    to_dir = (spec.get("dest_dir") or spec["to_dir"]).rstrip("/") or "/"
    src = batch_dir.rstrip("/") + "/" if batch_dir else spec["plot"]
    if spec["mode"] == "local":
        to_dir = os.path.expanduser(to_dir)
        return argv + [src, to_dir + "/" if batch_dir else os.path.join(to_dir, name)]
    e, where = _ssh_prefix(spec)
    return argv + e + [src, where + (to_dir + "/" if batch_dir else "%s/%s" % (to_dir, name))]


def write_state(spec, exclusive=False, **fields):
    rec = {"plot": spec["plot"], "to_host": spec.get("to_host"), "to_dir": spec["to_dir"],
           "size_bytes": spec["size_bytes"], "progress_log": spec["progress_log"],
           "mode": spec["mode"]}
    rec.update(fields)
    if not exclusive:
        statefile.write(spec["state_file"], rec)
        return
    tmp = spec["state_file"] + ".%d.tmp" % os.getpid()
    with open(tmp, "w") as f:
        json.dump(rec, f)
    try:
        os.link(tmp, spec["state_file"])      # only if no record exists yet
    except FileExistsError:
        pass
    finally:
        os.remove(tmp)


@contextlib.contextmanager
def host_locked():
    """The agent's host lock (agent/ops/common.py takes the same file), waited
    for as long as it takes: a runner has no request deadline."""
    fd = statefile.open_host_lock()
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def load_queue(path):
    q = statefile.read(path)
    return q if q is not None and isinstance(q.get("items"), list) else None


def save_queue(path, queue):
    statefile.write(path, queue)


def _rsync(argv, progress_log):
    with open(progress_log, "wb") as log:
        return subprocess.call(argv, stdin=subprocess.DEVNULL, stdout=log,
                               stderr=subprocess.STDOUT)


def _output(progress_log, whole=False):
    try:
        with open(progress_log, "rb") as f:
            f.seek(0, 2)
            f.seek(0 if whole else max(0, f.tell() - 65536))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def gate(spec, waiting=None, now=None):
    """May this plot be copied now: "go", "wait" or "no".  A plot handed over
    with `after_check` (the controller sends every plot so, and one whose
    check still runs: its copy then starts the moment the check passes, not
    a pass later) goes only once its own check record lets it (facts/checks.py
    may_go).  `waiting` ({plot: since}) bounds the wait to GATE_WAIT_S."""
    if not spec.get("after_check"):
        return "go"
    verdict = checks.may_go(spec["plot"])
    if verdict == "wait" and waiting is not None:
        now = time.time() if now is None else now
        if now - waiting.setdefault(spec["plot"], now) > GATE_WAIT_S:
            return "no"
    return verdict


def _take(queue_file, batch_bytes, waiting):
    """The next plots the queue may send (as many as fit in batch_bytes, at
    least one; a plot whose check still runs is passed over, one whose check
    lets it not is handed back, its record removed), each marked running;
    ([], now) when every plot left waits for its check; None when the queue
    is empty (it is then removed: an append after this starts a runner of
    its own)."""
    with host_locked():
        q = load_queue(queue_file)
        items = []
        for spec in (q or {}).get("items") or ():
            verdict = gate(spec, waiting)
            if verdict == "no":         # never copied: the controller quarantines it,
                with contextlib.suppress(OSError):      # or checks it again
                    os.remove(spec["state_file"])
                continue
            items.append((spec, verdict == "go"))
        if not items:
            with contextlib.suppress(OSError):
                os.remove(queue_file)
            return None
        batch, total, left, full = [], 0, [], False
        for spec, ready in items:
            size = int(spec["size_bytes"])
            full = full or (ready and bool(batch) and total + size > batch_bytes)
            if ready and not full:
                batch.append(spec)
                total += size
            else:
                left.append(spec)
        q["items"] = left
        save_queue(queue_file, q)
        now = time.time()
        for spec in batch:
            write_state(spec, status="running", pid=os.getpid(), started_at=now)
        return batch, now


def _give_back(queue_file):
    """After a failure: the plots still queued go back to the controller."""
    with host_locked():
        q = load_queue(queue_file) or {}
        for spec in q.get("items") or ():
            with contextlib.suppress(OSError):
                os.remove(spec["state_file"])
        with contextlib.suppress(OSError):
            os.remove(queue_file)


def _copy(batch, work_dir):
    """rsync the batch; (exit code, its progress log)."""
    head = batch[0]
    if len(batch) == 1:
        argv = lambda fsync=None: rsync_argv(head, fsync)
        log = head["progress_log"]
    else:
        links = os.path.join(work_dir, "batch")
        shutil.rmtree(links, ignore_errors=True)
        os.makedirs(links)
        for spec in batch:
            os.symlink(spec["plot"], os.path.join(
                links, os.path.basename(spec["plot"]) + PARTIAL_SUFFIX))
        argv = lambda fsync=None: rsync_argv(head, fsync, batch_dir=links)
        log = os.path.join(work_dir, "batch.progress")
    rc = _rsync(argv(), log)
    if rc != 0 and head.get("fsync") and "unknown option" in _output(log):
        rc = _rsync(argv(False), log)
    return rc, log


def run(spec_json):
    spec = json.loads(spec_json)
    queue_file, batch_bytes = spec["queue_file"], int(spec.get("batch_bytes") or 0)
    work_dir = queue_file[:-len(QUEUE_SUFFIX)] + ".work"
    os.makedirs(work_dir, exist_ok=True)
    waiting = {}                # plot -> since when it waits for its check
    try:
        while True:
            taken = _take(queue_file, batch_bytes, waiting)
            if taken is None:
                with contextlib.suppress(OSError):      # nothing in it worth keeping
                    os.remove(queue_file[:-len(QUEUE_SUFFIX)] + ".runner.log")
                return 0
            batch, started = taken
            if not batch:
                time.sleep(GATE_POLL_S)
                continue
            base = dict(pid=os.getpid(), started_at=started)
            try:
                rc, log = _copy(batch, work_dir)
            except OSError as e:
                for s in batch:
                    write_state(s, status="failed", error="cannot run rsync: %s" % e,
                                fault="plotter", fatal=False, finished_at=time.time(), **base)
                _give_back(queue_file)
                return 1
            if rc == 0:
                for s in batch:
                    write_state(s, status="copied", finished_at=time.time(), **base)
                continue
            why = classify(_output(log), rc, batch[0].get("dest_dir") or batch[0]["to_dir"])
            whole, cut, unsent = split_cut(batch, _output(log, whole=True))
            for s in whole:             # another file was begun after it
                write_state(s, status="copied", finished_at=time.time(), **base)
            for s in cut:
                write_state(s, status="failed", exit_code=rc, finished_at=time.time(),
                            **dict(base, **why))
            for s in unsent:            # never begun: the controller places it again
                with contextlib.suppress(OSError):
                    os.remove(s["state_file"])
            _give_back(queue_file)
            return 1
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def split_cut(batch, output):
    """A failed run's plots: (whole, the one it was on, never begun).  One
    plot alone, or a run that printed no names, is all 'the one it was on'."""
    if len(batch) == 1:
        return [], batch, []
    begun = [line[len(BEGUN):].strip() for line in output.replace("\r", "\n").split("\n")
             if line.startswith(BEGUN)]
    names = [os.path.basename(s["plot"]) + PARTIAL_SUFFIX for s in batch]
    if not begun or begun[-1] not in names:
        return [], batch, []
    last = names.index(begun[-1])
    done = set(begun[:-1])
    whole = [s for s, n in zip(batch, names) if n in done]
    unsent = [s for s, n in zip(batch, names) if n not in done and n != begun[-1]]
    return whole, [batch[last]], unsent


if __name__ == "__main__":
    sys.exit(run(sys.argv[1]))
