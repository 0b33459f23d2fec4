"""fit_mixed: agreement with lme4 (lmer, glmer) and statsmodels, recovery and coverage."""

from __future__ import annotations

import shutil
import subprocess
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from pluralign._errors import ConvergenceWarning, DroppedRowsWarning
from pluralign.data import Scale, Study
from pluralign.data._simulate import REFERENCE, simulate_study
from pluralign.models import MIXED_SUMMARY_COLUMNS, compare_groups, fit_mixed
from pluralign.models._lmm import fit_lmm

REF = {"gender": "she/her", "ideology": "liberal"}


def _r_name(column: str) -> str:
    """Our column name ``gender[T.he/him]`` as lme4 names it (``genderhe/him``)."""
    return "(Intercept)" if column == "Intercept" else column.replace("[T.", "").replace("]", "")


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-8)))


# --------------------------------------------------------------------------------- R (lme4)
R_SCRIPT = r"""
suppressMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]
out <- function(m, name, resid = TRUE) {
  vc <- as.data.frame(VarCorr(m))
  v <- setNames(vc$vcov, vc$grp)
  se <- if (isGLMM(m)) sqrt(diag(as.matrix(vcov(m, use.hessian = TRUE))))
        else sqrt(diag(as.matrix(vcov(m))))
  fe <- data.frame(name = names(fixef(m)), estimate = unname(fixef(m)), se = unname(se))
  write.csv(fe, file.path(dir, paste0(name, "_fixef.csv")), row.names = FALSE)
  stats <- data.frame(name = c("var_rater", "var_item", "var_resid", "crit"),
                      value = c(v["rater"], v["item"], if (resid) v["Residual"] else NA,
                                -2 * as.numeric(logLik(m))))
  write.csv(stats, file.path(dir, paste0(name, "_stats.csv")), row.names = FALSE)
  re <- ranef(m)
  write.csv(data.frame(level = rownames(re$rater), b = re$rater[, 1]),
            file.path(dir, paste0(name, "_ranef_rater.csv")), row.names = FALSE)
}
prep <- function(d) {
  d$gender <- relevel(factor(d$gender), "she/her")
  d$ideology <- relevel(factor(d$ideology), "liberal")
  d$rater <- factor(d$rater); d$item <- factor(d$item)
  d
}
d <- prep(read.csv(file.path(dir, "gaussian.csv"), stringsAsFactors = FALSE))
f <- rating ~ gender + ideology + (1 | rater) + (1 | item)
out(lmer(f, d, REML = TRUE), "reml")
out(lmer(f, d, REML = FALSE), "ml")
b <- prep(read.csv(file.path(dir, "binary.csv"), stringsAsFactors = FALSE))
# PIRLS to convergence: the default tolPwrss leaves ~0.5 % error in the Hessian-based SEs
out(glmer(f, b, family = binomial, control = glmerControl(tolPwrss = 1e-13)), "glmer",
    resid = FALSE)
"""


def _have_lme4() -> bool:
    if shutil.which("Rscript") is None:
        return False
    proc = subprocess.run(
        ["Rscript", "-e", "suppressMessages(library(lme4))"], capture_output=True, timeout=120
    )
    return proc.returncode == 0


@pytest.fixture(scope="module")
def studies():
    gauss = simulate_study(
        n_raters=400, n_prompts=60, items_per_rater=10, dimensions=["toxicity"], seed=4
    ).study
    binary = simulate_study(
        scale_points=2,
        n_raters=200,
        n_prompts=30,
        items_per_rater=8,
        dimensions=["helpfulness"],
        seed=5,
        missing_share=0.0,
    ).study
    return gauss, binary


@pytest.fixture(scope="module")
def r_results(studies, tmp_path_factory):
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript is not installed: cannot compare with lme4")
    if not _have_lme4():
        pytest.skip("the R package lme4 is not installed (install.packages('lme4'))")
    gauss, binary = studies
    tmp = tmp_path_factory.mktemp("lme4")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DroppedRowsWarning)
        fits = {
            "reml": fit_mixed(gauss, "rating ~ gender + ideology", reference=REF),
            "ml": fit_mixed(gauss, "rating ~ gender + ideology", reml=False, reference=REF),
            "glmer": fit_mixed(
                binary, "rating ~ gender + ideology", family="binomial", reference=REF
            ),
        }
    cols = ["rater", "item", "gender", "ideology", "rating"]
    fits["reml"].design("toxicity").data[cols].to_csv(tmp / "gaussian.csv", index=False)
    fits["glmer"].design("helpfulness").data[cols].to_csv(tmp / "binary.csv", index=False)
    (tmp / "fit.R").write_text(R_SCRIPT)
    proc = subprocess.run(
        ["Rscript", str(tmp / "fit.R"), str(tmp)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return fits, tmp


def _compare(fit, tmp, name, tol):
    dim = fit.dimensions[0]
    f = fit.fits[dim]
    r_fe = pd.read_csv(tmp / f"{name}_fixef.csv").set_index("name")
    names = [_r_name(c) for c in f.design.columns]
    # relative to max(|estimate|, SE): a coefficient near 0 has no meaningful relative error
    scale = np.maximum(np.abs(r_fe.loc[names, "estimate"]), r_fe.loc[names, "se"])
    assert np.max(np.abs(f.fit.beta - r_fe.loc[names, "estimate"]) / scale) < tol
    assert _rel(f.fit.se, r_fe.loc[names, "se"]) < tol
    st = pd.read_csv(tmp / f"{name}_stats.csv").set_index("name")["value"]
    assert _rel([f.var_rater, f.var_item], [st["var_rater"], st["var_item"]]) < tol
    if fit.family == "gaussian":
        assert _rel(f.fit.sigma2, st["var_resid"]) < tol
    # same criterion: ours is at least as low as lme4's (up to rounding)
    assert f.fit.deviance <= st["crit"] + 1e-6 * abs(st["crit"])
    assert abs(f.fit.deviance - st["crit"]) < tol * 1e-2 * abs(st["crit"])
    re = pd.read_csv(tmp / f"{name}_ranef_rater.csv")
    ours = pd.Series(f.fit.b1, index=f.design.rater_levels.astype(str))
    assert np.max(np.abs(ours.loc[re["level"].astype(str)].to_numpy() - re["b"])) < 10 * tol


@pytest.mark.needs_r
def test_lmer_reml_matches_lme4(r_results):
    fits, tmp = r_results
    _compare(fits["reml"], tmp, "reml", 1e-4)  # required: 1e-3


@pytest.mark.needs_r
def test_lmer_ml_matches_lme4(r_results):
    fits, tmp = r_results
    _compare(fits["ml"], tmp, "ml", 1e-4)


@pytest.mark.needs_r
def test_glmer_laplace_matches_lme4(r_results):
    # glmer's BOBYQA stops at ~1e-4 relative; both minimise the same Laplace deviance
    fits, tmp = r_results
    _compare(fits["glmer"], tmp, "glmer", 5e-3)


# --------------------------------------------------------------------------------- statsmodels
def _crossed_frame(seed=5, nr=60, ni=15, per=8, beta=(2.0, 0.4, -0.3), sd=(0.7, 0.9, 1.0)):
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b", "c"], nr)
    br, bi = rng.normal(0, sd[0], nr), rng.normal(0, sd[1], ni)
    rows = []
    for r in range(nr):
        for i in rng.choice(ni, per, replace=False):
            mu = beta[0] + beta[1] * (g[r] == "b") + beta[2] * (g[r] == "c") + br[r] + bi[i]
            rows.append((r, i, g[r], mu + rng.normal(0, sd[2])))
    return pd.DataFrame(rows, columns=["rater", "item", "g", "rating"])


def test_statsmodels_crossed_mixedlm_agrees():
    import statsmodels.formula.api as smf

    df = _crossed_frame()
    df["all"] = 1
    # crossed: ONE group holding every row, two variance components (not groups=rater: nested)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sm = smf.mixedlm(
            "rating ~ g",
            df,
            groups="all",
            vc_formula={"rater": "0 + C(rater)", "item": "0 + C(item)"},
        ).fit(reml=True, method=["lbfgs"])
    X = np.column_stack([np.ones(len(df)), df["g"] == "b", df["g"] == "c"]).astype(float)
    fit = fit_lmm(X, df["rating"].to_numpy(), df["rater"].to_numpy(), df["item"].to_numpy())
    vc = dict(zip(sm.model.exog_vc.names, sm.vcomp, strict=True))
    assert _rel(fit.beta, sm.fe_params) < 1e-4
    assert _rel(fit.se, sm.bse_fe) < 1e-4
    # statsmodels stops earlier than lme4 (variances agree to ~1e-4; ours match lmer to 1e-5)
    assert _rel([fit.var1, fit.var2, fit.sigma2], [vc["rater"], vc["item"], sm.scale]) < 1e-3


# --------------------------------------------------------------------------------- recovery
@pytest.fixture(scope="module")
def default_fit():
    sim = simulate_study(seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DroppedRowsWarning)
        fit = fit_mixed(
            sim.study,
            "rating ~ gender + age + race + ideology + country",
            reference={k: v for k, v in REFERENCE.items() if k != "party"},
            progressbar=False,
        )
    return sim, fit


def test_recovers_rating_scale_effects_of_default_study(default_fit):
    """A gaussian LMM on ordinal-generated ratings recovers the RATING-scale relative differences.

    The simulator calibrates its effects as relative differences of standardised marginal mean
    ratings; our marginal means (counterfactual averages over the fitted rows) estimate the same
    quantity because demographics are drawn independently.
    """
    sim, fit = default_fit
    eff = fit.effects()
    truth = sim.truth.fixed_effects
    m = eff.merge(truth, on=["dimension", "term", "level"], suffixes=("", "_true"), validate="1:1")
    # collapsed race coding adds "Multiracial", which has no single true effect
    unmatched = set(eff["level"]) - set(m["level"])
    assert unmatched == {"Multiracial"} and len(m) == len(eff) - len(fit.dimensions)
    assert (m["reference"] == m["reference_true"]).all()
    covered = (m["relative_ci_low"] <= m["relative_pct_true"]) & (
        m["relative_pct_true"] <= m["relative_ci_high"]
    )
    real = m[m["relative_pct_true"] != 0]
    assert len(real) == 3  # toxicity/gender, emotional_awareness/race and /ideology
    assert covered[real.index].all(), real
    assert covered.mean() >= 0.9
    assert (real["p_adjusted"] < 0.001).all()
    # the link-scale coefficient equals the rating-scale difference for the identity link
    np.testing.assert_allclose(eff["estimate"], eff["difference"], rtol=1e-9)


def test_diagnostics_and_summary_of_default_fit(default_fit):
    _, fit = default_fit
    diag = fit.diagnostics()
    assert diag.loc[diag["check"] == "converged", "ok"].all()
    assert (diag.loc[diag["check"] == "dropped_rows", "value"] > 0).all()
    summ = fit.summary()
    var = summ[summ["kind"] == "variance"]
    assert (var["estimate"] > 0).all()


@pytest.mark.slow
def test_interval_coverage_over_simulated_lmm_studies():
    """90% intervals (data generated by the LMM itself) cover the truth 85-95% of the time.

    Both the Wald intervals of the coefficients and the simulated rating-scale difference
    intervals are checked (60 studies × 3 coefficients; 1,000 studies gave 0.900/0.895/0.891).
    """
    beta = np.array([2.0, 0.4, -0.3])
    hits = []
    diff_hits = []
    for seed in range(60):
        df = _crossed_frame(seed=1000 + seed, nr=120, ni=30, per=10, beta=beta)
        ratings = df.assign(
            rater=df["rater"].astype(str), item=df["item"].astype(str), dimension="d"
        )
        raters = ratings.groupby("rater", as_index=False)["g"].first()
        study = Study.from_frames(
            ratings[["rater", "item", "dimension", "rating"]],
            raters,
            scales={"d": Scale("d", -10, 15)},
            continuous=True,
        )
        fit = fit_mixed(study, "rating ~ g", reference={"g": "a"}, n_draws=1000, seed=seed)
        f = fit.fits["d"].fit
        z = 1.6448536269514722
        hits.extend(np.abs(f.beta - beta) <= z * f.se)
        eff = fit.effects(ci_prob=0.9)
        truth = np.array([0.4, -0.3])
        diff_hits.extend((eff["difference_ci_low"] <= truth) & (truth <= eff["difference_ci_high"]))
    assert 0.85 <= np.mean(hits) <= 0.95
    assert 0.85 <= np.mean(diff_hits) <= 0.95


# --------------------------------------------------------------------------------- binomial
def test_binomial_recovers_log_odds():
    rng = np.random.default_rng(11)
    nr, ni = 300, 40
    g = rng.choice(["a", "b"], nr)
    br, bi = rng.normal(0, 0.6, nr), rng.normal(0, 0.9, ni)
    rows = []
    for r in range(nr):
        for i in rng.choice(ni, 15, replace=False):
            eta = -0.2 + 0.7 * (g[r] == "b") + br[r] + bi[i]
            rows.append((f"r{r}", f"i{i}", "d", float(rng.random() < expit(eta))))
    ratings = pd.DataFrame(rows, columns=["rater", "item", "dimension", "rating"])
    raters = pd.DataFrame({"rater": [f"r{r}" for r in range(nr)], "g": g})
    study = Study.from_frames(ratings, raters, scales={"d": Scale("d", 0, 1)})
    fit = fit_mixed(study, "rating ~ g", family="binomial", reference={"g": "a"})
    eff = fit.effects()
    row = eff.iloc[0]
    assert row["ci_low"] < 0.7 < row["ci_high"]
    assert row["odds_ratio"] == pytest.approx(np.exp(row["estimate"]))
    # rating-scale means are probabilities, integrated over the random effects
    mm = fit.marginal_means("g").set_index("g")["mean"]
    assert 0 < mm["a"] < mm["b"] < 1
    raw = ratings.merge(raters).groupby("g")["rating"].mean()
    assert mm["a"] == pytest.approx(raw["a"], abs=0.05)
    assert mm["b"] == pytest.approx(raw["b"], abs=0.05)
    with pytest.raises(ValueError, match="0/1"):
        ratings2 = ratings.assign(rating=ratings["rating"] + 1)
        fit_mixed(
            Study.from_frames(ratings2, raters, scales={"d": Scale("d", 1, 2)}),
            "rating ~ g",
            family="binomial",
        )


# --------------------------------------------------------------------------------- behaviour
@pytest.fixture(scope="module")
def small_fit():
    sim = simulate_study(
        n_raters=300,
        n_prompts=30,
        items_per_rater=8,
        dimensions=["toxicity", "helpfulness"],
        seed=9,
        missing_share=0.0,
        family="gaussian",
    )
    return fit_mixed(sim.study, "rating ~ gender + ideology", reference=REF, progressbar=False)


def test_cell_means_and_compare_groups_are_hand_computable(small_fit):
    fit = small_fit
    d = fit.design("toxicity")
    beta = fit.fits["toxicity"].fit.beta
    a = {"gender": "he/him", "ideology": "conservative"}
    b = {"gender": "she/her", "ideology": "liberal"}
    xa = d.transform(pd.DataFrame([a]))[0]
    xb = d.transform(pd.DataFrame([b]))[0]
    out = compare_groups(fit, a, b, dimension="toxicity")
    assert out.loc[0, "mean_a"] == pytest.approx(xa @ beta)
    assert out.loc[0, "difference"] == pytest.approx((xa - xb) @ beta)
    assert (
        out.loc[0, "difference_ci_low"]
        < out.loc[0, "difference"]
        < out.loc[0, "difference_ci_high"]
    )
    # a group fixing only gender averages ideology over the fitted rows
    mm = fit.marginal_means("gender").query("dimension == 'toxicity'").set_index("gender")["mean"]
    share = d.data["ideology"].value_counts(normalize=True)
    by_hand = sum(
        share[lv] * (d.transform(pd.DataFrame({"gender": ["he/him"], "ideology": [lv]}))[0] @ beta)
        for lv in share.index
    )
    assert mm["he/him"] == pytest.approx(by_hand)


def test_poststratify_weights_cells_by_share(small_fit):
    fit = small_fit
    mm = fit.marginal_means("gender").set_index(["dimension", "gender"])["mean"]
    target = {"gender": {"she/her": 0.6, "he/him": 0.4}}
    ps = fit.poststratify(target).set_index("dimension")
    for dim in fit.dimensions:
        expected = 0.6 * mm[(dim, "she/her")] + 0.4 * mm[(dim, "he/him")]
        assert ps.loc[dim, "estimate"] == pytest.approx(expected)
        assert ps.loc[dim, "ci_low"] < expected < ps.loc[dim, "ci_high"]
    frame = pd.DataFrame({"gender": ["she/her", "he/him"], "share": [0.6, 0.4]})
    pd.testing.assert_frame_equal(fit.poststratify(frame), fit.poststratify(target))


def test_predict_adds_blups(small_fit):
    fit = small_fit
    pred = fit.predict()
    f = fit.fits["toxicity"]
    rows = pred[pred["dimension"] == "toxicity"]
    fixed = f.design.X @ f.fit.beta
    blup = f.fit.b1[f.design.rater_codes] + f.fit.b2[f.design.item_codes]
    np.testing.assert_allclose(rows["prediction"], fixed + blup)
    new = pd.DataFrame({"gender": ["he/him"], "ideology": ["centre"], "rater": ["nobody"]})
    out = fit.predict(new)
    assert len(out) == 2 and set(out["dimension"]) == set(fit.dimensions)


def test_multiplicity_correction_over_declared_set(small_fit):
    from statsmodels.stats.multitest import multipletests

    eff = small_fit.effects()
    np.testing.assert_allclose(eff["p_adjusted"], multipletests(eff["p_value"], method="holm")[1])
    only = small_fit.effects(multiplicity=["gender"], correction="fdr_bh")
    g = only["term"] == "gender"
    np.testing.assert_allclose(
        only.loc[g, "p_adjusted"], multipletests(only.loc[g, "p_value"], method="fdr_bh")[1]
    )
    assert only.loc[~g, "p_adjusted"].isna().all()


def test_link_scale_effects_are_the_wald_coefficients(small_fit):
    fit = small_fit
    link = fit.effects(scale="link", ci_prob=0.9, correction="none")
    summary = fit.summary()
    assert tuple(summary.columns) == MIXED_SUMMARY_COLUMNS
    fixed = summary.query("kind == 'fixed'").set_index(["dimension", "parameter"])
    terms = fit.terms.set_index(["dimension", "term", "level"])
    for _, row in link.iterrows():
        coef = terms.loc[(row["dimension"], row["term"], row["level"]), "coefficient"]
        ref = fixed.loc[(row["dimension"], coef)]
        assert row["estimate"] == pytest.approx(ref["estimate"])
        assert row["std_error"] == pytest.approx(ref["std_error"])
        assert row["p_value"] == pytest.approx(ref["p_value"])
        assert row["p_adjusted"] == pytest.approx(ref["p_value"])
        half = 1.6448536 * ref["std_error"]
        assert row["ci_high"] - row["estimate"] == pytest.approx(half, rel=1e-6)
    with pytest.raises(ValueError, match="scale must be one of"):
        fit.effects(scale="response")


def test_public_functions_are_keyword_only_after_the_first_arguments(small_fit):
    study = simulate_study(n_raters=20, n_prompts=4, seed=1, dimensions=["toxicity"]).study
    with pytest.raises(TypeError):
        fit_mixed(study, "rating ~ gender", "toxicity")
    with pytest.raises(TypeError):
        compare_groups(small_fit, {"gender": "he/him"}, None, "toxicity")


def test_singular_fit_is_detected_and_warned():
    rng = np.random.default_rng(3)
    nr, ni = 80, 20
    rows = [
        (f"r{r}", f"i{i}", "d", 3 + rng.normal(0, 0.5) * (r == 0) + rng.normal())
        for r in range(nr)
        for i in rng.choice(ni, 10, replace=False)
    ]
    ratings = pd.DataFrame(rows, columns=["rater", "item", "dimension", "rating"])
    raters = pd.DataFrame({"rater": [f"r{r}" for r in range(nr)], "g": rng.choice(["a", "b"], nr)})
    study = Study.from_frames(ratings, raters, scales={"d": Scale("d", -5, 10)}, continuous=True)
    with pytest.warns(ConvergenceWarning, match="singular"):
        fit = fit_mixed(study, "rating ~ g")
    diag = fit.diagnostics()
    sing = diag[diag["check"] == "singular_fit"]
    assert not sing["ok"].all()
