"""One host's agent as typed methods: `client.start_job(...) -> StartJobReply`.

The methods are made from the agent's own declarations (agent/protocol.py,
`@op(Reply)` on each handler in agent/ops/): one method per op, with the
handler's arguments as keyword-only parameters (its `config` goes with every
request by itself, the host's own dirs and thresholds), an optional
`timeout`, and the op's reply dataclass (agent/vocab/wire.py) as what it
returns.  So an op is declared once, and this is the only place in the
controller that names an op as a string.

Errors, by type only: SessionError (and its kinds in orchestrator/errors.py)
when the host or its channel fails or the answer is not the declared reply,
AgentError with an ErrorCode on a refusal.  A wrong argument name is a
TypeError here, before anything is sent.
"""
from __future__ import annotations

import inspect

from agent.protocol import Op, declared
from agent.vocab import wire
from orchestrator.errors import BadReply


class AgentClient:
    """The agent behind one Session (which connects on first use); `config`
    is the host's (Host.agent_config()), sent with every op that takes one."""

    def __init__(self, session, config: wire.Config):
        self.session = session
        self.config = config

    def call(self, op: Op, args: dict, timeout=None):
        """One declared op with these arguments -> its reply dataclass."""
        if "config" in op.args:
            args = dict(args, config=self.config)
        result = self.session.request(op.name, timeout=timeout, **args)
        try:
            return wire.reply(op.reply, result, op.name)
        except ValueError as e:         # wire.BadReply, wire.UnknownKeys
            raise BadReply(f"agent sent a bad answer to {op.name}: {e}") from None

    def raw(self, name: str, timeout=None, **args) -> dict:
        """The answer as the JSON object it is (tests, `Fleet.call`)."""
        op = declared().get(name)
        if op is not None and "config" in op.args:
            args = dict(args, config=self.config)
        return self.session.request(name, timeout=timeout, **args)


def _method(op: Op):
    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
              for p in op.signature.parameters.values() if p.name != "config"]
    timeout = inspect.Parameter("timeout", inspect.Parameter.KEYWORD_ONLY, default=None)
    self = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    sig = inspect.Signature([self] + params + [timeout], return_annotation=op.reply)

    def method(self, **kwargs):
        args = sig.bind(self, **kwargs).arguments      # TypeError: no such argument
        args.pop("self")
        t = args.pop("timeout", None)
        return self.call(op, dict(args), timeout=t)
    method.__name__ = method.__qualname__ = op.name
    method.__signature__ = sig
    method.__doc__ = op.handler.__doc__
    return method


for _op in declared().values():
    setattr(AgentClient, _op.name, _method(_op))
