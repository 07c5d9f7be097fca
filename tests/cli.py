"""Run the real command line (`python -m orchestrator`, what `plotfleet` runs)."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def plotfleet(*args, timeout=120, input=None, env=None):
    """Run `plotfleet ARGS` as a subprocess; returns CompletedProcess (text)."""
    e = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="200", NO_COLOR="1")
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "orchestrator", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          input=input if input is not None else "", env=e)


def started_line(host, text):
    """`21:29:48 ▶ plotter1 chiapos k18 tmp0 → dst (pid 8489)` (ASCII `>` and
    `->` without a UTF-8 locale) is in `text`: one job started on `host`."""
    return re.search(rf"(▶|>) {re.escape(host)} \S+ k\d+ .*(→|->) .*\(pid \d+\)", text)


def status_json(inventory, *extra):
    r = plotfleet("status", "--inventory", inventory, "--json", *extra)
    assert r.stdout, r.stderr
    return r, json.loads(r.stdout)
