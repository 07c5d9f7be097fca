"""For the --serve tests: read /metrics with Prometheus' own parser, work out
from a /status.json document what its gauges must say, drive Debian's
headless chromium, read the figures back from the page it rendered."""
from __future__ import annotations

import os
import posixpath
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"     # kept by the run (gitignored)
CHROMIUM = "/usr/bin/chromium"
CHECKED = ("plotfleet_host_up", "plotfleet_jobs", "plotfleet_job_phase_seconds",
           "plotfleet_dir_free_bytes", "plotfleet_dir_total_bytes", "plotfleet_dir_error",
           "plotfleet_plots_waiting", "plotfleet_transfers_active", "plotfleet_farm_plots",
           "plotfleet_pass_timestamp_seconds")


def get(url, token=None, header=True):
    """(status, body bytes, headers); a 4xx/5xx is returned, not raised."""
    req = urllib.request.Request(url)
    if token and header:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


def scraped(text: str) -> dict:
    """{(sample name, labels): value} of the checked gauges, by the real parser."""
    out = {}
    for fam in text_string_to_metric_families(text):
        if fam.name in CHECKED:
            for s in fam.samples:
                out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def _key(name, **labels):
    return (name, frozenset(labels.items()))


def expected(doc: dict) -> dict:
    """What the checked gauges must say, worked out from the status document alone."""
    out = {_key("plotfleet_pass_timestamp_seconds"): doc["controller"]["pass_at"]}
    jobs = Counter()
    waiting = Counter()
    active = Counter()
    for h in doc["hosts"]:
        out[_key("plotfleet_host_up", host=h["name"])] = 1.0 if h["reachable"] else 0.0
        if not h["reachable"]:
            continue
        for j in h["jobs"]:
            base = dict(host=h["name"], dir=j["tmp_dir"] or "", plotter=j["plotter"],
                        k=str(j["k"]), level=j["compression"])
            major = "unknown" if j["phase"] is None else str(j["phase"][0])
            st = "stalled" if j["stalled"] else j["state"]
            jobs[_key("plotfleet_jobs", phase=major, state=st, **base)] += 1
            ph = "?:?" if j["phase"] is None else f"{j['phase'][0]}:{j['phase'][1]}"
            out[_key("plotfleet_job_phase_seconds", plot_id=j["plot_id"] or f"pid{j['pid']}",
                     phase=ph, **base)] = j["elapsed_s"]
        for d in h["dirs"]:
            lab = dict(host=h["name"], dir=d["path"], kind=d["kind"])
            out[_key("plotfleet_dir_free_bytes", **lab)] = d["free_bytes"]
            out[_key("plotfleet_dir_total_bytes", **lab)] = d["total_bytes"]
            out[_key("plotfleet_dir_error", code=d["error_code"] or ("error" if d["error"] else ""),
                     **lab)] = 1.0 if d["error"] else 0.0
            if d["kind"] == "farm":
                out[_key("plotfleet_farm_plots", host=h["name"], dir=d["path"])] = d["plot_count"]
        for p in h["plots"]:
            waiting[_key("plotfleet_plots_waiting", host=h["name"], dir=posixpath.dirname(p["path"]),
                         k=str(p["k"] or ""), level=p["compression"])] += 1
        for x in h["transfers"]:
            if x["status"] == "running":
                active[_key("plotfleet_transfers_active", host=h["name"], dir=x["to_dir"],
                            to_host=x["to_host"])] += 1
    for c in (jobs, waiting, active):
        out.update((k, float(v)) for k, v in c.items())
    return {k: float(v) for k, v in out.items()}


def page_figures(doc: dict) -> dict:
    """The page's headline figures, worked out from the status document."""
    up = [h for h in doc["hosts"] if h["reachable"]]
    return {"hosts-up": str(len(up)), "hosts-down": str(len(doc["hosts"]) - len(up)),
            "jobs": str(sum(len(h["jobs"]) for h in up)),
            "plots-waiting": str(sum(len(h["plots"]) for h in up)),
            "transfers": str(sum(1 for h in up for x in h["transfers"]
                                 if x["status"] == "running"))}


class PageReader(HTMLParser):
    """data-fig texts, and per job row (data-job) its phase and state cells."""

    def __init__(self):
        super().__init__()
        self.figs, self.jobs, self.down, self.drives = {}, {}, [], {}
        self._fig = self._job = self._cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "data-fig" in a:
            self._fig = a["data-fig"]
            self.figs[self._fig] = a.get("data-at", "")
        if tag == "tr" and "data-job" in a:
            self._job = a["data-job"]
            self.jobs[self._job] = {}
        if tag == "tr" and "data-down" in a:
            self.down.append(a["data-down"])
        if tag == "tr" and "data-drive" in a:
            self.drives[a["data-drive"]] = a["data-used"]
        if tag == "td" and self._job:
            self._cell = a.get("data-l")

    def handle_endtag(self, tag):
        if tag == "tr":
            self._job = None
        if tag == "td":
            self._cell = None

    def handle_data(self, data):
        if self._fig is not None:
            if not self.figs[self._fig]:
                self.figs[self._fig] = data.strip()
            self._fig = None
        if self._job and self._cell:
            row = self.jobs[self._job]
            row[self._cell] = row.get(self._cell, "") + data.strip()


def chromium(url: str, width: int, height: int, shot: Path, extra=()) -> str:
    """The DOM headless chromium built from url at that window size, and a
    screenshot of it saved at `shot`."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", f"--window-size={width},{height}", *extra]
    shot.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="plotfleet-chromium-") as profile:
        dom = subprocess.run([CHROMIUM, *flags, f"--user-data-dir={profile}", "--dump-dom", url],
                             capture_output=True, text=True, timeout=60)
        assert dom.returncode == 0 and "<html" in dom.stdout, dom.stderr[-2000:]
    if shot.exists():
        os.unlink(shot)
    with tempfile.TemporaryDirectory(prefix="plotfleet-chromium-") as profile:
        r = subprocess.run([CHROMIUM, *flags, f"--user-data-dir={profile}",
                            f"--screenshot={shot}", url], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    return dom.stdout
