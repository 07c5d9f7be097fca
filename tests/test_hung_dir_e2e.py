"""A farm dir whose mount hangs, end to end: real sshd, real rsync, real
chiapos k=18 plots, a real FUSE mount that stops answering.

The harvester has two farm drives: farm1 is a tmpfs of its own, farm2 is an
sshfs mount of a directory served by the harvester's own loopback sshd (its
internal-sftp).  The sshfs process (the FUSE daemon) is then stopped with
SIGSTOP.  That really hangs the mount: every stat(), statvfs() or readdir()
on it becomes a FUSE request that the kernel queues on /dev/fuse and then
waits for in request_wait_answer() until the daemon answers, and a stopped
daemon never reads the queue.  There is no timeout in the kernel; only a
fatal signal ends the wait (the request was never read, so the kernel can
drop it), which is what lets the probe's stuck threads die with their agent
and the test's own probes (stat subprocesses) be killed.  This is what a
dead NFS server or a wedged FUSE daemon does to a real harvester.

The test process itself never touches the hung mountpoint: only
subprocesses with timeouts do.  What was written "to" it is checked on the
directory the sshd serves, which is a plain directory.
"""
import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.cli import plotfleet
from tests.test_archive_e2e import PARTIAL, PLOT_ID, archive_pass, give_plots

STATUS_BOUND_S = 20.0      # what "returns quickly" means here, dir_timeout_s being 1


# --- sshfs mounts ------------------------------------------------------------------

def mounted(path):
    """Is `path` a mount point?  Read from /proc: never touches the mount."""
    path = os.path.abspath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


class Sshfs:
    """sshfs mounts run in the foreground (`-f`), so their daemon's pid is
    ours; close() kills each daemon, stopped or not, and detaches its mount
    lazily, every step with a timeout."""

    def __init__(self):
        self.mounts = []            # (mountpoint, Popen, log path)

    def mount(self, fleet, host, remote_dir, mountpoint, log):
        if not os.path.exists("/dev/fuse"):
            pytest.fail("/dev/fuse is missing: FUSE is unusable here")
        for tool in ("sshfs", "fusermount3"):
            if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True,
                              timeout=10).returncode != 0:
                pytest.fail(f"{tool} is not installed (apt-get install sshfs fuse3)")
        os.makedirs(mountpoint, exist_ok=True)
        opts = ",".join([f"IdentityFile={fleet.client_key}",
                         f"UserKnownHostsFile={fleet.known_hosts}",
                         "StrictHostKeyChecking=yes", "BatchMode=yes"])
        argv = ["sshfs", "-f", "-p", str(host.port), "-o", opts,
                f"root@{host.address}:{remote_dir}", str(mountpoint)]
        with open(log, "ab") as out:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                 start_new_session=True)
        self.mounts.append((str(mountpoint), p, log))
        deadline = time.monotonic() + 15
        while not mounted(mountpoint):
            if p.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sshfs did not mount {mountpoint} (exit {p.poll()}): "
                            f"{Path(log).read_text()}")
            time.sleep(0.02)
        return p

    def close(self):
        for mountpoint, p, _ in reversed(self.mounts):
            try:
                kids = psutil.Process(p.pid).children(recursive=True)   # its ssh
            except psutil.Error:
                kids = []
            # SIGKILL ends even a stopped process; closing /dev/fuse aborts the
            # connection, so whatever still waits on the mount gets ENOTCONN
            for sig in (signal.SIGKILL, signal.SIGCONT):
                for q in [p] + kids:
                    try:
                        os.kill(q.pid, sig)
                    except ProcessLookupError:
                        pass
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            psutil.wait_procs(kids, timeout=5)
            for cmd in (["fusermount3", "-uz", mountpoint], ["umount", "-l", mountpoint]):
                if not mounted(mountpoint):
                    break
                try:
                    subprocess.run(cmd, capture_output=True, timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        self.mounts.clear()


@pytest.fixture
def sshfs():
    s = Sshfs()
    yield s
    s.close()


def stop_process(pid):
    """SIGSTOP `pid` and wait until it is stopped (state T)."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + 5
    while psutil.Process(pid).status() != psutil.STATUS_STOPPED:
        assert time.monotonic() < deadline, f"process {pid} never stopped"
        time.sleep(0.01)


def assert_blocks(argv, wait_s=1.0):
    """`argv` (a command on the hung mount) does not finish within wait_s;
    then it is killed, which a request still queued for the daemon allows."""
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        p.wait(timeout=wait_s)
    except subprocess.TimeoutExpired:
        try:
            wchan = Path(f"/proc/{p.pid}/wchan").read_text()
        except OSError:
            wchan = "?"
        p.kill()
        p.wait(timeout=10)
        return wchan
    pytest.fail(f"{argv} finished ({p.returncode}) on a mount whose daemon is stopped")


# --- status ----------------------------------------------------------------------------

def timed_status(inv):
    """(seconds taken, status --json document) of one real `plotfleet status`."""
    t0 = time.monotonic()
    r = plotfleet("status", "--inventory", inv, "--json", timeout=60)
    took = time.monotonic() - t0
    assert r.stdout, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    return took, json.loads(r.stdout)


def farm_entries(doc, host, drive, hung):
    h = next(x for x in doc["hosts"] if x["name"] == host)
    dirs = {d["path"]: d for d in h["dirs"] if d["kind"] == "farm"}
    return dirs[drive], dirs[hung]


def plots_on(d):
    """{plot id: path} of the *.plot files in `d` (a dir that answers)."""
    out = {}
    for n in os.listdir(d):
        if n.endswith(".plot"):
            out[PLOT_ID.search(n).group(1)] = os.path.join(d, n)
    return out


def agents_of(host):
    """The `-m agent serve` processes whose ssh session came through `host`'s sshd."""
    out = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if any(cmd[i:i + 3] == ["-m", "agent", "serve"] for i in range(len(cmd))):
            try:
                parents = p.parents()
            except psutil.Error:
                continue
            if any(q.pid == host.proc.pid for q in parents):
                out.append(p)
    return out


# --- the test ---------------------------------------------------------------------------

def test_a_hung_farm_mount_is_not_responding_and_plots_go_to_the_other_drive(
        ssh_fleet, tmpfs, sshfs, tmp_path, k18_plots):
    from chiapos import DiskProver
    fleet = ssh_fleet(n_plotters=1, n_harvesters=1)
    harvester = fleet.hosts["harvester1"]
    drive, hung = harvester.dirs["farm"]
    tmpfs.mount(drive, "64m")
    export = tmp_path / "nas-export"           # what the sshfs mount shows
    export.mkdir()
    (export / "marker").write_text("served by sshd\n")
    daemon = sshfs.mount(fleet, harvester, export, hung, tmp_path / "sshfs.log")
    assert sorted(os.listdir(hung)) == ["marker"]          # it works before the hang
    fleet.farms_mounted = True       # both farm dirs are mounts: require_mounted_farm holds
    inv = fleet.write_inventory(tmp_path / "inv.yaml", dir_timeout_s=1)

    base, doc = timed_status(inv)
    print(f"status before the hang: {base:.2f}s")
    good, bad = farm_entries(doc, "harvester1", drive, hung)
    assert good["error"] is None and bad["error"] is None, (good, bad)

    stop_process(daemon.pid)
    wchan = assert_blocks(["stat", hung])
    assert_blocks(["stat", "-f", hung])                  # statvfs
    assert_blocks(["ls", hung])                          # readdir

    # status: bounded, the hung dir not responding, the drive fine
    took, doc = timed_status(inv)
    print(f"status with the hung dir: {took:.2f}s (stat waited in {wchan!r})")
    assert took < STATUS_BOUND_S, f"status took {took:.1f}s"
    good, bad = farm_entries(doc, "harvester1", drive, hung)
    assert bad["error_code"] == "not_responding", bad
    assert bad["error"].startswith("not responding"), bad
    assert good["error"] is None and good["error_code"] is None, good
    assert good["total_bytes"] == 64 << 20 and good["free_bytes"] > 60 << 20, good
    # again: as quick, still not responding, and the agents of the first one
    # did not stay behind, stuck on the mount
    took2, doc = timed_status(inv)
    print(f"status again: {took2:.2f}s")
    assert took2 < STATUS_BOUND_S, f"status took {took2:.1f}s the second time"
    good, bad = farm_entries(doc, "harvester1", drive, hung)
    assert bad["error_code"] == "not_responding" and good["error"] is None, (good, bad)
    deadline = time.monotonic() + 10
    while agents_of(harvester):
        assert time.monotonic() < deadline, \
            f"agents outlived their status: {[p.pid for p in agents_of(harvester)]}"
        time.sleep(0.1)

    # archiving: both plots go to the drive that answers
    plots = give_plots(fleet, k18_plots, per_plotter=2)
    dst = fleet.hosts["plotter1"].dirs["dst"][0]
    outs, passes = [], []
    deadline = time.monotonic() + 60
    while True:
        t0 = time.monotonic()
        try:
            r = archive_pass(inv)
        except subprocess.TimeoutExpired:
            pytest.fail(f"an archive pass hung (60s) after: {outs[-2:]}")
        passes.append(time.monotonic() - t0)
        outs.append(r.text)
        assert passes[-1] < STATUS_BOUND_S, \
            f"an archive pass took {passes[-1]:.1f}s (waited on the hung dir?):\n{r.text}"
        on_drive = plots_on(drive)
        if set(on_drive) == plots.ids and not any(n.endswith(PARTIAL) for n in os.listdir(drive)):
            break
        assert time.monotonic() < deadline, "archiving never converged:\n" + "\n".join(outs[-3:])
        time.sleep(0.3)
    print(f"archive passes: {len(passes)}, longest {max(passes):.2f}s")
    assert hung not in "\n".join(o for o in outs if "transfer: " in o), outs
    for pid, path in on_drive.items():
        data = Path(path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == plots.digest[pid], f"{path} differs"
        assert DiskProver(path).get_id().hex() == pid
    assert sorted(os.listdir(drive)) == sorted(os.path.basename(p) for p in on_drive.values())
    assert not [n for n in os.listdir(dst) if n.endswith(".plot")]
    # nothing reached the hung dir: what it serves is as it was
    assert sorted(os.listdir(export)) == ["marker"]

    # the mount was hung all along, and still is; status still says so
    assert psutil.Process(daemon.pid).status() == psutil.STATUS_STOPPED
    took3, doc = timed_status(inv)
    assert took3 < STATUS_BOUND_S
    good, bad = farm_entries(doc, "harvester1", drive, hung)
    assert bad["error_code"] == "not_responding", bad
    assert good["error"] is None and good["plot_count"] == 2, good
