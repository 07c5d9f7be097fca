"""--serve: /metrics against /status.json of the same pass, the token off
loopback, the discovery file, the page's figures; on a real HTTP server in
this process, over FleetStates built by tests/factories.py."""
import json
import os
import subprocess
import sys

import pytest

from orchestrator.config.controller import ControllerConfig
from orchestrator.core.state import DeadJob, Dir, HostState
from orchestrator.errors import UserError
from orchestrator.serve import discovery, instant
from orchestrator.serve.server import Serving, parse_address
from tests import factories as f
from tests.cli import plotfleet
from tests.serve_helpers import PageReader, expected, get, page_figures, scraped


def busy_fleet():
    """Every kind of row: jobs in three states, a waiting plot, a transfer
    in flight, a dir gone read-only, a failed job, a harvester, a host down."""
    p = f.plotter("p1", tmp_dirs=("/t0", "/t1"), dst_dirs=("/d0",))
    h = f.harvester("h1", farm_dirs=("/f0", "/f1"))
    gone = f.plotter("p2")
    plot = f.plot_file("/d0", n=7, k=32)
    jobs = (f.job(tmp="/t0", phase=(1, 3), pid=11, plot_id="aa" * 32),
            f.job(tmp="/t0", phase=(3, 5), pid=12, state="suspended"),
            f.job(tmp="/t1", phase=(2, 1), pid=13, stalled=True))
    dirs = f.host_dirs(p, errors={"/t1": "read-only"})
    dirs = tuple(d if d.path != "/t1" else Dir(**{**d.__dict__, "error_code": "read_only"})
                 for d in dirs)
    ps = HostState(**{**f.host_state(p, jobs=jobs, plots=[plot], dirs=dirs,
                                     transfers=[f.transfer(plot, to_dir="/f0", done=2 ** 30,
                                                           started_at=f.NOW - 100)]).__dict__,
                      "dead": (DeadJob(plot_id=None, log_file="/log/9.log", phase=(1, 1),
                                       tmp_files=(), tmp_bytes=0, plotter="chia", k=32,
                                       tmp_dir="/t0", error="bad alloc"),)})
    hdirs = tuple(Dir(**{**d.__dict__, "plot_count": 3 if d.path == "/f0" else 0})
                  for d in f.host_dirs(h))
    return f.inventory(p, h, gone), f.fleet(ps, f.host_state(h, dirs=hdirs), f.down(gone))


def serving(hosts, address="127.0.0.1:0", token=None, path="/nonexistent/inv.yaml", limit=None):
    return Serving(address, path, limit, ControllerConfig(serve_token=token, app_log=None),
                   hosts, "plot-all", say=lambda line: None)


def test_metrics_gauges_match_the_status_document_of_the_same_pass(tmp_path):
    hosts, state = busy_fleet()
    s = serving(hosts, path=str(tmp_path / "inv.yaml"))
    with s as latest:
        latest.update(state, seconds=1.25)
        code, body, _ = get(s.url + "metrics")
        assert code == 200
        code, doc, _ = get(s.url + "status.json")
        doc = json.loads(doc)
    got = scraped(body.decode())
    want = expected(doc)
    assert got == want
    # a few read plainly, so the comparison above cannot be vacuous
    assert got[("plotfleet_host_up", frozenset({("host", "p2")}))] == 0.0
    assert sum(v for (n, _), v in got.items() if n == "plotfleet_jobs") == 3
    states = {dict(l)["state"] for (n, l) in got if n == "plotfleet_jobs"}
    assert states == {"running", "suspended", "stalled"}
    assert got[("plotfleet_dir_error", frozenset({("host", "p1"), ("dir", "/t1"), ("kind", "tmp"),
                                                  ("code", "read_only")}))] == 1.0
    text = body.decode()
    assert 'plotfleet_jobs_failed_total{dir="/t0",host="p1",k="32",level="",plotter="chia"} 1.0' \
        in text
    assert "plotfleet_pass_seconds 1.25" in text
    assert 'plotfleet_transfer_bytes_per_second{dir="/f0",host="p1",to_host="h1"}' in text
    # the status part of the document is status --json's, as it is
    assert {k: v for k, v in doc.items() if k != "controller"} == \
        json.loads(json.dumps(state.to_json()))


def test_counters_count_each_failure_once_across_passes():
    hosts, state = busy_fleet()
    s = serving(hosts)
    latest = s.latest
    latest.update(state)
    p = latest.update(state)        # the same dead job seen again is not a new failure
    assert sum(p.failed.values()) == 1 and p.number == 2


def test_off_loopback_needs_the_token_and_asks_for_it(tmp_path):
    hosts, state = busy_fleet()
    with pytest.raises(UserError) as e:
        serving(hosts, address="127.0.0.2:0")
    assert "serve_token" in str(e.value) and "\n" not in str(e.value)
    s = serving(hosts, address="127.0.0.2:0", token="s3cret", path=str(tmp_path / "i.yaml"))
    with s as latest:
        latest.update(state)
        assert s.url.startswith("http://127.0.0.2:")
        for path in ("", "metrics", "status.json", "status.txt"):
            assert get(s.url + path)[0] == 401
            assert get(s.url + path, token="wrong")[0] == 401
            assert get(s.url + path + "?token=wrong")[0] == 401
            assert get(s.url + path, token="s3cret")[0] == 200, path
            assert get(s.url + path + "?token=s3cret")[0] == 200, path
        # the discovery file carries the token for instant status, this user's only
        info = discovery.find(str(tmp_path / "i.yaml"), None)
        assert info["token"] == "s3cret" and info["port"] == int(s.url.rsplit(":", 1)[1][:-1])
        assert os.stat(s.discovery).st_mode & 0o077 == 0
    assert discovery.find(str(tmp_path / "i.yaml"), None) is None    # removed at exit


def test_loopback_needs_no_token_and_nothing_served_changes_anything():
    hosts, state = busy_fleet()
    s = serving(hosts)
    with s as latest:
        assert get(s.url + "status.json")[0] == 503       # before the first pass
        latest.update(state)
        assert get(s.url + "status.json")[0] == 200
        assert get(s.url + "nosuch")[0] == 404
        req = __import__("urllib.request").request.Request(s.url + "status.json", data=b"x",
                                                           method="POST")
        with pytest.raises(Exception) as e:
            __import__("urllib.request").request.urlopen(req, timeout=5)
        assert e.value.code == 501


def test_serve_address_forms_and_bad_ones():
    assert parse_address("127.0.0.1:8420") == ("127.0.0.1", 8420)
    assert parse_address("8420") == ("127.0.0.1", 8420)
    assert parse_address(":0") == ("127.0.0.1", 0)
    assert parse_address("[::1]:9") == ("::1", 9)
    assert parse_address("localhost:9") == ("127.0.0.1", 9)
    for bad in ("abc", "1.2.3.4:", "1.2.3.4:99999", "[::1]"):
        with pytest.raises(UserError):
            parse_address(bad)


def test_plot_all_refuses_off_loopback_without_token_before_touching_a_host(tmp_path):
    inv = tmp_path / "inventory.yaml"
    inv.write_text("all:\n  children:\n    plotters:\n      hosts:\n        p1:\n"
                   "          ansible_host: 127.0.0.9\n          ansible_port: 1\n"
                   "          tmp_dirs: [/t]\n          dst_dirs: [/d]\n          log_dir: /l\n"
                   "          plotter: chiapos\n          k: 18\n")
    for task in ("plot-all", "dashboard"):
        r = plotfleet(task, "--inventory", inv, "--serve", "127.0.0.2:8431", timeout=30)
        assert r.returncode == 2, r.stderr
        assert r.stderr.strip().splitlines() == [
            "plotfleet: --serve 127.0.0.2:8431: serving beyond loopback needs serve_token "
            "in the inventory's all vars"]
        assert "unreachable" not in r.stdout
    r = plotfleet("plot-all", "--inventory", inv, "--serve", "nohost:", timeout=30)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "--serve must be HOST:PORT" in r.stderr


def test_discovery_ignores_a_dead_pid_another_limit_and_another_file(tmp_path):
    inv = tmp_path / "inv.yaml"
    inv.write_text("")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = discovery.write(str(inv), "plotters", {"host": "127.0.0.1", "port": 1, "pid": dead.pid})
    try:
        assert discovery.find(str(inv), "plotters") is None       # its controller is gone
        discovery.write(str(inv), "plotters", {"host": "127.0.0.1", "port": 1, "pid": os.getpid()})
        assert discovery.find(str(inv), "plotters")["port"] == 1
        # the same file by another name is the same inventory
        os.symlink(inv, tmp_path / "link.yaml")
        assert discovery.find(str(tmp_path / "link.yaml"), "plotters") is not None
        assert discovery.find(str(inv), None) is None
        assert discovery.find(str(inv), "plotters:!p1") is None
        (tmp_path / "other.yaml").write_text("")
        assert discovery.find(str(tmp_path / "other.yaml"), "plotters") is None
    finally:
        discovery.remove(path)
    assert not os.path.exists(path)


def test_instant_takes_only_a_plain_status_command_line():
    assert instant.parse(["status"]) == {"inventory": None, "limit": None, "json": False,
                                         "fresh": False}
    assert instant.parse(["status", "-i", "a.yaml", "--limit=p*", "-j"]) == {
        "inventory": "a.yaml", "limit": "p*", "json": True, "fresh": False}
    assert instant.parse(["status", "--inventory", "a", "--fresh"])["fresh"] is True
    for other in (["plot-all"], ["status", "--help"], ["status", "--bogus"], ["status", "-i"],
                  [], ["--debug", "status"]):
        assert instant.parse(other) is None, other


def test_page_shows_the_document_figures_and_escapes_host_text():
    from orchestrator.serve.page import render
    hosts, state = busy_fleet()
    state = f.fleet(*state.hosts[:2], f.down(hosts["p2"], error="<script>x</script>"))
    s = serving(hosts)
    p = s.latest.update(state)
    html = render(p, 10, "plot-all")
    r = PageReader()
    r.feed(html)
    doc = json.loads(json.dumps(state.to_json()))
    assert {k: r.figs[k] for k in page_figures(doc)} == page_figures(doc)
    assert {k: v["phase"] for k, v in r.jobs.items()} == {"p1:11": "1:3", "p1:12": "3:5",
                                                        "p1:13": "2:1"}
    assert r.jobs["p1:13"]["state"] == "stalled" and r.down == ["p2"]
    # the transfer's progress: 1 GiB of the plot's expected size
    plot = state.hosts[0].transfers[0]
    assert f'data-progress="{2 ** 30 / plot.size_bytes * 100:.1f}"' in html
    assert "<script>x" not in html and "&lt;script&gt;x" in html
    assert 'http-equiv="refresh" content="10"' in html and "http" not in html.split("<style>")[1]


def test_the_grafana_dashboard_uses_the_metrics_served_and_every_one_of_them():
    import re
    from pathlib import Path
    from orchestrator.serve.metrics import families
    hosts, state = busy_fleet()
    served = {fam.name + ("_total" if fam.kind == "counter" else "")
              for fam in families(serving(hosts).latest.update(state))}
    dash = json.loads((Path(__file__).resolve().parent.parent / "grafana/plotfleet.json").read_text())
    used = {m for p in dash["panels"] for t in p["targets"]
            for m in re.findall(r"plotfleet_\w+", t["expr"])}
    assert used <= served
    assert served - used == {"plotfleet_pass_timestamp_seconds"}


def test_farm_free_plots_is_labelled_by_k_and_compression():
    """One series per kind of plot the fleet makes, its level with its format:
    a bladebit C7 plot is smaller than an uncompressed one, so more fit."""
    from prometheus_client.parser import text_string_to_metric_families
    from orchestrator.core import plotsize
    bb = f.plotter("bb", plotter="bladebit", compress=7, farmer_key="8f" * 48,
                   pool_contract="xch1" + "q" * 58)
    ch = f.plotter("ch")
    h = f.harvester(farm_dirs=("/f0",))
    room = 10 * plotsize.plot_bytes(32)
    state = f.fleet(f.host_state(bb), f.host_state(ch), f.host_state(h, free={"/f0": room}))
    s = serving(f.inventory(bb, ch, h))
    with s as latest:
        latest.update(state, seconds=0.5)
        _, body, _ = get(s.url + "metrics")
    free = {s.labels["level"]: s.value for fam in text_string_to_metric_families(body.decode())
            if fam.name == "plotfleet_farm_free_plots" for s in fam.samples}
    assert free == {"C0": 10.0, "C7": float(room // plotsize.plot_bytes(
        32, plotsize.Compression(plotsize.BLADEBIT, 7)))}
    assert free["C7"] > free["C0"]


def test_page_names_a_jobs_compression_with_its_format():
    import re
    from orchestrator.core import plotsize
    from orchestrator.serve.page import render
    p = f.plotter("p1")
    jobs = (f.job(pid=21, compress=7, compress_format=plotsize.GIGAHORSE),
            f.job(pid=22, compress=7, compress_format=plotsize.BLADEBIT), f.job(pid=23))
    s = serving(f.inventory(p))
    html = render(s.latest.update(f.fleet(f.host_state(p, jobs=jobs))), 10, "plot-all")
    rows = {m.group(1): m.group(2) for m in re.finditer(r'<tr data-job="p1:(\d+)">(.*?)</tr>', html)}
    assert ">32 GH C7<" in rows["21"] and ">32 C7<" in rows["22"]
    assert ">32<" in rows["23"] and " C" not in rows["23"]       # uncompressed: k alone
