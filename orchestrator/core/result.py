"""One pass, as data: what it saw, decided and did, and the view every face
shows of it, computed once in the pass.

plotloop.py builds a PassResult per pass; the CLI, the dashboard, the web
server, the application log and the alerts only read it: none of them
gathers, schedules or archives on its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple

from orchestrator.core.decisions import Wait
from orchestrator.core.events import Event
from orchestrator.core.failures import BackedOff
from orchestrator.core.farm import Farm
from orchestrator.core.outlook import status_json
from orchestrator.core.state import FleetState
from orchestrator.core.wave import Wave


@dataclass(frozen=True)
class PassResult:
    state: FleetState
    events: Tuple[Event, ...]       # what was done (or tried and failed)
    waits: Tuple[Wait, ...]         # everything not done, and why
    plotter_waits: Tuple[Wait, ...]  # the scheduler's, one per plotter not started on
    backpressure: Optional[str]
    decisions: dict = field(default_factory=dict)   # what was decided, as JSON
    outlooks: tuple = ()            # core/outlook.py: each plotter's dirs and lines
    farm: Optional[Farm] = None     # core/farm.py: the drives, their room
    backoffs: Tuple[BackedOff, ...] = ()    # the plotters backed off after failures
    wave: Optional[Wave] = None     # core/wave.py: where replotting stands, with its deadline
    seconds: float = 0.0            # how long the pass took

    @property
    def after(self) -> FleetState:
        """The snapshot with this pass's own actions applied
        (core/projection.py): what a summary under its events shows."""
        from orchestrator.core.projection import after_actions
        return after_actions(self.state, self.events)

    def status_json(self) -> dict:
        """status --json: the fleet, each plotter's outlook, the replot wave
        (when a harvester has replot rules)."""
        doc = status_json(self.state, self.outlooks)
        if self.wave is not None and self.wave.active:
            doc["replot"] = self.wave.to_json()
        return doc

    def to_json(self) -> dict:
        """plot-all --json: the status document, the decisions, the events."""
        return {**self.status_json(), "decisions": self.decisions,
                "events": [e.to_json() for e in self.events]}
