"""`python -m agent plot-pos2`: PoS2 plots through chia_rs (CHIP-48).

chia_rs >= 0.53 writes a plot group of one (`create_v2_single_plot_group`)
under the name it is given while it writes it (at k24 the file grows in
place for a minute), and reports no progress.  So this launcher has it write
a temporary name in tmp_dir, fsyncs it, and only then puts it under its
final name in dst (a rename, or a copy to a temporary name there, fsync,
rename, when tmp and dst are two drives), the dir fsynced after: nothing
but a whole plot ever carries a `.plot2` name.  It logs what it knows: the
start, the plot's name (its id), the end and the file's size
(agent/vocab/plotters/pos2.py has the lines).

The group id and memo are random bytes, not real keys (those need chia's
BLS code): plots made here are for demos and tests, not farming.
"""
import argparse
import os
import shutil
import sys
import time

from ..vocab.plotters import pos2
from .chiapos import wait_for_room

TMP_SUFFIX = ".tmp"


def parse(argv):
    # its flags are the spec's (agent/vocab/plotters/pos2.py), spelt once
    f = pos2.SPEC.flag
    p = argparse.ArgumentParser(prog="plot-pos2")
    p.add_argument(f("k"), dest="k", type=int, default=28)
    p.add_argument(f("strength"), dest="strength", type=int, default=2)
    p.add_argument(f("tmp_dir"), dest="tmp", required=True)
    p.add_argument(f("dst_dir"), dest="dst", required=True)
    p.add_argument(f("plot_id"), dest="plot_id")
    p.add_argument(f("num"), dest="count", type=int, default=1)      # 0: without end
    return p.parse_args(argv)


def chia_rs_module():
    """chia_rs, if it can make PoS2 plot groups; else ValueError naming what
    is installed."""
    try:
        import chia_rs
    except ImportError:
        raise ValueError("chia_rs is not installed for %s; plotter pos2 needs chia_rs >= %d.%d"
                         % (sys.executable, *pos2.MIN_CHIA_RS)) from None
    version = _version()
    if not hasattr(chia_rs, "create_v2_single_plot_group") or _older(version):
        raise ValueError("chia_rs %s is installed; plotter pos2 needs chia_rs >= %d.%d "
                         "(create_v2_single_plot_group)" % (version or "?", *pos2.MIN_CHIA_RS))
    return chia_rs, version


def _version():
    try:
        from importlib.metadata import version
        return version("chia_rs")
    except Exception:
        return None


def _older(version):
    try:
        parts = tuple(int(x) for x in version.split(".")[:2])
    except (AttributeError, ValueError):
        return False
    return parts < pos2.MIN_CHIA_RS


def _fsync(path):
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if os.path.isdir(path)
                 else os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(made, final):
    """Put the finished file `made` under its `final` name, durably."""
    _fsync(made)
    dst = os.path.dirname(final)
    try:
        os.rename(made, final)
    except OSError:             # another drive: copy to a temp name there first
        staged = final + TMP_SUFFIX
        shutil.copyfile(made, staged)
        _fsync(staged)
        os.rename(staged, final)
        os.remove(made)
    _fsync(dst)


def plot_one(chia_rs, k, strength, tmp, dst, group_id):
    name = "plot-k%d-%s.plot2" % (k, group_id.hex())
    made = os.path.join(tmp, name + TMP_SUFFIX)
    final = os.path.join(dst, name)
    if os.path.lexists(final):
        raise ValueError("%s already exists" % final)
    print("%s%s" % (pos2.PLOTTING, name), flush=True)
    t = time.time()
    try:
        chia_rs.create_v2_single_plot_group(made, k, strength, group_id, 0, 0, os.urandom(112))
        publish(made, final)
    except BaseException:
        try:
            os.remove(made)     # a torn temp file is no plot: never leave it behind
        except OSError:
            pass
        raise
    size = os.path.getsize(final)
    print("%s%s: %d bytes in %.1f s" % (pos2.WROTE, name, size, time.time() - t), flush=True)
    return size


def main(argv):
    a = parse(argv)
    try:
        why = pos2.problem(a.k, a.strength)
        if why:
            raise ValueError("%s %s" % why)
        if a.count < 0:
            raise ValueError("-n must be 0 (without end) or more")
        if a.plot_id and a.count != 1:
            raise ValueError("--id names one plot: it needs -n 1")
        chia_rs, version = chia_rs_module()
        tmp, dst = os.path.expanduser(a.tmp), os.path.expanduser(a.dst)
        print("%s %s, k %d, strength %d, %s plot(s) into %s" % (
            pos2.START, version, a.k, a.strength, a.count or "endless", dst), flush=True)
        group_id = bytes.fromhex(a.plot_id) if a.plot_id else os.urandom(32)
        made, last = 0, 0
        while a.count == 0 or made < a.count:
            if made:
                group_id = os.urandom(32)
                wait_for_room(dst, last)
            last = plot_one(chia_rs, a.k, a.strength, tmp, dst, group_id)
            made += 1
    except Exception as e:  # one line in the log, not a traceback
        why = (str(e).splitlines() or [type(e).__name__])[0]
        print("plot-pos2: error: %s" % why, file=sys.stderr, flush=True)
        return 1
    return 0
