"""Item covariates in power designs: source model and length, their interactions with raters'
demographics, tested by simulation."""

from __future__ import annotations

import numpy as np
import pytest

from pluralign.power import StudyDesign, power_analysis

MODELS = ("model_a", "model_b", "model_c")


def item_design(test: str) -> StudyDesign:
    return StudyDesign(
        {"gender": {"she/her": 120, "he/him": 120}},
        effects={"he/him": 0.1},
        scale="normal",
        n_prompts=60,
        items_per_rater=8,
        source_models=MODELS,
        source_model_effects={"model_b": 0.2, "model_c": -0.1},
        source_model_interactions={"he/him": {"model_b": 0.3}},
        length_effect=0.15,
        length_interactions={"he/him": -0.1},
        test=test,
    )


@pytest.mark.parametrize(
    "test",
    [
        "gender:source_model",
        *(
            pytest.param(t, marks=pytest.mark.slow)
            for t in ("gender", "source_model", "length", "gender:length")
        ),
    ],
)
def test_item_terms_are_recovered(test):
    """The mixed model fitted to simulated studies recovers every contrast of the tested term
    (mean estimate within 4 Monte-Carlo SEs of the design's truth), with the truths computed
    by hand from the design's shifts."""
    design = item_design(test)
    hand = {
        "gender": {"he/him": 0.1 + 0.3 / 3},  # averaged over the three models in equal shares
        "source_model": {"model_b": 0.2 + 0.3 / 2, "model_c": -0.1},  # over raters, half each
        "length": {"length": (0.15 - 0.1 / 2) / 50},  # per word
        "gender:source_model": {"he/him:model_b": 0.3, "he/him:model_c": 0.0},
        "gender:length": {"he/him": -0.1 / 50},
    }[test]
    res = power_analysis(design, n_sims=16, seed=3, progress=False)
    rows = res.summary.set_index("level").loc[list(hand)]
    np.testing.assert_allclose(rows["truth"], list(hand.values()), rtol=1e-12)
    assert np.all(np.abs(rows["mean_estimate"] - rows["truth"]) < 4 * rows["bias_se"])
    assert rows["reference"].tolist() == [ref for _, _, ref in design.contrasts]
    if test == "gender:source_model":  # 0.3 on one cell: detected often, the null cell rarely
        assert rows.loc["he/him:model_b", "power"] > 0.5 > rows.loc["he/him:model_c", "power"]


def test_item_covariates_in_the_simulated_study():
    d = item_design("gender:source_model")
    study = d.simulate(seed=2)
    items = study.items
    assert items["source_model"].value_counts().tolist() == [80, 80, 80]  # equal shares
    assert items["length"].min() >= 10 and abs(items["length"].mean() - 150) < 10
    assert study.reference == {"gender": "she/her", "source_model": "model_a"}
    assert d.formula == "rating ~ gender + source_model + length + gender:source_model"
    # without item covariates the study is drawn as before: the same ratings
    plain = StudyDesign({"gender": {"she/her": 20, "he/him": 20}}, n_prompts=10)
    assert "source_model" not in plain.simulate(1).items
    assert plain.formula == "rating ~ gender" and plain.tests == ["gender"]


def test_with_effect_sets_the_tested_term():
    d = item_design("gender:source_model").with_effect(0.5)
    assert d.source_model_interactions["he/him"] == {"model_b": 0.5}
    d = d.with_effect({"he/him:model_c": -0.2})
    assert d.test_effects()["he/him:model_c"] == -0.2
    assert item_design("length").with_effect(0.4).length_effect == 0.4
    with pytest.raises(ValueError, match="known"):
        item_design("source_model").with_effect({"model_z": 1.0})


def test_item_covariate_errors_name_the_problem():
    with pytest.raises(ValueError, match="source_model_effects names"):
        StudyDesign(source_models=MODELS, source_model_effects={"model_a": 0.1})
    with pytest.raises(ValueError, match="set length_effect"):
        StudyDesign(length_interactions={"he/him": 0.1})
    with pytest.raises(ValueError, match="test must be one of"):
        StudyDesign(test="source_model")
    with pytest.raises(ValueError, match="tests the demographic"):
        power_analysis(item_design("length"), n_sims=2, model="rater_means", progress=False)
