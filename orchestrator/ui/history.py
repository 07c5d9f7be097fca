"""`plotfleet history`: the application log's records as the event lines
plot-all prints (ui/eventline.py), dated, newest last; the records of one
pass (same `at`) folded as plot-all folds them.

Every value from the log (host names, paths, messages) goes in as Text,
never as markup.
"""
from __future__ import annotations

import itertools
import time
from typing import Iterable, List, Optional

from rich.text import Text

from orchestrator.ui import eventline


def stamp(at) -> str:
    """Controller epoch seconds -> local time, to the second."""
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(at)))
    except (TypeError, ValueError, OverflowError, OSError):
        return "?"


def history_lines(records: Iterable[dict], places: eventline.Places,
                  marks: eventline.Marks = eventline.UTF8, width: Optional[int] = None,
                  verbose: bool = False) -> List[Text]:
    out = []
    for at, group in itertools.groupby(records, key=lambda r: r.get("at")):
        for r in eventline.fold(list(group)):
            text = eventline.render(r, stamp(at), places, marks, width, verbose)
            if r.get("kind") == "blocked" and not r.get("failed"):
                text.stylize("yellow")
            out.append(text)
    return out
