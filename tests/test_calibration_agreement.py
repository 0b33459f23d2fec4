"""Reduced calibration of Krippendorff's alpha intervals (full run: calibration_parts/agreement.py).

150 studies give a Monte-Carlo SE of about 1.8 points on a 95 % coverage.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from calibration_parts.agreement import one_study, true_alpha
from calibration_parts.labels import simulate

from pluralign.labels import agreement


def test_population_alpha_is_what_studies_estimate():
    """The truth (one very large study) is the mean of many small studies' alphas."""
    alphas = [
        agreement(simulate(np.random.default_rng(s), n_items=30, per_group=10)[0], n_boot=0)[
            "krippendorff_alpha"
        ].iloc[0]
        for s in range(60)
    ]
    se = np.std(alphas) / np.sqrt(len(alphas))
    assert abs(np.mean(alphas) - true_alpha()) < 3 * se + 0.005, (np.mean(alphas), true_alpha())


@pytest.mark.slow
def test_alpha_interval_resampling_raters_and_items_covers():
    seeds = np.random.default_rng(3).integers(0, 2**31, 150)
    covered = np.mean([one_study(int(s), cluster="both", n_boot=100) for s in seeds])
    assert 0.92 <= covered <= 0.98, covered
