"""Design matrices, target populations and the shared rating-scale effect helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pluralign._errors import DroppedRowsWarning
from pluralign.data import Scale, Study
from pluralign.models import adjust_pvalues, build_design, contrast_columns, target_cells


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
    d = build_design(study, "rating ~ gender + (1|rater) + (1|item)", "tox")
    assert d.references == {"gender": "she/her"}  # most frequent level by default
    assert d.columns == ["Intercept", "gender[T.he/him]"]
    assert d.terms == {"gender": [("he/him", 1)]}
    np.testing.assert_array_equal(d.X[:, 1], (d.data["gender"] == "he/him").astype(float))
    assert d.n_raters == 5 and d.n_items == 2
    assert list(d.rater_levels[d.rater_codes]) == list(d.data["rater"])
    d2 = build_design(study, "rating ~ gender", "tox", reference={"gender": "he/him"})
    assert d2.columns == ["Intercept", "gender[T.she/her]"]
    np.testing.assert_array_equal(
        d2.transform(pd.DataFrame({"gender": ["she/her", "he/him"]})), [[1, 1], [1, 0]]
    )


def test_design_drops_missing_covariates_with_warning(study):
    with pytest.warns(DroppedRowsWarning, match="dropped 2 of 10"):
        d = build_design(study, "rating ~ gender + ideology", "tox")
    assert d.n_dropped == 2 and d.n == 8
    assert "e" not in set(d.data["rater"])


def test_design_interactions_and_indicators(study):
    with pytest.warns(DroppedRowsWarning):
        d = build_design(
            study,
            "rating ~ gender * ideology",
            "tox",
            reference={"gender": "she/her", "ideology": "liberal"},
        )
    assert d.terms["gender:ideology"] == [("he/him:conservative", 3)]
    ind = build_design(study, "rating ~ race_Black", "tox", coding="indicators")
    assert ind.references == {"race_Black": "0"}
    assert ind.terms == {"race_Black": [("1", 1)]}
    # rater b chose Black and White: counted as Black in indicator coding
    assert ind.X[(ind.data["rater"] == "b").to_numpy(), 1].tolist() == [1.0, 1.0]
    col = build_design(study, "rating ~ race", "tox")
    assert "Multiracial" in col.levels["race"]


def test_design_errors_name_the_problem(study):
    with pytest.raises(KeyError, match="religion"):
        build_design(study, "rating ~ religion", "tox")
    with pytest.raises(ValueError, match="reference level 'x'"):
        build_design(study, "rating ~ gender", "tox", reference={"gender": "x"})
    with pytest.raises(ValueError, match="only \\(1\\|rater\\)"):
        build_design(study, "rating ~ gender + (gender|item)", "tox")
    d = build_design(study, "rating ~ gender", "tox")
    with pytest.raises(ValueError, match="not in the fitted data"):
        d.transform(pd.DataFrame({"gender": ["they/them"]}))


def test_target_cells_forms():
    one = target_cells({"gender": "she/her", "race": "Black"})
    assert one.to_dict("records") == [{"gender": "she/her", "race": "Black", "share": 1.0}]
    margins = target_cells(
        {"gender": {"she/her": 0.5, "he/him": 0.5}, "age": {"young": 0.2, "old": 0.8}}
    )
    assert len(margins) == 4 and margins["share"].sum() == pytest.approx(1)
    assert margins.query("gender == 'he/him' and age == 'old'")["share"].item() == pytest.approx(
        0.4
    )
    frame = pd.DataFrame({"gender": ["a", "b"], "share": [0.25, 0.75]})
    pd.testing.assert_frame_equal(target_cells(frame), frame)
    assert target_cells(None)["share"].tolist() == [1.0]


def test_target_cells_validation(study):
    with pytest.raises(ValueError, match=r"sum to 0\.9"):
        target_cells({"gender": {"she/her": 0.5, "he/him": 0.4}})
    with pytest.raises(ValueError, match="share"):
        target_cells(pd.DataFrame({"gender": ["a"]}))
    d = build_design(study, "rating ~ gender", "tox")
    with pytest.raises(ValueError, match="levels \\['they/them'\\] are unknown"):
        target_cells({"gender": "they/them"}, d)
    with pytest.raises(KeyError, match="age"):
        target_cells({"age": "old"}, d)


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


def test_adjust_pvalues_families():
    from statsmodels.stats.multitest import multipletests

    t = pd.DataFrame(
        {"dimension": ["x", "x", "y"], "term": ["g", "a", "g"], "p_value": [0.01, 0.04, 0.03]}
    )
    np.testing.assert_allclose(adjust_pvalues(t), multipletests(t["p_value"], method="holm")[1])
    only_g = adjust_pvalues(t, family=["g"], correction="bonferroni")
    np.testing.assert_allclose(only_g[[0, 2]], [0.02, 0.06])
    assert np.isnan(only_g[1])
    np.testing.assert_allclose(adjust_pvalues(t, correction="none"), t["p_value"])
    with pytest.raises(ValueError, match="neither terms"):
        adjust_pvalues(t, family=["nope"])
