"""Transfer queues in the plan (core/archiver.py's _Lanes): with the keys'
defaults, a plotter hands its runner every plot a drive can take within
transfer_queue_s, spreads them over as many drives as its plots arrive
faster than one takes them, joins the queue its runner already works
through, and never shares a drive with another writer."""
import pytest

from orchestrator.core.archiver import archive
from orchestrator.core.decisions import WaitKind
from orchestrator.core.state import Host, Transfer
from tests.factories import NOW, fleet, harvester, host_state, inventory, plot_file

K = 18
MB = 1_000_000


def queued_plotter(name="p1", **fields) -> Host:
    """A plotter with the keys' defaults for everything transfer-related."""
    base = dict(name=name, roles=("plotter",), address=f"{name}.lan", tmp_dirs=("/t0",),
                dst_dirs=("/d0",), plotter="chiapos", k=K)
    base.update(fields)
    return Host(**base)


def farm(name="h1", drives=4, **fields):
    dirs = tuple(f"/f{i}" for i in range(drives))
    return harvester(name, farm_dirs=dirs, **fields)


def plots(n, size=2 * MB, age_s=0.0, spacing_s=1.0, start=0):
    """n plots of `size`, the newest `age_s` old, one every `spacing_s` before it."""
    return [plot_file(k=K, n=start + i, size=size, mtime=NOW - age_s - spacing_s * (n - 1 - i))
            for i in range(n)]


def plan(p, h, ps, transfers=(), partials=()):
    st = fleet(host_state(p, plots=ps, transfers=tuple(transfers)),
               host_state(h, devices={d: f"disk{i}" for i, d in enumerate(h.farm_dirs)},
                          partials=tuple(partials)))
    return archive(st, inventory(p, h))


def drives_of(d):
    return {t.to_dir for t in d.transfers}


def test_the_defaults_hand_over_every_plot_at_once():
    # 8 plots of 2 MB made over 8 s: 2 MB/s, far below an unmeasured drive
    p, h = queued_plotter(), farm()
    d = plan(p, h, plots(8))
    assert len(d.transfers) == 8 and not d.waits
    assert len(drives_of(d)) == 1       # one drive keeps up with 2 MB/s


def test_plots_arriving_faster_than_a_drive_takes_them_spread_over_drives():
    # the drive's rate is its bandwidth limit (1000 KiB/s), and plots of 2 MB
    # come every 0.5 s (4 MB/s): four drives are needed, four are written
    p, h = queued_plotter(transfer_bwlimit_kbps=1000), farm()
    ps = plots(40, spacing_s=0.5)
    d = plan(p, h, ps)
    assert drives_of(d) == {"/f0", "/f1", "/f2", "/f3"}
    per = {x: [t for t in d.transfers if t.to_dir == x] for x in drives_of(d)}
    assert max(map(len, per.values())) - min(map(len, per.values())) <= 1     # even queues
    # each queue holds at most transfer_queue_s (120 s) at 1000 KiB/s: 61 plots of 2 MB
    assert len(d.transfers) == 40


def test_a_queue_holds_transfer_queue_s_and_the_rest_wait_saying_why():
    p, h = queued_plotter(transfer_bwlimit_kbps=100, max_transfers_per_plotter=1), farm()
    d = plan(p, h, plots(20, spacing_s=600, age_s=600))
    cap = 100 * 1024 * 120                      # 120 s at 100 KiB/s
    assert len(d.transfers) == cap // (2 * MB)
    assert drives_of(d) == {d.transfers[0].to_dir}
    busy = [w for w in d.waits if w.kind is WaitKind.PLOTTER_BUSY]
    assert len(busy) == 20 - len(d.transfers) and "queues full" in busy[0].reason


def test_a_queue_is_never_shorter_than_one_plot():
    # a 100 MB plot at 100 KiB/s takes 1000 s, far more than the queue's 120 s
    p, h = queued_plotter(transfer_bwlimit_kbps=100, max_transfers_per_plotter=1), farm()
    d = plan(p, h, plots(3, size=100 * MB, spacing_s=3600, age_s=3600))
    assert len(d.transfers) == 1


def test_transfer_queue_s_0_is_one_plot_per_drive_per_pass():
    p, h = queued_plotter(transfer_queue_s=0), farm()
    d = plan(p, h, plots(8))
    assert len(d.transfers) == 4 and len(drives_of(d)) == 4


def test_a_pass_joins_the_queue_its_runner_works_through():
    p, h = queued_plotter(transfer_bwlimit_kbps=1000, max_transfers_per_plotter=1), farm()
    ps = plots(6, spacing_s=600, age_s=600)
    running = (Transfer(ps[0].path, "h1", "/f2", 1 * MB, 4242, 2 * MB, "running",
                        started_at=NOW - 2),
               Transfer(ps[1].path, "h1", "/f2", 0, 4242, 2 * MB, "queued", started_at=NOW - 2))
    d = plan(p, h, ps, running)
    assert {t.plot for t in d.transfers} == {x.path for x in ps[2:]}
    assert drives_of(d) == {"/f2"}
    assert all("queued for h1:/f2" in t.reason for t in d.transfers)


def test_another_plotters_drive_takes_no_plot_of_mine():
    p1 = queued_plotter("p1", max_transfers_per_plotter=1)
    p2 = queued_plotter("p2", max_transfers_per_plotter=1)
    h = farm(drives=1)
    mine = plots(2, spacing_s=600, age_s=600)
    theirs = plots(2, spacing_s=600, age_s=600, start=10)
    st = fleet(host_state(p1, plots=mine),
               host_state(p2, plots=theirs, transfers=(
                   Transfer(theirs[0].path, "h1", "/f0", MB, 99, 2 * MB, "running",
                            started_at=NOW - 1),)),
               host_state(h, devices={"/f0": "disk0"}))
    d = archive(st, inventory(p1, p2, h))
    assert {t.from_host for t in d.transfers} == {"p2"}       # p2 joins its own queue
    assert {w.subject for w in d.waits if w.host == "p1"} == {
        m.path.rsplit("/", 1)[1] for m in mine}


def test_max_inbound_transfers_bounds_the_drives_a_harvester_writes_at_once():
    p, h = queued_plotter(transfer_bwlimit_kbps=1000), farm(max_inbound_transfers=2)
    d = plan(p, h, plots(40, spacing_s=0.5))
    assert len(drives_of(d)) == 2 and len(d.transfers) == 40


def test_max_transfers_per_plotter_bounds_its_drives():
    p, h = queued_plotter(transfer_bwlimit_kbps=1000, max_transfers_per_plotter=2), farm()
    d = plan(p, h, plots(40, spacing_s=0.5))
    assert len(drives_of(d)) == 2


@pytest.mark.parametrize("status", ["running", "queued"])
def test_a_plot_in_a_queue_is_not_sent_again(status):
    p, h = queued_plotter(), farm()
    ps = plots(2)
    t = Transfer(ps[0].path, "h1", "/f1", 0, 77, 2 * MB, status, started_at=NOW - 1)
    d = plan(p, h, ps, (t,))
    assert ps[0].path not in {x.plot for x in d.transfers}


def test_apply_hands_each_plotters_plots_for_one_drive_over_as_one_queue():
    from orchestrator.core.decisions import StartTransfer
    from orchestrator.core.replot import Deletion
    from orchestrator.remote.apply import queues

    def t(src, plot, to_dir, deletions=()):
        return StartTransfer(src, f"/d0/{plot}.plot", MB, "h1", to_dir, "ssh", "",
                             deletions=deletions)
    d = Deletion("h1", "/f0/old.plot", MB, "rule 1", "e.plot")
    plan = (t("p1", "a", "/f0"), t("p2", "b", "/f1"), t("p1", "c", "/f0"), t("p1", "e", "/f0", (d,)),
            t("p2", "f", "/f1"), t("p1", "g", "/f2"))
    got = [[x.plot.rsplit("/", 1)[1][0] for x in q] for q in queues(plan)]
    # in the plan's order; a plot replotting makes room for goes alone
    assert got == [["a", "c"], ["b", "f"], ["e"], ["g"]]
