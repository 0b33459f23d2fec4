"""Calibration of :mod:`pluralign.describe`: coverage of group means and group contrasts.

Design (one dimension, 5-point cumulative-logit ratings, drawn by
:func:`pluralign.data.simulate_ratings`): 400 raters in three groups (50 % "a", the reference;
40 % "b", latent effect +0.4; 10 % "c", latent effect -0.3) each rate 5 of 100 items; rater SD
0.8 and item SD 1.0 on the latent scale (about 0.6 rating points for items). The truth is the
population mean rating of each group over raters *and items*, and the variance of one rating
within a group, both computed by Gauss-Hermite quadrature over the normal rater + item effect.
Every interval of :func:`pluralign.describe.relative_difference` is checked against it: group
means (two-way cluster-robust, and the rater bootstrap that treats items as fixed, to show why
it is not the default), differences, relative differences (origin 0), percent of the scale's
range and Cohen's d.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import special

from pluralign._errors import PluralignWarning
from pluralign._numeric import gauss_hermite
from pluralign.data import Scale, Study, simulate_ratings
from pluralign.describe import relative_difference

N_RATERS, N_ITEMS, PER_RATER = 400, 100, 5
RATER_SD, ITEM_SD = 0.8, 1.0
CUTPOINTS = np.array([-1.5, -0.3, 0.8, 2.0])
GROUPS = {"a": (0.5, 0.0), "b": (0.4, 0.4), "c": (0.1, -0.3)}  # share, latent effect
SETTING = (
    "400 raters (50/40/10 %) × 5 of 100 items, 5-point ordinal, rater SD 0.8, item SD 1.0 (latent)"
)


def truth() -> dict[str, tuple[float, float]]:
    """Mean and variance of one rating in each group (over raters and items)."""
    x, w = gauss_hermite(60)
    sd = np.hypot(RATER_SD, ITEM_SD)
    k = np.arange(1, 6)
    out = {}
    for g, (_, beta) in GROUPS.items():
        cdf = special.expit(CUTPOINTS[None, :] - (beta + sd * x)[:, None])
        cdf = np.hstack([np.zeros((len(x), 1)), cdf, np.ones((len(x), 1))])
        p = w @ np.diff(cdf, axis=1)
        mean = float(p @ k)
        out[g] = (mean, float(p @ (k - mean) ** 2))
    return out


def simulate(rng: np.random.Generator) -> Study:
    shares = np.array([s for s, _ in GROUPS.values()])
    group = rng.choice(list(GROUPS), size=N_RATERS, p=shares)
    fixed = np.array([GROUPS[g][1] for g in group])[:, None]
    draw = simulate_ratings(
        fixed,
        rng,
        n_prompts=N_ITEMS,
        responses_per_prompt=1,
        items_per_rater=PER_RATER,
        responses_per_visit=1,
        rater_sd=RATER_SD,
        item_sd=ITEM_SD,
        family="ordinal",
        cutpoints=CUTPOINTS[None, :],
        minimum=1,
    )
    ratings = pd.DataFrame(
        {
            "rater": draw.rater_ids[draw.rater],
            "item": draw.item_ids[draw.item],
            "dimension": "d",
            "rating": draw.rating[:, 0].astype(int),
        }
    )
    raters = pd.DataFrame({"rater": draw.rater_ids, "group": group})
    return Study.from_frames(ratings, raters, scales=[Scale("d", 1, 5)], reference={"group": "a"})


def coverage(n_sims: int, seed: int) -> dict[str, list[bool]]:
    """Whether each interval covered its truth, per quantity (keys as in the table)."""
    rng = np.random.default_rng(seed)
    t = truth()
    (ma, va) = t["a"]
    targets = {}
    for g in ("b", "c"):
        m, v = t[g]
        targets[g] = {
            "difference": m - ma,
            "relative": 100 * (m - ma) / ma,
            "pct_of_range": 100 * (m - ma) / 4,
            "cohens_d": (m - ma) / np.sqrt((v + va) / 2),
        }
    hits: dict[str, list[bool]] = {}

    def record(key: str, lo: float, hi: float, value: float) -> None:
        hits.setdefault(key, []).append(bool(lo <= value <= hi))

    for _ in range(n_sims):
        study = simulate(rng)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PluralignWarning)
            two = relative_difference(study, by="group").set_index("group")
            boot = relative_difference(
                study,
                by="group",
                ci_method="rater-bootstrap",
                n_boot=1000,
                seed=int(rng.integers(2**31)),
            ).set_index("group")
        for g in ("a", "c"):
            record(
                f"group mean ({g}), two-way", two.loc[g, "ci_low"], two.loc[g, "ci_high"], t[g][0]
            )
            record(
                f"group mean ({g}), rater bootstrap",
                boot.loc[g, "ci_low"],
                boot.loc[g, "ci_high"],
                t[g][0],
            )
        for g in ("b", "c"):
            for q, value in targets[g].items():
                record(
                    f"{q} ({g} − a), two-way",
                    two.loc[g, f"{q}_ci_low"],
                    two.loc[g, f"{q}_ci_high"],
                    value,
                )
            record(
                f"difference ({g} − a), rater bootstrap",
                boot.loc[g, "difference_ci_low"],
                boot.loc[g, "difference_ci_high"],
                targets[g]["difference"],
            )
    return hits


def run(quick: bool, seed: int) -> list[dict]:
    hits = coverage(20 if quick else 500, seed)
    names = {
        "relative": "relative difference % (origin 0)",
        "pct_of_range": "percent of range",
        "cohens_d": "Cohen's d",
    }
    rows = []
    for key, got in hits.items():
        quantity = key
        for short, long in names.items():
            quantity = quantity.replace(f"{short} (", f"{long} (")
        group = "c: 10 % of raters" if "(c" in key else "a: 50 %" if "(a)" in key else "b: 40 %"
        rows.append(
            {
                "quantity": quantity,
                "kind": "coverage",
                "nominal": 0.95,
                "observed": float(np.mean(got)),
                "n_sims": len(got),
                "setting": f"{SETTING}; group {group}",
            }
        )
    return rows


if __name__ == "__main__":
    import sys
    import time

    t0 = time.perf_counter()
    out = pd.DataFrame(run(quick="--quick" in sys.argv, seed=2026))
    print(out.to_string())
    print(f"{time.perf_counter() - t0:.0f} s")
