"""Archiving end to end: real sshd plotters and harvesters, real rsync over
ssh, real chiapos k=18 plots, harvester drives that are real separate
filesystems (tmpfs mounts), driven through the real `plotfleet` command.

Every test ends with the same proof: each plot exists exactly once under a
*.plot name (on its plotter or on a farm drive), byte-identical to the plot
that was made and readable by chiapos' DiskProver, and no harvester holds a
partial under a *.plot name.
"""
import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.cli import REPO, plotfleet

MiB = 1 << 20
PLOT_ID = re.compile(r"-([0-9a-f]{64})\.plot$")
PARTIAL = ".plotfleet-tmp"


# --- harvester drives ----------------------------------------------------------

class Tmpfs:
    """Separate small filesystems (one device each), unmounted at close."""

    def __init__(self):
        self.mounted = []

    def mount(self, path, size):
        os.makedirs(path, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       check=True)
        self.mounted.append(str(path))

    def close(self):
        for p in reversed(self.mounted):
            subprocess.run(["umount", "-l", p], check=False)
        self.mounted.clear()


@pytest.fixture
def tmpfs():
    t = Tmpfs()
    yield t
    t.close()


def mount_farms(fleet, tmpfs, size="64m", sizes=None):
    """Every harvester's farm dirs become drives of their own (tmpfs)."""
    for name, h in fleet.hosts.items():
        if h.role == "harvester":
            for d in h.dirs["farm"]:
                tmpfs.mount(d, (sizes or {}).get(d, size))


def farm_drives(fleet):
    return [d for h in fleet.hosts.values() if h.role == "harvester" for d in h.dirs["farm"]]


# --- plots -----------------------------------------------------------------------

class Plots:
    """Distinct real plots given to plotters, and what each must stay."""

    def __init__(self):
        self.digest = {}     # plot id -> sha256 of the plot as made
        self.size = {}       # plot id -> bytes
        self.origin = {}     # plot id -> plotter name

    @property
    def ids(self):
        return set(self.digest)


def give_plots(fleet, k18_plots, per_plotter, plots=None):
    """`per_plotter` distinct cached k=18 plots into each plotter's dst dir."""
    plots = plots or Plots()
    plotters = [h for h in fleet.hosts.values() if h.role == "plotter"]
    have = len(plots.digest)
    made = k18_plots.get(have + per_plotter * len(plotters))[have:]
    for i, src in enumerate(made):
        h = plotters[i // per_plotter]
        data = src.read_bytes()
        Path(h.dirs["dst"][0], src.name).write_bytes(data)
        pid = PLOT_ID.search(src.name).group(1)
        plots.digest[pid] = hashlib.sha256(data).hexdigest()
        plots.size[pid] = len(data)
        plots.origin[pid] = h.name
    return plots


def where(fleet):
    """plot id -> [paths under a *.plot name] on every plotter dst and farm drive."""
    out = {}
    for h in fleet.hosts.values():
        for d in (h.dirs["dst"] if h.role == "plotter" else h.dirs["farm"]):
            for n in os.listdir(d):
                m = PLOT_ID.search(n)
                if n.endswith(".plot"):
                    assert m, f"a *.plot file that is no plot: {d}/{n}"
                    out.setdefault(m.group(1), []).append(os.path.join(d, n))
    return out


def partials(fleet):
    return [os.path.join(d, n) for d in farm_drives(fleet) for n in os.listdir(d)
            if n.endswith(PARTIAL)]


def assert_nothing_lost(fleet, plots):
    """Each plot once under a *.plot name, intact and provable; no strays."""
    from chiapos import DiskProver
    found = where(fleet)
    assert set(found) == plots.ids, f"plots appeared or vanished: {found}"
    for pid, paths in found.items():
        assert len(paths) == 1, f"plot {pid[:8]} exists {len(paths)} times: {paths}"
        data = Path(paths[0]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == plots.digest[pid], f"{paths[0]} differs"
        assert DiskProver(paths[0]).get_id().hex() == pid
    return found


def on_farm(fleet, plots):
    farm = set(farm_drives(fleet))
    return {pid for pid, paths in where(fleet).items()
            if pid in plots.ids and os.path.dirname(paths[0]) in farm}


def assert_all_archived(fleet, plots):
    found = assert_nothing_lost(fleet, plots)
    farm = set(farm_drives(fleet))
    for pid, paths in found.items():
        assert os.path.dirname(paths[0]) in farm, f"{pid[:8]} still at {paths[0]}"
    for h in fleet.hosts.values():
        if h.role == "plotter":
            assert not [n for n in os.listdir(h.dirs["dst"][0]) if n.endswith(".plot")]
    assert partials(fleet) == []
    return found


# --- driving plotfleet ------------------------------------------------------------

def archive_pass(inv, *extra):
    r = plotfleet("archive", "--inventory", inv, *extra, timeout=60)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def archive_until(inv, fleet, plots, want=None, timeout=40.0, pause=0.3):
    """Run `plotfleet archive` passes until `want` plot ids are on farm
    drives (default: all) with no partial left; returns every pass's output."""
    want = plots.ids if want is None else want
    outs = []
    deadline = time.monotonic() + timeout
    while True:
        r = archive_pass(inv)
        outs.append(r.stdout + r.stderr)
        if want <= on_farm(fleet, plots) and not partials(fleet):
            return outs
        assert time.monotonic() < deadline, "archiving never converged:\n" + "\n".join(outs[-3:])
        time.sleep(pause)


class DriveSampler:
    """Samples, every few ms, which partials rsync processes hold open and
    which partials exist, per drive (device)."""

    def __init__(self, drives):
        self.dev = {os.stat(d).st_dev: d for d in drives}
        self.max_open = {d: 0 for d in drives}      # most partials open at once on a drive
        self.max_files = {d: 0 for d in drives}     # most partials present at once
        self.max_parallel = 0                       # most drives receiving at once
        self.samples = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()

    def _run(self):
        while not self._stop.is_set():
            opened = {}
            for p in psutil.process_iter(["name"]):
                if p.info["name"] != "rsync":
                    continue
                try:
                    files = [f.path for f in p.open_files() if f.path.endswith(PARTIAL)]
                except psutil.Error:
                    continue
                for f in files:
                    try:
                        d = self.dev.get(os.stat(f).st_dev)
                    except OSError:
                        continue
                    if d:
                        opened.setdefault(d, set()).add(f)
            for d, fs in opened.items():
                self.max_open[d] = max(self.max_open[d], len(fs))
            for d in self.max_files:
                try:
                    n = sum(1 for x in os.listdir(d) if x.endswith(PARTIAL))
                except OSError:
                    n = 0
                self.max_files[d] = max(self.max_files[d], n)
            self.max_parallel = max(self.max_parallel, len(opened))
            self.samples += 1
            time.sleep(0.02)


def farm_fleet(ssh_fleet, tmpfs, n_plotters=2, n_harvesters=2, sizes=None, **vars):
    fleet = ssh_fleet(n_plotters=n_plotters, n_harvesters=n_harvesters, **vars)
    mount_farms(fleet, tmpfs, sizes=sizes)
    return fleet


# --- the happy path ---------------------------------------------------------------

def test_archive_moves_every_plot_in_parallel_one_transfer_per_drive(ssh_fleet, tmpfs, tmp_path,
                                                                     k18_plots):
    fleet = farm_fleet(ssh_fleet, tmpfs)
    # 6 plots, each plotter allowed 3 transfers at once: more wanted than the
    # 4 drives can take, so only the one-per-drive rule holds them back
    plots = give_plots(fleet, k18_plots, per_plotter=3)
    inv = fleet.write_inventory(tmp_path / "inv.yaml", max_transfers_per_plotter=3,
                                transfer_bwlimit_kbps=2000)
    with DriveSampler(farm_drives(fleet)) as s:
        outs = archive_until(inv, fleet, plots)
    found = assert_all_archived(fleet, plots)
    assert s.max_parallel >= 2, f"transfers never overlapped ({s.samples} samples)"
    assert max(s.max_open.values()) == 1, f"a drive received two at once: {s.max_open}"
    assert max(s.max_files.values()) == 1, f"two partials on one drive: {s.max_files}"
    # spread over every drive, and the first pass said why others waited
    assert {os.path.dirname(p[0]) for p in found.values()} == set(farm_drives(fleet))
    assert "all drives busy" in outs[0], outs[0]
