"""Power curves from simulation-based power analysis."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.patches import Patch

from pluralign.plots import _common as C
from pluralign.plots._style import color_map, marker_map

#: Columns of the Monte-Carlo band of power drawn around each curve.
BAND_COLUMNS = ("power_ci_low", "power_ci_high")


def power_curve(
    df: pd.DataFrame,
    *,
    x: str | None = None,
    hue: str | None = None,
    target: float | None = 0.8,
    logx: bool | None = None,
    colors: Mapping[object, str] | None = None,
    ci_prob: float | None = None,
    xlabel: str | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Power as a function of a design parameter, with simulation intervals and a target line.

    Parameters
    ----------
    df : DataFrame
        Columns: the varied parameter (e.g. ``n_raters``; or long form ``vary`` naming it and
        ``value`` holding it, as :func:`pluralign.power.power_curve` returns), ``power``,
        optionally ``power_ci_low``, ``power_ci_high`` (drawn as a band) and a column
        distinguishing curves (``hue``).
    x : str, optional
        Column on the horizontal axis (default: ``value`` in long form, else the first numeric
        column that is not ``power``/``ci_*``/a count of simulations).
    hue : str, optional
        Column whose levels are separate curves, coloured, with a legend. Default: when
        several rows share an ``x`` value, the columns that tell them apart (``vary``,
        ``term``, ``level``, ... in that order), joined.
    target : float or None, default 0.8
        Power to reach, drawn as a dashed line; with one curve, the first design value reaching
        it is marked.
    logx : bool, optional
        Log-scaled horizontal axis (default: when values span more than a factor of 20).
    colors : mapping, optional
        Colour per ``hue`` level.
    ci_prob : float, optional
        Interval probability for the legend (default: ``df.attrs["ci_prob"]`` or the default).
    xlabel, title : str, optional
        Axis label (default: the column name, prettified) and title.
    ax : Axes, optional
        Axes to draw on; by default a new figure in :func:`pluralign.plots.style`.

    Returns
    -------
    matplotlib.axes.Axes

    See Also
    --------
    pluralign.power.power_curve : Simulates the table this draws.
    pluralign.power.StudyPlan.plot : The curve of a study plan, drawn with this function.

    Examples
    --------
    >>> import pandas as pd
    >>> from pluralign import plots
    >>> df = pd.DataFrame({"n_raters": [100, 200, 400, 800], "power": [0.3, 0.55, 0.82, 0.97],
    ...     "power_ci_low": [0.24, 0.48, 0.76, 0.94],
    ...     "power_ci_high": [0.36, 0.62, 0.87, 0.99]})
    >>> ax = plots.power_curve(df)
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('Number of raters', 'Power')
    """
    C.check_frame(df, ["power"], "power_curve", "the power-analysis functions of pluralign.power")
    data = df.copy()
    long_form = x is None and {"vary", "value"} <= set(data.columns)
    if long_form:
        x = "value"
    if x is None:
        skip = {"power", *BAND_COLUMNS, "power_excluding_failures", "n_sims", "n_failed", "truth"}
        numeric = [
            c
            for c in data.columns
            if c not in skip and c != hue and pd.api.types.is_numeric_dtype(data[c])
        ]
        if not numeric:
            raise ValueError("power_curve: no numeric design column; pass x='<column>'")
        x = numeric[0]
    C.check_frame(data, [x] + ([hue] if hue else []), "power_curve", "pluralign.power")
    hue_title = C.nice(hue) if hue else None
    if hue is None and data.duplicated([x]).any():
        # several curves share the x values (e.g. one per contrast): find the columns telling
        # them apart, in the order of pluralign.power's table
        order = ["vary", "term", "level", "dimension", "effect", "model"]
        order += [
            c for c in data.columns if c not in order and not pd.api.types.is_numeric_dtype(data[c])
        ]
        chosen: list[str] = []
        for c in [c for c in order if c in data.columns and c != x]:
            if data[c].nunique(dropna=False) > 1:
                chosen.append(c)
                if not data.duplicated([x, *chosen]).any():
                    break
        if data.duplicated([x, *chosen]).any():
            raise ValueError(
                f"power_curve: several rows share each {x!r} value and no column tells the curves "
                "apart; pass hue='<column>'"
            )
        data["_curve"] = C.label_values(data, chosen, sep=" · ")
        hue, hue_title = "_curve", " · ".join(C.nice(c) for c in chosen)
    curves = C.levels(data[hue].astype("object").fillna("all")) if hue else [None]
    if hue:
        data[hue] = data[hue].astype("object").fillna("all")
    colour = color_map(curves, colors)
    marker = marker_map(curves)
    has_ci = set(BAND_COLUMNS) <= set(data.columns)
    prob = C.ci_prob_of(df, ci_prob)
    xs = pd.to_numeric(data[x], errors="coerce")
    if logx is None:
        positive = xs[xs > 0]
        logx = bool(len(positive) == len(xs) and positive.max() / positive.min() > 20)
    with C.maybe_style(ax is None):
        ax = C.new_axes(ax, (4.2, 3.0))
        for c in curves:
            sub = (data if c is None else data[data[hue] == c]).sort_values(x)
            label = None if c is None else str(c)
            if has_ci:
                ax.fill_between(
                    sub[x],
                    sub["power_ci_low"],
                    sub["power_ci_high"],
                    color=colour[c],
                    alpha=0.2,
                    linewidth=0,
                )
            ax.plot(
                sub[x], sub["power"], color=colour[c], marker=marker[c], markersize=4, label=label
            )
        if target is not None:
            C.reference_line(ax, target, horizontal=True)
            ax.annotate(
                f"target {target:g}",
                xy=(0.0, target),
                xycoords=("axes fraction", "data"),
                xytext=(2, 2),
                textcoords="offset points",
                fontsize="small",
                color="#555555",
            )
            if len(curves) == 1:
                sub = data.sort_values(x)
                reached = sub[sub["power"] >= target]
                if not reached.empty:
                    first = float(reached[x].iloc[0])
                    ax.axvline(
                        first, color=colour[curves[0]], linewidth=0.8, linestyle=":", zorder=1
                    )
                    ax.annotate(
                        f"{first:,.4g}",
                        xy=(first, target),
                        xytext=(4, -4),
                        textcoords="offset points",
                        ha="left",
                        va="top",
                        fontsize="small",
                        color=colour[curves[0]],
                    )
        if logx:
            ax.set_xscale("log")
            C.plain_log_axis(ax, "x")
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("Power")
        name = data["vary"].iloc[0] if long_form and data["vary"].nunique() == 1 else x
        ax.set_xlabel(xlabel or C.nice(name))
        ax.grid(axis="y")
        handles, _ = ax.get_legend_handles_labels()
        if has_ci:
            handles.append(Patch(color="#999999", alpha=0.3, label=f"{C.pct(prob)} CI"))
        if handles:
            ax.legend(handles=handles, title=hue_title, loc="lower right")
        if title:
            ax.set_title(title)
    return ax
