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

from pluralign._errors import PluralignWarning
from pluralign.data import Study

if TYPE_CHECKING:
    from pluralign.power._design import StudyDesign

FIT_COLUMNS = ("term", "level", "reference", "estimate", "ci_low", "ci_high", "p_value")

Fitter = Callable[[Study], pd.DataFrame]


def mixed_available() -> bool:
    """Whether :func:`pluralign.models.fit_mixed` is implemented in this installation."""
    from pluralign.models import _mixed

    return hasattr(_mixed.MixedResult, "effects")


def bayes_available() -> bool:
    """Whether :func:`pluralign.models.fit_bayes` is implemented in this installation."""
    from pluralign.models import _bayes

    return hasattr(_bayes.BayesResult, "effects")


def _select(effects: pd.DataFrame, term: str) -> pd.DataFrame:
    out = effects[effects["term"] == term] if "term" in effects.columns else effects
    missing = [c for c in FIT_COLUMNS if c not in out.columns]
    if missing:
        raise ValueError(
            f"the model's effects() lacks columns {missing}; it has {list(out.columns)}"
        )
    cols = [*FIT_COLUMNS, *(c for c in ("detected",) if c in out.columns)]
    return out[cols].reset_index(drop=True)


def coefficient_contrasts(res, term: str, reference: str, ci_prob: float) -> pd.DataFrame:
    """Wald contrasts of ``term`` read from a MixedResult's ``summary()`` (the same estimate,
    interval and p-value as ``effects()``, without its rating-scale simulations, which cost
    ~5× the fit and are not needed to count detections)."""
    tab = res.summary()
    tab = tab[(tab["kind"] == "fixed") & tab["parameter"].str.startswith(f"{term}[T.")]
    if tab.empty:
        raise ValueError(f"the mixed model has no coefficients for {term!r}")
    z = stats.norm.ppf(0.5 + ci_prob / 2)
    est, se = tab["estimate"].to_numpy(), tab["std_error"].to_numpy()
    return pd.DataFrame(
        {
            "term": term,
            "level": tab["parameter"].str.slice(len(term) + 3, -1).to_numpy(),
            "reference": reference,
            "estimate": est,
            "ci_low": est - z * se,
            "ci_high": est + z * se,
            "p_value": tab["p_value"].to_numpy(),
        }
    )


@dataclass(frozen=True)
class MixedFitter:
    """Crossed linear mixed model (rater and item random intercepts) via
    :func:`pluralign.models.fit_mixed`; Wald tests and intervals of the group contrasts."""

    term: str
    dimension: str | None = None
    ci_prob: float = 0.95
    family: str = "gaussian"
    reml: bool = True

    name = "mixed"

    def __call__(self, study: Study, *, seed: int = 0) -> pd.DataFrame:
        from pluralign.models import fit_mixed

        levels = study.rater_table()[self.term].dropna().astype(str)
        reference = str(study.reference.get(self.term, levels.iloc[0]))
        res = fit_mixed(
            study,
            formula=f"rating ~ {self.term}",
            dimension=self.dimension,
            family=self.family,
            reml=self.reml,
            reference={self.term: reference},
            n_draws=1,
            progressbar=False,
        )
        return coefficient_contrasts(res, self.term, reference, self.ci_prob)

    def truth(self, design: StudyDesign) -> dict[str, float]:
        """True value of each contrast on the scale of ``estimate``."""
        if self.family == "gaussian":
            return design.point_effects()
        return design.latent_effects()  # logit link on a binary cumulative-logit design


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

    name = "bayes"

    def __call__(self, study: Study, *, seed: int = 0) -> pd.DataFrame:
        from pluralign.models import fit_bayes

        levels = study.rater_table()[self.term].dropna().astype(str)
        reference = str(study.reference.get(self.term, levels.iloc[0]))
        res = fit_bayes(
            study,
            formula=f"rating ~ {self.term}",
            dimension=self.dimension,
            family=self.family,
            sampler=self.sampler,
            draws=self.draws,
            tune=self.tune,
            chains=self.chains,
            seed=int(seed),
            reference={self.term: reference},
            progressbar=False,
        )
        out = _select(res.effects(ci_prob=self.ci_prob), self.term)
        out["detected"] = (out["ci_low"] > 0) | (out["ci_high"] < 0)
        return out

    def truth(self, design: StudyDesign) -> dict[str, float]:
        """True contrast on the model's scale: rating points (gaussian) or the latent logit shift
        (ordinal, bernoulli: the design's ordinal scales are cumulative-logit, like the model)."""
        if self.family == "gaussian":
            return design.point_effects()
        return design.latent_effects()


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
        return design.point_effects()


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
    if model == "mixed" and not mixed_available():
        raise NotImplementedError(
            "fit_mixed is not available in this installation; use model='rater_means' "
            "(exact for designs without item effects) or pass a callable"
        )
    if model == "bayes":
        if not bayes_available():
            raise NotImplementedError("fit_bayes is not available in this installation")
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
            stacklevel=3,
        )
    return _BUILTIN[model](term=design.term, dimension=design.dimension, ci_prob=1 - alpha, **opts)


def fitter_truth(fitter: Fitter, design: StudyDesign) -> dict[str, float]:
    """True value of each contrast on the fitter's scale (rating points unless it says otherwise)."""
    truth = getattr(fitter, "truth", None)
    return truth(design) if callable(truth) else design.point_effects()


def fitter_key(fitter: Fitter) -> str:
    """Text identifying a fitter and its parameters (part of the cache key)."""
    if hasattr(fitter, "__dataclass_fields__"):
        return repr(fitter)
    return f"{getattr(fitter, '__module__', '')}.{getattr(fitter, '__qualname__', repr(fitter))}"
