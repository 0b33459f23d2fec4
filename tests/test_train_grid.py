"""The condition grid: tidy table, resumable runs, real labels, and movement on a simulated study."""

import itertools

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("trl")

from pluralign.data import EVERYONE, Population, simulate_study
from pluralign.train import run_grid
from pluralign.train._evaluate import bootstrap_change, judge_scores
from pluralign.train._grid import _groups

INSULTS = ("idiot", "stupid", "pathetic", "dumb", "fool", "worthless", "loser", "whining", "silly")
TINY = {
    "dpo": {"max_steps": 2, "per_device_train_batch_size": 4},
    "grpo": {"max_steps": 1, "per_device_train_batch_size": 4, "max_completion_length": 8},
    "eval": {"n_prompts": 3, "n_generations": 2, "max_new_tokens": 8},
    "summary": {"n_boot": 200},
}


def keyword_judge(texts, group=None):
    """Toxicity = share of words that are insults (a transparent stand-in for a rating model)."""
    rows = []
    for t in texts:
        words = [w.strip(".,!?;:'\"").lower() for w in t.split()] or [""]
        rows.append({"toxicity": sum(any(k in w for k in INSULTS) for w in words) / len(words)})
    return pd.DataFrame(rows)


class HandLabels:
    def __init__(self, table):
        self.table = table

    def to_dataset(self):
        import datasets

        return datasets.Dataset.from_pandas(self.table, preserve_index=False)


def hand_labels(
    study, method="distribution", group=None, dimensions=None, weights=None, fit=None, seed=None
):
    """Pairs within a prompt; the less toxic response (mean rating) is chosen."""
    tox = study.ratings[study.ratings["dimension"] == "toxicity"].groupby("item")["rating"].mean()
    items = study.items.set_index("item")
    rows = []
    for _, part in items.groupby("prompt_id"):
        for a, b in itertools.combinations([i for i in part.index if i in tox], 2):
            d = tox[b] - tox[a]
            p = 1 / (1 + np.exp(-2 * d)) if method == "distribution" else float(d > 0)
            ch, rj = (a, b) if p >= 0.5 else (b, a)
            rows.append(
                {
                    "prompt": part.loc[a, "prompt"],
                    "chosen": items.loc[ch, "response"],
                    "rejected": items.loc[rj, "response"],
                    "p_chosen": max(p, 1 - p),
                }
            )
    return HandLabels(pd.DataFrame(rows))


def hand_reward(study_or_fit, group=None, dimensions=None, weights=None, seed=None):
    return lambda prompts, completions, **kw: (-keyword_judge(completions)["toxicity"]).tolist()


@pytest.fixture(scope="module")
def small_study():
    return simulate_study(seed=2, n_raters=120, n_prompts=12).study


def test_grid_table_is_tidy_and_resumes(small_study, tmp_path, monkeypatch):
    kwargs = dict(groups=[None], optimizers=["dpo_hard", "grpo"], aggregations=["majority"], judge=keyword_judge, seeds=[0, 1],
                  out=tmp_path, config=TINY, labeller=hand_labels, rewarder=hand_reward,
                  progress=False)  # fmt: skip
    table = run_grid(small_study, **kwargs)
    # dpo per aggregation, grpo once ("reward"); one dimension, one judge group
    assert len(table) == 2
    assert set(table["aggregation"]) == {"majority", "reward"}
    assert (table["n_seeds"] == 2).all() and (table["n_generations"] == 3 * 2).all()
    assert (table["change_ci_low"] <= table["change"] + 1e-12).all()
    assert (table["change"] <= table["change_ci_high"] + 1e-12).all()
    assert np.allclose(table["change"], table["trained"] - table["baseline"])
    assert len(list((tmp_path / "runs").glob("*.parquet"))) == 4
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "summary.parquet"), table)

    # resuming trains nothing and gives the same table
    import pluralign.train._grid as grid

    def no_training(*a, **k):
        raise AssertionError("a finished condition was trained again")

    monkeypatch.setattr(grid, "train_dpo", no_training)
    monkeypatch.setattr(grid, "train_grpo", no_training)
    pd.testing.assert_frame_equal(run_grid(small_study, **kwargs), table)
    with pytest.raises(ValueError, match="other settings"):
        run_grid(small_study, **{**kwargs, "config": {**TINY, "summary": {"n_boot": 100}}})


def test_grid_with_study_labels_and_judge(small_study):
    """Default labeller, rescaling and judge (pluralign.labels), a group, binary scale."""
    table = run_grid(small_study, groups=[None, {"gender": "she/her"}],
                     scales=["binary"], optimizers=["dpo_soft"], seeds=[0], config=TINY,
                     progress=False)  # fmt: skip
    # groups are spelled as Population.label in every column
    assert set(table["train_group"]) == {EVERYONE, "gender=she/her"}
    assert set(table["group"]) == {EVERYONE, "gender=she/her"}  # every model judged by every group
    assert set(small_study.dimensions) <= set(table["dimension"])
    assert table[["baseline", "trained"]].notna().all().all()


def test_group_labels_and_forms():
    margins = {"gender": {"she/her": 0.5, "he/him": 0.5}}
    assert list(_groups(None)) == [EVERYONE]
    assert list(_groups(margins)) == ["poststratified[gender]"]  # margins, not a label map
    assert _groups(margins)["poststratified[gender]"].kind == "poststratified"
    named = _groups({"women": {"gender": "she/her"}, "mix": margins, "all raters": None})
    assert {k: v.label for k, v in named.items()} == {
        "women": "gender=she/her",
        "mix": "poststratified[gender]",
        "all raters": EVERYONE,
    }
    assert list(_groups([None, Population.group(gender="she/her")])) == [
        EVERYONE,
        "gender=she/her",
    ]
    other = {"gender": {"she/her": 0.7, "he/him": 0.3}}
    with pytest.raises(ValueError, match="both labelled 'poststratified"):
        _groups([margins, other])


def test_bootstrap_and_judge_shapes():
    rng = np.random.default_rng(0)
    base = rng.normal(2.0, 0.5, size=(3, 40))
    out = bootstrap_change(base, base - 0.5, n_boot=300, ci_prob=0.9, rng=rng)
    assert out["change"] == pytest.approx(-0.5)
    assert out["change_ci_low"] == pytest.approx(-0.5) and out["change_ci_high"] == pytest.approx(
        -0.5
    )
    assert out["reduction_pct"] == pytest.approx(100 * 0.5 / base.mean())
    long = judge_scores(
        lambda t, group=None: pd.DataFrame(
            {"dimension": ["a"] * len(t) + ["b"] * len(t), "score": range(2 * len(t))}
        ),
        ["x", "y"],
        None,
    )
    assert long.to_dict("list") == {
        "row": [0, 1, 0, 1],
        "dimension": ["a", "a", "b", "b"],
        "score": [0.0, 1.0, 2.0, 3.0],
    }
    with pytest.raises(ValueError, match="3 scores for 2 texts"):
        judge_scores(lambda t, group=None: [1, 2, 3], ["x", "y"], None)


@pytest.mark.slow
def test_soft_dpo_moves_judged_toxicity_beyond_ci():
    """Default budget: the trained tiny model's answers are judged less toxic than at baseline."""
    study = simulate_study(seed=1, n_raters=300, n_prompts=40).study
    table = run_grid(
        study,
        optimizers=["dpo_soft"],
        seeds=[0, 1],
        judge=keyword_judge,
        labeller=hand_labels,
        config={"eval": {"n_generations": 2}},
        progress=False,
    )
    row = table.iloc[0]
    assert row["change_ci_high"] < 0, row.to_dict()  # toxicity fell, CI excludes 0
