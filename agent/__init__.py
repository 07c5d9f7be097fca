"""plotfleet agent: the tiny program the controller pushes to every host.

A leaf: stdlib + psutil only, Python 3.8+, imports nothing from orchestrator.

Run as `python3 -m agent serve` (from the deployed folder, which is on
sys.path): it reads one JSON request per line on stdin and writes one JSON
response per line on stdout, until stdin closes (or its parent goes, or
SIGTERM); a request still stuck then is left GRACE_S later (watchdog.py).

    request:  {"id": 7, "op": "snapshot", "timeout_s": 29.0, ...arguments}
    response: {"id": 7, "ok": true, "result": {...}}
              {"id": 7, "ok": false, "code": "refused", "error": "one line"}

`timeout_s` (optional) is how long the controller waits for the answer; the
agent's deadline is the request's arrival on its own monotonic clock plus
that (deadline.py).  A request taken up after its deadline, or whose wait
for the host lock reaches it, is not carried out.

The protocol is declared in code, not here:
  - every op at its handler in ops/, `@op(Reply)` with its arguments and
    their types from the signature (protocol.py says how they are checked);
  - replies (dataclasses), error codes, dir errors and the keys of `config`,
    `limits` and `ssh` in vocab/wire.py, shared with the controller, whose
    typed client (orchestrator/remote/client.py) is built from the same
    declarations.

Layout: serve.py (this loop), protocol.py (the declaring), ops/ (one module
per concern: what a request does), facts/ (what a snapshot reads), launch/
(the detached chiapos launcher and transfer runner), vocab/ (shared with the
controller).  State on the host lives in ~/.plotfleet (statefile.py).
"""

from .protocol import PROTOCOL_VERSION  # noqa: E402,F401  (checked at connect)
