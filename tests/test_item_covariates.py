"""Item-level covariates in formulas, cross-level interactions, within-item-level differences and
text features: agreement with lme4 on real data, recovery and coverage of simulated truth."""

from __future__ import annotations

import shutil
import subprocess
import warnings

import numpy as np
import pandas as pd
import pytest

from pluralign.data import Scale, Study, add_text_features, load_popquorn, simulate_study
from pluralign.describe import group_means, relative_difference
from pluralign.models import fit_mixed
from pluralign.models._design import build_design

REF = {"gender": "she/her", "ideology": "liberal", "source_model": "model_a"}
FORMULA = "rating ~ gender * source_model + ideology * length"


def _tiny() -> Study:
    ratings = pd.DataFrame(
        {
            "rater": ["a", "a", "b", "b", "c", "c", "d", "d"],
            "item": ["i", "j", "i", "j", "i", "j", "i", "j"],
            "dimension": "toxicity",
            "rating": [1.0, 2.0, 3.0, 5.0, 2.0, 2.0, 4.0, 3.0],
        }
    )
    raters = pd.DataFrame(
        {"rater": list("abcd"), "gender": ["she/her", "he/him", "she/her", "he/him"]}
    )
    items = pd.DataFrame(
        {
            "item": ["i", "j"],
            "response": ["It may rain, perhaps.", "Well-known facts don't lie; MAYBE."],
            "source_model": ["model_a", "model_b"],
        }
    )
    return Study.from_frames(
        ratings, raters, items=items, scales={"toxicity": Scale("toxicity", 1, 5)}
    )


def _gaussian(seed: int, n_raters: int, n_prompts: int, items_per_rater: int = 10):
    return simulate_study(
        n_raters=n_raters,
        n_prompts=n_prompts,
        items_per_rater=items_per_rater,
        seed=seed,
        dimensions=["toxicity"],
        family="gaussian",
        group_item_sd=0.0,
    )


def _truth(sim) -> dict[tuple[str, str], float]:
    """Latent (= rating-scale, gaussian) coefficients of FORMULA under treatment contrasts."""
    ie = sim.truth.item_effects
    out = {}
    for row in ie.itertuples():
        if row.term == "source_model":
            out[("source_model", row.source_model)] = row.effect
        elif row.term == "length":
            out[("length", "length")] = row.effect
        elif row.term == "gender:source_model":
            out[("gender:source_model", f"{row.level}:{row.source_model}")] = row.effect
        elif row.term == "ideology:length":
            out[("ideology:length", row.level)] = row.effect
    fe = sim.truth.fixed_effects
    beta = fe.set_index(["term", "level"])["beta_latent"]
    out[("gender", "he/him")] = float(beta[("gender", "he/him")])
    out[("ideology", "conservative")] = float(beta[("ideology", "conservative")])
    return out


def _fit(study, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dropped rows (missing ideology), singular fits
        return fit_mixed(
            study,
            FORMULA,
            reference=REF,
            scale_numeric={"length": "standardize"},
            progressbar=False,
            **kwargs,
        )


# ------------------------------------------------------------------------------ design
def test_item_columns_enter_the_design_with_their_source():
    study = _tiny()
    d = build_design(study, "rating ~ gender * source_model", reference={"gender": "she/her"})
    assert d.sources == {"gender": "raters", "source_model": "items"}
    assert d.columns[-1] == "gender[T.he/him]:source_model[T.model_b]"
    # the interaction column is 1 exactly for he/him raters' ratings of model_b's response
    expect = ((d.data["gender"] == "he/him") & (d.data["source_model"] == "model_b")).to_numpy()
    np.testing.assert_array_equal(d.X[:, -1], expect.astype(float))
    assert d.references["source_model"] == "model_a"  # most items, ties alphabetical


def test_a_name_in_both_tables_is_an_error_naming_both():
    study = _tiny()
    clash = study.replace(
        items=study.items.assign(gender=["x", "y"]),
    )
    with pytest.raises(ValueError, match="both the raters table and the items table"):
        build_design(clash, "rating ~ gender")


def test_unknown_variable_names_both_tables():
    with pytest.raises(KeyError, match="neither a column of the raters table"):
        build_design(_tiny(), "rating ~ colour")


def test_standardize_rescales_the_slope_and_is_recorded():
    sim = _gaussian(seed=3, n_raters=150, n_prompts=30)
    raw = _fit(sim.study, n_draws=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unscaled = fit_mixed(sim.study, FORMULA, reference=REF, n_draws=200, progressbar=False)
    center, scale = raw.design("toxicity").numeric_scaling["length"]
    items = sim.study.items.set_index("item").loc[raw.design("toxicity").item_levels, "length"]
    assert center == pytest.approx(items.mean())
    assert scale == pytest.approx(items.std(ddof=0))
    assert raw.terms.attrs["numeric_scaling"]["toxicity"]["length"] == (center, scale)
    a = raw.effects(scale="link").set_index(["term", "level"])["estimate"]
    b = unscaled.effects(scale="link").set_index(["term", "level"])["estimate"]
    # the same model reparametrised: slopes per SD = slopes per word × SD
    assert a[("length", "length")] == pytest.approx(b[("length", "length")] * scale, rel=1e-6)
    assert a[("ideology:length", "conservative")] == pytest.approx(
        b[("ideology:length", "conservative")] * scale, rel=1e-6
    )
    # and the same fitted values, so the same marginal means
    ma = raw.marginal_means(by=["gender", "source_model"])["mean"].to_numpy()
    mb = unscaled.marginal_means(by=["gender", "source_model"])["mean"].to_numpy()
    np.testing.assert_allclose(ma, mb, rtol=1e-6)


def test_scale_numeric_rejects_unknown_methods_and_categorical_columns():
    study = _tiny()
    with pytest.raises(ValueError, match="scale_numeric"):
        build_design(study, "rating ~ gender", scale_numeric="zscore")
    with pytest.raises(ValueError, match="categorical"):
        build_design(study, "rating ~ gender", scale_numeric={"gender": "center"})


# ------------------------------------------------------------------------------ recovery
def test_recovers_item_and_cross_level_effects():
    sim = _gaussian(seed=5, n_raters=600, n_prompts=100)
    fit = _fit(sim.study, n_draws=200)
    eff = fit.effects(scale="link").set_index(["term", "level"])
    for key, true in _truth(sim).items():
        est, se = eff.loc[key, "estimate"], eff.loc[key, "std_error"]
        assert abs(est - true) < 3.5 * se, (key, est, true, se)
    # the cross-level interactions are detected, not only consistent with the truth
    assert eff.loc[("ideology:length", "conservative"), "ci_high"] < 0


@pytest.mark.slow
def test_coverage_of_cross_level_interactions():
    keys = [("gender:source_model", "he/him:model_c"), ("ideology:length", "conservative")]
    hits = {k: 0 for k in keys}
    n_rep = 40
    for rep in range(n_rep):
        sim = _gaussian(seed=100 + rep, n_raters=200, n_prompts=40)
        raters = sim.study.raters
        binary = raters.loc[raters["gender"].isin(["she/her", "he/him"]), "rater"]
        eff = (
            _fit(sim.study.subset(raters=list(binary)), n_draws=50)
            .effects(scale="link")
            .set_index(["term", "level"])
        )
        truth = _truth(sim)
        for k in keys:
            hits[k] += eff.loc[k, "ci_low"] <= truth[k] <= eff.loc[k, "ci_high"]
    for k in keys:
        # 95 % intervals: 40 replicates cover at least 33 times unless something is wrong
        # (binomial P(X <= 32 | 40, 0.95) ≈ 0.003)
        assert hits[k] >= 33, (k, hits[k])


def test_marginal_means_per_source_model_recover_the_simulated_contrast():
    sim = _gaussian(seed=8, n_raters=600, n_prompts=100)
    fit = _fit(sim.study, n_draws=500)
    mm = fit.marginal_means(by=["gender", "source_model"]).set_index(["gender", "source_model"])
    truth = _truth(sim)
    for model in ("model_b", "model_c"):
        diff = mm.loc[("he/him", model), "mean"] - mm.loc[("he/him", "model_a"), "mean"]
        diff -= mm.loc[("she/her", model), "mean"] - mm.loc[("she/her", "model_a"), "mean"]
        assert diff == pytest.approx(truth[("gender:source_model", f"he/him:{model}")], abs=0.12)


# ------------------------------------------------------------------------------ describe
def test_relative_difference_within_item_levels_equals_hand_computation():
    sim = simulate_study(n_raters=150, n_prompts=30, seed=2, dimensions=["toxicity"])
    study = sim.study
    rd = relative_difference(study, by="gender", within="source_model", n_boot=100, seed=0)
    data = study.data(with_items=True)
    for model, part in data.groupby("source_model"):
        means = part.groupby("gender")["rating"].mean()
        row = rd[(rd["source_model"] == model) & (rd["group"] == "he/him")].iloc[0]
        assert row["mean"] == pytest.approx(means["he/him"])
        assert row["reference"] == "she/her"
        assert row["relative_pct"] == pytest.approx(100 * (means["he/him"] / means["she/her"] - 1))
        assert row["difference_ci_low"] < row["difference"] < row["difference_ci_high"]
    gm = group_means(study, by="gender", within="source_model", n_boot=0)
    assert set(gm["source_model"]) == set(study.items["source_model"])
    with pytest.raises(ValueError, match="rater column"):
        group_means(study, by="ideology", within="gender")


# ------------------------------------------------------------------------------ text features
def test_add_text_features_counts_by_hand():
    out = add_text_features(_tiny(), lexicons={"hedges": ["may", "perhaps", "maybe", "it may"]})
    items = out.items.set_index("item")
    assert items.loc["i", "response_chars"] == len("It may rain, perhaps.")
    assert items.loc["i", "response_words"] == 4
    assert items.loc["j", "response_words"] == 5  # well-known and don't are one word each
    # "It may" counted once (longest first), "perhaps" once; MAYBE matches case-insensitively
    assert items.loc["i", "response_hedges"] == 2
    assert items.loc["j", "response_hedges"] == 1
    assert out.log.iloc[-1]["step"] == "add_text_features"
    with pytest.raises(ValueError, match="exist already"):
        add_text_features(out)
    with pytest.raises(KeyError, match="not in the items table"):
        add_text_features(out, column="text")


# ------------------------------------------------------------------------------ R (lme4)
R_SCRIPT = r"""
suppressMessages(library(lme4))
dir <- commandArgs(trailingOnly = TRUE)[1]
d <- read.csv(file.path(dir, "data.csv"), stringsAsFactors = FALSE)
d$gender <- relevel(factor(d$gender), "Woman")
d$rater <- factor(d$rater); d$item <- factor(d$item)
ctrl <- lmerControl(optimizer = "nloptwrap",
                    optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14, maxeval = 1e5))
m <- lmer(rating ~ gender * response_words + (1 | rater) + (1 | item), d, REML = TRUE,
          control = ctrl)
se <- sqrt(diag(as.matrix(vcov(m))))
write.csv(data.frame(name = names(fixef(m)), estimate = unname(fixef(m)), se = unname(se)),
          file.path(dir, "fixef.csv"), row.names = FALSE)
"""


@pytest.mark.needs_r
@pytest.mark.needs_data
def test_text_feature_interaction_matches_lmer_on_popquorn(shared_data, tmp_path, monkeypatch):
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript is not installed: cannot compare with lme4")
    monkeypatch.setenv("PLURALIGN_DATA", str(shared_data))
    study = add_text_features(load_popquorn(), features=("words",))
    fit = fit_mixed(study, "rating ~ gender * response_words", reference={"gender": "Woman"})
    design = fit.design("offensiveness")
    cols = ["rater", "item", "gender", "response_words", "rating"]
    design.data[cols].to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "fit.R").write_text(R_SCRIPT)
    proc = subprocess.run(
        ["Rscript", str(tmp_path / "fit.R"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0 and "lme4" in proc.stderr:
        pytest.skip(f"lme4 is not available: {proc.stderr[-200:]}")
    assert proc.returncode == 0, proc.stderr
    r = pd.read_csv(tmp_path / "fixef.csv")
    names = [
        "(Intercept)" if c == "Intercept" else c.replace("[T.", "").replace("]", "")
        for c in design.columns
    ]
    r = r.set_index("name").loc[names]
    f = fit.fits["offensiveness"].fit
    np.testing.assert_allclose(f.beta, r["estimate"].to_numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(f.se, r["se"].to_numpy(), rtol=1e-4)


def test_compare_groups_within_an_item_level_is_the_conditional_contrast():
    # identity link: he/him − she/her on model_b's responses = β_he + δ_he:model_b exactly
    from pluralign.models import compare_groups

    sim = _gaussian(seed=9, n_raters=300, n_prompts=60)
    fit = _fit(sim.study, n_draws=300)
    out = compare_groups(
        fit,
        {"gender": "he/him", "source_model": "model_b"},
        {"gender": "she/her", "source_model": "model_b"},
    ).iloc[0]
    coef = _coefficients(fit)
    expect = coef[("gender", "he/him")] + coef[("gender:source_model", "he/him:model_b")]
    assert out["difference"] == pytest.approx(expect, rel=1e-8)
    assert out["group_a"] == "gender=he/him & source_model=model_b"
    mm = fit.marginal_means(by=["gender", "source_model"]).set_index(["gender", "source_model"])
    assert out["mean_a"] == pytest.approx(mm.loc[("he/him", "model_b"), "mean"], rel=1e-8)


R_GLMER = r"""
suppressMessages(library(lme4))
dir <- commandArgs(trailingOnly = TRUE)[1]
d <- read.csv(file.path(dir, "data.csv"), stringsAsFactors = FALSE)
d$gender <- relevel(factor(d$gender), "Female")
m <- glmer(rating ~ gender * words_sd + (1 | rater) + (1 | item), d, family = binomial,
           # tolPwrss = 1e-10: at the default 1e-7 glmer's Laplace deviance uses a log-determinant
           # factored one PIRLS step early (+0.03 here), and BOBYQA minimises that bias
           control = glmerControl(optimizer = "bobyqa", tolPwrss = 1e-10,
                                  optCtrl = list(maxfun = 1e5)))
write.csv(data.frame(name = names(fixef(m)), estimate = unname(fixef(m))),
          file.path(dir, "fixef.csv"), row.names = FALSE)
"""


@pytest.mark.slow
@pytest.mark.needs_r
@pytest.mark.needs_data
def test_standardized_text_feature_logistic_matches_glmer_on_multipico(
    shared_data, tmp_path, monkeypatch
):
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript is not installed: cannot compare with lme4")
    monkeypatch.setenv("PLURALIGN_DATA", str(shared_data))
    from pluralign.data import load_multipico

    full = load_multipico()
    english = full.items.loc[full.items["language"] == "en", "item"]
    study = add_text_features(full.subset(items=list(english)), features=("words",))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # raters without gender are dropped (and counted)
        fit = fit_mixed(
            study,
            "rating ~ gender * response_words",
            family="binomial",
            reference={"gender": "Female"},
            scale_numeric="standardize",
        )
    data = fit.design("irony").data
    # the standardization by hand: each rated item once, population SD
    per_item = data.drop_duplicates("item")["response_words"]
    data = data.assign(words_sd=(data["response_words"] - per_item.mean()) / per_item.std(ddof=0))
    data[["rater", "item", "gender", "words_sd", "rating"]].to_csv(
        tmp_path / "data.csv", index=False
    )
    (tmp_path / "fit.R").write_text(R_GLMER)
    proc = subprocess.run(
        ["Rscript", str(tmp_path / "fit.R"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    r = pd.read_csv(tmp_path / "fixef.csv")["estimate"].to_numpy()
    # both maximise the same Laplace likelihood (glmer with a tight PIRLS tolerance: see R_GLMER)
    np.testing.assert_allclose(fit.fits["irony"].fit.beta, r, rtol=1e-3)


def test_effects_within_equals_main_effect_plus_interaction():
    from pluralign.models import effects_within

    sim = _gaussian(seed=9, n_raters=300, n_prompts=60)
    fit = _fit(sim.study, n_draws=300)
    out = effects_within(fit, "gender", "source_model")
    coef = _coefficients(fit)
    row = out[(out["source_model"] == "model_c") & (out["level"] == "he/him")].iloc[0]
    expect = coef[("gender", "he/him")] + coef[("gender:source_model", "he/him:model_c")]
    assert row["difference"] == pytest.approx(expect, rel=1e-8)
    assert row["difference_ci_low"] < row["difference"] < row["difference_ci_high"]
    base = out[(out["source_model"] == "model_a") & (out["level"] == "he/him")].iloc[0]
    assert base["difference"] == pytest.approx(coef[("gender", "he/him")], rel=1e-8)
    assert out["p_adjusted"].ge(out["p_value"]).all()
    with pytest.raises(KeyError, match="not a categorical variable"):
        effects_within(fit, "gender", "length")


R_CLMM = r"""
suppressMessages(library(ordinal))
dir <- commandArgs(trailingOnly = TRUE)[1]
d <- read.csv(file.path(dir, "data.csv"), stringsAsFactors = FALSE)
d$gender <- relevel(factor(d$gender), "Woman")
d$rating <- factor(d$rating, ordered = TRUE)
d$rater <- factor(d$rater); d$item <- factor(d$item)
m <- clmm(rating ~ gender * words_sd + (1 | rater) + (1 | item), data = d, link = "logit")
s <- summary(m)$coefficients
write.csv(data.frame(name = rownames(s), estimate = s[, 1], se = s[, 2]),
          file.path(dir, "coef.csv"), row.names = FALSE)
"""


@pytest.mark.slow
@pytest.mark.needs_r
@pytest.mark.needs_data
def test_ordinal_text_feature_interaction_matches_clmm_on_popquorn(
    shared_data, tmp_path, monkeypatch
):
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript is not installed: cannot compare with ordinal::clmm")
    monkeypatch.setenv("PLURALIGN_DATA", str(shared_data))
    full = load_popquorn()
    first = sorted(full.items["item"], key=int)[:150]  # clmm on all 13,036 ratings takes minutes
    study = add_text_features(full.subset(items=first), features=("words",))
    fit = fit_mixed(
        study,
        "rating ~ gender * response_words",
        family="ordinal",
        reference={"gender": "Woman"},
        scale_numeric="standardize",
    )
    f = fit.fits["offensiveness"]
    data = f.design.data
    per_item = data.drop_duplicates("item")["response_words"]
    data = data.assign(words_sd=(data["response_words"] - per_item.mean()) / per_item.std(ddof=0))
    data[["rater", "item", "gender", "words_sd", "rating"]].to_csv(
        tmp_path / "data.csv", index=False
    )
    (tmp_path / "fit.R").write_text(R_CLMM)
    proc = subprocess.run(
        ["Rscript", str(tmp_path / "fit.R"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0 and "ordinal" in proc.stderr:
        pytest.skip(f"R package ordinal is not available: {proc.stderr[-200:]}")
    assert proc.returncode == 0, proc.stderr
    r = pd.read_csv(tmp_path / "coef.csv")
    ours = np.concatenate([f.fit.cutpoints, f.fit.beta])
    ours_se = np.concatenate([f.fit.cutpoint_se, f.fit.se])
    assert len(r) == len(ours)  # cutpoints, then gender, words_sd, gender:words_sd as ours
    # relative to max(|estimate|, SE): a coefficient near 0 has no meaningful relative error
    scale = np.maximum(np.abs(r["estimate"]), r["se"]).to_numpy()
    assert np.max(np.abs(ours - r["estimate"].to_numpy()) / scale) < 1e-3
    np.testing.assert_allclose(ours_se, r["se"].to_numpy(), rtol=1e-2)


def _coefficients(fit):
    """Coefficients by (term, level): effects() rows of an interaction model are marginal."""
    coef = fit.terms.set_index(["term", "level"])["coefficient"]
    fixed = fit.summary().query("kind == 'fixed'").set_index("parameter")["estimate"]
    return fixed[coef.to_numpy()].set_axis(coef.index)
