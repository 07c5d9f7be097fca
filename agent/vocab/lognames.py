"""Job log names: `<local start time>_<plotter>.log`, so names sort by start.

The newest name also tells when this host last started a job, even one that
has already finished (a k=18 job lasts a second; global_stagger_m must still
space starts).
"""
import os
import re
import time

_NAME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d_\d\d_\d\d)\.(\d{6})_[\w.-]+\.log$")
from .plotters import PLOTTERS


def new_log_name(plotter, now=None, device=None):
    """`<local start>.<us>_<plotter>.log`; a job pinned to a GPU:
    `..._gpu<N>_<plotter>.log`, so its failures count against that GPU."""
    now = time.time() if now is None else now
    stamp = time.strftime("%Y-%m-%dT%H_%M_%S", time.localtime(now))
    gpu = "gpu%d_" % device if device is not None else ""
    return "%s.%06d_%s%s.log" % (stamp, int((now % 1) * 1e6), gpu, plotter)


_GPU = re.compile(r"_gpu(\d+)_[A-Za-z0-9]+\.log$")


def device_of(name):
    """The GPU a job log's name says its job was pinned to, else None."""
    m = _GPU.search(os.path.basename(name or ""))
    return int(m.group(1)) if m else None


def started_at(name):
    """Epoch seconds a log name says its job started, or None for other names."""
    m = _NAME.match(name)
    if not m:
        return None
    try:
        return time.mktime(time.strptime(m.group(1), "%Y-%m-%dT%H_%M_%S")) + int(m.group(2)) / 1e6
    except ValueError:
        return None


def plotter_of(name):
    """The plotter a log's name (`..._<plotter>.log`) says wrote it, else None.

    chiapos logs read like chia's and a job that failed at once may have
    printed no line a plotter is known by: the name tells whose log it is."""
    stem = os.path.basename(name).rsplit(".", 1)[0]
    for p in PLOTTERS:
        if stem.endswith("_" + p):
            return p
    return None


def latest_start(names):
    """When the newest of these job log names was started (0.0 if none)."""
    return max((t for t in map(started_at, names) if t is not None), default=0.0)


def newest_start(log_dir):
    """When the newest job log in log_dir was started (0.0 if none)."""
    try:
        return latest_start(os.listdir(log_dir))
    except OSError:
        return 0.0
