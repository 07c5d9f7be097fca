"""JSON records in the agent's state dir (~/.plotfleet), shared by every
agent and controller that reaches this machine: read whole, written whole
through a temporary file and a rename, so a reader never sees half of one.
Writers hold the host lock."""
import json
import os

def state_dir():
    return os.path.join(os.path.expanduser("~"), ".plotfleet")


def path(name):
    return os.path.join(state_dir(), name)


def transfers_dir():
    """The transfer runners' queues and per-plot records (launch/transfer.py)."""
    return path("transfers")


def open_host_lock():
    """A descriptor of the host lock's file: whoever locks it (ops/common.py
    for a request, launch/transfer.py for a runner) excludes the others."""
    os.makedirs(state_dir(), exist_ok=True)
    return os.open(path("host.lock"), os.O_RDWR | os.O_CREAT, 0o600)


def read(file):
    """The JSON record (a dict) at `file`, or None when missing or unreadable."""
    try:
        with open(file) as f:
            rec = json.load(f)
        return rec if isinstance(rec, dict) else None
    except (OSError, ValueError):
        return None


def write(file, rec, durable=False):
    """`rec` as JSON at `file`, through a temporary file and a rename."""
    write_text(file, json.dumps(rec), durable)


def write_text(file, text, durable=False):
    """`text` at `file`, through a temporary file and a rename: a reader
    never sees half of it."""
    tmp = file + ".%d.tmp" % os.getpid()
    with open(tmp, "w") as f:
        f.write(text)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, file)


def load(name):
    """The record `name` (a dict), or {} when missing or unreadable."""
    return read(path(name)) or {}


def save(name, rec, durable=False):
    os.makedirs(state_dir(), exist_ok=True)
    write(path(name), rec, durable)
