"""Archiving end to end: real sshd plotters and harvesters, real rsync over
ssh, real chiapos k=18 plots, harvester drives that are real separate
filesystems (tmpfs mounts), driven through the real `plotfleet` command.

Every test ends with the same proof: each plot exists exactly once under a
*.plot name (on its plotter or on a farm drive), byte-identical to the plot
that was made and readable by chiapos' DiskProver, and no harvester holds a
partial under a *.plot name.
"""
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.cli import REPO, plotfleet, status_json
from tests.sampler import Sampler
from tests.sshhosts import prove

MiB = 1 << 20
PLOT_ID = re.compile(r"-([0-9a-f]{64})\.plot$")
PARTIAL = ".plotfleet-tmp"


# --- harvester drives ----------------------------------------------------------

def mount_farms(fleet, tmpfs, size="64m", sizes=None):
    """Every harvester's farm dirs become drives of their own (tmpfs), so the
    inventory keeps the default require_mounted_farm."""
    fleet.farms_mounted = True
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


def give_plots(fleet, k18_plots, per_plotter, plots=None, proven=True):
    """`per_plotter` distinct cached k=18 plots into each plotter's dst dir,
    their proof check already run (`proven`), as the pass before would."""
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
    if proven:
        prove([Path(h.dirs["dst"][0], src.name) for i, src in enumerate(made)
               for h in [plotters[i // per_plotter]]])
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
    """One `plotfleet archive --json` pass; .text is its action lines, one a line."""
    r = plotfleet("archive", "--inventory", inv, "--json", *extra, timeout=60)
    assert "Traceback" not in r.stderr, r.stderr
    r.text = "\n".join(json.loads(r.stdout)["actions"])
    return r


def archive_until(inv, fleet, plots, want=None, timeout=40.0, pause=0.3):
    """Run `plotfleet archive` passes until `want` plot ids are on farm
    drives (default: all) with no partial left; returns every pass's output."""
    want = plots.ids if want is None else want
    outs = []
    deadline = time.monotonic() + timeout
    while True:
        r = archive_pass(inv)
        outs.append(r.text)
        if want <= on_farm(fleet, plots) and not partials(fleet):
            return outs
        assert time.monotonic() < deadline, "archiving never converged:\n" + "\n".join(outs[-3:])
        time.sleep(pause)


class DriveSampler(Sampler):
    """Samples, every few ms, which partials rsync processes hold open and
    which partials exist, per drive (device)."""
    every = 0.02

    def __init__(self, drives):
        self.dev = {os.stat(d).st_dev: d for d in drives}
        self.max_open = {d: 0 for d in drives}      # most partials open at once on a drive
        self.max_files = {d: 0 for d in drives}     # most partials present at once
        self.seen = {d: [] for d in drives}         # per sample: [(plot name, partial size)]
        self.max_parallel = 0                       # most drives receiving at once
        self.final_sizes = {}                       # *.plot on a drive -> smallest size seen
        self.samples = 0

    def sample(self):
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
                names = os.listdir(d)
            except OSError:
                names = []
            self.max_files[d] = max(self.max_files[d],
                                    sum(1 for x in names if x.endswith(PARTIAL)))
            here = []
            for x in names:
                if x.endswith(PARTIAL):
                    try:
                        here.append((x[:-len(PARTIAL)], os.path.getsize(os.path.join(d, x))))
                    except OSError:
                        pass
            self.seen[d].append(here)
            for x in names:
                if x.endswith(".plot"):
                    try:
                        size = os.path.getsize(os.path.join(d, x))
                    except OSError:
                        continue
                    self.final_sizes[x] = min(size, self.final_sizes.get(x, size))
        self.max_parallel = max(self.max_parallel, len(opened))
        self.samples += 1

    @property
    def max_unfinished(self):
        """Most partials on a drive at once that were not yet the whole plot
        (measured against the plot as it landed there): with queues a whole
        copy may wait beside the next for its promote, but only one file on
        a drive is ever being written."""
        return {d: max((sum(1 for name, size in sample if size < self.final_sizes.get(name, 1 << 62))
                        for sample in samples), default=0)
                for d, samples in self.seen.items()}


def farm_fleet(ssh_fleet, tmpfs, n_plotters=2, n_harvesters=2, sizes=None, **vars):
    fleet = ssh_fleet(n_plotters=n_plotters, n_harvesters=n_harvesters, **vars)
    mount_farms(fleet, tmpfs, sizes=sizes)
    return fleet


# --- the happy path ---------------------------------------------------------------

def test_archive_moves_every_plot_in_parallel_one_transfer_per_drive(ssh_fleet, tmpfs, tmp_path,
                                                                     k18_plots):
    fleet = farm_fleet(ssh_fleet, tmpfs)
    # 6 plots, each plotter allowed 3 drives at once: more wanted than the
    # 4 drives can take, so only the one-writer-per-drive rule holds them
    # back: the other two join a drive's queue, all 6 handed over at once
    plots = give_plots(fleet, k18_plots, per_plotter=3)
    # slow enough (about 6 s a plot) that the status taken next sees them in
    # flight even on a loaded machine, where a cold status takes 2 s or more
    inv = fleet.write_inventory(tmp_path / "inv.yaml", max_transfers_per_plotter=3,
                                transfer_bwlimit_kbps=600)
    with DriveSampler(farm_drives(fleet)) as s:
        outs = [archive_pass(inv).text]
        # in flight, as status reports it: found from the hosts, with progress
        r, doc = status_json(inv)
        sent = [t for h in doc["hosts"] for t in h["transfers"]]
        assert len(sent) == 6 and any(t["status"] == "running" for t in sent), doc
        assert len({(t["to_host"], t["to_dir"]) for t in sent}) == 4, sent
        for t in sent:
            size = plots.size[PLOT_ID.search(t["plot"]).group(1)]
            assert t["to_host"].startswith("harvester") and t["pid"] and t["size_bytes"] == size
            assert (0 <= t["bytes_done"] < size) if t["status"] == "running" else \
                (t["bytes_done"] == 0) if t["status"] == "queued" else \
                (t["status"], t["bytes_done"]) == ("copied", size), t
        outs += archive_until(inv, fleet, plots)
    found = assert_all_archived(fleet, plots)
    # a *.plot name on a drive only ever carried a whole plot
    assert s.final_sizes == {os.path.basename(p[0]): plots.size[i] for i, p in found.items()}
    assert s.max_parallel >= 2, f"transfers never overlapped ({s.samples} samples)"
    assert max(s.max_open.values()) == 1, f"a drive received two at once: {s.max_open}"
    assert max(s.max_unfinished.values()) == 1, f"two partials growing on one drive: {s.max_unfinished}"
    # spread over every drive, and the first pass said which plots queue
    assert {os.path.dirname(p[0]) for p in found.values()} == set(farm_drives(fleet))
    assert outs[0].count("queued ahead") == 2, outs[0]


# --- faults -------------------------------------------------------------------------

def wait_for_partial(fleet, min_bytes=MiB, timeout=20.0):
    """The first partial on a harvester holding >= min_bytes: (harvester, path)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for h in fleet.hosts.values():
            if h.role != "harvester":
                continue
            for d in h.dirs["farm"]:
                for n in os.listdir(d):
                    p = os.path.join(d, n)
                    try:
                        if n.endswith(PARTIAL) and os.path.getsize(p) >= min_bytes:
                            return h.name, p
                    except OSError:
                        pass
        time.sleep(0.02)
    raise AssertionError("no transfer got going")


def rsyncs(match):
    """rsync processes whose argv contains `match`."""
    out = []
    for p in psutil.process_iter(["name", "cmdline"]):
        if p.info["name"] == "rsync" and any(match in a for a in p.info["cmdline"] or ()):
            out.append(p)
    return out


def test_harvester_sshd_killed_mid_transfer_resumes_after_it_returns(ssh_fleet, tmpfs, tmp_path,
                                                                     k18_plots):
    fleet = farm_fleet(ssh_fleet, tmpfs)
    plots = give_plots(fleet, k18_plots, per_plotter=1)
    inv = fleet.write_inventory(tmp_path / "inv.yaml", transfer_bwlimit_kbps=1000)
    archive_pass(inv)
    victim, partial = wait_for_partial(fleet)
    fleet.stop(victim)
    # the plotter's rsync loses its connection: the transfer fails
    deadline = time.monotonic() + 10
    while rsyncs(os.path.basename(partial)[:-len(PARTIAL)]):
        assert time.monotonic() < deadline, "rsync outlived its connection"
        time.sleep(0.05)
    assert os.path.getsize(partial) < plots.size[PLOT_ID.search(partial[:-len(PARTIAL)]).group(1)]
    assert_nothing_lost(fleet, plots)
    # while it is down the rest goes on; its plot waits, and says why
    down = archive_pass(inv)
    assert down.returncode == 4, down.text + down.stderr
    assert f"retry to {victim}:" in down.text and "unreachable" in down.text, down.text
    assert_nothing_lost(fleet, plots)
    fleet.start(victim)
    outs = archive_until(inv, fleet, plots)
    assert any("retry after failure" in o for o in outs), outs
    assert_all_archived(fleet, plots)


def test_killed_rsync_on_either_side_is_retried(ssh_fleet, tmpfs, tmp_path, k18_plots):
    fleet = farm_fleet(ssh_fleet, tmpfs)
    plots = give_plots(fleet, k18_plots, per_plotter=1)
    inv = fleet.write_inventory(tmp_path / "inv.yaml", transfer_bwlimit_kbps=1000)
    archive_pass(inv)
    wait_for_partial(fleet)
    a, b = sorted(plots.ids)
    # the sending rsync on one plotter, the receiving server pair on the other's harvester
    sender = [p for p in rsyncs(a) if "--server" not in p.info["cmdline"]]
    assert sender, "no sending rsync for plot %s" % a[:8]
    sender[0].kill()
    receivers = []
    deadline = time.monotonic() + 10
    while not receivers:
        assert time.monotonic() < deadline, "no receiving rsync for plot %s" % b[:8]
        for p in rsyncs("--server"):
            try:
                if any(b in f.path for f in p.open_files()):
                    receivers.append(p)
            except psutil.Error:
                pass
    for p in receivers:
        p.kill()
    psutil.wait_procs(sender + receivers, timeout=5)
    assert_nothing_lost(fleet, plots)
    outs = archive_until(inv, fleet, plots)
    retried = "\n".join(outs).count("retry after failure")
    assert retried == 2, outs
    assert_all_archived(fleet, plots)


def test_a_drive_too_small_is_skipped_with_the_reason(ssh_fleet, tmpfs, tmp_path, k18_plots):
    fleet = ssh_fleet(n_plotters=2, n_harvesters=2)
    h1, h2 = fleet.hosts["harvester1"].dirs["farm"], fleet.hosts["harvester2"].dirs["farm"]
    # one drive with room for two plots; three 2 MiB drives cannot take even one
    mount_farms(fleet, tmpfs, size="2m", sizes={h1[1]: "10m"})
    plots = give_plots(fleet, k18_plots, per_plotter=2)
    inv = fleet.write_inventory(tmp_path / "inv.yaml")
    outs = []
    deadline = time.monotonic() + 30
    while len(on_farm(fleet, plots)) < 2 or partials(fleet):
        assert time.monotonic() < deadline, outs[-2:]
        outs.append(archive_pass(inv).text)
    last = archive_pass(inv)
    assert last.returncode == 0
    assert len(on_farm(fleet, plots)) == 2
    assert "no drive with room for" in last.text and "(+ reserve); most room: harvester" \
        in last.text, last.text
    assert "transfer:" not in last.text
    for small in (h1[0], h2[0], h2[1]):
        assert os.listdir(small) == [], f"{small} received something"
    assert_nothing_lost(fleet, plots)
    assert not partials(fleet)


def test_controller_killed_mid_pass_next_pass_converges(ssh_fleet, tmpfs, tmp_path, k18_plots):
    fleet = farm_fleet(ssh_fleet, tmpfs)
    plots = give_plots(fleet, k18_plots, per_plotter=2)
    inv = fleet.write_inventory(tmp_path / "inv.yaml", transfer_bwlimit_kbps=2000,
                                max_transfers_per_plotter=2)
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="200", NO_COLOR="1")
    ctl = subprocess.Popen([sys.executable, "-m", "orchestrator", "archive", "--inventory",
                            str(inv)], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    wait_for_partial(fleet, min_bytes=1)
    ctl.kill()
    ctl.wait()
    # what it started runs on without it: the transfers finish as copies
    deadline = time.monotonic() + 20
    while rsyncs(PARTIAL) or rsyncs("--server"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert_nothing_lost(fleet, plots)
    copied = partials(fleet)
    assert copied, "the killed pass left no copies to promote"
    # a controller that dies between promote and source removal leaves the
    # final file on the harvester and the source on the plotter: do that promote
    # by hand to one copy and check the next passes remove its source, not copy again
    done = copied[0][:-len(PARTIAL)]
    os.rename(copied[0], done)
    outs = archive_until(inv, fleet, plots)
    name = os.path.basename(done)
    assert any("promoted: " in o and name in o for o in outs[:1]), outs[0]
    assert not any("transfer: " in o and name in o for o in outs), "copied twice"
    assert_all_archived(fleet, plots)


def test_an_unreachable_plotter_does_not_stop_the_others(ssh_fleet, tmpfs, tmp_path, k18_plots):
    fleet = farm_fleet(ssh_fleet, tmpfs)
    plots = give_plots(fleet, k18_plots, per_plotter=1)
    inv = fleet.write_inventory(tmp_path / "inv.yaml")
    fleet.stop("plotter2")
    mine = {pid for pid, h in plots.origin.items() if h == "plotter1"}
    archive_until(inv, fleet, plots, want=mine)
    r = archive_pass(inv)
    assert r.returncode == 4, r.text + r.stderr
    assert "plotter2: plots: waiting: not archived this pass: unreachable" in r.text, r.text
    assert on_farm(fleet, plots) == mine
    assert_nothing_lost(fleet, plots)
    fleet.start("plotter2")
    archive_until(inv, fleet, plots)
    assert_all_archived(fleet, plots)


# --- the whole cycle ---------------------------------------------------------------

def test_plot_all_returns_when_its_plots_are_on_harvester_drives(ssh_fleet, tmpfs, tmp_path):
    from chiapos import DiskProver
    fleet = farm_fleet(ssh_fleet, tmpfs)
    inv = fleet.write_inventory(tmp_path / "inv.yaml", polling_time_s=1, global_max_jobs=1,
                                global_stagger_m=0,
                                transfer_bwlimit_kbps=4000)
    with DriveSampler(farm_drives(fleet)) as s:
        r = plotfleet("plot-all", "--inventory", inv, "--plots", 4, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    farmed = {}
    for d in farm_drives(fleet):
        for n in os.listdir(d):
            assert n.endswith(".plot"), f"{d}/{n} left on a drive"
            farmed[PLOT_ID.search(n).group(1)] = os.path.join(d, n)
    assert len(farmed) == 4
    for pid, path in farmed.items():
        assert DiskProver(path).get_id().hex() == pid
    for h in fleet.hosts.values():
        if h.role == "plotter":
            assert os.listdir(h.dirs["dst"][0]) == [] and os.listdir(h.dirs["tmp"][0]) == []
    assert s.max_parallel >= 1, "the sampler never saw a transfer"
    # one writer per drive (a copy waiting for its promote may stand beside
    # the one its runner writes next: a queue does not wait for the pass)
    assert max(s.max_open.values()) == 1
    assert max(s.max_unfinished.values()) == 1, f"two partials growing on one drive: {s.max_unfinished}"


def test_controllers_at_once_never_share_a_drive_nor_copy_twice(ssh_fleet, tmpfs, tmp_path,
                                                                k18_plots):
    fleet = farm_fleet(ssh_fleet, tmpfs)
    plots = give_plots(fleet, k18_plots, per_plotter=3)
    inv = fleet.write_inventory(tmp_path / "inv.yaml", transfer_bwlimit_kbps=4000,
                                max_transfers_per_plotter=3)
    # three passes started together, again and again: they gather, decide and
    # act at about the same moment (the drive claims and the plotter's lock
    # are what keep them apart; when they do not overlap this is plain archiving)
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="200", NO_COLOR="1")
    argv = [sys.executable, "-m", "orchestrator", "archive", "--inventory", str(inv), "--json"]
    starts = []
    deadline = time.monotonic() + 60
    with DriveSampler(farm_drives(fleet)) as s:
        while not (on_farm(fleet, plots) == plots.ids and not partials(fleet)):
            assert time.monotonic() < deadline, "controllers never converged"
            trio = [subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True) for _ in range(3)]
            for p in trio:
                out, err = p.communicate(timeout=60)
                assert "Traceback" not in err, err
                acts = json.loads(out)["actions"]
                starts += [a for a in acts if a.startswith("transfer: ")]
    assert max(s.max_open.values()) == 1, f"a drive received two at once: {s.max_open}"
    assert max(s.max_unfinished.values()) == 1, f"two partials growing on one drive: {s.max_unfinished}"
    assert s.max_parallel >= 2
    assert len(starts) == len(plots.ids), "\n".join(starts)    # each plot sent once
    assert_all_archived(fleet, plots)


def test_a_finished_copy_is_not_receiving_while_another_arrives_on_the_same_harvester(
        ssh_fleet, tmpfs, tmp_path, k18_plots):
    """rsync receives with two processes; only one holds the file.  A copy
    that has arrived must not look busy (and its drive taken) just because
    another transfer is still arriving elsewhere on that harvester."""
    from agent.launch.transfer import rsync_argv
    fleet = farm_fleet(ssh_fleet, tmpfs, n_plotters=1, n_harvesters=1)
    h = fleet.hosts["harvester1"]
    fast, slow = k18_plots.copy_to(tmp_path / "src", n=2)
    procs = []
    for plot, drive, bw in ((fast, h.dirs["farm"][0], 0), (slow, h.dirs["farm"][1], 300)):
        spec = {"plot": str(plot), "to_dir": drive, "mode": "ssh", "bwlimit_kbps": bw,
                "ssh": {"host": h.address, "port": h.port, "user": "root",
                        "key": fleet.client_key, "known_hosts": fleet.known_hosts}}
        procs.append(subprocess.Popen(rsync_argv(spec), stdout=subprocess.DEVNULL))
    try:
        assert procs[0].wait(20) == 0
        assert procs[1].poll() is None, "the slow copy should still be arriving"
        inv = fleet.write_inventory(tmp_path / "inv.yaml")
        _, doc = status_json(inv)
        seen = {os.path.dirname(p["path"]): p["receiving"]
                for hs in doc["hosts"] for p in hs.get("partials", [])}
        assert seen == {h.dirs["farm"][0]: False, h.dirs["farm"][1]: True}, seen
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_a_copy_that_vanishes_before_its_promote_is_sent_again(ssh_fleet, tmpfs, tmp_path,
                                                               k18_plots):
    fleet = farm_fleet(ssh_fleet, tmpfs, n_plotters=1, n_harvesters=1)
    plots = give_plots(fleet, k18_plots, per_plotter=1)
    inv = fleet.write_inventory(tmp_path / "inv.yaml")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # one pass starts the copy; let it finish without a controller to promote it
    ctl = subprocess.Popen([sys.executable, "-m", "orchestrator", "archive", "--inventory",
                            str(inv)], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    ctl.wait(60)
    deadline = time.monotonic() + 20
    while rsyncs(PARTIAL) or rsyncs("--server") or not partials(fleet):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    [copy] = partials(fleet)
    os.remove(copy)                  # the drive was swapped, the file deleted...
    outs = archive_until(inv, fleet, plots)
    assert "vanished before its promote: sending it again" in outs[0], outs[0]
    assert_all_archived(fleet, plots)
