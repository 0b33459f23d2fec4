"""Reduced calibration of the mixed models (the full run: benchmarks/calibration_parts/models.py).

200 small simulated studies per model give a Monte-Carlo SE of about 1.5 points on a 95 %
coverage (the band 92–98 % is two of them) and of 1.5 points on a 5 % rejection rate (checked
within three). The binary model's test is judged against a valid test on the same studies
(paired), so that the luck of one set of studies is not taken for the test's.
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
from scipy import stats

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


def _rater_means_rejects(seed: int, **design) -> bool:
    """Does the t test of ideology ``b`` on the raters' mean ratings reject at 5 %?

    Ideology is a rater-level demographic drawn independently of everything else in
    ``simulate``, every rater rates as many items, and the items are drawn independently of
    the raters: the raters' mean ratings are exchangeable across ideology levels, so an OLS
    t test on them (with gender as a covariate) holds its level whatever the mixed model does.
    """
    study = simulate(seed, family="binomial", **design)
    means = study.ratings.groupby("rater")["rating"].mean()
    raters = study.raters.set_index("rater").loc[means.index]
    X = np.column_stack(
        [
            np.ones(len(means)),
            raters["gender"].eq("he/him"),
            raters["ideology"].eq("b"),
            raters["ideology"].eq("c"),
        ]
    ).astype(float)
    y = means.to_numpy()
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    df = len(y) - X.shape[1]
    s2 = float(np.sum((y - X @ beta) ** 2)) / df
    se = np.sqrt(s2 * np.linalg.inv(X.T @ X)[2, 2])
    return bool(2 * stats.t.sf(abs(beta[2] / se), df) < 0.05)


@pytest.fixture(scope="module")
def binary_results():
    seeds = np.random.default_rng(2).integers(0, 2**31, N_STUDIES)
    return pd.DataFrame(
        [
            glmm_study(int(s), n_draws=400, **BINARY)
            | {"reference": _rater_means_rejects(int(s), **BINARY)}
            for s in seeds
        ]
    )


@pytest.mark.slow
def test_glmm_intervals_cover(binary_results):
    for key in ("coef", "difference"):
        assert 0.92 <= binary_results[key].mean() <= 0.98, (key, binary_results[key].mean())


@pytest.mark.slow
def test_glmm_wald_test_holds_its_level(binary_results):
    """The Wald z test of a demographic without effect rejects as often as a valid test on the
    same studies (:func:`_rater_means_rejects`), within three Monte-Carlo SEs of the paired
    difference.

    A fixed band around 5 % would judge these 200 studies rather than the test: in them the
    ideology groups happen to differ more than usual, and the raters' means test rejects
    0.100 (its t has SD 1.18; 0.046 and SD 1.04 over 1000 other studies) and the Wald z
    0.105 (z has SD 1.20, correlation 0.997 with the means' t); glmer's Wald z
    (``tolPwrss = 1e-10``) makes the same decision in every study where its own Hessian is
    usable (190 of 200) and the likelihood-ratio test of ``compare`` rejects 0.095
    (docs/validity.md). A z test rejecting 0.10 where the reference rejects 0.05 fails the
    paired check (bound 0.047).
    """
    wald, reference = binary_results["null"], binary_results["reference"]
    n = len(wald)
    discordant = float((wald != reference).mean())
    excess = float(wald.mean() - reference.mean())
    assert abs(excess) <= 3 * np.sqrt(max(discordant, 1 / n) / n), (excess, discordant)
