"""plotman.yaml -> plotfleet inventory variables (`plotfleet import-plotman`).

Pure: `translate(host, text)` reads the text of one host's plotman.yaml
(plotman's config version 2, as plotman 0.5 reads it) and returns the
inventory variables with the same meaning, and every setting it could not
carry over, each with the reason.  `inventory_yaml` renders the hosts as
one inventory.  Reading the files (over the hosts' SSH sessions) is the
caller's.

What maps to what (plotman's key -> plotfleet's):
  directories.tmp / tmp2 / dst     -> tmp_dirs / tmp2_dir / dst_dirs (dst may
                                      stay unset: both fall back to tmp2, else tmp)
  logging.plots                    -> log_dir (plotman's default when unset:
                                      ~/.local/share/plotman/plots, so the logs of
                                      jobs plotman started are read too)
  scheduling.*                     -> the same keys, same meaning; tmp_overrides too
  plotting.farmer_pk / pool_pk / pool_contract_address
                                   -> farmer_key / pool_key / pool_contract
  plotting.type + its section      -> plotter; chia: k, n_threads -> threads,
                                      n_buckets -> buckets, job_buffer -> buffer;
                                      madmax: n_threads, n_buckets; bladebit: threads
  archiving local_rsync / rsyncd   -> transfer: local / ssh (the drives themselves
                                      are harvesters' farm_dirs: listed to add)
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from orchestrator.core.keys import KEYS
from orchestrator.core.state import Host

PLOTMAN_LOG_DIR = "~/.local/share/plotman/plots"      # appdirs.user_data_dir + /plots
OVERRIDE_KEYS = ("tmpdir_stagger_phase_major", "tmpdir_stagger_phase_minor",
                 "tmpdir_stagger_phase_limit", "tmpdir_max_jobs")
SCHEDULING = ("tmpdir_stagger_phase_major", "tmpdir_stagger_phase_minor",
              "tmpdir_stagger_phase_limit", "tmpdir_max_jobs", "global_max_jobs",
              "global_stagger_m", "polling_time_s")
# plotman's plotter option -> plotfleet key, per plotting.type; None: no key
# here (translated only when some plotfleet key of a listed name exists)
OPTIONS = {
    "chia": {"k": ("k",), "n_threads": ("threads",), "n_buckets": ("buckets",),
             "job_buffer": ("buffer",), "executable": ("executable",), "e": (), "x": ()},
    "madmax": {"n_threads": ("threads",), "n_buckets": ("buckets",),
               "n_buckets3": ("n_buckets3", "buckets3"), "n_rmulti2": ("n_rmulti2", "rmulti2"),
               "executable": ("executable",)},
    "bladebit": {"threads": ("threads",), "no_numa": ("no_numa",),
                 "executable": ("executable",)},
}
# plotman's defaults: an option at its default needs no plotfleet key
PLOTTER_DEFAULTS = {
    "chia": {"executable": "chia", "e": False, "x": False},
    "madmax": {"executable": "chia_plot", "n_buckets3": 256, "n_rmulti2": 1},
    "bladebit": {"executable": "bladebit", "no_numa": False, "threads": None},
}
# the archiving targets' default rsync options (plotman's target_definitions.yaml)
RSYNC_DEFAULTS = {
    "local_rsync": "--preallocate --remove-source-files --skip-compress plot --whole-file",
    "rsyncd": "--bwlimit=80000 --preallocate --remove-source-files --skip-compress plot "
              "--whole-file",
}
NOT_NEEDED = {
    "user_interface": "plotman's curses UI setting: `plotfleet dashboard` sizes itself",
    "commands": "plotman interactive's autostart: `plotfleet dashboard --plot` plots, "
                "`plotfleet dashboard` only watches",
    "logging.transfers": "plotfleet keeps its own transfer records on each plotter",
    "logging.application": "the controller's log is app_log (all.vars)",
    "logging.disk_spaces": "plotfleet reads free space itself (status, --json)",
}


# the type each plotman setting must have (plotman's own schema, as its
# desert dataclasses check it); a value of another type is named, not guessed
_LIST, _MAP, _TEXT, _NUM = (list,), (dict,), (str,), (int, float)
SHAPES = {
    "directories": _MAP, "directories.tmp": _LIST, "directories.tmp2": _TEXT,
    "directories.dst": _LIST, "logging": _MAP, "logging.plots": _TEXT,
    "scheduling": _MAP, "scheduling.tmp_overrides": _MAP, "scheduling.tmp_overrides.*": _MAP,
    **{f"scheduling.{k}": _NUM for k in SCHEDULING},
    **{f"scheduling.tmp_overrides.*.{k}": _NUM for k in OVERRIDE_KEYS},
    "plotting": _MAP, "plotting.type": _TEXT,     # keys: YAML may read hex as a number
    **{f"plotting.{kind}": _MAP for kind in OPTIONS},
    "archiving": _MAP, "archiving.target": _TEXT, "archiving.env": _MAP,
    "archiving.env.options": _TEXT, "archiving.env.command": _TEXT,
}
_KINDS = {_LIST: "a list", _MAP: "a mapping", _TEXT: "text", _NUM: "a number"}


def _check_shapes(doc: dict, path: Tuple[str, ...] = ()) -> None:
    """PlotmanConfigError naming the first setting whose type is not plotman's."""
    for k, v in doc.items():
        sub = path + (str(k),)
        if not isinstance(k, str):
            raise PlotmanConfigError(f"{'.'.join(sub)}: a key that is not text")
        # tmp_overrides' keys are dir names: one schema for them all
        key = ".".join("*" if i == 2 and sub[:2] == ("scheduling", "tmp_overrides") else p
                       for i, p in enumerate(sub))
        want = SHAPES.get(key)
        if v is not None and want and (not isinstance(v, want)
                                       or want is _NUM and isinstance(v, bool)):
            raise PlotmanConfigError(f"{'.'.join(sub)} must be {_KINDS[want]}, got "
                                     f"{type(v).__name__} {str(v)[:40]!r}")
        if isinstance(v, dict):
            _check_shapes(v, sub)


class PlotmanConfigError(ValueError):
    """The file is not a plotman.yaml plotfleet can read (one line)."""


@dataclass(frozen=True)
class Untranslated:
    host: str
    key: str                # plotman's dotted key
    reason: str

    def line(self) -> str:
        return f"{self.host}: {self.key}: {self.reason}"


@dataclass(frozen=True)
class Translation:
    host: str
    vars: Dict[str, object]             # plotfleet inventory variables, in key order
    untranslated: Tuple[Untranslated, ...]
    group: str = "plotters"             # plotters, or plotman_idle (plotman starts none)


def _section(doc: dict, name: str) -> dict:
    v = doc.get(name)
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise PlotmanConfigError(f"{name} must be a mapping, got {type(v).__name__}")
    return v


def _key_for(names: Sequence[str]) -> Optional[str]:
    return next((n for n in names if n in KEYS), None)


def translate(host: str, text: str) -> Translation:
    """One host's plotman.yaml text -> its Translation (PlotmanConfigError if
    it is no plotman config)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        why = str(getattr(e, "problem", None) or e).strip().splitlines()[0]
        raise PlotmanConfigError(f"not YAML{where}: {why}") from None
    if not isinstance(doc, dict):
        raise PlotmanConfigError("not a plotman config (no mapping at the top)")
    _check_shapes(doc)
    out: Dict[str, object] = {}
    notes: List[Untranslated] = []

    def note(key: str, reason: str) -> None:
        notes.append(Untranslated(host, key, reason))

    version = doc.get("version")
    if version not in ([2], (2,)):
        note("version", f"is {version!r}: read as plotman's config version 2")

    dirs = _section(doc, "directories")
    tmp = dirs.get("tmp")
    if not isinstance(tmp, list) or not tmp or not all(isinstance(p, str) for p in tmp):
        raise PlotmanConfigError("directories.tmp must be a list of dirs")
    out["tmp_dirs"] = list(tmp)
    if dirs.get("tmp2"):
        out["tmp2_dir"] = str(dirs["tmp2"])
    if dirs.get("dst"):
        out["dst_dirs"] = [str(p) for p in dirs["dst"]]
    for k in sorted(set(dirs) - {"tmp", "tmp2", "dst"}):
        note(f"directories.{k}", "not a plotman 0.5 setting")

    logging = _section(doc, "logging")
    out["log_dir"] = str(logging.get("plots") or PLOTMAN_LOG_DIR)
    for k in sorted(set(logging) - {"plots"}):
        note(f"logging.{k}", NOT_NEEDED.get(f"logging.{k}", "not a plotman 0.5 setting"))

    group = "plotters"
    sched = _section(doc, "scheduling")
    for k in SCHEDULING:
        if k in sched:
            out[k] = sched[k]
    if sched.get("global_max_jobs") == 0:
        # plotman starts no job at all; plotfleet reads 0 as "no limit"
        out.pop("global_max_jobs")
        group = "plotman_idle"
        note("scheduling.global_max_jobs", "is 0: plotman starts no job, while 0 means no "
                                           "limit to plotfleet; the host is put in group "
                                           "plotman_idle, not plotters")
    overrides = sched.get("tmp_overrides") or {}
    kept = {}
    for d, o in overrides.items():
        if d not in tmp:
            note(f"scheduling.tmp_overrides.{d}", "names a dir not in directories.tmp "
                                                   "(plotman ignores it)")
            continue
        o = o or {}
        kept[d] = {k: o[k] for k in OVERRIDE_KEYS if o.get(k) is not None}
        for k in sorted(set(o) - set(OVERRIDE_KEYS)):
            note(f"scheduling.tmp_overrides.{d}.{k}", "not a plotman override")
    if kept:
        out["tmp_overrides"] = kept
    for k in sorted(set(sched) - set(SCHEDULING) - {"tmp_overrides"}):
        note(f"scheduling.{k}", "not a plotman 0.5 setting")

    plotting = _section(doc, "plotting")
    kind = plotting.get("type", "chia")
    for pk, key in (("farmer_pk", "farmer_key"), ("pool_pk", "pool_key"),
                    ("pool_contract_address", "pool_contract")):
        if plotting.get(pk):
            out[key] = str(plotting[pk])
    if kind not in OPTIONS:
        note("plotting.type", f"{kind!r} is not a plotter plotman knows")
    else:
        out["plotter"] = kind
        opts = plotting.get(kind) or {}
        defaults = PLOTTER_DEFAULTS.get(kind, {})
        for opt, value in opts.items():
            names = OPTIONS[kind].get(opt)
            if names is None:
                note(f"plotting.{kind}.{opt}", f"not a plotman option of {kind}")
                continue
            key = _key_for(names)
            if key is not None and value is not None:
                out[key] = value
            elif opt in defaults and value == defaults[opt]:
                continue            # plotman's default is the plotter's own
            else:
                note(f"plotting.{kind}.{opt}", f"is {value!r}: plotfleet has no key for it "
                                               f"here; a plotter_command template can pass it")
    for k in sorted(set(plotting) - {"type", "farmer_pk", "pool_pk", "pool_contract_address",
                                     "chia", "madmax", "bladebit"}):
        note(f"plotting.{k}", "not a plotman 0.5 setting")

    _archiving(doc.get("archiving"), out, note)

    for k, reason in NOT_NEEDED.items():
        if "." not in k and k in doc:
            note(k, reason)
    known = {"version", "directories", "logging", "scheduling", "plotting", "archiving",
             "user_interface", "commands"}
    for k in sorted(set(doc) - known):
        note(k, "not a plotman 0.5 section")
    return Translation(host, out, tuple(notes), group)


def _archiving(arch, out: dict, note) -> None:
    if not arch:
        return      # plotman does not archive: plots stay in dst (no harvester in the run)
    if not isinstance(arch, dict):
        note("archiving", "must be a mapping")
        return
    target, env = arch.get("target"), arch.get("env") or {}
    if target not in RSYNC_DEFAULTS:
        note("archiving.target", f"{target!r}: plotman's own script; plotfleet moves plots "
                                 f"itself, to harvesters' farm_dirs")
        return
    root = env.get("site_root")
    if target == "local_rsync":
        out["transfer"] = "local"
        note("archiving.env.site_root", f"{root}: plotman archives to every drive mounted "
                                        f"under it; add this host to harvesters with those "
                                        f"drives as farm_dirs")
    else:
        out["transfer"] = "ssh"
        note("archiving.env.host", f"{env.get('user')}@{env.get('host')}: add that host to "
                                   f"harvesters with the drives under {root} as farm_dirs; "
                                   f"plotfleet sends with rsync over SSH, not to rsyncd "
                                   f"(rsync_port, site unused)")
    options = env.get("options", RSYNC_DEFAULTS[target])
    m = re.search(r"--bwlimit[= ](\d+)", options or "")
    if m:
        out["transfer_bwlimit_kbps"] = int(m.group(1))
    rest = re.sub(r"--bwlimit[= ]\d+", "", options or "").split()
    default_rest = re.sub(r"--bwlimit[= ]\d+", "", RSYNC_DEFAULTS[target]).split()
    if rest != default_rest:
        note("archiving.env.options", f"{' '.join(rest)}: plotfleet runs rsync its own way "
                                      f"(a checked copy, then the source goes)")
    for k in sorted(set(env) - {"site_root", "options", "command", "host", "user", "site",
                                "rsync_port", "ssh_port", "path_suffix"}):
        note(f"archiving.env.{k}", "used by plotman's own archiving scripts only")
    if env.get("command", "rsync") != "rsync":
        note("archiving.env.command", f"{env['command']}: plotfleet runs rsync")
    if env.get("path_suffix"):
        note("archiving.env.path_suffix", "farm_dirs name the exact dirs instead")
    if arch.get("index"):
        note("archiving.index", "plotfleet spreads plots over all drives (fill), no index")


def connection_vars(host: Host) -> Dict[str, object]:
    """The inventory variables that reach `host` as the source inventory did."""
    out: Dict[str, object] = {}
    if host.address != host.name:
        out["ansible_host"] = host.address
    for key, attr in (("ansible_port", "port"), ("ansible_user", "user"),
                      ("ansible_ssh_private_key_file", "key_file"),
                      ("ansible_connection", "connection"),
                      ("ansible_python_interpreter", "python"),
                      ("host_key_checking", "host_key_checking"),
                      ("known_hosts_file", "known_hosts_file")):
        value, default = getattr(host, attr), KEYS[key].default
        if value != default and value is not None and not (
                key == "ansible_python_interpreter" and host.connection == "local"):
            out[key] = value
    return out


def inventory_yaml(translations: Sequence[Translation], connections: Mapping[str, dict],
                   unread: Mapping[str, str]) -> str:
    """One inventory of every translated host, the settings not translated
    (and the hosts not read) listed at the top as comments."""
    lines = ["# plotfleet inventory from plotman.yaml (plotfleet import-plotman)"]
    notes = [u.line() for t in translations for u in t.untranslated]
    notes += [f"{name}: not read: {why}" for name, why in unread.items()]
    if notes:
        lines.append("# not translated:")
        # a host's text: one comment line each, whatever newlines it holds
        lines += ["#   " + json.dumps(n)[1:-1] for n in notes]
    groups: Dict[str, dict] = {}
    for t in translations:
        hosts = groups.setdefault(t.group, {"hosts": {}})["hosts"]
        hosts[t.host] = {**connections.get(t.host, {}), **t.vars}
    body = yaml.dump(_unsafe(groups), Dumper=_Dumper, sort_keys=False,
                     default_flow_style=False) if groups else ""
    return "\n".join(lines) + "\n" + body


class _Verbatim(str):
    """A host's string that looks like a template: written `!unsafe`, so the
    inventory loader keeps it as text and never renders it."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Verbatim, lambda d, v: d.represent_scalar("!unsafe", str(v)))


def _unsafe(value):
    """Every string in `value` that jinja2 would read as a template, made _Verbatim."""
    if isinstance(value, dict):
        return {k: _unsafe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_unsafe(v) for v in value]
    if isinstance(value, str) and any(m in value for m in ("{{", "{%", "{#")):
        return _Verbatim(value)
    return value
