"""Random slopes ``(1 + gender | item)``: agreement with lme4, recovery, singular fits, reporting."""

from __future__ import annotations

import shutil
import subprocess
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from pluralign._errors import ConvergenceWarning
from pluralign.data import Scale, Study
from pluralign.models import VARIANCE_COLUMNS, build_design, fit_mixed
from pluralign.models._lmm import fit_lmm, fit_lmm_terms
from pluralign.models._random import RandomStructure, RandomTerm

SLOPES = "rating ~ gender + (1|rater) + (1 + gender|item)"
UNCORRELATED = "rating ~ gender + (1|rater) + (1 + gender||item)"
REF = {"gender": "she/her"}


def _study(seed, *, binary=False, sd_slope=0.5, n_raters=160, n_items=40, per_rater=12):
    """Crossed study whose he/him − she/her difference varies by item (SD ``sd_slope``)."""
    rng = np.random.default_rng(seed)
    raters = pd.DataFrame(
        {
            "rater": [f"r{i:03d}" for i in range(n_raters)],
            "gender": rng.choice(["she/her", "he/him"], n_raters),
        }
    )
    items = [f"i{j:02d}" for j in range(n_items)]
    sd_item, sd_rater, cor = (0.8, 0.5, -0.4) if binary else (0.6, 0.4, 0.3)
    cov = np.array(
        [[sd_item**2, cor * sd_item * sd_slope], [cor * sd_item * sd_slope, sd_slope**2]]
    )
    b_item = rng.multivariate_normal([0.0, 0.0], cov, n_items)
    b_rater = rng.normal(0, sd_rater, n_raters)
    rows = []
    for i in range(n_raters):
        he = raters["gender"].iloc[i] == "he/him"
        for j in rng.choice(n_items, per_rater, replace=False):
            eta = (0.0 if binary else 2.5) + 0.3 * he + b_rater[i] + b_item[j, 0]
            eta += b_item[j, 1] * he
            rows.append((raters["rater"].iloc[i], items[j], eta))
    r = pd.DataFrame(rows, columns=["rater", "item", "eta"])
    if binary:
        r["rating"] = (rng.random(len(r)) < expit(r["eta"])).astype(float)
        scale = Scale("toxicity", 0, 1)
    else:
        # a 0..14 rating scale: twice the latent value, rounded (slope SD in ratings: 2 × sd_slope)
        r["rating"] = np.clip(np.round(2 * (r["eta"] + rng.normal(0, 0.7, len(r)))), 0, 14)
        scale = Scale("toxicity", 0, 14)
    r["dimension"] = "toxicity"
    ratings = r[["rater", "item", "dimension", "rating"]]
    return Study.from_frames(ratings, raters, scales={"toxicity": scale})


@pytest.fixture(scope="module")
def gauss():
    return _study(11)


@pytest.fixture(scope="module")
def binary():
    return _study(12, binary=True, n_raters=200, per_rater=15)


@pytest.fixture(scope="module")
def fits(gauss, binary):
    return {
        "reml": fit_mixed(gauss, SLOPES, reference=REF, n_draws=200),
        "uncor": fit_mixed(gauss, UNCORRELATED, reference=REF, n_draws=200),
        "glmer": fit_mixed(binary, SLOPES, family="binomial", reference=REF, n_draws=200),
    }


# --------------------------------------------------------------------------------- parsing
def test_random_terms_are_coded_with_the_fixed_contrasts(gauss):
    d = build_design(gauss, SLOPES, reference=REF, allow_random=True)
    assert [t.label for t in d.random] == ["(1 | rater)", "(1 + gender | item)"]
    slope = d.random[1]
    assert slope.columns == ("Intercept", "gender[T.he/him]")
    he = (d.data["gender"] == "he/him").to_numpy(dtype=float)
    np.testing.assert_array_equal(slope.values[:, 1], he)
    # the default structure stays the fast path
    assert build_design(gauss, "rating ~ gender + (1|rater) + (1|item)").random == ()
    with pytest.raises(ValueError, match="grouping factor"):
        build_design(gauss, "rating ~ gender + (1|prompt)", allow_random=True)
    with pytest.raises(ValueError, match="fit_mixed"):
        build_design(gauss, SLOPES)


def test_general_path_equals_fast_path_on_intercepts(gauss):
    d = build_design(gauss, "rating ~ gender", reference=REF)
    ones = np.ones((d.n, 1))
    terms = [
        RandomTerm("rater", "1", True, ("Intercept",), ones, d.rater_codes, d.rater_levels),
        RandomTerm("item", "1", True, ("Intercept",), ones, d.item_codes, d.item_levels),
    ]
    general = fit_lmm_terms(d.X, d.y, RandomStructure(terms))
    fast = fit_lmm(d.X, d.y, d.rater_codes, d.item_codes)
    assert np.max(np.abs(general.beta - fast.beta)) < 1e-7
    assert np.max(np.abs(general.se / fast.se - 1)) < 1e-6
    assert np.max(np.abs(general.theta - fast.theta)) < 1e-5
    # the general path has the exact gradient; the fast path stops ~1e-6 from the optimum in θ
    assert general.deviance <= fast.deviance + 1e-9
    assert abs(general.deviance - fast.deviance) < 1e-7
    assert np.max(np.abs(general.gradient)) < 1e-4
    assert np.max(np.abs(general.b1 - fast.b1)) < 3e-6
    assert np.max(np.abs(general.b2 - fast.b2)) < 3e-6


# --------------------------------------------------------------------------------- lme4
R_SCRIPT = r"""
suppressMessages(library(lme4))
dir <- commandArgs(trailingOnly = TRUE)[1]
out <- function(m, name) {
  se <- if (isGLMM(m)) sqrt(diag(as.matrix(vcov(m, use.hessian = TRUE))))
        else sqrt(diag(as.matrix(vcov(m))))
  write.csv(data.frame(estimate = unname(fixef(m)), se = unname(se)),
            file.path(dir, paste0(name, "_fixef.csv")), row.names = FALSE)
  vc <- as.data.frame(VarCorr(m))
  write.csv(vc[, c("grp", "var1", "var2", "sdcor")], file.path(dir, paste0(name, "_vc.csv")),
            row.names = FALSE)
  write.csv(data.frame(crit = -2 * as.numeric(logLik(m)), singular = isSingular(m)),
            file.path(dir, paste0(name, "_stats.csv")), row.names = FALSE)
}
prep <- function(f) {
  d <- read.csv(file.path(dir, f), stringsAsFactors = FALSE)
  d$gender <- relevel(factor(d$gender), "she/her")
  d$he <- as.numeric(d$gender == "he/him")
  d
}
g <- prep("gaussian.csv")
out(lmer(rating ~ gender + (1 | rater) + (1 + gender | item), g), "reml")
out(lmer(rating ~ gender + (1 | rater) + (1 | item) + (0 + he | item), g), "uncor")
b <- prep("binary.csv")
out(glmer(rating ~ gender + (1 | rater) + (1 + gender | item), b, family = binomial,
          control = glmerControl(tolPwrss = 1e-13)), "glmer")
s <- prep("singular.csv")
out(lmer(rating ~ gender + (1 | rater) + (1 + gender | item), s), "singular")
"""


def _have_lme4() -> bool:
    if shutil.which("Rscript") is None:
        return False
    proc = subprocess.run(
        ["Rscript", "-e", "suppressMessages(library(lme4))"], capture_output=True, timeout=120
    )
    return proc.returncode == 0


@pytest.fixture(scope="module")
def r_dir(fits, no_slope_study, tmp_path_factory):
    if not _have_lme4():
        pytest.skip("Rscript with the R package lme4 is not installed: cannot compare with lme4")
    tmp = tmp_path_factory.mktemp("lme4_slopes")
    cols = ["rater", "item", "gender", "rating"]
    fits["reml"].design("toxicity").data[cols].to_csv(tmp / "gaussian.csv", index=False)
    fits["glmer"].design("toxicity").data[cols].to_csv(tmp / "binary.csv", index=False)
    d = build_design(no_slope_study, SLOPES, reference=REF, allow_random=True)
    d.data[cols].to_csv(tmp / "singular.csv", index=False)
    (tmp / "fit.R").write_text(R_SCRIPT)
    proc = subprocess.run(
        ["Rscript", str(tmp / "fit.R"), str(tmp)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return tmp


def _ours(r_name: str) -> str:
    """lme4's coefficient name as ours (``genderhe/him`` and the 0/1 ``he`` → ``gender[T.he/him]``)."""
    if r_name == "(Intercept)":
        return "Intercept"
    return "gender[T.he/him]" if r_name in ("genderhe/him", "he") else r_name


def _agreement(fit, tmp, name) -> dict[str, float]:
    """Largest relative differences from lme4 (fixed effects, SEs, SDs/correlations, criterion)."""
    f = fit.fits["toxicity"].fit
    fe = pd.read_csv(tmp / f"{name}_fixef.csv")
    ours = fit.variance_components().set_index(["factor", "kind", "parameter"])["estimate"]
    theirs = pd.read_csv(tmp / f"{name}_vc.csv", keep_default_na=False)
    keys = []
    for grp, v1, v2 in zip(theirs["grp"], theirs["var1"], theirs["var2"], strict=True):
        factor = "" if grp == "Residual" else grp.split(".")[0]
        if grp == "Residual":
            keys.append(("", "sd", "Residual"))
        elif v2 in ("", "NA"):
            keys.append((factor, "sd", _ours(v1)))
        else:
            keys.append((factor, "cor", f"{_ours(v1)}, {_ours(v2)}"))
    theirs = theirs["sdcor"].to_numpy(dtype=float)
    assert len(keys) == len(ours)
    ours = ours.loc[keys].to_numpy()
    crit = float(pd.read_csv(tmp / f"{name}_stats.csv")["crit"].iloc[0])
    scale = np.maximum(np.abs(fe["estimate"]), fe["se"])
    return {
        "fixef": float(np.max(np.abs(f.beta - fe["estimate"]) / scale)),
        "se": float(np.max(np.abs(f.se / fe["se"] - 1))),
        "sdcor": float(np.max(np.abs(ours - theirs) / np.maximum(np.abs(theirs), 0.05))),
        "deviance": (f.deviance - crit) / abs(crit),
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "tol"),
    [("reml", 1e-4), ("uncor", 1e-4), ("glmer", 2e-3)],
)
def test_agrees_with_lme4(fits, r_dir, name, tol):
    """lmer to 1e-4 (correlated and ``||`` terms); glmer to its own optimiser tolerance."""
    agree = _agreement(fits[name], r_dir, name)
    assert agree["fixef"] < tol, agree
    assert agree["se"] < tol, agree
    assert agree["sdcor"] < 10 * tol, agree
    # the same criterion, ours at least as low as lme4's up to rounding
    assert agree["deviance"] < 1e-7, agree
    assert abs(agree["deviance"]) < tol * 1e-2, agree


@pytest.mark.slow
def test_singular_as_lme4(no_slope_study, r_dir):
    """``isSingular`` agrees with lme4's on a fit whose slope variance is at the boundary."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit = fit_mixed(no_slope_study, SLOPES, reference=REF, n_draws=100)
    r_singular = bool(pd.read_csv(r_dir / "singular_stats.csv")["singular"].iloc[0])
    assert r_singular and any(fit.fits["toxicity"].fit.singular)
    agree = _agreement(fit, r_dir, "singular")
    assert agree["fixef"] < 1e-3 and agree["deviance"] < 1e-7, agree


# --------------------------------------------------------------------------------- recovery
def test_recovers_the_group_by_item_variance(fits):
    vc = fits["reml"].variance_components().set_index(["term", "kind", "parameter"])["estimate"]
    slope_sd = vc[("(1 + gender | item)", "sd", "gender[T.he/him]")]
    assert 0.6 < slope_sd < 1.5  # truth 1.0 rating points (40 items)
    # without item slopes the same data give no such component, and fit worse
    assert list(fits["reml"].variance_components()["kind"]).count("cor") == 1
    no_slopes = fits["uncor"].variance_components()
    assert "cor" not in set(no_slopes["kind"])
    assert set(no_slopes["term"]) == {
        "(1 | rater)",
        "(1 + gender || item)",
        "residual",
    }


def test_reporting_through_the_protocol(fits):
    fit = fits["reml"]
    vc = fit.variance_components()
    assert list(vc.columns) == list(VARIANCE_COLUMNS)
    assert vc["kind"].tolist() == ["sd", "sd", "sd", "cor", "sd"]
    summ = fit.summary()
    names = summ.loc[summ["kind"].isin(["variance", "correlation"]), "parameter"].tolist()
    assert names == [
        "rater",
        "item",
        "item: gender[T.he/him]",
        "item: cor(Intercept, gender[T.he/him])",
        "residual",
    ]
    slope_var = summ.set_index("parameter").loc["item: gender[T.he/him]", "estimate"]
    sd = vc.set_index("parameter").loc["gender[T.he/him]", "estimate"]
    assert slope_var == pytest.approx(sd**2)
    re = fit.random_effects()
    item = re[re["term"] == "(1 + gender | item)"]
    assert set(item["coefficient"]) == {"Intercept", "gender[T.he/him]"}
    assert len(item) == 2 * fit.design("toxicity").n_items
    diag = fit.diagnostics()
    sing = diag[diag["check"] == "singular_fit"]
    assert sing["parameter"].tolist() == ["(1 | rater)", "(1 + gender | item)"]
    assert sing["ok"].all()
    # the fitted modes reproduce the data's item-specific gender gaps (shrunk toward 0)
    d = fit.design("toxicity")
    gap = d.data.assign(r=d.y).groupby(["item", "gender"], observed=True)["r"].mean().unstack()
    raw = (gap["he/him"] - gap["she/her"]).loc[d.item_levels]
    blup = item[item["coefficient"] == "gender[T.he/him]"]["estimate"].to_numpy()
    assert np.corrcoef(raw, blup)[0, 1] > 0.6


@pytest.fixture(scope="module")
def no_slope_study():
    """No group × item variance in the data (the slope SD is estimated at 0 for this seed)."""
    return _study(14, sd_slope=0.0, n_raters=120, n_items=30, per_rater=10)


def test_predictions_include_the_slopes(fits):
    """Fitted values are X β̂ + Z b̂ with every random term, for the fitted and for new rows."""
    fit = fits["reml"]
    f = fit.fits["toxicity"].fit
    d = fit.design("toxicity")
    Z = RandomStructure(d.random).Z
    expected = d.X @ f.beta + Z @ f.random.b
    np.testing.assert_allclose(fit.predict()["prediction"], expected, atol=1e-10)
    new = d.data[["rater", "item", "gender"]].head(50)
    np.testing.assert_allclose(fit.predict(new)["prediction"], expected[:50], atol=1e-10)


def test_singular_slope_is_flagged(no_slope_study):
    """A variance at 0 is warned, naming the term, and shown in diagnostics()."""
    study = no_slope_study
    with pytest.warns(ConvergenceWarning, match=r"singular fit of \(1 \+ gender \| item\)"):
        fit = fit_mixed(study, SLOPES, reference=REF, n_draws=100)
    diag = fit.diagnostics()
    row = diag[(diag["check"] == "singular_fit") & (diag["parameter"] == "(1 + gender | item)")]
    assert not bool(row["ok"].iloc[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fit_mixed(study, "rating ~ gender", reference=REF, n_draws=100)


def test_slope_test_detects_item_specific_gaps(gauss, no_slope_study):
    """The likelihood ratio finds the simulated group × item variance, and not where there is none."""
    from pluralign.models import SLOPE_TEST_COLUMNS, random_slope_test
    from pluralign.models._slope_test import chibar_pvalue

    out = random_slope_test(gauss, SLOPES, reference=REF)
    assert list(out.columns) == list(SLOPE_TEST_COLUMNS)
    row = out.iloc[0]
    assert (row["term"], row["null_term"], row["df"]) == ("(1 + gender | item)", "(1 | item)", 2)
    assert row["p_value"] < 1e-4
    # the statistic is the REML criterion of the null fit minus the full one
    null = fit_mixed(gauss, "rating ~ gender", reference=REF, n_draws=10)
    full = fit_mixed(gauss, SLOPES, reference=REF, n_draws=10)
    lr = null.fits["toxicity"].fit.deviance - full.fits["toxicity"].fit.deviance
    assert row["statistic"] == pytest.approx(lr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        none = random_slope_test(no_slope_study, SLOPES, reference=REF)
    assert none["p_value"].iloc[0] > 0.2
    # mixture of chi2(1) and chi2(2) by hand
    assert chibar_pvalue(5.0, 2) == pytest.approx(0.5 * 0.0820850 + 0.5 * 0.0253473, rel=1e-5)
