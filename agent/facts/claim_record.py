"""A harvester's drive claims, as read (agent/ops/claims.py takes and
changes them, under the host lock).

The claim record (~/.plotfleet/drive-claims.json), one per drive:

    {drive key: {"holder": who writes into the drive: "controller:<run>" or
                           "runner:<queue>" (a transfer runner it handed a
                           queue to),
                 "dir": the farm dir written into,
                 "plots": [{"plot": file name, "plot_id": id,
                            "deletions": [names deleted for it]}],
                 "taken_at", "renewed_at", "expires_at": this host's clock}}

A claim is taken (or renewed) under the host lock, and refused while another
holder's claim on the drive is alive, or another plot's partial is still
growing there.  It lives until `expires_at` (CLAIM_S after its last renewal).
Renewal comes from whoever writes into the drive: the holder asking again,
and the rsync writing its plot's partial (each write renews it), so a queue
outlives the controller that made it.  A claim ends when its plots have
arrived under their final names.  Nothing needs releasing: a controller
killed mid-pass leaves a claim that simply expires.  An expired claim whose
deletions are pending keeps their room for its plot: that lives in the
ledger, which no claim's expiry touches.
"""
import os
import time

from .. import statefile
from . import disks

CLAIM_S = 120.0

NAME = "drive-claims.json"


def plots(claim):
    """The claim's plots; a claim written by an older agent ({"plot", "at"}) too."""
    if isinstance(claim.get("plots"), list):
        return [p for p in claim["plots"] if isinstance(p, dict) and p.get("plot")]
    return [{"plot": claim["plot"], "plot_id": None, "deletions": []}] if claim.get("plot") else []


def renewed(claim, now):
    """Last renewal: the holder's, or the newest write into its plots' partials."""
    at = float(claim.get("renewed_at") or claim.get("at") or 0)
    for p in plots(claim):
        try:
            at = max(at, os.stat(os.path.join(claim["dir"], p["plot"]) +
                                 disks.PARTIAL_SUFFIX).st_mtime)
        except (OSError, KeyError):
            pass
    return at


def alive(claim, now, farm=()):
    if not isinstance(claim, dict) or not claim.get("dir") or not plots(claim):
        return False
    dirs = [d for d in (claim["dir"],) + tuple(farm) if disks.responsive(d)]
    if not disks.responsive(claim["dir"]):
        return False                       # its drive is not responding: nothing arrives there
    if all(any(os.path.exists(os.path.join(d, p["plot"])) for d in dirs)
           for p in plots(claim)):
        return False                       # arrived (here or elsewhere): the drive is free again
    return now < renewed(claim, now) + CLAIM_S


def alive_claims(config, now=None):
    """{drive key: claim} of the claims alive now (read without the lock)."""
    now = time.time() if now is None else now
    farm = disks.dirs_of(config, "farm")
    return {k: c for k, c in statefile.load(NAME).items() if alive(c, now, farm)}


def claimed_plots(config, now=None):
    return {p["plot"] for c in alive_claims(config, now).values() for p in plots(c)}
