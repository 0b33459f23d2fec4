"""Mixed-model inference on real ratings against R: lme4 (random slopes), lmerTest (Satterthwaite,
Kenward–Roger) and ``anova()`` likelihood-ratio tests, on small POPQUORN and MultiPICo subsets.

The simulated-data tests (test_models_slopes.py, test_models_inference.py) check the same
algorithms on data that follow the model; here the data are real (skewed 1–5 ratings, 0/1
irony labels, unbalanced groups, items rated by few raters), with one R run of a few seconds.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings

import numpy as np
import pandas as pd
import pytest

from pluralign._errors import ConvergenceWarning, DroppedRowsWarning
from pluralign.models import compare, fit_mixed

#: One R run of about 10 s of CPU (lme4, lmerTest, pbkrtest) and a dozen fits of our own.
pytestmark = pytest.mark.slow

REF = {"gender": "Woman", "race": "White"}
#: Fits of the POPQUORN subset (name → formula; REML unless named ``_ml``).
POPQUORN_FITS = {
    "gender_slope": "rating ~ gender + (1|rater) + (1 + gender|item)",
    "race_slope": "rating ~ race + (1|rater) + (1 + race|item)",
    "race_slope_gender": "rating ~ gender + race + (1|rater) + (1 + race|item)",
    "race": "rating ~ race",
    "gender": "rating ~ gender",
    "gender_race": "rating ~ gender + race",
}
#: Items of each subset: Kenward–Roger in pbkrtest works with dense n × n matrices (minutes at
#: 3,000 ratings), so the t tests use fewer items than the slopes and likelihood-ratio tests.
N_ITEMS = {"popquorn": 400, "popquorn_t": 150, "multipico": 200}

R_SCRIPT = r"""
suppressMessages(library(lmerTest))
dir <- commandArgs(trailingOnly = TRUE)[1]
slopes <- function(m, name) {
  write.csv(data.frame(name = names(fixef(m)), estimate = unname(fixef(m)),
                       se = unname(sqrt(diag(as.matrix(vcov(m)))))),
            file.path(dir, paste0(name, "_fixef.csv")), row.names = FALSE)
  vc <- as.data.frame(VarCorr(m))
  write.csv(vc[, c("grp", "var1", "var2", "sdcor")], file.path(dir, paste0(name, "_vc.csv")),
            row.names = FALSE)
  write.csv(data.frame(crit = -2 * as.numeric(logLik(m)), singular = isSingular(m)),
            file.path(dir, paste0(name, "_stats.csv")), row.names = FALSE)
}
tests <- function(m, name) {
  for (ddf in c("Satterthwaite", "Kenward-Roger")) {
    tab <- as.data.frame(summary(m, ddf = ddf)$coefficients)
    tab$name <- rownames(tab)
    write.csv(tab, file.path(dir, paste0(name, "_", ddf, ".csv")), row.names = FALSE)
  }
}
lrt <- function(a, name) {
  write.csv(as.data.frame(a), file.path(dir, paste0(name, "_anova.csv")), row.names = FALSE)
}
p <- read.csv(file.path(dir, "popquorn.csv"), stringsAsFactors = FALSE)
p$gender <- relevel(factor(p$gender), "Woman")
p$race <- relevel(factor(p$race), "White")
p$rater <- factor(p$rater); p$item <- factor(p$item)
ctl <- lmerControl(check.conv.singular = "ignore")
slopes(lmer(rating ~ gender + (1 | rater) + (1 + gender | item), p, control = ctl), "gender_slope")
rs <- lmer(rating ~ race + (1 | rater) + (1 + race | item), p)
slopes(rs, "race_slope")
rsg <- lmer(rating ~ gender + race + (1 | rater) + (1 + race | item), p)
ri <- lmer(rating ~ race + (1 | rater) + (1 | item), p)
gr <- lmer(rating ~ gender + race + (1 | rater) + (1 | item), p)
lrt(suppressMessages(anova(lmer(rating ~ gender + (1 | rater) + (1 | item), p), gr)), "fixed")
lrt(suppressMessages(anova(ri, rs, refit = FALSE)), "slope")
lrt(suppressMessages(anova(rs, rsg)), "slope_fixed")
p <- read.csv(file.path(dir, "popquorn_t.csv"), stringsAsFactors = FALSE)
p$gender <- relevel(factor(p$gender), "Woman")
p$race <- relevel(factor(p$race), "White")
p$rater <- factor(p$rater); p$item <- factor(p$item)
tests(lmer(rating ~ gender + race + (1 | rater) + (1 | item), p), "popquorn")
m <- read.csv(file.path(dir, "multipico.csv"), stringsAsFactors = FALSE)
m$gender <- relevel(factor(m$gender), "Male")
m$rater <- factor(m$rater); m$item <- factor(m$item)
mp <- lmer(rating ~ gender + age + (1 | rater) + (1 | item), m)
tests(mp, "multipico")
lrt(suppressMessages(anova(lmer(rating ~ gender + (1 | rater) + (1 | item), m), mp)), "pico")
"""


def _r_name(column: str) -> str:
    """Our coefficient name as lme4 writes it (``race[T.Asian]`` → ``raceAsian``)."""
    return "(Intercept)" if column == "Intercept" else column.replace("[T.", "").replace("]", "")


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


def _subsets():
    """POPQUORN offensiveness, women and men who are White or Black: the first 400 items
    (2,986 ratings by 224 raters) and the first 150 (1,110 ratings by 222 raters); MultiPICo
    irony (0/1, as a linear probability model), the first 200 items, raters with gender and age
    (972 ratings by 88 raters)."""
    from pluralign.data import find_data, load_multipico, load_popquorn

    try:
        find_data("popquorn/offensiveness_raw_data.csv")
        find_data("multipico")
    except FileNotFoundError as err:
        pytest.skip(f"real data not available: {err}")

    def first_items(study, n):
        return study.subset(items=sorted(study.items["item"].astype(str))[:n])

    pop = load_popquorn()
    keep = pop.raters.query(
        "gender in ['Woman', 'Man'] and race in ['White', 'Black or African American']"
    )["rater"]
    pop = pop.subset(raters=keep)
    pico = load_multipico()
    known = pico.raters.query("gender in ['Male', 'Female'] and age.notna()")["rater"]
    pico = pico.subset(raters=known)
    return {
        "popquorn": first_items(pop, N_ITEMS["popquorn"]),
        "popquorn_t": first_items(pop, N_ITEMS["popquorn_t"]),
        "multipico": first_items(pico, N_ITEMS["multipico"]),
    }


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript is not installed: cannot compare with lme4 / lmerTest")
    probe = "suppressMessages({library(lmerTest); library(pbkrtest)})"
    if subprocess.run(["Rscript", "-e", probe], capture_output=True, timeout=120).returncode:
        pytest.skip("the R packages lmerTest and pbkrtest are needed (install.packages(...))")
    data = _subsets()
    pop, pico = data["popquorn"], data["multipico"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DroppedRowsWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)  # the gender slope is singular
        fits = {
            name: fit_mixed(
                pop, formula, reference={k: v for k, v in REF.items() if k in formula}, n_draws=50
            )
            for name, formula in POPQUORN_FITS.items()
        }
        fits["popquorn_t"] = fit_mixed(
            data["popquorn_t"], "rating ~ gender + race", reference=REF, n_draws=50
        )
        fits["multipico"] = fit_mixed(
            pico, "rating ~ gender + age", reference={"gender": "Male"}, n_draws=50
        )
        fits["multipico_gender"] = fit_mixed(
            pico, "rating ~ gender", reference={"gender": "Male"}, n_draws=50
        )
    tmp = tmp_path_factory.mktemp("r_real")
    cols = ["rater", "item", "gender", "race", "rating"]
    fits["gender_race"].design("offensiveness").data[cols].to_csv(tmp / "popquorn.csv", index=False)
    fits["popquorn_t"].design("offensiveness").data[cols].to_csv(
        tmp / "popquorn_t.csv", index=False
    )
    cols = ["rater", "item", "gender", "age", "rating"]
    fits["multipico"].design("irony").data[cols].to_csv(tmp / "multipico.csv", index=False)
    (tmp / "fit.R").write_text(R_SCRIPT)
    proc = subprocess.run(
        ["Rscript", str(tmp / "fit.R"), str(tmp)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return fits, tmp


# ------------------------------------------------------------------------- random slopes
def _variance_components(fit, tmp, name):
    """Our SDs / correlations and lme4's, in lme4's VarCorr order."""
    ours = fit.variance_components().set_index(["factor", "kind", "parameter"])["estimate"]
    theirs = pd.read_csv(tmp / f"{name}_vc.csv", keep_default_na=False)
    coef = {_r_name(c): c for c in fit.design(fit.dimensions[0]).columns}
    keys = []
    for grp, v1, v2 in zip(theirs["grp"], theirs["var1"], theirs["var2"], strict=True):
        if grp == "Residual":
            keys.append(("", "sd", "Residual"))
        elif v2 in ("", "NA"):
            keys.append((grp, "sd", coef[v1]))
        else:
            keys.append((grp, "cor", f"{coef[v1]}, {coef[v2]}"))
    assert len(keys) == len(ours)
    return ours.loc[keys].to_numpy(), theirs["sdcor"].to_numpy(dtype=float)


@pytest.mark.needs_r
@pytest.mark.parametrize("name", ["race_slope", "gender_slope"])
def test_random_slopes_match_lmer(real, name):
    """``(1 + race | item)`` (SD 0.37, correlation ≈ 0) to 1e-4 / 1e-3; ``(1 + gender | item)``
    is singular on these data (correlation −1) in both, with the same fixed effects and REML
    criterion."""
    fits, tmp = real
    fit = fits[name]
    f = fit.fits["offensiveness"].fit
    r = pd.read_csv(tmp / f"{name}_fixef.csv")
    assert [_r_name(c) for c in fit.design("offensiveness").columns] == r["name"].tolist()
    scale = np.maximum(np.abs(r["estimate"]), r["se"])
    assert np.max(np.abs(f.beta - r["estimate"]) / scale) < 1e-4
    assert _rel(f.se, r["se"]) < 1e-3
    stats = pd.read_csv(tmp / f"{name}_stats.csv")
    crit = float(stats["crit"].iloc[0])
    assert f.deviance <= crit + 1e-7 * abs(crit)  # ours at least as low as lme4's
    assert abs(f.deviance - crit) < 1e-6 * abs(crit)
    ours, theirs = _variance_components(fit, tmp, name)
    if name == "race_slope":
        assert not bool(stats["singular"].iloc[0]) and not any(f.singular)
        # relative for SDs, absolute for the near-zero correlation
        assert np.max(np.abs(ours - theirs) / np.maximum(np.abs(theirs), 0.1)) < 1e-3
    else:
        assert bool(stats["singular"].iloc[0]) and any(f.singular)
        # at the boundary both optimisers stop within lme4's own tolerance of it
        assert np.max(np.abs(ours - theirs)) < 2e-3


# ------------------------------------------------------------------------- t tests
@pytest.mark.needs_r
@pytest.mark.parametrize(("name", "data"), [("popquorn_t", "popquorn"), ("multipico", "multipico")])
@pytest.mark.parametrize(
    ("df", "ddf"), [("satterthwaite", "Satterthwaite"), ("kenward-roger", "Kenward-Roger")]
)
def test_small_sample_tests_match_lmertest(real, name, data, df, ddf):
    fits, tmp = real
    r = pd.read_csv(tmp / f"{data}_{ddf}.csv").set_index("name")
    ours = fits[name].summary(df=df).query("kind == 'fixed'")
    names = [_r_name(c) for c in ours["parameter"]]
    assert _rel(ours["df"], r.loc[names, "df"]) < 1e-3
    assert _rel(ours["std_error"], r.loc[names, "Std. Error"]) < 1e-4
    assert np.max(np.abs(ours["p_value"].to_numpy() - r.loc[names, "Pr(>|t|)"])) < 1e-3
    assert _rel(ours["p_value"], r.loc[names, "Pr(>|t|)"]) < 1e-3


# ------------------------------------------------------------------------- anova
@pytest.mark.needs_r
@pytest.mark.parametrize(
    ("small", "large", "anova", "criterion"),
    [
        ("gender", "gender_race", "fixed", "ML (refitted)"),
        ("race", "race_slope", "slope", "REML"),
        ("race_slope", "race_slope_gender", "slope_fixed", "ML (refitted)"),
        ("multipico_gender", "multipico", "pico", "ML (refitted)"),
    ],
)
def test_compare_matches_anova(real, small, large, anova, criterion):
    """Fixed effects (refitted by ML, random slopes kept) and a random slope (REML, as
    ``anova(refit = FALSE)``)."""
    fits, tmp = real
    ours = compare(fits[large], fits[small])
    r = pd.read_csv(tmp / f"{anova}_anova.csv")
    assert ours["criterion"].tolist() == [criterion] * 2
    assert ours["npar"].tolist() == r["npar"].tolist()
    for ours_col, r_col in (("loglik", "logLik"), ("aic", "AIC"), ("bic", "BIC")):
        assert np.max(np.abs(ours[ours_col] - r[r_col])) < 1e-3
    assert abs(ours["chisq"].iloc[1] - r["Chisq"].iloc[1]) < 1e-3
    assert ours["df"].iloc[1] == r["Df"].iloc[1]
    assert abs(ours["p_value"].iloc[1] - r["Pr(>Chisq)"].iloc[1]) < 1e-3
