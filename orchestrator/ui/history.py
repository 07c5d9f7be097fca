"""`plotfleet history`: the application log's records as a table.

Every value from the log (host names, paths, messages) goes in as Text,
never as markup.
"""
from __future__ import annotations

import time
from typing import Iterable, Optional

from rich.table import Table
from rich.text import Text


def stamp(at) -> str:
    """Controller epoch seconds -> local time, to the second."""
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(at)))
    except (TypeError, ValueError, OverflowError, OSError):
        return "?"


def history_table(records: Iterable[dict], title: Optional[str] = None) -> Table:
    records = list(records)
    n = len(records)
    t = Table(title=title or f"history ({n} event{'' if n == 1 else 's'})")
    for col in ("time", "host", "kind", "detail"):
        t.add_column(col, overflow="fold", no_wrap=col == "time")
    for r in records:
        style = "red" if r.get("failed") else "yellow" if r.get("kind") == "blocked" else ""
        t.add_row(Text(stamp(r.get("at"))), Text(str(r.get("host", ""))),
                  Text(str(r.get("kind", ""))), Text(str(r.get("detail", "")), style=style))
    return t
