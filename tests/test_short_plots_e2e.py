"""A plot's size is checked against what the file itself declares (v1: its
header's table pointers and the C3 table they imply; bladebit v2: its table
sizes), before it is sent and again before promote: a short plot stays
where it is, and its row says why."""
import json
import os
import struct
import time

from agent.vocab import formats
from agent.facts.disks import PARTIAL_SUFFIX
from tests.agent_helpers import host_dirs
from tests.cli import plotfleet, status_json


def _cut(path, keep):
    with open(path, "r+b") as f:
        f.truncate(keep)


def test_a_cut_plot_is_not_archived_and_its_row_says_short(ssh_fleet, k18_plots, tmp_path):
    fleet = ssh_fleet(n_plotters=1, n_harvesters=1)
    inv = fleet.write_inventory(tmp_path / "inv.yaml", require_mounted_farm=False)
    dst = fleet.hosts["plotter1"].dirs["dst"][0]
    farms = fleet.hosts["harvester1"].dirs["farm"]
    short, whole = k18_plots.copy_to(dst, 2)
    _cut(short, 100_000)            # its first 100,000 bytes, under its own name
    name = os.path.basename(short)

    _, doc = status_json(inv)
    row = next(p for p in doc["hosts"][0]["plots"] if p["path"].endswith(name))
    assert row["error"].startswith("short: 100000 bytes, its header declares at least"), row
    r = plotfleet("status", "--inventory", inv)
    assert "not archived: short: 100000 bytes" in " ".join(r.stdout.split()), r.stdout

    end = time.time() + 90
    while time.time() < end:
        plotfleet("archive", "--inventory", inv, "--json", timeout=60)
        if any(os.path.exists(os.path.join(f, os.path.basename(whole))) for f in farms):
            break
        time.sleep(1)
    assert not os.path.exists(whole), "the whole plot was archived, its source removed"
    assert os.path.getsize(short) == 100_000, "the short plot stays where it is"
    for f in farms:
        assert not [n for n in os.listdir(f) if n.startswith(name)], os.listdir(f)


def test_digest_and_promote_refuse_a_short_plot(agent, k18_plots, tmp_path):
    d, config = host_dirs(tmp_path / "host")
    plot = str(k18_plots.copy_to(d["dst"], 1)[0])
    spec = {"edge": 4096, "block": 4096, "offsets": [], "full_below": 1 << 30}
    assert agent.ok("digest", config=config, path=plot, spec=spec)["header_error"] is None
    _cut(plot, os.path.getsize(plot) - 20_000)      # its last C3 parks lost
    src = agent.ok("digest", config=config, path=plot, spec=spec)
    assert src["header_error"].startswith("short: "), src
    # a copy as short as its source matches it byte for byte, and is still refused
    partial = os.path.join(d["farm"], os.path.basename(plot) + PARTIAL_SUFFIX)
    with open(plot, "rb") as a, open(partial, "wb") as b:
        b.write(a.read())
    os.utime(partial, (time.time() - 600, time.time() - 600))
    r = agent.raw("promote", config=config, partial=partial, expect=dict(src, spec=spec))
    assert not r["ok"] and "short: " in r["error"], r
    assert not os.path.exists(partial[:-len(PARTIAL_SUFFIX)])


def test_bladebit_v2_extent_is_its_furthest_table_end():
    memo = b"m" * 112
    ptrs = [400 + 1000 * i for i in range(10)]
    sizes = [1000] * 9 + [250]
    head = (b"PLOT" + struct.pack("<I", 2) + b"\x11" * 32 + bytes([32])
            + struct.pack(">H", len(memo)) + memo + struct.pack("<I", 1) + bytes([7])
            + struct.pack(">10Q", *ptrs) + struct.pack("<10Q", *sizes))
    header = formats.read_header(head)

    def problem(data, size):
        return formats.extent_problem(header, lambda at, n: data[at:at + n], size)
    assert problem(head, 9650) is None
    assert problem(head, 9649) == "short: 9649 bytes, its header declares at least 9650"
    # a header whose writer never filled its sizes: an unfinished plot
    assert problem(head[:-80] + bytes(80), 10).startswith("unfinished: ")
