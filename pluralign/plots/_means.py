"""Group means with intervals, one panel per rated dimension (the main figure of rating studies)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from pluralign.models import RATING_CONTRAST_COLUMNS
from pluralign.plots import _common as C
from pluralign.plots._style import color_map, marker_map

#: Columns of describe / model outputs that are statistics, never the grouping.
_STAT_COLUMNS = frozenset(
    {
        "dimension",
        "mean",
        "sd",
        "se",
        "median",
        "ci_low",
        "ci_high",
        "n",
        "n_raters",
        "n_ratings",
        "n_items",
        *RATING_CONTRAST_COLUMNS,
        "p_value",
        "p_adjusted",
        "reference",
        "is_reference",
        "by",
        "mean_reference",
        "n_raters_reference",
        "method",
        "ci_method",
    }
)

_VALUE_LABELS = {
    "mean": "Mean rating",
    "difference": "Difference, points",
    "relative_pct": "Difference, % of reference",
}

_INTERVALS = {
    "mean": ("ci_low", "ci_high"),
    "difference": ("difference_ci_low", "difference_ci_high"),
    "relative_pct": ("relative_ci_low", "relative_ci_high"),
}


def _guess_by(df: pd.DataFrame, hue: str | None) -> list[str]:
    if "group" in df.columns:
        return ["group"]
    found = [
        c
        for c in df.columns
        if c not in _STAT_COLUMNS and c != hue and not pd.api.types.is_numeric_dtype(df[c])
    ]
    if not found:
        raise ValueError(
            "group_means: cannot tell which column holds the groups; the frame has "
            f"{list(df.columns)}. Pass by='<demographic>'."
        )
    return found


def _n_label(sub: pd.DataFrame) -> str:
    n = pd.to_numeric(sub["n_raters"], errors="coerce").dropna()
    if n.empty:
        return ""
    lo, hi = int(n.min()), int(n.max())
    return f" (n={lo:,})" if lo == hi else f" (n={lo:,}–{hi:,})"


def group_means(
    df: pd.DataFrame,
    *,
    by: str | Sequence[str] | None = None,
    value: str = "mean",
    hue: str | None = None,
    dimensions: Sequence[str] | None = None,
    order: Sequence[object] | None = None,
    colors: Mapping[object, str] | None = None,
    reference: float | Mapping[str, float] | None = None,
    show_n: bool = True,
    ncols: int | None = None,
    sharex: bool = True,
    ci_prob: float | None = None,
    title: str | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Group means (or differences) with intervals: one panel per dimension, dots and CI lines.

    Each panel shows one rated dimension; groups run down the shared vertical axis, so a
    group sits at the same height in every panel. Dots are estimates, horizontal lines are
    the intervals given in the frame (not recomputed).

    Parameters
    ----------
    df : DataFrame
        Output of ``pluralign.describe.group_means`` / ``relative_difference`` (columns
        ``dimension``, the grouping column(s), ``mean``, ``ci_low``, ``ci_high`` and optionally
        ``n_raters``, ``difference``, ``relative_pct`` with their ``*_ci_low/high``) or of
        ``ModelResult.marginal_means(by=...)`` (``dimension``, the ``by`` columns, ``mean``,
        ``ci_low``, ``ci_high``).
    by : str or sequence of str, optional
        Grouping column(s); several are joined into one label (``"she/her × Black"``).
        Default: ``group`` if present, else the non-numeric columns that are not statistics.
    value : {"mean", "difference", "relative_pct"}, default "mean"
        What to draw; intervals come from ``ci_low/ci_high``, ``difference_ci_low/high`` or
        ``relative_ci_low/high`` when present.
    hue : str, optional
        A second grouping drawn side by side within each group, coloured, with a legend.
    dimensions : sequence of str, optional
        Dimensions to draw, in panel order (default: all, in order of appearance).
    order : sequence, optional
        Order of the groups, top to bottom (default: order of appearance).
    colors : mapping, optional
        Colour per group (or per ``hue`` level); others take the Okabe–Ito palette in order.
    reference : float or mapping of dimension to float, optional
        Position of a dashed reference line (default: 0 for differences, none for means).
    show_n : bool, default True
        Append the number of raters (``n_raters``) to group labels when the column exists.
    ncols : int, optional
        Panels per row (default up to 3).
    sharex : bool, default True
        Same value axis in every panel (comparable scales).
    ci_prob : float, optional
        Probability of the intervals in the frame, for the axis label (default:
        ``df.attrs["ci_prob"]``, else ``options.ci_prob``).
    title : str, optional
        Figure title.
    fig : Figure, optional
        Empty figure to draw on; by default a new one in :func:`pluralign.plots.style`.

    Returns
    -------
    matplotlib.figure.Figure

    See Also
    --------
    forest : Contrasts between groups from a fitted model.

    Examples
    --------
    >>> import pandas as pd
    >>> from pluralign import plots
    >>> df = pd.DataFrame({
    ...     "dimension": ["toxicity"] * 2 + ["helpfulness"] * 2,
    ...     "gender": ["she/her", "he/him"] * 2,
    ...     "n_raters": [50, 48, 50, 48],
    ...     "mean": [2.1, 1.8, 3.9, 4.0],
    ...     "ci_low": [1.9, 1.6, 3.7, 3.8],
    ...     "ci_high": [2.3, 2.0, 4.1, 4.2],
    ... })
    >>> fig = plots.group_means(df)
    >>> [ax.get_title() for ax in fig.axes]
    ['Toxicity', 'Helpfulness']
    """
    C.check_frame(df, ["dimension", value], "group_means", "pluralign.describe.group_means")
    if value not in _INTERVALS and value not in df.columns:
        raise ValueError(f"value={value!r} is not a column of the frame")
    by_cols = [by] if isinstance(by, str) else list(by) if by is not None else _guess_by(df, hue)
    C.check_frame(
        df, by_cols + ([hue] if hue else []), "group_means", "pluralign.describe.group_means"
    )
    lo_col, hi_col = _INTERVALS.get(value, (f"{value}_ci_low", f"{value}_ci_high"))
    has_ci = lo_col in df.columns and hi_col in df.columns
    prob = C.ci_prob_of(df, ci_prob)

    data = df.copy()
    data["_group"] = C.label_values(data, by_cols)
    stacked = by is None and hue is None and "by" in data.columns and data["by"].nunique() > 1
    data["_section"] = data["by"].astype(str) if stacked else ""
    dims = C.levels(data["dimension"], dimensions)
    data = data[data["dimension"].isin(dims)]
    if order is not None:
        C.levels(data["_group"], order)  # raises on values not in the data
        data = data[data["_group"].isin(order)]
    hues = C.levels(data[hue].astype("object").fillna(C.EVERYONE)) if hue else []
    if hue:
        data[hue] = data[hue].astype("object").fillna(C.EVERYONE)

    # rows: one per (section, group), a bold header per section when demographics are stacked
    keys: list[tuple[str, object] | None] = []
    labels: list[str] = []
    for sec in C.levels(data["_section"]):
        block = data[data["_section"] == sec]
        present = C.levels(block["_group"])
        glist = [g for g in order if g in present] if order is not None else present
        if stacked:
            keys.append(None)
            labels.append(C.nice(sec))
        for g in glist:
            rows = block[block["_group"] == g]
            text = str(g)
            if show_n and "n_raters" in rows.columns and not hue:
                text += _n_label(rows)
            if (
                "is_reference" in rows.columns
                and rows["is_reference"].fillna(False).astype(bool).all()
            ):
                text += " (ref.)"
            keys.append((sec, g))
            labels.append(text)
    data["_key"] = list(zip(data["_section"], data["_group"], strict=True))
    if hue:
        levels_coloured = hues
    elif stacked:
        levels_coloured = C.levels(data["_section"])
    else:
        levels_coloured = [k[1] for k in keys if k is not None]
    colour = color_map(levels_coloured, colors)
    marker = marker_map(levels_coloured)
    data["_colour"] = data[hue] if hue else data["_section"] if stacked else data["_group"]

    if stacked or len(by_cols) > 1 or by_cols != ["group"] or "by" not in data.columns:
        ylabel = "" if stacked else " × ".join(C.nice(c) for c in by_cols)
    else:
        ylabel = C.nice(data["by"].iloc[0])
    n_rows = len(labels) * (max(1, len(hues)) * 0.6 if hue else 1)
    panel = (2.5, 0.24 * n_rows + 0.8)
    with C.maybe_style(fig is None):
        fig, axes = C.panel_grid(fig, len(dims), ncols, panel, sharex=sharex, sharey=True)
        offsets = dict(zip(hues, C.dodge(len(hues), 0.72), strict=True)) if hue else {}
        for ax, dim in zip(axes, dims, strict=True):
            sub = data[data["dimension"] == dim]
            pos = C.categorical_axis(ax, labels)
            where = {k: p for k, p in zip(keys, pos, strict=True) if k is not None}
            for level in levels_coloured:
                part = sub[sub["_colour"] == level]
                if part.empty:
                    continue
                y = np.array([where[k] for k in part["_key"]], dtype=float)
                if hue:
                    y = y - offsets[level]
                C.dot_interval(
                    ax,
                    y,
                    part[value].to_numpy(),
                    part[lo_col].to_numpy() if has_ci else None,
                    part[hi_col].to_numpy() if has_ci else None,
                    color=colour[level],
                    marker=marker[level],
                )
            ticks = ax.get_yticklabels()
            for i, k in enumerate(keys):
                if k is None and i < len(ticks):
                    ticks[i].set_fontweight("bold")
            ref = reference.get(dim) if isinstance(reference, Mapping) else reference
            if ref is None and value != "mean":
                ref = 0.0
            if ref is not None:
                C.reference_line(ax, float(ref))
            ax.set_title(C.nice(dim))
            ax.grid(axis="x")
        base = _VALUE_LABELS.get(value, C.nice(value))
        fig.supxlabel(f"{base} ({C.pct(prob)} CI)" if has_ci else base)
        for ax in axes:
            ax.tick_params(axis="x", labelbottom=True)  # every panel keeps its scale
            if ax.get_subplotspec().is_first_col():
                ax.set_ylabel(ylabel)
        if hue:
            handles = [
                Line2D([], [], color=colour[h], marker=marker[h], linestyle="-", label=str(h))
                for h in hues
            ]
            fig.legend(
                handles=handles,
                title=C.nice(hue),
                loc="outside right upper",
            )
        if title:
            fig.suptitle(title)
    return fig
