"""One host: an SSH connection, the deployed agent, and one long-lived channel.

`Session(host.ssh).open()` connects (fabric Connection, host keys checked against
known_hosts, on every ProxyJump hop too), deploys the agent if needed, and starts ONE
`python -m agent serve` on one SSH channel (when the agent is already
deployed, the exec that checks for it is the one that starts it).  Every `request()` after that is a
JSON line out and a JSON line back on that channel: no new SSH session, no
Python start-up.  `connection: local` runs the same agent as a child process
with pipes.  A lost channel is noticed by the request that hits it (a
SessionError); the next request reconnects from scratch.

Every request tells the agent how long the controller waits for it
(`timeout_s`, a little less than the wait, so a refusal still arrives); the
agent counts that from the request's arrival on its own clock (agent/deadline.py).
A request that got no answer (LostReply) may have been carried out: ops that
act carry a request_id, and asking again with it never acts twice.  The
agent behind a channel given up that way may be stuck, or cut off without
noticing: the next connection asks its agent to end exactly that one
(end_agent, by pid and start time), so reconnects never pile agents up.
"""
from __future__ import annotations

import collections
import contextlib
import io
import json
import logging
import os
import select
import socket
import subprocess
import threading
import time
from pathlib import Path
from dataclasses import replace
from typing import Optional

import paramiko
from fabric import Connection

from agent.protocol import PROTOCOL_VERSION
from agent.vocab.wire import ErrorCode
from orchestrator.remote import deploy as deploy_mod
from orchestrator.remote import retry
from orchestrator.errors import (AgentError, AgentExited, BadReply, BastionFailed, HostKeyRefused,
                                 LostReply, SessionError, one_line)
from orchestrator.core.state import SshTarget

STDERR_LINES = 20
_NO_GREETING = ("Error reading SSH protocol banner", "No existing session",
                "Negotiation failed", "timeout", "Timeout")

# paramiko logs transport failures with tracebacks; ours are one-line reasons
logging.getLogger("paramiko").addHandler(logging.NullHandler())


# --- host keys ---------------------------------------------------------------

class _RefuseUnknown(paramiko.MissingHostKeyPolicy):
    def __init__(self, files):
        self.files = files

    def missing_host_key(self, client, hostname, key):
        where = " or ".join(self.files) or "known_hosts"
        raise HostKeyRefused(f"host key for {hostname} is not in {where} "
                             f"(set host_key_checking: false to accept unknown keys)")


def known_hosts_files(target: SshTarget, ssh_config: dict) -> list:
    """host's known_hosts_file, else ssh_config's UserKnownHostsFile, else ~/.ssh/known_hosts."""
    if target.known_hosts_file:
        files = [target.known_hosts_file]
    else:
        files = ssh_config.get("userknownhostsfile") or ["~/.ssh/known_hosts"]
        if isinstance(files, str):
            files = files.split()
    return [os.path.expanduser(f) for f in files]


def _trust(client: paramiko.SSHClient, target: SshTarget, ssh_config: dict):
    if not target.host_key_checking:
        # Ansible's meaning: accept any key, remember nothing
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        return
    files = known_hosts_files(target, ssh_config)
    trusted = list(files)
    if not target.known_hosts_file:     # as ssh does: the machine-wide list counts too
        glob = ssh_config.get("globalknownhostsfile") or ["/etc/ssh/ssh_known_hosts"]
        trusted += glob.split() if isinstance(glob, str) else glob
    for f in trusted:
        if os.path.exists(os.path.expanduser(f)):
            # "system" keys: loaded for checking, never written back
            client.load_system_host_keys(os.path.expanduser(f))
    client.set_missing_host_key_policy(_RefuseUnknown(files))


# --- bastions (ProxyJump) ------------------------------------------------------
# fabric builds a ProxyJump chain from Connections with AutoAddPolicy and no
# known_hosts: a bastion's key would never be checked.  So the chain is built
# here, hop by hop: each hop a Connection trusted exactly as the final host
# (_trust), the next hop reached through its direct-tcpip channel as `sock`.

def jump_hops(target: SshTarget, ssh_config: dict) -> list:
    """The ProxyJump hops, first first: ansible_ssh_common_args' -o ProxyJump
    wins over ~/.ssh/config's (as on ssh's command line); "none" is none."""
    spec = target.proxy_jump or ssh_config.get("proxyjump") or ""
    if spec.strip().lower() == "none":
        return []
    return [hop.strip() for hop in spec.split(",") if hop.strip()]


def _hop(spec: str, kw: dict) -> Connection:
    """A bastion's Connection (not open): its user, port, HostName and
    IdentityFile from the spec and ~/.ssh/config; the host's key is tried too,
    then ssh's usual keys, as ssh tries for a jump host."""
    hop_kw = {k: v for k, v in kw.items() if k not in ("look_for_keys", "allow_agent")}
    conn = Connection(spec.replace("ssh://", "", 1), gateway=False, connect_kwargs=hop_kw)
    conn.connect_timeout = None
    return conn


def _open_hop(conn: Connection, spec: str, target: SshTarget, sock):
    """Open one bastion with its key checked as the host's is; BastionFailed names it."""
    _trust(conn.client, target, conn.ssh_config)
    if sock is not None:
        conn.connect_kwargs["sock"] = sock
    try:
        conn.open()
    except BaseException as e:
        conn.close()
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        seen_as = replace(target, address=conn.host, port=conn.port, user=conn.user, key_file=None)
        raise BastionFailed(f"bastion {spec}: {describe(e, seen_as)}",
                            transient=retry.is_transient(e)) from None


def _tunnel(via: Connection, address: str, port: int, timeout: float):
    """A direct-tcpip channel through `via` to address:port: the next hop's socket."""
    try:
        return via.transport.open_channel("direct-tcpip", dest_addr=(address, int(port)),
                                          src_addr=("", 0), timeout=timeout)
    except paramiko.ChannelException as e:
        raise BastionFailed(f"bastion {via.original_host}: cannot reach {address}:{port} "
                            f"through it ({e.text or 'refused'})", transient=True) from None


# --- errors as one line --------------------------------------------------------

def describe(exc: BaseException, target: SshTarget) -> str:
    """A short reason for a failed connect, fit for a status row."""
    t = f"{target.connect_timeout_s:g}s"
    if isinstance(exc, SessionError):
        return str(exc)
    if isinstance(exc, paramiko.BadHostKeyException):
        return (f"host key for {target.address}:{target.port} does not match known_hosts "
                f"(possible impostor; fix known_hosts if the host was reinstalled)")
    if isinstance(exc, paramiko.AuthenticationException):
        return f"authentication failed for {target.user or 'user'}@{target.address}" + (
            f" with key {target.key_file}" if target.key_file else "")
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        return "connection refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"timed out after {t}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {target.address}"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    msg = one_line(exc)
    if isinstance(exc, paramiko.SSHException):
        # paramiko's ways of saying the server never finished its greeting
        if any(m in msg for m in _NO_GREETING):
            return f"timed out after {t} waiting for the SSH server"
        return f"ssh: {msg}"
    return msg


# --- running things on the host --------------------------------------------------

class _SshRunner:
    """deploy's runner over an open paramiko client."""

    def __init__(self, client: paramiko.SSHClient):
        self.client = client

    def run(self, cmd: str, timeout: float):
        chan = self.client.get_transport().open_session(timeout=timeout)
        try:
            chan.settimeout(timeout)
            chan.exec_command(cmd)
            chan.shutdown_write()
            out = chan.makefile("rb").read()
            err = chan.makefile_stderr("rb").read()
            return chan.recv_exit_status(), out.decode(errors="replace"), err.decode(errors="replace")
        finally:
            chan.close()

    def put(self, data: bytes, path: str):
        sftp = self.client.open_sftp()
        try:
            sftp.putfo(io.BytesIO(data), path)   # relative to the login home
        finally:
            sftp.close()


class _LocalRunner:
    def run(self, cmd: str, timeout: float):
        p = subprocess.run(["sh", "-c", cmd], capture_output=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")

    def put(self, data: bytes, path: str):
        Path(os.path.expanduser("~"), path).write_bytes(data)


class _Lines:
    """Line reader over a recv(timeout) function, with a deadline per line."""

    def __init__(self, recv):
        self.recv = recv
        self.buf = bytearray()

    def readline(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        start = 0
        while True:
            i = self.buf.find(b"\n", start)
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line
            start = len(self.buf)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout()
            chunk = self.recv(remaining)
            if not chunk:
                return b""          # EOF: the agent is gone
            self.buf += chunk


class _ChannelAgent:
    """The agent behind one SSH channel."""

    def __init__(self, client: paramiko.SSHClient, cmd: str, timeout: float):
        self.chan = client.get_transport().open_session(timeout=timeout)
        self.chan.exec_command(cmd)
        self.stderr = collections.deque(maxlen=STDERR_LINES)
        self.lines = _Lines(self._recv)
        self.err_thread = threading.Thread(target=self._drain_stderr, daemon=True)
        self.err_thread.start()

    def _recv(self, timeout):
        # the channel has one timeout for stdout and stderr: set it only while reading
        self.chan.settimeout(timeout)
        try:
            return self.chan.recv(1 << 16)
        finally:
            self.chan.settimeout(None)

    def _drain_stderr(self):
        partial = b""
        while True:
            try:
                chunk = self.chan.recv_stderr(1 << 12)
            except socket.timeout:
                continue                    # a request's deadline, not ours
            except Exception:
                break
            if not chunk:
                break
            *lines, partial = (partial + chunk).split(b"\n")
            self.stderr.extend(line.decode(errors="replace").rstrip() for line in lines)
        if partial:
            self.stderr.append(partial.decode(errors="replace").rstrip())

    def write(self, data: bytes):
        self.chan.sendall(data)

    def close(self):
        try:
            self.chan.shutdown_write()      # stdin EOF: the agent exits by itself
        except Exception:
            pass
        self.chan.close()


class _ProcessAgent:
    """The agent as a local child process (connection: local)."""

    def __init__(self, cmd: str):
        # own session: a Ctrl-C meant for the controller must not hit the agent mid-answer
        self.proc = subprocess.Popen(["sh", "-c", cmd], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self.stderr = collections.deque(maxlen=STDERR_LINES)
        self.fd = self.proc.stdout.fileno()
        self.lines = _Lines(self._recv)
        self.err_thread = threading.Thread(target=self._drain_stderr, daemon=True)
        self.err_thread.start()

    def _recv(self, timeout):
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            raise socket.timeout()
        return os.read(self.fd, 1 << 16)

    def _drain_stderr(self):
        for line in self.proc.stderr:
            self.stderr.append(line.decode(errors="replace").rstrip())

    def write(self, data: bytes):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=3)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


# --- the session -----------------------------------------------------------------

def _broken(e: SessionError) -> bool:
    """The agent started and died, or spoke garbage: its files, not the link."""
    return isinstance(e, (AgentExited, BadReply))


def agent_budget(timeout: float) -> float:
    """The timeout_s sent with a request the controller waits `timeout` for:
    the agent gives up first, so its refusal still finds the controller listening."""
    return timeout - min(1.0, 0.2 * timeout)


class Session:
    """A host's agent, reachable by `request(op, **args)`; thread-safe."""

    def __init__(self, target: SshTarget, agent_dir=None,
                 request_timeout_s: Optional[float] = None, connect_attempts: int = 3,
                 wheelhouse: Optional[str] = None):
        self.target = target                # how the host is reached: all a session knows
        self.agent_dir = agent_dir
        self.wheelhouse = wheelhouse        # psutil wheels for hosts without psutil
        self.request_timeout_s = request_timeout_s or target.request_timeout_s
        self.connect_attempts = connect_attempts
        self.conn: Optional[Connection] = None
        self.deployed: Optional[deploy_mod.Deployed] = None
        self.info: dict = {}                # the agent's hello
        self._agent = None
        self._lock = threading.RLock()
        self._write = threading.Lock()      # a line goes out whole, nudges included
        self._id = 0
        self._abandoned: list = []          # (pid, started_at) of agents given up on
        self._hops: list = []               # bastion Connections, first first

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()

    def open(self) -> "Session":
        with self._lock:
            if self._agent is None:
                with self._dropped_on_failure():
                    self._open()
                    self._end_abandoned()
        return self

    @contextlib.contextmanager
    def _dropped_on_failure(self):
        """Whatever fails here leaves no half-open connection behind, and
        reaches the caller as one SessionError naming the host."""
        try:
            yield
        except SessionError:
            self._drop()
            raise
        except Exception as e:
            self._drop()
            raise SessionError(describe(e, self.target)) from e

    def _end_abandoned(self):
        """Ask the new agent to end the ones this session gave up on (only those)."""
        timeout = max(self.request_timeout_s, self.target.connect_timeout_s)
        while self._abandoned:
            pid, started_at = self._abandoned[0]
            try:
                self._request("end_agent", timeout, {"pid": pid, "started_at": started_at})
            except AgentError:
                pass                        # refused: nothing of ours to end there
            self._abandoned.pop(0)

    def _connect(self) -> Connection:
        h = self.target
        kw = {"timeout": h.connect_timeout_s, "banner_timeout": h.connect_timeout_s,
              "auth_timeout": h.connect_timeout_s, "channel_timeout": h.connect_timeout_s}
        if h.key_file:
            kw.update(key_filename=os.path.expanduser(h.key_file),
                      look_for_keys=False, allow_agent=False)
        conn = Connection(h.address, port=h.port, user=h.user, connect_kwargs=kw, gateway=False)
        conn.connect_timeout = None         # ours is a float in connect_kwargs
        _trust(conn.client, h, conn.ssh_config)
        specs = jump_hops(h, conn.ssh_config)
        hops = [_hop(spec, kw) for spec in specs]
        try:
            sock = None
            for spec, hop, nxt in zip(specs, hops, hops[1:] + [conn]):
                _open_hop(hop, spec, h, sock)
                sock = _tunnel(hop, nxt.host, nxt.port, h.connect_timeout_s)
            if sock is not None:
                conn.connect_kwargs["sock"] = sock
            conn.open()
        except BaseException:
            conn.close()
            for hop in reversed(hops):
                hop.close()
            raise
        self._hops = hops
        return conn

    def _runner(self):
        """deploy's runner on the host, connecting first if need be."""
        if self.target.connection == "local":
            return _LocalRunner()
        if self.conn is None:
            # retries fit in one connect timeout: a hung host costs that, once
            self.conn = retry.call(self._connect, attempts=self.connect_attempts,
                                   max_total_s=self.target.connect_timeout_s)
            try:    # small request/answer packets: do not wait on delayed ACKs
                self.conn.transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except (AttributeError, OSError):
                pass
        return _SshRunner(self.conn.client)

    def facts(self) -> dict:
        """What deploy's probe tells of the host (platform, python, psutil),
        without starting an agent; SessionError if it cannot be asked."""
        with self._lock:
            timeout = max(self.request_timeout_s, self.target.connect_timeout_s)
            with self._dropped_on_failure():
                return deploy_mod.probe(self._runner(), deploy_mod.agent_bundle(self.agent_dir),
                                        self.target.python, timeout)

    def _spawn(self, cmd: str, timeout: float):
        if self.target.connection == "local":
            return _ProcessAgent(cmd)
        return _ChannelAgent(self.conn.client, cmd, timeout)

    def _open(self, trust_cache: bool = True, fresh: bool = False):
        """`fresh`: what is deployed there (complete by its .ok) does not run,
        torn or overwritten on the host since: deploy it again in its place."""
        self.info = {}
        bundle = deploy_mod.agent_bundle(self.agent_dir)
        timeout = max(self.request_timeout_s, self.target.connect_timeout_s)
        python = self.target.python
        runner = self._runner()
        if fresh:
            facts = {k: v for k, v in deploy_mod.probe(runner, bundle, python, timeout).items()
                     if k not in ("agent", "vendors")}
            return self._install(runner, facts, bundle, python, timeout, True, fresh)
        # Optimistic: one exec that starts the agent when it is already deployed.
        # hello goes out at once; the agent reads it after the status line.
        self._agent = self._spawn(deploy_mod.start_script(bundle, python, trust_cache=trust_cache),
                                  timeout)
        rid = self._send("hello", {}, timeout)
        status = self._agent.lines.readline(timeout)
        if not status:
            raise AgentExited("cannot start the agent" + self._tail(self._agent, wait=True))
        kind, facts = deploy_mod.parse_status(status.decode(errors="replace"), python)
        if kind == "serve":
            try:
                self.info = self._receive(rid, "hello", timeout)
            except SessionError as e:
                self._drop()
                if "cached" in facts:
                    # the interpreter changed since it was checked: check it again
                    return self._open(trust_cache=False)
                if _broken(e):
                    return self._open(trust_cache=False, fresh=True)
                raise
            if self.info.get("protocol") == PROTOCOL_VERSION:
                self.deployed = deploy_mod.ready(facts, bundle, str(self.info.get("python", "")))
                return
            # the deployed agent speaks another protocol (its folder was
            # changed under the same version): deploy it again
            self._agent.close()
            self._agent = None
            facts = {k: v for k, v in deploy_mod.probe(runner, bundle, python, timeout).items()
                     if k != "agent"}
            replace = True
        else:
            replace = False
        if self._agent is not None:
            self._agent.close()
        self._agent = None
        return self._install(runner, facts, bundle, python, timeout, replace, fresh)

    def _install(self, runner, facts, bundle, python, timeout, replace, fresh):
        self.deployed = deploy_mod.install(runner, facts, bundle, python, timeout, replace,
                                           self.wheelhouse)
        self._agent = self._spawn(deploy_mod.serve_command(self.deployed, python), timeout)
        try:
            self.info = self._request("hello", timeout, {})
        except SessionError as e:
            if fresh or self.deployed.uploaded or not _broken(e):
                raise
            self._drop()
            return self._open(trust_cache=False, fresh=True)
        if self.info.get("protocol") != PROTOCOL_VERSION:
            raise SessionError(f"the agent speaks protocol {self.info.get('protocol')}, this "
                               f"controller {PROTOCOL_VERSION}, even after deploying it again")
        # only a psutil the agent started with is remembered for the next start
        deploy_mod.remember(runner, self.deployed, bundle, python, timeout)

    def request(self, op: str, timeout: Optional[float] = None, **args) -> dict:
        """One request; SessionError if the host or channel fails, AgentError on a refusal."""
        with self._lock:
            self.open()
            return self._request(op, timeout or self.request_timeout_s, args)

    @property
    def connected(self) -> bool:
        return self._agent is not None

    def nudge(self):
        """A blank line to the agent, without waiting for the request in
        hand: its `news` wait (agent/ops/news.py) ends; any other op takes no
        notice (blank lines are skipped)."""
        agent = self._agent
        if agent is None:
            return
        try:
            with self._write:
                agent.write(b"\n")
        except Exception:       # the channel is going: the request in hand finds out
            pass

    def _request(self, op: str, timeout: float, args: dict) -> dict:
        return self._receive(self._send(op, args, timeout), op, timeout)

    def _send(self, op: str, args: dict, timeout: float) -> int:
        self._id += 1
        line = {"id": self._id, "op": op, "timeout_s": round(agent_budget(timeout), 3), **args}
        try:
            with self._write:
                self._agent.write((json.dumps(line) + "\n").encode())
        except (OSError, EOFError, paramiko.SSHException) as e:
            agent = self._agent
            self._drop(abandon=True)
            if op == "hello":   # a channel closed before its hello: the agent could not start
                raise AgentExited("agent exited" + self._tail(agent, wait=True)) from None
            raise LostReply(f"lost the agent channel ({describe(e, self.target)})"
                            + self._tail(agent)) from None
        return self._id

    def _receive(self, rid: int, op: str, timeout: float) -> dict:
        agent = self._agent

        def lost(why: str, wait: bool = False, kind=LostReply) -> LostReply:
            tail = self._tail(agent, wait)
            self._drop(abandon=True)
            return kind(why + tail)

        try:
            raw = agent.lines.readline(timeout)
        except (socket.timeout, TimeoutError):
            raise lost(f"agent did not answer {op} within {timeout:g}s") from None
        except (OSError, EOFError, paramiko.SSHException) as e:
            if op == "hello":   # a channel closed before its hello: the agent could not start
                raise lost("agent exited", wait=True, kind=AgentExited) from None
            raise lost(f"lost the agent channel ({describe(e, self.target)})") from None
        if not raw:
            # before its hello: it could not start (its files); later: the
            # request may have been carried out, like any other lost reply
            raise lost("agent exited", wait=True, kind=AgentExited if op == "hello" else LostReply)
        try:
            resp = json.loads(raw)
        except ValueError:
            resp = None
        # whatever the host sends back is checked before it is used: a reply
        # that is JSON but not a response is a broken host, not a traceback
        if not isinstance(resp, dict) or not isinstance(resp.get("ok"), bool):
            raise lost(f"agent sent a bad answer to {op}: {raw[:80]!r}", kind=BadReply) from None
        if resp.get("id") != rid:
            raise lost(f"agent answered request {resp.get('id')!r} instead of {rid}", kind=BadReply)
        if not resp["ok"]:
            text = str(resp.get("error") or "").strip().splitlines()
            raise AgentError(text[0] if text else f"{op} refused",
                             code=resp.get("code") or ErrorCode.REFUSED)
        result = resp.get("result")
        if result is None:
            return {}
        if not isinstance(result, dict):
            raise lost(f"agent answered {op} with a JSON {type(result).__name__}, not an object",
                       kind=BadReply)
        return result

    @staticmethod
    def _tail(agent, wait: bool = False) -> str:
        if wait:
            agent.err_thread.join(1.0)      # let the last words arrive
        lines = [line for line in agent.stderr if line.strip()]
        return f": {lines[-1].strip()}" if lines else ""

    def _drop(self, abandon: bool = False):
        agent, self._agent = self._agent, None
        if abandon and agent is not None and self.info.get("pid"):
            # it may be stuck, or cut off without seeing its channel close
            self._abandoned.append((self.info["pid"], self.info.get("started_at")))
            self.info = {}
        if agent is not None:
            try:
                agent.close()
            except Exception:
                pass
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None
        for hop in reversed(self._hops):
            try:
                hop.close()
            except Exception:
                pass
        self._hops = []

    def close(self):
        with self._lock:
            self._drop()
