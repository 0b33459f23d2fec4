"""Soft-label DPO over TRL: equality with TRL's loss, vanishing gradient, movement, TRL paths."""

import copy

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")

from pluralign.train import (  # noqa: E402
    SoftDPOTrainer,
    SoftPreferenceCollator,
    check_trl_internals,
    tiny_model,
    train_dpo,
)

PAIRS = [
    ("Say hi.", "Hello, friend. Good morning!", "Go away."),
    ("Help me with my homework.", "Sure, happy to help with that.", "Shut up, idiot."),
    ("How do I cook rice?", "Rinse it, then simmer for twenty minutes.", "Nobody cares."),
    ("Tell me a joke.", "Cats and dogs walk into a bar...", "You are the joke."),
]
CPU = {"max_steps": 1, "per_device_train_batch_size": 4, "learning_rate": 1e-2, "seed": 0}


def pairs(p):
    frame = pd.DataFrame(PAIRS, columns=["prompt", "chosen", "rejected"])
    frame["p_chosen"] = p
    return frame


def make_trainer(cls, model, tok, data, **config):
    import tempfile

    from pluralign.train._config import build_config
    from pluralign.train._dpo import DPO_DEFAULTS, as_preference_dataset

    args = build_config(trl.DPOConfig, {**CPU, **config}, tempfile.mkdtemp(), DPO_DEFAULTS)
    ref = copy.deepcopy(model).eval()
    return cls(
        model=model,
        ref_model=ref,
        args=args,
        train_dataset=as_preference_dataset(data),
        processing_class=tok,
    )


def first_batch(trainer):
    batch = next(iter(trainer.get_train_dataloader()))
    return trainer._prepare_inputs(batch)


def test_trl_internals_are_where_the_override_expects_them():
    check_trl_internals()  # raises a RuntimeError naming the internal that moved
    assert trl.__version__ == "1.16.0"


def test_moved_trl_internal_fails_loudly(monkeypatch):
    from trl.trainer.dpo_trainer import DPOTrainer

    monkeypatch.setattr(DPOTrainer, "_compute_loss", lambda self, model, inputs: None)
    with pytest.raises(RuntimeError, match=r"_compute_loss signature"):
        check_trl_internals()


def test_hard_labels_give_trls_sigmoid_loss_and_gradients():
    model, tok = tiny_model(seed=0)
    soft = make_trainer(SoftDPOTrainer, copy.deepcopy(model), tok, pairs(1.0))
    stock = make_trainer(trl.DPOTrainer, copy.deepcopy(model), tok, pairs(1.0))
    # move the policies off the reference so the margins are not all zero
    for trainer in (soft, stock):
        with torch.no_grad():
            for param in trainer.model.parameters():
                param.add_(0.05 * torch.sin(torch.arange(param.numel()).reshape(param.shape)))
    batch = first_batch(soft)
    assert batch["p_chosen"].tolist() == [1.0] * 4
    stock_batch = {k: v for k, v in batch.items() if k != "p_chosen"}
    loss_soft = soft.compute_loss(soft.model, batch)
    loss_stock = stock.compute_loss(stock.model, stock_batch)
    assert abs(loss_stock.item() - np.log(2)) > 1e-3  # a real margin
    assert loss_soft.item() == pytest.approx(loss_stock.item(), abs=1e-6)
    loss_soft.backward()
    loss_stock.backward()
    for a, b in zip(soft.model.parameters(), stock.model.parameters(), strict=True):
        assert torch.allclose(a.grad, b.grad, atol=1e-6)
    assert soft._metrics["train"]["soft/loss"][-1] == pytest.approx(loss_stock.item(), abs=1e-6)


def test_half_labels_give_zero_gradient_at_zero_margin():
    model, tok = tiny_model(seed=1)
    trainer = make_trainer(SoftDPOTrainer, model, tok, pairs(0.5))
    batch = first_batch(trainer)
    loss = trainer.compute_loss(trainer.model, batch)  # policy == reference: h = 0
    assert loss.item() == pytest.approx(np.log(2), abs=1e-6)
    loss.backward()
    grads = torch.cat([p.grad.flatten() for p in trainer.model.parameters()])
    assert grads.abs().max().item() < 1e-7
    # while hard labels at the same point do push
    hard = make_trainer(SoftDPOTrainer, copy.deepcopy(model), tok, pairs(1.0))
    hard.compute_loss(hard.model, first_batch(hard)).backward()
    assert max(p.grad.abs().max().item() for p in hard.model.parameters()) > 1e-4


@pytest.mark.parametrize("p", [0.8, 0.25])
def test_training_moves_implied_probability_towards_label(p):
    model, tok = tiny_model(seed=0)
    result = train_dpo(pairs(p), model, tok, config={**CPU, "max_steps": 25, "beta": 0.5})
    prob = result.history["soft/prob_chosen"].to_numpy()
    assert prob[0] == pytest.approx(0.5, abs=1e-6)
    assert abs(prob[-1] - p) < 0.1
    assert abs(prob[-1] - p) < abs(prob[0] - p) / 2
    assert result.history["soft/p_chosen"].iloc[-1] == pytest.approx(p)
    assert {"soft/accuracy", "soft/abs_error", "rewards/margins"} <= set(result.history)


def test_precomputed_reference_lora_and_accumulation_still_work():
    peft = pytest.importorskip("peft")
    model, tok = tiny_model(seed=2)
    # precomputed reference log-probs, no reference model kept
    res = train_dpo(
        pairs(0.7),
        copy.deepcopy(model),
        tok,
        config={**CPU, "max_steps": 2, "precompute_ref_log_probs": True},
    )
    assert res.history["soft/loss"].iloc[0] == pytest.approx(np.log(2) * 1, abs=1e-5)
    # LoRA adapter: the reference is the model with the adapter disabled
    lora = peft.LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"
    )
    res = train_dpo(
        pairs(0.7), copy.deepcopy(model), tok, config={**CPU, "max_steps": 2}, peft_config=lora
    )
    assert isinstance(res.model, peft.PeftModel)
    assert res.steps == 2
    # gradient accumulation
    res = train_dpo(
        pairs(0.7),
        copy.deepcopy(model),
        tok,
        config={
            **CPU,
            "max_steps": 2,
            "per_device_train_batch_size": 2,
            "gradient_accumulation_steps": 2,
        },
    )
    assert res.steps == 2 and np.isfinite(res.history["loss"]).all()


def test_collator_and_columns_survive_trls_pruning():
    model, tok = tiny_model(seed=0)
    trainer = make_trainer(SoftDPOTrainer, model, tok, pairs(0.3))
    assert isinstance(trainer.data_collator, SoftPreferenceCollator)
    assert "p_chosen" in trainer.train_dataset.column_names
    batch = first_batch(trainer)
    assert batch["p_chosen"].tolist() == pytest.approx([0.3] * 4)
    assert "p_chosen" not in trainer.model.forward.__code__.co_varnames


def test_bad_inputs_are_named():
    model, tok = tiny_model(seed=0)
    with pytest.raises(ValueError, match="p_chosen"):
        train_dpo(pairs(1.5), model, tok, config=CPU)
    with pytest.raises(KeyError, match="p_chosen"):
        train_dpo(pairs(1.0).drop(columns="p_chosen"), model, tok, config=CPU)
    with pytest.raises(ValueError, match="label_smoothing"):
        train_dpo(pairs(1.0), model, tok, config={**CPU, "label_smoothing": 0.1})
    with pytest.raises(ValueError, match="sigmoid"):
        train_dpo(pairs(1.0), model, tok, config={**CPU, "loss_type": ["ipo"]})


LABELS = {"Say hi.": 0.9, "Help me with my homework.": 0.15, "How do I cook rice?": 0.6,
          "Tell me a joke.": 0.35}  # fmt: skip


def _soft_loss(h, p, beta):
    """Soft-DPO loss of one pair, written out: -[p log σ(βh) + (1-p) log σ(-βh)]."""
    return -(p * np.log(1 / (1 + np.exp(-beta * h))) + (1 - p) * np.log(1 / (1 + np.exp(beta * h))))


def test_per_pair_labels_stay_attached_and_act_on_their_own_pair(monkeypatch):
    """Different labels per pair, shuffled: each label weights its own pair's loss and gradient."""
    from pluralign.train import _soft_dpo

    model, tok = tiny_model(seed=3)
    data = pairs([LABELS[q] for q, _, _ in PAIRS]).sample(frac=1.0, random_state=5)
    trainer = make_trainer(SoftDPOTrainer, model, tok, data, beta=1.0)
    with torch.no_grad():  # policy off the reference: distinct non-zero margins per pair
        for param in trainer.model.parameters():
            param.add_(0.3 * torch.sin(1.7 * torch.arange(param.numel()).reshape(param.shape)))
    seen = []

    def spy(margins, p, beta):
        if margins.requires_grad:
            seen.append(margins.detach().clone())
        return _soft_dpo_loss(margins, p, beta)

    _soft_dpo_loss = _soft_dpo.soft_dpo_loss
    monkeypatch.setattr(_soft_dpo, "soft_dpo_loss", spy)
    batch = first_batch(trainer)
    n = len(batch["p_chosen"])
    rows = [tok.decode(r, skip_special_tokens=True) for r in batch["input_ids"][:n]]
    prompt = [next(q for q in LABELS if row.startswith(q)) for row in rows]
    assert sorted(prompt) == sorted(LABELS)
    # the label of each row is that row's pair's label, after the dataset and loader shuffles
    assert batch["p_chosen"].tolist() == pytest.approx([LABELS[q] for q in prompt])

    def loss_and_grad(p):
        trainer.model.zero_grad()
        loss = trainer.compute_loss(trainer.model, {**batch, "p_chosen": torch.tensor(p)})
        loss.backward()
        grad = torch.cat([q.grad.flatten() for q in trainer.model.parameters()])
        return loss.item(), grad, seen[-1].numpy().astype(float)

    p = np.array([LABELS[q] for q in prompt])
    loss, grad, h = loss_and_grad(p)
    assert np.ptp(h) > 0.5  # margins differ, so a misplaced label changes the loss
    beta = trainer.beta
    assert loss == pytest.approx(np.mean(_soft_loss(h, p, beta)), abs=1e-5)
    assert abs(np.mean(_soft_loss(h, np.roll(p, 1), beta)) - loss) > 1e-3
    # labels at each pair's implied probability σ(βh): the gradient vanishes only when every
    # label sits on its own pair
    sig = 1 / (1 + np.exp(-beta * h))
    _, g_fit, _ = loss_and_grad(sig)
    _, g_rolled, _ = loss_and_grad(np.roll(sig, 1))
    assert g_fit.norm() < 1e-4 * grad.norm()
    assert g_rolled.norm() > 1e-2 * grad.norm()
    # pair by pair: with the others at σ(βh), a small step raises pair i's margin when its label
    # is above σ(βh_i) and lowers it when below (the gradient's sign flips where p crosses σ)
    state = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    for i in range(n):
        for delta in (-0.2, 0.2):
            q = sig.copy()
            q[i] += delta
            _, g, _ = loss_and_grad(q)
            with torch.no_grad():
                offset = 0
                for param in trainer.model.parameters():
                    param.sub_(1e-3 * g[offset : offset + param.numel()].reshape(param.shape))
                    offset += param.numel()
            _, _, h_after = loss_and_grad(sig)
            trainer.model.load_state_dict(state)
            moved = h_after - h
            assert np.sign(moved[i]) == np.sign(delta), (i, delta, moved)
            others = np.delete(np.abs(moved), i)
            assert abs(moved[i]) > others.max(), (i, delta, moved)
