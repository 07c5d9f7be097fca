"""suspend / resume / kill carried out: one request per chosen job (the
choice is core/control.py's), each independent, a refusal or a host down
becoming that job's error while the rest go on."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Tuple

from orchestrator.core.control import Target
from orchestrator.core.state import Host
from orchestrator.errors import one_line


@dataclass(frozen=True)
class Done:
    target: Target
    op: str
    result: Optional[dict] = None
    error: Optional[str] = None

    def to_json(self) -> dict:
        extra = {"error": self.error} if self.error is not None else (self.result or {})
        return dict(self.target.to_json(), op=self.op, **extra)


def request_args(t: Target, op: str) -> dict:
    """What the agent's op takes (agent/protocol.py): only kill names a plot id."""
    args = {"pid": t.pid, "started_at": t.started_at}
    if op == "kill":
        args["plot_id"] = t.plot_id
    return args


def act(fleet, hosts: Mapping[str, Host], targets: Sequence[Target], op: str) -> Tuple[Done, ...]:
    done = []
    for t in targets:
        try:
            res = fleet.call(t.host, op, **request_args(t, op))
        except Exception as e:      # one host's refusal must not stop the rest
            done.append(Done(t, op, error=one_line(e)))
            continue
        done.append(Done(t, op, result=res))
    return tuple(done)
