"""The crossed system's factorisations agree with each other and with a direct dense computation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from pluralign.models._lmm import fit_lmm
from pluralign.models._sparse import CrossedSystem


def _crossed(n, n1, n2, *, blocks=1, seed=0, p=3):
    """Crossed codes (every level used), a design and a response with known components."""
    rng = np.random.default_rng(seed)
    g2 = np.arange(n) % n2
    blk1, blk2 = np.arange(n1) % blocks, np.arange(n2) % blocks
    g1 = np.empty(n, dtype=np.int64)
    for b in range(blocks):
        sel = np.flatnonzero(blk2[g2] == b)
        g1[sel] = rng.choice(np.flatnonzero(blk1 == b), size=sel.size)
    _, g1 = np.unique(g1, return_inverse=True)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    y = (
        X @ np.linspace(1.0, 0.2, p)
        + 0.8 * rng.normal(size=g1.max() + 1)[g1]
        + 0.5 * rng.normal(size=n2)[g2]
        + rng.normal(size=n)
    )
    return X, y, g1, g2


def _direct(g1, g2, w, theta):
    """``A = Λ'Z'WZΛ + I`` built explicitly, densely."""
    n = len(g1)
    Z = sp.hstack(
        [
            sp.csr_matrix((np.full(n, theta[0]), (np.arange(n), g1))),
            sp.csr_matrix((np.full(n, theta[1]), (np.arange(n), g2))),
        ]
    ).toarray()
    return Z.T @ (Z * w[:, None]) + np.eye(Z.shape[1])


@pytest.mark.parametrize(
    ("method", "blocks"),
    [("dense", 1), ("blocks", 1), ("blocks", 30), ("sparse", 1), ("iterative", 1)],
)
def test_factor_matches_direct_algebra(method, blocks):
    # blocks=30: 40 raters in 30 groups, so blocks of one and of two raters
    _, _, g1, g2 = _crossed(600, 40, 70, blocks=blocks, seed=1)
    w = np.random.default_rng(2).uniform(0.2, 1.0, size=len(g1))  # IRLS-like weights
    theta = np.array([0.7, 1.3])
    system = CrossedSystem(g1, g2, w, method=method)
    f = system.factor(theta)
    A = _direct(g1, g2, w, theta)
    # A's blocks are ordered (g1, g2); the system orders them (big, small) = (g2, g1) here
    assert system.big == 1
    order = np.r_[40 : 40 + 70, 0:40]
    A = A[np.ix_(order, order)]
    _, logdet = np.linalg.slogdet(A)
    tol = 1e-9 if method != "iterative" else 1e-3
    assert abs(f.logdet - logdet) < tol * abs(logdet)
    C = np.random.default_rng(3).normal(size=(110, 3))
    c1, c2 = C[:70], C[70:]
    u1, u2 = f.solve(c1, c2)
    np.testing.assert_allclose(np.vstack([u1, u2]), np.linalg.solve(A, C), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(f.quad(c1, c2), C.T @ np.linalg.solve(A, C), rtol=1e-8)
    if method != "iterative":
        inv = np.linalg.inv(A)
        inv_bb, inv_ss, inv_bs = f.inverse_parts()
        np.testing.assert_allclose(inv_bb, np.diag(inv)[:70], rtol=1e-8)
        np.testing.assert_allclose(inv_ss, np.diag(inv)[70:], rtol=1e-8)
        np.testing.assert_allclose(
            inv_bs, inv[system._rows, 70 + system._cols], rtol=1e-7, atol=1e-12
        )


def test_auto_picks_blocks_for_block_designs_then_dense_then_iterative_by_size():
    _, _, g1, g2 = _crossed(3000, 400, 600, blocks=9)
    assert CrossedSystem(g1, g2).method == "blocks"
    _, _, g1, g2 = _crossed(3000, 400, 600, blocks=1)
    assert CrossedSystem(g1, g2).method == "dense"
    assert CrossedSystem(g1, g2, method="exact").method == "dense"
    _, _, g1, g2 = _crossed(8000, 2100, 2500, blocks=1)
    assert CrossedSystem(g1, g2).method == "iterative"
    assert CrossedSystem(g1, g2, method="exact").method == "dense"


def _assert_same(fit, ref):
    for a, b in [
        (fit.theta, ref.theta),
        (fit.beta, ref.beta),
        (fit.se, ref.se),
        (fit.b1, ref.b1),
        (fit.b2, ref.b2),
        ([fit.sigma2, fit.deviance], [ref.sigma2, ref.deviance]),
    ]:
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6 * np.max(np.abs(b)))


@pytest.mark.parametrize("blocks", [1, 5])
def test_fast_paths_give_the_dense_estimates(blocks):
    X, y, g1, g2 = _crossed(1500, 220, 300, blocks=blocks, seed=4)
    ref = fit_lmm(X, y, g1, g2, method="dense")
    assert ref.converged
    for method in ("sparse", "blocks"):
        _assert_same(fit_lmm(X, y, g1, g2, method=method), ref)
    # the stochastic log-determinant moves the estimates by far less than their uncertainty
    it = fit_lmm(X, y, g1, g2, method="iterative")
    np.testing.assert_allclose(it.theta, ref.theta, rtol=2e-3)
    assert np.max(np.abs(it.beta - ref.beta) / ref.se) < 1e-2
    np.testing.assert_allclose(it.se, ref.se, rtol=1e-3)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="method must be one of"):
        CrossedSystem(np.array([0, 1]), np.array([0, 0]), method="cholmod")
