"""Alignment training over TRL: soft-label DPO, multi-reward GRPO, offline models and a condition grid.

``torch``, ``transformers`` and ``trl`` are imported only when a function needs them;
``SoftDPOTrainer`` and ``SoftPreferenceCollator`` (subclasses of TRL classes) are loaded on first
access.
"""

from __future__ import annotations

from typing import Any

from pluralign.train._config import TrainResult
from pluralign.train._dpo import DPO_DEFAULTS, as_preference_dataset, train_dpo
from pluralign.train._grid import GRID_COLUMNS, GRID_DEFAULTS, run_grid
from pluralign.train._grpo import GRPO_DEFAULTS, train_grpo
from pluralign.train._kernels import sigmoid_dpo_loss, soft_dpo_loss, soft_dpo_metrics
from pluralign.train._models import load_model, load_smollm2, smollm2_gguf_path, tiny_model

_LAZY = {"SoftDPOTrainer", "SoftPreferenceCollator", "check_trl_internals"}

__all__ = [
    "DPO_DEFAULTS",
    "GRID_COLUMNS",
    "GRID_DEFAULTS",
    "GRPO_DEFAULTS",
    "SoftDPOTrainer",
    "SoftPreferenceCollator",
    "TrainResult",
    "as_preference_dataset",
    "check_trl_internals",
    "load_model",
    "load_smollm2",
    "run_grid",
    "sigmoid_dpo_loss",
    "smollm2_gguf_path",
    "soft_dpo_loss",
    "soft_dpo_metrics",
    "tiny_model",
    "train_dpo",
    "train_grpo",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from pluralign.train import _soft_dpo

        return getattr(_soft_dpo, name)
    raise AttributeError(f"module 'pluralign.train' has no attribute {name!r}")
