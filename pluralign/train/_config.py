"""Training configurations with defaults that work on a laptop CPU and on a GPU, and the result type."""

from __future__ import annotations

import contextlib
import dataclasses
import html
import warnings
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from pluralign._compat import require
from pluralign._settings import options


@dataclass(frozen=True)
class TrainResult:
    """A trained model and what happened while training it.

    Returned by :func:`~pluralign.train.train_dpo` and :func:`~pluralign.train.train_grpo`.

    Attributes
    ----------
    model : transformers.PreTrainedModel
        The trained policy (a ``PeftModel`` when trained with a PEFT config).
    tokenizer : transformers.PreTrainedTokenizerBase
    history : DataFrame
        One row per logged step (``step``, ``loss``, ``learning_rate``, TRL's metrics and, for
        soft-label DPO, ``soft/p_chosen``, ``soft/prob_chosen``, ``soft/accuracy``,
        ``soft/abs_error``, ``soft/loss``; for GRPO ``rewards/<name>/mean`` per reward function).
    metrics : dict
        Final ``Trainer.train`` metrics (``train_runtime``, ``train_loss``...).
    config : TrainingArguments
        The TRL configuration used.

    See Also
    --------
    pluralign.train.train_dpo : soft-label DPO.
    pluralign.train.train_grpo : multi-reward GRPO.
    pluralign.train.run_grid : many trainings, judged per group.

    Examples
    --------
    >>> import pandas as pd
    >>> result = TrainResult(model=None, tokenizer=None,
    ...                      history=pd.DataFrame({"step": [1, 2], "loss": [0.69, 0.52]}),
    ...                      metrics={"train_loss": 0.6})
    >>> result
    <TrainResult: 2 steps, final loss 0.52>
    >>> result.steps
    2
    >>> "<table" in result._repr_html_()
    True
    """

    model: Any
    tokenizer: Any
    history: pd.DataFrame
    metrics: Mapping[str, float] = field(default_factory=dict)
    config: Any = None

    @property
    def steps(self) -> int:
        """Number of optimiser steps taken."""
        return int(self.history["step"].max()) if "step" in self.history else 0

    def __repr__(self) -> str:
        loss = ""
        if "loss" in self.history and self.history["loss"].notna().any():
            loss = f", final loss {self.history['loss'].dropna().iloc[-1]:.4g}"
        return f"<TrainResult: {self.steps} steps{loss}>"

    def _repr_html_(self) -> str:
        parts = [f"<p><b>{html.escape(repr(self).strip('<>'))}</b></p>"]
        if self.metrics:
            metrics = pd.DataFrame(
                {"metric": list(self.metrics), "value": list(self.metrics.values())}
            )
            parts.append(metrics.to_html(index=False))
        parts.append("<p>Last logged steps (<code>.history</code>):</p>")
        parts.append(self.history.tail(5).to_html(index=False))
        return "\n".join(parts)


def uses_chat(tokenizer: Any) -> bool:
    """Whether prompts go to this tokenizer's model as chat messages (it has a chat template)."""
    return bool(getattr(tokenizer, "chat_template", None))


def turn(text: str, role: str = "user") -> list[dict[str, str]]:
    """One chat turn, in the message layout of chat templates and TRL's conversational data.

    Examples
    --------
    >>> turn("Say hi.")
    [{'role': 'user', 'content': 'Say hi.'}]
    """
    return [{"role": role, "content": text}]


def default_device_options() -> dict[str, Any]:
    """bf16 and CPU options for the machine at hand: bf16 on a bf16-capable GPU, float32 on CPU.

    Examples
    --------
    >>> opts = default_device_options()
    >>> sorted(opts)
    ['activation_checkpointing', 'bf16', 'use_cpu']
    """
    torch = require("torch", "training")
    cuda = torch.cuda.is_available()
    return {
        "bf16": bool(cuda and torch.cuda.is_bf16_supported()),
        "use_cpu": not cuda,
        # transformers 5 renamed gradient_checkpointing; setting the new name avoids its FutureWarning
        "activation_checkpointing": False,
    }


def build_config(cls: type, config: Any, output_dir: str, defaults: Mapping[str, Any]) -> Any:
    """A TRL config: ``config`` itself if it is already one, else ``cls(**defaults | config)``.

    ``config`` may be None, a mapping of overrides, or an instance of ``cls`` (used as is).
    """
    if isinstance(config, cls):
        return config
    if config is not None and not isinstance(config, Mapping):
        raise TypeError(
            f"config must be None, a dict of {cls.__name__} fields or a {cls.__name__}, "
            f"got {type(config).__name__}"
        )
    known = {f.name for f in dataclasses.fields(cls)}
    config = dict(config or {})
    for old, new in (
        ("gradient_checkpointing", "activation_checkpointing"),
        ("gradient_checkpointing_kwargs", "activation_checkpointing_kwargs"),
    ):
        if old in config and new not in config:
            config[new] = config.pop(old)
    merged = {
        "output_dir": output_dir,
        "report_to": "none",
        "save_strategy": "no",
        "logging_steps": 1,
        "seed": options.seed,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        **default_device_options(),
        **defaults,
        **config,
    }
    unknown = sorted(set(merged) - known)
    if unknown:
        raise TypeError(f"{cls.__name__} has no field(s) {unknown}")
    return cls(**merged)


def history_frame(log_history: list[dict[str, Any]]) -> pd.DataFrame:
    """Trainer's ``state.log_history`` as a tidy frame of per-step logs (final summary row removed)."""
    rows = [r for r in log_history if "train_runtime" not in r]
    frame = pd.DataFrame(rows)
    if "step" in frame:
        frame = frame.groupby("step", as_index=False).last()
    return frame


def final_metrics(log_history: list[dict[str, Any]]) -> dict[str, float]:
    """The summary row Trainer logs at the end of training."""
    for row in reversed(log_history):
        if "train_runtime" in row:
            return {k: float(v) for k, v in row.items() if isinstance(v, int | float)}
    return {}


def quiet_trainer(trainer: Any) -> None:
    """Drop the callback that prints every log dict to stdout when the progress bar is disabled."""
    transformers = require("transformers")
    if trainer.args.disable_tqdm:
        trainer.remove_callback(transformers.trainer_callback.PrinterCallback)


@contextlib.contextmanager
def quiet_datasets() -> Iterator[None]:
    """Hide ``datasets``' progress bars (TRL tokenizing a dataset) for a block; restored afterwards.

    Training reports its own progress; the per-``map`` bars of the library underneath are noise.
    """
    ds_logging = require("datasets.utils.logging", "training")
    was = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            ds_logging.enable_progress_bar()


def run_trainer(trainer: Any, tokenizer: Any) -> TrainResult:
    """Train a configured TRL trainer and collect the model, per-step logs and final metrics."""
    quiet_trainer(trainer)
    with quiet_datasets(), warnings.catch_warnings():
        # TRL reads transformers' deprecated alias; the notice is for TRL's authors, not our users
        warnings.filterwarnings(
            "ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning
        )
        trainer.train()
    log = list(trainer.state.log_history)
    return TrainResult(
        model=trainer.model,
        tokenizer=tokenizer,
        history=history_frame(log),
        metrics=final_metrics(log),
        config=trainer.args,
    )


def train_with(
    trainer_cls: type,
    args: Any,
    model: Any,
    tokenizer: Any,
    train_dataset: Any,
    *,
    while_building: AbstractContextManager | None = None,
    **trainer_kwargs: Any,
) -> TrainResult:
    """Build a TRL trainer (its datasets tokenized quietly), train it and collect the result.

    ``while_building`` is a context held only while the trainer is built; ``trainer_kwargs``
    are the trainer's other arguments (``peft_config``, ``callbacks``, ``ref_model``,
    ``reward_funcs``...).
    """
    with while_building or contextlib.nullcontext(), quiet_datasets():
        trainer = trainer_cls(
            model=model,
            args=args,
            train_dataset=train_dataset,
            processing_class=tokenizer,
            **trainer_kwargs,
        )
    return run_trainer(trainer, tokenizer)
