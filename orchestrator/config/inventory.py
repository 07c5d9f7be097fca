"""Ansible YAML inventory -> validated, immutable Hosts.

Reading follows Ansible so an existing inventory works unchanged: groups nest
to any depth and may appear in several places, variables merge
`all` < parent group < child group < host (equal depth: `ansible_group_priority`
then group name), and string values are Jinja2 templates over the host's merged
variables.  Then every plotfleet variable is checked and typed into a Host;
anything wrong is one InventoryError line naming file, host and key.

The controller-wide keys (notify, app_log, alert_*, serve_token) are read
from `all` vars only, into `Inventory.controller`; on any other group or a
host they are an error.
"""
from __future__ import annotations

import datetime
import difflib
import json
import math
import os
import re
import shlex
import string
import sys
from dataclasses import dataclass, field
import functools
from functools import lru_cache
from typing import Dict, List, Optional, Tuple

import jinja2
import jinja2.meta
import yaml
from jinja2.nativetypes import NativeEnvironment
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from agent.vocab import replot as replot_rules
from agent.vocab.plotters.chiapos import max_buckets as chiapos_max_buckets

from orchestrator.config import hostpattern
from orchestrator.config.controller import ControllerConfig
from orchestrator.core.keys import BUCKETS, CONTROLLER_KEYS, K_RULES, KEYS, Key
from orchestrator.errors import InventoryError
from orchestrator.core import plotsize
from agent.vocab.plotters import PLOTTERS, pos2
from orchestrator.core.state import Host

ROLE_GROUPS = {"plotters": "plotter", "harvesters": "harvester"}

# the tables below all come from KEYS (orchestrator/core/keys.py)
# plotfleet's own keys (without Ansible's): candidates for "did you mean"
OWN_KEYS = sorted(n for n in KEYS if not n.startswith("ansible_"))
OVERRIDE_KEYS = tuple(n for n, k in KEYS.items() if k.per_tmp_dir)
HOST_KEYS = frozenset(n for n in KEYS if n not in CONTROLLER_KEYS)
CONTROLLER_ONLY = "is a controller-wide key: set it under all.vars"
REQUIRED = {role: tuple(n for n, k in KEYS.items() if k.required and role in k.roles)
            for role in ROLE_GROUPS.values()}
# Host field -> its default when the inventory leaves it unset
DEFAULTS = {k.attr: k.default for k in KEYS.values() if k.attr}
MAX_RANGE_HOSTS = 10000     # a host range expands to at most this many names
CONNECTIONS = {"ssh": "ssh", "paramiko": "ssh", "paramiko_ssh": "ssh",
               "smart": "ssh", "local": "local"}
# templates rendered later, per job (tmp_dir, dst_dir, `q` exist only then)
LATE_TEMPLATES = ("plotter_command",)


@dataclass(frozen=True)
class Inventory:
    path: str
    hosts: Tuple[Host, ...]
    groups: Dict[str, Tuple[str, ...]] = field(default_factory=dict, hash=False)
    controller: ControllerConfig = field(default_factory=ControllerConfig, hash=False)
    unknown: Tuple[Tuple[str, str], ...] = ()     # (key, where) plotfleet does not know

    def select(self, pattern: Optional[str]) -> Tuple[Host, ...]:
        """Hosts matching an Ansible host pattern (None: all), inventory order."""
        names = set(hostpattern.select(pattern, [h.name for h in self.hosts], self.groups))
        return tuple(h for h in self.hosts if h.name in names)

    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        raise InventoryError(self.path, None, None, f"no host named {name!r}")

    @property
    def plotters(self) -> Tuple[Host, ...]:
        return tuple(h for h in self.hosts if h.is_plotter)

    @property
    def harvesters(self) -> Tuple[Host, ...]:
        return tuple(h for h in self.hosts if h.is_harvester)


def load_inventory(path, strict: bool = False) -> Inventory:
    """The inventory at `path`; keys plotfleet does not know are listed in
    `Inventory.unknown` (one warning), or with `strict` one InventoryError."""
    source = str(path)
    tree = _read_yaml(source)
    _check_shape(source, tree)
    parsed = _Parsed(source)
    for name, body in tree.items():
        parsed.group(str(name), body, parent=None if name == "all" else "all")
    groups = parsed.members()
    of_host: Dict[str, List[str]] = {h: [] for h in parsed.host_order}
    for group in sorted(groups, key=parsed.precedence):
        for h in groups[group]:
            of_host[h].append(group)
    base_dir = os.path.dirname(os.path.abspath(source))
    magic = {"groups": {g: list(hs) for g, hs in groups.items()}}
    controller = _controller(source, parsed.group_vars["all"], magic, base_dir)
    hosts = tuple(_host(source, name, parsed.merged(name, of_host[name]), of_host[name],
                        magic, base_dir) for name in parsed.host_order)
    _refuse_rules_matching_new_plots(source, hosts)
    unknown = _unknown_keys(parsed, groups)
    if strict and unknown:
        raise InventoryError(source, None, None, "not plotfleet settings (--strict): "
                             + _where_list(unknown))
    return Inventory(source, hosts, groups, controller, unknown)


def _unknown_keys(parsed, groups) -> Tuple[Tuple[str, str], ...]:
    """(key, where) of every key plotfleet does not know, in all.vars and on
    the plotters' and harvesters' hosts and groups (Ansible's own keys, and
    other tools' vars on hosts that are neither, are not plotfleet's to judge)."""
    role_hosts = {h for g in ROLE_GROUPS for h in groups.get(g, ())}
    out = {}
    used = _referenced({**{f"g{g}": v for g, v in parsed.group_vars.items()},
                        **{f"h{h}": v for h, v in parsed.host_vars.items()}})

    def note(mapping, where):
        for key in mapping:
            # a helper var that other values' templates use ({{ base }}) is meant
            if key not in KEYS and key not in used and not str(key).startswith("ansible_"):
                out.setdefault(key, where)
    note(parsed.group_vars["all"], "all.vars")
    for g in parsed.group_vars:
        if g != "all" and role_hosts & set(groups.get(g, ())):
            note(parsed.group_vars[g], f"group {g}")
    for h in parsed.host_order:
        if h in role_hosts:
            note(parsed.host_vars[h], f"host {h}")
    return tuple(out.items())


def _referenced(value) -> set:
    """Names the templates anywhere in `value` read (parsed, never rendered)."""
    if isinstance(value, dict):
        return set().union(set(), *(_referenced(v) for v in value.values()))
    if isinstance(value, (list, tuple)):
        return set().union(set(), *(_referenced(v) for v in value))
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        try:
            return set(jinja2.meta.find_undeclared_variables(_PARSER.parse(value)))
        except jinja2.TemplateError:
            return set()
    return set()


_PARSER = jinja2.Environment()


def _where_list(unknown) -> str:
    return ", ".join(f"{_one_line(k)} ({where})" for k, where in unknown)


def unknown_keys_warning(inv: "Inventory") -> Optional[str]:
    """The one warning line naming every key plotfleet does not know, or None."""
    if not inv.unknown:
        return None
    return (f"{inv.path}: not plotfleet settings, ignored (a typo? --strict refuses them): "
            + _where_list(inv.unknown))


# ---- shape: what a YAML document may be before anything reads it -----------

MAX_FILE_BYTES = 16 << 20       # an inventory of thousands of hosts is a few MB
MAX_DEPTH = 64                  # mappings and lists within each other
MAX_NODES = 500_000             # values, counting every alias where it is used


def _check_shape(source: str, tree) -> None:
    """One InventoryError for a recursive alias (a value inside itself), a
    document nested or expanding past sane limits (aliases of aliases grow
    it exponentially: "billion laughs"), before any of it is walked."""
    nodes = 0
    stack = [(tree, 0, ())]          # (value, depth, ids of the containers it is in)
    while stack:
        value, depth, inside = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise InventoryError(source, None, None, f"holds more than {MAX_NODES} values"
                                 " once its aliases are expanded: refused")
        if not isinstance(value, (dict, list)):
            continue
        if id(value) in inside:
            raise InventoryError(source, None, None, "a YAML alias refers to a mapping"
                                 " or list it is inside of (recursive anchor): refused")
        if depth >= MAX_DEPTH:
            raise InventoryError(source, None, None, f"nested more than {MAX_DEPTH}"
                                 " levels deep: refused")
        children = list(value.items()) if isinstance(value, dict) else value
        for child in children:
            if isinstance(value, dict):
                key, child = child
                if isinstance(key, (dict, list, tuple)):
                    raise InventoryError(source, None, None,
                                         f"a mapping key must be a name, got {_show(key)}")
            stack.append((child, depth + 1, inside + (id(value),)))


def _made_by(p: Host) -> str:
    level = p.compression
    return f"k{p.k} {plotsize.label(level)} plots"


def _refuse_rules_matching_new_plots(source: str, hosts) -> None:
    """A new plot must never be replaced by the next one: a replot rule of
    any harvester that could match what any plotter of the inventory makes
    now is one line naming the rule and the plotter."""
    plotters = [h for h in hosts if h.is_plotter]
    for h in hosts:
        for i, rule in enumerate(h.replot if h.is_harvester else (), 1):
            for p in plotters:
                level = p.compression
                fmt = "pos2" if p.plotter == "pos2" else "v1"
                pool = "contract" if p.pool_contract else "solo" if p.pool_key else None
                args = (p.k, level.level if level else 0, level.format if level else None,
                        fmt, pool)
                if replot_rules.made_now(rule, *args):
                    raise InventoryError(
                        source, h.name, "replot",
                        f"rule {i} ({replot_rules.describe(rule)}) matches the plots plotter "
                        f"{p.name} makes now ({_made_by(p)}): a new plot would be replaced "
                        f"by the next one")
                # a glob over every farm dir: a new plot could land nowhere
                # (it is never sent where it is replaceable)
                if "glob" in rule and "made_before" not in rule and h.farm_dirs and \
                        replot_rules.made_now({k: v for k, v in rule.items() if k != "glob"},
                                              *args) and \
                        all(replot_rules.glob_matches(rule["glob"], d) for d in h.farm_dirs):
                    raise InventoryError(
                        source, h.name, "replot",
                        f"rule {i} ({replot_rules.describe(rule)}) matches the plots plotter "
                        f"{p.name} makes now ({_made_by(p)}) in every farm dir of {h.name}: "
                        f"a new plot could go nowhere")


# ---- reading ---------------------------------------------------------------

class _Unsafe(str):
    """Ansible's `!unsafe`: a string never templated."""


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!unsafe", lambda loader, node: _Unsafe(loader.construct_scalar(node)))


def _read_yaml(source: str) -> dict:
    try:
        if os.path.getsize(source) > MAX_FILE_BYTES:
            raise InventoryError(source, None, None, f"is {os.path.getsize(source)} bytes,"
                                 f" more than {MAX_FILE_BYTES}: refused")
        with open(source, encoding="utf-8") as f:
            tree = yaml.load(f, Loader=_Loader)
    except RecursionError:
        raise InventoryError(source, None, None, "nested too deep to read: refused") from None
    except UnicodeDecodeError as e:
        raise InventoryError(source, None, None, f"is not UTF-8 text ({e.reason} at byte"
                                                 f" {e.start})") from None
    except FileNotFoundError:
        raise InventoryError(source, None, None, "not found") from None
    except OSError as e:
        raise InventoryError(source, None, None, e.strerror or str(e)) from None
    except yaml.MarkedYAMLError as e:
        line = f"line {e.problem_mark.line + 1}: " if e.problem_mark else ""
        raise InventoryError(source, None, None,
                             f"{line}{e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise InventoryError(source, None, None, _one_line(str(e))) from None
    if not isinstance(tree, dict):
        raise InventoryError(source, None, None,
                             f"top level must be a mapping of groups, got {_show(tree)}")
    return tree


class _Parsed:
    """Groups and hosts as written: vars, parents, direct hosts, first-seen order."""

    def __init__(self, source):
        self.source = source
        self.group_vars: Dict[str, dict] = {"all": {}}
        self.parents: Dict[str, set] = {"all": set()}
        self.direct: Dict[str, List[str]] = {"all": []}
        self.host_vars: Dict[str, dict] = {}
        self.host_order: List[str] = []

    def _err(self, group, problem):
        return InventoryError(self.source, None, None, f"group {group}: {problem}")

    def group(self, name, body, parent):
        self.group_vars.setdefault(name, {})
        self.direct.setdefault(name, [])
        self.parents.setdefault(name, set())
        if parent:
            self.parents[name].add(parent)
        if body is None:
            return
        if not isinstance(body, dict):
            raise self._err(name, f"must be a mapping of hosts/vars/children, got {_show(body)}")
        for section, value in body.items():
            if section not in ("hosts", "vars", "children"):
                raise self._err(name, f"unknown section {section!r}"
                                      " (expected hosts, vars or children)")
            if value is None:
                continue
            if not isinstance(value, dict):
                raise self._err(name, f"{section} must be a mapping, got {_show(value)}")
            if section == "vars":
                for key in value:
                    if name != "all" and key in CONTROLLER_KEYS:
                        raise self._err(name, f"{key} {CONTROLLER_ONLY}")
                self.group_vars[name].update(self._vars(name, value))
            elif section == "children":
                for child, child_body in value.items():
                    self.group(str(child), child_body, parent=name)
            else:
                for pattern, hvars in value.items():
                    if hvars is not None and not isinstance(hvars, dict):
                        raise self._err(name, f"host {pattern} must have a mapping"
                                              f" of vars, got {_show(hvars)}")
                    try:
                        names = _expand(str(pattern))
                    except ValueError as e:
                        raise self._err(name, str(e)) from None
                    for key in hvars or ():
                        if key in CONTROLLER_KEYS:
                            raise InventoryError(self.source, str(pattern), key, CONTROLLER_ONLY)
                    for host in names:
                        self._add_host(name, host, self._vars(name, hvars or {}))

    def _vars(self, group, mapping) -> dict:
        for key in mapping:
            if not isinstance(key, str):
                raise self._err(group, f"variable names must be strings, got {_show(key)}")
        return mapping

    def _add_host(self, group, host, hvars):
        if host not in self.host_vars:
            self.host_vars[host] = {}
            self.host_order.append(host)
        self.host_vars[host].update(hvars)
        if host not in self.direct[group]:
            self.direct[group].append(host)

    def ancestors(self, group, seen=()) -> set:
        if group in seen:
            raise self._err(group, "is its own ancestor")
        out = {group}
        for p in self.parents[group]:
            out |= self.ancestors(p, seen + (group,))
        return out

    def depth(self, group) -> int:
        """Longest path from `all`, as Ansible computes group depth."""
        return max((self.depth(p) + 1 for p in self.parents.get(group, ("all",))), default=0)

    def precedence(self, group):
        """Ansible's merge order: depth, then ansible_group_priority, then name."""
        prio = self.group_vars.get(group, {}).get(
            "ansible_group_priority", KEYS["ansible_group_priority"].default)
        if isinstance(prio, bool) or not isinstance(prio, int):
            raise self._err(group, f"ansible_group_priority must be an integer, got {_show(prio)}")
        return (self.depth(group), prio, group)

    def merged(self, host, groups_in_order) -> dict:
        merged: dict = {}
        for group in groups_in_order:
            merged.update(self.group_vars.get(group, {}))
        merged.update(self.host_vars[host])
        return merged

    def members(self) -> Dict[str, Tuple[str, ...]]:
        """group -> every host in it or in its descendants, in inventory order."""
        found: Dict[str, set] = {g: set() for g in self.group_vars}
        for group, hosts in self.direct.items():
            for g in self.ancestors(group):
                found[g].update(hosts)
        found["all"] = set(self.host_order)
        grouped = {h for g, hs in found.items() if g not in ("all", "ungrouped") for h in hs}
        found["ungrouped"] = set(self.host_order) - grouped
        return {g: tuple(h for h in self.host_order if h in hs) for g, hs in found.items()}


_RANGE = re.compile(r"\[([^\]:]*):([^\]:]+)(?::(\d+))?\]")


def _expand(pattern: str) -> List[str]:
    """Ansible host ranges: `web[01:03]` -> web01, web02, web03; `[a:c]` too.

    At most MAX_RANGE_HOSTS names: `[1:99999999999]` is a typo, not a fleet
    (ValueError, which the caller turns into one line)."""
    m = _RANGE.search(pattern)
    if not m:
        return [pattern]
    beg, end, step = m.group(1) or "0", m.group(2), int(m.group(3) or 1)
    if step < 1:
        raise ValueError(f"host range {pattern} has step {step}")
    if beg.isdigit() and end.isdigit():
        width = len(beg) if beg.startswith("0") and len(beg) > 1 else 0
        numbers = range(int(beg), int(end) + 1, step)
        if len(numbers) > MAX_RANGE_HOSTS:
            raise ValueError(f"host range {pattern} makes {len(numbers)} hosts"
                             f" (at most {MAX_RANGE_HOSTS})")
        seq = [str(i).zfill(width) for i in numbers]
    else:
        letters = string.ascii_letters
        seq = list(letters[letters.index(beg):letters.index(end) + 1:step]) \
            if beg in letters and end in letters else [m.group(0)]
    head, tail = pattern[:m.start()], pattern[m.end():]
    rest = _expand(tail)
    if len(seq) * len(rest) > MAX_RANGE_HOSTS:
        raise ValueError(f"host range {pattern} makes {len(seq) * len(rest)} hosts"
                         f" (at most {MAX_RANGE_HOSTS})")
    return [head + s + t for s in seq for t in rest]


# ---- merging and templating ---------------------------------------------------

MAX_RENDERED = 1 << 20      # a value longer than this is a mistake (or an attack)


class _SandboxedNative(SandboxedEnvironment, NativeEnvironment):
    """Ansible's templating, native types kept (`{{ 4 }}` is the int 4), in
    jinja2's sandbox: an inventory is data, and one written from a host's
    files (import-plotman) must never run code here.  A repeat or a power
    that would build a value past MAX_RENDERED is refused before it is built."""

    intercepted_binops = frozenset(("*", "**"))

    def call_binop(self, context, operator, left, right):
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, bytes, list, tuple)) and isinstance(n, int) \
                        and len(seq) * n > MAX_RENDERED:
                    raise SecurityError(f"a value of {len(seq)} x {n} is over the"
                                        f" {MAX_RENDERED} limit")
        if operator == "**" and isinstance(left, (int, float)) and isinstance(right, (int, float)) \
                and abs(right) > 64 and abs(left) > 1:
            raise SecurityError(f"{left} ** {right} is over the limit")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (jinja2's own spelling)
        # 'x'.ljust(10**10), .center, .zfill...: a str/bytes/list method sized by a number
        if getattr(__obj, "__self__", None).__class__ in (str, bytes, list):
            _size_ok(args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)


def _size_ok(args, kwargs):
    for n in list(args) + list(kwargs.values()):
        if isinstance(n, int) and not isinstance(n, bool) and n > MAX_RENDERED:
            raise SecurityError(f"a size of {n} is over the {MAX_RENDERED} limit")


def _sized(f):
    """A filter that pads or repeats by a number, refusing absurd sizes."""
    def guarded(*args, **kwargs):
        _size_ok(args[1:], kwargs)
        return f(*args, **kwargs)
    return guarded


_ENV = _SandboxedNative(undefined=jinja2.StrictUndefined)
for _name in ("center", "indent", "wordwrap", "truncate"):
    _ENV.filters[_name] = functools.update_wrapper(_sized(_ENV.filters[_name]),
                                                   _ENV.filters[_name])


@lru_cache(maxsize=None)
def _compile(text: str):
    return _ENV.from_string(text), jinja2.meta.find_undeclared_variables(_ENV.parse(text))


def _is_template(value) -> bool:
    return isinstance(value, str) and not isinstance(value, _Unsafe) \
        and any(m in value for m in ("{{", "{%", "{#"))


def _templated(raw: dict, magic: dict, source: str, host: Optional[str],
               strict=HOST_KEYS) -> dict:
    """Render every value; plotfleet's keys (`strict`, and what they use) must
    render, others (Ansible facts, lookups) stay as written if they cannot."""
    done: dict = {}
    failed: Dict[str, InventoryError] = {}

    def resolve(key, stack):
        if key in done:
            return done[key]
        if key in failed:
            raise failed[key]
        if key in stack:
            raise InventoryError(source, host, key, "refers to itself: "
                                 + " -> ".join(stack[stack.index(key):] + (key,)))
        try:
            done[key] = raw[key] if key in LATE_TEMPLATES else render(raw[key], stack + (key,))
        except InventoryError as e:
            failed[key] = e
            raise
        return done[key]

    def render(value, stack):
        if isinstance(value, list):
            return [render(v, stack) for v in value]
        if isinstance(value, dict):
            return {k: render(v, stack) for k, v in value.items()}
        if not _is_template(value):
            return value
        try:
            template, names = _compile(value)
            context = dict(magic)
            context.update({n: resolve(n, stack) for n in names if n in raw})
            out = template.render(context)
            if isinstance(out, jinja2.Undefined):   # `{{ nope }}` alone: native
                str(out)                            # rendering returns it unraised
            return out
        except InventoryError:
            raise
        except SecurityError as e:
            raise InventoryError(source, host, stack[-1],
                                 f"template {_show(value)} is refused: {_one_line(str(e))}"
                                 ) from None
        except Exception as e:      # jinja2's errors, or the template's own (1/0)
            raise InventoryError(source, host, stack[-1], f"template {_show(value)}: "
                                 f"{_one_line(str(e)) or type(e).__name__}") from None

    for key in sorted(raw, key=lambda k: k not in strict):
        try:
            resolve(key, ())
        except InventoryError:
            if key in strict:
                raise
            done[key] = raw[key]
    return {k: done[k] for k in raw}


# ---- validation -----------------------------------------------------------------

def _host(source: str, name: str, raw: dict, groups: List[str], magic: dict,
          base_dir: str) -> Host:
    group_names = sorted(g for g in groups if g not in ("all", "ungrouped"))
    magic = dict(magic, inventory_hostname=name, group_names=group_names,
                 inventory_hostname_short=name.split(".")[0])
    v = _templated(raw, magic, source, name)
    roles = tuple(role for g, role in ROLE_GROUPS.items() if g in group_names)

    def err(key, problem):
        return InventoryError(source, name, key, problem)

    for key in v:
        if key not in KEYS and not key.startswith("ansible_"):
            close = difflib.get_close_matches(key, OWN_KEYS, n=1, cutoff=0.8)
            if close:
                raise err(key, f"is not a plotfleet setting: did you mean {close[0]}?")

    check = _Check(err, base_dir)
    out: dict = {}
    implied: dict = {}          # from ssh args; explicit settings win
    for key, value in v.items():
        if key not in HOST_KEYS:      # not plotfleet's, or the controller's (all.vars)
            continue
        typed = check(KEYS[key], value)
        if KEYS[key].kind == "ssh_args":
            implied.update(typed)
        elif KEYS[key].attr:
            out[KEYS[key].attr] = typed
    out = {f: value for f, value in out.items() if value is not None}
    for f, value in implied.items():
        out.setdefault(f, check.path(KEYS[f], value) if f == "known_hosts_file" else value)
    out.setdefault("address", name)
    if out.get("python", "").startswith("auto"):
        out["python"] = "python3"       # Ansible's interpreter discovery
    if "python" in out:
        # a command, read with shell rules: `qemu-aarch64 /opt/py/bin/python3`
        # is two words; an unbalanced quote must fail here, not on the host
        try:
            words = shlex.split(out["python"])
        except ValueError as e:
            raise err("ansible_python_interpreter",
                      f"cannot be parsed ({e}): {_show(out['python'])}") from None
        if not words:
            raise err("ansible_python_interpreter", "is empty")
    if out.get("check_command") is not None:
        # the agent splits it like a shell would: a broken one fails here
        try:
            words = shlex.split(out["check_command"])
        except ValueError as e:
            raise err("check_command", f"cannot be parsed ({e}): "
                                       f"{_show(out['check_command'])}") from None
        if not words or "{path}" not in out["check_command"]:
            raise err("check_command", "must name the plot as {path}, e.g. "
                                       "'bladebit_cuda check -n {n} {path}'")
    if out.get("connection") == "local" and "python" not in out:
        # this machine: the controller's own interpreter (its venv has chiapos
        # and psutil), as Ansible's `ansible_playbook_python` for localhost
        out["python"] = shlex.quote(sys.executable)

    plotter, k = out.get("plotter", DEFAULTS["plotter"]), out.get("k", DEFAULTS["k"])
    least, most, why = K_RULES[plotter]
    if "plotter" in roles and not least <= k <= (most or k):
        raise err("k", f"{k} is not allowed for plotter {plotter} ({why})")
    if "plotter" in roles:
        _check_buckets(out, plotter, k, err)
        _check_plotter_options(out, plotter, err)
    for overrides in out.get("tmp_overrides", {}).items():
        if overrides[0] not in out.get("tmp_dirs", ()):
            raise err("tmp_overrides", f"names {overrides[0]} which is not in tmp_dirs")
    if "plotter" in roles and not out.get("dst_dirs") and out.get("tmp_dirs"):
        # plotman's fallback when dst is not set: tmp2, else the tmp dirs
        # (the scheduler then makes each job's tmp dir its dst)
        out["dst_dirs"] = (out["tmp2_dir"],) if out.get("tmp2_dir") else tuple(out["tmp_dirs"])
    for role in roles:
        for key in REQUIRED[role]:
            if not out.get(KEYS[key].attr):
                raise err(key, f"is required for a {role}")
    for f, default in DEFAULTS.items():     # unset keys: the table's defaults
        if default is not None and f not in out:
            out[f] = dict(default) if isinstance(default, dict) else default
    return Host(name=name, groups=frozenset(group_names), roles=roles, vars=v,
                source=source, inventory_dir=base_dir, **out)


def _controller(source: str, all_vars: dict, magic: dict, base_dir: str) -> ControllerConfig:
    """The controller-wide keys, from all.vars (templated over all.vars), checked."""
    try:
        v = _templated(all_vars, magic, source, None, strict=frozenset(CONTROLLER_KEYS))
    except InventoryError as e:     # name where: all.vars has no host
        raise InventoryError(source, None, None,
                             "group all: " + str(e)[len(source) + 2:]) from None

    def err(key, problem):
        return InventoryError(source, None, None, f"group all: {key} {problem}")

    check = _Check(err, base_dir)
    out = {key: check(KEYS[key], v[key]) for key in CONTROLLER_KEYS
           if v.get(key) is not None}
    return ControllerConfig(**out)


class _Check:
    """A value checked and typed by its Key's kind (one method per kind),
    or one line naming the key."""

    def __init__(self, err, base_dir):
        self.err, self.base_dir = err, base_dir

    def __call__(self, key: Key, value):
        return getattr(self, key.kind)(key, value)

    def path(self, key, p):
        if not isinstance(p, str) or not p:
            raise self.err(key.name, f"must be a path, got {_show(p)}")
        if key.kind == "controller_path":
            p = os.path.expanduser(p)
        if p.startswith("~"):
            return p
        return os.path.normpath(os.path.join(self.base_dir, p))

    def path_list(self, key, value):
        if not isinstance(value, list):
            raise self.err(key.name, f"must be a list of paths, got {_show(value)}")
        paths = tuple(self.path(key, p) for p in value)
        twice = next((p for i, p in enumerate(paths) if p in paths[:i]), None)
        if twice is not None:
            raise self.err(key.name, f"lists {twice} twice")
        return paths

    def device_list(self, key, value):
        if (not isinstance(value, list) or not value
                or any(not isinstance(d, int) or isinstance(d, bool) or d < 0 for d in value)):
            raise self.err(key.name, f"must be a list of GPU numbers (0, 1, ...), got {_show(value)}")
        if len(set(value)) != len(value):
            raise self.err(key.name, f"lists a GPU twice: {_show(value)}")
        return tuple(value)

    def remote_path(self, key, value):
        return None if value is None else self.path(key, value)

    controller_path = remote_path

    def int(self, key, value):
        whole = key.kind in ("int", "all_int")
        ok = isinstance(value, int) if whole else isinstance(value, (int, float))
        if not ok or isinstance(value, bool):
            raise self.err(key.name, f"must be {'an integer' if whole else 'a number'},"
                                     f" got {_show(value)}")
        if not math.isfinite(value):
            raise self.err(key.name, f"must be a finite number, got {value}")
        if key.minimum is not None and value < key.minimum:
            raise self.err(key.name, f"must be at least {key.minimum}, got {_show(value)}")
        if key.maximum is not None and value > key.maximum:
            raise self.err(key.name, f"must be at most {key.maximum}, got {_show(value)}")
        return int(value) if whole else float(value)

    float = int

    def choice(self, key, value):
        if value not in key.choices:
            raise self.err(key.name, f"must be one of {', '.join(key.choices)},"
                                     f" got {_show(value)}")
        return value

    def str(self, key, value):
        if value is not None and not isinstance(value, str):
            raise self.err(key.name, f"must be a string, got {_show(value)}")
        return value

    def bool(self, key, value):
        if not isinstance(value, bool):
            raise self.err(key.name, f"must be true or false, got {_show(value)}")
        return value

    def port(self, key, value):
        if isinstance(value, bool) or not isinstance(value, int) \
                or not key.minimum <= value <= key.maximum:
            raise self.err(key.name, f"must be a port number ({key.minimum}-{key.maximum}),"
                                     f" got {_show(value)}")
        return value

    def connection(self, key, value):
        conn = CONNECTIONS.get(str(value).rsplit(".", 1)[-1])
        if conn not in key.choices:
            raise self.err(key.name, f"must be {' or '.join(key.choices)}, got {_show(value)}")
        return conn

    def overrides(self, key, value):
        return _overrides(value, self.err, lambda p: self.path(key, p))

    def ssh_args(self, key, value):
        try:
            return _ssh_options(value)
        except ValueError as e:
            raise self.err(key.name, f"cannot be parsed ({e}): {_show(value)}") from None

    def group_int(self, key, value):
        return None         # a group's setting, checked where groups merge

    # the controller-wide keys (all.vars only)
    all_int = all_float = int

    def all_str(self, key, value):
        if not isinstance(value, str) or not value:
            raise self.err(key.name, f"must be a non-empty string, got {_show(value)}")
        return str(value)

    def all_date(self, key, value):
        d = replot_rules._date(value)
        if d is None:
            raise self.err(key.name, f"must be a date YYYY-MM-DD, got {_show(value)}")
        return d

    def replot_rules(self, key, value):
        if value is None:
            return ()               # `replot:` left empty: nothing is replaceable
        if not isinstance(value, list):
            raise self.err(key.name, f"must be a list of rules, got {_show(value)}")
        out = []
        for i, rule in enumerate(value, 1):
            typed, why = replot_rules.normalise(rule, datetime.date.today())
            if why:
                raise self.err(key.name, f"rule {i}: {why}")
            out.append(typed)
        return tuple(out)

    def all_urls(self, key, value):
        urls = [value] if isinstance(value, str) else value
        if not isinstance(urls, list):
            raise self.err(key.name, f"must be an apprise URL or a list of them,"
                                     f" got {_show(value)}")
        for url in urls:
            if not isinstance(url, str) or "://" not in url:
                raise self.err(key.name, f"must be apprise URLs (like json://host/path),"
                                         f" got {_show(url)}")
        return tuple(str(u) for u in urls)

    def all_log(self, key, value):
        if value is False:
            return None
        if not isinstance(value, str) or not value:
            raise self.err(key.name, f"must be a path or false, got {_show(value)}")
        return os.path.normpath(os.path.join(self.base_dir, os.path.expanduser(value)))


# plotter-specific keys -> the plotters that take them (from the PLOTTERS table)
_OPTION_PLOTTERS = {opt: tuple(n for n, p in PLOTTERS.items() if opt in p.options)
                    for p in PLOTTERS.values() for opt in p.options}


def _check_plotter_options(out: dict, plotter: str, err) -> None:
    """compress, executable and the plotter-specific keys fit the plotter,
    as the plotter itself would refuse them (bladebit's main.cpp and
    CudaPlotter.cu, Gigahorse's usage), or one line naming the key."""
    p = PLOTTERS[plotter]
    for opt, takers in _OPTION_PLOTTERS.items():
        if out.get(opt) is not None and out.get(opt) is not False and plotter not in takers:
            raise err(opt, f"is for plotter {' or '.join(takers)}, not {plotter}")
    mode = out.get("bladebit_mode", DEFAULTS["bladebit_mode"])
    if plotter == "gigahorse":
        out.setdefault("compress", 1)           # cuda_plot's own default (-C 1)
    level = out.get("compress", 0)
    if level and p.compress_format is None:
        raise err("compress", f"plotter {plotter} makes no compressed plots, got {level}")
    if p.compress_format is not None:
        problem = plotsize.level_problem(p.compress_format, level)
        if problem:
            raise err("compress", problem)
    if plotter == "bladebit":
        if level and mode == "diskplot":
            raise err("compress", "bladebit diskplot makes no compressed plots "
                                  "(use bladebit_mode cudaplot or ramplot)")
        if level > 7 and mode == "ramplot":
            raise err("compress", f"bladebit ramplot makes levels up to 7, got {level}")
        disk = [m for m in ("disk_128", "disk_16") if out.get(m)]
        if disk and mode != "cudaplot":
            raise err(disk[0], f"is for bladebit_mode cudaplot, not {mode}")
        if len(disk) == 2:
            raise err("disk_16", "and disk_128 cannot both be set")
        if disk and not level:
            raise err(disk[0], "needs compress 1 or more (bladebit cannot plot "
                               "uncompressed plots in that mode)")
        for gpu in ("cuda_device", "cuda_devices"):
            if out.get(gpu) not in (None, ()) and mode != "cudaplot":
                raise err(gpu, f"is for bladebit_mode cudaplot, not {mode}")
    if out.get("cuda_device") is not None and out.get("cuda_devices"):
        raise err("cuda_devices", "and cuda_device cannot both be set (cuda_device is the "
                                  "one-GPU form)")
    if plotter == "pos2":       # chia_rs refuses the others: one line at load instead
        strength = out.get("strength", DEFAULTS["strength"])
        problem = pos2.problem(out.get("k", DEFAULTS["k"]), strength)
        if problem:
            raise err(*problem)
    exe = out.get("executable")
    if exe is not None:
        if p.executable is None:
            raise err("executable", f"plotter {plotter} runs in the agent's own launcher")
        if not exe.strip():
            raise err("executable", "is empty")


def _check_buckets(out: dict, plotter: str, k: int, err) -> None:
    """Buckets the plotter can plot with, or one line naming the key.

    Unset, chiapos takes the most its k allows (chia's 128 from k 20 on:
    128 at k 18 dies with "Stripe size too large", 64 aborts with
    "Triggering bucket too early"); the others keep 128."""
    if plotter not in BUCKETS:
        return          # takes no buckets (gigahorse)
    least, most, why = BUCKETS[plotter]
    if plotter == "chiapos":
        most = chiapos_max_buckets(k)
        if most < least:
            raise err("k", f"{k} is too small for chiapos (no bucket count works)")
        if "buckets" not in out:
            out["buckets"] = most
        if most < 128:
            why = f"chiapos at k {k} takes 16 to {most} buckets"
    b = out.get("buckets", DEFAULTS["buckets"])
    if plotter == "bladebit" and out.get("bladebit_mode", DEFAULTS["bladebit_mode"]) != "diskplot":
        return          # ramplot and cudaplot take no buckets
    if not least <= b <= most:
        raise err("buckets", f"{b} is not allowed for plotter {plotter} ({why})")


def _overrides(value, err, path) -> dict:
    if not isinstance(value, dict):
        raise err("tmp_overrides", f"must be a mapping of tmp dir -> settings, got {_show(value)}")
    out = {}
    for tmp, settings in value.items():
        if not isinstance(settings, dict):
            raise err("tmp_overrides", f"{tmp} must be a mapping of settings, got {_show(settings)}")
        checked = {}
        for key, n in settings.items():
            if key not in OVERRIDE_KEYS:
                close = difflib.get_close_matches(str(key), OVERRIDE_KEYS, n=1, cutoff=0.6)
                hint = f": did you mean {close[0]}?" if close else ""
                raise err("tmp_overrides", f"{tmp}: {key} is not a tmp dir setting{hint}")
            least = KEYS[key].minimum
            if isinstance(n, bool) or not isinstance(n, int) or n < least:
                raise err("tmp_overrides", f"{tmp}: {key} must be an integer"
                                           f" >= {least}, got {_show(n)}")
            checked[key] = n
        out[path(tmp)] = checked
    return out


def _ssh_options(args) -> dict:
    """What ssh arguments say about host keys (`-o X=Y`, `-oX=Y`, `-o 'X Y'`)."""
    if args is None:
        return {}
    words = shlex.split(str(args))
    options = [w[2:] for w in words if w.startswith("-o") and len(w) > 2]
    options += [b for a, b in zip(words, words[1:]) if a == "-o"]
    options += ["proxyjump " + (b if a == "-J" else a[2:])
                for a, b in zip(words, words[1:] + [""]) if a.startswith("-J")]
    out = {}
    for opt in options:
        key, _, val = opt.replace("=", " ", 1).partition(" ")
        key, val = key.strip().lower(), val.strip()
        if key == "userknownhostsfile" and val:
            out["known_hosts_file"] = val.split()[0]
        elif key == "stricthostkeychecking" and val.lower() in ("no", "off"):
            out["host_key_checking"] = False
        elif key == "proxyjump" and val:
            out.setdefault("proxy_jump", val.split()[0])     # ssh: the first one given wins
    return out


def _show(value) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return _one_line(text if len(text) <= 60 else text[:57] + "...")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
