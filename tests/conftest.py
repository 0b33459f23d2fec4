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
def shared_data() -> Path:
    """Folder of the real data sets; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (a copy of shared/data beside the repo)")
    return SHARED_DATA
