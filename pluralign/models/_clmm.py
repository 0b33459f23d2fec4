"""Ordinal mixed models (cumulative logit or probit, Laplace as ``ordinal::clmm``): ``OrdinalMixedResult``.

``fit_mixed(study, formula, family="ordinal")`` lands here. The numeric work is in
:mod:`pluralign.models._clmm_kernels`; this module codes each dimension (categories are the
distinct observed rating values, in order), fits it, and summarises the fits through the shared
:class:`~pluralign.models.ModelResult` protocol by extending :class:`MixedResult`.

Two scales
----------
* **Latent scale** (``effects()["estimate"]``, ``summary()``): the coefficients β of the
  cumulative link, ``P(rating ≤ k) = F(α_k − η)``: log cumulative odds ratios for the logit
  link (positive = higher ratings), with Wald intervals and z tests from the Laplace Hessian.
  ``effects()`` is :meth:`MixedResult.effects`: each row one estimand ``L'β`` (the marginal
  contrast of a term, averaged over the other variables as R's emmeans does; the coefficient
  in additive models), named in its ``estimand`` column.
* **Rating scale** (marginal means, differences, post-stratification, ``predict``): the
  *population-averaged* expected rating ``Σ_k value_k P(rating = k)``, the category
  probabilities integrated over the random part of the linear predictor by Gauss–Hermite
  quadrature, i.e. the mean rating of a new rater of the cell on a new item. The random part
  is normal with variance ``z'Σz`` summed over the random terms for the cell's row ``z``:
  ``σ²_rater + σ²_item`` for the default random intercepts; with random slopes such as
  ``(1 + gender | item)`` it differs between cells (``CLMMFit.random_variance``).
  This is the quantity the simulator calibrates (``SimulationTruth.fixed_effects``) and the
  one the Bayesian ordinal model reports; the conditional expectation at zero random effects is
  not used (it differs from the population average under a non-linear link).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
import pandas as pd
from scipy import stats

from pluralign.models._clmm_kernels import (
    CLMMFit,
    category_probabilities,
    expected_rating,
    fit_clmm,
    fit_clmm_terms,
)
from pluralign.models._design import Design, build_design  # noqa: F401  (examples)
from pluralign.models._mixed import (  # noqa: F401  (fit_mixed, _example_study: examples)
    _GH_W,
    _GH_X,
    DimensionFit,
    MixedResult,
    _example_study,
    fit_mixed,
    fit_statistic_rows,
    random_rows,
)
from pluralign.models._protocol import MIXED_SUMMARY_COLUMNS
from pluralign.models._random import RandomStructure

#: Coefficient draws are processed in chunks of this many (bounds the quadrature's memory).
_CHUNK = 64


@dataclass(frozen=True)
class OrdinalDimensionFit(DimensionFit):
    """The fit of one dimension: design, estimates and the rating value of each category."""

    fit: CLMMFit
    values: np.ndarray = field(default_factory=lambda: np.array([]))

    @property
    def cutpoint_names(self) -> list[str]:
        """clmm's names of the cutpoints: ``"1|2"``, ``"2|3"``, …"""
        v = [f"{x:g}" for x in self.values]
        return [f"{a}|{b}" for a, b in pairwise(v)]


@dataclass(frozen=True, eq=False)
class OrdinalMixedResult(MixedResult):
    """Crossed cumulative-link mixed models, one per dimension (``fit_mixed(family="ordinal")``).

    Implements :class:`~pluralign.models.ModelResult` as :class:`MixedResult` does, with the
    same ``effects()`` (latent-scale marginal contrasts and population-averaged expected-rating
    differences, one estimand per row); coefficient simulations draw ``(β, α)`` jointly from
    their Laplace covariance (variance components at their estimates). ``family`` is
    ``"ordinal"``; ``link`` is ``"logit"`` or ``"probit"``. Rating-scale quantities are
    population-averaged (see the module docstring).

    See Also
    --------
    fit_mixed : fits it with ``family="ordinal"``.
    MixedResult : the linear and logistic mixed models.

    Examples
    --------
    >>> fit = fit_mixed(_example_study(), "rating ~ gender", family="ordinal")
    >>> isinstance(fit, OrdinalMixedResult), fit.link
    (True, 'logit')

    Effects as for the linear model, the estimate on the latent (log cumulative odds) scale:

    >>> fit = fit_mixed(_example_study(), "rating ~ gender", family="ordinal",
    ...                 reference={"gender": "she/her"})
    >>> eff = fit.effects()
    >>> eff[["term", "level", "reference", "estimand"]].iloc[0].tolist()
    ['gender', 'he/him', 'she/her', 'no other variables']
    >>> bool(np.allclose(eff["odds_ratio"], np.exp(eff["estimate"])))
    True
    """

    link: str = "logit"

    def __repr__(self) -> str:
        dims = ", ".join(self.dimensions)
        return f"<OrdinalMixedResult {self.link} {self.formula!r}: {dims}>"

    # ---------------------------------------------------------------- draws
    def beta_draws(self, dimension: str) -> np.ndarray:
        """``n_draws`` rows ``(β, α)`` from their joint normal approximation (seeded per dimension)."""
        f = self._fit(dimension).fit
        idx = self.dimensions.index(dimension)
        rng = np.random.default_rng([self.seed, idx])
        k = len(f.cutpoints)
        mean = np.concatenate([f.beta, f.cutpoints])
        order = np.r_[k : k + len(f.beta), 0:k]
        V = f.params_vcov[np.ix_(order, order)]
        L = np.linalg.cholesky(V + 1e-14 * np.eye(len(mean)))
        return mean + rng.standard_normal((self.n_draws, len(mean))) @ L.T

    def _expected(self, B: np.ndarray, X: np.ndarray, W, dimension: str) -> np.ndarray:
        """Population-averaged expected ratings ``(k, n_cells)``.

        Rows of ``B`` are coefficient vectors (the fitted cutpoints are used) or ``(β, α)``
        rows from :meth:`beta_draws`; ``X`` is the design with its intercept column.
        """
        f = self._fit(dimension)
        fit = f.fit
        p = len(fit.beta)
        if B.shape[1] == p:
            B = np.column_stack(
                [B, np.broadcast_to(fit.cutpoints, (B.shape[0], len(fit.cutpoints)))]
            )
        Xb = np.asarray(X)[:, 1:]
        values = dict(zip(f.design.columns[1:], Xb.T, strict=True))
        s = np.sqrt(fit.random_variance(values, len(Xb)))[:, None]  # (rows, 1): slopes vary
        out = np.empty((B.shape[0], W.shape[0]))
        for start in range(0, B.shape[0], _CHUNK):
            Bc = B[start : start + _CHUNK]
            eta = Bc[:, :p] @ Xb.T  # (k, rows)
            cut = Bc[:, None, None, p:]  # (k, 1, 1, K-1)
            ev = expected_rating(eta[..., None] + s * _GH_X, cut, f.values, self.link) @ _GH_W
            out[start : start + _CHUNK] = np.asarray((W @ ev.T).T)
        return out

    # ---------------------------------------------------------------- protocol hooks
    # ``effects()``, ``marginal_means()``, ``poststratify()``, ``standardiser()`` are
    # MixedResult's: contrasts on the latent scale from ``β`` (no intercept: the cutpoints take
    # its place), rating-scale quantities from the population-averaged expected rating of
    # :meth:`_expected`.
    def _coefficient_weights(self, L: np.ndarray) -> np.ndarray:
        """Weights over the design's columns as weights over ``β`` (the intercept has none)."""
        if np.any(np.abs(L[:, 0]) > 1e-12):
            raise ValueError(
                "the ordinal model has no intercept (its cutpoints take its place): a contrast "
                "must give the Intercept column weight 0"
            )
        return L[:, 1:]

    def _linear_predictor(self, X: np.ndarray, beta: np.ndarray) -> np.ndarray:
        return X[:, 1:] @ beta

    def predict(
        self, data: pd.DataFrame | None = None, *, include_random: bool = True
    ) -> pd.DataFrame:
        """Expected rating and category probabilities ``p_<value>`` of each row.

        ``data`` needs the formula's demographics (default: the fitted ratings); known ``rater``
        / ``item`` values add their conditional modes when ``include_random``, unknown ones (and
        all of them without ``include_random``) are integrated over their normal distribution.
        A ``dimension`` column picks the dimension, otherwise every row is predicted for every
        fitted dimension.

        Examples
        --------
        >>> fit = fit_mixed(_example_study(), "rating ~ gender", family="ordinal")
        >>> pred = fit.predict()
        >>> bool(np.allclose(pred.filter(like="p_").sum(axis=1), 1.0))
        True
        """
        out = []
        for f, frame, eta, var_left in self._linear_predictors(data, include_random):
            fit = f.fit
            if fit.random is not None:  # slopes: each row's own variance of the terms left
                var_left = _variance_left(f, frame, include_random)
            s = np.sqrt(np.maximum(var_left, 0.0))
            probs = np.einsum(
                "nqk,q->nk",
                category_probabilities(eta[:, None] + s[:, None] * _GH_X, fit.cutpoints, self.link),
                _GH_W,
            )
            frame["prediction"] = probs @ f.values
            for j, value in enumerate(f.values):
                frame[f"p_{value:g}"] = probs[:, j]
            out.append(frame)
        return pd.concat(out, ignore_index=True)

    def diagnostics(self) -> pd.DataFrame:
        """Convergence (scaled gradient, positive-definite Hessian), singular-fit and dropped-row checks.

        As :meth:`MixedResult.diagnostics`; the gradient is the exact gradient of the Laplace
        deviance and, for the default random intercepts, the singular-fit value is the
        random-intercept SD itself (with random slopes, as there: lme4's relative θ, here on
        the latent scale).
        """
        out = super().diagnostics()
        grad = out["check"] == "gradient"
        out.loc[grad, "parameter"] = "all"
        out.loc[grad, "note"] = [
            f"exact gradient of the Laplace deviance at the optimum "
            f"({self._fit(d).fit.n_evals} evaluations)"
            for d in out.loc[grad, "dimension"]
        ]
        intercepts = [d for d in self.dimensions if self._fit(d).fit.random is None]
        sing = (out["check"] == "singular_fit") & out["dimension"].isin(intercepts)
        out.loc[sing & out["ok"], "note"] = "random-intercept SD > 1e-4"
        out.loc[sing & ~out["ok"], "note"] = "SD at the boundary (≈0): variance not identified"
        return out

    def summary(self) -> pd.DataFrame:
        """Coefficients and cutpoints (Wald), variance components and fit statistics.

        Columns: ``dimension, kind, parameter, estimate, std_error, statistic, p_value``;
        ``kind`` is ``"fixed"``, ``"cutpoint"`` (named ``"1|2"`` … as ``clmm``), ``"variance"``
        (latent scale) or ``"fit"``.

        Examples
        --------
        >>> fit = fit_mixed(_example_study(), "rating ~ gender", family="ordinal")
        >>> fit.summary().query("kind == 'cutpoint'")["parameter"].tolist()
        ['1|2', '2|3', '3|4', '4|5']
        """
        rows = []
        for dim in self.dimensions:
            f = self._fit(dim)
            d, fit = f.design, f.fit
            for name, b, s in zip(d.columns[1:], fit.beta, fit.se, strict=True):
                rows.append((dim, "fixed", name, b, s, b / s, 2 * stats.norm.sf(abs(b / s))))
            for name, a, s in zip(f.cutpoint_names, fit.cutpoints, fit.cutpoint_se, strict=True):
                rows.append((dim, "cutpoint", name, a, s, a / s, np.nan))
            rows.extend(random_rows(dim, fit))
            rows.extend(fit_statistic_rows(dim, f))
        return pd.DataFrame(rows, columns=list(MIXED_SUMMARY_COLUMNS))


def _variance_left(f: OrdinalDimensionFit, frame: pd.DataFrame, include_random: bool):
    """Latent variance of each row's random terms not known from the fit (random slopes)."""
    d = f.design
    known = {}
    if include_random:
        for col, levels in (("rater", d.rater_levels), ("item", d.item_levels)):
            if col in frame.columns:
                pos = pd.Index(levels.astype(str)).get_indexer(frame[col].astype(str))
                known[col] = pos >= 0
    X = np.asarray(d.transform(frame))
    values = dict(zip(d.columns[1:], X[:, 1:].T, strict=True))
    return f.fit.random_variance(values, len(frame), known)


def _ordinal_codes(design: Design) -> tuple[np.ndarray, np.ndarray]:
    """Category codes of the ratings and the rating value of each category."""
    y = design.y
    if not np.allclose(y, np.round(y)):
        bad = sorted(set(y[~np.isclose(y, np.round(y))].tolist()))[:5]
        raise ValueError(
            f"{design.dimension}: family='ordinal' needs ordered categories (whole-number "
            f"ratings), found {bad}; use family='gaussian' for averaged or continuous ratings"
        )
    values = np.unique(y)
    if len(values) < 2:
        raise ValueError(f"{design.dimension}: every rating is {values[0]:g}; nothing to model")
    return np.searchsorted(values, y), values


def fit_ordinal_dimension(design: Design, link: str = "logit") -> OrdinalDimensionFit:
    """Fit the crossed cumulative-link mixed model to one dimension's design.

    :func:`fit_mixed` with ``family="ordinal"`` calls it for each dimension. Categories are the
    distinct observed ratings of the dimension, in order (a scale point nobody chose has no
    cutpoint, as in ``clmm``).

    Examples
    --------
    >>> design = build_design(_example_study(), "rating ~ gender", dimension="toxicity")
    >>> f = fit_ordinal_dimension(design)
    >>> f.cutpoint_names
    ['1|2', '2|3', '3|4', '4|5']
    """
    codes, values = _ordinal_codes(design)
    if design.has_random_terms:
        fit = fit_clmm_terms(
            design.X[:, 1:],
            codes,
            RandomStructure(design.random),
            n_categories=len(values),
            link=link,
        )
    else:
        fit = fit_clmm(
            design.X[:, 1:],
            codes,
            design.rater_codes,
            design.item_codes,
            n_categories=len(values),
            link=link,
        )
    return OrdinalDimensionFit(design, fit, values.astype(float))
