"""Fitters: ``fit(study) -> DataFrame`` of contrasts, the one interface power analysis needs.

A fitter returns one row per contrast with at least ``term, level, reference, estimate,
ci_low, ci_high, p_value``; an optional boolean ``detected`` column overrides the default
detection rule ``p_value < alpha``. Any callable with that contract can be passed as
``model=`` to :func:`power_analysis`; the built-in ones are small frozen dataclasses so that
they pickle to worker processes and key the cache by their parameters.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from pluralign._compat import require
from pluralign._errors import PluralignWarning
from pluralign.data import Study

if TYPE_CHECKING:
    from pluralign.power._design import StudyDesign

FIT_COLUMNS = ("term", "level", "reference", "estimate", "ci_low", "ci_high", "p_value")

Fitter = Callable[[Study], pd.DataFrame]


def _term_entries(design, term: str) -> list[tuple[str, int]]:
    """``(level, column of X)`` of every non-reference level of ``term`` in a model's design."""
    entries = design.terms.get(term)
    if not entries:
        raise ValueError(
            f"the model has no coefficients for {term!r}; its terms are {sorted(design.terms)}"
        )
    return entries


def _reference(design, term: str) -> str:
    """The reference of ``term``'s contrasts as ``effects`` names it: its level for a factor,
    the levels of an interaction's factors joined by ``:`` (empty for numeric variables)."""
    return ":".join(design.references.get(part, "") for part in term.split(":"))


def coefficient_contrasts(res, term: str, ci_prob: float) -> pd.DataFrame:
    """Wald contrasts of ``term`` from a fitted :class:`~pluralign.models.MixedResult`.

    The link-scale contrasts of ``effects(scale="link")``: the coefficient, its Wald interval
    and z test for every level of ``term`` against its reference, without the rating-scale
    simulations (marginal means from parameter draws), which cost several times the fit and
    are not needed to count detections. When ``term`` is a Gaussian model's only term its
    coefficients are read directly from the estimates and their covariance (the same numbers;
    ``effects`` would first build every contrast of the model). The Wald standard error is
    kept as ``std_error``.
    """
    columns = [*FIT_COLUMNS, "std_error"]
    dim = res.dimensions[0]
    design = res.design(dim)
    if res.family != "gaussian" or len(design.terms) > 1:  # other terms: marginal contrasts
        eff = res.effects(scale="link", ci_prob=ci_prob, correction="none")
        rows = eff[eff["term"] == term]
        if rows.empty:
            raise ValueError(
                f"the model has no coefficients for {term!r}; its terms are "
                f"{sorted(eff['term'].unique())}"
            )
        return rows[columns].reset_index(drop=True)
    fit = res.fits[dim].fit
    q = stats.norm.ppf(0.5 + ci_prob / 2)
    rows = []
    for level, col in _term_entries(design, term):
        est, se = float(fit.beta[col]), float(np.sqrt(fit.vcov[col, col]))
        rows.append(
            {
                "term": term,
                "level": level,
                "reference": design.references[term],
                "estimate": est,
                "ci_low": est - q * se,
                "ci_high": est + q * se,
                "p_value": float(2 * stats.norm.sf(abs(est) / se)),
                "std_error": se,
            }
        )
    return pd.DataFrame(rows, columns=columns)


def hdi_contrasts(res, term: str, ci_prob: float) -> pd.DataFrame:
    """Link-scale contrasts of ``term`` from a fitted :class:`~pluralign.models.BayesResult`:
    posterior mean and highest-density interval of each coefficient (ArviZ's ``hdi``), read
    from the fit's :class:`Design` and its coefficient draws, without rating-scale summaries.
    A contrast is ``detected`` when its interval excludes 0. ``p_value`` is the two-sided tail
    probability of the draws, bounded below by ``1 / draws`` as the Bayesian effects report it
    (:func:`~pluralign.models.tail_probability`): informative only, detection does not use it."""
    from pluralign.models import tail_probability

    az = require("arviz", purpose="Bayesian power analysis")
    dim = res.dimensions[0]
    design = res.design(dim)
    beta = res.fits[dim].draws().beta  # (draws, columns of X without the intercept)
    rows = []
    for level, col in _term_entries(design, term):
        b = beta[:, col - 1]
        lo, hi = az.hdi(b, hdi_prob=ci_prob)
        _, p_tail = tail_probability(b)
        rows.append(
            {
                "term": term,
                "level": level,
                "reference": _reference(design, term),
                "estimate": float(b.mean()),
                "ci_low": float(lo),
                "ci_high": float(hi),
                "p_value": float(p_tail),
                "detected": bool(lo > 0 or hi < 0),
            }
        )
    return pd.DataFrame(rows, columns=[*FIT_COLUMNS, "detected"])


@dataclass(frozen=True)
class MixedFitter:
    """Crossed linear mixed model (rater and item random intercepts) via
    :func:`pluralign.models.fit_mixed`; Wald tests and intervals of the group contrasts.

    Gaussian fits are *screened*: each study is first fitted approximately
    (``fit_mixed(approximate=True)``: the matrix-free factor of the crossed system, a looser
    optimiser tolerance, no finite-difference convergence check; Wald z within about 10⁻³ of
    the exact fit at paper scale) and fitted again exactly when a decision the power analysis
    counts is close: when ``|z|`` is within ``screen_margin`` of the critical value
    ``z_{1/2 + ci_prob/2}`` (detection; the same threshold as ``p_value < alpha`` when
    ``ci_prob = 1 - alpha``, as :func:`power_analysis` sets it), when the true contrast lies
    within ``screen_margin`` standard errors of an interval end (coverage), or when the
    approximate fit warns (non-convergence, a singular fit) or fails. Detections and coverage
    are then those of exact fits, at a fraction of their cost; estimates and intervals of the
    rows not refitted differ from the exact ones by about 10⁻⁵ relative. ``screen_margin=None``
    fits every study exactly. ``formula`` (default ``"rating ~ {term}"``) is the model fitted,
    ``term`` the one tested (e.g. ``"gender:source_model"`` in ``"rating ~ gender +
    source_model + gender:source_model"``).
    """

    term: str
    dimension: str | None = None
    ci_prob: float = 0.95
    family: str = "gaussian"
    reml: bool = True
    screen_margin: float | None = 0.02
    formula: str | None = None

    name = "mixed"

    def _fit(self, study: Study, *, approximate: bool = False) -> pd.DataFrame:
        from pluralign.models import fit_mixed

        res = fit_mixed(
            study,
            formula=self.formula or f"rating ~ {self.term}",
            dimension=self.dimension,
            family=self.family,
            reml=self.reml,
            n_draws=1,
            progressbar=False,
            approximate=approximate,
        )
        return coefficient_contrasts(res, self.term, self.ci_prob)

    def __call__(
        self, study: Study, *, seed: int = 0, truth: Mapping[str, float] | None = None
    ) -> pd.DataFrame:
        if self.screen_margin is not None and self.family == "gaussian":
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    screened = self._fit(study, approximate=True)
                except Exception:  # the exact fit below decides (or raises)
                    screened = None
            if screened is not None and not caught and not self.near_decision(screened, truth):
                return screened
        return self._fit(study)

    def near_decision(self, table: pd.DataFrame, truth: Mapping[str, float] | None = None) -> bool:
        """Whether a detection or coverage decision of ``table`` (FIT_COLUMNS and
        ``std_error``: Wald z tests and intervals at ``ci_prob``) lies within ``screen_margin``
        standard errors of its threshold.

        Examples
        --------
        >>> import pandas as pd
        >>> fitter = MixedFitter("gender")
        >>> row = {"term": "gender", "level": "b", "estimate": 1.97, "std_error": 1.0}
        >>> fitter.near_decision(pd.DataFrame([row]))  # |z| within 0.02 of 1.96
        True
        >>> fitter.near_decision(pd.DataFrame([{**row, "estimate": 2.5}]))
        False
        """
        q = stats.norm.ppf(0.5 + self.ci_prob / 2)
        est = table["estimate"].to_numpy(dtype=float)
        se = table["std_error"].to_numpy(dtype=float)
        gaps = [np.abs(est) / se]
        if truth:
            t = table["level"].astype(str).map(truth).to_numpy(dtype=float)
            gaps.append(np.abs(est - t)[~np.isnan(t)] / se[~np.isnan(t)])
        gap = np.concatenate(gaps)
        return bool(not np.all(np.isfinite(gap)) or np.any(np.abs(gap - q) < self.screen_margin))

    def truth(self, design: StudyDesign) -> dict[str, float]:
        """True value of each contrast on the scale of ``estimate``."""
        if self.family == "gaussian":
            return design.test_effects("point")
        return design.test_effects("latent")  # logit link on a binary cumulative-logit design


@dataclass(frozen=True)
class BayesFitter:
    """Bayesian crossed model via :func:`pluralign.models.fit_bayes` with few draws.

    A contrast is *detected* when its ``ci_prob`` highest-density interval excludes 0
    (``ci_prob = 1 - alpha`` in :func:`power_analysis`).
    """

    term: str
    dimension: str | None = None
    ci_prob: float = 0.95
    family: str = "ordinal"
    draws: int = 300
    tune: int = 300
    chains: int = 2
    sampler: str = "nutpie"
    formula: str | None = None

    name = "bayes"

    def __call__(self, study: Study, *, seed: int = 0) -> pd.DataFrame:
        from pluralign.models import fit_bayes

        res = fit_bayes(
            study,
            formula=self.formula or f"rating ~ {self.term}",
            dimension=self.dimension,
            family=self.family,
            sampler=self.sampler,
            draws=self.draws,
            tune=self.tune,
            chains=self.chains,
            seed=int(seed),
            progressbar=False,
        )
        return hdi_contrasts(res, self.term, self.ci_prob)

    def truth(self, design: StudyDesign) -> dict[str, float]:
        """True contrast on the model's scale: rating points (gaussian) or the latent logit shift
        (ordinal, bernoulli: the design's ordinal scales are cumulative-logit, like the model)."""
        if self.family == "gaussian":
            return design.test_effects("point")
        return design.test_effects("latent")


@dataclass(frozen=True)
class RaterMeansFitter:
    """Ordinary least squares on per-rater mean ratings with one dummy per non-reference level
    (pooled-variance t tests and intervals).

    Exact for the design with rater random intercepts only and the same number of ratings per
    rater: the REML mixed-model estimate then *is* the difference of rater-mean averages, with
    variance ``(rater_sd² + residual_sd²/m)(1/n1 + 1/n2)``. With item effects it ignores the
    crossing (valid when items are spread evenly across groups; group × item variation makes it
    liberal). Hand-written because it is three lines of linear algebra and ~1000× faster than
    a mixed model, which matters inside thousands of simulations.
    """

    term: str
    dimension: str | None = None
    ci_prob: float = 0.95

    name = "rater_means"

    def __call__(self, study: Study, *, seed: int = 0) -> pd.DataFrame:
        r = study.ratings
        if self.dimension is not None:
            r = r[r["dimension"] == self.dimension]
        codes, raters = pd.factorize(r["rater"])
        y = np.bincount(codes, weights=r["rating"].to_numpy()) / np.bincount(codes)
        table = study.raters if self.term not in study.multiselect else study.rater_table()
        groups = pd.Series(table[self.term].to_numpy(), index=table["rater"]).reindex(raters)
        ok = groups.notna().to_numpy()
        levels = None
        reference = study.reference.get(self.term)
        if reference is not None:
            present = set(groups[ok].astype(str))
            levels = [
                str(reference),
                *sorted(
                    present - {str(reference)}, key=list(pd.unique(groups[ok].astype(str))).index
                ),
            ]
        return rater_means_contrasts(
            y[ok], groups.to_numpy()[ok].astype(str), self.term, levels=levels, ci_prob=self.ci_prob
        )

    def truth(self, design: StudyDesign) -> dict[str, float]:
        return design.test_effects("point")


def rater_means_contrasts(
    y: np.ndarray,
    groups: np.ndarray,
    term: str,
    *,
    levels: list[str] | None = None,
    ci_prob: float = 0.95,
) -> pd.DataFrame:
    """Contrasts of group means of ``y`` against the first level with a pooled-variance t test."""
    levels = list(pd.unique(groups)) if levels is None else levels
    n = np.array([(groups == lv).sum() for lv in levels])
    if (n < 1).any() or n.sum() - len(levels) < 1:
        raise ValueError(
            f"too few raters per level of {term!r}: {dict(zip(levels, n, strict=True))}"
        )
    mean = np.array([y[groups == lv].mean() for lv in levels])
    resid = np.concatenate([y[groups == lv] - m for lv, m in zip(levels, mean, strict=True)])
    df = n.sum() - len(levels)
    s2 = float(resid @ resid) / df
    rows = []
    q = stats.t.ppf(0.5 + ci_prob / 2, df)
    for i in range(1, len(levels)):
        est = mean[i] - mean[0]
        se = np.sqrt(s2 * (1 / n[i] + 1 / n[0]))
        t = est / se if se > 0 else np.inf * np.sign(est)
        rows.append(
            {
                "term": term,
                "level": levels[i],
                "reference": levels[0],
                "estimate": est,
                "ci_low": est - q * se,
                "ci_high": est + q * se,
                "p_value": float(2 * stats.t.sf(abs(t), df)) if np.isfinite(t) else 0.0,
            }
        )
    return pd.DataFrame(rows, columns=list(FIT_COLUMNS))


_BUILTIN = {"mixed": MixedFitter, "bayes": BayesFitter, "rater_means": RaterMeansFitter}


def resolve_fitter(
    model: str | Fitter, design: StudyDesign, *, alpha: float, options: Mapping | None = None
) -> Fitter:
    """The fitter for ``model=``: a built-in name or any callable (returned unchanged)."""
    if callable(model):
        return model
    if model not in _BUILTIN:
        raise ValueError(
            f"model must be one of {sorted(_BUILTIN)} or a callable fit(study) -> DataFrame; got {model!r}"
        )
    opts = dict(options or {})
    if model == "bayes":
        opts.setdefault(
            "family",
            "gaussian"
            if design.scale == "normal"
            else ("bernoulli" if design.scale == "binary" else "ordinal"),
        )
    if model == "mixed" and design.scale == "binary" and opts.get("family") != "binomial":
        warnings.warn(
            "model='mixed' on a binary scale fits a linear probability model (Gaussian LMM); "
            "its estimand is the difference in the proportion of 1s "
            "(model_options={'family': 'binomial'} fits a logistic mixed model)",
            PluralignWarning,
            stacklevel=4,  # resolve_fitter <- _prepare <- power_analysis etc. <- the caller
        )
    if model == "rater_means":
        if design.test != design.term:
            raise ValueError(
                f"model='rater_means' tests the demographic {design.term!r} only; the design "
                f"tests {design.test!r}: use model='mixed' or 'bayes'"
            )
        return RaterMeansFitter(
            term=design.term, dimension=design.dimension, ci_prob=1 - alpha, **opts
        )
    opts.setdefault("formula", design.formula)
    return _BUILTIN[model](term=design.test, dimension=design.dimension, ci_prob=1 - alpha, **opts)


def fitter_truth(fitter: Fitter, design: StudyDesign) -> dict[str, float]:
    """True value of each contrast on the fitter's scale (rating points unless it says otherwise)."""
    truth = getattr(fitter, "truth", None)
    return truth(design) if callable(truth) else design.test_effects("point")


def fitter_key(fitter: Fitter) -> str:
    """Text identifying a fitter and its parameters (part of the cache key)."""
    if hasattr(fitter, "__dataclass_fields__"):
        return repr(fitter)
    return f"{getattr(fitter, '__module__', '')}.{getattr(fitter, '__qualname__', repr(fitter))}"
