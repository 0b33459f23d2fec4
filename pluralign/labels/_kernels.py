"""Numeric kernels on NumPy arrays: coincidence matrices, Krippendorff's alpha, pair counts,
and the permutation null of the Jensen–Shannon divergence between two groups' rating counts.

Divergences and entropies come from SciPy (``jensenshannon``, ``stats.entropy``).

Nothing here knows about pandas or studies; the user-facing functions build the arrays.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import jensenshannon

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


def jsd_counts(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Plug-in Jensen–Shannon divergence (base 2, in [0, 1]) between count vectors (last axis).

    Each row is normalised to shares first, so counts and shares give the same value.
    """
    return jensenshannon(a, b, base=2, axis=-1) ** 2


def relabelled_counts(
    counts_a: np.ndarray, counts_b: np.ndarray, size: int, rng: np.random.Generator
) -> np.ndarray:
    """Group A's counts after shuffling the group labels of each unit's ratings: (size, units, K).

    Shuffling the labels of a unit's ``n_a + n_b`` ratings and giving the first ``n_a`` to A draws
    A's counts from the multivariate hypergeometric distribution of the pooled counts; it is
    drawn as a chain of univariate hypergeometric draws, one per value, vectorised over units
    and permutations. B's counts are the pooled counts minus A's.
    """
    pooled = np.asarray(counts_a + counts_b, dtype=np.int64)
    left_to_draw = np.broadcast_to(
        np.asarray(counts_a).sum(axis=-1).astype(np.int64), (size, len(pooled))
    )
    left_in_urn = pooled.sum(axis=-1)
    out = np.empty((size, *pooled.shape), dtype=np.int64)
    for k in range(pooled.shape[1] - 1):
        good = pooled[:, k]
        drawn = rng.hypergeometric(good, left_in_urn - good, left_to_draw)
        out[..., k] = drawn
        left_to_draw = left_to_draw - drawn
        left_in_urn = left_in_urn - good
    out[..., -1] = left_to_draw
    return out


def jsd_permutation_null(
    counts_a: np.ndarray,
    counts_b: np.ndarray,
    n_perm: int,
    rng: np.random.Generator,
    *,
    n_null: int = 999,
    stop_after: int | None = 20,
    max_elements: int = 4_000_000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Plug-in JSD of each unit, its permutation-null mean and a permutation p-value.

    Every unit gets at least ``min(n_null, n_perm)`` relabellings (for the null mean). The
    p-value is Besag and Clifford's sequential Monte-Carlo p-value: relabellings of a unit are
    drawn until ``stop_after`` of them reach the observed JSD (after ``L`` draws: ``p =
    stop_after / L``) or until ``n_perm`` are drawn (then ``p = (1 + exceed) / (1 + n_perm)``).
    Both are exactly valid, ``P(p ≤ u) ≤ u`` under "no difference"; the sequential rule spends
    draws only on units with small p-values, so ``n_perm`` can be large enough to resolve the
    p-values a multiplicity correction over many units needs. ``stop_after=None`` draws
    ``n_perm`` relabellings of every unit.

    Parameters
    ----------
    counts_a, counts_b : ndarray (units × values)
        Rating counts of the two groups; every unit needs a rating in each group.
    n_perm : int
        Largest number of relabellings of a unit (group labels shuffled within the unit).
    rng : numpy.random.Generator
    n_null : int
        Relabellings every unit gets, whatever its p-value.
    stop_after : int or None
        Exceedances after which a unit's p-value is settled.
    max_elements : int
        Upper bound on the integers held at once (relabellings are drawn in blocks).

    Returns
    -------
    jsd : ndarray (units,)
        Observed plug-in JSD.
    null_mean : ndarray (units,)
        Mean plug-in JSD over the unit's relabellings: the expected plug-in JSD of its ratings
        when group membership does not matter, i.e. its bias under "no difference".
    p_value : ndarray (units,)
    n_drawn : ndarray (units,)
        Relabellings drawn for each unit.

    References
    ----------
    Besag, J. & Clifford, P. (1991). Sequential Monte Carlo p-values. *Biometrika* 78(2),
    301–304.
    """
    counts_a = np.asarray(counts_a, dtype=np.int64)
    counts_b = np.asarray(counts_b, dtype=np.int64)
    observed = jsd_counts(counts_a, counts_b)
    n_units = len(counts_a)
    pooled = counts_a + counts_b
    total = np.zeros(n_units)
    exceed = np.zeros(n_units, dtype=np.int64)
    drawn = np.zeros(n_units, dtype=np.int64)
    p_value = np.full(n_units, np.nan)
    n_null = min(int(n_null), int(n_perm))
    done = 0  # relabellings drawn for every unit still in play (all advance together)
    active = np.arange(n_units)
    while len(active) and done < n_perm:
        limit = n_null if done < n_null else n_perm
        size = min(max(1, max_elements // max(1, pooled[active].size)), limit - done)
        perm_a = relabelled_counts(counts_a[active], counts_b[active], size, rng)
        null = jsd_counts(perm_a, pooled[active][None] - perm_a)
        total[active] += null.sum(axis=0)
        # the tolerance keeps a relabelling with the observed table from losing to rounding
        hits = null >= observed[active][None] - 1e-12
        cum = exceed[active][None] + np.cumsum(hits, axis=0)
        exceed[active] = cum[-1]
        drawn[active] += size
        if stop_after is not None:
            open_ = np.isnan(p_value[active])
            reached = open_ & (cum[-1] >= stop_after)
            first = np.argmax(cum[:, reached] >= stop_after, axis=0)  # index of the stop_after-th
            p_value[active[reached]] = stop_after / (done + first + 1)
        done += size
        if done >= n_null:
            active = active[np.isnan(p_value[active])]
    left = np.isnan(p_value)
    p_value[left] = (1.0 + exceed[left]) / (1.0 + n_perm)
    return observed, total / drawn, p_value, drawn
