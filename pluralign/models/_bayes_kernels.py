"""Numeric kernels of the Bayesian models on plain NumPy arrays (no PyMC, no pandas).

Everything here works on posterior draws already pulled out of an ``InferenceData``:
category probabilities of the cumulative-logit model, Gauss–Hermite integration of a normal
random intercept, expected ratings and the pairwise preference probability; highest-density
intervals come from ``arviz.hdi`` (imported when first used).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from pluralign._numeric import N_QUADRATURE, gauss_hermite


def cumulative_probs(eta: np.ndarray, cutpoints: np.ndarray) -> np.ndarray:
    """Category probabilities of the cumulative-logit model ``P(y <= k) = logistic(c_k - eta)``.

    Parameters
    ----------
    eta : ndarray, shape (...)
        Linear predictor.
    cutpoints : ndarray, shape (..., K-1)
        Increasing cutpoints, broadcastable against ``eta[..., None]``.

    Returns
    -------
    ndarray, shape (..., K)

    Examples
    --------
    >>> p = cumulative_probs(np.array([0.0]), np.array([-1.0, 1.0]))
    >>> np.round(p, 3).tolist()
    [[0.269, 0.462, 0.269]]
    """
    cdf = expit(cutpoints - np.asarray(eta)[..., None])
    shape = (*cdf.shape[:-1], 1)
    cdf = np.concatenate([np.zeros(shape), cdf, np.ones(shape)], axis=-1)
    return np.clip(np.diff(cdf, axis=-1), 0.0, 1.0)


def integrated_probs(
    eta: np.ndarray, cutpoints: np.ndarray, tau: np.ndarray, n_nodes: int = N_QUADRATURE
) -> np.ndarray:
    """Category probabilities averaged over a normal random intercept ``N(0, tau²)``.

    ``eta`` has shape (S, ...) with S draws; ``cutpoints`` (S, K-1); ``tau`` (S,).
    Returns shape (S, ..., K).
    """
    x, w = gauss_hermite(n_nodes)
    eta = np.asarray(eta, dtype=float)
    extra = eta.ndim - 1
    tau_b = np.asarray(tau, dtype=float).reshape((-1,) + (1,) * extra)
    cut_b = cutpoints.reshape((cutpoints.shape[0],) + (1,) * extra + (cutpoints.shape[-1],))
    out = np.zeros((*eta.shape, cutpoints.shape[-1] + 1))
    for xj, wj in zip(x, w, strict=True):
        out += wj * cumulative_probs(eta + tau_b * xj, cut_b)
    return out


def expected_value(probs: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Expected rating from category probabilities (last axis) and the scale points."""
    return probs @ np.asarray(levels, dtype=float)


def preference_from_probs(p_a: np.ndarray, p_b: np.ndarray) -> np.ndarray:
    """``P(r_A > r_B) + ½ P(r_A = r_B)`` for independent ratings with category probabilities.

    ``p_a`` and ``p_b`` have shape (..., K); returns shape (...).

    Examples
    --------
    >>> float(preference_from_probs(np.array([0.0, 1.0]), np.array([1.0, 0.0])))
    1.0
    >>> float(preference_from_probs(np.array([0.5, 0.5]), np.array([0.5, 0.5])))
    0.5
    """
    cdf_b = np.cumsum(p_b, axis=-1)
    below_b = cdf_b - p_b  # P(r_B < k)
    return np.sum(p_a * (below_b + 0.5 * p_b), axis=-1)


def difference_distribution(p_a: np.ndarray, p_b: np.ndarray) -> np.ndarray:
    """Distribution of ``r_A - r_B`` (values ``-(K-1)..K-1``) for independent ratings.

    Shapes (..., K) → (..., 2K-1).
    """
    k = p_a.shape[-1]
    out = np.zeros((*p_a.shape[:-1], 2 * k - 1))
    for j in range(k):  # r_B = j: difference r_A - j occupies slots (k-1-j) .. (2k-2-j)
        out[..., k - 1 - j : 2 * k - 1 - j] += p_a * p_b[..., j : j + 1]
    return out


def combine_differences(
    dists: list[np.ndarray], steps: list[float], tol: float = 1e-9, max_support: int = 200_000
) -> tuple[np.ndarray, np.ndarray]:
    """Distribution of ``Σ_d step_d · D_d`` for independent integer differences ``D_d``.

    ``dists[d]`` has shape (..., 2K_d-1) over ``D_d = -(K_d-1)..K_d-1``. Equal sums are merged
    (to ``tol``), so equal weights give a small support. Returns ``(values, probs)`` with
    probs of shape (..., len(values)).
    """
    values = np.zeros(1)
    probs = np.ones((*dists[0].shape[:-1], 1))
    for dist, step in zip(dists, steps, strict=True):
        k = (dist.shape[-1] + 1) // 2
        support = step * np.arange(-(k - 1), k)
        sums = (values[:, None] + support[None, :]).ravel()
        key = np.round(sums / tol).astype(np.int64)
        uniq, inverse = np.unique(key, return_inverse=True)
        if len(uniq) > max_support:
            raise ValueError(
                f"the combined score takes {len(uniq)} distinct values; use fewer dimensions or "
                "simpler (e.g. equal) weights"
            )
        joint = (probs[..., :, None] * dist[..., None, :]).reshape((*probs.shape[:-1], -1))
        new = np.zeros((*probs.shape[:-1], len(uniq)))
        _scatter(new, joint, inverse)
        values = uniq * tol
        probs = new
    return values, probs


def _scatter(out: np.ndarray, src: np.ndarray, index: np.ndarray) -> None:
    """``out[..., index[j]] += src[..., j]`` (a matrix product with a 0/1 matrix: fast, exact)."""
    m = np.zeros((src.shape[-1], out.shape[-1]))
    m[np.arange(src.shape[-1]), index] = 1.0
    out += src @ m


def hdi(draws: np.ndarray, prob: float) -> tuple[np.ndarray, np.ndarray]:
    """Highest-density interval of each column of ``draws`` (first axis = draws), by ``arviz.hdi``.

    Returns ``(low, high)``, each shaped like one draw (``draws.shape[1:]``).

    Examples
    --------
    >>> lo, hi = hdi(np.arange(100.0)[:, None], 0.9)
    >>> float(hi[0] - lo[0])
    90.0
    >>> [float(v) for v in hdi(np.arange(100.0), 0.5)]
    [0.0, 50.0]
    """
    import arviz as az

    x = np.asarray(draws, dtype=float)
    # a vector is one quantity's draws; more axes are read as (1 chain, draws, ...)
    out = np.asarray(az.hdi(x if x.ndim == 1 else x[None], hdi_prob=prob))
    return out[..., 0], out[..., 1]
