"""Design matrices, target populations and the shared rating-scale effect helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pluralign._errors import DroppedRowsWarning
from pluralign.data import Population, Scale, Study
from pluralign.describe import relative_difference
from pluralign.models import adjust_pvalues, build_design, contrast_columns


@pytest.fixture(scope="module")
def study():
    ratings = pd.DataFrame(
        {
            "rater": ["a", "a", "b", "b", "c", "c", "d", "d", "e", "e"],
            "item": ["i", "j"] * 5,
            "dimension": "tox",
            "rating": [1.0, 2, 3, 4, 2, 2, 5, 4, 1, 3],
        }
    )
    raters = pd.DataFrame(
        {
            "rater": list("abcde"),
            "gender": ["she/her", "he/him", "she/her", "he/him", "she/her"],
            "ideology": ["liberal", "liberal", "conservative", "conservative", None],
            "race": ["White", "Black;White", "Black", "White", "Asian"],
        }
    )
    return Study.from_frames(
        ratings, raters, scales={"tox": Scale("tox", 1, 5)}, multiselect=["race"]
    )


def test_design_contrasts_and_reference(study):
    d = build_design(study, "rating ~ gender + (1|rater) + (1|item)", dimension="tox")
    assert d.references == {"gender": "she/her"}  # the level with most raters by default
    assert d.columns == ["Intercept", "gender[T.he/him]"]
    assert d.terms == {"gender": [("he/him", 1)]}
    np.testing.assert_array_equal(d.X[:, 1], (d.data["gender"] == "he/him").astype(float))
    assert d.n_raters == 5 and d.n_items == 2
    assert list(d.rater_levels[d.rater_codes]) == list(d.data["rater"])
    d2 = build_design(study, "rating ~ gender", dimension="tox", reference={"gender": "he/him"})
    assert d2.columns == ["Intercept", "gender[T.she/her]"]
    np.testing.assert_array_equal(
        d2.transform(pd.DataFrame({"gender": ["she/her", "he/him"]})), [[1, 1], [1, 0]]
    )


def test_design_drops_missing_covariates_with_warning(study):
    with pytest.warns(DroppedRowsWarning, match="dropped 2 of 10"):
        d = build_design(study, "rating ~ gender + ideology", dimension="tox")
    assert d.n_dropped == 2 and d.n == 8
    assert "e" not in set(d.data["rater"])


def test_design_interactions_and_indicators(study):
    with pytest.warns(DroppedRowsWarning):
        d = build_design(
            study,
            "rating ~ gender * ideology",
            dimension="tox",
            reference={"gender": "she/her", "ideology": "liberal"},
        )
    assert d.terms["gender:ideology"] == [("he/him:conservative", 3)]
    ind = build_design(study, "rating ~ race_Black", dimension="tox", coding="indicators")
    assert ind.references == {"race_Black": "0"}
    assert ind.terms == {"race_Black": [("1", 1)]}
    # rater b chose Black and White: counted as Black in indicator coding
    assert ind.X[(ind.data["rater"] == "b").to_numpy(), 1].tolist() == [1.0, 1.0]
    col = build_design(study, "rating ~ race", dimension="tox")
    assert "Multiracial" in col.levels["race"]


def test_design_errors_name_the_problem(study):
    with pytest.raises(KeyError, match="religion"):
        build_design(study, "rating ~ religion", dimension="tox")
    with pytest.raises(ValueError, match="reference level 'x'"):
        build_design(study, "rating ~ gender", dimension="tox", reference={"gender": "x"})
    with pytest.raises(ValueError, match="only the default \\(1\\|rater\\)"):
        build_design(study, "rating ~ gender + (gender|item)", dimension="tox")
    d = build_design(study, "rating ~ gender", dimension="tox")
    with pytest.raises(ValueError, match="not in the fitted data"):
        d.transform(pd.DataFrame({"gender": ["they/them"]}))


def test_population_checked_against_a_design(study):
    d = build_design(study, "rating ~ gender", dimension="tox")
    assert d.known_levels == {"gender": ["she/her", "he/him"]}
    ok = Population.parse({"gender": {"she/her": 0.5, "he/him": 0.5}}).check(d.known_levels)
    assert ok.label == "poststratified[gender]"
    with pytest.raises(ValueError, match="levels \\['they/them'\\] are unknown"):
        Population.parse({"gender": "they/them"}).check(d.known_levels)
    with pytest.raises(KeyError, match="age"):
        Population.parse({"age": "old"}).check(d.known_levels)


def _reference_study(declared=None):
    """he/him: 2 raters with 6 ratings each; she/her and they/them: 3 raters with 1 rating."""
    rows = [(f"m{i}", f"i{j}") for i in range(2) for j in range(6)]
    rows += [(f"{g}{i}", "i0") for g in ("f", "t") for i in range(3)]
    ratings = pd.DataFrame(rows, columns=["rater", "item"]).assign(dimension="tox", rating=2.0)
    ratings.loc[ratings["rater"].str.startswith("m"), "rating"] = 3.0
    gender = {"m": "he/him", "f": "she/her", "t": "they/them"}
    raters = pd.DataFrame({"rater": sorted(set(ratings["rater"]))})
    raters["gender"] = raters["rater"].str[0].map(gender)
    return Study.from_frames(
        ratings, raters, scales={"tox": Scale("tox", 1, 5)}, reference=declared or {}
    )


def test_one_reference_rule_for_describe_and_models():
    s = _reference_study()
    # most raters wins (not most ratings: he/him has 12 of 18 ratings); the tie between
    # she/her and they/them (3 raters each) goes to the alphabetically first
    assert s.reference_level("gender") == "she/her"
    d = build_design(s, "rating ~ gender", dimension="tox")
    rd = relative_difference(s, "gender", n_boot=0)
    assert d.references["gender"] == "she/her"
    assert set(rd["reference"]) == {"she/her"}
    # a declared reference comes first, in both
    declared = _reference_study({"gender": "he/him"})
    assert declared.reference_level("gender") == "he/him"
    assert build_design(declared, "rating ~ gender").references["gender"] == "he/him"
    assert set(relative_difference(declared, "gender", n_boot=0)["reference"]) == {"he/him"}
    # counted among the raters given (e.g. those left in a model)
    assert s.reference_level("gender", raters=["m0", "m1", "t0"]) == "he/him"


def test_contrast_columns_from_draws():
    rng = np.random.default_rng(1)
    ref = rng.normal(2.0, 0.1, size=(20000, 2))
    lev = ref + np.array([0.5, -0.2]) + rng.normal(0, 0.1, size=(20000, 2))
    out = contrast_columns(lev, ref, ci_prob=0.9, standardiser=2.0)
    np.testing.assert_allclose(out["difference"], [0.5, -0.2], atol=0.01)
    np.testing.assert_allclose(out["relative_pct"], [25, -10], atol=1)
    np.testing.assert_allclose(out["cohens_d"], out["difference"] / 2)
    # a 90% interval of N(mean, 0.1) differences spans ±1.645·0.1
    np.testing.assert_allclose(
        out["difference_ci_high"] - out["difference_ci_low"], 0.329, atol=0.01
    )


def test_adjust_pvalues_multiplicity_sets():
    from statsmodels.stats.multitest import multipletests

    t = pd.DataFrame(
        {"dimension": ["x", "x", "y"], "term": ["g", "a", "g"], "p_value": [0.01, 0.04, 0.03]}
    )
    np.testing.assert_allclose(adjust_pvalues(t), multipletests(t["p_value"], method="holm")[1])
    only_g = adjust_pvalues(t, multiplicity=["g"], correction="bonferroni")
    np.testing.assert_allclose(only_g[[0, 2]], [0.02, 0.06])
    assert np.isnan(only_g[1])
    np.testing.assert_allclose(adjust_pvalues(t, correction="none"), t["p_value"])
    with pytest.raises(ValueError, match="neither terms"):
        adjust_pvalues(t, multiplicity=["nope"])


def test_holm_equals_statsmodels_with_ties_and_missing_values():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(3)
    for n in (1, 2, 5, 13):
        for _ in range(50):
            p = rng.uniform(0, 1, n) ** 3
            p[rng.random(n) < 0.3] = p[0]  # ties
            t = pd.DataFrame({"dimension": "d", "term": "g", "p_value": np.r_[p, np.nan]})
            adj = adjust_pvalues(t)
            np.testing.assert_allclose(adj[:n], multipletests(p, method="holm")[1])
            assert np.isnan(adj.iloc[-1])


def test_compare_groups_tail_probability_is_never_zero():
    from pluralign.models import COMPARE_COLUMNS, compare_groups

    class Fit:  # a model whose draws of the two groups' means never overlap
        dimensions = ("d",)

        def cell_mean_draws(self, cells, dimension):
            level = cells.iloc[0]["gender"]
            return np.linspace(3, 3.1, 500)[:, None] + (0.5 if level == "he/him" else 0.0)

    out = compare_groups(Fit(), {"gender": "he/him"}, {"gender": "she/her"})
    assert tuple(out.columns) == COMPARE_COLUMNS
    assert out["p_direction"].iloc[0] == 1.0
    assert out["p_value"].iloc[0] == out.attrs["p_value_floor"] == 1 / 500
    assert out["difference"].iloc[0] == pytest.approx(0.5)
