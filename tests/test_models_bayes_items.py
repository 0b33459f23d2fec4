"""fit_bayes with item covariates and cross-level interactions: the likelihood by hand, recovery
of simulated item-level and demographic × item-feature effects, agreement with fit_mixed's
ordinal model (``ordinal::clmm``'s algorithm)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("pymc")
pytest.importorskip("nutpie")

from scipy.special import expit

from pluralign.data import simulate_study
from pluralign.models import Priors, effects_within, fit_bayes, fit_mixed, prior_predictive
from pluralign.models._bayes import _model_data
from pluralign.models._bayes_model import (
    build_model,
    parameter_draws,
    pointwise_log_likelihood,
)
from pluralign.models._design import build_design

FORMULA = "rating ~ gender * source_model + ideology * length"
REF = {"gender": "she/her", "ideology": "liberal", "source_model": "model_a"}
SCALE = {"length": "standardize"}
FIT = {"reference": REF, "scale_numeric": SCALE, "progressbar": False}
#: Simulated latent effects (large enough to be detected by a small design).
ITEM_EFFECTS = {
    "source_model_effects": {"toxicity": {"model_b": 0.6, "model_c": -0.4}},
    "length_effects": 0.4,
    "source_model_interactions": {
        "toxicity": {"gender": {"he/him": {"model_b": -0.6, "model_c": 0.5}}}
    },
    "length_interactions": {"toxicity": {"ideology": {"conservative": -0.5}}},
}
#: Wide priors on the coefficients, so that posterior means are comparable with ML estimates.
WIDE = Priors(beta_sd=5.0)
BAYES = {**FIT, "priors": WIDE}
#: Coefficient name → simulated value.
TRUTH = {
    "source_model[T.model_b]": 0.6,
    "source_model[T.model_c]": -0.4,
    "length": 0.4,
    "gender[T.he/him]:source_model[T.model_b]": -0.6,
    "gender[T.he/him]:source_model[T.model_c]": 0.5,
    "ideology[T.centre]:length": 0.0,
    "ideology[T.conservative]:length": -0.5,
}


def _binary_gender(sim):
    """The study restricted to she/her and he/him raters (every gender × model cell is rated)."""
    raters = sim.study.raters
    keep = raters.loc[raters["gender"].isin(["she/her", "he/him"]), "rater"]
    return sim.study.subset(raters=list(keep))


@pytest.fixture(scope="module")
def sim():
    """300 raters × 10 items, 240 items with about 12 ratings each."""
    return simulate_study(
        n_raters=300,
        n_prompts=80,
        responses_per_prompt=3,
        items_per_rater=10,
        seed=9,
        dimensions=["toxicity"],
        group_item_sd=0.0,
        **ITEM_EFFECTS,
    )


@pytest.fixture(scope="module")
def study(sim):
    return _binary_gender(sim)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dropped rows (missing ideology)
        return fn(*args, **kwargs)


@pytest.fixture(scope="module")
def laplace(study):
    return _quiet(fit_bayes, study, FORMULA, method="laplace", draws=300, seed=3, **BAYES)


@pytest.fixture(scope="module")
def clmm(study):
    return _quiet(fit_mixed, study, FORMULA, family="ordinal", n_draws=600, **FIT)


def _beta(fit) -> dict[str, tuple[float, float]]:
    """Posterior mean and SD of each coefficient, by design column name."""
    dfit = fit.dimension_fit()
    beta = np.asarray(dfit.idata.posterior["beta"]).reshape(-1, dfit.data.n_coef)
    return {
        name: (float(beta[:, j].mean()), float(beta[:, j].std(ddof=1)))
        for j, name in enumerate(dfit.data.coef_names)
    }


def _clmm_beta(fit) -> dict[str, float]:
    s = fit.summary().query("kind == 'fixed'")
    return dict(zip(s["parameter"], s["estimate"], strict=True))


# ------------------------------------------------------------------------------ likelihood
def test_item_columns_enter_per_rating_and_every_likelihood_agrees():
    """Prior draws (no sampling): the PyMC model's log-likelihood, the NumPy pointwise kernel and
    a hand computation from the design matrix agree, item and cross-level columns included."""
    study = _binary_gender(simulate_study(n_raters=40, seed=3, dimensions=["toxicity"]))
    kw = dict(reference=REF, scale_numeric=SCALE)
    idata = _quiet(prior_predictive, study, FORMULA, draws=10, seed=1, **kw)
    design = _quiet(build_design, study, FORMULA, dimension="toxicity", **kw)
    md, _, _ = _model_data(design, "ordinal", study.scale("toxicity"), None)
    # demographic columns once per rater; item and cross-level columns per rating
    names = np.asarray(md.coef_names)
    assert all(":" in n or n.startswith(("source_model", "length")) for n in names[md.obs_cols])
    assert list(names[md.rater_cols]) == ["gender[T.he/him]", "ideology[T.centre]",
                                          "ideology[T.conservative]"]  # fmt: skip
    np.testing.assert_array_equal(md.design_matrix(), design.X[:, 1:])

    s = 4
    pr = idata.prior.isel(chain=0, draw=s)
    ll = pointwise_log_likelihood(parameter_draws(idata.prior, md), md, slice(None))[:, s]
    r, i = md.rater_codes, md.item_codes
    eta = (
        design.X[:, 1:] @ pr["beta"].values
        + float(pr["sigma_rater"]) * pr["z_rater"].values[r]
        + float(pr["sigma_item"]) * pr["z_item"].values[i]
    )
    cdf = expit(pr["cutpoints"].values[None, :] - eta[:, None])
    cdf = np.hstack([np.zeros((len(eta), 1)), cdf, np.ones((len(eta), 1))])
    k = md.y.astype(int)
    want = np.log(cdf[np.arange(len(k)), k + 1] - cdf[np.arange(len(k)), k])
    np.testing.assert_allclose(ll, want, rtol=1e-4, atol=1e-5)  # float32 kernel

    pt = pytest.importorskip("pytensor.tensor")
    model = build_model(md)
    point = {}
    for rv in model.free_RVs:
        value = model.rvs_to_values[rv]
        transform = model.rvs_to_transforms.get(rv)
        x = pt.as_tensor(pr[rv.name].values)
        point[value.name] = (transform.forward(x, *rv.owner.inputs) if transform else x).eval()
    loglik = model.replace_rvs_by_values([model.potentials[0]])[0]
    fn = model.compile_fn(loglik, inputs=model.value_vars, on_unused_input="ignore")
    assert float(fn(point)) == pytest.approx(float(want.sum()), rel=1e-6)


def test_group_item_must_be_a_rater_column(study):
    with pytest.raises(ValueError, match="column of the raters table"):
        _quiet(fit_bayes, study, "rating ~ gender + source_model", group_item="source_model")


# ------------------------------------------------------------------------------ recovery
def test_laplace_recovers_item_and_cross_level_effects(laplace, sim):
    post = _beta(laplace)
    for name, true in TRUTH.items():
        mean, sd = post[name]
        assert abs(mean - true) < 3.5 * sd, (name, mean, true, sd)
    gender = sim.truth.fixed_effects.set_index(["term", "level"]).loc[("gender", "he/him")]
    mean, sd = post["gender[T.he/him]"]
    assert abs(mean - gender["beta_latent"]) < 3.5 * sd
    # the cross-level interactions are detected, not only consistent with the truth
    eff = laplace.effects(scale="link").set_index(["term", "level"])
    assert eff.loc[("ideology:length", "conservative"), "ci_high"] < 0
    assert eff.loc[("gender:source_model", "he/him:model_b"), "ci_high"] < 0
    assert eff.loc[("gender:source_model", "he/him:model_c"), "ci_low"] > 0
    # each row names its estimand: the main effects are averaged over the other variables
    assert eff.loc[("length", "length"), "estimand"].startswith("slope per SD; marginal over")
    assert laplace.design().sources == {
        "gender": "raters",
        "ideology": "raters",
        "length": "items",
        "source_model": "items",
    }


def test_laplace_agrees_with_the_ordinal_mixed_model(laplace, clmm):
    """Many ratings per item, 10 per rater: posterior means within 0.2 posterior SD of the
    maximum-likelihood coefficients (wide priors), and the same within-model contrasts."""
    post, ml = _beta(laplace), _clmm_beta(clmm)
    assert set(post) == set(ml)
    shift = {name: abs(post[name][0] - ml[name]) / post[name][1] for name in post}
    assert max(shift.values()) < 0.2, shift
    a = effects_within(laplace, "gender", "source_model")
    b = effects_within(clmm, "gender", "source_model")
    width = (b["difference_ci_high"] - b["difference_ci_low"]).to_numpy()
    assert a["source_model"].tolist() == ["model_a", "model_b", "model_c"]
    np.testing.assert_array_less(np.abs(a["difference"] - b["difference"]), 0.1 * width)


@pytest.mark.slow
def test_nuts_agrees_with_the_ordinal_mixed_model(study, clmm):
    # short chains: some random effects may miss R-hat <= 1.01 (warned); the coefficients may not
    nuts = _quiet(fit_bayes, study, FORMULA, draws=500, tune=500, seed=4, **BAYES)
    diag = nuts.diagnostics()
    assert diag.loc[diag["parameter"].str.startswith("beta"), "ok"].all(), diag
    post, ml = _beta(nuts), _clmm_beta(clmm)
    shift = {name: abs(post[name][0] - ml[name]) / post[name][1] for name in post}
    assert max(shift.values()) < 0.2, shift
    # the predictive checks see the item columns too
    assert "source_model" in nuts.idata.observed_data.coords
    ll = float(nuts.idata.log_likelihood["rating"].mean())
    assert -2.0 < ll < -1.0
