"""The controller's typed client: one method per declared op, its reply a
dataclass of agent/vocab/wire.py, refusals told apart by ErrorCode; a key or
a code one side does not know fails the tests and is a logged warning in
production, never dropped silently."""
import inspect
import logging
import os
import sys
import uuid

import pytest

from agent.protocol import declared
from agent.vocab import wire
from agent.vocab.wire import ErrorCode
from orchestrator.core.state import host_state_from_snapshot
from orchestrator.errors import (AgentError, AgentExited, BadReply, BastionFailed, HostKeyRefused,
                                 LostReply, SessionError)
from orchestrator.remote.client import AgentClient
from orchestrator.remote.fleet import Fleet
from orchestrator.remote.session import Session

PLOT = "plot-k32-2021-05-01-12-00-" + "ab" * 32 + ".plot"
JOB = {"plot_id": None, "plotter": "chiapos", "k": 18, "pid": 7, "phase": [1, 2],
       "state": "running", "tmp_dir": "/t", "dst_dir": "/d", "log_file": "/l/a.log",
       "elapsed_s": 5.0, "tmp_bytes": 0}


def test_each_op_is_a_method_with_its_handlers_arguments_and_reply():
    for name, op in declared().items():
        sig = inspect.signature(getattr(AgentClient, name))
        takes = [p for p in op.signature.parameters if p != "config"]
        assert list(sig.parameters) == ["self"] + takes + ["timeout"], name
        assert sig.return_annotation is op.reply, name
        for p in takes:     # required stays required, optional stays optional
            assert (sig.parameters[p].default is inspect.Parameter.empty) == op.args[p].required
    sig = inspect.signature(AgentClient.start_job)
    assert sig.return_annotation is wire.StartJobReply
    assert sig.parameters["tmp_dir"].default is inspect.Parameter.empty


def test_a_wrong_argument_is_refused_before_anything_is_sent(ssh_fleet):
    host = ssh_fleet(1).model_host("plotter1")
    s = Session(host.ssh)
    with pytest.raises(TypeError, match="plot_bytez"):
        AgentClient(s, host.agent_config()).guard_room(plot_bytez=1)
    with pytest.raises(TypeError, match="missing a required argument: .partial."):
        AgentClient(s, host.agent_config()).clean_partial()
    assert s._agent is None and s.conn is None          # never connected


def test_a_real_agent_answers_the_declared_replies_and_codes(ssh_fleet, tmp_path):
    fleet = ssh_fleet(1, 1)
    hosts = [fleet.model_host("plotter1"), fleet.model_host("harvester1")]
    with Fleet(hosts) as f:
        plotter, harvester = f.agent("plotter1"), f.agent("harvester1")
        hello = plotter.hello()
        assert isinstance(hello, wire.HelloReply) and hello.pid > 0
        snap = plotter.snapshot()
        assert isinstance(snap, wire.SnapshotReply)
        assert {d["kind"] for d in snap.dirs} >= {"tmp", "dst", "log"}
        assert plotter.list_logs().logs == []
        farm = hosts[1].farm_dirs[0]
        with pytest.raises(AgentError) as e:
            harvester.clean_partial(partial=os.path.join(farm, PLOT + ".plotfleet-tmp"))
        assert e.value.code is ErrorCode.VANISHED
        with pytest.raises(AgentError) as e:
            plotter.read_log(path="/etc/passwd")
        assert e.value.code is ErrorCode.REFUSED and "outside configured dirs" in str(e.value)
        # the untyped door for tests answers the same JSON object
        assert f.call("plotter1", "hello")["pid"] == hello.pid


def test_an_unknown_reply_key_fails_the_tests_and_warns_in_production(monkeypatch, caplog):
    got = {"pid": 4, "log_file": "/l/a.log", "replayed": False, "queued": True}
    with pytest.raises(wire.UnknownKeys, match="start_job reply: unknown keys: queued"):
        wire.reply(wire.StartJobReply, got, "start_job")
    monkeypatch.delenv(wire.STRICT_ENV)
    with caplog.at_level(logging.WARNING, logger="plotfleet.wire"):
        assert wire.reply(wire.StartJobReply, got, "start_job") == wire.StartJobReply(4, "/l/a.log")
    assert "start_job reply: ignoring unknown key queued" in caplog.text
    with pytest.raises(wire.BadReply, match="start_job reply lacks log_file"):
        wire.reply(wire.StartJobReply, {"pid": 4}, "start_job")


def test_an_unknown_snapshot_key_fails_the_tests_and_warns_in_production(monkeypatch, caplog):
    with pytest.raises(wire.UnknownKeys, match="snapshot Job: unknown keys: gpu"):
        host_state_from_snapshot("p1", ("plotter",), {"jobs": [dict(JOB, gpu=0)]})
    monkeypatch.delenv(wire.STRICT_ENV)
    with caplog.at_level(logging.WARNING, logger="plotfleet.wire"):
        hs = host_state_from_snapshot("p1", ("plotter",), {"jobs": [dict(JOB, gpu=0)]})
    assert hs.jobs[0].pid == 7 and "snapshot Job: ignoring unknown key gpu" in caplog.text


def test_an_error_code_the_controller_does_not_know_is_not_passed_over(monkeypatch, caplog):
    assert AgentError("no room", code="no_room").code is ErrorCode.NO_ROOM
    with pytest.raises(wire.UnknownKeys, match="unknown error code 'quota'"):
        AgentError("over quota", code="quota")
    monkeypatch.delenv(wire.STRICT_ENV)
    with caplog.at_level(logging.WARNING, logger="plotfleet.wire"):
        assert AgentError("over quota", code="quota").code is ErrorCode.REFUSED
    assert "unknown error code 'quota'" in caplog.text


def test_a_reply_that_is_not_the_declared_one_is_a_bad_reply():
    assert issubclass(BadReply, Exception)
    with pytest.raises(wire.BadReply, match="hello answered a JSON list"):
        wire.reply(wire.HelloReply, [1, 2], "hello")


# --- session errors by type ------------------------------------------------------

def _fake_python(tmp_path, serve):
    fake = tmp_path / f"python-{uuid.uuid4().hex[:6]}"
    fake.write_text(f"#!/bin/sh\ncase \"$*\" in *\"-m agent serve\"*) {serve};; esac\n"
                    f"exec {sys.executable} \"$@\"\n")
    fake.chmod(0o755)
    return str(fake)


def test_what_went_wrong_with_a_session_is_its_type(ssh_fleet, tmp_path):
    fleet = ssh_fleet(1)
    unknown = tmp_path / "known_hosts_without_it"
    unknown.write_text("")
    with pytest.raises(HostKeyRefused):
        Session(fleet.model_host("plotter1", known_hosts_file=str(unknown)).ssh).open()
    garbage = _fake_python(tmp_path, "while read -r line; do echo '[1, 2]'; done; exit 0")
    with pytest.raises(BadReply, match="agent sent a bad answer to hello"):
        Session(fleet.model_host("plotter1", python=garbage).ssh).open()
    gone = _fake_python(tmp_path, "exit 0")
    with pytest.raises(AgentExited):
        Session(fleet.model_host("plotter1", python=gone).ssh).open()
    for kind in (HostKeyRefused, BastionFailed, AgentExited, BadReply, LostReply):
        assert issubclass(kind, SessionError)
