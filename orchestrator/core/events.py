"""What a pass did, as data: one Event per thing done, or tried and failed.

`kind` says what happened (no caller reads `detail` to find out); `detail`
is the one line a person reads, with paths and host messages as they are
(ui/ renders it as plain Text, never as markup).  `--json` prints events
as they are.

kinds: job_started, job_start_unanswered, job_start_failed, cleaned_dead,
clean_failed, drive_failure_recorded, copy_promoted, copy_confirmed,
copy_mismatch, copy_vanished, copy_conflict, source_removed, partial_cleaned,
transfer_started, transfer_failed, promote_failed, request_failed,
job_suspended_no_room, job_resumed_room (agent/ops/room.py),
check_started, check_failed_to_start, plot_quarantined,
job_suspended_bad_plots (proof checks: core/checker.py), and with
--check the same kinds prefixed `would_` (nothing was changed).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

# what `to_json` always carries; the facts below only when known
BASE = ("kind", "host", "subject", "detail", "failed")


@dataclass(frozen=True)
class Event:
    kind: str
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
