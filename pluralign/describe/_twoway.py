"""Two-way (rater × item) cluster-robust variances on arrays: the default interval kernel.

Ratings are clustered twice: by rater (a rater's ratings share the rater's leniency) and by item
(an item's ratings share the item's effect). A group mean over a sample of items varies with
the items drawn, which a bootstrap over raters alone treats as fixed. For a statistic with
linearised influence values ``u_k`` (one per rating), the two-way cluster-robust variance of
Cameron, Gelbach & Miller (2011) is::

    V = c_R Σ_r (Σ_{k ∈ r} u_k)²  +  c_I Σ_i (Σ_{k ∈ i} u_k)²  −  c_P Σ_p (Σ_{k ∈ p} u_k)²

over raters ``r``, items ``i`` and rater-item pairs ``p`` (usually one rating each), with
small-sample factors ``c = G / (G - 1)`` for ``G`` clusters. The rater and item terms each count
the rating-level noise once; the pair term removes the double count. Where ``V`` is not positive
(possible in small samples) the larger one-way term is used instead, as the authors advise.
Vectorised over the columns of ``u``: one sparse product per clustering.

References
----------
Cameron, A. C., Gelbach, J. B. & Miller, D. L. (2011). Robust inference with multiway
clustering. *Journal of Business & Economic Statistics*, 29(2), 238-249.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse


def _cluster_matrix(codes: np.ndarray) -> sparse.csr_matrix:
    """Sparse 0/1 matrix, clusters × ratings (only clusters that occur)."""
    _, inverse = np.unique(codes, return_inverse=True)
    n = len(codes)
    return sparse.csr_matrix(
        (np.ones(n), (inverse.ravel(), np.arange(n))), shape=(int(inverse.max(initial=-1)) + 1, n)
    )


def cluster_counts(member: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Number of distinct clusters among the ratings of each column of ``member``.

    Parameters
    ----------
    member : array, shape (n_ratings, n_columns)
        Nonzero where a rating takes part in a column's statistic.
    codes : array, shape (n_ratings,)
        Cluster (rater or item) of each rating.

    Examples
    --------
    >>> import numpy as np
    >>> cluster_counts(np.array([[1, 0], [1, 1], [0, 1]]), np.array([0, 0, 1])).tolist()
    [1, 2]
    """
    a = _cluster_matrix(np.asarray(codes))
    return np.asarray(((a @ (np.asarray(member) != 0).astype(float)) > 0).sum(axis=0)).ravel()


def twoway_variance(
    influence: np.ndarray,
    raters: np.ndarray,
    items: np.ndarray,
    *,
    member: np.ndarray | None = None,
    member_of: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two-way cluster-robust variance of statistics with the given influence values.

    Parameters
    ----------
    influence : array, shape (n_ratings, n_statistics)
        Linearised influence of each rating on each statistic (e.g. ``(y_k - mean) / n`` for
        the ratings of a group and 0 elsewhere); a statistic's first-order error is the sum of
        its column.
    raters, items : array, shape (n_ratings,)
        Rater and item codes of each rating.
    member : array, shape (n_ratings, n_statistics) or (n_ratings, n_sets), optional
        Nonzero where a rating takes part in a statistic (e.g. belongs to the group); it
        decides the numbers of clusters ``G`` (default: every rating takes part in every
        statistic).
    member_of : array of int, shape (n_statistics,), optional
        Column of ``member`` of each statistic, when several statistics share one set of
        ratings (default: column ``j`` for statistic ``j``).

    Returns
    -------
    variance : ndarray, shape (n_statistics,)
        ``c_R V_rater + c_I V_item - c_P V_pair`` (the larger one-way term where that is not
        positive; NaN where fewer than two raters or two items take part).
    n_raters, n_items : ndarray of int, shape (n_statistics,)
        Raters and items taking part in each statistic.

    Examples
    --------
    One rating per rater and item: the variance of a mean is the iid one, ``s² / n`` with the
    small-sample factor ``n / (n - 1)``:

    >>> import numpy as np
    >>> y = np.array([1.0, 2.0, 4.0, 5.0])
    >>> u = ((y - y.mean()) / 4)[:, None]
    >>> v, nr, ni = twoway_variance(u, np.arange(4), np.arange(4))
    >>> bool(np.isclose(v[0], y.var(ddof=1) / 4)), nr.tolist(), ni.tolist()
    (True, [4], [4])
    """
    u = np.asarray(influence, dtype=float)
    if u.ndim == 1:
        u = u[:, None]
    n_stats = u.shape[1]
    if member is None:
        nz, member_of = np.ones((u.shape[0], 1)), np.zeros(n_stats, dtype=int)
    else:
        nz = (np.asarray(member).reshape(u.shape[0], -1) != 0).astype(float)
        member_of = np.arange(n_stats) if member_of is None else np.asarray(member_of)
    rater_codes = np.unique(np.asarray(raters), return_inverse=True)[1].ravel()
    item_codes = np.unique(np.asarray(items), return_inverse=True)[1].ravel()
    pairs = rater_codes.astype(np.int64) * (int(item_codes.max(initial=0)) + 1) + item_codes
    v_rater, n_raters = _clustered(u, nz, member_of, rater_codes)
    v_item, n_items = _clustered(u, nz, member_of, item_codes)
    v_pair, _ = _clustered(u, nz, member_of, pairs)
    v = v_rater + v_item - v_pair
    v = np.where(v > 0, v, np.fmax(v_rater, v_item))
    v[np.minimum(n_raters, n_items) < 2] = np.nan
    return v, n_raters, n_items


def _clustered(
    u: np.ndarray, nz: np.ndarray, member_of: np.ndarray, codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``G / (G - 1) · Σ_c (Σ_{k ∈ c} u_k)²`` per column, and ``G`` (clusters taking part)."""
    a = _cluster_matrix(codes)
    g = np.asarray(((a @ nz) > 0).sum(axis=0)).ravel().astype(int)[member_of]
    factor = np.where(g > 1, g / np.maximum(g - 1, 1), np.nan)
    return factor * (np.asarray(a @ u) ** 2).sum(axis=0), g
