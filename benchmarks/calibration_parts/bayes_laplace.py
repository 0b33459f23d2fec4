"""Calibration of ``fit_bayes(method="laplace")`` and of the posterior-weighted soft labels.

The Bayesian part's small ordinal studies (80 raters × 6 of 20 items, 5 points, rater and item
SDs 0.8/0.5, gender log-odds ratio 0.6 or 0) are fitted with the Laplace approximation of the
posterior (2 × 1,000 draws). Rows:

* coverage of the 95 % and 90 % HDIs of the log-odds ratio, and of the 95 % HDIs of the
  difference and relative difference in expected rating (random effects integrated), and the
  share of null studies whose probability of direction exceeds 0.975;
* soft labels (:func:`~pluralign.labels.posterior_pair_probabilities`, target ``he/him``, every
  pair of the 20 items, higher rating preferred): the true ``p`` of a pair is the share of the
  target population preferring A (ties half), ``E_u[P(r_A > r_B | u) + ½ P(r_A = r_B | u)]``
  with the simulation's item effects, cutpoints and rater SD (Gauss–Hermite over ``u``). Among
  pairs labelled ``p`` in [0.65, 0.75] the mean true ``p`` should be their mean label; the
  expected calibration error (10 equal-width bins of the label, |mean label − mean true p|
  weighted by the bin's share of pairs) should be near 0; and ``p ± 1.96 p_sd`` (the labels
  table reports ``p_sd``, no interval) is checked for coverage of the true ``p``.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
from scipy.special import expit

from calibration_parts.bayes import (
    CUTPOINTS,
    SD_ITEM,
    SD_RATER,
    checks,
    fit_study,
    result_rows,
)
from pluralign._numeric import gauss_hermite
from pluralign.labels import posterior_pair_probabilities

SAMPLER = {"draws": 1000, "chains": 2}
DESIGN = {"n_raters": 80, "n_items": 20}
TARGET = {"gender": "he/him"}
BAND = (0.65, 0.75)


def item_effects(seed: int, *, n_raters: int = 80, n_items: int = 20) -> np.ndarray:
    """The item intercepts the Bayesian part's simulator drew for ``seed`` (same stream)."""
    rng = np.random.default_rng(seed)
    rng.choice(["she/her", "he/him"], n_raters)
    rng.normal(0, SD_RATER, n_raters)
    return rng.normal(0, SD_ITEM, n_items)


def true_preference(eta_a: np.ndarray, eta_b: np.ndarray) -> np.ndarray:
    """Share of raters preferring A (higher rating) to B, ties half, rater intercept integrated."""
    x, w = gauss_hermite(40)
    w = w / w.sum()
    u = SD_RATER * x

    def probs(eta):  # (pairs, nodes, 5)
        cum = expit(CUTPOINTS[None, None, :] - (eta[:, None] + u[None, :])[..., None])
        zero, one = np.zeros((*cum.shape[:2], 1)), np.ones((*cum.shape[:2], 1))
        return np.diff(np.concatenate([zero, cum, one], axis=-1), axis=-1)

    pa, pb = probs(eta_a), probs(eta_b)
    below = np.cumsum(pb, axis=-1) - pb  # P(r_B < k)
    win = (pa * below).sum(-1) + 0.5 * (pa * pb).sum(-1)
    return win @ w


def study_rows(seed: int, effect: float) -> tuple[dict[str, bool], pd.DataFrame]:
    """One Laplace fit: the interval checks and its soft labels with their truth."""
    _, fit = fit_study(seed, effect, method="laplace", sampler=SAMPLER, **DESIGN)
    out = checks(fit, effect)
    v = item_effects(seed, **DESIGN)
    pairs = pd.DataFrame(
        list(itertools.combinations(range(DESIGN["n_items"]), 2)), columns=["a", "b"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = posterior_pair_probabilities(
            fit,
            pd.DataFrame(
                {"item_a": "i" + pairs["a"].astype(str), "item_b": "i" + pairs["b"].astype(str)}
            ),
            target=TARGET,
            weights={"d": 1.0},
        )
    labels["truth"] = true_preference(effect + v[pairs["a"]], effect + v[pairs["b"]])
    return out, labels


def ece(labels: pd.DataFrame, bins: int = 10) -> float:
    """Expected calibration error of ``p`` against the true ``p`` (equal-width bins)."""
    b = np.minimum((labels["p"] * bins).astype(int), bins - 1)
    g = labels.groupby(b)
    gap = (g["p"].mean() - g["truth"].mean()).abs()
    return float((gap * g.size() / len(labels)).sum())


def summarise_labels(labels: pd.DataFrame) -> dict[str, float]:
    band = labels[labels["p"].between(*BAND)]
    lo, hi = labels["p"] - 1.96 * labels["p_sd"], labels["p"] + 1.96 * labels["p_sd"]
    return {
        "band_label": float(band["p"].mean()),
        "band_truth": float(band["truth"].mean()),
        "band_n": len(band),
        "ece": ece(labels),
        "coverage": float(((lo <= labels["truth"]) & (labels["truth"] <= hi)).mean()),
    }


def run(quick: bool, seed: int) -> list[dict]:
    """Rows of 50 studies with an effect and 50 without (quick: 2 and 2)."""
    n = 2 if quick else 50
    seeds = np.random.default_rng([seed, 21]).integers(0, 2**31, size=(2, n))
    results, labels = [], []
    for effect, row in ((0.6, seeds[0]), (0.0, seeds[1])):
        for s in row:
            out, lab = study_rows(int(s), effect)
            results.append({**out, "effect": effect})
            labels.append(lab)
    setting = "80 raters × 6 of 20 items, 5 points; SDs 0.8/0.5; Laplace posterior, 2×1000 draws"
    rows = result_rows(pd.DataFrame(results), model="Bayesian (Laplace) ordinal", setting=setting)
    lab = summarise_labels(pd.concat(labels, ignore_index=True))
    n_pairs = sum(len(x) for x in labels)
    label_setting = (
        f"{setting}; target he/him; {n_pairs} pairs (every pair of 20 items per study); "
        "truth: share of the target preferring A, ties half"
    )
    rows += [
        {
            "quantity": f"soft label p in [{BAND[0]}, {BAND[1]}]: share of the target "
            "preferring A (nominal: mean p of those pairs)",
            "kind": "calibration",
            "nominal": lab["band_label"],
            "observed": lab["band_truth"],
            "n_sims": lab["band_n"],
            "setting": label_setting,
        },
        {
            "quantity": "soft labels p, expected calibration error (10 bins)",
            "kind": "calibration error",
            "nominal": 0.0,
            "observed": lab["ece"],
            "n_sims": n_pairs,
            "setting": label_setting,
        },
        {
            "quantity": "soft labels p ± 1.96 p_sd",
            "kind": "coverage",
            "nominal": 0.95,
            "observed": lab["coverage"],
            "n_sims": n_pairs,
            "setting": label_setting,
        },
    ]
    return rows
