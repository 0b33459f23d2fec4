"""Rating-scale effects shared by every model: estimands, contrasts of marginal means, multiplicity, group comparisons.

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
* **Estimand** of a row of an effects table (:func:`design_contrasts`): a categorical term's
  contrast is averaged over the other variables of the formula, with observed or equal weights
  (R's emmeans ``weights = "proportional"`` / ``"equal"``), so that the link-scale estimate,
  its interval and test, and the rating-scale difference are one quantity. With an interaction
  the coefficient of ``gender`` is the effect at the reference race only; the table reports
  the marginal contrast instead and names it in its ``estimand`` column.
* Tail probabilities of draws are bounded by the number of draws (never 0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pluralign._settings import options
from pluralign.data import Population
from pluralign.models._design import fitted_dimensions
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


# ------------------------------------------------------------------------------ estimands
#: Weightings of marginal contrasts (``effects(weights=...)``): ``"observed"`` averages over the
#: other variables' observed mix in the fitted ratings (emmeans' ``weights = "proportional"``),
#: ``"equal"`` over every combination of the other categorical variables' levels alike
#: (emmeans' default ``weights = "equal"``).
ESTIMAND_WEIGHTS = ("observed", "equal")


@dataclass(frozen=True, eq=False)
class Contrast:
    """One row of an effects table: one estimand, one linear combination of the coefficients.

    Attributes
    ----------
    term, level, reference, kind : str
        As in TERM_COLUMNS (``kind`` is "categorical", "numeric", "interaction" or "other").
    estimand : str
        What the row estimates, e.g. ``"marginal over race (observed weights)"``.
    L : ndarray (p,)
        Weights of the coefficients (intercept first): the link-scale estimate is ``L @ beta``.
    level_cells, reference_cells : DataFrame or None
        Demographic cells averaged with equal weights for each side of the rating-scale
        contrast (each cell keeps the observed mix of the variables it leaves out); None when
        the row has no rating-scale contrast (numeric and interaction terms).

    See Also
    --------
    design_contrasts : the contrasts of every term of a design.

    Examples
    --------
    >>> from pluralign.models import build_design
    >>> from pluralign.models._design import _example_study
    >>> c = design_contrasts(build_design(_example_study(), "rating ~ gender"))[0]
    >>> isinstance(c, Contrast), c.term, c.kind
    (True, 'gender', 'categorical')
    """

    term: str
    level: str
    reference: str
    kind: str
    estimand: str
    L: np.ndarray
    level_cells: pd.DataFrame | None = None
    reference_cells: pd.DataFrame | None = None


def cell_patterns(design, cells: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Counterfactual rows: each cell crossed with the fitted rows' patterns of the variables it
    leaves out, and the patterns' shares (summing to 1).

    Returns the frame of ``n_cells × n_patterns`` rows (cell-major) and the pattern weights.
    """
    cells = cells.drop(columns="share", errors="ignore").reset_index(drop=True)
    rest = [v for v in design.variables if v not in cells.columns]
    if rest:
        counts = design.data.groupby(rest, observed=True, dropna=False).size()
        patterns = counts.index.to_frame(index=False)
        weights = counts.to_numpy(dtype=float)
    else:
        patterns = pd.DataFrame(index=[0])
        weights = np.ones(1)
    n_c, n_p = len(cells), len(patterns)
    frame = patterns.loc[np.tile(np.arange(n_p), n_c)].reset_index(drop=True)
    for c in cells.columns:
        frame[c] = np.repeat(cells[c].to_numpy(dtype=object), n_p)
    return frame, weights / weights.sum()


def averaged_rows(design, cells: pd.DataFrame, *, shift: str | None = None) -> np.ndarray:
    """Mean design row of each cell over the fitted rows' patterns of the variables it leaves out.

    ``shift`` names a numeric variable to raise by one unit of the fitted variable in every
    row (one SD when the design standardised it), for slopes on the coefficient's scale.
    Returns an ``(n_cells, p)`` array.
    """
    frame, weights = cell_patterns(design, cells)
    n_c, n_p = len(frame) // len(weights), len(weights)
    if shift is not None:  # one unit of the fitted variable (one SD when it was standardised)
        step = getattr(design, "numeric_scaling", {}).get(shift, (0.0, 1.0))[1]
        frame[shift] = pd.to_numeric(frame[shift]).astype(float) + step
    X = design.transform(frame).reshape(n_c, n_p, -1)
    return np.einsum("cpk,p->ck", X, weights)


def _grid(design, names: Sequence[str]) -> pd.DataFrame:
    if not names:
        return pd.DataFrame(index=[0])
    return pd.MultiIndex.from_product(
        [design.levels[v] for v in names], names=list(names)
    ).to_frame(index=False)


def _with(grid: pd.DataFrame, column: str, value) -> pd.DataFrame:
    out = grid.copy()
    out[column] = value
    return out


def design_contrasts(design, *, weights: str = "observed") -> list[Contrast]:
    """The estimands of an effects table: one :class:`Contrast` per row.

    * A categorical term: ``level − reference`` averaged over the other variables of the
      formula (a marginal contrast in the style of R's emmeans), with ``weights`` "observed"
      (their mix in the fitted ratings: the counterfactual average of setting the term to the
      level in every fitted row) or "equal" (every combination of the other categorical
      variables' levels alike; numeric variables at their observed values). In an additive
      model this is the coefficient; with interactions it is not the coefficient, which is
      the effect at the reference levels of the interacting variables.
    * A numeric variable: the slope per unit, averaged the same way.
    * An interaction term: its coefficient (a difference of differences on the link scale).
    * Any other term (transformed variables): its coefficient.

    Examples
    --------
    >>> from pluralign.models import build_design
    >>> from pluralign.models._design import _example_study
    >>> c = design_contrasts(build_design(_example_study(), "rating ~ gender"))
    >>> c[0].level, c[0].reference, c[0].estimand, c[0].L.tolist()
    ('he/him', 'she/her', 'no other variables', [0.0, 1.0])
    """
    if weights not in ESTIMAND_WEIGHTS:
        raise ValueError(f"weights must be one of {ESTIMAND_WEIGHTS}, got {weights!r}")
    out: list[Contrast] = []
    p = len(design.columns)
    for term, entries in design.terms.items():
        parts = term.split(":")
        others = [v for v in design.variables if v != term]
        if len(parts) > 1 or term not in design.variables:
            kind = "interaction" if len(parts) > 1 else "other"
            for level, idx in entries:
                L = np.zeros(p)
                L[idx] = 1.0
                if kind == "interaction":
                    reference = ":".join(design.references.get(v, "") for v in parts)
                    what = "interaction coefficient: difference of differences on the link scale"
                else:
                    reference, what = "", f"coefficient of {design.columns[idx]}"
                out.append(Contrast(term, level, reference, kind, what, L))
            continue
        cat_others = [v for v in others if v in design.levels]
        num_others = [v for v in others if v not in design.levels]
        if not others:
            where = "no other variables"
        elif weights == "observed":
            where = f"marginal over {', '.join(others)} (observed weights)"
        else:
            where = f"marginal over {', '.join(cat_others)} (equal weights)" if cat_others else ""
            if num_others:
                where += ("; " if where else "") + f"{', '.join(num_others)} at observed values"
        grid = _grid(design, cat_others if weights == "equal" else [])
        if term in design.levels:
            ref = design.references[term]
            sides = [ref, *(level for level, _ in entries)]
            # one design evaluation for all sides: rows (side, grid cell)
            rows = (
                averaged_rows(
                    design, pd.concat([_with(grid, term, x) for x in sides], ignore_index=True)
                )
                .reshape(len(sides), len(grid), -1)
                .mean(axis=1)
            )
            ref_cells = _with(grid, term, ref)
            for j, (level, _) in enumerate(entries, start=1):
                out.append(
                    Contrast(
                        term,
                        level,
                        ref,
                        "categorical",
                        where,
                        rows[j] - rows[0],
                        _with(grid, term, level),
                        ref_cells,
                    )
                )
        else:  # numeric variable: slope per unit, averaged over the grid (or observed mix)
            base = grid if weights == "equal" else pd.DataFrame(index=[0])
            L = (averaged_rows(design, base, shift=term) - averaged_rows(design, base)).mean(axis=0)
            scaled = getattr(design, "numeric_scaling", {}).get(term, (0.0, 1.0))[1] != 1.0
            what = f"slope per {'SD' if scaled else 'unit'}; {where}".rstrip("; ")
            out.append(Contrast(term, term, "", "numeric", what, L))
    return out


def rating_contrast_draws(
    contrasts: Sequence[Contrast], cell_values
) -> tuple[np.ndarray, np.ndarray]:
    """Rating-scale values ``(k, n_contrasts)`` of each contrast's level and reference side.

    ``cell_values(cells)`` returns ``(k, n_cells)`` expected ratings of demographic cells
    (draws, or one row of point estimates); each side is the equal-weight mean of its cells.
    Cells fixing the same variables are evaluated in one call.
    """
    groups: dict[tuple, list[int]] = {}
    for j, c in enumerate(contrasts):
        groups.setdefault(tuple(c.level_cells.columns), []).append(j)
    lev = ref = None
    for members in groups.values():
        frames, bounds, start = [], [], 0
        for j in members:
            a, b = contrasts[j].level_cells, contrasts[j].reference_cells
            frames += [a, b]
            bounds.append(
                (j, slice(start, start + len(a)), slice(start + len(a), start + len(a) + len(b)))
            )
            start += len(a) + len(b)
        values = np.asarray(cell_values(pd.concat(frames, ignore_index=True)))
        if lev is None:
            lev = np.empty((values.shape[0], len(contrasts)))
            ref = np.empty_like(lev)
        for j, sa, sb in bounds:
            lev[:, j] = values[:, sa].mean(axis=1)
            ref[:, j] = values[:, sb].mean(axis=1)
    return lev, ref


def tail_probability(draws: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Probability of direction and the two-sided tail probability, bounded by the draws.

    ``pd = max(P(x > 0), P(x < 0))`` over the draws and ``p_tail = 2 (1 − pd)``; when every
    draw has the same sign the tail probability is only known to be below ``1 / n_draws``,
    so it is reported as ``1 / n_draws`` (read "< 1/n_draws"), never 0.

    Examples
    --------
    >>> pd_, p = tail_probability(np.arange(1.0, 1001.0))
    >>> float(pd_), float(p)
    (1.0, 0.001)
    """
    x = np.asarray(draws, dtype=float)
    n = x.shape[axis]
    pos = np.mean(x > 0, axis=axis)
    neg = np.mean(x < 0, axis=axis)
    pd_ = np.maximum(pos, neg)
    return pd_, np.clip(2.0 * (1.0 - pd_), 1.0 / n, 1.0)


def format_tail(p: float, n_draws: int, digits: int = 3) -> str:
    """A bounded tail probability as text: ``"< 1/n_draws"`` when no draw crossed zero.

    Examples
    --------
    >>> format_tail(0.00025, 4000), format_tail(0.0312, 4000)
    ('< 0.00025', '0.031')
    """
    if not np.isfinite(p):
        return ""
    floor = 1.0 / n_draws
    if p <= floor * (1 + 1e-9):
        return f"< {floor:.2g}"
    return f"{p:.{digits}g}" if p < 0.001 else f"{p:.{digits}f}"


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
    elif correction == "holm":
        # Holm's step-down, as multipletests computes it (which also runs a full gc.collect()
        # on every call, a third of a second in a large session)
        adj = np.full_like(p, np.nan)
        q = p[ok]
        order = np.argsort(q, kind="stable")
        steps = np.maximum.accumulate(q[order] * np.arange(len(q), 0, -1))
        adj_ok = np.empty_like(q)
        adj_ok[order] = np.minimum(steps, 1.0)
        adj[ok] = adj_ok
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
        relative_ci_high, p_value, p_direction``; ``group_a``/``group_b`` are the populations'
        :attr:`~pluralign.data.Population.label`; ``relative_pct = 100 (mean_a - mean_b) /
        mean_b``; ``p_direction`` is the share of draws on the majority side of 0 and
        ``p_value = 2 (1 - p_direction)``, bounded below by ``1 / n_draws`` (a value equal to
        ``out.attrs["p_value_floor"]`` reads "< 1/n_draws"): a tail probability of the draws
        (posterior draws, or simulations of the sampling distribution of a frequentist fit),
        not adjusted for multiplicity.

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
    dims = fitted_dimensions(fit.dimensions, dimension)
    rows = []
    for dim in dims:
        da, pa = group_mean_draws(fit, pop_a, dim)
        db, pb = group_mean_draws(fit, pop_b, dim)
        cols = contrast_columns(da, db, ci_prob=ci_prob, level_point=[pa], reference_point=[pb])
        pdir, p = tail_probability(da - db)
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
                "p_direction": float(pdir),
            }
        )
    out = pd.DataFrame(rows, columns=list(COMPARE_COLUMNS))
    out.attrs["p_value_floor"] = 1.0 / len(da) if rows else np.nan
    return out
