"""What the scheduler and archiver decide: frozen data, carried out by apply.

Each action names its host and says in `describe()`, on one line, what it
does and why, for the action log.  `Wait` is the decision to do nothing
somewhere, with a reason a person can act on.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Tuple


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB' (binary units, one decimal), for reasons and logs."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class StartJob:
    host: str
    tmp_dir: str
    dst_dir: str
    tmp2_dir: str            # may be None: the plotter then uses tmp_dir
    plotter: str
    k: int
    argv: Tuple[str, ...]
    reason: str

    def describe(self) -> str:
        return f"{self.plotter} k{self.k} tmp {self.tmp_dir} -> dst {self.dst_dir} ({self.reason})"


@dataclass(frozen=True)
class StartTransfer:
    from_host: str
    plot: str                # source path on the plotter
    size_bytes: int
    to_host: str
    to_dir: str
    mode: str                # ssh | local
    reason: str

    def describe(self) -> str:
        return (f"{self.from_host}:{self.plot} -> {self.to_host}:{self.to_dir} "
                f"[{self.mode}, {human_bytes(self.size_bytes)}] ({self.reason})")


@dataclass(frozen=True)
class Promote:
    """Rename a complete partial on a harvester to its final *.plot name."""
    host: str                # harvester
    partial: str
    size_bytes: int          # the size the partial must have (the source's)
    from_host: str           # plotter holding the source
    plot: str                # source path there

    def describe(self) -> str:
        return (f"{self.host}:{self.partial} -> {os.path.basename(self.plot)} "
                f"({human_bytes(self.size_bytes)}, from {self.from_host})")


@dataclass(frozen=True)
class RemoveSource:
    """Delete a plot from its plotter: only after a promote confirmed its size."""
    host: str
    plot: str
    confirmed_size: int

    def describe(self) -> str:
        return f"{self.host}:{self.plot} (copy confirmed, {human_bytes(self.confirmed_size)})"


@dataclass(frozen=True)
class CleanPartial:
    host: str
    partial: str
    reason: str

    def describe(self) -> str:
        return f"{self.host}:{self.partial} ({self.reason})"


@dataclass(frozen=True)
class CleanDead:
    """Remove a failed job's temp files (its host checks every guard again)."""
    host: str
    plot_id: str
    log_file: str
    files: int
    size_bytes: int
    error: Optional[str]

    def describe(self) -> str:
        why = f": {self.error}" if self.error else ""
        return (f"{self.host}: failed job {self.plot_id[:8]}, {self.files} temp files "
                f"({human_bytes(self.size_bytes)}){why}")


@dataclass(frozen=True)
class Wait:
    """Nothing done for `subject` on `host` (a plotter, a plot, ...), because `reason`.

    `blocked`: nothing will change without the operator (backed off after
    failures, or no tmp dir could ever hold a job), so a run waiting for
    plots from here may end."""
    host: str
    subject: str
    reason: str
    blocked: bool = False

    def describe(self) -> str:
        return f"{self.host}: {self.subject}: waiting: {self.reason}"


def remove_after_promote(promote: Promote, confirmed_size: int) -> RemoveSource:
    """The source removal that a successful promote allows.

    `confirmed_size` is what the harvester reported for the final file; a
    plot is only ever removed when that equals the size the source has.
    """
    if confirmed_size != promote.size_bytes:
        raise ValueError(f"{promote.host}: {os.path.basename(promote.plot)} is "
                         f"{confirmed_size} bytes there, source has {promote.size_bytes}: "
                         f"source kept")
    return RemoveSource(host=promote.from_host, plot=promote.plot,
                        confirmed_size=confirmed_size)
