"""Instant `status` against torn, garbage and impostor discovery files and
controllers that are not one: `status` falls back to asking the hosts within
a few seconds and prints its normal answer, never a traceback or a hang."""
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from orchestrator.serve import discovery
from tests.cli import REPO


def _inventory(d):
    d.mkdir()
    inv = d / "inv.yaml"
    inv.write_text("all:\n  children:\n    plotters:\n      hosts:\n        here:\n"
                   f"          ansible_connection: local\n          tmp_dirs: [{d}]\n"
                   f"          log_dir: {d}\n")
    return str(inv)


def _entry(inv, **kw):
    return dict({"host": "127.0.0.1", "port": 1, "pid": os.getpid(), "task": "plot-all",
                 "inventory": os.path.realpath(inv), "limit": ""}, **kw)


def _put(inv, data: bytes):
    path = discovery.path_for(inv, None)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


@pytest.mark.parametrize("data", [
    b"", b'{"host": "127.0.0.1", "po', b"\xff\xfe\x00garbage", b"[1, 2]",
    b'{"pid": 1}', "port-text", "host-number", "pid-list"])
def test_a_torn_or_garbage_discovery_file_is_no_controller(tmp_path, data):
    inv = _inventory(tmp_path / "i")
    bad = {"port-text": {"port": "http"}, "host-number": {"host": 5, "port": None},
           "pid-list": {"pid": [1]}}
    path = _put(inv, data if isinstance(data, bytes) else json.dumps(_entry(inv, **bad[data])).encode())
    try:
        assert discovery.find(inv, None) is None
    finally:
        os.unlink(path)


class _Impostor(http.server.BaseHTTPRequestHandler):
    """Answers with the inventory's key, but is no plotfleet controller."""
    key = ""

    def do_GET(self):
        self.send_response(200)
        self.send_header("X-Plotfleet-Key", self.key)
        self.send_header("X-Plotfleet-Pass-At", "soon")
        self.end_headers()
        self.wfile.write(b"\xffnot a status page")

    def log_message(self, *a):
        pass


def _trickle(listener, stop):
    """Accepts, then sends a response one byte every half second, forever."""
    listener.settimeout(0.2)
    conns = []
    while not stop.is_set():
        try:
            c, _ = listener.accept()
            c.sendall(b"HTTP/1.1 200 OK\r\n")
            conns.append(c)
        except socket.timeout:
            pass
        for c in conns:
            try:
                c.sendall(b"X")
            except OSError:
                pass
        time.sleep(0.3)
    for c in conns:
        c.close()


def test_status_falls_back_from_what_is_not_a_controller(tmp_path):
    invs = {k: _inventory(tmp_path / k) for k in ("fifo", "bare", "trickle", "impostor", "pid1")}
    paths = []
    # a FIFO where the file should be: reading it would wait for a writer forever
    fifo = discovery.path_for(invs["fifo"], None)
    os.makedirs(os.path.dirname(fifo), exist_ok=True)
    os.mkfifo(fifo)
    paths.append(fifo)
    # this test's own pid (alive), and a port that accepts but never answers
    bare = socket.create_server(("127.0.0.1", 0))
    paths.append(_put(invs["bare"], json.dumps(_entry(invs["bare"], port=bare.getsockname()[1])).encode()))
    # pid 1 (alive, not a controller), its port closed
    paths.append(_put(invs["pid1"], json.dumps(_entry(invs["pid1"], pid=1)).encode()))
    # a server that trickles its answer, and one that answers as a controller would not
    slow, stop = socket.create_server(("127.0.0.1", 0)), threading.Event()
    threading.Thread(target=_trickle, args=(slow, stop), daemon=True).start()
    paths.append(_put(invs["trickle"], json.dumps(_entry(invs["trickle"], port=slow.getsockname()[1])).encode()))
    _Impostor.key = discovery.inventory_key(invs["impostor"], None)
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Impostor)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    paths.append(_put(invs["impostor"], json.dumps(_entry(invs["impostor"], port=httpd.server_port)).encode()))
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="200", NO_COLOR="1")
    try:
        t = time.monotonic()
        procs = {k: subprocess.Popen([sys.executable, "-m", "orchestrator", "status", "--inventory", inv],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     cwd=REPO, env=env, stdin=subprocess.DEVNULL)
                 for k, inv in invs.items()}
        for k, p in procs.items():
            try:
                out, err = p.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                pytest.fail(f"{k}: status hangs")
            assert p.returncode == 0 and "Traceback" not in err, (k, out, err)
            assert "hosts          1 up" in out and "from the running" not in out, (k, out)
        assert time.monotonic() - t < 15
    finally:
        stop.set()
        httpd.shutdown()
        bare.close()
        for p in paths:
            os.unlink(p)
