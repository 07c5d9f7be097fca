"""Dir keys: a group of dirs named once by their common prefix, each row by
its unique rest, as plotman's screen does (`os.path.commonpath` of the tmp
dirs, of the dst dirs; `abbr_path` is the path relative to it).

Unlike plotman, a key never swallows a whole dir: the prefix is always a
parent of every dir in the group (one dir alone: its parent), so every row
keeps at least its last component (`00`, `tmp`) and rows stay distinct.
A prefix of `/` (or none) is no key at all: rows then carry the whole path.
Pure string work, no I/O: `~/plots` is taken as written.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Dict, Iterable, Tuple


@dataclass(frozen=True)
class DirKey:
    prefix: str                     # "" for no key; else ends in "/"
    short: Dict[str, str] = field(default_factory=dict)    # path -> what a row shows

    def __call__(self, path) -> str:
        if not path:
            return "-"
        got = self.short.get(path)
        if got is not None:
            return got
        return abbreviate(path, self.prefix)


def _norm(path: str) -> str:
    return posixpath.normpath(path) if path else path


def common_prefix(paths: Iterable[str]) -> str:
    """The longest dir that is a parent of every path ("" when there is none
    worth naming): what the key line shows, with a trailing "/"."""
    paths = [_norm(p) for p in paths if p]
    if not paths:
        return ""
    try:
        prefix = posixpath.commonpath(paths)
    except ValueError:              # absolute mixed with relative ones
        return ""
    if prefix in paths:             # one of the dirs itself: its parent is the key
        prefix = posixpath.dirname(prefix)
    if prefix in ("", "/", ".", "~"):
        return ""
    return prefix.rstrip("/") + "/"


def abbreviate(path: str, prefix: str) -> str:
    """`path` without `prefix` (plotman's abbr_path), or whole if outside it."""
    if not path:
        return "-"
    p = _norm(path)
    if prefix and p.startswith(prefix):
        rest = p[len(prefix):]
        if rest:
            return rest
    return path


def dir_key(paths: Iterable[str]) -> DirKey:
    paths = list(dict.fromkeys(p for p in paths if p))
    prefix = common_prefix(paths)
    return DirKey(prefix, {p: abbreviate(p, prefix) for p in paths})


def key_line(keys: Iterable[Tuple[str, DirKey]]) -> str:
    """`tmp /mnt/nvme/ · dst /mnt/dst/`: kinds sharing a prefix named together."""
    by_prefix: Dict[str, list] = {}
    for kind, key in keys:
        if key.prefix:
            by_prefix.setdefault(key.prefix, []).append(kind)
    return " · ".join(f"{', '.join(kinds)} {prefix}" for prefix, kinds in by_prefix.items())
