"""The archiver moves finished plots one per drive, to drives with room, and
derives every completion step from what hosts report."""
import posixpath

import pytest

from orchestrator.core.decisions import Promote, remove_after_promote
from orchestrator.core.archiver import archive
from orchestrator.core.state import expected_plot_bytes
from tests.factories import (NOW, GiB, MiB, down, fleet, harvester, host_state, inventory, job,
                             partial, plot_file, plotter, replace, transfer)

K = 25
SIZE = expected_plot_bytes(K)


def moves(d):
    return [(t.from_host, t.plot[-9:-5], t.to_host, t.to_dir) for t in d.transfers]


def waits(d):
    return {(w.host, w.subject[-13:-5]): w.reason for w in d.waits}


def test_one_plot_goes_to_the_harvester_drive_with_most_room():
    p = plotter(k=K)
    h = harvester(farm_dirs=("/f0", "/f1"))
    pl = plot_file(k=K)
    d = archive(fleet(host_state(p, plots=[pl]),
                      host_state(h, free={"/f0": 10 * GiB, "/f1": 20 * GiB})), inventory(p, h))
    assert [(t.from_host, t.plot, t.to_host, t.to_dir, t.mode, t.size_bytes) for t in d.transfers] \
        == [("p1", pl.path, "h1", "/f1", "ssh", SIZE)]
    assert d.waits == () and d.promotes == () and d.cleans == () and d.notes == ()


def test_one_transfer_per_drive_two_dirs_on_one_disk_are_one_drive():
    p = plotter(k=K, max_transfers_per_plotter=4)
    h = harvester(farm_dirs=("/f0", "/f1"))
    plots = [plot_file(k=K, n=i, mtime=100 + i) for i in range(3)]
    st = fleet(host_state(p, plots=plots), host_state(h, devices={"/f1": "disk0", "/f0": "disk0"}))
    d = archive(st, inventory(p, h))
    assert len(d.transfers) == 1 and d.transfers[0].plot == plots[0].path       # oldest first
    assert set(waits(d).values()) == {"all drives busy"} and len(d.waits) == 2


def test_drive_busy_with_a_transfer_from_another_plotter_or_a_receiving_partial():
    a, b = plotter("a", k=K), plotter("b", k=K)
    h = harvester(farm_dirs=("/f0", "/f1"))
    pa, pb, pc = plot_file(k=K, n=1), plot_file(k=K, n=2), plot_file(k=K, n=3)
    # a is sending to /f0; /f1 is receiving something from a plotter that is down
    st = fleet(host_state(a, plots=[pa], transfers=[transfer(pa, to_dir="/f0/", done=MiB)]),
               host_state(b, plots=[pb]),
               host_state(h, partials=[partial(pc, farm_dir="/f1", size=MiB, receiving=True)]))
    d = archive(st, inventory(a, b, h))
    assert d.transfers == () and waits(d) == {("b", pb.plot_id[-8:]): "all drives busy"}
    # once /f1 is done receiving, b goes there
    st = replace(st, hosts=st.hosts[:2] + (host_state(h),))
    assert moves(archive(st, inventory(a, b, h))) == [("b", "0002", "h1", "/f1")]


def test_plotter_transfer_limit():
    p = plotter(k=K, max_transfers_per_plotter=1)
    h = harvester(farm_dirs=("/f0", "/f1"))
    sending, waiting = plot_file(k=K, n=1), plot_file(k=K, n=2)
    st = fleet(host_state(p, plots=[sending, waiting], transfers=[transfer(sending)]), host_state(h))
    d = archive(st, inventory(p, h))
    assert d.transfers == () and waits(d) == {("p1", "00000002"): "plotter busy: 1/1 transfers"}
    two = replace(p, max_transfers_per_plotter=2)
    assert moves(archive(st, inventory(two, h))) == [("p1", "0002", "h1", "/f1")]


def test_room_counts_reserve_and_bytes_still_arriving():
    a = plotter("a", k=K)
    h = harvester(farm_dirs=("/f0",), farm_reserve_bytes=GiB)
    pl = plot_file(k=K)
    d = archive(fleet(host_state(a, plots=[pl]), host_state(h, free={"/f0": GiB + SIZE - 1})),
                inventory(a, h))
    assert d.transfers == () and list(waits(d).values()) == [
        "no drive with room for 636.5 MiB (+ reserve); most room: h1:/f0 (636.5 MiB)"]
    assert moves(archive(fleet(host_state(a, plots=[pl]), host_state(h, free={"/f0": GiB + SIZE})),
                         inventory(a, h))) == [("a", "0000", "h1", "/f0")]


def test_spread_picks_most_room_and_pack_the_fullest_that_fits():
    hs = [harvester("h1", farm_dirs=("/f0", "/f1")), harvester("h2", farm_dirs=("/g0",))]
    free = [{"/f0": 5 * SIZE, "/f1": SIZE // 2}, {"/g0": 2 * SIZE}]
    plots = [plot_file(k=K, n=i, mtime=i) for i in range(3)]

    def run(fill):
        p = plotter(k=K, fill=fill, max_transfers_per_plotter=3)
        st = fleet(host_state(p, plots=plots), *[host_state(h, free=f) for h, f in zip(hs, free)])
        return archive(st, inventory(p, *hs))
    spread = run("spread")
    assert [(t.to_host, t.to_dir) for t in spread.transfers] == [("h1", "/f0"), ("h2", "/g0")]
    pack = run("pack")
    assert [(t.to_host, t.to_dir) for t in pack.transfers] == [("h2", "/g0"), ("h1", "/f0")]
    assert list(waits(pack).values()) == ["all drives busy"]


def test_dst_dir_about_to_receive_a_plot_is_held_back_unless_it_cannot_fit_it():
    # plotman's compute_priority: a dst dir whose job is in 3:7 or later gets
    # its plot any moment; reading from it now would compete with that write
    p = plotter(k=K, dst_dirs=("/d0", "/d1"))
    h = harvester()
    old = plot_file("/d0", k=K, n=1, mtime=10)
    new = plot_file("/d1", k=K, n=2, mtime=20)
    js = [job(dst="/d1", phase=(4, 2), k=K)]
    st = fleet(host_state(p, plots=[old, new], jobs=js), host_state(h))
    assert moves(archive(st, inventory(p, h))) == [("p1", "0001", "h1", "/f0")]
    # ...but a dst dir without room for the plot heading to it is emptied first
    st = fleet(host_state(p, plots=[old, new], jobs=js, free={"/d1": SIZE // 2}), host_state(h))
    assert moves(archive(st, inventory(p, h))) == [("p1", "0002", "h1", "/f0")]


def test_a_drive_holding_a_partial_of_the_plot_is_preferred():
    p = plotter(k=K)
    h = harvester(farm_dirs=("/f0", "/f1"))
    pl = plot_file(k=K)
    st = fleet(host_state(p, plots=[pl]),
               host_state(h, free={"/f0": 9 * SIZE, "/f1": SIZE - 10 * MiB},
                          partials=[partial(pl, farm_dir="/f1", size=60 * MiB)]))
    d = archive(st, inventory(p, h))
    assert moves(d) == [("p1", "0000", "h1", "/f1")] and "resume 60.0 MiB" in d.transfers[0].reason
    assert d.cleans == ()


def test_failed_transfer_is_retried_to_the_same_drive():
    p = plotter(k=K)
    h = harvester(farm_dirs=("/f0", "/f1"))
    pl = plot_file(k=K)
    failed = transfer(pl, to_dir="/f0", done=SIZE // 2, status="failed", error="rsync: broken pipe")
    st = fleet(host_state(p, plots=[pl], transfers=[failed]),
               host_state(h, free={"/f0": SIZE, "/f1": 50 * SIZE},
                          partials=[partial(pl, farm_dir="/f0", size=SIZE // 2)]))
    d = archive(st, inventory(p, h))
    assert moves(d) == [("p1", "0000", "h1", "/f0")]
    assert d.transfers[0].reason == "retry after failure: rsync: broken pipe"


def test_failed_transfer_waits_for_its_unreachable_harvester_but_not_for_a_lost_drive():
    p = plotter(k=K)
    h1, h2 = harvester("h1", farm_dirs=("/f0",)), harvester("h2", farm_dirs=("/g0",))
    pl = plot_file(k=K)
    failed = transfer(pl, to_dir="/f0", done=SIZE // 2, status="failed", error="interrupted")
    st = fleet(host_state(p, plots=[pl], transfers=[failed]), down(h1), host_state(h2))
    d = archive(st, inventory(p, h1, h2))
    assert d.transfers == () and list(waits(d).values()) == ["retry to h1:/f0 waits: h1 unreachable"]
    # h1 answers, but /f0 is gone (unmounted, failed): the plot goes elsewhere
    gone = harvester("h1", farm_dirs=("/f0", "/f1"))
    st = fleet(host_state(p, plots=[pl], transfers=[failed]), host_state(gone), host_state(h2))
    st = replace(st, hosts=(st.hosts[0], replace(st.hosts[1], dirs=tuple(
        x for x in st.hosts[1].dirs if x.path != "/f0")), st.hosts[2]))
    assert moves(archive(st, inventory(p, gone, h2)))[0][2:] in {("h1", "/f1"), ("h2", "/g0")}


def test_failed_transfer_whose_drive_filled_up_goes_to_another():
    p = plotter(k=K)
    h = harvester(farm_dirs=("/f0", "/f1"))
    pl = plot_file(k=K)
    failed = transfer(pl, to_dir="/f0", done=SIZE // 2, status="failed", error="rsync exit code 11")
    st = fleet(host_state(p, plots=[pl], transfers=[failed]),
               host_state(h, free={"/f0": SIZE // 4, "/f1": 50 * SIZE},
                          partials=[partial(pl, farm_dir="/f0", size=SIZE // 2)]))
    d = archive(st, inventory(p, h))
    assert moves(d) == [("p1", "0000", "h1", "/f1")]


def test_copied_transfer_with_full_partial_is_promoted_then_source_removal_follows():
    p = plotter(k=K)
    h = harvester()
    pl = plot_file(k=K)
    part = partial(pl, size=SIZE)
    st = fleet(host_state(p, plots=[pl], transfers=[transfer(pl, done=SIZE, status="copied")]),
               host_state(h, partials=[part]))
    d = archive(st, inventory(p, h))
    assert d.promotes == (Promote("h1", part.path, SIZE, "p1", pl.path, sent=True),) and d.transfers == ()
    spec = {"edge": 1, "block": 1, "offsets": [], "full_below": 0}
    src = {"size": SIZE, "sha256": "ab" * 32, "method": "sampled"}
    rm = remove_after_promote(d.promotes[0], src, dict(src, spec=spec))
    assert (rm.host, rm.plot, rm.confirmed_size) == ("p1", pl.path, SIZE)
    assert rm.proof == dict(src, spec=spec)     # what the plotter compares with its own
    # same size, other bytes: a torn copy proves nothing
    with pytest.raises(ValueError, match="source kept"):
        remove_after_promote(d.promotes[0], src, dict(src, sha256="cd" * 32, spec=spec))
    with pytest.raises(ValueError, match="source kept"):
        remove_after_promote(d.promotes[0], src, dict(src, size=SIZE - 1, spec=spec))


def test_copied_short_partial_is_sent_again_and_missing_partial_is_confirmed_again():
    p = plotter(k=K)
    h = harvester()
    pl = plot_file(k=K)
    copied = transfer(pl, done=SIZE, status="copied")
    short = archive(fleet(host_state(p, plots=[pl], transfers=[copied]),
                          host_state(h, partials=[partial(pl, size=SIZE - 1)])), inventory(p, h))
    # cut after rsync finished: resumed into the same drive, never waited for
    assert short.promotes == () and moves(short) == [("p1", "0000", "h1", copied.to_dir)]
    gone = archive(fleet(host_state(p, plots=[pl], transfers=[copied]), host_state(h)),
                   inventory(p, h))
    # promoted before a controller died: ask the harvester to confirm the final file again
    assert gone.transfers == ()
    assert [(x.host, x.partial, x.size_bytes, x.plot) for x in gone.promotes] == [
        ("h1", posixpath.join(copied.to_dir, posixpath.basename(pl.path) + ".plotfleet-tmp"),
         SIZE, pl.path)]


def test_stale_partial_cleaned_only_when_every_plotter_answered():
    a, b = plotter("a", k=K), plotter("b", k=K)
    h = harvester()
    gone, kept = plot_file(k=K, n=1), plot_file(k=K, n=2)
    farm = host_state(h, partials=[partial(gone, size=MiB), partial(kept, size=MiB)])
    st = fleet(host_state(a, plots=[kept]), host_state(b), farm)
    d = archive(st, inventory(a, b, h))
    assert [c.partial for c in d.cleans] == [partial(gone).path]
    assert moves(d) == [("a", "0002", "h1", "/f0")]                 # and kept resumes
    d = archive(fleet(host_state(a, plots=[kept]), down(b), farm), inventory(a, b, h))
    assert d.cleans == ()


def test_local_transfer_only_to_a_farm_dir_on_the_same_machine():
    p = plotter("p1", k=K, transfer="local", address="10.0.0.5")
    far = harvester("far", address="10.0.0.9")
    near = harvester("near", address="10.0.0.5", farm_dirs=("/mnt/farm",))
    pl = plot_file(k=K)
    d = archive(fleet(host_state(p, plots=[pl]), host_state(far, default_free=99 * SIZE),
                      host_state(near, default_free=2 * SIZE)), inventory(p, far, near))
    assert [(t.to_host, t.to_dir, t.mode) for t in d.transfers] == [("near", "/mnt/farm", "local")]
    d = archive(fleet(host_state(p, plots=[pl]), host_state(far)), inventory(p, far))
    assert list(waits(d).values()) == ["no reachable harvester on this machine (transfer: local)"]


def test_plotter_that_is_its_own_harvester():
    p = plotter("box", k=K, roles=("plotter", "harvester"), farm_dirs=("/farm",), transfer="local")
    pl = plot_file(k=K)
    d = archive(fleet(host_state(p, plots=[pl])), inventory(p))
    assert [(t.from_host, t.to_host, t.to_dir, t.mode) for t in d.transfers] == \
        [("box", "box", "/farm", "local")]


def test_no_reachable_harvester_and_no_harvester_at_all():
    p = plotter(k=K)
    h = harvester()
    pl = plot_file(k=K)
    d = archive(fleet(host_state(p, plots=[pl]), down(h)), inventory(p, h))
    assert list(waits(d).values()) == ["no reachable harvester"]
    d = archive(fleet(host_state(p, plots=[pl])), inventory(p))
    assert d.transfers == () and d.waits == ()           # plots simply stay in dst


def test_round_robin_across_plotters_in_inventory_order():
    ps = [plotter(f"p{i}", k=K) for i in range(3)]
    h = harvester(farm_dirs=("/f0", "/f1"))
    st = fleet(*[host_state(p, plots=[plot_file(k=K, n=i)]) for i, p in enumerate(ps)],
               host_state(h, free={"/f0": 5 * SIZE, "/f1": 4 * SIZE}))
    d = archive(st, inventory(*ps, h))
    assert moves(d) == [("p0", "0000", "h1", "/f0"), ("p1", "0001", "h1", "/f1")]
    assert {w.host: w.reason for w in d.waits} == {"p2": "all drives busy"}


def test_plot_already_arriving_somewhere_is_not_sent_twice():
    p = plotter(k=K)
    h = harvester(farm_dirs=("/f0", "/f1"))
    pl = plot_file(k=K)
    st = fleet(host_state(p, plots=[pl]),
               host_state(h, partials=[partial(pl, farm_dir="/f0", size=MiB, receiving=True)]))
    d = archive(st, inventory(p, h))
    assert d.transfers == () and list(waits(d).values()) == ["h1:/f0 is receiving it already"]


def test_finished_transfer_records_of_removed_plots_are_history():
    p = plotter(k=K)
    h = harvester()
    done, failed = plot_file(k=K, n=1), plot_file(k=K, n=2)
    st = fleet(host_state(p, transfers=[transfer(done, done=SIZE, status="copied"),
                                        transfer(failed, status="failed")]),
               host_state(h, partials=[partial(failed, size=MiB)]))
    d = archive(st, inventory(p, h))
    assert d.waits == () and d.promotes == () and d.transfers == ()
    assert [c.partial for c in d.cleans] == [partial(failed).path]


def test_promote_takes_the_partial_on_the_drive_it_was_sent_to():
    p = plotter(k=K)
    h = harvester(farm_dirs=("/f0", "/f1"))
    pl = plot_file(k=K)
    st = fleet(host_state(p, plots=[pl], transfers=[transfer(pl, to_dir="/f1", done=SIZE,
                                                             status="copied")]),
               host_state(h, partials=[partial(pl, farm_dir="/f0", size=SIZE),
                                       partial(pl, farm_dir="/f1", size=SIZE)]))
    d = archive(st, inventory(p, h))
    assert [x.partial for x in d.promotes] == [partial(pl, farm_dir="/f1").path]


def test_actions_read_as_one_line_each():
    p = plotter(k=K)
    h = harvester()
    pl = plot_file(k=K)
    d = archive(fleet(host_state(p, plots=[pl]), host_state(h, free={"/f0": 2 * GiB})), inventory(p, h))
    assert d.transfers[0].describe() == (
        f"p1:{pl.path} -> h1:/f0 [ssh, 636.5 MiB] (spread: h1:/f0 has 2.0 GiB free (after reserve))")
    pr = Promote("h1", "/f0/.x.partial", SIZE, "p1", pl.path)
    assert pr.describe() == f"h1:/f0/.x.partial -> {pl.path[4:]} (636.5 MiB, from p1; copied)"
    src = {"size": SIZE, "sha256": "ab" * 32, "method": "full", "spec": {}}
    assert remove_after_promote(pr, src, src).describe() == \
        f"p1:{pl.path} (copy verified by full digest, 636.5 MiB)"


def test_harvesters_left_out_of_the_run_are_said_so():
    p, h = plotter(k=K), harvester()
    d = archive(fleet(host_state(p, plots=[plot_file(k=K)])), inventory(p, h))
    assert list(waits(d).values()) == ["no harvester in this run"] and d.cleans == ()


def test_a_harvester_that_stays_down_gets_its_failed_plot_sent_elsewhere():
    p = plotter(k=K)
    h1, h2 = harvester("h1", farm_dirs=("/f0",)), harvester("h2", farm_dirs=("/g0",))
    pl = plot_file(k=K)
    recent = transfer(pl, to_dir="/f0", done=SIZE // 2, status="failed", error="interrupted",
                      ended_at=NOW - 300)
    st = fleet(host_state(p, plots=[pl], transfers=[recent]), down(h1), host_state(h2))
    d = archive(st, inventory(p, h1, h2))
    assert d.transfers == () and list(waits(d).values()) == ["retry to h1:/f0 waits: h1 unreachable"]
    # down for more than ten minutes since the copy stopped: another harvester takes it
    old = replace(recent, ended_at=NOW - 601)
    st = fleet(host_state(p, plots=[pl], transfers=[old]), down(h1), host_state(h2))
    assert moves(archive(st, inventory(p, h1, h2))) == [("p1", "0000", "h2", "/g0")]
