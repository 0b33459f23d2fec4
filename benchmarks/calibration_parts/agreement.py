"""Calibration of Krippendorff's alpha intervals (``pluralign.labels.agreement``).

Simulator: the labels part's two-group cumulative-logit model with identical groups (one
population): every rater rates every item on a 5-point scale, ``latent = η_item + u_rater + ε``
with ``η_item ~ N(0, 1.2²)``, ``u_rater ~ N(0, 0.5²)`` and logistic ``ε``. The true (population)
ordinal alpha of this model, over new raters and new items, has no closed form: it is the
alpha of one very large simulated study (:func:`true_alpha`, 3,000 items × 400 raters, whose
sampling error is below 0.002).

Rows: coverage of the 95 % percentile interval of the overall alpha with the item bootstrap
(``cluster="item"``: raters held fixed) and with raters and items resampled
(``cluster="both"``, the default).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from calibration_parts.labels import simulate
from pluralign.labels import agreement

DESIGN = {"n_items": 30, "per_group": 10}
N_BOOT = 200


@cache
def true_alpha(seed: int = 12345) -> float:
    """Ordinal alpha of the population: one study of 3,000 items × 400 raters."""
    study, _ = simulate(np.random.default_rng(seed), n_items=3000, per_group=200)
    return float(agreement(study, n_boot=0)["krippendorff_alpha"].iloc[0])


def one_study(seed: int, *, cluster: str, n_boot: int = N_BOOT, **design) -> bool:
    """Whether one study's 95 % interval of the overall alpha covers the population alpha."""
    study, _ = simulate(np.random.default_rng(seed), **{**DESIGN, **design})
    row = agreement(study, n_boot=n_boot, cluster=cluster, ci_prob=0.95, seed=seed).iloc[0]
    truth = true_alpha()
    return bool(row["krippendorff_alpha_ci_low"] <= truth <= row["krippendorff_alpha_ci_high"])


def run(quick: bool, seed: int) -> list[dict]:
    """Coverage rows (500 studies per bootstrap unit; quick: 10)."""
    n = 10 if quick else 500
    seeds = np.random.default_rng([seed, 7]).integers(0, 2**31, size=n)
    setting = (
        f"{2 * DESIGN['per_group']} raters × {DESIGN['n_items']} items (all rate all), 5-point "
        f"ordinal, item SD 1.2, rater SD 0.5; true alpha {true_alpha():.3f} "
        f"(3,000 items × 400 raters); {N_BOOT} resamples"
    )
    rows = []
    for cluster, name in (("item", "items resampled"), ("both", "raters and items resampled")):
        got = pd.Series([one_study(int(s), cluster=cluster) for s in seeds])
        rows.append(
            {
                "quantity": f"Krippendorff's alpha (ordinal), bootstrap percentile, {name}",
                "kind": "coverage",
                "nominal": 0.95,
                "observed": float(got.mean()),
                "n_sims": n,
                "setting": setting,
            }
        )
    return rows
