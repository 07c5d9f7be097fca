"""The layout keeps the design: the pure core imports no I/O layer, the
agent imports nothing of the controller."""
import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORE_FORBIDDEN = ("orchestrator.remote", "orchestrator.ui", "orchestrator.cli",
                  "orchestrator.plotloop", "fabric", "paramiko", "invoke", "rich")


def imports(path: Path, root: Path = REPO):
    """Every module a file imports (relative ones resolved), at any depth."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            yield mod
            for a in node.names:
                yield f"{mod}.{a.name}"


def offenders(folder: str, forbidden, root: Path = REPO):
    out = []
    for path in sorted((root / folder).rglob("*.py")):
        for mod in imports(path, root):
            if any(mod == f or mod.startswith(f + ".") for f in forbidden):
                out.append(f"{path.relative_to(root)} imports {mod}")
    return out


def test_the_core_imports_no_io_layer():
    assert list((REPO / "orchestrator/core").rglob("*.py")), "no core package"
    assert offenders("orchestrator/core", CORE_FORBIDDEN) == []


def test_the_agent_imports_nothing_of_the_controller():
    assert offenders("agent", ("orchestrator", "fabric", "paramiko", "invoke", "rich",
                               "jinja2", "yaml", "tenacity")) == []


def test_core_and_config_import_only_the_vocabulary_of_the_agent():
    # the agent's facts, ops and launchers are its own; what a plot, a format
    # or a plotter is lives in agent/vocab, shared by both sides
    agent_internals = [m for m in ("agent." + p.name for p in (REPO / "agent").iterdir()
                                   if p.is_dir() and p.name not in ("vocab", "__pycache__"))]
    agent_internals += ["agent." + p.stem for p in (REPO / "agent").glob("*.py")
                        if p.stem != "__init__"]
    found = offenders("orchestrator/core", agent_internals) + offenders(
        "orchestrator/config", agent_internals)
    assert found == []
    bare = [f"{path.relative_to(REPO)} imports agent" for folder in ("orchestrator/core",
                                                                     "orchestrator/config")
            for path in sorted((REPO / folder).rglob("*.py"))
            for mod in imports(path) if mod == "agent"]
    assert bare == []


def test_the_vocabulary_is_a_leaf_of_the_standard_library():
    import sys
    allowed = set(sys.stdlib_module_names)
    found = []
    for path in sorted((REPO / "agent/vocab").rglob("*.py")):
        for mod in imports(path):
            top = mod.split(".")[0] if mod else ""
            if top == "agent":
                if not (mod == "agent.vocab" or mod.startswith("agent.vocab.")):
                    found.append(f"{path.relative_to(REPO)} imports {mod}")
            elif top and top not in allowed:
                found.append(f"{path.relative_to(REPO)} imports {mod}")
    assert found == []


def test_the_check_itself_sees_a_forbidden_import(tmp_path):
    core = tmp_path / "orchestrator/core"
    core.mkdir(parents=True)
    (core / "_layout_probe.py").write_text("from ..ui import views\nimport rich.table\n"
                                           "from .state import FleetState\n")
    found = offenders("orchestrator/core", CORE_FORBIDDEN, tmp_path)
    assert found == ["orchestrator/core/_layout_probe.py imports orchestrator.ui",
                     "orchestrator/core/_layout_probe.py imports orchestrator.ui.views",
                     "orchestrator/core/_layout_probe.py imports rich.table"]


def test_one_plot_name_pattern_in_the_code():
    """Plot names are read by agent/vocab/names.py alone: no other source
    spells a plot-name pattern (`plot-k` next to a regex digit class)."""
    import re
    found = []
    for folder in ("agent", "orchestrator"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if re.search(r"plot-k[^\s\"']*\\d|drplot-\(", line):
                    found.append(f"{path.relative_to(REPO)}:{n}")
    assert {f.rsplit(":", 1)[0] for f in found} == {"agent/vocab/names.py"}, found


FACES = ("orchestrator/ui", "orchestrator/serve", "orchestrator/unattended")
FACE_FORBIDDEN = ("orchestrator.remote", "orchestrator.plotloop", "orchestrator.cli")


def test_the_faces_observe_a_pass_and_reach_no_host():
    # the terminal, the web server, the log and the alerts are handed each
    # pass's result (plotloop.Loop); none gathers, plans or applies itself
    assert offenders("orchestrator/ui", FACE_FORBIDDEN) == []
    assert offenders("orchestrator/unattended", FACE_FORBIDDEN) == []
    assert offenders("orchestrator/serve", FACE_FORBIDDEN) == []


def test_no_module_of_the_core_imports_upward():
    up = [f for path in sorted((REPO / "orchestrator/core").rglob("*.py"))
          for mod in imports(path)
          if mod and mod.startswith("orchestrator")
          # the package's two leaves: its errors and its exit codes
          and not mod.startswith(("orchestrator.core", "orchestrator.errors",
                                  "orchestrator.exitcodes"))
          for f in [f"{path.relative_to(REPO)} imports {mod}"]]
    assert up == []


def _decision_types():
    """Every class core/decisions.py and core/plan.py define: what core decides."""
    names = set()
    for rel in ("orchestrator/core/decisions.py", "orchestrator/core/plan.py"):
        tree = ast.parse((REPO / rel).read_text())
        names |= {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    return names


def decisions_made(folder: str, names, root: Path = REPO):
    out = []
    for path in sorted((root / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(
                    f, ast.Attribute) else None
                if name in names:
                    out.append(f"{path.relative_to(root)}:{node.lineno} makes {name}")
    return out


def test_remote_carries_out_decisions_and_makes_none():
    names = _decision_types()
    assert {"StartJob", "StartTransfer", "Promote", "RemoveSource", "Plan"} <= names
    assert decisions_made("orchestrator/remote", names) == []


def test_the_decision_check_itself_sees_a_decision_made(tmp_path):
    remote = tmp_path / "orchestrator/remote"
    remote.mkdir(parents=True)
    (remote / "probe.py").write_text("from orchestrator.core import decisions as d\n"
                                     "def again(p):\n    return d.StartTransfer(p.host)\n")
    assert decisions_made("orchestrator/remote", _decision_types(), tmp_path) == [
        "orchestrator/remote/probe.py:3 makes StartTransfer"]


# the transport's own handshake (hello, end_agent) lives in the session; every
# other request goes through the typed client made from the declarations
OP_NAMERS = {"orchestrator/remote/client.py", "orchestrator/remote/session.py"}
REQUESTS = ("call", "call_all", "request", "raw", "_request", "_send", "getattr")


def string_op_names(folder: str, ops, root: Path = REPO):
    """Calls that name an agent op as a string (fleet.call(h, "snapshot"),
    getattr(client, "kill")), outside the client and the session."""
    out = []
    for path in sorted((root / folder).rglob("*.py")):
        rel = str(path.relative_to(root))
        if rel in OP_NAMERS:
            continue
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name not in REQUESTS:
                continue
            for a in node.args:
                if isinstance(a, ast.Constant) and a.value in ops:
                    out.append(f"{rel}:{node.lineno} names op {a.value}")
    return out


def test_only_the_client_names_an_agent_op():
    from agent.protocol import declared
    ops = set(declared())
    assert string_op_names("orchestrator", ops) == []
    # errors are told apart by type and code, never by their message
    for path in sorted((REPO / "orchestrator").rglob("*.py")):
        text = path.read_text()
        assert 'startswith(("agent exited"' not in text and 'code == "' not in text, path


def test_the_op_check_itself_sees_a_string_op_name(tmp_path):
    remote = tmp_path / "orchestrator/remote"
    remote.mkdir(parents=True)
    (remote / "probe.py").write_text('fleet.call(h, "snapshot")\nf(h, "snapshot")\n'
                                     'getattr(client, "kill")()\n')
    assert string_op_names("orchestrator", {"snapshot", "kill"}, tmp_path) == [
        "orchestrator/remote/probe.py:1 names op snapshot",
        "orchestrator/remote/probe.py:3 names op kill"]
