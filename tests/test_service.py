"""`plotfleet service`: a systemd user unit that runs plot-all.  No user
manager runs on these machines, so the unit is checked by systemd's own
parser (`systemd-analyze --user verify`), and install says plainly that it
could not enable it and prints the unit to copy."""
import os
import shlex
import subprocess

from tests.cli import plotfleet


def unit_env(tmp_path):
    runtime = tmp_path / "xdg-runtime"
    runtime.mkdir(mode=0o700)
    return {"XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_RUNTIME_DIR": str(runtime)}


def test_install_writes_a_unit_systemd_accepts_and_says_it_could_not_enable_it(tmp_path):
    farm = tmp_path / "my farm %d"           # a space and a systemd specifier in the path
    farm.mkdir()
    inv = farm / "fleet.yaml"
    inv.write_text((open(os.path.join(os.path.dirname(__file__), "..",
                                      "inventory.example.yaml")).read()))
    env = unit_env(tmp_path)
    r = plotfleet("service", "install", "--inventory", inv, "--limit", "plotters:!p3", env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    unit = tmp_path / "config/systemd/user/plotfleet-fleet.service"
    assert "wrote nothing" in r.stdout and "could not enable plotfleet-fleet.service" in r.stdout
    assert not unit.exists() and not unit.parent.exists()     # no unit that would never run
    # printed whole, to copy: after the line naming where it goes
    text = r.stdout.split(f"then `systemctl --user enable --now plotfleet-fleet.service`):\n\n",
                          1)[1].rstrip("\n") + "\n"
    copied = tmp_path / "copy" / "plotfleet-fleet.service"
    copied.parent.mkdir()
    copied.write_text(text)
    verify = subprocess.run(["systemd-analyze", "--user", "verify", str(copied)],
                            capture_output=True, text=True, env=dict(os.environ, **env))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # ExecStart reads back as the command plot-all needs, the odd path intact
    [line] = [x for x in text.splitlines() if x.startswith("ExecStart=")]
    argv = shlex.split(line[len("ExecStart="):].replace("%%", "%"))
    assert argv[1:] == ["-m", "orchestrator", "plot-all", "--inventory", str(inv),
                        "--limit", "plotters:!p3"]
    assert os.access(argv[0], os.X_OK)
    r = plotfleet("service", "uninstall", "--inventory", inv, env=env)
    assert not unit.exists(), r.stdout


def test_bad_input_changes_nothing(tmp_path):
    env = unit_env(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("all:\n  hosts:\n    h1:\n      k: lots\n")
    for args in (["service", "install", "--inventory", bad],
                 ["service", "restart", "--inventory", bad],
                 ["service", "install", "--inventory", bad, "--name", "../x"]):
        r = plotfleet(*args, env=env)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "Traceback" not in r.stderr
    assert not (tmp_path / "config").exists()
