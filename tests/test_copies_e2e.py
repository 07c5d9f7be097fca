"""Copies that can be trusted, end to end: real sshd plotters and harvesters,
real rsync over ssh, real chiapos k=18 plots, harvester drives that are
separate tmpfs filesystems; faults made for real (a cut transfer whose
partial is then zero-filled, a same-size impostor under the final name, a
drive remounted read-only, a drive that refuses every new file, a transfer
key the harvester refuses).

Each test ends with every plot byte-identical (sha256) either on a farm
drive or still on its plotter, never anything else under its name.
"""
import hashlib
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import psutil

from tests.cli import plotfleet, status_json
from tests.test_archive_e2e import (MiB, PARTIAL, archive_pass, archive_until,
                                    assert_all_archived, give_plots, partials, rsyncs,
                                    wait_for_partial)


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def farm_fleet(ssh_fleet, tmpfs, sizes, n_plotters=1, **mount_opts):
    """One harvester whose two farm dirs are tmpfs drives of `sizes`."""
    fleet = ssh_fleet(n_plotters=n_plotters, n_harvesters=1)
    fleet.farms_mounted = True
    h = fleet.hosts["harvester1"]
    for d, size in zip(h.dirs["farm"], sizes):
        tmpfs.mount(d, size + mount_opts.get(d, ""))
    return fleet, h


def dirs_of(doc, host):
    return {d["path"]: d for h in doc["hosts"] if h["name"] == host for d in h["dirs"]}


def receivers_in(dir_path):
    """Receiving rsync servers working in `dir_path`."""
    out = []
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            if p.info["name"] == "rsync" and "--server" in (p.info["cmdline"] or ()) \
                    and "--sender" not in p.info["cmdline"] and p.cwd() == dir_path:
                out.append(p)
        except psutil.Error:
            pass
    return out


def test_a_cut_transfer_whose_partial_is_zero_filled_to_full_length_is_sent_again(
        ssh_fleet, tmpfs, tmp_path, k18_plots):
    fleet, h = farm_fleet(ssh_fleet, tmpfs, ["64m", "32m"])
    plots = give_plots(fleet, k18_plots, per_plotter=1)
    [pid] = plots.ids
    inv = fleet.write_inventory(tmp_path / "inv.yaml", transfer_bwlimit_kbps=400)
    archive_pass(inv)
    _, partial = wait_for_partial(fleet, min_bytes=MiB // 2)
    def both_ends():
        # the sending rsync names the plot; the receiving `rsync --server`
        # (argv without the name under --protect-args) works in the drive
        return rsyncs(os.path.basename(partial)[:-len(PARTIAL)]) + \
            receivers_in(os.path.dirname(partial))
    for p in both_ends():
        p.kill()
    deadline = time.monotonic() + 10
    while both_ends():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    cut = os.path.getsize(partial)
    assert 0 < cut < plots.size[pid]
    # the torn write: the partial grows to the plot's full length, zeros after the cut
    os.truncate(partial, plots.size[pid])
    assert os.path.getsize(partial) == plots.size[pid]
    source = os.path.join(fleet.hosts["plotter1"].dirs["dst"][0],
                          os.path.basename(partial)[:-len(PARTIAL)])
    first = archive_pass(inv).text
    # never trusted: compared, found different, removed, sent again
    assert "differs from its source" in first and "removed, to be sent again" in first, first
    assert "promoted:" not in first and "removed source" not in first, first
    assert sha(source) == plots.digest[pid], "the source was touched"
    outs = archive_until(inv, fleet, plots)
    assert any("promoted:" in o and "digest" in o for o in outs), outs
    found = assert_all_archived(fleet, plots)
    assert sha(found[pid][0]) == plots.digest[pid]


def test_a_same_size_impostor_under_the_final_name_is_a_conflict_and_left_alone(
        ssh_fleet, tmpfs, tmp_path, k18_plots):
    fleet, h = farm_fleet(ssh_fleet, tmpfs, ["64m", "32m"])
    plots = give_plots(fleet, k18_plots, per_plotter=1)
    [pid] = plots.ids
    src = next(Path(fleet.hosts["plotter1"].dirs["dst"][0]).glob("*.plot"))
    # the roomiest drive already holds a file of that name: the real header
    # (same id and k), other bytes after it, exactly the same length
    roomy, other = h.dirs["farm"]
    impostor = Path(roomy, src.name)
    data = src.read_bytes()
    impostor.write_bytes(data[:4096] + os.urandom(len(data) - 4096))
    impostor_sha = sha(impostor)
    inv = fleet.write_inventory(tmp_path / "inv.yaml")
    first = archive_pass(inv)
    assert "conflict:" in first.text and str(impostor) in first.text, first.text
    assert "holds other bytes" in first.text and "removed source" not in first.text
    assert sha(src) == plots.digest[pid]
    r, doc = status_json(inv)
    [conflict] = [c for x in doc["hosts"] for c in x["conflicts"]]
    assert conflict["path"] == str(impostor) and "content differs" in conflict["detail"]
    assert "conflict" in plotfleet("status", "--inventory", inv).stdout
    # the plot goes to the other drive; the impostor stays exactly as it was
    deadline = time.monotonic() + 40
    outs = []
    while src.exists() or partials(fleet):
        assert time.monotonic() < deadline, outs[-3:]
        outs.append(archive_pass(inv).text)
    assert sha(Path(other, src.name)) == plots.digest[pid]
    assert sha(impostor) == impostor_sha
    assert not any("transfer: " in o and f"harvester1:{roomy}" in o for o in outs), outs


def test_a_read_only_drive_takes_nothing_and_says_so(ssh_fleet, tmpfs, tmp_path, k18_plots):
    fleet, h = farm_fleet(ssh_fleet, tmpfs, ["64m", "32m"])
    ro, rw = h.dirs["farm"]
    subprocess.run(["mount", "-o", "remount,ro", ro], check=True)   # a failing disk, remounted
    plots = give_plots(fleet, k18_plots, per_plotter=2)
    inv = fleet.write_inventory(tmp_path / "inv.yaml")
    r, doc = status_json(inv)
    d = dirs_of(doc, "harvester1")
    assert d[ro]["error"] == "read-only file system" and d[ro]["error_code"] == "read_only"
    assert d[rw]["error"] is None and d[rw]["free_bytes"] > 16 * MiB
    assert "read-only file system" in plotfleet("status", "--inventory", inv).stdout
    outs = archive_until(inv, fleet, plots)
    assert not any(f"harvester1:{ro}" in o for o in outs), outs
    found = assert_all_archived(fleet, plots)
    assert {os.path.dirname(p[0]) for p in found.values()} == {rw}


def test_a_drive_that_fails_is_set_aside_then_used_again_after_the_cooldown(
        ssh_fleet, tmpfs, tmp_path, k18_plots):
    # farm1 has the most room but no free inode: every new file fails with
    # ENOSPC on the harvester's side, which rsync reports as the receiver's
    fleet, h = farm_fleet(ssh_fleet, tmpfs, ["64m", "32m"])
    bad, good = h.dirs["farm"]
    subprocess.run(["mount", "-o", "remount,nr_inodes=1", bad], check=True)
    plots = give_plots(fleet, k18_plots, per_plotter=2)
    inv = fleet.write_inventory(tmp_path / "inv.yaml", drive_cooldown_m=0.25,
                                max_transfers_per_plotter=2)
    outs = [archive_pass(inv).text]
    assert f"harvester1:{bad}" in outs[0], outs[0]
    seen = None
    deadline = time.monotonic() + 30
    while seen is None:
        assert time.monotonic() < deadline, outs[-3:]
        time.sleep(0.3)
        outs.append(archive_pass(inv).text)
        _, doc = status_json(inv)
        d = dirs_of(doc, "harvester1")[bad]
        if d["set_aside_until"]:
            seen = d
    host_now = next(x["host_time"] for x in doc["hosts"] if x["name"] == "harvester1")
    assert seen["error_code"] == "set_aside"
    assert seen["error"].startswith("set aside until ")
    # the most specific line rsync printed, not its generic closing line
    assert "No space left on device (28)" in seen["error"] and "(code 23)" not in seen["error"]
    assert host_now < seen["set_aside_until"] <= host_now + 0.25 * 60 + 1
    assert any("drive failure recorded" in o for o in outs), outs
    assert "set aside until" in plotfleet("status", "--inventory", inv).stdout
    # its plots go to the other drive meanwhile
    outs += archive_until(inv, fleet, plots)
    found = assert_all_archived(fleet, plots)
    assert {os.path.dirname(p[0]) for p in found.values()} == {good}
    # the drive is repaired; once the cool-down is over it is used again, by itself
    subprocess.run(["mount", "-o", "remount,nr_inodes=1000", bad], check=True)
    # still set aside while the cool-down lasts (on a loaded machine the
    # copies above may have outlasted it: then it must be free again)
    before = time.time()
    archive_pass(inv)
    error = dirs_of(status_json(inv)[1], "harvester1")[bad]["error"]
    if time.time() < seen["set_aside_until"]:
        assert error and "set aside" in error, error
    elif before > seen["set_aside_until"] + 1:
        assert error is None, error
    time.sleep(max(0.0, seen["set_aside_until"] + 0.5 - time.time()))   # same machine, same clock
    more = give_plots(fleet, k18_plots, per_plotter=1, plots=plots)
    [new] = more.ids - set(found)
    archive_until(inv, fleet, more)
    found = assert_all_archived(fleet, more)
    assert os.path.dirname(found[new][0]) == bad
    _, doc = status_json(inv)
    assert dirs_of(doc, "harvester1")[bad]["error"] is None


def test_a_refused_transfer_key_is_the_plotters_problem_not_the_drives(
        ssh_fleet, tmpfs, tmp_path, k18_plots):
    fleet, h = farm_fleet(ssh_fleet, tmpfs, ["64m", "32m"])
    plots = give_plots(fleet, k18_plots, per_plotter=1)
    [pid] = plots.ids
    stranger = tmp_path / "stranger_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)],
                   check=True)
    inv = fleet.write_inventory(tmp_path / "inv.yaml", extra_vars_per_host={
        "plotter1": {"transfer_ssh_key": str(stranger)}})
    outs = []
    for _ in range(4):
        outs.append(archive_pass(inv).text)
        time.sleep(0.5)
    _, doc = status_json(inv)
    [t] = [t for x in doc["hosts"] if x["name"] == "plotter1" for t in x["transfers"]]
    assert t["status"] == "failed" and t["fault"] == "plotter", t
    assert "Permission denied (publickey" in t["error"], t
    for d in dirs_of(doc, "harvester1").values():
        assert d["error"] is None and d["set_aside_until"] is None, d
    harvester = next(x for x in doc["hosts"] if x["name"] == "harvester1")
    assert harvester["drive_failures"] == []
    assert not any("drive failure recorded" in o for o in outs), outs
    # shown on the plotter's transfer, in the plotter's own words
    assert "Permission denied (publickey" in plotfleet("status", "--inventory", inv).stdout
    src = next(Path(fleet.hosts["plotter1"].dirs["dst"][0]).glob("*.plot"))
    assert sha(src) == plots.digest[pid]


def test_farm_dirs_under_home_are_resolved_on_the_harvester(ssh_fleet, tmp_path, k18_plots):
    """`~` in farm_dirs means the harvester's home: rsync with --protect-args
    would expand nothing on the far side, so the harvester resolves it."""
    fleet = ssh_fleet(n_plotters=1, n_harvesters=1)
    name = f"plotfleet-test-farm-{uuid.uuid4().hex[:8]}"
    home = Path(os.path.expanduser("~"))   # the hosts' HOME: see tests/sshhosts.py
    try:
        (home / name).mkdir()       # (create_dirs makes only dirs inside the inventory's folder)
        inv = fleet.write_inventory(tmp_path / "inv.yaml", extra_vars_per_host={
            "harvester1": {"farm_dirs": [f"~/{name}"], "require_mounted_farm": False}})
        plots = give_plots(fleet, k18_plots, per_plotter=1)
        [pid] = plots.ids
        def farmed():
            return list((home / name).glob("*.plot")) if (home / name).exists() else []
        deadline = time.monotonic() + 40
        outs = []
        while not farmed():
            assert time.monotonic() < deadline, outs[-3:]
            outs.append(archive_pass(inv).text)
            time.sleep(0.3)
        [farmed] = farmed()
        assert sha(farmed) == plots.digest[pid]
        assert not list(Path(fleet.hosts["plotter1"].dirs["dst"][0]).glob("*.plot"))
        assert not Path("~").exists() and not Path(fleet.hosts["harvester1"].root, "~").exists()
    finally:
        shutil.rmtree(home / name, ignore_errors=True)
