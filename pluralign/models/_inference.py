"""Inference on mixed-model fits: t tests with Satterthwaite df, likelihood-ratio tests, variance partition.

* :func:`contrast_test` and ``MixedResult.effects(df="satterthwaite")``: t tests of contrasts
  ``L'β`` of a linear mixed model with Satterthwaite's (or Kenward–Roger's) degrees of freedom,
  as ``lmerTest::contest`` (numerics in :mod:`pluralign.models._inference_kernels`).
* :func:`compare`: likelihood-ratio tests between nested mixed models, as R's ``anova(m0, m1)``
  on ``lmer``/``glmer`` fits (REML fits that differ in fixed effects are refitted by ML first).
* :func:`variance_partition`: rater, item and residual variance and their shares of the total
  (the intraclass correlations) with parametric-bootstrap intervals.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit

from pluralign._errors import ConvergenceWarning
from pluralign._settings import options
from pluralign.models._effects import interval
from pluralign.models._glmm import fit_glmm_logit
from pluralign.models._inference_kernels import KenwardRoger, Satterthwaite, simulate_lmm
from pluralign.models._lmm import fit_lmm, fit_lmm_terms
from pluralign.models._random import RandomStructure

if TYPE_CHECKING:
    from pluralign.models._mixed import MixedResult

#: Reference distributions of coefficient tests: ``None``/``"wald"`` (z), ``"satterthwaite"`` or
#: ``"kenward-roger"`` (t; Kenward–Roger also adjusts the standard error).
DF_METHODS = ("wald", "satterthwaite", "kenward-roger")
#: Label of each test in the ``test`` column of effects, summaries and contrast tests.
TEST_LABELS = {
    "wald": "Wald z",
    "satterthwaite": "t (Satterthwaite)",
    "kenward-roger": "t (Kenward-Roger)",
}

#: Columns of :func:`contrast_test`.
CONTRAST_TEST_COLUMNS = (
    "dimension",
    "contrast",  # label of the row of L
    "estimate",  # L'β
    "std_error",  # sqrt(L' Var(β̂) L) (Kenward-Roger: the adjusted Var(β̂))
    "df",  # Satterthwaite or Kenward-Roger degrees of freedom (NaN for the Wald z test)
    "statistic",  # t (or z) = estimate / std_error
    "p_value",  # two-sided
    "ci_low",
    "ci_high",
    "test",  # "t (Satterthwaite)", "t (Kenward-Roger)" or "Wald z"
)

#: Columns of :func:`compare`: one row per model and dimension, as R's ``anova(m0, m1)``.
LRT_COLUMNS = (
    "dimension",
    "model",  # formula (or the name given)
    "npar",  # number of parameters (fixed effects, variances, residual SD)
    "aic",
    "bic",
    "loglik",
    "deviance",  # -2 loglik
    "chisq",  # likelihood-ratio statistic against the previous (smaller) model
    "df",  # difference in npar
    "p_value",
    "criterion",  # "ML", "ML (refitted)", "REML" or "Laplace"
)

#: Columns of :func:`variance_partition`.
VARIANCE_PARTITION_COLUMNS = (
    "dimension",
    "component",  # "rater", "item", "residual"
    "variance",
    "ci_low",
    "ci_high",  # interval of the variance
    "share",  # variance / total: the intraclass correlation of the component
    "share_ci_low",
    "share_ci_high",
    "method",  # how the intervals were computed
)


def _df_method(df: str | None) -> str:
    method = "wald" if df is None else str(df).lower().replace("_", "-")
    if method not in DF_METHODS:
        raise ValueError(f"df must be None or one of {DF_METHODS}, got {df!r}")
    return method


def small_sample(result: MixedResult, dimension: str, method: str):
    """The Satterthwaite or Kenward–Roger system of one dimension of a linear mixed model."""
    if result.family != "gaussian":
        raise ValueError(
            f"t tests with df={method!r} need a linear mixed model (family='gaussian'); this "
            f"fit is {result.family!r}, whose coefficients are tested by Wald z (df=None)"
        )
    f = result.fits[dimension]
    d, fit = f.design, f.fit
    if method == "kenward-roger":
        if not fit.reml:
            raise ValueError(
                "Kenward-Roger's method is defined for REML fits; refit with reml=True or "
                "use df='satterthwaite'"
            )
        return KenwardRoger(
            d.X, d.rater_codes, d.item_codes, (fit.var1, fit.var2), fit.sigma2, fit.vcov
        )
    return Satterthwaite(
        d.X, d.y, d.rater_codes, d.item_codes, fit.theta, np.sqrt(fit.sigma2), fit.reml
    )


def coefficient_tests(
    result: MixedResult, dimension: str, df: str | None, ci_prob: float
) -> pd.DataFrame:
    """Test of every coefficient of one dimension: ``std_error, df, statistic, p_value, ci_low,
    ci_high, test`` (index: design columns)."""
    method = _df_method(df)
    fit = result.fits[dimension].fit
    columns = result.fits[dimension].design.columns
    L = np.eye(len(fit.beta))
    return _tests(result, dimension, L, method, ci_prob).set_index(pd.Index(columns))


def contrast_tests(
    result: MixedResult, dimension: str, L: np.ndarray, df: str | None, ci_prob: float
) -> pd.DataFrame:
    """Test of every row of a contrast matrix ``L`` of one dimension (z, or t with ``df=``)."""
    return _tests(result, dimension, np.atleast_2d(L), _df_method(df), ci_prob)


def _tests(result, dimension, L, method, ci_prob) -> pd.DataFrame:
    fit = result.fits[dimension].fit
    if method != "wald" and getattr(fit, "random", None) is not None:
        raise ValueError(
            f"df={method!r} is available for models with random intercepts of raters and items "
            "only; this fit has random slopes: use df=None (Wald z) or compare() for its terms"
        )
    est = L @ fit.beta
    if method != "wald":
        var, dfs = small_sample(result, dimension, method).contrasts(L)
        q = stats.t.ppf(0.5 + ci_prob / 2, dfs)
        se = np.sqrt(var)
        p = 2 * stats.t.sf(np.abs(est / se), dfs)
    else:
        se = np.sqrt(np.einsum("kp,pq,kq->k", L, fit.vcov, L))
        dfs = np.full(len(est), np.nan)
        q = stats.norm.ppf(0.5 + ci_prob / 2)
        p = 2 * stats.norm.sf(np.abs(est / se))
    return pd.DataFrame(
        {
            "estimate": est,
            "std_error": se,
            "df": dfs,
            "statistic": est / se,
            "p_value": p,
            "ci_low": est - q * se,
            "ci_high": est + q * se,
            "test": TEST_LABELS[method],
        }
    )


def _contrast_matrix(L, columns: list[str]) -> tuple[np.ndarray, list[str]]:
    if isinstance(L, Mapping):
        L = pd.DataFrame.from_dict({k: dict(v) for k, v in L.items()}, orient="index")
    if isinstance(L, pd.Series):
        L = L.to_frame().T
    if isinstance(L, pd.DataFrame):
        unknown = [c for c in L.columns if c not in columns]
        if unknown:
            raise KeyError(
                f"contrast names coefficients {unknown} that the model does not have; "
                f"its coefficients are {columns} (see result.terms)"
            )
        labels = [str(i) for i in L.index]
        return L.reindex(columns=columns).fillna(0.0).to_numpy(dtype=float), labels
    M = np.atleast_2d(np.asarray(L, dtype=float))
    if M.ndim != 2 or M.shape[1] != len(columns):
        raise ValueError(
            f"L must have one column per coefficient ({len(columns)}: {columns}); "
            f"got shape {np.shape(L)}"
        )
    return M, [f"contrast {i + 1}" for i in range(len(M))]


def contrast_test(
    result: MixedResult,
    L,
    *,
    dimension: str | Sequence[str] | None = None,
    df: str | None = "satterthwaite",
    ci_prob: float | None = None,
) -> pd.DataFrame:
    """Test linear combinations ``L'β`` of the fixed effects of a mixed model.

    Each row of ``L`` is one contrast with its own test (as ``lmerTest::contest(model, L,
    joint = FALSE)``): ``t = L'β̂ / sqrt(L'V̂L)`` on Satterthwaite's degrees of freedom

        df = 2 (L'CL)² / (g' A g),

    where ``C = Var(β̂)`` as a function of the variance parameters ``φ = (θ_rater, θ_item, σ)``,
    ``g = ∂(L'CL)/∂φ`` and ``A`` is the asymptotic covariance of ``φ̂`` (twice the inverse
    Hessian of the REML or ML deviance), computed numerically as lmerTest does.
    ``df="kenward-roger"`` (REML fits) uses Kenward and Roger's adjusted covariance of β̂ and
    their df, as ``pbkrtest`` (``lmerTest``'s ``ddf="Kenward-Roger"``); ``df=None`` gives the
    Wald z test.

    Parameters
    ----------
    result : MixedResult
        A linear mixed model (``fit_mixed(..., family="gaussian")``); binomial and ordinal
        fits accept only ``df=None``.
    L : array-like, DataFrame or mapping
        Contrasts: a ``k × p`` array over the coefficients (``result.design(dim).columns``);
        a DataFrame whose columns are coefficient names (others are 0) and whose index labels
        the contrasts; or a mapping ``{label: {coefficient: weight}}``.
    dimension : str or list of str, optional
        Dimensions to test (default: all).
    df : {"satterthwaite", "kenward-roger", None}, default "satterthwaite"
        Reference distribution: t with Satterthwaite or Kenward–Roger df, or the normal
        (Wald z). Kenward–Roger needs a REML fit and at most ``KR_MAX_LEVELS`` raters + items.
    ci_prob : float, optional
        Interval probability (default ``options.ci_prob``).

    Returns
    -------
    DataFrame
        CONTRAST_TEST_COLUMNS, one row per contrast and dimension.

    See Also
    --------
    MixedResult.effects : ``df="satterthwaite"`` gives the same test for every coefficient.
    compare : likelihood-ratio tests between nested models.

    References
    ----------
    Kuznetsova, A., Brockhoff, P. B. & Christensen, R. H. B. (2017). lmerTest package: tests in
    linear mixed effects models. Journal of Statistical Software, 82(13).
    doi:10.18637/jss.v082.i13

    Examples
    --------
    Is the he/him − they/them difference zero?

    >>> from pluralign.models import fit_mixed
    >>> from pluralign.models._mixed import _example_study
    >>> fit = fit_mixed(_example_study(), "rating ~ gender", reference={"gender": "she/her"})
    >>> L = {"he/him - they/them": {"gender[T.he/him]": 1, "gender[T.they/them]": -1}}
    >>> res = contrast_test(fit, L)
    >>> res[["contrast", "test"]].iloc[0].tolist()
    ['he/him - they/them', 't (Satterthwaite)']
    >>> bool(res["df"].iloc[0] > 1)
    True
    """
    method = _df_method(df)
    ci_prob = options.ci_prob if ci_prob is None else ci_prob
    dims = result._dims(dimension)
    out = []
    for dim in dims:
        M, labels = _contrast_matrix(L, list(result.design(dim).columns))
        table = _tests(result, dim, result._coefficient_weights(M), method, ci_prob)
        table.insert(0, "contrast", labels)
        table.insert(0, "dimension", dim)
        out.append(table)
    return pd.concat(out, ignore_index=True)[list(CONTRAST_TEST_COLUMNS)]


# --------------------------------------------------------------------------- likelihood ratio
def _npar(fit) -> int:
    """Number of parameters, from ``aic = -2 loglik + 2 k``."""
    return round((fit.aic + 2.0 * fit.loglik) / 2.0)


def _same_column_space(X0: np.ndarray, X1: np.ndarray) -> bool:
    return bool(X0.shape[1] == X1.shape[1] and _nested(X0, X1))


def _nested(X0: np.ndarray, X1: np.ndarray) -> bool:
    """Whether every column of X0 lies in the column space of X1."""
    coef, *_ = np.linalg.lstsq(X1, X0, rcond=None)
    resid = X0 - X1 @ coef
    return bool(np.all(np.abs(resid) <= 1e-8 * np.maximum(1.0, np.abs(X0).max())))


def compare(
    *models: MixedResult,
    dimension: str | Sequence[str] | None = None,
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Likelihood-ratio tests between nested mixed models, as R's ``anova(m0, m1, ...)``.

    Models are ordered by their number of parameters; each row after the first tests its model
    against the one before: ``chisq = 2 (loglik₁ − loglik₀)`` on ``df = npar₁ − npar₀``
    degrees of freedom. REML likelihoods are comparable only between models with the same
    fixed effects, so when REML fits differ in their fixed effects every model is refitted by
    maximum likelihood first (as ``anova`` does); the ``criterion`` column and
    ``attrs["note"]`` say so. Binomial and ordinal fits use their Laplace likelihood.

    Parameters
    ----------
    *models : MixedResult
        Two or more fits of the same family to the same ratings (same rows).
    dimension : str or list of str, optional
        Dimensions to compare (default: those fitted by every model).
    names : sequence of str, optional
        Model labels (default: the formulas).

    Returns
    -------
    DataFrame
        LRT_COLUMNS: ``dimension, model, npar, aic, bic, loglik, deviance, chisq, df,
        p_value, criterion``.

    Warns
    -----
    PluralignWarning
        If a model's fixed effects are not nested in the next larger model's (the test is then
        not a likelihood-ratio test; AIC and BIC remain comparable).
    ConvergenceWarning
        If an ML refit does not converge.

    See Also
    --------
    contrast_test : t tests of single contrasts.
    pluralign.models.compare_bayes : the Bayesian counterpart (LOO).

    Examples
    --------
    >>> from pluralign.models import fit_mixed
    >>> from pluralign.models._mixed import _example_study
    >>> study = _example_study()
    >>> m0 = fit_mixed(study, "rating ~ gender")
    >>> m1 = fit_mixed(study, "rating ~ gender + ideology")
    >>> table = compare(m0, m1)
    >>> table[["model", "df", "criterion"]].values.tolist()
    [['rating ~ gender', nan, 'ML (refitted)'], ['rating ~ gender + ideology', 2.0, 'ML (refitted)']]
    """
    from pluralign._errors import PluralignWarning

    if len(models) < 2:
        raise ValueError(f"compare needs at least two models, got {len(models)}")
    families = {m.family for m in models}
    if len(families) > 1:
        raise ValueError(f"models of different families cannot be compared: {sorted(families)}")
    family = families.pop()
    labels = [m.formula for m in models] if names is None else [str(n) for n in names]
    if len(labels) != len(models):
        raise ValueError(f"names has {len(labels)} entries for {len(models)} models")
    common = [d for d in models[0].dimensions if all(d in m.dimensions for m in models)]
    dims = common if dimension is None else models[0]._dims(dimension)
    missing = [d for d in dims if d not in common]
    if missing or not dims:
        raise KeyError(f"dimensions {missing or dims} are not fitted by every model: {common}")
    out = []
    notes = set()
    for dim in dims:
        fs = [m.fits[dim] for m in models]
        n = fs[0].design.n
        for lab, f in zip(labels, fs, strict=True):
            if f.design.n != n or not np.array_equal(f.design.y, fs[0].design.y):
                used = sorted({v for g in fs for v in g.design.variables})
                raise ValueError(
                    f"{dim}: model {lab!r} was fitted to {f.design.n} ratings and "
                    f"{labels[0]!r} to {n} (or to different ones): likelihoods of different "
                    "data cannot be compared. Fit every model to the raters known on all of "
                    f"{used}, e.g. study.filter_raters(lambda r: r[{used}].notna().all(axis=1))"
                )
        fits = [f.fit for f in fs]
        if family == "gaussian":
            remls = [ft.reml for ft in fits]
            same_fixed = all(_same_column_space(fs[0].design.X, f.design.X) for f in fs[1:])
            if any(remls) and not (all(remls) and same_fixed):
                refits = []
                for lab, f, ft in zip(labels, fs, fits, strict=True):
                    if ft.reml:
                        d = f.design
                        if d.has_random_terms:  # keep the model's random slopes
                            structure = RandomStructure(d.random)
                            ft = fit_lmm_terms(d.X, d.y, structure, reml=False)
                        else:
                            ft = fit_lmm(d.X, d.y, d.rater_codes, d.item_codes, reml=False)
                        if not ft.converged:
                            warnings.warn(
                                f"{dim}: ML refit of {lab!r}: {ft.message}",
                                ConvergenceWarning,
                                stacklevel=2,
                            )
                    refits.append(ft)
                crit = ["ML (refitted)" if r else "ML" for r in remls]
                fits = refits
                notes.add("REML fits with different fixed effects were refitted by ML")
            else:
                crit = ["REML" if r else "ML" for r in remls]
        else:
            crit = ["Laplace"] * len(fits)
        k = [_npar(ft) for ft in fits]
        order = np.argsort(k, kind="stable")
        for a, b in pairwise(order):
            if not _nested(fs[a].design.X, fs[b].design.X):
                warnings.warn(
                    f"{dim}: the fixed effects of {labels[a]!r} are not nested in those of "
                    f"{labels[b]!r}: the likelihood-ratio test does not apply (compare AIC/BIC)",
                    PluralignWarning,
                    stacklevel=2,
                )
        prev = None
        for i in order:
            ll = fits[i].loglik
            if prev is None:
                chisq = ddf = p = np.nan
            else:
                ddf = float(k[i] - k[prev])
                chisq = max(0.0, 2.0 * (ll - fits[prev].loglik))
                p = float(stats.chi2.sf(chisq, ddf)) if ddf > 0 else np.nan
            out.append(
                (
                    dim,
                    labels[i],
                    k[i],
                    -2.0 * ll + 2.0 * k[i],
                    -2.0 * ll + k[i] * np.log(n),
                    ll,
                    -2.0 * ll,
                    chisq,
                    ddf,
                    p,
                    crit[i],
                )
            )
            prev = i
    table = pd.DataFrame(out, columns=list(LRT_COLUMNS))
    table.attrs["note"] = "; ".join(sorted(notes))
    return table


# --------------------------------------------------------------------------- variance partition
def _components(result: MixedResult, fit) -> dict[str, float]:
    resid = np.pi**2 / 3 if result.family == "binomial" else fit.sigma2
    return {"rater": fit.var1, "item": fit.var2, "residual": float(resid)}


def variance_partition(
    result: MixedResult,
    *,
    dimension: str | Sequence[str] | None = None,
    n_boot: int | None = None,
    ci_prob: float | None = None,
    seed: int | None = None,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Variance of ratings by source (rater, item, residual), their shares and intervals.

    The share of a component is its variance over the total: the share of ``rater`` is the
    intraclass correlation of two ratings by the same rater of different items, that of ``item``
    of two raters' ratings of the same item. For the binomial family the residual is the
    logistic latent variance π²/3 (latent-scale shares). Intervals are percentile intervals of a
    parametric bootstrap: ``n_boot`` response vectors are simulated from the fitted model
    (fixed effects and variances at their estimates) and refitted the same way (REML or ML,
    or Laplace); variance components and shares are recomputed on each refit.

    Parameters
    ----------
    result : MixedResult
        A gaussian or binomial fit of :func:`fit_mixed`.
    dimension : str or list of str, optional
        Dimensions (default: all).
    n_boot : int, optional
        Bootstrap refits per dimension (default ``options.n_boot``). Each costs about one fit.
    ci_prob : float, optional
        Interval probability (default ``options.ci_prob``).
    seed : int, optional
        Seed of the simulations (default ``options.seed``).
    progress : bool, optional
        Show a progress bar (default ``options.progress``).

    Returns
    -------
    DataFrame
        VARIANCE_PARTITION_COLUMNS; ``attrs["n_failed"]`` counts refits per dimension that did
        not converge (kept: their estimates are still at a local optimum of the criterion),
        ``attrs["n_errors"]`` those that had no estimate (e.g. a simulated binary level without
        a 1; left out of the intervals).

    Warns
    -----
    ConvergenceWarning
        If some bootstrap refits did not converge or had no estimate.

    See Also
    --------
    MixedResult.summary : the point estimates of the variance components.

    References
    ----------
    Davison, A. C. & Hinkley, D. V. (1997). Bootstrap Methods and their Application, ch. 2.
    Cambridge University Press.

    Examples
    --------
    >>> from pluralign.models import fit_mixed
    >>> from pluralign.models._mixed import _example_study
    >>> fit = fit_mixed(_example_study(), "rating ~ gender")
    >>> vp = variance_partition(fit, n_boot=20, seed=1, progress=False)
    >>> vp["component"].tolist()
    ['rater', 'item', 'residual']
    >>> round(float(vp["share"].sum()), 6)
    1.0
    """
    from tqdm.auto import tqdm

    if result.family not in ("gaussian", "binomial"):
        raise ValueError(
            f"variance_partition supports the gaussian and binomial families, not {result.family!r}"
        )
    n_boot = options.n_boot if n_boot is None else int(n_boot)
    if n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot}")
    ci_prob = options.ci_prob if ci_prob is None else ci_prob
    seed = options.seed if seed is None else int(seed)
    progress = options.progress if progress is None else progress
    method = f"parametric bootstrap ({n_boot} refits, percentile)"
    rows = []
    failed, errors = {}, {}
    for k, dim in enumerate(result._dims(dimension)):
        f = result._fit(dim)
        d, fit = f.design, f.fit
        point = _components(result, fit)
        rng = np.random.default_rng([seed, k])
        boot = np.empty((n_boot, 3))
        n_failed = n_error = 0
        if result.family == "gaussian":
            sds = (np.sqrt(fit.var1), np.sqrt(fit.var2), np.sqrt(fit.sigma2))
        else:
            sds = (np.sqrt(fit.var1), np.sqrt(fit.var2), 0.0)
        for b in tqdm(range(n_boot), desc=f"variance_partition {dim}", disable=not progress):
            eta = simulate_lmm(d.X, fit.beta, sds, d.rater_codes, d.item_codes, rng)
            try:
                if result.family == "gaussian":
                    refit = fit_lmm(d.X, eta, d.rater_codes, d.item_codes, reml=fit.reml)
                else:
                    y = (rng.random(len(eta)) < expit(eta)).astype(float)
                    refit = fit_glmm_logit(d.X, y, d.rater_codes, d.item_codes)
            except (np.linalg.LinAlgError, ValueError):
                # e.g. a simulated binary level with no 1s: no estimate exists
                boot[b] = np.nan
                n_error += 1
                continue
            n_failed += not refit.converged
            boot[b] = list(_components(result, refit).values())
        ok = np.isfinite(boot).all(axis=1)
        if not ok.any():
            raise ValueError(f"{dim}: every bootstrap refit failed; no interval can be computed")
        shares = boot[ok] / boot[ok].sum(axis=1, keepdims=True)
        lo, hi = interval(boot[ok], ci_prob)
        slo, shi = interval(shares, ci_prob)
        total = sum(point.values())
        for j, (name, var) in enumerate(point.items()):
            fixed = result.family == "binomial" and name == "residual"
            rows.append(
                (
                    dim,
                    name,
                    var,
                    var if fixed else lo[j],
                    var if fixed else hi[j],
                    var / total,
                    slo[j],
                    shi[j],
                    "fixed (logistic latent variance)" if fixed else method,
                )
            )
        failed[dim] = n_failed
        errors[dim] = n_error
        if n_failed or n_error:
            warnings.warn(
                f"{dim}: of {n_boot} bootstrap refits, {n_failed} did not converge (kept in the "
                f"intervals) and {n_error} had no estimate (left out)",
                ConvergenceWarning,
                stacklevel=2,
            )
    table = pd.DataFrame(rows, columns=list(VARIANCE_PARTITION_COLUMNS))
    table.attrs["n_failed"] = failed
    table.attrs["n_errors"] = errors
    table.attrs["ci_prob"] = ci_prob
    return table
