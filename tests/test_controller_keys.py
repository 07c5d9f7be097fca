"""Controller-wide keys (notify, app_log*, alert_*, serve_token): read from the
inventory's all.vars only, into Inventory.controller; set on any other group
or on a host they are one inventory error naming file, group or host, and key."""
import json
import textwrap

import pytest
import yaml

from orchestrator.config.controller import ControllerConfig
from orchestrator.config.inventory import load_inventory
from orchestrator.core.keys import CONTROLLER_KEYS, KEYS
from orchestrator.errors import InventoryError
from tests.cli import plotfleet

PLOTTER = {"tmp_dirs": ["/t0"], "dst_dirs": ["/d0"], "log_dir": "/log"}


def write(tmp_path, text, name="inv.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def write_tree(tmp_path, tree, name="inv.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(tree))
    return path


def refused(path):
    """`plotfleet history` on a bad inventory: exit 2, one line on stderr."""
    r = plotfleet("history", "--inventory", path)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == "" and r.stderr.count("\n") == 1, r.stderr
    return r.stderr.strip()


def test_the_table_has_a_controller_section_of_exactly_these_keys():
    assert set(CONTROLLER_KEYS) == {"notify", "app_log", "app_log_max_bytes", "app_log_backups",
                                    "alert_host_down_m", "alert_farm_free_plots", "serve_token",
                                        "replot_deadline"}
    for name in CONTROLLER_KEYS:
        assert KEYS[name].attr is None and KEYS[name].roles == ("controller",)


@pytest.mark.parametrize("key", CONTROLLER_KEYS)
def test_each_key_under_a_group_is_one_line_naming_file_group_and_key(tmp_path, key):
    path = write_tree(tmp_path, {"all": {"children": {"plotters": {
        "vars": {key: 1}, "hosts": {"p1": PLOTTER}}}}})
    assert refused(path) == (f"plotfleet: {path}: group plotters: {key} is a controller-wide"
                             " key: set it under all.vars")


def test_a_nested_group_and_the_ungrouped_group_are_groups_too(tmp_path):
    path = write(tmp_path, """\
        all:
          children:
            site:
              children:
                plotters:
                  vars: {notify: "json://127.0.0.1:9/x"}
    """)
    assert refused(path) == (f"plotfleet: {path}: group plotters: notify is a controller-wide"
                             " key: set it under all.vars")
    path = write(tmp_path, "ungrouped:\n  vars: {serve_token: s3cret}\n", "u.yaml")
    assert refused(path) == (f"plotfleet: {path}: group ungrouped: serve_token is a"
                             " controller-wide key: set it under all.vars")


@pytest.mark.parametrize("key", CONTROLLER_KEYS)
def test_each_key_on_a_host_is_one_line_naming_file_host_and_key(tmp_path, key):
    path = write_tree(tmp_path, {"all": {"children": {"plotters": {
        "hosts": {"p1": dict(PLOTTER, **{key: 1})}}}}})
    assert refused(path) == (f"plotfleet: {path}: host p1: {key} is a controller-wide"
                             " key: set it under all.vars")


def test_on_a_host_range_the_error_names_the_range_as_written(tmp_path):
    path = write(tmp_path, """\
        all:
          hosts:
            "web[01:03]": {app_log: false}
    """)
    assert refused(path) == (f"plotfleet: {path}: host web[01:03]: app_log is a"
                             " controller-wide key: set it under all.vars")


def test_in_process_the_error_is_an_inventory_error(tmp_path):
    path = write(tmp_path, "all:\n  hosts:\n    h1: {notify: 'json://x/y'}\n")
    with pytest.raises(InventoryError) as e:
        load_inventory(path)
    assert str(e.value) == (f"{path}: host h1: notify is a controller-wide key:"
                            " set it under all.vars")


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = write_tree(tmp_path, {"all": {"children": {"plotters": {"hosts": {"p1": PLOTTER}}}}})
    c = load_inventory(path).controller
    assert c == ControllerConfig(
        notify=(), app_log=str(tmp_path / "home" / ".plotfleet" / "plotfleet.log"),
        app_log_max_bytes=10 * 2 ** 20, app_log_backups=5, alert_host_down_m=10,
        alert_farm_free_plots=10, serve_token=None)
    assert c.state_dir == str(tmp_path / "home" / ".plotfleet")
    for name in CONTROLLER_KEYS:        # the table's defaults are the dataclass's
        if name not in ("notify", "app_log"):
            assert getattr(c, name) == KEYS[name].default, name


def test_all_vars_set_every_key_templated_with_other_all_vars(tmp_path):
    path = write(tmp_path, """\
        all:
          vars:
            hook_host: 127.0.0.1
            notify: ["json://{{ hook_host }}:8000/hook", "ntfy://ntfy.sh/farm"]
            app_log: state/{{ 'fleet' }}.log
            app_log_max_bytes: 4096
            app_log_backups: 0
            alert_host_down_m: 0.5
            alert_farm_free_plots: 0
            serve_token: !unsafe "{{ not a template }}"
          children:
            plotters:
              hosts:
                p1: {tmp_dirs: [/t0], dst_dirs: [/d0], log_dir: /log}
    """)
    inv = load_inventory(path)
    assert inv.controller == ControllerConfig(
        notify=("json://127.0.0.1:8000/hook", "ntfy://ntfy.sh/farm"),
        app_log=str(tmp_path / "state" / "fleet.log"), app_log_max_bytes=4096,
        app_log_backups=0, alert_host_down_m=0.5, alert_farm_free_plots=0,
        serve_token="{{ not a template }}")
    # the hosts still load: all.vars reach them, and are not host settings
    assert inv.host("p1").tmp_dirs == ("/t0",)


def test_one_url_a_home_path_and_an_absolute_path(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = write(tmp_path, "all:\n  vars: {notify: 'json://h/x', app_log: ~/logs/p.log}\n")
    c = load_inventory(path).controller
    assert (c.notify, c.app_log) == (("json://h/x",), str(tmp_path / "home/logs/p.log"))
    path = write(tmp_path, "all:\n  vars: {app_log: /var/log/../tmp/p.log}\n")
    assert load_inventory(path).controller.app_log == "/var/tmp/p.log"


def test_app_log_false_turns_the_log_off(tmp_path):
    path = write(tmp_path, "all:\n  vars: {app_log: false}\n")
    c = load_inventory(path).controller
    assert c.app_log is None
    r = plotfleet("history", "--inventory", path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{path}: app_log is false: no application log\n"


@pytest.mark.parametrize("key,value,problem", [
    ("notify", "discord", "must be apprise URLs (like json://host/path), got 'discord'"),
    ("notify", 3, "must be an apprise URL or a list of them, got 3"),
    ("notify", ["json://a/b", 4], "must be apprise URLs (like json://host/path), got 4"),
    ("app_log", True, "must be a path or false, got true"),
    ("app_log", "", "must be a path or false, got ''"),
    ("app_log_max_bytes", 4095, "must be at least 4096, got 4095"),
    ("app_log_max_bytes", 1.5e6, "must be an integer, got 1500000.0"),
    ("app_log_backups", -1, "must be at least 0, got -1"),
    ("alert_host_down_m", -1, "must be at least 0, got -1"),
    ("alert_host_down_m", "soon", "must be a number, got 'soon'"),
    ("alert_farm_free_plots", True, "must be an integer, got true"),
    ("serve_token", 1234, "must be a non-empty string, got 1234"),
    ("serve_token", "", "must be a non-empty string, got ''"),
])
def test_a_bad_value_in_all_vars_is_one_line_naming_the_key(tmp_path, key, value, problem):
    path = write_tree(tmp_path, {"all": {"vars": {key: value}}})
    assert refused(path) == f"plotfleet: {path}: group all: {key} {problem}"


def test_a_template_that_fails_names_all_vars_and_the_key(tmp_path):
    path = write(tmp_path, "all:\n  vars: {notify: '{{ webhook }}'}\n")
    assert refused(path) == (f"plotfleet: {path}: group all: notify template"
                             " '{{ webhook }}': 'webhook' is undefined")


def test_a_misspelt_key_in_all_vars_is_suggested(tmp_path):
    path = write(tmp_path, "all:\n  vars: {notfy: 'json://h/x'}\n  hosts: {h1: null}\n")
    assert refused(path) == (f"plotfleet: {path}: host h1: notfy is not a plotfleet"
                             " setting: did you mean notify?")


def test_plotfleet_keys_lists_them_in_their_own_section():
    r = plotfleet("keys", "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    for name in CONTROLLER_KEYS:
        assert rows[name]["section"] == "controller (all.vars only)"
        assert rows[name]["roles"] == ["controller"] and rows[name]["field"] is None
    assert rows["app_log"]["default"] == "~/.plotfleet/plotfleet.log"
    assert rows["app_log_max_bytes"]["limits"] == ">= 4096"
    table = plotfleet("keys").stdout
    for name in CONTROLLER_KEYS:
        line = next(l for l in table.splitlines() if f" {name} " in l)
        assert " controller " in line, line
