"""The simulator: published design, seeded, calibrated truth, and options."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special

from pluralign.data import (
    AGREEMENT_5,
    BINARY,
    DIMENSIONS,
    draw_ratings,
    ordinal_mean,
    simulate_study,
)
from pluralign.data._simulate import AGES, GENDERS, IDEOLOGIES, PARTIES, RACES, SOURCE_MODELS

TARGETS = {
    ("toxicity", "gender", "he/him"): -18.0,
    ("emotional_awareness", "ideology", "conservative"): 27.9,
    ("emotional_awareness", "race", "Black"): 44.0,
}


def test_default_design_matches_published_study(paper_study):
    s = paper_study.study
    assert (s.n_raters, s.n_ratings) == (1095, 27375)
    assert s.dimensions == list(DIMENSIONS)
    assert s.ratings.groupby(["rater", "dimension"]).size().eq(5).all()
    for dim, scale in s.scales.items():
        assert (scale.min, scale.max, scale.labels) == (1, 5, AGREEMENT_5)
        assert scale.more_is_better is (dim not in ("toxicity", "stereotypical_bias"))
    assert s.metadata["questions"]["toxicity"] == "The answer exhibits toxicity."
    assert set(s.ratings["rating"].unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    # every item is rated; items come in prompts of 4 responses
    assert s.n_items == 1000 and s.items["prompt_id"].nunique() == 250
    assert s.items.groupby("prompt_id").size().eq(4).all()


def test_rater_demographics(paper_study):
    r = paper_study.study.raters
    assert set(r["country"]) == {"US", "Germany"}
    assert set(r["gender"]) <= set(GENDERS)
    assert set(r["age"].dropna()) == set(AGES)
    assert set(r["ideology"].dropna()) == set(IDEOLOGIES)
    # "Prefer not to say" → missing, through the Study's placeholder handling (logged)
    assert 0 < r["age"].isna().sum() < 0.08 * len(r)
    assert "'age'" in " ".join(paper_study.study.log["reason"])
    # race: multi-select tuples of census categories, at most 3, mostly White
    sizes = r["race"].map(len)
    assert sizes.between(1, 3).all() and (sizes > 1).any()
    assert {v for t in r["race"] for v in t} <= set(RACES)
    white = r["race"].map(lambda t: "White" in t).mean()
    assert 0.6 < white < 0.85
    for country, parties in PARTIES.items():
        assert set(r.loc[r["country"] == country, "party"]) <= set(parties)


def test_same_rater_pairs_of_one_prompt_exist(paper_study):
    s = paper_study.study
    seen = s.ratings[["rater", "item"]].drop_duplicates().merge(s.items[["item", "prompt_id"]])
    per = seen.groupby(["rater", "prompt_id"]).size()
    assert (per >= 2).mean() > 0.5
    assert seen.groupby("rater")["item"].nunique().eq(5).all()


def test_seeded_reproducibility():
    a = simulate_study(seed=5, n_raters=80)
    b = simulate_study(seed=5, n_raters=80)
    c = simulate_study(seed=6, n_raters=80)
    pd.testing.assert_frame_equal(a.study.ratings, b.study.ratings)
    pd.testing.assert_frame_equal(a.study.items, b.study.items)
    pd.testing.assert_frame_equal(a.truth.item_traits, b.truth.item_traits)
    assert not a.study.ratings["rating"].equals(c.study.ratings["rating"])
    # the calibrated truth does not depend on the seed
    pd.testing.assert_frame_equal(a.truth.fixed_effects, c.truth.fixed_effects)


def test_calibration_hits_the_targets(small_study):
    fe = small_study.truth.fixed_effects
    assert set(fe.columns) >= {
        "dimension",
        "term",
        "level",
        "reference",
        "beta_latent",
        "relative_pct",
    }
    for (dim, term, level), target in TARGETS.items():
        row = small_study.truth.effect(dim, term, level)
        assert row["relative_pct"] == pytest.approx(target, abs=1e-6)
        assert row["target_pct"] == pytest.approx(target)
        assert np.sign(row["beta_latent"]) == np.sign(target)
    # everything else is zero
    others = fe[fe["target_pct"].isna()]
    assert np.allclose(others["beta_latent"], 0) and np.allclose(others["relative_pct"], 0)


def test_truth_tables(small_study):
    t = small_study.truth
    assert set(t.random_sd["component"]) == {
        "rater",
        "item",
        "group_item:gender",
        "group_item:ideology",
    }
    assert (t.random_sd["sd"] > 0).all()
    assert list(t.cutpoints.columns) == ["dimension", "threshold", "value"]
    assert (
        t.cutpoints.groupby("dimension")["value"].apply(lambda v: v.is_monotonic_increasing).all()
    )
    assert len(t.item_traits) == 160 * 5
    assert set(t.group_item["term"]) == {"gender", "ideology"}
    assert len(t.rater_effects) == 120 * 5
    # item traits are correlated sensibly: toxic items are less helpful
    wide = t.item_traits.pivot(index="item", columns="dimension", values="trait")
    assert wide["toxicity"].corr(wide["helpfulness"]) < -0.2
    assert wide["toxicity"].corr(wide["stereotypical_bias"]) > 0.2


def test_ratings_follow_the_latent_model():
    """Item means follow item traits; the model recovers the rater SD roughly."""
    sim = simulate_study(seed=3, n_raters=2000, group_item_sd=0.0)
    d = sim.study.ratings[sim.study.ratings["dimension"] == "helpfulness"]
    item_mean = d.groupby("item")["rating"].mean()
    traits = sim.truth.item_traits.query("dimension == 'helpfulness'").set_index("item")["effect"]
    assert item_mean.corr(traits.loc[item_mean.index]) > 0.6


def test_draw_ratings_matches_cumulative_logit():
    rng = np.random.default_rng(0)
    cut = np.array([-1.0, 0.0, 1.5])
    eta = np.full(200_000, 0.4)
    y = draw_ratings(eta, rng, cutpoints=cut)
    cdf = special.expit(cut - 0.4)
    expected = np.diff(np.concatenate([[0], cdf, [1]]))
    observed = np.bincount(y.astype(int) - 1, minlength=4) / y.size
    assert np.allclose(observed, expected, atol=0.005)
    assert y.mean() == pytest.approx(float(ordinal_mean(np.array(0.4), cut)), abs=0.01)
    with pytest.raises(ValueError, match="strictly increasing"):
        draw_ratings(eta[:3], rng, cutpoints=np.array([1.0, 0.0]))
    g = draw_ratings(np.zeros(100_000), rng, family="gaussian", residual_sd=2.0)
    assert g.std() == pytest.approx(2.0, rel=0.02)


def test_text_carries_the_latent_traits(paper_study):
    items = paper_study.study.items
    traits = paper_study.truth.item_traits.pivot(index="item", columns="dimension", values="trait")
    t = traits.loc[items["item"]]
    insult = items["response"].str.contains("idiot|pathetic|loser|fool", regex=True).to_numpy()
    assert t["toxicity"].to_numpy()[insult].mean() > 1.0 > t["toxicity"].to_numpy()[~insult].mean()
    caring = items["response"].str.contains("sorry you're going|genuinely painful").to_numpy()
    assert t["emotional_awareness"].to_numpy()[caring].min() > 0.9
    steps = items["response"].str.contains("1\\)|Step by step").to_numpy()
    assert t["helpfulness"].to_numpy()[steps].mean() > 1.0
    assert items["prompt"].str.endswith(("?", ".")).all()
    assert items["prompt"].nunique() == 250


def test_effect_overrides_and_latent_effects():
    sim = simulate_study(
        seed=1,
        n_raters=50,
        effects={"toxicity": {"gender": {"he/him": -0.10}}, "helpfulness": {"age": {"60+": 0.05}}},
    )
    assert sim.truth.effect("toxicity", "gender", "he/him")["relative_pct"] == pytest.approx(-10)
    assert sim.truth.effect("helpfulness", "age", "60+")["relative_pct"] == pytest.approx(5)
    # published effects are kept unless replaced
    assert sim.truth.effect("emotional_awareness", "race", "Black")[
        "relative_pct"
    ] == pytest.approx(44)
    lat = simulate_study(
        seed=1, n_raters=50, latent_effects={"toxicity": {"gender": {"he/him": 0.5}}}
    )
    row = lat.truth.effect("toxicity", "gender", "he/him")
    assert row["beta_latent"] == 0.5 and row["relative_pct"] > 0 and np.isnan(row["target_pct"])
    none = simulate_study(seed=1, n_raters=50, base_effects="none")
    assert np.allclose(none.truth.fixed_effects["relative_pct"], 0, atol=1e-8)
    # without item-covariate interactions no group needs a latent shift to stay at no difference
    plain = simulate_study(
        seed=1,
        n_raters=50,
        base_effects="none",
        source_model_interactions={},
        length_interactions={},
    )
    assert np.allclose(plain.truth.fixed_effects["beta_latent"], 0)


@pytest.mark.parametrize(
    ("design", "message"),
    [
        ({"effects": {"toxic": {"gender": {"he/him": -0.1}}}}, "dimension 'toxic'"),
        ({"effects": {"toxicity": {"sex": {"male": -0.1}}}}, "variable 'sex'"),
        ({"effects": {"toxicity": {"gender": {"she/her": -0.1}}}}, "reference 'she/her'"),
        ({"effects": {"toxicity": {"gender": {"he/him": 5.0}}}}, "cannot be reached"),
        ({"scale_points": 7}, "scale_points must be 5 or 2"),
        ({"items_per_rater": 5000}, "exceeds the number of items"),
        ({"responses_per_visit": 6}, "cannot exceed responses_per_prompt"),
        ({"countries": ["France"]}, "countries must be among"),
        ({"family": "poisson"}, "family must be"),
        ({"n_raters": 0}, "positive integer"),
        ({"group_item": ["race"]}, "group_item variables"),
        ({"source_model_effects": {"toxicity": {"model_a": 0.1}}}, "reference 'model_a'"),
        ({"source_model_effects": {"toxic": {"model_b": 0.1}}}, "dimension 'toxic'"),
        (
            {"source_model_interactions": {"toxicity": {"gender": {"she/her": {"model_b": 1}}}}},
            "non-reference levels",
        ),
        ({"length_interactions": {"toxicity": {"race": {"Black": 0.1}}}}, "variable 'race'"),
        ({"source_models": ["a", "a"]}, "distinct names"),
        ({"rater_sd": -1.0}, "rater_sd for 'toxicity' must be >= 0"),
        ({"item_sd": {"helpfulness": float("nan")}}, "item_sd for 'helpfulness'"),
        (
            {"countries": ["US"], "effects": {"toxicity": {"country": {"Germany": 0.1}}}},
            "only \\['US'\\] is simulated",
        ),
    ],
)
def test_invalid_designs(design, message):
    with pytest.raises(ValueError, match=message):
        simulate_study(seed=0, **design)


def test_gaussian_variant_and_zero_item_effects():
    sim = simulate_study(seed=2, family="gaussian", item_sd=0, group_item_sd=0)
    r = sim.study.ratings["rating"]
    assert not np.allclose(r, r.round())  # continuous
    assert np.allclose(sim.truth.item_traits["effect"], 0)
    assert "residual" in set(sim.truth.random_sd["component"])
    assert sim.truth.cutpoints.empty
    assert sim.truth.effect("toxicity", "gender", "he/him")["relative_pct"] == pytest.approx(-18)
    d = sim.study.data("toxicity")
    m = d.groupby("gender")["rating"].mean()
    assert 100 * (m["he/him"] / m["she/her"] - 1) == pytest.approx(-18, abs=6)


def test_binary_scale():
    sim = simulate_study(seed=4, n_raters=300, scale_points=2)
    s = sim.study
    assert set(s.ratings["rating"].unique()) == {0.0, 1.0}
    assert all(sc.labels == BINARY and (sc.min, sc.max) == (0, 1) for sc in s.scales.values())
    assert sim.truth.cutpoints.groupby("dimension").size().eq(1).all()
    assert sim.truth.effect("toxicity", "gender", "he/him")["relative_pct"] == pytest.approx(-18)


def test_single_country_and_custom_dimensions():
    sim = simulate_study(
        seed=0, n_raters=40, countries=["Germany"], dimensions=["toxicity", "helpfulness", "humour"]
    )
    s = sim.study
    assert set(s.raters["country"]) == {"Germany"}
    assert set(s.raters["party"]) <= set(PARTIES["Germany"])
    assert s.dimensions == ["toxicity", "helpfulness", "humour"]
    assert "country" not in set(sim.truth.fixed_effects["term"])


def test_item_covariates_and_their_truth(small_study):
    items = small_study.study.items
    assert set(items["source_model"]) == set(SOURCE_MODELS)
    assert items["length"].min() >= 10 and 100 < items["length"].mean() < 200
    eff = small_study.truth.item_effects
    assert list(eff.columns) == ["dimension", "term", "level", "source_model", "effect"]
    tox = eff[eff["dimension"] == "toxicity"].set_index(["term", "level", "source_model"])["effect"]
    assert tox[("source_model", np.nan, "model_b")] == pytest.approx(0.15)
    assert tox[("gender:source_model", "he/him", "model_c")] == pytest.approx(-0.15)
    assert tox[("ideology:length", "conservative", np.nan)] == pytest.approx(-0.1)
    # interacting groups without a target are calibrated to no difference averaged over items
    fe = small_study.truth.fixed_effects.set_index(["dimension", "term", "level"])
    assert fe.loc[("helpfulness", "gender", "he/him"), "relative_pct"] == pytest.approx(0, abs=1e-8)
    assert fe.loc[("helpfulness", "gender", "he/him"), "target_pct"] == 0
    assert fe.loc[("helpfulness", "gender", "they/them"), "beta_latent"] == 0


def test_item_covariate_interactions_are_recovered():
    """Per-level differences in the data recover the interactions within Monte-Carlo error.

    Gaussian ratings without random effects, so ratings are independent given the covariates
    and the standard errors of the cell means are exact; main effects of the covariates and of
    the other demographics cancel from both contrasts.
    """
    theta, kappa = 0.4, -0.3
    sim = simulate_study(
        seed=8,
        n_raters=4000,
        dimensions=["helpfulness"],
        family="gaussian",
        rater_sd=0.0,
        item_sd=0.0,
        group_item_sd=0.0,
        source_model_interactions={"helpfulness": {"gender": {"he/him": {"model_b": theta}}}},
        length_interactions={"helpfulness": {"ideology": {"conservative": kappa}}},
    )
    s = sim.study
    items = s.items.assign(x=lambda f: (f["length"] - f["length"].mean()) / f["length"].std(ddof=0))
    d = s.ratings.merge(items[["item", "source_model", "x"]]).merge(
        sim.study.raters[["rater", "gender", "ideology"]]
    )
    # gender x source model: (he/him - she/her) on model_b minus the same on model_a
    cells = d[
        d["source_model"].isin(["model_a", "model_b"]) & d["gender"].isin(["she/her", "he/him"])
    ]
    g = cells.groupby(["gender", "source_model"])["rating"].agg(["mean", "var", "size"])
    did = (g.loc[("he/him", "model_b"), "mean"] - g.loc[("she/her", "model_b"), "mean"]) - (
        g.loc[("he/him", "model_a"), "mean"] - g.loc[("she/her", "model_a"), "mean"]
    )
    se = float(np.sqrt((g["var"] / g["size"]).sum()))
    assert abs(did - theta) < 4 * se and se < theta / 8
    # ideology x length: conservative minus liberal slope of rating on standardised length
    slopes, ses = {}, {}
    for level in ("liberal", "conservative"):
        part = d[d["ideology"] == level]
        fit = np.polyfit(part["x"], part["rating"], 1, cov=True)
        slopes[level], ses[level] = fit[0][0], np.sqrt(fit[1][0, 0])
    diff = slopes["conservative"] - slopes["liberal"]
    se = float(np.hypot(ses["conservative"], ses["liberal"]))
    assert abs(diff - kappa) < 4 * se and se < abs(kappa) / 6
    truth = sim.truth.item_effects.set_index(["term", "level"])["effect"]
    assert truth[("gender:source_model", "he/him")] == theta
    assert truth[("ideology:length", "conservative")] == kappa
