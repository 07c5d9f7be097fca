"""Real OpenSSH test hosts on loopback, and real k=18 chiapos plots.

Every test host is its own `/usr/sbin/sshd -D -e` listening on 127.0.0.x
(x = 2, 3, ...) at a free port, with an ed25519 host key made by the test,
root login by a client key made by the test, and a folder of its own under
tmp_path holding its plotting dirs.  All hosts are root on this machine;
sshd gives their sessions the test run's own HOME (tests/conftest.py sets one
per pytest worker, so ~/.plotfleet is never root's real one and two workers
never share it): tests that need a fresh deploy use a copy of agent/ with
unique content.  Each pytest-xdist worker has its own 127.0.N.x block.

Fixtures (tests/conftest.py):

    ssh_fleet(n_plotters=1, n_harvesters=0, **vars) -> SshFleet
        Starts the sshds (each accepts TCP before this returns); all are
        killed at teardown.  `vars` are extra inventory variables for every
        host.  Hosts are named plotter1.., harvester1..

    SshFleet
        .hosts            {name: TestHost}; TestHost has name, role, address,
                          port, root (its folder), dirs {kind: path or [paths]}
                          (tmp: [tmp], tmp2, dst: [dst], log, farm: [farm1, farm2])
        .known_hosts      path of a known_hosts listing every host
        .client_key       path of the client's private key
        .stop(name)       kills that host's sshd and every connection it serves
                          (sessions see their channel close; jobs the agent
                          detached keep running)
        .start(name)      starts it again (same address, port, host key)
        .sshd_pid(name)   pid of the listening sshd (its children = sessions)
        .write_inventory(path, extra_vars_per_host=None, **vars) -> path
                          Ansible YAML: plotters / harvesters groups with
                          ansible_host/port/user/ssh_private_key_file,
                          ansible_ssh_common_args -o UserKnownHostsFile=...,
                          ansible_python_interpreter (this interpreter, which
                          has chiapos and psutil), tmp_dirs, tmp2_dir,
                          dst_dirs, log_dir, farm_dirs, plotter chiapos, k 18,
                          and for plotters transfer_ssh_key / transfer_known_hosts
                          (the client key and known_hosts: rsync reaches harvesters)
        .model_host(name, **fields) -> orchestrator.core.state.Host
        .model_hosts(**fields) -> [Host]   (no inventory loader needed)

    k18_plots -> PlotCache (session scope): real chiapos k=18 plots made
        once per test session.  `.copy_to(dir, n=1) -> [paths]` copies n
        distinct plots (made on demand) under their chia-style names.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Optional

import psutil
import yaml

SSHD = "/usr/sbin/sshd"


def _keygen(path: Path, comment: str) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment,
                    "-f", str(path)], check=True)
    return Path(str(path) + ".pub").read_text().strip()


def worker_index() -> int:
    """0 alone or for xdist's gw0, N for gwN: picks this worker's address block.
    PLOTFLEET_TEST_BLOCK shifts it, so two checkouts testing on one machine at
    once never share a block (127.0.BLOCK+N.x)."""
    w = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    n = int(w[2:]) if w.startswith("gw") and w[2:].isdigit() else 0
    return int(os.environ.get("PLOTFLEET_TEST_BLOCK", "0")) + n


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def _wait_accepting(address: str, port: int, proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd on {address}:{port} exited: {log.read_text()}")
        try:
            socket.create_connection((address, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"sshd on {address}:{port} never accepted: {log.read_text()}")


def _wait_dead(procs, timeout: float = 3.0):
    """Until each is gone or a zombie (orphans are reaped by init, whenever it likes)."""
    deadline = time.monotonic() + timeout
    for p in procs:
        while time.monotonic() < deadline:
            try:
                if p.status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.005)


@dataclass
class TestHost:
    name: str
    role: str                      # plotter | harvester
    address: str
    port: int
    root: Path
    dirs: dict = field(default_factory=dict)
    proc: Optional[subprocess.Popen] = None

    __test__ = False               # not a pytest test class


class SshFleet:
    def __init__(self, base: Path, n_plotters: int = 1, n_harvesters: int = 0,
                 **vars):
        os.makedirs("/run/sshd", exist_ok=True)   # sshd's privilege-separation dir
        self.base = base
        self.vars = vars
        # farm dirs are plain folders on the test machine's root filesystem
        # unless a test mounts them (each its own tmpfs): only then does the
        # default require_mounted_farm apply
        self.farms_mounted = False
        keys = base / "keys"
        keys.mkdir(parents=True, exist_ok=True)
        self.client_key = str(keys / "client_ed25519")
        self.authorized_keys = str(keys / "authorized_keys")
        Path(self.authorized_keys).write_text(_keygen(Path(self.client_key), "plotfleet-test") + "\n")
        self.hosts: Dict[str, TestHost] = {}
        names = [(f"plotter{i + 1}", "plotter") for i in range(n_plotters)]
        names += [(f"harvester{i + 1}", "harvester") for i in range(n_harvesters)]
        lines = []
        for i, (name, role) in enumerate(names):
            address = f"127.0.{worker_index()}.{i + 2}"
            root = base / name
            h = TestHost(name, role, address, _free_port(address), root)
            for d in ("tmp", "tmp2", "dst", "logs", "farm1", "farm2"):
                (root / d).mkdir(parents=True, exist_ok=True)
            h.dirs = {"tmp": [str(root / "tmp")], "tmp2": str(root / "tmp2"),
                      "dst": [str(root / "dst")], "log": str(root / "logs"),
                      "farm": [str(root / "farm1"), str(root / "farm2")]}
            pub = _keygen(root / "ssh_host_ed25519_key", name)
            lines.append(f"[{address}]:{h.port} {' '.join(pub.split()[:2])}")
            self._write_config(h)
            self.hosts[name] = h
        self.known_hosts = str(keys / "known_hosts")
        Path(self.known_hosts).write_text("\n".join(lines) + "\n")
        for name in self.hosts:
            self._spawn(name)
        for h in self.hosts.values():
            _wait_accepting(h.address, h.port, h.proc, h.root / "sshd.log")

    def _write_config(self, h: TestHost):
        (h.root / "sshd_config").write_text(f"""\
ListenAddress {h.address}:{h.port}
HostKey {h.root / 'ssh_host_ed25519_key'}
PidFile {h.root / 'sshd.pid'}
AuthorizedKeysFile {self.authorized_keys}
PermitRootLogin yes
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UseDNS no
PrintMotd no
LogLevel ERROR
MaxStartups 200:30:400
MaxSessions 200
Subsystem sftp internal-sftp -d {os.environ["HOME"]}
SetEnv HOME={os.environ["HOME"]}
""")

    def _spawn(self, name: str):
        h = self.hosts[name]
        log = open(h.root / "sshd.log", "ab")
        h.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(h.root / "sshd_config")],
                                  stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                  start_new_session=True)
        log.close()

    def sshd_pid(self, name: str) -> int:
        return self.hosts[name].proc.pid

    def start(self, name: str):
        h = self.hosts[name]
        if h.proc is not None and h.proc.poll() is None:
            return
        self._spawn(name)
        _wait_accepting(h.address, h.port, h.proc, h.root / "sshd.log")

    def stop(self, name: str):
        """Like sshd going away: the listener and every connection it serves.

        Only sshd processes die; what ran in a session (the agent) sees its
        channel close, and what the agent detached (plot jobs) lives on, as it
        would on a real host after a network cut.
        """
        h = self.hosts[name]
        if h.proc is None or h.proc.poll() is not None:
            return
        victims = []
        # frozen first, so that no connection forks a child after the children
        # are listed: a child just forked still holds the listening socket for
        # a moment, and the port would go on accepting
        os.kill(h.proc.pid, signal.SIGSTOP)
        try:
            # per-connection sshds call setsid(), so a process-group kill misses them
            for p in psutil.Process(h.proc.pid).children(recursive=True):
                try:
                    if p.exe() == SSHD or p.name() == "sshd":
                        victims.append(p)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
        except psutil.NoSuchProcess:
            pass
        h.proc.kill()
        h.proc.wait()
        for p in victims:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        _wait_dead(victims)

    def stop_all(self):
        for name in self.hosts:
            self.stop(name)

    # --- inventory -------------------------------------------------------
    def host_vars(self, name: str) -> dict:
        h = self.hosts[name]
        v = {
            "ansible_host": h.address,
            "ansible_port": h.port,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": self.client_key,
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={self.known_hosts}",
            "ansible_python_interpreter": sys.executable,
        }
        if h.role == "plotter":
            v.update(tmp_dirs=list(h.dirs["tmp"]), tmp2_dir=h.dirs["tmp2"],
                     dst_dirs=list(h.dirs["dst"]), log_dir=h.dirs["log"],
                     plotter="chiapos", k=18, threads=2, buckets=32, buffer=300,
                     # the plotter's own rsync over ssh reaches harvesters with these
                     transfer_ssh_key=self.client_key, transfer_known_hosts=self.known_hosts)
        else:
            v.update(farm_dirs=list(h.dirs["farm"]))
            if not self.farms_mounted:
                v["require_mounted_farm"] = False
        return v

    def write_inventory(self, path, extra_vars_per_host: Optional[dict] = None,
                        **vars) -> Path:
        groups = {"plotters": {"hosts": {}}, "harvesters": {"hosts": {}}}
        for name, h in self.hosts.items():
            v = self.host_vars(name)
            v.update(self.vars)
            v.update(vars)
            v.update((extra_vars_per_host or {}).get(name, {}))
            groups[h.role + "s"]["hosts"][name] = v
        path = Path(path)
        path.write_text(yaml.safe_dump({"all": {"children": groups}}, sort_keys=False))
        return path

    def model_host(self, name: str, **fields):
        """The host as plotfleet reads it from this fleet's inventory, with `fields` changed."""
        from dataclasses import replace
        from orchestrator.config.inventory import load_inventory
        inv = load_inventory(self.write_inventory(self.base / "model-inventory.yaml"))
        return replace(inv.host(name), **{"connect_timeout_s": 5.0, **fields})

    def model_hosts(self, **fields) -> list:
        return [self.model_host(n, **fields) for n in self.hosts]


# --- plots ---------------------------------------------------------------

def plot_name(k: int, plot_id: bytes, when: Optional[datetime] = None) -> str:
    t = when or datetime.now()
    return f"plot-k{k}-{t:%Y-%m-%d-%H-%M}-{plot_id.hex()}.plot"


def make_plot(final_dir: Path, tmp_dir: Path, k: int = 18) -> Path:
    """One real chiapos plot (about a second at k=18)."""
    from chiapos import DiskPlotter
    plot_id = secrets.token_bytes(32)
    name = plot_name(k, plot_id)
    memo = secrets.token_bytes(128)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    final_dir.mkdir(parents=True, exist_ok=True)
    # chiapos logs through C++ stdout: keep it out of pytest's output
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stdout.flush()
        os.dup2(devnull, 1)
        DiskPlotter().create_plot_disk(str(tmp_dir), str(tmp_dir), str(final_dir), name,
                                       k, memo, plot_id, 300, 32, 2000, 2, False)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
    return final_dir / name


def prove(paths) -> None:
    """Run the agent's own proof check (`python -m agent check`, what a
    plot-all pass starts on a new plot) on these plots now, in this run's
    HOME, which the test hosts' agents share: a test about archiving starts
    from plots already proven, as after the pass that checked them."""
    import json
    repo = str(Path(__file__).resolve().parent.parent)
    subprocess.run([sys.executable, "-m", "agent", "check",
                    json.dumps({"plots": [str(p) for p in paths]})],
                   cwd=repo, env=dict(os.environ, PYTHONPATH=repo), check=True, timeout=300)


class PlotCache:
    def __init__(self, base: Path):
        self.base = base
        self.plots: List[Path] = []

    def get(self, n: int) -> List[Path]:
        while len(self.plots) < n:
            self.plots.append(make_plot(self.base / "plots", self.base / "plot-tmp"))
        return self.plots[:n]

    def copy_to(self, dest, n: int = 1, proven: bool = False) -> List[Path]:
        """n plots into dest; `proven`: their proof check run there already."""
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        out = []
        for p in self.get(n):
            shutil.copyfile(p, dest / p.name)
            out.append(dest / p.name)
        if proven:
            prove(out)
        return out


class Tmpfs:
    """Separate small filesystems (one device each), unmounted at close."""

    def __init__(self):
        self.mounted = []

    def mount(self, path, size):
        os.makedirs(path, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       check=True)
        self.mounted.append(str(path))

    def close(self):
        for p in reversed(self.mounted):
            subprocess.run(["umount", "-l", p], check=False)
        self.mounted.clear()
