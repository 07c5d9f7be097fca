"""The one path matcher: which configured dir a path a host reported is.

Hosts report paths as they see them (resolved, `~` expanded, with or without
a trailing slash); the inventory keeps them as written.  Scheduler,
archiver, views and apply all match through PathIndex.
"""
from __future__ import annotations

import posixpath
from typing import Dict, Iterable, List, Optional, Tuple

from orchestrator.core.state import Dir


def norm(path: str) -> str:
    return posixpath.normpath(path) if path else path


class PathIndex:
    """Finds which configured dir a reported path is.

    Hosts report paths as they see them: maybe with or without a trailing
    slash (madmax), and with `~` expanded where the inventory kept it.
    """

    def __init__(self, configured: Iterable[str]):
        self.exact: Dict[str, str] = {}
        self.home: List[Tuple[str, str]] = []
        for p in configured:
            self.exact.setdefault(norm(p), p)
            if p.startswith("~/") and len(norm(p)) > 2:
                self.home.append((norm(p)[1:], p))      # "~/t0" matches ".../t0"

    def find(self, path: Optional[str]) -> Optional[str]:
        if not path:
            return None
        n = norm(path)
        hit = self.exact.get(n)
        if hit is None:
            for suffix, p in self.home:
                if n.endswith(suffix):
                    return p
        return hit

    def dirs(self, dirs: Iterable[Dir]) -> Dict[str, Dir]:
        """configured path -> the Dir the host reported for it."""
        out: Dict[str, Dir] = {}
        for d in dirs:
            p = self.find(d.path)
            if p is not None and p not in out:
                out[p] = d
        return out
