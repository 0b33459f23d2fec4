"""The end-to-end demo: simulate a study, analyse it, build labels, train a tiny model, write the report."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import pandas as pd

from pluralign._compat import tqdm
from pluralign.report._analysis import Analysis
from pluralign.report._coverage import interval_note
from pluralign.report._options import ReportOptions
from pluralign.report._render import Table, Text
from pluralign.report._report import (
    _label_dimensions,
    stage_agreement,
    stage_data,
    stage_describe,
    stage_labels,
    stage_training,
    write,
)
from pluralign.report._stage_models import stage_models

#: Demographics compared in the demo (party is left out: it is nested in country and ideology).
DEMO_DEMOGRAPHICS = ("gender", "race", "age", "ideology", "country")

#: The mixed model's formula: ideology crossed with the LLM that wrote the response (an item
#: column), so that the report shows the ideology contrasts on each LLM's responses.
FORMULA = "rating ~ gender + race + age + country + ideology * source_model"

#: The Bayesian model's formula: the two demographics whose groups disagree on particular items in
#: the simulation. Few demographic patterns also keep posterior labels quick to compute.
BAYES_FORMULA = "rating ~ gender + ideology"

#: Report settings of the full demo (``fast=True`` takes fewer draws and resamples).
REPORT = ReportOptions(
    models=("mixed", "bayes"),
    formula=FORMULA,
    item_covariates=("source_model",),
    bayes_dimension="toxicity",
    bayes_formula=BAYES_FORMULA,
    draws=500,
    tune=500,
    chains=2,
    n_boot=200,
    posterior_draws=100,
    posterior_prompts=60,
    title="pluralign demo: a simulated rating study",
)

#: Settings of the full demo and of ``fast=True`` (a smaller study, fewer draws and steps).
SETTINGS = {
    False: {
        "design": {},  # the simulator's default: 1,095 raters x 5 items x 5 dimensions
        "report": REPORT,
        "grid": {
            "groups": [None],
            "aggregations": ("majority", "distribution"),
            "config": {
                "dpo": {"max_steps": 30},
                "eval": {"n_prompts": 8, "n_generations": 2},
                "summary": {"n_boot": 200},
            },
        },
    },
    True: {
        "design": {"n_raters": 200, "n_prompts": 40},
        "report": REPORT.replace(
            draws=100, tune=100, n_boot=50, posterior_draws=20, posterior_prompts=10
        ),
        "grid": {
            "groups": [None],
            "aggregations": ("distribution",),
            "config": {
                "dpo": {"max_steps": 4},
                "eval": {"n_prompts": 4, "n_generations": 1},
                "summary": {"n_boot": 50},
            },
        },
    },
}

STAGES = ("simulate", "describe", "models", "agreement", "labels", "training", "report")


def run_demo(out: str | Path, *, seed: int = 0, fast: bool = False) -> Path:
    """Run the whole pipeline on a simulated study and write the report.

    Stages: simulate → describe → models (linear mixed model of every dimension, Bayesian
    ordinal model of toxicity) → agreement → preference labels (majority, distribution,
    posterior) → soft-label DPO of a tiny model (:func:`pluralign.train.run_grid`) → report.
    A stage whose optional extra is missing is skipped and the report says so. The simulated
    study is saved in ``out/study`` so that the analysis scripts can reproduce every figure.

    Parameters
    ----------
    out : str or Path
        Folder for ``report.html``, ``report.md``, figures, CSVs, the study and the training runs.
    seed : int
        Seed of the simulation, the bootstrap, the sampler and the training.
    fast : bool
        A smaller study, fewer draws and training steps (for tests); the same stages.

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
    cfg = SETTINGS[bool(fast)]
    timings: dict[str, float] = {}
    start = time.perf_counter()
    a: Analysis | None = None
    sim = None
    with tqdm(total=len(STAGES), desc="pluralign demo", unit="stage") as bar:
        for stage in STAGES:
            bar.set_postfix_str(stage)
            t0 = time.perf_counter()
            if stage == "simulate":
                sim = simulate_study(seed=seed, **cfg["design"])
                study = sim.study
                study.to_parquet(out / "study")
                demos = [d for d in DEMO_DEMOGRAPHICS if d in study.demographics]
                a = Analysis(study, study.dimensions, demos, seed, cfg["report"].replace(seed=seed))
                stage_data(a)
            elif stage == "describe":
                stage_describe(a)
            elif stage == "models":
                stage_models(a)
                _recovery(a, sim)
            elif stage == "agreement":
                stage_agreement(a)
            elif stage == "labels":
                stage_labels(a)
            elif stage == "training":
                stage_training(a, None, runner=partial(_train, a, out, cfg["grid"]))
            elif stage == "report":
                s = a.section("About this run", "run")
                s.add(
                    Text(
                        f"Demo on a simulated study (seed {seed}{', fast mode' if fast else ''}); "
                        f"the study is saved in `{out / 'study'}`. Regenerate its figures and tables "
                        f"with `python analysis/figures.py {out / 'study'} --out DIR` and "
                        f"`python analysis/tables.py {out / 'study'} --out DIR`."
                    )
                )
                timings["total before writing"] = time.perf_counter() - start
                s.add(
                    Table(
                        _timing_table(timings),
                        "Wall time of each stage (seconds)",
                        name="run_timings",
                    )
                )
                path = write(a, out)
            if stage != "report":
                timings[stage] = time.perf_counter() - t0
            bar.update()
    print(f"Report written to {path.resolve()} ({time.perf_counter() - start:.0f} s)")
    return path


def _timing_table(timings: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame({"stage": list(timings), "seconds": list(timings.values())})


def _recovery(a: Analysis, sim) -> None:
    """Compare the mixed model's relative differences with the simulated truth."""
    eff = a.results.get("mixed_effects")
    if eff is None or sim is None:
        return
    truth = sim.truth.fixed_effects[["dimension", "term", "level", "reference", "relative_pct"]]
    both = eff.merge(truth, on=["dimension", "term", "level", "reference"], suffixes=("", "_true"))
    if both.empty:
        return
    both["covered"] = both["relative_pct_true"].between(
        both["relative_ci_low"], both["relative_ci_high"]
    )
    a.results["recovery"] = both
    shown = both[both["relative_pct_true"].abs() > 0]
    s = next(sec for sec in a.sections if sec.anchor == "models")
    s.add(
        Text(
            f"Recovery of the simulated truth: the linear mixed model's intervals (in percent of the "
            f"reference mean) cover the true relative difference for {both['covered'].mean():.0%} "
            f"of {len(both)} contrasts. Non-zero true effects:"
        )
    )
    cols = ["dimension", "term", "level", "reference", "relative_pct_true", "relative_pct",
            "relative_ci_low", "relative_ci_high", "covered"]  # fmt: skip
    s.add(
        Table(
            shown[cols],
            "Simulated (true) vs estimated relative differences (percent)",
            name="recovery",
            note=interval_note(
                "percentile intervals of simulations from N(β̂, V̂)",
                "coverage is counted without any multiplicity adjustment",
                "mixed_relative",
            ),
        )
    )


def _train(a: Analysis, out: Path, grid: dict) -> pd.DataFrame:
    """Soft-label DPO of a tiny model on the study's labels, judged per group (``run_grid``)."""
    from pluralign.train import run_grid

    return run_grid(
        a.study,
        groups=grid["groups"],
        aggregations=grid["aggregations"],
        optimizers=("dpo_soft",),
        seeds=(a.seed,),
        out=out / "training",
        config=grid["config"],
        dimensions=_label_dimensions(a),
        progress=False,
    )
