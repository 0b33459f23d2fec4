"""Per-item disagreement and between-group divergence on hand-computed tables."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from pluralign._errors import DroppedRowsWarning
from pluralign.data import Scale, Study
from pluralign.labels import group_divergence, item_disagreement, most_contested


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
    out = group_divergence(s, "g", n_boot=0)
    h_m = -(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25))
    assert out["jsd"].item() == pytest.approx(h_m - 0.5, abs=1e-12)


def test_group_divergence_hand_values(two_group_study):
    out = group_divergence(two_group_study, "gender", n_boot=200, seed=1).set_index("item")
    assert out.loc["i1", "jsd"] == pytest.approx(1.0)
    assert out.loc["i2", "jsd"] == pytest.approx(0.0)
    assert out.loc["i1", "difference"] == pytest.approx(-4.0)  # he/him − she/her
    # resampling ratings within item × group: disjoint one-point groups stay disjoint
    assert out.loc["i1", "ci_low"] == pytest.approx(1.0)
    assert out.loc["i2", "ci_low"] == 0 and 0 < out.loc["i2", "ci_high"] <= 1


def test_group_divergence_counts_left_out_items(two_group_study):
    with pytest.warns(DroppedRowsWarning):
        out = group_divergence(two_group_study, "gender", n_boot=0, min_ratings=3)
    assert out.empty and out.attrs["dropped"] == 2


def test_most_contested_ranks_and_carries_texts(two_group_study):
    top = most_contested(two_group_study, "gender", n=1, min_ratings=1)
    assert top[["item", "response", "prompt"]].values.tolist() == [["i1", "R1", "Q"]]


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
    assert out["jsd"].between(0, 1).all()
    assert (out["ci_low"] <= out["ci_high"]).all()
