"""Numeric kernel: Satterthwaite degrees of freedom and simulation for crossed linear mixed models.

Satterthwaite's approximation follows lmerTest (Kuznetsova, Brockhoff & Christensen 2017): the
variance parameters are ``φ = (θ₁, θ₂, σ)`` (relative SDs of the random effects and the residual
SD); ``C(φ) = Var(β̂)`` is ``σ² (R_X'R_X)⁻¹`` evaluated at ``θ``, and ``A = 2 H⁻¹`` is the
asymptotic covariance of ``φ̂``, with ``H`` the Hessian of the (REML or ML) deviance as a function
of ``φ`` (not profiled over σ). For a contrast ``L'β`` with ``v = L'CL`` and ``g = ∂v/∂φ``,

    df = 2 v² / (g' A g).

The derivatives are central differences with Richardson extrapolation (as ``numDeriv``, which
lmerTest uses), so the degrees of freedom agree with lmerTest to about 1e-6 relative.

Everything here works on NumPy arrays and integer codes; pandas lives one layer up.

References
----------
Kuznetsova, A., Brockhoff, P. B. & Christensen, R. H. B. (2017). lmerTest package: tests in
linear mixed effects models. Journal of Statistical Software, 82(13). doi:10.18637/jss.v082.i13

Satterthwaite, F. E. (1946). An approximate distribution of estimates of variance components.
Biometrics Bulletin, 2(6), 110–114.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import scipy.linalg as sla

from pluralign._errors import ConvergenceWarning
from pluralign.models._lmm import _Profile

#: Richardson extrapolation: relative first step of the Hessian and of the Jacobian, absolute
#: step near 0, number of halvings. Second differences need the larger step: at 1e-4 rounding
#: error in the deviance (~1e-13 relative) dominates after extrapolation.
_D_HESSIAN, _D_JACOBIAN, _EPS, _R = 1e-2, 1e-3, 1e-4, 4
_ZERO_TOL = float(np.sqrt(np.finfo(float).eps / 7e-7))
#: Eigenvalues of the deviance Hessian below this are treated as zero (lmerTest's ``tol``).
_EIGEN_TOL = 1e-8


def _steps(x: np.ndarray, d: float) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return np.abs(d * x) + _EPS * (np.abs(x) < _ZERO_TOL)


def _extrapolate(estimates: list[np.ndarray]) -> np.ndarray:
    """Richardson extrapolation of central differences at steps h, h/2, h/4, ... (error in h²)."""
    a = [np.asarray(e, dtype=float) for e in estimates]
    for m in range(1, len(a)):
        f = 4.0**m
        a = [(f * a[k + 1] - a[k]) / (f - 1.0) for k in range(len(a) - 1)]
    return a[0]


def jacobian(fun: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """``∂ fun / ∂ x``: array of shape ``fun(x).shape + (len(x),)``."""
    x = np.asarray(x, dtype=float)
    h0 = _steps(x, _D_JACOBIAN)
    cols = []
    for i in range(len(x)):
        ests = []
        for k in range(_R):
            h = h0[i] / 2**k
            e = np.zeros_like(x)
            e[i] = h
            ests.append((np.asarray(fun(x + e)) - np.asarray(fun(x - e))) / (2 * h))
        cols.append(_extrapolate(ests))
    return np.stack(cols, axis=-1)


def hessian(fun: Callable[[np.ndarray], float], x: np.ndarray) -> np.ndarray:
    """Hessian of a scalar function by extrapolated central second differences."""
    x = np.asarray(x, dtype=float)
    k = len(x)
    h0 = _steps(x, _D_HESSIAN)
    f0 = float(fun(x))
    H = np.zeros((k, k))
    for i in range(k):
        for j in range(i + 1):
            ests = []
            for m in range(_R):
                hi, hj = h0[i] / 2**m, h0[j] / 2**m
                ei = np.zeros(k)
                ei[i] = hi
                if i == j:
                    ests.append((fun(x + ei) - 2 * f0 + fun(x - ei)) / hi**2)
                else:
                    ej = np.zeros(k)
                    ej[j] = hj
                    v = fun(x + ei + ej) - fun(x + ei - ej) - fun(x - ei + ej) + fun(x - ei - ej)
                    ests.append(v / (4 * hi * hj))
            H[i, j] = H[j, i] = float(_extrapolate(ests))
    return H


class Satterthwaite:
    """Satterthwaite degrees of freedom of contrasts of one crossed LMM fit.

    Parameters
    ----------
    X, y, g1, g2 : ndarray
        The data of the fit (as :func:`~pluralign.models._lmm.fit_lmm`).
    theta : ndarray
        Estimated relative SDs ``(θ₁, θ₂)``.
    sigma : float
        Estimated residual SD.
    reml : bool
        Whether the fit maximised the REML criterion.

    Attributes
    ----------
    vcov_beta : ndarray (p, p)
        ``Var(β̂)`` at the estimates.
    vcov_varpar : ndarray (3, 3)
        Asymptotic covariance of ``(θ₁, θ₂, σ)``: twice the (pseudo-)inverse Hessian of the deviance.
    jac : ndarray (p, p, 3)
        Derivatives of ``Var(β̂)`` with respect to ``(θ₁, θ₂, σ)``.
    """

    def __init__(self, X, y, g1, g2, theta, sigma, reml: bool):
        # second differences need an exact log-determinant (not the stochastic estimate)
        self._prof = _Profile(X, y, g1, g2, reml, method="exact")
        self.reml = reml
        self.varpar = np.r_[np.asarray(theta, dtype=float), float(sigma)]
        H = hessian(self.deviance, self.varpar)
        evals, evecs = np.linalg.eigh(H)
        neg, zero = evals < -_EIGEN_TOL, np.abs(evals) <= _EIGEN_TOL
        if neg.any() or zero.any():
            warnings.warn(
                "the Hessian of the deviance in (theta, sigma) has eigenvalues "
                f"{np.round(evals, 10).tolist()} (negative or ~0): the fit may not have converged "
                "or a variance is at 0; Satterthwaite degrees of freedom use its pseudo-inverse",
                ConvergenceWarning,
                stacklevel=3,
            )
        pos = evals > _EIGEN_TOL
        self.vcov_varpar = 2.0 * (evecs[:, pos] / evals[pos]) @ evecs[:, pos].T
        self.vcov_beta = self.vcov(self.varpar)
        self.jac = jacobian(self.vcov, self.varpar)

    def deviance(self, varpar: np.ndarray) -> float:
        """REML or ML deviance at ``(θ, σ)`` (lmerTest's ``devfun_vp``)."""
        prof = self._prof
        theta, s2 = varpar[:-1], float(varpar[-1]) ** 2
        f, LX, _, r2 = prof._pieces(np.asarray(theta, dtype=float))
        n, p = prof.n, prof.p
        dev = f.logdet + r2 / s2 + n * np.log(2 * np.pi * s2)
        if self.reml:
            dev += 2.0 * np.sum(np.log(np.diag(LX))) - p * np.log(2 * np.pi * s2)
        return float(dev)

    def vcov(self, varpar: np.ndarray) -> np.ndarray:
        """``Var(β̂) = σ² (R_X'R_X)⁻¹`` at ``(θ, σ)`` (lmerTest's ``get_covbeta``)."""
        _, LX, _, _ = self._prof._pieces(np.asarray(varpar[:-1], dtype=float))
        Li = sla.solve_triangular(LX, np.eye(LX.shape[0]), lower=True, check_finite=False)
        return float(varpar[-1]) ** 2 * (Li.T @ Li)

    def contrasts(self, L: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Variance ``L'CL`` and Satterthwaite df of each row of ``L`` (k × p)."""
        L = np.atleast_2d(np.asarray(L, dtype=float))
        var = np.einsum("kp,pq,kq->k", L, self.vcov_beta, L)
        grad = np.einsum("kp,pqv,kq->kv", L, self.jac, L)
        denom = np.einsum("kv,vw,kw->k", grad, self.vcov_varpar, grad)
        with np.errstate(divide="ignore", invalid="ignore"):
            df = np.where(denom > 0, 2.0 * var**2 / denom, np.inf)
        return var, df


def simulate_lmm(
    X: np.ndarray,
    beta: np.ndarray,
    sds: tuple[float, float, float],
    g1: np.ndarray,
    g2: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """One response vector from ``y = Xβ + b₁[g1] + b₂[g2] + ε`` with the given SDs."""
    b1 = rng.normal(0.0, sds[0], int(g1.max()) + 1)
    b2 = rng.normal(0.0, sds[1], int(g2.max()) + 1)
    return X @ beta + b1[g1] + b2[g2] + rng.normal(0.0, sds[2], len(g1))
