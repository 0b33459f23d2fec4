"""Label flips: a group's preference labels against everyone's, on a hand-computed study."""

from __future__ import annotations

import pandas as pd
import pytest

import pluralign
from pluralign.data import Scale, Study
from pluralign.labels import FLIP_COLUMNS, label_flips


@pytest.fixture
def split_study() -> Study:
    """Prompt p: items a, b (toxicity, lower is better).

    she/her (r1-r3) rate a=1, b=5 (prefer a); he/him (r4, r5) rate a=5, b=1 (prefer b).
    Everyone: 3 of 5 raters prefer a, so p_a = 0.6. Race is multi-select: r1 chose two values.
    """
    raters = pd.DataFrame(
        {
            "rater": [f"r{i}" for i in range(1, 6)],
            "gender": ["she/her"] * 3 + ["he/him"] * 2,
            "race": ["White;Asian", "White", "Asian", "White", "Asian"],
        }
    )
    rows = []
    for r, g in zip(raters["rater"], raters["gender"], strict=True):
        a, b = (1, 5) if g == "she/her" else (5, 1)
        rows += [(r, "a", a), (r, "b", b)]
    ratings = pd.DataFrame(rows, columns=["rater", "item", "rating"]).assign(dimension="toxicity")
    items = pd.DataFrame(
        {"item": ["a", "b"], "prompt_id": "p", "prompt": "Q", "response": ["A", "B"]}
    )
    return Study.from_frames(
        ratings,
        raters,
        items=items,
        scales=[Scale("toxicity", 1, 5, more_is_better=False)],
        multiselect=["race"],
    )


def test_flips_hand_computed(split_study):
    table = label_flips(split_study, "gender", min_raters=1)
    assert list(table.columns) == list(FLIP_COLUMNS)
    fl = table.set_index("group")
    assert fl.loc["she/her", ["n_raters", "pairs", "flips"]].tolist() == [3, 1, 0]
    assert fl.loc["he/him", ["n_raters", "pairs", "flips"]].tolist() == [2, 1, 1]
    assert fl.loc["he/him", "flip_pct"] == 100
    # |p_a(group) - p_a(everyone)|: |1 - 0.6| and |0 - 0.6|
    assert fl["mean_abs_diff"].to_dict() == pytest.approx({"she/her": 0.4, "he/him": 0.6})
    # min_raters leaves out small groups
    assert list(label_flips(split_study, "gender", min_raters=3)["group"]) == ["she/her"]


def test_multiselect_group_is_everyone_who_chose_the_value(split_study):
    race = label_flips(split_study, "race", min_raters=1).set_index("group")
    # r1 chose White and Asian: both groups count them (no "Multiracial" group)
    assert race["n_raters"].to_dict() == {"White": 3, "Asian": 3}
    # Asian: r1, r3 prefer a, r5 prefers b -> p_a = 2/3, same side as everyone
    assert race.loc["Asian", "flips"] == 0
    assert race.loc["Asian", "mean_abs_diff"] == pytest.approx(2 / 3 - 0.6)


def test_exported_from_the_top_level():
    assert pluralign.label_flips is label_flips
