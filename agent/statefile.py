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


def load(name):
    """The record `name` (a dict), or {} when missing or unreadable."""
    try:
        with open(path(name)) as f:
            rec = json.load(f)
        return rec if isinstance(rec, dict) else {}
    except (OSError, ValueError):
        return {}


def save(name, rec, durable=False):
    os.makedirs(state_dir(), exist_ok=True)
    tmp = path(name) + ".%d.tmp" % os.getpid()
    with open(tmp, "w") as f:
        json.dump(rec, f)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path(name))
