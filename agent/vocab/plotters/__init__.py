"""Every plotter plotfleet knows, one module each (see base.PlotterSpec).

Adding a plotter: a module here with its SPEC (and a `recognise` branch
below if its argv is new), its command template
orchestrator/core/templates/<name>.j2, and tests.

`classify(argv)` reads a running process's command line with the same flag
tables the templates write it with.
"""
from .. import compression
from . import bladebit, chia, chiapos, gigahorse, madmax, pos2
from .base import PlotterSpec, argv_table, base_name, parse_flags

PLOTTERS = {s.name: s for s in (chia.SPEC, madmax.SPEC, bladebit.SPEC, chiapos.SPEC,
                                gigahorse.SPEC, pos2.SPEC)}
# the agent's own launchers: `python -m agent <verb>` (the templates write <program>)
LAUNCHERS = {"chiapos": ("plotfleet-chiapos", "plot-chiapos"),
             "pos2": ("plotfleet-pos2", "plot-pos2")}
# the spec whose rules a log family follows (chiapos reads like chia)
LOG_FAMILY = {"chiapos": "chia"}


def spec(name):
    return PLOTTERS.get(LOG_FAMILY.get(name, name)) if name else None


def detect(line):
    """The plotter a log line names (its banner, its own markers), else None."""
    for name in ("pos2", "gigahorse", "madmax", "bladebit", "chia"):
        for m in PLOTTERS[name].signatures:
            if m in line:
                return name
    return None


def classify(argv):
    """argv -> {"plotter", "k", "tmp_dir", ...} for a plot job, "rsync", or None.

    "compress" and "compress_format" are the job's level and its format;
    "wrapper" marks `chia plotters bladebit|madmax`, a Python parent whose
    plotter binary, its child, is the same job (ProcScanner joins them)."""
    if not argv:
        return None
    b0 = base_name(argv[0])
    if b0.startswith("rsync"):
        return "rsync"
    info = None
    gh = gigahorse.BINARY.match(b0)
    if gh:
        opts, _ = parse_flags(argv[1:], argv_table(gigahorse.SPEC))
        info = dict(opts, plotter="gigahorse")
        info.setdefault("k", gh.group(1))
        info.setdefault("compress_gh", 1)       # cuda_plot's default -C 1
    elif madmax.recognise(b0):
        opts, _ = parse_flags(argv[1:], argv_table(madmax.SPEC))
        info = dict(opts, plotter="madmax")
    elif b0 in bladebit.BINARIES:
        info = _bladebit(argv[1:])
    else:
        for i, a in enumerate(argv[:4]):
            launched = next((n for n, (_, verb) in LAUNCHERS.items() if a == verb), None)
            if launched and i >= 1 and (argv[i - 1] == "agent"
                                        or argv[i - 1].endswith("__main__.py")):
                opts, _ = parse_flags(argv[i + 1:], argv_table(PLOTTERS[launched]))
                info = dict(opts, plotter=launched)
                break
            if base_name(a) in ("chia", "chia.exe") and argv[i + 1:i + 3] == ["plots", "create"]:
                opts, _ = parse_flags(argv[i + 3:], argv_table(chia.SPEC))
                info = dict(opts, plotter="chia")
                break
            if base_name(a) in ("chia", "chia.exe") and argv[i + 1:i + 2] == ["plotters"]:
                info = _chia_plotters(argv[i + 2:])
                break
    if info is None:
        return None
    try:
        info["k"] = int(info.get("k") or 32)
    except ValueError:
        info["k"] = 32
    if info["plotter"] == "chia" and "tmp_dir" in info and "tmp2_dir" not in info:
        info["tmp2_dir"] = None
    if info["plotter"] == "pos2":      # a PoS2 plot's strength travels as its level
        info["compress"], info["compress_format"] = compression.from_level(
            info.pop("strength", 2), compression.POS2)
        return info
    if "compress_gh" in info:
        level = compression.from_level(info.pop("compress_gh"), compression.GIGAHORSE)
    else:
        fmt = compression.BLADEBIT if info["plotter"] == "bladebit" else None
        level = compression.from_level(info.pop("compress", 0), fmt)
    info["compress"], info["compress_format"] = level
    return info


def _chia_plotters(args):
    """`chia plotters <plotter> [mode] ...`: chiapos plots in this very process
    (chia's own plotter, its log reads like `chia plots create`); bladebit and
    madmax run their binary as a child."""
    if not args:
        return None
    which, rest = args[0], args[1:]
    mode = None
    if which == "bladebit" and rest and rest[0] in bladebit.MODES:
        mode, rest = rest[0], rest[1:]
    opts, _ = parse_flags(rest, chia.PLOTTERS_FLAGS)
    if which == "chiapos":
        opts.pop("compress", None)      # taken by chia's parser, not used by chiapos
        return dict(opts, plotter="chia")
    if which == "madmax":
        return dict(opts, plotter="madmax", wrapper=True)
    if which == "bladebit":
        opts.setdefault("compress", 1)
        return dict(opts, plotter="bladebit", mode=mode or "diskplot", wrapper=True)
    return None


def _bladebit(args):
    idx = next((i for i, a in enumerate(args) if a in bladebit.MODES), None)
    glob, pos = parse_flags(args[:idx] if idx is not None else args, bladebit.GLOBAL_FLAGS)
    info = dict(glob, plotter="bladebit")
    if idx is not None:
        sub, spos = parse_flags(args[idx + 1:], dict(
            bladebit.MODE_FLAGS, **{f: False for f in bladebit.MODE_SWITCHES}))
        info.update(sub)
        info["mode"] = args[idx]
        if spos:
            info["dst_dir"] = spos[-1]
    elif pos:
        info["dst_dir"] = pos[-1]   # legacy bladebit: output dir is the positional
    if "k" not in info:
        info["k"] = 32
    return info


__all__ = ["PLOTTERS", "PlotterSpec", "classify", "detect", "spec"]
