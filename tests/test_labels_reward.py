"""The text reward beats a constant predictor on held-out simulated texts."""

from __future__ import annotations

import pytest

from pluralign.labels import reward_function
from pluralign.labels._reward import completion_text


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
    )
    assert reward.__name__ == "rating_reward_gender_she_her"
    assert reward.heldout_.empty
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
