"""Per-item disagreement and between-group divergence on hand-computed tables."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from pluralign._errors import DroppedRowsWarning
from pluralign.data import Scale, Study
from pluralign.labels import group_divergence, item_disagreement, most_contested
from pluralign.labels._kernels import jsd_counts, jsd_permutation_null, relabelled_counts


@pytest.fixture
def two_group_study() -> Study:
    # item i1: men 1,1 / women 5,5 (disjoint); item i2: men 2,3 / women 2,3 (identical)
    ratings = pd.DataFrame(
        {
            "rater": list("abcd") * 2,
            "item": ["i1"] * 4 + ["i2"] * 4,
            "dimension": "toxicity",
            "rating": [1, 1, 5, 5, 2, 3, 2, 3],
        }
    )
    raters = pd.DataFrame({"rater": list("abcd"), "gender": ["he/him"] * 2 + ["she/her"] * 2})
    items = pd.DataFrame(
        {"item": ["i1", "i2"], "prompt_id": "p", "prompt": "Q", "response": ["R1", "R2"]}
    )
    return Study.from_frames(ratings, raters, items=items, scales=[Scale("toxicity", 1, 5)])


def test_item_disagreement_hand_values(two_group_study):
    out = item_disagreement(two_group_study).set_index("item")
    # i1: ratings 1,1,5,5 → entropy 1 bit, mean 3, sample variance 16/3, two modes
    assert out.loc["i1", "entropy"] == pytest.approx(1.0)
    assert out.loc["i1", "variance"] == pytest.approx(16 / 3)
    assert out.loc["i1", "n_modes"] == 2 and out.loc["i1", "share_modal"] == 0.5
    assert out.loc["i1", "entropy_norm"] == pytest.approx(1 / np.log2(5))
    women = item_disagreement(two_group_study, group={"gender": "she/her"}).set_index("item")
    assert women.loc["i1", "entropy"] == 0 and women.loc["i1", "share_modal"] == 1
    assert women.loc["i1", "n"] == 2


def test_jsd_hand_computed():
    # group a: (1, 1) -> p = (1, 0); group b: (1, 2) -> q = (1/2, 1/2); m = (3/4, 1/4)
    # JSD = H(m) - (H(p) + H(q)) / 2 = H(3/4, 1/4) - 1/2 (bits)
    r = pd.DataFrame(
        {"rater": list("abcd"), "item": "i1", "dimension": "d", "rating": [1, 1, 1, 2]}
    )
    raters = pd.DataFrame({"rater": list("abcd"), "g": ["a", "a", "b", "b"]})
    s = Study.from_frames(r, raters, scales=[Scale("d", 1, 5)])
    out = group_divergence(s, "g", n_boot=0, n_perm=20_000, seed=1)
    h_m = -(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25))
    assert out["jsd_plugin"].item() == pytest.approx(h_m - 0.5, abs=1e-12)
    # every split of {1, 1, 1, 2} into two pairs gives one group (1, 1) and the other (1, 2), so
    # every relabelling has the observed JSD: the null is a point, the corrected JSD 0, p = 1
    assert out["jsd_null_mean"].item() == pytest.approx(h_m - 0.5, abs=1e-12)
    assert out["jsd"].item() == pytest.approx(0.0, abs=1e-12)
    assert out["p_value"].item() == 1.0


def test_group_divergence_hand_values(two_group_study):
    out = group_divergence(two_group_study, "gender", n_boot=200, n_perm=30_000, seed=1)
    out = out.set_index("item")
    assert out.loc["i1", "jsd_plugin"] == pytest.approx(1.0)
    assert out.loc["i2", "jsd_plugin"] == pytest.approx(0.0)
    assert out.loc["i1", "difference"] == pytest.approx(-4.0)  # he/him − she/her
    # i1 pools {1, 1, 5, 5}: of the 6 ways to split it into two pairs, 2 keep the values apart
    # (JSD 1) and 4 give each group {1, 5} (JSD 0): null mean 1/3, p-value 1/3. The null mean
    # uses 999 relabellings; the p-value stops after 20 exceedances (20 / draws)
    se = np.sqrt(2 / 9 / 999)
    assert out.loc["i1", "jsd_null_mean"] == pytest.approx(1 / 3, abs=4 * se)
    assert out.loc["i1", "jsd"] == pytest.approx(2 / 3, abs=4 * se)
    assert out.loc["i1", "p_value"] == pytest.approx(1 / 3, rel=0.7)
    # i2 pools {2, 3, 2, 3}: 4 of 6 splits give {2, 3}|{2, 3} (JSD 0), 2 give {2,2}|{3,3} (JSD 1)
    assert out.loc["i2", "jsd"] == pytest.approx(-1 / 3, abs=4 * se)
    assert out.loc["i2", "p_value"] == 1.0
    # Benjamini–Hochberg over the two items of the pair
    assert out.loc["i1", "p_adjusted"] == pytest.approx(min(1, 2 * out.loc["i1", "p_value"]))
    # resampling within item × group: disjoint one-point groups stay disjoint (plug-in JSD 1)
    assert out.loc["i1", "ci_low"] == pytest.approx(1 - out.loc["i1", "jsd_null_mean"])
    # i2's resampled JSDs exceed its plug-in 0, which moves the interval down further
    assert out.loc["i2", "ci_low"] < -out.loc["i2", "jsd_null_mean"]
    assert out.loc["i2", "ci_low"] < out.loc["i2", "jsd"] < out.loc["i2", "ci_high"]


def test_permutation_null_exact_values():
    """{1, 1} vs {5, 5}: P(JSD_perm >= 1) = 1/3; fixed and sequential draws agree with it."""
    a, b = np.array([[2, 0, 0, 0, 0]]), np.array([[0, 0, 0, 0, 2]])
    rng = np.random.default_rng(2)
    jsd, null_mean, p, drawn = jsd_permutation_null(a, b, 30_000, rng, stop_after=None)
    se = np.sqrt(2 / 9 / 30_000)
    assert jsd.item() == 1.0 and drawn.item() == 30_000
    assert null_mean.item() == pytest.approx(1 / 3, abs=4 * se)
    assert p.item() == pytest.approx(1 / 3, abs=4 * se)
    # sequential: 999 draws for the null mean, then stop at the 20th exceedance (p = 20 / L)
    ps = [jsd_permutation_null(a, b, 30_000, rng)[2].item() for _ in range(300)]
    assert np.mean(ps) == pytest.approx(1 / 3, abs=0.02)
    # a unit that never reaches 20 exceedances is drawn n_perm times: p = (1 + exceed)/(1 + n)
    wide = np.array([[5, 0, 0, 0, 0]]), np.array([[0, 0, 0, 0, 5]])  # P(JSD_perm >= 1) = 2/252
    _, _, p, drawn = jsd_permutation_null(*wide, 2000, rng)
    assert drawn.item() == 2000
    assert p.item() == pytest.approx(2 / 252, abs=4 * np.sqrt(2 / 252 / 2000))


def test_relabelled_counts_are_multivariate_hypergeometric():
    # pooled counts (3, 1, 2) with 3 ratings in group A: P(A gets (1, 1, 1)) = 3·1·2 / C(6, 3)
    rng = np.random.default_rng(0)
    a, b = np.array([[3, 0, 0]]), np.array([[0, 1, 2]])
    draws = relabelled_counts(a, b, 40_000, rng)[:, 0]
    assert (draws.sum(axis=1) == 3).all() and (draws <= [3, 1, 2]).all()
    share = np.mean((draws == [1, 1, 1]).all(axis=1))
    assert share == pytest.approx(6 / 20, abs=4 * np.sqrt(0.3 * 0.7 / 40_000))
    np.testing.assert_allclose(draws.mean(axis=0), [1.5, 0.5, 1.0], atol=0.02)


def test_permutation_null_bias_correction_and_level():
    """Identical distributions, 10 ratings per group: the plug-in JSD is biased, the corrected
    one is not, and the permutation test rejects at most at its level."""
    rng = np.random.default_rng(7)
    shares = np.array([0.1, 0.2, 0.4, 0.2, 0.1])
    n_items = 2000
    a = rng.multinomial(10, shares, size=n_items)
    b = rng.multinomial(10, shares, size=n_items)
    plugin, null_mean, p, _ = jsd_permutation_null(a, b, 1999, rng)
    np.testing.assert_allclose(plugin, jsd_counts(a, b))
    assert plugin.mean() > 0.15  # the bias the correction removes
    corrected = plugin - null_mean
    assert abs(corrected.mean()) < 3 * corrected.std() / np.sqrt(n_items)
    # exact test at 0.05: P(reject) <= 0.05; MC error of the share over 2000 items
    assert np.mean(p <= 0.05) <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / n_items)
    assert np.mean(p <= 0.05) > 0.02  # not trivially conservative


def test_group_divergence_counts_left_out_items(two_group_study):
    with pytest.warns(DroppedRowsWarning):
        out = group_divergence(two_group_study, "gender", n_boot=0, min_ratings=3)
    assert out.empty and out.attrs["dropped"] == 2


def test_most_contested_ranks_and_carries_texts(two_group_study):
    top = most_contested(two_group_study, "gender", n=1, min_ratings=1)
    assert top[["item", "response", "prompt"]].values.tolist() == [["i1", "R1", "Q"]]
    with pytest.raises(ValueError, match="rank_by"):
        most_contested(two_group_study, "gender", rank_by="p")
    with pytest.raises(ValueError, match="multipletests"):
        group_divergence(two_group_study, "gender", correction="nope", n_boot=0)


def _null_study(seed: int, n_items: int = 150, per_group: int = 10) -> Study:
    """Two groups rating every item from the same item-specific distribution."""
    rng = np.random.default_rng(seed)
    raters = pd.DataFrame({"rater": [f"r{k}" for k in range(2 * per_group)],
                           "gender": ["he/him"] * per_group + ["she/her"] * per_group})  # fmt: skip
    mu = rng.normal(0, 1.2, n_items)
    latent = mu[None, :] + rng.logistic(size=(2 * per_group, n_items))
    rating = np.digitize(latent, [-1.5, -0.5, 0.5, 1.5]) + 1
    ratings = pd.DataFrame({
        "rater": np.repeat(raters["rater"], n_items), "item": np.tile(
            [f"i{j:03d}" for j in range(n_items)], 2 * per_group), "dimension": "toxicity",
        "rating": rating.ravel(),
    })  # fmt: skip
    return Study.from_frames(ratings, raters, scales=[Scale("toxicity", 1, 5)])


def test_agreeing_groups_are_not_flagged():
    """Under identical distributions items are flagged at most at the test level, the corrected
    JSD centres on 0, and the top of most_contested is not declared significant."""
    out = group_divergence(_null_study(3), "gender", n_perm=199, n_boot=200, seed=3)
    n = len(out)
    assert out["jsd_plugin"].mean() > 0.1  # what the plug-in ranking used to report
    assert abs(out["jsd"].mean()) < 3 * out["jsd"].std() / np.sqrt(n)
    assert np.mean(out["p_value"] <= 0.05) <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / n)
    assert (out["p_adjusted"] > 0.05).all()
    # the interval of the corrected JSD covers the true 0 at about its level
    assert np.mean((out["ci_low"] <= 0) & (0 <= out["ci_high"])) > 0.88
    top = most_contested(_null_study(3), "gender", n=5, n_perm=199, seed=3)
    assert (top["p_adjusted"] > 0.05).all()


def test_disagreeing_items_rank_first():
    study = _null_study(4, n_items=60)
    r = study.ratings.copy()
    she = r["rater"].isin(study.raters.loc[study.raters["gender"] == "she/her", "rater"])
    shifted = ["i000", "i001", "i002"]
    r.loc[she & r["item"].isin(shifted), "rating"] = 5
    r.loc[~she & r["item"].isin(shifted), "rating"] = np.where(
        np.arange((~she & r["item"].isin(shifted)).sum()) % 2, 1, 2
    )
    study = Study.from_frames(r, study.raters, scales=[Scale("toxicity", 1, 5)])
    top = most_contested(study, "gender", n=3, n_perm=1999, seed=1)
    assert sorted(top["item"]) == shifted
    # BH over 60 items: 60/3 × the smallest attainable p (1/2000)
    assert top["p_adjusted"].to_numpy() == pytest.approx([0.01] * 3)


def test_group_divergence_on_simulated_study(small_study):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = group_divergence(
            small_study.study,
            "gender",
            groups=("she/her", "he/him"),
            dimension="toxicity",
            n_boot=50,
            seed=1,
            min_ratings=1,
        )
    warned = any(issubclass(w.category, DroppedRowsWarning) for w in caught)
    assert warned == (out.attrs["dropped"] > 0)  # never dropped silently
    assert out["jsd_plugin"].between(0, 1).all()
    assert (out["jsd"] <= out["jsd_plugin"]).all() and (out["jsd_null_mean"] >= 0).all()
    assert (out["ci_low"] <= out["ci_high"]).all()
    assert out["p_value"].between(1 / 100_000, 1).all()
    assert (out["p_adjusted"] >= out["p_value"]).all()


def test_multiplicity_families(small_study):
    from statsmodels.stats.multitest import multipletests

    kw = dict(dimension=["toxicity", "helpfulness"], n_perm=199, n_boot=0, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DroppedRowsWarning)
        pair = group_divergence(small_study.study, "gender", **kw)
        every = group_divergence(
            small_study.study, "gender", correction="holm", multiplicity="all", **kw
        )
        raw = group_divergence(small_study.study, "gender", correction="none", **kw)
    np.testing.assert_allclose(
        every["p_adjusted"], multipletests(every["p_value"], method="holm")[1]
    )
    np.testing.assert_allclose(raw["p_adjusted"], raw["p_value"])
    for _, rows in pair.groupby(["dimension", "group_a", "group_b"]):
        expected = multipletests(rows["p_value"], method="fdr_bh")[1]
        np.testing.assert_allclose(rows["p_adjusted"], expected)
    with pytest.raises(ValueError, match="multiplicity"):
        group_divergence(small_study.study, "gender", multiplicity="item", **kw)
