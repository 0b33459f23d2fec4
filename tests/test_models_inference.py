"""Inference on mixed models: Satterthwaite t tests (lmerTest), anova() LRTs, variance partition."""

from __future__ import annotations

import shutil
import subprocess
import warnings

import numpy as np
import pandas as pd
import pytest

from pluralign._errors import DroppedRowsWarning, PluralignWarning
from pluralign.data import Scale, Study
from pluralign.data._simulate import simulate_study
from pluralign.models import (
    CONTRAST_TEST_COLUMNS,
    LRT_COLUMNS,
    VARIANCE_PARTITION_COLUMNS,
    compare,
    contrast_test,
    fit_mixed,
    variance_partition,
)

REF = {"gender": "she/her", "ideology": "liberal"}
FULL = "rating ~ gender + ideology"


def _r_name(column: str) -> str:
    return "(Intercept)" if column == "Intercept" else column.replace("[T.", "").replace("]", "")


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


R_SCRIPT = r"""
suppressMessages(library(lmerTest))
dir <- commandArgs(trailingOnly = TRUE)[1]
d <- read.csv(file.path(dir, "data.csv"), stringsAsFactors = FALSE)
d$gender <- relevel(factor(d$gender), "she/her")
d$ideology <- relevel(factor(d$ideology), "liberal")
d$rater <- factor(d$rater); d$item <- factor(d$item)
for (reml in c(TRUE, FALSE)) {
  m <- lmer(rating ~ gender + ideology + (1 | rater) + (1 | item), d, REML = reml)
  tab <- as.data.frame(coef(summary(m)))
  tab$name <- rownames(tab)
  tag <- if (reml) "reml" else "ml"
  write.csv(tab, file.path(dir, paste0("coef_", tag, ".csv")), row.names = FALSE)
  L <- rbind(c(0, 1, 0, -1, 0, 0), c(0, 0, 0, 0, 1, -1))
  ct <- contest(m, L, joint = FALSE)
  write.csv(as.data.frame(ct), file.path(dir, paste0("contest_", tag, ".csv")), row.names = FALSE)
}
m <- lmer(rating ~ gender + ideology + (1 | rater) + (1 | item), d)
kr <- as.data.frame(summary(m, ddf = "Kenward-Roger")$coefficients)
kr$name <- rownames(kr)
write.csv(kr, file.path(dir, "coef_kr.csv"), row.names = FALSE)
m0 <- lmer(rating ~ gender + (1 | rater) + (1 | item), d)
m1 <- lmer(rating ~ gender + ideology + (1 | rater) + (1 | item), d)
a <- suppressMessages(anova(m0, m1))
write.csv(as.data.frame(a), file.path(dir, "anova.csv"), row.names = FALSE)
"""


@pytest.fixture(scope="module")
def study():
    return simulate_study(
        n_raters=150,
        n_prompts=20,
        items_per_rater=8,
        dimensions=["toxicity"],
        seed=4,
        missing_share=0.0,
    ).study


@pytest.fixture(scope="module")
def fits(study):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DroppedRowsWarning)
        return {
            "reml": fit_mixed(study, FULL, reference=REF),
            "ml": fit_mixed(study, FULL, reference=REF, reml=False),
            "small": fit_mixed(study, "rating ~ gender", reference={"gender": "she/her"}),
        }


@pytest.fixture(scope="module")
def lmertest(fits, tmp_path_factory):
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript is not installed: cannot compare with lmerTest")
    probe = subprocess.run(
        ["Rscript", "-e", "suppressMessages(library(lmerTest))"], capture_output=True, timeout=120
    )
    if probe.returncode != 0:
        pytest.skip("the R package lmerTest is not installed (install.packages('lmerTest'))")
    tmp = tmp_path_factory.mktemp("lmertest")
    cols = ["rater", "item", "gender", "ideology", "rating"]
    fits["reml"].design("toxicity").data[cols].to_csv(tmp / "data.csv", index=False)
    (tmp / "fit.R").write_text(R_SCRIPT)
    proc = subprocess.run(
        ["Rscript", str(tmp / "fit.R"), str(tmp)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return tmp


# ----------------------------------------------------------------------------- Satterthwaite
@pytest.mark.needs_r
@pytest.mark.parametrize("crit", ["reml", "ml"])
def test_satterthwaite_matches_lmertest(fits, lmertest, crit):
    fit = fits[crit]
    r = pd.read_csv(lmertest / f"coef_{crit}.csv").set_index("name")
    ours = fit.summary(df="satterthwaite").query("kind == 'fixed'")
    names = [_r_name(c) for c in ours["parameter"]]
    assert _rel(ours["df"], r.loc[names, "df"]) < 1e-4  # required: 1e-3
    assert _rel(ours["std_error"], r.loc[names, "Std. Error"]) < 1e-4
    assert _rel(ours["p_value"], r.loc[names, "Pr(>|t|)"]) < 1e-3
    assert set(ours["test"]) == {"t (Satterthwaite)"}
    # effects() carries the same tests, contrast by contrast
    eff = fit.effects(scale="link", df="satterthwaite")
    coef = fit.terms.set_index(["term", "level"])["coefficient"]
    eff_names = [_r_name(coef[(t, lv)]) for t, lv in zip(eff["term"], eff["level"], strict=True)]
    assert _rel(eff["df"], r.loc[eff_names, "df"]) < 1e-4
    assert _rel(eff["p_value"], r.loc[eff_names, "Pr(>|t|)"]) < 1e-3


@pytest.mark.needs_r
def test_kenward_roger_matches_pbkrtest(fits, lmertest):
    r = pd.read_csv(lmertest / "coef_kr.csv").set_index("name")
    ours = fits["reml"].summary(df="kenward-roger").query("kind == 'fixed'")
    names = [_r_name(c) for c in ours["parameter"]]
    assert _rel(ours["df"], r.loc[names, "df"]) < 1e-4
    assert _rel(ours["std_error"], r.loc[names, "Std. Error"]) < 1e-5  # adjusted SE
    assert _rel(ours["p_value"], r.loc[names, "Pr(>|t|)"]) < 1e-3
    assert set(ours["test"]) == {"t (Kenward-Roger)"}


@pytest.mark.needs_r
@pytest.mark.parametrize("crit", ["reml", "ml"])
def test_contrast_test_matches_lmertest_contest(fits, lmertest, crit):
    fit = fits[crit]
    L = np.array([[0, 1, 0, -1, 0, 0], [0, 0, 0, 0, 1, -1]], dtype=float)
    ours = contrast_test(fit, L, ci_prob=0.95)
    r = pd.read_csv(lmertest / f"contest_{crit}.csv")
    assert tuple(ours.columns) == CONTRAST_TEST_COLUMNS
    assert _rel(ours["estimate"], r["Estimate"]) < 1e-4
    assert _rel(ours["df"], r["df"]) < 1e-4
    assert _rel(ours["p_value"], r["Pr(>|t|)"]) < 1e-3
    # the same contrasts named by coefficient
    cols = fit.design("toxicity").columns
    named = pd.DataFrame(L, columns=cols, index=["a", "b"])
    assert np.allclose(contrast_test(fit, named)["df"], ours["df"])


def test_wald_stays_available_and_labelled(fits):
    fit = fits["reml"]
    wald = fit.effects(scale="link")
    t = fit.effects(scale="link", df="satterthwaite")
    assert set(wald["test"]) == {"Wald z"} and wald["df"].isna().all()
    assert set(t["test"]) == {"t (Satterthwaite)"} and (t["df"] > 1).all()
    # same estimate and SE; t intervals are wider and its p-values larger than z's
    assert np.allclose(wald["estimate"], t["estimate"])
    assert ((t["ci_high"] - t["ci_low"]) > (wald["ci_high"] - wald["ci_low"])).all()
    assert (t["p_value"] >= wald["p_value"]).all()
    assert "df" not in fit.summary().columns


def test_bad_df_requests_are_explained(fits):
    with pytest.raises(ValueError, match="REML"):
        fits["ml"].effects(scale="link", df="kenward-roger")
    with pytest.raises(ValueError, match="df must be"):
        fits["reml"].summary(df="t")
    with pytest.raises(KeyError, match="does not have"):
        contrast_test(fits["reml"], {"x": {"gender[T.nope]": 1}})
    binary = simulate_study(
        scale_points=2, n_raters=60, n_prompts=10, dimensions=["helpfulness"], seed=5
    ).study
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_mixed(binary, "rating ~ gender", family="binomial")
    with pytest.raises(ValueError, match="linear mixed model"):
        fit.effects(scale="link", df="satterthwaite")


# ----------------------------------------------------------------------------- compare
@pytest.mark.needs_r
def test_compare_matches_anova(fits, lmertest):
    ours = compare(fits["reml"], fits["small"])  # any order: sorted by npar as anova
    r = pd.read_csv(lmertest / "anova.csv")
    assert tuple(ours.columns) == LRT_COLUMNS
    assert ours["model"].tolist() == ["rating ~ gender", FULL]
    assert ours["criterion"].tolist() == ["ML (refitted)"] * 2
    assert "refitted by ML" in ours.attrs["note"]
    assert ours["npar"].tolist() == r["npar"].tolist()
    for ours_col, r_col in (("loglik", "logLik"), ("aic", "AIC"), ("bic", "BIC")):
        assert np.max(np.abs(ours[ours_col] - r[r_col])) < 1e-4
    assert abs(ours["chisq"].iloc[1] - r["Chisq"].iloc[1]) < 1e-4
    assert ours["df"].iloc[1] == r["Df"].iloc[1]
    assert abs(ours["p_value"].iloc[1] - r["Pr(>Chisq)"].iloc[1]) < 1e-3


def test_compare_keeps_reml_for_same_fixed_effects_and_checks_data(fits, study):
    same = compare(fits["small"], fits["small"], names=["a", "b"])
    assert same["criterion"].tolist() == ["REML", "REML"]
    assert same["chisq"].iloc[1] == 0 and np.isnan(same["p_value"].iloc[1])
    assert same["loglik"].iloc[0] == pytest.approx(fits["small"].fits["toxicity"].fit.loglik)
    other = fit_mixed(study.subset(raters=study.raters["rater"][:100]), "rating ~ gender")
    with pytest.raises(ValueError, match="different ones"):
        compare(fits["small"], other)
    with pytest.raises(ValueError, match="at least two"):
        compare(fits["small"])


def test_compare_warns_when_models_are_not_nested(study):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DroppedRowsWarning)
        a = fit_mixed(study, "rating ~ gender", reml=False)
        b = fit_mixed(study, "rating ~ ideology", reml=False)
    with pytest.warns(PluralignWarning, match="not nested"):
        compare(a, b)


@pytest.mark.slow
def test_lrt_holds_its_level_under_the_null():
    """Simulated truth without a batch effect: LRT p-values are about uniform."""
    rng = np.random.default_rng(7)
    ps = []
    for _ in range(30):
        study = _gaussian_study(rng, (0.6, 0.5, 1.0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m0 = fit_mixed(study, "rating ~ g", reml=False, progressbar=False)
            m1 = fit_mixed(study, "rating ~ g + batch", reml=False, progressbar=False)
        ps.append(compare(m0, m1)["p_value"].iloc[1])
    ps = np.array(ps)
    assert np.mean(ps < 0.05) <= 0.2
    assert 0.3 < np.mean(ps) < 0.7


# ----------------------------------------------------------------------------- variance partition
def _gaussian_study(rng, sds, nr=60, ni=15, per=8, effect_g=0.5):
    """Crossed normal ratings with known rater, item and residual SDs (one dimension ``d``)."""
    g = rng.choice(["a", "b"], nr)
    batch = rng.choice(["x", "y"], nr)
    br, bi = rng.normal(0, sds[0], nr), rng.normal(0, sds[1], ni)
    rows = []
    for r in range(nr):
        for i in rng.choice(ni, per, replace=False):
            mu = 3.0 + effect_g * (g[r] == "b") + br[r] + bi[i]
            rows.append((f"r{r}", f"i{i}", "d", mu + rng.normal(0, sds[2])))
    ratings = pd.DataFrame(rows, columns=["rater", "item", "dimension", "rating"])
    raters = pd.DataFrame({"rater": [f"r{r}" for r in range(nr)], "g": g, "batch": batch})
    return Study.from_frames(ratings, raters, scales={"d": Scale("d", -20, 20)}, continuous=True)


def test_variance_partition_table(fits):
    vp = variance_partition(fits["reml"], n_boot=30, seed=2, progress=False)
    assert tuple(vp.columns) == VARIANCE_PARTITION_COLUMNS
    f = fits["reml"].fits["toxicity"]
    assert vp["variance"].tolist() == pytest.approx([f.var_rater, f.var_item, f.fit.sigma2])
    assert vp["share"].sum() == pytest.approx(1.0)
    assert (vp["ci_low"] <= vp["variance"]).all() and (vp["variance"] <= vp["ci_high"]).all()
    assert (vp["share_ci_low"] < vp["share_ci_high"]).all()
    again = variance_partition(fits["reml"], n_boot=30, seed=2, progress=False)
    pd.testing.assert_frame_equal(vp, again)


@pytest.mark.slow
def test_variance_partition_interval_covers_the_truth():
    """Coverage of the 80% intervals of the rater share (ICC) and rater variance."""
    sds = (0.8, 0.6, 1.0)
    truth = sds[0] ** 2 / sum(s**2 for s in sds)
    rng = np.random.default_rng(12)
    share_hits = var_hits = 0
    widths = []
    n_rep = 20
    for rep in range(n_rep):
        fit = fit_mixed(_gaussian_study(rng, sds), "rating ~ g", progressbar=False)
        vp = variance_partition(fit, n_boot=39, ci_prob=0.8, seed=rep, progress=False)
        rater = vp.set_index("component").loc["rater"]
        share_hits += rater["share_ci_low"] <= truth <= rater["share_ci_high"]
        var_hits += rater["ci_low"] <= sds[0] ** 2 <= rater["ci_high"]
        widths.append(rater["share_ci_high"] - rater["share_ci_low"])
    # nominal 0.8; with 20 replications 0.55 or more holds with ~99% probability when calibrated,
    # and the intervals must be informative (not covering by being wide)
    assert share_hits / n_rep >= 0.55 and var_hits / n_rep >= 0.55
    assert np.mean(widths) < 0.25
