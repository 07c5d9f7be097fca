"""Harvester drives that keep failing transfers are set aside for a while.

The plotter's rsync sees the failure; the drive's record lives here, on the
harvester (~/.plotfleet/drive-health.json), so every controller, a restarted
one included, sees the same.  The controller reports each failure whose
fault is the drive's (rsync_errors.py) once, with its key (plotter, plot,
start time), and the time it happened on this host's clock.

A drive is set aside for `cooldown_s` after
  - one fatal failure (out of space, read-only, permission denied), or
  - two failures within `window_s` of each other;
then it is tried again by itself.  A plot that arrives on it clears its
record.  A drive is a device: the record is kept under the farm dir the
failure named and applies to every farm dir on the same device.

Conflicts: a final *.plot name on a drive that holds other bytes than the
plot of that name waiting on a plotter.  plotfleet never deletes such a file;
it records the conflict (~/.plotfleet/conflicts.json) so that the archiver
sends that plot elsewhere, and reports it while the file stays as it was.
"""
import os
import time

from .. import statefile

HEALTH = "drive-health.json"
CONFLICTS = "conflicts.json"
KEEP = 20                   # failures kept per drive


def set_aside(failures, now, window_s, cooldown_s):
    """(until, the failure that set it aside) while a drive with these
    failures is set aside, else None."""
    fails = sorted(failures, key=lambda f: f["at"])
    best = None
    for i, f in enumerate(fails):
        if f.get("fatal") or (i and f["at"] - fails[i - 1]["at"] <= window_s):
            until = f["at"] + cooldown_s
            if best is None or until >= best[0]:
                best = (until, f)
    return best if best is not None and best[0] > now else None


def record_failure(real_dir, key, at, error, fatal):
    """Add one failure (once per key); call under the host lock."""
    rec = statefile.load(HEALTH)
    entry = rec.get(real_dir) if isinstance(rec.get(real_dir), dict) else {}
    fails = [f for f in entry.get("failures", []) if isinstance(f, dict)]
    if any(f.get("key") == key for f in fails):
        return False
    fails.append({"key": key, "at": float(at), "error": str(error)[:400], "fatal": bool(fatal)})
    rec[real_dir] = {"failures": fails[-KEEP:]}
    statefile.save(HEALTH, rec)
    return True


def clear(real_dirs):
    """A plot arrived: the drive answers well again (call under the host lock)."""
    rec = statefile.load(HEALTH)
    left = {d: e for d, e in rec.items() if d not in real_dirs}
    if len(left) != len(rec):
        statefile.save(HEALTH, left)


def drive_state(probed, window_s, cooldown_s, now=None):
    """{real farm dir: {"until", "error", "failures": [keys]}} for the probed
    farm dirs ({real: st_dev}); a record kept under one dir of a device
    applies to every dir on it."""
    now = time.time() if now is None else now
    rec = statefile.load(HEALTH)
    by_dev = {}
    for d, entry in rec.items():
        dev = probed.get(d)
        if dev is None or not isinstance(entry, dict):
            continue
        by_dev.setdefault(dev, []).extend(f for f in entry.get("failures", [])
                                          if isinstance(f, dict) and "at" in f)
    out = {}
    for d, dev in probed.items():
        fails = by_dev.get(dev, [])
        aside = set_aside(fails, now, window_s, cooldown_s)
        out[d] = {"until": aside[0] if aside else None,
                  "error": aside[1].get("error") if aside else None,
                  "failures": [f.get("key") for f in fails]}
    return out


def record_conflict(final, detail, now=None):
    try:
        st = os.stat(final)
    except OSError:
        return
    rec = {p: c for p, c in statefile.load(CONFLICTS).items() if os.path.exists(p)}
    rec[final] = {"detail": detail, "at": time.time() if now is None else now,
                  "size": st.st_size, "mtime": st.st_mtime}
    statefile.save(CONFLICTS, rec)


def conflicts(real_farm_dirs):
    """[{path, final_name, detail, at}] of recorded conflicts whose file is
    still there as it was; the others are forgotten (an operator moved or
    replaced the file: the next check decides afresh; records of files
    gone are dropped when the next conflict is recorded)."""
    out = []
    for path, c in statefile.load(CONFLICTS).items():
        if not isinstance(c, dict) or os.path.dirname(path) not in real_farm_dirs:
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue
        if st.st_size == c.get("size") and st.st_mtime == c.get("mtime"):
            out.append({"path": path, "final_name": os.path.basename(path),
                        "detail": c.get("detail"), "at": c.get("at", 0.0)})
    return out
