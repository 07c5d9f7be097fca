"""What the scheduler and archiver decide: frozen data, carried out by apply.

A pass's decisions together are its Plan (core/plan.py).

Each action names its host and says in `describe()`, on one line, what it
does and why, for the action log.  `Wait` is the decision to do nothing
somewhere, with a reason a person can act on.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import Enum
from typing import Optional, Tuple

from agent.vocab.digest import same


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
    device: Optional[int] = None   # the GPU it is pinned to (cuda_devices)

    def describe(self) -> str:
        gpu = f" GPU {self.device}" if self.device is not None else ""
        return (f"{self.plotter} k{self.k}{gpu} tmp {self.tmp_dir} -> dst {self.dst_dir} "
                f"({self.reason})")

    def facts(self, **more) -> dict:
        """The facts of this start's events (core/events.py; ui/ draws them)."""
        return dict(dir=self.tmp_dir, to_dir=self.dst_dir, what=f"{self.plotter} k{self.k}",
                    **more)


@dataclass(frozen=True)
class StartTransfer:
    from_host: str
    plot: str                # source path on the plotter
    size_bytes: int
    to_host: str
    to_dir: str
    mode: str                # ssh | local
    reason: str
    dest_dir: Optional[str] = None   # to_dir as the harvester resolves it (`~` expanded)
    fsync: bool = False      # both rsyncs know --fsync (>= 3.2.4)
    # replotting (core/replot.py): the old plots deleted, under the drive's
    # claim, to make room for this one, and the plot's id they are for
    deletions: Tuple = ()
    plot_id: Optional[str] = None

    def describe(self) -> str:
        return (f"{self.from_host}:{self.plot} -> {self.to_host}:{self.to_dir} "
                f"[{self.mode}, {human_bytes(self.size_bytes)}] ({self.reason})")


@dataclass(frozen=True)
class Promote:
    """Check a copy on a harvester against its source (digests by both
    hosts) and, when they match, give it its final *.plot name; the source
    goes only after that.  `partial` may already be gone with the final name
    in its place (a promote repeated): the same check confirms it."""
    host: str                # harvester
    partial: str
    size_bytes: int          # the source's size
    from_host: str           # plotter holding the source
    plot: str                # source path there
    reason: str = "copied"
    # a copy lost or not matching is sent again; not when the promote only
    # compares a file that stood under the final name (the next pass decides)
    resend: bool = True
    # its sender's runner recorded it whole: an idle rsync server in its dir
    # (the next batch's) is not writing it
    sent: bool = False

    def describe(self) -> str:
        return (f"{self.host}:{self.partial} -> {os.path.basename(self.plot)} "
                f"({human_bytes(self.size_bytes)}, from {self.from_host}; {self.reason})")


@dataclass(frozen=True)
class RemoveSource:
    """Delete a plot from its plotter: only with the digest of a copy under
    its final name (`proof`), which the plotter compares with its own."""
    host: str
    plot: str
    confirmed_size: int
    proof: dict = field(default_factory=dict, compare=False, hash=False)

    def describe(self) -> str:
        return (f"{self.host}:{self.plot} (copy verified by {self.proof.get('method', '?')} "
                f"digest, {human_bytes(self.confirmed_size)})")


@dataclass(frozen=True)
class NoteDriveFailure:
    """Tell a harvester that a transfer into one of its drives failed by the
    drive's fault, so its record (and whether it is set aside) is the same
    for every controller."""
    host: str                # harvester
    to_dir: str
    key: str                 # plotter:plot:start, once per failed transfer
    at: float                # when it failed, on the harvester's clock
    error: str
    fatal: bool
    from_host: str
    plot: str

    def describe(self) -> str:
        return (f"{self.host}:{self.to_dir}: transfer of {os.path.basename(self.plot)} from "
                f"{self.from_host} failed{' (fatal for the drive)' if self.fatal else ''}: "
                f"{self.error}")


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


class WaitKind(str, Enum):
    """What kind of wait it is, for the code that tells them apart (alerts,
    --plots); `reason` is for people and says it in full."""
    # a plotter (subject "plotter")
    RULE = "rule"                   # one of plotman's rules holds: stagger, max jobs, tmp, dst
    BACKED_OFF = "backed_off"       # failed jobs in a row (blocked)
    NEVER_FITS = "never_fits"       # no tmp dir could ever hold a job (blocked)
    UNREACHABLE = "unreachable"     # the host did not answer this pass
    FARM_FULL = "farm_full"
    PLOT_LIMIT = "plot_limit"       # --plots N: this run's new jobs all started
    # a plot
    NOT_ARCHIVED = "not_archived"   # it cannot go as it is (its header names another plot)
    IN_TRANSFER = "in_transfer"     # copied or on its way; the harvester has the next word
    NO_DRIVE = "no_drive"           # no drive takes it now (busy, full, unreachable, none)
    PLOTTER_BUSY = "plotter_busy"   # max_transfers_per_plotter reached
    # a failed job's temp files
    CLEAN_UP = "clean_up"

    def __str__(self):
        return self.value


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
    kind: WaitKind = WaitKind.RULE

    def describe(self) -> str:
        return f"{self.host}: {self.subject}: waiting: {self.reason}"


def remove_after_promote(promote: Promote, source: dict, copy: dict) -> RemoveSource:
    """The source removal that a promote allows: `source` and `copy` are the
    digests the plotter and the harvester computed over the same ranges; the
    plot is only ever removed when they agree (ValueError otherwise)."""
    ok, why = same(source, copy)        # the agents' own comparison
    if not ok:
        raise ValueError(f"{promote.host}: {os.path.basename(promote.plot)} there differs "
                         f"from the source ({why}): source kept")
    proof = {k: copy[k] for k in ("size", "sha256", "method", "spec")}
    return RemoveSource(host=promote.from_host, plot=promote.plot,
                        confirmed_size=copy["size"], proof=proof)
