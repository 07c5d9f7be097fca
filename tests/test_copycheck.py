"""The pieces that make a copy trustworthy, each on its own: plot headers and
digests (real chiapos plots, torn and impersonated copies), rsync's error
lines and whose fault they are, a drive's failure record, dir probes of
real mounts, and what the archiver decides from all of these."""
import os
import time
import struct
import subprocess

import pytest

from agent.facts import drive_health, plotfile, probe
from agent.launch.rsync_errors import classify
from orchestrator.core import copycheck
from orchestrator.core.decisions import NoteDriveFailure
from orchestrator.core.archiver import archive, failure_key
from orchestrator.core.state import Conflict, DriveFailure, expected_plot_bytes
from tests.factories import (NOW, fleet, harvester, host_state, inventory, partial, plot_file,
                             plotter, replace, transfer)

K = 25
SIZE = expected_plot_bytes(K)


# --- headers and digests -----------------------------------------------------------

def test_a_real_plot_header_names_its_id_and_k(k18_plots):
    [plot] = k18_plots.get(1)
    head = plot.read_bytes()[:64]
    h = plotfile.read_header(head)
    assert h["format"] == "v1" and h["k"] == 18 and h["plot_id"] in plot.name
    assert plotfile.check_header(str(plot)) is None


def test_bladebit_v2_header_and_an_unknown_format():
    pid = bytes(range(32))
    v2 = b"PLOT" + struct.pack("<I", 2) + pid + bytes([32]) + struct.pack(">H", 0) + b"\0" * 8
    h = plotfile.read_header(v2)
    assert (h["format"], h["version"], h["plot_id"], h["k"]) == ("v2", 2, pid.hex(), 32)
    name = f"/f/plot-k32-c05-2024-01-01-00-00-{pid.hex()}.plot"
    assert plotfile.header_problem(name, h) is None
    other = f"/f/plot-k32-c05-2024-01-01-00-00-{'ee' * 32}.plot"
    assert "name says k32 id eeee" in plotfile.header_problem(other, h)
    gigahorse = plotfile.read_header(os.urandom(64))
    assert gigahorse["format"] is None and plotfile.header_problem(other, gigahorse) is None


def test_a_file_that_impersonates_another_plot_is_told_apart(k18_plots, tmp_path):
    a, b = k18_plots.get(2)
    fake = tmp_path / b.name                 # b's name, a's bytes
    fake.write_bytes(a.read_bytes())
    assert "header says k18 id" in plotfile.check_header(str(fake))


def test_digests_see_a_torn_copy_of_exactly_the_right_length(k18_plots, tmp_path):
    [plot] = k18_plots.get(1)
    data = plot.read_bytes()
    torn = tmp_path / "torn"
    torn.write_bytes(data[:len(data) // 3] + b"\0" * (len(data) - len(data) // 3))
    twin = tmp_path / "twin"
    twin.write_bytes(data)
    small = dict(copycheck.spec(blocks=16), full_below=0, edge=4096, block=512)
    for spec in (copycheck.spec(), small):          # hashed whole, sampled
        src = plotfile.digest(str(plot), spec)
        assert plotfile.same(src, plotfile.digest(str(twin), spec)) == (True, None)
        ok, why = plotfile.same(src, plotfile.digest(str(torn), spec))
        assert not ok and "content differs" in why
    sampled = plotfile.digest(str(plot), small)
    assert sampled["method"] == "sampled" and sampled["bytes_read"] == 2 * 4096 + 16 * 512
    short = tmp_path / "short"
    short.write_bytes(data[:-1])
    assert "size" in plotfile.same(plotfile.digest(str(plot), copycheck.spec()),
                                   plotfile.digest(str(short), copycheck.spec()))[1]


def test_each_check_draws_its_own_offsets():
    assert copycheck.spec()["offsets"] != copycheck.spec()["offsets"]


# --- rsync's words ------------------------------------------------------------------

RO = 'rsync: [receiver] open "/farm3/x.plot.plotfleet-tmp" failed: Read-only file system (30)'
CLOSING = ("rsync error: some files/attrs were not transferred (see previous errors) "
           "(code 23) at main.c(1338) [sender=3.2.7]")


@pytest.mark.parametrize("text,code,fault,fatal,line", [
    (f"sending incremental file list\n{RO}\n{CLOSING}\n", 23, "drive", True, RO),
    # progress without a newline, then the error on the same line of the log
    (f"  2,097,152 100%  656.25MB/s    0:00:00 (xfr#1, to-chk=0/1){RO}\n{CLOSING}", 23,
     "drive", True, RO),
    ('rsync: [receiver] write failed on "/farm3/x": No space left on device (28)\n'
     'rsync error: error in file IO (code 11) at receiver.c(380) [receiver=3.2.7]', 11,
     "drive", True, 'rsync: [receiver] write failed on "/farm3/x": No space left on device (28)'),
    ('rsync: [receiver] write failed on "/farm3/x": Input/output error (5)', 11, "drive", False,
     'rsync: [receiver] write failed on "/farm3/x": Input/output error (5)'),
    ('rsync: [Receiver] change_dir#3 "/farm9" failed: No such file or directory (2)', 3,
     "drive", False, 'rsync: [Receiver] change_dir#3 "/farm9" failed: No such file or directory (2)'),
    # rsync < 3.2 names no side: the target dir tells
    ('rsync: open "/farm3/x.plot.plotfleet-tmp" failed: Permission denied (13)', 23, "drive",
     True, 'rsync: open "/farm3/x.plot.plotfleet-tmp" failed: Permission denied (13)'),
    ("chia@10.0.0.4: Permission denied (publickey).\nrsync: connection unexpectedly closed "
     "(0 bytes received so far) [sender]\nrsync error: unexplained error (code 255)", 255,
     "plotter", False, "chia@10.0.0.4: Permission denied (publickey)."),
    ("Host key verification failed.\nrsync: connection unexpectedly closed", 255, "plotter",
     False, "Host key verification failed."),
    ('rsync: [sender] read errors mapping "/dst/x.plot": Input/output error (5)', 23,
     "plotter", False, 'rsync: [sender] read errors mapping "/dst/x.plot": Input/output error (5)'),
    ("rsync: on remote machine: --fsync: unknown option\nrsync error: syntax or usage error "
     "(code 1)", 1, "plotter", False, "rsync: on remote machine: --fsync: unknown option"),
    ("ssh: connect to host 10.0.0.4 port 22: Connection refused\nrsync: connection "
     "unexpectedly closed (0 bytes received so far) [sender]", 255, "network", False,
     "ssh: connect to host 10.0.0.4 port 22: Connection refused"),
    ("", 20, "unknown", False, "rsync exit code 20"),
])
def test_the_specific_line_and_whose_fault_it_is(text, code, fault, fatal, line):
    why = classify(text, code, "/farm3")
    assert (why["fault"], why["fatal"], why["error"]) == (fault, fatal, line)


# --- a drive's record ----------------------------------------------------------------

def f(at, fatal=False, key=None):
    return {"key": key or str(at), "at": at, "error": f"failed at {at}", "fatal": fatal}


def test_one_fatal_or_two_close_failures_set_a_drive_aside_for_the_cooldown():
    w, cd = 1800.0, 600.0
    assert drive_health.set_aside([f(NOW - 10)], NOW, w, cd) is None       # one, not fatal
    until, why = drive_health.set_aside([f(NOW - 10, fatal=True)], NOW, w, cd)
    assert until == NOW - 10 + cd and why["error"] == f"failed at {NOW - 10}"
    until, _ = drive_health.set_aside([f(NOW - 1000), f(NOW - 10)], NOW, w, cd)
    assert until == NOW - 10 + cd
    assert drive_health.set_aside([f(NOW - 2000), f(NOW - 10)], NOW, w, cd) is None  # far apart
    assert drive_health.set_aside([f(NOW - 700, fatal=True)], NOW, w, cd) is None    # rested


def test_a_drive_record_lives_on_the_host_and_applies_to_the_whole_device(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert drive_health.record_failure(a, "k1", NOW, "boom", True)
    assert not drive_health.record_failure(a, "k1", NOW, "boom", True)     # once per key
    state = drive_health.drive_state({a: 7, b: 7}, 1800, 600, NOW + 1)
    assert state[a]["until"] == state[b]["until"] == NOW + 600 and state[b]["failures"] == ["k1"]
    drive_health.clear([a])
    assert drive_health.drive_state({a: 7, b: 7}, 1800, 600, NOW + 1)[b]["until"] is None


# --- dirs as they really are ------------------------------------------------------------

def test_probes_name_what_is_wrong_with_a_dir(tmp_path):
    mnt = tmp_path / "drive"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    try:
        (tmp_path / "file").write_text("x")
        p = probe.Prober()
        got = p.probe([str(mnt), str(tmp_path / "gone"), str(tmp_path / "file")], timeout=2)
        assert got[str(mnt)]["error"] is None and got[str(mnt)]["free_bytes"] > 0
        assert got[str(tmp_path / "gone")]["error_code"] == "missing"
        assert got[str(tmp_path / "file")]["error_code"] == "not_dir"
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        assert p.probe([str(mnt)], timeout=2)[str(mnt)]["error"] == "read-only file system"
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


# --- what the archiver decides ----------------------------------------------------------

def test_a_full_length_partial_nobody_reports_is_checked_not_resumed():
    p, h = plotter(k=K), harvester()
    pl = plot_file(k=K)
    part = partial(pl, size=SIZE)
    d = archive(fleet(host_state(p, plots=[pl]), host_state(h, partials=[part])),
                inventory(p, h))
    assert d.transfers == () and [(x.host, x.partial, x.plot) for x in d.promotes] == [
        ("h1", part.path, pl.path)]
    assert "compared first" in d.promotes[0].reason
    longer = archive(fleet(host_state(p, plots=[pl]),
                           host_state(h, partials=[replace(part, size_bytes=SIZE + 1)])),
                     inventory(p, h))
    assert len(longer.promotes) == 1 and longer.transfers == ()


def test_a_conflict_sends_the_plot_elsewhere_and_clears_its_partial_there():
    p, h = plotter(k=K), harvester(farm_dirs=("/f0", "/f1"))
    pl = plot_file(k=K)
    name = os.path.basename(pl.path)
    hs = replace(host_state(h, free={"/f0": 100 * SIZE, "/f1": 10 * SIZE},
                            partials=[partial(pl, farm_dir="/f0", size=SIZE // 2)]),
                 conflicts=(Conflict(f"/f0/{name}", name, "content differs"),))
    d = archive(fleet(host_state(p, plots=[pl]), hs), inventory(p, h))
    assert [(t.to_dir, t.reason.split(":")[0]) for t in d.transfers] == [("/f1", "spread")]
    assert [c.partial for c in d.cleans] == [partial(pl, farm_dir="/f0").path]


def test_a_drive_fault_is_recorded_on_the_harvester_before_anything_else():
    p, h = plotter(k=K), harvester(farm_dirs=("/f0", "/f1"))
    pl = plot_file(k=K)
    failed = transfer(pl, to_dir="/f0", status="failed", fault="drive", fatal=True,
                      error="rsync: [receiver] open ... Read-only file system (30)",
                      started_at=NOW - 60, ended_at=NOW - 30)
    hv = host_state(h, host_time=NOW + 5)           # its clock runs 5 s ahead
    d = archive(fleet(host_state(p, plots=[pl], transfers=[failed]), hv), inventory(p, h))
    assert d.notes == (NoteDriveFailure("h1", "/f0", failure_key("p1", failed), NOW - 25,
                                        failed.error, True, "p1", pl.path),)
    assert d.transfers == () and "the drive's record comes first" in d.waits[0].reason
    # recorded, and the harvester set the drive aside: the plot goes elsewhere
    aside = replace(hv, drive_failures=(DriveFailure("/f0", failure_key("p1", failed)),),
                    dirs=tuple(replace(x, error="set aside until 12:00: ...",
                                       error_code="set_aside") if x.path == "/f0" else x
                               for x in hv.dirs))
    d = archive(fleet(host_state(p, plots=[pl], transfers=[failed]), aside), inventory(p, h))
    assert d.notes == () and [t.to_dir for t in d.transfers] == ["/f1"]


def test_a_plotter_fault_never_touches_the_drives_record():
    p, h = plotter(k=K), harvester()
    pl = plot_file(k=K)
    failed = transfer(pl, to_dir="/f0", status="failed", fault="plotter",
                      error="chia@h1: Permission denied (publickey).")
    d = archive(fleet(host_state(p, plots=[pl], transfers=[failed]), host_state(h)),
                inventory(p, h))
    assert d.notes == () and [t.to_dir for t in d.transfers] == ["/f0"]
    assert "Permission denied (publickey)" in d.transfers[0].reason


def test_a_plot_whose_header_names_another_plot_is_not_archived():
    p, h = plotter(k=K), harvester()
    pl = replace(plot_file(k=K), error="header says k25 id 00ab, name says k25 id 0000")
    d = archive(fleet(host_state(p, plots=[pl]), host_state(h)), inventory(p, h))
    assert d.transfers == () and d.promotes == ()
    assert d.waits[0].reason == f"not archived: {pl.error}"


def test_transfers_go_to_the_dir_as_the_harvester_resolves_it_and_fsync_when_both_can():
    p, h = plotter(k=K), harvester(farm_dirs=("~/farm",))
    pl = plot_file(k=K)
    hv = host_state(h)
    hv = replace(hv, dirs=tuple(replace(x, resolved="/home/chia/farm") for x in hv.dirs),
                 rsync_version=(3, 2, 7))
    old = replace(host_state(p, plots=[pl]), rsync_version=(3, 1, 3))
    new = replace(host_state(p, plots=[pl]), rsync_version=(3, 2, 4))
    [t] = archive(fleet(old, hv), inventory(p, h)).transfers
    assert (t.to_dir, t.dest_dir, t.fsync) == ("~/farm", "/home/chia/farm", False)
    [t] = archive(fleet(new, hv), inventory(p, h)).transfers
    assert t.fsync is True


def test_a_plot_impersonating_another_is_shown_with_why_and_cleared_once_replaced(
        agent, k18_plots, tmp_path):
    from tests.agent_helpers import host_dirs
    d, config = host_dirs(tmp_path / "host")
    a, b = k18_plots.get(2)
    fake = os.path.join(d["dst"], b.name)
    with open(fake, "wb") as f:
        f.write(a.read_bytes())             # b's name, a's bytes
    [p] = agent.ok("snapshot", config=config)["plots"]
    assert "header says k18 id" in p["error"] and "name says k18" in p["error"]
    [p] = agent.ok("snapshot", config=config)["plots"]          # asked again: the same
    assert "header says" in p["error"]
    with open(fake, "wb") as f:
        f.write(b.read_bytes())             # the real plot now
    os.utime(fake, (time.time() + 5, time.time() + 5))
    [p] = agent.ok("snapshot", config=config)["plots"]
    assert p["error"] is None
