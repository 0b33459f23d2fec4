"""Multi-value GRPO over TRL: several reward functions, weights, aggregation, per-reward metrics."""

import pytest

pytest.importorskip("trl")

from pluralign.train import tiny_model, train_grpo
from pluralign.train._grpo import NamedReward

PROMPTS = ["Say hi.", "Help me.", "Tell me a joke.", "How are you?"]
SMALL = {"max_steps": 2, "max_completion_length": 8, "per_device_train_batch_size": 4,
         "num_generations": 4, "learning_rate": 1e-3}  # fmt: skip


def brevity(prompts, completions, **kwargs):
    assert all(isinstance(c, str) for c in completions)  # plain text, not chat messages
    return [-len(c) / 10 for c in completions]


def vowels(prompts, completions, **kwargs):
    return [sum(ch in "aeiou" for ch in c) / max(len(c), 1) for c in completions]


@pytest.mark.parametrize(
    ("aggregation", "trl_name"),
    [("weighted_sum", "sum_then_normalize"), ("weighted_advantages", "normalize_then_sum")],
)
def test_grpo_with_two_rewards_logs_each(aggregation, trl_name):
    model, tok = tiny_model(seed=0)
    result = train_grpo(
        PROMPTS,
        [brevity, vowels],
        model=model,
        tokenizer=tok,
        weights=[1.0, 3.0],
        config=SMALL,
        aggregation=aggregation,
    )
    assert result.steps == 2
    assert result.config.multi_objective_aggregation == trl_name
    assert result.config.reward_weights == [1.0, 3.0]
    hist = result.history
    for name in ("brevity", "vowels"):
        assert f"rewards/{name}/mean" in hist and f"rewards/{name}/std" in hist
    # TRL's logged "reward" is the weighted sum of the per-reward means
    row = hist.iloc[0]
    assert row["reward"] == pytest.approx(
        row["rewards/brevity/mean"] + 3.0 * row["rewards/vowels/mean"], rel=1e-4, abs=1e-6
    )


def test_named_rewards_kl_reference_and_errors():
    model, tok = tiny_model(seed=1)
    # a dict names the rewards; beta > 0 needs a reference model, rebuilt from the in-memory model
    result = train_grpo(
        PROMPTS,
        {"short": brevity, "lively": vowels},
        model=model,
        tokenizer=tok,
        config={**SMALL, "max_steps": 1, "beta": 0.05},
    )
    assert {"rewards/short/mean", "rewards/lively/mean", "kl"} <= set(result.history)
    with pytest.raises(ValueError, match="one weight per function"):
        train_grpo(
            PROMPTS, [brevity, vowels], model=model, tokenizer=tok, weights=[1.0], config=SMALL
        )
    with pytest.raises(ValueError, match="aggregation"):
        train_grpo(PROMPTS, [brevity], model=model, tokenizer=tok, config=SMALL, aggregation="max")


def test_named_reward_reads_chat_messages_as_text():
    r = NamedReward(lambda prompts, completions, **kw: [len(prompts[0]) + len(completions[0])], "n")
    chat = [[{"role": "user", "content": "abc"}]]
    assert r(chat, [[{"role": "assistant", "content": "hello"}]]) == [8.0]
