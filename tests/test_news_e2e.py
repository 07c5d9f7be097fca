"""A pass comes when there is news, not a whole polling_time_s later: over
real sshd, with real k18 plots, the plotters' agents watch their dst dirs,
check records and transfer records between passes (agent/ops/news.py), and
plot-all's next pass comes as soon as a plot lands or a check or a copy ends.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from orchestrator.remote.fleet import Fleet
from tests.cli import REPO
from tests.test_archive_e2e import farm_drives


def land(src, dst_dir, after=0.0):
    """`src` renamed into dst_dir whole (as a plotter finishes a plot), `after` s from now."""
    dst = Path(dst_dir, Path(src).name)

    def go():
        time.sleep(after)
        tmp = dst.with_name(dst.name + ".2.tmp")
        shutil.copyfile(src, tmp)
        os.rename(tmp, dst)
    t = threading.Thread(target=go, daemon=True)
    t.start()
    return dst, t


def timed(fn, *args):
    t = time.monotonic()
    out = fn(*args)
    return out, time.monotonic() - t


def test_a_wait_ends_when_a_plot_lands_and_not_for_what_a_pass_itself_removes(
        ssh_fleet, k18_plots, tmp_path):
    fleet = ssh_fleet(n_plotters=2)
    dst = fleet.hosts["plotter1"].dirs["dst"][0]
    [a, b] = k18_plots.get(2)
    with Fleet(fleet.model_hosts()) as f:
        f.gather()
        # nothing new: the whole wait, and no news
        news, took = timed(f.wait_for_news, 1.5)
        assert news == {} and took >= 1.4, (news, took)
        # a plot lands on plotter1: the wait ends at once, and plotter2's wait
        # (30 s of its own) is ended too, not waited out
        plot, t = land(a, dst, after=0.5)
        news, took = timed(f.wait_for_news, 30.0)
        t.join()
        assert took < 10, took
        assert list(news) == ["plotter1"] and news["plotter1"] == [
            "plot " + os.path.realpath(plot)], news
        # not news again once a snapshot has seen it
        f.gather()
        assert f.wait_for_news(1.0) == {}
        # nor when it goes (a pass removes a source after its verified promote)
        plot.unlink()
        assert f.wait_for_news(1.0) == {}
        # a file still being written into dst under its final name is news
        # only once it is quiet (written whole)
        growing = Path(dst, Path(b).name)
        stop = threading.Event()

        def write():
            with open(b, "rb") as src, open(growing, "wb") as out:
                while not stop.is_set():
                    chunk = src.read(64 * 1024)
                    if not chunk:
                        break
                    out.write(chunk)
                    out.flush()
                    time.sleep(0.1)
        w = threading.Thread(target=write, daemon=True)
        w.start()
        try:
            assert f.wait_for_news(1.5) == {}
        finally:
            stop.set()
            w.join()
        news, took = timed(f.wait_for_news, 30.0)
        assert news == {"plotter1": ["plot " + os.path.realpath(growing)]} and took < 10
        # the agents still answer as ever after their waits were ended early
        state = f.gather()
        assert all(h.reachable for h in state.hosts), [h.error for h in state.hosts]


def test_with_default_polling_a_landed_plot_reaches_the_farm_in_seconds(ssh_fleet, k18_plots,
                                                                       tmp_path):
    """Nothing tuned: polling_time_s 20, proof checks on.  A plot that lands
    needs three passes (its check, its transfer, its promote): once 40 s at
    least, now a few seconds."""
    fleet = ssh_fleet(n_plotters=1, n_harvesters=1)
    dst = fleet.hosts["plotter1"].dirs["dst"][0]
    farm = farm_drives(fleet)
    inv = fleet.write_inventory(tmp_path / "inv.yaml", tmpdir_max_jobs=0)   # no job of its own
    [src] = k18_plots.get(1)
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="200", NO_COLOR="1")
    p = subprocess.Popen([sys.executable, "-m", "orchestrator", "plot-all", "--inventory",
                          str(inv), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, cwd=REPO, env=env, start_new_session=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(p.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not lines:                        # the first pass is done
            assert p.poll() is None and time.monotonic() < deadline, p.stderr.read()
            time.sleep(0.1)
        plot, t = land(src, dst)
        t.join()
        landed = time.monotonic()
        while not any(src.name in os.listdir(d) for d in farm):
            assert p.poll() is None, p.stderr.read()
            assert time.monotonic() - landed < 60, lines
            time.sleep(0.1)
        took = time.monotonic() - landed
        assert took < 20, f"{took:.1f} s from landing to the farm, with passes every 20 s"
        # its source goes after the verified promote, and the pass says so
        while not any("source_removed" in line for line in lines):
            assert time.monotonic() - landed < 60, lines
            time.sleep(0.1)
        assert not plot.exists()
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(timeout=30)
        reader.join(5)
    events = [e["kind"] for line in lines for e in json.loads(line)["events"]]
    for kind in ("check_started", "transfer_started", "copy_promoted", "source_removed"):
        assert events.count(kind) == 1, events
    assert len(lines) >= 3, lines


def test_an_agent_killed_while_it_waits_is_no_news_and_the_next_pass_reconnects(
        ssh_fleet, k18_plots):
    fleet = ssh_fleet(n_plotters=2)
    [a] = k18_plots.get(1)
    with Fleet(fleet.model_hosts()) as f:
        f.gather()
        victim = f.sessions["plotter2"].info["pid"]
        threading.Timer(0.5, os.kill, (victim, signal.SIGKILL)).start()
        news, took = timed(f.wait_for_news, 3.0)
        assert news == {} and 2.5 <= took < 10, (news, took)
        # the next gather connects a new agent there; the other host's news still comes
        state = f.gather()
        assert all(h.reachable for h in state.hosts), [h.error for h in state.hosts]
        assert f.sessions["plotter2"].info["pid"] != victim
        plot, t = land(a, fleet.hosts["plotter2"].dirs["dst"][0], after=0.3)
        news, took = timed(f.wait_for_news, 30.0)
        t.join()
        assert news == {"plotter2": ["plot " + os.path.realpath(plot)]} and took < 10
