"""The embedded read-only HTTP server of `plot-all --serve` / `dashboard --serve`.

stdlib http.server in a daemon thread; every answer is built from the one
latest Picture (picture.py), and nothing served can change the fleet (GET
and HEAD only).  Off loopback (any address but 127.0.0.1 and ::1) it will
not start without the inventory's `serve_token`, and then asks for it on
every request, as `Authorization: Bearer TOKEN` or `?token=TOKEN`.

  /              the page (page.py)
  /metrics       Prometheus text format (metrics.py)
  /status.json   `status --json`'s document of the latest pass
  /status.txt    `status`'s tables, rendered here at ?width= (instant status)
"""
from __future__ import annotations

import hmac
import io
import json
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from orchestrator.errors import UserError
from orchestrator.serve import discovery
from orchestrator.serve.picture import Latest, document

LOOPBACK = ("127.0.0.1", "::1")
_ADDRESS = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]*)):(?P<port>\d+)$")


def parse_address(value: str) -> Tuple[str, int]:
    """`HOST:PORT`, `[V6]:PORT`, `:PORT` or `PORT` (127.0.0.1); port 0 picks one."""
    value = str(value).strip()
    m = _ADDRESS.match(value if ":" in value else f":{value}")
    if not m or not 0 <= int(m.group("port")) <= 65535:
        raise UserError(f"--serve must be HOST:PORT (e.g. 127.0.0.1:8420), got {value!r}")
    host = m.group("v6") or m.group("host") or "127.0.0.1"
    return ("127.0.0.1" if host == "localhost" else host), int(m.group("port"))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, latest: Latest, token: Optional[str], refresh: float):
        import socket
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.latest, self.token, self.refresh = latest, token, refresh
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "plotfleet"

    def log_message(self, *a):      # plot-all's output is the farmer's, not an access log
        pass

    def _send(self, code: int, body: bytes, ctype: str, extra=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _authorized(self, query) -> bool:
        token = self.server.token
        if token is None:
            return True
        given = (query.get("token") or [""])[0]
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            given = auth[len("Bearer "):].strip()
        return hmac.compare_digest(given.encode(), token.encode())

    def do_GET(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if not self._authorized(query):
            return self._send(401, b"token required\n", "text/plain; charset=utf-8",
                              {"WWW-Authenticate": 'Bearer realm="plotfleet"'})
        latest = self.server.latest
        p = latest.picture
        if url.path == "/metrics":
            from prometheus_client.exposition import CONTENT_TYPE_LATEST
            from orchestrator.serve.metrics import exposition
            return self._send(200, exposition(latest), CONTENT_TYPE_LATEST)
        if url.path == "/":
            from orchestrator.serve.page import render
            return self._send(200, render(p, self.server.refresh, latest.task).encode(),
                              "text/html; charset=utf-8")
        if url.path not in ("/status.json", "/status.txt"):
            return self._send(404, b"not found\n", "text/plain; charset=utf-8")
        if p is None:
            return self._send(503, b"no pass yet\n", "text/plain; charset=utf-8",
                              {"Retry-After": "2"})
        head = {"X-Plotfleet-Key": latest.key, "X-Plotfleet-Task": latest.task,
                "X-Plotfleet-Pid": str(latest.pid), "X-Plotfleet-Pass-At": f"{p.at:.3f}",
                "X-Plotfleet-Unreachable": str(sum(not h.reachable for h in p.state.hosts))}
        if url.path == "/status.json":
            body = json.dumps(document(p, latest), indent=1) + "\n"
            return self._send(200, body.encode(), "application/json", head)
        return self._send(200, _table_text(p, query).encode(), "text/plain; charset=utf-8", head)

    do_HEAD = do_GET


def _table_text(p, query) -> str:
    """`status`'s tables (views.status_view), as the asking terminal would print them."""
    from rich.console import Console
    from orchestrator.ui import views

    def arg(name, default=""):
        return (query.get(name) or [default])[0]
    try:
        width = max(20, min(int(arg("width", "80")), 1000))
    except ValueError:
        width = 80
    color = arg("color")
    out = io.StringIO()
    console = Console(file=out, width=width, markup=False, force_terminal=bool(color),
                      color_system={"standard": "standard", "256": "256",
                                    "truecolor": "truecolor"}.get(color),
                      no_color=arg("no_color") == "1", force_jupyter=False)
    # the pass's own outlooks and farm: nothing is judged in this thread
    console.print(views.status_view(p.state, p.hosts, p.outlooks, model=p.farm,
                                    backoffs=p.backoffs, replot=p.wave))
    return out.getvalue()


class Serving:
    """`--serve ADDRESS` for the length of a run: listening (and the discovery
    file written) on enter, closed (and removed) on exit.  With no address it
    does nothing, and `latest` still takes each pass."""

    def __init__(self, address: Optional[str], inventory_path: str, limit: Optional[str],
                 controller, hosts, task: str, refresh: float = 10.0, say=None):
        self.bind = None if address is None else parse_address(address)
        if self.bind is not None and self.bind[0] not in LOOPBACK and not controller.serve_token:
            raise UserError(f"--serve {address}: serving beyond loopback needs serve_token "
                            f"in the inventory's all vars")
        self.token = None if self.bind is None or self.bind[0] in LOOPBACK \
            else controller.serve_token
        self.inventory_path, self.limit, self.refresh = inventory_path, limit, refresh
        self.say = say or (lambda line: print(line, file=sys.stderr, flush=True))
        self.latest = Latest(hosts, task, discovery.inventory_key(inventory_path, limit))
        self.httpd: Optional[_Server] = None
        self.discovery: Optional[str] = None

    @property
    def url(self) -> Optional[str]:
        if self.httpd is None:
            return None
        host, port = self.httpd.server_address[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"

    def __enter__(self) -> Latest:
        if self.bind is None:
            return self.latest
        try:
            self.httpd = _Server(self.bind, self.latest, self.token, self.refresh)
        except OSError as e:
            raise UserError(f"--serve {self.bind[0]}:{self.bind[1]}: cannot listen: "
                            f"{e.strerror or e}")
        threading.Thread(target=self.httpd.serve_forever, name="serve", daemon=True).start()
        host, port = self.httpd.server_address[:2]
        info = {"host": host, "port": port, "pid": os.getpid(), "task": self.latest.task,
                "url": self.url}
        if self.token:
            info["token"] = self.token      # the file is this user's only, as the inventory
        try:
            self.discovery = discovery.write(self.inventory_path, self.limit, info)
        except OSError as e:    # instant status is lost, serving is not
            self.say(f"plotfleet: --serve: no discovery file: {e}")
        self.say(f"serving {self.url} (read-only)")
        return self.latest

    def __exit__(self, *exc):
        if self.discovery:
            discovery.remove(self.discovery)
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
