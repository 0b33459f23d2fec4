"""Calibration of the mixed models' intervals and tests (``fit_mixed``), on simulated studies.

Linear mixed model (gaussian ratings, crossed rater and item intercepts), with a gender × race
interaction and a demographic without effect (ideology):

* Wald 95 % intervals of two coefficients (gender at the reference race, an interaction);
* Wald 95 % intervals of the marginal gender contrast, with observed and equal weights over race
  (the ``effects()`` rows), and the 95 % interval of its relative difference in percent
  (simulated from ``N(β̂, V̂)``);
* the null rejection rate of the 5 % Wald test of the ideology contrast (true value 0);
* the same interval (observed weights) and test as t with Satterthwaite's and with
  Kenward–Roger's degrees of freedom (``effects(df=...)``).

Logistic mixed model (0/1 ratings, Laplace approximation, standard errors from the Hessian over
``(θ, β)`` as glmer's default): the Wald 95 % interval of the gender log-odds ratio, the 95 % interval of the difference in P(rating = 1) of a new rater on a new
item (random effects integrated), and the null rejection rate of the ideology test.

Each simulated study is fitted once; its truths are computed from the simulation's parameters
(the marginal contrasts with the race mix of that study's ratings, as the estimand defines it).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.special import expit

from pluralign.data import Scale, Study
from pluralign.models import fit_mixed

#: Latent cell effects by (gender, race): the gender difference depends on race.
CELLS = {
    ("she/her", "White"): 0.0,
    ("she/her", "Black"): 0.2,
    ("she/her", "Asian"): 0.0,
    ("he/him", "White"): -0.3,
    ("he/him", "Black"): 0.1,
    ("he/him", "Asian"): -0.5,
}
RACES = ("White", "Black", "Asian")
REF = {"gender": "she/her", "race": "White", "ideology": "a"}
#: Logistic model: intercept and gender log-odds ratio; SDs of rater and item intercepts.
LOGIT = {"intercept": -0.5, "he/him": 0.5, "sd_rater": 0.7, "sd_item": 0.5}


def simulate(
    seed: int,
    *,
    family: str = "gaussian",
    n_raters: int = 200,
    n_items: int = 30,
    per_rater: int = 8,
    mean: float = 3.0,
    sd=(0.5, 0.4, 0.8),
) -> Study:
    """One study: raters with gender, race and a null ideology rate ``per_rater`` items each."""
    rng = np.random.default_rng(seed)
    gender = rng.choice(["she/her", "he/him"], n_raters, p=[0.55, 0.45])
    race = rng.choice(list(RACES), n_raters, p=[0.5, 0.3, 0.2])
    ideology = rng.choice(["a", "b", "c"], n_raters)
    if family == "gaussian":
        u, v = rng.normal(0, sd[0], n_raters), rng.normal(0, sd[1], n_items)
    else:
        u = rng.normal(0, LOGIT["sd_rater"], n_raters)
        v = rng.normal(0, LOGIT["sd_item"], n_items)
    items = np.array([rng.choice(n_items, per_rater, replace=False) for _ in range(n_raters)])
    r = np.repeat(np.arange(n_raters), per_rater)
    i = items.ravel()
    if family == "gaussian":
        cell = np.array([CELLS[g, x] for g, x in zip(gender, race, strict=True)])
        y = mean + cell[r] + u[r] + v[i] + rng.normal(0, sd[2], len(r))
    else:
        eta = LOGIT["intercept"] + LOGIT["he/him"] * (gender == "he/him")
        y = (rng.random(len(r)) < expit(eta[r] + u[r] + v[i])).astype(float)
    ratings = pd.DataFrame(
        {"rater": [f"r{k}" for k in r], "item": [f"i{k}" for k in i], "rating": y}
    ).assign(dimension="d")
    raters = pd.DataFrame(
        {
            "rater": [f"r{k}" for k in range(n_raters)],
            "gender": gender,
            "race": race,
            "ideology": ideology,
        }
    )
    if family == "gaussian":
        return Study.from_frames(ratings, raters, continuous=True)
    return Study.from_frames(ratings, raters, scales={"d": Scale("d", 0, 1)})


def _covers(lo: float, hi: float, truth: float) -> bool:
    return bool(lo <= truth <= hi)


def lmm_study(seed: int, *, n_draws: int = 1000, **design) -> dict[str, bool]:
    """Fit one gaussian study; which intervals cover their truth, whether the null test rejects."""
    study = simulate(seed, **design)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_mixed(
            study,
            "rating ~ gender * race + ideology",
            reference=REF,
            n_draws=n_draws,
            seed=seed,
            progressbar=False,
        )
    d = fit.fits["d"]
    beta = pd.Series(d.fit.beta, index=d.design.columns)
    se = pd.Series(d.fit.se, index=d.design.columns)
    w = d.design.data["race"].value_counts(normalize=True).reindex(RACES, fill_value=0.0)
    diff = {x: CELLS["he/him", x] - CELLS["she/her", x] for x in RACES}
    obs_truth = float(sum(w[x] * diff[x] for x in RACES))
    ref_mean = design.get("mean", 3.0) + float(sum(w[x] * CELLS["she/her", x] for x in RACES))
    eff = fit.effects(correction="none").set_index(["term", "level"])
    equal = fit.effects(weights="equal", scale="link", correction="none")
    equal = equal.set_index(["term", "level"])
    row, row_eq = eff.loc[("gender", "he/him")], equal.loc[("gender", "he/him")]
    coef_truth = {
        "gender[T.he/him]": diff["White"],
        "gender[T.he/him]:race[T.Black]": diff["Black"] - diff["White"],
    }
    out = {
        f"coef {name}": _covers(beta[name] - 1.96 * se[name], beta[name] + 1.96 * se[name], t)
        for name, t in coef_truth.items()
    }
    out["marginal observed"] = _covers(row["ci_low"], row["ci_high"], obs_truth)
    out["marginal equal"] = _covers(
        row_eq["ci_low"], row_eq["ci_high"], np.mean(list(diff.values()))
    )
    out["relative"] = _covers(
        row["relative_ci_low"], row["relative_ci_high"], 100 * obs_truth / ref_mean
    )
    out["null"] = bool(eff.loc[("ideology", "b"), "p_value"] < 0.05)
    for method, key in SMALL_SAMPLE.items():
        t = fit.effects(scale="link", correction="none", df=method).set_index(["term", "level"])
        out[f"marginal observed {key}"] = _covers(
            t.loc[("gender", "he/him"), "ci_low"], t.loc[("gender", "he/him"), "ci_high"], obs_truth
        )
        out[f"null {key}"] = bool(t.loc[("ideology", "b"), "p_value"] < 0.05)
    return out


#: t tests of ``effects(df=...)``, by the key suffix of their rows.
SMALL_SAMPLE = {"satterthwaite": "sat", "kenward-roger": "kr"}


def _integrated_p(eta: float) -> float:
    """P(rating = 1) of a new rater on a new item: expit(eta + u + v) averaged over N(0, s²)."""
    from pluralign._numeric import gauss_hermite

    x, wts = gauss_hermite(40)
    s = np.hypot(LOGIT["sd_rater"], LOGIT["sd_item"])
    return float(expit(eta + s * x) @ (wts / wts.sum()))


def glmm_study(seed: int, *, n_draws: int = 1000, **design) -> dict[str, bool]:
    """Fit one binary study; interval coverage of the gender effect and the null test."""
    study = simulate(seed, family="binomial", **design)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_mixed(
            study,
            "rating ~ gender + ideology",
            family="binomial",
            reference={"gender": "she/her", "ideology": "a"},
            n_draws=n_draws,
            seed=seed,
            progressbar=False,
        )
    eff = fit.effects().set_index(["term", "level"])
    row = eff.loc[("gender", "he/him")]
    p_she = _integrated_p(LOGIT["intercept"])
    p_he = _integrated_p(LOGIT["intercept"] + LOGIT["he/him"])
    return {
        "coef": _covers(row["ci_low"], row["ci_high"], LOGIT["he/him"]),
        "difference": _covers(row["difference_ci_low"], row["difference_ci_high"], p_he - p_she),
        "null": bool(eff.loc[("ideology", "b"), "p_value"] < 0.05),
    }


LMM_ROWS = {
    "coef gender[T.he/him]": ("LMM coefficient at the reference race, Wald", "coverage", 0.95),
    "coef gender[T.he/him]:race[T.Black]": ("LMM interaction coefficient, Wald", "coverage", 0.95),
    "marginal observed": (
        "LMM marginal contrast over race (observed weights), Wald",
        "coverage",
        0.95,
    ),
    "marginal equal": ("LMM marginal contrast over race (equal weights), Wald", "coverage", 0.95),
    "relative": (
        "LMM relative difference % (marginal, simulated from N(β̂, V̂))",
        "coverage",
        0.95,
    ),
    "null": ("LMM Wald z test of a demographic without effect", "null rejection", 0.05),
    "marginal observed sat": (
        "LMM marginal contrast (observed weights), t interval with Satterthwaite df",
        "coverage",
        0.95,
    ),
    "null sat": (
        "LMM t test (Satterthwaite df) of a demographic without effect",
        "null rejection",
        0.05,
    ),
    "marginal observed kr": (
        "LMM marginal contrast (observed weights), Kenward–Roger t interval",
        "coverage",
        0.95,
    ),
    "null kr": (
        "LMM t test (Kenward–Roger) of a demographic without effect",
        "null rejection",
        0.05,
    ),
}
GLMM_ROWS = {
    "coef": ("GLMM (logit, Laplace) log-odds ratio, Wald", "coverage", 0.95),
    "difference": (
        "GLMM difference in P(rating = 1), random effects integrated (simulated)",
        "coverage",
        0.95,
    ),
    "null": ("GLMM Wald z test of a demographic without effect", "null rejection", 0.05),
}


def _rows(results: list[dict], spec: dict, setting: str) -> list[dict]:
    table = pd.DataFrame(results)
    return [
        {
            "quantity": quantity,
            "kind": kind,
            "nominal": nominal,
            "observed": float(table[key].mean()),
            "n_sims": len(table),
            "setting": setting,
        }
        for key, (quantity, kind, nominal) in spec.items()
    ]


SIZE = "200 raters × 8 of 30 items"


def lmm_rows(n: int, seed: int) -> list[dict]:
    """Rows of ``n`` gaussian studies."""
    seeds = np.random.default_rng([seed, 0]).integers(0, 2**31, size=n)
    results = [lmm_study(int(s)) for s in seeds]
    setting = f"{SIZE}; gender × race interaction, null ideology; SDs 0.5/0.4/0.8"
    return _rows(results, LMM_ROWS, setting)


def glmm_rows(n: int, seed: int) -> list[dict]:
    """Rows of ``n`` binary studies."""
    seeds = np.random.default_rng([seed, 1]).integers(0, 2**31, size=n)
    results = [glmm_study(int(s)) for s in seeds]
    return _rows(results, GLMM_ROWS, f"{SIZE}; binary, log-OR 0.5, SDs 0.7/0.5, null ideology")


def run(quick: bool, seed: int) -> list[dict]:
    """Calibration rows of the mixed models (500 studies of each kind; ``quick``: 6).

    Each gaussian study is fitted once and tested four ways (Wald z, Satterthwaite and
    Kenward–Roger t); 200 studies keep the part near ten minutes on 2 busy cores.
    """
    n = 6 if quick else 500
    return lmm_rows(n, seed) + glmm_rows(n, seed)
