"""What one plotter is, as data: the PlotterSpec every plotter module fills in.

A spec is the single place that knows a plotter (pyinfra's fact model: one
class, one name, everything about it beside it):
- what the inventory may ask of it (k range, buckets, keys, options);
- its command-line flags, `FLAGS` {flag: field}: the agent reads a running
  process's argv with them, and the command templates
  (orchestrator/core/templates/<name>.j2) write argv with the same table
  through `flag(field)`, so a flag is spelt once;
- its log: banner lines (`signatures`), phase rules, the markers of a
  finished plot, its failure lines, and how its lines name plot, dirs and
  timings (`reader`: logread.LogState's reader of that name);
- the plot formats it writes (formats.FORMATS names).
"""
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, FrozenSet, Optional, Tuple


def _fixed(p):
    return lambda m: p


def _n(fn):
    return lambda m: fn(int(m.group(1)))


# A phase rule: (cheap substring, regex or None, phase function of the match).
# A regex compiled with re.I is matched without case (its substring lower-case).
Rule = Tuple[str, Optional["re.Pattern"], Callable]


@dataclass(frozen=True)
class PlotterSpec:
    name: str
    k: Tuple[int, Optional[int], str]           # least k, most k (None: any), why
    buckets: Optional[Tuple[int, int, str]]     # least, most, why (None: takes none)
    needs_keys: bool = False                    # farmer key and pool key/contract required
    executable: Optional[str] = None            # default binary (None: the agent's launcher)
    compress_format: Optional[str] = None       # the compressed format it makes, if any
    options: FrozenSet[str] = frozenset()       # plotter-specific inventory keys it takes
    flags: Dict[str, object] = field(default_factory=dict)   # flag -> field (None: takes a
    #                                           value we ignore; False: takes none)
    switches: Dict[str, str] = field(default_factory=dict)   # flag without value -> field
    device_flag: Optional[str] = None           # the flag that pins a job to one GPU
    signatures: Tuple[str, ...] = ()            # log text that names this plotter
    rules: Tuple[Rule, ...] = ()                # phase rules, DESIGN.md "Progress"
    finished: Tuple[str, ...] = ()              # a line with one of these: plot complete
    # failure lines (logread.ErrorLine): a header whose message is on the next
    # line; a crash banner before a backtrace; a line naming the cause that a
    # C++ terminate with an empty what() follows
    fatal_headers: Tuple[str, ...] = ()
    crash_marks: Tuple[str, ...] = ()
    cause_marks: Tuple[str, ...] = ()
    reader: str = "chia"                        # how its log lines name plots and dirs
    formats: Tuple[str, ...] = ("v1",)          # formats.FORMATS it writes

    def flag(self, name):
        """The flag that sets `name` (its first spelling in FLAGS), for templates."""
        for table in (self.flags, self.switches):
            for f, n in table.items():
                if n == name:
                    return f
        raise KeyError("plotter %s has no flag for %s" % (self.name, name))


def argv_table(spec):
    """{flag: field, None or False} of a spec, for parse_flags."""
    return dict(spec.flags, **{f: False for f in spec.switches})


def parse_flags(args, spec):
    """Values of known flags (`-k 32`, `-k32`, `--size=32`) plus positionals."""
    out, pos, i = {}, [], 0
    while i < len(args):
        a = args[i]
        name, val = a, None
        if a.startswith("--") and "=" in a:
            name, val = a.split("=", 1)
        elif a not in spec and len(a) > 2 and a[0] == "-" and a[1] != "-" and a[:2] in spec:
            name, val = a[:2], a[2:]
        if name in spec and spec[name] is not False:
            if val is None:
                i += 1
                val = args[i] if i < len(args) else None
            if spec[name] and val is not None:
                out[spec[name]] = val
        elif not a.startswith("-"):
            pos.append(a)
        i += 1
    return out, pos


def base_name(s):
    return re.split(r"[\\/]", s)[-1]     # a Windows path's too
