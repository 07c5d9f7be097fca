"""The agent's declared protocol: nothing a request carries is dropped
silently, and a controller never talks to an agent of another protocol."""
import os
import shutil
import uuid

import pytest

from agent.protocol import OPS, PROTOCOL_VERSION
from orchestrator.remote import deploy
from orchestrator.remote.session import Session
from tests.agent_helpers import host_dirs


@pytest.mark.parametrize("op,args,why", [
    ("snapshot", {"confg": {}}, "snapshot takes no argument confg"),
    ("read_log", {"path": "/x"}, "read_log: config is required"),
    ("start_job", {"argv": "rm -rf /", "tmp_dir": "/t", "dst_dir": "/d"},
     "start_job: argv must be list, got str"),
    ("reserve_drive", {"to_dir": "/f", "plot": "p.plot", "size_bytes": True},
     "reserve_drive: size_bytes must be int, got bool"),
    ("promote", {"partial": "/f/x.plot.plotfleet-tmp", "size_bytes": 10},
     "promote takes no argument size_bytes"),
])
def test_unknown_missing_or_mistyped_arguments_are_refused(agent, tmp_path, op, args, why):
    _, config = host_dirs(tmp_path)
    if op != "read_log":
        args = dict(args, config=config)
    r = agent.raw(op, **args)
    assert (r["ok"], r["code"], r["error"]) == (False, "bad_request", why)


def test_a_typo_in_limits_or_config_is_refused_not_ignored(agent, tmp_path):
    d, config = host_dirs(tmp_path)
    r = agent.raw("start_job", config=config, argv=["true"], tmp_dir=d["tmp"], dst_dir=d["dst"],
                  limits={"global_max_job": 1})
    assert r["code"] == "bad_request" and "limits has unknown keys: global_max_job" in r["error"]
    assert os.listdir(d["log"]) == []          # nothing started
    r = agent.raw("snapshot", config=dict(config, requre_mounted_farm=False))
    assert r["code"] == "bad_request" and "requre_mounted_farm" in r["error"]


def test_every_op_the_agent_serves_is_declared():
    from agent.serve import OPS as SERVED
    assert set(SERVED) == set(OPS)


def test_an_agent_of_another_protocol_is_deployed_again(ssh_fleet, tmp_path):
    src = tmp_path / "agent-src"
    shutil.copytree(deploy.AGENT_DIR, src, ignore=shutil.ignore_patterns("__pycache__"))
    (src / "_stamp.py").write_text(f"# {uuid.uuid4()}\n")
    host = ssh_fleet(1).model_host("plotter1")
    try:
        with Session(host, agent_dir=src) as s:
            assert s.deployed.uploaded and s.info["protocol"] == PROTOCOL_VERSION
            deployed = s.deployed.dir
        # the folder on the host changed under the same version: it speaks protocol 1
        proto = os.path.join(deployed, "agent", "protocol.py")
        text = open(proto).read()
        open(proto, "w").write(text.replace(f"PROTOCOL_VERSION = {PROTOCOL_VERSION}",
                                            "PROTOCOL_VERSION = 1"))
        # an edit made later than the deploy (within the same second as the
        # deploy, Python would trust its cached bytecode of the old file)
        later = os.stat(proto).st_mtime + 60
        os.utime(proto, (later, later))
        with Session(host, agent_dir=src) as s:
            assert s.deployed.uploaded, "a mismatching agent must be deployed again"
            assert s.info["protocol"] == PROTOCOL_VERSION
            assert s.request("hello")["protocol"] == PROTOCOL_VERSION
        assert open(proto).read() == text
    finally:
        shutil.rmtree(os.path.expanduser(f"~/.plotfleet/agent-{deploy.agent_bundle(src).hash}"),
                      ignore_errors=True)
