"""Calibration of power analysis: the Monte-Carlo interval of power, and the null detection rate.

A design with a closed-form power (two groups, normal ratings, no item effects, the rater-means
t test) gives the true power, so the Monte-Carlo interval of each :func:`power_analysis` run can
be checked against it; the same design with no effect gives the detection rate under the null.
"""

from __future__ import annotations

import numpy as np

from pluralign.power import RaterMeansFitter, StudyDesign, analytic_power, power_analysis


def _design(effect: float) -> StudyDesign:
    return StudyDesign(
        {"g": {"a": 40, "b": 40}},
        effects={"b": effect},
        scale="normal",
        intercept=3.0,
        item_sd=0.0,
        group_item_sd=0.0,
        rater_sd=0.5,
        residual_sd=1.0,
        n_prompts=6,
        responses_per_prompt=2,
        items_per_rater=3,
    )


def run(quick: bool, seed: int) -> list[dict]:
    n_runs, n_sims = (20, 50) if quick else (500, 100)
    seeds = np.random.SeedSequence(seed).generate_state(n_runs)
    rows = []
    setting = "2 groups × 40 raters × 3 items, normal ratings, rater-means t test"
    design = _design(0.45)
    truth = analytic_power(design, test="t")
    covered = 0
    for s in seeds:
        res = power_analysis(
            design, n_sims=n_sims, model=RaterMeansFitter("g"), seed=int(s), progress=False
        )
        lo, hi = res.power_ci
        covered += lo <= truth <= hi
    rows.append(
        {
            "quantity": f"power, Monte-Carlo interval (Wilson, {n_sims} simulations a run)",
            "kind": "coverage",
            "nominal": 0.95,
            "observed": covered / n_runs,
            "n_sims": n_runs,
            "setting": f"{setting}; true power {truth:.3f}",
        }
    )
    null = power_analysis(
        _design(0.0),
        n_sims=n_runs * n_sims // 10,
        model=RaterMeansFitter("g"),
        seed=seed,
        progress=False,
    )
    rows.append(
        {
            "quantity": "detection under no effect (rater-means t test, alpha 0.05)",
            "kind": "null rejection",
            "nominal": 0.05,
            "observed": float(null.table["detected"].mean()),
            "n_sims": len(null.table),
            "setting": setting,
        }
    )
    return rows
