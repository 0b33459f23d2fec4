"""fit_bayes(method="laplace"): the block algebra by hand, and agreement with full NUTS."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pymc")
pytest.importorskip("nutpie")

from pluralign._errors import ConvergenceWarning
from pluralign.data import simulate_study
from pluralign.models import fit_bayes
from pluralign.models._bayes_laplace import BlockGaussian

PARAMETERS = ("beta", "cutpoints", "sigma_rater", "sigma_item")


def _dense_precision(g1, g2, q, w, sigma):
    Z = np.zeros((len(g1), q[0] + q[1]))
    Z[np.arange(len(g1)), g1] = sigma[0]
    Z[np.arange(len(g1)), q[0] + g2] = sigma[1]
    return Z.T @ (w[:, None] * Z) + np.eye(q[0] + q[1])


@pytest.mark.parametrize("q", [(7, 4), (3, 6)])
def test_block_gaussian_solves_and_draws_with_the_precision(q):
    rng = np.random.default_rng(0)
    n = 40
    g1 = np.concatenate([np.arange(q[0]), rng.integers(0, q[0], n - q[0])])
    g2 = np.concatenate([np.arange(q[1]), rng.integers(0, q[1], n - q[1])])
    w = rng.uniform(0.1, 0.3, n)
    sigma = np.array([0.8, 1.3])
    A = _dense_precision(g1, g2, q, w, sigma)
    gauss = BlockGaussian.build((g1, g2), q, w, sigma)
    r = rng.standard_normal(q[0] + q[1])
    x1, x2 = gauss.solve((r[: q[0]], r[q[0] :]))
    np.testing.assert_allclose(np.concatenate([x1, x2]), np.linalg.solve(A, r), atol=1e-10)
    d1, d2 = gauss.draw(40_000, rng)
    cov = np.cov(np.vstack([d1, d2]))
    np.testing.assert_allclose(cov, np.linalg.inv(A), atol=0.02)


def test_laplace_refuses_what_it_does_not_model(small_study):
    with pytest.raises(ValueError, match="method='laplace' fits the ordinal and bernoulli"):
        fit_bayes(small_study.study, "rating ~ gender", family="gaussian", method="laplace")
    with pytest.raises(ValueError, match="method must be one of"):
        fit_bayes(small_study.study, "rating ~ gender", method="inla")


@pytest.fixture(scope="module")
def study():
    """150 raters × 5 items, 50 items with 15 ratings each: 750 ratings."""
    return simulate_study(
        n_raters=150,
        n_prompts=25,
        responses_per_prompt=2,
        seed=5,
        dimensions=["toxicity"],
    ).study


@pytest.mark.slow
def test_laplace_posterior_matches_nuts(study):
    kw = dict(reference={"gender": "she/her"}, progressbar=False, chains=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        lap = fit_bayes(study, "rating ~ gender", method="laplace", draws=2000, seed=1, **kw)
        nuts = fit_bayes(study, "rating ~ gender", draws=1500, tune=1000, seed=2, **kw)
    assert lap.sampler == "laplace" and lap.diagnostics()["ok"].all()
    a, b = lap.idata.posterior, nuts.idata.posterior
    for name in PARAMETERS:
        x = np.asarray(a[name]).reshape(4000, -1)
        y = np.asarray(b[name]).reshape(3000, -1)
        shift = np.abs(x.mean(0) - y.mean(0)) / y.std(0)
        ratio = x.std(0) / y.std(0)
        assert shift.max() < 0.1, (name, shift)
        assert np.all(np.abs(ratio - 1) < 0.2), (name, ratio)
    # rating-scale quantities agree too (they integrate the random effects per draw)
    e_lap, e_nuts = lap.effects(), nuts.effects()
    width = (e_nuts["difference_ci_high"] - e_nuts["difference_ci_low"]).to_numpy()
    gap = np.abs(e_lap["difference"] - e_nuts["difference"]).to_numpy()
    assert np.all(gap < 0.1 * width), gap / width
    # the random effects: the pointwise log-likelihood of the ratings agrees on average
    ll_lap = float(lap.idata.log_likelihood["rating"].mean())
    ll_nuts = float(nuts.idata.log_likelihood["rating"].mean())
    assert abs(ll_lap - ll_nuts) < 0.01 * abs(ll_nuts)


def test_unit_quadrature_gives_the_conditional_mean_of_each_effect(study):
    """Each rater's and item's integral (the other factor at its mode) by quadrature: its mean
    and its log ratio to the Laplace value equal brute-force integrals on a fine grid."""
    from scipy.special import expit

    from pluralign.models._bayes import _model_data
    from pluralign.models._bayes_laplace import LaplacePosterior, unit_quadrature
    from pluralign.models._design import build_design

    design = build_design(study, "rating ~ gender", reference={"gender": "she/her"})
    md, _, _ = _model_data(design, "ordinal", study.scale("toxicity"), None)
    post = LaplacePosterior(md)
    x = post.start() + 0.3
    x[: post.K1] = np.sort(post.start()[: post.K1])
    _, _, u, _, _ = post.at(x)
    ratios, shifts = unit_quadrature(post, x, u)
    correction = float(ratios[0].sum() + ratios[1].sum())
    cut = np.concatenate([[-np.inf], x[: post.K1], [np.inf]])
    sigma = np.exp(x[-2:])
    fixed = md.design_matrix() @ x[post.K1 : post.K1 + post.p]
    t = np.linspace(-10, 10, 8001)
    total = 0.0
    for k, codes in enumerate((md.rater_codes, md.item_codes)):
        other = (md.item_codes, md.rater_codes)[k]
        for j in range(post.lap.q[k]):
            rows = np.flatnonzero(codes == j)
            y = md.y[rows][:, None]

            def log_p(v, rows=rows, y=y, k=k, other=other):
                eta = (fixed[rows] + sigma[1 - k] * u[1 - k][other[rows]])[:, None] + sigma[k] * v
                return np.log(expit(cut[y + 1] - eta) - expit(cut[y] - eta)).sum(0) - v**2 / 2

            lp = log_p(t)
            dens = np.exp(lp - lp.max())
            if j in (0, 7, 31):  # the conditional mean
                mean = float(t @ dens / dens.sum())
                assert u[k][j] + shifts[k][j] == pytest.approx(mean, abs=1e-4)
            # log of the integral over its Laplace value (curvature by central differences)
            h = 1e-4
            mode = np.array([u[k][j] - h, u[k][j], u[k][j] + h])
            f_m, f_0, f_p = log_p(mode)
            laplace = f_0 + 0.5 * np.log(2 * np.pi * h * h / (2 * f_0 - f_m - f_p))
            total += lp.max() + np.log(dens.sum() * (t[1] - t[0])) - laplace
    assert correction == pytest.approx(total, abs=1e-3)


def test_block_gaussian_from_a_crossed_factor_equals_its_own_build():
    from pluralign.models._sparse import CrossedSystem

    rng = np.random.default_rng(2)
    g1, g2 = rng.integers(0, 30, 300), rng.integers(0, 12, 300)
    w = rng.uniform(0.1, 0.4, 300)
    sigma = np.array([0.9, 1.4])
    system = CrossedSystem(g1, g2, method="dense")
    system.set_weights(w)
    f = system.factor(sigma)
    a = BlockGaussian.from_factor(f, (g1, g2), (30, 12), w, sigma)
    b = BlockGaussian.build((g1, g2), (30, 12), w, sigma)
    r = (rng.standard_normal(30), rng.standard_normal(12))
    for x, y in zip(a.solve(r), b.solve(r), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-10)


def test_dimensions_in_worker_processes_give_the_same_draws():
    study = simulate_study(n_raters=80, seed=3, dimensions=["toxicity", "helpfulness"]).study
    kw = dict(method="laplace", draws=200, seed=4, progressbar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = fit_bayes(study, "rating ~ gender", **kw)
        two = fit_bayes(study, "rating ~ gender", n_jobs=2, **kw)
    assert two.dimensions == one.dimensions == ["toxicity", "helpfulness"]
    for dim in one.dimensions:
        for name in ("beta", "sigma_rater", "z_item"):
            a, b = one.fits[dim].idata.posterior[name], two.fits[dim].idata.posterior[name]
            np.testing.assert_array_equal(a.values, b.values)
    pd.testing.assert_frame_equal(one.diagnostics(), two.diagnostics())


def test_a_failed_laplace_check_says_to_refit_with_nuts():
    from pluralign.models._bayes_model import warn_if_failed

    diag = pd.DataFrame(
        {
            "dimension": ["d"],
            "check": ["laplace_grid"],
            "parameter": ["sigma_rater, sigma_item"],
            "value": [-1.2],
            "ok": [False],
        }
    )
    with pytest.warns(ConvergenceWarning, match="refit with method='nuts'") as record:
        warn_if_failed(diag)
    assert "run longer" not in str(record[0].message).lower()
