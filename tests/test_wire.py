"""The wire, declared once: each op at its handler, its arguments from the
handler's signature and checked as strictly as the old tables did; every
error code the agent can send is a member of the Enum the controller knows."""
import ast
from pathlib import Path
from typing import Optional

import pytest

from agent import protocol
from agent.protocol import op
from agent.vocab import wire
from agent.vocab.wire import ErrorCode

AGENT = Path(__file__).resolve().parent.parent / "agent"


def declare(fn, reply=wire.ReserveDriveReply):
    ops = {}
    op(reply, registry=ops)(fn)
    return ops[fn.__name__]


def test_an_op_takes_its_arguments_and_their_types_from_its_signature():
    def reserve(agent, config: wire.Config, to_dir: str, size_bytes: int, at: float,
                fatal: Optional[bool] = False, ssh: Optional[wire.SshTarget] = None):
        return {"drive": to_dir}
    o = declare(reserve)
    good = {"config": {"tmp_dirs": []}, "to_dir": "/f", "size_bytes": 1, "at": 2}
    assert o.check(good) is None
    assert o.check(dict(good, at=2.5, fatal=None, ssh={"host": "h"})) is None
    for change, why in [
        ({"size": 1}, "reserve takes no argument size"),
        ({"to_dir": None}, "reserve: to_dir is required"),
        ({"size_bytes": True}, "reserve: size_bytes must be int, got bool"),
        ({"size_bytes": 1.5}, "reserve: size_bytes must be int, got float"),
        ({"at": "now"}, "reserve: at must be num, got str"),
        ({"fatal": 1}, "reserve: fatal must be bool, got int"),
        ({"config": {"tmp_dir": []}}, "reserve: config has unknown keys: tmp_dir"),
        ({"ssh": {"hots": "h"}}, "reserve: ssh has unknown keys: hots"),
    ]:
        assert o.check(dict(good, **change)) == why
    assert o.check({k: v for k, v in good.items() if k != "config"}) == \
        "reserve: config is required"
    assert o.reply is wire.ReserveDriveReply
    assert list(o.signature.parameters) == ["config", "to_dir", "size_bytes", "at", "fatal", "ssh"]


@pytest.mark.parametrize("why,fn", [
    ("needs its type", lambda agent, path: None),
    ("not a wire type", lambda agent, path: None),
    ("named arguments only", lambda agent, *paths: None),
    ("first parameter is `agent`", lambda config: None),
])
def test_a_declaration_the_wire_cannot_carry_is_refused_at_import(why, fn):
    if why == "not a wire type":
        fn.__annotations__ = {"path": bytes}
    if why == "named arguments only":
        fn.__annotations__ = {"paths": str}
    with pytest.raises(TypeError, match=why):
        declare(fn)


def test_a_reply_is_a_dataclass_and_an_op_is_declared_once():
    def read(agent, path: str):
        return {}
    with pytest.raises(TypeError, match="dataclass"):
        declare(read, reply=dict)
    ops = {}
    op(wire.ReadLogReply, registry=ops)(read)
    with pytest.raises(TypeError, match="declared twice"):
        op(wire.ReadLogReply, registry=ops)(read)


def test_every_op_of_the_agent_is_declared_with_a_reply_of_wire():
    ops = protocol.declared()
    assert {"hello", "snapshot", "start_job", "promote", "guard_room"} <= set(ops)
    for name, o in ops.items():
        assert o.name == name == o.handler.__name__
        assert o.reply.__module__ == wire.__name__, name
        assert o.handler.__module__.startswith("agent.ops."), name


def _codes_sent(path):
    """Every expression the agent gives as an error code in this file."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "code":
                    yield node.lineno, kw.value
            if getattr(node.func, "id", None) == "_error" and len(node.args) > 1:
                yield node.lineno, node.args[1]
        elif isinstance(node, ast.Assign):
            if any(getattr(t, "id", None) == "code" for t in node.targets):
                yield node.lineno, node.value


def test_every_error_code_the_agent_sends_is_a_member_the_controller_knows():
    seen = set()
    for path in sorted(AGENT.rglob("*.py")):
        for line, value in _codes_sent(path):
            where = f"{path.relative_to(AGENT.parent)}:{line}"
            if (isinstance(value, ast.Name) and value.id == "code") or \
                    (isinstance(value, ast.Attribute) and value.attr == "code"):
                continue        # passed on: an error's own code (checked where it is made)
            if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "ErrorCode":
                continue        # ActionError's own check that it is one
            assert (isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name)
                    and value.value.id == "ErrorCode"), f"{where}: code must be an ErrorCode member"
            assert value.attr in ErrorCode.__members__, where
            seen.add(ErrorCode[value.attr])
    # the ones the controller branches on are among them
    assert {ErrorCode.VANISHED, ErrorCode.MISMATCH, ErrorCode.CONFLICT, ErrorCode.EXISTS,
            ErrorCode.DEADLINE_EXPIRED, ErrorCode.BAD_REQUEST, ErrorCode.UNKNOWN_OP} <= seen


def test_a_code_outside_the_enum_cannot_leave_the_agent(agent, tmp_path):
    from agent.ops.common import ActionError
    with pytest.raises(ValueError):
        ActionError("no", code="nope")
    assert ActionError("no", code="busy").code is ErrorCode.BUSY
    r = agent.raw("no_such_op")
    assert (r["ok"], r["code"]) == (False, "unknown_op")
    r = agent.raw(["not", "a", "name"])
    assert (r["ok"], r["code"]) == (False, "unknown_op")
