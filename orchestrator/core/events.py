"""What a pass did, as data: one Event per thing done, or tried and failed.

`kind` says what happened (no caller reads `detail` to find out); `detail`
is the one line a person reads, with paths and host messages as they are
(ui/ renders it as plain Text, never as markup).  `--json` prints events
as they are, `kind` as its plain string.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum
from typing import Optional

# what `to_json` always carries; the facts below only when known
BASE = ("kind", "host", "subject", "detail", "failed")


class EventKind(str, Enum):
    """Every kind of event a pass emits (remote/apply.py), and no other."""
    JOB_STARTED = "job_started"
    JOB_START_UNANSWERED = "job_start_unanswered"   # asked again next pass with its request id
    JOB_START_FAILED = "job_start_failed"
    JOB_SUSPENDED_NO_ROOM = "job_suspended_no_room"     # agent/ops/room.py
    JOB_RESUMED_ROOM = "job_resumed_room"
    CLEANED_DEAD = "cleaned_dead"
    DRIVE_FAILURE_RECORDED = "drive_failure_recorded"
    PLOT_HEADER_MISMATCH = "plot_header_mismatch"   # its header names another plot: not archived
    COPY_PROMOTED = "copy_promoted"
    COPY_CONFIRMED = "copy_confirmed"               # the final file was there with the same bytes
    COPY_MISMATCH = "copy_mismatch"
    COPY_VANISHED = "copy_vanished"
    COPY_CONFLICT = "copy_conflict"
    SOURCE_REMOVED = "source_removed"
    PARTIAL_CLEANED = "partial_cleaned"
    CLAIM_FAILED = "claim_failed"                   # the harvester would not reserve the drive
    TRANSFER_STARTED = "transfer_started"
    PROMOTE_FAILED = "promote_failed"
    REQUEST_FAILED = "request_failed"
    # proof checks (core/checker.py, agent/launch/check.py)
    CHECK_STARTED = "check_started"
    CHECK_FAILED_TO_START = "check_failed_to_start"
    PLOT_QUARANTINED = "plot_quarantined"           # failed its proof check: in <dst>/quarantine/
    JOB_SUSPENDED_BAD_PLOTS = "job_suspended_bad_plots"     # an endless job making bad plots
    # replotting (core/replot.py, agent/ops/replot.py)
    REPLOT_DELETED = "replot_deleted"       # an old plot deleted for a new one: name, size,
                                            # the rule, the plot it made room for
    REPLOT_REFUSED = "replot_refused"       # nothing deleted, and why
    REPLOT_SPACE_MISSING = "replot_space_missing"   # deleting gave no space back: stopped there
    # under --check: what would be done (nothing was changed)
    WOULD_START_JOB = "would_start_job"
    WOULD_CLEAN_DEAD = "would_clean_dead"
    WOULD_RECORD_DRIVE_FAILURE = "would_record_drive_failure"
    WOULD_PROMOTE = "would_promote"
    WOULD_CLEAN_PARTIAL = "would_clean_partial"
    WOULD_TRANSFER = "would_transfer"
    WOULD_REPLOT_DELETE = "would_replot_delete"
    WOULD_CHECK = "would_check"
    WOULD_QUARANTINE = "would_quarantine"
    WOULD_SUSPEND_JOB = "would_suspend_job"

    def __str__(self):
        return self.value


@dataclass(frozen=True)
class Event:
    kind: EventKind
    host: str
    subject: str            # what it is about: a plot, a job, a dir
    detail: str             # one line, as shown (`-v`, and wherever facts are missing)
    failed: bool = False
    # the facts a one-line rendering is made of (ui/eventline.py): the plot's
    # id, the dir on `host` it is about, the other end (a start's dst, a
    # transfer's farm dir), size, pid, what ran, and the cause alone
    plot_id: Optional[str] = None
    dir: Optional[str] = None
    to_host: Optional[str] = None
    to_dir: Optional[str] = None
    size_bytes: Optional[int] = None
    pid: Optional[int] = None
    what: Optional[str] = None      # "chiapos k18"
    why: Optional[str] = None       # the reason or error, without the rest of `detail`

    def to_json(self) -> dict:
        """The five base keys always, each fact only when known."""
        return {k: v for k, v in asdict(self).items() if k in BASE or v is not None}
