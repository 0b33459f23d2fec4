"""The end-to-end demo: simulate a study, analyse it, build labels, train a tiny model, write the report."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

from tqdm.auto import tqdm

from pluralign.report._render import Table, Text
from pluralign.report._report import (
    Analysis,
    stage_agreement,
    stage_data,
    stage_describe,
    stage_labels,
    stage_models,
    stage_training,
    write,
)

#: Size of the simulated study: the default design, and a smaller one for ``fast=True``.
DEMO_DESIGN = {"n_raters": 1095}
FAST_DESIGN = {"n_raters": 150}
#: Bayesian ordinal fit of one dimension: modest draws keep the demo within minutes.
DEMO_BAYES = {"dimension": "toxicity", "draws": 400, "tune": 400, "chains": 2}
FAST_BAYES = {"dimension": "toxicity", "draws": 150, "tune": 150, "chains": 2}


def run_demo(out: str | Path, *, seed: int = 0, fast: bool = False) -> Path:
    """Run the whole pipeline on a simulated study and write the report.

    Stages: simulate → describe → models (linear mixed model of every dimension, Bayesian
    ordinal model of one) → agreement → preference labels (majority, distribution, posterior)
    → soft-label DPO of a tiny model → report. A stage whose optional extra is missing is
    skipped and the report says so.

    Parameters
    ----------
    out : str or Path
        Folder for ``report.html``, ``report.md``, figures, CSVs and the simulated study.
    seed : int
        Seed of the simulation, the samplers and the training.
    fast : bool
        A smaller study and fewer draws / training steps (for tests); same stages.

    Returns
    -------
    Path
        The HTML report.

    Examples
    --------
    >>> import tempfile
    >>> path = run_demo(tempfile.mkdtemp(), fast=True)  # doctest: +SKIP
    """
    from pluralign.data import simulate_study

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    design = FAST_DESIGN if fast else DEMO_DESIGN
    bayes = FAST_BAYES if fast else DEMO_BAYES
    timings: dict[str, float] = {}
    stages = ["simulate", "describe", "models", "agreement", "labels", "training", "report"]
    bar = tqdm(stages, desc="pluralign demo", unit="stage")
    a: Analysis | None = None
    for stage in bar:
        bar.set_postfix_str(stage)
        t0 = time.perf_counter()
        if stage == "simulate":
            sim = simulate_study(seed=seed, **design)
            study = sim.study
            a = Analysis(study, study.dimensions, _demo_demographics(study), seed)
            a.results["truth"] = sim.truth
            stage_data(a)
        elif stage == "describe":
            stage_describe(a)
        elif stage == "models":
            stage_models(a, ("mixed", "bayes"), bayes)
        elif stage == "agreement":
            stage_agreement(a)
        elif stage == "labels":
            stage_labels(a)
        elif stage == "training":
            stage_training(a, None, runner=partial(_train, a, out, fast=fast))
        elif stage == "report":
            s = a.section("Run", "run")
            s.add(Text(f"Demo run with seed {seed}{' (fast mode)' if fast else ''}."))
            s.add(Table(_timing_table(timings), "Wall time of each stage (seconds)"))
            path = write(a, out, title="pluralign demo: simulated study")
        timings[stage] = time.perf_counter() - t0
    bar.close()
    print(f"Report written to {path.resolve()}")
    return path


def _demo_demographics(study) -> list[str]:
    wanted = ["gender", "race", "age", "ideology", "country"]
    return [d for d in wanted if d in study.demographics] or study.demographics[:3]


def _timing_table(timings: dict[str, float]):
    import pandas as pd

    return pd.DataFrame({"stage": list(timings), "seconds": list(timings.values())})


def _train(a: Analysis, out: Path, *, fast: bool):
    """Soft-label DPO of a tiny model on the labels of a few rater groups (``run_grid``)."""
    from pluralign.train import run_grid

    return run_grid(a.study, out=out / "training", seeds=(a.seed,))
