"""Numeric kernel: linear mixed models with two crossed random intercepts (lme4's algorithm).

The model is ``y = X β + Z₁ b₁ + Z₂ b₂ + ε`` with ``b_k ~ N(0, σ² θ_k² I)`` and
``ε ~ N(0, σ² I)``. Following Bates, Mächler, Bolker & Walker (2015), the REML or ML deviance is
profiled over β and σ² and minimised over the relative standard deviations ``θ ≥ 0``; each
evaluation solves the penalised least-squares system with ``A = Λ'Z'WZΛ + I``.

The algebra of ``A`` (log-determinant, solves, quadratic forms) is
:class:`~pluralign.models._sparse.CrossedSystem`: the larger diagonal block is eliminated
analytically and the Schur complement of the smaller one is factored densely, sparsely (block
designs) or handled iteratively (tens of thousands of levels), picked by size. Why not CHOLMOD:
scikit-sparse has no wheel on PyPI (it builds only against a system SuiteSparse), and for
randomly crossed designs a fill-reducing ordering leaves 50–90% of a dense factor anyway.

Everything here works on NumPy arrays and integer codes; pandas lives one layer up.

References
----------
Bates, D., Mächler, M., Bolker, B. & Walker, S. (2015). Fitting linear mixed-effects models
using lme4. Journal of Statistical Software, 67(1), 1–48. doi:10.18637/jss.v067.i01
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.optimize as sopt

from pluralign.models._random import DENSE_MAX as _DENSE_MAX
from pluralign.models._random import (
    GRADIENT_MAX_Q,
    DensePLS,
    RandomStructure,
    better_start_off_zero,
    factor_pls,
    gradient_hessian,
    minimise_with_gradient,
    profiled_gradient,
    profiled_value_and_gradient,
)
from pluralign.models._sparse import CrossedSystem, Method

#: A relative standard deviation below this is a singular fit (lme4's ``isSingular`` default).
SINGULAR_TOL = 1e-4
#: Largest acceptable Hessian-scaled gradient at the optimum (lme4's ``check.conv.grad`` uses 2e-3).
GRADIENT_TOL = 2e-3
#: Approximate fits (``fit_lmm(approximate=True)``): the optimiser's relative tolerance on the
#: deviance (exact fits: 1e-12), and the smallest Schur complement factored iteratively (below
#: it the exact factor is the faster one).
APPROXIMATE_FTOL = 1e-9
APPROXIMATE_ITERATIVE_MIN = 500


@dataclass(frozen=True, kw_only=True)
class FitStatus:
    """What every mixed-model fit reports besides its estimates: criterion, information
    criteria, convergence and size. The fits (:class:`LMMFit`, and any other model's fit
    class) extend it, so that summaries and diagnostics read one set of names."""

    deviance: float  # REML criterion or (Laplace) deviance at the optimum
    loglik: float
    aic: float
    bic: float
    converged: bool
    message: str
    singular: tuple[bool, ...]  # per random term: at the boundary (lme4's isSingular)
    gradient: np.ndarray
    n_evals: int
    n: int
    p: int


@dataclass(frozen=True, kw_only=True)
class CrossedFit(FitStatus):
    """Estimates every crossed mixed-model fit shares: coefficients, random-effect parameters
    and modes, read the same way by the linear (:class:`LMMFit`, also the logistic model's)
    and cumulative-link fits."""

    beta: np.ndarray
    vcov: np.ndarray
    sigma2: float  # residual variance (1 on a latent scale)
    theta: np.ndarray  # relative SDs (factor 1, factor 2), or lme4's θ with general terms
    b1: np.ndarray  # conditional modes of factor 1 (rating units)
    b2: np.ndarray
    reml: bool
    #: General random terms (slopes): their structure and modes; None for the two intercepts.
    random: TermsFit | None = None

    @property
    def var1(self) -> float:
        """Rater intercept variance (0 when the model has no rater intercept)."""
        if self.random is not None:
            return self.random.intercept_variance("rater", self.theta, self.sigma2)
        return float(self.sigma2 * self.theta[0] ** 2)

    @property
    def var2(self) -> float:
        """Item intercept variance (0 when the model has no item intercept)."""
        if self.random is not None:
            return self.random.intercept_variance("item", self.theta, self.sigma2)
        return float(self.sigma2 * self.theta[1] ** 2)

    def components(self) -> list[tuple[str, str, str, float]]:
        """Variance components ``(term, kind, parameter, value)``: SDs and correlations per
        random term, in lme4's ``VarCorr`` order (the residual SD is not included)."""
        if self.random is not None:
            return self.random.structure.components(self.theta, self.sigma2)
        return [
            ("(1 | rater)", "sd", "Intercept", float(np.sqrt(self.var1))),
            ("(1 | item)", "sd", "Intercept", float(np.sqrt(self.var2))),
        ]

    def singular_terms(self) -> list[tuple[str, bool]]:
        """``(term, singular)`` per random term (lme4's ``isSingular`` criterion per term)."""
        if self.random is not None:
            labels = [t.label for t in self.random.structure.terms]
            return list(zip(labels, self.singular, strict=True))
        return [("(1 | rater)", self.singular[0]), ("(1 | item)", self.singular[1])]

    def random_variance(
        self,
        values: Mapping[str, np.ndarray],
        n: int,
        known: Mapping[str, np.ndarray] | None = None,
    ) -> np.ndarray:
        """Variance of the random part of ``n`` rows, ``Σ_terms z' Σ_term z`` (on the latent
        scale for the cumulative-link and logistic models).

        ``values`` maps a term column name (``"gender[T.he/him]"``) to its value in each row
        (the intercept is 1). ``known`` maps a grouping factor (``"rater"``/``"item"``) to a
        flag per row: the terms of a fitted level contribute their modes, not a variance.
        For the two intercepts it is ``σ²_rater + σ²_item`` less the known ones.
        """
        known = dict(known or {})
        out = np.zeros(n)
        if self.random is None:
            for group, var in (("rater", self.var1), ("item", self.var2)):
                out += np.where(known.get(group, np.zeros(n, dtype=bool)), 0.0, var)
            return out
        re = self.random.structure
        for k, t in enumerate(re.terms):
            missing = [c for c in t.columns if c != "Intercept" and c not in values]
            if missing:
                raise ValueError(
                    f"the slope column(s) {missing} of {t.label} are not columns of the "
                    "fixed-effect design; add the variable to the fixed part of the formula"
                )
            z = np.column_stack([np.ones(n) if c == "Intercept" else values[c] for c in t.columns])
            S = re.covariance(self.theta, self.sigma2, k)
            var = np.einsum("ni,ij,nj->n", z, S, z)
            out += np.where(known.get(t.group, np.zeros(n, dtype=bool)), 0.0, var)
        return out

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.diag(self.vcov))


@dataclass(frozen=True, kw_only=True)
class LMMFit(CrossedFit):
    """Estimates of one crossed linear mixed model (see :func:`fit_lmm`)."""

    method: str = "dense"  # how A's Schur complement was factored (CrossedSystem.method)


@dataclass(frozen=True)
class TermsFit:
    """Estimates specific to general random terms (see :func:`fit_lmm_terms`)."""

    structure: RandomStructure
    b: np.ndarray  # all random effects (Q,), on the response (linear predictor) scale

    def modes(self, index: int) -> np.ndarray:
        """Conditional modes of term ``index``: ``n_levels × q``."""
        return self.structure.modes(self.b, index)

    def intercept_variance(self, group: str, theta, sigma2: float) -> float:
        """Variance of the intercept of the first term of ``group`` that has one (else 0)."""
        for k, t in enumerate(self.structure.terms):
            if t.group == group and "Intercept" in t.columns:
                j = t.columns.index("Intercept")
                return float(self.structure.covariance(theta, sigma2, k)[j, j])
        return 0.0

    def intercept_modes(self, group: str, n_levels: int) -> np.ndarray:
        """Intercept modes of ``group`` in its level order (zeros when it has no intercept)."""
        for k, t in enumerate(self.structure.terms):
            if t.group == group and "Intercept" in t.columns:
                return self.modes(k)[:, t.columns.index("Intercept")].copy()
        return np.zeros(n_levels)


def profiled_deviance(
    logdet: float, LX: np.ndarray, r2: float, n: int, p: int, reml: bool
) -> float:
    """lme4's profiled deviance (ML) or REML criterion from the penalised least-squares pieces.

    ``logdet = log|Λ'Z'ZΛ + I|``, ``LX`` the Cholesky factor of the fixed-effect block (its
    log-determinant enters REML only), ``r2`` the penalised residual sum of squares (Bates et
    al. 2015, eqs. 34 and 41); ``inf`` when ``r2 ≤ 0``.
    """
    if r2 <= 0:
        return np.inf
    if reml:
        nmp = n - p
        return (
            logdet
            + 2.0 * np.sum(np.log(np.diag(LX)))
            + nmp * (1.0 + np.log(2.0 * np.pi * r2 / nmp))
        )
    return logdet + n * (1.0 + np.log(2.0 * np.pi * r2 / n))


class _Profile:
    """Profiled deviance of θ for fixed data (cached sufficient statistics)."""

    def __init__(self, X, y, g1, g2, reml, method="auto"):
        self.X = np.asarray(X, dtype=float)
        self.y = np.asarray(y, dtype=float)
        self.n, self.p = self.X.shape
        self.reml = reml
        self.sys = CrossedSystem(g1, g2, method=method)
        M = np.column_stack([self.X, self.y])
        self.MtM = M.T @ M
        self.ZtM = self.sys.zt(M)  # (big, small)
        self.n_evals = 0

    def _pieces(self, theta):
        f = self.sys.factor(theta)
        tb, ts = f.tb, f.ts
        G = self.MtM - f.quad(tb * self.ZtM[0], ts * self.ZtM[1])
        p = self.p
        RtR = G[:p, :p]
        LX = sla.cholesky(RtR, lower=True, check_finite=False)
        beta = sla.cho_solve((LX, True), G[:p, p], check_finite=False)
        r2 = float(G[p, p] - G[:p, p] @ beta)
        return f, LX, beta, r2

    def deviance(self, theta) -> float:
        self.n_evals += 1
        try:
            f, LX, _, r2 = self._pieces(np.asarray(theta, dtype=float))
        except (np.linalg.LinAlgError, ValueError):
            return np.inf
        return profiled_deviance(f.logdet, LX, r2, self.n, self.p, self.reml)


def _stencil(fun, x, f0, h=1e-4, lower=None):
    """Gradient and Hessian of ``fun`` at ``x`` by central differences on a 3^k stencil.

    Steps are one-sided (forward, second order) for coordinates near their lower bound
    (``lower``, default 0 for every coordinate; ``-inf`` for unbounded ones).
    """
    k = len(x)
    steps = h * np.maximum(1.0, np.abs(x))
    lower = np.zeros(k) if lower is None else np.asarray(lower, dtype=float)
    forward = (x - steps) < lower
    cache: dict[tuple[int, ...], float] = {(0,) * k: f0}

    def f(offsets):
        key = tuple(offsets)
        if key not in cache:
            cache[key] = fun(x + np.asarray(offsets, dtype=float) * steps)
        return cache[key]

    def unit(i, a, j=None, b=0):
        e = [0] * k
        e[i] = a
        if j is not None:
            e[j] = b
        return e

    g = np.zeros(k)
    H = np.zeros((k, k))
    for i in range(k):
        if forward[i]:
            f1, f2 = f(unit(i, 1)), f(unit(i, 2))
            g[i] = (-3 * f0 + 4 * f1 - f2) / (2 * steps[i])
            H[i, i] = (f0 - 2 * f1 + f2) / steps[i] ** 2
        else:
            fp, fm = f(unit(i, 1)), f(unit(i, -1))
            g[i] = (fp - fm) / (2 * steps[i])
            H[i, i] = (fp - 2 * f0 + fm) / steps[i] ** 2
    for i in range(k):
        for j in range(i + 1, k):
            if forward[i] or forward[j]:
                continue
            v = [f(unit(i, a, j, b)) for a, b in ((1, 1), (1, -1), (-1, 1), (-1, -1))]
            H[i, j] = H[j, i] = (v[0] - v[1] - v[2] + v[3]) / (4 * steps[i] * steps[j])
    return g, H


def scaled_gradient(grad, H, free):
    """lme4's convergence check: the gradient scaled by the Hessian, ``H⁻¹ g`` (free parameters)."""
    if not np.any(free):
        return np.zeros(0)
    try:
        return np.linalg.solve(H[np.ix_(free, free)], grad[free])
    except np.linalg.LinAlgError:
        return grad[free]


def gradient_check(grad, H, free) -> tuple[np.ndarray, bool]:
    """lme4's convergence test: ``(scaled gradient, ok)``.

    The free parameters need a Hessian-scaled gradient (:func:`scaled_gradient`) below
    :data:`GRADIENT_TOL`; those at a bound (not ``free``) a gradient that does not point
    outwards, ``g > −GRADIENT_TOL``.
    """
    scaled = scaled_gradient(grad, H, free)
    ok = bool(np.all(np.abs(scaled) < GRADIENT_TOL)) and bool(
        np.all(np.asarray(grad)[~free] > -GRADIENT_TOL)
    )
    return scaled, ok


def minimise_theta(fun, start, bounds, ftol=1e-12) -> tuple[np.ndarray, bool, str, int]:
    """Bounded quasi-Newton with a Nelder–Mead fallback; returns (θ, converged, message, nfev)."""
    res = sopt.minimize(
        fun,
        start,
        method="L-BFGS-B",
        bounds=bounds,
        options={"ftol": ftol, "gtol": 1e-6, "eps": 1e-6, "maxiter": 500},
    )
    nfev = res.nfev
    ok = bool(res.success) and np.all(np.isfinite(res.x))
    msg = f"L-BFGS-B: {res.message}"
    if not ok:
        res2 = sopt.minimize(
            fun,
            res.x if np.all(np.isfinite(res.x)) else start,
            method="Nelder-Mead",
            bounds=bounds,
            options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 2000},
        )
        nfev += res2.nfev
        if res2.fun <= res.fun:
            res = res2
        ok = bool(res2.success)
        msg += f"; Nelder-Mead: {res2.message}"
    return np.asarray(res.x, dtype=float), ok, msg, nfev


def fit_lmm(
    X: np.ndarray,
    y: np.ndarray,
    g1: np.ndarray,
    g2: np.ndarray,
    *,
    reml: bool = True,
    start: np.ndarray | None = None,
    method: Method = "auto",
    approximate: bool = False,
) -> LMMFit:
    """Fit ``y ~ X + (1|g1) + (1|g2)`` by (RE)ML, as ``lme4::lmer``.

    Parameters
    ----------
    X : ndarray (n, p)
        Full-rank fixed-effect design.
    y : ndarray (n,)
    g1, g2 : ndarray of int
        Codes of the crossed factors.
    reml : bool
        REML (default) or maximum likelihood.
    start : ndarray, optional
        Starting relative SDs (default ``(1, 1)`` as lme4).
    method : {"auto", "exact", "dense", "blocks", "sparse", "iterative"}
        How ``A``'s Schur complement is factored (:class:`~pluralign.models._sparse.CrossedSystem`);
        "auto" picks by size, "exact" never uses the stochastic log-determinant.
    approximate : bool, default False
        A cheaper, approximate fit for screening many studies: the iterative factor when the
        Schur complement has over :data:`APPROXIMATE_ITERATIVE_MIN` levels, the optimiser's
        tolerance :data:`APPROXIMATE_FTOL`, and no finite-difference convergence check
        (``converged`` is the optimiser's own verdict, ``gradient`` is NaN). Wald statistics
        are within about 10⁻³ of the exact fit's at paper scale.

    Returns
    -------
    LMMFit
    """
    if approximate and min(np.max(g1), np.max(g2)) + 1 > APPROXIMATE_ITERATIVE_MIN:
        method = "iterative"
    prof = _Profile(X, y, g1, g2, reml, method)
    theta0 = np.ones(2) if start is None else np.asarray(start, dtype=float)
    bounds = [(0.0, None), (0.0, None)]
    ftol = APPROXIMATE_FTOL if approximate else 1e-12
    theta, ok, msg, _ = minimise_theta(prof.deviance, theta0, bounds, ftol=ftol)
    theta = np.where(theta < 1e-10, 0.0, theta)
    dev = prof.deviance(theta)
    if approximate:
        grad, scaled, grad_ok = np.full(2, np.nan), np.zeros(0), True
    else:
        grad, hess = _stencil(prof.deviance, theta, dev)
        interior = theta > SINGULAR_TOL
        scaled, grad_ok = gradient_check(grad, hess, interior)
    f, LX, beta, r2 = prof._pieces(theta)
    n, p = prof.n, prof.p
    sigma2 = r2 / (n - p if reml else n)
    RXinv = sla.solve_triangular(LX, np.eye(p), lower=True, check_finite=False)
    vcov = sigma2 * (RXinv.T @ RXinv)
    # conditional modes: u = A⁻¹ Λ'Z'(y - Xβ), b = Λ u
    sysm = prof.sys
    zb, zs = prof.ZtM
    rb = f.tb * (zb[:, p] - zb[:, :p] @ beta)
    rs = f.ts * (zs[:, p] - zs[:, :p] @ beta)
    ub, us = f.solve(rb, rs)
    bb, bs = f.tb * ub, f.ts * us
    b1, b2 = (bb, bs) if sysm.big == 0 else (bs, bb)
    k = p + 3
    loglik = -dev / 2.0
    return LMMFit(
        beta=beta,
        vcov=vcov,
        sigma2=float(sigma2),
        theta=theta,
        b1=b1,
        b2=b2,
        deviance=float(dev),
        loglik=float(loglik),
        aic=float(dev + 2 * k),
        bic=float(dev + k * np.log(n)),
        reml=reml,
        converged=bool(ok and grad_ok),
        message=msg if grad_ok else f"{msg}; scaled gradient {np.round(scaled, 6).tolist()} not ~0",
        singular=(bool(theta[0] < SINGULAR_TOL), bool(theta[1] < SINGULAR_TOL)),
        gradient=grad,
        n_evals=prof.n_evals,
        n=n,
        p=p,
        method=sysm.method,
    )


class _TermsProfile:
    """Profiled deviance of θ for general random terms: dense blocks (:class:`DensePLS`, up to
    :data:`GRADIENT_MAX_Q` random effects, with the exact gradient) or sparse-LU PLS."""

    def __init__(self, X, y, structure: RandomStructure, reml: bool):
        self.X = np.asarray(X, dtype=float)
        self.y = np.asarray(y, dtype=float)
        self.n, self.p = self.X.shape
        self.reml = reml
        self.re = structure
        M = np.column_stack([self.X, self.y])
        self.MtM = M.T @ M
        Z = structure.Z
        self.ZtZ = (Z.T @ Z).tocsc()
        self.ZtM = np.asarray(Z.T @ M)
        self.dense = DensePLS(structure, self.ZtZ) if structure.Q <= GRADIENT_MAX_Q else None
        if self.dense is not None:
            self.ZtMp = self.ZtM[self.dense.perm]
        self.n_evals = 0

    def _pieces(self, theta):
        """``(factor, Λ'Z'M, A⁻¹Λ'Z'M, R_X, β̂, r²)`` at θ (``M = [X, y]``; rows of the
        random effects in the factor's order)."""
        if self.dense is not None:
            f = self.dense.factor(theta)
            LtZtM = f.lam_t(self.ZtMp)
        else:
            lam = self.re.lam(theta)
            f = factor_pls(self.ZtZ, lam, self.re.block)
            LtZtM = np.asarray(lam.T @ self.ZtM)
        Sol = f.solve(LtZtM)
        G = self.MtM - LtZtM.T @ Sol
        p = self.p
        LX = sla.cholesky(G[:p, :p], lower=True, check_finite=False)
        beta = sla.cho_solve((LX, True), G[:p, p], check_finite=False)
        r2 = float(G[p, p] - G[:p, p] @ beta)
        return f, LtZtM, Sol, LX, beta, r2

    def random_effects(self, theta, f, Sol, beta) -> np.ndarray:
        """Conditional modes ``b = Λû`` in the structure's order, ``û = A⁻¹Λ'Z'(y − Xβ̂)``."""
        p = self.p
        u = Sol[:, p] - Sol[:, :p] @ beta
        if self.dense is not None:
            return self.dense.unpermute(f.lam(u))
        return np.asarray(self.re.lam(theta) @ u)

    def deviance(self, theta) -> float:
        self.n_evals += 1
        try:
            f, _, _, LX, _, r2 = self._pieces(np.asarray(theta, dtype=float))
        except (np.linalg.LinAlgError, ValueError, RuntimeError):
            return np.inf
        return profiled_deviance(f.logdet, LX, r2, self.n, self.p, self.reml)


def check_optimum(fun, x, f0, lower, bounded):
    """lme4's convergence checks at ``x``: returns (gradient, scaled gradient, ok).

    ``bounded`` marks coordinates with a lower bound of 0 (relative SDs); those at the bound
    are excluded from the Hessian-scaled test and need a non-negative gradient instead.
    """
    grad, hess = _stencil(fun, x, f0, lower=lower)
    at_bound = bounded & (x < SINGULAR_TOL)
    free = ~at_bound
    scaled, ok = gradient_check(grad, hess, free)
    return grad, scaled, ok


def fit_lmm_terms(
    X: np.ndarray,
    y: np.ndarray,
    structure: RandomStructure,
    *,
    reml: bool = True,
    start: np.ndarray | None = None,
) -> LMMFit:
    """Fit ``y ~ X + <random terms>`` by (RE)ML, as ``lme4::lmer``, for any random terms.

    The general path (random slopes, one factor, several terms of a factor): ``Λ(θ)`` is block
    diagonal with one lower-triangular ``q × q`` block per level of each term
    (:class:`~pluralign.models._random.RandomStructure`) and ``A = Λ'Z'ZΛ + I`` is factored
    densely or by sparse LU at each θ. For ``(1|g1) + (1|g2)`` it gives :func:`fit_lmm`'s
    answer, more slowly.

    Parameters
    ----------
    X : ndarray (n, p)
        Full-rank fixed-effect design.
    y : ndarray (n,)
    structure : RandomStructure
        The random terms, coded for the rows of ``X``.
    reml : bool
        REML (default) or maximum likelihood.
    start : ndarray, optional
        Starting θ (default: lme4's, identity blocks).

    Returns
    -------
    LMMFit
        ``theta`` is the full θ vector in lme4's order, ``singular`` has one flag per term,
        ``b1``/``b2`` are the rater/item intercept modes and ``random`` holds every mode.
    """
    prof = _TermsProfile(X, y, structure, reml)
    theta0 = structure.start if start is None else np.asarray(start, dtype=float)
    bounds = structure.bounds
    bounded = structure.lower == 0
    exact = None
    if structure.Q <= GRADIENT_MAX_Q:
        exact = _fit_theta_exact(prof, theta0, structure)
        theta, ok, msg, dev, grad, scaled, grad_ok = exact
    if exact is None or not (ok and grad_ok):  # finite differences (from there, if it failed)
        start_fd = theta0 if exact is None else theta
        theta, ok, msg, _ = minimise_theta(prof.deviance, start_fd, bounds)
        theta = np.where(bounded & (theta < 1e-10), 0.0, theta)
        dev = prof.deviance(theta)
        grad, scaled, grad_ok = check_optimum(prof.deviance, theta, dev, structure.lower, bounded)
        if exact is not None and exact[3] < dev:
            theta, ok, msg, dev, grad, scaled, grad_ok = exact
    f, _, Sol, LX, beta, r2 = prof._pieces(theta)
    n, p = prof.n, prof.p
    sigma2 = r2 / (n - p if reml else n)
    RXinv = sla.solve_triangular(LX, np.eye(p), lower=True, check_finite=False)
    vcov = sigma2 * (RXinv.T @ RXinv)
    terms = TermsFit(structure, prof.random_effects(theta, f, Sol, beta))
    k = p + 1 + structure.n_theta
    n_r = _n_levels(structure, "rater")
    n_i = _n_levels(structure, "item")
    return LMMFit(
        beta=beta,
        vcov=vcov,
        sigma2=float(sigma2),
        theta=theta,
        b1=terms.intercept_modes("rater", n_r),
        b2=terms.intercept_modes("item", n_i),
        deviance=float(dev),
        loglik=float(-dev / 2.0),
        aic=float(dev + 2 * k),
        bic=float(dev + k * np.log(n)),
        reml=reml,
        converged=bool(ok and grad_ok),
        message=msg if grad_ok else f"{msg}; scaled gradient {np.round(scaled, 6).tolist()} not ~0",
        singular=tuple(structure.singular(theta)),
        gradient=grad,
        n_evals=prof.n_evals,
        n=n,
        p=p,
        method="dense"
        if structure.Q - structure.block[1] * structure.block[2] <= _DENSE_MAX
        else "sparse",
        random=terms,
    )


def _fit_theta_exact(prof, theta0, structure: RandomStructure):
    """θ by L-BFGS-B with the exact profiled gradient (:func:`profiled_gradient`); lme4's
    convergence checks with the Hessian from central differences of that gradient."""

    last: dict = {}

    def fun_and_grad(theta):
        theta = np.asarray(theta, dtype=float)
        if "x" in last and np.array_equal(last["x"], theta):
            return last["value"]
        prof.n_evals += 1
        last["x"], last["value"] = theta.copy(), profiled_value_and_gradient(prof, theta)
        return last["value"]

    bounded = structure.lower == 0
    start = theta0
    for _ in range(3):
        theta, ok, msg = minimise_with_gradient(
            fun_and_grad, start, structure.bounds, gtol=1e-5, ftol=1e-12
        )
        theta = np.where(bounded & (theta < 1e-10), 0.0, theta)
        zero = bounded & (theta < SINGULAR_TOL)
        start = better_start_off_zero(prof.deviance, theta, zero, fun_and_grad(theta)[0])
        if start is None:
            break
    dev, grad = fun_and_grad(theta)
    at_bound = bounded & (theta < SINGULAR_TOL)
    free = ~at_bound
    H = np.eye(len(theta))
    H[np.ix_(free, free)] = gradient_hessian(
        lambda t: profiled_gradient(prof, t), theta, free, at=grad
    )
    scaled, grad_ok = gradient_check(grad, H, free)
    # a line search that cannot improve on the optimum ends "abnormally": lme4's checks decide
    return theta, ok or grad_ok, msg, dev, grad, scaled, grad_ok


def _n_levels(structure: RandomStructure, group: str) -> int:
    for t in structure.terms:
        if t.group == group:
            return t.n_levels
    return 0
