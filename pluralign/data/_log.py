"""The study's log: one entry per cleaning or selection step, with a few example values."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class LogEntry:
    """One cleaning or selection step that removed or changed rows.

    Examples
    --------
    >>> LogEntry("strip_whitespace", "raters", 3, "surrounding whitespace removed", "' a '")
    LogEntry(step='strip_whitespace', table='raters', n_rows=3, reason='surrounding whitespace removed', examples="' a '")
    """

    step: str
    table: str
    n_rows: int
    reason: str
    examples: str = ""


def examples(values: Iterable, n: int = 5) -> str:
    """Up to ``n`` values as ``repr`` text, with a count of the rest.

    Examples
    --------
    >>> examples(["a", "b", "c"], 2)
    "'a', 'b' … (+1)"
    """
    vals = list(values)
    text = ", ".join(repr(v) for v in vals[:n])
    return text + (f" … (+{len(vals) - n})" if len(vals) > n else "")
