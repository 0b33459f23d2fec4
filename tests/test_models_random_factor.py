"""The penalised least squares of general random terms: dense blocks against direct algebra."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from pluralign.models import _random
from pluralign.models._lmm import _TermsProfile
from pluralign.models._random import (
    DensePLS,
    PLSFactor,
    RandomStructure,
    RandomTerm,
    factor_pls,
    profiled_value_and_gradient,
)


def _structure(kind: str, seed: int = 3):
    """Crossed raters × items; a rater-level 0/1 column x and a row-level covariate."""
    rng = np.random.default_rng(seed)
    n_r, n_i, per = (50, 30, 8) if kind != "items" else (12, 90, 20)
    g1 = np.repeat(np.arange(n_r), per)
    g2 = rng.integers(0, n_i, len(g1))
    n = len(g1)
    x = rng.integers(0, 2, n_r)[g1].astype(float)
    z = rng.normal(size=n)
    y = 1 + 0.3 * x + rng.normal(0, 0.5, n_r)[g1] + rng.normal(0, 0.6, n_i)[g2] * (1 + x)
    y = y + rng.normal(size=n)
    X = np.column_stack([np.ones(n), x, z])
    cols = {"1": np.ones(n), "x": x, "z": z}

    def term(group, names, correlated=True):
        codes, nl = (g1, n_r) if group == "rater" else (g2, n_i)
        values = np.column_stack([cols[c] for c in names])
        return RandomTerm(group, " + ".join(names), correlated, tuple(names), values, codes,
                          np.arange(nl))  # fmt: skip

    terms = {
        "correlated": [term("rater", ["1"]), term("item", ["1", "x"])],
        "uncorrelated": [term("rater", ["1"]), term("item", ["1", "x"], correlated=False)],
        # the largest term (eliminated first) has slopes; three terms in the Schur block
        "items": [term("rater", ["1", "z"]), term("item", ["1", "x"]), term("item", ["z"])],
    }[kind]
    return X, y, RandomStructure(terms)


@pytest.mark.parametrize("kind", ["correlated", "uncorrelated", "items"])
def test_dense_factor_is_the_direct_algebra(kind, monkeypatch):
    """log|A|, A⁻¹b and Λb of the dense blocks equal the dense matrix computations."""
    _, _, re = _structure(kind)
    rng = np.random.default_rng(0)
    theta = np.where(re.lower == 0, 0.4 + rng.random(re.n_theta), rng.normal(0, 0.3, re.n_theta))
    ZtZ = (re.Z.T @ re.Z).tocsc()
    lam = re.lam(theta).toarray()
    A = lam.T @ ZtZ.toarray() @ lam + np.eye(re.Q)
    b = rng.normal(size=(re.Q, 2))
    plan = DensePLS(re, ZtZ)
    f = plan.factor(theta)
    assert f.logdet == pytest.approx(np.linalg.slogdet(A)[1], rel=1e-12)
    x = plan.unpermute(f.solve(b[plan.perm]))
    np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(plan.unpermute(f.lam(b[plan.perm])), lam @ b, atol=1e-12)
    # the sparse factor (beyond SMALL_Q random effects) and its dense form agree with it
    for small in (re.Q, 0):
        monkeypatch.setattr(_random, "SMALL_Q", small)
        g = factor_pls(ZtZ, re.lam(theta), re.block)
        assert isinstance(g, PLSFactor)
        assert g.logdet == pytest.approx(f.logdet, rel=1e-12)
        np.testing.assert_allclose(g.solve(b), x, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(g.inverse(), np.linalg.inv(A), rtol=1e-9, atol=1e-12)
    assert sp.issparse(g._A12)  # the last one took the sparse path


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("kind", ["correlated", "uncorrelated", "items"])
def test_profiled_gradient_is_the_derivative_of_the_deviance(kind, reml):
    """The exact θ gradient equals central differences of the profiled deviance."""
    X, y, re = _structure(kind)
    prof = _TermsProfile(X, y, re, reml)
    rng = np.random.default_rng(1)
    theta = np.where(re.lower == 0, 0.3 + rng.random(re.n_theta), rng.normal(0, 0.3, re.n_theta))
    dev, grad = profiled_value_and_gradient(prof, theta)
    assert dev == pytest.approx(prof.deviance(theta), rel=1e-13)
    h = 1e-5
    numeric = [
        (prof.deviance(theta + h * e) - prof.deviance(theta - h * e)) / (2 * h)
        for e in np.eye(re.n_theta)
    ]
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-5)
    assert np.max(np.abs(grad)) > 1.0  # away from the optimum: a real check
