"""``SoftDPOTrainer``: TRL's DPOTrainer with a per-pair preference probability ``p_chosen``.

This module imports ``trl`` at import time; :mod:`pluralign.train` imports it lazily.

TRL 1.16 computes every DPO loss inside the private ``DPOTrainer._compute_loss``. Rather than
copying that method, the override runs it unchanged (reference model, PEFT adapters, precomputed
reference log-probs, length-desensitised ``ld_alpha``, metrics, MoE auxiliary loss) and records the
per-token log-probabilities its forward passes return through forward hooks. From them it rebuilds
the margins ``h`` exactly as TRL does and adds the soft-label correction::

    loss = trl_sigmoid_loss + mean_i[ soft_dpo_loss(h_i, p_i) - sigmoid_dpo_loss(h_i) ]

whose value and gradient are those of the mean soft-label loss (the two sigmoid terms are the same
computation and cancel exactly). It costs no extra forward pass.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass
from typing import Any

import torch
import trl
from trl.trainer.dpo_trainer import DataCollatorForPreference, DPOTrainer

from pluralign._errors import PluralignWarning
from pluralign.train._kernels import sigmoid_dpo_loss, soft_dpo_loss, soft_dpo_metrics

#: Column (and batch key) holding the probability that the chosen response is preferred.
P_COLUMN = "p_chosen"
#: TRL version whose internals the override was written against (pinned in pyproject.toml).
TRL_VERSION = "1.16.0"


def check_trl_internals() -> None:
    """Raise a RuntimeError naming the TRL internal that moved, if the override can no longer work.

    ``SoftDPOTrainer`` relies on: ``DPOTrainer._compute_loss(self, model, inputs, return_outputs)``
    computing the ``sigmoid`` loss from forward passes called with ``fused_lm_head=True`` (outputs
    carry ``log_probs``); ``DPOTrainer._set_signature_columns_if_needed`` (column pruning);
    ``DPOTrainer.compute_ref_log_probs(self, model, inputs)``; and ``DataCollatorForPreference``
    producing ``completion_mask``.

    Examples
    --------
    >>> check_trl_internals()
    """
    problems = []
    compute = getattr(DPOTrainer, "_compute_loss", None)
    if compute is None:
        problems.append("DPOTrainer._compute_loss no longer exists")
    else:
        params = list(inspect.signature(compute).parameters)
        if params != ["self", "model", "inputs", "return_outputs"]:
            problems.append(
                f"DPOTrainer._compute_loss signature is {params}, expected "
                "['self', 'model', 'inputs', 'return_outputs']"
            )
        source = inspect.getsource(compute)
        for needle in (
            "fused_lm_head=True",
            "-F.logsigmoid(self.beta * delta_score)",
            ".log_probs",
        ):
            if needle not in source:
                problems.append(f"DPOTrainer._compute_loss no longer contains {needle!r}")
    ref = getattr(DPOTrainer, "compute_ref_log_probs", None)
    if ref is None or list(inspect.signature(ref).parameters) != ["self", "model", "inputs"]:
        problems.append("DPOTrainer.compute_ref_log_probs(self, model, inputs) moved")
    if not hasattr(DPOTrainer, "_set_signature_columns_if_needed"):
        problems.append("DPOTrainer._set_signature_columns_if_needed moved")
    if "completion_mask" not in inspect.getsource(DataCollatorForPreference):
        problems.append("DataCollatorForPreference no longer returns completion_mask")
    if problems:
        raise RuntimeError(
            f"SoftDPOTrainer was written against trl=={TRL_VERSION} internals, and installed "
            f"trl=={trl.__version__} differs: " + "; ".join(problems) + ". Install trl=="
            f"{TRL_VERSION} (the version pluralign pins)."
        )
    if trl.__version__ != TRL_VERSION:
        warnings.warn(
            f"SoftDPOTrainer was tested with trl=={TRL_VERSION}; installed trl=={trl.__version__} "
            "passes the internal checks but is untested",
            PluralignWarning,
            stacklevel=2,
        )


@dataclass
class SoftPreferenceCollator:
    """Wrap a preference collator so that batches also carry ``p_chosen`` (float32, one per pair).

    TRL's :class:`~trl.trainer.dpo_trainer.DataCollatorForPreference` ignores unknown keys; this
    wrapper calls it (or any collator given to the trainer) and adds the label tensor.

    Examples
    --------
    >>> base = DataCollatorForPreference(pad_token_id=0)
    >>> batch = SoftPreferenceCollator(base)([
    ...     {"prompt_ids": [1, 2], "chosen_ids": [3], "rejected_ids": [4, 5], "p_chosen": 0.7},
    ...     {"prompt_ids": [6], "chosen_ids": [7], "rejected_ids": [8], "p_chosen": 1.0}])
    >>> batch["p_chosen"]
    tensor([0.7000, 1.0000])
    >>> batch["input_ids"].shape
    torch.Size([4, 4])
    """

    base: Any

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        missing = [i for i, ex in enumerate(examples) if P_COLUMN not in ex]
        if missing:
            raise KeyError(
                f"preference examples {missing[:5]} lack the {P_COLUMN!r} column: add the probability "
                "that the chosen response is preferred (1.0 for hard labels)"
            )
        p = torch.tensor([float(ex[P_COLUMN]) for ex in examples], dtype=torch.float32)
        batch = self.base(examples)
        batch[P_COLUMN] = p
        return batch


def _sequence_logps(per_token_logps: Any, shift_mask: Any, ld_alpha: float | None) -> Any:
    """Sequence log-probabilities from per-token ones, as ``DPOTrainer._compute_loss`` sums them."""
    if ld_alpha is None:
        return per_token_logps.sum(dim=1)
    comp_pos = shift_mask.cumsum(dim=1)
    chosen_lens, rejected_lens = shift_mask.sum(dim=1).long().chunk(2, dim=0)
    shared = torch.minimum(chosen_lens, rejected_lens)
    shared = torch.cat([shared, shared], dim=0).to(per_token_logps.device).unsqueeze(1)
    shared_mask = (comp_pos > 0) & (comp_pos <= shared)
    tail_mask = comp_pos > shared
    return (per_token_logps * shared_mask).sum(dim=1) + ld_alpha * (
        per_token_logps * tail_mask
    ).sum(dim=1)


class SoftDPOTrainer(DPOTrainer):
    """TRL ``DPOTrainer`` trained on soft preference labels ``p_chosen`` instead of hard ones.

    Each example needs ``prompt``, ``chosen``, ``rejected`` and ``p_chosen`` (probability that
    ``chosen`` is preferred). The loss per pair is ``-p log σ(βh) - (1-p) log σ(-βh)``
    (:func:`~pluralign.train.soft_dpo_loss`), equal to TRL's ``sigmoid`` loss when ``p = 1``.
    Everything else is TRL's: PEFT/LoRA, gradient accumulation, precomputed reference
    log-probabilities, accelerate multi-GPU. Logged metrics add ``soft/p_chosen`` (mean label),
    ``soft/prob_chosen`` (mean σ(βh)), ``soft/accuracy`` (expected agreement with a rater drawn
    from the label) and ``soft/abs_error`` (mean |σ(βh) - p|).

    Only ``loss_type=["sigmoid"]`` with ``f_divergence_type="reverse_kl"`` and no WPO weighting is
    supported: soft labels are a property of the Bradley–Terry likelihood that loss maximises.
    ``label_smoothing`` must stay 0 (it is ignored by the ``sigmoid`` loss; encode uncertainty in
    ``p_chosen`` instead).

    Parameters
    ----------
    *args, **kwargs
        As :class:`trl.DPOTrainer`.

    See Also
    --------
    pluralign.train.train_dpo : builds the configuration and runs this trainer.

    Examples
    --------
    A configuration the soft-label loss would silently ignore is refused:

    >>> import copy, tempfile
    >>> import pandas as pd
    >>> from pluralign.train import as_preference_dataset, tiny_model
    >>> model, tok = tiny_model(seed=0)
    >>> pairs = as_preference_dataset(pd.DataFrame({"prompt": ["Say hi."], "chosen": ["Hello."],
    ...                                             "rejected": ["Go away."], "p_chosen": [0.8]}))
    >>> args = trl.DPOConfig(output_dir=tempfile.mkdtemp(), label_smoothing=0.1,
    ...                      report_to="none", use_cpu=True, activation_checkpointing=False)
    >>> SoftDPOTrainer(model=model, ref_model=copy.deepcopy(model), args=args,
    ...                train_dataset=pairs, processing_class=tok)
    Traceback (most recent call last):
    ValueError: label_smoothing=0.1 is ignored by TRL's sigmoid loss; ...
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        check_trl_internals()
        super().__init__(*args, **kwargs)
        if list(self.loss_types) != ["sigmoid"] or self.f_divergence_type != "reverse_kl":
            raise ValueError(
                f"SoftDPOTrainer needs loss_type=['sigmoid'] and f_divergence_type='reverse_kl', got "
                f"loss_type={self.loss_types}, f_divergence_type={self.f_divergence_type!r}"
            )
        if self.use_weighting or list(self.loss_weights) != [1.0]:
            raise ValueError("SoftDPOTrainer does not support use_weighting or loss_weights")
        if self.label_smoothing:
            raise ValueError(
                f"label_smoothing={self.label_smoothing} is ignored by TRL's sigmoid loss; put the "
                "uncertainty in the p_chosen column instead and set label_smoothing=0"
            )
        self.data_collator = SoftPreferenceCollator(self.data_collator)

    # ------------------------------------------------------------------ data plumbing
    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if P_COLUMN not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, P_COLUMN]

    def compute_ref_log_probs(self, model: Any, inputs: dict[str, Any]) -> Any:
        inputs = {k: v for k, v in inputs.items() if k != P_COLUMN}
        return super().compute_ref_log_probs(model, inputs)

    # ------------------------------------------------------------------ loss
    def _compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool) -> Any:
        inputs = dict(inputs)
        p = inputs.pop(P_COLUMN, None)  # every other key goes to the model
        if p is None:
            raise KeyError(
                f"the batch has no {P_COLUMN!r}: the data collator must be wrapped in "
                "SoftPreferenceCollator (SoftDPOTrainer does this in __init__)"
            )
        policy_out: list[Any] = []
        ref_out: list[Any] = []

        def record(into: list[Any]) -> Any:
            def hook(module: Any, args: Any, kwargs: Any, output: Any) -> None:
                if kwargs.get("fused_lm_head"):
                    into.append(output.log_probs)

            return hook

        handles = [self.model.register_forward_hook(record(policy_out), with_kwargs=True)]
        if self.ref_model is not None and not self.precompute_ref_logps:
            handles.append(self.ref_model.register_forward_hook(record(ref_out), with_kwargs=True))
        try:
            result = super()._compute_loss(model, inputs, return_outputs)
        finally:
            for handle in handles:
                handle.remove()
        stock_loss = result[0] if return_outputs else result

        seq_len = inputs["completion_mask"].size(1) - 1
        shift_mask = inputs["completion_mask"][..., 1:]
        peft_ref = self.ref_model is None and not self.precompute_ref_logps
        expected = 2 if peft_ref else 1
        if len(policy_out) != expected or (
            self.ref_model is not None and not ref_out and not self.precompute_ref_logps
        ):
            raise RuntimeError(
                "DPOTrainer._compute_loss (trl) no longer runs the policy/reference forward passes "
                f"SoftDPOTrainer expects (saw {len(policy_out)} policy and {len(ref_out)} reference "
                f"passes, expected {expected} and {int(self.ref_model is not None)}); pin "
                f"trl=={TRL_VERSION}"
            )
        logps = _sequence_logps(policy_out[0][:, -seq_len:], shift_mask, self.ld_alpha)
        chosen, rejected = logps.chunk(2, dim=0)
        if self.precompute_ref_logps:
            ref_chosen, ref_rejected = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        else:
            ref_tokens = (ref_out[0] if ref_out else policy_out[1])[:, -seq_len:]
            ref_logps = _sequence_logps(ref_tokens, shift_mask, self.ld_alpha)
            ref_chosen, ref_rejected = ref_logps.chunk(2, dim=0)
        margins = (chosen - ref_chosen) - (rejected - ref_rejected)
        p = p.to(device=margins.device, dtype=margins.dtype)
        correction = (
            soft_dpo_loss(margins, p, self.beta) - sigmoid_dpo_loss(margins, self.beta)
        ).mean()
        loss = stock_loss + correction

        mode = "train" if self.model.training else "eval"
        with torch.no_grad():
            per_pair = soft_dpo_metrics(margins.detach(), p, self.beta)
            per_pair["loss"] = soft_dpo_loss(margins.detach(), p, self.beta)
            for name, values in per_pair.items():
                gathered = self.accelerator.gather_for_metrics(values)
                self._metrics[mode][f"soft/{name}"].append(gathered.float().mean().item())
        return (loss, result[1]) if return_outputs else loss
