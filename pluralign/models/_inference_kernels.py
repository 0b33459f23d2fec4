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
import scipy.sparse as sp

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
        self._cache: dict[tuple[float, ...], tuple] = {}  # steps along σ reuse θ's pieces
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

    def _pieces(self, theta) -> tuple[float, np.ndarray, float]:
        """``log|A|``, ``R_X`` (lower) and the penalised RSS at ``θ`` (cached)."""
        key = tuple(float(t) for t in theta)
        if key not in self._cache:
            f, LX, _, r2 = self._prof._pieces(np.asarray(key, dtype=float))
            self._cache[key] = (f.logdet, LX, r2)
        return self._cache[key]

    def deviance(self, varpar: np.ndarray) -> float:
        """REML or ML deviance at ``(θ, σ)`` (lmerTest's ``devfun_vp``)."""
        prof = self._prof
        theta, s2 = varpar[:-1], float(varpar[-1]) ** 2
        logdet, LX, r2 = self._pieces(theta)
        n, p = prof.n, prof.p
        dev = logdet + r2 / s2 + n * np.log(2 * np.pi * s2)
        if self.reml:
            dev += 2.0 * np.sum(np.log(np.diag(LX))) - p * np.log(2 * np.pi * s2)
        return float(dev)

    def vcov(self, varpar: np.ndarray) -> np.ndarray:
        """``Var(β̂) = σ² (R_X'R_X)⁻¹`` at ``(θ, σ)`` (lmerTest's ``get_covbeta``)."""
        _, LX, _ = self._pieces(varpar[:-1])
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


#: Kenward–Roger works with dense (q × q) matrices over all random-effect levels; above this
#: many levels it is refused (Satterthwaite's df need no such matrices).
KR_MAX_LEVELS = 6000


class KenwardRoger:
    """Kenward–Roger adjusted covariance and degrees of freedom of one crossed REML fit.

    As ``pbkrtest::vcovAdj`` and ``pbkrtest::Lb_ddf``: the covariance ``Σ = σ²_1 Z₁Z₁' +
    σ²_2 Z₂Z₂' + σ² I`` is linear in the variance components ``γ``; with ``Φ = (X'Σ⁻¹X)⁻¹``,
    ``P_i = -X'Σ⁻¹G_iΣ⁻¹X``, ``Q_ij = X'Σ⁻¹G_iΣ⁻¹G_jΣ⁻¹X`` and ``W = 2 I_E⁻¹`` (expected REML
    information of γ), the adjusted covariance is ``Φ_A = Φ + 2Φ[Σ W_ij(Q_ij - P_iΦP_j)]Φ``.
    Every ``n × n`` product is reduced to ``q × q`` ones by the Woodbury identity
    ``Σ⁻¹ = σ⁻²(I - ZS C⁻¹ SZ')``, ``C = I + SZ'ZS``, ``S = diag(sqrt(σ²_k/σ²))``.

    References
    ----------
    Kenward, M. G. & Roger, J. H. (1997). Small sample inference for fixed effects from
    restricted maximum likelihood. Biometrics, 53(3), 983–997.

    Halekoh, U. & Højsgaard, S. (2014). A Kenward–Roger approximation and parametric bootstrap
    methods for tests in linear mixed models – the R package pbkrtest. Journal of Statistical
    Software, 59(9). doi:10.18637/jss.v059.i09
    """

    def __init__(self, X, g1, g2, variances: tuple[float, float], sigma2: float, vcov):
        X = np.asarray(X, dtype=float)
        n, p = X.shape
        q1, q2 = int(g1.max()) + 1, int(g2.max()) + 1
        q = q1 + q2
        if q > KR_MAX_LEVELS:
            raise ValueError(
                f"Kenward-Roger needs dense {q} x {q} matrices (raters + items); above "
                f"{KR_MAX_LEVELS} levels use df='satterthwaite'"
            )
        rows = np.arange(n)
        Z = sp.csr_matrix((np.ones(2 * n), (np.r_[rows, rows], np.r_[g1, q1 + g2])), shape=(n, q))
        blocks = (slice(0, q1), slice(q1, q))
        s = np.r_[
            np.full(q1, np.sqrt(variances[0] / sigma2)), np.full(q2, np.sqrt(variances[1] / sigma2))
        ]
        ZtZ = (Z.T @ Z).toarray()
        K = s[:, None] * ZtZ * s[None, :]
        C = K + np.eye(q)
        Lc = sla.cho_factor(C, lower=True, check_finite=False)
        inv_s2 = 1.0 / sigma2

        def sinv(M):
            """``Σ⁻¹ M`` for an (n, k) array."""
            inner = sla.cho_solve(Lc, s[:, None] * (Z.T @ M), check_finite=False)
            return inv_s2 * (M - Z @ (s[:, None] * inner))

        Phi = np.asarray(vcov, dtype=float)
        TT = sinv(X)
        OO = [Z[:, b] @ (Z[:, b].T @ TT) for b in blocks] + [TT]
        PP = [-(o.T @ TT) for o in OO]
        PP = [(m + m.T) / 2 for m in PP]
        SO = [sinv(o) for o in OO]
        m = len(OO)
        QQ = [[OO[i].T @ SO[j] for j in range(m)] for i in range(m)]
        # traces tr(G_i Σ⁻¹ G_j Σ⁻¹) in q-space
        CinvK = sla.cho_solve(Lc, K, check_finite=False)
        R = inv_s2 * (ZtZ - ZtZ @ (s[:, None] * sla.cho_solve(Lc, s[:, None] * ZtZ)))
        B = inv_s2 * (np.eye(q) - s[:, None] * sla.cho_solve(Lc, s[:, None] * ZtZ))
        Kt = np.empty((m, m))
        for i in range(2):
            for j in range(2):
                Kt[i, j] = np.sum(R[blocks[i], blocks[j]] ** 2)
            Bi = B[:, blocks[i]]
            Kt[i, 2] = Kt[2, i] = float(np.sum(Bi * (ZtZ @ Bi)))
        Kt[2, 2] = inv_s2**2 * (n - 2 * np.trace(CinvK) + np.sum(CinvK * CinvK.T))
        IE2 = np.empty((m, m))
        for i in range(m):
            PhiP = Phi @ PP[i]
            for j in range(i, m):
                IE2[i, j] = IE2[j, i] = (
                    Kt[i, j] - 2 * np.sum(Phi * QQ[i][j]) + np.sum(PhiP * (PP[j] @ Phi))
                )
        condi = np.min(np.abs(np.linalg.eigvalsh(IE2)))
        W = 2 * (np.linalg.inv(IE2) if condi > 1e-10 else np.linalg.pinv(IE2))
        W = (W + W.T) / 2
        U = np.zeros((p, p))
        for i in range(m):
            for j in range(m):
                U += W[i, j] * (QQ[i][j] - PP[i] @ Phi @ PP[j])
        self.vcov_beta = Phi
        self.vcov_adjusted = Phi + 2 * Phi @ U @ Phi
        self.P, self.W = PP, W

    def contrasts(self, L: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Adjusted variance ``L'Φ_A L`` and Kenward–Roger df of each row of ``L``."""
        L = np.atleast_2d(np.asarray(L, dtype=float))
        var = np.einsum("kp,pq,kq->k", L, self.vcov_adjusted, L)
        return var, np.array([self._ddf(row[None, :]) for row in L])

    def _ddf(self, L: np.ndarray) -> float:
        """``pbkrtest::Lb_ddf`` for one contrast matrix ``L`` (q × p)."""
        V0 = self.vcov_beta
        Theta = L.T @ np.linalg.solve(L @ V0 @ L.T, L)
        TV = Theta @ V0
        u = [TV @ P @ V0 for P in self.P]
        A1 = A2 = 0.0
        m = len(u)
        for i in range(m):
            for j in range(i, m):
                e = 1.0 if i == j else 2.0
                A1 += e * self.W[i, j] * np.trace(u[i]) * np.trace(u[j])
                A2 += e * self.W[i, j] * np.sum(u[i] * u[j].T)
        q = L.shape[0]
        Bq = (A1 + 6 * A2) / (2 * q)
        g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
        den = 3 * q + 2 * (1 - g)
        c1, c2, c3 = g / den, (q - g) / den, (q + 2 - g) / den
        v0 = 1 + c1 * Bq
        v0 = 0.0 if abs(v0) < 1e-10 else v0
        v1, v2 = 1 - c2 * Bq, 1 - c3 * Bq
        x = 1 - A2 / q
        ratio = 1.0 if abs(x) < 1e-14 and abs(v1) < 1e-14 else x / v1
        rho = ratio**2 * v0 / (q * v2)
        return float(4 + (q + 2) / (q * rho - 1))
