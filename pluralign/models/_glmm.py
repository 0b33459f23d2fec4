"""Numeric kernel: logistic mixed models with crossed rater and item intercepts (Laplace, as glmer).

``logit P(y = 1) = X β + Z₁ b₁ + Z₂ b₂`` with ``b_k ~ N(0, θ_k² I)``. As ``lme4::glmer`` with
``nAGQ = 1``: for given ``(θ, β)`` penalised iteratively reweighted least squares (PIRLS) finds
the conditional mode ``u*`` of the spherical random effects, and the Laplace deviance

    -2 log p(y | u*, β, θ) + ||u*||² + log |Λ'Z'WZΛ + I|

is minimised over ``(θ, β)`` by bounded L-BFGS-B (exact gradient in β, central differences in
θ); starting values
come from the ``nAGQ = 0`` fit (β estimated jointly with ``u`` inside PIRLS, θ optimised). The
sparse algebra is :class:`~pluralign.models._sparse.CrossedSystem`.

The covariance of β̂ is glmer's default (``vcov(fit)``, ``use.hessian = TRUE``): the β block of
the inverse of half the finite-difference Hessian of the Laplace deviance over ``(θ, β)``
jointly, which accounts for the dependence of β̂ on the estimated variances. The conditional
``(X'WX − X'WZΛ A⁻¹ Λ'Z'WX)⁻¹`` at the mode (``use.hessian = FALSE``) treats θ as known and is
about 2 % narrower in the calibration design of ``docs/validity.md``; it is kept as the
fallback where the Hessian is not positive definite (as lme4 does, with a warning).

Random slopes and other terms beyond the two intercepts take :func:`fit_glmm_terms`, the same
Laplace deviance with the general :class:`~pluralign.models._random.RandomStructure`.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import scipy.linalg as sla
import scipy.optimize as sopt
from scipy.special import expit

from pluralign._errors import ConvergenceWarning
from pluralign.models._clmm_kernels import (
    CrossedPairs,
    _WeightedCrossproduct,
    logit_terms_optimum,
)
from pluralign.models._clmm_kernels import _TermsLaplace as _CumulativeLaplace
from pluralign.models._lmm import (
    SINGULAR_TOL,
    LMMFit,
    TermsFit,
    _n_levels,
    _stencil,
    gradient_check,
)
from pluralign.models._random import RandomStructure, factor_pls, gradient_hessian
from pluralign.models._sparse import CrossedSystem


def _loglik(y: np.ndarray, eta: np.ndarray) -> float:
    """Bernoulli log-likelihood, computed stably from the linear predictor."""
    return float(np.sum(y * eta - np.logaddexp(0.0, eta)))


class _Laplace(CrossedPairs):
    """Laplace deviance of the logistic model with two crossed random intercepts."""

    def __init__(self, X, y, g1, g2):
        self.X = np.asarray(X, dtype=float)
        self.y = np.asarray(y, dtype=float)
        self.g = (np.asarray(g1), np.asarray(g2))
        self.n, self.p = self.X.shape
        # exact factorisations only: the β gradient needs entries of A⁻¹
        self.sys = CrossedSystem(g1, g2, method="exact")
        self.q = self.sys.q
        self.u = (np.zeros(self.q[0]), np.zeros(self.q[1]))
        self.n_evals = 0

    def _factor(self, theta, eta):
        mu = expit(eta)
        self.sys.set_weights(mu * (1.0 - mu))
        return self.sys.factor(np.asarray(theta, dtype=float)), mu

    # -- PIRLS ----------------------------------------------------------------------------------
    def pirls(self, theta, beta, u0, *, joint=False, tol=1e-11, max_iter=60):
        """Conditional mode of u (and β if ``joint``); returns (u, beta, laplace deviance, factor)."""
        theta = np.asarray(theta, dtype=float)
        u = (u0[0].copy(), u0[1].copy())
        beta = np.asarray(beta, dtype=float).copy()

        def pdev(u_, b_):
            eta = self._eta(self.X @ b_, theta, u_)
            return -2.0 * _loglik(self.y, eta) + float(u_[0] @ u_[0] + u_[1] @ u_[1])

        old = pdev(u, beta)
        for _ in range(max_iter):
            eta = self._eta(self.X @ beta, theta, u)
            f, mu = self._factor(theta, eta)
            r = self.y - mu
            zr = self._zt(r)
            gu = (theta[0] * zr[0] - u[0], theta[1] * zr[1] - u[1])
            gb, gs = self._bs(gu)
            if joint:
                zx = self.sys.zt(self.X)  # weighted by W, (big, small)
                tb, ts = f.tb, f.ts
                cb, cs = tb * zx[0], ts * zx[1]
                XtWX = self.X.T @ (self.X * self.sys.w[:, None])
                RtR = XtWX - f.quad(cb, cs)
                ab, as_ = f.solve(gb, gs)
                rhs = self.X.T @ r - (cb.T @ ab + cs.T @ as_)
                dbeta = np.linalg.solve(RtR, rhs)
                db, ds = f.solve(gb - cb @ dbeta, gs - cs @ dbeta)
            else:
                dbeta = np.zeros_like(beta)
                db, ds = f.solve(gb, gs)
            du = self._pair(db, ds)
            step = 1.0
            while True:
                new_u = (u[0] + step * du[0], u[1] + step * du[1])
                new_b = beta + step * dbeta
                new = pdev(new_u, new_b)
                if new <= old + 1e-10 * abs(old) or step < 1e-4:
                    break
                step /= 2.0
            u, beta = new_u, new_b
            converged = abs(old - new) < tol * (abs(new) + 1.0)
            old = new
            if converged:
                break
        eta = self._eta(self.X @ beta, theta, u)
        f, _ = self._factor(theta, eta)
        return u, beta, old + f.logdet, f

    def deviance_theta(self, theta):
        """nAGQ = 0 objective: joint mode of (u, β), Laplace deviance."""
        self.n_evals += 1
        try:
            u, beta, dev, _ = self.pirls(theta, self._beta0, self.u, joint=True)
        except (np.linalg.LinAlgError, ValueError):
            return np.inf
        self.u, self._beta0 = u, beta
        return dev

    def beta_gradient(self, theta, beta, u, f):
        """Exact gradient in β of the Laplace deviance at the conditional mode ``u``.

        ``-2 X'(y - μ)`` (envelope theorem) plus ``Σ_i h_i w'_i ∂η*_i/∂β`` from the log
        determinant, with ``h_i`` the diagonal of ``ZΛA⁻¹Λ'Z'``, ``w' = μ(1-μ)(1-2μ)`` and
        ``∂η*/∂β = X - ZΛA⁻¹Λ'Z'WX`` (implicit function theorem on the mode).
        """
        s = self.sys
        eta = self._eta(self.X @ beta, theta, u)
        mu = expit(eta)
        wprime = mu * (1 - mu) * (1 - 2 * mu)
        tb, ts = f.tb, f.ts
        gb, gs = self.g[s.big], self.g[1 - s.big]
        # entries of A⁻¹ needed for h_i (diagonal blocks, off-diagonal block at observed pairs)
        inv_bb, inv_ss, inv_pairs = f.inverse_parts()
        inv_bs = inv_pairs[s._pair]
        h = tb * tb * inv_bb[gb] + ts * ts * inv_ss[gs] + 2 * tb * ts * inv_bs
        # ∂η*/∂β = X - ZΛ A⁻¹ Λ'Z'WX
        zx = s.zt(self.X)
        ab, as_ = f.solve(tb * zx[0], ts * zx[1])
        deta = self.X - (tb * ab[gb] + ts * as_[gs])
        return -2.0 * self.X.T @ (self.y - mu) + deta.T @ (h * wprime)

    def deviance_full(self, par):
        """nAGQ = 1 objective over (θ₁, θ₂, β)."""
        self.n_evals += 1
        try:
            u, _, dev, _ = self.pirls(par[:2], par[2:], self.u)
        except (np.linalg.LinAlgError, ValueError):
            return np.inf
        self.u = u
        return dev


def fit_glmm_logit(X, y, g1, g2) -> LMMFit:
    """Fit ``y ~ X + (1|g1) + (1|g2)``, binomial-logit, by the Laplace approximation (nAGQ = 1).

    Returns an :class:`~pluralign.models._lmm.LMMFit` with ``sigma2 = 1`` and ``theta`` the
    random-intercept standard deviations on the logit scale; ``reml`` is False.
    """
    lap = _Laplace(X, y, g1, g2)
    p = lap.p
    ybar = np.clip(lap.y.mean(), 1e-3, 1 - 1e-3)
    lap._beta0 = np.zeros(p)
    lap._beta0[0] = np.log(ybar / (1 - ybar))
    # stage 1 (nAGQ = 0): θ only, β jointly in PIRLS
    res0 = sopt.minimize(
        lap.deviance_theta,
        np.ones(2),
        method="L-BFGS-B",
        bounds=[(0.0, None)] * 2,
        options={"ftol": 1e-10},
    )
    theta0 = np.asarray(res0.x)
    lap.deviance_theta(theta0)
    start = np.concatenate([theta0, lap._beta0])

    # stage 2 (nAGQ = 1): (θ, β) with central-difference gradients
    bounds = [(0.0, None)] * 2 + [(None, None)] * p

    def fun(par):
        return lap.deviance_full(par)

    def fun_and_grad(par):
        """Deviance with its gradient: exact in β, central differences in θ."""
        lap.n_evals += 1
        try:
            u, _, dev, f = lap.pirls(par[:2], par[2:], lap.u)
            g = np.empty_like(par)
            g[2:] = lap.beta_gradient(par[:2], par[2:], u, f)
        except (np.linalg.LinAlgError, ValueError):
            return np.inf, np.zeros_like(par)
        lap.u = u
        for j in range(2):
            h = 1e-5 * max(1.0, abs(par[j]))
            e = np.zeros_like(par)
            e[j] = h
            if par[j] - h < 0:
                g[j] = (fun(par + e) - dev) / h
            else:
                g[j] = (fun(par + e) - fun(par - e)) / (2 * h)
            lap.u = u
        return dev, g

    res = sopt.minimize(
        fun_and_grad,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"ftol": 1e-13, "gtol": 1e-7, "maxiter": 500},
    )
    par = np.asarray(res.x, dtype=float)
    par[:2] = np.where(par[:2] < 1e-10, 0.0, par[:2])
    theta, beta = par[:2], par[2:]
    u, _, _, f = lap.pirls(theta, beta, lap.u)
    zx = lap.sys.zt(lap.X)
    XtWX = lap.X.T @ (lap.X * lap.sys.w[:, None])
    RtR = XtWX - f.quad(f.tb * zx[0], f.ts * zx[1])
    lower = np.r_[0.0, 0.0, np.full(p, -np.inf)]
    return _result(
        fun, par, res, lower, n_theta=2, rx=RtR, n_evals=lap.n_evals, n=lap.n,
        b=(theta[0] * u[0], theta[1] * u[1]), method=lap.sys.method,
        singular=(bool(theta[0] < SINGULAR_TOL), bool(theta[1] < SINGULAR_TOL)),
    )  # fmt: skip


def _hessian_vcov(hess: np.ndarray, free: np.ndarray, p: int) -> np.ndarray | None:
    """β block of ``(H/2)⁻¹`` over the free ``(θ, β)`` (glmer's ``use.hessian = TRUE``).

    θ at its bound of 0 is held there (its rows are left out). None where the Hessian of the
    free parameters is not positive definite.
    """
    half = hess[np.ix_(free, free)] / 2.0
    half = (half + half.T) / 2.0
    try:
        chol = sla.cho_factor(half)
    except (np.linalg.LinAlgError, ValueError):
        return None
    inv = sla.cho_solve(chol, np.eye(len(half)))
    vcov = inv[-p:, -p:]
    if not np.all(np.isfinite(vcov)) or np.any(np.diag(vcov) <= 0):
        return None
    return (vcov + vcov.T) / 2.0


def _result(
    fun, par, res, lower, *, n_theta, rx, n_evals, n, b, method, singular, random=None, exact=None
):
    """The :class:`LMMFit` of a Laplace fit at ``par = (θ, β)``: lme4's convergence checks and
    the covariance of β̂, both from one finite-difference Hessian of the deviance ``fun``.

    ``rx`` is ``X'WX − X'WZΛ A⁻¹ Λ'Z'WX`` at the mode, whose inverse is the covariance where
    the Hessian is not positive definite. ``exact`` is ``(gradient, scaled gradient, ok,
    Hessian)`` at ``par`` from the exact gradient (:func:`logit_terms_optimum`'s check
    and :func:`_exact_hessian`): the check is taken as it is and the Hessian gives the
    covariance, instead of a second check and the stencil of deviances.
    """
    k = n_theta
    theta, beta = par[:k], par[k:]
    p = len(beta)
    bounded = np.isfinite(lower)
    free = ~(bounded & (par < SINGULAR_TOL))
    dev = fun(par)
    if exact is not None:
        grad, scaled, grad_ok, hess = exact
    else:
        grad, hess = _stencil(fun, par, dev, lower=lower)
        scaled, grad_ok = gradient_check(grad, hess, free)
    msg = str(res.message)
    msg = msg if msg.startswith("L-BFGS-B") else f"L-BFGS-B: {msg}"
    if not grad_ok:
        msg += f"; scaled gradient {np.round(scaled, 6).tolist()} not ~0"
    vcov = _hessian_vcov(hess, free, p)
    if vcov is None:
        warnings.warn(
            "the finite-difference Hessian of the Laplace deviance is not positive definite: "
            "standard errors treat the variance components as known (glmer's "
            "use.hessian = FALSE); check the fit's convergence",
            ConvergenceWarning,
            stacklevel=3,
        )
        vcov = sla.inv(rx)
        vcov = (vcov + vcov.T) / 2.0
    n_par = p + k
    return LMMFit(
        beta=beta,
        vcov=vcov,
        sigma2=1.0,
        theta=theta,
        b1=b[0],
        b2=b[1],
        deviance=float(dev),
        loglik=float(-dev / 2.0),
        aic=float(dev + 2 * n_par),
        bic=float(dev + n_par * np.log(n)),
        reml=False,
        converged=bool(res.success) and grad_ok,
        message=msg,
        singular=singular,
        gradient=grad,
        n_evals=n_evals,
        n=n,
        p=p,
        method=method,
        random=random,
    )


class _TermsLaplace:
    """Laplace deviance of a logistic model with general random terms (PIRLS on u)."""

    def __init__(self, X, y, structure: RandomStructure):
        self.X = np.asarray(X, dtype=float)
        self.y = np.asarray(y, dtype=float)
        self.n, self.p = self.X.shape
        self.re = structure
        self.Z = structure.Z.tocsr()
        self.u = np.zeros(structure.Q)
        self._ztwz = _WeightedCrossproduct(structure.Z)  # Z'WZ on Z'Z's fixed pattern
        self.n_evals = 0

    def _factor(self, lam, eta):
        mu = expit(eta)
        w = mu * (1.0 - mu)
        return factor_pls(self._ztwz(w), lam, self.re.block), mu, w

    def pirls(self, theta, beta, u0, *, tol=1e-11, max_iter=60):
        """Conditional mode of u at (θ, β); returns (u, Laplace deviance, factor, μ, w, Λ)."""
        lam = self.re.lam(theta)
        ZL = (self.Z @ lam).tocsr()
        offset = self.X @ np.asarray(beta, dtype=float)
        u = u0.copy()

        def pdev(u_):
            return -2.0 * _loglik(self.y, offset + ZL @ u_) + float(u_ @ u_)

        old = pdev(u)
        for _ in range(max_iter):
            f, mu, _ = self._factor(lam, offset + ZL @ u)
            du = f.solve(ZL.T @ (self.y - mu) - u)
            step = 1.0
            while True:
                new_u = u + step * du
                new = pdev(new_u)
                if new <= old + 1e-10 * abs(old) or step < 1e-4:
                    break
                step /= 2.0
            u = new_u
            converged = abs(old - new) < tol * (abs(new) + 1.0)
            old = new
            if converged:
                break
        f, mu, w = self._factor(lam, offset + ZL @ u)
        return u, old + f.logdet, f, mu, w, lam

    def deviance(self, par):
        self.n_evals += 1
        k = self.re.n_theta
        try:
            u, dev, *_ = self.pirls(par[:k], par[k:], self.u)
        except (np.linalg.LinAlgError, ValueError):
            return np.inf
        self.u = u
        return dev


def fit_glmm_terms(X, y, structure: RandomStructure) -> LMMFit:
    """Fit a logistic mixed model with general random terms (slopes) by Laplace, as ``glmer``.

    The deviance ``-2 log p(y | u*, β, θ) + ||u*||² + log|Λ'Z'WZΛ + I|`` (PIRLS for the mode
    ``u*``) is minimised over ``(θ, β)`` by bounded L-BFGS-B with finite-difference gradients,
    from the fixed-effects logistic fit and lme4's starting θ (with an intercept: the exact
    gradient of :func:`~pluralign.models._clmm_kernels.logit_terms_optimum`, whose
    convergence check is kept). The covariance of β̂ is glmer's default ``vcov(fit)``
    (Hessian over ``(θ, β)``: central differences of the exact gradient, else of the
    deviance). Returns an :class:`~pluralign.models._lmm.LMMFit` as
    :func:`~pluralign.models._lmm.fit_lmm_terms` does, with ``sigma2 = 1``.
    """
    lap = _TermsLaplace(X, y, structure)
    p, k = lap.p, structure.n_theta
    beta0 = _glm_logit(lap.X, lap.y)
    start = np.concatenate([structure.start, beta0])
    lower = np.concatenate([structure.lower, np.full(p, -np.inf)])
    bounds = structure.bounds + [(None, None)] * p
    exact = (
        logit_terms_optimum(lap.X, lap.y, structure, beta0)
        if np.allclose(lap.X[:, 0], 1.0)
        else None
    )
    if exact is not None:
        lap.n_evals += exact[-1]
    derivatives = None
    if exact is not None and exact[2] and exact[6]:  # exact gradient of the 2-category logit
        theta, beta, success, message = exact[:4]
        par = np.concatenate([theta, beta])
        res = SimpleNamespace(success=success, message=message)
        # the optimum's convergence check (exact gradient, at this point) stands; the
        # covariance needs only the Hessian, from central differences of that gradient
        hess = _exact_hessian(lap, par, lower)
        if hess is not None:
            derivatives = (exact[4], exact[5], exact[6], hess)
    else:
        res = sopt.minimize(
            lap.deviance,
            start,
            method="L-BFGS-B",
            bounds=bounds,
            options={"ftol": 1e-13, "gtol": 1e-7, "eps": 1e-6, "maxiter": 1000},
        )
        par = np.asarray(res.x, dtype=float)
    bounded = np.concatenate([structure.lower == 0, np.zeros(p, dtype=bool)])
    par = np.where(bounded & (par < 1e-10), 0.0, par)
    theta, beta = par[:k], par[k:]
    u, _, f, _, w, lam = lap.pirls(theta, beta, lap.u)
    ZL = (lap.Z @ lam).tocsr()
    C = np.asarray(ZL.T @ (lap.X * w[:, None]))
    RtR = lap.X.T @ (lap.X * w[:, None]) - C.T @ f.solve(C)
    terms = TermsFit(structure, np.asarray(lam @ u))
    b = tuple(terms.intercept_modes(g, _n_levels(structure, g)) for g in ("rater", "item"))
    return _result(
        lap.deviance, par, res, lower, n_theta=k, rx=RtR, n_evals=lap.n_evals, n=lap.n, b=b,
        method="laplace", singular=tuple(structure.singular(theta)), random=terms,
        exact=derivatives,
    )  # fmt: skip


def _exact_hessian(lap: _TermsLaplace, par, lower) -> np.ndarray | None:
    """Hessian of the Laplace deviance over the free ``(θ, β)`` (θ at 0 held there) at ``par``,
    from central differences of the exact gradient of the two-category cumulative logit
    (whose Laplace deviance is glmer's): ``2 × free`` gradients instead of the stencil's
    ``2 k²`` deviances. None when a free relative SD is too close to 0 for a central
    difference (the stencil then steps forward).
    """
    bounded = np.isfinite(lower)
    free = ~(bounded & (par < SINGULAR_TOL))
    steps = 1e-4 * np.maximum(1.0, np.abs(par))
    if np.any(free & bounded & (par - steps < 0)):
        return None
    X, k = lap.X, lap.re.n_theta
    cum = _CumulativeLaplace(X[:, 1:], lap.y.astype(np.intp), lap.re, 2, "logit")
    p1 = cum.p
    to_glmer = np.r_[1 + p1 : 1 + p1 + k, 0 : 1 + p1]
    sign = np.ones(1 + p1 + k)
    sign[0] = -1.0  # P(y = 1) = F(η − α) with α = −β₀

    def glmer_grad(x):
        ordinal = np.empty_like(x)
        ordinal[to_glmer] = x
        return (cum.value_and_gradient(ordinal * sign)[1] * sign)[to_glmer]

    hess = np.eye(len(par))
    hess[np.ix_(free, free)] = gradient_hessian(glmer_grad, par, free)
    return hess


def _glm_logit(X, y, n_iter=50):
    """Fixed-effects logistic regression by IRLS (starting values)."""
    beta = np.zeros(X.shape[1])
    ybar = np.clip(y.mean(), 1e-3, 1 - 1e-3)
    beta[0] = np.log(ybar / (1 - ybar))
    for _ in range(n_iter):
        mu = expit(X @ beta)
        w = np.maximum(mu * (1 - mu), 1e-10)
        step = np.linalg.solve(X.T @ (X * w[:, None]), X.T @ (y - mu))
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta
