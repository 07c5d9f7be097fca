"""A plot's compression: a level and the format it belongs to.

The same number means different plots in bladebit's format and Gigahorse's,
so a level never travels without its format.  Read from:
- the plot's name: bladebit writes `plot-k32-c07-...` (always two digits,
  PlotTools::GenPlotFileName "plot-k32-c%02u-"), Gigahorse `plot-k32-c7-...`
  and `plot-k32-c18-...` (no padding; chia-gigahorse issues #9, #237);
- the header: bladebit's v2 header carries its level (formats.py);
- the command line: bladebit `--compress N` / `-z N`, Gigahorse `-C N`.
Uncompressed is (0, None).
"""
from . import names

BLADEBIT, GIGAHORSE = "bladebit", "gigahorse"
# A PoS2 plot is not compressed, but its strength sets its kind as a level
# does (a k28 s3 plot is not a k28 s2 plot): it travels the same way.
POS2 = "pos2"


def from_name(name):
    """(level, format) a plot file name (or a line naming one) tells, (0,
    None) when it tells none."""
    p = names.find(name or "")
    if p is None or p.format != "v1" or p.level is None:
        return 0, None
    digits = p.level
    level = int(digits)
    if level == 0:
        return 0, None
    return level, (BLADEBIT if len(digits) == 2 and digits[0] == "0" else GIGAHORSE)


def from_level(level, fmt):
    """(level, format) of a parsed level, (0, None) for none or 0."""
    try:
        level = int(level)
    except (TypeError, ValueError):
        return 0, None
    return (level, fmt) if level > 0 else (0, None)
