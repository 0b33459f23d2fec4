"""The text reward beats a constant predictor on held-out simulated texts."""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest

from pluralign.data import Population, Scale, Study
from pluralign.labels import _reward as reward_module
from pluralign.labels import completion_text, reward_function


@pytest.fixture(scope="module")
def reward_study():
    from pluralign.data import simulate_study

    return simulate_study(seed=5, n_raters=500, n_prompts=120).study


def test_reward_beats_constant_predictor(reward_study):
    reward = reward_function(reward_study, seed=1)
    h = reward.heldout_
    assert len(h) == 5
    assert (h["rmse"] < h["rmse_constant"]).all() and (h["r2"] > 0).all()
    assert (h["pearson"] > 0.3).all() and (h["spearman"] > 0.3).all()


def test_reward_follows_trl_signature(reward_study):
    reward = reward_function(
        reward_study,
        group={"gender": "she/her"},
        dimensions=["toxicity", "helpfulness"],
        seed=1,
        heldout=0,
        ridge=3.0,
    )
    assert reward.__name__ == "rating_reward_gender_she_her"
    assert reward.heldout_.empty
    assert reward.models_["toxicity"].named_steps["ridge"].alpha == 3.0  # the given penalty
    nice = "That sounds hard. Here is a concrete plan: write down the problem and take one step."
    rude = "You're an idiot and nobody cares about your stupid problems."
    out = reward(
        prompts=["Q"] * 2,
        completions=[nice, rude],
        completion_ids=[[1], [2]],
        trainer_state=None,
        log_extra=None,
        log_metric=None,
    )
    assert isinstance(out, list) and len(out) == 2 and all(isinstance(x, float) for x in out)
    assert out[0] > out[1]
    chat = reward(
        prompts=[[{"role": "user", "content": "Q"}]] * 2,
        completions=[
            [{"role": "assistant", "content": nice}],
            [{"role": "assistant", "content": rude}],
        ],
    )
    assert chat == pytest.approx(out)
    scores = reward.score([nice, rude])
    assert list(scores.columns) == ["toxicity", "helpfulness", "reward"]
    assert scores.loc[0, "toxicity"] < scores.loc[1, "toxicity"]
    assert scores[["toxicity", "helpfulness"]].stack().between(1, 5).all()


def test_completion_text_forms():
    assert completion_text("x") == "x"
    msgs = [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}]
    assert completion_text(msgs) == "a"
    assert (
        completion_text([{"role": "assistant", "content": [{"type": "text", "text": "t"}]}]) == "t"
    )
    with pytest.raises(TypeError):
        completion_text(3)


def test_model_based_targets_mix_patterns(monkeypatch):
    """With a fit, the targets are the pattern-probability mix of the model's expected ratings."""
    items = pd.DataFrame({"item": ["a", "b"], "prompt_id": "p", "response": ["x", "y"]})
    ratings = pd.DataFrame({"rater": ["r1", "r2", "r1"], "item": ["a", "a", "b"],
                            "dimension": "toxicity", "rating": [1, 2, 3]})  # fmt: skip
    study = Study.from_frames(ratings, items=items, scales=[Scale("toxicity", 1, 5)])
    pats = pd.DataFrame({"gender": ["she/her", "he/him"]})
    monkeypatch.setattr(
        reward_module, "_patterns", lambda fit, dims, target: (pats, np.array([0.25, 0.75]))
    )
    expected = {
        ("she/her", "a"): 2.0,
        ("he/him", "a"): 4.0,
        ("she/her", "b"): 1.0,
        ("he/him", "b"): 1.0,
    }

    def predict(rows):
        keys = zip(rows["gender"], rows["item"], strict=True)
        return rows.assign(prediction=[expected[k] for k in keys])

    design = types.SimpleNamespace(item_levels=np.array(["a", "b"]))
    fit = types.SimpleNamespace(fits={"toxicity": types.SimpleNamespace(design=design)},
                                predict=predict)  # fmt: skip
    out = reward_module.model_item_means(fit, study, Population.parse(None), ["toxicity"])
    out = out.set_index("item")
    assert out.loc["a", "mean"] == pytest.approx(0.25 * 2 + 0.75 * 4)
    assert out.loc["b", "mean"] == pytest.approx(1.0)
    assert out["n"].to_dict() == {"a": 2, "b": 1}
