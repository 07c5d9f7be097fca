"""Plot file names: the one place that reads them.

Every form a plot takes on disk, in one pattern:
  v1        plot-k32-2021-06-21-01-00-<64 hex>.plot   (chia, chiapos, madmax)
            plot-k32-c07-2023-...-<64 hex>.plot        (bladebit: level always two digits)
            plot-k32-c7-2023-...-<64 hex>.plot         (Gigahorse: no padding)
  PoS2      plot-k28-<64 hex>.plot2                    (chia-blockchain create_v2_plots)
            plot-k28-[<date>-]<64 hex>.gplot           (plot groups, chia-blockchain #21396)
  DrPlotter drplot-pro4x-2024-01-24-00-35-<32 hex>.drplot
            (github.com/drnick23/drplotterv3 README: "Plotting File: drplot-pro4x-...")
A log line names a plot without its suffix (madmax's `Plot Name: plot-k32-...`):
`find` reads those.  The transfer temp name is `<final name>` + PARTIAL_SUFFIX.
"""
import re
from collections import namedtuple

PARTIAL_SUFFIX = ".plotfleet-tmp"
SUFFIXES = (".plot", ".plot2", ".gplot", ".drplot")

_NAME = re.compile(
    r"(?:plot-k(?P<k>\d+)-(?:c(?P<level>\d+)-)?|drplot-(?P<dr>[a-z0-9]+)-)"
    r"(?:(?P<date>\d{4}-\d\d-\d\d-\d\d-\d\d)-)?"
    r"(?P<id>[0-9a-fA-F]{64}|[0-9a-fA-F]{32})(?![0-9a-fA-F])"
    r"(?:\.(?P<suffix>plot2|plot|gplot|drplot)\b)?")

# k: 0 when the name does not tell it (DrPlotter's); level: the digits as
# written ("07", "7"), None when the name has none; date "YYYY-MM-DD-HH-MM" or
# None; plot_id lower-case hex; suffix ".plot", ".plot2", ... (None in a log line)
PlotName = namedtuple("PlotName", "name k level date plot_id suffix format")


def _of(m):
    suffix = "." + m.group("suffix") if m.group("suffix") else None
    dr = m.group("dr")
    k = int(m.group("k")) if m.group("k") else 0
    if dr is not None:
        fmt = "drplot"
    elif suffix == ".plot2":
        fmt = "pos2"
    elif suffix == ".gplot":
        fmt = "pos2_group"
    else:
        fmt = "v1"
    return PlotName(m.group(0), k, m.group("level") or (dr if dr is not None else None),
                    m.group("date"), m.group("id").lower(), suffix, fmt)


def _consistent(p):
    """A name's parts agree with its suffix: a v1 plot has a date and a 64 hex
    id, a PoS2 plot no compression level, DrPlotter a 32 hex id."""
    if p.format == "drplot":
        return len(p.plot_id) == 32 and p.suffix in (None, ".drplot")
    if len(p.plot_id) != 64:
        return False
    if p.format == "v1":
        return p.date is not None
    return p.level is None


def parse(name):
    """PlotName of a file name (a base name, or a path's last part; a
    transfer temp name counts as its final name), else None."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    if name.endswith(PARTIAL_SUFFIX):
        name = name[:-len(PARTIAL_SUFFIX)]
    m = _NAME.fullmatch(name)
    if not m or not m.group("suffix"):
        return None
    p = _of(m)
    return p if _consistent(p) else None


def find(text):
    """The first plot name in a line of text (a log's `Plot Name: ...`), else None."""
    for m in _NAME.finditer(text or ""):
        p = _of(m)
        if _consistent(p):
            return p
    return None


# the formats plotfleet moves from a plotter to a farm; DrPlotter's plots are
# counted on a farm drive and never touched
MOVED = ("v1", "pos2", "pos2_group")


def is_moved(name):
    """Is this a finished plot's name that plotfleet archives?"""
    p = None if (name or "").endswith(PARTIAL_SUFFIX) else parse(name)
    return p is not None and p.format in MOVED


def is_partial(name):
    """Is this a transfer temp name of a plot plotfleet archives?"""
    p = parse(name) if (name or "").endswith(PARTIAL_SUFFIX) else None
    return p is not None and p.format in MOVED


def is_plot(name):
    """Is this a finished plot's file name (any format)?"""
    return not (name or "").endswith(PARTIAL_SUFFIX) and parse(name) is not None


def label(path):
    """A plot as plotman names one: the first 8 of its id (else its file name)."""
    if not path:
        return "-"
    p = parse(path) or find(path)
    return p.plot_id[:8] if p else path.rsplit("/", 1)[-1]
