"""Results of training runs: change in each group's ratings by training condition."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from pluralign.plots import _common as C
from pluralign.plots._style import color_map, marker_map

#: Columns of ``run_grid`` output that are measurements, never a condition.
_MEASURES = frozenset(
    {
        "dimension",
        "group",
        "baseline",
        "trained",
        "change",
        "change_ci_low",
        "change_ci_high",
        "reduction_pct",
        "reduction_pct_ci_low",
        "reduction_pct_ci_high",
        "trained_ci_low",
        "trained_ci_high",
        "baseline_ci_low",
        "baseline_ci_high",
        "n",
        "n_prompts",
        "n_eval",
        "p_value",
        "p_adjusted",
        "seed",
        "n_seeds",
        "n_generations",
        "ci_prob",
    }
)

_LABELS = {
    "change": "Change in rating",
    "reduction_pct": "Reduction, %",
    "trained": "Rating after training",
    "baseline": "Rating before training",
}


def _conditions(df: pd.DataFrame, condition: str | Sequence[str] | None) -> list[str]:
    if condition is not None:
        return [condition] if isinstance(condition, str) else list(condition)
    cols = [c for c in df.columns if c not in _MEASURES and not pd.api.types.is_float_dtype(df[c])]
    varying = [c for c in cols if df[c].nunique(dropna=False) > 1]
    return varying or cols[:1]


def training_results(
    df: pd.DataFrame,
    *,
    value: str = "change",
    condition: str | Sequence[str] | None = None,
    dimensions: Sequence[str] | None = None,
    groups: Sequence[object] | None = None,
    colors: Mapping[object, str] | None = None,
    ncols: int | None = None,
    ci_prob: float | None = None,
    title: str | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Change in rating by training condition, evaluating group and dimension, with intervals.

    One panel per dimension; training conditions run down the vertical axis, the groups
    whose ratings (or judges) evaluate the trained model sit side by side in their own colours.
    A dashed line marks no change. Several seeds per cell are drawn as separate rows.

    Parameters
    ----------
    df : DataFrame
        Output of ``pluralign.train.run_grid``: condition columns (e.g. ``train_group``,
        ``scale``, ``aggregation``, ``optimizer``), ``dimension``, ``group`` (the judge's
        group), ``baseline``, ``trained``, ``change`` with ``change_lo``/``change_hi`` (or
        ``change_ci_low``/``change_ci_high``), ``reduction_pct``, optionally ``ci_prob``.
    value : str, default "change"
        Column drawn; intervals from ``<value>_ci_low``/``<value>_ci_high`` when present.
    condition : str or sequence of str, optional
        Condition column(s) forming the row labels (joined with " · "). Default: the
        non-measurement, non-float columns that vary.
    dimensions, groups : sequence, optional
        Subset and order of dimensions (panels) and groups (colours).
    colors : mapping, optional
        Colour per group.
    ncols : int, optional
        Panels per row (default up to 3).
    ci_prob : float, optional
        Interval probability for the axis label.
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
    >>> df = pd.DataFrame({"aggregation": ["majority", "majority", "distribution", "distribution"],
    ...     "dimension": ["toxicity"] * 4, "group": ["she/her", "he/him"] * 2,
    ...     "change": [-0.2, -0.1, -0.4, -0.3], "change_ci_low": [-0.3, -0.2, -0.5, -0.4],
    ...     "change_ci_high": [-0.1, 0.0, -0.3, -0.2]})
    >>> fig = plots.training_results(df)
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['majority', 'distribution']
    """
    C.check_frame(df, ["dimension", "group", value], "training_results", "pluralign.train.run_grid")
    cond_cols = _conditions(df, condition)
    if not cond_cols:
        raise ValueError(
            "training_results: found no condition column; pass condition='<column>' naming the "
            "training condition"
        )
    C.check_frame(df, cond_cols, "training_results", "pluralign.train.run_grid")
    data = df.copy()
    data["_cond"] = C.label_values(data, cond_cols, sep=" · ")
    data["_group"] = C.label_values(data, ["group"])
    extra = [c for c in ("seed",) if c in data.columns and data[c].nunique() > 1]
    if extra:
        data["_cond"] = data["_cond"] + " · seed " + data["seed"].astype(str)
    dup = data.duplicated(["_cond", "_group", "dimension"])
    if dup.any():
        raise ValueError(
            f"training_results: {int(dup.sum())} rows repeat a (condition, group, dimension) cell; "
            f"name all condition columns with condition=[...] (now {cond_cols})"
        )
    conds = C.levels(data["_cond"])
    dims = C.levels(data["dimension"], dimensions)
    group_list = C.levels(data["_group"], groups)
    data = data[data["dimension"].isin(dims) & data["_group"].isin(group_list)]
    colour = color_map(group_list, colors)
    marker = marker_map(group_list)
    lo_col, hi_col = f"{value}_ci_low", f"{value}_ci_high"
    has_ci = lo_col in data.columns and hi_col in data.columns
    if ci_prob is None and "ci_prob" in data.columns and data["ci_prob"].nunique() == 1:
        ci_prob = float(data["ci_prob"].iloc[0])
    prob = C.ci_prob_of(df, ci_prob)
    panel = (2.6, 0.2 * len(conds) * max(1.0, 0.5 * len(group_list)) + 0.9)
    with C.maybe_style(fig is None):
        fig, axes = C.panel_grid(fig, len(dims), ncols, panel, sharex=True, sharey=True)
        offsets = C.dodge(len(group_list), 0.75)
        for ax, dim in zip(axes, dims, strict=True):
            sub = data[data["dimension"] == dim]
            pos = C.categorical_axis(ax, conds)
            where = dict(zip(conds, pos, strict=True))
            for off, g in zip(offsets, group_list, strict=True):
                part = sub[sub["_group"] == g]
                C.dot_interval(
                    ax,
                    part["_cond"].map(where).to_numpy() - off,
                    part[value].to_numpy(),
                    part[lo_col].to_numpy() if has_ci else None,
                    part[hi_col].to_numpy() if has_ci else None,
                    color=colour[g],
                    marker=marker[g],
                )
            if value in ("change", "reduction_pct"):
                C.reference_line(ax, 0.0)
            ax.set_title(C.nice(dim))
            ax.grid(axis="x")
            ax.tick_params(axis="x", labelbottom=True)
        base = _LABELS.get(value, C.nice(value))
        fig.supxlabel(f"{base} ({C.pct(prob)} CI)" if has_ci else base)
        for ax in axes:
            if ax.get_subplotspec().is_first_col():
                ax.set_ylabel(" · ".join(C.nice(c) for c in cond_cols))
        if len(group_list) > 1:
            handles = [
                Line2D([], [], color=colour[g], marker=marker[g], label=str(g)) for g in group_list
            ]
            fig.legend(
                handles=handles,
                title="Evaluated by",
                loc="outside right upper",
            )
        if title:
            fig.suptitle(title)
    return fig
