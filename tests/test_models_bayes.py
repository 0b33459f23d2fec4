"""fit_bayes: the protocol, recovery of simulated truth, diagnostics and agreement with R ordinal::clmm."""

from __future__ import annotations

import math
import shutil
import subprocess
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pymc")
pytest.importorskip("nutpie")

from pluralign._errors import ConvergenceWarning
from pluralign.data import simulate_study
from pluralign.models import (
    BAYES_SUMMARY_COLUMNS,
    DIAGNOSTIC_COLUMNS,
    EFFECT_COLUMNS,
    MARGINAL_COLUMNS,
    POSTSTRAT_COLUMNS,
    BayesResult,
    ModelResult,
    compare_groups,
    fit_bayes,
    format_tail,
    tail_probability,
)
from pluralign.models import _bayes_kernels as K


@pytest.fixture(scope="module")
def sim():
    """300 raters × 8 items (100 items, 24 ratings each), toxicity only: 2,400 ratings."""
    return simulate_study(
        n_raters=300,
        n_prompts=25,
        responses_per_prompt=4,
        items_per_rater=8,
        responses_per_visit=4,
        seed=11,
        dimensions=["toxicity"],
    )


@pytest.fixture(scope="module")
def fit(sim):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit_bayes(
            sim.study,
            "rating ~ gender + ideology",
            group_item="gender",
            reference={"gender": "she/her", "ideology": "liberal"},
            draws=300,
            tune=300,
            chains=2,
            seed=3,
            progressbar=False,
        )


def test_protocol_columns(fit):
    assert isinstance(fit, ModelResult) and isinstance(fit, BayesResult)
    eff = fit.effects()
    assert tuple(eff.columns[: len(EFFECT_COLUMNS)]) == EFFECT_COLUMNS
    assert set(eff["term"]) == {"gender", "ideology"}
    assert eff["p_direction"].between(0.5, 1).all()
    # posterior probabilities, not p-values: no p_value, no Holm-adjusted p
    assert eff["p_value"].isna().all() and eff["p_adjusted"].isna().all()
    n = fit.fits["toxicity"].draws().n
    assert eff.attrs["p_tail_floor"] == 1 / n
    np.testing.assert_allclose(eff["p_tail"], np.maximum(2 * (1 - eff["p_direction"]), 1 / n))
    assert (
        eff["estimand"]
        == ["marginal over ideology (observed weights)"] * 3
        + ["marginal over gender (observed weights)"] * 2
    ).all()
    mm = fit.marginal_means("gender")
    assert set(MARGINAL_COLUMNS) <= set(mm.columns) and len(mm) == 4
    assert list(fit.poststratify(None).columns) == list(POSTSTRAT_COLUMNS)
    assert list(fit.diagnostics().columns) == list(DIAGNOSTIC_COLUMNS)
    summ = fit.summary()
    assert tuple(summ.columns) == BAYES_SUMMARY_COLUMNS
    assert {"sigma_rater", "sigma_item", "sigma_group_item"} <= set(summ["parameter"])
    assert summ["parameter"].str.startswith("cutpoints").sum() == 4
    assert "posterior" in fit.idata.groups()


def test_recovers_simulated_truth(fit, sim):
    eff = fit.effects().set_index(["term", "level"])
    truth = sim.truth.fixed_effects.set_index(["term", "level"])
    post = fit.fits["toxicity"].draws()
    cols = fit.design().columns[1:]
    for (term, level), row in eff.iterrows():
        sd = post.beta[:, cols.index(f"{term}[T.{level}]")].std()
        true = truth.loc[(term, level), "beta_latent"]
        assert abs(row["estimate"] - true) < 3.5 * sd, (term, level, row["estimate"], true, sd)
    he = eff.loc[("gender", "he/him")]
    assert he["ci_high"] < 0 and he["p_direction"] > 0.99
    # relative difference of marginal means vs the simulated (population) relative difference
    he99 = fit.effects(ci_prob=0.99).set_index(["term", "level"]).loc[("gender", "he/him")]
    true_rel = truth.loc[("gender", "he/him"), "relative_pct"]
    assert he99["relative_ci_low"] < true_rel < he99["relative_ci_high"]
    sds = sim.truth.random_sd.set_index("component")["sd"]
    s = fit.summary().set_index("parameter")
    assert abs(s.loc["sigma_rater", "mean"] - sds["rater"]) < 3 * s.loc["sigma_rater", "sd"]
    assert abs(s.loc["sigma_item", "mean"] - sds["item"]) < 3 * s.loc["sigma_item", "sd"]


def test_effect_columns_are_per_draw_summaries(fit):
    eff = fit.effects(ci_prob=0.9)
    fd = fit.fits["toxicity"]
    d = fd.draws()
    j = fd.design.columns.index("gender[T.he/him]") - 1
    b = d.beta[:, j]
    row = eff[(eff["term"] == "gender") & (eff["level"] == "he/him")].iloc[0]
    import arviz as az

    lo, hi = az.hdi(b, hdi_prob=0.9)  # intervals are ArviZ's HDI of the draws
    assert row["ci_low"] == pytest.approx(lo) and row["ci_high"] == pytest.approx(hi)
    std = np.sqrt(d.sigma_rater**2 + d.sigma_item**2 + d.sigma_group_item**2 + math.pi**2 / 3)
    assert row["cohens_d"] == pytest.approx(np.mean(b / std))
    # additive model: the marginal contrast is the coefficient
    assert row["estimate"] == pytest.approx(b.mean())
    # odds ratio: exp of the posterior median (= posterior median of exp(b)), exp of the HDI ends
    assert row["odds_ratio"] == pytest.approx(np.median(np.exp(b)), rel=1e-3)
    assert row["odds_ratio_ci_low"] == pytest.approx(np.exp(lo))
    assert row["odds_ratio_ci_high"] == pytest.approx(np.exp(hi))
    m = fit.cell_mean_draws(pd.DataFrame({"gender": ["he/him", "she/her"]}))
    assert row["difference"] == pytest.approx(np.mean(m[:, 0] - m[:, 1]))
    # point value as EFFECT_COLUMNS defines it: 100 * difference / mean_reference
    assert row["relative_pct"] == pytest.approx(100 * np.mean(m[:, 0] - m[:, 1]) / np.mean(m[:, 1]))


def test_tail_probability_is_bounded_by_the_draws():
    pdir, p = tail_probability(np.r_[np.full(3999, -1.0), 0.5])
    assert pdir == pytest.approx(3999 / 4000) and p == pytest.approx(2 / 4000)
    pdir, p = tail_probability(-np.arange(1.0, 4001.0))  # every draw negative: p < 1/4000
    assert pdir == 1.0 and p == 1 / 4000
    assert format_tail(p, 4000) == "< 0.00025"


def test_unused_scale_point_keeps_its_category(sim):
    from pluralign.models import build_design
    from pluralign.models._bayes import _model_data

    ratings = sim.study.ratings.copy()
    ratings.loc[ratings["rating"] == 5, "rating"] = 4  # nobody uses the top point
    study = sim.study.replace(ratings=ratings)
    design = build_design(study, "rating ~ gender", dimension="toxicity")
    md, levels, _ = _model_data(design, "ordinal", study.scale("toxicity"), None)
    assert levels.tolist() == [1, 2, 3, 4, 5] and md.n_categories == 5
    assert md.y.max() == 3  # codes 0..4; code 4 (rating 5) unused but kept


def test_rhat_of_one_chain_is_not_computable():
    import arviz as az

    from pluralign.models._bayes_model import diagnose

    rng = np.random.default_rng(0)
    idata = az.from_dict(posterior={"beta": rng.normal(size=(1, 200, 2))})
    rhat = diagnose(idata, "d", 1).query("check == 'r_hat'")
    assert rhat["value"].isna().all() and not rhat["ok"].any()
    assert rhat["note"].str.contains("not computable").all()
    two = az.from_dict(posterior={"beta": rng.normal(size=(2, 200, 2))})
    assert diagnose(two, "d", 2).query("check == 'r_hat'")["ok"].all()


def test_poststratify_is_share_weighted_mix(fit):
    mm = fit.marginal_means("gender").set_index("gender")["mean"]
    one = fit.poststratify({"gender": "he/him"})["estimate"].iloc[0]
    assert one == pytest.approx(mm["he/him"])
    target = pd.DataFrame({"gender": ["she/her", "he/him"], "share": [0.25, 0.75]})
    mix = fit.poststratify(target)["estimate"].iloc[0]
    assert mix == pytest.approx(0.25 * mm["she/her"] + 0.75 * mm["he/him"])
    # Gauss–Hermite integration of the random effects matches Monte Carlo
    d = fit.fits["toxicity"].draws()
    rng = np.random.default_rng(0)
    eta = np.array([0.3])
    cut = d.cutpoints[:1]
    tau = d.tau()[:1]
    gh = K.integrated_probs(eta[None, :], cut, tau)[0, 0]
    mc = K.cumulative_probs(eta + tau * rng.standard_normal(400_000), cut[0]).mean(0)
    np.testing.assert_allclose(gh, mc, atol=3e-3)


def test_predict(fit, sim):
    pred = fit.predict()
    assert len(pred) == fit.design().n == sim.study.n_ratings - fit.design().n_dropped
    probs = pred.filter(regex=r"^p_\d")
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-9)
    np.testing.assert_allclose(probs.to_numpy() @ np.arange(1, 6), pred["prediction"], atol=1e-9)
    # random effects carry information: predictions correlate with the ratings
    assert np.corrcoef(pred["prediction"], pred["rating"])[0, 1] > 0.5
    new = pd.DataFrame({"gender": ["he/him", "she/her"], "ideology": "liberal"})
    out = fit.predict(new, include_random=False)
    mm = fit.marginal_means("gender").set_index("gender")["mean"]
    assert out["prediction"].iloc[0] < out["prediction"].iloc[1]
    assert abs(out["prediction"].iloc[0] - mm["he/him"]) < 0.3


def test_compare_groups_hook(fit):
    out = compare_groups(fit, {"gender": "he/him"}, {"gender": "she/her"})
    eff = fit.effects()
    row = eff[(eff["level"] == "he/him")].iloc[0]
    assert out["difference"].iloc[0] == pytest.approx(row["difference"])


def test_short_run_warns():
    small = simulate_study(n_raters=40, n_prompts=5, seed=2, dimensions=["toxicity"]).study
    with pytest.warns(ConvergenceWarning, match=r"r_hat|ess_bulk"):
        res = fit_bayes(
            small, "rating ~ gender", draws=10, tune=10, chains=2, seed=1, progressbar=False
        )
    assert not res.diagnostics()["ok"].all()


def test_gaussian_and_bernoulli_and_two_dimensions(sim):
    gsim = simulate_study(
        n_raters=200,
        n_prompts=20,
        items_per_rater=6,
        responses_per_visit=3,
        seed=4,
        dimensions=["toxicity"],
        family="gaussian",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        g = fit_bayes(
            gsim.study,
            "rating ~ gender",
            family="gaussian",
            draws=250,
            tune=250,
            reference={"gender": "she/her"},
            seed=2,
            progressbar=False,
        )
    eff = g.effects().set_index("level")
    true = gsim.truth.effect("toxicity", "gender", "he/him")["beta_latent"]
    sd = g.summary().set_index("parameter").loc["beta[gender[T.he/him]]", "sd"]
    assert abs(eff.loc["he/him", "estimate"] - true) < 3.5 * sd
    assert np.isnan(eff["odds_ratio"]).all()
    # gaussian marginal-mean difference equals the coefficient (identity link)
    assert eff.loc["he/him", "difference"] == pytest.approx(eff.loc["he/him", "estimate"])

    bsim = simulate_study(
        n_raters=200,
        n_prompts=20,
        items_per_rater=6,
        responses_per_visit=3,
        seed=5,
        dimensions=["toxicity", "helpfulness"],
        scale_points=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        b = fit_bayes(
            bsim.study,
            "rating ~ gender",
            family="bernoulli",
            draws=150,
            tune=150,
            seed=2,
            progressbar=False,
        )
    eff = b.effects()
    assert set(eff["dimension"]) == {"toxicity", "helpfulness"}
    assert eff["mean_level"].between(0, 1).all()
    pred = b.predict()
    assert set(pred["dimension"]) == {"toxicity", "helpfulness"}
    assert "toxicity::beta" in b.idata.posterior and "helpfulness::beta" in b.idata.posterior
    with pytest.raises(ValueError, match="two-point scale"):
        fit_bayes(sim.study, family="bernoulli")


def test_bad_arguments_are_named(sim):
    with pytest.raises(ValueError, match="family"):
        fit_bayes(sim.study, family="poisson")
    with pytest.raises(ValueError, match="sampler"):
        fit_bayes(sim.study, sampler="stan")
    with pytest.raises(ValueError, match="interaction"):
        fit_bayes(sim.study, interactions=["gender"])


# ---------------------------------------------------------------------------- R comparison
_R_SCRIPT = r"""
suppressMessages(library(ordinal))
d <- read.csv(commandArgs(TRUE)[1], stringsAsFactors = FALSE)
d$gender <- relevel(factor(d$gender), ref = "she/her")
d$rater <- factor(d$rater); d$item <- factor(d$item)
m <- clmm(factor(rating, ordered = TRUE) ~ gender + (1|rater) + (1|item), data = d)
out <- data.frame(name = c(names(m$beta), paste0("cut", seq_along(m$alpha)),
                           "sigma_rater", "sigma_item"),
                  value = c(m$beta, m$alpha, sqrt(VarCorr(m)$rater[1]),
                            sqrt(VarCorr(m)$item[1])))
write.csv(out, commandArgs(TRUE)[2], row.names = FALSE)
"""


def _has_r_ordinal() -> bool:
    if shutil.which("Rscript") is None:
        return False
    ok = subprocess.run(["Rscript", "-e", "library(ordinal)"], capture_output=True)
    return ok.returncode == 0


@pytest.mark.slow
@pytest.mark.needs_r
def test_agrees_with_r_clmm(tmp_path):
    """fit_bayes vs ordinal::clmm (Laplace ML) on ~1,460 ratings.

    Two well-populated groups are compared: a group of ~10 raters (the simulated "other")
    is dominated by the Normal(0, 1) prior, where posterior and ML estimates rightly differ.
    Laplace ML underestimates the variance components with ~5 ratings per rater and ~7 per item
    (here σ ≈ 0.79 / 1.15 vs posterior means ≈ 0.87 / 1.19), and the cutpoints scale with the
    latent SD; so the cutpoints are compared raw (within 0.5 posterior SD) and standardised by
    the latent SD ``sqrt(σ²_rater + σ²_item + π²/3)`` (within 0.15 posterior SD).
    """
    if not _has_r_ordinal():
        pytest.skip("Rscript with the R package 'ordinal' is not installed")
    sim = simulate_study(
        n_raters=300,
        n_prompts=50,
        items_per_rater=5,
        responses_per_visit=1,
        seed=21,
        dimensions=["toxicity"],
        group_item=(),
    )
    study = sim.study.filter_raters(gender=["she/her", "he/him"])
    data = study.data("toxicity")[["rater", "item", "rating", "gender"]]
    data.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "clmm.R").write_text(_R_SCRIPT)
    subprocess.run(
        ["Rscript", str(tmp_path / "clmm.R"), str(tmp_path / "d.csv"), str(tmp_path / "out.csv")],
        check=True,
        capture_output=True,
    )
    r = pd.read_csv(tmp_path / "out.csv").set_index("name")["value"]
    with warnings.catch_warnings():  # a z_rater R-hat of ~1.015 at 600 draws is not the point here
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit = fit_bayes(
            study,
            "rating ~ gender",
            reference={"gender": "she/her"},
            draws=600,
            tune=600,
            chains=2,
            seed=7,
            progressbar=False,
        )
    d = fit.fits["toxicity"].draws()
    b = d.beta[:, 0]
    assert abs(b.mean() - r["genderhe/him"]) < 0.15 * b.std()
    sd_ours = np.sqrt(d.sigma_rater**2 + d.sigma_item**2 + math.pi**2 / 3)
    sd_r = math.sqrt(r["sigma_rater"] ** 2 + r["sigma_item"] ** 2 + math.pi**2 / 3)
    for k in range(4):
        c = d.cutpoints[:, k]
        assert abs(c.mean() - r[f"cut{k + 1}"]) < 0.5 * c.std(), k
        z = c / sd_ours
        assert abs(z.mean() - r[f"cut{k + 1}"] / sd_r) < 0.15 * z.std(), k


@pytest.mark.parametrize(
    "name",
    [
        "pluralign.models._bayes_kernels",
        "pluralign.models._bayes_model",
        "pluralign.models._bayes",
        "pluralign.labels._posterior",
    ],
)
def test_examples_run(name):
    import doctest
    import importlib

    result = doctest.testmod(
        importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert result.failed == 0
