"""The one PLOTTERS table: what plotfleet knows of each plotter, for the
inventory's checks, the command builder and the keys reference.  (The
agent, a leaf, recognises plotters from their processes and logs on its own:
agent/facts/procs.py, logparse.py.)"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, FrozenSet, Optional, Tuple

from orchestrator.core.plotsize import BLADEBIT, GIGAHORSE


@dataclass(frozen=True)
class Plotter:
    name: str
    k: Tuple[int, Optional[int], str]           # least k, most k (None: any), why
    buckets: Optional[Tuple[int, int, str]]     # least, most, why (None: takes none)
    needs_keys: bool = False                    # farmer key and pool key/contract required
    executable: Optional[str] = None            # default binary (None: the agent's launcher)
    compress_format: Optional[str] = None       # the compressed format it makes, if any
    options: FrozenSet[str] = frozenset()       # plotter-specific inventory keys it takes


PLOTTERS: Dict[str, Plotter] = {p.name: p for p in (
    Plotter("chia", (25, None, "chia plots create refuses k < 25; use plotter chiapos for "
                               "small plots"),
            (16, 128, "chia plots create takes 16 to 128 buckets"), executable="chia",
            options=frozenset({"nobitfield", "exclude_final_dir"})),
    Plotter("madmax", (25, None, "madmax makes k >= 25"),
            (16, 65536, "madmax takes 2^4 to 2^16 buckets"), needs_keys=True,
            executable="chia_plot", options=frozenset({"n_buckets3", "rmulti2"})),
    Plotter("bladebit", (32, 32, "bladebit makes k32 only"),
            (64, 1024, "bladebit diskplot takes 64 to 1024 buckets"), needs_keys=True,
            executable="bladebit", compress_format=BLADEBIT,
            options=frozenset({"cuda_device", "disk_128", "disk_16"})),
    # chiapos at small k takes fewer buckets (agent/launch/chiapos.py max_buckets)
    Plotter("chiapos", (18, None, "chiapos needs k >= 18"),
            (16, 128, "chiapos takes 16 to 128 buckets")),
    # Gigahorse's GPU plotter: one binary per k (cuda_plot_k32, cuda_plot_k32_v3, ...)
    Plotter("gigahorse", (29, 34, "Gigahorse's GPU plotter makes k29 to k34"),
            None, needs_keys=True,
            executable="cuda_plot_k{k}", compress_format=GIGAHORSE,
            options=frozenset({"cuda_device"})),
)}
