"""Shared fixtures: real sshd test hosts and real k=18 plots (see tests/sshhosts.py)."""
import atexit
import os
import shutil
import tempfile
import uuid

import pytest

from orchestrator.remote import deploy
from tests.agent_helpers import AgentProc
from tests.sshhosts import PlotCache, SshFleet, Tmpfs

# tests/data holds other projects' files (plotman's manager_test.py): read, never run
collect_ignore_glob = ["data/*"]

# A HOME of this run's own, for the controller here and (through sshd's
# SetEnv) every test host: ~/.plotfleet (agent bundles, state, the app log)
# starts empty, is never root's real one, and is not shared with another
# pytest-xdist worker running at the same time.
_HOME = tempfile.mkdtemp(prefix=f"plotfleet-home-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-")
os.environ["HOME"] = _HOME
atexit.register(shutil.rmtree, _HOME, True)
# a key or error code one side of the agent's wire does not know is an error
# here (in production a logged warning): agent/vocab/wire.py
os.environ["PLOTFLEET_STRICT_WIRE"] = "1"


@pytest.fixture
def agent():
    """A real `python -m agent serve`, spoken to over JSON lines."""
    a = AgentProc()
    yield a
    a.close()


@pytest.fixture
def ssh_fleet(tmp_path):
    """Factory: ssh_fleet(n_plotters=1, n_harvesters=0, **vars) -> SshFleet."""
    fleets = []

    def start(n_plotters=1, n_harvesters=0, **vars):
        f = SshFleet(tmp_path / f"fleet{len(fleets)}", n_plotters, n_harvesters, **vars)
        fleets.append(f)
        return f

    yield start
    for f in fleets:
        f.stop_all()


@pytest.fixture(scope="session")
def k18_plots(tmp_path_factory):
    """Real chiapos k=18 plots, made once per session; .copy_to(dir, n)."""
    return PlotCache(tmp_path_factory.mktemp("k18-plots"))


@pytest.fixture(scope="session")
def v2_plots(tmp_path_factory):
    """Real PoS2 k=18 plots (chia_rs through the pos2 launcher), made once per session."""
    from tests.pos2plots import V2Cache
    return V2Cache(tmp_path_factory.mktemp("v2-plots"))


@pytest.fixture
def tmpfs():
    """Separate small filesystems (one device each: harvester drives), unmounted after."""
    t = Tmpfs()
    yield t
    t.close()


@pytest.fixture
def fresh_agent(tmp_path):
    """A copy of agent/ with unique content, so its hash was never deployed before."""
    d = tmp_path / "agent-src"
    shutil.copytree(deploy.AGENT_DIR, d, ignore=shutil.ignore_patterns("__pycache__"))
    (d / "_stamp.py").write_text(f"# {uuid.uuid4()}\n")
    yield d
    shutil.rmtree(os.path.expanduser(f"~/.plotfleet/agent-{deploy.agent_bundle(d).hash}"),
                  ignore_errors=True)
