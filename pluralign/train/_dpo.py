"""User-facing soft-label DPO: validate the preference data, configure TRL, train, return a TrainResult."""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from pluralign._compat import require
from pluralign.train._config import TrainResult, build_config, train_with

#: Defaults of :func:`train_dpo` on top of TRL's ``DPOConfig`` (override any through ``config``).
DPO_DEFAULTS: Mapping[str, Any] = {
    "per_device_train_batch_size": 8,
    "learning_rate": 5e-6,
    "beta": 0.1,
    "max_length": 512,
    "loss_type": ["sigmoid"],
}


def as_preference_dataset(data: Any, p_column: str = "p_chosen") -> Any:
    """A ``datasets.Dataset`` with ``prompt, chosen, rejected, p_chosen`` from several inputs.

    Parameters
    ----------
    data : datasets.Dataset, DataFrame or PreferenceLabels
        Preference pairs. An object with ``to_dataset()`` (``PreferenceLabels``) is converted.
    p_column : str
        Column holding the probability that ``chosen`` is preferred; renamed to ``p_chosen``.

    Raises
    ------
    KeyError
        If a required column is missing.
    ValueError
        If probabilities are missing or outside [0, 1].

    Examples
    --------
    >>> import pandas as pd
    >>> ds = as_preference_dataset(pd.DataFrame({"prompt": ["Hi"], "chosen": ["Hello!"],
    ...                                          "rejected": ["Go away."], "p_chosen": [0.8]}))
    >>> ds.column_names
    ['prompt', 'chosen', 'rejected', 'p_chosen']
    """
    datasets = require("datasets", "preference data")
    if hasattr(data, "to_dataset") and not isinstance(data, datasets.Dataset):
        data = data.to_dataset()
    if isinstance(data, pd.DataFrame):
        data = datasets.Dataset.from_pandas(data, preserve_index=False)
    if not isinstance(data, datasets.Dataset):
        raise TypeError(
            f"preference data must be a datasets.Dataset, a DataFrame or PreferenceLabels, got "
            f"{type(data).__name__}"
        )
    if p_column != "p_chosen" and p_column in data.column_names:
        if "p_chosen" in data.column_names:
            data = data.remove_columns("p_chosen")
        data = data.rename_column(p_column, "p_chosen")
    missing = [
        c for c in ("prompt", "chosen", "rejected", "p_chosen") if c not in data.column_names
    ]
    if missing:
        raise KeyError(
            f"preference data lacks column(s) {missing}; it needs prompt, chosen, rejected and "
            f"{p_column!r} (probability that chosen is preferred; 1.0 for hard labels)"
        )
    p = np.asarray(data["p_chosen"], dtype=float)
    bad = np.flatnonzero(~np.isfinite(p) | (p < 0) | (p > 1))
    if bad.size:
        raise ValueError(
            f"column {p_column!r} must hold probabilities in [0, 1]; rows {bad[:5].tolist()} hold "
            f"{p[bad[:5]].tolist()}"
        )
    return data


def train_dpo(
    dataset: Any,
    model: Any,
    tokenizer: Any,
    *,
    config: Any = None,
    ref_model: Any = None,
    p_column: str = "p_chosen",
    eval_dataset: Any = None,
    peft_config: Any = None,
    callbacks: list[Any] | None = None,
) -> TrainResult:
    """Soft-label DPO: ``loss_i = -p_i log σ(βh_i) - (1-p_i) log σ(-βh_i)`` over TRL's DPOTrainer.

    ``h_i`` is the usual DPO margin (policy-minus-reference log-ratio of the chosen response minus
    that of the rejected one) and ``p_i`` the probability that raters prefer the chosen response.
    With all ``p_i = 1`` this is TRL's standard (``sigmoid``) DPO.

    Parameters
    ----------
    dataset : datasets.Dataset, DataFrame or PreferenceLabels
        Columns ``prompt, chosen, rejected`` and ``p_column`` (plain text or conversational).
    model : transformers.PreTrainedModel
        Policy to train (trained in place).
    tokenizer : transformers.PreTrainedTokenizerBase
    config : dict or trl.DPOConfig, optional
        A ``DPOConfig`` is used as is; a dict overrides :data:`DPO_DEFAULTS` and the device
        defaults (float32 on CPU, bf16 on a GPU that supports it, no gradient checkpointing,
        no checkpoints saved, ``report_to="none"``). Set ``max_steps`` or ``num_train_epochs``.
    ref_model : transformers.PreTrainedModel, optional
        Frozen reference policy. If None: with ``peft_config`` the adapter is disabled, with
        ``precompute_ref_log_probs=True`` the model before training is used once, otherwise a
        deep copy of ``model`` (TRL would reload it from ``model.config``'s path, which fails for
        a model built in memory).
    p_column : str
        Name of the probability column.
    eval_dataset : optional
        Same format as ``dataset``; evaluated per ``eval_strategy``.
    peft_config : peft.PeftConfig, optional
        Train a LoRA (or other PEFT) adapter instead of all weights.
    callbacks : list of transformers.TrainerCallback, optional

    Returns
    -------
    TrainResult
        ``history`` holds the soft metrics per step: ``soft/p_chosen``, ``soft/prob_chosen``
        (σ(βh)), ``soft/accuracy``, ``soft/abs_error``, ``soft/loss``.

    See Also
    --------
    SoftDPOTrainer : the trainer class, for full control.
    soft_dpo_loss : the loss on tensors.

    Examples
    --------
    >>> import pandas as pd
    >>> from pluralign.train import tiny_model
    >>> model, tok = tiny_model(seed=0)
    >>> pairs = pd.DataFrame({"prompt": ["Say hi."] * 4, "chosen": ["Hello, friend."] * 4,
    ...                       "rejected": ["Go away."] * 4, "p_chosen": [0.9] * 4})
    >>> result = train_dpo(pairs, model, tok, config={"max_steps": 3, "learning_rate": 1e-2,
    ...                                               "per_device_train_batch_size": 4})
    >>> result.steps
    3
    >>> bool(result.history["soft/prob_chosen"].iloc[-1] > 0.5)
    True
    """
    trl = require("trl", "DPO training")
    from pluralign.train._soft_dpo import SoftDPOTrainer

    train = as_preference_dataset(dataset, p_column)
    evaluation = as_preference_dataset(eval_dataset, p_column) if eval_dataset is not None else None
    with tempfile.TemporaryDirectory(prefix="pluralign-dpo-") as tmp:
        args = build_config(trl.DPOConfig, config, tmp, DPO_DEFAULTS)
        if ref_model is None and peft_config is None and not args.precompute_ref_log_probs:
            ref_model = copy.deepcopy(model)
            ref_model.eval()
        result = train_with(
            SoftDPOTrainer,
            args,
            model,
            tokenizer,
            train,
            peft_config=peft_config,
            callbacks=callbacks,
            ref_model=ref_model,
            eval_dataset=evaluation,
        )
    return result
