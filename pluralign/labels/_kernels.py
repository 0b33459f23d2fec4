"""Numeric kernels on NumPy arrays: coincidence matrices, Krippendorff's alpha, pair counts.

Divergences and entropies come from SciPy (``jensenshannon``, ``stats.entropy``).

Nothing here knows about pandas or studies; the user-facing functions build the arrays.
"""

from __future__ import annotations

import numpy as np

LEVELS_OF_MEASUREMENT = ("nominal", "ordinal", "interval", "ratio")


def weighted_counts(
    unit: np.ndarray,
    value: np.ndarray,
    n_units: int,
    n_values: int,
    weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit value counts ``W`` and sums of squared weights ``S`` (both units × values).

    ``weight`` is the multiplicity of each rating (its rater's bootstrap count); ``S`` lets the
    coincidence kernel leave out pairs of copies of the same rater.
    """
    key = unit * n_values + value
    w = np.ones(len(unit)) if weight is None else np.asarray(weight, dtype=float)
    W = np.bincount(key, weights=w, minlength=n_units * n_values).reshape(n_units, n_values)
    S = np.bincount(key, weights=w * w, minlength=n_units * n_values).reshape(n_units, n_values)
    return W, S


def coincidences(W: np.ndarray, S: np.ndarray | None = None, unit_weight: np.ndarray | None = None):
    """Krippendorff's coincidence matrix, allowing repeated raters and repeated units.

    Each pairable unit contributes its ``m_u`` values, spread over its ordered pairs of values
    from *different* raters. With every rater and unit counted once this is Krippendorff's
    ``o_ck = Σ_u (n_uc n_uk − δ_ck n_uc) / (m_u − 1)``; with bootstrap copies of a rater the
    pairs between copies of the same rater (which always agree) are left out, so a rater
    bootstrap does not inflate agreement.

    Parameters
    ----------
    W : ndarray (units × values)
        (Weighted) number of ratings of each value in each unit.
    S : ndarray, optional
        Sum of squared rater weights per unit × value; defaults to ``W`` (every weight 1).
    unit_weight : ndarray, optional
        Multiplicity of each unit (item bootstrap).

    Returns
    -------
    coinc : ndarray (values × values)
    n_units : int
        Number of pairable units (with weight > 0).
    """
    S = W if S is None else S
    m = W.sum(axis=1)
    pairs = m * m - S.sum(axis=1)
    a = np.ones(len(W)) if unit_weight is None else np.asarray(unit_weight, dtype=float)
    ok = (pairs > 1e-9) & (a > 0)
    f = np.zeros(len(W))
    f[ok] = a[ok] * m[ok] / pairs[ok]
    coinc = (W * f[:, None]).T @ W - np.diag((S * f[:, None]).sum(axis=0))
    return coinc, int(ok.sum())


def cross_coincidences(A: np.ndarray, B: np.ndarray, unit_weight: np.ndarray | None = None):
    """Coincidence matrix of pairs of values from two disjoint groups of raters.

    A unit with ratings from both groups contributes its ``m_A + m_B`` values, spread over its
    ordered pairs made of one value from each group (Krippendorff's construction with the
    pairs restricted to raters from different groups).
    """
    mA, mB = A.sum(axis=1), B.sum(axis=1)
    a = np.ones(len(A)) if unit_weight is None else np.asarray(unit_weight, dtype=float)
    ok = (mA > 0) & (mB > 0) & (a > 0)
    f = np.zeros(len(A))
    f[ok] = a[ok] * (mA[ok] + mB[ok]) / (2 * mA[ok] * mB[ok])
    AB = (A * f[:, None]).T @ B
    return AB + AB.T, int(ok.sum())


def distance_matrix(levels: np.ndarray, level: str, totals: np.ndarray) -> np.ndarray:
    """Krippendorff's squared difference function δ²(c, k) for each pair of scale points.

    ``totals`` are the coincidence margins ``n_c`` (used by the ordinal metric).
    """
    v = np.asarray(levels, dtype=float)
    if level == "nominal":
        return 1.0 - np.eye(len(v))
    if level == "interval":
        return (v[:, None] - v[None, :]) ** 2
    if level == "ratio":
        s = v[:, None] + v[None, :]
        d = np.divide(v[:, None] - v[None, :], s, out=np.zeros_like(s), where=s != 0)
        return d**2
    if level == "ordinal":
        cum = np.concatenate([[0.0], np.cumsum(totals)])
        lo = np.minimum.outer(np.arange(len(v)), np.arange(len(v)))
        hi = np.maximum.outer(np.arange(len(v)), np.arange(len(v)))
        between = cum[hi + 1] - cum[lo]
        return (between - (totals[lo] + totals[hi]) / 2) ** 2
    raise ValueError(f"level must be one of {LEVELS_OF_MEASUREMENT}, got {level!r}")


def alpha_from_coincidences(coinc: np.ndarray, levels: np.ndarray, level: str) -> float:
    """Krippendorff's alpha ``1 − (n − 1) Σ o_ck δ²_ck / Σ n_c n_k δ²_ck`` (NaN if undefined)."""
    totals = coinc.sum(axis=0)
    n = totals.sum()
    if n <= 1:
        return float("nan")
    d = distance_matrix(levels, level, totals)
    expected = (np.outer(totals, totals) * d).sum()
    if expected <= 0:
        return float("nan")
    return float(1.0 - (n - 1) * (coinc * d).sum() / expected)


def pair_probability(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Counts of cross pairs with ``a > b``, ``a == b`` and ``a < b`` over all pairs of values."""
    sb = np.sort(np.asarray(b, dtype=float))
    a = np.asarray(a, dtype=float)
    below = np.searchsorted(sb, a, side="left")
    upto = np.searchsorted(sb, a, side="right")
    wins = float(below.sum())
    ties = float((upto - below).sum())
    return wins, ties, len(a) * len(sb) - wins - ties
