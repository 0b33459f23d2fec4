"""Generate from a model, judge the generations, and summarise trained-vs-baseline changes with CIs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pluralign._compat import require
from pluralign._settings import options
from pluralign.describe import percentile_interval
from pluralign.train._config import turn, uses_chat

#: Measurement columns of :func:`summarise_runs` (after the condition columns).
SUMMARY_COLUMNS = (
    "dimension", "group", "baseline", "trained", "change", "change_ci_low", "change_ci_high",
    "reduction_pct", "reduction_pct_ci_low", "reduction_pct_ci_high", "n_seeds",
    "n_generations", "ci_prob",
)  # fmt: skip


def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    n_generations: int = 4,
    max_new_tokens: int = 32,
    seed: int = 0,
    temperature: float = 1.0,
    batch_size: int = 64,
) -> pd.DataFrame:
    """Sample completions for each prompt (chat template when the tokenizer has one).

    Returns
    -------
    DataFrame
        ``prompt_idx, gen_idx, prompt, text`` (one row per prompt × generation).

    Examples
    --------
    >>> from pluralign.train import tiny_model
    >>> model, tok = tiny_model()
    >>> out = generate(model, tok, ["Say hi."], n_generations=2, max_new_tokens=4)
    >>> out[["prompt_idx", "gen_idx"]].values.tolist()
    [[0, 0], [0, 1]]
    """
    torch = require("torch", "generation")
    device = next(model.parameters()).device
    if uses_chat(tokenizer):
        texts = [
            tokenizer.apply_chat_template(turn(p), tokenize=False, add_generation_prompt=True)
            for p in prompts
        ]
    else:
        texts = list(prompts)
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    was_training = model.training
    model.eval()
    rows = []
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            for start in range(0, len(texts), batch_size):
                chunk = texts[start : start + batch_size]
                enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False)
                enc = {k: v.to(device) for k, v in enc.items()}
                with torch.no_grad():
                    out = model.generate(
                        **enc,
                        do_sample=True,
                        temperature=temperature,
                        top_k=0,
                        top_p=1.0,
                        max_new_tokens=max_new_tokens,
                        num_return_sequences=n_generations,
                        pad_token_id=tokenizer.pad_token_id,
                    )
                completions = tokenizer.batch_decode(
                    out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True
                )
                for j, text in enumerate(completions):
                    i = start + j // n_generations
                    rows.append((i, j % n_generations, prompts[i], text.strip()))
    finally:
        tokenizer.padding_side = old_side
        model.train(was_training)
    return pd.DataFrame(rows, columns=["prompt_idx", "gen_idx", "prompt", "text"])


def judge_scores(judge: Any, texts: Sequence[str], group: Any) -> pd.DataFrame:
    """Scores of texts by a judge, as a long frame ``row, dimension, score``.

    ``judge`` is a callable ``judge(texts, group=...)`` or an object with ``.score(texts, group=...)``
    (e.g. :func:`pluralign.labels.reward_function`'s result). It may return a long frame with
    ``dimension`` and ``score`` columns (rows in text order within each dimension), a wide frame
    with one numeric column per dimension, or one number per text (dimension ``"score"``).

    Examples
    --------
    >>> def judge(texts, group=None):
    ...     return pd.DataFrame({"toxicity": [t.count("idiot") for t in texts]})
    >>> judge_scores(judge, ["hi", "idiot"], None)
       row dimension  score
    0    0  toxicity    0.0
    1    1  toxicity    1.0
    """
    texts = list(texts)
    call = judge.score if hasattr(judge, "score") else judge
    result = call(texts, group=group)
    n = len(texts)
    if isinstance(result, pd.DataFrame) and {"dimension", "score"} <= set(result.columns):
        frame = result[["dimension", "score"]].copy()
        frame["row"] = frame.groupby("dimension", sort=False).cumcount()
        if (frame.groupby("dimension", sort=False).size() != n).any():
            raise ValueError(
                f"judge returned a long frame whose dimensions do not each hold {n} scores "
                "(one per text)"
            )
    elif isinstance(result, pd.DataFrame):
        numeric = result.select_dtypes("number")
        if len(numeric) != n or numeric.empty:
            raise ValueError(
                f"judge returned a frame of {len(result)} rows and numeric columns "
                f"{list(numeric.columns)}; expected {n} rows, one numeric column per dimension"
            )
        frame = numeric.reset_index(drop=True).rename_axis("row").reset_index()
        frame = frame.melt(id_vars="row", var_name="dimension", value_name="score")
    else:
        values = np.asarray(result, dtype=float).reshape(-1)
        if values.size != n:
            raise ValueError(f"judge returned {values.size} scores for {n} texts")
        frame = pd.DataFrame({"row": np.arange(n), "dimension": "score", "score": values})
    frame["score"] = frame["score"].astype(float)
    return frame[["row", "dimension", "score"]].reset_index(drop=True)


def bootstrap_change(
    baseline: np.ndarray,
    trained: np.ndarray,
    *,
    n_boot: int,
    ci_prob: float,
    rng: np.random.Generator,
) -> dict[str, float]:
    """Change of mean score (trained - baseline) and reduction %, with hierarchical bootstrap CIs.

    Parameters
    ----------
    baseline, trained : array of shape (n_seeds, n_rows)
        Scores per seed and evaluation row (prompt × generation); the same rows are resampled
        for both, so prompt difficulty cancels out.
    n_boot, ci_prob : int, float
    rng : numpy.random.Generator

    Returns
    -------
    dict
        ``baseline, trained, change, change_ci_low, change_ci_high, reduction_pct,
        reduction_pct_ci_low, reduction_pct_ci_high``; reduction % is ``-100 · change / |baseline|`` (positive = the score fell).
        Seeds are resampled, then rows within each seed (both sources of variation).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> b = np.ones((2, 50)); t = b - 0.5 + rng.normal(0, 0.1, (2, 50))
    >>> out = bootstrap_change(b, t, n_boot=200, ci_prob=0.95, rng=rng)
    >>> bool(45 < out["reduction_pct"] < 55), bool(out["change_ci_high"] < 0)
    (True, True)
    """
    b = np.asarray(baseline, dtype=float)
    t = np.asarray(trained, dtype=float)
    n_seeds, n_rows = b.shape
    seeds = rng.integers(0, n_seeds, size=(n_boot, n_seeds, 1))
    rows = rng.integers(0, n_rows, size=(n_boot, n_seeds, n_rows))
    boot_b = b[seeds, rows].mean(axis=(1, 2))
    boot_t = t[seeds, rows].mean(axis=(1, 2))
    change = boot_t - boot_b
    with np.errstate(divide="ignore", invalid="ignore"):
        reduction = -100.0 * change / np.abs(boot_b)
    reduction[~np.isfinite(reduction)] = np.nan  # a zero baseline has no relative change
    (change_lo, red_lo), (change_hi, red_hi) = percentile_interval(
        np.column_stack([change, reduction]), ci_prob
    )
    mb, mt = b.mean(), t.mean()
    return {
        "baseline": mb,
        "trained": mt,
        "change": mt - mb,
        "change_ci_low": float(change_lo),
        "change_ci_high": float(change_hi),
        "reduction_pct": float(-100.0 * (mt - mb) / abs(mb)) if mb != 0 else np.nan,
        "reduction_pct_ci_low": float(red_lo),
        "reduction_pct_ci_high": float(red_hi),
    }


def summarise_runs(
    scores: pd.DataFrame,
    condition_columns: Sequence[str],
    *,
    ci_prob: float | None = None,
    n_boot: int | None = None,
    seed: int | None = None,
) -> pd.DataFrame:
    """Tidy trained-vs-baseline table from per-generation judged scores.

    ``scores`` has the condition columns, ``seed, prompt_idx, gen_idx, dimension, group`` and
    ``baseline``/``trained`` scores (one row per evaluation row and judge).
    """
    ci_prob = options.ci_prob if ci_prob is None else ci_prob
    n_boot = options.n_boot if n_boot is None else n_boot
    rng = np.random.default_rng(options.seed if seed is None else seed)
    keys = [*condition_columns, "dimension", "group"]
    out = []
    for key, part in scores.groupby(keys, sort=False, dropna=False):
        wide_b = part.pivot_table(
            index="seed", columns=["prompt_idx", "gen_idx"], values="baseline", aggfunc="mean"
        )
        wide_t = part.pivot_table(
            index="seed", columns=["prompt_idx", "gen_idx"], values="trained", aggfunc="mean"
        )
        wide_b, wide_t = wide_b.dropna(axis=1), wide_t.reindex_like(wide_b.dropna(axis=1))
        stats = bootstrap_change(
            wide_b.to_numpy(), wide_t.to_numpy(), n_boot=n_boot, ci_prob=ci_prob, rng=rng
        )
        row = dict(zip(keys, key, strict=True))
        row.update(stats)
        row["n_seeds"] = wide_b.shape[0]
        row["n_generations"] = wide_b.shape[1]
        out.append(row)
    table = pd.DataFrame(out, columns=[*keys, *SUMMARY_COLUMNS[2:-1]])
    table["ci_prob"] = ci_prob
    return table
