"""Replotting end to end: real sshd plotter and harvester, real rsync over
ssh, real chiapos k=18 plots, harvester drives that are tmpfs filesystems
filled to the brim with old plots (real plots named with a 2023 date).

The farm never shrinks: sampled every 0.2 s, the farm's final plots plus the
deletions whose new plot is still on its way never fall below the count
before.  The ledger never shows more deletions than arrivals justify.
"""
import json
import os
import threading
import time
from pathlib import Path

from tests.cli import plotfleet, status_json
from tests.replot_helpers import OLD_DATE, RULES, final_plots, old_name
from tests.test_archive_e2e import PARTIAL, give_plots

LEDGER = Path(os.environ["HOME"], ".plotfleet", "replot-ledger.json")
PAGE = 4096
SLACK = 64 * 1024


def ledger():
    try:
        return json.loads(LEDGER.read_text())
    except (OSError, ValueError):
        return {}


def full_farm(ssh_fleet, tmpfs, k18_plots, olds=(3, 2), first=0, **fleet_vars):
    """One plotter, one harvester whose two drives are tmpfs filesystems each
    holding `olds[i]` old plots and 64 KiB besides: no room for a new plot.
    Returns (fleet, harvester, {drive: [old plot paths]})."""
    fleet = ssh_fleet(n_plotters=1, n_harvesters=1, **fleet_vars)
    fleet.farms_mounted = True
    h = fleet.hosts["harvester1"]
    cached = k18_plots.get(first + sum(olds))[first:]
    out, i = {}, 0
    for d, n in zip(h.dirs["farm"], olds):
        mine = cached[i:i + n]
        i += n
        size = sum(-(-p.stat().st_size // PAGE) * PAGE for p in mine) + SLACK
        tmpfs.mount(d, str(size))
        out[d] = []
        for p in mine:
            target = Path(d, old_name(p.name))
            target.write_bytes(p.read_bytes())
            out[d].append(str(target))
    return fleet, h, out


def new_plots(fleet, k18_plots, n, first):
    """`n` new plots (today's names) in plotter1's dst dir, skipping the
    `first` cached plots (those are the farm's old ones)."""
    from tests.test_archive_e2e import Plots
    plots = Plots()
    plots.digest.update({f"skip{i}": "" for i in range(first)})   # give_plots skips these
    give_plots(fleet, k18_plots, n, plots)
    for i in range(first):
        del plots.digest[f"skip{i}"]
    return plots


class FarmCount:
    """Every 0.2 s: the farm's final plots, and the deletions made for new
    plots that have not arrived yet (the ledger's pending sets)."""

    def __init__(self, drives):
        self.drives = drives
        self.samples = []           # (t, final plots, deletions in flight)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()

    def _run(self):
        t0 = time.monotonic()
        while not self._stop.is_set():
            names = set(final_plots(self.drives))       # listed first, the ledger after:
            flight = sum(len(e["deletions"]) for e in ledger().values()  # a deletion is in
                         if e["plot"] not in names)     # the ledger before it happens
            self.samples.append((round(time.monotonic() - t0, 1), len(names), flight))
            self._stop.wait(0.2)

    def lowest(self):
        return min(self.samples, key=lambda s: s[1])


def events_of(stdout):
    return [e for line in stdout.splitlines() if line.startswith("{")
            for e in json.loads(line)["events"]]


def test_plot_all_replaces_just_enough_old_plots_and_the_farm_never_shrinks(
        ssh_fleet, tmpfs, tmp_path, k18_plots):
    fleet, h, olds = full_farm(ssh_fleet, tmpfs, k18_plots)
    drives = h.dirs["farm"]
    before = len(final_plots(drives))
    assert before == 5
    inv = fleet.write_inventory(tmp_path / "inv.yaml", polling_time_s=1, global_max_jobs=1,
                                global_stagger_m=0, transfer_bwlimit_kbps=2000,
                                replot=RULES)
    with FarmCount(drives) as count:
        r = plotfleet("plot-all", "--inventory", inv, "--plots", 2, "--json", timeout=240)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    names = final_plots(drives)
    new = [n for n in names if OLD_DATE not in n]
    gone = [p for ps in olds.values() for p in ps if not os.path.exists(p)]
    assert len(new) == 2, names
    # the ledger: one set per arrival, each set's deletions gone, nothing else gone
    sets = ledger()
    assert sorted(e["plot"] for e in sets.values()) == sorted(new)
    assert sorted(d["path"] for e in sets.values() for d in e["deletions"]) == sorted(gone)
    for e in sets.values():      # just enough: without its smallest deletion it falls short
        sizes = [d["size_bytes"] for d in e["deletions"]]
        assert e["space_ok"] and sum(sizes) - min(sizes) < e["need"]
    assert len(gone) >= 2 and before - len(gone) + len(new) == len(names)
    # every deletion an event naming the plot, its size, the rule and the new plot
    deleted = [e for e in events_of(r.stdout) if e["kind"] == "replot_deleted"]
    assert sorted(e["subject"] for e in deleted) == sorted(os.path.basename(p) for p in gone)
    for e in deleted:
        assert "made_before: 2024-01-01" in e["detail"] and "to make room for plot-k18-" in \
            e["detail"] and "MiB" in e["detail"]
    hist = plotfleet("history", "--inventory", inv, "--json")
    assert sum(1 for line in hist.stdout.splitlines() if '"replot_deleted"' in line) == \
        len(gone), hist.stdout[-2000:]
    # the farm never held fewer final plots than before, but for deletions in flight
    for t, finals, flight in count.samples:
        assert finals + flight >= before, (t, finals, flight, count.samples)
    t, lowest, _ = count.lowest()
    print(f"farm plot count: before {before}, lowest {lowest} at {t}s of "
          f"{count.samples[-1][0]}s, {len(count.samples)} samples; after {len(names)}; "
          f"ledger: {len(sets)} sets, {len(gone)} deletions, for {len(new)} arrivals")
    assert count.samples[-1][1] == len(names)
