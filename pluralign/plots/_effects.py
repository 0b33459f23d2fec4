"""Forest plots of model contrasts and posterior densities of contrasts."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from scipy import stats

from pluralign._compat import require
from pluralign._errors import PluralignWarning
from pluralign._settings import options
from pluralign.plots import _common as C
from pluralign.plots._style import GUIDE, INK, PALETTE, color_map, marker_map

Scale = Literal["relative", "difference", "link", "odds_ratio", "d"]

#: Estimate and interval columns of each forest scale, the null value and the axis label.
_SCALES: dict[str, tuple[str, str, str, float, str]] = {
    "relative": (
        "relative_pct",
        "relative_ci_low",
        "relative_ci_high",
        0.0,
        "Difference from reference (% of reference mean)",
    ),
    "difference": (
        "difference",
        "difference_ci_low",
        "difference_ci_high",
        0.0,
        "Difference from reference (rating points)",
    ),
    "link": ("estimate", "ci_low", "ci_high", 0.0, "Coefficient (link scale)"),
    "odds_ratio": ("odds_ratio", "odds_ratio_ci_low", "odds_ratio_ci_high", 1.0, "Odds ratio"),
    "d": (
        "cohens_d",
        "cohens_d_ci_low",
        "cohens_d_ci_high",
        0.0,
        "Standardised difference (Cohen's d)",
    ),
}


def adjusted_intervals(
    effects: pd.DataFrame,
    *,
    scale: Scale = "relative",
    ci_prob: float | None = None,
) -> pd.DataFrame:
    """Estimates with unadjusted and multiplicity-adjusted intervals on one scale.

    The adjusted interval of a contrast is its interval widened to level
    ``1 - alpha / k`` with ``k = p_adjusted / p_value`` (``alpha = 1 - ci_prob``): the
    effective number of comparisons that the correction charged this contrast (``m`` for
    Bonferroni, ``m - rank + 1`` or more for Holm's step-down). Each side of the interval is
    stretched by ``z(1 - alpha/(2k)) / z(1 - alpha/2)`` around the estimate (on the log
    scale for odds ratios), so for Wald intervals the adjusted interval excludes the null
    exactly when ``p_adjusted < alpha``. Where ``p_value`` is 0 (underflow), ``k`` is the
    number of contrasts in the frame (Bonferroni). Intervals of Cohen's d are the difference
    interval divided by the same standardiser (``cohens_d / difference``).

    Parameters
    ----------
    effects : DataFrame
        Output of ``ModelResult.effects()`` (``EFFECT_COLUMNS``).
    scale : {"relative", "difference", "link", "odds_ratio", "d"}, default "relative"
        Scale of the returned estimates.
    ci_prob : float, optional
        Probability of the intervals in ``effects`` (default: ``effects.attrs["ci_prob"]``,
        else ``options.ci_prob``).

    Returns
    -------
    DataFrame
        ``dimension``, ``term``, ``level``, ``reference``, ``estimate``, ``ci_low``,
        ``ci_high``, ``adj_low``, ``adj_high``, ``k`` (effective number of comparisons),
        ``significant`` (unadjusted, ``p_value < alpha``) and ``significant_adjusted``
        (``p_adjusted < alpha``).

    Examples
    --------
    >>> import pandas as pd
    >>> eff = pd.DataFrame({"dimension": ["toxicity"], "term": ["gender"], "level": ["he/him"],
    ...     "reference": ["she/her"], "estimate": [0.3], "ci_low": [0.104], "ci_high": [0.496],
    ...     "p_value": [0.0027], "p_adjusted": [0.0135]})
    >>> out = adjusted_intervals(eff, scale="link")
    >>> round(float(out["k"].iloc[0]), 6), bool(out["significant_adjusted"].iloc[0])
    (5.0, True)
    """
    if scale not in _SCALES:
        raise ValueError(f"scale must be one of {list(_SCALES)}, got {scale!r}")
    est_col, lo_col, hi_col, _, _ = _SCALES[scale]
    needed = ["dimension", "term", "level", "reference", "p_value", "p_adjusted"]
    needed += (
        ["cohens_d", "difference", "difference_ci_low", "difference_ci_high"]
        if scale == "d"
        else [est_col, lo_col, hi_col]
    )
    C.check_frame(effects, needed, "forest", "ModelResult.effects()")
    prob = C.ci_prob_of(effects, ci_prob)
    alpha = round(1.0 - prob, 12)  # 1 - 0.95 is 0.05000000000000004 in binary
    out = effects[["dimension", "term", "level", "reference"]].copy()
    if scale == "d":
        per_point = effects["cohens_d"] / effects["difference"].where(effects["difference"] != 0)
        est = effects["cohens_d"].to_numpy(float)
        lo = (effects["difference_ci_low"] * per_point).to_numpy(float)
        hi = (effects["difference_ci_high"] * per_point).to_numpy(float)
    else:
        est, lo, hi = (effects[c].to_numpy(float) for c in (est_col, lo_col, hi_col))
    p = effects["p_value"].to_numpy(float)
    p_adj = effects["p_adjusted"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.where(p > 0, p_adj / p, float(len(effects)))
    k = np.where(np.isfinite(k), np.maximum(k, 1.0), np.nan)
    stretch = stats.norm.isf(alpha / (2 * k)) / stats.norm.isf(alpha / 2)
    if scale == "odds_ratio":
        with np.errstate(divide="ignore", invalid="ignore"):
            le, ll, lh = np.log(est), np.log(lo), np.log(hi)
        adj_lo, adj_hi = np.exp(le - (le - ll) * stretch), np.exp(le + (lh - le) * stretch)
    else:
        adj_lo, adj_hi = est - (est - lo) * stretch, est + (hi - est) * stretch
    out["estimate"], out["ci_low"], out["ci_high"] = est, lo, hi
    out["adj_low"], out["adj_high"], out["k"] = adj_lo, adj_hi, k
    out["significant"] = p < alpha
    out["significant_adjusted"] = p_adj < alpha
    return out


def forest(
    effects: pd.DataFrame,
    *,
    scale: Scale = "relative",
    adjusted: bool = True,
    dimensions: Sequence[str] | None = None,
    terms: Sequence[str] | None = None,
    colors: Mapping[object, str] | None = None,
    ci_prob: float | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Forest plot of contrasts (each level against its reference), grouped by term.

    Rows are contrasts, headed by their term and reference level; the dimensions of a
    contrast sit side by side in their own colours. A dashed line marks no difference
    (0, or 1 for odds ratios, on a log axis).

    What is drawn with ``adjusted=True``: the thick segment is the interval given in
    ``effects`` (unadjusted); the thin line extends it to the multiplicity-adjusted interval
    of :func:`adjusted_intervals` (widened to level ``1 - alpha*p_value/p_adjusted``, which
    for Wald intervals excludes the null exactly when ``p_adjusted < alpha``). Filled dots:
    ``p_adjusted < alpha``; hollow dots: not significant after adjustment. With
    ``adjusted=False`` only the unadjusted interval is drawn and fill follows ``p_value``.

    Bayesian effects (``BayesResult.effects()``: HDIs, ``p_direction``, no p-values) are drawn
    with their HDI only, never widened, whatever ``adjusted`` says: a filled dot marks an HDI
    that excludes the null value. ``p_direction`` is a posterior probability, not a p-value,
    and is not adjusted for multiplicity.

    Parameters
    ----------
    effects : DataFrame
        Output of ``ModelResult.effects()`` (``EFFECT_COLUMNS``); ``attrs["correction"]``
        names the correction in the legend when present.
    scale : {"relative", "difference", "link", "odds_ratio", "d"}, default "relative"
        Relative difference in % of the reference mean, difference in rating points,
        link-scale coefficient, odds ratio (logit links) or Cohen's d.
    adjusted : bool, default True
        Draw multiplicity-adjusted intervals and mark significance after adjustment.
    dimensions, terms : sequence of str, optional
        Subset and order of dimensions (colours) and terms (row blocks).
    colors : mapping, optional
        Colour per dimension.
    ci_prob : float, optional
        Probability of the intervals in ``effects`` (default: ``effects.attrs["ci_prob"]``,
        else ``options.ci_prob``).
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
    >>> eff = pd.DataFrame({"dimension": ["toxicity", "toxicity"], "term": ["gender"] * 2,
    ...     "level": ["he/him", "they/them"], "reference": ["she/her"] * 2,
    ...     "estimate": [0.1, 0.3], "ci_low": [-0.1, 0.1], "ci_high": [0.3, 0.5],
    ...     "p_value": [0.3, 0.003], "p_adjusted": [0.3, 0.006],
    ...     "relative_pct": [4.0, 12.0], "relative_ci_low": [-4.0, 4.0],
    ...     "relative_ci_high": [12.0, 20.0]})
    >>> ax = plots.forest(eff)
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['gender (vs she/her)', 'he/him', 'they/them']
    """
    table = adjusted_intervals(effects, scale=scale, ci_prob=ci_prob)
    _, _, _, null, xlabel = _SCALES[scale]
    prob = C.ci_prob_of(effects, ci_prob)
    bayesian = "p_direction" in effects.columns and bool(effects["p_value"].isna().all())
    if bayesian:  # HDIs and probabilities of direction: nothing to widen
        adjusted = False
        table["significant"] = (table["ci_low"] > null) | (table["ci_high"] < null)
    if adjusted and table["k"].isna().any():
        warnings.warn(
            f"forest: {int(table['k'].isna().sum())} contrast(s) lack p_value/p_adjusted; their "
            "intervals are drawn unadjusted",
            PluralignWarning,
            stacklevel=2,
        )
    dims = C.levels(table["dimension"], dimensions)
    term_list = C.levels(table["term"], terms)
    table = table[table["dimension"].isin(dims) & table["term"].isin(term_list)]
    colour = color_map(dims, colors) if len(dims) > 1 or colors else {dims[0]: INK}
    marker = marker_map(dims)

    # rows: a header per (term, reference), then its levels
    labels: list[str] = []
    headers: list[int] = []
    keys: list[tuple[object, object, object] | None] = []
    for term in term_list:
        block = table[table["term"] == term]
        for ref in pd.unique(block["reference"]):
            headers.append(len(labels))
            labels.append(f"{term} (vs {ref})")
            keys.append(None)
            for level in pd.unique(block.loc[block["reference"] == ref, "level"]):
                labels.append(str(level))
                keys.append((term, ref, level))

    height = 0.2 * len(labels) * max(1.0, 0.4 * len(dims)) + 1.0
    with C.maybe_style(ax is None):
        ax = C.new_axes(ax, (5.6, height))
        pos = C.categorical_axis(ax, labels)
        offsets = C.dodge(len(dims), 0.75)
        for off, dim in zip(offsets, dims, strict=True):
            sub = table[table["dimension"] == dim]
            where = {k: p for k, p in zip(keys, pos, strict=True) if k is not None}
            y = (
                np.array(
                    [
                        where[(t, r, lv)]
                        for t, r, lv in zip(
                            sub["term"], sub["reference"], sub["level"], strict=True
                        )
                    ]
                )
                - off
            )
            sig = sub["significant_adjusted"] if adjusted else sub["significant"]
            if adjusted:
                lo = np.where(np.isfinite(sub["adj_low"]), sub["adj_low"], sub["ci_low"])
                hi = np.where(np.isfinite(sub["adj_high"]), sub["adj_high"], sub["ci_high"])
                ax.hlines(y, lo, hi, color=colour[dim], linewidth=0.8, zorder=2)
            C.dot_interval(
                ax,
                y,
                sub["estimate"].to_numpy(),
                sub["ci_low"].to_numpy(),
                sub["ci_high"].to_numpy(),
                color=colour[dim],
                marker=marker[dim],
                filled=sig.to_numpy(bool),
                linewidth=2.4 if adjusted else 1.3,
                size=20.0,
            )
        for i in headers:
            tick = ax.get_yticklabels()[i]
            tick.set_fontweight("bold")
        for i, p in enumerate(pos):
            if i in headers and i > 0:
                ax.axhline(p + 0.5, color="#DDDDDD", linewidth=0.6, zorder=0)
        C.reference_line(ax, null)
        if scale == "odds_ratio":
            ax.set_xscale("log")
            C.plain_log_axis(ax, "x")
        correction = effects.attrs.get("correction")
        corr_name = {"holm": "Holm", "bonferroni": "Bonferroni", "fdr_bh": "BH"}.get(
            str(correction), str(correction)
        )
        adj_text = f"{corr_name}-adjusted" if correction else "adjusted"
        ax.set_xlabel(xlabel)
        ax.grid(axis="x")
        handles = []
        if len(dims) > 1:
            handles += [
                Line2D([], [], color=colour[d], marker=marker[d], linestyle="", label=C.nice(d))
                for d in dims
            ]
        key = "p_adjusted" if adjusted else "p"
        interval = "HDI" if bayesian else "CI"
        handles += [
            Line2D(
                [],
                [],
                color=INK,
                linewidth=2.4 if adjusted else 1.3,
                label=f"{C.pct(prob)} {interval}",
            ),
        ]
        if adjusted:
            handles.append(
                Line2D(
                    [],
                    [],
                    color=INK,
                    linewidth=0.8,
                    label=f"{C.pct(prob)} CI, {adj_text}",
                )
            )
        null_text = f"{null:g}"
        filled, hollow = (
            (f"HDI excludes {null_text}", f"HDI includes {null_text}")
            if bayesian
            else (f"{key} < {1 - prob:.2g}", f"{key} ≥ {1 - prob:.2g}")
        )
        handles += [
            Line2D([], [], color=INK, marker="o", linestyle="", label=filled),
            Line2D(
                [],
                [],
                color=INK,
                marker="o",
                markerfacecolor="white",
                linestyle="",
                label=hollow,
            ),
        ]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
        if title:
            ax.set_title(title)
    return ax


def _draws_from(obj: Any, var_names: Sequence[str] | None) -> dict[str, np.ndarray]:
    """Flattened draws per contrast label from InferenceData, a fit with ``.idata``, a frame or a dict."""
    if isinstance(obj, pd.DataFrame):
        cols = (
            list(var_names)
            if var_names is not None
            else [
                c
                for c in obj.columns
                if pd.api.types.is_numeric_dtype(obj[c]) and c not in ("chain", "draw")
            ]
        )
        return {str(c): obj[c].to_numpy(float) for c in cols}
    idata = getattr(obj, "idata", obj)
    posterior = getattr(idata, "posterior", None)
    if posterior is None and isinstance(obj, Mapping):
        keys = list(var_names) if var_names is not None else list(obj)
        return {str(k): np.asarray(obj[k], dtype=float).ravel() for k in keys}
    if posterior is None:
        raise TypeError(
            "posterior_contrasts needs an ArviZ InferenceData, a fit with .idata (fit_bayes), a "
            f"DataFrame of draws or a dict of arrays; got {type(obj).__name__}"
        )
    if var_names is None:
        # fixed-effect contrasts of fit_bayes ("beta", or "<dimension>::beta" for several dimensions)
        fixed = [v for v in posterior.data_vars if v == "beta" or str(v).endswith("::beta")]
        names = fixed or list(posterior.data_vars)
    else:
        names = list(var_names)
    missing = [n for n in names if n not in posterior.data_vars]
    if missing:
        raise ValueError(
            f"posterior has no variable(s) {missing}; it has {list(posterior.data_vars)}"
        )
    out: dict[str, np.ndarray] = {}
    for name in names:
        da = posterior[name]
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        if not extra:
            out[name] = da.to_numpy().ravel()
            continue
        stacked = da.stack(_cell=extra).transpose("chain", "draw", "_cell")
        values = stacked.to_numpy().reshape(-1, stacked.sizes["_cell"])
        for j, cell in enumerate(stacked["_cell"].to_numpy()):
            cell = cell if isinstance(cell, tuple) else (cell,)
            out[f"{name}[{', '.join(map(str, cell))}]"] = values[:, j]
    return out


def posterior_contrasts(
    fit: Any,
    *,
    var_names: Sequence[str] | None = None,
    ref_val: float = 0.0,
    hdi_prob: float | None = None,
    max_contrasts: int = 30,
    color: str | None = None,
    xlabel: str = "Contrast (link scale)",
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Posterior densities of contrasts, one ridge per contrast, with HDI and P(> ref_val).

    Each ridge is a kernel density (``arviz.kde``) of the posterior draws of one contrast;
    the thick bar beneath it is the highest-density interval (``arviz.hdi``), the dot the
    posterior median, and the number on the right the posterior probability that the
    contrast exceeds ``ref_val``.

    Parameters
    ----------
    fit : InferenceData, BayesResult, DataFrame or dict
        A fit with ``.idata`` (``pluralign.models.fit_bayes``), an ArviZ InferenceData, a
        DataFrame with one column of draws per contrast, or a mapping name → draws.
        Variables with extra dimensions give one ridge per cell (``"beta[he/him]"``).
    var_names : sequence of str, optional
        Posterior variables (or columns / keys) to draw. Default: the fixed-effect contrasts
        ``beta`` (``"<dimension>::beta"`` for fits of several dimensions) when the posterior has
        them, else every variable (or column / key).
    ref_val : float, default 0
        Value of no difference, drawn as a dashed line.
    hdi_prob : float, optional
        HDI probability (default ``options.ci_prob``).
    max_contrasts : int, default 30
        Refuse to draw more ridges than this (choose ``var_names`` instead).
    color : str, optional
        Fill colour (default: first palette colour).
    xlabel : str, default "Contrast (link scale)"
        Label of the value axis.
    title : str, optional
        Axes title.
    ax : Axes, optional
        Axes to draw on; by default a new figure in :func:`pluralign.plots.style`.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import numpy as np
    >>> from pluralign import plots
    >>> rng = np.random.default_rng(0)
    >>> draws = {"he/him vs she/her": rng.normal(0.2, 0.1, 2000),
    ...          "they/them vs she/her": rng.normal(-0.1, 0.2, 2000)}
    >>> ax = plots.posterior_contrasts(draws)
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['he/him vs she/her', 'they/them vs she/her']
    """
    az = require("arviz", "posterior density plots")
    draws = _draws_from(fit, var_names)
    if not draws:
        raise ValueError("posterior_contrasts: no contrasts to draw")
    if len(draws) > max_contrasts:
        raise ValueError(
            f"posterior_contrasts: {len(draws)} contrasts exceed max_contrasts={max_contrasts}; "
            f"choose some with var_names (available: {list(draws)[:10]} …) or raise max_contrasts"
        )
    prob = float(hdi_prob if hdi_prob is not None else options.ci_prob)
    fill = color or PALETTE[0]
    labels = list(draws)
    with C.maybe_style(ax is None):
        ax = C.new_axes(ax, (5.0, 0.45 * len(labels) + 1.0))
        base = np.arange(len(labels))[::-1].astype(float)
        for y0, name in zip(base, labels, strict=True):
            x = draws[name][np.isfinite(draws[name])]
            if x.size < 2 or np.ptp(x) == 0:
                raise ValueError(
                    f"posterior_contrasts: {name!r} has fewer than two distinct finite draws"
                )
            grid, dens = az.kde(x)
            dens = 0.8 * dens / dens.max()
            ax.fill_between(grid, y0, y0 + dens, color=fill, alpha=0.35, linewidth=0, zorder=2)
            ax.plot(grid, y0 + dens, color=fill, linewidth=1.0, zorder=3)
            lo, hi = az.hdi(x, hdi_prob=prob)
            ax.hlines(y0, lo, hi, color=INK, linewidth=2.2, zorder=4)
            ax.plot([np.median(x)], [y0], marker="o", color=INK, markersize=4, zorder=5)
            ax.annotate(
                f"P(>{ref_val:g}) = {np.mean(x > ref_val):.2f}",
                xy=(1.0, y0 + 0.25),
                xycoords=("axes fraction", "data"),
                xytext=(4, 0),
                textcoords="offset points",
                fontsize="small",
                color="#444444",
                va="center",
            )
        ax.set_yticks(base + 0.25, labels)
        ax.tick_params(axis="y", length=0)
        ax.set_ylim(-0.5, len(labels) - 0.05)
        ax.axvline(ref_val, color=GUIDE, linewidth=0.8, linestyle="--", zorder=1)
        ax.spines["left"].set_visible(False)
        ax.set_xlabel(f"{xlabel}; bar: {C.pct(prob)} HDI, dot: median")
        if title:
            ax.set_title(title)
    return ax
