"""Kinds are types: event kinds, wait kinds and dir errors are str Enums (the
JSON keeps the plain strings), the enum lists exactly the event kinds a pass
emits, alerts tell a wait by its kind (never its words), and a phase is
written one way."""
import ast
import json
from dataclasses import replace
from pathlib import Path

from agent.vocab.wire import DirError
from orchestrator.core.alerts import conditions
from orchestrator.core.decisions import WaitKind
from orchestrator.core.events import Event, EventKind
from orchestrator.core.scheduler import schedule
from orchestrator.core.state import Failures, Phase, host_state_from_snapshot, phase_str
from orchestrator.plotloop import PassResult
from tests.factories import NOW, fleet, host_state, inventory, plotter
from tests.test_alerts import CONFIG, ERR

REPO = Path(__file__).resolve().parent.parent


EMITTERS = ("orchestrator/remote/apply.py", "orchestrator/core/followup.py")


def _emitted():
    """(file:line, kind expression) of every event made in orchestrator/:
    Event(kind, ...), and apply's _done / _failed(action, kind, ...)."""
    for path in sorted((REPO / "orchestrator").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None)
            at = {"Event": 0, "_done": 1, "_failed": 1}.get(name)
            if at is not None and len(node.args) > at:
                yield f"{path.relative_to(REPO)}:{node.lineno}", node.args[at]


def _members(expr):
    return {n.attr for n in ast.walk(expr)
            if isinstance(n, ast.Attribute) and getattr(n.value, "id", None) == "EventKind"}


def test_the_event_kinds_are_exactly_the_ones_a_pass_emits():
    made = 0
    for where, expr in _emitted():
        assert not isinstance(expr, (ast.Constant, ast.JoinedStr)), \
            f"{where}: a kind is an EventKind, not a string"
        made += 1
    assert made > 20
    # every member is made where events are made (some through a name:
    # guard_room's suspended / resumed), and only those exist
    named = set()
    for rel in EMITTERS:
        named |= _members(ast.parse((REPO / rel).read_text()))
    assert named == set(EventKind.__members__)


def test_an_events_json_keeps_the_plain_string():
    e = Event(EventKind.COPY_PROMOTED, "h1", "x.plot", "promoted")
    assert json.loads(json.dumps(e.to_json()))["kind"] == "copy_promoted"
    assert f"{e.kind}:{e.host}" == "copy_promoted:h1" and e.kind == "copy_promoted"


def _conditions(hs, hosts, waits):
    st = fleet(hs)
    return conditions(PassResult(st, (), tuple(waits), tuple(waits), None), hosts, CONFIG, {})[0]


def test_a_backed_off_plotter_is_told_by_its_waits_kind_not_its_words():
    p = plotter(global_stagger_m=0, max_failures=2, failure_backoff_m=60)
    hs = replace(host_state(p), failures=Failures(count=2, last_error=ERR, last_at=NOW - 60))
    (wait,) = schedule(fleet(hs), inventory(p), NOW).waits
    assert (wait.kind, wait.blocked) == (WaitKind.BACKED_OFF, True)
    reworded = replace(wait, reason="resting after 2 failures")
    assert [a.key for a in _conditions(hs, inventory(p), [reworded])] == ["backed_off:p1"]
    # the same words on another kind of wait are not a back-off
    lookalike = replace(wait, kind=WaitKind.NEVER_FITS)
    assert [a.key for a in _conditions(hs, inventory(p), [lookalike])] == []


def test_every_plotter_wait_says_its_kind():
    p = plotter(global_stagger_m=30)
    running = schedule(fleet(host_state(p)), inventory(p), NOW, max_new=0).waits
    assert [(w.subject, w.kind) for w in running] == [("plotter", WaitKind.PLOT_LIMIT)]
    assert json.loads(json.dumps(running[0].kind)) == "plot_limit"


def test_a_dir_error_and_a_phase_arrive_as_their_types():
    hs = host_state_from_snapshot("p1", ("plotter",), {
        "dirs": [{"path": "/d", "kind": "dst", "total_bytes": 0, "free_bytes": 0, "device": "1",
                  "error": "read-only file system", "error_code": "read_only"}],
        "jobs": [{"plot_id": None, "plotter": "chia", "k": 32, "pid": 3, "phase": [3, 4],
                  "state": "running", "tmp_dir": "/t", "dst_dir": "/d", "log_file": "/l",
                  "elapsed_s": 1.0, "tmp_bytes": 0}]})
    assert hs.dirs[0].error_code is DirError.READ_ONLY
    assert hs.jobs[0].phase == Phase(3, 4) == (3, 4) and str(hs.jobs[0].phase) == "3:4"
    assert hs.to_json()["jobs"][0]["phase"] == [3, 4]
    assert json.loads(json.dumps(hs.to_json()))["dirs"][0]["error_code"] == "read_only"
    assert (phase_str(None), phase_str((5, 0))) == ("?:?", "5:0")
