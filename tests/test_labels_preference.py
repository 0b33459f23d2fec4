"""Preference and desirability labels on small hand-computed tables."""

from __future__ import annotations

import importlib
import types
import warnings

import numpy as np
import pandas as pd
import pytest

from pluralign._errors import DroppedRowsWarning
from pluralign.data import Scale, Study
from pluralign.labels import (
    desirability_labels,
    posterior_pair_probabilities,
    preference_labels,
    reward_function,
)

TOX = Scale("toxicity", 1, 5, more_is_better=False)
HELP = Scale("helpfulness", 1, 5, more_is_better=True)


@pytest.fixture
def hand_study() -> Study:
    """Prompt p1 with items a, b, c (toxicity, lower is better).

    r1..r4 rated a and b (same-rater): r1 a=1 b=3 (A), r2 2/2 (tie), r3 4/2 (B), r4 1/5 (A).
    c was rated only by r5 (1) and r6 (3), so pairs with c use cross comparisons.
    """
    rows = [
        ("r1", "a", 1),
        ("r1", "b", 3),
        ("r2", "a", 2),
        ("r2", "b", 2),
        ("r3", "a", 4),
        ("r3", "b", 2),
        ("r4", "a", 1),
        ("r4", "b", 5),
        ("r5", "c", 1),
        ("r6", "c", 3),
    ]
    ratings = pd.DataFrame(rows, columns=["rater", "item", "rating"]).assign(dimension="toxicity")
    raters = pd.DataFrame(
        {
            "rater": [f"r{i}" for i in range(1, 7)],
            "gender": ["she/her", "he/him", "he/him", "she/her", "she/her", "he/him"],
        }
    )
    items = pd.DataFrame(
        {
            "item": list("abc"),
            "prompt_id": "p1",
            "prompt": "Question?",
            "response": ["Answer A", "Answer B", "Answer C"],
        }
    )
    return Study.from_frames(ratings, raters, items=items, scales=[TOX])


def _p(labels, a, b):
    t = labels.table.set_index(["item_a", "item_b"])
    return t.loc[(a, b)]


def test_distribution_labels_hand_computed(hand_study):
    labels = preference_labels(hand_study, "distribution")
    ab = _p(labels, "a", "b")
    assert ab["comparison"] == "same_rater" and ab["n_comparisons"] == 4
    assert ab["p_a"] == pytest.approx((2 + 0.5) / 4)
    # a = {1,2,4,1} vs c = {1,3}: 3 wins, 2 ties, 3 losses over 8 cross pairs
    ac = _p(labels, "a", "c")
    assert ac["comparison"] == "cross" and ac["n_comparisons"] == 8
    assert ac["p_a"] == pytest.approx((3 + 1) / 8)
    assert ac["chosen_item"] == "a" and ac["p_chosen"] == 0.5  # p >= 0.5 → A side
    # b = {3,2,2,5} vs c = {1,3}: 2 wins, 1 tie, 5 losses
    bc = _p(labels, "b", "c")
    assert bc["p_a"] == pytest.approx(2.5 / 8)
    assert bc["chosen_item"] == "c" and bc["p_chosen"] == pytest.approx(5.5 / 8)
    assert bc["chosen"] == "Answer C" and bc["rejected"] == "Answer B"
    assert bc["prompt"] == "Question?"
    assert labels.n_dropped == 0


def test_majority_labels_hand_computed_and_ties_dropped(hand_study):
    with pytest.warns(DroppedRowsWarning, match="tied"):
        labels = preference_labels(hand_study, "majority")
    # a/b: 2 raters prefer a, 1 prefers b, 1 tie → a
    assert _p(labels, "a", "b")["p_a"] == 1.0
    # a/c: modal a = 1, modal c = mean of tied modes 1 and 3 = 2 → a less toxic → a
    assert _p(labels, "a", "c")["p_a"] == 1.0
    # b/c: modal b = 2, modal c = 2 → tie, dropped and counted
    assert ("b", "c") not in set(zip(labels.table["item_a"], labels.table["item_b"], strict=True))
    assert labels.n_dropped == 1
    row = labels.dropped[labels.dropped["reason"].str.contains("tied")]
    assert row["n"].item() == 1 and "b/c" in row["examples"].item()


def test_group_labels_use_only_the_group(hand_study):
    labels = preference_labels(hand_study, "distribution", group={"gender": "she/her"})
    assert _p(labels, "a", "b")["p_a"] == 1.0  # r1 and r4 both prefer a
    assert _p(labels, "a", "b")["group"] == "gender=she/her"
    # women rated c once (r5: 1): a = {1, 1} vs c = {1} → two ties → p = 0.5
    assert _p(labels, "a", "c")["p_a"] == pytest.approx(0.5)


def test_multi_value_weights_hand_computed():
    # r1 rates a: toxicity 1, helpfulness 2; b: toxicity 2, helpfulness 5
    rows = [
        ("r1", "a", "toxicity", 1),
        ("r1", "a", "helpfulness", 2),
        ("r1", "b", "toxicity", 2),
        ("r1", "b", "helpfulness", 5),
    ]
    ratings = pd.DataFrame(rows, columns=["rater", "item", "dimension", "rating"])
    items = pd.DataFrame(
        {"item": ["a", "b"], "prompt_id": "p", "prompt": "Q", "response": ["A", "B"]}
    )
    study = Study.from_frames(ratings, items=items, scales=[TOX, HELP])
    only_tox = preference_labels(study, "distribution", weights={"toxicity": 1, "helpfulness": 0})
    assert only_tox.table["p_a"].item() == 1.0  # a is less toxic
    # S_a = 0.5·(−0) + 0.5·0.25 = 0.125 < S_b = 0.5·(−0.25) + 0.5·1 = 0.375
    equal = preference_labels(study, "distribution")
    assert equal.table["p_a"].item() == 0.0 and equal.table["chosen_item"].item() == "b"
    assert equal.table["dimensions"].item() == "toxicity,helpfulness"
    # S_a = 3·0 + 0.25 = 0.25 = S_b = 3·(−0.25) + 1 → a tie: p = ½, majority drops it
    tied = preference_labels(study, "distribution", weights=[3, 1])
    assert tied.table["p_a"].item() == 0.5
    with pytest.warns(DroppedRowsWarning):
        assert len(preference_labels(study, "majority", weights=[3, 1])) == 0
    # a negative weight reverses a dimension's direction
    rev = preference_labels(study, "distribution", weights={"toxicity": -1, "helpfulness": 0})
    assert rev.table["p_a"].item() == 0.0


def test_poststratified_distribution_is_weighted_mix(paper_study):
    study = paper_study.study
    frame = pd.DataFrame({"gender": ["she/her", "he/him"], "share": [0.7, 0.3]})
    kw = {"method": "distribution", "comparison": "cross"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DroppedRowsWarning)
        ps = preference_labels(study, group=frame, **kw).table
        w = preference_labels(study, group={"gender": "she/her"}, **kw).table
        m = preference_labels(study, group={"gender": "he/him"}, **kw).table
    key = ["item_a", "item_b"]
    both = ps.merge(w[[*key, "p_a"]], on=key, suffixes=("", "_w")).merge(
        m[[*key, "p_a"]].rename(columns={"p_a": "p_a_m"}), on=key
    )
    full = both[np.isclose(both["coverage"], 1.0)]
    assert len(full) > 500
    np.testing.assert_allclose(full["p_a"], 0.7 * full["p_a_w"] + 0.3 * full["p_a_m"])
    # where only one group has comparisons, the label is that group's
    only_w = both[np.isclose(both["coverage"], 0.7)]
    np.testing.assert_allclose(only_w["p_a"], only_w["p_a_w"])
    assert ps["group"].iloc[0] == "poststratified[gender]"


def test_level_share_mapping_equals_frame(small_study):
    study = small_study.study
    frame = pd.DataFrame({"gender": ["she/her", "he/him"], "share": [0.5, 0.5]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DroppedRowsWarning)
        a = preference_labels(study, group=frame).table
        b = preference_labels(study, group={"gender": {"she/her": 0.5, "he/him": 0.5}}).table
    np.testing.assert_allclose(a["p_a"], b["p_a"])


def test_pairs_cover_every_prompt_pair(small_study):
    study = small_study.study
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labels = preference_labels(study, "distribution")
    warned = any(issubclass(w.category, DroppedRowsWarning) for w in caught)
    assert warned == (labels.n_dropped > 0)  # never dropped silently
    k = study.items.groupby("prompt_id").size()
    assert len(labels) + labels.n_dropped == int((k * (k - 1) // 2).sum())
    assert set(labels.table["comparison"]) <= {"same_rater", "cross"}
    assert labels.table["p_a"].between(0, 1).all()
    assert (labels.table["p_chosen"] >= 0.5).all()


def test_to_dataset_columns(hand_study):
    pytest.importorskip("datasets")
    ds = preference_labels(hand_study, "distribution").to_dataset()
    assert {"prompt", "chosen", "rejected", "p_chosen"} <= set(ds.column_names)
    assert {"prompt_id", "chosen_item", "rejected_item", "group", "method"} <= set(ds.column_names)
    assert len(ds) == 3 and ds[0]["prompt"] == "Question?"
    kto = desirability_labels(hand_study).to_dataset()
    assert {"prompt", "completion", "label", "p"} <= set(kto.column_names)
    assert isinstance(kto[0]["label"], bool)


def test_desirability_labels_hand_computed(hand_study):
    t = desirability_labels(hand_study).table.set_index("item")
    # a: toxicity {1,2,4,1} → desirability 1 − (r−1)/4 = {1, .75, .25, 1}
    assert t.loc["a", "score"] == pytest.approx(0.75)
    assert t.loc["a", "p"] == pytest.approx(0.75) and t.loc["a", "label"]
    # c: {1, 3} → {1, .5}: one desirable, one at the midpoint (half) → p = .75
    assert t.loc["c", "p"] == pytest.approx(0.75)
    assert t.loc["a", "completion"] == "Answer A"
    maj = desirability_labels(hand_study, "majority").table.set_index("item")
    # b: {3,2,2,5} → {.5, .75, .75, 0}: 2 desirable, 1 undesirable → 1
    assert maj.loc["b", "p"] == 1.0


def test_dimension_without_direction_needs_weight_everywhere():
    ratings = pd.DataFrame(
        {"rater": ["r", "r"], "item": ["a", "b"], "dimension": "d", "rating": [1, 2]}
    )
    items = pd.DataFrame({"item": ["a", "b"], "prompt_id": "p", "response": ["x y", "x z"]})
    study = Study.from_frames(ratings, items=items, scales=[Scale("d", 1, 5)])
    # a fitted model of the same undirected scale (only its scales are read before the error)
    fit = types.SimpleNamespace(
        dimensions=["d"], fits={"d": types.SimpleNamespace(scale=study.scale("d"))}
    )
    pairs = pd.DataFrame({"item_a": ["a"], "item_b": ["b"]})
    calls = [
        lambda **kw: preference_labels(study, **kw),
        lambda **kw: desirability_labels(study, **kw),
        lambda **kw: reward_function(study, **kw),
        lambda **kw: posterior_pair_probabilities(fit, pairs, **kw),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="no dimension has a declared direction"):
            call()
        with pytest.raises(ValueError, match="'d' has no declared direction"):
            call(dimensions="d")
    # with an explicit weight its sign says which way is better
    assert preference_labels(study, dimensions="d", weights=[1]).table["p_a"].item() == 0.0
    assert preference_labels(study, dimensions="d", weights=[-1]).table["p_a"].item() == 1.0


def test_posterior_method_calls_posterior_pair_probabilities(hand_study, monkeypatch):
    calls = {}

    def fake(fit, pairs, *, target=None, dimensions=None, weights=None, n_draws=None, seed=None):
        calls.update(fit=fit, target=target.label, dimensions=dimensions, seed=seed)
        return pairs.assign(p=[0.8, 0.3, 0.5], p_sd=0.1)

    monkeypatch.setattr(
        importlib.import_module("pluralign.labels._preference"),
        "posterior_pair_probabilities",
        fake,
    )
    labels = preference_labels(
        hand_study, "posterior", fit="FIT", seed=5, group={"gender": "she/her"}
    )
    assert calls == {
        "fit": "FIT",
        "target": "gender=she/her",
        "dimensions": ["toxicity"],
        "seed": 5,
    }
    t = labels.table.set_index(["item_a", "item_b"])
    assert t.loc[("a", "b"), "p_a"] == 0.8 and t.loc[("a", "c"), "chosen_item"] == "c"
    assert (t["comparison"] == "model").all() and (t["p_sd"] == 0.1).all()
    pytest.importorskip("datasets")
    assert len(labels.to_dataset()) == 3
    with pytest.raises(ValueError, match="fit"):
        preference_labels(hand_study, "posterior")
