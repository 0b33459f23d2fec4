"""Compact HTML summaries of fitted models for Jupyter (``_repr_html_``)."""

from __future__ import annotations

import html
from collections.abc import Mapping

import pandas as pd

#: Effects columns shown in a notebook summary (those present are shown, in this order).
SHOWN = (
    "dimension",
    "term",
    "level",
    "reference",
    "estimate",
    "std_error",
    "ci_low",
    "ci_high",
    "p_value",
    "p_direction",
    "p_adjusted",
)


def html_summary(title: str, facts: Mapping[str, object], effects: pd.DataFrame) -> str:
    """A heading, a two-column table of facts and the effects table, as HTML.

    Examples
    --------
    >>> out = html_summary("Fit", {"formula": "rating ~ g"}, pd.DataFrame({"term": ["g"]}))
    >>> out.startswith("<div") and "rating ~ g" in out
    True
    """
    rows = "".join(
        f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
        f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
        for k, v in facts.items()
    )
    cols = [c for c in SHOWN if c in effects.columns and effects[c].notna().any()]
    table = effects[cols].to_html(index=False, float_format=lambda x: f"{x:.4g}", border=0)
    return f"<div><strong>{html.escape(title)}</strong><table>{rows}</table>{table}</div>"
