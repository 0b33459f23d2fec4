"""Calibration of the labels layer: the disagreement test and the bias-corrected divergence.

Simulator: two groups of raters (``per_group`` each) rate every one of ``n_items`` items on a
5-point scale from a cumulative-logit model, ``latent = η_item + δ·[group B] + u_rater + ε`` with
``η_item ~ N(0, 1.2²)``, ``u_rater ~ N(0, 0.5²)`` and logistic ``ε`` (cutpoints −1.5, −0.5,
0.5, 1.5). Within an item the ratings of different raters are independent draws from the
group's marginal distribution ``P_g(k | item) = E_u[P(k | η + δ_g + u)]`` (computed by
Gauss–Hermite quadrature), so the true divergence of an item is the JSD between the two groups'
marginal distributions; it is 0 when ``δ = 0``.

Rows: the per-item permutation test's rejection rate and Benjamini–Hochberg's family-wise
rejection rate when the groups agree (``δ = 0``), and the coverage of the interval of the
bias-corrected JSD when they agree and when they differ (``δ = 1``).

Soft labels: the ``distribution`` method's ``p`` is reported without an interval (``p_sd`` is
NaN for it), so it has no coverage row.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from pluralign.data import Scale, Study
from pluralign.labels import group_divergence
from pluralign.labels._kernels import jsd_counts
from pluralign.models import cumulative_probs, gauss_hermite

CUTPOINTS = np.array([-1.5, -0.5, 0.5, 1.5])
ITEM_SD, RATER_SD = 1.2, 0.5
ALPHA = 0.05


def simulate(
    rng: np.random.Generator, *, n_items: int = 20, per_group: int = 10, shift: float = 0.0
) -> tuple[Study, pd.Series]:
    """A two-group study and the true JSD of each item (indexed by item id)."""
    n_raters = 2 * per_group
    group_b = np.arange(n_raters) >= per_group
    eta = rng.normal(0, ITEM_SD, n_items)
    u = rng.normal(0, RATER_SD, n_raters)
    latent = eta[None, :] + shift * group_b[:, None] + u[:, None]
    latent = latent + rng.logistic(size=(n_raters, n_items))
    rating = 1 + (latent[..., None] > CUTPOINTS).sum(axis=-1)
    raters = pd.DataFrame({
        "rater": [f"r{k:03d}" for k in range(n_raters)],
        "gender": np.where(group_b, "she/her", "he/him"),
    })  # fmt: skip
    items = [f"i{j:03d}" for j in range(n_items)]
    ratings = pd.DataFrame({
        "rater": np.repeat(raters["rater"].to_numpy(), n_items),
        "item": np.tile(items, n_raters), "dimension": "toxicity", "rating": rating.ravel(),
    })  # fmt: skip
    study = Study.from_frames(ratings, raters, scales=[Scale("toxicity", 1, 5)])
    return study, pd.Series(true_jsd(eta, shift), index=items)


def marginal_probs(eta: np.ndarray) -> np.ndarray:
    """Rating distribution of a random rater: ``E_u[P(k | η + u)]`` (items × 5)."""
    x, w = gauss_hermite()
    p = cumulative_probs(eta[:, None] + RATER_SD * x[None, :], CUTPOINTS)  # items × nodes × 5
    return (p * w[None, :, None]).sum(axis=1)


def true_jsd(eta: np.ndarray, shift: float) -> np.ndarray:
    """JSD between the two groups' marginal rating distributions of each item (he/him, she/her)."""
    return jsd_counts(marginal_probs(eta), marginal_probs(eta + shift))


def divergence_run(
    n_sims: int, seed: int, *, shift: float, n_items: int = 20, n_perm: int = 9999
) -> dict[str, float]:
    """Rejection and coverage shares over ``n_sims`` simulated studies."""
    rng = np.random.default_rng(seed)
    reject, any_flag, covered, n_tests = 0, 0, 0, 0
    for s in range(n_sims):
        study, truth = simulate(rng, n_items=n_items, shift=shift)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = group_divergence(
                study, "gender", groups=("he/him", "she/her"), n_perm=n_perm, n_boot=200,
                seed=seed + s, ci_prob=0.95,
            )  # fmt: skip
        t = truth.reindex(out["item"]).to_numpy()
        reject += int((out["p_value"] <= ALPHA).sum())
        any_flag += int((out["p_adjusted"] <= ALPHA).any())
        covered += int(((out["ci_low"] <= t) & (t <= out["ci_high"])).sum())
        n_tests += len(out)
    return {
        "reject": reject / n_tests,
        "any_flag": any_flag / n_sims,
        "coverage": covered / n_tests,
        "n_tests": n_tests,
    }


def run(quick: bool, seed: int) -> list[dict]:
    n_sims = 10 if quick else 500
    design = "2 groups × 10 raters, 20 items, 5-point ordinal with rater intercepts"
    null = divergence_run(n_sims, seed, shift=0.0)
    alt = divergence_run(n_sims, seed + 1, shift=1.0)
    return [
        {
            "quantity": "item disagreement, permutation test of the JSD (labels shuffled "
            "within item), per item",
            "kind": "null rejection",
            "nominal": ALPHA,
            "observed": null["reject"],
            "n_sims": null["n_tests"],
            "setting": f"{design}; identical distributions ({n_sims} studies)",
        },
        {
            "quantity": "any item flagged, Benjamini–Hochberg over the 20 items",
            "kind": "null rejection",
            "nominal": ALPHA,
            "observed": null["any_flag"],
            "n_sims": n_sims,
            "setting": f"{design}; identical distributions",
        },
        {
            "quantity": "bias-corrected JSD (plug-in − permutation-null mean), bootstrap "
            "percentile interval",
            "kind": "coverage",
            "nominal": 0.95,
            "observed": null["coverage"],
            "n_sims": null["n_tests"],
            "setting": f"{design}; identical distributions, true JSD 0 ({n_sims} studies)",
        },
        {
            "quantity": "bias-corrected JSD (plug-in − permutation-null mean), bootstrap "
            "percentile interval",
            "kind": "coverage",
            "nominal": 0.95,
            "observed": alt["coverage"],
            "n_sims": alt["n_tests"],
            "setting": f"{design}; group B shifted by 1 logit ({n_sims} studies)",
        },
    ]
