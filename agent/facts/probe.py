"""Can each configured dir take files?  Found without hanging on a dead mount.

A dir whose drive died (an NFS server gone, a FUSE daemon stopped) blocks
whoever calls stat() or readdir() on it, in the kernel, with no timeout.  So
each dir is probed in a thread of its own and given `timeout` seconds; a dir
that does not answer is "not responding", and disks.UNRESPONSIVE keeps the
rest of the agent (scans, realpath, ops) away from it.  A thread stuck in
the kernel cannot be cancelled: while the previous probe of a dir is still
stuck, no new one is started (they would pile up), the dir simply stays not
responding, and it comes back once that probe returns.
"""
import os
import stat as stat_mod
import threading
import time

from ..vocab.wire import DirError
from . import disks


def probe_one(path):
    """Everything the snapshot needs to know about one dir (expanded path),
    touching the file system only here: {"real", "st_dev", "total_bytes",
    "free_bytes", "error_code", "error"} (error None when usable)."""
    out = {"real": path, "st_dev": None, "total_bytes": 0, "free_bytes": 0,
           "error_code": None, "error": None}
    try:
        real = os.path.realpath(path)
        out["real"] = real
        st = os.stat(real)
        if not stat_mod.S_ISDIR(st.st_mode):
            return dict(out, error_code=DirError.NOT_DIR, error="not a directory")
        out["st_dev"] = st.st_dev
        vfs = os.statvfs(real)
        out["total_bytes"] = vfs.f_blocks * vfs.f_frsize
        out["free_bytes"] = vfs.f_bavail * vfs.f_frsize
        with os.scandir(real) as it:        # a dead mount may answer stat, not readdir
            next(it, None)
    except FileNotFoundError:
        return dict(out, error_code=DirError.MISSING, error="missing")
    except NotADirectoryError:
        return dict(out, error_code=DirError.NOT_DIR, error="not a directory")
    except OSError as e:
        return dict(out, error_code=DirError.UNREADABLE, error="unreadable: %s" % (e.strerror or e))
    if vfs.f_flag & os.ST_RDONLY:
        return dict(out, error_code=DirError.READ_ONLY, error="read-only file system")
    if not os.access(real, os.W_OK | os.X_OK):
        return dict(out, error_code=DirError.NOT_WRITABLE, error="not writable by %s" % _user())
    return out


def _user():
    try:
        import pwd
        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return "uid %d" % os.geteuid()


class Prober:
    """Probes dirs in parallel, each within the timeout; remembers the ones
    whose probe is still stuck."""

    def __init__(self):
        self._stuck = {}            # path -> (thread, since): a probe not back yet
        self._lock = threading.Lock()

    def probe(self, paths, timeout):
        """{path: info} for every path; a dir that did not answer within
        `timeout` gets error_code "not_responding"."""
        paths = list(dict.fromkeys(paths))
        results, threads = {}, []
        now = time.time()
        for p in paths:
            with self._lock:
                stuck = self._stuck.get(p)
            if stuck is not None and stuck[0].is_alive():
                continue
            t = threading.Thread(target=self._run, args=(p, results), daemon=True,
                                 name="probe " + p)
            t.start()
            threads.append((p, t))
        end = time.monotonic() + timeout
        for p, t in threads:
            t.join(max(0.0, end - time.monotonic()))
            if t.is_alive():
                with self._lock:
                    self._stuck[p] = (t, now)
        out = {}
        for p in paths:
            info = results.get(p)
            if info is None:
                with self._lock:
                    since = self._stuck.get(p, (None, now))[1]
                info = {"real": p, "st_dev": None, "total_bytes": 0, "free_bytes": 0,
                        "error_code": DirError.NOT_RESPONDING,
                        "error": "not responding (no answer for %.0fs)" % max(
                            timeout, time.time() - since)}
            out[p] = info
        disks.set_unresponsive(p for p, i in out.items()
                               if i["error_code"] == DirError.NOT_RESPONDING)
        return out

    def _run(self, path, results):
        info = probe_one(path)
        results[path] = info
        with self._lock:
            self._stuck.pop(path, None)
