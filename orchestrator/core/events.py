"""What a pass did, as data: one Event per thing done, or tried and failed.

`kind` says what happened (no caller reads `detail` to find out); `detail`
is the one line a person reads, with paths and host messages as they are
(ui/ renders it as plain Text, never as markup).  `--json` prints events
as they are.

kinds: job_started, job_start_unanswered, job_start_failed, cleaned_dead,
clean_failed, drive_failure_recorded, copy_promoted, copy_confirmed,
copy_mismatch, copy_vanished, copy_conflict, source_removed, partial_cleaned,
transfer_started, transfer_failed, promote_failed, request_failed,
job_suspended_no_room, job_resumed_room (agent/ops/room.py), replot_deleted
(an old plot deleted to make room: its name and size, the rule, the new plot),
replot_refused (nothing deleted, and why), replot_space_missing (deleting
gave no space back: replotting stopped on that drive), and with
--check the same kinds prefixed `would_` (nothing was changed).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Event:
    kind: str
    host: str
    subject: str            # what it is about: a plot, a job, a dir
    detail: str             # one line, as shown
    failed: bool = False

    def to_json(self) -> dict:
        return asdict(self)
