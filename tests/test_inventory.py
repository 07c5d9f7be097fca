"""The inventory: an Ansible YAML file read as Ansible reads it, then checked.

tests/inventories/fleet.yaml is an ordinary Ansible inventory (unrelated vars,
Ansible-only templates, nested and repeated groups); Ansible's own tools are
asked the same questions to prove plotfleet reads it the same way.
"""
import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from orchestrator.config import hostpattern
from orchestrator.errors import InventoryError, UserError
from orchestrator.config.inventory import load_inventory

HERE = Path(__file__).parent / "inventories"
FLEET = HERE / "fleet.yaml"


@pytest.fixture(scope="module")
def fleet():
    return load_inventory(FLEET)


# ---- reading --------------------------------------------------------------

def test_hosts_in_inventory_order_with_roles_from_groups(fleet):
    assert [h.name for h in fleet.hosts] == [
        "plotter01", "plotter02", "harvester01", "grafana", "harvester02"]
    roles = {h.name: h.roles for h in fleet.hosts}
    assert roles == {"plotter01": ("plotter",), "plotter02": ("plotter", "harvester"),
                     "harvester01": ("harvester",), "grafana": (),
                     "harvester02": ("harvester",)}
    assert [h.name for h in fleet.plotters] == ["plotter01", "plotter02"]
    assert [h.name for h in fleet.harvesters] == ["plotter02", "harvester01", "harvester02"]


def test_groups_include_hosts_of_children_at_any_depth(fleet):
    assert fleet.groups["all"] == tuple(h.name for h in fleet.hosts)
    # fast_plotters < plotters < site_a; harvesters is listed under site_a and site_b
    assert fleet.groups["site_a"] == ("plotter01", "plotter02", "harvester01", "harvester02")
    assert fleet.groups["plotters"] == ("plotter01", "plotter02")
    assert fleet.groups["site_b"] == ("plotter02", "harvester01", "harvester02")
    assert fleet.host("plotter01").groups == {"site_a", "plotters", "fast_plotters"}


def test_variables_merge_all_then_parent_then_child_then_host(fleet):
    level = {h.name: h.vars["level"] for h in fleet.hosts}
    assert level == {
        "plotter01": "fast_plotters",   # child group beats its parents
        "plotter02": "plotters",        # plotters beats harvesters: same depth, later name
        "harvester01": "harvesters",
        "grafana": "all",
        "harvester02": "harvesters",
    }
    assert fleet.host("plotter01").threads == 8        # fast_plotters over plotters
    assert fleet.host("plotter02").threads == 4
    assert fleet.host("harvester01").user == "harvest"  # host var over all.vars
    assert fleet.host("harvester02").user == "farmer"


def test_equal_depth_groups_merge_alphabetically_whatever_their_order(tmp_path):
    inv = tmp_path / "inventory.yaml"
    inv.write_text(textwrap.dedent("""\
        all:
          children:
            zeta: {hosts: {h1: null}, vars: {colour: zeta}}
            alpha: {hosts: {h1: null}, vars: {colour: alpha, size: 1}}
    """))
    h = load_inventory(inv).host("h1")
    assert (h.vars["colour"], h.vars["size"], h.roles) == ("zeta", 1, ())


def test_templates_use_group_and_host_vars_nested(fleet):
    p1, p2 = fleet.host("plotter01"), fleet.host("plotter02")
    # tmp_dirs is a plotters var; base is a host var on plotter01, all.vars on plotter02
    assert p1.tmp_dirs == ("/mnt/nvme/tmp0", "/mnt/nvme/tmp1")
    assert p2.tmp_dirs == ("/srv/chia/tmp0", "/srv/chia/tmp1")
    # dst_dirs -> plot_root -> base
    assert p1.dst_dirs == ("/mnt/nvme/plots/dst",)
    assert p1.vars["plot_root"] == "/mnt/nvme/plots"
    # Ansible's magic variables are there too
    assert fleet.host("harvester01").farm_dirs[0] == "/farm/harvester01/d0"


def test_relative_paths_are_relative_to_the_inventory_folder(fleet):
    p2 = fleet.host("plotter02")
    assert p2.log_dir == str(HERE / "logs")
    assert p2.farm_dirs == ("/farm/plotter02/d0", "~/farm1", str(HERE / "farm2"))
    assert p2.key_file == str(HERE / "keys" / "id_fleet")
    assert p2.known_hosts_file == str(HERE / "known_hosts")
    assert p2.host_key_checking is False
    assert p2.tmp_overrides == {"/srv/chia/tmp0": {"tmpdir_max_jobs": 5}}


def test_home_is_expanded_on_the_controller_only_for_controller_files(tmp_path):
    inv = tmp_path / "inventory.yaml"
    inv.write_text(textwrap.dedent("""\
        all:
          hosts:
            h1:
              ansible_ssh_private_key_file: ~/.ssh/id_fleet
              transfer_ssh_key: ~/.ssh/id_transfer
              tmp2_dir: ~/tmp2
    """))
    h = load_inventory(inv).host("h1")
    assert h.key_file == os.path.expanduser("~/.ssh/id_fleet")
    assert (h.transfer_ssh_key, h.tmp2_dir) == ("~/.ssh/id_transfer", "~/tmp2")


def test_ssh_args_and_explicit_settings(tmp_path):
    inv = tmp_path / "inventory.yaml"
    inv.write_text(textwrap.dedent("""\
        all:
          vars:
            ansible_ssh_common_args: -oUserKnownHostsFile=~/kh -o 'StrictHostKeyChecking no'
          hosts:
            h1:
            h2: {host_key_checking: true, known_hosts_file: /etc/ssh/known}
            h3: {ansible_ssh_common_args: '-o ControlMaster=auto', ansible_connection: paramiko}
    """))
    got = load_inventory(inv)
    h1, h2, h3 = (got.host(n) for n in ("h1", "h2", "h3"))
    assert (h1.known_hosts_file, h1.host_key_checking) == (os.path.expanduser("~/kh"), False)
    assert (h2.known_hosts_file, h2.host_key_checking) == ("/etc/ssh/known", True)
    assert (h3.known_hosts_file, h3.host_key_checking, h3.connection) == (None, True, "ssh")


def test_templates_give_native_values_and_lists(tmp_path):
    inv = tmp_path / "inventory.yaml"
    inv.write_text(textwrap.dedent("""\
        all:
          vars: {disks: [/a, /b], jobs: 4, plotter: chiapos, k: 18, log_dir: /l}
          children:
            plotters:
              hosts:
                p1:
                  tmp_dirs: "{{ disks }}"
                  dst_dirs: ["{{ disks[0] }}/dst", "/c"]
                  tmpdir_max_jobs: "{{ jobs + 1 }}"
                  ansible_host: "{{ inventory_hostname }}.lan"
                  note: !unsafe "{{ not a template }}"
                  plotter_command: "chiapos -t {{ tmp_dir | q }} -k {{ k }}"
    """))
    p1 = load_inventory(inv).host("p1")
    assert (p1.tmp_dirs, p1.dst_dirs) == (("/a", "/b"), ("/a/dst", "/c"))
    # the command template is rendered per job, when tmp_dir and `q` exist
    assert p1.plotter_command == "chiapos -t {{ tmp_dir | q }} -k {{ k }}"
    assert (p1.tmpdir_max_jobs, p1.address) == (5, "p1.lan")
    assert p1.vars["note"] == "{{ not a template }}"


def test_an_ordinary_ansible_inventory_loads_unchanged(fleet):
    g = fleet.host("grafana")
    assert (g.address, g.port, g.user, g.connection, g.python) == (
        "10.0.0.99", 22, "farmer", "local", "python3")
    assert g.vars["dashboards"] == ["plots", "disks"]
    assert g.vars["ntp_server"] == "pool.ntp.org"
    # a template only Ansible can resolve (facts) is kept as written, not an error
    assert g.vars["facts_note"] == "{{ ansible_facts['hostname'] }}"


def test_null_hosts_ranges_and_default_address(tmp_path):
    inv = tmp_path / "inventory.yaml"
    inv.write_text("all:\n  hosts:\n    web[01:03]:\n    db.example:\n")
    got = load_inventory(inv)
    assert [h.name for h in got.hosts] == ["web01", "web02", "web03", "db.example"]
    assert got.host("db.example").address == "db.example"
    assert got.groups["ungrouped"] == ("web01", "web02", "web03", "db.example")


def _ansible(*args):
    out = subprocess.run(args, cwd=HERE, capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, ANSIBLE_DEPRECATION_WARNINGS="0"))
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_ansible_resolves_the_same_hostvars(fleet, tmp_path):
    listed = json.loads(_ansible("ansible-inventory", "-i", "fleet.yaml", "--list"))
    hostvars = listed["_meta"]["hostvars"]
    assert set(hostvars) == {h.name for h in fleet.hosts}
    for h in fleet.hosts:
        theirs = hostvars[h.name]
        assert h.address == theirs.get("ansible_host", h.name)
        assert h.port == theirs.get("ansible_port", 22)
        assert h.user == theirs["ansible_user"]
        for key, value in theirs.items():       # every untemplated var merges alike
            if "{{" not in json.dumps(value):
                assert h.vars[key] == value, (h.name, key)
    # ansible-inventory does not template; Ansible itself does when it runs
    tree = tmp_path / "tree"
    _ansible("ansible", "plotters", "-i", "fleet.yaml", "-m", "debug",
             "-a", "msg={{ [tmp_dirs, dst_dirs] }}", "--tree", str(tree))
    for h in fleet.plotters:
        tmp_dirs, dst_dirs = json.loads((tree / h.name).read_text())["msg"]
        assert (tuple(tmp_dirs), tuple(dst_dirs)) == (h.tmp_dirs, h.dst_dirs)


# ---- host patterns -----------------------------------------------------------

PATTERNS = {
    "plotter01": ["plotter01"],
    "harvesters": ["plotter02", "harvester01", "harvester02"],
    "all": ["plotter01", "plotter02", "harvester01", "grafana", "harvester02"],
    "*": ["plotter01", "plotter02", "harvester01", "grafana", "harvester02"],
    "harvester0*": ["harvester01", "harvester02"],
    "*plotters": ["plotter01", "plotter02"],          # wildcard over group names
    "monitoring:plotter01": ["plotter01", "grafana"],
    "monitoring,plotter01": ["plotter01", "grafana"],
    "plotters:&harvesters": ["plotter02"],
    "all:!site_a": ["grafana"],
    "!plotters:harvesters": ["harvester01", "harvester02"],  # exclusions come last
    "harvesters:!plotters:&site_b:grafana": ["harvester01", "harvester02"],
    "~plotter0[12]$": ["plotter01", "plotter02"],
    "~harv": ["plotter02", "harvester01", "harvester02"],    # group harvesters matches too
}


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_limit_patterns(fleet, pattern):
    assert [h.name for h in fleet.select(pattern)] == PATTERNS[pattern]


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_limit_patterns_agree_with_ansible(pattern):
    out = _ansible("ansible", pattern, "-i", "fleet.yaml", "--list-hosts")
    theirs = {line.strip() for line in out.splitlines()[1:] if line.strip()}
    assert theirs == set(PATTERNS[pattern])


def test_no_limit_selects_everything_and_a_miss_is_one_line(fleet):
    assert fleet.select(None) == fleet.hosts
    with pytest.raises(UserError, match=r"^--limit 'foo': matches no host$"):
        fleet.select("foo")
    with pytest.raises(UserError, match=r"^--limit 'plotter01:&monitoring': matches no host$"):
        fleet.select("plotter01:&monitoring")
    with pytest.raises(UserError, match=r"^--limit '~\(': bad pattern '~\(': "):
        fleet.select("~(")


def test_hostpattern_is_a_pure_function_of_names_and_groups():
    groups = {"all": ("b", "a", "c"), "g": ("c", "a")}
    assert hostpattern.select("g:b", ["b", "a", "c"], groups) == ["b", "a", "c"]
    assert hostpattern.select("&g", ["b", "a", "c"], groups) == ["a", "c"]
    assert hostpattern.split("web[1:3]:db") == ["web[1:3]", "db"]


# ---- one-line errors -----------------------------------------------------------

PLOTTER = """\
all:
  children:
    plotters:
      hosts:
        plotter03:
          tmp_dirs: [/t]
          dst_dirs: [/d]
          log_dir: /l
          plotter: chiapos
          k: 18
"""


def plotter_with(**changes):
    """PLOTTER with some of plotter03's vars replaced, added or (None) removed."""
    lines = [l for l in PLOTTER.splitlines() if l.split(":")[0].strip() not in changes]
    lines += [f"          {k}: {v}" for k, v in changes.items() if v is not None]
    return "\n".join(lines) + "\n"


def load_error(tmp_path, monkeypatch, text):
    """The message loading `text` gives, as a user sees it (one line)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "inventory.yaml").write_text(text)
    with pytest.raises(InventoryError) as e:
        load_inventory("inventory.yaml")
    msg = str(e.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("change, message", [
    ({"tmp_dirs": "5"}, "host plotter03: tmp_dirs must be a list of paths, got 5"),
    ({"tmp_dirs": "/mnt/tmp"}, "host plotter03: tmp_dirs must be a list of paths, got '/mnt/tmp'"),
    ({"dst_dirs": "[/d, '']"}, "host plotter03: dst_dirs must be a path, got ''"),
    ({"plotter": "plotman"},
     "host plotter03: plotter must be one of chia, madmax, bladebit, chiapos, gigahorse, pos2, got 'plotman'"),
    ({"plotter": "chia"}, "host plotter03: k 18 is not allowed for plotter chia"
                          " (chia plots create refuses k < 25; use plotter chiapos for small plots)"),
    ({"plotter": "bladebit", "k": "30"},
     "host plotter03: k 30 is not allowed for plotter bladebit (bladebit makes k32 only)"),
    ({"tmp_dir": "[/t]"}, "host plotter03: tmp_dir is not a plotfleet setting: did you mean tmp_dirs?"),
    ({"bufer": "4000"}, "host plotter03: bufer is not a plotfleet setting: did you mean buffer?"),
    ({"log_dir": None}, "host plotter03: log_dir is required for a plotter"),
    ({"tmp_dirs": "[]"}, "host plotter03: tmp_dirs is required for a plotter"),
    ({"tmp_dirs": '["{{ nowhere }}/t"]'},
     "host plotter03: tmp_dirs template '{{ nowhere }}/t': 'nowhere' is undefined"),
    ({"threads": "true"}, "host plotter03: threads must be an integer, got true"),
    ({"buffer": "0"}, "host plotter03: buffer must be at least 1, got 0"),
    ({"request_timeout_s": "0.1"}, "host plotter03: request_timeout_s must be at least 0.5, got 0.1"),
    ({"ansible_port": "70000"},
     "host plotter03: ansible_port must be a port number (1-65535), got 70000"),
    ({"ansible_port": "ssh"},
     "host plotter03: ansible_port must be a port number (1-65535), got 'ssh'"),
    ({"ansible_connection": "winrm"}, "host plotter03: ansible_connection must be ssh or local, got 'winrm'"),
    ({"host_key_checking": "'no'"}, "host plotter03: host_key_checking must be true or false, got 'no'"),
    ({"fill": "random"}, "host plotter03: fill must be one of spread, pack, got 'random'"),
    ({"tmp_overrides": "{/x: {tmpdir_max_jobs: 1}}"},
     "host plotter03: tmp_overrides names /x which is not in tmp_dirs"),
    ({"tmp_overrides": "{/t: {tmpdir_max_job: 1}}"},
     "host plotter03: tmp_overrides /t: tmpdir_max_job is not a tmp dir setting:"
     " did you mean tmpdir_max_jobs?"),
    # combinations that can never plot
    ({"plotter": "chia", "k": "32", "buckets": "256"},
     "host plotter03: buckets 256 is not allowed for plotter chia"
     " (chia plots create takes 16 to 128 buckets)"),
    ({"plotter": "chia", "k": "32", "buckets": "8"},
     "host plotter03: buckets 8 is not allowed for plotter chia"
     " (chia plots create takes 16 to 128 buckets)"),
    ({"buckets": "64"},       # chiapos k18: "Triggering bucket too early"
     "host plotter03: buckets 64 is not allowed for plotter chiapos"
     " (chiapos at k 18 takes 16 to 32 buckets)"),
    ({"buckets": "128", "k": "19"},
     "host plotter03: buckets 128 is not allowed for plotter chiapos"
     " (chiapos at k 19 takes 16 to 64 buckets)"),
    ({"plotter": "madmax", "k": "32", "buckets": "4"},
     "host plotter03: buckets 4 is not allowed for plotter madmax"
     " (madmax takes 2^4 to 2^16 buckets)"),
    ({"k": "17"}, "host plotter03: k 17 is not allowed for plotter chiapos (chiapos needs k >= 18)"),
    # numbers that are no numbers
    ({"global_stagger_m": ".nan"}, "host plotter03: global_stagger_m must be a finite number, got nan"),
    ({"polling_time_s": ".inf"}, "host plotter03: polling_time_s must be a finite number, got inf"),
    ({"failure_backoff_m": "-.inf"},
     "host plotter03: failure_backoff_m must be a finite number, got -inf"),
    ({"max_failures": "0"}, "host plotter03: max_failures must be at least 1, got 0"),
    ({"clean_after_m": "-1"}, "host plotter03: clean_after_m must be at least 0, got -1"),
    ({"dead_keep_h": "soon"}, "host plotter03: dead_keep_h must be a number, got 'soon'"),
    ({"kill_after_m": "[1]"}, "host plotter03: kill_after_m must be a number, got [1]"),
    # the interpreter is a shell command: an unbalanced quote never reaches a host
    ({"ansible_python_interpreter": "\"'/opt/my py/bin/python3\""},
     "host plotter03: ansible_python_interpreter cannot be parsed (No closing quotation):"
     " \"'/opt/my py/bin/python3\""),
    ({"ansible_python_interpreter": "\"  \""},
     "host plotter03: ansible_python_interpreter is empty"),
    # the farmer's check tool: split like a shell would, on the host
    ({"check_command": "\"bladebit_cuda check -n {n} '{path}\""},
     "host plotter03: check_command cannot be parsed (No closing quotation):"
     " \"bladebit_cuda check -n {n} '{path}\""),
    ({"check_command": "bladebit_cuda check -n 30"},
     "host plotter03: check_command must name the plot as {path}, e.g. "
     "'bladebit_cuda check -n {n} {path}'"),
    ({"check_min_ratio": "-0.1"}, "host plotter03: check_min_ratio must be at least 0, got -0.1"),
    ({"check_parallel": "0"}, "host plotter03: check_parallel must be at least 1, got 0"),
])
def test_bad_plotter_settings(tmp_path, monkeypatch, change, message):
    assert load_error(tmp_path, monkeypatch, plotter_with(**change)) == f"inventory.yaml: {message}"


def test_failure_keys_default_and_validate(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "inventory.yaml").write_text(plotter_with())
    h = load_inventory("inventory.yaml").host("plotter03")
    assert (h.dead_keep_h, h.max_failures, h.failure_backoff_m, h.clean_after_m,
            h.kill_after_m) == (24, 2, 60, 5, 1)
    cfg = h.agent_config()
    assert (cfg["dead_keep_s"], cfg["clean_quiet_s"], cfg["kill_quiet_s"]) == (86400, 300, 60)
    (tmp_path / "inventory.yaml").write_text(plotter_with(
        max_failures=5, failure_backoff_m=0.5, clean_after_m=0, kill_after_m=0.01, dead_keep_h=1))
    h = load_inventory("inventory.yaml").host("plotter03")
    assert (h.max_failures, h.failure_backoff_m, h.clean_after_m, h.kill_after_m,
            h.dead_keep_h) == (5, 0.5, 0, 0.01, 1)


@pytest.mark.parametrize("k, buckets", [(18, 32), (19, 64), (20, 128), (25, 128), (32, 128)])
def test_chiapos_buckets_default_to_what_its_k_can_plot(tmp_path, monkeypatch, k, buckets):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "inventory.yaml").write_text(plotter_with(k=k))
    assert load_inventory("inventory.yaml").host("plotter03").buckets == buckets


def test_chia_keeps_its_own_default_buckets_and_takes_any_in_range(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "inventory.yaml").write_text(plotter_with(plotter="chia", k=32))
    assert load_inventory("inventory.yaml").host("plotter03").buckets == 128
    (tmp_path / "inventory.yaml").write_text(plotter_with(plotter="chia", k=32, buckets=16))
    assert load_inventory("inventory.yaml").host("plotter03").buckets == 16


def test_a_multi_word_interpreter_stays_valid(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "inventory.yaml").write_text(plotter_with(
        ansible_python_interpreter="\"qemu-aarch64 '/opt/my py/bin/python3'\""))
    from orchestrator.remote.deploy import python_argv
    h = load_inventory("inventory.yaml").host("plotter03")
    assert python_argv(h.python) == "qemu-aarch64 '/opt/my py/bin/python3'"


def test_a_host_range_is_capped(tmp_path, monkeypatch):
    msg = load_error(tmp_path, monkeypatch,
                     "all:\n  hosts:\n    web[1:99999999999]:\n")
    assert msg == ("inventory.yaml: group all: host range web[1:99999999999] makes"
                   " 99999999999 hosts (at most 10000)")
    msg = load_error(tmp_path, monkeypatch, "all:\n  hosts:\n    r[1:200]x[1:200]:\n")
    assert msg.endswith("makes 40000 hosts (at most 10000)")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "inventory.yaml").write_text("all:\n  hosts:\n    web[001:100]:\n")
    names = [h.name for h in load_inventory("inventory.yaml").hosts]
    assert len(names) == 100 and names[0] == "web001" and names[-1] == "web100"


def test_harvester_needs_farm_dirs(tmp_path, monkeypatch):
    text = "all:\n  children:\n    harvesters:\n      hosts:\n        h1: {ansible_host: 10.0.0.1}\n"
    assert load_error(tmp_path, monkeypatch, text) == \
        "inventory.yaml: host h1: farm_dirs is required for a harvester"


def test_undefined_variable_is_named_where_it_is_used(tmp_path, monkeypatch):
    msg = load_error(tmp_path, monkeypatch, plotter_with(
        log_dir='"{{ root }}/logs"', root='"{{ missing }}/x"'))
    assert msg == "inventory.yaml: host plotter03: root template '{{ missing }}/x':" \
                  " 'missing' is undefined"


def test_a_template_loop_is_one_line(tmp_path, monkeypatch):
    msg = load_error(tmp_path, monkeypatch, plotter_with(
        log_dir='"{{ a }}"', a='"{{ b }}"', b='"{{ a }}/x"'))
    assert msg == "inventory.yaml: host plotter03: a refers to itself: a -> b -> a"


def test_k_rules_apply_to_plotters_only(tmp_path):
    inv = tmp_path / "inventory.yaml"
    inv.write_text("all:\n  vars: {k: 18}\n  children:\n    harvesters:\n"
                   "      hosts: {h1: {farm_dirs: [/f]}}\n")
    assert load_inventory(inv).host("h1").k == 18


@pytest.mark.parametrize("text, message", [
    ("all:\n  hosts:\n    h1: {a: 1\n  vars: {}\n",
     "inventory.yaml: line 4: expected ',' or '}', but got ':'"),
    ("all:\n  vars:\n    x: !vault |\n      abc\n",
     "inventory.yaml: line 3: could not determine a constructor for the tag '!vault'"),
    ("- a\n- b\n", "inventory.yaml: top level must be a mapping of groups, got [\"a\", \"b\"]"),
    ("all:\n  host:\n    h1:\n",
     "inventory.yaml: group all: unknown section 'host' (expected hosts, vars or children)"),
    ("all:\n  hosts: [h1, h2]\n", "inventory.yaml: group all: hosts must be a mapping, got"),
])
def test_bad_files(tmp_path, monkeypatch, text, message):
    assert load_error(tmp_path, monkeypatch, text).startswith(message)


def test_missing_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InventoryError, match=r"^inventory.yaml: not found$"):
        load_inventory("inventory.yaml")


def test_a_local_host_runs_the_agent_with_the_controllers_interpreter(tmp_path):
    import sys
    inv = tmp_path / "inventory.yaml"
    inv.write_text("all:\n  hosts:\n    here:\n      ansible_connection: local\n"
                   "    there:\n      ansible_python_interpreter: /opt/py/bin/python3\n"
                   "      ansible_connection: local\n    remote: {}\n")
    hosts = {h.name: h for h in load_inventory(inv).hosts}
    assert hosts["here"].python == sys.executable
    assert hosts["there"].python == "/opt/py/bin/python3"
    assert hosts["remote"].python == "python3"


@pytest.mark.parametrize("k, strength, why", [
    (18, 16, "strength must be 2 to 15 at k18, got 16"),     # chia_rs 0.53 refuses 16, 17
    (20, 18, "strength must be 2 to 17 at k20, got 18"),
    (18, 1, "strength must be at least 2, got 1"),
    (19, 2, "k must be even, 18 to 32, for PoS2 plots, got 19"),
    (34, 2, "k 34 is not allowed for plotter pos2"),
])
def test_pos2_strength_is_checked_per_k_at_load(tmp_path, monkeypatch, k, strength, why):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "inventory.yaml").write_text(plotter_with(plotter="pos2", k=k, strength=strength))
    with pytest.raises(InventoryError) as e:
        load_inventory("inventory.yaml")
    assert str(e.value).startswith("inventory.yaml: host plotter03: " + why), str(e.value)
    assert "\n" not in str(e.value)


def test_pos2_takes_its_strength_and_has_no_buckets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "inventory.yaml").write_text(plotter_with(plotter="pos2", k=20, strength=4))
    h = load_inventory("inventory.yaml").host("plotter03")
    assert (h.k, h.strength, h.compression.label()) == (20, 4, "v2 s4")
    (tmp_path / "inventory.yaml").write_text(plotter_with(plotter="chiapos", k=18, strength=4))
    with pytest.raises(InventoryError, match="host plotter03: strength is for plotter pos2, not chiapos$"):
        load_inventory("inventory.yaml")


def test_a_dir_listed_twice_is_one_line(tmp_path):
    """The same farm dir twice would count its plots twice, and offer each
    old plot twice to replotting."""
    from orchestrator.config.inventory import load_inventory
    from orchestrator.errors import InventoryError
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  children:\n    harvesters:\n      hosts:\n"
                   "        h1: {farm_dirs: [/f, /g, /f/]}\n")
    with pytest.raises(InventoryError) as e:
        load_inventory(inv)
    assert str(e.value) == f"{inv}: host h1: farm_dirs lists /f twice"
