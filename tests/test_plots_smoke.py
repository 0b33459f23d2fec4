"""pluralign.plots drawn from the real outputs of describe, labels and models on a small simulated study."""

from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from pluralign import plots
from pluralign._errors import DroppedRowsWarning


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_group_means_from_describe(small_study, tmp_path):
    from pluralign import describe

    study = small_study.study
    dims = ["toxicity", "helpfulness"]
    gm = describe.group_means(study, by=["gender", "ideology"], dimension=dims, n_boot=20, seed=0)
    fig = plots.group_means(gm)
    assert [a.get_title() for a in fig.axes] == ["Toxicity", "Helpfulness"]
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[0] == "Gender" and "Ideology" in labels
    n_groups = gm.groupby("dimension").size().iloc[0]
    assert len(labels) == n_groups + 2  # two header rows
    rd = describe.relative_difference(study, by="gender", dimension=dims, n_boot=20, seed=0)
    fig = plots.group_means(rd, value="relative_pct")
    ref = rd.loc[rd["is_reference"], "group"].iloc[0]
    assert any(
        t.get_text().startswith(f"{ref} (n=") and "(ref.)" in t.get_text()
        for t in fig.axes[0].get_yticklabels()
    )
    written = plots.savefig(fig, tmp_path / "relative", formats=("pdf",))
    assert all(p.stat().st_size > 1000 for p in written)


def test_agreement_and_divergence_from_labels(small_study):
    from pluralign import labels

    study = small_study.study
    ag = labels.agreement(
        study, by="gender", dimension=["toxicity", "helpfulness"], n_boot=20, seed=0
    )
    ax = plots.agreement(ag)
    texts = [t.get_text() for t in ax.get_yticklabels()]
    assert texts[0] == "Overall" and "Between groups" in texts
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DroppedRowsWarning)
        div = labels.group_divergence(study, by="gender", dimension="toxicity")
    ax = plots.divergence_heatmap(div, max_items=15)
    assert ax.images[0].get_array().shape == (
        div[["group_a", "group_b"]].drop_duplicates().shape[0],
        15,
    )


def test_soft_labels_from_preference_labels(small_study):
    from pluralign import labels

    study = small_study.study
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DroppedRowsWarning)
        made = [
            labels.preference_labels(study, method=m, group=g)
            for m in ("majority", "distribution")
            for g in (None, {"gender": "she/her"})
        ]
    fig = plots.soft_labels(made)
    assert [a.get_title().split(" ")[0] for a in fig.axes] == ["Majority", "Distribution"]
    n = sum(len(x.table) for x in made if x.method == "majority")
    assert fig.axes[0].get_title() == f"Majority (n = {n:,})"


def test_forest_from_mixed_model(small_study):
    from pluralign.models import fit_mixed

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DroppedRowsWarning)
        eff = pd.concat(
            [
                fit_mixed(small_study.study, "rating ~ gender", dimension=d).effects()
                for d in ("toxicity", "helpfulness")
            ],
            ignore_index=True,
        )
    ax = plots.forest(eff)
    assert next(t.get_text() for t in ax.get_yticklabels()).startswith("gender (vs ")
    table = plots.adjusted_intervals(eff, scale="link")
    assert (table["adj_high"] - table["adj_low"] >= table["ci_high"] - table["ci_low"] - 1e-9).all()
