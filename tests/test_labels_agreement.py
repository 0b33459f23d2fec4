"""Krippendorff's alpha: the kernel reproduces the reference package and hand-computed values."""

from __future__ import annotations

import krippendorff
import numpy as np
import pandas as pd
import pytest

from pluralign.data import Scale, Study
from pluralign.labels import agreement
from pluralign.labels._kernels import (
    alpha_from_coincidences,
    coincidences,
    cross_coincidences,
    weighted_counts,
)

LEVELS = np.arange(1, 6)


def _random_reliability(seed: int, n_raters: int = 8, n_items: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    truth = rng.integers(1, 6, n_items)
    data = np.clip(truth + rng.integers(-1, 2, (n_raters, n_items)), 1, 5).astype(float)
    data[rng.random(data.shape) < 0.5] = np.nan
    return data


def _study_from_reliability(data: np.ndarray, groups=None) -> Study:
    r, u = np.nonzero(~np.isnan(data))
    ratings = pd.DataFrame(
        {
            "rater": [f"r{i}" for i in r],
            "item": [f"i{j:03d}" for j in u],
            "dimension": "toxicity",
            "rating": data[r, u],
        }
    )
    raters = pd.DataFrame({"rater": [f"r{i}" for i in range(data.shape[0])]})
    if groups is not None:
        raters["gender"] = groups
    return Study.from_frames(ratings, raters, scales=[Scale("toxicity", 1, 5)])


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_kernel_equals_krippendorff_package(level):
    for seed in range(3):
        data = _random_reliability(seed)
        ref = krippendorff.alpha(
            reliability_data=data, value_domain=LEVELS, level_of_measurement=level
        )
        r, u = np.nonzero(~np.isnan(data))
        W, S = weighted_counts(u, data[r, u].astype(int) - 1, data.shape[1], 5)
        coinc, _ = coincidences(W, S)
        assert alpha_from_coincidences(coinc, LEVELS, level) == pytest.approx(ref, abs=1e-12)


def test_hand_computed_nominal_alpha():
    # 2 raters × 3 items: (1,1), (1,2), (2,2). Coincidences o11 = 2, o12 = o21 = 1, o22 = 2;
    # n1 = n2 = 3, n = 6; alpha = 1 - (n-1) * 2 / (2 * 3 * 3) = 1 - 10/18 = 4/9.
    ratings = pd.DataFrame(
        {
            "rater": ["a", "b"] * 3,
            "item": ["i1", "i1", "i2", "i2", "i3", "i3"],
            "dimension": "d",
            "rating": [1, 1, 1, 2, 2, 2],
        }
    )
    study = Study.from_frames(ratings, scales=[Scale("d", 1, 2)])
    out = agreement(study, level="nominal", n_boot=0)
    assert out["krippendorff_alpha"].item() == pytest.approx(4 / 9, abs=1e-12)
    assert out[["n_raters", "n_items", "n_ratings"]].values.tolist() == [[2, 3, 6]]


def test_agreement_overall_and_within_match_package():
    data = _random_reliability(5)
    groups = ["she/her"] * 4 + ["he/him"] * 4
    study = _study_from_reliability(data, groups)
    out = agreement(study, by="gender", level="interval", n_boot=50, seed=1)
    overall = out[out["kind"] == "overall"]
    ref = krippendorff.alpha(
        reliability_data=data, value_domain=LEVELS, level_of_measurement="interval"
    )
    assert overall["krippendorff_alpha"].item() == pytest.approx(ref)
    women = out[(out["kind"] == "within") & (out["group"] == "she/her")]
    ref_w = krippendorff.alpha(
        reliability_data=data[:4], value_domain=LEVELS, level_of_measurement="interval"
    )
    assert women["krippendorff_alpha"].item() == pytest.approx(ref_w)
    assert set(out["kind"]) == {"overall", "within", "between"}
    assert (out["krippendorff_alpha_ci_low"] <= out["krippendorff_alpha"]).all()
    assert (out["krippendorff_alpha"] <= out["krippendorff_alpha_ci_high"]).all()


def test_between_alpha_hand_computed():
    # One item: group A rates (1, 1), group B rates (2). Cross pairs (1,2) twice; the unit has
    # m = 3 values spread over 4 ordered cross pairs: o12 = o21 = 3/4 * 2 = 1.5.
    # n1 = n2 = 1.5, n = 3; nominal alpha = 1 - (3-1) * 3 / (2 * 1.5 * 1.5) = 1 - 6/4.5.
    A = np.array([[2.0, 0.0]])
    B = np.array([[0.0, 1.0]])
    coinc, n_units = cross_coincidences(A, B)
    np.testing.assert_allclose(coinc, [[0, 1.5], [1.5, 0]])
    assert n_units == 1
    assert alpha_from_coincidences(coinc, np.array([1, 2]), "nominal") == pytest.approx(1 - 6 / 4.5)


def test_between_alpha_detects_systematic_disagreement():
    rng = np.random.default_rng(3)
    n_items = 150
    truth = rng.integers(1, 6, n_items)
    rows = []
    for r in range(12):
        flip = r >= 6  # the second group reads the scale the other way round
        for i in range(n_items):
            x = truth[i] if not flip else 6 - truth[i]
            rows.append((f"r{r}", f"i{i}", int(np.clip(x + rng.integers(-1, 2), 1, 5))))
    ratings = pd.DataFrame(rows, columns=["rater", "item", "rating"]).assign(dimension="d")
    raters = pd.DataFrame({"rater": [f"r{r}" for r in range(12)], "g": ["x"] * 6 + ["y"] * 6})
    study = Study.from_frames(ratings, raters, scales=[Scale("d", 1, 5)])
    out = agreement(study, by="g", level="interval", n_boot=100, seed=2).set_index("group")
    assert out.loc["x", "krippendorff_alpha"] > 0.6 and out.loc["y", "krippendorff_alpha"] > 0.6
    assert out.loc["x | y", "krippendorff_alpha"] < 0
    assert (
        out.loc["x | y", "krippendorff_alpha_ci_high"] < out.loc["x", "krippendorff_alpha_ci_low"]
    )


def test_rater_bootstrap_does_not_pair_copies_of_a_rater():
    data = _random_reliability(7)
    r, u = np.nonzero(~np.isnan(data))
    v = data[r, u].astype(int) - 1
    W1, S1 = weighted_counts(u, v, data.shape[1], 5)
    W2, S2 = weighted_counts(u, v, data.shape[1], 5, weight=np.full(len(u), 2.0))
    # every rater copied twice: the same pairs of distinct raters, each unit still m_u-weighted
    np.testing.assert_allclose(coincidences(W2, S2)[0], 2 * coincidences(W1, S1)[0])
    # a unit rated by one rater, copied, is not pairable
    coinc, n_units = coincidences(np.array([[2.0, 0.0]]), np.array([[4.0, 0.0]]))
    assert n_units == 0 and coinc.sum() == 0


def test_bootstrap_is_seeded_and_clusters_work():
    data = _random_reliability(9)
    study = _study_from_reliability(data, ["a"] * 4 + ["b"] * 4)
    for cluster in ("item", "rater", "both"):
        x = agreement(study, by="gender", n_boot=30, seed=4, cluster=cluster)
        y = agreement(study, by="gender", n_boot=30, seed=4, cluster=cluster)
        pd.testing.assert_frame_equal(x, y)
        assert x["krippendorff_alpha_ci_low"].notna().all()


def test_simulated_study_alpha_is_plausible(small_study):
    out = agreement(small_study.study, by="gender", n_boot=20, seed=1)
    overall = out[out["kind"] == "overall"]
    assert len(overall) == 5
    # raters share item traits, so agreement is positive but far from perfect
    assert ((overall["krippendorff_alpha"] > 0) & (overall["krippendorff_alpha"] < 0.8)).all()
