"""The contract every fitted model honours, so that effects, plots, labels and reports treat them alike.

Columns of the tidy outputs are fixed here; ``tests/test_models_protocol.py`` checks them for
every model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from pluralign.data import Population

#: Rating-scale contrast columns shared by every difference table (``effects()``,
#: :func:`~pluralign.models.compare_groups`, :func:`~pluralign.models.effects_within`):
#: ``difference = mean_level - mean_reference`` (rating points), ``relative_pct = 100 *
#: difference / mean_reference`` and their intervals (percentiles of the draws).
RATING_CONTRAST_COLUMNS = (
    "difference",
    "difference_ci_low",
    "difference_ci_high",
    "relative_pct",
    "relative_ci_low",
    "relative_ci_high",
)

#: Columns of ``ModelResult.effects()``: one row per contrast (level vs reference of one term).
EFFECT_COLUMNS = (
    "dimension",  # rated dimension
    "term",  # demographic (formula term), e.g. "gender"
    "level",  # compared level, e.g. "he/him"
    "reference",  # reference level, e.g. "she/her"
    "estimand",  # what the row estimates, e.g. "marginal over race (observed weights)"
    "estimate",  # link-scale contrast L'beta (identity: rating points; logit: log-odds)
    "ci_low",
    "ci_high",  # CI (frequentist) or HDI (Bayesian) of the link-scale estimate
    "p_value",  # two-sided Wald p of the estimate (frequentist); NaN for Bayesian fits
    "p_direction",  # probability of direction of the estimate (Bayesian); NaN for frequentist
    "p_adjusted",  # Wald p adjusted over the multiplicity set (``correction=``); NaN (Bayesian)
    "mean_level",  # marginal mean rating of the level (rating scale)
    "mean_reference",  # marginal mean rating of the reference (rating scale)
    *RATING_CONTRAST_COLUMNS,
    "cohens_d",  # difference / standardiser (see result.attrs["standardiser"])
    "odds_ratio",  # exp(estimate) for logit links; NaN for the identity link
    "odds_ratio_ci_low",
    "odds_ratio_ci_high",
)

#: Scales of ``ModelResult.effects(scale=...)``: ``"rating"`` (every column) or ``"link"``
#: (coefficient columns only; the rating-scale columns are NaN and nothing is simulated).
EFFECT_SCALES = ("rating", "link")

#: Columns of ``ModelResult.terms``: one row per coefficient of a formula term.
TERM_COLUMNS = (
    "dimension",
    "term",  # formula term, e.g. "gender" or "gender:race"
    "level",  # level of the coefficient, e.g. "he/him" (a numeric variable: its own name)
    "reference",  # reference level(s), e.g. "she/her" ("" for numeric variables)
    "coefficient",  # name of the design column, e.g. "gender[T.he/him]"
    "kind",  # "categorical", "numeric" or "interaction"
)

#: Columns of :func:`pluralign.models.compare_groups`.
COMPARE_COLUMNS = (
    "dimension",
    "group_a",  # Population.label of a
    "group_b",  # Population.label of b
    "mean_a",
    "mean_b",
    *RATING_CONTRAST_COLUMNS,  # a = level, b = reference
    "p_value",  # 2 * (1 - p_direction), bounded below by 1 / n_draws (never 0)
    "p_direction",  # probability of direction of the difference (share of draws)
)

#: Columns of ``MixedResult.summary()``.
MIXED_SUMMARY_COLUMNS = (
    "dimension",
    "kind",  # "fixed", "variance", "correlation" (random slopes) or "fit"
    "parameter",
    "estimate",
    "std_error",
    "statistic",
    "p_value",
)

#: Columns of ``BayesResult.summary()`` (those of ``arviz.summary``, the HDI as ci_low/ci_high).
BAYES_SUMMARY_COLUMNS = (
    "dimension",
    "parameter",
    "mean",  # posterior mean
    "sd",  # posterior SD
    "ci_low",
    "ci_high",  # highest-density interval
    "mcse_mean",
    "mcse_sd",
    "ess_bulk",
    "ess_tail",
    "r_hat",
)

#: Columns of ``ModelResult.marginal_means(by=...)`` besides the ``by`` columns.
MARGINAL_COLUMNS = ("dimension", "mean", "ci_low", "ci_high")

#: Columns of ``ModelResult.poststratify(target)``.
POSTSTRAT_COLUMNS = ("dimension", "population", "estimate", "ci_low", "ci_high")

#: Columns of ``MixedResult.random_effects()``: one row per level and coefficient of a term.
RANDOM_EFFECT_COLUMNS = (
    "dimension",
    "term",  # random term as lme4 writes it, e.g. "(1 + gender | item)"
    "factor",  # grouping factor: "rater" or "item"
    "level",  # rater or item identifier
    "coefficient",  # "Intercept" or a slope column, e.g. "gender[T.he/him]"
    "estimate",  # conditional mode (BLUP), link scale
)

#: Columns of ``MixedResult.variance_components()`` (lme4's ``VarCorr``).
VARIANCE_COLUMNS = (
    "dimension",
    "term",  # random term, e.g. "(1 + gender | item)", or "residual"
    "factor",  # grouping factor ("" for the residual)
    "kind",  # "sd" or "cor"
    "parameter",  # coefficient ("Intercept", "gender[T.he/him]") or pair "a, b" for "cor"
    "estimate",
)

#: Columns of :func:`pluralign.models.random_slope_test`.
SLOPE_TEST_COLUMNS = (
    "dimension",
    "term",  # tested slope term, e.g. "(1 + gender | item)"
    "null_term",  # what replaces it under the null, e.g. "(1 | item)"
    "statistic",  # likelihood ratio (difference of REML criteria / deviances)
    "df",  # variance and correlation parameters the slopes add
    "p_value",  # 50:50 mixture of chi2(df - 1) and chi2(df)
)

#: Columns of ``ModelResult.diagnostics()``.
DIAGNOSTIC_COLUMNS = ("dimension", "check", "parameter", "value", "ok", "note")


@runtime_checkable
class ModelResult(Protocol):
    """What ``fit_mixed`` and ``fit_bayes`` return.

    Target populations (``target``) are anything :meth:`pluralign.data.Population.parse`
    accepts: None (everyone), a group or intersection (``{"gender": "she/her", "race":
    "Black"}``), margins (``{"gender": {"she/her": 0.5, "he/him": 0.5}}``) or a frame of
    demographic cells with a ``share`` column; rows name it by its ``Population.label``.

    Rating-scale helpers shared by all models (:func:`pluralign.models.compare_groups`,
    :func:`pluralign.models.contrast_columns`) need one hook: ``cell_mean_draws(cells,
    dimension)`` returns an ``(n_draws, n_cells)`` array of expected ratings of demographic cells
    (rows of ``cells``; demographics a cell leaves out keep their observed mix in the fitted data),
    from posterior draws or from simulations of the sampling distribution. A model may also offer
    ``cell_means(cells, dimension)`` (point estimates; default: mean of the draws).
    """

    dimensions: list[str]
    formula: str
    family: str

    @property
    def terms(self) -> pd.DataFrame:
        """One row per coefficient with TERM_COLUMNS."""
        ...

    def effects(
        self,
        *,
        multiplicity: str | Sequence[str] | None = None,
        correction: str = "holm",
        ci_prob: float | None = None,
        scale: str = "rating",
        weights: str = "observed",
    ) -> pd.DataFrame:
        """One row per estimand with EFFECT_COLUMNS (``scale="link"``: coefficients only).

        Each row is one estimand (its ``estimand`` column says which), with its own interval
        and test: a categorical term's contrast is averaged over the other variables
        (see :func:`pluralign.models.design_contrasts`).
        """
        ...

    def marginal_means(
        self, by: str | Sequence[str], *, ci_prob: float | None = None
    ) -> pd.DataFrame:
        """Expected rating per level (or level combination) of ``by``, on the rating scale."""
        ...

    def predict(
        self, data: pd.DataFrame | None = None, *, include_random: bool = True
    ) -> pd.DataFrame:
        """Expected rating for each row of ``data`` (default: the fitted ratings).

        Returns the rows with a ``prediction`` column (Bayesian fits add ``ci_low``, ``ci_high``
        and, for ordinal / bernoulli families, the category probabilities ``p_<level>``).
        """
        ...

    def poststratify(
        self, target: Population | pd.DataFrame | Mapping | None, *, ci_prob: float | None = None
    ) -> pd.DataFrame:
        """Population-level expected rating for a target population (MRP)."""
        ...

    def diagnostics(self) -> pd.DataFrame:
        """Convergence / sampler checks with DIAGNOSTIC_COLUMNS; failed checks were also warned."""
        ...

    def summary(self) -> pd.DataFrame:
        """All estimated parameters (fixed effects, variance components, cutpoints)."""
        ...

    def cell_mean_draws(self, cells: pd.DataFrame, dimension: str) -> np.ndarray:
        """Draws ``(n_draws, n_cells)`` of the expected rating of each demographic cell."""
        ...
