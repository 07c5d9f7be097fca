"""The detached transfer runner: `python -m agent transfer SPEC_JSON`.

Runs one rsync to `<dest_dir>/<plot name>.plotfleet-tmp` (never a *.plot
name: only the harvester's promote gives the final name, after comparing
the copy's bytes with the source's) and records its state in
~/.plotfleet/transfers/<plot name>.json: running -> copied on exit 0,
failed otherwise, with rsync's most specific error line and whose fault it
was (rsync_errors.py).  `dest_dir` is the target as the harvester resolved
it (`~` expanded there: with --protect-args the remote side expands
nothing); `to_dir` is the configured spelling, kept for the record.

`--fsync` (rsync >= 3.2.4 on both ends; the controller knows both versions)
makes rsync sync the data itself; should a receiving rsync refuse it anyway,
the copy is redone once without it, which costs the drive nothing: promote
syncs the file in any case.
"""
import json
import os
import shlex
import subprocess
import sys
import time

from ..facts.disks import PARTIAL_SUFFIX
from ..launch.rsync_errors import classify

def rsync_argv(spec, fsync=None):
    name = os.path.basename(spec["plot"]) + PARTIAL_SUFFIX
    # --append-verify: a resumed partial is checked with rsync's whole-file
    # checksum, the part already there included
    argv = ["rsync", "--inplace", "--append-verify", "--no-compress", "-t",
            "--protect-args", "--info=progress2"]
    if spec.get("fsync") if fsync is None else fsync:
        argv.append("--fsync")
    if spec.get("bwlimit_kbps"):
        argv.append("--bwlimit=%d" % int(spec["bwlimit_kbps"]))
    to_dir = (spec.get("dest_dir") or spec["to_dir"]).rstrip("/") or "/"
    if spec["mode"] == "local":
        return argv + [spec["plot"], os.path.join(os.path.expanduser(to_dir), name)]
    s = spec["ssh"]
    ssh = ["ssh", "-i", s["key"], "-p", str(int(s.get("port") or 22)),
           "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
    if s.get("known_hosts"):
        ssh += ["-o", "UserKnownHostsFile=" + s["known_hosts"]]
    host = s["host"]
    if ":" in host:
        host = "[%s]" % host
    return argv + ["-e", " ".join(shlex.quote(a) for a in ssh), spec["plot"],
                   "%s@%s:%s/%s" % (s["user"], host, to_dir, name)]


def write_state(spec, exclusive=False, **fields):
    rec = {"plot": spec["plot"], "to_host": spec.get("to_host"), "to_dir": spec["to_dir"],
           "size_bytes": spec["size_bytes"], "progress_log": spec["progress_log"],
           "mode": spec["mode"]}
    rec.update(fields)
    tmp = spec["state_file"] + ".%d.tmp" % os.getpid()
    with open(tmp, "w") as f:
        json.dump(rec, f)
    if not exclusive:
        os.replace(tmp, spec["state_file"])   # readers never see half a record
        return
    try:
        os.link(tmp, spec["state_file"])      # only if no record exists yet
    except FileExistsError:
        pass
    finally:
        os.remove(tmp)


def _rsync(argv, progress_log):
    with open(progress_log, "wb") as log:
        return subprocess.call(argv, stdin=subprocess.DEVNULL, stdout=log,
                               stderr=subprocess.STDOUT)


def _output(progress_log):
    try:
        with open(progress_log, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 65536))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def run(spec_json):
    spec = json.loads(spec_json)
    started = time.time()
    base = dict(pid=os.getpid(), started_at=started)
    write_state(spec, status="running", **base)
    try:
        rc = _rsync(rsync_argv(spec), spec["progress_log"])
        if rc != 0 and spec.get("fsync") and "unknown option" in _output(spec["progress_log"]):
            rc = _rsync(rsync_argv(spec, fsync=False), spec["progress_log"])
    except OSError as e:
        write_state(spec, status="failed", error="cannot run rsync: %s" % e, fault="plotter",
                    fatal=False, **base)
        return 1
    if rc == 0:
        write_state(spec, status="copied", finished_at=time.time(), **base)
        return 0
    why = classify(_output(spec["progress_log"]), rc, spec.get("dest_dir") or spec["to_dir"])
    write_state(spec, status="failed", exit_code=rc, finished_at=time.time(), **dict(base, **why))
    return 1


if __name__ == "__main__":
    sys.exit(run(sys.argv[1]))
