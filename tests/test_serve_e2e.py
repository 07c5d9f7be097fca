"""`plot-all --serve` end to end over real sshd hosts: /metrics against
/status.json of the same pass, `status` answered by the running controller
(and not when it must not be), the page in Debian's headless chromium at a
phone and a desktop width (screenshots kept under tests/artifacts/)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from orchestrator.serve import discovery
from tests.cli import REPO, plotfleet
from tests.serve_helpers import (ARTIFACTS, PageReader, chromium, expected, get, page_figures,
                                 scraped)

ENV = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="200", NO_COLOR="1")


def suspended_job(host):
    """A real chiapos job started by hand (as plotman would), stopped once its
    log names its plot: it holds its place and steals no CPU from the test."""
    log_path = os.path.join(host.dirs["log"], "by-hand.log")
    log = open(log_path, "w")
    p = subprocess.Popen([sys.executable, "-m", "agent", "plot-chiapos", "-k", "25",
                          "-t", host.dirs["tmp"][0], "-2", host.dirs["tmp2"],
                          "-d", host.dirs["dst"][0], "-b", "64", "-u", "32", "-r", "1"],
                         stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=ENV,
                         start_new_session=True)
    log.close()
    deadline = time.monotonic() + 20
    while "Starting phase 1" not in open(log_path).read():
        assert time.monotonic() < deadline and p.poll() is None, open(log_path).read()
        time.sleep(0.05)
    p.send_signal(signal.SIGSTOP)
    return p


def first_pass(proc, inv, out, timeout=60):
    """The discovery file and the first pass of the plot-all in `proc`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, out.read_text()
        info = discovery.find(str(inv), None)
        if info and get(info["url"] + "status.json")[0] == 200:
            return info
        time.sleep(0.1)
    raise AssertionError(f"no pass served in {timeout} s: {out.read_text()}")


def same_pass(url):
    """/metrics and /status.json of one pass (a pass between the two: again)."""
    for _ in range(5):
        metrics = get(url + "metrics")[1].decode()
        doc = json.loads(get(url + "status.json")[1])
        again = get(url + "metrics")[1].decode()
        if metrics == again:
            return metrics, doc
    raise AssertionError("passes too fast to read one whole")


def test_plot_all_serve_answers_metrics_status_and_the_page(ssh_fleet, tmp_path, k18_plots):
    fleet = ssh_fleet(n_plotters=1, n_harvesters=1)
    plotter, harvester = fleet.hosts["plotter1"], fleet.hosts["harvester1"]
    k18_plots.copy_to(harvester.dirs["farm"][0], n=1)
    job = suspended_job(plotter)
    # one pass a minute: the picture stays that of the first pass while we look;
    # the hand-started job fills the plotter, so plot-all starts none of its own
    inv = fleet.write_inventory(tmp_path / "inventory.yaml", polling_time_s=60,
                                global_max_jobs=1, tmpdir_max_jobs=1)
    out = tmp_path / "plot-all.out"
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "plot-all", "--inventory",
                             str(inv), "--serve", "127.0.0.1:0"], cwd=REPO, env=ENV,
                            stdout=open(out, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        info = first_pass(proc, inv, out)
        url = info["url"]
        assert "token" not in info          # loopback: none needed, none written
        metrics, doc = same_pass(url)
        assert scraped(metrics) == expected(doc)
        jobs = [j for h in doc["hosts"] for j in h["jobs"]]
        assert [j["state"] for j in jobs] == ["suspended"] and jobs[0]["phase"][0] == 1
        assert any(d["plot_count"] == 1 for h in doc["hosts"] for d in h["dirs"])

        # instant status --json: the controller's document, no heavy import
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, "-X", "importtime", "-m", "orchestrator", "status",
                            "--inventory", str(inv), "--json"], cwd=REPO, env=ENV,
                           capture_output=True, text=True, timeout=30)
        took = time.monotonic() - t0
        assert r.returncode == 0, r.stderr[-3000:]
        assert json.loads(r.stdout) == doc
        imported = {line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines()
                    if line.startswith("import time:")}
        assert imported and not {m for m in imported
                                 if m.split(".")[0] in ("fabric", "invoke", "jinja2",
                                                        "paramiko", "rich")}
        assert "from the running plot-all" in r.stderr and f"pid {proc.pid}" in r.stderr
        assert took < 5, took

        # the page, at a phone's width and a desktop's, against the same pass
        for w, h in ((390, 844), (1280, 800)):
            shot = ARTIFACTS / f"serve-page-{w}x{h}.png"
            dom = chromium(url, w, h, shot)
            page = PageReader()
            page.feed(dom)
            assert {k: page.figs[k] for k in page_figures(doc)} == page_figures(doc)
            assert float(page.figs["pass-at"]) == round(doc["controller"]["pass_at"], 3)
            assert {k: v["phase"] for k, v in page.jobs.items()} == {
                f"plotter1:{j['pid']}": f"{j['phase'][0]}:{j['phase'][1]}" for j in jobs}
            # a drive is a disk: the farm dirs on one device are one row
            first = {}
            for d in next(hh for hh in doc["hosts"] if hh["name"] == "harvester1")["dirs"]:
                if d["kind"] == "farm" and not d["error"]:
                    first.setdefault(d["device"], d)
            assert page.drives == {
                f"harvester1:{d['path']}": f"{(1 - d['free_bytes'] / d['total_bytes']) * 100:.1f}"
                for d in first.values()}
            assert shot.stat().st_size > 5000
            print(f"screenshot: {shot}")

        # every sshd gone: a cold status could reach nobody, this one still answers
        for name in fleet.hosts:
            fleet.stop(name)
        r = plotfleet("status", "--inventory", inv)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "from the running plot-all" in r.stdout and jobs[0]["plot_id"][:8] in r.stdout
        assert "refused" not in r.stdout

        # --fresh, another --limit, the same content under another name: cold, silently
        copy = tmp_path / "copy.yaml"
        shutil.copy(inv, copy)
        for args in (("--inventory", inv, "--fresh"), ("--inventory", inv, "--limit", "plotter1"),
                     ("--inventory", copy)):
            r = plotfleet("status", *args, "--json")
            assert r.returncode == 4, (args, r.stderr)
            assert "from the running" not in r.stdout + r.stderr
            assert all("refused" in h["error"] for h in json.loads(r.stdout)["hosts"])
            assert "Traceback" not in r.stderr

        # the controller killed outright: its file stays, and is ignored
        proc.kill()
        proc.wait(timeout=10)
        assert os.path.exists(discovery.path_for(str(inv), None))
        r = plotfleet("status", "--inventory", inv, "--json")
        assert r.returncode == 4 and r.stderr == "", r.stderr
    finally:
        if proc.poll() is None:
            proc.kill()
        job.send_signal(signal.SIGCONT)
        job.kill()
        job.wait()
        try:
            os.unlink(discovery.path_for(str(inv), None))
        except OSError:
            pass
