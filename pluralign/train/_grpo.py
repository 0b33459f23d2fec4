"""Multi-value GRPO over TRL's GRPOTrainer: several reward functions, weights, and their aggregation."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pandas as pd

from pluralign._compat import require
from pluralign.train._config import TrainResult, build_config, train_with, turn, uses_chat

#: Defaults of :func:`train_grpo` on top of TRL's ``GRPOConfig`` (override any through ``config``).
GRPO_DEFAULTS: Mapping[str, Any] = {
    "per_device_train_batch_size": 4,
    "num_generations": 4,
    "max_completion_length": 32,
    "learning_rate": 1e-5,
}

#: ``aggregation`` names and TRL 1.16's ``GRPOConfig.multi_objective_aggregation`` values.
AGGREGATIONS: Mapping[str, str] = {
    # weighted sum of raw rewards, then one advantage from the sum (TRL's default)
    "weighted_sum": "sum_then_normalize",
    "sum_then_normalize": "sum_then_normalize",
    # each reward normalised within its group first, then the weighted sum of these advantages (GDPO)
    "weighted_advantages": "normalize_then_sum",
    "normalize_then_sum": "normalize_then_sum",
}


def _text(value: Any) -> str:
    """Plain text of a prompt or completion given as a string or as chat messages."""
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence) and value and isinstance(value[-1], Mapping):
        return str(value[-1].get("content", ""))
    return str(value)


class NamedReward:
    """A reward function with a display name, optionally fed plain text instead of chat messages.

    TRL names its per-reward metrics ``rewards/<name>/mean`` after the callable's ``__name__``;
    with ``as_text=True`` conversational prompts and completions reach the function as the text
    of their last message, so the same function serves plain and chat datasets.

    Examples
    --------
    >>> r = NamedReward(lambda prompts, completions, **kw: [float(len(c)) for c in completions],
    ...                 "length")
    >>> r(["hi"], [[{"role": "assistant", "content": "hello"}]])
    [5.0]
    >>> r.__name__
    'length'
    """

    def __init__(self, func: Callable[..., list[float]], name: str, as_text: bool = True) -> None:
        self.func = func
        self.__name__ = name
        self.as_text = as_text

    def __call__(self, prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float]:
        if self.as_text:
            prompts = [_text(p) for p in prompts]
            completions = [_text(c) for c in completions]
        out = self.func(prompts, completions, **kwargs)
        return [None if v is None else float(v) for v in out]


def _named_rewards(
    reward_funcs: Callable[..., list[float]]
    | Sequence[Callable[..., list[float]]]
    | Mapping[str, Callable[..., list[float]]],
    as_text: bool,
) -> list[NamedReward]:
    if callable(reward_funcs):
        reward_funcs = [reward_funcs]
    if isinstance(reward_funcs, Mapping):
        items = [(str(k), f) for k, f in reward_funcs.items()]
    else:
        items = []
        for i, f in enumerate(reward_funcs):
            name = getattr(f, "__name__", None) or getattr(f, "name", None) or type(f).__name__
            items.append((f"{name}" if name != "<lambda>" else f"reward_{i}", f))
    if not items:
        raise ValueError("train_grpo needs at least one reward function")
    names = [n for n, _ in items]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        items = [(f"{n}_{i}" if n in dupes else n, f) for i, (n, f) in enumerate(items)]
    for name, f in items:
        if not callable(f):
            raise TypeError(f"reward function {name!r} is not callable")
    return [NamedReward(f, n, as_text) for n, f in items]


def as_prompt_dataset(prompts: Any, tokenizer: Any) -> Any:
    """A ``datasets.Dataset`` with a ``prompt`` column (chat messages when the tokenizer has a template).

    Examples
    --------
    >>> from pluralign.train import tiny_model
    >>> _, tok = tiny_model()
    >>> as_prompt_dataset(["Say hi."], tok)[0]["prompt"]
    [{'role': 'user', 'content': 'Say hi.'}]
    """
    datasets = require("datasets", "GRPO prompts")
    if isinstance(prompts, pd.DataFrame):
        prompts = datasets.Dataset.from_pandas(prompts, preserve_index=False)
    if isinstance(prompts, datasets.Dataset):
        if "prompt" not in prompts.column_names:
            raise KeyError(f"prompt dataset lacks a 'prompt' column; it has {prompts.column_names}")
        return prompts
    texts = [str(p) for p in prompts]
    if not texts:
        raise ValueError("train_grpo needs at least one prompt")
    if uses_chat(tokenizer):
        return datasets.Dataset.from_dict({"prompt": [turn(t) for t in texts]})
    return datasets.Dataset.from_dict({"prompt": texts})


@contextlib.contextmanager
def _loadable_from_path(model: Any, needed: bool) -> Iterator[None]:
    """Let TRL build a reference model "from the model's path" for a model that only lives in memory."""
    if not needed:
        yield
        return
    with tempfile.TemporaryDirectory(prefix="pluralign-ref-") as tmp:
        old = model.config._name_or_path
        model.save_pretrained(tmp)
        model.config._name_or_path = tmp
        try:
            yield
        finally:
            model.config._name_or_path = old


def train_grpo(
    prompts: Any,
    reward_funcs: Any,
    *,
    model: Any,
    tokenizer: Any,
    weights: Sequence[float] | None = None,
    config: Any = None,
    aggregation: str = "weighted_sum",
    as_text: bool = True,
    peft_config: Any = None,
    callbacks: list[Any] | None = None,
) -> TrainResult:
    """GRPO with several reward functions (values, rater groups), weighted and aggregated.

    Parameters
    ----------
    prompts : list of str, DataFrame or datasets.Dataset
        Training prompts. Strings become chat messages when the tokenizer has a chat template.
        Extra dataset columns reach the reward functions as keyword arguments.
    reward_funcs : callable, list of callables or dict name → callable
        Each ``(prompts, completions, **kwargs) -> list[float]`` (TRL's signature), one per value
        dimension and/or rater group. Names (dict keys or ``__name__``) label the logged metrics
        ``rewards/<name>/mean`` and ``rewards/<name>/std``.
    model : transformers.PreTrainedModel
        Policy to train (trained in place).
    tokenizer : transformers.PreTrainedTokenizerBase
    weights : list of float, optional
        One weight per reward function (``GRPOConfig.reward_weights``); None = all 1.
    config : dict or trl.GRPOConfig, optional
        A ``GRPOConfig`` is used as is (``weights`` and ``aggregation`` are then written into it);
        a dict overrides :data:`GRPO_DEFAULTS` and the device defaults.
    aggregation : {"weighted_sum", "weighted_advantages"}
        ``"weighted_sum"``: advantages from the weighted sum of raw rewards (TRL's
        ``sum_then_normalize``); ``"weighted_advantages"``: each reward normalised within its
        group of completions, then weighted and summed (TRL's ``normalize_then_sum``, GDPO), so
        a reward on a wide scale cannot swamp one on a narrow scale. TRL's names are accepted too.
    as_text : bool
        Give reward functions plain text (last message content) rather than chat messages.
    peft_config : peft.PeftConfig, optional
    callbacks : list of transformers.TrainerCallback, optional

    Returns
    -------
    TrainResult
        ``history`` has ``reward`` (weighted), ``rewards/<name>/mean`` and ``/std`` per step.

    Examples
    --------
    >>> from pluralign.train import tiny_model
    >>> model, tok = tiny_model(seed=0)
    >>> def short(prompts, completions, **kw):
    ...     return [-len(c) / 10 for c in completions]
    >>> def polite(prompts, completions, **kw):
    ...     return [float("thank" in c) for c in completions]
    >>> result = train_grpo(["Say hi."] * 4, [short, polite], model=model, tokenizer=tok,
    ...                     weights=[1.0, 2.0], config={"max_steps": 1, "max_completion_length": 8})
    >>> sorted(c for c in result.history if c.startswith("rewards/") and c.endswith("/mean"))
    ['rewards/polite/mean', 'rewards/short/mean']
    """
    trl = require("trl", "GRPO training")
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {sorted(AGGREGATIONS)}, got {aggregation!r}")
    rewards = _named_rewards(reward_funcs, as_text)
    if weights is not None:
        weights = [float(w) for w in weights]
        if len(weights) != len(rewards):
            raise ValueError(
                f"{len(weights)} weights for {len(rewards)} reward functions "
                f"({[r.__name__ for r in rewards]}); give one weight per function"
            )
    dataset = as_prompt_dataset(prompts, tokenizer)
    with tempfile.TemporaryDirectory(prefix="pluralign-grpo-") as tmp:
        overrides = {
            "reward_weights": weights,
            "multi_objective_aggregation": AGGREGATIONS[aggregation],
        }
        if isinstance(config, trl.GRPOConfig):
            args = config
            for key, value in overrides.items():
                setattr(args, key, value)
        else:
            args = build_config(
                trl.GRPOConfig, {**overrides, **dict(config or {})}, tmp, GRPO_DEFAULTS
            )
        needs_path = args.beta != 0.0 and peft_config is None
        result = train_with(
            trl.GRPOTrainer,
            args,
            model,
            tokenizer,
            dataset,
            peft_config=peft_config,
            callbacks=callbacks,
            while_building=_loadable_from_path(model, needs_path),
            reward_funcs=rewards,
        )
    return result
