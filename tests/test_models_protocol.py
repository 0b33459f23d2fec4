"""One conformance test of the ModelResult protocol, run for every model."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from pluralign.data._simulate import simulate_study
from pluralign.models import (
    DIAGNOSTIC_COLUMNS,
    EFFECT_COLUMNS,
    MARGINAL_COLUMNS,
    POSTSTRAT_COLUMNS,
    TERM_COLUMNS,
    ModelResult,
    compare_groups,
    fit_bayes,
    fit_mixed,
)

REF = {"gender": "she/her"}


@pytest.fixture(scope="module")
def studies():
    kw = dict(
        n_raters=90,
        n_prompts=12,
        items_per_rater=6,
        dimensions=["toxicity", "helpfulness"],
        missing_share=0.0,
        seed=2,
    )
    return {
        "ordinal": simulate_study(**kw).study,
        "binary": simulate_study(scale_points=2, **kw).study,
    }


def _mixed(family):
    def fit(studies):
        study = studies["binary" if family == "binomial" else "ordinal"]
        return fit_mixed(study, "rating ~ gender", family=family, reference=REF, n_draws=500)

    return fit


def _bayes(family):
    def fit(studies):
        pytest.importorskip("pymc")
        study = studies["binary" if family == "bernoulli" else "ordinal"]
        try:
            return fit_bayes(
                study,
                "rating ~ gender",
                family=family,
                draws=100,
                tune=100,
                chains=1,
                seed=1,
                reference=REF,
                progressbar=False,
            )
        except NotImplementedError as exc:
            pytest.skip(f"fit_bayes(family={family!r}) is not available: {exc}")

    return fit


MODELS = {
    "mixed-gaussian": _mixed("gaussian"),
    "mixed-binomial": _mixed("binomial"),
    "mixed-ordinal": _mixed("ordinal"),
    "bayes-ordinal": _bayes("ordinal"),
    "bayes-gaussian": _bayes("gaussian"),
    "bayes-bernoulli": _bayes("bernoulli"),
}


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n.startswith("bayes") else n for n in MODELS],
)
def test_model_result_protocol(name, studies):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sampler / small-data warnings are not the point here
        fit = MODELS[name](studies)
    binary = name.endswith(("binomial", "bernoulli"))
    lo, hi = (0.0, 1.0) if binary else (1.0, 5.0)
    assert isinstance(fit, ModelResult)
    assert fit.dimensions == ["toxicity", "helpfulness"]
    assert isinstance(fit.formula, str)

    # effects: one row per non-reference gender level and dimension
    eff = fit.effects()
    assert tuple(eff.columns[: len(EFFECT_COLUMNS)]) == EFFECT_COLUMNS
    levels = set(studies["ordinal"].raters["gender"].dropna()) - {"she/her"}
    for dim in fit.dimensions:
        rows = eff[(eff["dimension"] == dim) & (eff["term"] == "gender")]
        assert set(rows["level"]) <= levels and len(rows) >= 2
        assert (rows["reference"] == "she/her").all()
    assert ((eff["ci_low"] <= eff["estimate"]) & (eff["estimate"] <= eff["ci_high"])).all()
    if name.startswith("bayes"):  # posterior probabilities, not (adjusted) p-values
        assert eff["p_direction"].between(0.5, 1).all() and eff["p_adjusted"].isna().all()
    else:
        assert eff["p_value"].between(0, 1).all()
        assert (eff["p_adjusted"] >= eff["p_value"] - 1e-12).all()
    for col in ("mean_level", "mean_reference"):
        assert eff[col].between(lo, hi).all(), col
    np.testing.assert_allclose(
        eff["difference"], eff["mean_level"] - eff["mean_reference"], atol=1e-6
    )
    np.testing.assert_allclose(
        eff["relative_pct"],
        100 * eff["difference"] / eff["mean_reference"],
        rtol=1e-6,
        err_msg="EFFECT_COLUMNS defines relative_pct = 100 * difference / mean_reference "
        "(pluralign.models._effects.contrast_columns computes it)",
    )
    assert (eff["difference_ci_low"] <= eff["difference_ci_high"]).all()
    assert eff["cohens_d"].notna().all()
    if binary or name.endswith("ordinal"):  # logit links: (cumulative) odds ratios
        assert (eff["odds_ratio"] > 0).all()
    else:
        assert eff["odds_ratio"].isna().all()

    # terms, and the link-scale effects (same coefficients, nothing on the rating scale)
    terms = fit.terms
    assert tuple(terms.columns) == TERM_COLUMNS
    keys = ["dimension", "term", "level", "reference"]
    pd.testing.assert_frame_equal(eff[keys], terms[keys])
    assert (terms["coefficient"] == "gender[T." + terms["level"] + "]").all()
    link = fit.effects(scale="link")
    assert tuple(link.columns[: len(EFFECT_COLUMNS)]) == EFFECT_COLUMNS
    for col in ("estimate", "ci_low", "ci_high", "p_value", "p_adjusted", "std_error"):
        np.testing.assert_allclose(link[col], eff[col], rtol=1e-12, err_msg=col)
    assert link["mean_level"].isna().all() and link["difference"].isna().all()
    assert (link["std_error"] > 0).all()
    html = fit._repr_html_()
    assert fit.formula in html and "he/him" in html and fit.family in html

    # marginal means, post-stratification, predictions
    mm = fit.marginal_means("gender")
    assert list(mm.columns) == ["gender", *MARGINAL_COLUMNS]
    assert ((mm["ci_low"] <= mm["mean"]) & (mm["mean"] <= mm["ci_high"])).all()
    assert mm["mean"].between(lo, hi).all()
    ps = fit.poststratify({"gender": {"she/her": 0.5, "he/him": 0.5}})
    assert list(ps.columns) == list(POSTSTRAT_COLUMNS) and len(ps) == 2
    assert (ps["population"] == "poststratified[gender]").all()
    means = mm.set_index(["dimension", "gender"])["mean"]
    for _, row in ps.iterrows():
        half = 0.5 * (means[(row["dimension"], "she/her")] + means[(row["dimension"], "he/him")])
        assert row["estimate"] == pytest.approx(half, rel=1e-6)
    pred = fit.predict()
    assert "prediction" in pred.columns and np.isfinite(pred["prediction"]).all()
    assert len(pred) == studies["binary" if binary else "ordinal"].n_ratings

    # the cell hook used by compare_groups
    cells = pd.DataFrame({"gender": ["she/her", "he/him"]})
    draws = fit.cell_mean_draws(cells, "toxicity")
    assert draws.ndim == 2 and draws.shape[1] == 2 and draws.shape[0] >= 100
    cmp = compare_groups(fit, {"gender": "he/him"}, {"gender": "she/her"})
    tox = eff[(eff["dimension"] == "toxicity") & (eff["level"] == "he/him")].iloc[0]
    assert cmp.iloc[0]["difference"] == pytest.approx(tox["difference"], rel=1e-6, abs=1e-9)
    assert cmp[["group_a", "group_b"]].iloc[0].tolist() == ["gender=he/him", "gender=she/her"]

    diag = fit.diagnostics()
    assert list(diag.columns) == list(DIAGNOSTIC_COLUMNS) and len(diag) > 0
    summ = fit.summary()
    assert isinstance(summ, pd.DataFrame) and len(summ) > 0
