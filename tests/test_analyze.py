"""`plotfleet analyze`: real chiapos k=18 logs read through the fleet's agents,
madmax and bladebit logs in those plotters' formats read from a folder; every
figure is checked against the times written in the logs."""
import csv
import io
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.agent_helpers import (BLADEBIT_CUDA_LOG, BLADEBIT_DISK_LOG, BLADEBIT_RAM_LOG,
                                 MADMAX_LOG, PID_A, text_of)
from tests.cli import REPO, plotfleet

DAY = 86400.0
PHASES = ("p1", "p2", "p3", "p4", "total")


# -- the oracle: times read straight from the log text ------------------------

def chia_times(text):
    """(p1..p4, total) and start epoch of a chia/chiapos log."""
    phases = [float(re.search(r"Time for phase %d = ([\d.]+)" % n, text).group(1))
              for n in range(1, 5)]
    total = float(re.search(r"Total time = ([\d.]+)", text).group(1))
    stamp = re.search(r"Starting phase 1/4: .*? (\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})", text)
    start = time.mktime(time.strptime(" ".join(stamp.group(1).split()), "%a %b %d %H:%M:%S %Y"))
    return phases + [total], start


def madmax_times(text):
    phases = [float(re.search(r"Phase %d took ([\d.]+)" % n, text).group(1)) for n in range(1, 5)]
    return phases + [float(re.search(r"Total plot creation time was ([\d.]+)", text).group(1))]


def bladebit_times(text):
    phases = []
    for n in range(1, 5):
        m = re.search(r"(?:Finished|Completed) Phase %d in ([\d.]+)" % n, text)
        phases.append(float(m.group(1)) if m else None)
    total = re.search(r"(?:Finished plotting|Completed Plot \d+) in ([\d.]+)", text)
    return phases + [float(total.group(1))]


def expect(times_list):
    """{phase: {mean, median, p90}} from lists of (p1..p4, total)."""
    out = {}
    for i, ph in enumerate(PHASES):
        xs = [t[i] for t in times_list if t[i] is not None]
        # p90 by linear interpolation between closest ranks (numpy's default)
        p90 = statistics.quantiles(xs, n=10, method="inclusive")[8] if len(xs) > 1 else xs[0]
        out[ph] = {"mean": statistics.fmean(xs), "median": statistics.median(xs), "p90": p90}
    return out


def assert_figures(row, times_list):
    assert row["count"] == len(times_list)
    want = expect(times_list)
    for ph in PHASES:
        for m in ("mean", "median", "p90"):
            assert row[ph][m] == pytest.approx(want[ph][m], rel=1e-9), (row["key"], ph, m)


def group(rep, grouping, key):
    return next(r for r in rep["groups"][grouping] if r["key"] == key)


def rate(runs):
    """Plots per day over [first start, last finish] of (start, finish) pairs."""
    return len(runs) * DAY / (max(f for _, f in runs) - min(s for s, _ in runs))


# -- logs ------------------------------------------------------------------------

def chiapos_log(host, name):
    """A real k=18 plot through the agent's chiapos launcher, logged as plotfleet does."""
    log = Path(host.dirs["log"], name)
    with open(log, "wb") as out:
        return log, subprocess.Popen(
            [sys.executable, "-m", "agent", "plot-chiapos", "-k", "18", "-t", host.dirs["tmp"][0],
             "-2", host.dirs["tmp2"], "-d", host.dirs["dst"][0], "-b", "300", "-u", "32",
             "-r", "1", "--id", secrets.token_hex(32)],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONPATH=str(REPO)))


def garbage(folder):
    """A binary file named like a log, and one no read gets through (EIO)."""
    Path(folder, "garbage.log").write_bytes(bytes(range(256)) * 40)
    os.symlink("/proc/self/mem", Path(folder, "eio.log"))


def test_analyze_fleet_chiapos_logs_through_the_agents(ssh_fleet, tmp_path):
    fleet = ssh_fleet(n_plotters=2)
    p1, p2 = fleet.hosts["plotter1"], fleet.hosts["plotter2"]
    # two plots one after the other on plotter1, one meanwhile on plotter2
    log2, job2 = chiapos_log(p2, "2026-01-01T00_00_00.000000_chiapos.log")
    logs1 = []
    for i in range(2):
        log, job = chiapos_log(p1, f"2026-01-01T00_00_0{i}.000000_chiapos.log")
        assert job.wait(60) == 0, log.read_text()
        logs1.append(log)
    assert job2.wait(60) == 0, log2.read_text()
    # plus a madmax log on plotter2, finished an hour after the chiapos ones
    mm = Path(p2.dirs["log"], "madmax.log")
    mm.write_text(text_of(MADMAX_LOG))
    mm_end = time.time() + 3600
    os.utime(mm, (mm_end, mm_end))
    # an unfinished log (a job that died in phase 2) and two unreadable ones
    text = logs1[0].read_text()
    Path(p1.dirs["log"], "died.log").write_text(text[:text.index("Starting phase 3/4")])
    garbage(p1.dirs["log"])
    inv = fleet.write_inventory(tmp_path / "inventory.yaml")

    r = plotfleet("analyze", "--inventory", inv, "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    chiapos = {p: chia_times(p.read_text()) for p in logs1 + [log2]}
    mm_times = madmax_times(mm.read_text())
    assert (rep["plots"], rep["unfinished"]) == (4, 1)
    # the job that died is counted as failed, by host and plotter
    assert rep["failed"] == 1 and rep["failed_by"] == {"host": {"plotter1": 1},
                                                      "plotter": {"chia": 1}}
    assert [f["log"] for f in rep["failures"]] == [f"{p1.dirs['log']}/died.log"]
    assert sorted(u["where"] for u in rep["unreadable"]) == [
        f"plotter1:{p1.dirs['log']}/eio.log", f"plotter1:{p1.dirs['log']}/garbage.log"]

    assert_figures(group(rep, "plotter", "chiapos"), [t for t, _ in chiapos.values()])
    assert_figures(group(rep, "k", "k18"), [t for t, _ in chiapos.values()])
    assert_figures(group(rep, "plotter", "madmax"), [mm_times])
    assert_figures(group(rep, "host", "plotter1"), [chiapos[p][0] for p in logs1])
    assert_figures(group(rep, "host", "plotter2"), [chiapos[log2][0], mm_times])
    assert_figures(group(rep, "tmp_dir", f"plotter1:{p1.dirs['tmp'][0]}"),
                   [chiapos[p][0] for p in logs1])
    assert_figures(group(rep, "fleet", "fleet"), [t for t, _ in chiapos.values()] + [mm_times])

    spans = {p: (s, s + t[-1]) for p, (t, s) in chiapos.items()}
    per_day = rep["plots_per_day"]
    assert per_day["plotter1"] == pytest.approx(rate([spans[p] for p in logs1]))
    mm_span = (mm_end - mm_times[-1], mm_end)
    assert per_day["plotter2"] == pytest.approx(rate([spans[log2], mm_span]))
    assert per_day["fleet"] == pytest.approx(rate(list(spans.values()) + [mm_span]))

    # the tables say the same, and name what they could not read
    r = plotfleet("analyze", "--inventory", inv)
    assert r.returncode == 0, r.stderr
    assert "by plotter" in r.stdout and "chiapos" in r.stdout and "plots per day" in r.stdout
    assert "4 finished plots, 1 unfinished, 2 unreadable" in r.stdout
    assert "garbage.log" in r.stdout and "not a plot log" in r.stdout
    assert "eio.log" in r.stdout


def test_analyze_local_madmax_and_bladebit_logs_json_csv(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    # madmax -n 2: one log, two plots (the second with its own id and times)
    second = [(line.replace(PID_A, "ef" * 32).replace("1042.73", "1100.5")
               .replace("2449.69", "2507.46"), ph) for line, ph in MADMAX_LOG]
    logs = {"madmax.log": text_of(MADMAX_LOG) + text_of(second),
            "bb-ram.log": text_of(BLADEBIT_RAM_LOG), "bb-disk.log": text_of(BLADEBIT_DISK_LOG),
            "bb-cuda.log": text_of(BLADEBIT_CUDA_LOG),
            "cut.log": text_of(BLADEBIT_RAM_LOG[:20])}            # never finished
    t0 = 1_750_000_000.0
    ends = {}
    for i, (name, text) in enumerate(sorted(logs.items())):
        Path(d, name).write_text(text)
        ends[name] = t0 + 1000 * i
        os.utime(Path(d, name), (ends[name], ends[name]))
    garbage(d)

    r = plotfleet("analyze", "--logs", d, "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    mm = [madmax_times(text_of(MADMAX_LOG)), madmax_times(text_of(second))]
    assert mm[1][0] == 1100.5 and mm[1][-1] == 2507.46
    bb = [bladebit_times(logs[n]) for n in ("bb-ram.log", "bb-disk.log", "bb-cuda.log")]
    assert bb[2][3] is None                  # cudaplot prints no phase 4 time
    assert (rep["plots"], rep["unfinished"]) == (5, 1)
    assert sorted(u["where"] for u in rep["unreadable"]) == [str(d / "eio.log"),
                                                             str(d / "garbage.log")]
    assert_figures(group(rep, "plotter", "madmax"), mm)
    assert_figures(group(rep, "plotter", "bladebit"), bb)
    assert_figures(group(rep, "host", "local"), mm + bb)
    assert_figures(group(rep, "k", "k32"), mm + bb)
    assert group(rep, "plotter", "bladebit")["p4"]["median"] == pytest.approx((4.36 + 12.25) / 2)

    # no timestamps in these logs: a plot ended at its log's mtime, the first
    # of the madmax pair when the second began
    spans = [(ends[n] - t[-1], ends[n]) for n, t in
             zip(("bb-ram.log", "bb-disk.log", "bb-cuda.log"), bb)]
    mm_first_end = ends["madmax.log"] - mm[1][-1]
    spans += [(mm_first_end - mm[0][-1], mm_first_end), (mm_first_end, ends["madmax.log"])]
    assert rep["plots_per_day"]["local"] == pytest.approx(rate(spans))

    r = plotfleet("analyze", "--logs", d, "--csv")
    assert r.returncode == 0, r.stderr
    rows = {(row["grouping"], row["key"]): row for row in csv.DictReader(io.StringIO(r.stdout))}
    want = expect(bb)
    row = rows[("plotter", "bladebit")]
    assert row["count"] == "3"
    for ph in PHASES:
        for m in ("mean", "median", "p90"):
            assert float(row[f"{ph}_{m}"]) == pytest.approx(want[ph][m], abs=5e-4)
    assert float(rows[("host", "local")]["plots_per_day"]) == pytest.approx(rate(spans), abs=5e-4)
    assert float(rows[("fleet", "fleet")]["plots_per_day"]) == pytest.approx(rate(spans), abs=5e-4)

    r = plotfleet("analyze", "--logs", d, "--json", "--csv")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    r = plotfleet("analyze", "--logs", tmp_path / "nope")
    assert r.returncode == 2 and "not a folder" in r.stderr and "Traceback" not in r.stderr


def test_analyze_groups_pos2_plots_by_format_k_and_strength(tmp_path):
    """Real PoS2 plots made by chia_rs through the agent's launcher: their
    group is said as status says it, `v2 k18 s2`."""
    logs, out = tmp_path / "logs", tmp_path / "dst"
    logs.mkdir(), out.mkdir()
    with open(logs / "pos2.log", "w") as f:
        subprocess.run([sys.executable, "-m", "agent", "plot-pos2", "-k", "18", "-s", "2",
                        "-t", str(out), "-d", str(out), "-n", "2"], cwd=REPO, stdout=f,
                       stderr=subprocess.STDOUT, timeout=120, check=True)
    text = (logs / "pos2.log").read_text()
    totals = [float(t) for t in re.findall(r"bytes in ([\d.]+) s", text)]
    r = plotfleet("analyze", "--logs", logs, "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    [g] = rep["groups"]["compression"]
    assert (g["key"], g["count"]) == ("v2 k18 s2", 2)
    assert sorted(run["total"] for run in rep["runs"]) == sorted(totals)
