"""suspend / resume / kill carried out: one request per chosen job (the
choice is core/control.py's), each independent, a refusal or a host down
becoming that job's error while the rest go on."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping, Optional, Sequence, Tuple, Union

from agent.vocab.wire import JobStateReply, RemovedFilesReply
from orchestrator.core.control import Target
from orchestrator.core.state import Host
from orchestrator.errors import one_line
from orchestrator.remote.client import AgentClient

Reply = Union[JobStateReply, RemovedFilesReply]


@dataclass(frozen=True)
class Done:
    target: Target
    op: str
    result: Optional[Reply] = None
    error: Optional[str] = None

    def to_json(self) -> dict:
        extra = {"error": self.error} if self.error is not None else (
            asdict(self.result) if self.result is not None else {})
        return dict(self.target.to_json(), op=self.op, **extra)


def send(agent: AgentClient, t: Target, op: str) -> Reply:
    """The command `op` (suspend | resume | kill) for one job: only kill
    names a plot id (a dead job has no pid)."""
    if op == "kill":
        return agent.kill(plot_id=t.plot_id, pid=t.pid, started_at=t.started_at)
    if op == "suspend":
        return agent.suspend(pid=t.pid, started_at=t.started_at)
    if op == "resume":
        return agent.resume(pid=t.pid, started_at=t.started_at)
    raise ValueError(f"no such command: {op}")


def act(fleet, hosts: Mapping[str, Host], targets: Sequence[Target], op: str) -> Tuple[Done, ...]:
    done = []
    for t in targets:
        try:
            res = send(fleet.agent(t.host), t, op)
        except Exception as e:      # one host's refusal must not stop the rest
            done.append(Done(t, op, error=one_line(e)))
            continue
        done.append(Done(t, op, result=res))
    return tuple(done)
