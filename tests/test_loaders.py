"""Loaders of the real data sets: counts from SOURCES.md, cleaning steps, and path handling."""

from __future__ import annotations

import pandas as pd
import pytest

from pluralign.data import find_data, load_multipico, load_popquorn


@pytest.fixture(scope="module")
def popquorn(shared_data):
    return load_popquorn(shared_data / "popquorn" / "offensiveness_raw_data.csv")


@pytest.fixture(scope="module")
def multipico(shared_data):
    return load_multipico(shared_data)


def test_popquorn_counts(popquorn):
    assert (popquorn.n_ratings, popquorn.n_raters, popquorn.n_items) == (13_036, 262, 1_500)
    assert popquorn.dimensions == ["offensiveness"]
    scale = popquorn.scales["offensiveness"]
    assert (scale.min, scale.max, scale.more_is_better) == (1, 5, False)
    assert popquorn.demographics == ["gender", "race", "age", "occupation", "education"]


def test_popquorn_age_band_spelling_fixed(popquorn):
    ages = set(popquorn.raters["age"].dropna())
    assert "54-59" not in ages and "55-59" in ages and "50-54" in ages
    assert ages == set(popquorn.metadata["age_order"])
    entry = popquorn.log[popquorn.log["step"] == "recode"].iloc[0]
    assert "54-59" in entry["reason"] and entry["n_rows"] == 36


def test_popquorn_placeholders_and_texts(popquorn):
    assert popquorn.raters["occupation"].isna().sum() == 1  # "Prefer not to disclose"
    assert (popquorn.log["step"] == "missing_values").any()
    assert popquorn.items["response"].str.len().gt(0).all()
    assert set(popquorn.raters["gender"]) == {"Man", "Woman", "Non-binary"}


def test_popquorn_from_folder_and_env(shared_data, monkeypatch):
    assert load_popquorn(shared_data).n_ratings == 13_036
    monkeypatch.setenv("PLURALIGN_DATA", str(shared_data))
    assert load_popquorn().n_raters == 262


def test_multipico_counts(multipico):
    assert (multipico.n_ratings, multipico.n_raters, multipico.n_items) == (33_871, 506, 6_761)
    assert multipico.scales["irony"].is_binary
    assert set(multipico.ratings["rating"].unique()) == {0.0, 1.0}


def test_multipico_keys_prefixes_and_language(multipico):
    assert multipico.ratings["rater"].str.fullmatch(r"Ann\d+").all()
    assert set(multipico.raters["rater"]) == set(multipico.ratings["rater"])
    assert multipico.items["item"].str.match(r"^(dev|test):").all()
    assert multipico.items["item"].is_unique
    langs = multipico.items["language"].value_counts()
    assert len(langs) == 9 and langs["es"] == 1709
    assert multipico.items["prompt"].str.len().gt(0).all()
    assert multipico.raters["age"].dtype == pd.Float64Dtype()


def test_multipico_placeholders_are_missing_and_logged(multipico):
    r = multipico.raters
    for col in r.columns:
        if col != "age":
            assert not r[col].astype("string").isin(["DATA_EXPIRED", "CONSENT_REVOKED"]).any()
    log = multipico.log[multipico.log["step"] == "missing_values"].set_index("reason")["n_rows"]
    assert log["placeholder values in 'employment' set to missing"] == 109
    assert log["placeholder values in 'student' set to missing"] == 81


def test_multipico_language_subset(shared_data):
    s = load_multipico(shared_data, languages=["de"])
    assert set(s.items["language"]) == {"de"} and s.n_items == 862
    assert s.log.iloc[-1]["step"] == "subset" and s.log.iloc[-1]["n_rows"] > 0


def test_missing_data_raises_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="PLURALIGN_DATA"):
        load_popquorn(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"has no MP_annotators_meta.json.*PLURALIGN_DATA"):
        load_multipico(tmp_path)
    with pytest.raises(FileNotFoundError, match="looked at"):
        find_data("nothing/here.csv", tmp_path)


def test_describe_real_data(popquorn):
    from pluralign.describe import group_means

    gm = group_means(popquorn, by="gender", n_boot=200, seed=0).set_index("group")
    raw = pd.read_csv(popquorn.metadata["file"]).groupby("gender")["offensiveness"].mean()
    pd.testing.assert_series_equal(
        gm["mean"].sort_index(), raw.sort_index(), check_names=False, check_index_type=False
    )
    assert gm["n_raters"].sum() == 262
