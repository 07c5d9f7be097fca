"""`python -m agent plot-chiapos`: plots through chiapos, Chia's own plotter.

`-n N` makes N plots one after another (0: without end), as `chia plots
create -n` does: each with its own id, so each plot's section of the log
starts with its own "ID:" line and ends with "Renamed final file" (the
markers every chia-format log has; agent/facts/logparse.py counts them).
Before each plot after the first, it waits while the dst dir has less room
than the last plot took (printing WAIT_MARK once): nothing is ever written
into a full disk, even between two polls of the agent, which suspends such
a job (agent/ops/room.py) until room frees up.

The memo holds 128 random bytes, not real farmer/pool keys (those need
chia's BLS code): plots made here are for demos and tests, not farming.
chiapos prints its log through C++ stdout, so fd 1 must be the job's log
(start_job makes it so).
"""
import argparse
import os
import sys
import time

from ..vocab.plotters.chiapos import MIN_BUCKETS, MIN_STRIPE, SPEC, max_buckets, stripe_for


def plot_filename(k, plot_id_hex, now=None):
    t = time.localtime(now)
    return "plot-k%d-%s-%s.plot" % (k, time.strftime("%Y-%m-%d-%H-%M", t), plot_id_hex)


def parse(argv):
    # its flags are the spec's (agent/vocab/plotters/chiapos.py), spelt once
    f = SPEC.flag
    p = argparse.ArgumentParser(prog="plot-chiapos")
    p.add_argument(f("k"), dest="k", type=int, default=32)
    p.add_argument(f("tmp_dir"), dest="tmp", required=True)
    p.add_argument(f("tmp2_dir"), dest="tmp2")
    p.add_argument(f("dst_dir"), dest="dst", required=True)
    p.add_argument(f("buffer"), dest="buffer", type=int, default=3389)
    p.add_argument(f("buckets"), dest="buckets", type=int, default=None)   # the most k allows
    p.add_argument(f("threads"), dest="threads", type=int, default=2)
    p.add_argument(f("stripe"), dest="stripe", type=int, default=None)
    p.add_argument(f("plot_id"), dest="plot_id")
    p.add_argument(f("num"), dest="count", type=int, default=1)      # 0: without end
    return p.parse_args(argv)


WAIT_MARK = "plot-chiapos: waiting for room in"
WAIT_POLL_S = 0.5


def wait_for_room(dst, need):
    """Block while dst has less than `need` bytes free (said once in the log)."""
    said = False
    while True:
        try:
            st = os.statvfs(dst)
            free = st.f_bavail * st.f_frsize
        except OSError:
            return          # the plot itself will say what is wrong with dst
        if free >= need:
            return
        if not said:
            print("%s %s: %d bytes free, a plot takes %d" % (WAIT_MARK, dst, free, need),
                  flush=True)
            said = True
        time.sleep(WAIT_POLL_S)


def main(argv):
    a = parse(argv)
    try:
        if a.count < 0:
            raise ValueError("-n must be 0 (without end) or more")
        if a.plot_id and a.count != 1:
            raise ValueError("--id names one plot: it needs -n 1")
        plot_id = bytes.fromhex(a.plot_id) if a.plot_id else os.urandom(32)
        if len(plot_id) != 32:
            raise ValueError("--id must be 64 hex digits")
        from chiapos import DiskPlotter
        buckets = a.buckets or max_buckets(a.k) or MIN_BUCKETS
        stripe = a.stripe or stripe_for(a.k, buckets) or MIN_STRIPE
        dst = os.path.expanduser(a.dst)
        made, last_size = 0, 0
        while a.count == 0 or made < a.count:
            if made:
                plot_id = os.urandom(32)
                wait_for_room(dst, last_size)
            name = plot_filename(a.k, plot_id.hex())
            sys.stdout.flush()
            DiskPlotter().create_plot_disk(
                os.path.expanduser(a.tmp), os.path.expanduser(a.tmp2 or a.tmp),
                dst, name, a.k, os.urandom(128), plot_id,
                a.buffer, buckets, stripe, a.threads, False)
            made += 1
            try:
                last_size = os.path.getsize(os.path.join(dst, name))
            except OSError:
                pass        # already moved on (archived): the last size stands
    except Exception as e:  # one line in the log, not a traceback
        sys.stdout.flush()
        why = (str(e).splitlines() or [type(e).__name__])[0]
        # chiapos printed its own error ("Caught plotting error: ..."); the
        # exception that follows only says "std::exception": leave it last
        if why != "std::exception":
            print("plot-chiapos: error: %s" % why, file=sys.stderr, flush=True)
        return 1
    return 0
