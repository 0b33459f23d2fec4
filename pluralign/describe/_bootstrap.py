"""Rater-clustered bootstrap on arrays: the numeric kernel under :mod:`pluralign.describe`.

Ratings of one rater are not independent, so the resampling unit is the rater. A resample is a
vector of multinomial counts ``W[b, r]`` (how often rater ``r`` is drawn in resample ``b``; the
counts sum to the number of raters). With per-rater rating sums ``s_r`` and counts ``n_r`` and a
rater × group membership matrix ``M``, the group sums and counts of every resample are two matrix
products, ``W @ (s * M)`` and ``W @ (n * M)``: no Python loop over resamples.
Hand-written because no maintained library offers a weighted, vectorised cluster bootstrap of
ratio means over overlapping groups.
"""

from __future__ import annotations

import numpy as np

_CHUNK_CELLS = 2_000_000  # resamples × raters per weight block (about 16 MB of float64)


def cluster_weights(n_clusters: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Multinomial resampling counts, shape ``(n_boot, n_clusters)``, each row summing to n_clusters.

    Examples
    --------
    >>> import numpy as np
    >>> w = cluster_weights(4, 3, np.random.default_rng(0))
    >>> w.shape, w.sum(axis=1).tolist()
    ((3, 4), [4, 4, 4])
    """
    if n_clusters < 1:
        raise ValueError("the bootstrap needs at least one rater")
    # draw n_clusters indices per resample and count them (one flat bincount); this is the
    # multinomial(n, 1/n) distribution, much faster than rng.multinomial for many clusters
    idx = rng.integers(0, n_clusters, size=(n_boot, n_clusters))
    idx += np.arange(n_boot)[:, None] * n_clusters
    return np.bincount(idx.ravel(), minlength=n_boot * n_clusters).reshape(n_boot, n_clusters)


def bootstrap_totals(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Column totals of a rater × column table in each rater-resample.

    Parameters
    ----------
    values : array, shape (n_raters, n_columns)
        One row per rater (e.g. the rater's rating sum and count within each group).
    n_boot : int
        Number of resamples.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, shape (n_boot, n_columns)
        ``W @ values`` for multinomial resampling counts ``W`` (see :func:`cluster_weights`),
        computed in blocks of resamples to bound memory.

    Examples
    --------
    >>> import numpy as np
    >>> t = bootstrap_totals(np.array([[1.0], [3.0]]), 4, np.random.default_rng(0))
    >>> sorted(set(t[:, 0].tolist())) <= [2.0, 4.0, 6.0]
    True
    """
    values = np.asarray(values, dtype=float)
    n = values.shape[0]
    out = np.empty((n_boot, values.shape[1]))
    step = max(1, _CHUNK_CELLS // max(n, 1))
    for start in range(0, n_boot, step):
        stop = min(n_boot, start + step)
        out[start:stop] = cluster_weights(n, stop - start, rng).astype(float) @ values
    return out


def bootstrap_group_sums(
    sums: np.ndarray,
    counts: np.ndarray,
    membership: np.ndarray,
    n_boot: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Group rating sums and rating counts in each rater-resample.

    Parameters
    ----------
    sums, counts : array, shape (n_raters,)
        Sum and number of ratings of each rater.
    membership : array, shape (n_raters, n_groups)
        1 where a rater belongs to a group (groups may overlap, e.g. indicator coding).
    n_boot : int
        Number of resamples.
    rng : numpy.random.Generator

    Returns
    -------
    boot_sums, boot_counts : arrays of shape (n_boot, n_groups)

    Examples
    --------
    >>> import numpy as np
    >>> s, n = np.array([2.0, 6.0]), np.array([1.0, 2.0])
    >>> bs, bn = bootstrap_group_sums(s, n, np.ones((2, 1)), 5, np.random.default_rng(1))
    >>> bool(np.all((bs / bn >= 2) & (bs / bn <= 3)))
    True
    """
    m = np.asarray(membership, dtype=float)
    table = np.hstack(
        [np.asarray(sums, float)[:, None] * m, np.asarray(counts, float)[:, None] * m]
    )
    tot = bootstrap_totals(table, n_boot, rng)
    return tot[:, : m.shape[1]], tot[:, m.shape[1] :]


def percentile_interval(replicates: np.ndarray, ci_prob: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over the first axis, ignoring resamples where a statistic is undefined.

    Parameters
    ----------
    replicates : array, shape (n_boot, ...)
        Bootstrap replicates of one or more statistics; NaN where a resample leaves a statistic
        undefined (e.g. a group without raters).
    ci_prob : float
        Probability of the interval, in (0, 1).

    Returns
    -------
    low, high : ndarray, shape ``replicates.shape[1:]``
        The ``(1 - ci_prob) / 2`` and ``(1 + ci_prob) / 2`` quantiles of the defined replicates
        (NaN where none is defined).

    Examples
    --------
    >>> import numpy as np
    >>> reps = np.column_stack([np.arange(101.0), np.full(101, np.nan)])
    >>> low, high = percentile_interval(reps, 0.9)
    >>> low.tolist(), high.tolist()
    ([5.0, nan], [95.0, nan])
    """
    if not 0 < ci_prob < 1:
        raise ValueError(f"ci_prob must be between 0 and 1, got {ci_prob}")
    alpha = (1 - ci_prob) / 2
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(replicates).any(axis=0)
        lo = np.full(replicates.shape[1:], np.nan)
        hi = np.full(replicates.shape[1:], np.nan)
        if finite.any():
            q = np.nanquantile(replicates[:, finite], [alpha, 1 - alpha], axis=0)
            lo[finite], hi[finite] = q[0], q[1]
    return lo, hi


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with NaN where ``den`` is 0 (an empty group in a resample)."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out
