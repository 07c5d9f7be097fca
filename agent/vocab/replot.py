"""Which farm plots are old: the `replot` rules, in one place for the
controller (planning, refusal at load) and the agent (the re-check before a
deletion).

A rule is a mapping of conditions, all of which must hold; a plot that
matches any rule is replaceable.  Conditions:
  k_below: N            the plot's k < N
  compression_below: N  its level < N; an uncompressed plot is level 0 in any
                        format, a compressed one matches only when the rule
                        names its format (compression_format: bladebit |
                        gigahorse): bladebit's C5 is not Gigahorse's C5
  compression_format    (with compression_below only)
  format: v1            a proof-of-space v1 plot (`*.plot`: chiapos, chia,
                        madmax, bladebit, Gigahorse); never `.drplot`, which
                        plotfleet never touches, nor PoS2
  made_before: DATE     the date in its name (YYYY-MM-DD) is before DATE, which
                        is two days back at least (plotters name plots by their
                        own time zone's date); a plot whose name has no date
                        never matches
  glob: PATTERN         its path on the harvester (fnmatch)
  pool: solo            made with a pool public key, not a pool contract (the
                        header's memo: 128 bytes with a pool key, 112 with a
                        contract's puzzle hash); a plot whose header cannot
                        be read never matches
A rule that could match a plot the fleet makes from now on is refused at load
(`made_now`).
"""
import datetime
import fnmatch
import os
import struct

from . import compression, names

KEYS = ("k_below", "compression_below", "compression_format", "format", "made_before",
        "glob", "pool")
FORMATS = ("v1",)
POOLS = ("solo",)
MEMO_POOL_KEY, MEMO_CONTRACT = 128, 112

def name_facts(name):
    """{"k", "plot_id", "date" ("YYYY-MM-DD" or None), "level", "level_format",
    "format"} from a plot file's name (names.py, the one parser); None when
    it is no plot name."""
    p = names.parse(name)
    if p is None:
        return None
    level, fmt = compression.from_name(name) if p.format == "v1" else (0, None)
    date = None
    if p.date:
        try:
            date = datetime.date(int(p.date[:4]), int(p.date[5:7]), int(p.date[8:10])).isoformat()
        except ValueError:
            date = None             # a date that is no date: never "made before"
    return {"k": p.k, "plot_id": p.plot_id, "date": date, "level": level,
            "level_format": fmt, "format": p.format}


def pool_of_header(data):
    """"solo" (pool public key), "contract" (pool contract) or None, from a
    plot's first bytes (v1 chiapos header, or bladebit's v2 header)."""
    try:
        if data[:19] == b"Proof of Space Plot":
            desc = struct.unpack(">H", data[52:54])[0]
            at = 54 + desc
        elif data[:4] == b"PLOT":
            at = 41
        else:
            return None
        memo = struct.unpack(">H", data[at:at + 2])[0]
    except struct.error:
        return None
    return {MEMO_POOL_KEY: "solo", MEMO_CONTRACT: "contract"}.get(memo)


def _date(value):
    if isinstance(value, datetime.datetime):
        value = value.date()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            return None
    return None


def _int(value):
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def normalise(rule, today):
    """(the rule with typed values, None) or (None, what is wrong, one line).
    `today` is a date: made_before must be before it."""
    if not isinstance(rule, dict) or not rule:
        return None, "each rule must be a mapping of conditions, e.g. {made_before: 2024-01-01}"
    out = {}
    for key, value in rule.items():
        if key not in KEYS:
            return None, "unknown condition %r (known: %s)" % (key, ", ".join(KEYS))
        if key in ("k_below", "compression_below"):
            if _int(value) is None or value < 1:
                return None, "%s must be a whole number of at least 1, got %r" % (key, value)
            out[key] = value
        elif key == "compression_format":
            if value not in (compression.BLADEBIT, compression.GIGAHORSE):
                return None, "compression_format must be bladebit or gigahorse, got %r" % (value,)
            out[key] = value
        elif key == "format":
            if value not in FORMATS:
                return None, "format must be one of %s, got %r" % (", ".join(FORMATS), value)
            out[key] = value
        elif key == "pool":
            if value not in POOLS:
                return None, "pool must be solo, got %r" % (value,)
            out[key] = value
        elif key == "glob":
            if not isinstance(value, str) or not value.strip():
                return None, "glob must be a pattern, got %r" % (value,)
            out[key] = value
        elif key == "made_before":
            d = _date(value)
            if d is None:
                return None, "made_before must be a date YYYY-MM-DD, got %r" % (value,)
            # a plot is named by its plotter's own date, up to a day behind ours
            # (time zones span 26 hours): two days back at least, or it may
            # match plots made from now on
            if d > (today - datetime.timedelta(days=2)).isoformat():
                return None, ("made_before: %s is not far enough in the past (two days "
                              "back at least): it would match plots made from now on" % d)
            out[key] = d
    if "compression_format" in out and "compression_below" not in out:
        return None, "compression_format goes with compression_below"
    return out, None


def describe(rule):
    """The rule as the farmer wrote it, on one line: `k_below: 32, glob: ...`."""
    return ", ".join("%s: %s" % (k, rule[k]) for k in KEYS if k in rule)


def _level_below(rule, level, fmt):
    if level == 0:
        return True                 # uncompressed: level 0 in every format
    return rule.get("compression_format") == fmt and level < rule["compression_below"]


def matches(rule, facts, path, pool=None):
    """Does a plot (`facts` from its name, at `path` on its harvester, with
    its header's pool kind) match this rule?  Every condition must hold."""
    if facts is None or facts.get("format") != "v1":
        return False
    if "k_below" in rule and not facts["k"] < rule["k_below"]:
        return False
    if "compression_below" in rule and not _level_below(
            rule, facts["level"], facts["level_format"]):
        return False
    if "made_before" in rule and not (facts["date"] and facts["date"] < rule["made_before"]):
        return False
    if "glob" in rule and not fnmatch.fnmatchcase(path, os.path.expanduser(rule["glob"])):
        return False
    if "pool" in rule and pool != rule["pool"]:
        return False
    return True


def glob_matches(pattern, farm_dir):
    """Would `pattern` match any plot placed straight in `farm_dir`?"""
    probe = "plot-k32-2099-01-01-00-00-%s.plot" % ("0" * 64)
    return fnmatch.fnmatchcase(os.path.join(farm_dir, probe), os.path.expanduser(pattern))


def first_match(rules, path, pool=None):
    """(index, rule) of the first rule the plot at `path` matches, else None."""
    facts = name_facts(os.path.basename(path))
    for i, rule in enumerate(rules or ()):
        if matches(rule, facts, path, pool):
            return i, rule
    return None


def needs_header(rules):
    return any("pool" in r for r in rules or ())


def made_now(rule, k, level, level_format, fmt, pool):
    """Could this rule match a plot a plotter makes from now on (k, level of
    level_format, format "v1" | "pos2", pool "solo" | "contract" | None for
    unknown)?  Its date is today or later: made_before (always in the past)
    never matches it.  Where it will lie is not known here: a glob is checked
    against each new plot where it goes, by the plan and by the harvester,
    and a plot it would match is refused there."""
    if fmt != "v1":
        return False                # PoS2 plots are no rule's (format: v1 only)
    if "made_before" in rule or "glob" in rule:
        return False
    if "k_below" in rule and not k < rule["k_below"]:
        return False
    if "compression_below" in rule and not _level_below(rule, level, level_format):
        return False
    if "pool" in rule and pool is not None and pool != rule["pool"]:
        return False
    return True
