"""Replotting end to end: real sshd plotter and harvester, real rsync over
ssh, real chiapos k=18 plots, harvester drives that are tmpfs filesystems
filled to the brim with old plots (real plots named with a 2023 date).

The farm never shrinks: sampled every 0.2 s, the farm's final plots plus the
deletions whose new plot is still on its way never fall below the count
before.  The ledger never shows more deletions than arrivals justify.
"""
import json
import os
import time
from pathlib import Path

from tests.cli import plotfleet, status_json
import pytest

from tests.sampler import Sampler
from tests.sshhosts import prove
from tests.replot_helpers import OLD_DATE, RULES, final_plots, old_name, reset_replot_records
from tests.test_archive_e2e import PARTIAL, give_plots

LEDGER = Path(os.environ["HOME"], ".plotfleet", "replot-ledger.json")
PAGE = 4096
# k=18 plots differ in size by up to ~0.7 MiB (3.6 to 4.3 MiB): 2 MiB left free
# on each drive (less than a plot) makes one old plot enough for any new one,
# as with k32 plots, whose sizes hardly differ
SLACK = 2 * 2 ** 20


@pytest.fixture(autouse=True)
def _fresh_records():
    reset_replot_records()


def ledger():
    try:
        return json.loads(LEDGER.read_text())
    except (OSError, ValueError):
        return {}


def full_farm(ssh_fleet, tmpfs, k18_plots, olds=(3, 2), first=0, slack=SLACK, **fleet_vars):
    """One plotter, one harvester whose two drives are tmpfs filesystems each
    holding `olds[i]` old plots and `slack` bytes besides: no room for a new plot.
    Returns (fleet, harvester, {drive: [old plot paths]})."""
    fleet = ssh_fleet(n_plotters=1, n_harvesters=1, **fleet_vars)
    fleet.farms_mounted = True
    h = fleet.hosts["harvester1"]
    cached = k18_plots.get(first + sum(olds))[first:]
    out, i = {}, 0
    for d, n in zip(h.dirs["farm"], olds):
        mine = cached[i:i + n]
        i += n
        size = sum(-(-p.stat().st_size // PAGE) * PAGE for p in mine) + slack
        tmpfs.mount(d, str(size))
        out[d] = []
        for p in mine:
            target = Path(d, old_name(p.name))
            target.write_bytes(p.read_bytes())
            out[d].append(str(target))
    return fleet, h, out


def new_plots(fleet, k18_plots, n, first):
    """`n` new plots (today's names) in plotter1's dst dir, skipping the
    `first` cached plots (the farm's old ones), their proof check passed
    (as after the pass that checked them: nothing is deleted for a plot
    before that); their names."""
    dst = fleet.hosts["plotter1"].dirs["dst"][0]
    out = []
    for p in k18_plots.get(first + n)[first:]:
        Path(dst, p.name).write_bytes(p.read_bytes())
        out.append(p.name)
    prove([Path(dst, name) for name in out])
    return out


def archive(inv, *extra):
    r = plotfleet("archive", "--inventory", inv, "--json", *extra, timeout=90)
    assert "Traceback" not in r.stderr, r.stderr
    r.doc = json.loads(r.stdout)
    return r


def archive_until(inv, fleet, names, timeout=60):
    """`archive` passes until every plot of `names` is final on a farm drive."""
    drives = fleet.hosts["harvester1"].dirs["farm"]
    end = time.monotonic() + timeout
    outs = []
    while not set(names) <= set(final_plots(drives)) or \
            any(n.endswith(PARTIAL) for d in drives for n in os.listdir(d)):
        assert time.monotonic() < end, "\n".join(a for o in outs for a in o.doc["actions"])
        outs.append(archive(inv))
        time.sleep(0.3)
    return outs


def gone(olds):
    return sorted(p for ps in olds.values() for p in ps if not os.path.exists(p))


def ledger_deletions():
    return sorted(d["path"] for e in ledger().values() for d in e["deletions"])


class FarmCount(Sampler):
    """Every 0.2 s: the farm's final plots, and the deletions made for new
    plots that have not arrived yet (the ledger's pending sets)."""

    def __init__(self, drives):
        self.drives = drives
        self.samples = []           # (t, final plots, deletions in flight)
        self.t0 = time.monotonic()

    def sample(self):
        names = set(final_plots(self.drives))       # listed first, the ledger after:
        flight = sum(len(e["deletions"]) for e in ledger().values()  # a deletion is in
                     if e["plot"] not in names)     # the ledger before it happens
        self.samples.append((round(time.monotonic() - self.t0, 1), len(names), flight))

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
    assert len(gone) == 2 and len(names) == before, "N new there, N old gone"
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
    # where the wave stands: status, its JSON
    text = plotfleet("status", "--inventory", inv).stdout
    assert "3 old plots left, 2 new; 2 replaced in 24 h, last old plot in 1.5 days" in \
        " ".join(text.split()), text
    _, doc = status_json(inv)
    assert {k: doc["replot"][k] for k in ("old", "new", "replaced_24h")} == \
        {"old": 3, "new": 2, "replaced_24h": 2}


def test_check_json_lists_the_deletions_and_a_real_run_makes_the_same(
        ssh_fleet, tmpfs, tmp_path, k18_plots):
    fleet, h, olds = full_farm(ssh_fleet, tmpfs, k18_plots, olds=(2, 2))
    [new] = new_plots(fleet, k18_plots, 1, first=4)
    inv = fleet.write_inventory(tmp_path / "inv.yaml", replot=RULES, global_max_jobs=1)
    r = plotfleet("plot-all", "--inventory", inv, "--once", "--check", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    planned = doc["decisions"]["deletions"]
    assert planned and all(d["for_plot"] == new for d in planned)
    [t] = doc["decisions"]["transfers"]
    assert t["deletions"] == planned and t["plot_id"] in new
    would = [e for e in doc["events"] if e["kind"] == "would_replot_delete"]
    assert [e["subject"] for e in would] == [os.path.basename(d["path"]) for d in planned]
    assert gone(olds) == [] and ledger() == {}, "--check deleted something"
    real = archive(inv)
    done = [e for e in real.doc["events"] if e["kind"] == "replot_deleted"]
    assert [e["subject"] for e in done] == [os.path.basename(d["path"]) for d in planned]
    assert gone(olds) == sorted(d["path"] for d in planned) == ledger_deletions()
    archive_until(inv, fleet, [new])
    assert gone(olds) == ledger_deletions()


def _agent_for(fleet, name):
    from tests.agent_helpers import AgentProc
    return AgentProc(), fleet.model_host(name).agent_config()


def test_a_controller_killed_after_deleting_leaves_the_room_to_its_plot(
        ssh_fleet, tmpfs, tmp_path, k18_plots):
    fleet, h, olds = full_farm(ssh_fleet, tmpfs, k18_plots, olds=(2, 2))
    [new] = new_plots(fleet, k18_plots, 1, first=4)
    inv = fleet.write_inventory(tmp_path / "inv.yaml", replot=RULES)
    planned = json.loads(plotfleet("plot-all", "--inventory", inv, "--once", "--check",
                                   "--json").stdout)["decisions"]["transfers"][0]
    # what that controller does before it is killed: the claim and its deletions,
    # made on the harvester as apply makes them; the transfer never starts
    a, config = _agent_for(fleet, "harvester1")
    try:
        res = a.ok("reserve_drive", config=dict(config, replot=RULES), to_dir=planned["to_dir"],
                   plot=planned["plot"], size_bytes=planned["size_bytes"],
                   holder="controller:killed", plot_id=planned["plot_id"],
                   max_deletes_per_hour=60,
                   deletions=[{"path": d["path"], "size_bytes": d["size_bytes"]}
                              for d in planned["deletions"]])
    finally:
        a.close()
    first = gone(olds)
    assert first == sorted(d["path"] for d in res["deleted"]) and first
    # the next controller uses that room and deletes nothing more
    outs = archive_until(inv, fleet, [new])
    assert not [e for o in outs for e in o.doc["events"] if e["kind"] == "replot_deleted"]
    assert gone(olds) == first == ledger_deletions()
    assert Path(planned["to_dir"], new).exists(), "not where its room was made"


def test_a_cut_transfer_whose_drive_is_then_set_aside_gets_nothing_new_deleted(
        ssh_fleet, tmpfs, tmp_path, k18_plots):
    from tests.test_archive_e2e import rsyncs
    from tests.test_copies_e2e import receivers_in
    fleet, h, olds = full_farm(ssh_fleet, tmpfs, k18_plots, olds=(2, 2))
    [new] = new_plots(fleet, k18_plots, 1, first=4)
    inv = fleet.write_inventory(tmp_path / "inv.yaml", replot=RULES, transfer_bwlimit_kbps=200,
                                drive_cooldown_m=0.15)
    first = archive(inv)
    assert [e for e in first.doc["events"] if e["kind"] == "transfer_started"]
    deleted = gone(olds)
    [to_dir] = {os.path.dirname(p) for p in deleted}
    partial = Path(to_dir, new + PARTIAL)
    end = time.monotonic() + 30
    while not (partial.exists() and partial.stat().st_size > 256 * 1024):
        assert time.monotonic() < end, "the transfer never wrote"
        time.sleep(0.1)
    for p in rsyncs(new) + receivers_in(to_dir):
        p.kill()
    a, config = _agent_for(fleet, "harvester1")
    try:         # the drive then fails for real: set aside (its record, as apply writes it)
        a.ok("note_drive_failure", config=config, to_dir=to_dir, key="test:cut", at=time.time(),
             error="Input/output error (5)", fatal=True, plot=new)
    finally:
        a.close()
    time.sleep(1)
    held = archive(inv)
    assert not [e for e in held.doc["events"] if e["kind"] in ("replot_deleted",
                                                               "transfer_started")]
    assert any("nothing new is deleted for it" in w for w in held.doc["actions"]), \
        held.doc["actions"]
    assert gone(olds) == deleted == ledger_deletions()
    time.sleep(9)       # drive_cooldown_m: the drive is tried again
    archive_until(inv, fleet, [new])
    assert gone(olds) == deleted == ledger_deletions()
    assert Path(to_dir, new).exists()


def test_two_controllers_at_once_delete_once_per_plot(ssh_fleet, tmpfs, tmp_path, k18_plots):
    fleet, h, olds = full_farm(ssh_fleet, tmpfs, k18_plots, olds=(2, 2))
    news = new_plots(fleet, k18_plots, 2, first=4)
    inv = fleet.write_inventory(tmp_path / "inv.yaml", replot=RULES,
                                max_transfers_per_plotter=2)
    before = len(final_plots(h.dirs["farm"]))
    import subprocess
    import sys
    from tests.cli import REPO
    for _ in range(4):
        procs = [subprocess.Popen([sys.executable, "-m", "orchestrator", "archive",
                                   "--inventory", str(inv), "--json"], cwd=REPO,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=dict(os.environ, PYTHONPATH=str(REPO)))
                 for _ in range(2)]
        for p in procs:
            out, err = p.communicate(timeout=90)
            assert "Traceback" not in err, err
    archive_until(inv, fleet, news)
    sets = ledger()
    assert sorted(e["plot"] for e in sets.values()) == sorted(news), "one set per plot"
    assert gone(olds) == ledger_deletions()
    for e in sets.values():
        sizes = [d["size_bytes"] for d in e["deletions"]]
        assert sum(sizes) - min(sizes) < e["need"], "more than the plot needed"
    assert len(final_plots(h.dirs["farm"])) == before - len(gone(olds)) + 2


def test_a_rule_matching_the_plot_in_transfer_deletes_nothing(ssh_fleet, tmpfs, tmp_path,
                                                              k18_plots):
    fleet, h, olds = full_farm(ssh_fleet, tmpfs, k18_plots, olds=(2, 2))
    [new] = new_plots(fleet, k18_plots, 1, first=4)
    first_drive = h.dirs["farm"][0]
    inv = fleet.write_inventory(tmp_path / "inv.yaml", replot=[{"glob": first_drive + "/*"}])
    r = archive(inv)
    assert f"would match rule 1 (glob: {first_drive}/*) itself: refused" in \
        "\n".join(r.doc["actions"]), r.doc["actions"]
    assert gone(olds) == [] and ledger() == {}
    assert new in os.listdir(fleet.hosts["plotter1"].dirs["dst"][0])


def test_space_that_does_not_come_back_stops_replotting_on_that_drive(
        ssh_fleet, tmpfs, tmp_path, k18_plots):
    import subprocess
    fleet, h, olds = full_farm(ssh_fleet, tmpfs, k18_plots, olds=(2, 2))
    [new] = new_plots(fleet, k18_plots, 1, first=4)
    # a snapshot keeps every old plot's blocks: a bind mount of each (outside
    # the farm dirs) holds them after the unlink, and no process has it open
    # (a second hard link is refused before anything is deleted)
    snaps = []
    try:
        for paths in olds.values():
            for p in paths:
                snap = tmp_path / ("snapshot-" + os.path.basename(p))
                snap.touch()
                subprocess.run(["mount", "--bind", p, str(snap)], check=True)
                snaps.append(snap)
        _space_does_not_come_back(fleet, olds, new, tmp_path)
    finally:
        for snap in snaps:
            subprocess.run(["umount", str(snap)], check=True)


def _space_does_not_come_back(fleet, olds, new, tmp_path):
    inv = fleet.write_inventory(tmp_path / "inv.yaml", replot=RULES)
    r = archive(inv)
    kinds = [e["kind"] for e in r.doc["events"]]
    assert "replot_deleted" in kinds and "transfer_started" not in kinds, r.doc["actions"]
    [missing] = [e for e in r.doc["events"] if e["kind"] == "replot_space_missing"]
    assert missing["failed"] and "gave back 0 bytes" in missing["detail"] and \
        "replotting stopped on this drive" in missing["detail"]
    deleted = gone(olds)
    assert len(deleted) == 1 == len(ledger_deletions())
    _, doc = status_json(inv)
    [hv] = [x for x in doc["hosts"] if x["name"] == "harvester1"]
    assert [s["dir"] for s in hv["replot"]["stopped"]] == [os.path.dirname(deleted[0])]
    again = archive(inv)
    assert "replot_deleted" not in [e["kind"] for e in again.doc["events"]]
    assert gone(olds) == deleted, "nothing more deleted for it, on any drive"
    assert new in os.listdir(fleet.hosts["plotter1"].dirs["dst"][0])


def test_nothing_is_deleted_for_a_plot_whose_proof_check_has_not_passed_on_its_plotter(
        ssh_fleet, tmpfs, tmp_path, k18_plots):
    # apply's last word before a deletion asks the plotter itself: a transfer
    # with deletions for a plot never checked there (a plan from a stale view,
    # another controller's) is refused, and nothing is deleted
    from dataclasses import replace
    from orchestrator.config.inventory import load_inventory
    from orchestrator.remote.apply import transfer
    from orchestrator.remote.fleet import Fleet
    from tests.test_archive_e2e import PLOT_ID
    fleet, h, olds = full_farm(ssh_fleet, tmpfs, k18_plots, olds=(2, 2))
    [new] = new_plots(fleet, k18_plots, 1, first=4)
    inv = fleet.write_inventory(tmp_path / "inv.yaml", replot=RULES)
    planned = json.loads(plotfleet("plot-all", "--inventory", inv, "--once", "--check",
                                   "--json").stdout)["decisions"]["transfers"]
    assert planned and planned[0]["deletions"], "the checked plot gets its deletions"
    [src] = k18_plots.get(6)[5:]                # another plot, never checked
    unchecked = Path(fleet.hosts["plotter1"].dirs["dst"][0], src.name)
    unchecked.write_bytes(src.read_bytes())
    model = load_inventory(inv)
    hosts = {x.name: replace(x, connect_timeout_s=5.0) for x in model.hosts}
    from orchestrator.core.decisions import StartTransfer
    from orchestrator.core.replot import Deletion
    p = planned[0]
    t = StartTransfer(p["from_host"], str(unchecked), unchecked.stat().st_size, p["to_host"],
                      p["to_dir"], p["mode"], "replot", dest_dir=p["dest_dir"],
                      deletions=tuple(Deletion(d["host"], d["path"], d["size_bytes"], d["rule"],
                                               src.name) for d in p["deletions"]),
                      plot_id=PLOT_ID.search(src.name).group(1))
    with Fleet(list(hosts.values())) as f:
        out = transfer(f, hosts, t, check=False)
    assert [e.kind for e in out.events] == ["replot_refused"], out.events
    [e] = out.events
    assert e.failed and \
        f"{src.name} not verified: its proof check did not pass (never checked)" in e.detail, e
    assert gone(olds) == [] and ledger() == {}
    assert unchecked.exists() and not any(src.name in n for d in h.dirs["farm"]
                                          for n in os.listdir(d))
