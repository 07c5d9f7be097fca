"""Every bad inventory is one line: recursive anchors, absurd sizes and
nesting, and dozens of mutations of a real inventory each give one line
naming the file (exit 2 from the command line) or a correct load.  Keys
plotfleet does not know are named once, in one warning line; --strict
makes them an error; other tools' vars on other hosts are not judged."""
import random
from pathlib import Path

import pytest
import yaml

from orchestrator.config.inventory import load_inventory
from orchestrator.errors import InventoryError
from tests.cli import plotfleet, status_json

REPO = Path(__file__).resolve().parent.parent

BASE = {"all": {
    "vars": {"global_stagger_m": 0, "polling_time_s": 5},
    "children": {
        "plotters": {"vars": {"plotter": "chiapos", "k": 18},
                     "hosts": {"p1": {"ansible_host": "127.0.0.1", "tmp_dirs": ["/t/a", "/t/b"],
                                      "dst_dirs": ["/d"], "log_dir": "/l", "threads": 2,
                                      "tmpdir_max_jobs": 1, "buffer": 300}}},
        "harvesters": {"hosts": {"h1": {"farm_dirs": ["/f1", "/f2"],
                                        "require_mounted_farm": False}}}}}}

HOSTILE = [None, [], {}, -1, 0, 10 ** 30, 1.5, float("nan"), float("inf"), True, "",
           "x" * 5000, "{{ nope }}", "{{ 1/0 }}", "{{ cycler.__init__.__globals__ }}",
           "{{ 'x' * 10**10 }}", "{% for %}", "~", "a\nb", "\x00", {"a": [{"b": None}]},
           ["/x", None], [[["/deep"]]], "/t/a"]


def _paths(node, path=()):
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, path + (i,))


def _mutate(rng, doc):
    paths = [p for p in _paths(doc) if p]
    if not paths:
        return "nothing left to mutate"
    path = rng.choice(paths)
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    what = rng.choice(["value", "value", "drop", "unknown", "typo"])
    if what == "value":
        parent[last] = rng.choice(HOSTILE)
    elif what == "drop":
        del parent[last]
    elif isinstance(parent, dict) and what == "unknown":
        parent[rng.choice(["buffer_mib", "max_jobs", "stagger_m", "x" * 300, "a b"])] = 1
    elif isinstance(parent, dict) and isinstance(last, str):
        parent[last[:-1] + "z"] = parent.pop(last)
    return "/".join(map(str, path)) + " " + what


def _texts(rng, n):
    """(label, YAML text) of `n` mutated documents and of text-level damage."""
    import copy
    base_text = yaml.safe_dump(BASE, sort_keys=False)
    for i in range(n):
        doc = copy.deepcopy(BASE)
        labels = [_mutate(rng, doc) for _ in range(rng.randint(1, 3))]
        yield "; ".join(labels), yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    for i in range(n // 3):
        cut = rng.randrange(len(base_text))
        yield f"cut at {cut}", base_text[:cut]
        at = rng.randrange(len(base_text))
        yield f"'{base_text[at]}' at {at} replaced", base_text[:at] + rng.choice(
            ["\t", ":", "- ", "&a ", "*a", "{", "!!python/object:os.system ", "\x00"]) + \
            base_text[at + 1:]
    yield "recursive anchor", "all: &r {children: {loop: *r}}\n"
    yield "self-aliased vars", "all:\n  vars: &v\n    x: *v\n"
    yield "alias inside its own list", "all:\n  vars:\n    l: &l [1, *l]\n"
    laughs = ["a0: &a0 [x,x,x,x,x,x,x,x,x,x]"] + [
        "a%d: &a%d [%s]" % (i, i, ",".join(["*a%d" % (i - 1)] * 10)) for i in range(1, 10)]
    yield "billion laughs", "all:\n  vars:\n" + "".join("    %s\n" % x for x in laughs)
    yield "nested 5000 deep", "all:\n  vars:\n    x: " + "[" * 5000 + "]" * 5000 + "\n"
    yield "nested 100 deep", "all:\n  vars:\n    x: " + "{a: " * 100 + "1" + "}" * 100 + "\n"
    yield "not a mapping", "- a\n- b\n"
    yield "binary", "\xff\xfe garbage"


def _correct(inv):
    for h in inv.hosts:
        assert isinstance(h.name, str)
        if h.is_plotter:
            assert all(isinstance(t, str) for t in h.tmp_dirs) and isinstance(h.k, int)
        if h.is_harvester:
            assert all(isinstance(f, str) for f in h.farm_dirs)


def test_a_corpus_of_mutated_inventories_each_loads_or_is_one_line(tmp_path):
    rng = random.Random(25)
    path = tmp_path / "inventory.yaml"
    outcomes = {"loaded": 0, "refused": 0}
    for label, text in _texts(rng, 60):
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
        try:
            inv = load_inventory(str(path))
        except InventoryError as e:
            line = str(e)
            assert "\n" not in line and line.startswith(f"{path}: ") and line != f"{path}: ", \
                (label, line)
            outcomes["refused"] += 1
        except Exception as e:          # anything else is a traceback for the user
            pytest.fail(f"{label}: {type(e).__name__}: {e}")
        else:
            _correct(inv)
            outcomes["loaded"] += 1
    assert outcomes["loaded"] >= 10 and outcomes["refused"] >= 30, outcomes


@pytest.mark.parametrize("text", ["all: &r {children: {loop: *r}}\n",
                                  "all:\n  vars: &v\n    x: *v\n",
                                  "all:\n  vars:\n    x: " + "[" * 5000 + "]" * 5000 + "\n"])
def test_recursive_and_absurd_documents_exit_2_with_one_line(tmp_path, text):
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    r = plotfleet("status", "--inventory", path, timeout=60)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith(f"plotfleet: {path}: ") and "refused" in r.stderr, r.stderr


def test_unknown_keys_are_named_once_in_one_warning_and_refused_with_strict(ssh_fleet, tmp_path):
    fleet = ssh_fleet(n_plotters=1)
    inv = fleet.write_inventory(tmp_path / "inv.yaml", buffer_mib=300, max_jobs=2)
    doc = yaml.safe_load(inv.read_text())
    doc["all"]["vars"] = {"stagger_m": 5, "ansible_become": True}
    # another tool's host and group, in the same inventory: not plotfleet's to judge
    doc["all"]["children"]["webservers"] = {"vars": {"http_port": 80},
                                            "hosts": {"web1": {"nginx_workers": 4}}}
    inv.write_text(yaml.safe_dump(doc))
    r, status = status_json(inv, "--limit", "plotter1")
    assert r.returncode == 0 and status["hosts"][0]["reachable"], r.stderr
    warnings = [line for line in r.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1, r.stderr
    for key in ("buffer_mib (host plotter1)", "max_jobs (host plotter1)", "stagger_m (all.vars)"):
        assert warnings[0].count(key) == 1, warnings[0]
    for key in ("ansible_become", "http_port", "nginx_workers"):
        assert key not in warnings[0]
    strict = plotfleet("status", "--inventory", inv, "--strict", timeout=60)
    assert strict.returncode == 2 and len(strict.stderr.strip().splitlines()) == 1, strict.stderr
    assert "buffer_mib (host plotter1)" in strict.stderr and "--strict" in strict.stderr
    assert strict.stdout == ""


def test_a_helper_var_other_values_use_is_not_unknown_an_unused_one_is(tmp_path):
    """The shipped example's `base: demo` feeds `{{ base }}/tmp0`: a farmer's
    own helper var, never flagged; the same var used by nothing is."""
    example = load_inventory(REPO / "inventory.example.yaml")
    assert example.unknown == ()
    doc = yaml.safe_load((REPO / "inventory.example.yaml").read_text())
    doc["all"]["vars"]["spare"] = "x"
    inv = tmp_path / "inv.yaml"
    inv.write_text(yaml.safe_dump(doc))
    assert dict(load_inventory(inv).unknown) == {"spare": "all.vars"}
