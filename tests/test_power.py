"""Power analysis: validity (null rate, analytic power), seeding, caching, parallelism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pluralign._errors import PluralignWarning
from pluralign.power import (
    SIM_COLUMNS,
    SUMMARY_COLUMNS,
    StudyDesign,
    analytic_power,
    group_difference_se,
    power_analysis,
)

#: The crossed linear mixed model.
MODEL = "mixed"


def small_normal(n=(40, 40), m=3, effect=0.0, **kw) -> StudyDesign:
    """Two groups, no item effects, normal ratings: the design with a closed-form power."""
    kw = {
        "item_sd": 0.0,
        "group_item_sd": 0.0,
        "rater_sd": 0.5,
        "residual_sd": 1.0,
        "n_prompts": 6,
        "responses_per_prompt": 2,
        "items_per_rater": m,
        **kw,
    }
    return StudyDesign(
        {"g": {"a": n[0], "b": n[1]}}, effects={"b": effect}, scale="normal", intercept=3.0, **kw
    )


def within_mc(k: int, n: int, p: float, level: float = 0.999) -> bool:
    """Two-sided exact binomial test of a simulated rate against p does not reject at 1 - level."""
    return stats.binomtest(k, n, p).pvalue > 1 - level


# ---------------------------------------------------------------------------------- design
def test_design_validation_names_the_problem():
    with pytest.raises(ValueError, match="ONE demographic"):
        StudyDesign({"gender": {"a": 1, "b": 1}, "age": {"x": 1, "y": 1}})
    with pytest.raises(ValueError, match="not in groups"):
        StudyDesign({"g": {"a": 5, "b": 5}}, effects={"c": 0.1})
    with pytest.raises(ValueError, match="items_per_rater"):
        StudyDesign({"g": {"a": 5, "b": 5}}, n_prompts=1, responses_per_prompt=2, items_per_rater=3)
    with pytest.raises(ValueError, match="residual_sd only applies"):
        StudyDesign({"g": {"a": 5, "b": 5}}, residual_sd=1.0)


def test_with_n_raters_keeps_shares():
    d = StudyDesign({"gender": {"she/her": 490, "he/him": 470, "they/them": 40}})
    d2 = d.with_n_raters(100)
    assert d2.counts == {"she/her": 49, "he/him": 47, "they/them": 4}
    assert d.with_n_raters(7).n_raters == 7
    assert min(d.with_n_raters(3).counts.values()) == 1


def test_relative_effect_reproduces_mean_ratio():
    d = StudyDesign(
        {"gender": {"she/her": 20000, "he/him": 20000}},
        effects={"he/him": -0.18},
        effect_scale="relative",
        n_prompts=2000,
        group_item_sd=0.0,
    )
    lat = d.latent_effects()["he/him"]
    m0, m1 = d.mean_rating(d.intercept), d.mean_rating(d.intercept + lat)
    assert m1 / m0 - 1 == pytest.approx(-0.18, abs=1e-8)
    # and the simulated ratings show it (large study; SE of the ratio is about 0.01)
    means = d.simulate(seed=3).data().groupby("gender")["rating"].mean()
    assert means["he/him"] / means["she/her"] - 1 == pytest.approx(-0.18, abs=0.035)


def test_simulate_is_seeded_and_balanced():
    d = StudyDesign(
        {"g": {"a": 40, "b": 20}}, n_prompts=10, responses_per_prompt=3, items_per_rater=3
    )
    s1, s2 = d.simulate(seed=5), d.simulate(seed=5)
    pd.testing.assert_frame_equal(s1.ratings, s2.ratings)
    assert not s1.ratings.equals(d.simulate(seed=6).ratings)
    per_item = s1.ratings["item"].value_counts()
    assert per_item.max() - per_item.min() <= 1  # 60 raters × 3 = 180 slots over 30 items
    assert s1.ratings.groupby("rater").size().eq(3).all()
    # raters rate the responses of one prompt (items_per_rater == responses_per_prompt)
    by_rater = s1.ratings.merge(s1.items, on="item").groupby("rater")["prompt_id"].nunique()
    assert by_rater.max() <= 2
    assert set(s1.ratings["rating"].unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}


# ---------------------------------------------------------------------------------- validity
@pytest.mark.slow
def test_null_detection_rate_matches_alpha():
    res = power_analysis(
        small_normal(effect=0.0), n_sims=300, model=MODEL, seed=11, progress=False, n_jobs=2
    )
    row = res.summary.iloc[0]
    k = int(res.table["detected"].sum())
    assert row["n_sims"] == 300 and row["n_failed"] == 0
    assert within_mc(k, 300, 0.05), f"false-positive rate {k / 300:.3f} far from 0.05"
    assert row["power_ci_low"] <= 0.05 + 0.02 and row["power_ci_high"] >= 0.05 - 0.02
    assert row["coverage"] == pytest.approx(0.95, abs=0.035)


@pytest.mark.slow
def test_simulated_power_matches_closed_form():
    d = small_normal(n=(40, 40), m=3, effect=0.45)
    exact = analytic_power(d)
    assert 0.6 < exact < 0.85  # a point where MC error is informative
    res = power_analysis(d, n_sims=300, model=MODEL, seed=12, progress=False, n_jobs=2)
    k = int(res.table["detected"].sum())
    assert within_mc(k, 300, exact), f"simulated {k / 300:.3f} vs analytic {exact:.3f}"
    row = res.summary.iloc[0]
    assert row["truth"] == pytest.approx(0.45)
    assert abs(row["bias"]) < 4 * row["bias_se"] + 1e-3
    assert row["sd_estimate"] == pytest.approx(group_difference_se(d), rel=0.12)


def test_group_item_deviations_undercover_as_documented():
    """The omitted group × item term adds about 2 group_item_sd² / n_items to the contrast's
    variance, so nominal 95 % intervals cover at 2 Φ(1.96 SE / sqrt(SE² + that)) − 1."""
    d = small_normal(n=(100, 100), m=4, n_prompts=5, responses_per_prompt=4, group_item_sd=0.4)
    res = power_analysis(d, n_sims=200, model="rater_means", seed=3, progress=False)
    tab, row = res.table, res.summary.iloc[0]
    se = float(((tab["ci_high"] - tab["ci_low"]) / (2 * stats.t.ppf(0.975, 198))).mean())
    extra = 2 * 0.4**2 / d.n_items
    predicted = 2 * stats.norm.cdf(1.959964 * se / np.sqrt(se**2 + extra)) - 1
    assert predicted < 0.8
    assert within_mc(int(tab["covered"].sum()), 200, predicted)
    assert row["sd_estimate"] == pytest.approx(np.sqrt(se**2 + extra), rel=0.15)


def test_analytic_power_hand_values():
    d = small_normal(n=(50, 50), m=4)
    # Var = (0.25 + 1/4)(2/50) = 0.02 -> SE = 0.1414
    assert group_difference_se(d) == pytest.approx(np.sqrt(0.02))
    z = analytic_power(d, effect=0.4, test="z")
    ncp = 0.4 / np.sqrt(0.02)
    assert z == pytest.approx(stats.norm.sf(1.959964 - ncp) + stats.norm.cdf(-1.959964 - ncp))
    assert analytic_power(d, effect=0.0) == pytest.approx(0.05)
    assert analytic_power(d, effect=0.4) < z  # the t test is a little less powerful
    with pytest.raises(ValueError, match="item_sd=0"):
        group_difference_se(StudyDesign({"g": {"a": 5, "b": 5}}, scale="normal", item_sd=0.5))


# ---------------------------------------------------------------------------------- plumbing
def test_result_tables_and_seeding(tmp_path):
    d = small_normal(effect=0.3)
    r1 = power_analysis(d, n_sims=30, model="rater_means", seed=1, progress=False)
    assert list(r1.table.columns) == list(SIM_COLUMNS)
    assert list(r1.summary.columns) == list(SUMMARY_COLUMNS)
    assert len(r1.table) == 30 and r1.table["sim"].tolist() == list(range(30))
    r2 = power_analysis(d, n_sims=30, model="rater_means", seed=1, progress=False, n_jobs=2)
    pd.testing.assert_frame_equal(
        r1.table.drop(columns=["simulate_s", "fit_s"]),
        r2.table.drop(columns=["simulate_s", "fit_s"]),
    )
    # streams do not depend on n_sims: the first 30 of 50 are the same simulations
    r3 = power_analysis(d, n_sims=50, model="rater_means", seed=1, progress=False)
    np.testing.assert_allclose(r3.table["estimate"][:30], r1.table["estimate"])
    assert 0 <= r1.power <= 1 and r1.power_ci[0] <= r1.power <= r1.power_ci[1]
    assert "PowerResult" in repr(r1)


def test_cache_resumes_and_extends(tmp_path):
    d = small_normal(effect=0.3)
    calls = []

    def fit(study):
        calls.append(1)
        from pluralign.power import RaterMeansFitter

        return RaterMeansFitter("g")(study)

    a = power_analysis(d, n_sims=12, model=fit, seed=3, cache=tmp_path, progress=False)
    assert len(calls) == 12 and a.timing["n_cached"] == 0
    b = power_analysis(d, n_sims=12, model=fit, seed=3, cache=tmp_path, progress=False)
    assert len(calls) == 12 and b.timing["n_cached"] == 12 and b.timing["n_run"] == 0
    pd.testing.assert_frame_equal(a.table, b.table)
    c = power_analysis(d, n_sims=20, model=fit, seed=3, cache=tmp_path, progress=False)
    assert len(calls) == 20 and c.timing["n_cached"] == 12
    # a different seed is a different cache entry
    power_analysis(d, n_sims=2, model=fit, seed=4, cache=tmp_path, progress=False)
    assert len(calls) == 22


def test_failed_fits_are_counted_not_hidden():
    d = small_normal(effect=0.3)

    def flaky(study, *, seed):
        if seed % 3 == 0:
            raise RuntimeError("did not converge")
        from pluralign.power import RaterMeansFitter

        return RaterMeansFitter("g")(study)

    with pytest.warns(PluralignWarning, match="failed"):
        res = power_analysis(d, n_sims=30, model=flaky, seed=2, progress=False)
    n_failed = int(res.summary["n_failed"].iloc[0])
    assert 0 < n_failed < 30
    assert res.summary["n_sims"].iloc[0] == 30
    assert res.table.loc[res.table["error"] != "", "error"].str.contains("did not converge").all()


def test_bad_arguments():
    d = small_normal()
    with pytest.raises(ValueError, match="model must be one of"):
        power_analysis(d, model="lasso", n_sims=2, progress=False)
    with pytest.raises(ValueError, match="alpha"):
        power_analysis(d, alpha=1.5, n_sims=2, progress=False)


def test_mixed_on_ordinal_design_recovers_point_effect():
    d = StudyDesign(
        {"gender": {"she/her": 150, "he/him": 150}},
        effects={"he/him": -0.18},
        effect_scale="relative",
        n_prompts=30,
    )
    res = power_analysis(d, n_sims=40, model="mixed", seed=5, progress=False)
    row = res.summary.iloc[0]
    assert row["truth"] == pytest.approx(d.point_effects()["he/him"])
    assert abs(row["bias"]) < 4 * row["bias_se"] + 0.02
    assert row["power"] > 0.9


def test_design_from_pilot_study_recovers_the_simulator_truth():
    from pluralign.data import simulate_study
    from pluralign.power import design_from_study

    sim = simulate_study(
        n_raters=400,
        seed=2,
        dimensions=["toxicity"],
        family="gaussian",
        missing_share=0.0,
        group_item=(),
    )
    d = design_from_study(sim.study, term="gender", reference="she/her", n_raters=800)
    truth = sim.truth.random_sd.set_index("component")["sd"]
    assert d.scale == "normal" and d.reference == "she/her" and d.n_raters == 800
    assert d.rater_sd == pytest.approx(truth["rater"], abs=0.12)
    assert d.item_sd == pytest.approx(truth["item"], rel=0.25)
    assert d.residual_sd == pytest.approx(truth["residual"], rel=0.1)
    assert d.effects["he/him"] == pytest.approx(d.intercept * -0.18, abs=0.12)
    assert d.n_items == len(sim.study.items)
    res = power_analysis(
        d.replace(n_prompts=50), n_sims=8, model="rater_means", seed=1, progress=False
    )
    assert res.summary["level"].isin(d.levels[1:]).sum() == len(d.levels) - 1


@pytest.mark.slow
def test_bayes_power_uses_hdi_detection_and_latent_truth():
    d = StudyDesign(
        {"gender": {"she/her": 30, "he/him": 30}}, effects={"he/him": -1.0}, n_prompts=10
    )
    res = power_analysis(
        d,
        n_sims=2,
        model="bayes",
        model_options={"draws": 100, "tune": 100},
        seed=1,
        progress=False,
    )
    tab = res.table
    assert (tab["error"] == "").all(), tab["error"].tolist()
    assert tab["truth"].tolist() == pytest.approx([-1.0, -1.0])  # cumulative logit, like the model
    hdi_excludes_zero = (tab["ci_low"] > 0) | (tab["ci_high"] < 0)
    assert (tab["detected"] == hdi_excludes_zero).all()
    assert res.model == "bayes"
