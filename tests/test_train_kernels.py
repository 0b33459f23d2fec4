"""Soft-label DPO maths on tensors, checked against closed forms."""

import math

import pytest

torch = pytest.importorskip("torch")

from pluralign.train import sigmoid_dpo_loss, soft_dpo_loss, soft_dpo_metrics  # noqa: E402


def test_soft_loss_reduces_to_sigmoid_dpo_with_hard_labels():
    h = torch.linspace(-30, 30, 61, dtype=torch.float64)
    assert torch.allclose(soft_dpo_loss(h, 1.0, 0.1), sigmoid_dpo_loss(h, 0.1), atol=1e-12)
    # p = 0 is DPO with chosen and rejected swapped
    assert torch.allclose(soft_dpo_loss(h, 0.0, 0.1), sigmoid_dpo_loss(-h, 0.1), atol=1e-12)


def test_soft_loss_hand_values_and_identity():
    # -0.5 log σ(0) - 0.5 log σ(0) = log 2
    assert soft_dpo_loss(torch.tensor([0.0]), 0.5, 1.0).item() == pytest.approx(math.log(2))
    # -0.8 log σ(2) - 0.2 log σ(-2)
    expected = -0.8 * math.log(1 / (1 + math.exp(-2))) - 0.2 * math.log(1 / (1 + math.exp(2)))
    got = soft_dpo_loss(torch.tensor([20.0]), torch.tensor([0.8]), 0.1).item()
    assert got == pytest.approx(expected, rel=1e-6)
    # softplus(-βh) + (1 - p) βh
    h = torch.randn(100, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 10
    p = torch.rand(100, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ident = torch.nn.functional.softplus(-0.3 * h) + (1 - p) * 0.3 * h
    assert torch.allclose(soft_dpo_loss(h, p, 0.3), ident, atol=1e-12)


def test_gradient_is_beta_times_prob_minus_label_and_vanishes_at_p():
    beta = 0.5
    p = torch.tensor([0.5, 0.9, 0.2, 1.0], dtype=torch.float64)
    h = torch.tensor([0.0, 1.0, -3.0, 2.0], dtype=torch.float64, requires_grad=True)
    soft_dpo_loss(h, p, beta).sum().backward()
    assert torch.allclose(h.grad, beta * (torch.sigmoid(beta * h.detach()) - p), atol=1e-12)
    assert h.grad[0].item() == 0.0  # p = 0.5 at h = 0
    # the loss is minimised where σ(βh) = p, i.e. h = logit(p) / β
    target = torch.logit(p[:3]) / beta
    h2 = target.clone().requires_grad_(True)
    soft_dpo_loss(h2, p[:3], beta).sum().backward()
    assert torch.allclose(h2.grad, torch.zeros(3, dtype=torch.float64), atol=1e-12)


def test_soft_metrics_hand_values():
    m = soft_dpo_metrics(torch.tensor([2.0, -1.0, 0.0]), torch.tensor([0.9, 0.7, 0.6]), beta=1.0)
    assert m["accuracy"].tolist() == pytest.approx([0.9, 0.3, 0.5])
    assert m["prob_chosen"].tolist() == pytest.approx(
        [1 / (1 + math.exp(-2)), 1 / (1 + math.exp(1)), 0.5]
    )
    assert m["abs_error"][2].item() == pytest.approx(0.1)
