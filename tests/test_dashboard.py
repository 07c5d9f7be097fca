"""`plotfleet dashboard` in a real terminal: tmux runs it, capture-pane reads
the screen, resize-window shrinks it, send-keys quits it."""
import os
import re
import shlex
import subprocess
import sys
import time

import psutil
import pytest

from tests.cli import REPO, started_line
from tests.test_control_e2e import ID_A, end, start_job


class Tmux:
    """One private tmux server running one shell command in a window."""

    def __init__(self, base, command, width=120, height=40):
        self.sock = str(base / "tmux.sock")
        self.exit_file = base / "exit"
        # after the dashboard: its exit status and the terminal's line discipline
        script = (f"{command}; echo EXIT=$? > {shlex.quote(str(self.exit_file))}; "
                  f"stty -a | tr ' ;' '\\n\\n' | grep -E '^-?(icanon|echo)$' | tr '\\n' ' '; "
                  f"echo; sleep 120")
        self.run("new-session", "-d", "-x", str(width), "-y", str(height), "-s", "dash", script)

    def run(self, *args):
        return subprocess.run(["tmux", "-S", self.sock, *args], check=True,
                              capture_output=True, text=True).stdout

    def screen(self):
        return self.run("capture-pane", "-p", "-t", "dash")

    def wait(self, pred, timeout=20.0):
        deadline = time.time() + timeout
        while True:
            text = self.screen()
            if pred(text):
                return text
            assert time.time() < deadline and "Traceback" not in text, text
            time.sleep(0.1)

    def resize(self, width, height):
        self.run("resize-window", "-t", "dash", "-x", str(width), "-y", str(height))

    def dashboard_proc(self):
        shell = psutil.Process(int(self.run("display", "-p", "-t", "dash", "#{pane_pid}")))
        return [p for p in shell.children(recursive=True) if "orchestrator" in p.cmdline()]

    def exit_status(self, timeout=15.0):
        # the shell creates the file before it writes the status into it
        deadline = time.time() + timeout
        while not (self.exit_file.exists() and self.exit_file.read_text().strip()):
            assert time.time() < deadline, self.screen()
            time.sleep(0.05)
        return self.exit_file.read_text().strip()

    def close(self):
        subprocess.run(["tmux", "-S", self.sock, "kill-server"], capture_output=True)


def dashboard_cmd(inv, *extra):
    return " ".join(shlex.quote(str(a)) for a in (
        "env", "-u", "COLUMNS", "-u", "LINES", f"PYTHONPATH={REPO}", sys.executable, "-m",
        "orchestrator", "dashboard", "-i", inv, "--refresh", "0.5", *extra))


@pytest.fixture
def tmux(tmp_path):
    sessions = []

    def start(command, **kw):
        t = Tmux(tmp_path, command, **kw)
        sessions.append(t)
        return t
    yield start
    for t in sessions:
        t.close()


def test_dashboard_shows_fleet_survives_resizes_and_quits_clean(ssh_fleet, tmp_path, tmux):
    fleet = ssh_fleet(n_plotters=2, n_harvesters=1)
    job = start_job(fleet.hosts["plotter1"], ID_A)
    try:
        inv = fleet.write_inventory(tmp_path / "inventory.yaml")
        fleet.stop("plotter2")
        t = tmux(dashboard_cmd(inv))
        screen = t.wait(lambda s: ID_A[:8] in s and "harvester drives" in s)
        assert re.search(r"\b1:[1-7]\b", screen), screen     # stopped in phase 1
        for seen in ("plotter1", "suspended", "harvester1:", "%", "1 down",
                     "unreachable", "plotter2", "refused", "actions (q quits)"):
            assert seen in screen, (seen, screen)
        assert t.run("display", "-p", "-t", "dash", "#{alternate_on}").strip() == "1"
        # plotman's first line per plotter, apart from the actions: why no job starts
        flat = " ".join(screen.replace("│", " ").split())
        assert re.search(r"plotter1 plotting stagger \d+s/1800s archiving no plots waiting",
                         flat), screen
        assert "plotter2 plotting unreachable: " in flat, screen
        # its tmp and dst tables, by dir key: tmp holds the stopped job (phase 1)
        root = fleet.hosts["plotter1"].root
        # one prefix for both; a long key wraps (beside the drives, so by its start)
        assert re.search(r"^plotter1  key: tmp, dst", screen, re.M) and \
            re.search("^" + re.escape(str(root)[:50]), screen, re.M), screen
        assert re.search(r"tmp\s+phase limit\s+1:\d\s", screen), screen
        assert re.search(r"dst\s+0\s+[\d.]+ \wiB\s+1:\d\s+-", screen), screen
        assert "key harvester1: farm" in screen and \
            str(fleet.hosts["harvester1"].root)[:50] in screen, screen

        t.resize(60, 15)                 # it shrinks: compact jobs, still the job row
        screen = t.wait(lambda s: max(map(len, s.splitlines())) <= 60
                        and ID_A[:8] in s and "suspended" in s)
        assert "plotfleet" in screen and "q quits" in screen
        assert re.search(r"plotter1\s+plotting\s+stagger", screen), screen   # still first
        for width, height in ((20, 5), (2, 2)):   # very small: drawn cropped, no crash
            t.resize(width, height)
            time.sleep(1.2)
            assert t.dashboard_proc() and not t.exit_file.exists(), t.screen()
        t.resize(100, 30)
        t.wait(lambda s: ID_A[:8] in s and "harvester1:" in s)

        t.run("send-keys", "-t", "dash", "q")
        assert t.exit_status() == "EXIT=0"
        screen = t.wait(lambda s: "icanon" in s)
        assert "-icanon" not in screen and "-echo " not in screen and "echo" in screen
        assert "Traceback" not in screen and ID_A[:8] not in screen   # main screen back
        assert t.run("display", "-p", "-t", "dash", "#{alternate_on}").strip() == "0"
        assert psutil.Process(job.pid).status() == psutil.STATUS_STOPPED   # untouched
    finally:
        end(job)


def test_dashboard_plot_starts_jobs_and_ctrl_c_quits(ssh_fleet, tmp_path, tmux):
    fleet = ssh_fleet(n_plotters=1)
    h = fleet.hosts["plotter1"]
    inv = fleet.write_inventory(tmp_path / "inventory.yaml")
    t = tmux(dashboard_cmd(inv, "--plot"))
    t.wait(lambda s: started_line("plotter1", s))
    assert os.listdir(h.dirs["log"])
    # the job runs, finishes, and its plot shows as waiting in dst
    # (below 50 rows the fleet summary is one line: `waiting 1`)
    t.wait(lambda s: re.search(r"(plots waiting +|· waiting )[1-9]", s), timeout=60)
    assert [p for p in os.listdir(h.dirs["dst"][0]) if p.endswith(".plot")]
    t.run("send-keys", "-t", "dash", "C-c")
    assert t.exit_status() == "EXIT=0"
    screen = t.wait(lambda s: "icanon" in s)
    assert "-icanon" not in screen and "Traceback" not in screen
    # the loop stopped with the dashboard (with nothing running, the stagger
    # would let it start the next k=18 job within a poll); started jobs end alone
    started = set(os.listdir(h.dirs["log"]))
    deadline = time.time() + 30
    while [p for p in psutil.process_iter(["cmdline"]) if h.dirs["tmp"][0] in (p.info["cmdline"] or [])]:
        assert time.time() < deadline
        time.sleep(0.1)
    time.sleep(1.0)
    assert set(os.listdir(h.dirs["log"])) == started


def test_dashboard_on_the_demo_in_80x24_then_200x50(tmp_path, tmux):
    """The README's demo (`dashboard --plot`) in a real terminal: at 80x24 the
    plotting and archiving line, the jobs, the drives and the actions all on
    screen; at 200x50 the fleet table and the tmp and dst tables too."""
    import shutil
    shutil.copy(REPO / "inventory.example.yaml", tmp_path / "inventory.yaml")
    cmd = " ".join(shlex.quote(str(a)) for a in (
        "env", "-u", "COLUMNS", "-u", "LINES", "LANG=C.UTF-8", f"PYTHONPATH={REPO}",
        sys.executable, "-m", "orchestrator", "dashboard", "--plot", "-i",
        tmp_path / "inventory.yaml", "--refresh", "0.5"))
    t = tmux(f"cd {shlex.quote(str(tmp_path))} && {cmd}", width=80, height=24)
    try:
        small = t.wait(lambda s: re.search(r"^[0-9a-f]{8}\s+localhost\s+\d:\d", s, re.M)
                       and "farm1, farm2" in s and " ▶ localhost chiapos k18 " in s, timeout=60)
        lines = small.splitlines()
        assert len(lines) == 24 and max(map(len, lines)) <= 80
        flat = " ".join(small.split())
        assert "localhost plotting" in flat and "archiving" in flat, small
        at = [small.index(x) for x in ("plotting", "jobs", "harvester drives", "actions")]
        assert at == sorted(at), small
        t.resize(200, 50)
        big = t.wait(lambda s: "fleet" in s and "phases" in s and "inbound" in s
                     and "farm1, farm2" in s)
        assert max(map(len, big.splitlines())) <= 200 and "plots waiting" in big, big
        print("80x24:\n" + small + "\n200x50:\n" + big)
    finally:
        t.run("send-keys", "-t", "dash", "q")
        assert t.exit_status() == "EXIT=0"
    deadline = time.time() + 60         # the jobs it started end on their own (k18)
    while any(f"{tmp_path}/demo/tmp" in " ".join(p.info["cmdline"] or [])
              for p in psutil.process_iter(["cmdline"])):
        assert time.time() < deadline
        time.sleep(0.2)
