"""Group means and differences: hand-checked values, both interval methods, agreement with
statsmodels and R's sandwich, origin-free measures, recovery of the truth."""

from __future__ import annotations

import shutil
import subprocess
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pluralign._errors import PluralignWarning
from pluralign.data import Scale, Study, simulate_study
from pluralign.describe import (
    CI_METHODS,
    bootstrap_group_sums,
    cluster_weights,
    group_means,
    percentile_interval,
    relative_difference,
    twoway_variance,
)

BOOT = "rater-bootstrap"


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
    gm = group_means(tiny_study(), by="gender", ci_method=BOOT, n_boot=500, seed=0)
    gm = gm.set_index("group")
    assert gm.loc["she/her", "mean"] == pytest.approx(9 / 4)
    assert gm.loc["he/him", "mean"] == pytest.approx(14 / 3)
    assert gm.loc["she/her", "n_raters"] == 3 and gm.loc["she/her", "n_ratings"] == 4
    assert (gm["ci_low"] <= gm["mean"]).all() and (gm["mean"] <= gm["ci_high"]).all()
    # men's ratings: resampling 2 raters (4) and (5, 5) gives means within [4, 5]
    assert gm.loc["he/him", "ci_low"] >= 4 and gm.loc["he/him", "ci_high"] <= 5
    assert gm.attrs["ci_prob"] == 0.95 and gm.attrs["n_boot"] == 500
    assert (gm["n_boot_used"] <= 500).all() and gm.loc["he/him", "n_boot_used"] > 300


def test_relative_difference_hand_computed():
    rd = relative_difference(
        tiny_study(), by="gender", reference="she/her", ci_method=BOOT, n_boot=500, seed=0
    ).set_index("group")
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
    rd = relative_difference(tiny_study(), by="gender", ci_method=BOOT, n_boot=0)
    assert set(rd["reference"]) == {"she/her"}
    assert rd["ci_low"].isna().all() and (rd["ci_method"] == "none").all()


def test_multiselect_collapsed_and_indicators():
    s = tiny_study()
    col = group_means(s, by="race", n_boot=0).set_index("group")
    assert set(col.index) == {"White", "Black", "Multiracial"}
    assert col.loc["Multiracial", "mean"] == 3.0
    assert col.attrs["excluded_raters"] == {"toxicity": {"race": 1}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluralignWarning)  # "not Black" has two raters
        ind = relative_difference(s, by="race", coding="indicators")
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
    a = relative_difference(s, by="gender", ci_method=BOOT, n_boot=100, seed=3)
    b = relative_difference(s, by="gender", ci_method=BOOT, n_boot=100, seed=3)
    c = relative_difference(s, by="gender", ci_method=BOOT, n_boot=100, seed=4)
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
    with pytest.raises(ValueError, match="ci_method must be one of"):
        group_means(s, by="gender", ci_method="bootstrap")
    with pytest.raises(ValueError, match="origin must be"):
        relative_difference(s, by="gender", origin="max")


# --------------------------------------------------------------------------- two-way intervals
def crossed_study(seed=0, n_raters=60, n_items=12, per=4, scale=(1, 5), small=0):
    """Raters in groups a/b (and ``small`` raters in c) rate ``per`` of ``n_items`` items."""
    rng = np.random.default_rng(seed)
    group = np.array(["a", "b"])[rng.integers(0, 2, n_raters)]
    group[:small] = "c"
    u, v = rng.normal(0, 0.7, n_raters), rng.normal(0, 0.8, n_items)
    rows = []
    for r in range(n_raters):
        for i in rng.choice(n_items, per, replace=False):
            eta = 3 + 0.5 * (group[r] == "b") + u[r] + v[i] + rng.normal(0, 0.8)
            rows.append((f"r{r}", f"i{i}", int(np.clip(np.rint(eta), 1, 5)) - 1 + scale[0]))
    ratings = pd.DataFrame(rows, columns=["rater", "item", "rating"]).assign(dimension="d")
    raters = pd.DataFrame({"rater": [f"r{r}" for r in range(n_raters)], "g": group})
    return Study.from_frames(ratings, raters, scales=[Scale("d", *scale)])


def test_twoway_variance_of_a_mean_matches_statsmodels():
    """Cameron-Gelbach-Miller two-way clustering, as statsmodels' OLS cov_type="cluster"."""
    import statsmodels.api as sm

    study = crossed_study(seed=1)
    d = study.data("d")
    gm = group_means(study, by="g").set_index("group")
    for level in ("a", "b"):
        sub = d[d["g"] == level]
        y = sub["rating"].to_numpy(float)
        groups = np.column_stack([pd.factorize(sub["rater"])[0], pd.factorize(sub["item"])[0]])
        ols = sm.OLS(y, np.ones(len(y))).fit(cov_type="cluster", cov_kwds={"groups": groups})
        assert gm.loc[level, "se"] == pytest.approx(ols.bse[0], rel=1e-10)
        # t interval on min(raters, items) - 1 degrees of freedom (12 items here)
        q = stats.t.ppf(0.975, min(sub["rater"].nunique(), sub["item"].nunique()) - 1)
        assert gm.loc[level, "ci_high"] - gm.loc[level, "mean"] == pytest.approx(q * ols.bse[0])
    assert (gm["ci_method"] == CI_METHODS["two-way"]).all() and (gm["n_boot_used"] == 0).all()


def test_twoway_variance_subtracts_the_double_count():
    """One rating per rater and per item: the rater and item terms each equal the iid variance,
    and the pair term removes one of them."""
    y = np.array([1.0, 2.0, 4.0, 5.0, 3.0])
    v, nr, ni = twoway_variance((y - y.mean()) / 5, np.arange(5), np.arange(5))
    assert v[0] == pytest.approx(y.var(ddof=1) / 5) and (nr[0], ni[0]) == (5, 5)


@pytest.mark.needs_r
def test_difference_interval_matches_r_sandwich(tmp_path):
    """The difference's two-way SE equals R's sandwich::vcovCL(lm(rating ~ g), ~ rater + item)."""
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript not found")
    study = crossed_study(seed=2)
    d = study.data("d")
    d.to_csv(tmp_path / "d.csv", index=False)
    code = (
        "suppressMessages(library(sandwich)); d <- read.csv(commandArgs(TRUE)[1]);"
        "d$g <- factor(d$g, levels = c('a', 'b')); f <- lm(rating ~ g, d);"
        "v <- vcovCL(f, cluster = ~ rater + item, type = 'HC0', cadjust = TRUE);"
        "cat(format(sqrt(v[2, 2]), digits = 15))"
    )
    run = subprocess.run(
        ["Rscript", "-e", code, str(tmp_path / "d.csv")], capture_output=True, text=True
    )
    if run.returncode != 0:
        pytest.skip(f"R sandwich not available: {run.stderr[-200:]}")
    se_r = float(run.stdout)
    rd = relative_difference(study, by="g", reference="a").set_index("group")
    df = min(d.groupby("g")["rater"].nunique().min(), d.groupby("g")["item"].nunique().min()) - 1
    half = rd.loc["b", "difference_ci_high"] - rd.loc["b", "difference"]
    assert half == pytest.approx(stats.t.ppf(0.975, df) * se_r, rel=1e-8)
    # pct_of_range is the difference over the range (4 points), interval included
    assert rd.loc["b", "pct_of_range_ci_high"] == pytest.approx(
        25 * rd.loc["b", "difference_ci_high"]
    )


def test_relative_pct_names_its_origin_and_the_other_measures_do_not_need_one():
    """Same ratings coded 1-5, 0-4 and reversed: relative_pct changes with the coding;
    pct_of_range and cohens_d (with their intervals) change at most their sign."""
    one = crossed_study(seed=3)
    zero = crossed_study(seed=3, scale=(0, 4))
    rev = one.ratings.assign(rating=6 - one.ratings["rating"])
    rev = Study.from_frames(rev, one.raters, scales=[Scale("d", 1, 5)])
    tabs = {
        name: relative_difference(s, by="g", reference="a").set_index("group").loc["b"]
        for name, s in (("1-5", one), ("0-4", zero), ("reversed", rev))
    }
    rel = {k: t["relative_pct"] for k, t in tabs.items()}
    assert rel["1-5"] > 0 and rel["0-4"] > rel["1-5"] and rel["reversed"] < 0
    assert tabs["1-5"]["relative_origin"] == 0 == tabs["0-4"]["relative_origin"]
    for col in ("pct_of_range", "cohens_d"):
        for t in (tabs["0-4"], tabs["reversed"]):
            sign = -1 if t is tabs["reversed"] else 1
            assert sign * t[col] == pytest.approx(tabs["1-5"][col])
            lo, hi = sorted([sign * t[f"{col}_ci_low"], sign * t[f"{col}_ci_high"]])
            assert (lo, hi) == pytest.approx(
                (tabs["1-5"][f"{col}_ci_low"], tabs["1-5"][f"{col}_ci_high"])
            )
    # counting from the scale minimum on 1-5 is counting from zero on 0-4
    m = relative_difference(one, by="g", reference="a", origin="minimum").set_index("group")
    assert m.loc["b", "relative_origin"] == 1.0
    for col in ("relative_pct", "relative_ci_low", "relative_ci_high"):
        assert m.loc["b", col] == pytest.approx(tabs["0-4"][col])


def test_cohens_d_hand_computed():
    rd = relative_difference(tiny_study(), by="gender", reference="she/her").set_index("group")
    women, men = np.array([1.0, 3, 3, 2]), np.array([4.0, 5, 5])
    pooled = np.sqrt((women.var(ddof=1) + men.var(ddof=1)) / 2)
    assert rd.loc["he/him", "cohens_d"] == pytest.approx((men.mean() - women.mean()) / pooled)
    assert rd.loc["he/him", "pct_of_range"] == pytest.approx(25 * (men.mean() - women.mean()))
    assert "var_group + var_reference" in rd.attrs["cohens_d_definition"]


def test_group_rated_on_one_item_gets_no_interval():
    s = tiny_study()
    ratings = s.ratings[s.ratings["item"] == "a"]  # every man rated item a only
    ratings = pd.concat([ratings, s.ratings[s.ratings["rater"].str.startswith("w")]])
    one = Study.from_frames(ratings.drop_duplicates(), s.raters, scales=[Scale("toxicity", 1, 5)])
    with pytest.warns(PluralignWarning, match="rated one item get no interval"):
        gm = group_means(one, by="gender").set_index("group")
    assert np.isnan(gm.loc["he/him", "ci_low"]) and np.isfinite(gm.loc["she/her", "ci_low"])


def test_bootstrap_counts_and_warns_about_dropped_resamples():
    """A 2-rater group among 40 raters is absent from (38/40)^40 ≈ 12.9 % of resamples."""
    study = crossed_study(seed=4, n_raters=40, small=2)
    with pytest.warns(PluralignWarning, match="dropped"):
        rd = relative_difference(study, by="g", reference="a", ci_method=BOOT, n_boot=1000)
    used = rd.set_index("group")["n_boot_used"]
    assert 820 <= used["c"] <= 920 and used["b"] >= 990  # binomial 99.9 % bounds: 838-904
    assert rd.set_index("group")["ci_method"].eq(CI_METHODS[BOOT]).all()


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


def test_intervals_cover_the_published_differences():
    """Over 20 simulated studies, the 95 % two-way intervals cover the truth about 95 % of
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
