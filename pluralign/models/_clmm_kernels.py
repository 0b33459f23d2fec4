"""Numeric kernel: cumulative-link mixed models with crossed rater and item intercepts (Laplace).

The model of one rated dimension with ordered categories ``0..K-1`` is

    P(y ≤ k | b) = F(α_k − η),   η = X β + σ₁ u₁[rater] + σ₂ u₂[item],   u ~ N(0, I)

with ``F`` the logistic (``link="logit"``) or standard normal (``"probit"``) distribution
function, increasing cutpoints ``α`` and no intercept in ``X`` (it is absorbed in the cutpoints).
This is ``ordinal::clmm``'s parametrisation: a positive ``β`` moves ratings up.

As ``clmm``, the marginal likelihood is approximated by Laplace's method. For given
``(α, β, σ)`` a penalised Newton iteration finds the conditional mode ``u*`` of the spherical
random effects (the ordinal log-likelihood is concave in ``η``, so the iteration converges);
the Laplace deviance

    D(α, β, σ) = −2 Σᵢ log P(yᵢ | u*) + ‖u*‖² + log |Λ'Z'WZΛ + I|,

with ``W`` the observed information ``−∂²ℓᵢ/∂ηᵢ²`` at the mode, is minimised over all of
``(α, β, σ)`` (``σ ≥ 0``) by L-BFGS-B with its exact gradient: the first two terms by the
envelope theorem, the log determinant through the third derivatives of ``ℓ`` and the implicit
derivative of the mode (one extra solve: an adjoint). The block algebra of ``A = Λ'Z'WZΛ + I``
is :class:`~pluralign.models._lmm.CrossedSystem`'s. Standard errors come from the inverse of the
Hessian of ``D/2`` over all free parameters (central differences of the exact gradient), as
``clmm``'s ``vcov``.

Random slopes (:func:`fit_clmm_terms`): ``η = Xβ + ZΛ(θ)u`` with the general terms of
:mod:`pluralign.models._random` (lme4's ``Z`` and block-diagonal ``Λ(θ)``); the same Laplace
deviance, the mode by penalised Newton on ``A = Λ'Z'WZΛ + I`` (factored by
:func:`~pluralign.models._random.factor_pls`) and the same exact gradient, its log-determinant
term from ``A⁻¹`` formed densely (up to :data:`EXACT_MAX_Q` random effects). With two
categories this is ``glmer``'s logistic model (:func:`logit_terms_optimum`).

Everything here works on NumPy arrays and integer codes; pandas lives one layer up.

References
----------
Christensen, R. H. B. (2019). Cumulative link models for ordinal regression with the R package
ordinal. https://cran.r-project.org/package=ordinal
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.optimize as sopt
from scipy.special import expit, ndtr, ndtri

from pluralign.models._lmm import (
    SINGULAR_TOL,
    CrossedFit,
    CrossedSystem,
    TermsFit,
    _n_levels,
    _stencil,
    gradient_check,
)
from pluralign.models._random import (
    RandomStructure,
    better_start_off_zero,
    factor_pls,
    gradient_hessian,
    minimise_with_gradient,
)

#: Stand-in for the infinite outer cutpoints α₋₁ = −∞ and α_{K−1} = +∞ (F(±BIG) is exactly 0/1).
_BIG = 1e3
#: Largest number of random effects for the exact gradient of the general-terms deviance
#: (it forms A⁻¹ densely); larger models use finite differences.
EXACT_MAX_Q = 2000
#: Largest ``n × Q`` for the exact gradient (it forms ``ZΛA⁻¹`` densely).
EXACT_MAX_CELLS = 20_000_000
#: Smallest category probability: below it the parameters are treated as infeasible.
_TINY = 1e-300


# ----------------------------------------------------------------------------- link functions
def _logistic_derivs(x: np.ndarray):
    F = expit(x)
    f = F * (1.0 - F)
    return f, f * (1.0 - 2.0 * F), f * (1.0 - 6.0 * F + 6.0 * F * F)


def _normal_derivs(x: np.ndarray):
    f = np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)
    return f, -x * f, (x * x - 1.0) * f


#: Distribution function and (density, density', density'') of each link.
LINKS = {
    "logit": (expit, _logistic_derivs),
    "probit": (ndtr, _normal_derivs),
}

#: Variance of the latent error of each link (for latent-scale standardised effects).
LATENT_VARIANCE = {"logit": np.pi**2 / 3.0, "probit": 1.0}


def category_probabilities(eta: np.ndarray, cutpoints: np.ndarray, link: str) -> np.ndarray:
    """``P(y = k)`` for each ``eta`` (shape ``eta.shape + (K,)``).

    Examples
    --------
    >>> p = category_probabilities(np.zeros(1), np.array([-1.0, 1.0]), "logit")
    >>> np.round(p, 3).tolist()
    [[0.269, 0.462, 0.269]]
    """
    cdf = LINKS[link][0]
    c = cdf(np.asarray(cutpoints)[..., :] - np.asarray(eta)[..., None])
    ones = np.ones((*c.shape[:-1], 1))
    return np.diff(np.concatenate([0.0 * ones, c, ones], axis=-1), axis=-1)


def expected_rating(
    eta: np.ndarray, cutpoints: np.ndarray, values: np.ndarray, link: str
) -> np.ndarray:
    """``E[rating] = v₀ + Σₖ (v_{k+1} − v_k) P(y > k)`` for category values ``values``."""
    cdf = LINKS[link][0]
    exceed = cdf(np.asarray(eta)[..., None] - np.asarray(cutpoints))
    return values[0] + exceed @ np.diff(values)


# ----------------------------------------------------------------------------- per observation
@dataclass
class _Obs:
    """Log-likelihood of each rating and its derivatives in η and in its two cutpoints."""

    loglik: np.ndarray
    g: np.ndarray  # ∂ℓ/∂η
    w: np.ndarray  # −∂²ℓ/∂η² (> 0)
    w_eta: np.ndarray  # ∂w/∂η
    l_up: np.ndarray  # ∂ℓ/∂α_y   (upper cutpoint)
    l_lo: np.ndarray  # ∂ℓ/∂α_{y−1}
    g_up: np.ndarray  # ∂g/∂α_y
    g_lo: np.ndarray
    w_up: np.ndarray  # ∂w/∂α_y
    w_lo: np.ndarray


def _observations(eta, upper, lower, link, *, derivatives=True) -> _Obs | None:
    """Per-rating pieces for ``a = α_y − η`` and ``b = α_{y−1} − η``; None if infeasible."""
    cdf, derivs = LINKS[link]
    a, b = upper - eta, lower - eta
    # P = F(a) − F(b), computed on the side without cancellation (F is symmetric)
    P = np.where(a + b > 0, cdf(-b) - cdf(-a), cdf(a) - cdf(b))
    if not np.all(P > _TINY):
        return None
    fa, f1a, f2a = derivs(a)
    fb, f1b, f2b = derivs(b)
    DL = (fa - fb) / P  # (∂a + ∂b) ℓ
    P2 = (f1a - f1b) / P
    D2L = P2 - DL * DL
    g, w = -DL, -D2L
    if not derivatives:
        return _Obs(np.log(P), g, w, *(None,) * 7)
    P3 = (f2a - f2b) / P
    D3L = P3 - 3.0 * P2 * DL + 2.0 * DL**3
    ra, rb = fa / P, fb / P
    da_DL = f1a / P - DL * ra  # ∂_a DL
    db_DL = -f1b / P + DL * rb  # ∂_b DL
    da_D2L = f2a / P - P2 * ra - 2.0 * DL * da_DL
    db_D2L = -f2b / P + P2 * rb - 2.0 * DL * db_DL
    return _Obs(np.log(P), g, w, D3L, ra, -rb, -da_DL, -db_DL, -da_D2L, -db_D2L)


# ----------------------------------------------------------------------------- the fit
@dataclass(frozen=True, kw_only=True)
class CLMMFit(CrossedFit):
    """Estimates of one crossed cumulative-link mixed model (see :func:`fit_clmm`).

    ``beta``/``vcov`` follow the columns of ``X``; ``cutpoints`` and their covariance are
    separate; ``params_vcov`` is the covariance of ``(cutpoints, beta)`` jointly. ``theta`` holds
    the random-intercept standard deviations (latent scale) of factor 1 and factor 2, or with
    general terms (``random`` set) lme4's full θ vector; ``singular`` has one flag per term.
    ``gradient`` is the deviance gradient at the optimum in the fitting parametrisation
    (cutpoints, coefficients of the centred and scaled columns, standard deviations).
    """

    cutpoints: np.ndarray
    cutpoint_vcov: np.ndarray
    params_vcov: np.ndarray
    link: str
    sigma2: float = 1.0
    reml: bool = False

    @property
    def cutpoint_se(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cutpoint_vcov))


def _halving(pdev, old: float, u, du):
    """Step halving of a Newton step ``du`` for the mode from ``u`` (an array, or a pair of
    arrays for the two crossed factors): from the full step until the penalised deviance
    ``pdev`` does not increase (or the step is below 1e-4). Returns the new point, its
    penalised deviance and its observations."""
    step = 1.0
    while True:
        if isinstance(u, tuple):
            new_u = tuple(a + step * d for a, d in zip(u, du, strict=True))
        else:
            new_u = u + step * du
        new, new_obs = pdev(new_u)
        if new <= old + 1e-12 * abs(old) or step < 1e-4:
            return new_u, new, new_obs
        step /= 2.0


class CrossedPairs:
    """Helpers on ``(factor 1, factor 2)`` pairs of the two crossed random intercepts, for a
    Laplace deviance over :class:`~pluralign.models._sparse.CrossedSystem` (the ordinal
    model's here; the logistic model's has the same algebra).

    A subclass sets ``g`` (the codes of both factors), ``q`` (their numbers of levels) and
    ``sys`` (the system); ``big``/``small`` is the system's order of the two blocks.
    """

    g: tuple[np.ndarray, np.ndarray]
    q: tuple[int, int]
    sys: CrossedSystem

    def _eta(self, offset, sigma, u):
        """Linear predictor ``offset + σ₁ u₁[g₁] + σ₂ u₂[g₂]``."""
        return offset + sigma[0] * u[0][self.g[0]] + sigma[1] * u[1][self.g[1]]

    def _zt(self, v):
        """``Z'v`` per factor: sums of ``v`` over each level."""
        return tuple(np.bincount(self.g[k], weights=v, minlength=self.q[k]) for k in (0, 1))

    def _bs(self, pair):
        """A factor-order pair in the system's (big, small) order."""
        b = self.sys.big
        return pair[b], pair[1 - b]

    def _pair(self, big, small):
        """A (big, small) pair back in factor order."""
        return (big, small) if self.sys.big == 0 else (small, big)


class _Cumulative:
    """What both Laplace deviances of the cumulative-link model share: the ratings and their
    cutpoints, the parameter vector ``(α, β, random-effect parameters)`` and the gradient in
    ``(α, β)``."""

    def __init__(self, X, y, n_categories, link):
        self.X = np.asarray(X, dtype=float)
        self.y = np.asarray(y, dtype=np.intp)
        self.n, self.p = self.X.shape
        self.K = int(n_categories)
        self.link = link
        self.n_evals = 0
        # index of the upper/lower cutpoint of each rating (K − 1 / −1: none)
        self.up_idx, self.lo_idx = self.y, self.y - 1
        self.has_up, self.has_lo = self.y < self.K - 1, self.y > 0

    def split(self, par):
        K1, p = self.K - 1, self.p
        return par[:K1], par[K1 : K1 + p], par[K1 + p :]

    def _bounds(self, alpha):
        ext = np.concatenate([[-_BIG], alpha, [_BIG]])
        return ext[self.y + 1], ext[self.y]

    def deviance(self, par) -> float:
        """Laplace deviance at ``par`` (∞ where the cutpoints do not increase or no mode is
        found); the mode found starts the next evaluation's Newton iteration."""
        self.n_evals += 1
        alpha, beta, re = self.split(np.asarray(par, dtype=float))
        if np.any(np.diff(alpha) <= 0):
            return np.inf
        try:
            res = self.mode(alpha, beta, re, self.u)
        except (np.linalg.LinAlgError, ValueError, RuntimeError):
            return np.inf
        if res is None:
            return np.inf
        self.u, f, pdev = res[0], res[-2], res[-1]
        return pdev + f.logdet

    def _fixed_gradient(self, o: _Obs, h, t, r):
        """Deviance gradient in ``(α, β)``: ``h`` is the diagonal of ``ZΛA⁻¹Λ'Z'``, ``t`` and
        ``r`` the adjoint's ``ZΛs`` and ``v − W t`` (see ``value_and_gradient``)."""
        K1 = self.K - 1

        def per_cutpoint(up, lo):
            return np.bincount(
                self.up_idx[self.has_up], weights=up[self.has_up], minlength=K1
            ) + np.bincount(self.lo_idx[self.has_lo], weights=lo[self.has_lo], minlength=K1)

        g_alpha = -2.0 * per_cutpoint(o.l_up, o.l_lo)
        g_alpha += per_cutpoint(h * o.w_up + t * o.g_up, h * o.w_lo + t * o.g_lo)
        g_beta = -2.0 * self.X.T @ o.g + self.X.T @ r
        return g_alpha, g_beta


class _Laplace(_Cumulative, CrossedPairs):
    """Laplace deviance of the crossed cumulative-link model and its exact gradient."""

    def __init__(self, X, y, g1, g2, n_categories, link):
        super().__init__(X, y, n_categories, link)
        self.g = (np.asarray(g1, dtype=np.intp), np.asarray(g2, dtype=np.intp))
        self.sys = CrossedSystem(self.g[0], self.g[1])
        self.q = self.sys.q
        self.u = (np.zeros(self.q[0]), np.zeros(self.q[1]))

    # -- pieces ---------------------------------------------------------------------------------
    def _factor(self, sigma, w):
        self.sys.set_weights(w)
        return self.sys.factor(np.asarray(sigma, dtype=float))

    # -- inner: conditional mode ----------------------------------------------------------------
    def mode(self, alpha, beta, sigma, u0, *, tol=1e-10, max_iter=50):
        """Penalised Newton for ``u*``; returns (u, obs at the mode, factor, penalised deviance)."""
        upper, lower = self._bounds(alpha)
        offset = self.X @ beta
        u = (u0[0].copy(), u0[1].copy())

        def pdev(u_):
            o = _observations(
                self._eta(offset, sigma, u_), upper, lower, self.link, derivatives=False
            )
            if o is None:
                return np.inf, None
            return -2.0 * float(np.sum(o.loglik)) + float(u_[0] @ u_[0] + u_[1] @ u_[1]), o

        old, obs = pdev(u)
        if not np.isfinite(old):
            u = (np.zeros(self.q[0]), np.zeros(self.q[1]))
            old, obs = pdev(u)
            if not np.isfinite(old):
                return None
        for _ in range(max_iter):
            zg = self._zt(obs.g)
            grad = (sigma[0] * zg[0] - u[0], sigma[1] * zg[1] - u[1])
            if max(np.max(np.abs(grad[0]), initial=0), np.max(np.abs(grad[1]), initial=0)) < tol:
                break
            f = self._factor(sigma, obs.w)
            db, ds = f.solve(*self._bs(grad))
            du = self._pair(db, ds)
            # Newton decrement: the predicted decrease of the penalised deviance is about 2·gᵀA⁻¹g
            decrement = float(grad[0] @ du[0] + grad[1] @ du[1])
            if decrement < 1e-13 * (abs(old) + 1.0):
                # below rounding of the deviance: take the (tiny) step and stop
                new_u = (u[0] + du[0], u[1] + du[1])
                new, new_obs = pdev(new_u)
                if new_obs is not None:
                    u, obs, old = new_u, new_obs, new
                break
            new_u, new, new_obs = _halving(pdev, old, u, du)
            if not np.isfinite(new):
                break
            u, obs, old = new_u, new_obs, new
        eta = self._eta(offset, sigma, u)
        obs = _observations(eta, upper, lower, self.link)
        f = self._factor(sigma, obs.w)
        return u, obs, f, old

    def _inverse_blocks(self, f, sigma, w, columns=None):
        """Entries of ``A⁻¹`` needed by the gradient, at each rating.

        Returns ``(inv_11, inv_22, inv_12)`` indexed per rating (factor order 1, 2) and the
        diagonals of the two diagonal blocks. ``columns``: :func:`_small_columns` of ``f`` if
        already computed.
        """
        s = self.sys
        big = s.big
        qb, qs = self.q[big], self.q[1 - big]
        gb, gs = self.g[big], self.g[1 - big]
        sb, ss = float(sigma[big]), float(sigma[1 - big])
        # columns of A⁻¹ for the small factor: (A⁻¹)_{big,small} and (A⁻¹)_{small,small}
        inv_bs, inv_ss = _small_columns(f, qb, qs) if columns is None else columns
        # (A⁻¹)_{bb} = (I − (A⁻¹)_{bs} B') D⁻¹ with B = σ_b σ_s N, D = σ_b² D_b + 1
        Db = np.bincount(gb, weights=w, minlength=qb)
        d1 = sb * sb * Db + 1.0
        at_pairs = inv_bs[gb, gs]
        rowsum = np.bincount(gb, weights=w * at_pairs, minlength=qb)
        diag_bb = (1.0 - sb * ss * rowsum) / d1
        diag_ss = np.diag(inv_ss).copy()
        if big == 0:
            return diag_bb[gb], diag_ss[gs], at_pairs, diag_bb, diag_ss
        return diag_ss[gs], diag_bb[gb], at_pairs, diag_ss, diag_bb

    def value_and_gradient(self, par):
        """Laplace deviance and its exact gradient in ``(α, β, σ)``."""
        self.n_evals += 1
        par = np.asarray(par, dtype=float)
        alpha, beta, sigma = self.split(par)
        if np.any(np.diff(alpha) <= 0):
            return np.inf, np.zeros_like(par)
        try:
            res = self.mode(alpha, beta, sigma, self.u)
        except (np.linalg.LinAlgError, ValueError):
            return np.inf, np.zeros_like(par)
        if res is None:
            return np.inf, np.zeros_like(par)
        u, o, f, pdev = res
        self.u = u
        dev = pdev + f.logdet
        return dev, self._gradient(alpha, sigma, u, o, f)

    def _gradient(self, alpha, sigma, u, o, f):
        g1, g2 = self.g
        w = o.w
        i11, i22, i12, d11, d22 = self._inverse_blocks(f, sigma, w)
        h = sigma[0] ** 2 * i11 + sigma[1] ** 2 * i22 + 2.0 * sigma[0] * sigma[1] * i12
        v = h * o.w_eta
        # adjoint: s = A⁻¹ Λ'Z'v, t = ZΛs
        zv = self._zt(v)
        sb, ss = f.solve(*self._bs((sigma[0] * zv[0], sigma[1] * zv[1])))
        s = self._pair(sb, ss)
        t = sigma[0] * s[0][g1] + sigma[1] * s[1][g2]
        r = v - w * t
        g_alpha, g_beta = self._fixed_gradient(o, h, t, r)
        g_sigma = np.empty(2)
        for k, (gk, uk, dkk) in enumerate(((g1, u[0], d11), (g2, u[1], d22))):
            Dk = np.bincount(gk, weights=w, minlength=self.q[k])
            trace = 2.0 * (sigma[k] * (Dk @ dkk) + sigma[1 - k] * float(w @ i12))
            g_sigma[k] = (
                -2.0 * float(o.g @ uk[gk]) + float(r @ uk[gk]) + float(s[k][gk] @ o.g) + trace
            )
        return np.concatenate([g_alpha, g_beta, g_sigma])


def _small_columns(f, qb, qs):
    """``(A⁻¹)_{big,small}`` and ``(A⁻¹)_{small,small}`` of a factored system.

    With a dense Cholesky factor ``L`` of the Schur complement (``CrossedSystem``'s), the small
    block is ``S⁻¹`` by LAPACK's ``potri`` (a third of the work of solving for the identity) and
    ``(A⁻¹)_{big,small} = −σ_bσ_s D⁻¹ N S⁻¹``; the first column is checked against ``solve``,
    which gives both blocks otherwise.
    """
    cached = getattr(f, "_small_columns", None)
    if cached is not None:  # the gradient and the Laplace expansion both ask at one point
        return cached
    cols = _compute_small_columns(f, qb, qs)
    with contextlib.suppress(AttributeError):
        f._small_columns = cols
    return cols


def _compute_small_columns(f, qb, qs):
    L = getattr(f, "L", None)
    if isinstance(L, np.ndarray) and L.shape == (qs, qs):
        inv, info = sla.lapack.dpotri(L, lower=1)
        if info == 0:
            inv = np.tril(inv)  # potri fills the lower triangle only
            diag = np.diag(inv).copy()
            inv += inv.T
            np.fill_diagonal(inv, diag)
            inv_bs = -(f.tb * f.ts) * (f.system.N @ inv) / f.d1[:, None]
            e = np.zeros((qs, 1))
            e[0] = 1.0
            check_bs, check_ss = f.solve(np.zeros((qb, 1)), e)
            if np.allclose(check_ss[:, 0], inv[:, 0], rtol=1e-8, atol=1e-12) and np.allclose(
                check_bs[:, 0], inv_bs[:, 0], rtol=1e-8, atol=1e-12
            ):
                return inv_bs, inv
    return f.solve(np.zeros((qb, qs)), np.eye(qs))


def _categories(y, n_categories: int | None, link: str) -> tuple[np.ndarray, int]:
    """Checked category codes and their number ``K`` (every category must occur)."""
    if link not in LINKS:
        raise ValueError(f"link must be one of {sorted(LINKS)}, got {link!r}")
    y = np.asarray(y, dtype=np.intp)
    K = int(y.max()) + 1 if n_categories is None else int(n_categories)
    counts = np.bincount(y, minlength=K)
    if K < 2 or np.any(counts == 0):
        raise ValueError(
            f"every category 0..{K - 1} must occur at least once (counts {counts.tolist()})"
        )
    return y, K


def _standardised(X) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X − m) / s`` with the column means ``m`` and SDs ``s`` (1 for a constant column).

    The fits work on centred and scaled columns (a well-conditioned problem: a numeric
    covariate such as age far from 0 otherwise makes trial points extreme);
    :func:`_unstandardised` takes the estimates back to the columns of ``X``.
    """
    X = np.asarray(X, dtype=float)
    centre = X.mean(axis=0)
    spread = X.std(axis=0)
    spread[spread == 0] = 1.0
    return (X - centre) / spread, centre, spread


def _unstandardised(par, cov, centre, spread, K1: int):
    """Cutpoints, coefficients and their joint covariance for the columns of the original
    ``X``: ``β = β_s / s``, ``α = α_s + (m / s)·β_s`` (``par``, ``cov`` start with ``(α_s, β_s)``)."""
    p = len(centre)
    J = np.eye(K1 + p)
    J[:K1, K1:] = centre / spread
    J[K1:, K1:] = np.diag(1.0 / spread)
    alpha, beta = J[:K1] @ par[: K1 + p], J[K1:] @ par[: K1 + p]
    return alpha, beta, J @ cov[: K1 + p, : K1 + p] @ J.T


def _minimise_exact(value_and_gradient, x0, bounds):
    """L-BFGS-B with the exact gradient, at the tolerances of both ordinal fits."""
    return sopt.minimize(
        value_and_gradient,
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"ftol": 1e-14, "gtol": 1e-8, "maxiter": 1000, "maxcor": 20},
    )


def _result(lap, par, dev, grad, H, free, centre, spread, msg, **fields) -> CLMMFit:
    """The :class:`CLMMFit` at the optimum ``par`` of either Laplace deviance.

    ``H`` is the Hessian of the deviance (identity outside the ``free`` parameters); the
    covariance is the inverse Hessian of the negative log-likelihood ``D/2`` over the free
    parameters, as ``clmm``'s ``vcov``. ``fields`` are the random-effect estimates.
    """
    K1, n = lap.K - 1, lap.n
    scaled, grad_ok = gradient_check(grad, H, free)
    Hf = H[np.ix_(free, free)]
    hess_ok = bool(np.all(np.linalg.eigvalsh(Hf) > 0))
    cov_free = np.linalg.pinv(Hf / 2.0)
    cov = np.full((len(par), len(par)), np.nan)
    cov[np.ix_(free, free)] = (cov_free + cov_free.T) / 2.0
    alpha, beta, params_vcov = _unstandardised(par, cov, centre, spread, K1)
    if not grad_ok:
        msg += f"; scaled gradient {np.round(scaled, 6).tolist()} not ~0"
    if not hess_ok:
        msg += "; Hessian not positive definite: standard errors unreliable"
    k = len(par)
    return CLMMFit(
        beta=beta,
        vcov=params_vcov[K1:, K1:],
        cutpoints=alpha,
        cutpoint_vcov=params_vcov[:K1, :K1],
        params_vcov=params_vcov,
        deviance=float(dev),
        loglik=float(-dev / 2.0),
        aic=float(dev + 2 * k),
        bic=float(dev + k * np.log(n)),
        converged=grad_ok and hess_ok,
        message=msg,
        gradient=grad,
        n_evals=lap.n_evals,
        n=n,
        p=lap.p,
        link=lap.link,
        **fields,
    )


def _start(X, y, K, link):
    """Cutpoints from the cumulative proportions, β = 0, σ = 1 (as clmm's default ST)."""
    counts = np.bincount(y, minlength=K).astype(float)
    cum = np.clip(np.cumsum(counts)[:-1] / counts.sum(), 1e-4, 1 - 1e-4)
    cut = np.log(cum / (1 - cum)) if link == "logit" else ndtri(cum)
    return np.concatenate([cut, np.zeros(X.shape[1]), np.ones(2)])


_hessian = gradient_hessian


def fit_clmm(X, y, g1, g2, *, n_categories: int | None = None, link: str = "logit") -> CLMMFit:
    """Fit ``y ~ X + (1|g1) + (1|g2)``, cumulative link, by the Laplace approximation (as clmm).

    Parameters
    ----------
    X : ndarray (n, p)
        Full-rank fixed-effect design **without** an intercept column.
    y : ndarray of int (n,)
        Category codes ``0..K-1`` (ordered).
    g1, g2 : ndarray of int
        Codes of the crossed factors.
    n_categories : int, optional
        ``K`` (default ``y.max() + 1``); every category must occur.
    link : {"logit", "probit"}

    Returns
    -------
    CLMMFit

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g1, g2 = np.repeat(np.arange(60), 10), np.tile(np.arange(30), 20)
    >>> x = rng.integers(0, 2, 60)[g1].astype(float)[:, None]
    >>> eta = 0.8 * x[:, 0] + rng.normal(0, 0.7, 60)[g1] + rng.normal(0, 0.5, 30)[g2]
    >>> y = (eta[:, None] + rng.logistic(size=600)[:, None] > [-1.0, 0.5, 2.0]).sum(1)
    >>> fit = fit_clmm(x, y, g1, g2)
    >>> fit.converged, fit.cutpoints.shape
    (True, (3,))
    """
    y, K = _categories(y, n_categories, link)
    Xs, centre, spread = _standardised(X)
    lap = _Laplace(Xs, y, g1, g2, K, link)
    p, K1 = lap.p, K - 1
    start = _start(lap.X, y, K, link)
    bounds = [(None, None)] * (K1 + p) + [(0.0, None)] * 2

    def minimise(x0):
        return _minimise_exact(lap.value_and_gradient, x0, bounds)

    res = minimise(start)
    # σ = 0 is a stationary point of the deviance (it is even in σ): a projected step can stop
    # there although a positive σ fits better; restart from a positive σ when one does
    for _ in range(2):
        zero = np.flatnonzero(res.x[-2:] < SINGULAR_TOL)
        trials = []
        for k, value in ((k, v) for k in zero for v in (0.05, 0.3, 1.0)):
            x = np.array(res.x, dtype=float)
            x[K1 + p + k] = value
            trials.append((lap.deviance(x), k, x))
        better = [t for t in trials if t[0] < res.fun - 1e-8 * abs(res.fun)]
        if not better:
            break
        res = minimise(min(better, key=lambda t: t[0])[2])
    par = np.asarray(res.x, dtype=float)
    par[-2:] = np.where(par[-2:] < 1e-8, 0.0, par[-2:])
    msg = f"L-BFGS-B: {res.message}"

    def grad_fun(x):
        return lap.value_and_gradient(x)[1]

    free = np.ones(len(par), dtype=bool)
    free[-2:] = par[-2:] > SINGULAR_TOL
    # one Newton polish on the free parameters (L-BFGS-B stops at ~1e-8 of the deviance); the
    # Hessian is not recomputed after this small step
    H = _hessian(grad_fun, par, free)
    dev, grad = lap.value_and_gradient(par)
    try:
        step = np.linalg.solve(H, grad[free])
        trial = par.copy()
        trial[free] -= step
        trial_dev, trial_grad = lap.value_and_gradient(trial)
        if trial_dev <= dev:
            par, dev, grad = trial, trial_dev, trial_grad
    except np.linalg.LinAlgError:
        pass
    alpha_s, beta_s, sigma = lap.split(par)
    u = lap.mode(alpha_s, beta_s, sigma, lap.u)[0]
    return _result(
        lap,
        par,
        dev,
        grad,
        _embed(H, free),
        free,
        centre,
        spread,
        msg,
        theta=sigma,
        b1=sigma[0] * u[0],
        b2=sigma[1] * u[1],
        singular=(bool(sigma[0] < SINGULAR_TOL), bool(sigma[1] < SINGULAR_TOL)),
    )


def _embed(H, free):
    """Embed the free-parameter Hessian in a full matrix (identity elsewhere)."""
    full = np.eye(len(free))
    full[np.ix_(free, free)] = H
    return full


# ----------------------------------------------------------------------------- general terms
class _TermsLaplace(_Cumulative):
    """Laplace deviance of the cumulative-link model with general random terms (slopes).

    ``η = Xβ + ZΛ(θ)u`` with ``Z``, ``Λ(θ)`` of a :class:`~pluralign.models._random.RandomStructure`;
    the mode ``u*`` by penalised Newton (as :meth:`_Laplace.mode`) with ``A = Λ'Z'WZΛ + I``
    factored by :func:`~pluralign.models._random.factor_pls`.
    """

    def __init__(self, X, y, structure: RandomStructure, n_categories, link):
        super().__init__(X, y, n_categories, link)
        self.re = structure
        self.Z = structure.Z.tocsr()
        self.Zt = structure.Z.T.tocsr()
        self.u = np.zeros(structure.Q)
        self._ztwz = _WeightedCrossproduct(structure.Z)
        # the exact gradient needs A⁻¹ and (ZΛ)A⁻¹ densely: only for moderate sizes
        self.exact = structure.Q <= EXACT_MAX_Q and self.n * structure.Q <= EXACT_MAX_CELLS
        if self.exact:
            # pairs (non-zero z_ir of Z, entry (r, c) of Λ with θ index j): ∂(ZΛ)/∂θ_j
            Zc = structure.Z.tocoo()
            lr, lc, li = structure._lam_r, structure._lam_c, structure._lam_i
            order = np.argsort(lr, kind="stable")
            lr, lc, li = lr[order], lc[order], li[order]
            first = np.searchsorted(lr, Zc.col, side="left")
            last = np.searchsorted(lr, Zc.col, side="right")
            count = last - first
            which = np.repeat(first, count) + (
                np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
            )
            self._pi = np.repeat(Zc.row, count)
            self._pz = np.repeat(Zc.data, count)
            self._pc, self._pj = lc[which], li[which]

    def mode(self, alpha, beta, theta, u0, *, tol=1e-10, max_iter=50):
        """Penalised Newton for ``u*``: (u, factor, penalised deviance), or None if infeasible."""
        upper, lower = self._bounds(alpha)
        offset = self.X @ beta
        lam = self.re.lam(theta)
        ZL = (self.Z @ lam).tocsr()
        LtZt = ZL.T.tocsr()

        def pdev(u_):
            o = _observations(offset + ZL @ u_, upper, lower, self.link, derivatives=False)
            if o is None:
                return np.inf, None
            return -2.0 * float(np.sum(o.loglik)) + float(u_ @ u_), o

        u = u0.copy()
        old, obs = pdev(u)
        if not np.isfinite(old):
            u = np.zeros_like(u0)
            old, obs = pdev(u)
            if not np.isfinite(old):
                return None
        f = None
        for _ in range(max_iter):
            grad = LtZt @ obs.g - u
            if np.max(np.abs(grad), initial=0.0) < tol:
                break
            f = factor_pls(self._ztwz(obs.w), lam, self.re.block)
            du = f.solve(grad)
            decrement = float(grad @ du)
            if decrement < 1e-13 * (abs(old) + 1.0):
                new, new_obs = pdev(u + du)
                if new_obs is not None:
                    u, obs, old = u + du, new_obs, new
                    f = None
                break
            new_u, new, new_obs = _halving(pdev, old, u, du)
            if not np.isfinite(new):
                break
            u, obs, old = new_u, new_obs, new
            f = None
        if f is None:
            f = factor_pls(self._ztwz(obs.w), lam, self.re.block)
        return u, f, old

    def value_and_gradient(self, par):
        """Laplace deviance and its exact gradient in ``(α, β, θ)`` (see :class:`_Laplace`).

        With ``F(u) = Λ'Z'g − u = 0`` at the mode, the gradient is the envelope term plus
        ``∂ log|A|`` directly and through ``du*/dφ = A⁻¹ ∂F/∂φ`` (adjoint ``s``); the
        derivative of ``log|A|`` in θ has the trace ``2 tr(A⁻¹Λ'Z'WZ ∂Λ/∂θ_j)``.
        """
        self.n_evals += 1
        par = np.asarray(par, dtype=float)
        alpha, beta, theta = self.split(par)
        bad = np.inf, np.zeros_like(par)
        if np.any(np.diff(alpha) <= 0):
            return bad
        try:
            res = self.mode(alpha, beta, theta, self.u)
        except (np.linalg.LinAlgError, ValueError, RuntimeError):
            return bad
        if res is None:
            return bad
        u, f, pdev = res
        self.u = u
        upper, lower = self._bounds(alpha)
        lam = self.re.lam(theta)
        ZL = (self.Z @ lam).tocsr()
        o = _observations(self.X @ beta + ZL @ u, upper, lower, self.link)
        if o is None:
            return bad
        dev = pdev + f.logdet
        k, n = self.re.n_theta, self.n
        Ainv = f.inverse()
        ZLA = np.asarray(ZL @ Ainv)  # (n, Q)
        h = np.asarray(ZL.multiply(ZLA).sum(axis=1)).ravel()
        v = h * o.w_eta
        s_ = Ainv @ (ZL.T @ v)
        t = ZL @ s_
        r = v - o.w * t
        g_alpha, g_beta = self._fixed_gradient(o, h, t, r)
        pi, pj, pc, pz = self._pi, self._pj, self._pc, self._pz
        Zdu = np.bincount(pi * k + pj, weights=pz * u[pc], minlength=n * k).reshape(n, k)
        Zds = np.bincount(pi * k + pj, weights=pz * s_[pc], minlength=n * k).reshape(n, k)
        trace = np.bincount(pj, weights=pz * o.w[pi] * ZLA[pi, pc], minlength=k)
        g_theta = (r - 2.0 * o.g) @ Zdu + o.g @ Zds + 2.0 * trace
        return dev, np.concatenate([g_alpha, g_beta, g_theta])


class _WeightedCrossproduct:
    """``Z'WZ`` for changing diagonal weights ``W`` on the fixed sparsity pattern of ``Z'Z``.

    Each stored entry of ``Z'Z`` is a sum over rows of ``z_ri z_rj``; the products and the
    entry each one adds to are computed once, so a new ``W`` costs one weighted ``bincount``.
    """

    def __init__(self, Z):
        Z = Z.tocsr()
        Z.sort_indices()
        ZtZ = (Z.T @ Z).tocsc()
        ZtZ.sort_indices()
        self._pattern = ZtZ
        counts = np.diff(Z.indptr)
        width = int(counts.max(initial=0))
        # stored positions of each row's non-zeros, padded with −1
        pos = np.full((Z.shape[0], width), -1, dtype=np.int64)
        within = np.arange(len(Z.indices)) - np.repeat(Z.indptr[:-1], counts)
        pos[np.repeat(np.arange(Z.shape[0]), counts), within] = np.arange(len(Z.indices))
        a = np.repeat(pos, width, axis=1).ravel()
        b = np.tile(pos, (1, width)).ravel()
        r = np.repeat(np.arange(Z.shape[0]), width * width)
        keep = (a >= 0) & (b >= 0)
        a, b = a[keep], b[keep]
        n = ZtZ.shape[0]
        key = Z.indices[b].astype(np.int64) * n + Z.indices[a]  # (row ci, column cj), CSC order
        stored = np.repeat(np.arange(n, dtype=np.int64), np.diff(ZtZ.indptr)) * n + ZtZ.indices
        self._entry = np.searchsorted(stored, key)
        self._prod = Z.data[a] * Z.data[b]
        self._row = r[keep]

    def __call__(self, w):
        data = np.bincount(
            self._entry, weights=self._prod * w[self._row], minlength=self._pattern.nnz
        )
        out = self._pattern.copy()
        out.data = data
        return out


def fit_clmm_terms(
    X, y, structure: RandomStructure, *, n_categories: int | None = None, link: str = "logit"
) -> CLMMFit:
    """Fit ``y ~ X + <random terms>``, cumulative link, by the Laplace approximation (as clmm).

    The general path: random slopes such as ``(1 + gender | item)`` (correlated) or
    ``(1 + gender || item)`` (uncorrelated), one factor, several terms of a factor. The Laplace
    deviance (as :func:`fit_clmm`, with ``Λ(θ)`` of lme4's layout) is minimised over
    ``(α, β, θ)`` by bounded L-BFGS-B with its exact gradient (the log-determinant term
    through the implicit derivative of the modes, as :func:`fit_clmm`; finite differences,
    as clmm, when ``A⁻¹`` is too large to form densely: :data:`EXACT_MAX_Q`), followed by a
    Newton step with the central-difference Hessian; the covariance of ``(α, β)`` is the corresponding block of the
    inverse Hessian of ``D/2`` over all free parameters, as ``clmm``'s ``vcov``.

    Parameters
    ----------
    X : ndarray (n, p)
        Full-rank fixed-effect design **without** an intercept column.
    y : ndarray of int (n,)
        Category codes ``0..K-1``.
    structure : RandomStructure
        The random terms, coded for the rows of ``X``.
    n_categories : int, optional
        ``K`` (default ``y.max() + 1``); every category must occur.
    link : {"logit", "probit"}

    Returns
    -------
    CLMMFit
        ``theta`` is the full θ vector in lme4's order (latent scale, no residual factor),
        ``singular`` has one flag per term, ``b1``/``b2`` are the rater/item intercept modes
        and ``random`` holds every mode.

    Examples
    --------
    >>> from pluralign.models._random import RandomTerm
    >>> rng = np.random.default_rng(1)
    >>> g1, g2 = np.repeat(np.arange(80), 10), np.tile(np.arange(40), 20)
    >>> x = rng.integers(0, 2, 80)[g1].astype(float)
    >>> b = rng.normal(0, [0.6, 0.5], (40, 2))
    >>> eta = 0.5 * x + rng.normal(0, 0.5, 80)[g1] + b[g2, 0] + b[g2, 1] * x
    >>> y = (eta[:, None] + rng.logistic(size=800)[:, None] > [-1.0, 0.5, 2.0]).sum(1)
    >>> one, both = np.ones((800, 1)), np.column_stack([np.ones(800), x])
    >>> terms = [RandomTerm("rater", "1", True, ("Intercept",), one, g1, np.arange(80)),
    ...          RandomTerm("item", "1 + x", True, ("Intercept", "x"), both, g2, np.arange(40))]
    >>> fit = fit_clmm_terms(x[:, None], y, RandomStructure(terms))
    >>> fit.converged, fit.theta.shape
    (True, (4,))
    """
    y, K = _categories(y, n_categories, link)
    Xs, centre, spread = _standardised(X)
    lap = _TermsLaplace(Xs, y, structure, K, link)
    p, K1 = lap.p, K - 1
    start = np.concatenate([_start(lap.X, y, K, link)[: K1 + p], structure.start])
    lower = np.concatenate([np.full(K1 + p, -np.inf), structure.lower])
    bounded = np.concatenate([np.zeros(K1 + p, dtype=bool), structure.lower == 0])
    bounds = [(None, None)] * (K1 + p) + structure.bounds

    def minimise(x0):
        if lap.exact:
            return _minimise_exact(lap.value_and_gradient, x0, bounds)
        return sopt.minimize(
            lap.deviance,
            x0,
            method="L-BFGS-B",
            bounds=bounds,
            options={"ftol": 1e-14, "gtol": 1e-7, "eps": 1e-7, "maxiter": 1000, "maxcor": 20},
        )

    res = minimise(start)
    projected = np.where((np.asarray(res.x) <= lower + 1e-12) & (res.jac > 0), 0.0, res.jac)
    if lap.exact and not res.success and np.max(np.abs(projected)) > 1e-3:
        # the line search failed away from a stationary point: finite differences from there
        lap.exact = False
        res = minimise(res.x if np.all(np.isfinite(res.x)) else start)
        lap.exact = True
    # a relative SD at 0 is a stationary point of the deviance: restart from a positive value
    # when one fits better (as fit_clmm)
    for _ in range(2):
        zero = bounded & (res.x < SINGULAR_TOL)
        restart = better_start_off_zero(lap.deviance, res.x, zero, float(res.fun))
        if restart is None:
            break
        res = minimise(restart)
    par = np.asarray(res.x, dtype=float)
    par = np.where(bounded & (par < 1e-8), 0.0, par)
    msg = f"L-BFGS-B: {res.message}"
    dev = lap.deviance(par)
    # Newton polish on the free parameters with the central-difference Hessian
    free = ~(bounded & (par < SINGULAR_TOL))

    def derivatives(x, f0):
        if lap.exact:
            grad = lap.value_and_gradient(x)[1]
            H = np.eye(len(x))
            H[np.ix_(free, free)] = _hessian(lambda z: lap.value_and_gradient(z)[1], x, free)
            return grad, H
        return _stencil(lap.deviance, x, f0, lower=lower)

    grad, H = derivatives(par, dev)
    try:
        step = np.linalg.solve(H[np.ix_(free, free)], grad[free])
        trial = par.copy()
        trial[free] -= step
        trial_dev = lap.deviance(trial)
        if trial_dev <= dev and np.all(trial[bounded] >= 0):
            par, dev = trial, trial_dev
            grad = (
                lap.value_and_gradient(par)[1]
                if lap.exact
                else _stencil(lap.deviance, par, dev, lower=lower)[0]
            )
    except np.linalg.LinAlgError:
        pass
    alpha_s, beta_s, theta = lap.split(par)
    u = lap.mode(alpha_s, beta_s, theta, lap.u)[0]
    terms = TermsFit(structure, np.asarray(structure.lam(theta) @ u))
    n_r, n_i = _n_levels(structure, "rater"), _n_levels(structure, "item")
    return _result(
        lap,
        par,
        dev,
        grad,
        H,
        free,
        centre,
        spread,
        msg,
        theta=theta,
        b1=terms.intercept_modes("rater", n_r),
        b2=terms.intercept_modes("item", n_i),
        singular=tuple(structure.singular(theta)),
        random=terms,
    )


def logit_terms_optimum(X, y, structure: RandomStructure, beta0):
    """The logistic mixed model with general random terms as the two-category cumulative logit.

    ``P(y = 1) = F(η)`` is ``P(y > 0) = F(η − α)`` with ``α = −β₀``, so the Laplace deviance
    of ``glmer`` is :class:`_TermsLaplace`'s, whose exact gradient lets L-BFGS-B converge in
    a few dozen evaluations. ``X`` has the intercept in its first column; returns
    ``(θ, β, converged, message, gradient, scaled gradient, gradient ok, evaluations)`` in
    ``glmer``'s parametrisation ``(θ, β)``, or None when the model is too large for the exact
    gradient.
    """
    lap = _TermsLaplace(np.asarray(X)[:, 1:], np.asarray(y, dtype=np.intp), structure, 2, "logit")
    if not lap.exact:
        return None
    p1, k = lap.p, structure.n_theta
    # ordinal order (α, β₁.., θ) ↔ glmer order (θ, β₀, β₁..)
    to_glmer = np.r_[1 + p1 : 1 + p1 + k, 0 : 1 + p1]
    sign = np.ones(1 + p1 + k)
    sign[0] = -1.0

    def ordinal(par_glmer):
        x = np.empty_like(par_glmer)
        x[to_glmer] = par_glmer
        return x * sign

    def glmer_grad(par_glmer):
        return (lap.value_and_gradient(ordinal(par_glmer))[1] * sign)[to_glmer]

    bounds = [(None, None)] * (1 + p1) + structure.bounds
    start = ordinal(np.concatenate([structure.start, beta0]))
    bounded = np.concatenate([np.zeros(1 + p1, dtype=bool), structure.lower == 0])
    for _ in range(3):
        x, ok, msg = minimise_with_gradient(lap.value_and_gradient, start, bounds)
        zero = bounded & (x < SINGULAR_TOL)
        start = better_start_off_zero(lap.deviance, x, zero, lap.deviance(x))
        if start is None:
            break
    x = np.where(bounded & (x < 1e-10), 0.0, x)
    par = (x * sign)[to_glmer]
    grad = glmer_grad(par)
    at_bound = np.concatenate([structure.lower == 0, np.zeros(1 + p1, dtype=bool)]) & (
        par < SINGULAR_TOL
    )
    free = ~at_bound
    H = np.eye(len(par))
    H[np.ix_(free, free)] = gradient_hessian(glmer_grad, par, free)
    scaled, grad_ok = gradient_check(grad, H, free)
    # a line search that cannot improve on the optimum ends "abnormally": lme4's checks decide
    return par[:k], par[k:], ok or grad_ok, msg, grad, scaled, grad_ok, lap.n_evals
