"""Effects of interaction models: one estimand per row, equal to R's emmeans on an lmer fit."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from pluralign.data import Study
from pluralign.models import contrast_test, design_contrasts, fit_mixed

REF = {"gender": "she/her", "race": "White"}
#: Latent cell effects: the gender difference depends on race (an interaction).
CELLS = {
    ("she/her", "White"): 0.0,
    ("she/her", "Black"): 0.2,
    ("she/her", "Asian"): 0.0,
    ("he/him", "White"): -0.3,
    ("he/him", "Black"): 0.1,
    ("he/him", "Asian"): -0.5,
}


def interaction_study(
    seed: int, n_raters: int = 240, n_items: int = 30, per_rater: int = 8, ordinal: bool = False
):
    """Continuous ratings ``3 + cell effect + rater + item + noise`` of raters by gender × race
    (``ordinal``: rounded to the categories 1–5)."""
    rng = np.random.default_rng(seed)
    gender = rng.choice(["she/her", "he/him"], n_raters, p=[0.55, 0.45])
    race = rng.choice(["White", "Black", "Asian"], n_raters, p=[0.5, 0.3, 0.2])
    u, v = rng.normal(0, 0.5, n_raters), rng.normal(0, 0.4, n_items)
    frames = []
    for r in range(n_raters):
        items = rng.choice(n_items, per_rater, replace=False)
        y = 3 + CELLS[gender[r], race[r]] + u[r] + v[items] + rng.normal(0, 0.8, per_rater)
        frames.append(
            pd.DataFrame({"rater": f"r{r}", "item": [f"i{i}" for i in items], "rating": y})
        )
    ratings = pd.concat(frames, ignore_index=True).assign(dimension="d")
    if ordinal:
        ratings["rating"] = ratings["rating"].round().clip(1, 5)
    raters = pd.DataFrame(
        {"rater": [f"r{r}" for r in range(n_raters)], "gender": gender, "race": race}
    )
    return Study.from_frames(ratings, raters, continuous=not ordinal)


@pytest.fixture(scope="module")
def fit():
    return fit_mixed(interaction_study(1), "rating ~ gender * race", reference=REF, n_draws=500)


def test_rows_are_marginal_contrasts_not_coefficients(fit):
    eff = fit.effects().set_index(["term", "level"])
    d = fit.design("d")
    beta = pd.Series(fit.fits["d"].fit.beta, index=d.columns)
    # observed weights: the race mix of the fitted ratings
    w = d.data["race"].value_counts(normalize=True)
    he = beta["gender[T.he/him]"] + sum(
        w[r] * beta.get(f"gender[T.he/him]:race[T.{r}]", 0.0) for r in w.index
    )
    row = eff.loc[("gender", "he/him")]
    assert row["estimate"] == pytest.approx(he, rel=1e-10)
    assert abs(row["estimate"] - beta["gender[T.he/him]"]) > 0.05  # not the coefficient
    assert row["estimand"] == "marginal over race (observed weights)"
    # the rating-scale difference is the same estimand (identity link)
    assert row["difference"] == pytest.approx(row["estimate"], rel=1e-10)
    assert row["difference_ci_low"] < row["estimate"] < row["difference_ci_high"]
    # equal weights: the plain mean over the three races
    eq = fit.effects(weights="equal").set_index(["term", "level"]).loc[("gender", "he/him")]
    he_eq = beta["gender[T.he/him]"] + np.mean(
        [beta.get(f"gender[T.he/him]:race[T.{r}]", 0.0) for r in ("White", "Black", "Asian")]
    )
    assert eq["estimate"] == pytest.approx(he_eq, rel=1e-10)
    assert eq["estimand"] == "marginal over race (equal weights)"
    inter = eff.loc[("gender:race", "he/him:Black")]
    assert inter["estimate"] == pytest.approx(beta["gender[T.he/him]:race[T.Black]"])
    assert inter["estimand"].startswith("interaction coefficient")
    assert np.isnan(inter["difference"])


def test_additive_model_rows_are_the_coefficients():
    fit = fit_mixed(interaction_study(2, n_raters=120), "rating ~ gender + race", reference=REF)
    beta = pd.Series(fit.fits["d"].fit.beta, index=fit.design("d").columns)
    for weights in ("observed", "equal"):
        eff = fit.effects(weights=weights, scale="link").set_index(["term", "level"])
        assert eff.loc[("gender", "he/him"), "estimate"] == pytest.approx(
            beta["gender[T.he/him]"], rel=1e-10
        )
        assert eff.loc[("race", "Black"), "estimate"] == pytest.approx(
            beta["race[T.Black]"], rel=1e-10
        )
    with pytest.raises(ValueError, match="weights must be one of"):
        design_contrasts(fit.design("d"), weights="cells")


def _emmeans_script(library: str, women: str, model: str, emmeans_option: str) -> str:
    """R: fit ``model`` (gender × race) and write emmeans' treatment-vs-control contrasts of
    gender and race with equal and proportional weights, unadjusted, with asymptotic intervals."""
    return rf"""
suppressMessages({{library({library}); library(emmeans)}})
args <- commandArgs(TRUE)
d <- read.csv(args[1], stringsAsFactors = FALSE)
d$gender <- relevel(factor(d$gender), ref = "{women}")
d$race <- relevel(factor(d$race), ref = "White")
d$rater <- factor(d$rater); d$item <- factor(d$item)
m <- {model}
out <- NULL
for (w in c("equal", "proportional")) for (v in c("gender", "race")) {{
  em <- suppressMessages(emmeans(m, v, weights = w, {emmeans_option}))
  ct <- summary(contrast(em, "trt.vs.ctrl", ref = 1), infer = TRUE, adjust = "none")
  out <- rbind(out, data.frame(weights = w, term = v, contrast = ct$contrast,
    estimate = ct$estimate, se = ct$SE, low = ct$asymp.LCL, high = ct$asymp.UCL, p = ct$p.value))
}}
write.csv(out, args[2], row.names = FALSE)
"""


EMMEANS_R = _emmeans_script(
    "lme4",
    "she/her",
    "lmer(rating ~ gender * race + (1 | rater) + (1 | item), data = d, REML = TRUE)",
    'lmer.df = "asymptotic"',
)


def test_ordinal_rows_are_marginal_contrasts_of_the_latent_coefficients():
    """The ordinal model's table is built as the linear model's: marginal contrasts of β."""
    fit = fit_mixed(
        interaction_study(3, ordinal=True),
        "rating ~ gender * race",
        family="ordinal",
        reference=REF,
        n_draws=200,
    )
    d = fit.design("d")
    beta = pd.Series(fit.fits["d"].fit.beta, index=d.columns[1:])  # no intercept: cutpoints
    w = d.data["race"].value_counts(normalize=True)
    he = beta["gender[T.he/him]"] + sum(
        w[r] * beta.get(f"gender[T.he/him]:race[T.{r}]", 0.0) for r in w.index
    )
    eff = fit.effects().set_index(["term", "level"])
    row = eff.loc[("gender", "he/him")]
    assert row["estimate"] == pytest.approx(he, rel=1e-10)
    assert row["estimand"] == "marginal over race (observed weights)"
    assert row["odds_ratio"] == pytest.approx(np.exp(he))
    # the rating-scale side: population-averaged expected ratings of the two sides
    assert row["difference"] == pytest.approx(row["mean_level"] - row["mean_reference"])
    assert row["difference_ci_low"] < row["difference"] < row["difference_ci_high"]
    inter = eff.loc[("gender:race", "he/him:Black")]
    assert inter["estimate"] == pytest.approx(beta["gender[T.he/him]:race[T.Black]"])
    assert np.isnan(inter["difference"])
    assert fit.effects(scale="link")["difference"].isna().all()
    with pytest.raises(ValueError, match="linear mixed model"):
        fit.effects(df="satterthwaite")
    # contrast_test takes contrasts over the same named columns, as Wald z tests
    L = {"he/him": {"gender[T.he/him]": 1.0}}
    z = contrast_test(fit, L, df=None)
    assert z["estimate"].iloc[0] == pytest.approx(beta["gender[T.he/him]"])
    assert z["std_error"].iloc[0] == pytest.approx(
        fit.summary().set_index("parameter").loc["gender[T.he/him]", "std_error"]
    )
    with pytest.raises(ValueError, match="no intercept"):
        contrast_test(fit, {"x": {"Intercept": 1.0}}, df=None)


def _have_r(*packages: str) -> bool:
    if shutil.which("Rscript") is None:
        return False
    cmd = f"suppressMessages({{{'; '.join(f'library({p})' for p in packages)}}})"
    return subprocess.run(["Rscript", "-e", cmd], capture_output=True, timeout=120).returncode == 0


def _emmeans(fit, script: str, columns: list[str], tmp_path) -> pd.DataFrame:
    """Run an emmeans script on the fitted ratings; its contrasts with the compared level."""
    fit.design(fit.dimensions[0]).data[columns].to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "emm.R").write_text(script)
    proc = subprocess.run(
        ["Rscript", str(tmp_path / "emm.R"), str(tmp_path / "d.csv"), str(tmp_path / "out.csv")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    r = pd.read_csv(tmp_path / "out.csv")
    r["level"] = r["contrast"].str.split(" - ").str[0].str.strip("()")
    return r


def _assert_equal_emmeans(fit, r: pd.DataFrame, *, tol: float, scale: str):
    """Every emmeans contrast equals our effects row (estimate, SE, interval, p) within ``tol``;
    yields ``(weights, effects table, row)`` for further checks."""
    for weights, ours in (("equal", "equal"), ("proportional", "observed")):
        eff = fit.effects(weights=ours, scale=scale).set_index(["term", "level"])
        got = r[r["weights"] == weights]
        assert len(got) == 3
        for row in got.itertuples():
            mine = eff.loc[(row.term, row.level)]
            for ours_col, r_val in (
                ("estimate", row.estimate),
                ("std_error", row.se),
                ("ci_low", row.low),
                ("ci_high", row.high),
                ("p_value", row.p),
            ):
                assert mine[ours_col] == pytest.approx(r_val, abs=tol), (weights, row, ours_col)
            yield ours, eff, mine


@pytest.mark.needs_r
def test_marginal_contrasts_equal_emmeans(fit, tmp_path):
    if not _have_r("lme4", "emmeans"):
        pytest.skip("Rscript with the R packages lme4 and emmeans is not installed")
    r = _emmeans(fit, EMMEANS_R, ["rater", "item", "rating", "gender", "race"], tmp_path)
    assert len(list(_assert_equal_emmeans(fit, r, tol=1e-4, scale="link"))) == 6


# ------------------------------------------------------------------------ ordinal (clmm)
CLMM_EMMEANS_R = _emmeans_script(
    "ordinal",
    "Woman",
    "clmm(ordered(rating) ~ gender * race + (1 | rater) + (1 | item), data = d, link = 'logit')",
    'mode = "latent"',
)


def _popquorn_gender_race():
    """POPQUORN offensiveness, first 150 items, women and men who are White, Black or Asian
    (1,205 ratings by 241 raters; ``clmm`` with the interaction takes about 10 s of CPU)."""
    from pluralign.data import find_data, load_popquorn

    try:
        find_data("popquorn/offensiveness_raw_data.csv")
    except FileNotFoundError as err:
        pytest.skip(f"real data not available: {err}")
    study = load_popquorn()
    study = study.subset(items=sorted(study.items["item"].astype(str))[:150])
    keep = study.raters.query(
        "gender in ['Woman', 'Man'] and race in ['White', 'Black or African American', 'Asian']"
    )["rater"]
    return study.subset(raters=keep)


@pytest.mark.needs_r
@pytest.mark.slow
def test_ordinal_marginal_contrasts_equal_emmeans_on_clmm(tmp_path):
    """Latent-scale marginal contrasts of a gender × race clmm: emmeans(mode = "latent")."""
    if not _have_r("ordinal", "emmeans"):
        pytest.skip("Rscript with the R packages ordinal and emmeans is not installed")
    study = _popquorn_gender_race()
    fit = fit_mixed(
        study,
        "rating ~ gender * race",
        family="ordinal",
        reference={"gender": "Woman", "race": "White"},
        n_draws=400,
    )
    r = _emmeans(fit, CLMM_EMMEANS_R, ["rater", "item", "gender", "race", "rating"], tmp_path)
    for weights, eff, mine in _assert_equal_emmeans(fit, r, tol=1e-3, scale="rating"):
        # the same contrast on the expected-rating scale, with its own interval
        assert mine["difference"] == pytest.approx(mine["mean_level"] - mine["mean_reference"])
        assert mine["difference_ci_low"] < mine["difference"] < mine["difference_ci_high"]
        assert eff.loc[("gender", "Man"), "estimand"] == f"marginal over race ({weights} weights)"
    # interaction rows are the clmm coefficients, with odds ratios
    inter = fit.effects(scale="link").query("term == 'gender:race'")
    assert np.allclose(inter["odds_ratio"], np.exp(inter["estimate"]))
