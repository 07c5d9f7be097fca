"""What carrying out one planned action came to, as data.

remote/apply.py returns one Outcome per action of a Plan (core/plan.py),
never filling in anything passed to it; core/followup.py reads them and
decides what follows in the same pass.  `action` is the decision carried
out; `events` what was done (core/events.py), already said.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Tuple

from orchestrator.core.events import Event


@dataclass(frozen=True)
class Outcome:
    """Done as decided (under --check: said, nothing changed)."""
    action: Any
    events: Tuple[Event, ...]


@dataclass(frozen=True)
class Failed(Outcome):
    """Refused or not answered: `code` is the agent's error code (None when
    the session failed), `error` the one line it said."""
    code: Any = None
    error: str = ""


@dataclass(frozen=True)
class Started(Outcome):
    """A start_job (or its repeat) the host answered: the job runs."""
    pid: int = 0
    log_file: str = ""


@dataclass(frozen=True)
class Unanswered(Outcome):
    """A start_job that went out and got no answer: it may be running.
    `args`: the request as sent, request id included, to send it again."""
    args: dict = field(default_factory=dict, compare=False, hash=False)
    sent_at: float = 0.0
    error: str = ""


@dataclass(frozen=True)
class CopyLost(Outcome):
    """A promote found the copy gone or not matching its source."""
    why: str = ""


@dataclass(frozen=True)
class NameTaken(Outcome):
    """A drive claim found a file of the plot's final name already there."""


@dataclass(frozen=True)
class Promoted(Outcome):
    """A copy checked and under its final name: the digests both hosts
    computed over the same ranges (`source`, and `copy` with its spec)."""
    source: dict = field(default_factory=dict, compare=False, hash=False)
    copy: dict = field(default_factory=dict, compare=False, hash=False)
