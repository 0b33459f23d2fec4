"""Coverage of the descriptive intervals on simulated studies with known truth.

A reduced run of ``benchmarks/calibration_parts/describe.py`` (400 raters × 5 of 100 items,
item effects that vary): over 400 studies, each 95 % two-way interval family covers 92-98 % of
the time. Each family pools two intervals per study (800 intervals: Monte-Carlo SE about 0.8
points, so the band is about ±3.9 SE), while the rater bootstrap's group mean, which treats
the items as fixed, covers well under 90 %.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def hits():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        part = importlib.import_module("calibration_parts.describe")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return part.coverage(400, seed=7)


def _pooled(hits, prefix, suffix):
    got = [h for k, v in hits.items() if k.startswith(prefix) and k.endswith(suffix) for h in v]
    assert len(got) == 800, prefix
    return float(np.mean(got))


@pytest.mark.slow
@pytest.mark.parametrize("quantity", ["group mean", "difference", "relative", "cohens_d"])
def test_two_way_intervals_cover_95_percent(hits, quantity):
    assert 0.92 <= _pooled(hits, quantity, "two-way") <= 0.98


@pytest.mark.slow
def test_rater_bootstrap_misses_item_variation_in_group_means(hits):
    """The defect the two-way interval fixes: with 50 % of 400 raters in group a, item effects
    dominate the mean's error and the rater bootstrap covers about 80 %."""
    assert np.mean(hits["group mean (a), rater bootstrap"]) < 0.88
    # differences are fine either way: item effects mostly cancel
    assert 0.92 <= _pooled(hits, "difference", "rater bootstrap") <= 0.98
