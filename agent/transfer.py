"""The detached transfer runner: `python -m agent transfer SPEC_JSON`.

Runs one rsync to `<to_dir>/<plot name>.plotfleet-tmp` (never a *.plot name:
only the harvester's promote gives the final name after checking the size)
and records its state in ~/.plotfleet/transfers/<plot name>.json:
running -> copied on exit 0, failed with rsync's exit code otherwise.
"""
import json
import os
import shlex
import subprocess
import sys
import time

from .disks import PARTIAL_SUFFIX


def rsync_argv(spec):
    name = os.path.basename(spec["plot"]) + PARTIAL_SUFFIX
    argv = ["rsync", "--inplace", "--append-verify", "--no-compress", "-t",
            "--protect-args", "--info=progress2"]
    if spec.get("bwlimit_kbps"):
        argv.append("--bwlimit=%d" % int(spec["bwlimit_kbps"]))
    to_dir = spec["to_dir"].rstrip("/") or "/"
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


def run(spec_json):
    spec = json.loads(spec_json)
    started = time.time()
    base = dict(pid=os.getpid(), started_at=started)
    write_state(spec, status="running", **base)
    try:
        with open(spec["progress_log"], "wb") as log:
            rc = subprocess.call(rsync_argv(spec), stdin=subprocess.DEVNULL,
                                 stdout=log, stderr=subprocess.STDOUT)
    except OSError as e:
        write_state(spec, status="failed", error="cannot run rsync: %s" % e, **base)
        return 1
    if rc == 0:
        write_state(spec, status="copied", finished_at=time.time(), **base)
        return 0
    write_state(spec, status="failed", error="rsync exit code %d" % rc, exit_code=rc, **base)
    return 1


if __name__ == "__main__":
    sys.exit(run(sys.argv[1]))
