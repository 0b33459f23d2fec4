"""Numerical helpers shared by every layer: Gauss–Hermite quadrature and ordinal expectations.

Expectations over a normal random effect are computed with probabilists' Gauss–Hermite
quadrature: ``E[f(Z)] ≈ sum_j w_j f(x_j)`` for ``Z ~ N(0, 1)``, exact for polynomials of degree
below ``2n``. The nodes are computed once per ``n`` and cached (read-only arrays).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import special

#: Nodes used by default (about 1e-6 accuracy for the smooth logistic integrands here).
N_QUADRATURE = 20


@lru_cache(maxsize=16)
def gauss_hermite(n: int = N_QUADRATURE) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for ``E[f(Z)]``, ``Z ~ N(0, 1)``: ``sum(w * f(x))``.

    Parameters
    ----------
    n : int, default 20
        Number of nodes.

    Returns
    -------
    x, w : ndarray
        Probabilists' Hermite nodes and weights normalised to sum to 1 (read-only, cached).

    Examples
    --------
    >>> x, w = gauss_hermite(10)
    >>> round(float(np.sum(w * x**2)), 10), round(float(w.sum()), 12)
    (1.0, 1.0)
    """
    if int(n) != n or n < 1:
        raise ValueError(f"the number of quadrature nodes must be a positive integer, got {n!r}")
    x, w = np.polynomial.hermite_e.hermegauss(int(n))
    w = w / w.sum()
    x.flags.writeable = False
    w.flags.writeable = False
    return x, w


def ordinal_mean(eta: np.ndarray, cutpoints: np.ndarray, minimum: float = 1.0) -> np.ndarray:
    """Expected rating under a cumulative-logit model: ``minimum + sum_k logistic(eta - c_k)``.

    Parameters
    ----------
    eta : array
        Latent linear predictor.
    cutpoints : array, shape (..., n_thresholds)
        Increasing cutpoints, broadcastable against ``eta[..., None]``.
    minimum : float, default 1
        Lowest scale point.

    Returns
    -------
    ndarray, shape of ``eta``

    Examples
    --------
    >>> float(ordinal_mean(0.0, np.array([-1.0, 1.0])))
    2.0
    """
    eta = np.asarray(eta, dtype=float)
    return minimum + special.expit(eta[..., None] - np.asarray(cutpoints)).sum(-1)


def expected_ordinal_rating(
    eta: np.ndarray,
    sd: float | np.ndarray,
    cutpoints: np.ndarray,
    minimum: float = 1.0,
    n_nodes: int = 48,
) -> np.ndarray:
    """Expected cumulative-logit rating with a normal random effect integrated out.

    ``E[ordinal_mean(eta + sd * Z)]`` for ``Z ~ N(0, 1)``, by Gauss–Hermite quadrature. With
    one cutpoint at 0 and ``minimum=0`` it is the logistic-normal mean ``E[logistic(eta + sd Z)]``.

    Parameters
    ----------
    eta : array
        Latent mean.
    sd : float or array
        Standard deviation of the normal effect (broadcast against ``eta``).
    cutpoints : array, shape (n_thresholds,)
        Increasing cutpoints.
    minimum : float, default 1
        Lowest scale point.
    n_nodes : int, default 48
        Quadrature nodes.

    Returns
    -------
    ndarray, the broadcast shape of ``eta`` and ``sd``

    Examples
    --------
    >>> round(float(expected_ordinal_rating(0.0, 1.5, np.array([0.0]), minimum=0)), 12)
    0.5
    >>> bool(expected_ordinal_rating(1.0, 2.0, np.array([0.0]), 0) < ordinal_mean(1.0, [0.0], 0))
    True
    """
    x, w = gauss_hermite(n_nodes)
    eta, sd = np.broadcast_arrays(np.asarray(eta, dtype=float), np.asarray(sd, dtype=float))
    return ordinal_mean(eta[..., None] + sd[..., None] * x, cutpoints, minimum) @ w
