"""The ids of requests already carried out, remembered on the host.

An op that acts (start_job) may carry `request_id`.  When the controller
gets no answer (its timeout, a lost channel) it cannot know whether the act
happened, so it asks again with the same id.  The record lives in the state
dir (~/.plotfleet/carried-out.json), not in one agent process: the asking
again reaches a new agent after a reconnect, or comes from a restarted
controller, while the old agent may still be finishing.  Read and written
only under the host lock, in the same hold as the act itself, so of two
agents holding the same request exactly one acts and the other finds its
record.  Entries are pruned by age and count.
"""
import sys
import time

from .. import statefile

KEEP_S = 86400.0      # far longer than a controller keeps asking again
MAX_ENTRIES = 2000


NAME = "carried-out.json"


def _load():
    return statefile.load(NAME)


def lookup(request_id):
    """What the request with this id answered when it was carried out, or None."""
    if not request_id:
        return None
    entry = _load().get(request_id)
    return entry.get("result") if isinstance(entry, dict) else None


def remember(request_id, op, result, now=None):
    """Record a request as carried out (call under the host lock, right after the act)."""
    if not request_id:
        return
    now = time.time() if now is None else now
    done = {k: v for k, v in _load().items()
            if isinstance(v, dict) and now - v.get("at", 0) < KEEP_S}
    done[request_id] = {"op": op, "at": now, "result": result}
    if len(done) > MAX_ENTRIES:
        newest = sorted(done.items(), key=lambda kv: kv[1]["at"])[-MAX_ENTRIES:]
        done = dict(newest)
    try:
        statefile.save(NAME, done, durable=True)
    except OSError as e:
        # the act happened and its answer goes back now; only a lost answer
        # would need this record
        sys.stderr.write("agent: cannot record request %s: %s\n" % (request_id, e))
