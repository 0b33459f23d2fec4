"""The Study data model rejects malformed input with messages that name the problem and the fix."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from pluralign import StudyValidationError
from pluralign.data import Scale, Study, read_study, split_flat, wide_to_long

TOX = Scale("toxicity", 1, 5)


def ratings(**over) -> pd.DataFrame:
    base = {
        "rater": ["a", "a", "b", "b"],
        "item": ["i1", "i2", "i1", "i2"],
        "dimension": "toxicity",
        "rating": [1, 2, 3, 4],
    }
    base.update(over)
    return pd.DataFrame(base)


def raters(**over) -> pd.DataFrame:
    base = {"rater": ["a", "b"], "gender": ["she/her", "he/him"], "race": ["White;Black", "Asian"]}
    base.update(over)
    return pd.DataFrame(base)


def items() -> pd.DataFrame:
    return pd.DataFrame(
        {"item": ["i1", "i2"], "prompt_id": ["p1", "p1"], "prompt": "Q?", "response": ["A1", "A2"]}
    )


def build(r=None, ra=None, it=None, scales=None, **kw) -> Study:
    return Study.from_frames(
        ratings() if r is None else r,
        raters() if ra is None else ra,
        items=items() if it is None else it,
        scales={"toxicity": TOX} if scales is None else scales,
        multiselect=kw.pop("multiselect", ["race"]),
        **kw,
    )


# --------------------------------------------------------------------------- malformed inputs
MALFORMED = {
    "missing column with suggestion": (
        lambda: build(r=ratings().rename(columns={"rating": "ratng"})),
        ["missing column", "'rating'", "did you mean 'ratng'"],
    ),
    "non-numeric rating": (
        lambda: build(r=ratings(rating=[1, "high", 3, 4])),
        ["ratings.rating", "not numbers", "'high'"],
    ),
    "out-of-scale rating": (
        lambda: build(r=ratings(rating=[1, 2, 9, 4])),
        ["outside the 'toxicity' scale 1..5", "9"],
    ),
    "non-integer rating": (
        lambda: build(r=ratings(rating=[1, 2.5, 3, 4])),
        ["outside the 'toxicity' scale", "2.5"],
    ),
    "NaN rating": (
        lambda: build(r=ratings(rating=[1, np.nan, 3, 4])),
        ["ratings.rating", "missing values", "drop_invalid=True"],
    ),
    "missing dimension": (
        lambda: build(r=ratings(dimension=["toxicity", None, "toxicity", "toxicity"])),
        ["ratings.dimension", "missing values"],
    ),
    "duplicate rows": (
        lambda: build(r=pd.concat([ratings(), ratings().iloc[[0]]], ignore_index=True)),
        ["rater+item+dimension", "duplicate rows", "a/i1/toxicity"],
    ),
    "unknown rater": (
        lambda: build(r=ratings(rater=["a", "a", "zz", "b"])),
        ["ratings.rater", "not found in the raters table", "'zz'"],
    ),
    "unknown item": (
        lambda: build(r=ratings(item=["i1", "i2", "i1", "i9"])),
        ["ratings.item", "not found in the items table", "'i9'"],
    ),
    "duplicate rater ids": (
        lambda: build(
            ra=pd.DataFrame(
                {"rater": ["a", "b", "b"], "gender": ["x", "y", "z"], "race": ["White"] * 3}
            )
        ),
        ["raters.rater", "duplicate ids", "'b'"],
    ),
    "missing rater id": (
        lambda: build(
            ra=pd.DataFrame(
                {"rater": ["a", "b", None], "gender": ["x", "y", "z"], "race": ["White"] * 3}
            )
        ),
        ["raters.rater", "missing ids"],
    ),
    "duplicate item ids": (
        lambda: build(it=pd.DataFrame({"item": ["i1", "i2", "i2"]})),
        ["items.item", "duplicate ids", "'i2'"],
    ),
    "empty ratings": (
        lambda: build(r=ratings().iloc[:0]),
        ["ratings: the table is empty"],
    ),
    "empty raters": (
        lambda: build(ra=raters().iloc[:0]),
        ["raters: the table is empty"],
    ),
    "ratings not a DataFrame": (
        lambda: Study.from_frames([("a", "i1", "toxicity", 1)]),
        ["ratings: expected a pandas DataFrame, got list"],
    ),
    "items without item column": (
        lambda: build(it=items().rename(columns={"item": "id"})),
        ["items: missing column", "'item'"],
    ),
    "scale that is not a Scale": (
        lambda: build(scales={"toxicity": (1, 5)}),
        ["scales['toxicity']: expected a Scale, got tuple", "Scale('toxicity', 1, 5)"],
    ),
    "wrong multiselect column": (
        lambda: build(multiselect=["ethnicity"]),
        ["multiselect names 'ethnicity'", "not a column of raters"],
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_input_names_the_problem(case):
    make, fragments = MALFORMED[case]
    with pytest.raises(StudyValidationError) as err:
        make()
    msg = str(err.value)
    for fragment in fragments:
        assert fragment in msg, f"{case}: {fragment!r} not in {msg!r}"


BAD_SCALES = {
    "max below min": (lambda: Scale("toxicity", 5, 1), "max (1) must exceed min (5)"),
    "max equals min": (lambda: Scale("toxicity", 3, 3), "max (3) must exceed min (3)"),
    "non-integer bounds": (lambda: Scale("toxicity", 1.5, 5), "must be integers"),
    "label count": (
        lambda: Scale("toxicity", 1, 5, ("low", "high")),
        "2 labels given for 5 points",
    ),
}


@pytest.mark.parametrize("case", list(BAD_SCALES))
def test_bad_scale_definition(case):
    make, fragment = BAD_SCALES[case]
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        make()


def test_inconsistent_flat_table_demographics():
    flat = ratings().assign(gender=["she/her", "he/him", "he/him", "he/him"])
    with pytest.raises(StudyValidationError) as err:
        split_flat(flat, demographics=["gender"])
    msg = str(err.value)
    assert "rater 'a'" in msg and "['gender']" in msg and "different values" in msg


def test_unknown_dimension_in_subset_and_data():
    study = build()
    with pytest.raises(KeyError, match=r"unknown dimension 'helpfulness'.*toxicity"):
        study.subset(dimensions="helpfulness")
    with pytest.raises(KeyError, match="unknown dimension 'helpfulness'"):
        study.data(dimension="helpfulness")


def test_unknown_demographic_in_filter():
    with pytest.raises(KeyError, match=r"unknown demographic 'age'.*gender"):
        build().filter_raters(age="18-30")


def test_wide_to_long_missing_dimension_column():
    wide = pd.DataFrame({"rater": ["a"], "item": ["i"], "toxicity": [2]})
    with pytest.raises(StudyValidationError, match=r"missing column.*'helpfulness'"):
        wide_to_long(wide, ["toxicity", "helpfulness"])


def test_read_study_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no study file or folder"):
        read_study(tmp_path / "nope.csv")
    with pytest.raises(FileNotFoundError, match=r"without study.json"):
        read_study(tmp_path)
    (tmp_path / "x.xlsx").write_text("rater,item\n")
    with pytest.raises(ValueError, match="unknown format 'xlsx'"):
        read_study(tmp_path / "x.xlsx")


def test_several_problems_reported_together():
    with pytest.raises(StudyValidationError) as err:
        build(r=ratings(rating=[1, np.nan, 9, 4], rater=["a", "a", "b", "ghost"]))
    msg = str(err.value)
    assert "missing values" in msg and "outside" in msg and "'ghost'" in msg


# --------------------------------------------------------------------------- cleaning, logging
def test_drop_invalid_counts_and_logs():
    bad = pd.concat(
        [
            ratings(rating=[1, np.nan, 9, 4], rater=["a", "a", "b", "ghost"]),
            ratings().iloc[[0]],  # duplicate of row 0
        ],
        ignore_index=True,
    )
    study = build(r=bad, drop_invalid=True)
    # rows 1 (NaN), 2 (out of scale), 3 (unknown rater) and 4 (duplicate) go
    assert study.n_ratings == 1
    log = study.log[study.log["step"] == "drop_invalid"]
    assert log["n_rows"].sum() == 4
    reasons = " ".join(log["reason"])
    assert "missing values" in reasons and "outside" in reasons and "duplicate" in reasons
    assert "not found" in reasons


def test_drop_invalid_everything_invalid_raises():
    with pytest.raises(StudyValidationError, match="every row was invalid"):
        build(r=ratings(rating=[9, 9, 9, 9]), drop_invalid=True)


def test_placeholders_become_missing_and_are_logged():
    ra = raters(
        gender=["Prefer not to say", "he/him"], race=["White;DATA_EXPIRED", "CONSENT_REVOKED"]
    )
    study = build(ra=ra)
    assert study.raters["gender"].isna().tolist() == [True, False]
    assert study.raters["race"].tolist() == [("White",), ()]
    entries = study.log[study.log["step"] == "missing_values"].set_index("reason")["n_rows"]
    assert entries["placeholder values in 'gender' set to missing"] == 1
    assert entries["placeholder values in 'race' set to missing"] == 2
    assert study.collapsed("race").isna().tolist() == [False, True]


def test_custom_missing_values():
    ra = raters(gender=["unknown", "he/him"])
    study = build(ra=ra, missing_values=["unknown"])
    assert study.raters["gender"].isna().sum() == 1


def test_inferred_scale_is_logged():
    study = Study.from_frames(ratings())
    assert study.scales["toxicity"].min == 1 and study.scales["toxicity"].max == 4
    assert (study.log["step"] == "infer_scales").any()


def test_subset_and_filter_are_logged():
    study = build()
    sub = study.filter_raters(gender="she/her")
    assert sub.n_raters == 1
    assert sub.log.iloc[-1]["step"] == "filter_raters" and sub.log.iloc[-1]["n_rows"] == 2
    multi = study.filter_raters(race="Black")
    assert set(multi.ratings["rater"]) == {"a"}


# --------------------------------------------------------------------------- round trips
def test_parquet_round_trip_keeps_multiselect_tuples(tmp_path):
    study = build()
    back = read_study(study.to_parquet(tmp_path / "s"))
    assert back.raters["race"].tolist() == [("White", "Black"), ("Asian",)]
    assert back.multiselect == ("race",)
    pd.testing.assert_frame_equal(back.ratings, study.ratings, check_dtype=False)
    assert back.scales == study.scales
    assert len(back.log) == len(study.log)
    assert back.indicators("race").loc["a"].to_dict() == {
        "race_Asian": 0,
        "race_Black": 1,
        "race_White": 1,
    }


def test_simulated_round_trip(small_study, tmp_path):
    study = small_study.study
    back = read_study(study.to_parquet(tmp_path / "sim"))
    assert back.n_ratings == study.n_ratings
    assert back.raters["race"].tolist() == study.raters["race"].tolist()
    assert back.reference["gender"] == "she/her"
    pd.testing.assert_frame_equal(back.items, study.items, check_dtype=False)


def test_read_csv_with_column_mapping(tmp_path):
    flat = pd.DataFrame(
        {
            "user_id": [1, 1, 2],
            "comment": ["c1", "c2", "c1"],
            "score": [1, 5, 2],
            "sex": ["Woman", "Woman", "Man"],
            "eth": ["White;Asian", "White;Asian", "Black"],
            "text": ["t1", "t2", "t1"],
        }
    )
    path = tmp_path / "flat.csv"
    flat.to_csv(path, index=False)
    study = read_study(
        path,
        columns={"user_id": "rater", "comment": "item", "score": "rating", "text": "response"},
        dimensions="offensiveness",
        demographics=["sex", "eth"],
        scales=[Scale("offensiveness", 1, 5)],
        multiselect=["eth"],
    )
    assert (study.n_ratings, study.n_raters, study.n_items) == (3, 2, 2)
    assert study.raters.set_index("rater").loc["1", "eth"] == ("White", "Asian")
    assert study.items.set_index("item").loc["c2", "response"] == "t2"


def test_read_json_records(tmp_path):
    rows = [
        {"rater": "a", "item": "x", "dimension": "d", "rating": 1},
        {"rater": "b", "item": "x", "dimension": "d", "rating": 0},
    ]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(rows))
    study = read_study(path)
    assert study.n_ratings == 2 and study.scales["d"].is_binary
    jl = tmp_path / "r.jsonl"
    jl.write_text("\n".join(json.dumps(r) for r in rows))
    assert read_study(jl).n_ratings == 2


def test_wide_to_long_and_read_wide(tmp_path):
    wide = pd.DataFrame(
        {"rater": ["a", "b"], "item": ["i", "i"], "toxicity": [2, np.nan], "helpfulness": [5, 4]}
    )
    long = wide_to_long(wide, ["toxicity", "helpfulness"])
    assert long[["rater", "dimension"]].values.tolist() == [
        ["a", "toxicity"],
        ["a", "helpfulness"],
        ["b", "toxicity"],
        ["b", "helpfulness"],
    ]
    path = tmp_path / "wide.parquet"
    wide.to_parquet(path)
    with pytest.raises(StudyValidationError, match="missing values"):
        read_study(path, dimensions=["toxicity", "helpfulness"])
    study = read_study(path, dimensions=["toxicity", "helpfulness"], drop_invalid=True)
    assert study.n_ratings == 3 and study.log["n_rows"].max() == 1


def test_data_and_codings():
    study = build()
    d = study.data(with_items=True)
    assert {"gender", "race", "response", "prompt_id"} <= set(d.columns)
    assert d.set_index("rater")["race"].loc["a"].iloc[0] == "Multiracial"
    ind = study.rater_table("indicators")
    assert {"race_White", "race_Black", "race_Asian"} <= set(ind.columns)
    with pytest.raises(ValueError, match="coding must be"):
        study.rater_table("dummies")


def test_continuous_ratings_skip_scale_checks():
    study = build(r=ratings(rating=[1.5, 7.2, -0.3, 4.0]), continuous=True)
    assert study.ratings["rating"].tolist() == [1.5, 7.2, -0.3, 4.0]
    assert (study.log["step"] == "continuous").any()
    with pytest.raises(StudyValidationError, match="missing values"):
        build(r=ratings(rating=[1.5, np.nan, 1, 1]), continuous=True)


def test_log_is_not_emitted_as_warning(caplog):
    with caplog.at_level(logging.WARNING):
        build(ra=raters(gender=["Prefer not to say", "he/him"]))
    assert not caplog.records
