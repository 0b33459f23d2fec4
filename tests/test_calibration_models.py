"""Reduced calibration of the mixed models (the full run: benchmarks/calibration_parts/models.py).

200 small simulated studies per model give a Monte-Carlo SE of about 1.5 points on a 95 %
coverage (the band 92–98 % is two of them) and of 1.5 points on a 5 % rejection rate (checked
within three).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from calibration_parts.models import (
    LOGIT,
    _integrated_p,
    glmm_study,
    lmm_study,
    simulate,
)

N_STUDIES = 200
SMALL = {"n_raters": 100, "n_items": 20, "per_rater": 6}
#: Binary ratings: Laplace fits of raters with few 0/1 ratings under-estimate the rater variance
#: (the full run's 8 ratings per rater give ~93 % coverage); 16 per rater are closer to nominal.
BINARY = {"n_raters": 100, "n_items": 40, "per_rater": 16}


def _check(results: list[dict], coverage: list[str], nulls: list[str]) -> None:
    table = pd.DataFrame(results)
    n = len(table)
    for key in coverage:
        assert 0.92 <= table[key].mean() <= 0.98, (key, table[key].mean(), n)
    for null in nulls:
        rate = table[null].mean()
        assert abs(rate - 0.05) <= 3 * np.sqrt(0.05 * 0.95 / n), (null, rate, n)


def test_simulated_truth_of_the_binary_study():
    """The integrated P(rating = 1) used as truth is what a large simulated study shows."""
    study = simulate(0, family="binomial", n_raters=3000, n_items=400, per_rater=8)
    r = study.ratings.merge(study.raters, on="rater")
    share = r.groupby("gender")["rating"].mean()
    assert share["she/her"] == pytest.approx(_integrated_p(LOGIT["intercept"]), abs=0.02)
    assert share["he/him"] == pytest.approx(
        _integrated_p(LOGIT["intercept"] + LOGIT["he/him"]), abs=0.02
    )


@pytest.mark.slow
def test_lmm_intervals_cover_and_wald_test_holds_its_level():
    seeds = np.random.default_rng(1).integers(0, 2**31, N_STUDIES)
    results = [lmm_study(int(s), n_draws=400, **SMALL) for s in seeds]
    nulls = [k for k in results[0] if k.startswith("null")]  # z, Satterthwaite t, KR t
    _check(results, [k for k in results[0] if k not in nulls], nulls)


@pytest.fixture(scope="module")
def binary_results():
    seeds = np.random.default_rng(2).integers(0, 2**31, N_STUDIES)
    return pd.DataFrame([glmm_study(int(s), n_draws=400, **BINARY) for s in seeds])


@pytest.mark.slow
def test_glmm_intervals_cover(binary_results):
    for key in ("coef", "difference"):
        assert 0.92 <= binary_results[key].mean() <= 0.98, (key, binary_results[key].mean())


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="the Laplace GLMM's Wald z test is anti-conservative with few raters and few binary "
    "ratings each: 10.5 % at the 5 % level in this design even with standard errors from the "
    "joint Hessian over (θ, β); the Laplace fit under-estimates the rater variance (an SD of "
    "0.66 for a true 0.70 with 8 ratings per rater) and the Wald test ignores its uncertainty "
    "(docs/validity.md)",
)
def test_glmm_wald_test_holds_its_level(binary_results):
    rate = binary_results["null"].mean()
    assert abs(rate - 0.05) <= 3 * np.sqrt(0.05 * 0.95 / len(binary_results)), rate
