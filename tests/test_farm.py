"""One farm model: the summary's room, the backpressure and the archiver
all count a harvester's reserve the same way."""
from rich.console import Console

from orchestrator.core.archiver import archive
from orchestrator.core.farm import farm
from orchestrator.core.scheduler import schedule
from orchestrator.core.state import expected_plot_bytes
from orchestrator.ui.views import summary_table
from tests.factories import NOW, fleet, harvester, host_state, inventory, plot_file, plotter

K = 25
PLOT = expected_plot_bytes(K)


def render(table) -> str:
    c = Console(width=200, record=True)
    c.print(table)
    return c.export_text()


def test_room_is_after_reserve_everywhere():
    p = plotter(k=K, tmp_dirs=("/t0",), global_stagger_m=0, max_transfers_per_plotter=2)
    h = harvester(farm_dirs=("/f0", "/f1"), farm_reserve_bytes=9 * PLOT)
    # each drive has 10 plots' worth free, 9 of them reserved: room for 1 plot each
    hv = host_state(h, free={"/f0": 10 * PLOT, "/f1": 10 * PLOT})
    waiting = [plot_file(k=K, n=i) for i in range(2)]
    st = fleet(host_state(p, plots=waiting), hv)
    hosts = inventory(p, h)
    model = farm(st, hosts)
    assert (len(model.drives), model.room, model.fits(K)) == (2, 2 * PLOT, 2)
    text = " ".join(render(summary_table(st, hosts)).split())
    assert "on 2 drives (after reserve), room for 2 x k25" in text
    # the two plots waiting take that room: no new job, and the note says why
    d = schedule(st, hosts, NOW)
    assert d.starts == () and d.backpressure and d.backpressure.startswith("farm full: ")
    # and the archiver sends exactly those two, one per drive
    assert sorted(t.to_dir for t in archive(st, hosts).transfers) == ["/f0", "/f1"]


def test_one_drive_is_said_so_and_drives_with_errors_are_no_room():
    p, h = plotter(k=K), harvester(farm_dirs=("/f0", "/f1"))
    hv = host_state(h, free={"/f0": 3 * PLOT, "/f1": 50 * PLOT},
                    errors={"/f1": "read-only file system"})
    st = fleet(host_state(p), hv)
    model = farm(st, inventory(p, h))
    assert [d.dirs for d in model.drives] == [("/f0",)] and model.fits(K) == 3
    assert model.unusable == (("h1", "/f1", "read-only file system"),)
    assert "on 1 drive (after reserve)" in " ".join(
        render(summary_table(st, inventory(p, h))).split())
