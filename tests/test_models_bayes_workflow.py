"""The Bayesian workflow: pointwise log-likelihood, predictive draws, priors, LOO comparison, PPC plot."""

from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from scipy.stats import norm

pytest.importorskip("pymc")
pytest.importorskip("nutpie")
az = pytest.importorskip("arviz")

from matplotlib.container import BarContainer, ErrorbarContainer  # noqa: E402

from pluralign import plots  # noqa: E402
from pluralign._errors import ConvergenceWarning, PluralignWarning  # noqa: E402
from pluralign.data import simulate_study  # noqa: E402
from pluralign.models import (  # noqa: E402
    SENSITIVITY_COLUMNS,
    BayesResult,
    Priors,
    compare_bayes,
    fit_bayes,
    prior_predictive,
    prior_sensitivity,
)
from pluralign.models import _bayes_kernels as K  # noqa: E402
from pluralign.models._bayes import _model_data  # noqa: E402
from pluralign.models._bayes_model import (  # noqa: E402
    ModelData,
    ParameterDraws,
    parameter_draws,
    pointwise_log_likelihood,
    predictive_draws,
)
from pluralign.models._design import build_design  # noqa: E402

SMALL = {"draws": 200, "tune": 200, "chains": 2, "progressbar": False}


@pytest.fixture(scope="module")
def sim():
    """120 raters × 10 of 30 items (1,200 ratings) with strong gender × item disagreement."""
    return simulate_study(
        n_raters=120,
        n_prompts=10,
        responses_per_prompt=3,
        items_per_rater=10,
        responses_per_visit=3,
        group_item=("gender",),
        group_item_sd=1.5,
        seed=5,
        dimensions=["toxicity"],
    )


def _fit(study, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit_bayes(study, "rating ~ gender", seed=2, **SMALL, **kw)


@pytest.fixture(scope="module")
def fit_base(sim):
    return _fit(sim.study)


@pytest.fixture(scope="module")
def fit_gi(sim):
    return _fit(sim.study, group_item="gender")


# ------------------------------------------------------------------ likelihood kernels
@pytest.mark.slow
def test_log_likelihood_of_one_draw_matches_hand_computation(fit_gi):
    idata = fit_gi.idata
    ll = idata.log_likelihood["rating"]
    assert ll.shape == (2, 200, len(idata.observed_data["obs"])) and ll.dtype == np.float32
    post = idata.posterior.isel(chain=1, draw=17)
    md = fit_gi.fits["toxicity"].data
    beta = post["beta"].values
    for n in (0, 5, 333, len(md.y) - 1):
        r, i = md.rater_codes[n], md.item_codes[n]
        g = md.group_codes[r]
        eta = (
            md.X_rater[r] @ beta
            + float(post["sigma_rater"]) * post["z_rater"].values[r]
            + float(post["sigma_item"]) * post["z_item"].values[i]
            + float(post["sigma_group_item"]) * post["z_group_item"].values[g, i]
        )
        cdf = np.concatenate([[0.0], expit(post["cutpoints"].values - eta), [1.0]])
        k = int(md.y[n])
        assert float(ll.isel(chain=1, draw=17, obs=n)) == pytest.approx(
            np.log(cdf[k + 1] - cdf[k]), rel=1e-5
        )


@pytest.mark.parametrize("family", ["ordinal", "bernoulli", "gaussian"])
def test_log_likelihood_kernel_matches_scipy(family):
    """Kernel check on prior draws (no sampling), with group × item deviations."""
    kw = {"scale_points": 2} if family == "bernoulli" else {}
    if family == "gaussian":
        kw = {"family": "gaussian"}
    study = simulate_study(n_raters=30, seed=3, dimensions=["toxicity"], **kw).study
    idata = prior_predictive(
        study, "rating ~ gender", family=family, group_item="gender", draws=20, seed=1
    )
    design = build_design(study, "rating ~ gender", dimension="toxicity")
    md, _, _ = _model_data(design, family, study.scale("toxicity"), "gender")
    d = parameter_draws(idata.prior, md)
    ll = pointwise_log_likelihood(d, md, slice(None))
    s, n = 7, np.arange(0, len(md.y), 11)
    r, i = md.rater_codes[n], md.item_codes[n]
    pr = idata.prior.isel(chain=0, draw=s)
    eta = (
        md.X_rater[r] @ pr["beta"].values
        + float(pr["sigma_rater"]) * pr["z_rater"].values[r]
        + float(pr["sigma_item"]) * pr["z_item"].values[i]
        + float(pr["sigma_group_item"]) * pr["z_group_item"].values[md.group_codes[r], i]
    )
    if family == "gaussian":
        want = norm.logpdf(md.y[n], float(pr["intercept"]) + eta, float(pr["sigma_residual"]))
    elif family == "bernoulli":
        p1 = expit(float(pr["intercept"]) + eta)
        want = np.where(md.y[n] == 1, np.log(p1), np.log1p(-p1))
    else:
        cdf = expit(pr["cutpoints"].values[None, :] - eta[:, None])
        cdf = np.hstack([np.zeros((len(n), 1)), cdf, np.ones((len(n), 1))])
        k = md.y[n].astype(int)
        want = np.log(cdf[np.arange(len(n)), k + 1] - cdf[np.arange(len(n)), k])
    assert ll.shape == (len(md.y), 20)  # ratings × draws
    np.testing.assert_allclose(ll[n, s], want, rtol=1e-5, atol=1e-5)  # float32


def test_predictive_draws_follow_the_category_probabilities():
    n = 40_000
    md = ModelData(
        family="ordinal",
        y=np.zeros(n, dtype=np.int64),
        rater_codes=np.zeros(n, dtype=np.int64),
        item_codes=np.zeros(n, dtype=np.int64),
        X_rater=np.zeros((1, 0)),
        coef_names=[],
        n_raters=1,
        n_items=1,
        n_categories=4,
    )
    cut = np.array([-1.0, 0.2, 1.5])
    d = ParameterDraws(np.array([[0.4]]), np.array([[0.3]]), None, cut[:, None], None, None)
    codes = predictive_draws(d, md, slice(None), np.random.default_rng(0))
    share = np.bincount(codes.ravel(), minlength=4) / n
    np.testing.assert_allclose(share, K.cumulative_probs(np.array([0.7]), cut)[0], atol=0.01)


# ------------------------------------------------------------------ priors
def test_priors_validate_and_scale():
    with pytest.raises(ValueError, match="beta_sd"):
        Priors(beta_sd=0)
    p = Priors().scaled(2.0, ("beta_sd",))
    assert (p.beta_sd, p.cutpoint_sd) == (2.0, 3.0)
    with pytest.raises(ValueError, match="unknown prior scale"):
        Priors().scaled(2.0, ("beta",))


def test_prior_predictive_sorts_cutpoints_and_follows_the_priors(sim):
    """Random effects and betas switched off: P(y = lowest) = E[logistic(min of 4 N(0, 3²))]."""
    tiny = Priors(beta_sd=1e-4, sigma_rater=1e-4, sigma_item=1e-4)
    idata = prior_predictive(sim.study, priors=tiny, draws=500, seed=4)
    cut = idata.prior["cutpoints"].values.reshape(-1, 4)
    assert np.all(np.diff(cut, axis=1) > 0)  # the ordered prior: sorted normal draws
    pp = idata.prior_predictive["rating"].values.reshape(500, -1)
    assert set(np.unique(pp)) <= set(np.unique(sim.study.ratings["rating"]))
    rng = np.random.default_rng(0)
    truth = expit(np.min(rng.normal(0, 3, (200_000, 4)), axis=1)).mean()
    assert (pp == pp.min()).mean() == pytest.approx(truth, abs=0.04)


@pytest.mark.slow
def test_narrow_beta_prior_shrinks_the_effect(sim, fit_base):
    narrow = _fit(sim.study, priors=Priors(beta_sd=0.01))
    assert narrow.settings["priors"].beta_sd == 0.01
    assert fit_base.settings["priors"] == Priors()
    b0 = fit_base.effects().iloc[0]["estimate"]
    b1 = narrow.effects().iloc[0]["estimate"]
    assert abs(b0) > 0.3 and abs(b1) < 0.03


@pytest.mark.slow
def test_prior_sensitivity_has_one_row_per_effect_and_scale(fit_base):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        out = prior_sensitivity(fit_base, scale=(0.5, 2.0), which=["beta_sd"])
    assert list(out.columns) == list(SENSITIVITY_COLUMNS)
    n_effects = len(fit_base.effects())
    assert len(out) == 2 * n_effects and sorted(out["scale"].unique()) == [0.5, 2.0]
    eff = fit_base.effects().set_index("level")["estimate"]
    for row in out.itertuples():
        assert row.estimate_base == pytest.approx(eff[row.level])
        assert row.shift_sd == pytest.approx((row.estimate - row.estimate_base) / row.sd_base)
    # 1,200 ratings: halving or doubling a weakly informative prior moves little
    assert (out["shift_sd"].abs() < 1).all()


# ------------------------------------------------------------------ LOO and comparison
@pytest.mark.slow
def test_loo_compare_prefers_the_true_group_item_model(fit_base, fit_gi):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # arviz on Pareto k
        loo = az.loo(fit_gi.idata)
    assert np.isfinite(loo.elpd_loo)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluralignWarning)
        table = compare_bayes({"base": fit_base, "gender x item": fit_gi})
    assert table.index[0] == "gender x item"
    assert {"elpd_loo", "se", "dse", "weight", "n_pareto_k_high"} <= set(table.columns)
    diff = table.loc["base", "elpd_diff"]
    assert diff > 4 * table.loc["base", "dse"]
    assert table.loc["gender x item", "weight"] > 0.9
    # arviz.compare agrees when called on the InferenceData directly
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = az.compare({"base": fit_base.idata, "gi": fit_gi.idata})
    assert direct.index[0] == "gi"


def test_compare_bayes_checks_its_input():
    with pytest.raises(ValueError, match="two or more"):
        compare_bayes({})
    with pytest.raises(TypeError, match="BayesResult"):
        compare_bayes({"a": 1, "b": 2})
    mixed = {f: BayesResult([], "rating ~ 1", f, "nutpie", {}) for f in ("gaussian", "ordinal")}
    with pytest.raises(ValueError, match="not on one scale"):
        compare_bayes(mixed)


# ------------------------------------------------------------------ PPC plot
def test_ppc_plot_of_prior_draws_counts_by_hand(sim):
    idata = prior_predictive(sim.study, draws=40, seed=1)
    ax = plots.ppc(idata, by="ideology", group="prior", ci_prob=0.8)
    obs = idata.observed_data
    frame = pd.DataFrame({"g": obs["ideology"].values, "y": obs["rating"].values})
    frame["g"] = frame["g"].fillna("(missing)")
    sim_y = idata.prior_predictive["rating"].values.reshape(40, -1)
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    points = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == len(points) == frame["g"].nunique()
    for bar, pts in zip(bars, points, strict=True):
        rows = (frame["g"] == bar.get_label()).to_numpy()
        for k, (patch, value) in enumerate(zip(bar.patches, range(1, 6), strict=True)):
            assert patch.get_height() == pytest.approx(np.mean(frame["y"][rows] == value))
            shares = (sim_y[:, rows] == value).mean(1)
            assert pts.lines[0].get_ydata()[k] == pytest.approx(shares.mean())
    plt.close(ax.figure)


@pytest.mark.slow
def test_ppc_plot_has_one_bar_and_point_set_per_group_and_category(sim, fit_gi):
    ax = plots.ppc(fit_gi, by="gender")
    ratings = sim.study.ratings.merge(sim.study.raters, on="rater")
    observed = pd.crosstab(ratings["gender"], ratings["rating"], normalize="index")
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    points = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == len(points) == observed.shape[0]
    for bar in bars:
        assert len(bar.patches) == observed.shape[1]
        heights = [p.get_height() for p in bar.patches]
        np.testing.assert_allclose(heights, observed.loc[bar.get_label()].to_numpy())
    n = ratings["gender"].value_counts()
    for pts, bar in zip(points, bars, strict=True):
        mean = pts.lines[0].get_ydata()
        assert len(mean) == observed.shape[1]
        if n[bar.get_label()] >= 200:  # the true model reproduces a large group's distribution
            np.testing.assert_allclose(mean, observed.loc[bar.get_label()].to_numpy(), atol=0.05)
    plt.close(ax.figure)
    with pytest.raises(KeyError, match="not a rater demographic"):
        plots.ppc(fit_gi, by="favourite_colour")
