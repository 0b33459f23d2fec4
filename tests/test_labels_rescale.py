"""Rescaling round-trips counts and never drops silently."""

from __future__ import annotations

import pandas as pd
import pytest

from pluralign._errors import DroppedRowsWarning
from pluralign.data import AGREEMENT_3, AGREEMENT_5, BINARY
from pluralign.labels import category_counts, rescale


def test_binary_drop_neutral_roundtrips_counts(small_study):
    study = small_study.study
    before = {d: category_counts(study, d) for d in study.dimensions}
    with pytest.warns(DroppedRowsWarning):
        out = rescale(study, "binary")
    for d in study.dimensions:
        after = category_counts(out, d)
        assert after.loc[0] == before[d].loc[[1, 2]].sum()
        assert after.loc[1] == before[d].loc[[4, 5]].sum()
        scale = out.scale(d)
        assert (scale.min, scale.max, scale.labels) == (0, 1, BINARY)
        assert scale.desirability == study.scale(d).desirability
    n_neutral = sum(int(before[d].loc[3]) for d in study.dimensions)
    log = out.log
    dropped = log[log["step"] == "rescale_drop_neutral"]
    assert dropped["n_rows"].sum() == n_neutral
    assert out.n_ratings == study.n_ratings - n_neutral


@pytest.mark.parametrize("neutral,goes_to", [("low", 0), ("high", 1)])
def test_binary_neutral_rules(small_study, neutral, goes_to):
    study = small_study.study
    out = rescale(study, "binary", neutral=neutral)
    assert out.n_ratings == study.n_ratings
    for d in study.dimensions:
        b, a = category_counts(study, d), category_counts(out, d)
        low = b.loc[[1, 2]].sum() + (b.loc[3] if goes_to == 0 else 0)
        assert a.loc[0] == low and a.loc[1] == b.sum() - low


def test_random_neutral_is_seeded(small_study):
    s = small_study.study
    a = rescale(s, "binary", neutral="random", seed=3).ratings
    b = rescale(s, "binary", neutral="random", seed=3).ratings
    pd.testing.assert_frame_equal(a, b)


def test_three_point_roundtrips_counts(small_study):
    study = small_study.study
    out = rescale(study, "3-point")
    for d in study.dimensions:
        b, a = category_counts(study, d), category_counts(out, d)
        assert a.tolist() == [b.loc[[1, 2]].sum(), b.loc[3], b.loc[[4, 5]].sum()]
    assert out.scale("toxicity").labels in (AGREEMENT_3, ())
    assert (out.log["step"] == "rescale").sum() == len(study.dimensions)


def test_threshold_between_points_has_no_neutral(small_study):
    study = small_study.study.subset(dimensions="toxicity")
    out = rescale(study, "binary", threshold=3.5)
    b, a = category_counts(study, "toxicity"), category_counts(out, "toxicity")
    assert a.tolist() == [b.loc[[1, 2, 3]].sum(), b.loc[[4, 5]].sum()]


def test_rescale_rejects_bad_arguments(small_study):
    with pytest.raises(ValueError, match="neutral"):
        rescale(small_study.study, "3-point", neutral="low")
    with pytest.raises(ValueError, match="to must"):
        rescale(small_study.study, "7-point")
    assert small_study.study.scale("toxicity").labels in (AGREEMENT_5, ())
