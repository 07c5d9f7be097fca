"""Every host at once: sessions kept open across polls, snapshots in parallel.

A warm `gather()` is one request/answer on each host's already-open agent
channel, all hosts at the same time, on one long-lived thread pool.  A host
that cannot be reached or whose agent fails becomes an unreachable HostState
with a one-line reason; it never stops the others, and the next gather tries
it again (except right after open(), whose fresh failures are reported as
they are rather than waited for twice).
"""
from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, TypeVar, Union

from orchestrator.errors import AgentError, SessionError, one_line
from orchestrator.core.state import FleetState, Host, HostState, host_state_from_snapshot, unreachable
from orchestrator.remote import wheelhouse
from orchestrator.remote.client import AgentClient
from orchestrator.remote.session import Session

T = TypeVar("T")

NEWS_SLACK_S = 10.0     # a news wait's answer may come this late before the channel is given up


class Fleet:
    def __init__(self, hosts: Iterable[Host], max_workers: int = 32,
                 request_timeout_s: Optional[float] = None, agent_dir=None,
                 wheelhouse: Optional[str] = None):
        self.hosts = list(hosts)
        self.sessions: Dict[str, Session] = {
            h.name: Session(h.ssh, agent_dir=agent_dir, request_timeout_s=request_timeout_s,
                            wheelhouse=wheelhouse)
            for h in self.hosts}
        self._config = {h.name: h.agent_config() for h in self.hosts}
        self.errors: Dict[str, Optional[str]] = {}     # last open(): host -> reason
        self._unreported: Dict[str, str] = {}
        workers = max(1, min(max_workers, len(self.hosts)))
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fleet")
        # one waiting thread per plotter: every news wait runs at once, however many
        plotters = sum(h.is_plotter for h in self.hosts)
        self._news = ThreadPoolExecutor(max_workers=max(1, plotters), thread_name_prefix="news")

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()

    def _map(self, fn, hosts):
        return list(self._pool.map(fn, hosts))

    def open(self) -> Dict[str, Optional[str]]:
        """Connect and deploy everywhere in parallel: {host: None or the reason it failed}."""
        def one(h: Host):
            try:
                self.sessions[h.name].open()
                return None
            except SessionError as e:
                return one_line(e)
        self.errors = dict(zip((h.name for h in self.hosts), self._map(one, self.hosts)))
        # the next gather reports these instead of paying each timeout again
        self._unreported = {n: e for n, e in self.errors.items() if e}
        return dict(self.errors)

    def deploy_report(self) -> Dict[str, str]:
        """One line per host on what the last open() deployed, for `plotfleet deploy`."""
        out = {}
        for h in self.hosts:
            d = self.sessions[h.name].deployed
            if d is None or self.errors.get(h.name):    # installed, but it did not answer
                out[h.name] = f"not deployed: {self.errors.get(h.name) or 'not connected'}"
                continue
            line = f"agent {d.hash} " + ("uploaded" if d.uploaded else "already there")
            line += f" (python {d.python_version}" + (
                f", psutil from {d.wheel or d.vendor_dir.rsplit('/', 1)[-1]})" if d.vendor else ")")
            out[h.name] = line
        return out

    def prepare_wheels(self, wheels: Optional[str] = None) -> Dict[str, Tuple[bool, str]]:
        """Fill the wheelhouse with a psutil wheel for every host's platform
        (those with psutil too: it may go): {host: (ok, one line)}."""
        wheels = wheels or wheelhouse.default_dir()

        def platform(h: Host):
            try:
                return wheelhouse.HostPlatform.from_facts(self.sessions[h.name].facts())
            except SessionError as e:
                return one_line(e)
            finally:
                self.sessions[h.name].close()
        found = dict(zip((h.name for h in self.hosts), self._map(platform, self.hosts)))
        got = wheelhouse.prepare(wheels, [p for p in found.values()
                                          if isinstance(p, wheelhouse.HostPlatform)])
        out = {}
        for name, p in found.items():
            if not isinstance(p, wheelhouse.HostPlatform):
                out[name] = (False, f"unreachable: {p}")
            elif got[p].endswith(".whl"):
                out[name] = (True, f"{p.describe()}: {got[p]}")
            else:
                out[name] = (False, got[p])
        return out

    def _snapshot(self, h: Host) -> HostState:
        fresh = self._unreported.pop(h.name, None)
        if fresh:
            return unreachable(h.name, h.roles, fresh)
        try:
            snap = self.agent(h.name).snapshot()
            return host_state_from_snapshot(h.name, h.roles, vars(snap))
        except SessionError as e:
            return unreachable(h.name, h.roles, one_line(e))
        except AgentError as e:
            return unreachable(h.name, h.roles, f"agent failed: {one_line(e)}")
        except Exception as e:          # a malformed snapshot is that host's problem only
            return unreachable(h.name, h.roles, f"agent failed: {type(e).__name__}: {one_line(e)}")

    def gather(self, hosts: Optional[Iterable[Host]] = None) -> FleetState:
        """Snapshot every host (or the given ones) in parallel, in inventory order."""
        targets = self.hosts if hosts is None else list(hosts)
        return FleetState(hosts=tuple(self._map(self._snapshot, targets)), now=time.time())

    def wait_for_news(self, seconds: float) -> Dict[str, list]:
        """Wait up to `seconds` between passes, less when a plotter's agent
        has news a pass acts on: a plot landed, a check or a transfer ended
        (agent/ops/news.py).  {host: what it saw}, empty when the time ran
        out.  Hosts not connected are not asked; a host whose channel fails
        here is no news (the next gather says why)."""
        watched = [h for h in self.hosts if h.is_plotter and self.sessions[h.name].connected]
        end = time.monotonic() + max(0.0, seconds)
        if not watched:
            time.sleep(max(0.0, seconds))
            return {}

        def one(h: Host):
            try:
                return self.agent(h.name).news(wait_s=max(0.0, seconds),
                                               timeout=seconds + NEWS_SLACK_S).news
            except (SessionError, AgentError):
                return []
        pending = {self._news.submit(one, h): h.name for h in watched}
        found: Dict[str, list] = {}
        try:
            while pending and not found:
                done, _ = wait(pending, timeout=max(0.0, end - time.monotonic()),
                               return_when=FIRST_COMPLETED)
                if not done:
                    break
                for f in done:
                    if f.result():
                        found[pending[f]] = f.result()
                    del pending[f]
        finally:
            # the others stop waiting at once: their agents see a blank line
            while pending:
                for name in pending.values():
                    self.sessions[name].nudge()
                done, _ = wait(pending, timeout=0.2)
                for f in done:
                    del pending[f]
        left = end - time.monotonic()
        if not found and left > 0:      # every agent failed to wait: the plain wait
            time.sleep(left)
        return found

    def session(self, host_name: str) -> Session:
        if host_name not in self.sessions:
            raise KeyError(f"no host {host_name!r} in this fleet")
        return self.sessions[host_name]

    def agent(self, host_name: str) -> AgentClient:
        """One host's agent, typed (remote/client.py): `fleet.agent(h).snapshot()`.
        The host's own config goes with every op that takes one."""
        return AgentClient(self.session(host_name), self._config[host_name])

    def call(self, host_name: str, op: str, timeout: Optional[float] = None, **args) -> dict:
        """One agent op by name, its answer the JSON object it is: for tests
        and debugging; the controller calls `agent(host).<op>(...)`."""
        return self.agent(host_name).raw(op, timeout=timeout, **args)

    def each(self, asks: Sequence[Tuple[str, Callable[[AgentClient], T]]]
             ) -> List[Union[T, SessionError, AgentError]]:
        """Many (host, ask) requests in parallel, in order: each reply, or the
        SessionError / AgentError it raised (partial failure as data)."""
        def one(req):
            host, ask = req
            try:
                return ask(self.agent(host))
            except (SessionError, AgentError) as e:
                return e
        return self._map(one, list(asks))

    def on_all(self, ask: Callable[[AgentClient], T]) -> Dict[str, Union[T, str]]:
        """`ask` of every host's agent in parallel: {host: its reply, or the
        one-line reason it failed (str)}; a failing host never stops the others."""
        def one(h: Host):
            if self.errors.get(h.name):
                return self.errors[h.name]
            try:
                return ask(self.agent(h.name))
            except (SessionError, AgentError) as e:
                return one_line(e)
        return dict(zip((h.name for h in self.hosts), self._map(one, self.hosts)))

    def close(self):
        self._map(lambda s: s.close(), list(self.sessions.values()))
        self._pool.shutdown(wait=True)
        self._news.shutdown(wait=True)
