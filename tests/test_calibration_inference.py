"""Reduced calibration of variance-component inference (full run: calibration_parts/inference.py).

Without item-specific gender gaps, the chi-bar-squared p value of ``random_slope_test`` is
uniform below ½ (a statistic of 0, half the studies, gives p = 1): the share of studies with
p < 0.25 is checked within three Monte-Carlo SEs (about 4.3 points at 100 studies), a tighter
check of the null distribution than the rejection rate at 5 %.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from calibration_parts.inference import SD, SLOPE_FORMULAS, vp_study
from calibration_parts.models import simulate

from pluralign.models import random_slope_test

SMALL = {"n_raters": 60, "n_items": 20, "per_rater": 6}


@pytest.mark.slow
def test_uncorrelated_slope_test_p_values_are_uniform_under_the_null():
    p = []
    for s in np.random.default_rng(4).integers(0, 2**31, 100):
        study = simulate(int(s), sd=SD, **SMALL)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = random_slope_test(
                study, SLOPE_FORMULAS["uncorrelated"], reference={"gender": "she/her"}
            )
        p.append(out["p_value"].iloc[0])
    p = np.array(p)
    for level in (0.05, 0.25):
        rate = np.mean(p < level)
        assert abs(rate - level) <= 3 * np.sqrt(level * (1 - level) / len(p)), (level, rate)


@pytest.mark.slow
def test_variance_partition_intervals_cover():
    seeds = np.random.default_rng(5).integers(0, 2**31, 100)
    got = [vp_study(int(s), n_boot=60, **SMALL) for s in seeds]
    for key in got[0]:
        covered = np.mean([g[key] for g in got])
        assert 0.90 <= covered <= 0.99, (key, covered)
