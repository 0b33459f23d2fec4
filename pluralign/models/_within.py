"""Model-based group contrasts within each level of an item covariate (``effects_within``).

In ``rating ~ gender * source_model`` the coefficient of ``gender`` is the gender contrast on the
reference LLM's responses only, and the rating-scale columns of ``effects()`` average over the
LLMs. :func:`effects_within` gives the third reading, one row per LLM: the contrast of a rater
group with its reference group *on the responses of that LLM*, from the fitted model's draws.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pluralign._settings import options
from pluralign.models._design import fitted_dimensions
from pluralign.models._effects import adjust_pvalues, contrast_columns, tail_probability
from pluralign.models._protocol import RATING_CONTRAST_COLUMNS

#: Columns of :func:`effects_within`; the ``within`` variable's column follows ``dimension``.
WITHIN_EFFECT_COLUMNS = (
    "dimension",
    "term",  # the rater variable compared (``by``)
    "level",
    "reference",
    "mean_level",  # expected rating of the level's raters on the item level's responses
    "mean_reference",
    *RATING_CONTRAST_COLUMNS,
    "p_value",  # 2 * (1 - probability of direction of the difference draws)
    "p_adjusted",
)


def effects_within(
    fit,
    by: str,
    within: str,
    *,
    dimension: str | Sequence[str] | None = None,
    ci_prob: float | None = None,
    multiplicity: str | Sequence[str] | None = None,
    correction: str = "holm",
) -> pd.DataFrame:
    """Contrasts of ``by``'s levels with its reference, on each level of ``within``.

    For level ``l`` of ``by`` and level ``w`` of ``within`` (e.g. an item column such as
    ``source_model``), ``mean_level`` is the expected rating with ``by = l`` and ``within = w``
    set in every fitted row (the other variables keep their observed mix; random effects at
    their mean for the identity link, integrated otherwise), ``mean_reference`` the same with
    ``by`` at its reference: "men rate model A's responses 20 % less toxic, model B's 5 %".
    For a linear model the difference equals the main effect plus the interaction
    coefficient of ``w``; intervals are percentiles of the fit's draws (simulations from
    ``N(β̂, V̂)`` for :func:`fit_mixed`, posterior draws for :func:`fit_bayes`).

    Parameters
    ----------
    fit : ModelResult
        A fitted model whose formula has ``by`` and ``within`` as categorical variables.
    by : str
        The variable whose levels are compared (usually a demographic).
    within : str
        The variable held at each of its levels (usually an item column).
    dimension : str or sequence of str, optional
        Default: every dimension of the fit.
    ci_prob : float, optional
        Interval probability (default ``options.ci_prob``).
    multiplicity : str or sequence of str, optional
        Terms and/or dimensions adjusted together (default every row), as in ``effects()``.
    correction : str, default "holm"
        A ``statsmodels`` ``multipletests`` method, or ``"none"``.

    Returns
    -------
    DataFrame
        WITHIN_EFFECT_COLUMNS, with a column named after ``within`` after ``dimension``;
        ``attrs["within"]`` names it.

    See Also
    --------
    pluralign.models.compare_groups : any two populations.
    pluralign.describe.relative_difference : the model-free counterpart (``within=``).

    Examples
    --------
    >>> from pluralign.models import fit_mixed
    >>> from pluralign.models._mixed import _example_study
    >>> fit = fit_mixed(_example_study(), "rating ~ ideology * source_model",
    ...                 reference={"ideology": "liberal", "source_model": "model_a"})
    >>> out = effects_within(fit, "ideology", "source_model")
    >>> out[["source_model", "level", "reference"]].iloc[:2].values.tolist()
    [['model_a', 'centre', 'liberal'], ['model_a', 'conservative', 'liberal']]
    """
    ci_prob = options.ci_prob if ci_prob is None else float(ci_prob)
    if by == within:
        raise ValueError(f"by and within are both {by!r}; give two different variables")
    dims = fitted_dimensions(fit.dimensions, dimension)
    tables = []
    for dim in dims:
        design = fit.design(dim)
        for name, var in (("by", by), ("within", within)):
            if var not in design.levels:
                raise KeyError(
                    f"{name}={var!r} is not a categorical variable of {design.formula!r} "
                    f"(categorical variables: {sorted(design.levels)})"
                )
        levels, w_levels = design.levels[by], design.levels[within]
        reference = design.references[by]
        cells = pd.DataFrame(
            [(lev, w) for w in w_levels for lev in levels], columns=[by, within], dtype=object
        )
        draws = np.asarray(fit.cell_mean_draws(cells, dim))
        if hasattr(fit, "cell_means"):
            point = np.asarray(fit.cell_means(cells, dim), dtype=float)
        else:
            point = draws.mean(axis=0)
        k = len(levels)
        for j, w in enumerate(w_levels):
            block = slice(j * k, (j + 1) * k)
            lev_draws, lev_point = draws[:, block][:, 1:], point[block][1:]
            ref_draws = np.repeat(draws[:, block][:, :1], k - 1, axis=1)
            ref_point = np.repeat(point[block][:1], k - 1)
            cols = contrast_columns(
                lev_draws,
                ref_draws,
                ci_prob=ci_prob,
                level_point=lev_point,
                reference_point=ref_point,
            ).drop(columns="cohens_d")
            _, p = tail_probability(lev_draws - ref_draws)
            cols.insert(0, "dimension", dim)
            cols.insert(1, within, w)
            cols.insert(2, "term", by)
            cols.insert(3, "level", list(levels[1:]))
            cols.insert(4, "reference", reference)
            cols["p_value"] = p
            tables.append(cols)
    out = pd.concat(tables, ignore_index=True)
    out["p_adjusted"] = adjust_pvalues(out, multiplicity=multiplicity, correction=correction)
    out.attrs.update({"within": within, "ci_prob": ci_prob, "correction": correction})
    return out[["dimension", within, *WITHIN_EFFECT_COLUMNS[1:]]]
