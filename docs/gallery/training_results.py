"""plots.training_results

How far soft-label DPO moves a tiny language model's ratings, per training condition, rating
dimension and evaluating group, with bootstrap intervals: the report's *Training figure*. The
model is a small randomly initialised one, trained for a few steps on majority and distribution
labels, so the changes are small; the same call runs a real model on a real study.
"""

from pluralign import plots, run_grid, simulate_study

study = simulate_study(n_raters=100, n_prompts=12, seed=7).study
results = run_grid(
    study,
    aggregations=("majority", "distribution"),
    seeds=(0,),
    dimensions=["toxicity", "helpfulness"],
    config={
        "dpo": {"max_steps": 4},
        "eval": {"n_prompts": 4, "n_generations": 1},
        "summary": {"n_boot": 100},
    },
    progress=False,
)
plots.training_results(results)
