"""pos2: the new proof of space (CHIP-48), plotted through chia_rs by the
agent's own launcher (`python -m agent plot-pos2`, agent/launch/pos2.py),
the way chiapos is.  Needs chia_rs >= 0.53 on the host
(`create_v2_single_plot_group`; 0.53 cannot read what 0.48's create_v2_plot made).

Limits, found by running chia_rs 0.53's create_v2_single_plot_group (it
refuses the others with "failed to create plot file"): k even, 18 to 32
(28 on mainnet); strength 2 to k-3 (k18: 16 and 17 fail).  Time doubles with
each step of strength.

The launcher's log (chia_rs prints nothing while it plots):
  plot-pos2: chia_rs 0.53.0, k 18, strength 2, 1 plot(s) into /dst
  plot-pos2: plotting plot-k18-<id>.plot2 (plot 1 of 1)
  plot-pos2: wrote plot-k18-<id>.plot2: 655422 bytes in 0.6 s
"""
import re

from .base import PlotterSpec, _fixed

FLAGS = {"-k": "k", "-s": "strength", "-t": "tmp_dir", "-d": "dst_dir", "-n": "num",
         "--id": "plot_id"}
MIN_CHIA_RS = (0, 53)
K_MIN, K_MAX = 18, 32


def strength_range(k):
    """(least, most) strength chia_rs plots k with."""
    return 2, k - 3


def problem(k, strength):
    """(key, why) when chia_rs cannot plot this k and strength, else None."""
    if k % 2 or not K_MIN <= k <= K_MAX:
        return "k", "must be even, %d to %d, for PoS2 plots, got %s" % (K_MIN, K_MAX, k)
    lo, hi = strength_range(k)
    if not lo <= strength <= hi:
        return "strength", "must be %d to %d at k%d, got %s" % (lo, hi, k, strength)
    return None


START, PLOTTING, WROTE = "plot-pos2: chia_rs", "plot-pos2: plotting ", "plot-pos2: wrote "
RULES = (
    (START, None, _fixed((0, 1))),
    (PLOTTING, None, _fixed((1, 0))),
    (WROTE, None, _fixed((5, 2))),
)

SPEC = PlotterSpec(
    "pos2", (K_MIN, K_MAX, "PoS2 plots have an even k from 18 to 32 (28 on mainnet)"), None,
    options=frozenset({"strength"}), flags=FLAGS, signatures=(START,), rules=RULES,
    finished=(WROTE,), reader="pos2", formats=("pos2",))
WROTE_SIZE = re.compile(r"wrote (\S+): (\d+) bytes")
