"""Old plots for the replot tests: real chiapos k=18 plots (tests/sshhosts.py)
under names dated in the past, the way a farm of old plots looks."""
import os
import re
import shutil
from pathlib import Path

DATED = re.compile(r"^(plot-k\d+-)(\d{4}-\d\d-\d\d-\d\d-\d\d)(-[0-9a-f]{64}\.plot)$")
OLD_DATE = "2023-03-04-05-06"
RULES = [{"made_before": "2024-01-01"}]


def old_name(name: str, when: str = OLD_DATE) -> str:
    m = DATED.match(name)
    assert m, name
    return m.group(1) + when + m.group(3)


def give_old_plots(k18_plots, dest, n, first=0):
    """`n` distinct real plots (from the session's cache, skipping `first`)
    into `dest`, each named as made on OLD_DATE; their paths."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for p in k18_plots.get(first + n)[first:]:
        target = dest / old_name(p.name)
        shutil.copyfile(p, target)
        out.append(target)
    return out


def final_plots(dirs):
    """Final *.plot files in `dirs` (names), as a farmer's harvester counts them."""
    out = []
    for d in dirs:
        try:
            out += [n for n in os.listdir(d) if n.endswith(".plot")]
        except OSError:
            pass
    return out


def reset_replot_records():
    """The tests reuse the session's cached plots (their ids too) and share
    one HOME: each starts with no ledger, claims or stopped drives."""
    state = Path(os.environ["HOME"], ".plotfleet")
    for name in ("replot-ledger.json", "replot-stopped.json", "drive-claims.json",
                 "replot-bindings.json"):
        try:
            (state / name).unlink()
        except FileNotFoundError:
            pass
