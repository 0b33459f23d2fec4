"""Disagreement between groups: divergence heat map and agreement (Krippendorff's alpha) by group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from pluralign.plots import _common as C
from pluralign.plots._style import GUIDE, INK, SEQUENTIAL_CMAP, color_map, marker_map


def _short(text: object, width: int = 22) -> str:
    s = str(text)
    return s if len(s) <= width else s[: width - 1] + "…"


def divergence_heatmap(
    df: pd.DataFrame,
    *,
    value: str = "jsd",
    max_items: int = 30,
    items: Sequence[object] | None = None,
    pairs: Sequence[tuple[object, object]] | None = None,
    annotate: bool | None = None,
    cmap: str = SEQUENTIAL_CMAP,
    vmax: float | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Heat map of the divergence between the rating distributions of two groups, per item.

    Rows are group pairs (``"she/her vs he/him"``), columns items, colour the divergence
    (Jensen–Shannon by default; 0 = identical distributions). Items are sorted by their mean
    divergence over pairs, most divisive first; when there are more than ``max_items`` only
    the most divisive are drawn and the axis label says how many of how many. Cells without
    a value are grey. Interval columns, if any, are not drawn.

    The bias-corrected JSD of ``group_divergence`` scatters around 0 when two groups agree, so
    it can be negative. The colour scale is clipped at 0: negative cells take the colour of
    0 (no evidence of divergence), the colour bar says so and points down, and annotations
    keep the signed value.

    Parameters
    ----------
    df : DataFrame
        Output of ``pluralign.labels.group_divergence`` (``item``, ``group_a``, ``group_b``,
        ``jsd``, optionally ``dimension``, ``ci_low``, ``ci_high``). With several dimensions,
        columns are labelled ``"dimension: item"``.
    value : str, default "jsd"
        Column coloured.
    max_items : int, default 30
        Most divisive items shown (ignored if ``items`` is given).
    items : sequence, optional
        Items to draw, in this order.
    pairs : sequence of (group_a, group_b), optional
        Group pairs to draw, in this order (default: order of appearance).
    annotate : bool, optional
        Print values in cells (default: when there are at most 12 items and 15 pairs).
    cmap : str, default "viridis"
        Sequential colour map.
    vmax : float, optional
        Upper end of the colour scale (default: the largest value drawn). The lower end is
        0; smaller values are drawn in the colour of 0.
    title : str, optional
        Axes title.
    ax : Axes, optional
        Axes to draw on; by default a new figure in :func:`pluralign.plots.style`.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import pandas as pd
    >>> from pluralign import plots
    >>> df = pd.DataFrame({"item": ["i1", "i2", "i1", "i2"],
    ...     "group_a": ["she/her"] * 4, "group_b": ["he/him", "he/him", "they/them", "they/them"],
    ...     "jsd": [0.02, 0.10, 0.05, 0.20]})
    >>> ax = plots.divergence_heatmap(df)
    >>> [t.get_text() for t in ax.get_xticklabels()]
    ['i2', 'i1']
    """
    C.check_frame(
        df,
        ["item", "group_a", "group_b", value],
        "divergence_heatmap",
        "pluralign.labels.group_divergence",
    )
    data = df.copy()
    multi_dim = "dimension" in data.columns and data["dimension"].nunique() > 1
    data["_item"] = (
        data["dimension"].astype(str) + ": " + data["item"].astype(str)
        if multi_dim
        else data["item"]
    )
    data["_pair"] = list(zip(data["group_a"], data["group_b"], strict=True))
    dup = data.duplicated(["_item", "_pair"])
    if dup.any():
        raise ValueError(
            f"divergence_heatmap: {int(dup.sum())} duplicated (item, group_a, group_b) rows; "
            "filter to one dimension / one estimate per cell first"
        )
    pair_list = list(pairs) if pairs is not None else list(pd.unique(data["_pair"]))
    data = data[data["_pair"].isin(pair_list)]
    n_total = data["_item"].nunique()
    if items is not None:
        item_list = list(items)
        missing = [i for i in item_list if i not in set(data["_item"])]
        if missing:
            raise ValueError(f"divergence_heatmap: item(s) {missing[:5]} are not in the frame")
        caption = "Item"
    else:
        ranking = (
            data.groupby("_item", sort=False)[value]
            .mean()
            .sort_values(ascending=False, kind="stable")
        )
        item_list = list(ranking.index[:max_items])
        caption = (
            f"Item ({len(item_list)} most divisive of {n_total:,}, by mean {value.upper()})"
            if len(item_list) < n_total
            else "Item (sorted by mean divergence)"
        )
    grid = (
        data.pivot(index="_pair", columns="_item", values=value)
        .reindex(index=pair_list, columns=item_list)
        .to_numpy(float)
    )
    annotate = len(item_list) <= 12 and len(pair_list) <= 15 if annotate is None else annotate
    with C.maybe_style(ax is None):
        ax = C.new_axes(
            ax,
            (
                max(4.0, (0.4 if annotate else 0.17) * len(item_list) + 2.6),
                0.3 * len(pair_list) + 1.7,
            ),
        )
        colormap = mpl.colormaps[cmap]
        colormap = colormap.with_extremes(bad="#D9D9D9", under=colormap(0.0))
        finite = grid[np.isfinite(grid)]
        top = vmax if vmax is not None else (finite.max() if finite.size else 1.0)
        top = top if top > 0 else 1.0
        clipped = bool((finite < 0).any())
        image = ax.imshow(
            np.ma.masked_invalid(grid),
            aspect="auto",
            cmap=colormap,
            vmin=0.0,
            vmax=top,
            interpolation="nearest",
        )
        ax.set_xticks(np.arange(len(item_list)), [_short(i) for i in item_list], rotation=90)
        ax.set_yticks(np.arange(len(pair_list)), [f"{a} vs {b}" for a, b in pair_list])
        ax.tick_params(length=0)
        for side in ax.spines.values():
            side.set_visible(False)
        if annotate:
            for (r, c), v in np.ndenumerate(grid):
                if np.isfinite(v):
                    dark = image.norm(max(v, 0.0)) < 0.6
                    ax.text(
                        c,
                        r,
                        f"{v:.2f}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if dark else "black",
                    )
        label = "Jensen–Shannon divergence" if value == "jsd" else C.nice(value)
        if clipped:
            label += "\n(values < 0 drawn as 0: bias-corrected,\nthey scatter around 0 when groups agree)"
        ax.figure.colorbar(
            image, ax=ax, label=label, shrink=0.9, pad=0.02, extend="min" if clipped else "neither"
        )
        if np.isnan(grid).any():
            caption += "; grey: not estimable"
        ax.set_xlabel(caption)
        ax.set_ylabel("Group pair")
        if title:
            ax.set_title(title)
    return ax


_KIND_TITLES = {"overall": "Overall", "within": "Within group", "between": "Between groups"}


def agreement(
    df: pd.DataFrame,
    *,
    group: str = "group",
    value: str = "krippendorff_alpha",
    dimensions: Sequence[str] | None = None,
    order: Sequence[object] | None = None,
    colors: Mapping[object, str] | None = None,
    thresholds: Sequence[float] | None = None,
    ci_prob: float | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Inter-rater agreement (Krippendorff's alpha) within each group, with intervals.

    Groups run down the vertical axis; dimensions sit side by side in their own colours. With
    a ``kind`` column (``pluralign.labels.agreement``), rows come in blocks: overall, within
    each group, and between pairs of groups (cross-group agreement). Groups whose alpha is
    undefined keep their row, labelled "(n/a)".
    A dashed line marks chance agreement (0); when any estimate is above 0.5, dotted lines
    mark Krippendorff's conventional thresholds 0.667 (tentative) and 0.8 (reliable).

    Parameters
    ----------
    df : DataFrame
        Output of ``pluralign.labels.agreement``: columns ``dimension``, ``group`` (missing =
        everyone), ``krippendorff_alpha``, optionally its ``krippendorff_alpha_ci_low``,
        ``krippendorff_alpha_ci_high`` (or ``ci_low``, ``ci_high``), ``kind``, ``by`` (with
        several demographics, labels read ``"by: group"``).
    group : str, default "group"
        Column naming the group.
    value : str, default "krippendorff_alpha"
        Column with the agreement coefficient; its interval is ``<value>_ci_low`` /
        ``<value>_ci_high`` (or ``ci_low`` / ``ci_high``).
    dimensions : sequence of str, optional
        Subset and order of dimensions.
    order : sequence, optional
        Order of groups, top to bottom.
    colors : mapping, optional
        Colour per dimension.
    thresholds : sequence of float, optional
        Guide lines (default: ``(0.667, 0.8)`` when an estimate is above 0.5, else none).
    ci_prob : float, optional
        Interval probability for the axis label (default: ``df.attrs["ci_prob"]`` or
        ``options.ci_prob``).
    title : str, optional
        Axes title.
    ax : Axes, optional
        Axes to draw on; by default a new figure in :func:`pluralign.plots.style`.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import pandas as pd
    >>> from pluralign import plots
    >>> df = pd.DataFrame({"dimension": ["toxicity"] * 3, "group": [None, "she/her", "he/him"],
    ...     "krippendorff_alpha": [0.31, 0.35, 0.27],
    ...     "krippendorff_alpha_ci_low": [0.28, 0.30, 0.22],
    ...     "krippendorff_alpha_ci_high": [0.34, 0.40, 0.32]})
    >>> ax = plots.agreement(df)
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['everyone', 'she/her', 'he/him']
    """
    C.check_frame(df, ["dimension", group, value], "agreement", "pluralign.labels.agreement")
    data = df.copy()
    data["_group"] = C.label_values(data, [group])
    if "by" in data.columns and data["by"].nunique() > 1:
        by_text = data["by"].astype("object").fillna("").astype(str)
        data["_group"] = (by_text + ": " + data["_group"]).where(by_text != "", data["_group"])
    dims = C.levels(data["dimension"], dimensions)
    data = data[data["dimension"].isin(dims)]
    if order is not None:
        C.levels(data["_group"], order)
        data = data[data["_group"].isin(order)]
    # sections by kind of coefficient (overall / within / between) when the frame says so
    sectioned = "kind" in data.columns and data["kind"].nunique() > 1
    data["_section"] = data["kind"].astype(str) if sectioned else ""
    present = list(pd.unique(data["_section"]))
    sections = [k for k in _KIND_TITLES if k in present] + [
        k for k in present if k not in _KIND_TITLES
    ]
    keys: list[tuple[str, object] | None] = []
    labels: list[str] = []
    for sec in sections:
        block = data[data["_section"] == sec]
        found = C.levels(block["_group"])
        glist = [g for g in order if g in found] if order is not None else found
        if sectioned:
            keys.append(None)
            labels.append(_KIND_TITLES.get(sec, C.nice(sec)))
        for g in glist:
            missing = block.loc[block["_group"] == g, value].isna().all()
            keys.append((sec, g))
            labels.append(f"{g} (n/a)" if missing else str(g))
    data["_key"] = list(zip(data["_section"], data["_group"], strict=True))
    lo_col, hi_col = f"{value}_ci_low", f"{value}_ci_high"
    if lo_col not in data.columns:
        lo_col, hi_col = "ci_low", "ci_high"
    has_ci = {lo_col, hi_col} <= set(data.columns)
    colour = color_map(dims, colors) if len(dims) > 1 or colors else {dims[0]: INK}
    marker = marker_map(dims)
    prob = C.ci_prob_of(df, ci_prob)
    n_rows = len(labels) * max(1.0, 0.5 * len(dims))
    with C.maybe_style(ax is None):
        ax = C.new_axes(ax, (5.0, 0.22 * n_rows + 1.1))
        pos = C.categorical_axis(ax, labels)
        where = {k: p for k, p in zip(keys, pos, strict=True) if k is not None}
        for off, dim in zip(C.dodge(len(dims), 0.75), dims, strict=True):
            sub = data[(data["dimension"] == dim) & data[value].notna()]
            C.dot_interval(
                ax,
                np.array([where[k] for k in sub["_key"]], dtype=float) - off,
                sub[value].to_numpy(),
                sub[lo_col].to_numpy() if has_ci else None,
                sub[hi_col].to_numpy() if has_ci else None,
                color=colour[dim],
                marker=marker[dim],
            )
        for i, k in enumerate(keys):
            if k is None:
                ax.get_yticklabels()[i].set_fontweight("bold")
                if i > 0:
                    ax.axhline(pos[i] + 0.5, color="#DDDDDD", linewidth=0.6, zorder=0)
        C.reference_line(ax, 0.0)
        top = np.nanmax(data[value]) if data[value].notna().any() else 0.0
        guides = sorted(
            thresholds if thresholds is not None else ((0.667, 0.8) if top > 0.5 else ())
        )
        for j, t in enumerate(guides):
            ax.axvline(t, color=GUIDE, linewidth=0.8, linestyle=":", zorder=1)
            left = j < len(guides) - 1
            ax.annotate(
                f"{t:g}",
                xy=(t, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(-2 if left else 2, 1),
                textcoords="offset points",
                ha="right" if left else "left",
                va="bottom",
                fontsize="small",
                color=GUIDE,
            )
        name = "Krippendorff's α" if value in ("alpha", "krippendorff_alpha") else C.nice(value)
        ax.set_xlabel(f"{name} ({C.pct(prob)} CI)" if has_ci else name)
        ax.set_ylabel("" if sectioned else C.nice(group))
        ax.grid(axis="x")
        if len(dims) > 1:
            handles = [
                Line2D([], [], color=colour[d], marker=marker[d], label=C.nice(d)) for d in dims
            ]
            ax.legend(
                handles=handles,
                title="Dimension",
                loc="upper left",
                bbox_to_anchor=(1.02, 1.0),
                borderaxespad=0,
            )
        if title:
            ax.set_title(title)
    return ax
