"""The dashboard's screen fits its terminal: at 80x24, in priority order, each
plotter's plotting and archiving line, the jobs, the transfers, the drives;
at 200x50 every element, no transfer column crushed below its content."""
import re

from rich.console import Console

from orchestrator.ui import dashboard
from tests import factories as f

FARM = tuple(f"/mnt/hdd/{i:02d}" for i in range(6))


def fleet(n_jobs=4):
    p = f.plotter("plotter1", tmp_dirs=("/mnt/nvme/t0", "/mnt/nvme/t1"),
                  dst_dirs=("/mnt/dst/00",), global_max_jobs=8, tmpdir_max_jobs=4)
    h = f.harvester("harvester1", farm_dirs=FARM)
    plots = [f.plot_file("/mnt/dst/00", n=i) for i in range(2)]
    jobs = [f.job(tmp=p.tmp_dirs[i % 2], dst="/mnt/dst/00", phase=(1 + i % 4, i % 7),
                  pid=3000 + i, plot_id=f"{0xc0ffee00 + i:08x}" + "ab" * 28,
                  tmp_bytes=(50 + i) * f.GiB) for i in range(n_jobs)]
    # two farm dirs share one disk: one drive row naming both
    devices = {FARM[0]: "harvester1:sdb", FARM[1]: "harvester1:sdb"}
    ps = f.host_state(p, jobs=jobs, plots=plots,
                      transfers=[f.transfer(plots[0], "harvester1", FARM[2], done=40 * f.GiB,
                                            started_at=f.NOW - 600)])
    hs = f.host_state(h, devices=devices, default_free=10 * f.TiB)
    return f.fleet(ps, hs), f.inventory(p, h)


def screen(width, height, log=()):
    state, hosts = fleet()
    con = Console(record=True, width=width, height=height, color_system=None)
    con.print(dashboard.render(state, hosts, list(log), width=width, height=height,
                               polled_at=f.NOW))
    return con.export_text()


LOG = [("12:00:0%d" % i, {"kind": "job_started", "host": "plotter1", "subject": "/l.log",
                          "detail": "started", "failed": False, "dir": "/mnt/nvme/t0",
                          "to_dir": "/mnt/dst/00", "what": "chia k32", "pid": 100 + i})
       for i in range(3)]


def test_at_80x24_the_why_lines_jobs_transfers_and_drives_all_fit():
    text = screen(80, 24, LOG)
    lines = text.splitlines()
    assert len(lines) == 24 and max(map(len, lines)) <= 80, text
    flat = " ".join(text.split())
    assert "plotter1 plotting" in flat and "archiving" in flat, text
    for i in range(4):                          # every job, by its plot id
        assert f"{0xc0ffee00 + i:08x}" in text, text
    assert re.search(r"^[0-9a-f]{8}\s+plotter1 -> harvester1:02\s+\S+\s+15:21\s+running",
                     text, re.M), text               # the transfer, whole, in a few columns
    assert "harvester drives" in text and "00, 01" in text, text    # one disk, both dirs
    assert "▶ plotter1 chia k32 t0 → 00 (pid 102)" in text, text   # the newest action
    assert "(pid 101)" not in text                                  # (one line of them)
    assert "'mid" not in text and "Layout(" not in text              # no placeholder
    # the order a farmer reads in: why, jobs, transfers, drives
    at = [text.index(s) for s in ("plotting", "jobs", "transfers", "harvester drives")]
    assert at == sorted(at), at


def test_at_200x50_every_element_and_no_crushed_column():
    text = screen(200, 50, LOG)
    lines = text.splitlines()
    assert len(lines) == 50 and max(map(len, lines)) <= 200
    flat = " ".join(text.split())
    for seen in ("fleet", "farm plots" if "farm plots" in flat else "farm", "jobs",
                 "transfers", "harvester drives", "tmp", "dst", "ready", "archiving", "pid"):
        assert seen in flat, (seen, text)
    # the transfer's row is whole on one line: id, from, to, progress, rate
    [row] = [x for x in lines if re.match(r"[0-9a-f]{8}\s+plotter1\s+harvester1:02\s", x)]
    assert re.search(r"40.0 GiB/101.4 GiB\s+68.3 MiB/s\s+15:21\s+running", row), row
    assert "50.0 GiB" in text and "53.0 GiB" in text                # tmp sizes


def test_at_120x40_every_plotman_element_shows():
    text = screen(120, 40, LOG)
    flat = " ".join(text.split())
    lines = text.splitlines()
    assert len(lines) == 40 and max(map(len, lines)) <= 120
    for seen in ("plotting", "archiving", "jobs", "transfers", "harvester drives",
                 "phases", "inbound", "ready", "actions"):
        assert seen in flat, (seen, text)
    assert re.search(r"^[0-9a-f]{8}\s+plotter1\s+harvester1:02\s+\S+\s+40.0 GiB/101.4 GiB",
                     text, re.M), text            # the transfer's columns whole
