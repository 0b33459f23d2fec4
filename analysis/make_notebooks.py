"""Write the notebooks in ``notebooks/`` (without outputs) from the cells below.

    python analysis/make_notebooks.py [--out notebooks]

The notebooks are executed by the test suite (``pytest --nbmake notebooks``); edit them here
and rerun this script so that the stored notebooks and this source stay in sync.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

SETUP = """\
import os

for var, value in {"OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1",
                   "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}.items():
    os.environ.setdefault(var, value)

import matplotlib
import pandas as pd

pd.set_option("display.width", 140)
pd.set_option("display.max_columns", 20)"""

QUICKSTART = [
    (
        "md",
        """\
# Quickstart: demographic differences in a simulated rating study

A simulated study mirrors a real one: 1,095 raters, each rating 5 responses on 5 dimensions
(toxicity, emotional awareness, sensitivity, stereotypical bias, helpfulness) on a 1–5 agreement
scale, with known demographic effects. Here we use fewer raters so that the notebook runs in
seconds, describe the differences between groups, fit the mixed model and check that it recovers
the effects we put in.""",
    ),
    ("code", SETUP),
    (
        "code",
        """\
from pluralign.data import simulate_study

sim = simulate_study(n_raters=300, seed=1)
study = sim.study
study""",
    ),
    (
        "md",
        'Every cleaning step is logged (here: placeholder answers such as "Prefer not to say" set to missing).',
    ),
    ("code", "study.log"),
    (
        "md",
        """\
## Descriptive differences

Raw group means relative to the reference group, with two-way (rater × item) cluster-robust intervals.""",
    ),
    (
        "code",
        """\
from pluralign.describe import relative_difference

rd = relative_difference(study, by="gender", seed=1)
rd[["dimension", "group", "n_raters", "mean", "relative_pct", "relative_ci_low", "relative_ci_high"]].head(8)""",
    ),
    (
        "md",
        """\
## Mixed model: crossed rater and item effects

`fit_mixed` fits `rating ~ gender + age` with random intercepts for raters and items, so that a
group is not credited with the harshness of the items it happened to rate.""",
    ),
    (
        "code",
        """\
from pluralign.models import fit_mixed

fit = fit_mixed(study, "rating ~ gender + age", dimension="toxicity")
effects = fit.effects()
effects[["term", "level", "reference", "estimate", "ci_low", "ci_high", "relative_pct", "p_adjusted"]]""",
    ),
    ("md", "The simulation knows the true relative differences; compare them with the estimates."),
    (
        "code",
        """\
truth = sim.truth.fixed_effects
truth = truth[(truth["dimension"] == "toxicity") & (truth["term"] == "gender")]
compared = effects[effects["term"] == "gender"].merge(
    truth[["level", "relative_pct"]], on="level", suffixes=("_estimated", "_true"))
compared[["level", "relative_pct_estimated", "relative_ci_low", "relative_ci_high", "relative_pct_true"]]""",
    ),
    ("code", 'fit.marginal_means(by="gender")'),
    ("code", "fit.diagnostics()"),
    ("md", "## A figure"),
    (
        "code",
        """\
from pluralign import plots

ax = plots.forest(effects, scale="relative")
ax.figure""",
    ),
]

REAL_DATA = [
    (
        "md",
        """\
# Real data: POPQUORN and MultiPICo

* **POPQUORN** (Pei and Jurgens, 2023): 13,036 offensiveness ratings (1–5) of 1,500 Reddit
  comments by 262 raters with gender, race, age, occupation and education.
* **MultiPICo** (Casola et al., 2024): binary irony labels of post/reply pairs in nine languages,
  with annotator gender, age, ethnicity and nationality.

Ratings with a missing demographic (for example an answer of "Prefer not to say") are left
out of the models that use it, and the models say how many. The data files are not part of pluralign. This notebook looks for them in `shared/data` beside
the repository and skips (printing why) when they are absent.""",
    ),
    ("code", SETUP),
    (
        "code",
        """\
from pathlib import Path

DATA = Path.cwd().resolve().parents[1] / "shared" / "data"
HAVE_POPQUORN = (DATA / "popquorn").is_dir()
HAVE_MULTIPICO = (DATA / "multipico").is_dir()
if not HAVE_POPQUORN:
    print(f"POPQUORN not found under {DATA}: its cells are skipped")
if not HAVE_MULTIPICO:
    print(f"MultiPICo not found under {DATA}: its cells are skipped")""",
    ),
    (
        "md",
        """\
## POPQUORN: who finds a comment offensive?

Effects of gender and race on offensiveness, from a linear mixed model with crossed rater and
comment effects (the reference levels are the largest groups).""",
    ),
    (
        "code",
        """\
if HAVE_POPQUORN:
    from pluralign.data import load_popquorn
    from pluralign.models import fit_mixed

    popquorn = load_popquorn(DATA / "popquorn")
    print(popquorn)
    display(popquorn.log)
    fit = fit_mixed(popquorn, "rating ~ gender + race", dimension="offensiveness")
    pq_effects = fit.effects()
    display(pq_effects[["term", "level", "reference", "estimate", "ci_low", "ci_high",
                        "relative_pct", "p_adjusted"]])""",
    ),
    (
        "code",
        """\
if HAVE_POPQUORN:
    from pluralign import plots

    ax = plots.forest(pq_effects, scale="difference")
    display(ax.figure)""",
    ),
    (
        "md",
        """\
## MultiPICo: irony by gender and age

The share of replies each group calls ironic, then a mixed model with the logit link
(`family="binomial"`): estimates are log-odds ratios of calling a reply ironic, adjusted for who
rated which reply. Age is recorded in years; we group it in bands.""",
    ),
    (
        "code",
        """\
if HAVE_MULTIPICO:
    from pluralign.data import load_multipico
    from pluralign.describe import relative_difference

    # English replies keep the notebook quick; drop `languages=` for all nine languages
    multipico = load_multipico(DATA / "multipico", languages=["en"])
    bands = pd.cut(multipico.raters["age"].astype(float), [0, 29, 39, 49, 59, 200],
                   labels=["18-29", "30-39", "40-49", "50-59", "60+"])
    multipico = multipico.replace(raters=multipico.raters.assign(age=bands.astype("string")))
    print(multipico)
    display(multipico.log)
    shares = pd.concat([relative_difference(multipico, by=by, n_boot=200, seed=1)
                        for by in ("gender", "age")])
    display(shares[["by", "group", "n_raters", "mean", "relative_pct", "relative_ci_low",
                    "relative_ci_high"]])""",
    ),
    (
        "code",
        """\
if HAVE_MULTIPICO:
    from pluralign.models import fit_mixed

    irony = fit_mixed(multipico, "rating ~ gender + age", dimension="irony", family="binomial")
    display(irony.effects()[["term", "level", "reference", "estimate", "odds_ratio",
                             "odds_ratio_ci_low", "odds_ratio_ci_high", "p_adjusted"]])""",
    ),
]

PIPELINE = [
    (
        "md",
        """\
# From ratings to an aligned model

Ratings → preference labels (majority, distribution) → soft-label DPO of a tiny model →
evaluation on held-out prompts. Everything is small so that it runs on a laptop CPU in about a
minute; the same calls scale to real studies and real models.""",
    ),
    ("code", SETUP),
    (
        "code",
        """\
from pluralign.data import simulate_study

study = simulate_study(n_raters=200, n_prompts=30, seed=3).study
study""",
    ),
    (
        "md",
        """\
## Preference labels

Every pair of responses to the same prompt, labelled from the raters' toxicity and helpfulness
ratings (less toxic and more helpful is better). `majority` is a hard label; `distribution` keeps
the share of raters preferring each response.""",
    ),
    (
        "code",
        """\
from pluralign.labels import label_flips, preference_labels

dims = ["toxicity", "helpfulness"]
majority = preference_labels(study, method="majority", dimensions=dims)
soft = preference_labels(study, method="distribution", dimensions=dims)
print(majority)
print(soft)
soft.table[["prompt_id", "item_a", "item_b", "p_a", "n_comparisons", "chosen_item", "p_chosen"]].head()""",
    ),
    ("md", "Whose ratings count changes the labels: compare women's labels with everyone's."),
    (
        "code",
        """\
women = preference_labels(study, method="distribution", dimensions=dims, group={"gender": "she/her"})
both = soft.table.merge(women.table, on=["prompt_id", "item_a", "item_b"], suffixes=("_everyone", "_women"))
decided = (both["p_a_everyone"] != 0.5) & (both["p_a_women"] != 0.5)
flipped = decided & ((both["p_a_everyone"] > 0.5) != (both["p_a_women"] > 0.5))
print(f"{flipped.sum()} of {len(both)} pairs ({flipped.mean():.0%}) flip when only women's ratings count")
label_flips(study, "gender", dimensions=dims)  # the same count for every gender group""",
    ),
    (
        "code",
        """\
from pluralign import plots

fig = plots.soft_labels([majority, soft])
fig""",
    ),
    (
        "md",
        """\
## Soft-label DPO on a tiny model

`tiny_model` builds a small randomly initialised causal language model with a tokenizer trained
on the study's texts (no download). `train_dpo` runs DPO with the soft-label loss
`-p log σ(βh) - (1-p) log σ(-βh)`: each pair pulls the model's preference probability `σ(βh)`
toward `p_chosen` instead of toward 1. Six prompts are held out for evaluation.""",
    ),
    (
        "code",
        """\
from pluralign.train import tiny_model, train_dpo

prompts = list(pd.unique(study.items["prompt_id"]))
held_out = set(prompts[-6:])
pairs = soft.table[["prompt_id", "prompt", "chosen", "rejected", "p_chosen"]]
train_pairs = pairs[~pairs["prompt_id"].isin(held_out)].drop(columns="prompt_id")
test_pairs = pairs[pairs["prompt_id"].isin(held_out)].drop(columns="prompt_id")

texts = pd.concat([study.items["prompt"], study.items["response"]]).unique()
model, tokenizer = tiny_model(seed=0, texts=texts)
result = train_dpo(
    train_pairs, model, tokenizer, eval_dataset=test_pairs,
    config={"max_steps": 12, "learning_rate": 3e-3, "per_device_train_batch_size": 16,
            "eval_strategy": "steps", "eval_steps": 6},
)
print(f"{result.steps} steps, {len(train_pairs)} training pairs, {len(test_pairs)} held-out pairs")""",
    ),
    (
        "md",
        """\
## Evaluation

`soft/prob_chosen` is the model's probability that the chosen response is preferred,
`soft/p_chosen` the raters' label and `soft/abs_error` their distance, on the training batches;
the `eval_soft/` columns are the same on the held-out prompts' pairs. Before training the policy
equals the reference, so the model says 0.5 for every pair.""",
    ),
    (
        "code",
        """\
train_log = result.history[["step", "soft/p_chosen", "soft/prob_chosen", "soft/abs_error"]].dropna()
held = result.history.filter(regex="^(step|eval_soft/)").dropna()
before = (test_pairs["p_chosen"] - 0.5).abs().mean()
after = held["eval_soft/abs_error"].iloc[-1]
print(f"held-out |label - model|: {before:.3f} before training, {after:.3f} after {result.steps} steps")
held""",
    ),
    ("code", "train_log.tail()"),
]

NOTEBOOKS = {
    "01_quickstart.ipynb": QUICKSTART,
    "02_real_data.ipynb": REAL_DATA,
    "03_alignment_pipeline.ipynb": PIPELINE,
}


def build(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for kind, source in cells:
        nb.cells.append(new_markdown_cell(source) if kind == "md" else new_code_cell(source))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    return nb


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "notebooks")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, cells in NOTEBOOKS.items():
        nb = build(cells)
        nbformat.validate(nb)
        nbformat.write(nb, args.out / name)
        print(args.out / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
