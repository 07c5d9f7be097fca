"""The `replot` key: its rules, validated like every key (one line naming
file, host and key, exit 2), refused when they would match what a plotter of
the inventory makes now, and matched against real plot headers."""
import datetime
import os
import secrets
import sys

import pytest
import yaml

from agent.vocab import replot as rules
from orchestrator.config.inventory import load_inventory
from orchestrator.errors import InventoryError
from tests.cli import plotfleet

ID = "ab" * 32


def inventory(tmp_path, replot, **plotter):
    p = dict(tmp_dirs=["/t"], log_dir="/l", plotter="chiapos", k=18)
    p.update(plotter)
    doc = {"all": {"vars": {"replot": replot}, "children": {
        "plotters": {"hosts": {"p1": p}},
        "harvesters": {"hosts": {"h1": {"farm_dirs": ["/f"]}}}}}}
    path = tmp_path / "inv.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def refused(tmp_path, replot, **plotter):
    with pytest.raises(InventoryError) as e:
        load_inventory(inventory(tmp_path, replot, **plotter))
    assert "\n" not in str(e.value)
    return str(e.value)


def test_without_replot_nothing_is_replaceable(tmp_path):
    h = load_inventory(inventory(tmp_path, None)).host("h1")
    assert h.replot == () and h.replot_max_deletes_per_hour == 60


def test_a_rule_matching_the_plots_being_made_is_refused_naming_rule_and_plotter(tmp_path):
    why = refused(tmp_path, [{"made_before": "2023-01-01"}, {"k_below": 19}])
    assert why.endswith("") and "host h1: replot rule 2 (k_below: 19) matches the plots " \
        "plotter p1 makes now (k18 C0 plots)" in why
    assert "format: v1" in refused(tmp_path, [{"format": "v1"}])
    # bladebit C5 makes level 5: below 7 of bladebit's levels matches, Gigahorse's does not
    bb = dict(plotter="bladebit", k=32, compress=5)
    assert "compression_below: 7" in refused(
        tmp_path, [{"compression_below": 7, "compression_format": "bladebit"}], **bb)
    load_inventory(inventory(tmp_path, [{"compression_below": 7,
                                         "compression_format": "gigahorse"}], **bb))
    # uncompressed is level 0 in every format
    assert "compression_below: 1" in refused(tmp_path, [{"compression_below": 1}])
    # a pool-key plotter makes solo plots; a pool-contract one does not
    assert "pool: solo" in refused(tmp_path, [{"pool": "solo"}], pool_key="ab" * 48)
    load_inventory(inventory(tmp_path, [{"pool": "solo"}], pool_contract="xch1abc"))
    # all of a rule's conditions must hold: k_below 19 with an old date never matches
    load_inventory(inventory(tmp_path, [{"k_below": 19, "made_before": "2023-01-01"}]))


@pytest.mark.parametrize("replot, why", [
    ("old", "replot must be a list of rules"),
    ([{"made_before": "2999-01-01"}], "rule 1: made_before: 2999-01-01 is not far enough in the past"),
    ([{"made_before": "last year"}], "rule 1: made_before must be a date YYYY-MM-DD"),
    ([{"k_bellow": 32}], "rule 1: unknown condition 'k_bellow'"),
    ([{"format": "drplot"}], "rule 1: format must be one of v1"),
    ([{"k_below": "32"}], "rule 1: k_below must be a whole number"),
    ([{"compression_format": "bladebit"}], "compression_format goes with compression_below"),
    ([{}], "rule 1: each rule must be a mapping of conditions"),
])
def test_bad_rules_are_one_line(tmp_path, replot, why):
    assert why in refused(tmp_path, replot)


def test_the_command_line_says_it_in_one_line_and_exits_2(tmp_path):
    r = plotfleet("status", "--inventory", inventory(tmp_path, [{"k_below": 30}]))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    [line] = r.stderr.strip().splitlines()
    assert "host h1: replot rule 1 (k_below: 30) matches the plots plotter p1 makes" in line


def test_made_before_is_two_days_back_at_least_and_a_date_yaml_reads_works(tmp_path):
    # a plotter 26 hours behind in its time zone names a plot made now by yesterday's date
    today = datetime.date.today()
    for days in (1, 0, -1):
        assert "not far enough in the past" in refused(
            tmp_path, [{"made_before": today - datetime.timedelta(days=days)}])
    load_inventory(inventory(tmp_path, [{"made_before": today - datetime.timedelta(days=2)}]))
    h = load_inventory(inventory(tmp_path, [{"made_before": datetime.date(2024, 1, 1)}])).host("h1")
    assert h.replot == ({"made_before": "2024-01-01"},)


def name(k=32, date="2022-01-01-00-00", level=None):
    c = f"c{level}-" if level is not None else ""
    return f"plot-k{k}-{c}{date}-{ID}.plot"


def test_each_condition_matches_as_documented():
    def m(rule, n, path="/f/x", pool=None):
        return rules.matches(rule, rules.name_facts(n), os.path.join(path, n), pool)
    assert m({"k_below": 33}, name(32)) and not m({"k_below": 32}, name(32))
    assert m({"made_before": "2022-06-01"}, name()) and not m({"made_before": "2021-06-01"}, name())
    assert m({"compression_below": 7}, name()), "uncompressed is level 0"
    assert not m({"compression_below": 7}, name(level="05")), "a level without its format"
    assert m({"compression_below": 7, "compression_format": "bladebit"}, name(level="05"))
    assert not m({"compression_below": 7, "compression_format": "gigahorse"}, name(level="05"))
    assert m({"compression_below": 7, "compression_format": "gigahorse"}, name(level="5"))
    assert m({"format": "v1"}, name(level="07"))
    assert m({"glob": "/mnt/old*/*.plot"}, name(), path="/mnt/old3")
    assert not m({"glob": "/mnt/old*/*.plot"}, name(), path="/mnt/new3")
    assert m({"pool": "solo"}, name(), pool="solo") and not m({"pool": "solo"}, name(), pool=None)
    dr = "drplot-pro4x-2021-01-24-00-35-" + "b" * 32 + ".drplot"
    assert not any(m(r, dr) for r in ({"format": "v1"}, {"made_before": "2024-01-01"}))
    assert not m({"k_below": 40}, f"plot-k28-{ID}.plot2"), "PoS2 is no rule's"


def _plot(tmp_path, memo):
    from chiapos import DiskPlotter
    plot_id = secrets.token_bytes(32)
    n = f"plot-k18-2022-01-01-00-00-{plot_id.hex()}.plot"
    saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stdout.flush()
        os.dup2(devnull, 1)
        DiskPlotter().create_plot_disk(str(tmp_path), str(tmp_path), str(tmp_path), n, 18,
                                       memo, plot_id, 300, 32, 2000, 2, False)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
    with open(tmp_path / n, "rb") as f:
        return rules.pool_of_header(f.read(256))


def test_pool_solo_reads_the_memo_of_a_real_plot(tmp_path):
    # chia's memo: pool public key (48) + farmer key (48) + master sk (32), or
    # pool contract puzzle hash (32) + the same 80 (chia/plotting/create_plots.py)
    assert _plot(tmp_path, secrets.token_bytes(128)) == "solo"
    assert _plot(tmp_path, secrets.token_bytes(112)) == "contract"


def test_a_glob_is_judged_where_each_plot_goes_not_at_load(tmp_path):
    # the plan and the harvester refuse a new plot the glob matches (test_replot_plan.py,
    # test_replot_agent.py, test_replot_e2e.py)
    h = load_inventory(inventory(tmp_path, [{"glob": "/mnt/old*/*"}])).host("h1")
    assert h.replot == ({"glob": "/mnt/old*/*"},)


def test_a_glob_over_every_farm_dir_is_refused_at_load_a_new_plot_could_go_nowhere(tmp_path):
    why = refused(tmp_path, [{"glob": "/f/*"}])
    assert "rule 1 (glob: /f/*) matches the plots plotter p1 makes now (k18 C0 plots) in " \
        "every farm dir of h1: a new plot could go nowhere" in why
    assert "glob: *" in refused(tmp_path, [{"glob": "*"}])
    # with a condition the new plots never meet, or over some dirs only: accepted
    load_inventory(inventory(tmp_path, [{"glob": "*", "made_before": "2023-01-01"}]))
    load_inventory(inventory(tmp_path, [{"glob": "*", "k_below": 18}]))
    load_inventory(inventory(tmp_path, [{"glob": "/g/*"}]))
