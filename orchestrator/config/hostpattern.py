"""Ansible host patterns (`--limit`), as a pure function over names and groups.

Supported, with Ansible's meaning: host or group names, `all` / `*`, `*?[]`
wildcards (fnmatch, case-sensitive), `~regex` (matched from the start),
unions `a:b` / `a,b`, intersections `a:&b`, exclusions `a:!b`.  Ansible
evaluates unions first, then intersections, then exclusions, whatever their
order in the pattern; a pattern of only `&`/`!` terms starts from `all`.
"""
from __future__ import annotations

import fnmatch
import re
from typing import Dict, List, Optional, Sequence

from orchestrator.errors import UserError

# Ansible's `:` splitter: a bracketed expression such as `web[1:3]` is one term.
_COLON_TERMS = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")
_WILDCARD = set("*?[")


def split(pattern: str) -> List[str]:
    """Terms of a pattern: `,` separates when present, else `:` (as Ansible)."""
    parts = pattern.split(",") if "," in pattern else _COLON_TERMS.findall(pattern)
    return [p.strip() for p in parts if p.strip()]


def _matcher(term: str, pattern: str):
    try:
        if term.startswith("~"):
            return re.compile(term[1:]).match
        return re.compile(fnmatch.translate(term)).match
    except re.error as e:
        raise UserError(f"--limit {pattern!r}: bad pattern {term!r}: {e}") from None


def _term_hosts(term: str, hosts: Sequence[str], groups: Dict[str, Sequence[str]],
                pattern: str) -> set:
    """Hosts of one term: matching groups' hosts, plus matching host names when
    no group matched or the term is a wildcard/regex (Ansible's rule)."""
    if term in ("all", "*"):
        return set(hosts)
    match = _matcher(term, pattern)
    found = set()
    matched_group = False
    for group, members in groups.items():
        if match(group):
            matched_group = True
            found.update(members)
    if not matched_group or term.startswith("~") or _WILDCARD & set(term):
        found.update(h for h in hosts if match(h))
    return found


def select(pattern: Optional[str], hosts: Sequence[str],
           groups: Dict[str, Sequence[str]]) -> List[str]:
    """Names of `hosts` (in their order) selected by an Ansible host pattern.

    None selects every host.  A pattern selecting no host is a UserError.
    """
    if pattern is None:
        return list(hosts)
    terms = split(pattern)
    unions = [t for t in terms if t[0] not in "&!"] or ["all"]
    chosen = set()
    for t in unions:
        chosen |= _term_hosts(t, hosts, groups, pattern)
    for t in terms:
        if t[0] == "&":
            chosen &= _term_hosts(t[1:], hosts, groups, pattern)
    for t in terms:
        if t[0] == "!":
            chosen -= _term_hosts(t[1:], hosts, groups, pattern)
    picked = [h for h in hosts if h in chosen]
    if not picked:
        raise UserError(f"--limit {pattern!r}: matches no host")
    return picked
