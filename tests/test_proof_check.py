"""The proof check of a plot, and what the controller decides from it.

The check runs on real chiapos k18 plots (a good one, one with a third of
its middle overwritten) and on real check tools (small scripts standing in
for `bladebit_cuda check`, printing bladebit's own summary line); the
decisions are the pure core's, on built FleetStates.
"""
import os
import shutil
import stat
import sys

import pytest

from agent.launch import check as launcher
from orchestrator.core.archiver import archive
from orchestrator.core.checker import Quarantine, StartCheck, checks
from orchestrator.core.decisions import Wait
from orchestrator.core.state import Check
from tests.factories import (fleet, harvester, host_state, inventory, plot_file, plotter,
                             replace)
from tests.test_proof_check_e2e import corrupt_middle, in_provers_words


@pytest.fixture
def good(k18_plots, tmp_path):
    [p] = k18_plots.copy_to(tmp_path / "good", 1)
    return str(p)


@pytest.fixture
def bad(k18_plots, tmp_path):
    [p] = k18_plots.copy_to(tmp_path / "bad", 1)
    corrupt_middle(p)
    return str(p)


def impostor(tmp_path, good):
    """A plot in a format chiapos cannot read, named as Gigahorse names its
    compressed plots (level 15) and with a header that is not chiapos' nor
    bladebit's, as Gigahorse's is not."""
    p = tmp_path / "other" / os.path.basename(good).replace("plot-k18-", "plot-k18-c15-")
    p.parent.mkdir()
    shutil.copyfile(good, p)
    with open(p, "r+b") as f:
        f.write(b"GH-compressed-plot!")
    return str(p)


def tool(tmp_path, body, name="checker"):
    """A check tool the farmer names in check_command: a real executable."""
    p = tmp_path / name
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(p.stat().st_mode | stat.S_IEXEC)
    return str(p)


# --- the check itself --------------------------------------------------------------

def test_a_good_plot_passes_with_its_ratio_and_a_corrupt_one_fails_in_the_provers_words(
        good, bad):
    ok = launcher.check({}, good)
    assert ok["status"] == "passed" and ok["method"] == "chiapos"
    assert ok["ratio"] >= 0.3 and ok["challenges"] == 30 and ok["error"] is None
    assert ok["proofs"] == round(ok["ratio"] * 30)
    broken = launcher.check({}, bad)
    assert broken["status"] == "failed"
    assert in_provers_words(broken["error"]), broken


def test_a_pos2_plot_is_checked_by_chia_rs_with_full_proofs_of_a_sample(v2_plots, tmp_path):
    [made] = v2_plots.get(1)
    plot = shutil.copy(made, tmp_path)
    ok = launcher.check({"challenges_v2": 2}, plot)
    assert ok["status"] == "passed" and ok["method"] == "chia_rs" and ok["ratio"] >= 0.3, ok
    corrupt_middle(plot)
    broken = launcher.check({}, plot)
    assert broken == {"status": "failed", "method": "chia_rs", "rounds": [],
                      "error": "qualities_for_challenge() failed"}


def test_the_same_plot_gets_the_same_challenges_and_a_recheck_fresh_ones():
    pid = bytes(range(32))
    assert launcher.challenges(pid, 0, 30) == launcher.challenges(pid, 0, 30)
    assert not set(launcher.challenges(pid, 0, 30)) & set(launcher.challenges(pid, 1, 30))
    assert launcher.challenges(pid, 0, 3) != launcher.challenges(bytes(32), 0, 3)


def test_a_plot_chiapos_cannot_read_is_not_checked_without_a_command(tmp_path, good):
    other = impostor(tmp_path, good)
    res = launcher.check({}, other)
    assert res == {"status": "not_checked", "method": None,
                   "error": "chiapos cannot read this plot's format"}
    # the same bytes under a plain v1 name: a torn header, which chiapos judges
    torn = shutil.copy(other, tmp_path / os.path.basename(good))
    assert launcher.check({}, torn) == {
        "status": "failed", "method": "chiapos", "rounds": [],
        "error": "Invalid plot header magic: " + b"GH-compressed-plot!".hex()}


@pytest.mark.parametrize("command, why", [
    ("no-such-checker check -n {n} {path}", "check_command: no-such-checker: not found"),
    ("{tool} check -n {n} {path}", "check_command: {tool} exited 3: Error: plot not found"),
    ("{quiet} check -n {n} {path}", "check_command: no summary in {quiet}'s output"),
    ("check 'unclosed", "check_command \"check 'unclosed\": No closing quotation"),
])
def test_a_failing_check_command_says_why_the_plot_is_not_checked(tmp_path, good, command,
                                                                  why):
    failing = tool(tmp_path, 'echo "Error: plot not found" >&2; exit 3')
    quiet = tool(tmp_path, 'echo "Checking 30 random proofs..."', "quiet")
    command = command.format(tool=failing, quiet=quiet, n="{n}", path="{path}")
    res = launcher.check({"command": command}, impostor(tmp_path, good))
    assert res["status"] == "not_checked"
    assert res["error"].startswith(why.format(tool=failing, quiet=quiet)), res


def test_a_check_command_gets_the_path_as_one_word_and_its_summary_decides(tmp_path, good):
    spaced = tmp_path / "a dir with spaces"
    spaced.mkdir()
    plot = shutil.copy(impostor(tmp_path, good), spaced)
    # bladebit's summary (src/commands/CmdPlotCheck.cpp); the tool must see one path
    t = tool(tmp_path, '[ -f "$4" ] || exit 9; echo "Checking $3 random proofs with seed 0x00"; '
                       'echo "27 / $3 (90.00%) valid proofs found."')
    res = launcher.check({"command": t + " check -n {n} {path}", "challenges": 30}, plot)
    assert res["status"] == "passed" and res["ratio"] == 0.9 and res["method"] == "command"


def test_a_poor_ratio_is_checked_again_with_fresh_challenges_before_deciding(tmp_path, good):
    plot = impostor(tmp_path, good)
    counter = tmp_path / "calls"
    # poor at first, fine the second time: passed (good plots vary)
    t = tool(tmp_path, f'echo x >> {counter}; n=$(wc -l < {counter}); '
                       f'if [ "$n" = 1 ]; then echo "Proofs 2 / 30, 0.0667"; '
                       f'else echo "Proofs 24 / 30, 0.8"; fi')
    res = launcher.check({"command": t}, plot)
    assert res["status"] == "passed" and res["rounds"] == [(2, 30), (24, 30)]
    # poor twice: failed, with the ratio found
    t = tool(tmp_path, 'echo "Proofs 3 / 30, 0.1"', "poor")
    res = launcher.check({"command": t}, plot)
    assert res["status"] == "failed" and res["rounds"] == [(3, 30), (3, 30)]
    assert res["error"] == "3 valid proofs in 30 challenges (ratio 0.10, min 0.30), twice"


def test_the_summary_parser_reads_bladebit_and_chia_and_nothing_else():
    assert launcher.parse_summary("x\n93 / 100 (93.00%) valid proofs found.\n") == (93, 100)
    assert launcher.parse_summary("2024 INFO \tProofs 27 / 30, 0.9") == (27, 30)
    assert launcher.parse_summary("Checking 100 random proofs with seed 0x1") is None


def test_the_runner_records_the_result_and_what_it_cost(tmp_path, good, bad, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    from agent.facts import checks as facts
    os.makedirs(facts.checks_dir())
    import json
    assert launcher.run(json.dumps({"plots": [good, bad]})) == 0
    ok, broken = facts.read(good), facts.read(bad)
    assert ok["status"] == "passed" and ok["bytes_read"] > 0 and ok["seconds"] > 0
    assert broken["status"] == "failed" and in_provers_words(broken["error"]), broken
    # the record belongs to that file: a plot made again under its name is new
    os.utime(good, (1, 1))
    st = os.stat(good)
    assert facts.read(good, st.st_size, st.st_mtime) is None


# --- what the controller decides --------------------------------------------------------

P = plotter(check_parallel=1, farm_dirs=())
H = harvester()
HOSTS = inventory(P, H)
RUNNING = Check("running", "chiapos", started_at=1.0, pid=77, plot="/d0/x.plot")


def test_new_plots_are_checked_one_at_a_time_and_not_archived_before():
    a, b = plot_file(n=1, check=None, mtime=1), plot_file(n=2, check=None, mtime=2)
    st = fleet(host_state(P, plots=(a, b)), host_state(H))
    d = checks(st, HOSTS)
    # both at once, by one runner (check_parallel 1) checking them in turn
    assert d.starts == (StartCheck("p1", a.path, 30, 0.3, 4, "", 1, "new plot", 0),
                        StartCheck("p1", b.path, 30, 0.3, 4, "", 1, "new plot", 0))
    assert d.waits == ()
    assert archive(st, HOSTS).transfers == ()
    # two runners at once when check_parallel says so
    d2 = checks(st, inventory(replace(P, check_parallel=2), H))
    assert [(s.plot, s.runner) for s in d2.starts] == [(a.path, 0), (b.path, 1)]
    # with every runner at work, the new plot waits for the next pass
    busy = replace(host_state(P, plots=(a, plot_file(n=3, check=RUNNING))), checks=(RUNNING,))
    d3 = checks(fleet(busy, host_state(H)), HOSTS)
    assert d3.starts == () and "proof check waits: 1/1 checks running" in [
        w.reason for w in d3.waits]


def test_a_running_check_holds_its_plot_and_a_failed_one_quarantines_it():
    running = plot_file(n=1, check=RUNNING)
    failed = plot_file(n=2, check=Check("failed", "chiapos", error="Invalid size for deltas: 9"))
    hs = replace(host_state(P, plots=(running, failed)), checks=(RUNNING,))
    st = fleet(hs, host_state(H))
    d = checks(st, HOSTS)
    assert d.starts == ()
    assert d.quarantines == (Quarantine("p1", failed.path, "Invalid size for deltas: 9"),)
    assert Wait("p1", os.path.basename(running.path), "proof check running") in d.waits
    assert archive(st, HOSTS).transfers == ()     # neither leaves the plotter


def test_passed_not_checked_and_released_plots_are_archived_and_interrupted_checks_rerun():
    plots = (plot_file(n=1), plot_file(n=2, check=Check("not_checked", error="no chiapos")),
             plot_file(n=3, check=Check("released", error="ratio 0.1")),
             plot_file(n=4, check=Check("interrupted")))
    h = replace(H, farm_dirs=("/f0", "/f1", "/f2", "/f3"))     # a drive each
    st = fleet(host_state(P, plots=plots), host_state(h))
    moved = {t.plot for t in archive(st, inventory(replace(P, max_transfers_per_plotter=9), h))
             .transfers}
    assert moved == {p.path for p in plots[:3]}
    [again] = checks(st, HOSTS).starts
    assert again.plot == plots[3].path and again.reason == "its last check was interrupted"


def test_status_metrics_and_the_web_page_say_why_a_plot_is_in_quarantine():
    from prometheus_client.parser import text_string_to_metric_families
    from rich.console import Console
    from orchestrator.core.state import Quarantined
    from orchestrator.serve.page import render
    from orchestrator.ui.views import status_view
    from tests.serve_helpers import get
    from tests.test_serve import serving
    why = "Invalid size for deltas: 47187"
    q = Quarantined("/d0/quarantine/plot-k32-2024-01-01-00-00-" + "cd" * 32 + ".plot",
                    108_000_000_000, "/d0", why, k=32, plot_id="cd" * 32)
    waiting = plot_file(n=3, check=Check("passed", "chiapos", 0.8, 24, 30))
    hs = replace(host_state(P, plots=(waiting,)), quarantine=(q,), checks=(RUNNING,))
    st = fleet(hs, host_state(H))
    con = Console(width=220, record=True)
    con.print(status_view(st, HOSTS))
    text = con.export_text()
    [row] = [line for line in text.splitlines() if why in line]
    assert "quarantine" in row and "checking" in text and "plotfleet release" in text
    s = serving(HOSTS)
    with s as latest:
        pic = latest.update(st, seconds=0.1)
        _, body, _ = get(s.url + "metrics")
    fams = {fam.name: fam for fam in text_string_to_metric_families(body.decode())}
    [sample] = fams["plotfleet_plots_quarantined"].samples
    assert sample.labels["reason"] == why and sample.value == 1.0
    [ratio] = fams["plotfleet_plot_check_ratio"].samples
    assert ratio.value == 0.8 and ratio.labels["status"] == "passed"
    html = render(pic, 10, "plot-all")
    assert f'data-quarantined="{q.path.rsplit("/", 1)[-1]}"' in html and why in html
    assert 'data-checking="x.plot"' in html
    # status --json carries the check of each waiting plot, for whoever decides on it
    doc = st.to_json()
    assert doc["hosts"][0]["plots"][0]["check"]["status"] == "passed"
    assert doc["hosts"][0]["quarantine"][0]["reason"] == why


def test_a_plot_whose_check_keeps_dying_fails_instead_of_being_checked_for_ever(
        tmp_path, good, monkeypatch):
    """A runner killed mid-check (the prover crashed on the plot, or the host
    rebooted) leaves "running" behind: read as interrupted and tried again,
    and after GIVE_UP such tries the plot fails, to be quarantined."""
    import subprocess
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    from agent.facts import checks as facts
    os.makedirs(facts.checks_dir())
    dead = subprocess.Popen(["true"])
    dead.wait()
    for attempt in range(1, facts.GIVE_UP + 1):
        launcher.write_record(good, status="running", pid=dead.pid, started_at=1.0,
                              attempts=attempt)
        rec = facts.read(good)
        if attempt < facts.GIVE_UP:
            assert rec["status"] == "interrupted"
        else:
            assert rec["status"] == "failed" and "ended without a result 3 times" in rec["error"]


def test_only_an_endless_job_whose_plots_keep_failing_is_held_and_the_plan_says_so():
    from orchestrator.core.failures import HoldJob
    from orchestrator.core.plan import plan
    from orchestrator.core.state import Failures
    from tests.factories import NOW, job
    endless = job(pid=41, count=0, plot_id="ef" * 32)
    one = job(pid=42, count=1)
    bad = Failures(count=2, last_error="plot quarantined: Invalid size for deltas: 9",
                   last_at=NOW - 60, quarantined=2)
    hs = replace(host_state(P, jobs=(endless, one)), failures=bad)
    p = plan(fleet(hs, host_state(H)), HOSTS, NOW)
    assert p.holds == (HoldJob("p1", 41, endless.started_at, "ef" * 32,
                               "making bad plots: 2 in a row failed their proof check "
                               "(max_failures 2), last: plot quarantined: Invalid size for "
                               "deltas: 9; `plotfleet reset p1`, then `plotfleet resume`"),)
    assert p.to_json()["holds"][0]["pid"] == 41
    # failed jobs that are not bad plots, or one bad plot, hold nothing
    for f in (replace(bad, quarantined=0), replace(bad, count=1, quarantined=1)):
        assert plan(fleet(replace(hs, failures=f), host_state(H)), HOSTS, NOW).holds == ()
    # the back-off is over: nothing either (the job suspended before stays so)
    late = replace(bad, last_at=NOW - P.failure_backoff_m * 60 - 1)
    assert plan(fleet(replace(hs, failures=late), host_state(H)), HOSTS, NOW).holds == ()


def test_a_plots_run_whose_plot_was_quarantined_ends_failed_naming_why():
    """plot-all --plots 1: the job finished, its plot failed its check: the
    run is over (nothing more will come) and says so, exit 1."""
    from orchestrator.core.run import RunTracker
    from orchestrator.core.state import Quarantined
    pid = "ab" * 32
    q = Quarantined(f"/d0/quarantine/plot-k32-2024-01-01-00-00-{pid}.plot", 1, "/d0",
                    "Invalid size for deltas: 9", plot_id=pid)
    st = fleet(replace(host_state(P), quarantine=(q,)), host_state(H))
    t = RunTracker(limit=1)
    t.started.add(("p1", "/log/a.log"))
    t.plot_ids[("p1", "/log/a.log")] = pid
    end = t.verdict(st, (), [P, H], True)
    assert end is not None and end.code == 1
    assert end.lines == ("p1: plot abababab failed its proof check and waits in quarantine: "
                         "Invalid size for deltas: 9",)


def test_a_drive_check_at_work_is_in_the_snapshot_and_gone_when_it_ends(tmp_path, k18_plots):
    """The snapshot lists the checks at work (from the runners' own index,
    not by reading every record ever written: a checked farm leaves one per
    plot), queued ones too, and none once the runner is done."""
    from tests.agent_helpers import AgentProc, host_dirs, wait_for
    d, config = host_dirs(tmp_path)
    paths = sorted(str(p) for p in k18_plots.copy_to(d["farm"], 3))
    a = AgentProc()
    try:
        # many challenges: the runner is still at work when the snapshot comes
        started = a.ok("start_drive_check", config=config, farm_dir=d["farm"],
                       settings={"challenges": 400})
        snap = a.ok("snapshot", config=config)
        at_work = sorted(c["plot"] for c in snap["checks"])
        assert at_work and set(at_work) <= set(paths), snap["checks"]
        assert all(c["pid"] == started["pid"] for c in snap["checks"])
        wait_for(lambda: not a.ok("snapshot", config=config)["checks"], timeout=120)
        done = a.ok("read_checks", config=config, plots=paths)["checks"]
        assert {c["status"] for c in done.values()} == {"passed"}, done
    finally:
        a.close()


def test_a_file_put_under_a_checked_plots_name_has_no_check(tmp_path, k18_plots):
    """What passed was that file: another one under its name (an impostor, a
    plot made again) reads as never checked, so nothing is deleted for it."""
    from tests.agent_helpers import AgentProc, host_dirs, wait_for
    d, config = host_dirs(tmp_path)
    [path] = [str(p) for p in k18_plots.copy_to(d["farm"], 1)]
    a = AgentProc()
    try:
        a.ok("start_drive_check", config=config, farm_dir=d["farm"])
        wait_for(lambda: not a.ok("snapshot", config=config)["checks"], timeout=120)
        assert a.ok("read_checks", config=config, plots=[path])["checks"][path]["status"] \
            == "passed"
        other = str(k18_plots.get(2)[1])
        shutil.copyfile(other, path + ".new")
        os.replace(path + ".new", path)
        assert a.ok("read_checks", config=config, plots=[path])["checks"][path] is None
        os.remove(path)
        assert a.ok("read_checks", config=config, plots=[path])["checks"][path] is None
    finally:
        a.close()
