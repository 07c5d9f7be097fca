"""The harvester's side of replotting, through a real agent process: every
deletion is checked again on the host and made under the drive's claim, or
nothing is deleted.  The drive is a real tmpfs filesystem holding real k=18
plots named with a 2023 date (old) and a new plot's name to make room for."""
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.agent_helpers import AgentProc, host_dirs
from tests.replot_helpers import RULES, give_old_plots, reset_replot_records

STATE = Path(os.environ["HOME"], ".plotfleet")
PAGE = 4096


@pytest.fixture
def drive(tmp_path, tmpfs, k18_plots):
    """A farm drive holding 3 old plots and 2 MiB, less than a plot (k=18
    plots differ by up to 0.7 MiB: one old plot makes room for any new one):
    a fresh agent, its config, the old plots (largest first) and a new plot
    (name, id, size) to send."""
    reset_replot_records()
    d, config = host_dirs(tmp_path)
    plots = k18_plots.get(4)
    size = sum(-(-p.stat().st_size // PAGE) * PAGE for p in plots[:3]) + 2 * 2 ** 20
    tmpfs.mount(d["farm"], str(size))
    config["replot"] = RULES
    olds = sorted(give_old_plots(k18_plots, d["farm"], 3), key=lambda p: -p.stat().st_size)
    new = plots[3]
    a = AgentProc()
    yield a, d, config, olds, (new.name, new.name[-69:-5], new.stat().st_size)
    a.close()


def claim(a, d, config, new, olds, **extra):
    name, pid, size = new
    args = dict(config=config, to_dir=d["farm"], plot="/dst/" + name, size_bytes=size,
                holder="controller:test", plot_id=pid, max_deletes_per_hour=60,
                deletions=[{"path": str(p), "size_bytes": p.stat().st_size if p.exists() else 1}
                           for p in olds])
    args.update(extra)
    return a.raw("reserve_drive", **args)


def ledger():
    try:
        return json.loads((STATE / "replot-ledger.json").read_text())
    except OSError:
        return {}


def test_the_deletion_is_made_under_the_claim_and_recorded_once(drive):
    a, d, config, olds, new = drive
    r = claim(a, d, config, new, olds[:1])
    assert r["ok"], r
    res = r["result"]
    assert [x["path"] for x in res["deleted"]] == [str(olds[0])] and res["space_ok"]
    assert not olds[0].exists() and olds[1].exists() and olds[2].exists()
    [entry] = ledger().values()
    assert entry["plot"] == new[0] and entry["deletions"][0]["rule"] == \
        "rule 1 (made_before: 2024-01-01)"
    claims = json.loads((STATE / "drive-claims.json").read_text())
    [c] = claims.values()
    assert c["holder"] == "controller:test" and c["plots"][0]["plot_id"] == new[1]
    assert c["plots"][0]["deletions"] == [olds[0].name] and c["expires_at"] > time.time()
    # a second controller with the same plan: the plot has its set, nothing new goes
    again = claim(AgentProc(), d, config, new, olds[1:2])
    assert not again["ok"] and "already has its set of deletions" in again["error"]
    assert olds[1].exists()
    # the same plot's claim without deletions uses the room made for it
    assert claim(a, d, config, new, [])["ok"]
    snap = a.ok("snapshot", config=config)
    [s] = snap["replot"]["sets"]
    assert s["pending"] and s["claimed"] and snap["replot"]["deletes_last_hour"] == 1


def test_more_than_the_plot_needs_or_none_needed_deletes_nothing(drive):
    a, d, config, olds, new = drive
    r = claim(a, d, config, new, olds[:2])
    assert not r["ok"] and "more deletions than" in r["error"]
    r = claim(a, d, config, new, olds[:1], size_bytes=1000)
    assert not r["ok"] and "has room for" in r["error"]
    assert all(p.exists() for p in olds) and ledger() == {}


@pytest.mark.parametrize("spoil, why", [
    ("open", "is open in process"),
    ("symlink", "not a regular file"),
    ("resized", "changed:"),
    ("renamed", "no longer matches a replot rule"),
    ("outside", "outside the farm dirs"),
    ("hardlink", "has other hard links"),   # unlinking one name frees nothing
])
def test_each_plot_is_checked_again_on_the_host(drive, tmp_path, spoil, why):
    a, d, config, olds, new = drive
    victim = olds[0]
    size = victim.stat().st_size
    holder = None
    if spoil == "open":
        holder = open(victim, "rb")         # a harvester reading it
    elif spoil == "symlink":
        Path(d["farm"], "kept").mkdir()
        target = Path(d["farm"], "kept", victim.name)
        os.rename(victim, target)
        os.symlink(target, victim)
    elif spoil == "resized":
        with open(victim, "ab") as f:
            f.write(b"\0" * 10)
    elif spoil == "renamed":                # made today, says its name now
        fresh = victim.with_name(victim.name.replace("2023-03-04", "2026-01-01"))
        os.rename(victim, fresh)
        victim = fresh
    elif spoil == "hardlink":
        Path(d["farm"], "kept").mkdir()
        os.link(victim, Path(d["farm"], "kept", victim.name))
    elif spoil == "outside":
        victim = tmp_path / victim.name
        victim.write_bytes(b"x" * size)
    try:
        r = a.raw("reserve_drive", config=config, to_dir=d["farm"], plot=new[0],
                  size_bytes=new[2], plot_id=new[1], max_deletes_per_hour=60,
                  deletions=[{"path": str(victim), "size_bytes": size}])
    finally:
        if holder:
            holder.close()
    assert not r["ok"] and why in r["error"], r
    assert r["code"] == "replot_refused"
    assert os.path.lexists(victim) and ledger() == {}


def test_the_hourly_cap_is_counted_from_the_ledger(drive):
    a, d, config, olds, new = drive
    r = claim(a, d, config, new, olds[:1], max_deletes_per_hour=0)
    assert not r["ok"] and "replot_max_deletes_per_hour: 0 deleted in the last hour, 1 more" \
        in r["error"]
    assert olds[0].exists()


def test_room_waiting_for_an_earlier_plot_blocks_every_new_deletion(drive, k18_plots):
    a, d, config, olds, new = drive
    assert claim(a, d, config, new, olds[:1])["ok"]
    # its controller died before the transfer: the claim expires
    path = STATE / "drive-claims.json"
    claims = json.loads(path.read_text())
    for c in claims.values():
        c["renewed_at"] = c["expires_at"] = time.time() - 300
    path.write_text(json.dumps(claims))
    other = k18_plots.get(5)[4]
    other = (other.name, other.name[-69:-5], min(other.stat().st_size, new[2]))
    r = claim(a, d, config, other, olds[1:2])
    assert not r["ok"] and "still waits for it: no new deletion" in r["error"]
    # nor is its room given to the other plot
    r = claim(a, d, config, other, [])
    assert not r["ok"] and "kept for plots whose room was made earlier" in r["error"]
    # the plot it was made for gets it
    assert claim(a, d, config, new, [])["ok"]
    # once a controller that saw every plotter says that plot is gone, its room is anyone's
    for c in claims.values():
        c["renewed_at"] = c["expires_at"] = time.time() - 300
    path.write_text(json.dumps(claims))
    r = claim(a, d, config, other, [], gone=[new[1]])
    assert r["ok"], r
    assert olds[1].exists() and olds[2].exists()


def test_a_rule_that_matches_the_plot_in_transfer_deletes_nothing(drive):
    a, d, config, olds, new = drive
    config["replot"] = [{"glob": d["farm"] + "/*"}]
    r = claim(a, d, config, new, olds[:1])
    assert not r["ok"] and "matches rule 1 (glob: " in r["error"] and "itself" in r["error"]
    assert olds[0].exists()


def test_space_that_does_not_come_back_stops_replotting_on_the_drive(drive):
    a, d, config, olds, new = drive
    # a bind mount of the plot keeps its blocks after the unlink, as a
    # snapshot does, and no process holds it open (a second hard link is
    # refused before anything is deleted)
    snap = Path(d["farm"]).parent / "snapshot-of-plot"
    snap.touch()
    subprocess.run(["mount", "--bind", str(olds[0]), str(snap)], check=True)
    try:
        r = claim(a, d, config, new, olds[:1])
    finally:
        subprocess.run(["umount", str(snap)], check=True)
    assert r["ok"], r
    res = r["result"]
    assert not res["space_ok"] and "replotting stopped on this drive" in res["space_error"]
    assert not olds[0].exists()
    stopped = json.loads((STATE / "replot-stopped.json").read_text())
    assert list(stopped) == [d["farm"]]
    r = claim(a, d, config, new, olds[1:2])      # and nothing more goes there
    assert not r["ok"] and olds[1].exists()
    snap_doc = a.ok("snapshot", config=config)
    assert snap_doc["replot"]["stopped"][0]["dir"] == d["farm"]


def test_a_plot_is_bound_to_one_drive_before_anything_is_deleted_for_it(tmp_path, k18_plots):
    # two controllers that chose different harvesters for one plot in the same
    # moment: the plotter lets only the first delete for it
    reset_replot_records()
    d, config = host_dirs(tmp_path)
    [p] = k18_plots.copy_to(d["dst"], 1)
    a, b = AgentProc(), AgentProc()
    try:
        a.ok("bind_replot", config=config, plot=str(p), to_host="h1", to_dir="/f0",
             holder="controller:one")
        r = b.raw("bind_replot", config=config, plot=str(p), to_host="h2", to_dir="/f9",
                  holder="controller:two")
        assert not r["ok"] and "is bound to h1:/f0 by controller:one" in r["error"]
        b.ok("bind_replot", config=config, plot=str(p), to_host="h1", to_dir="/f0")
        [seen] = b.ok("snapshot", config=config)["plots"]
        assert seen["bound_to"] == ["h1", "/f0"]
        # the binding lasts as long as the plot waits there, however long
        bindings = STATE / "replot-bindings.json"
        rec = json.loads(bindings.read_text())
        rec[p.name]["at"] -= 86400
        bindings.write_text(json.dumps(rec))
        r = b.raw("bind_replot", config=config, plot=str(p), to_host="h2", to_dir="/f9")
        assert not r["ok"] and "is bound to h1:/f0" in r["error"]
    finally:
        a.close()
        b.close()


def test_an_unreadable_ledger_allows_no_deletion(drive):
    a, d, config, olds, new = drive
    (STATE / "replot-ledger.json").write_text('{"torn": ')
    r = claim(a, d, config, new, olds[:1])
    assert not r["ok"] and "cannot be read: no deletion until it is repaired" in r["error"]
    assert olds[0].exists()


def test_a_plot_is_never_received_where_a_rule_makes_it_replaceable(drive):
    """Without any deletion too: the harvester refuses the claim itself, so
    no controller (an older one, a second one) lands a plot the next one
    could replace."""
    a, d, config, olds, new = drive
    config["replot"] = [{"glob": d["farm"] + "/*"}]
    r = claim(a, d, config, new, [], deletions=None)
    assert not r["ok"] and "matches rule 1 (glob: " in r["error"] and \
        "never sent where it is replaceable" in r["error"], r
    assert not (STATE / "drive-claims.json").exists() or \
        new[0] not in (STATE / "drive-claims.json").read_text()
    config["replot"] = RULES            # made_before: the new plot's date does not match
    assert claim(a, d, config, new, [], deletions=None, size_bytes=1)["ok"]
