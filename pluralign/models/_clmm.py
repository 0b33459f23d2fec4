"""Ordinal mixed models (cumulative logit or probit, Laplace as ``ordinal::clmm``): ``OrdinalMixedResult``.

``fit_mixed(study, formula, family="ordinal")`` lands here. The numeric work is in
:mod:`pluralign.models._clmm_kernels`; this module codes each dimension (categories are the
distinct observed rating values, in order), fits it, and summarises the fits through the shared
:class:`~pluralign.models.ModelResult` protocol by extending :class:`MixedResult`.

Two scales
----------
* **Latent scale** (``effects()["estimate"]``, ``summary()``): the coefficient β of the
  cumulative link, ``P(rating ≤ k) = F(α_k − η)``: a log cumulative odds ratio for the logit
  link (positive = higher ratings), with a Wald interval and z test from the Laplace Hessian.
* **Rating scale** (marginal means, differences, post-stratification, ``predict``): the
  *population-averaged* expected rating ``Σ_k value_k P(rating = k)``, the category
  probabilities integrated over the rater and item random effects ``N(0, σ²_rater + σ²_item)``
  by Gauss–Hermite quadrature, i.e. the mean rating of a new rater of the cell on a new item.
  This is the quantity the simulator calibrates (``SimulationTruth.fixed_effects``) and the
  one the Bayesian ordinal model reports; the conditional expectation at zero random effects is
  not used (it differs from the population average under a non-linear link).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
import pandas as pd
from scipy import stats

from pluralign._errors import ConvergenceWarning
from pluralign._settings import options
from pluralign.models._clmm_kernels import (
    LATENT_VARIANCE,
    LINKS,
    CLMMFit,
    category_probabilities,
    expected_rating,
    fit_clmm,
    fit_clmm_terms,
)
from pluralign.models._design import Design, build_design
from pluralign.models._effects import contrast_columns, finish_effects
from pluralign.models._mixed import (  # noqa: F401  (fit_mixed, _example_study: examples)
    _GH_W,
    _GH_X,
    DimensionFit,
    MixedResult,
    _example_study,
    _slope_part,
    fit_mixed,
)
from pluralign.models._protocol import EFFECT_SCALES
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

    Implements :class:`~pluralign.models.ModelResult` as :class:`MixedResult` does; coefficient
    simulations draw ``(β, α)`` jointly from their Laplace covariance (variance components at
    their estimates). ``family`` is ``"ordinal"``; ``link`` is ``"logit"`` or ``"probit"``.
    Rating-scale quantities are population-averaged (see the module docstring).

    See Also
    --------
    fit_mixed : fits it with ``family="ordinal"``.
    MixedResult : the linear and logistic mixed models.

    Examples
    --------
    >>> fit = fit_mixed(_example_study(), "rating ~ gender", family="ordinal")
    >>> isinstance(fit, OrdinalMixedResult), fit.link
    (True, 'logit')
    """

    link: str = "logit"

    def __repr__(self) -> str:
        dims = ", ".join(self.dimensions)
        return f"<OrdinalMixedResult {self.link} {self.formula!r}: {dims}>"

    def standardiser(self, dimension: str) -> float:
        """Latent SD of one rating: ``sqrt(σ²_rater + σ²_item + v)``, v = π²/3 (logit) or 1 (probit)."""
        f = self._fit(dimension)
        return float(np.sqrt(f.var_rater + f.var_item + LATENT_VARIANCE[self.link]))

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

    # ---------------------------------------------------------------- protocol
    def effects(
        self,
        *,
        multiplicity: str | Sequence[str] | None = None,
        correction: str = "holm",
        ci_prob: float | None = None,
        scale: str = "rating",
    ) -> pd.DataFrame:
        """One row per contrast (non-reference level of each term) with EFFECT_COLUMNS.

        * ``estimate``: the latent coefficient β (log cumulative odds ratio for the logit link,
          probit units for the probit link; positive = higher ratings), Wald interval
          ``β̂ ± z·SE`` and two-sided z test.
        * ``mean_level``, ``mean_reference``, ``difference``, ``relative_pct``: population-
          averaged expected ratings (random effects integrated) with the term set to the level
          / reference in every fitted row; intervals from ``n_draws`` simulations of ``(β, α)``.
        * ``cohens_d = estimate / sqrt(σ²_rater + σ²_item + π²/3)`` (logit; ``+ 1`` for probit):
          latent-scale standardised effect.
        * ``odds_ratio = exp(estimate)`` with its interval (logit link only; NaN for probit).
        * ``p_adjusted``: ``correction`` over the terms named in ``multiplicity`` (default
          every row).
        * ``scale="link"`` returns the latent-scale columns only (no simulation); the
          rating-scale columns are NaN.

        Examples
        --------
        >>> fit = fit_mixed(_example_study(), "rating ~ gender", family="ordinal",
        ...                 reference={"gender": "she/her"})
        >>> eff = fit.effects()
        >>> eff[["term", "level", "reference"]].iloc[0].tolist()
        ['gender', 'he/him', 'she/her']
        >>> bool((eff["odds_ratio"] > 0).all())
        True
        """
        if scale not in EFFECT_SCALES:
            raise ValueError(f"scale must be one of {EFFECT_SCALES}, got {scale!r}")
        ci_prob = options.ci_prob if ci_prob is None else ci_prob
        z = stats.norm.ppf(0.5 + ci_prob / 2)
        rows = []
        standardisers = {}
        for dim in self.dimensions:
            f = self._fit(dim)
            d, fit = f.design, f.fit
            se = fit.se
            sd = self.standardiser(dim)
            standardisers[dim] = sd
            for term, entries in d.terms.items():
                idx = [i - 1 for _, i in entries]  # X without its intercept
                est, s = fit.beta[idx], se[idx]
                table = pd.DataFrame(
                    {
                        "dimension": dim,
                        "term": term,
                        "level": [lv for lv, _ in entries],
                        "reference": d.references.get(
                            term, ":".join(d.references.get(v, "") for v in term.split(":"))
                        ),
                        "estimate": est,
                        "ci_low": est - z * s,
                        "ci_high": est + z * s,
                        "p_value": 2 * stats.norm.sf(np.abs(est / s)),
                        "p_direction": np.nan,
                        "std_error": s,
                        "statistic": est / s,
                    }
                )
                if term in d.levels and scale == "rating":
                    levels = [lv for lv, _ in entries]
                    cells = pd.DataFrame({term: [d.references[term], *levels]})
                    X, W = self._cells_design(cells, dim)
                    point = self._expected(fit.beta[None, :], X, W, dim)[0]
                    draws = self._expected(self.beta_draws(dim), X, W, dim)
                    k = len(levels)
                    cols = contrast_columns(
                        draws[:, 1:],
                        np.repeat(draws[:, :1], k, axis=1),
                        ci_prob=ci_prob,
                        level_point=point[1:],
                        reference_point=np.repeat(point[:1], k),
                    )
                    table = pd.concat([table, cols], axis=1)
                table["cohens_d"] = est / sd
                if self.link == "logit":
                    table["odds_ratio"] = np.exp(est)
                    table["odds_ratio_ci_low"] = np.exp(est - z * s)
                    table["odds_ratio_ci_high"] = np.exp(est + z * s)
                rows.append(table)
        table = (
            pd.concat(rows, ignore_index=True)
            if rows
            else pd.DataFrame(columns=["dimension", "term", "p_value"])
        )
        out = finish_effects(table, multiplicity=multiplicity, correction=correction)
        out.attrs["standardiser"] = standardisers
        out.attrs["standardiser_definition"] = (
            "sqrt(var_rater + var_item + pi^2/3) on the logit scale"
            if self.link == "logit"
            else "sqrt(var_rater + var_item + 1) on the probit scale"
        )
        out.attrs["ci_prob"] = ci_prob
        return out

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
        for dim in self.dimensions:
            f = self._fit(dim)
            d, fit = f.design, f.fit
            if data is None:
                frame = d.data.copy()
                X = d.X
            else:
                frame = data if "dimension" not in data.columns else data[data["dimension"] == dim]
                if frame.empty:
                    continue
                frame = frame.copy()
                frame["dimension"] = dim
                X = d.transform(frame)
            eta = X[:, 1:] @ fit.beta
            known = {}
            if include_random:
                for col, levels, b in (
                    ("rater", d.rater_levels, fit.b1),
                    ("item", d.item_levels, fit.b2),
                ):
                    if col not in frame.columns:
                        continue
                    pos = pd.Index(levels.astype(str)).get_indexer(frame[col].astype(str))
                    known[col] = pos >= 0
                    eta = eta + np.where(known[col], b[np.maximum(pos, 0)], 0.0)
                eta = eta + _slope_part(d, fit, frame, data is None)
            values = dict(zip(d.columns[1:], np.asarray(X)[:, 1:].T, strict=True))
            var_left = fit.random_variance(values, len(frame), known)
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
        if not out:
            raise ValueError(f"no row of data has a fitted dimension {self.dimensions}")
        return pd.concat(out, ignore_index=True)

    def diagnostics(self) -> pd.DataFrame:
        """Convergence (scaled gradient, positive-definite Hessian), singular-fit and dropped-row checks.

        As :meth:`MixedResult.diagnostics`; the gradient is the exact gradient of the Laplace
        deviance and the singular-fit value is the random-intercept SD itself.
        """
        out = super().diagnostics()
        grad = out["check"] == "gradient"
        out.loc[grad, "parameter"] = "all"
        out.loc[grad, "note"] = [
            f"exact gradient of the Laplace deviance at the optimum "
            f"({self._fit(d).fit.n_evals} evaluations)"
            for d in out.loc[grad, "dimension"]
        ]
        sing = out["check"] == "singular_fit"
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
            rows.append((dim, "variance", "rater", f.var_rater, np.nan, np.nan, np.nan))
            rows.append((dim, "variance", "item", f.var_item, np.nan, np.nan, np.nan))
            for name, val in (
                ("logLik", fit.loglik),
                ("deviance", fit.deviance),
                ("AIC", fit.aic),
                ("BIC", fit.bic),
                ("n_ratings", fit.n),
                ("n_raters", d.n_raters),
                ("n_items", d.n_items),
            ):
                rows.append((dim, "fit", name, float(val), np.nan, np.nan, np.nan))
        return pd.DataFrame(
            rows,
            columns=[
                "dimension",
                "kind",
                "parameter",
                "estimate",
                "std_error",
                "statistic",
                "p_value",
            ],
        )


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


def fit_ordinal_mixed(
    study,
    formula: str,
    dimensions: Sequence[str],
    *,
    link: str = "logit",
    reference: Mapping[str, str] | None = None,
    coding: str = "collapsed",
    scale_numeric: str | Mapping[str, str] = "none",
    n_draws: int = 4000,
    seed: int | None = None,
    progressbar: bool = True,
) -> OrdinalMixedResult:
    """Fit the crossed cumulative-link mixed model to each dimension (see :func:`fit_mixed`).

    Categories are the distinct observed ratings of the dimension, in order (a scale point
    nobody chose has no cutpoint, as in ``clmm``).

    Examples
    --------
    >>> fit = fit_ordinal_mixed(_example_study(), "rating ~ gender", ["toxicity"])
    >>> fit.family, fit.link
    ('ordinal', 'logit')
    """
    from pluralign._compat import tqdm

    if link not in LINKS:
        raise ValueError(f"link must be one of {sorted(LINKS)} for family='ordinal', got {link!r}")
    dims = list(dimensions)
    fits: dict[str, DimensionFit] = {}
    for dim in tqdm(dims, desc="fit_mixed", disable=not progressbar or len(dims) < 2):
        design = build_design(
            study,
            formula,
            dimension=dim,
            reference=reference,
            coding=coding,
            scale_numeric=scale_numeric,
            allow_random=True,
        )
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
        if not fit.converged:
            warnings.warn(f"{dim}: {fit.message}", ConvergenceWarning, stacklevel=3)
        for term, sing in fit.singular_terms():
            if sing:
                what = (
                    f"the {term.strip('()').split('|')[-1].strip()} variance is estimated as 0"
                    if term.startswith("(1 |")
                    else "a variance is estimated as 0 or a correlation as ±1"
                )
                warnings.warn(
                    f"{dim}: singular fit of {term}: {what}",
                    ConvergenceWarning,
                    stacklevel=3,
                )
        fits[dim] = OrdinalDimensionFit(design, fit, values.astype(float))
    first = fits[dims[0]].design
    return OrdinalMixedResult(
        dimensions=dims,
        formula=first.formula,
        family="ordinal",
        reml=False,
        fits=fits,
        n_draws=int(n_draws),
        seed=options.seed if seed is None else int(seed),
        references=dict(first.references),
        link=link,
    )
