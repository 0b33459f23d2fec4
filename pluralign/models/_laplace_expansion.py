"""Second-order correction of the Laplace marginal of the crossed cumulative-logit model.

Laplace's method integrates ``exp f(u)``, ``f(u) = Σ_o ℓ_o(η_o) − |u|²/2`` with
``η_o = x_oβ + σ₁u₁[r(o)] + σ₂u₂[i(o)]``, as if ``f`` were quadratic around its mode ``u*``. The
next terms of the expansion (Shun & McCullagh 1995, eq. 2.6; the "Laplace6" of Raudenbush, Yang &
Yosef 2000) add, with ``V = A⁻¹`` the Laplace covariance of ``u``, ``z_o`` the loading of rating
``o`` on ``u`` (``σ₁`` at its rater, ``σ₂`` at its item), ``c_{oo'} = z_o'Vz_{o'}`` (the Laplace
covariance of two linear predictors), ``h_o = c_{oo}`` and ``ℓ⁽ᵏ⁾_o`` the derivatives of each
rating's log-likelihood in ``η``::

    log ∫ e^f ≈ Laplace + ⅛ Σ_o ℓ⁽⁴⁾_o h_o² + ⅛ m'Vm + ¹⁄₁₂ Σ_{o,o'} ℓ⁽³⁾_o ℓ⁽³⁾_{o'} c_{oo'}³,
    m = Σ_o ℓ⁽³⁾_o h_o z_o,

and the mean of ``u`` moves from its mode by ``½ V m``. Because ``f`` depends on ``u`` only
through the linear predictors, the third and fourth derivative arrays are sums of rank-one
terms and every term is a sum over ratings or over pairs of ratings: no array of the size of
``u`` cubed is formed. Pairs of ratings that share neither rater nor item have ``c_{oo'}`` of the
order of the *square* of a shared pair's, so the cubic term keeps the pairs that share a rater or
an item (on a 150 × 50 study dropping the others changes it by less than 0.1 %).

With about five ratings per rater the per-unit terms are not small, so the part of the
expansion that treats each rater and each item alone (the other factor at its mode) is replaced
by its exact value, one-dimensional Gauss–Hermite quadrature per unit (``unit_quadrature`` in
:mod:`pluralign.models._bayes_laplace`): what is left to the expansion is the coupling of the
two factors, which is smaller.

Hand-written: no library computes higher-order Laplace terms for crossed designs (lme4,
ordinal and INLA stop at the first order).

References
----------
Shun, Z. & McCullagh, P. (1995). Laplace approximation of high dimensional integrals. JRSS B 57(4),
749–760.
Raudenbush, S. W., Yang, M.-L. & Yosef, M. (2000). Maximum likelihood for generalized linear models
with nested random effects via high-order, multivariate Laplace approximation. JCGS 9(1), 141–157.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

__all__ = ["RatingPairs", "SecondOrder", "loglik_derivatives", "second_order", "unit_second_order"]


def _logistic(x: np.ndarray) -> tuple[np.ndarray, ...]:
    """The logistic density and its first three derivatives."""
    F = expit(x)
    s = F * (1.0 - F)
    t = 1.0 - 2.0 * F
    return s, s * t, s * (1.0 - 6.0 * s), s * t * (1.0 - 12.0 * s)


def loglik_derivatives(
    eta: np.ndarray, upper: np.ndarray, lower: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(−ℓ'', ℓ''', ℓ'''')`` in ``η`` of ``ℓ = log[F(α_y − η) − F(α_{y−1} − η)]`` (logit).

    Examples
    --------
    >>> w, l3, l4 = loglik_derivatives(np.zeros(1), np.array([1.0]), np.array([-1.0]))
    >>> [round(float(v[0]), 4) for v in (w, l3, l4)]
    [0.3932, 0.0, -0.0401]
    """
    a, b = upper - eta, lower - eta
    P = np.where(a + b > 0, expit(-b) - expit(-a), expit(a) - expit(b))
    da, db = _logistic(a), _logistic(b)
    p1, p2, p3, p4 = ((x - y) / P for x, y in zip(da, db, strict=True))
    # cumulants of (∂a + ∂b) log P; ∂/∂η = −(∂a + ∂b)
    d2 = p2 - p1 * p1
    d3 = p3 - 3.0 * p1 * p2 + 2.0 * p1**3
    d4 = p4 - 4.0 * p1 * p3 - 3.0 * p2 * p2 + 12.0 * p1 * p1 * p2 - 6.0 * p1**4
    return -d2, -d3, d4


def _within(codes: np.ndarray, q: int) -> tuple[np.ndarray, np.ndarray]:
    """Every ordered pair ``(o, o')`` of ratings with the same code (``o = o'`` included)."""
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=q)
    starts = np.cumsum(counts) - counts
    rep = counts[codes[order]]
    left = np.repeat(order, rep)
    offset = np.arange(int(rep.sum())) - np.repeat(np.cumsum(rep) - rep, rep)
    right = order[np.repeat(starts[codes[order]], rep) + offset]
    return left, right


@dataclass(frozen=True)
class RatingPairs:
    """The ordered pairs of ratings that share a rater, or an item but not the rater."""

    left: np.ndarray
    right: np.ndarray

    @classmethod
    def build(cls, g: tuple[np.ndarray, np.ndarray], q: tuple[int, int]) -> RatingPairs:
        l1, r1 = _within(g[0], q[0])
        l2, r2 = _within(g[1], q[1])
        keep = g[0][l2] != g[0][r2]
        return cls(np.concatenate([l1, l2[keep]]), np.concatenate([r1, r2[keep]]))


@dataclass(frozen=True)
class SecondOrder:
    """Terms of the expansion (module notes) and the mean shift ``½ V m`` in factor order."""

    quartic: float
    vector: float
    cubic: float
    shift: tuple[np.ndarray, np.ndarray]

    @property
    def total(self) -> float:
        return self.quartic + self.vector + self.cubic


def second_order(
    *,
    g: tuple[np.ndarray, np.ndarray],
    q: tuple[int, int],
    big: int,
    sigma: np.ndarray,
    w: np.ndarray,
    l3: np.ndarray,
    l4: np.ndarray,
    inv_bs: np.ndarray,
    inv_ss: np.ndarray,
    h: np.ndarray,
    solve,
    pairs: RatingPairs,
) -> SecondOrder:
    """The second-order terms at one point.

    ``inv_bs``/``inv_ss``: the (big, small) and (small, small) blocks of ``V = A⁻¹``; ``h``: the
    Laplace variance of each rating's linear predictor; ``solve``: ``r ↦ V r`` for a pair of
    arrays in factor order; ``big``: which factor is the big block.
    """
    small = 1 - big
    gb, gs = g[big], g[small]
    sb, ss = float(sigma[big]), float(sigma[small])
    d1 = sb * sb * np.bincount(gb, weights=w, minlength=q[big]) + 1.0
    quartic = float(np.sum(l4 * h * h)) / 8.0
    a = l3 * h
    m = tuple(sigma[k] * np.bincount(g[k], weights=a, minlength=q[k]) for k in (0, 1))
    vm = solve(m)
    vector = float(m[0] @ vm[0] + m[1] @ vm[1]) / 8.0
    # covariance of the linear predictors of each pair: σ_b² V_bb + σ_bσ_s (V_bs + V_sb) + σ_s² V_ss
    left, right = pairs.left, pairs.right
    jb, kb = gb[left], gb[right]
    js, ks = gs[left], gs[right]
    v_bb = np.empty(len(left))
    same = jb == kb
    # V_bb's diagonal, and its other entries −(V_bs B')_{jk} / d_k with B = σ_bσ_s N_w
    rowsum = np.bincount(gb, weights=w * inv_bs[gb, gs], minlength=q[big])
    diag = (1.0 - sb * ss * rowsum) / d1
    v_bb[same] = diag[jb[same]]
    other = np.flatnonzero(~same)
    if other.size:
        lo, ro = _within_rows(gb, q[big], kb[other])
        vals = inv_bs[jb[other][lo], gs[ro]] * w[ro]
        v_bb[other] = -sb * ss * np.bincount(lo, weights=vals, minlength=other.size) / d1[kb[other]]
    c = sb * sb * v_bb + sb * ss * (inv_bs[jb, ks] + inv_bs[kb, js]) + ss * ss * inv_ss[js, ks]
    cubic = float(np.sum(l3[left] * l3[right] * c**3)) / 12.0
    return SecondOrder(quartic, vector, cubic, (0.5 * vm[0], 0.5 * vm[1]))


def _within_rows(codes: np.ndarray, q: int, units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each entry ``p`` of ``units``, every rating ``o`` with ``codes[o] == units[p]``:
    returned as parallel arrays ``(p, o)``."""
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=q)
    starts = np.cumsum(counts) - counts
    rep = counts[units]
    p = np.repeat(np.arange(len(units)), rep)
    offset = np.arange(int(rep.sum())) - np.repeat(np.cumsum(rep) - rep, rep)
    return p, order[np.repeat(starts[units], rep) + offset]


def unit_second_order(
    g: tuple[np.ndarray, np.ndarray],
    q: tuple[int, int],
    sigma: np.ndarray,
    w: np.ndarray,
    l3: np.ndarray,
    l4: np.ndarray,
) -> tuple[float, tuple[np.ndarray, np.ndarray]]:
    """The same expansion for each rater and each item alone (the other factor at its mode):
    ``Σ_j [f⁽⁴⁾_j/(8h_j²) + 5 f⁽³⁾_j²/(24h_j³)]`` and the mean shifts ``f⁽³⁾_j/(2h_j²)``."""
    total, shifts = 0.0, []
    for k in (0, 1):
        h = 1.0 + sigma[k] ** 2 * np.bincount(g[k], weights=w, minlength=q[k])
        f3 = sigma[k] ** 3 * np.bincount(g[k], weights=l3, minlength=q[k])
        f4 = sigma[k] ** 4 * np.bincount(g[k], weights=l4, minlength=q[k])
        total += float(np.sum(f4 / (8.0 * h * h) + 5.0 * f3 * f3 / (24.0 * h**3)))
        shifts.append(f3 / (2.0 * h * h))
    return total, (shifts[0], shifts[1])
