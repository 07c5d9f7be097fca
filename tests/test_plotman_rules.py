"""plotman's own rules, as plotman defines them: the cases of plotman 0.5.3's
_tests/manager_test.py (tests/data/plotman/, read from the file itself) replayed
against plotfleet's scheduler and archiver, plus archive.compute_priority."""
import ast
import os
import sys

import psutil

from orchestrator.core.archiver import archive, dst_priority, furthest_phases
from orchestrator.core.scheduler import schedule
from orchestrator.core.state import expected_plot_bytes
from tests.agent_helpers import AgentProc, host_dirs
from tests.factories import NOW, fleet, harvester, host_state, inventory, job, plot_file, plotter

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "plotman")
SOURCE = ast.parse(open(os.path.join(DATA, "manager_test.py")).read())


def _fixture_kwargs(name):
    """The keyword arguments of the configuration object a fixture returns."""
    fn = next(n for n in SOURCE.body if isinstance(n, ast.FunctionDef) and n.name == name)
    call = next(n for n in ast.walk(fn) if isinstance(n, ast.Return)).value
    out = {}
    for kw in call.keywords:
        if isinstance(kw.value, ast.Dict):      # tmp_overrides: {dir: TmpOverrides(...)}
            out[kw.arg] = {ast.literal_eval(k): {x.arg: ast.literal_eval(x.value)
                                                 for x in v.keywords}
                           for k, v in zip(kw.value.keys, kw.value.values)}
        else:
            out[kw.arg] = ast.literal_eval(kw.value)
    return out


def _permit_cases():
    """(test name, phases, tmp dir, permitted) for each phases_permit_new_job assert."""
    cases = []
    for fn in SOURCE.body:
        if not (isinstance(fn, ast.FunctionDef) and fn.name.startswith("test_permit_new_job")):
            continue
        phases = None
        for st in fn.body:
            if isinstance(st, ast.Assign):      # phases = job.Phase.list_from_tuples([...])
                phases = ast.literal_eval(st.value.args[0])
            elif isinstance(st, ast.Assert):
                test, want = st.test, True
                if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
                    test, want = test.operand, False
                assert test.func.attr == "phases_permit_new_job"
                cases.append((fn.name, phases, ast.literal_eval(test.args[1]), want))
    return cases


SCHED = _fixture_kwargs("sched_cfg")
CASES = _permit_cases()


def _plotman_host(tmp_dir):
    o = SCHED.get("tmp_overrides", {})
    return plotter(tmp_dirs=(tmp_dir,), dst_dirs=("/mnt/dst/00",),
                   # phases_permit_new_job is the per-tmp-dir rule alone: the global
                   # keys of the fixture (1 job, 2 min stagger) are not part of it
                   global_max_jobs=0, global_stagger_m=0,
                   tmpdir_stagger_phase_major=SCHED["tmpdir_stagger_phase_major"],
                   tmpdir_stagger_phase_minor=SCHED["tmpdir_stagger_phase_minor"],
                   tmpdir_max_jobs=SCHED["tmpdir_max_jobs"],
                   tmp_overrides={d: v for d, v in o.items() if d == tmp_dir})


def test_manager_test_py_holds_the_cases_we_replay():
    # the cases are read from plotman's file: make sure they were all found
    assert len(CASES) == 7 and SCHED["tmpdir_stagger_phase_major"] == 3
    assert {w for *_, w in CASES} == {True, False}
    assert any(None in [p[0] for p in phases] for _, phases, _, _ in CASES)


def test_permit_new_job_cases_of_plotmans_manager_test():
    for name, phases, tmp_dir, permitted in CASES:
        p = _plotman_host(tmp_dir)
        js = [job(tmp=tmp_dir, dst="/mnt/dst/00", pid=100 + i,
                  phase=None if ph == (None, None) else ph) for i, ph in enumerate(phases)]
        d = schedule(fleet(host_state(p, jobs=js)), inventory(p), NOW)
        started = [s.tmp_dir for s in d.starts]
        assert started == ([tmp_dir] if permitted else []), (name, phases, d.waits)


def test_unknown_phase_job_counts_for_global_max_jobs_and_the_stagger():
    p = plotter(tmp_dirs=("/t0",), global_max_jobs=1, global_stagger_m=0)
    _, = [w.reason for w in schedule(fleet(host_state(p, jobs=[job(phase=None)])),
                                     inventory(p), NOW).waits]
    assert _ == "max jobs 1/1"
    p = plotter(tmp_dirs=("/t0",), global_stagger_m=30)
    d = schedule(fleet(host_state(p, jobs=[job(phase=None, age_s=60)])), inventory(p), NOW)
    assert [w.reason for w in d.waits] == ["stagger 60s/1800s"]


def _dst_cases(name):
    fn = next(n for n in SOURCE.body if isinstance(n, ast.FunctionDef) and n.name == name)
    jobs, expect = [], None
    for node in ast.walk(fn):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "job_w_dstdir_phase":
            ph = node.args[1]
            jobs.append((ast.literal_eval(node.args[0]),
                         tuple(ast.literal_eval(a) for a in ph.args)))
        if isinstance(node, ast.Dict):
            expect = {ast.literal_eval(k): tuple(ast.literal_eval(a) for a in v.args)
                      for k, v in zip(node.keys, node.values)}
    return jobs, expect


def test_dstdirs_to_furthest_phase_case_of_plotmans_manager_test():
    jobs, expect = _dst_cases("test_dstdirs_to_furthest_phase")
    p = plotter(dst_dirs=tuple(sorted({d for d, _ in jobs})))
    js = [job(dst=d, phase=ph, pid=10 + i) for i, (d, ph) in enumerate(jobs)]
    assert furthest_phases(p, host_state(p, jobs=js)) == expect
    # an unknown phase is the furthest, as plotman's Phase orders it
    js.append(job(dst="/plots3", phase=None, pid=99))
    assert furthest_phases(p, host_state(p, jobs=js))["/plots3"] is None


def test_compute_priority_as_plotman():
    GB = 10 ** 9
    # archive_test.py: a drive about to receive a plot ranks below one that is not
    assert dst_priority((3, 1), 1000 * GB, 10) > dst_priority((3, 6), 1000 * GB, 10)
    assert [dst_priority(ph, 2000 * GB, 0) for ph in ((3, 3), (3, 4), (3, 5), (3, 6), (4, 0))] \
        == [50, 46, 42, 34, 18]
    assert dst_priority(None, 2000 * GB, 3) == 53           # unknown: not held back
    assert dst_priority((0, 0), 950 * GB, 0) == 51          # under 1 TB free
    assert dst_priority((0, 0), 250 * GB, 0) == 50 + 8 + 3  # under 500 GB: more


def test_nearly_full_dst_dir_is_emptied_before_one_with_more_plots():
    k = 25
    p = plotter(k=k, dst_dirs=("/d0", "/d1"))
    h = harvester()
    plots = [plot_file("/d0", k=k, n=1, mtime=30), plot_file("/d1", k=k, n=2, mtime=10),
             plot_file("/d1", k=k, n=3, mtime=20)]
    free = {"/d0": 900 * 10 ** 9, "/d1": 50 * 10 ** 12}     # 50+1+1 vs 50+2 plots
    st = fleet(host_state(p, plots=plots, free=free), host_state(h))
    assert [t.plot[-9:-5] for t in archive(st, inventory(p, h)).transfers] == ["0001"]
    # with room to spare on both, the dir with more plots goes first, oldest first
    st = fleet(host_state(p, plots=plots), host_state(h))
    assert [t.plot[-9:-5] for t in archive(st, inventory(p, h)).transfers] == ["0002"]


def test_jobs_run_at_nice_15_by_default_as_plotman_renices_them(tmp_path):
    d, config = host_dirs(tmp_path)
    agent = AgentProc()
    try:
        r = agent.ok("start_job", config=config, argv=[sys.executable, "-c",
                                                        "import time; time.sleep(30)"],
                     plotter="chia", k=32, tmp_dir=d["tmp"], dst_dir=d["dst"],
                     nice=plotter().nice)
        proc = psutil.Process(r["pid"])
        assert proc.nice() == 15
        proc.kill()
        bad = agent.raw("start_job", config=config, argv=["true"], tmp_dir=d["tmp"],
                        dst_dir=d["dst"], nice="low")
        assert not bad["ok"] and "nice must be int" in bad["error"]
    finally:
        agent.close()


def test_without_dst_dirs_plots_go_to_tmp2_else_to_each_jobs_tmp_dir(tmp_path):
    from orchestrator.config.inventory import load_inventory
    inv = tmp_path / "inventory.yaml"
    inv.write_text("plotters:\n  hosts:\n"
                   "    a: {tmp_dirs: [/t0, /t1], log_dir: /log, global_stagger_m: 0}\n"
                   "    b: {tmp_dirs: [/t0], tmp2_dir: /t2, log_dir: /log}\n")
    hosts = {h.name: h for h in load_inventory(str(inv)).plotters}
    assert hosts["a"].dst_dirs == ("/t0", "/t1") and hosts["b"].dst_dirs == ("/t2",)
    a = hosts["a"]
    st = host_state(a, jobs=[job(tmp="/t0", dst="/t0", phase=(1, 2))])
    (s,) = schedule(fleet(st), {"a": a}, NOW).starts
    assert (s.tmp_dir, s.dst_dir) == ("/t1", "/t1")         # its own tmp dir, as plotman
    (s,) = schedule(fleet(host_state(hosts["b"])), {"b": hosts["b"]}, NOW).starts
    assert (s.tmp_dir, s.dst_dir) == ("/t0", "/t2")
