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

With about five ratings per rater the per-unit terms are not small, and beyond second order
the expansion is too steep in σ (on 100 raters × 5 ratings, 100 items × 5, it changes 4–6 %
faster over ±2 SD of log σ than the integral by importance sampling does; at paper scale that
put the SDs' posterior means 0.1 SD high). What lies beyond second order is therefore added as
a cluster expansion of the remainder (exact minus second order): each rater and each item alone
(the other factor at its mode) by one-dimensional Gauss–Hermite quadrature (``unit_quadrature``
in :mod:`pluralign.models._bayes_laplace`), and each rater–item pair with a rating in common by
two-dimensional quadrature (:func:`pair_remainder`), less its rater's and its item's own
remainders. With the pairs, the change of the integral agrees with importance sampling within
0.5 % on that study.

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

from pluralign.models._bayes_model import log_sigmoid

#: Gauss–Hermite nodes per axis of the rater–item pair integrals (:func:`pair_remainder`).
N_PAIR_NODES = 7

__all__ = [
    "RatingPairs",
    "SecondOrder",
    "log_lik",
    "loglik_derivatives",
    "pair_remainder",
    "second_order",
    "unit_second_order",
]


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
    >>> w, l3, l4 = loglik_derivatives(np.array([0.5]), np.array([1.0]), np.array([-1.0]))
    >>> [round(float(v[0]), 4) for v in (w, l3, l4)]
    [0.3842, 0.0372, 0.0807]
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


@dataclass(frozen=True)
class RatingPairs:
    """The ordered pairs of ratings that share a rater, or an item but not the rater."""

    left: np.ndarray
    right: np.ndarray

    @classmethod
    def build(cls, g: tuple[np.ndarray, np.ndarray], q: tuple[int, int]) -> RatingPairs:
        l1, r1 = _within_rows(g[0], q[0], g[0])
        l2, r2 = _within_rows(g[1], q[1], g[1])
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


def _segment_sum(p: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Rows of ``values`` summed by their (sorted) group ``p`` into an ``(n, k)`` array."""
    out = np.zeros((n, values.shape[1]))
    if len(p):
        starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])
        out[p[starts]] = np.add.reduceat(values, starts, axis=0)
    return out


def unit_second_order(
    g: tuple[np.ndarray, np.ndarray],
    q: tuple[int, int],
    sigma: np.ndarray,
    w: np.ndarray,
    l3: np.ndarray,
    l4: np.ndarray,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The same expansion for each rater and each item alone (the other factor at its mode),
    per unit: ``f⁽⁴⁾_j/(8h_j²) + 5 f⁽³⁾_j²/(24h_j³)`` and the mean shifts ``f⁽³⁾_j/(2h_j²)``."""
    terms, shifts = [], []
    for k in (0, 1):
        h = 1.0 + sigma[k] ** 2 * np.bincount(g[k], weights=w, minlength=q[k])
        f3 = sigma[k] ** 3 * np.bincount(g[k], weights=l3, minlength=q[k])
        f4 = sigma[k] ** 4 * np.bincount(g[k], weights=l4, minlength=q[k])
        terms.append(f4 / (8.0 * h * h) + 5.0 * f3 * f3 / (24.0 * h**3))
        shifts.append(f3 / (2.0 * h * h))
    return (terms[0], terms[1]), (shifts[0], shifts[1])


def log_lik(eta: np.ndarray, upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """``log[F(α_y − η) − F(α_{y−1} − η)]`` of each rating, logit link (stable in the tails)."""
    gap = np.log1p(-np.exp(np.minimum(lower - upper, -1e-300)))
    return log_sigmoid(upper - eta) + log_sigmoid(eta - lower) + gap


def _log_lik_up_to_constant(eta, upper, lower):
    """:func:`log_lik` less ``log(1 − e^{α_{y−1} − α_y})``, which does not depend on ``η``."""
    return log_sigmoid(upper - eta) + log_sigmoid(eta - lower)


def pair_remainder(
    *,
    g: tuple[np.ndarray, np.ndarray],
    q: tuple[int, int],
    sigma: np.ndarray,
    u: tuple[np.ndarray, np.ndarray],
    eta: np.ndarray,
    upper: np.ndarray,
    lower: np.ndarray,
    w: np.ndarray,
    l3: np.ndarray,
    l4: np.ndarray,
    unit_rest: tuple[np.ndarray, np.ndarray],
    n_nodes: int = N_PAIR_NODES,
) -> np.ndarray:
    """What each rater–item pair adds beyond second order, beyond its rater and its item alone.

    For every rater ``r`` and item ``i`` with a rating in common, the integral over ``(u_r, u_i)``
    of their ratings' likelihood (everything else at the mode) is taken by tensor Gauss–Hermite
    quadrature on the pair's Laplace Gaussian. Its log ratio to the Laplace value minus its own
    second-order terms is the pair's remainder; subtracting the remainders of ``r`` and ``i``
    alone (``unit_rest``: exact minus second order, per unit) leaves what the coupling through
    this pair adds beyond second order (the pair terms of a cluster expansion of the remainder).
    Returns one value per pair.
    """
    # the factor with more ratings per unit goes first: its other ratings move along one axis of
    # the nodes only (n values instead of n²)
    first = 0 if len(g[0]) / q[0] >= len(g[1]) / q[1] else 1
    g1, g2 = g[first], g[1 - first]
    q1, q2 = q[first], q[1 - first]
    s1, s2 = float(sigma[first]), float(sigma[1 - first])
    u1, u2 = u[first], u[1 - first]
    rest1, rest2 = unit_rest[first], unit_rest[1 - first]
    key = g1 * q2 + g2
    keys, pair_of = np.unique(key, return_inverse=True)
    pr, pi = keys // q2, keys % q2
    n_pairs = len(keys)
    # the pair's 2 × 2 Laplace precision and its covariance (Cholesky factor)
    a11 = 1.0 + s1 * s1 * np.bincount(g1, weights=w, minlength=q1)[pr]
    a22 = 1.0 + s2 * s2 * np.bincount(g2, weights=w, minlength=q2)[pi]
    a12 = s1 * s2 * np.bincount(pair_of, weights=w, minlength=n_pairs)
    det = a11 * a22 - a12 * a12
    c11, c22, c12 = a22 / det, a11 / det, -a12 / det
    L11 = np.sqrt(c11)
    L21 = c12 / L11
    L22 = np.sqrt(c22 - L21 * L21)
    z, wt = np.polynomial.hermite_e.hermegauss(n_nodes)
    log_wt = np.log(wt / wt.sum())
    z1, z2 = (a.ravel() for a in np.meshgrid(z, z, indexing="ij"))
    log_w = (log_wt[:, None] + log_wt[None, :]).ravel()
    d1 = L11[:, None] * z1[None, :]  # deviations of the two effects at each node: (pairs, nodes)
    d2 = L21[:, None] * z1[None, :] + L22[:, None] * z2[None, :]
    base = _log_lik_up_to_constant(eta, upper, lower)
    total = np.zeros((n_pairs, len(z1)))
    # the first unit's other ratings (on the n values of its own axis), the ratings of the pair
    # (both effects), then the second unit's other ratings
    p, o = _within_rows(g1, q1, pr)
    both = g2[o] == pi[p]
    po, oo = p[~both], o[~both]
    e = eta[oo][:, None] + s1 * L11[po][:, None] * z[None, :]
    alone = _segment_sum(
        po,
        _log_lik_up_to_constant(e, upper[oo][:, None], lower[oo][:, None]) - base[oo][:, None],
        n_pairs,
    )
    total += np.repeat(alone, n_nodes, axis=1)  # z1 is the slow index of the nodes
    pb, ob = p[both], o[both]
    e = eta[ob][:, None] + s1 * d1[pb] + s2 * d2[pb]
    total += _segment_sum(
        pb,
        _log_lik_up_to_constant(e, upper[ob][:, None], lower[ob][:, None]) - base[ob][:, None],
        n_pairs,
    )
    p, o = _within_rows(g2, q2, pi)
    keep = g1[o] != pr[p]
    p, o = p[keep], o[keep]
    e = eta[o][:, None] + s2 * d2[p]
    total += _segment_sum(
        p,
        _log_lik_up_to_constant(e, upper[o][:, None], lower[o][:, None]) - base[o][:, None],
        n_pairs,
    )
    ur, ui = u1[pr][:, None], u2[pi][:, None]
    log_ratio = (
        total
        - 0.5 * ((ur + d1) ** 2 - ur**2 + (ui + d2) ** 2 - ui**2)
        + 0.5 * (z1 * z1 + z2 * z2)[None, :]
        + log_w[None, :]
    )
    top = log_ratio.max(axis=1)
    exact = top + np.log(np.exp(log_ratio - top[:, None]).sum(axis=1))
    # the pair's second-order terms: three kinds of rating, loading (σ₁, 0), (0, σ₂), (σ₁, σ₂)
    s3_both = np.bincount(pair_of, weights=l3, minlength=n_pairs)
    s4_both = np.bincount(pair_of, weights=l4, minlength=n_pairs)
    s3 = (
        np.bincount(g1, weights=l3, minlength=q1)[pr] - s3_both,
        np.bincount(g2, weights=l3, minlength=q2)[pi] - s3_both,
        s3_both,
    )
    s4 = (
        np.bincount(g1, weights=l4, minlength=q1)[pr] - s4_both,
        np.bincount(g2, weights=l4, minlength=q2)[pi] - s4_both,
        s4_both,
    )
    load = ((s1, 0.0), (0.0, s2), (s1, s2))

    def cov(a, b):
        return a[0] * b[0] * c11 + (a[0] * b[1] + a[1] * b[0]) * c12 + a[1] * b[1] * c22

    quartic = sum(s4[t] * cov(load[t], load[t]) ** 2 for t in range(3)) / 8.0
    cubic = sum(s3[t] * s3[v] * cov(load[t], load[v]) ** 3 for t in range(3) for v in range(3))
    m1 = sum(s3[t] * cov(load[t], load[t]) * load[t][0] for t in range(3))
    m2 = sum(s3[t] * cov(load[t], load[t]) * load[t][1] for t in range(3))
    vector = (m1 * m1 * c11 + 2.0 * m1 * m2 * c12 + m2 * m2 * c22) / 8.0
    second = quartic + cubic / 12.0 + vector
    return exact - second - rest1[pr] - rest2[pi]
