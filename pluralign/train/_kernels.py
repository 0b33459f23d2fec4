"""Soft-label preference maths on tensors: the bottom layer, no trainer or dataset code.

For a preference pair with DPO margin ``h`` (policy-minus-reference log-ratio of the chosen
response minus that of the rejected one) and probability ``p`` that raters prefer the chosen
response, the soft-label DPO loss is the binary cross-entropy between ``p`` and the model's
implied preference probability ``σ(βh)``::

    loss = -p · log σ(βh) - (1 - p) · log σ(-βh) = softplus(-βh) + (1 - p) · βh

With ``p = 1`` it is TRL's ``sigmoid`` DPO loss; its gradient ``β (σ(βh) - p)`` vanishes when
the implied probability equals ``p``.
"""

from __future__ import annotations

from typing import Any

from pluralign._compat import require


def soft_dpo_loss(margins: Any, p: Any, beta: float) -> Any:
    """Per-pair soft-label DPO loss ``-p log σ(βh) - (1-p) log σ(-βh)``.

    Parameters
    ----------
    margins : torch.Tensor
        DPO log-ratio margins ``h`` (one per pair).
    p : torch.Tensor or float
        Probability that the chosen response is preferred, in [0, 1].
    beta : float
        DPO temperature β.

    Returns
    -------
    torch.Tensor
        Loss per pair (same shape as ``margins``).

    Examples
    --------
    >>> import torch
    >>> h = torch.tensor([0.0, 2.0])
    >>> soft_dpo_loss(h, torch.tensor([0.5, 1.0]), beta=1.0)
    tensor([0.6931, 0.1269])
    """
    torch = require("torch", "soft-label DPO")
    functional = torch.nn.functional
    z = beta * margins
    p = torch.as_tensor(p, dtype=margins.dtype, device=margins.device)
    return -(p * functional.logsigmoid(z) + (1.0 - p) * functional.logsigmoid(-z))


def sigmoid_dpo_loss(margins: Any, beta: float) -> Any:
    """Per-pair hard-label DPO loss ``-log σ(βh)`` (TRL's ``loss_type="sigmoid"``).

    Examples
    --------
    >>> import torch
    >>> sigmoid_dpo_loss(torch.tensor([0.0]), beta=0.1)
    tensor([0.6931])
    """
    torch = require("torch", "DPO")
    return -torch.nn.functional.logsigmoid(beta * margins)


def soft_dpo_metrics(margins: Any, p: Any, beta: float) -> dict[str, Any]:
    """Per-pair soft-label diagnostics (tensors; average them over a batch).

    Returns
    -------
    dict
        ``p_chosen`` (the label), ``prob_chosen`` = σ(βh) (the model's implied probability that the
        chosen response is preferred), ``accuracy`` = expected agreement with a rater drawn from
        the label distribution, ``p·1[h>0] + (1-p)·1[h<0] + ½·1[h=0]``, and ``abs_error`` = |σ(βh) - p|.

    Examples
    --------
    >>> import torch
    >>> m = soft_dpo_metrics(torch.tensor([1.0, -1.0]), torch.tensor([0.8, 0.8]), beta=1.0)
    >>> m["accuracy"]
    tensor([0.8000, 0.2000])
    """
    torch = require("torch", "soft-label DPO")
    p = torch.as_tensor(p, dtype=margins.dtype, device=margins.device)
    prob = torch.sigmoid(beta * margins)
    sign = torch.sign(margins)
    accuracy = p * (sign > 0) + (1.0 - p) * (sign < 0) + 0.5 * (sign == 0)
    return {
        "p_chosen": p,
        "prob_chosen": prob,
        "accuracy": accuracy,
        "abs_error": (prob - p).abs(),
    }
