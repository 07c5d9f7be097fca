"""plotman's screen, fleet-wide: dir keys, tmp readiness, dst priority and
the plotting / archiving lines, from the scheduler's and archiver's own
verdicts (core/outlook.py), rendered by `status` at 80 and 120 columns."""
import random
import re
import time

from rich.console import Console

from orchestrator.core.archiver import archive
from orchestrator.core.outlook import judge, outlook, status_json
from orchestrator.core.scheduler import schedule
from orchestrator.core.state import Dir, expected_plot_bytes, expected_tmp_bytes
from orchestrator.ui import views
from orchestrator.ui.dirkeys import abbreviate, common_prefix, dir_key
from tests.factories import (GiB, TiB, fleet, harvester, host_state, inventory, job, plot_file,
                             plotter, replace, transfer)

TMP = tuple(f"/mnt/plotter-nvme/{i:02d}" for i in range(8))
DST = tuple(f"/mnt/plotter-hdd/{i:02d}" for i in range(4))
FARM = tuple(f"/mnt/farm/hdd{i:02d}" for i in range(4))
LONG = "plotter-rack07-nvme-chassis-a"          # longer than any column gives it


def test_dir_keys_name_each_dir_by_its_unique_rest():
    k = dir_key(TMP)
    assert k.prefix == "/mnt/plotter-nvme/" and [k(p) for p in TMP] == [f"{i:02d}" for i in range(8)]
    # one dir alone keeps its last component (plotman's relpath would show ".")
    assert dir_key(["/mnt/nvme/tmp"]).prefix == "/mnt/nvme/"
    assert dir_key(["/mnt/nvme/tmp"])("/mnt/nvme/tmp") == "tmp"
    # a dir inside another: the prefix stops above both, rows stay distinct
    k = dir_key(["/mnt/a", "/mnt/a/b"])
    assert (k.prefix, k("/mnt/a"), k("/mnt/a/b")) == ("/mnt/", "a", "a/b")
    # no common parent worth a key: whole paths
    assert common_prefix(["/t0", "/t1"]) == "" and dir_key(["/t0", "/t1"])("/t1") == "/t1"
    assert common_prefix(["/x/t0", "rel/t1"]) == ""
    # as a host reports it (trailing slash), and a path outside the key
    assert dir_key(TMP)("/mnt/plotter-nvme/03/") == "03"
    assert abbreviate("/elsewhere/x", "/mnt/plotter-nvme/") == "/elsewhere/x"
    assert common_prefix(["/mnt/pl/aa", "/mnt/plx/bb"]) == "/mnt/"   # whole components only


def screen_fleet(now):
    """3 plotters (one with a long name) whose dirs share long prefixes, 2 harvesters."""
    ps = [plotter(LONG, tmp_dirs=TMP, dst_dirs=DST, global_stagger_m=0, tmpdir_max_jobs=2),
          plotter("p2", tmp_dirs=TMP, dst_dirs=DST, global_stagger_m=120),
          plotter("p3", tmp_dirs=TMP[:2], dst_dirs=DST[:1], global_stagger_m=0)]
    hs = [harvester("h1", farm_dirs=FARM, farm_reserve_bytes=GiB),
          harvester("h2", farm_dirs=FARM[:2])]
    j = lambda p, tmp, dst, phase, pid: job(tmp=tmp, dst=dst, phase=phase, pid=pid,
                                            host_time=now, age_s=3600.0 + pid)
    sent = plot_file(DST[0], n=1)
    states = [
        host_state(ps[0], host_time=now, jobs=(
            j(ps[0], TMP[0], DST[0], (1, 4), 1), j(ps[0], TMP[1], DST[1], (3, 2), 2),
            j(ps[0], TMP[1], DST[1], (4, 1), 3), j(ps[0], TMP[2], DST[0], (2, 3), 4)),
            plots=(sent, plot_file(DST[2], n=2)),
            transfers=(transfer(sent, to_dir=FARM[0], done=sent.size_bytes // 4,
                                started_at=now - 30),),
            free={TMP[3]: expected_tmp_bytes(32) // 2}),
        host_state(ps[1], host_time=now, jobs=(j(ps[1], TMP[5], DST[3], (1, 1), 5),),
                   plots=(plot_file(DST[3], n=3),)),
        host_state(ps[2], host_time=now),
    ]
    for h in hs:
        dirs = tuple(Dir(p, "farm", 18 * TiB, (18 - 2 * i) * TiB, f"{h.name}:{p}",
                         plot_count=20 * i, plot_kinds=((32, 0, None, 20 * i, 108 * 10 ** 9),) if i else ())
                     for i, p in enumerate(h.farm_dirs))
        if h.name == "h1":
            dirs = dirs[:3] + (replace(dirs[3], error="set aside until 12:30: I/O error",
                                       error_code="set_aside"),)
        states.append(host_state(h, host_time=now, dirs=dirs))
    return fleet(*states, now=now), inventory(*ps, *hs)


def render(state, hosts, width):
    con = Console(width=width, record=True, color_system=None)
    con.print(views.status_view(state, hosts, width=width))
    return con.export_text()


def test_status_at_80_and_120_columns_names_every_dir_and_host():
    now = time.time()
    state, hosts = screen_fleet(now)
    for width in (80, 120):
        text = render(state, hosts, width)
        lines = text.splitlines()
        assert max(map(len, lines)) <= width
        for name in (LONG, "p2", "p3", "h1", "h2"):
            assert name in text, (width, name)              # never cut
        # each plotter's tables are headed by its key line, with the prefixes
        flat = " ".join(text.replace("│", " ").split())      # rows wrapped in boxes, joined
        for name in (LONG, "p2", "p3"):
            assert (f"{name} key: tmp /mnt/plotter-nvme/ · dst /mnt/plotter-hdd/ tmp "
                    in flat), (width, text)
        # every tmp row starts with its dir's own suffix: 8 + 8 + 2 rows, none cut
        rows = [m.groups() for m in re.finditer(
            r"^(\S+)\s+(ready|phase limit|max jobs|room|dir error)\s", text, re.M)
            if m.group(1) != "tmp"]                         # not the header
        assert [r[0] for r in rows] == [f"{i:02d}" for i in range(8)] * 2 + ["00", "01"], text
        # the rules holding them, as the scheduler judged
        assert rows[0][1] == "phase limit"          # 1:4 before 2:1
        assert rows[1][1] == "max jobs"             # 2 jobs, tmpdir_max_jobs 2
        assert rows[3][1] == "room" and rows[4][1] == "ready"
        # every dst row, by suffix, with its plots and free space
        dst = re.findall(r"(?:^|\s)(0[0-3])\s+(\d+)\s+[\d.]+ TiB\s", text, re.M)
        assert [d[0] for d in dst] == ["00", "01", "02", "03"] * 2 + ["00"], text
        assert "sending 00000000 -> h1:hdd00 (rsync pid 4242, 25%" in flat  # by its farm key
        assert "plotter busy: 1/1 transfers" in flat        # why dst 02 waits
        # the harvester drives, by harvester: plots by k, the set-aside drive with why
        assert "key h1: farm /mnt/farm/" in text and "20×k32" in text and "40×k32" in text
        assert "set aside until 12:30: I/O error" in flat
    assert "…" not in render(state, hosts, 120)


def random_fleet(rng, now):
    hosts, states = [], []
    for n in range(rng.randint(1, 3)):
        tmp = TMP[:rng.randint(1, 5)]
        dst = DST[:rng.randint(1, 3)]
        h = plotter(f"p{n}", tmp_dirs=tmp, dst_dirs=dst, k=rng.choice((18, 32)),
                    global_stagger_m=rng.choice((0, 0, 30)),
                    global_max_jobs=rng.choice((0, 0, 4)),
                    tmpdir_max_jobs=rng.randint(1, 3),
                    tmpdir_stagger_phase_limit=rng.randint(1, 2),
                    max_transfers_per_plotter=rng.randint(1, 2),
                    tmp_overrides={tmp[0]: {"tmpdir_max_jobs": 1}} if rng.random() < 0.3 else {})
        jobs = tuple(job(tmp=rng.choice(tmp), dst=rng.choice(dst), k=h.k, pid=100 + i,
                         phase=(rng.randint(1, 4), rng.randint(0, 6)), host_time=now,
                         age_s=rng.choice((60.0, 4000.0)) + i)
                     for i in range(rng.randint(0, 6)))
        plots = tuple(plot_file(rng.choice(dst), n=100 * n + i, k=h.k, mtime=now - rng.random() * 1e4)
                      for i in range(rng.randint(0, 4)))
        free = {p: rng.choice((100 * TiB, expected_tmp_bytes(h.k) // 2, 3 * expected_tmp_bytes(h.k)))
                for p in tmp}
        free.update({p: rng.choice((100 * TiB, expected_plot_bytes(h.k) // 2)) for p in dst})
        devices = {p: "shared" for p in tmp if rng.random() < 0.3}
        errors = {tmp[-1]: "missing"} if rng.random() < 0.2 else {}
        running = tuple(transfer(p, to_dir=FARM[0], done=1) for p in plots[:1] if rng.random() < 0.4)
        hosts.append(h)
        states.append(host_state(h, jobs=jobs, plots=plots, transfers=running, free=free,
                                 devices=devices, errors=errors, host_time=now))
    for n in range(rng.randint(0, 2)):
        h = harvester(f"h{n}", farm_dirs=FARM[:rng.randint(1, 3)])
        hosts.append(h)
        states.append(host_state(h, host_time=now, default_free=rng.choice((100 * TiB, GiB))))
    return fleet(*states, now=now), inventory(*hosts)


def test_tables_never_disagree_with_the_scheduler_and_archiver():
    rng = random.Random(14)
    now = 1_700_000_000.0
    seen = set()
    for _ in range(400):
        state, hosts = random_fleet(rng, now)
        decision, arch = schedule(state, hosts, now), archive(state, hosts)
        starts = {s.host: s for s in decision.starts}
        waits = {w.host: w for w in decision.waits if w.subject == "plotter"}
        for o in outlook(state, hosts, decision, arch):
            ready = [v for v in o.tmp if v.ready]
            if o.host in starts:
                s = starts[o.host]
                assert o.plotting == "ready" and o.start == s
                chosen = next(v for v in o.tmp if v.path == s.tmp_dir)
                assert chosen.ready               # the dir it starts on shows ready
                # and no ready dir is readier (empty first, then furthest along)
                assert all((not v.phases, v.phases) <= (not chosen.phases, chosen.phases)
                           for v in ready)
                seen.add("start")
            else:
                w = waits[o.host]
                assert o.plotting in ("waiting", "blocked") and o.plotting_reason == w.reason
                if w.reason.startswith(("no tmp dir ready", "tmp dir full")):
                    assert not ready and all(v.reason in w.reason for v in o.tmp)
                    seen.add("tmp wait")
                else:
                    seen.add("other wait")
            for v in o.tmp:
                seen.add(v.rule)
            # dst: what is sent, and in which order, is the archiver's
            sent = [t for t in arch.transfers if t.from_host == o.host]
            rows = {r.path: r for r in o.dst}
            prios = []
            for t in sent:
                row = next(r for r in o.dst if t.plot.startswith(r.path + "/"))
                assert row.state in ("next", "sending") and row.priority is not None
                prios.append(row.priority)
                seen.add("next")
            assert prios == sorted(prios)
            archiver_waits = {w.subject: w.reason for w in arch.waits if w.host == o.host}
            for r in rows.values():
                if r.state == "waiting":
                    assert r.reason == archiver_waits[r.plot.rsplit("/", 1)[-1]]
                    seen.add("dst wait")
                assert (r.priority is None) == (r.plots == 0)
            assert (o.archiving == "next") == bool(sent and not o.sending)
    # the generator reached every kind of verdict
    assert {"start", "tmp wait", "other wait", None, "phase limit", "max jobs", "room",
            "dir error", "next", "dst wait"} <= seen, seen


def test_status_json_carries_the_same_fields():
    now = time.time()
    state, hosts = screen_fleet(now)
    doc = status_json(state, judge(state, hosts, now))
    h = {x["name"]: x for x in doc["hosts"]}
    tmp = h[LONG]["tmp"]
    assert [t["path"] for t in tmp] == list(TMP)
    assert (tmp[0]["ready"], tmp[0]["rule"], tmp[0]["phases"]) == (False, "phase limit", [[1, 4]])
    assert tmp[4]["ready"] and tmp[4]["rule"] is None and tmp[4]["free_bytes"] == 100 * TiB
    dst = {d["path"]: d for d in h[LONG]["dst"]}
    assert dst[DST[0]]["state"] == "sending" and dst[DST[0]]["phases"] == [[1, 4], [2, 3]]
    assert dst[DST[2]]["priority"] == 2 and dst[DST[2]]["reason"] == "plotter busy: 1/1 transfers"
    assert h[LONG]["plotting"]["state"] == "ready"
    assert h["p2"]["plotting"] == {"state": "waiting", "reason": "stagger 3605s/7200s",
                                   "start": None, "started_log": None}
    assert h[LONG]["archiving"]["sending"][0]["pid"] == 4242
    assert "tmp" not in h["h1"]                     # harvesters: their dirs as before


def test_the_plotting_line_says_what_the_pass_did_with_its_start():
    from orchestrator.core.events import Event
    from orchestrator.ui.dirtables import host_keys, plotting_text
    now = time.time()
    state, hosts = screen_fleet(now)
    decision, arch = schedule(state, hosts, now), archive(state, hosts)
    log = "/log/2026-12-02T00_40_00.123456_chia.log"
    events = (Event("job_started", "p3", log, "started on p3: ..."),
              Event("job_start_failed", LONG, "/mnt/plotter-nvme/04",
                    f"{LONG}: start job failed: tmp dir vanished", failed=True))
    got = {o.host: o for o in outlook(state, hosts, decision, arch, events)}
    keys = host_keys(state, hosts)
    assert str(plotting_text(got["p3"], keys["p3"])) == \
        "started a job: tmp 00 -> dst 00"
    assert got[LONG].plotting == "failed"
    assert str(plotting_text(got[LONG], keys[LONG])) == f"{LONG}: start job failed: tmp dir vanished"
    # nothing applied (status): the same start is only due
    assert str(plotting_text(judge(state, hosts, now)[2], keys["p3"])) == \
        "ready: next job tmp 00 -> dst 00"
