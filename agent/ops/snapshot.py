"""The snapshot: everything the host sees (agent/facts/snapshot.py), each
job with why this agent paused it for room (ops/room.py), if it did."""
from ..protocol import op
from ..vocab import wire
from . import room


@op(wire.SnapshotReply)
def snapshot(agent, config: wire.Config):
    snap = agent.snapshot(config or {})
    why = room.paused(snap["jobs"])     # suspended by the agent for room: say why
    for j in snap["jobs"]:
        j["paused"] = why.get(j["pid"])
    return snap
