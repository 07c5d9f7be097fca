"""How big a finished plot is, by k and compression: the one place for it.

Room checks (scheduler, claims), farm capacity and the views all ask here, so
"room for N plots" means the same everywhere.

A compression level never travels alone: bladebit's C7 and Gigahorse's C7
are different plots (different sizes, different harvesters), so a level is
a `Compression(format, level)`; None is an uncompressed (C0) plot.

Sizes:
- uncompressed: Chia's formula, ((2k + 1) * 2^(k-1)) * 0.78005 bytes
  (docs.chia.net "K Sizes": k32 = 108.88 GB = 101.4 GiB; the older 0.762
  factor gave 106.4 GB).  Test k below 25 carry relatively more overhead, so
  the plain table bound ((2k + 1) * 2^(k-1)) is used there.
- bladebit levels: Chia's published table ("K Sizes", plot compression),
  GiB for k32..k35 at levels 1-7 and 9 (there is no C8).  Another k is the
  C0 size scaled by that level's k32 ratio.
- Gigahorse levels: no published table; the median size of plots of that k
  and level already on the fleet, else (said so in `source`) the
  uncompressed size, which is never smaller than a compressed plot.
- PoS2 (Compression("pos2", strength): a strength sets a kind as a level
  does): the median size of v2 plots of that k and strength seen on the
  fleet, else of that k at any strength, else CHIP-48's figure (about
  0.92 GiB a k28 plot, doubling per k) with a margin, and `assumed` says so.
  chia_rs.expected_plot_size(k) is not a file's size (7.1 GiB at k28, 4.8 MB
  at k18 where chia_rs 0.53 writes 0.65 MB).  For planning room only: a v2
  plot is never called short by it (its header says how long it is).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Dict, Iterable, Mapping, Optional, Tuple

GiB = 1 << 30
BLADEBIT, GIGAHORSE, POS2 = "bladebit", "gigahorse", "pos2"
FORMATS = (BLADEBIT, GIGAHORSE, POS2)
CHIP48_K28_GIB = 0.92           # CHIP-48: a k28 PoS2 plot, about 0.92 GiB
CHIP48_MARGIN = 1.25            # room planned for an unseen size, never a size check
CHIA_FACTOR = 0.78005

# docs.chia.net/k-sizes: plot size in GiB by compression level, k32..k35
CHIA_TABLE_GIB: Dict[int, Tuple[float, float, float, float]] = {
    0: (101.4, 208.8, 429.9, 884.1),
    1: (87.5, 179.6, 368.2, 754.3),
    2: (86.0, 176.6, 362.1, 742.2),
    3: (84.5, 173.4, 355.9, 729.7),
    4: (82.9, 170.2, 349.4, 716.8),
    5: (81.3, 167.0, 343.0, 704.0),
    6: (79.6, 163.8, 336.6, 691.1),
    7: (78.0, 160.6, 330.2, 678.3),
    9: (75.2, 154.1, 315.5, 645.8),
}
BLADEBIT_LEVELS = tuple(sorted(l for l in CHIA_TABLE_GIB if l))     # 1-7, 9
# Gigahorse's plotters take -C from 1 (its README said "max = 9"; users run
# C18, chia-gigahorse issue #237): up to 20 here
GIGAHORSE_LEVELS = tuple(range(1, 21))


@dataclass(frozen=True)
class Compression:
    format: str                 # bladebit | gigahorse
    level: int                  # > 0

    def label(self) -> str:
        if self.format == POS2:
            return f"v2 s{self.level}"
        return f"C{self.level}" if self.format == BLADEBIT else f"GH C{self.level}"


def compression(fmt: Optional[str], level) -> Optional[Compression]:
    """Compression from the agent's two fields; None for uncompressed or unknown."""
    try:
        level = int(level)
    except (TypeError, ValueError):
        return None
    if level <= 0 or fmt not in FORMATS:
        return None
    return Compression(fmt, level)


def label(c: Optional[Compression]) -> str:
    return c.label() if c is not None else "C0"


def kind_label(k, c: Optional[Compression]) -> str:
    """k and level as one short label: "k32" (uncompressed), "k32 C7",
    "k32 GH C7", and a PoS2 plot's format, k and strength: "v2 k28 s2"."""
    if c is not None and c.format == POS2:
        return f"v2 k{k} s{c.level}"
    return f"k{k}" if c is None else f"k{k} {c.label()}"


def level_problem(fmt: str, level: int) -> Optional[str]:
    # PoS2's strength depends on k: agent/vocab/plotters/pos2.problem
    """Why `level` is no level of that format (for the inventory), else None."""
    if fmt == BLADEBIT and level != 0 and level not in BLADEBIT_LEVELS:
        return f"bladebit makes levels 0-7 and 9 (there is no C8), got {level}"
    if fmt == GIGAHORSE and level not in GIGAHORSE_LEVELS:
        return f"Gigahorse makes levels 1-20, got {level}"
    return None


def uncompressed_bytes(k: int) -> int:
    bound = (2 * k + 1) * 2 ** (k - 1)
    return int(bound * CHIA_FACTOR) if k >= 25 else bound


def table_bytes(k: int, level: int) -> Optional[int]:
    """Chia's table size for a bladebit plot of k and level, or None when the
    table has no such level."""
    row = CHIA_TABLE_GIB.get(level)
    if row is None:
        return None
    if 32 <= k <= 35:
        return int(row[k - 32] * GiB)
    return int(uncompressed_bytes(k) * row[0] / CHIA_TABLE_GIB[0][0])


@dataclass(frozen=True)
class Estimate:
    bytes: int
    source: str                 # where the number comes from, for the views
    assumed: bool = False       # no plot of the kind seen, no table: a planning figure


Observed = Mapping[Tuple[int, Optional[Compression]], Tuple[int, ...]]


def pos2_assumed_bytes(k: int) -> int:
    """CHIP-48's size of a v2 plot of k, with the planning margin."""
    return int(CHIP48_K28_GIB * GiB * 2.0 ** (k - 28) * CHIP48_MARGIN)


def _pos2(k: int, c: Compression, observed: Observed) -> Estimate:
    seen = observed.get((k, c)) or ()
    if seen:
        return Estimate(int(statistics.median(seen)),
                        f"median of {len(seen)} {kind_label(k, c)} plot{'s' if len(seen) > 1 else ''} seen")
    near = [s for (kk, cc), sizes in observed.items() if kk == k and cc is not None
            and cc.format == POS2 for s in sizes]
    if near:
        return Estimate(int(statistics.median(near)),
                        f"median of {len(near)} v2 k{k} plot{'s' if len(near) > 1 else ''} seen")
    return Estimate(pos2_assumed_bytes(k), f"no {kind_label(k, c)} plot seen yet: CHIP-48's "
                    f"size assumed (+{round((CHIP48_MARGIN - 1) * 100)}%)", assumed=True)


def estimate(k: int, c: Optional[Compression] = None, observed: Optional[Observed] = None) -> Estimate:
    if c is not None and c.format == POS2:
        return _pos2(k, c, observed or {})
    if c is None:
        return Estimate(uncompressed_bytes(k), "Chia's formula")
    if c.format == BLADEBIT:
        size = table_bytes(k, c.level)
        if size is not None:
            return Estimate(size, "Chia's table")
    seen = (observed or {}).get((k, c)) or ()
    if seen:
        return Estimate(int(statistics.median(seen)),
                        f"median of {len(seen)} {c.label()} k{k} plot{'s' if len(seen) > 1 else ''} seen")
    return Estimate(uncompressed_bytes(k),
                    f"no {c.label()} k{k} plot seen yet: uncompressed size assumed", assumed=True)


def plot_bytes(k: int, c: Optional[Compression] = None, observed: Optional[Observed] = None) -> int:
    """Bytes of a finished plot of size k and compression `c`."""
    return estimate(k, c, observed).bytes


def observe(seen: Iterable[Tuple[int, Optional[Compression], int]]) -> Observed:
    """{(k, compression): sizes} from (k, compression, size) of plots seen on
    the fleet, for `estimate`'s learned sizes."""
    out: Dict[Tuple[int, Optional[Compression]], list] = {}
    for k, c, size in seen:
        if k and size > 0:
            out.setdefault((k, c), []).append(size)
    return {key: tuple(v) for key, v in out.items()}
