"""Replotting's plan (pure): which old plots give way to a new one, and when
nothing is deleted.  Rules and their refusal at load: tests/test_replot_rules.py."""
from dataclasses import replace

from orchestrator.core.archiver import archive
from orchestrator.core.scheduler import FarmBudget
from orchestrator.core.state import Check, Deleted, Dir, OldPlot, Partial, Replot, ReplotSet
from tests.factories import (GiB, NOW, fleet, harvester, host_state, inventory, plot_file,
                             plotter, transfer)

RULES = ({"made_before": "2024-01-01"},)
PLOT = 100 * GiB


def old(path, size=PLOT, date="2022-05-01", k=32, level=0):
    return OldPlot(path=path, size_bytes=size, k=k, level=level, date=date,
                   rule="rule 1 (made_before: 2024-01-01)")


def farm_dir(path, free, olds=(), device=None):
    return Dir(path=path, kind="farm", total_bytes=10 * PLOT, free_bytes=free,
               device=device or path, plot_count=len(olds),
               replaceable_count=len(olds), replaceable_bytes=sum(p.size_bytes for p in olds),
               replaceable=tuple(olds), resolved=path)


def setup(dirs, h_fields=None, sets=(), plots=None, transfers=(), replot_state=None):
    p = plotter("p1")
    h = harvester("h1", farm_dirs=tuple(d.path for d in dirs), replot=RULES,
                  **(h_fields or {}))
    new = plots if plots is not None else (plot_file("/d0", n=1, size=PLOT),)
    hs = replace(host_state(h), dirs=tuple(dirs),
                 replot=replot_state or Replot(sets=tuple(sets)))
    return fleet(host_state(p, plots=new, transfers=transfers), hs), inventory(p, h), new


def test_a_full_farm_replaces_the_fewest_old_plots_on_the_best_drive():
    # /f0 needs two 60 GiB plots; /f1 one 120 GiB plot: fewest deletions wins
    dirs = [farm_dir("/f0", 10 * GiB, [old("/f0/a.plot", 60 * GiB), old("/f0/b.plot", 60 * GiB)]),
            farm_dir("/f1", 10 * GiB, [old("/f1/c.plot", 120 * GiB)])]
    state, hosts, [new] = setup(dirs)
    [t] = archive(state, hosts).transfers
    assert t.to_dir == "/f1" and [d.path for d in t.deletions] == ["/f1/c.plot"]
    assert t.deletions[0].for_plot in new.path and t.plot_id == new.plot_id


def test_nothing_is_deleted_for_a_plot_whose_proof_check_did_not_pass():
    # archived as before (not checked, or released by the farmer), but never
    # at the cost of an old plot: only a plot that passed its check replaces one
    dirs = [farm_dir("/f0", 10 * GiB, [old("/f0/a.plot", 120 * GiB)])]
    for check, words in ((Check("not_checked", error="no prover reads this format"),
                          "not checked: no prover reads this format"),
                         (Check("released", error="Invalid size for deltas: 47187"),
                          "released by the farmer (was: Invalid size for deltas: 47187)")):
        state, hosts, _ = setup(dirs, plots=(plot_file("/d0", n=1, size=PLOT, check=check),))
        d = archive(state, hosts)
        assert d.transfers == () and "proof check did not pass" in d.waits[0].reason \
            and words in d.waits[0].reason, d.waits
    state, hosts, _ = setup(dirs)           # the same plot, its check passed
    [t] = archive(state, hosts).transfers
    assert [x.path for x in t.deletions] == ["/f0/a.plot"]


def test_ties_go_to_the_oldest_plots_then_the_lowest_k():
    dirs = [farm_dir("/f0", 0, [old("/f0/a.plot", date="2023-01-01")]),
            farm_dir("/f1", 0, [old("/f1/b.plot", date="2021-01-01")]),
            farm_dir("/f2", 0, [old("/f2/c.plot", date="2021-01-01", k=30)])]
    state, hosts, _ = setup(dirs)
    [t] = archive(state, hosts).transfers
    assert [d.path for d in t.deletions] == ["/f2/c.plot"]


def test_a_partial_of_the_plot_already_there_counts():
    # 40 GiB of it arrived before its transfer failed: 60 more are needed, one 70 GiB old plot
    new = plot_file("/d0", n=1, size=PLOT)
    dirs = [farm_dir("/f0", 0, [old("/f0/a.plot", 70 * GiB), old("/f0/b.plot", 70 * GiB)])]
    state, hosts, _ = setup(dirs, plots=(new,))
    hs = replace(state.hosts[1], partials=(Partial(f"/f0/{new.path.rsplit('/', 1)[1]}"
                                                   ".plotfleet-tmp",
                                                   new.path.rsplit("/", 1)[1], 40 * GiB, False),))
    state = replace(state, hosts=(state.hosts[0], hs))
    [t] = archive(state, hosts).transfers
    assert len(t.deletions) == 1


def test_no_more_than_the_plot_needs():
    # 30 GiB free: one 100 GiB old plot is enough, a second would be too many
    dirs = [farm_dir("/f0", 30 * GiB, [old("/f0/a.plot"), old("/f0/b.plot")])]
    state, hosts, _ = setup(dirs)
    [t] = archive(state, hosts).transfers
    assert len(t.deletions) == 1


def test_a_drive_with_room_takes_the_plot_without_deleting():
    dirs = [farm_dir("/f0", 2 * PLOT, [old("/f0/a.plot")])]
    state, hosts, _ = setup(dirs)
    [t] = archive(state, hosts).transfers
    assert t.deletions == ()


def test_without_rules_nothing_is_replaceable_as_today():
    dirs = [farm_dir("/f0", 0, [old("/f0/a.plot")])]
    state, hosts, _ = setup(dirs)
    hosts["h1"] = replace(hosts["h1"], replot=())
    d = archive(state, hosts)
    assert d.transfers == () and "no drive with room" in d.waits[0].reason


def test_never_deleted_for_the_reserve():
    dirs = [farm_dir("/f0", 5 * GiB, [old("/f0/a.plot"), old("/f0/b.plot")])]
    state, hosts, _ = setup(dirs, h_fields={"farm_reserve_bytes": 10 * GiB})
    d = archive(state, hosts)
    assert d.transfers == () and "below its farm_reserve_bytes" in d.waits[0].reason


def test_the_hourly_cap_counts_the_harvesters_records():
    dirs = [farm_dir("/f0", 0, [old("/f0/a.plot")])]
    state, hosts, _ = setup(dirs, h_fields={"replot_max_deletes_per_hour": 3},
                            replot_state=Replot(deletes_last_hour=3))
    d = archive(state, hosts)
    assert d.transfers == ()
    assert "replot_max_deletes_per_hour: 3 deleted in the last hour" in d.waits[0].reason


def _set(plot, claimed, d="/f0"):
    return ReplotSet(plot_id=plot.plot_id, plot=plot.path.rsplit("/", 1)[1], dir=d,
                     deletions=(Deleted("x.plot", f"{d}/x.plot", PLOT, "rule 1", NOW),),
                     freed=PLOT, need=PLOT, pending=True, claimed=claimed, from_host="p1")


def test_a_plot_whose_room_was_made_goes_there_and_nothing_more_is_deleted():
    first = plot_file("/d0", n=1, size=PLOT)
    # the controller died after deleting: the room is there, the claim expired
    dirs = [farm_dir("/f0", PLOT + GiB, [old("/f0/a.plot")]),
            farm_dir("/f1", 0, [old("/f1/b.plot")])]
    state, hosts, _ = setup(dirs, sets=[_set(first, claimed=False)], plots=(first,))
    [t] = archive(state, hosts).transfers
    assert t.to_dir == "/f0" and t.deletions == () and "room made for it" in t.reason


def test_room_waiting_for_its_plot_stops_every_new_deletion_and_is_not_given_away():
    first = plot_file("/d0", n=1, size=PLOT)
    second = plot_file("/d0", n=2, size=PLOT)
    dirs = [farm_dir("/f0", PLOT + GiB, [old("/f0/a.plot")]),
            farm_dir("/f1", 0, [old("/f1/b.plot")])]
    # the first plot's transfer failed, the plotter now sends the second one first
    # (its room on /f0 is not the second plot's)
    state, hosts, _ = setup(dirs, sets=[_set(first, claimed=False)], plots=(second, first))
    hosts["p1"] = replace(hosts["p1"], max_transfers_per_plotter=2)
    d = archive(state, hosts)
    assert [t.plot for t in d.transfers] == [first.path]
    assert all(t.deletions == () for t in d.transfers)
    [w] = [w for w in d.waits if w.subject in second.path]
    assert "waits for it: no new deletion" in w.reason


def test_a_waiting_set_is_kept_while_its_plotter_is_not_in_the_run():
    # `--limit harvesters`: no plotter answered, so nothing is known to be gone
    gone = plot_file("/d0", n=7, size=PLOT)
    dirs = [farm_dir("/f0", PLOT + GiB, [old("/f0/a.plot")])]
    state, hosts, _ = setup(dirs, sets=[_set(gone, claimed=False)], plots=())
    del hosts["p1"]
    assert archive(state, hosts).gone == ()


def test_a_waiting_set_whose_plot_is_on_no_plotter_is_released():
    gone = plot_file("/d0", n=7, size=PLOT)
    new = plot_file("/d0", n=2, size=PLOT)
    dirs = [farm_dir("/f0", PLOT + GiB, [old("/f0/a.plot")])]
    state, hosts, _ = setup(dirs, sets=[_set(gone, claimed=False)], plots=(new,))
    d = archive(state, hosts)
    [t] = d.transfers
    assert t.deletions == () and t.to_dir == "/f0"
    assert d.gone == (("h1", (gone.plot_id,)),)


def test_a_set_being_used_by_its_transfer_blocks_nothing():
    first = plot_file("/d0", n=1, size=PLOT)
    second = plot_file("/d0", n=2, size=PLOT)
    dirs = [farm_dir("/f0", 0), farm_dir("/f1", 0, [old("/f1/b.plot")])]
    state, hosts, _ = setup(dirs, sets=[_set(first, claimed=True)], plots=(first, second),
                            transfers=(transfer(first, to_dir="/f0", done=PLOT // 2),))
    hosts["p1"] = replace(hosts["p1"], max_transfers_per_plotter=2)
    [t] = archive(state, hosts).transfers
    assert t.plot == second.path and [d.path for d in t.deletions] == ["/f1/b.plot"]


def test_a_rule_matching_the_plot_in_transfer_is_refused():
    dirs = [farm_dir("/f0", 0, [old("/f0/a.plot")])]
    state, hosts, _ = setup(dirs)
    hosts["h1"] = replace(hosts["h1"], replot=({"glob": "/f0/*"},))
    d = archive(state, hosts)
    assert d.transfers == () and "would match rule 1 (glob: /f0/*) itself: refused" in \
        d.waits[0].reason


def test_backpressure_counts_replaceable_space_as_room():
    dirs = [farm_dir("/f0", 0, [old("/f0/a.plot"), old("/f0/b.plot")])]
    state, hosts, _ = setup(dirs, plots=())
    budget = FarmBudget(state, hosts)
    assert budget.blocks(32) is None
    hosts["h1"] = replace(hosts["h1"], replot=())
    assert "farm full" in FarmBudget(state, hosts).blocks(32)


# --- where the wave stands, and its alerts ------------------------------------

def _wave_state(old_left, deletions_at, total=10):
    from orchestrator.core.state import HostState
    p = plotter("p1")
    h = harvester("h1", farm_dirs=("/f0",), replot=RULES)
    d = Dir(path="/f0", kind="farm", total_bytes=1, free_bytes=0, device="/f0",
            plot_count=total, replaceable_count=old_left)
    sets = tuple(ReplotSet(plot_id=f"{i:064x}", plot=f"n{i}.plot", dir="/f0",
                           deletions=(Deleted(f"o{i}.plot", f"/f0/o{i}.plot", PLOT, "rule 1", at),),
                           arrived=True) for i, at in enumerate(deletions_at))
    hs = replace(host_state(h), dirs=(d,), replot=Replot(sets=sets), host_time=NOW)
    return fleet(host_state(p), hs), inventory(p, h)


def test_the_wave_says_old_left_new_rate_and_the_deadline_verdict():
    import datetime
    from orchestrator.core.wave import wave
    today = datetime.date(2026, 1, 1)
    # 6 old left, 3 replaced in the last 24 h (one older does not count)
    state, hosts = _wave_state(6, [NOW - 3600, NOW - 7200, NOW - 80000, NOW - 90000])
    w = wave(state, hosts, "2026-01-11", today=today)
    assert (w.old, w.new, w.replaced_24h, w.days_left) == (6, 4, 3, 2.0)
    assert w.verdict == "on track, 8 days to spare" and not w.behind
    w = wave(state, hosts, "2026-01-02", today=today)
    assert w.behind and w.verdict == "behind: needs 6 plots/day, makes 3"
    assert "6 old plots left, 4 new; 3 replaced in 24 h, last old plot in 2.0 days" in w.line()
    assert not wave(state, {"p1": hosts["p1"], "h1": replace(hosts["h1"], replot=())}).active


def test_alerts_a_drop_the_ledger_does_not_explain_and_a_wave_behind():
    from types import SimpleNamespace
    from orchestrator.core.alerts import conditions
    state, hosts = _wave_state(6, [NOW - 60])

    def result(st):
        return SimpleNamespace(state=st, events=(), waits=())
    _, memory = conditions(result(state), hosts, None, None)
    # one more deletion in the ledger, one plot fewer on the farm: explained
    more, _ = _wave_state(5, [NOW - 60, NOW - 30], total=9)
    alerts, memory = conditions(result(more), hosts, None, memory)
    assert not [a for a in alerts if a.kind == "plots_dropped"]
    # two plots fewer and no deletion: alert
    fewer, _ = _wave_state(5, [NOW - 60, NOW - 30], total=7)
    alerts, memory = conditions(result(fewer), hosts, None, memory)
    [a] = [a for a in alerts if a.kind == "plots_dropped"]
    assert "dropped from 9 to 7" in a.text
    late = SimpleNamespace(replot_deadline="2000-01-01", alert_host_down_m=None,
                           alert_farm_free_plots=None)
    alerts, _ = conditions(result(fewer), hosts, late, memory)
    assert [a.text for a in alerts if a.kind == "replot_behind"] == \
        ["replot wave behind for 2000-01-01: behind: needs 5 plots/day, makes 2"]


def test_a_plot_bound_to_a_drive_gets_no_deletions_elsewhere():
    # deletions were begun for it on h2, which is down now: h1's old plots stay
    new = replace(plot_file("/d0", n=1, size=PLOT), bound_to=("h2", "/g0"))
    dirs = [farm_dir("/f0", 0, [old("/f0/a.plot")])]
    state, hosts, _ = setup(dirs, plots=(new,))
    d = archive(state, hosts)
    assert d.transfers == ()
    assert "bound to h2:/g0, where deletions were begun for it" in d.waits[0].reason
    # bound to this very drive: deletions there are fine
    new = replace(new, bound_to=("h1", "/f0"))
    state, hosts, _ = setup(dirs, plots=(new,))
    [t] = archive(state, hosts).transfers
    assert [x.path for x in t.deletions] == ["/f0/a.plot"]


def test_a_drive_where_replotting_stopped_is_an_alert_saying_why():
    from types import SimpleNamespace
    from orchestrator.core.alerts import conditions
    state, hosts = _wave_state(6, [NOW - 60])
    why = "deleting 1 plot(s) (4194304 bytes on disk) gave back 0 bytes: snapshots, ..."
    hs = replace(state.hosts[1], replot=replace(state.hosts[1].replot, stopped=(("/f0", why),)))
    alerts, _ = conditions(SimpleNamespace(state=replace(state, hosts=(state.hosts[0], hs)),
                                           events=(), waits=()), hosts, None, None)
    assert [a.text for a in alerts if a.kind == "replot_stopped"] == \
        [f"h1: replotting stopped on /f0: {why}"]


def test_a_new_plot_never_lands_where_a_rule_makes_it_replaceable():
    # /f0 has the most room, but a glob rule covers it: the plot goes to /f1,
    # never to where the next plot could replace it
    dirs = [farm_dir("/f0", 5 * PLOT, [old("/f0/a.plot")]), farm_dir("/f1", 2 * PLOT)]
    state, hosts, [new] = setup(dirs)
    hosts["h1"] = replace(hosts["h1"], replot=({"glob": "/f0/*"},))
    [t] = archive(state, hosts).transfers
    assert t.to_dir == "/f1" and t.deletions == ()

    # one drive, two dirs: the plot lands in the dir the rule does not cover
    dirs = [farm_dir("/m/old", 5 * PLOT, [old("/m/old/a.plot")], device="sda"),
            farm_dir("/m/new", 5 * PLOT, device="sda")]
    state, hosts, _ = setup(dirs)
    hosts["h1"] = replace(hosts["h1"], replot=({"glob": "/m/old/*"},))
    [t] = archive(state, hosts).transfers
    assert t.to_dir == "/m/new"

    # room only where it would be replaceable: it waits, and says why
    dirs = [farm_dir("/f0", 5 * PLOT, [old("/f0/a.plot")]), farm_dir("/f1", 0)]
    state, hosts, _ = setup(dirs)
    hosts["h1"] = replace(hosts["h1"], replot=({"glob": "/f0/*"},))
    d = archive(state, hosts)
    assert d.transfers == () and "never goes where a replot rule makes it replaceable" in \
        d.waits[0].reason and "h1:/f0" in d.waits[0].reason, d.waits


def test_a_plot_whose_name_says_an_old_date_is_not_sent_where_that_date_matches():
    # a plotter whose clock is years behind names its plots by that date: on
    # a farm with `made_before`, the next plot would replace it
    dirs = [farm_dir("/f0", 5 * PLOT)]
    skewed = plot_file("/d0", n=1, size=PLOT)
    skewed = replace(skewed, path=skewed.path.replace(skewed.path.split("-", 2)[2][:16],
                                                      "2021-01-02-03-04", 1))
    state, hosts, _ = setup(dirs, plots=(skewed,))
    d = archive(state, hosts)
    assert d.transfers == () and "made_before: 2024-01-01" in d.waits[0].reason, d.waits


def test_one_dir_under_two_names_is_counted_and_offered_once():
    # /f0 and a link to it (/alias) are one dir: its old plot is not two plots
    real = farm_dir("/f0", 10 * GiB, [old("/f0/a.plot")])
    alias = replace(real, path="/alias", replaceable=(old("/alias/a.plot"),))
    state, hosts, _ = setup([real, alias], plots=(plot_file("/d0", n=1, size=150 * GiB),))
    hosts["h1"] = replace(hosts["h1"], farm_dirs=("/f0", "/alias"))
    from orchestrator.core.farm import farm
    [drive] = farm(state, hosts).drives
    assert (drive.plot_count, drive.replaceable_count, len(drive.old)) == (1, 1, 1)
    d = archive(state, hosts)
    assert d.transfers == (), "one 100 GiB plot cannot make room for 150 GiB"


def test_every_face_shows_the_passs_wave_with_its_deadline_verdict():
    """The wave is computed once in the pass, with replot_deadline: plot-all
    --json, the dashboard (a small screen too), the web page and the metrics
    say the same verdict."""
    import io
    from rich.console import Console
    from orchestrator.core.result import PassResult
    from orchestrator.core.wave import wave
    from orchestrator.serve.metrics import families
    from orchestrator.serve.page import render as page
    from orchestrator.serve.picture import Latest
    from orchestrator.ui.dashboard import screen
    state, hosts = _wave_state(6, [NOW - 3600])
    w = wave(state, hosts, "2000-01-01")
    assert w.behind
    result = PassResult(state, (), (), (), None, wave=w)
    doc = result.to_json()
    assert doc["replot"]["deadline"] == "2000-01-01" and doc["replot"]["behind"]
    assert doc["replot"]["verdict"] == "behind: needs 6 plots/day, makes 1"

    for width, height in ((80, 24), (200, 50)):
        out = io.StringIO()
        Console(file=out, width=width, height=height, color_system=None).print(
            screen(result, hosts, [], width, height, None))
        assert "behind: needs 6 plots/day" in out.getvalue().replace("\n", " "), out.getvalue()

    picture = Latest(hosts, "plot-all", "k").observe(result)
    html = page(picture, 10, "plot-all")
    assert 'data-fig="replot-verdict" class=bad>behind: needs 6 plots/day, makes 1<' in html
    fams = {f.name: f for f in families(picture)}
    assert fams["plotfleet_replot_behind"].samples == (((), 1.0),)
