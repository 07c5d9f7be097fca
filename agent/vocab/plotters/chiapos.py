"""chiapos: Chia's plotting library driven by the agent's own launcher
(`python -m agent plot-chiapos`, agent/launch/chiapos.py), small k allowed.
Its log reads like `chia plots create`'s."""
from .base import PlotterSpec
from . import chia

FLAGS = {
    "-k": "k", "-t": "tmp_dir", "-2": "tmp2_dir", "-d": "dst_dir", "-r": "threads",
    "-u": "buckets", "-b": "buffer", "--stripe": "stripe", "--id": "plot_id", "-n": "num",
}

# chiapos's own limits (pos_constants.hpp) and the defaults of `chia plots create`
MIN_BUCKETS, MAX_BUCKETS = 16, 128
MAX_STRIPE = 65536
K_BC_SLACK = 10 * (15113 >> 6)      # 10 * kBC / 2^kExtraBits entries kept across buckets
MIN_STRIPE = 1700                   # below ~1000 chiapos loses matches ("Matches do not match")


def _pow2(n):
    p = 1
    while p < n:
        p *= 2
    return p


def stripe_for(k, buckets):
    """The stripe chiapos can plot k with, at this many buckets (0: none).

    Two checks in chiapos bound it: "Stripe size too large" (a bucket's share
    of the biggest table must hold 30 stripes) and "Triggering bucket too
    early" (a bucket must hold more entries than the stripe plus the slack
    carried from the previous bucket; half, for margin).  At k >= 26 it is
    chia's 65536."""
    buckets = _pow2(max(int(buckets), 1))
    entries = (1 << k) // buckets
    entry_bytes = (6 * k + 17 + 7) // 8          # the widest phase-1 entry, tables 3-4
    too_large = int(1.3 * (1 << k) * entry_bytes / buckets / 30)
    early = entries // 2 - K_BC_SLACK
    stripe = min(MAX_STRIPE, too_large, early)
    return stripe if stripe >= MIN_STRIPE else 0


def max_buckets(k):
    """Most buckets chiapos can plot k with (chia's 128 from k 20 on), else 0."""
    b = MAX_BUCKETS
    while b >= MIN_BUCKETS:
        if stripe_for(k, b):
            return b
        b //= 2
    return 0


# chiapos at small k takes fewer buckets (max_buckets)
SPEC = PlotterSpec(
    "chiapos", (18, None, "chiapos needs k >= 18"),
    (MIN_BUCKETS, MAX_BUCKETS, "chiapos takes 16 to 128 buckets"),
    flags=FLAGS, signatures=(), rules=chia.RULES, finished=chia.FINISHED, reader="chia")
