"""Reduced calibration of the labels layer (the full run: benchmarks/calibration_parts/labels.py).

Each simulated study has 20 items rated by two groups of 10 raters; 60 studies give 1,200
item-level tests and intervals, a Monte-Carlo SE of about 0.6 points on a 5 % rejection rate
and on a 95 % coverage.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from calibration_parts.labels import divergence_run, marginal_probs, simulate

N_STUDIES = 60


def test_simulator_truth_matches_its_ratings():
    """The true per-group rating distribution is what a large simulated group reports."""
    rng = np.random.default_rng(0)
    study, truth = simulate(rng, n_items=3, per_group=2000, shift=1.0)
    r = study.ratings.merge(study.raters, on="rater")
    eta = None
    for g, shift in (("he/him", 0.0), ("she/her", 1.0)):
        share = r[r["gender"] == g].groupby("item")["rating"].value_counts(normalize=True).unstack()
        if eta is None:  # recover each item's effect from group A's mean category probabilities
            grid = np.linspace(-4, 4, 801)
            table = marginal_probs(grid)
            eta = grid[[np.abs(table - row).sum(axis=1).argmin() for row in share.to_numpy()]]
        np.testing.assert_allclose(share.to_numpy(), marginal_probs(eta + shift), atol=0.03)
    assert (truth > 0).all()


@pytest.mark.slow
def test_disagreement_test_level_and_interval_coverage():
    n_tests = 20 * N_STUDIES
    se_level = np.sqrt(0.05 * 0.95 / n_tests)
    null = divergence_run(N_STUDIES, 11, shift=0.0)
    assert null["n_tests"] == n_tests
    assert abs(null["reject"] - 0.05) < 3 * se_level, null
    assert 0.92 <= null["coverage"] <= 0.98, null
    alt = divergence_run(N_STUDIES, 12, shift=1.0)
    assert 0.92 <= alt["coverage"] <= 0.98, alt


def test_independent_dimensions_make_posterior_p_too_extreme():
    """The documented error of treating correlated dimensions as independent (module docstring of
    pluralign.labels._posterior): errors correlated at −0.6 between toxicity and helpfulness."""
    from calibration_parts.labels import ITEM_SD, joint_pair_probabilities

    rng = np.random.default_rng(1)
    trait = np.array([[1.0, -0.6], [-0.6, 1.0]]) * ITEM_SD**2
    ea, eb = rng.multivariate_normal([0, 0], trait, 12), rng.multivariate_normal([0, 0], trait, 12)
    kw = dict(n_mc=60_000, seed=5)
    independent = joint_pair_probabilities(ea, eb, rho_error=0.0, **kw)
    joint = joint_pair_probabilities(ea, eb, rho_error=-0.6, **kw)
    rater_only = joint_pair_probabilities(ea, eb, rho_error=0.0, rho_rater=-0.6, **kw)
    clear = np.abs(independent - 0.5) > 0.05
    assert (np.abs(independent - 0.5) > np.abs(joint - 0.5))[clear].all()
    assert 0.015 < np.abs(joint - independent).mean() < 0.045
    assert np.abs(rater_only - independent).max() < 0.01  # rater correlation cancels
    assert ((joint > 0.5) == (independent > 0.5)).all()
