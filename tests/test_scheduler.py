"""The scheduler decides as plotman would, per plotter, and says why it waits."""
from orchestrator.core.state import expected_plot_bytes, expected_tmp_bytes
from orchestrator.core.scheduler import schedule
from tests.factories import (GiB, MiB, NOW, TiB, down, fleet, harvester, host_state, inventory,
                             job, jobs_in, partial, plot_file, plotter, transfer)


def one(state, hosts, now=NOW, **kw):
    d = schedule(state, hosts, now, **kw)
    return d, {w.host: w.reason for w in d.waits}


def test_idle_plotter_starts_one_job_in_first_tmp_dir_and_only_one():
    p = plotter(tmp_dirs=("/t0", "/t1"), dst_dirs=("/d0",))
    d, waits = one(fleet(host_state(p)), inventory(p))
    assert [(s.host, s.tmp_dir, s.dst_dir, s.k) for s in d.starts] == [("p1", "/t0", "/d0", 32)]
    assert d.starts[0].argv[:3] == ("chia", "plots", "create")
    assert "-t" in d.starts[0].argv and d.backpressure is None and waits == {}


def test_stagger_names_age_and_limit_with_fractional_minutes():
    p = plotter(global_stagger_m=0.5)
    d, waits = one(fleet(host_state(p, jobs=[job(age_s=12.4)])), inventory(p))
    assert d.starts == () and waits == {"p1": "stagger 12s/30s"}
    d, _ = one(fleet(host_state(p, jobs=[job(tmp="/t1", phase=(3, 0), age_s=31.0)])), inventory(p))
    assert [s.tmp_dir for s in d.starts] == ["/t0"]


def test_stagger_uses_host_clock_not_the_laptops():
    # The plotter's clock is 2 hours behind the laptop's: a job it started 100 s
    # ago (on its clock) is young, however old it looks against laptop time.
    skew = -7200.0
    p = plotter(global_stagger_m=30)
    st = host_state(p, jobs=[job(age_s=100, host_time=NOW + skew)], host_time=NOW + skew)
    _, waits = one(fleet(st), inventory(p))
    assert waits == {"p1": "stagger 100s/1800s"}
    # and 50 s after the snapshot was taken, it is 50 s older
    _, waits = one(fleet(st), inventory(p), now=NOW + 50)
    assert waits == {"p1": "stagger 150s/1800s"}


def test_global_max_jobs_counts_suspended_stalled_and_hand_started_jobs():
    p = plotter(global_max_jobs=3, tmpdir_max_jobs=9)
    js = [job(phase=(3, 1), pid=1), job(tmp="/t1", phase=(4, 1), state="suspended", pid=2),
          job(tmp="/elsewhere", dst="/other", phase=(3, 3), stalled=True, pid=3)]
    d, waits = one(fleet(host_state(p, jobs=js)), inventory(p))
    assert d.starts == () and waits == {"p1": "max jobs 3/3"}
    d, _ = one(fleet(host_state(p, jobs=js[:2])), inventory(p))
    assert len(d.starts) == 1
    unlimited = plotter(global_max_jobs=0, tmp_dirs=("/t0", "/t1", "/t2"))
    d, _ = one(fleet(host_state(unlimited, jobs=js)), inventory(unlimited))
    assert [s.tmp_dir for s in d.starts] == ["/t2"]


def test_tmp_dir_phase_stagger_names_dirs_and_blocking_phases():
    p = plotter(tmp_dirs=("/t0", "/t1"))
    js = jobs_in((1, 4)) + jobs_in((2, 0), (3, 5), tmp="/t1")
    _, waits = one(fleet(host_state(p, jobs=js)), inventory(p))
    assert waits == {"p1": "no tmp dir ready: /t0 in 1:4 < 2:1; /t1 in 2:0 < 2:1"}


def test_stagger_phase_limit_allows_that_many_early_jobs():
    p = plotter(tmp_dirs=("/t0",), tmpdir_stagger_phase_limit=2, tmpdir_max_jobs=5)
    d, _ = one(fleet(host_state(p, jobs=jobs_in((1, 4)))), inventory(p))
    assert [s.tmp_dir for s in d.starts] == ["/t0"]
    _, waits = one(fleet(host_state(p, jobs=jobs_in((1, 4), (1, 2)))), inventory(p))
    assert waits == {"p1": "no tmp dir ready: /t0 in 1:2, 1:4 < 2:1"}


def test_tmpdir_max_jobs_and_readiest_dir_wins():
    p = plotter(tmp_dirs=("/t0", "/t1", "/t2"), tmpdir_max_jobs=2)
    js = (jobs_in((3, 1), (4, 0)) + jobs_in((2, 5), tmp="/t1") + jobs_in((3, 2), tmp="/t2"))
    d, _ = one(fleet(host_state(p, jobs=js)), inventory(p))
    # /t0 is at its max; /t2's youngest job (3:2) is further along than /t1's (2:5)
    assert [s.tmp_dir for s in d.starts] == ["/t2"]
    assert "jobs in 3:2" in d.starts[0].reason
    full = jobs_in((3, 1), (4, 0)) + jobs_in((2, 5), (3, 0), tmp="/t1") + jobs_in((3, 2), (4, 2), tmp="/t2")
    _, waits = one(fleet(host_state(p, jobs=full)), inventory(p))
    assert waits["p1"] == "no tmp dir ready: /t0 has 2/2 jobs; /t1 has 2/2 jobs; /t2 has 2/2 jobs"


def test_empty_tmp_dir_is_preferred_over_busy_ones():
    p = plotter(tmp_dirs=("/t0", "/t1"))
    d, _ = one(fleet(host_state(p, jobs=jobs_in((4, 2)))), inventory(p))
    assert d.starts[0].tmp_dir == "/t1" and "empty" in d.starts[0].reason


def test_tmp_overrides_replace_the_tmpdir_keys_for_that_dir():
    p = plotter(tmp_dirs=("/t0", "/t1"),
                tmp_overrides={"/t0": {"tmpdir_max_jobs": 1},
                               "/t1": {"tmpdir_stagger_phase_major": 1,
                                       "tmpdir_stagger_phase_minor": 3,
                                       "tmpdir_stagger_phase_limit": 1}})
    js = jobs_in((3, 0)) + jobs_in((1, 4), tmp="/t1")
    d, _ = one(fleet(host_state(p, jobs=js)), inventory(p))
    assert [s.tmp_dir for s in d.starts] == ["/t1"]          # 1:4 is past /t1's 1:3
    js = jobs_in((3, 0)) + jobs_in((1, 2), tmp="/t1")
    _, waits = one(fleet(host_state(p, jobs=js)), inventory(p))
    assert waits == {"p1": "no tmp dir ready: /t0 has 1/1 jobs; /t1 in 1:2 < 1:3"}


def test_job_with_unknown_phase_holds_the_tmp_dir_stagger():
    p = plotter(tmp_dirs=("/t0",), global_stagger_m=0)
    _, waits = one(fleet(host_state(p, jobs=[job(phase=(0, 0), log_file=None)])), inventory(p))
    assert waits == {"p1": "no tmp dir ready: /t0 in 0:0 < 2:1"}


def test_jobs_reported_with_expanded_home_and_trailing_slash_match_their_dirs():
    p = plotter(tmp_dirs=("~/t0",), dst_dirs=("~/d0",), global_stagger_m=0)
    st = host_state(p, jobs=[job(tmp="/home/u/t0/", dst="/home/u/d0/", phase=(1, 1))])
    _, waits = one(fleet(st), inventory(p))
    assert waits == {"p1": "no tmp dir ready: ~/t0 in 1:1 < 2:1"}


def test_tmp_dir_full_counts_space_running_jobs_still_need():
    p = plotter(k=32, tmp_dirs=("/t0",), global_stagger_m=0, tmpdir_max_jobs=5)
    need = expected_tmp_bytes(32)
    st = host_state(p, free={"/t0": need + GiB})
    assert len(schedule(fleet(st), inventory(p), NOW).starts) == 1
    # a job in phase 3 on the same dir will still grow by most of its temp size
    st = host_state(p, jobs=[job(phase=(3, 1), tmp_bytes=need // 2)], free={"/t0": need + GiB})
    _, waits = one(fleet(st), inventory(p))
    assert waits["p1"].startswith("tmp dir full: /t0 ") and "free for new jobs" in waits["p1"]


def test_dst_with_most_room_after_jobs_heading_there_wins_and_full_dst_waits():
    p = plotter(dst_dirs=("/d0", "/d1"), global_stagger_m=0, tmpdir_max_jobs=5)
    plot = expected_plot_bytes(32)
    js = jobs_in((3, 1), (3, 2), dst="/d1")
    st = host_state(p, jobs=js, free={"/d0": 2 * plot, "/d1": 3 * plot})
    d, _ = one(fleet(st), inventory(p))
    assert d.starts[0].dst_dir == "/d0"          # /d1 has room for only 1 after its 2 jobs
    st = host_state(p, jobs=js, free={"/d0": plot - 1, "/d1": 2 * plot})
    _, waits = one(fleet(st), inventory(p))
    assert waits["p1"].startswith("dst full: /d0 ") and "/d1 " in waits["p1"]
    assert "2 jobs heading there" in waits["p1"] and "a k32 plot needs" in waits["p1"]


def test_dst_ties_go_to_the_dir_fewest_jobs_head_to():
    p = plotter(dst_dirs=("/d0", "/d1"), global_stagger_m=0, tmpdir_max_jobs=5)
    plot = expected_plot_bytes(32)
    st = host_state(p, jobs=jobs_in((3, 1), dst="/d0"), free={"/d0": 5 * plot, "/d1": 4 * plot})
    d, _ = one(fleet(st), inventory(p))
    assert d.starts[0].dst_dir == "/d1"


def test_unreachable_plotter_waits_and_others_go_on():
    a, b = plotter("a"), plotter("b")
    d, waits = one(fleet(down(a, "ssh: timed out"), host_state(b)), inventory(a, b))
    assert [s.host for s in d.starts] == ["b"] and waits == {"a": "unreachable: ssh: timed out"}


def test_max_new_caps_starts_in_inventory_order():
    hs = [plotter(f"p{i}") for i in range(4)]
    d, waits = one(fleet(*[host_state(h) for h in reversed(hs)]), inventory(*hs), max_new=2)
    assert [s.host for s in d.starts] == ["p0", "p1"]
    assert waits == {"p2": "plot limit reached: 2 new jobs allowed",
                     "p3": "plot limit reached: 2 new jobs allowed"}


def test_farm_backpressure_counts_waiting_moving_and_plotting():
    k = 25
    size = expected_plot_bytes(k)
    h = harvester(farm_dirs=("/f0", "/f1", "/f2"), farm_reserve_bytes=MiB)
    a = plotter("a", k=k, global_stagger_m=0, tmpdir_max_jobs=9)
    b = plotter("b", k=k, global_stagger_m=0, tmpdir_max_jobs=9)
    waiting = plot_file(k=k)
    moving = plot_file(k=k, n=1)
    # /f0 and /f1 are one disk: counted once
    farm = host_state(h, free={"/f0": 3 * size + MiB, "/f1": 3 * size + MiB, "/f2": MiB + size // 2},
                      devices={"/f1": "h1:/f0"})
    plotting = jobs_in((3, 1), k=k)
    states = [host_state(a, jobs=plotting, plots=[waiting, moving],
                         transfers=[transfer(moving, done=size // 2)]), host_state(b), farm]
    # farm: 3.5 plots free after reserves; headed: 1 plot + 1/2 plot + 1 job = 2.5 plots
    d, waits = one(fleet(*states), inventory(a, b, h))
    assert [s.host for s in d.starts] == ["a"] and waits == {"b": "farm full"}
    assert d.backpressure.startswith("farm full: ")
    assert "free on 2 drives, 4 plots (" in d.backpressure and "already headed there" in d.backpressure
    # one more plot waiting: nobody starts
    states[1] = host_state(b, plots=[plot_file(k=k, n=2)])
    d, waits = one(fleet(*states), inventory(a, b, h))
    assert d.starts == () and waits == {"a": "farm full", "b": "farm full"}


def test_no_harvesters_no_backpressure():
    p = plotter(global_stagger_m=0)
    st = host_state(p, plots=[plot_file(n=i) for i in range(50)], jobs=jobs_in((3, 1)))
    d, _ = one(fleet(st), inventory(p))
    assert d.backpressure is None and len(d.starts) == 1


def test_unreachable_harvester_drives_do_not_count():
    p = plotter(global_stagger_m=0)
    h1, h2 = harvester("h1"), harvester("h2")
    d, waits = one(fleet(host_state(p), down(h1), host_state(h2, default_free=GiB)),
                   inventory(p, h1, h2))
    assert d.starts == () and waits == {"p1": "farm full"}
    assert d.backpressure.startswith("farm full: 1.0 GiB free on 1 drive, 0 plots")


def test_broken_plotter_dirs_are_named():
    p = plotter(tmp_dirs=("/t0",), dst_dirs=("/d0",))
    _, waits = one(fleet(host_state(p, errors={"/t0": "missing"})), inventory(p))
    assert waits == {"p1": "no tmp dir ready: /t0: missing"}
    _, waits = one(fleet(host_state(p, errors={"/d0": "missing"})), inventory(p))
    assert waits["p1"].startswith("dst full: /d0: missing")


def test_harvester_partials_do_not_confuse_the_scheduler():
    # a partial being received is already in the farm's free space figure
    p = plotter(global_stagger_m=0)
    h = harvester()
    pl = plot_file()
    st = [host_state(p), host_state(h, partials=[partial(pl, receiving=True, size=10)])]
    assert len(schedule(fleet(*st), inventory(p, h), NOW).starts) == 1


def test_without_host_time_the_jobs_own_elapsed_time_counts():
    p = plotter(global_stagger_m=10)
    st = host_state(p, jobs=[job(age_s=0, elapsed_s=420.0, started_at=0.0)], host_time=0.0)
    _, waits = one(fleet(st), inventory(p))
    assert waits == {"p1": "stagger 420s/600s"}


def test_start_and_wait_read_as_one_line_each():
    p = plotter(tmp_dirs=("/t0",), dst_dirs=("/d0",), global_stagger_m=0)
    d, _ = one(fleet(host_state(p, jobs=jobs_in((3, 1)), free={"/d0": 2 * TiB})), inventory(p))
    assert d.starts[0].describe() == "chia k32 tmp /t0 -> dst /d0 (tmp /t0 jobs in 3:1, dst /d0 1.9 TiB free)"
    d, _ = one(fleet(down(p)), inventory(p))
    assert d.waits[0].describe() == "p1: plotter: waiting: unreachable: ssh: connection refused"


def test_harvesters_left_out_of_the_run_mean_no_backpressure_but_down_ones_are_named():
    p, h = plotter(global_stagger_m=0), harvester()
    d, _ = one(fleet(host_state(p)), inventory(p, h))          # e.g. --limit p1
    assert d.backpressure is None and len(d.starts) == 1
    d, waits = one(fleet(host_state(p), down(h, "ssh: no route")), inventory(p, h))
    assert waits == {"p1": "farm full"}
    assert d.backpressure == ("farm full: 0 B free on 0 drives, 0 plots (0 B) already headed "
                              "there (1 harvester(s) unreachable: h1: ssh: no route)")


def test_a_job_that_already_finished_still_staggers_the_next_start():
    # a k=18 job lasts a second: spacing comes from the last start, not live jobs only
    p = plotter(global_stagger_m=1.0)
    now = 10_000.0
    hs = host_state(p)
    hs = type(hs)(**{**hs.__dict__, "host_time": now, "last_start": now - 20})
    d = schedule(fleet(hs, now=now), inventory(p), now)
    assert d.starts == () and d.waits[0].reason == "stagger 20s/60s"
    hs = type(hs)(**{**hs.__dict__, "last_start": now - 61})
    assert len(schedule(fleet(hs, now=now), inventory(p), now).starts) == 1


def test_farm_room_is_sized_by_the_plotters_compression():
    """A farm with room for one bladebit C7 k32 (Chia's table: 83.1 GB) but not
    for an uncompressed one (108.8 GB) takes the C7 plotter's job only; the
    C7 job then counts as a C7 plot headed there, not as an uncompressed one."""
    from orchestrator.core import plotsize
    c7 = plotsize.Compression(plotsize.BLADEBIT, 7)
    small, full = expected_plot_bytes(32, c7), expected_plot_bytes(32)
    assert small < full - 20 * 10 ** 9
    bb = plotter("bb", plotter="bladebit", compress=7, global_stagger_m=0, tmpdir_max_jobs=9,
                 farmer_key="8f" * 48, pool_contract="xch1" + "q" * 58)
    ch = plotter("ch", global_stagger_m=0, tmpdir_max_jobs=9)
    h = harvester(farm_dirs=("/f0",))
    farm = host_state(h, free={"/f0": small + small // 2})
    d, waits = one(fleet(host_state(bb), host_state(ch), farm), inventory(bb, ch, h))
    assert [s.host for s in d.starts] == ["bb"] and waits == {"ch": "farm full"}
    # room for 3.5 C7 plots, two C7 jobs running: one more fits (counted as
    # uncompressed plots, the two jobs would leave less than one C7 plot)
    jobs = [j.__class__(**{**j.__dict__, "compress": 7, "compress_format": plotsize.BLADEBIT})
            for j in jobs_in((3, 1), (3, 2), tmp="/t0")]
    farm = host_state(h, free={"/f0": 3 * small + small // 2})
    assert 3 * small + small // 2 - 2 * full < small
    d, waits = one(fleet(host_state(bb, jobs=jobs), farm), inventory(bb, h))
    assert [s.host for s in d.starts] == ["bb"], waits
