"""Distributions of soft preference labels by labelling method and rater group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from pluralign.plots import _common as C
from pluralign.plots._style import color_map

_METHOD_ORDER = ("majority", "distribution", "posterior")


def _as_table(labels: Any) -> pd.DataFrame:
    """One frame from a PreferenceLabels, a DataFrame, or a sequence of either (concatenated)."""
    if isinstance(labels, pd.DataFrame):
        return labels
    table = getattr(labels, "table", None)
    if isinstance(table, pd.DataFrame):
        return table
    if isinstance(labels, Sequence) and not isinstance(labels, str) and labels:
        return pd.concat([_as_table(x) for x in labels], ignore_index=True)
    raise TypeError(
        "soft_labels needs PreferenceLabels (pluralign.labels.preference_labels), its .table, or a "
        f"list of them; got {type(labels).__name__}"
    )


def soft_labels(
    labels: Any,
    *,
    value: str | None = None,
    kind: Literal["hist", "violin"] = "hist",
    bins: int = 20,
    methods: Sequence[str] | None = None,
    groups: Sequence[object] | None = None,
    colors: Mapping[object, str] | None = None,
    ncols: int | None = None,
    title: str | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Distribution of soft preference labels, one panel per method, coloured by group.

    Majority labels pile up at 1 (a hard label), vote shares spread over the possible
    fractions, posterior labels are smooth; groups that disagree with others show
    shifted distributions.

    Parameters
    ----------
    labels : PreferenceLabels, DataFrame or sequence of them
        ``pluralign.labels.preference_labels`` result(s) or their ``.table`` (columns
        ``method``, ``group`` and ``p_chosen`` and/or ``p_a``). Several results (one per method
        or group) are stacked. A missing ``method`` or ``group`` column counts as one level.
    value : {"p_chosen", "p_a", "p"}, optional
        Probability drawn: that the chosen response is preferred (0.5-1; how confident the label
        is), that response A is preferred (0-1), or that a response is desirable (``p`` of
        ``DesirabilityLabels``). Default: the first of these present.
    kind : {"hist", "violin"}, default "hist"
        Overlaid step histograms (share of each group's pairs per bin), or violins per
        group (a tick when all values of a group are equal).
    bins : int, default 20
        Histogram bins over [0, 1].
    methods, groups : sequence, optional
        Subset and order of methods (panels) and groups (colours).
    colors : mapping, optional
        Colour per group.
    ncols : int, optional
        Panels per row (default up to 3).
    title : str, optional
        Figure title.
    fig : Figure, optional
        Empty figure to draw on; by default a new one in :func:`pluralign.plots.style`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> from pluralign import plots
    >>> table = pd.DataFrame({"method": ["majority"] * 4 + ["distribution"] * 4,
    ...     "group": ["she/her", "he/him"] * 4,
    ...     "p_chosen": [1, 1, 1, 1, 0.6, 0.8, 0.7, 1.0]})
    >>> fig = plots.soft_labels(table)
    >>> [ax.get_title() for ax in fig.axes]
    ['Majority (n = 4)', 'Distribution (n = 4)']
    """
    table = _as_table(labels)
    if value is None:
        value = next((c for c in ("p_chosen", "p_a", "p") if c in table.columns), "p_chosen")
    C.check_frame(table, [value], "soft_labels", "pluralign.labels.preference_labels(...).table")
    data = table.copy()
    data["_method"] = (
        data["method"].astype("object").fillna("labels") if "method" in data else "labels"
    )
    data["_group"] = C.label_values(data, ["group"]) if "group" in data else C.EVERYONE
    data = data[np.isfinite(pd.to_numeric(data[value], errors="coerce"))]
    present = list(pd.unique(data["_method"]))
    default_order = [m for m in _METHOD_ORDER if m in present] + [
        m for m in present if m not in _METHOD_ORDER
    ]
    method_list = C.levels(data["_method"], methods if methods is not None else default_order)
    group_list = C.levels(data["_group"], groups)
    colour = color_map(group_list, colors)
    lo = 0.5 if value == "p_chosen" and data[value].min() >= 0.5 else 0.0
    edges = np.linspace(lo, 1.0, (bins // 2 if lo else bins) + 1)
    what = {
        "p_chosen": "P(chosen response preferred)",
        "p_a": "P(response A preferred)",
        "p": "P(response desirable)",
    }.get(value, C.nice(value))
    with C.maybe_style(fig is None):
        panel = (2.6, 2.1) if kind == "hist" else (0.5 * len(group_list) + 1.4, 2.3)
        fig, axes = C.panel_grid(fig, len(method_list), ncols, panel, sharey=kind == "violin")
        for ax, method in zip(axes, method_list, strict=True):
            sub = data[data["_method"] == method]
            if kind == "hist":
                for g in group_list:
                    x = sub.loc[sub["_group"] == g, value].to_numpy(float)
                    if x.size:
                        ax.hist(
                            np.clip(x, edges[0], edges[-1]),
                            bins=edges,
                            weights=np.full(x.size, 1.0 / x.size),
                            histtype="step",
                            linewidth=1.4,
                            color=colour[g],
                        )
                ax.set_xlim(edges[0], edges[-1])
                ax.set_xlabel(what)
                ax.set_ylabel("Share of pairs")
            elif kind == "violin":
                for i, g in enumerate(group_list):
                    x = sub.loc[sub["_group"] == g, value].to_numpy(float)
                    if x.size == 0:
                        continue
                    if np.ptp(x) == 0:
                        ax.hlines(x[0], i - 0.3, i + 0.3, color=colour[g], linewidth=2.0)
                        continue
                    parts = ax.violinplot(
                        x, positions=[i], widths=0.8, showextrema=False, showmedians=True
                    )
                    for body in parts["bodies"]:
                        body.set_facecolor(colour[g])
                        body.set_edgecolor(colour[g])
                        body.set_alpha(0.55)
                    parts["cmedians"].set_color("black")
                ax.set_xticks(
                    range(len(group_list)), [str(g) for g in group_list], rotation=30, ha="right"
                )
                ax.set_ylim(edges[0] - 0.02, 1.02)
                ax.set_ylabel(what)
            else:
                raise ValueError(f"kind must be 'hist' or 'violin', got {kind!r}")
            ax.set_title(f"{C.nice(method)} (n = {len(sub):,})")
        for ax in axes:
            if not ax.get_subplotspec().is_first_col() and kind == "violin":
                ax.set_ylabel("")
        if kind == "hist" and len(group_list) > 1:
            handles = [
                Patch(facecolor="none", edgecolor=colour[g], linewidth=1.4, label=str(g))
                for g in group_list
            ]
            fig.legend(handles=handles, title="Group", loc="outside right upper")
        if title:
            fig.suptitle(title)
    return fig
