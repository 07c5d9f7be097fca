"""`python -m agent plot-chiapos`: one plot through chiapos, Chia's own plotter.

The memo holds 128 random bytes, not real farmer/pool keys (those need
chia's BLS code): plots made here are for demos and tests, not farming.
chiapos prints its log through C++ stdout, so fd 1 must be the job's log
(start_job makes it so).
"""
import argparse
import os
import sys
import time


def plot_filename(k, plot_id_hex, now=None):
    t = time.localtime(now)
    return "plot-k%d-%s-%s.plot" % (k, time.strftime("%Y-%m-%d-%H-%M", t), plot_id_hex)


def parse(argv):
    p = argparse.ArgumentParser(prog="plot-chiapos")
    p.add_argument("-k", type=int, default=32)
    p.add_argument("-t", dest="tmp", required=True)
    p.add_argument("-2", dest="tmp2")
    p.add_argument("-d", dest="dst", required=True)
    p.add_argument("-b", dest="buffer", type=int, default=3389)
    p.add_argument("-u", dest="buckets", type=int, default=128)
    p.add_argument("-r", dest="threads", type=int, default=2)
    p.add_argument("--stripe", type=int, default=None)
    p.add_argument("--id", dest="plot_id")
    return p.parse_args(argv)


def main(argv):
    a = parse(argv)
    try:
        plot_id = bytes.fromhex(a.plot_id) if a.plot_id else os.urandom(32)
        if len(plot_id) != 32:
            raise ValueError("--id must be 64 hex digits")
        from chiapos import DiskPlotter
        stripe = a.stripe or (65536 if a.k >= 26 else 2000)   # 8192+ fails at small k
        name = plot_filename(a.k, plot_id.hex())
        sys.stdout.flush()
        DiskPlotter().create_plot_disk(
            os.path.expanduser(a.tmp), os.path.expanduser(a.tmp2 or a.tmp),
            os.path.expanduser(a.dst), name, a.k, os.urandom(128), plot_id,
            a.buffer, a.buckets, stripe, a.threads, False)
    except Exception as e:  # one line in the log, not a traceback
        sys.stdout.flush()
        print("plot-chiapos: error: %s" % (str(e).splitlines() or [type(e).__name__])[0],
              file=sys.stderr, flush=True)
        return 1
    return 0
