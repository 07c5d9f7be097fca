"""plotfleet's own command line: grouped help without invoke's core options,
its version, typo suggestions, help that agrees with what each task takes,
the first-steps message when no inventory is found, the exit-code table,
and Ctrl-C on plot-all (exit 130, naming what it left running)."""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import psutil

from orchestrator import exitcodes
from orchestrator.cli import GROUPS, ns
from tests.cli import REPO, plotfleet, status_json

INVOKE_CORE = ("--prompt-for-sudo-password", "--pty", "--dry", "--echo", "--write-pyc",
               "--warn-only", "--collection", "--search-root", "--complete")


def test_help_groups_every_task_once_and_hides_invokes_core_options():
    r = plotfleet("--help")
    assert r.returncode == 0, r.stderr
    text = r.stdout
    for flag in INVOKE_CORE:
        assert flag not in text, flag
    assert "STRING" not in text and "Core options" not in text
    sections = dict(re.findall(r"^(\w+):\n((?:  \S.*\n)+)", text, re.M))
    assert list(sections)[:4] == ["run", "look", "act", "migrate"], text
    listed = [line.split()[0] for group in ("run", "look", "act", "migrate")
              for line in sections[group].splitlines()]
    assert sorted(listed) == sorted(ns.task_names), listed      # each task, once
    assert "import-plotman" in sections["migrate"] and "plot-all" in sections["run"]
    assert "status" in sections["look"] and "kill" in sections["act"]
    for flag in ("--inventory=PATH", "--limit=PATTERN", "--json", "--check", "--version"):
        assert flag in text


def test_version_is_plotfleet_and_the_package_version():
    with open(REPO / "pyproject.toml") as f:
        version = re.search(r'^version = "(.+)"', f.read(), re.M).group(1)
    for flag in ("--version", "-V"):
        r = plotfleet(flag)
        assert (r.returncode, r.stdout, r.stderr) == (0, f"plotfleet {version}\n", "")


def test_a_mistyped_task_or_flag_is_one_line_with_the_nearest_name():
    for args, hint in ((["stauts"], "did you mean status?"),
                       (["plot-al"], "did you mean plot-all?"),
                       (["status", "--inventroy", "x.yaml"], "did you mean --inventory?"),
                       (["--help", "stauts"], "did you mean status?"),
                       (["xyzzy"], "`plotfleet --help` lists the tasks")):
        r = plotfleet(*args)
        assert r.returncode == exitcodes.USAGE, (args, r.stderr)
        assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
        assert hint in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)


def test_every_tasks_help_agrees_with_the_options_it_takes():
    contexts = {c.name: c for c in ns.to_contexts()}
    for group, tasks in GROUPS:
        for t in tasks:
            r = plotfleet(t.name, "--help")
            assert r.returncode == 0 and "STRING" not in r.stdout, (t.name, r.stdout)
            ctx = contexts[t.name]
            usage = r.stdout.splitlines()[0]
            opts = r.stdout.split("options:", 1)[-1]
            shown = set(re.findall(r"--([a-z][a-z-]*)", opts))
            shown |= set(re.findall(r"^  -([a-z]) ", opts, re.M))   # -n: a flag with no long name
            def long(a):
                return max(a.names, key=len)
            takes = {long(a) for a in ctx.flags.values() if not a.positional}
            # every option it takes is in its help, and help names only those
            assert takes <= shown, (t.name, takes - shown)
            assert {f for f in shown if f in {long(a) for a in ctx.flags.values()}} == takes
            for a in ctx.positional_args:           # positionals are in the usage line
                assert long(a).upper().replace("-", "_") in usage, (t.name, usage)
                assert f"--{long(a)}" not in r.stdout, (t.name, r.stdout)
            # every task reads an inventory (keys: to check it) and takes --inventory
            assert "inventory" in takes, t.name


def test_no_inventory_found_names_the_ways_to_give_one(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PLOTFLEET_INVENTORY"}
    env.update(PYTHONPATH=str(REPO))
    for args in (["status"], ["plot-all", "--once"], ["history"], ["service", "install"]):
        r = subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == exitcodes.USAGE, (args, r.stderr)
        [line] = r.stderr.strip().splitlines()
        for hint in ("inventory.yaml", "--inventory", "$PLOTFLEET_INVENTORY",
                     "inventory.example.yaml"):
            assert hint in line, (args, line)
    assert os.listdir(tmp_path) == []           # nothing written


def test_readme_exit_code_table_is_the_one_the_program_uses():
    text = (REPO / "README.md").read_text()
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\d+)` \| (.+?) \|$", section, re.M)
    assert [int(code) for code, _ in rows] == [code for code, _ in exitcodes.TABLE]
    for (code, said), (_, what) in zip(rows, exitcodes.TABLE):
        assert said == what, code
    # each code in action: 0 here; 2 above (a typo, no inventory); 130 below;
    # 4 in test_cli_status (a host down); 1 in test_cli_status (stdout's reader
    # left) and test_failures_e2e (a --plots run that cannot go on)
    assert plotfleet("keys", "--json").returncode == exitcodes.OK


def _demo(tmp_path):
    shutil.copy(REPO / "inventory.example.yaml", tmp_path / "inventory.yaml")
    return tmp_path / "inventory.yaml"


def test_ctrl_c_in_plot_all_exits_130_naming_the_job_it_left_running(tmp_path):
    inv = _demo(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="200", NO_COLOR="1", LANG="C.UTF-8")
    p = subprocess.Popen([sys.executable, "-m", "orchestrator", "plot-all", "--inventory",
                          str(inv), "--plots", "1"], cwd=tmp_path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = p.stdout.readline()
        while " ▶ localhost " not in first:        # the key line, then the start
            assert first, p.stderr.read()
            first = p.stdout.readline()
        pid = int(re.search(r"\(pid (\d+)\)", first).group(1))
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        assert p.returncode == exitcodes.INTERRUPTED, (out, err)
        assert "Traceback" not in err
        # by plot id once known, else its pid, else (a pass cut short) its log's name
        assert re.search(rf"left running on the hosts: 1 job \(localhost "
                         rf"(pid {pid}|[0-9a-f]{{8}}|[\d-]+T[\d_.]+_chiapos)\)", err), err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        # the job runs on without the controller (k18: seconds); let it end here
        deadline = time.time() + 60
        while any(str(tmp_path) in " ".join(q.info["cmdline"] or [])
                  for q in psutil.process_iter(["cmdline"])):
            assert time.time() < deadline
            time.sleep(0.2)


def test_create_dirs_makes_the_demos_dirs_never_a_mistyped_mount(tmp_path):
    # the demo inventory with one dst dir copied from the example's real-machine
    # part and mistyped: it is a drive to mount, reported missing, never made
    typo = f"/mnt/plotfleet-hdd-{os.getpid()}-{time.time_ns()}/dst"
    inv = _demo(tmp_path)
    text = inv.read_text().replace('dst_dirs: ["{{ base }}/dst"]',
                                   f'dst_dirs: ["{{{{ base }}}}/dst", "{typo}"]')
    assert typo in text
    inv.write_text(text)
    try:
        r, doc = status_json(inv)
        assert r.returncode == 0, r.stderr
        dirs = {d["path"]: d for d in doc["hosts"][0]["dirs"]}
        assert os.path.isdir(tmp_path / "demo" / "dst") and dirs[str(tmp_path / "demo" / "dst")]["error"] is None
        assert os.path.isdir(tmp_path / "demo" / "farm2")
        assert dirs[typo]["error"] and "missing" in dirs[typo]["error"], dirs[typo]
        assert not os.path.exists(os.path.dirname(typo))
    finally:
        shutil.rmtree(os.path.dirname(typo), ignore_errors=True)
