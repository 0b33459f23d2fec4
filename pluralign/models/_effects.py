"""Rating-scale effects shared by every model: contrasts of marginal means, multiplicity, group comparisons.

The functions at the bottom of this module work on arrays of *draws* (posterior draws of a
Bayesian model, or simulations from the sampling distribution ``N(β̂, V̂)`` of a frequentist
one) of expected ratings, so that frequentist and Bayesian results are summarised the same way.

Definitions used throughout
---------------------------
* **Marginal mean of a level** (rating scale): the expected rating averaged over the fitted rows
  after setting that demographic to the level in every row (a counterfactual average that keeps
  the observed mix of the other demographics), with random effects at their mean (identity link)
  or integrated over their distribution (logit / ordinal links).
* **Difference**: ``mean_level - mean_reference`` in rating points.
* **Relative difference**: ``100 * difference / mean_reference`` (percent).
* Intervals are equal-tailed percentile intervals of the draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pluralign._settings import options
from pluralign.data import Population
from pluralign.models._protocol import COMPARE_COLUMNS, EFFECT_COLUMNS, ModelResult

#: Corrections accepted by :func:`adjust_pvalues` (those of statsmodels' ``multipletests``).
CORRECTIONS = (
    "holm",
    "bonferroni",
    "sidak",
    "holm-sidak",
    "simes-hochberg",
    "hommel",
    "fdr_bh",
    "fdr_by",
    "fdr_tsbh",
    "fdr_tsbky",
    "none",
)


def interval(draws: np.ndarray, ci_prob: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed ``ci_prob`` percentile interval of draws along ``axis``."""
    alpha = (1.0 - ci_prob) / 2.0
    lo, hi = np.quantile(draws, [alpha, 1.0 - alpha], axis=axis)
    return lo, hi


def draw_p_value(draws: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Probability of direction and ``2 (1 - pd)`` of draws along ``axis``."""
    pos = np.mean(draws > 0, axis=axis)
    pd_ = np.maximum(pos, 1.0 - pos)
    return pd_, np.clip(2.0 * (1.0 - pd_), 0.0, 1.0)


def contrast_columns(
    level_draws: np.ndarray,
    reference_draws: np.ndarray,
    *,
    ci_prob: float | None = None,
    level_point: np.ndarray | None = None,
    reference_point: np.ndarray | None = None,
    standardiser: float | np.ndarray | None = None,
) -> pd.DataFrame:
    """Rating-scale contrast columns from draws of marginal means.

    Parameters
    ----------
    level_draws, reference_draws : ndarray (n_draws, k)
        Draws of the marginal mean of ``k`` levels and of their references (a 1-D array is one
        contrast).
    ci_prob : float, optional
        Interval probability (default ``options.ci_prob``).
    level_point, reference_point : ndarray (k,), optional
        Point estimates (e.g. plug-in values of a frequentist fit); default: mean of the draws.
    standardiser : float or ndarray (k,), optional
        Cohen's d denominator; ``cohens_d`` is NaN when omitted.

    Returns
    -------
    DataFrame
        ``mean_level, mean_reference, difference, difference_ci_low, difference_ci_high,
        relative_pct, relative_ci_low, relative_ci_high, cohens_d`` (one row per contrast).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.normal(2.0, 0.01, size=(4000, 1))
    >>> lev = ref + rng.normal(0.5, 0.01, size=(4000, 1))
    >>> out = contrast_columns(lev, ref, standardiser=1.0)
    >>> round(float(out["difference"][0]), 2), round(float(out["relative_pct"][0]))
    (0.5, 25)
    """
    ci_prob = options.ci_prob if ci_prob is None else ci_prob
    lev = np.asarray(level_draws, dtype=float)
    ref = np.asarray(reference_draws, dtype=float)
    if lev.ndim == 1:
        lev, ref = lev[:, None], ref[:, None]
    if lev.shape != ref.shape:
        raise ValueError(f"level and reference draws differ in shape: {lev.shape} vs {ref.shape}")
    m_lev = lev.mean(axis=0) if level_point is None else np.asarray(level_point, dtype=float)
    m_ref = (
        ref.mean(axis=0) if reference_point is None else np.asarray(reference_point, dtype=float)
    )
    diff_draws = lev - ref
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_draws = 100.0 * diff_draws / ref
        rel = 100.0 * (m_lev - m_ref) / m_ref
    d_lo, d_hi = interval(diff_draws, ci_prob)
    r_lo, r_hi = interval(rel_draws, ci_prob)
    diff = m_lev - m_ref
    d = diff / standardiser if standardiser is not None else np.full_like(diff, np.nan)
    return pd.DataFrame(
        {
            "mean_level": m_lev,
            "mean_reference": m_ref,
            "difference": diff,
            "difference_ci_low": d_lo,
            "difference_ci_high": d_hi,
            "relative_pct": rel,
            "relative_ci_low": r_lo,
            "relative_ci_high": r_hi,
            "cohens_d": d,
        }
    )


def adjust_pvalues(
    table: pd.DataFrame,
    *,
    multiplicity: str | Sequence[str] | None = None,
    correction: str = "holm",
) -> pd.Series:
    """Multiplicity-adjusted p-values over a declared family of contrasts.

    Parameters
    ----------
    table : DataFrame
        Effects with ``dimension, term, p_value``.
    multiplicity : str or sequence of str, optional
        Terms (e.g. ``["gender"]``) and/or dimensions whose contrasts are adjusted together:
        the rows whose term **or** dimension is listed. Default: every row (all contrasts of
        all terms and dimensions). Rows outside the set get NaN.
    correction : str
        A method of :func:`statsmodels.stats.multitest.multipletests` (``"holm"``,
        ``"fdr_bh"``, ``"bonferroni"``, ...) or ``"none"``.

    Returns
    -------
    Series
        Adjusted p-values aligned with ``table``.

    Examples
    --------
    >>> t = pd.DataFrame({"dimension": "d", "term": ["a", "b"], "p_value": [0.01, 0.04]})
    >>> adjust_pvalues(t).round(3).tolist()
    [0.02, 0.04]
    """
    from statsmodels.stats.multitest import multipletests

    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    out = pd.Series(np.nan, index=table.index, dtype=float)
    if multiplicity is None:
        mask = pd.Series(True, index=table.index)
    else:
        names = {multiplicity} if isinstance(multiplicity, str) else set(multiplicity)
        unknown = names - set(table["term"]) - set(table["dimension"])
        if unknown:
            raise ValueError(
                f"multiplicity names {sorted(unknown)}, which are neither terms "
                f"{sorted(set(table['term']))} nor dimensions {sorted(set(table['dimension']))}"
            )
        mask = table["term"].isin(names) | table["dimension"].isin(names)
    p = table.loc[mask, "p_value"].to_numpy(dtype=float)
    ok = np.isfinite(p)
    if correction == "none":
        adj = p
    else:
        adj = np.full_like(p, np.nan)
        if ok.any():
            adj[ok] = multipletests(p[ok], method=correction)[1]
    out.loc[mask] = adj
    return out


def finish_effects(
    table: pd.DataFrame, *, multiplicity: str | Sequence[str] | None, correction: str
) -> pd.DataFrame:
    """Add ``p_adjusted``, order columns as EFFECT_COLUMNS (extra columns after)."""
    table = table.reset_index(drop=True)
    for col in EFFECT_COLUMNS:
        if col not in table.columns:
            table[col] = np.nan
    table["p_adjusted"] = adjust_pvalues(table, multiplicity=multiplicity, correction=correction)
    table.attrs["correction"] = correction
    extra = [c for c in table.columns if c not in EFFECT_COLUMNS]
    return table[list(EFFECT_COLUMNS) + extra]


def group_mean_draws(fit, group, dimension: str) -> tuple[np.ndarray, float]:
    """Draws and point estimate of a population's expected rating (share-weighted over its cells).

    ``group`` is anything :meth:`Population.parse <pluralign.data.Population.parse>` accepts.
    ``fit`` must implement ``cell_mean_draws(cells, dimension)`` (see
    :class:`~pluralign.models.ModelResult`) and may implement ``cell_means(cells, dimension)``
    for point estimates (default: mean of the draws) and ``design(dimension)`` (to check the
    population's levels).
    """
    population = Population.parse(group)
    if hasattr(fit, "design"):
        population.check(fit.design(dimension).known_levels)
    share = population.shares
    demo = population.cells.drop(columns="share")
    draws = np.asarray(fit.cell_mean_draws(demo, dimension)) @ share
    if hasattr(fit, "cell_means"):
        point = float(np.asarray(fit.cell_means(demo, dimension)) @ share)
    else:
        point = float(draws.mean())
    return draws, point


def compare_groups(
    fit: ModelResult,
    a: Population | Mapping[str, Any] | pd.DataFrame | None,
    b: Population | Mapping[str, Any] | pd.DataFrame | None,
    *,
    dimension: str | Sequence[str] | None = None,
    ci_prob: float | None = None,
) -> pd.DataFrame:
    """Compare the expected rating of two populations (groups, intersections or mixtures).

    Parameters
    ----------
    fit : ModelResult
        A fitted model implementing ``cell_mean_draws`` (``fit_mixed`` or ``fit_bayes``).
    a, b : Population, mapping, DataFrame or None
        Anything :meth:`Population.parse <pluralign.data.Population.parse>` accepts, e.g.
        ``{"gender": "she/her", "race": "Black"}``; a demographic left out is averaged over the
        fitted data; margins or a frame with ``share`` is a mixture; None is everyone.
    dimension : str or list of str, optional
        Default: every dimension of the fit.
    ci_prob : float, optional
        Interval probability (default ``options.ci_prob``).

    Returns
    -------
    DataFrame
        COMPARE_COLUMNS: ``dimension, group_a, group_b, mean_a, mean_b, difference,
        difference_ci_low, difference_ci_high, relative_pct, relative_ci_low,
        relative_ci_high, p_value``; ``group_a``/``group_b`` are the populations'
        :attr:`~pluralign.data.Population.label`; ``relative_pct = 100 (mean_a - mean_b) /
        mean_b`` and ``p_value = 2 (1 - pd)`` from the draws (pd: probability of direction of
        the difference).

    See Also
    --------
    pluralign.models.MixedResult.poststratify : the expected rating of one population.

    Examples
    --------
    >>> from pluralign.models import fit_mixed
    >>> from pluralign.models._mixed import _example_study
    >>> fit = fit_mixed(_example_study(), "rating ~ gender + ideology")
    >>> out = compare_groups(fit, {"gender": "he/him", "ideology": "conservative"},
    ...                      {"gender": "she/her", "ideology": "liberal"})
    >>> out[["group_a", "group_b"]].iloc[0].tolist()
    ['gender=he/him & ideology=conservative', 'gender=she/her & ideology=liberal']
    """
    ci_prob = options.ci_prob if ci_prob is None else ci_prob
    pop_a, pop_b = Population.parse(a), Population.parse(b)
    if dimension is None:
        dims = list(fit.dimensions)
    else:
        dims = [dimension] if isinstance(dimension, str) else list(dimension)
    rows = []
    for dim in dims:
        da, pa = group_mean_draws(fit, pop_a, dim)
        db, pb = group_mean_draws(fit, pop_b, dim)
        cols = contrast_columns(da, db, ci_prob=ci_prob, level_point=[pa], reference_point=[pb])
        _, p = draw_p_value(da - db)
        row = cols.iloc[0].to_dict()
        rows.append(
            {
                "dimension": dim,
                "group_a": pop_a.label,
                "group_b": pop_b.label,
                "mean_a": row["mean_level"],
                "mean_b": row["mean_reference"],
                **{k: row[k] for k in cols.columns if k.startswith(("difference", "relative"))},
                "p_value": float(p),
            }
        )
    return pd.DataFrame(rows, columns=list(COMPARE_COLUMNS))
