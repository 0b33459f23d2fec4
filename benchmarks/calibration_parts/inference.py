"""Calibration of the mixed models' variance-component inference, on simulated studies.

* ``random_slope_test``: the null rejection rate of the likelihood-ratio test of item-specific
  gender gaps, ``(1 + gender || item)`` against ``(1 | item)`` (one variance, chi-bar-squared
  50:50 mixture of χ²(0) and χ²(1)) and ``(1 + gender | item)`` (a variance and a correlation,
  the mixture of χ²(1) and χ²(2), an approximation), when no item has a gap of its own.
* ``variance_partition``: coverage of the parametric-bootstrap percentile intervals of the
  rater, item and residual variances of a linear mixed model (REML), and of the rater share.

Studies come from the models part's gaussian simulator (gender × race cell effects, crossed
rater and item intercepts with SDs 0.5 and 0.4, residual SD 0.8); its item intercepts are the
same for both genders, so no slope variance exists.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from calibration_parts.models import simulate
from pluralign.models import fit_mixed, random_slope_test, variance_partition

SD = (0.5, 0.4, 0.8)
SLOPE_DESIGN = {"n_raters": 120, "n_items": 30, "per_rater": 8}
VP_DESIGN = {"n_raters": 100, "n_items": 20, "per_rater": 6}
VP_BOOT = 100
REF = {"gender": "she/her"}
SLOPE_FORMULAS = {
    "uncorrelated": "rating ~ gender + (1|rater) + (1 + gender||item)",
    "correlated": "rating ~ gender + (1|rater) + (1 + gender|item)",
}


def slope_study(seed: int, **design) -> dict[str, bool]:
    """Whether each slope test rejects at 5 % on one study without item-specific gaps."""
    study = simulate(seed, sd=SD, **{**SLOPE_DESIGN, **design})
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key, formula in SLOPE_FORMULAS.items():
            p = random_slope_test(study, formula, reference=REF)["p_value"].iloc[0]
            out[key] = bool(p < 0.05)
    return out


def vp_study(seed: int, *, n_boot: int = VP_BOOT, **design) -> dict[str, bool]:
    """Whether each 95 % variance-partition interval covers its simulated truth."""
    study = simulate(seed, sd=SD, **{**VP_DESIGN, **design})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_mixed(study, "rating ~ gender", reference=REF, n_draws=1, progressbar=False)
        vp = variance_partition(fit, n_boot=n_boot, ci_prob=0.95, seed=seed, progress=False)
    vp = vp.set_index("component")
    truth = dict(zip(("rater", "item", "residual"), np.square(SD), strict=True))
    out = {
        name: bool(vp.loc[name, "ci_low"] <= var <= vp.loc[name, "ci_high"])
        for name, var in truth.items()
    }
    share = truth["rater"] / sum(truth.values())
    out["rater share"] = bool(
        vp.loc["rater", "share_ci_low"] <= share <= vp.loc["rater", "share_ci_high"]
    )
    return out


def run(quick: bool, seed: int) -> list[dict]:
    """Rows: slope-test null rejection and variance-partition coverage (500 studies each)."""
    n_slope, n_vp = (4, 3) if quick else (500, 500)
    seeds = np.random.default_rng([seed, 11]).integers(0, 2**31, size=max(n_slope, n_vp))
    slopes = pd.DataFrame([slope_study(int(s)) for s in seeds[:n_slope]])
    rows = []
    setting = (
        f"{SLOPE_DESIGN['n_raters']} raters × {SLOPE_DESIGN['per_rater']} of "
        f"{SLOPE_DESIGN['n_items']} items; SDs 0.5/0.4/0.8; no item-specific gender gap"
    )
    for key, mixture in (("uncorrelated", "χ²(0):χ²(1)"), ("correlated", "χ²(1):χ²(2)")):
        rows.append(
            {
                "quantity": f"random-slope LRT, {SLOPE_FORMULAS[key].split(' + (1|rater) + ')[1]} "
                f"vs (1|item), 50:50 {mixture}",
                "kind": "null rejection",
                "nominal": 0.05,
                "observed": float(slopes[key].mean()),
                "n_sims": n_slope,
                "setting": setting,
            }
        )
    vp = pd.DataFrame([vp_study(int(s)) for s in seeds[:n_vp]])
    setting = (
        f"{VP_DESIGN['n_raters']} raters × {VP_DESIGN['per_rater']} of {VP_DESIGN['n_items']} "
        f"items; SDs 0.5/0.4/0.8; REML; {VP_BOOT} parametric-bootstrap refits"
    )
    for key in ("rater", "item", "residual", "rater share"):
        what = "share of the rater variance" if key == "rater share" else f"{key} variance"
        rows.append(
            {
                "quantity": f"variance_partition: {what}, parametric-bootstrap percentile",
                "kind": "coverage",
                "nominal": 0.95,
                "observed": float(vp[key].mean()),
                "n_sims": n_vp,
                "setting": setting,
            }
        )
    return rows
