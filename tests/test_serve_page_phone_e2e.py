"""The web page of `plot-all --serve` on the README's demo inventory, in
headless chromium at a phone's 390x844: each plotter's plotting and archiving
line, its tmp and dst readiness, each job's dirs, k and tmp size, every farm
dir grouped by disk, the event lines plot-all prints, and no horizontal
scrolling (the screenshot is kept under tests/artifacts/)."""
import re
import shutil
import signal
import subprocess
import sys
import time

import psutil

from orchestrator.serve import discovery
from tests.cli import REPO
from tests.serve_helpers import ARTIFACTS, PageReader, chromium, get
from tests.test_serve_e2e import ENV

# headless chromium's window is at least 500 wide: the page goes in a 390x844
# frame, and a script of the frame's page (the page itself has none) measures it
PHONE = ('<!doctype html><html><body style="margin:0"><iframe id="phone" src="page.html" '
         'style="width:390px;height:844px;border:0"></iframe><script>'
         'document.getElementById("phone").onload=function(){'
         'var d=this.contentDocument.documentElement;'
         'document.body.setAttribute("data-scroll",d.scrollWidth+" "+d.clientWidth);'
         'document.body.setAttribute("data-dom",d.outerHTML)}</script></body></html>')


def test_the_page_on_a_phone_carries_the_why_lines_dirs_jobs_and_event_lines(tmp_path):
    shutil.copy(REPO / "inventory.example.yaml", tmp_path / "inventory.yaml")
    inv = tmp_path / "inventory.yaml"
    out = tmp_path / "plot-all.out"
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "plot-all", "--inventory",
                             str(inv), "--serve", "127.0.0.1:0"], cwd=tmp_path,
                            env=dict(ENV, LANG="C.UTF-8"), stdout=open(out, "w"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        html = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:      # a pass with a job running and a plot archived
            assert proc.poll() is None, out.read_text()
            info = discovery.find(str(inv), None)
            status, body, _ = get(info["url"]) if info else (0, b"", None)
            text = body.decode()
            if status == 200 and "data-job=" in text and " promoted on " in text:
                html = text
                break
            time.sleep(0.2)
        assert html is not None, out.read_text()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    (tmp_path / "page.html").write_text(re.sub(r'<meta http-equiv="refresh"[^>]*>', "", html))
    (tmp_path / "phone.html").write_text(PHONE)
    shot = ARTIFACTS / "serve-page-demo-390x844.png"
    framed = chromium((tmp_path / "phone.html").as_uri(), 390, 844, shot,
                      extra=["--allow-file-access-from-files", "--virtual-time-budget=5000"])
    scroll, width = map(int, re.search(r'data-scroll="(\d+) (\d+)"', framed).groups())
    # no horizontal scrollbar on the phone
    assert width == 390 and scroll <= width, (scroll, width)
    dom = chromium((tmp_path / "page.html").as_uri(), 390, 844, tmp_path / "wide.png")
    page = PageReader()
    page.feed(dom)
    # the terminal's most useful lines: why it plots (or not) and archives (or not)
    assert '<div class="card" data-plotter="localhost">' in dom
    whys = dict(re.findall(r'data-why="(\w+)"[^>]*>([^<]+)<', dom))
    assert set(whys) == {"plotting", "archiving"} and all(whys.values()), whys
    # tmp and dst readiness, dirs by the key line
    assert sorted(re.findall(r'data-tmp="localhost:[^"]*/demo/(tmp[01])" data-ready="[01]"',
                             dom)) == ["tmp0", "tmp1"], dom
    assert re.search(r'data-dst="localhost:[^"]*/demo/dst" data-state="\w+"', dom)
    assert f"key tmp, dst {tmp_path}/demo/" in dom
    # each job: its dirs, k and tmp size
    assert page.jobs, dom
    for row in page.jobs.values():
        assert row["k"] == "18" and re.fullmatch(r"tmp[01] → dst", row["dirs"]), row
        assert re.fullmatch(r"\d+(\.\d)? (B|KiB|MiB|GiB)", row["tmp size"]), row
    # the two farm dirs share this disk: one drive, both dirs on its row
    assert page.figs["drives"] == "1" and page.figs["farm-dirs"] == "2"
    [drive] = re.findall(r'<tr data-drive="[^"]*" data-used="[\d.]+" data-dirs="(\d)">(.*?)</tr>',
                         dom)
    assert drive[0] == "2" and "farm1, farm2" in drive[1], drive
    # the event lines plot-all prints, with no path the key names
    events = re.findall(r'<li[^>]*><span class="sub">[\d:]+</span> (.*?)</li>', dom)
    assert any(re.fullmatch(r"✓ [0-9a-f]{8} promoted on localhost:farm[12] \(.*verified\).*",
                            e) for e in events), events
    assert any(re.fullmatch(r"▶ localhost chiapos k18 tmp[01] → dst \(pid \d+\).*", e)
               for e in events), events
    assert not any(f"{tmp_path}/demo/tmp" in e for e in events), events
    assert shot.stat().st_size > 5000
    print(f"screenshot: {shot}")
    # the jobs it left run on: let them end here
    deadline = time.time() + 60
    while any(str(tmp_path) in " ".join(q.info["cmdline"] or [])
              for q in psutil.process_iter(["cmdline"])):
        assert time.time() < deadline
        time.sleep(0.2)
