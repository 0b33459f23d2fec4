"""Group means and relative differences: hand-checked values, the rater bootstrap, recovery."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pluralign.data import Scale, Study, simulate_study
from pluralign.describe import (
    bootstrap_group_sums,
    cluster_weights,
    group_means,
    percentile_interval,
    relative_difference,
)


def tiny_study() -> Study:
    """Three women (ratings 1; 3, 3; 2) and two men (4; 5, 5) on one dimension."""
    ratings = pd.DataFrame(
        {
            "rater": ["w1", "w2", "w2", "w3", "m1", "m2", "m2"],
            "item": ["a", "a", "b", "b", "a", "a", "b"],
            "dimension": "toxicity",
            "rating": [1, 3, 3, 2, 4, 5, 5],
        }
    )
    raters = pd.DataFrame(
        {
            "rater": ["w1", "w2", "w3", "m1", "m2"],
            "gender": ["she/her", "she/her", "she/her", "he/him", "he/him"],
            "race": ["White", "White;Black", "Black", "White", None],
        }
    )
    return Study.from_frames(
        ratings, raters, scales=[Scale("toxicity", 1, 5)], multiselect=["race"]
    )


# --------------------------------------------------------------------------- kernel
def test_cluster_weights_are_multinomial():
    w = cluster_weights(7, 20_000, np.random.default_rng(0))
    assert w.shape == (20_000, 7) and (w.sum(axis=1) == 7).all()
    assert w.mean() == pytest.approx(1.0, abs=0.01)
    # Var of a multinomial(n, 1/n) count is (n - 1) / n
    assert w[:, 0].var() == pytest.approx(6 / 7, rel=0.03)


def test_bootstrap_of_two_raters_is_hand_checkable():
    """Two raters (means 1 and 3): resamples are AA, AB/BA, BB with probabilities 1/4, 1/2, 1/4."""
    bs, bn = bootstrap_group_sums(
        np.array([1.0, 3.0]), np.ones(2), np.ones((2, 1)), 40_000, np.random.default_rng(1)
    )
    means = (bs / bn)[:, 0]
    share = {v: float(np.mean(means == v)) for v in (1.0, 2.0, 3.0)}
    assert share[1.0] == pytest.approx(0.25, abs=0.01)
    assert share[2.0] == pytest.approx(0.50, abs=0.01)
    assert share[3.0] == pytest.approx(0.25, abs=0.01)
    lo, hi = percentile_interval(means[:, None], 0.95)
    assert (lo[0], hi[0]) == (1.0, 3.0)
    lo50, hi50 = percentile_interval(means[:, None], 0.4)
    assert (lo50[0], hi50[0]) == (2.0, 2.0)


def test_bootstrap_se_matches_the_formula():
    """One rating per rater, values 1..5: bootstrap SD of the mean is sqrt(pop. variance / n)."""
    vals = np.arange(1.0, 6.0)
    bs, bn = bootstrap_group_sums(
        vals, np.ones(5), np.ones((5, 1)), 50_000, np.random.default_rng(2)
    )
    assert (bs / bn).std() == pytest.approx(np.sqrt(vals.var() / 5), rel=0.02)


def test_resampling_is_by_rater_not_by_rating():
    """A rater with many identical ratings moves as one block."""
    # rater A: ten ratings of 1; rater B: one rating of 5
    bs, bn = bootstrap_group_sums(
        np.array([10.0, 5.0]),
        np.array([10.0, 1.0]),
        np.ones((2, 1)),
        5_000,
        np.random.default_rng(3),
    )
    means = np.round((bs / bn)[:, 0], 6)
    assert set(np.unique(means)) == {1.0, round(15 / 11, 6), 5.0}


def test_vectorised_bootstrap_equals_explicit_resampling():
    rng = np.random.default_rng(4)
    sums, counts = rng.normal(size=30) + 3, rng.integers(1, 5, size=30).astype(float)
    member = (rng.random((30, 3)) < 0.5).astype(float)
    bs, bn = bootstrap_group_sums(sums, counts, member, 50, np.random.default_rng(9))
    w = cluster_weights(30, 50, np.random.default_rng(9))
    for b in range(50):
        idx = np.repeat(np.arange(30), w[b])  # the raters drawn in resample b
        assert np.allclose(bs[b], (sums[idx, None] * member[idx]).sum(0))
        assert np.allclose(bn[b], (counts[idx, None] * member[idx]).sum(0))


# --------------------------------------------------------------------------- tables
def test_group_means_hand_computed():
    gm = group_means(tiny_study(), by="gender", n_boot=500, seed=0).set_index("group")
    assert gm.loc["she/her", "mean"] == pytest.approx(9 / 4)
    assert gm.loc["he/him", "mean"] == pytest.approx(14 / 3)
    assert gm.loc["she/her", "n_raters"] == 3 and gm.loc["she/her", "n_ratings"] == 4
    assert (gm["ci_low"] <= gm["mean"]).all() and (gm["mean"] <= gm["ci_high"]).all()
    # men's ratings: resampling 2 raters (4) and (5, 5) gives means within [4, 5]
    assert gm.loc["he/him", "ci_low"] >= 4 and gm.loc["he/him", "ci_high"] <= 5
    assert gm.attrs["ci_prob"] == 0.95 and gm.attrs["n_boot"] == 500


def test_relative_difference_hand_computed():
    rd = relative_difference(tiny_study(), by="gender", reference="she/her", n_boot=500, seed=0)
    rd = rd.set_index("group")
    assert rd.loc["he/him", "difference"] == pytest.approx(14 / 3 - 9 / 4)
    assert rd.loc["he/him", "relative_pct"] == pytest.approx(100 * ((14 / 3) / (9 / 4) - 1))
    assert rd.loc["she/her", "is_reference"] and rd.loc["she/her", "difference"] == 0
    assert np.isnan(rd.loc["she/her", "relative_ci_low"])
    assert (
        rd.loc["he/him", "relative_ci_low"]
        < rd.loc["he/him", "relative_pct"]
        < rd.loc["he/him", "relative_ci_high"]
    )


def test_default_reference_is_the_largest_group():
    rd = relative_difference(tiny_study(), by="gender", n_boot=0)
    assert set(rd["reference"]) == {"she/her"}
    assert rd["ci_low"].isna().all() and (rd["ci_method"] == "none").all()


def test_multiselect_collapsed_and_indicators():
    s = tiny_study()
    col = group_means(s, by="race", n_boot=0).set_index("group")
    assert set(col.index) == {"White", "Black", "Multiracial"}
    assert col.loc["Multiracial", "mean"] == 3.0
    assert col.attrs["excluded_raters"] == {"toxicity": {"race": 1}}
    ind = relative_difference(s, by="race", coding="indicators", n_boot=200, seed=1)
    ind = ind.set_index("group")
    # Black: w2 (3, 3) and w3 (2) → 8/3; without Black (and with a race): w1 (1), m1 (4) → 5/2
    assert ind.loc["Black", "mean"] == pytest.approx(8 / 3)
    assert ind.loc["Black", "reference"] == "not Black"
    assert ind.loc["Black", "mean_reference"] == pytest.approx(5 / 2)
    assert ind.loc["White", "n_raters"] == 3


def test_several_by_columns_separately_and_crossed(small_study):
    s = small_study.study
    sep = group_means(s, by=["gender", "ideology"], dimension="toxicity", n_boot=0)
    assert set(sep["by"]) == {"gender", "ideology"}
    d = s.data("toxicity")
    for var in ("gender", "ideology"):
        expected = d.groupby(var)["rating"].mean()
        got = sep[sep["by"] == var].set_index("group")["mean"]
        pd.testing.assert_series_equal(
            got.sort_index(), expected.sort_index(), check_names=False, check_index_type=False
        )
    cr = group_means(s, by=["gender", "ideology"], dimension="toxicity", n_boot=0, crossed=True)
    expected = d.groupby(["gender", "ideology"])["rating"].mean()
    got = cr.set_index(["gender", "ideology"])["mean"]
    pd.testing.assert_series_equal(
        got.sort_index(), expected.sort_index(), check_names=False, check_index_type=False
    )
    assert cr["group"].str.contains(" × ").all()
    rd = relative_difference(
        s,
        by=["gender", "ideology"],
        crossed=True,
        n_boot=0,
        reference=("she/her", "liberal"),
        dimension="toxicity",
    )
    assert set(rd["reference"]) == {"she/her × liberal"}


def test_bootstrap_is_seeded(small_study):
    s = small_study.study
    a = relative_difference(s, by="gender", n_boot=100, seed=3)
    b = relative_difference(s, by="gender", n_boot=100, seed=3)
    c = relative_difference(s, by="gender", n_boot=100, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not a["ci_low"].equals(c["ci_low"])


def test_errors_name_the_problem(small_study):
    s = small_study.study
    with pytest.raises(KeyError, match="unknown demographic 'sex'"):
        group_means(s, by="sex")
    with pytest.raises(KeyError, match="unknown dimension 'humour'"):
        group_means(s, by="gender", dimension="humour")
    with pytest.raises(ValueError, match="reference 'men' is not a group of 'gender'"):
        relative_difference(s, by="gender", reference="men")
    with pytest.raises(ValueError, match="coding must be"):
        group_means(s, by="race", coding="dummy")
    with pytest.raises(ValueError, match="crossed groups need one category"):
        group_means(s, by=["race", "gender"], coding="indicators", crossed=True)
    with pytest.raises(ValueError, match="ci_prob"):
        group_means(s, by="gender", ci_prob=1.5, n_boot=10)


# --------------------------------------------------------------------------- recovery of the truth
TARGETS = [
    ("toxicity", "gender", "he/him"),
    ("emotional_awareness", "ideology", "conservative"),
    ("emotional_awareness", "race", "Black"),
]


def _estimates(study, n_boot, seed):
    rd = relative_difference(
        study,
        by=["gender", "ideology", "race"],
        dimension=["toxicity", "emotional_awareness"],
        n_boot=n_boot,
        seed=seed,
    )
    return rd.set_index(["dimension", "by", "group"])


def test_paper_study_recovers_the_published_differences(paper_study):
    rd = _estimates(paper_study.study, 1000, 0)
    for key in TARGETS:
        truth = paper_study.truth.effect(*key)["relative_pct"]
        row = rd.loc[key]
        assert row["relative_ci_low"] <= truth <= row["relative_ci_high"], key
        assert row["relative_pct"] == pytest.approx(truth, abs=8)
        assert row["relative_ci_high"] - row["relative_ci_low"] < 15


def test_bootstrap_intervals_cover_the_truth():
    """Over 20 simulated studies, the 95 % rater-bootstrap intervals cover the truth about 95 % of
    the time (>= 51 of 60 intervals: failing this has probability < 0.1 % if coverage is 95 %),
    and the estimates are unbiased."""
    covered, est = [], []
    for seed in range(20):
        sim = simulate_study(seed=100 + seed)
        rd = _estimates(sim.study, 200, seed)
        for key in TARGETS:
            truth = sim.truth.effect(*key)["relative_pct"]
            row = rd.loc[key]
            covered.append(row["relative_ci_low"] <= truth <= row["relative_ci_high"])
            est.append(row["relative_pct"] - truth)
    assert sum(covered) >= 51
    err = np.array(est).reshape(20, 3)
    assert np.all(np.abs(err.mean(axis=0)) < 3 * err.std(axis=0, ddof=1) / np.sqrt(20) + 0.5)


def test_arguments_after_by_are_keyword_only():
    with pytest.raises(TypeError):
        relative_difference(tiny_study(), "gender", "she/her")
    with pytest.raises(TypeError):
        group_means(tiny_study(), "gender", "toxicity")
