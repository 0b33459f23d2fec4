"""Shared fixtures: simulated studies (session-scoped, seeded) and the location of the real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def small_study():
    """A small simulated study: 120 raters × 5 items × 5 dimensions (3,000 ratings), seed 11.

    A :class:`pluralign.data.SimulatedStudy`; use ``.study`` for the Study and ``.truth`` for
    the ground truth. Do not modify its tables.
    """
    from pluralign.data import simulate_study

    return simulate_study(seed=11, n_raters=120, n_prompts=40)


@pytest.fixture(scope="session")
def paper_study():
    """The default (published) design: 1,095 raters, 27,375 ratings, seed 2024."""
    from pluralign.data import simulate_study

    return simulate_study(seed=2024)


@pytest.fixture(scope="session")
def normal_power_design():
    """Factory of small power designs on one factor ``g``: normal ratings with rater effects
    only (no item effects), 12 items, so the rater-means t test is exact.

    ``normal_power_design({"a": 30, "b": 30}, {"b": 0.4}, items_per_rater=3)``.
    """
    from pluralign.power import StudyDesign

    def make(groups, effects, *, items_per_rater=3):
        return StudyDesign(
            {"g": dict(groups)},
            effects=dict(effects),
            scale="normal",
            intercept=3.0,
            item_sd=0.0,
            group_item_sd=0.0,
            rater_sd=0.5,
            residual_sd=1.0,
            n_prompts=6,
            responses_per_prompt=2,
            items_per_rater=items_per_rater,
        )

    return make


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the real data sets; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (a copy of shared/data beside the repo)")
    return SHARED_DATA
