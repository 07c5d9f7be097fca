"""The key table (orchestrator/core/keys.py) is what validation enforces,
what Host defaults to, and what `plotfleet keys` prints."""
import ast
import dataclasses
import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from orchestrator.config.inventory import load_inventory
from orchestrator.core.keys import KEYS, KINDS, limits
from orchestrator.core.state import PARTS, Host
from orchestrator.errors import InventoryError
from tests.cli import plotfleet

REPO = Path(__file__).resolve().parent.parent
NOT_FROM_INVENTORY = {"name", "groups", "roles", "vars", "source", "inventory_dir"}
NUMERIC = [k for k in KEYS.values() if k.kind in ("int", "float", "port")]


def load_one(tmp_path, **settings):
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {"h1": settings or None}}}))
    return load_inventory(path).host("h1")


def refusal(tmp_path, **settings):
    """The one-line error of a host h1 with these settings, without `file: host h1: `."""
    with pytest.raises(InventoryError) as e:
        load_one(tmp_path, **settings)
    msg, prefix = str(e.value), f"{tmp_path / 'inventory.yaml'}: host h1: "
    assert "\n" not in msg and msg.startswith(prefix), msg
    return msg[len(prefix):]


# every field of every part of Host: what the inventory sets
PART_FIELDS = {f: spec for cls in PARTS.values() for f, spec in cls.__dataclass_fields__.items()}


def host_default(f):
    spec = PART_FIELDS[f]
    return spec.default_factory() if spec.default is dataclasses.MISSING else spec.default


def test_host_is_its_parts_and_nothing_else():
    assert set(Host.__dataclass_fields__) == NOT_FROM_INVENTORY | set(PARTS)
    parts = [set(cls.__dataclass_fields__) for cls in PARTS.values()]
    assert sum(map(len, parts)) == len(set().union(*parts))     # each field in one part


def test_every_host_field_from_the_inventory_has_exactly_one_key():
    attrs = Counter(k.attr for k in KEYS.values() if k.attr)
    assert [f for f, n in attrs.items() if n > 1] == []
    assert set(attrs) == set(PART_FIELDS)
    for k in KEYS.values():
        assert k.kind in KINDS and k.doc and "\n" not in k.doc, k.name


def test_table_defaults_are_host_defaults():
    for k in KEYS.values():
        if k.attr and k.name != "ansible_host":     # unset: the host's own name
            assert k.default == host_default(k.attr), k.name


def test_an_empty_host_gets_the_table_defaults(tmp_path):
    h = load_one(tmp_path)
    assert h.address == "h1"
    for k in KEYS.values():
        if k.attr and k.name != "ansible_host":
            assert getattr(h, k.attr) == k.default, k.name


@pytest.mark.parametrize("key", NUMERIC, ids=lambda k: k.name)
def test_numeric_limits_are_what_validation_enforces(tmp_path, key):
    load_one(tmp_path, **{key.name: key.minimum})         # the limits themselves pass
    if key.maximum is not None:
        load_one(tmp_path, **{key.name: key.maximum})
    below = key.minimum - 1 if key.kind != "float" else key.minimum / 2 or -1
    msg = refusal(tmp_path, **{key.name: below})
    assert msg.startswith(f"{key.name} must be ")
    if key.kind == "port":
        assert msg == f"{key.name} must be a port number ({key.minimum}-{key.maximum}), got {below}"
    else:
        assert msg == f"{key.name} must be at least {key.minimum}, got {below}"
    if key.maximum is not None:
        assert refusal(tmp_path, **{key.name: key.maximum + 1}).startswith(f"{key.name} must be")


@pytest.mark.parametrize("key", [k for k in KEYS.values() if k.choices], ids=lambda k: k.name)
def test_choices_are_what_validation_enforces(tmp_path, key):
    for choice in key.choices:
        assert getattr(load_one(tmp_path, **{key.name: choice}), key.attr) == choice
    msg = refusal(tmp_path, **{key.name: "nonsense"})
    assert msg.startswith(f"{key.name} must be ") and all(c in msg for c in key.choices)


@pytest.mark.parametrize("key", [k for k in KEYS.values() if k.kind not in ("ssh_args", "group_int")],
                         ids=lambda k: k.name)
def test_a_wrong_type_is_one_line_naming_the_key(tmp_path, key):
    assert refusal(tmp_path, **{key.name: {"x": [1]}}).startswith(f"{key.name} ")


def test_every_key_an_error_names_is_in_the_table():
    named = set()
    for path in ("orchestrator/config/inventory.py", "orchestrator/core/plotcmd.py"):
        for node in ast.walk(ast.parse((REPO / path).read_text())):
            if not isinstance(node, ast.Call):
                continue
            fn = getattr(node.func, "id", getattr(node.func, "attr", None))
            at = {"err": 0, "InventoryError": 2}.get(fn)
            if at is not None and len(node.args) > at and isinstance(node.args[at], ast.Constant):
                named.add(node.args[at].value)
    assert named and named - {None} <= set(KEYS), named - set(KEYS)


def test_keys_task_prints_every_key():
    r = plotfleet("keys")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for k in KEYS.values():
        assert f" {k.name} " in out, k.name
    assert "1..65535" in out and "chia | madmax | bladebit | chiapos" in out


def test_keys_json_lists_the_table():
    r = plotfleet("keys", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [row["name"] for row in rows] == list(KEYS)
    for row in rows:
        k = KEYS[row["name"]]
        assert (row["type"], row["doc"], row["minimum"], row["maximum"], row["field"]) == (
            k.kind, k.doc, k.minimum, k.maximum, k.attr)
        assert row["default"] == json.loads(json.dumps(k.default))
        assert row["limits"] == limits(k)
