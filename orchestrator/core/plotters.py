"""The one PLOTTERS table: what plotfleet knows of each plotter, for the
inventory's checks, the command builder and the keys reference.  (The
agent, a leaf, recognises plotters from their processes and logs on its own:
agent/facts/procs.py, logparse.py.)"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple


@dataclass(frozen=True)
class Plotter:
    name: str
    k: Tuple[int, Optional[int], str]           # least k, most k (None: any), why
    buckets: Tuple[int, int, str]               # least, most, why
    needs_keys: bool = False                    # farmer key and pool key/contract required


PLOTTERS: Dict[str, Plotter] = {p.name: p for p in (
    Plotter("chia", (25, None, "chia plots create refuses k < 25; use plotter chiapos for "
                               "small plots"),
            (16, 128, "chia plots create takes 16 to 128 buckets")),
    Plotter("madmax", (25, None, "madmax makes k >= 25"),
            (16, 65536, "madmax takes 2^4 to 2^16 buckets"), needs_keys=True),
    Plotter("bladebit", (32, 32, "bladebit makes k32 only"),
            (64, 1024, "bladebit diskplot takes 64 to 1024 buckets"), needs_keys=True),
    # chiapos at small k takes fewer buckets (agent/launch/chiapos.py max_buckets)
    Plotter("chiapos", (18, None, "chiapos needs k >= 18"),
            (16, 128, "chiapos takes 16 to 128 buckets")),
)}
