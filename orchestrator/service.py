"""plot-all as a systemd user service on an always-on box.

`plotfleet service install` writes a user unit that runs plot-all for one
inventory (and --limit), reloads the user manager and enables it now.  A
user unit starts at boot only with lingering (`loginctl enable-linger`);
install says whether it is on.  Where no user manager answers (systemd
missing, a container, no login session), install says so plainly, writes
nothing and prints the unit to copy; nothing is half-installed.
"""
from __future__ import annotations

import getpass
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import List, Optional, Tuple

import jinja2

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
_ENV.filters["q"] = lambda s: systemd_quote(str(s))
_ENV.filters["path"] = lambda s: str(s).replace("%", "%%")   # one value: no quotes
UNIT = _ENV.from_string("""\
# written by `plotfleet service install`; remove with `plotfleet service uninstall`
[Unit]
Description=plotfleet plot-all ({{ inventory | path }}{{ " --limit " ~ limit | path if limit else "" }})
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
WorkingDirectory={{ workdir | path }}
Environment=PYTHONUNBUFFERED=1
ExecStart={{ argv | map("q") | join(" ") }}
# plot-all keeps going around broken hosts; a crash of the controller itself
# restarts it (jobs and transfers run on the hosts and do not notice)
Restart=on-failure
RestartSec=30
KillSignal=SIGINT
TimeoutStopSec=60

[Install]
WantedBy=default.target
""")

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def systemd_quote(word: str) -> str:
    """One word of an ExecStart= line, as systemd splits them."""
    if word and re.fullmatch(r"[A-Za-z0-9_./:=@+,-]+", word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'


@dataclass(frozen=True)
class Unit:
    name: str               # plotfleet-<name>.service
    path: str               # where the unit file goes
    text: str


def unit_dir() -> str:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return os.path.join(base, "systemd", "user")


def build(inventory: str, limit: Optional[str], name: str) -> Unit:
    inventory = os.path.abspath(inventory)
    argv = [sys.executable, "-m", "orchestrator", "plot-all", "--inventory", inventory]
    if limit:
        argv += ["--limit", limit]
    text = UNIT.render(argv=argv, inventory=inventory, limit=limit,
                       workdir=os.path.dirname(inventory))
    unit = f"plotfleet-{name}.service"
    return Unit(unit, os.path.join(unit_dir(), unit), text)


def _run(argv: List[str]) -> Tuple[int, str]:
    if shutil.which(argv[0]) is None:
        return 127, f"{argv[0]} not found (no systemd here)"
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                           stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return 1, str(e)
    return p.returncode, (p.stdout + p.stderr).strip()


def systemctl(*args: str) -> Tuple[int, str]:
    return _run(["systemctl", "--user", *args])


def lingering() -> Optional[bool]:
    """Whether this user's units start at boot (None: cannot tell)."""
    rc, out = _run(["loginctl", "show-user", getpass.getuser(), "--property=Linger"])
    if rc != 0:
        return None
    return out.strip().endswith("=yes")


def _elsewhere(unit: Unit, why: str) -> List[str]:
    return [f"could not enable {unit.name}: {why}",
            "no systemd user manager answers here; install this unit where one runs "
            f"(as {unit.path}, then `systemctl --user enable --now {unit.name}`):",
            "", unit.text]


def install(unit: Unit) -> Tuple[bool, List[str]]:
    """(enabled, lines to show)."""
    # asked first: where no manager answers, nothing is written (a unit left
    # behind would be a service that never runs)
    rc, out = systemctl("show-environment")
    if rc != 0:
        return False, ["wrote nothing"] + _elsewhere(
            unit, out.splitlines()[0] if out else f"exit {rc}")
    existed = os.path.exists(unit.path)
    os.makedirs(os.path.dirname(unit.path), exist_ok=True)
    tmp = unit.path + ".tmp"
    with open(tmp, "w") as f:
        f.write(unit.text)
    os.replace(tmp, unit.path)
    lines = [f"wrote {unit.path}"]
    rc, out = systemctl("daemon-reload")
    if rc == 0:
        rc, out = systemctl("enable", "--now", unit.name)
    if rc != 0:
        if not existed:         # nothing half-installed
            os.remove(unit.path)
            systemctl("daemon-reload")
            lines = [f"removed {unit.path} again"]
        return False, lines + _elsewhere(unit, out.splitlines()[0] if out else f"exit {rc}")
    lines.append(f"enabled and started {unit.name}")
    linger = lingering()
    if linger is False:
        lines.append(f"it starts at boot only with lingering: loginctl enable-linger "
                     f"{getpass.getuser()}")
    elif linger is None:
        lines.append("lingering unknown: for a start at boot, run loginctl enable-linger")
    return True, lines


def uninstall(unit: Unit) -> Tuple[bool, List[str]]:
    lines = []
    rc, out = systemctl("disable", "--now", unit.name)
    if rc != 0 and os.path.exists(unit.path):
        lines.append(f"could not stop it through systemd ({out.splitlines()[0] if out else rc}); "
                     "removing the unit file anyway")
    existed = os.path.exists(unit.path)
    if existed:
        os.remove(unit.path)
        lines.append(f"removed {unit.path}")
        systemctl("daemon-reload")
    else:
        lines.append(f"{unit.path}: not installed")
    return existed, lines


def status(unit: Unit) -> Tuple[int, str]:
    return systemctl("status", "--no-pager", unit.name)


def logs(unit: Unit, lines: int = 200) -> Tuple[int, str]:
    return _run(["journalctl", "--user", "-u", unit.name, "--no-pager", "-n", str(lines)])
