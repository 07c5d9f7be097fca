"""Plot jobs and rsync transfers found in the process table.

A job is classified once per (pid, start time): later scans only read
/proc/PID/stat of known jobs, so a snapshot stays cheap with hundreds of
processes.  "Not a job" is never final: a process seen between its fork and
its exec still runs its parent's argv (an agent starting a job looks like
`python -m agent serve`), so every scan re-reads the cmdline of the others
and classifies again whatever has exec'd since.  Any process may vanish or
refuse access mid-scan; it is skipped.
"""
import os
import time

import psutil

from ..vocab.names import PARTIAL_SUFFIX
from ..vocab.plotters import classify
from .logparse import LogTail

PROC = "/proc"
HAVE_PROC = os.path.isdir(os.path.join(PROC, "self"))
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
PSUTIL_ERRORS = (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError)

def _read_stat(pid):
    """(state, ppid, utime+stime seconds, starttime ticks, rss bytes) or None."""
    try:
        with open("%s/%d/stat" % (PROC, pid), "rb") as f:
            data = f.read()
    except OSError:
        return None
    try:
        rest = data[data.rindex(b")") + 2:].split()
        return (rest[0].decode(), int(rest[1]), (int(rest[11]) + int(rest[12])) / CLK_TCK,
                int(rest[19]), int(rest[21]) * PAGE)
    except (ValueError, IndexError):
        return None


def _cmdline(pid):
    try:
        with open("%s/%d/cmdline" % (PROC, pid), "rb") as f:
            data = f.read()
    except OSError:
        return None
    return [a.decode("utf-8", "replace") for a in data.split(b"\0")[:-1]] if data else []


def _ps_cmdline(pid):
    try:
        return psutil.Process(pid).cmdline()
    except PSUTIL_ERRORS:
        return None


def _fd_targets(pid):
    """{fd path: target} of a process's open fds ({} when it cannot be read)."""
    d = "%s/%d/fd" % (PROC, pid)
    out = {}
    try:
        fds = os.listdir(d)
    except OSError:
        return out
    for fd in fds:
        try:
            out[fd] = os.readlink(os.path.join(d, fd))
        except OSError:
            pass
    return out


def _open_log(pid):
    try:
        for f in psutil.Process(pid).open_files():
            if f.path.endswith(".log"):
                return f.path
    except PSUTIL_ERRORS:
        pass
    return None


def _stdout_log(pid):
    """The file the job's stdout goes to, else an open *.log file, else the
    *.log file that the reader of its stdout pipe writes (`job | tee LOG`)."""
    try:
        target = os.readlink("%s/%d/fd/1" % (PROC, pid))
    except OSError:
        target = ""
    if target.startswith("/") and os.path.isfile(target):
        return target
    found = _open_log(pid)
    if found or not target.startswith("pipe:") or not HAVE_PROC:
        return found
    # whoever else holds the pipe (tee, a logger) and has a log open
    for other in _all_pids():
        if other != pid and target in _fd_targets(other).values():
            found = _open_log(other)
            if found:
                return found
    return None


def _all_pids():
    try:
        return [int(p) for p in os.listdir(PROC) if p.isdigit()]
    except OSError:
        return []


def _writable(pid, fd):
    """Is fd `fd` of `pid` open for writing (O_WRONLY or O_RDWR)?  True when
    that cannot be read: not ours to rule out."""
    try:
        with open("%s/%d/fdinfo/%s" % (PROC, pid, fd), "rb") as f:
            for line in f:
                if line.startswith(b"flags:"):
                    return int(line.split()[1], 8) & 3 != 0
    except (OSError, ValueError, IndexError):
        pass
    return True


def held_open(dirs, writing=False):
    """{path: {pids}} of the files directly or deeper in `dirs` that some
    process (other than this agent) holds open (`writing`: open for writing):
    one walk of the process table.

    A log held open belongs to a live job whatever its stdout is (a file, a
    pipe through tee, a terminal); a temp file held open is being written; a
    plot-named file open for writing is a plot its plotter has not finished
    (chia_rs writes under the final name), while one open for reading (an
    rsync sending it, a harvester) is whole."""
    prefixes = tuple(d.rstrip(os.sep) + os.sep for d in dict.fromkeys(dirs) if d)
    out = {}
    if not prefixes:
        return out
    me = os.getpid()
    if HAVE_PROC:
        for pid in _all_pids():
            if pid == me:
                continue
            for fd, target in _fd_targets(pid).items():
                if target.startswith(prefixes) and (not writing or _writable(pid, fd)):
                    out.setdefault(target, set()).add(pid)
        return out
    for p in psutil.process_iter():
        try:
            if p.pid == me:
                continue
            for f in p.open_files():
                if f.path.startswith(prefixes) and (not writing
                                                    or getattr(f, "mode", "w") != "r"):
                    out.setdefault(f.path, set()).add(p.pid)
        except PSUTIL_ERRORS:
            continue
    return out


class Proc:
    """One classified process, kept across scans."""
    __slots__ = ("pid", "start", "info", "argv", "started_at", "log_file", "tail",
                 "log_tried")

    def __init__(self, pid, start, info, argv, started_at):
        self.pid, self.start, self.info, self.argv = pid, start, info, argv
        self.started_at = started_at
        self.log_file = None
        self.tail = None
        self.log_tried = 0.0


class ProcScanner:
    """Keeps classification and log tails across scans (one per agent)."""

    def __init__(self):
        self.known = {}        # pid -> (start ticks, Proc, or the argv of one "not ours")
        self.boot = psutil.boot_time()

    def _pids(self):
        return _all_pids() if HAVE_PROC else psutil.pids()

    def scan(self):
        """Return (jobs, rsyncs): job dicts for every plot job on the machine
        and Proc objects for rsync processes."""
        now = time.time()
        live = set(self._pids())
        for pid in list(self.known):
            if pid not in live:
                del self.known[pid]
        jobs, rsyncs, found = [], [], []
        for pid in live:
            st = _read_stat(pid) if HAVE_PROC else None
            if st is None and HAVE_PROC:
                continue
            start = st[3] if st else None
            known = self.known.get(pid)
            if known is None or known[0] != start:   # new pid, or reused by a new process
                known = self.known[pid] = (start, self._classify(pid, start))
            elif not isinstance(known[1], Proc):
                # not a job when last seen: has it exec'd since (a job's
                # fork, caught before its exec, has its parent's argv)?
                argv = _cmdline(pid) if HAVE_PROC else _ps_cmdline(pid)
                if argv is not None and argv != known[1]:
                    known = self.known[pid] = (start, self._classify(pid, start, argv))
            entry = known[1]
            if not isinstance(entry, Proc):
                continue
            if entry.info == "rsync":
                if st is None or st[0] not in ("Z", "X"):   # a dead rsync writes nothing
                    rsyncs.append(entry)
                continue
            found.append((entry, st))
        # `chia plotters bladebit|madmax` and the binary it runs are one job:
        # the child (the plotter, what suspend and kill must reach) with the
        # parent's start and log (the child's stdout is a pipe to it)
        wrappers = {e.pid: e for e, _ in found if e.info.get("wrapper")}
        parent_of = {}
        for e, st in found:
            if wrappers and not e.info.get("wrapper"):
                ppid = st[1] if st is not None else _ppid(e.pid)
                if ppid in wrappers:
                    parent_of[e.pid] = wrappers[ppid]
        joined = {w.pid for w in parent_of.values()}
        for entry, st in found:
            if entry.pid in joined:
                continue
            job = self._job(entry, st, now, parent_of.get(entry.pid))
            if job is not None:
                jobs.append(job)
        return jobs, rsyncs

    def _classify(self, pid, start, argv=None):
        """A Proc for a job or an rsync, else the argv it was judged by
        (None when unreadable: judged again on the next scan)."""
        if argv is None:
            argv = _cmdline(pid) if HAVE_PROC else None
        if argv is None:
            argv = _ps_cmdline(pid)
        if argv is None:
            return None
        try:
            info = classify(argv)
        except Exception:  # garbage argv must never break a snapshot
            info = None
        if info is None:
            return argv
        started = self.boot + start / CLK_TCK if start is not None else _create_time(pid)
        return Proc(pid, start, info, argv, started)

    def _job(self, p, st, now, wrapper=None):
        """The job dict of process `p`; with `wrapper` (its `chia plotters`
        parent) the job's start and log are the parent's."""
        if st is None:
            try:
                ps = psutil.Process(p.pid)
                with ps.oneshot():
                    status = ps.status()
                    cpu = sum(ps.cpu_times()[:2])
                    rss = ps.memory_info().rss
                state = "suspended" if status == psutil.STATUS_STOPPED else "running"
            except PSUTIL_ERRORS:
                return None
        else:
            if st[0] == "Z" or st[0] == "X":
                return None
            state = "suspended" if st[0] in ("T", "t") else "running"
            cpu, rss = st[2], st[4]
        src = wrapper or p          # whose log and start the job has
        if src.log_file is None and now - src.log_tried > 30:
            src.log_tried = now
            src.log_file = _stdout_log(src.pid)
            if src.log_file:
                src.tail = LogTail(src.log_file, p.info["plotter"])
        i = dict(wrapper.info, **p.info) if wrapper is not None else p.info
        phase, plot_id, k, idle = None, i.get("plot_id"), i["k"], None
        level = (i.get("compress") or 0, i.get("compress_format"))
        done = 0
        if src.tail is not None:
            src.tail.poll()
            done = src.tail.plots_done
            # unknown (None) until the log has a line, as DESIGN "Progress" says
            phase = src.tail.phase if src.tail.state.lines else None
            plot_id = src.tail.plot_id or plot_id
            k = src.tail.k or k
            if not level[0] and src.tail.state.compress:
                level = (src.tail.state.compress, src.tail.state.compress_format)
            if src.tail.last_growth_time is not None:
                idle = max(0.0, now - src.tail.last_growth_time)
        return {
            "plot_id": plot_id, "plotter": i["plotter"], "k": k, "pid": p.pid,
            "phase": list(phase) if phase is not None else None, "state": state,
            "tmp_dir": i.get("tmp_dir"), "tmp2_dir": i.get("tmp2_dir"),
            "dst_dir": i.get("dst_dir") or (i.get("tmp_dir") if i["plotter"] == "madmax" else None),
            "log_file": src.log_file, "elapsed_s": max(0.0, now - src.started_at),
            "started_at": src.started_at, "tmp_bytes": 0, "rss_bytes": rss,
            "cpu_s": cpu, "log_idle_s": idle, "stalled": False,
            "compress": level[0], "compress_format": level[1],
            "wrapper_pid": wrapper.pid if wrapper is not None else None,
            "count": plot_count(i.get("num")), "plots_done": done,
            "log_complete": src.tail.complete if src.tail is not None else True,
            "device": _int_or_none(i.get("device")),
        }


def _int_or_none(v):
    try:
        return int(v) if v is not None else None
    except ValueError:
        return None


def plot_count(num):
    """Plots a job was asked for from its -n: 0 for without end (madmax's and
    Gigahorse's -1 or 0; chiapos's 0), 1 when not given."""
    try:
        n = int(num) if num is not None else 1
    except ValueError:
        return 1
    return max(n, 0)


def _create_time(pid):
    try:
        return psutil.Process(pid).create_time()
    except PSUTIL_ERRORS:
        return time.time()


def open_paths(pid):
    """Paths a process has open (for 'is an rsync writing this file')."""
    if HAVE_PROC and os.path.isdir("%s/%d/fd" % (PROC, pid)):
        return set(_fd_targets(pid).values())
    try:
        return {f.path for f in psutil.Process(pid).open_files()}
    except PSUTIL_ERRORS:
        return set()


def _ppid(pid):
    st = _read_stat(pid) if HAVE_PROC else None
    if st is not None:
        return st[1]
    try:
        return psutil.Process(pid).ppid()
    except PSUTIL_ERRORS:
        return None


def _cwd(pid):
    """Real working dir of a process, or None when it cannot be read."""
    try:
        return os.path.realpath(os.readlink("%s/%d/cwd" % (PROC, pid)))
    except OSError:
        try:
            return os.path.realpath(psutil.Process(pid).cwd())
        except PSUTIL_ERRORS:
            return None


def _alive(pid):
    """Running, not ended and not a zombie (which holds no file)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.AccessDenied:
        return True         # there, and maybe writing: not ours to rule out
    except PSUTIL_ERRORS:
        return False


def rsync_targets(rsyncs):
    """(paths rsync processes name or hold open, dirs an idle receiving
    server may be about to write into; None among them: one whose dir is
    unknown).

    A receiving `rsync --server` is two processes, generator and receiver
    (parent and child), both working in the destination dir.  Over ssh with
    --protect-args their argv does not name the file, and the receiver opens
    it only after checking what is there, so a server pair holding no partial
    open may be about to write a fresh partial in its working dir.  The
    generator never holds the file: only the pair as a whole is idle or not,
    else any transfer in progress would make every fresh partial on the
    machine look received into."""
    paths, servers = set(), {}
    for r in rsyncs:
        opened = open_paths(r.pid)
        paths |= opened
        paths.update(r.argv)
        if "--server" in r.argv and "--sender" not in r.argv:
            servers[r.pid] = opened
    pairs = {}
    for pid, opened in servers.items():
        cwd = _cwd(pid)
        if cwd is None and not _alive(pid):
            # ended while we looked (another copy finishing on this harvester):
            # it receives nothing now, and an unknown dir would hold every
            # fresh partial here as maybe received
            continue
        ppid = _ppid(pid)
        pair = pairs.setdefault(ppid if ppid in servers else pid, [False, set()])
        pair[0] = pair[0] or any(p.endswith(PARTIAL_SUFFIX) for p in opened)
        pair[1].add(cwd)
    idle_dirs = set()
    for writing, dirs in pairs.values():
        if not writing:
            idle_dirs |= dirs
    return paths, idle_dirs


def maybe_receiving(path, named, idle_dirs, fresh):
    """Is an rsync writing `path` (a resolved partial path), or about to?"""
    if path in named:
        return True
    return fresh and (None in idle_dirs or os.path.dirname(path) in idle_dirs)


def runner_alive(pid, started_at) -> bool:
    """A detached runner (transfer, check) recorded with its pid and start
    time is still at work: a reused pid belongs to a process younger than
    the record."""
    if not pid:
        return False
    try:
        p = psutil.Process(pid)
        return p.status() != psutil.STATUS_ZOMBIE and p.create_time() <= started_at + 5
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
