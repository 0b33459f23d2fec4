"""Write the notebooks in ``notebooks/`` (without outputs) from the cells below.

    python analysis/make_notebooks.py [--out notebooks]

The notebooks are executed, and shown with their outputs, when the documentation site is built
(``make docs``, part of ``make test``); edit them here and rerun this script so that the stored
notebooks and this source stay in sync. A notebook's code is about its study only: what it needs
to run quietly and reproducibly (seeds, offline model building, quiet third-party libraries) is
pluralign's own default, and figures show inline as in any Jupyter session.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

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

plots.forest(effects, scale="relative");""",
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
out of the models that use it, and the models say how many. The data files are not part of
pluralign: the loaders look for them where `pluralign.data.data_roots()` says (the folder named
by the `PLURALIGN_DATA` environment variable first), and this notebook skips a data set's cells,
saying why, when it is absent.""",
    ),
    (
        "code",
        """\
from pluralign.data import load_multipico, load_popquorn


def load(loader, **kwargs):
    # a data set, or None (saying why) when it is not where pluralign looks
    try:
        return loader(**kwargs)
    except FileNotFoundError as err:
        print(f"{err}\\nIts cells are skipped.")
        return None


popquorn = load(load_popquorn)
# English replies keep the notebook quick; drop `languages=` for all nine languages
multipico = load(load_multipico, languages=["en"])""",
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
if popquorn is not None:
    from pluralign.models import fit_mixed

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
if popquorn is not None:
    from pluralign import plots

    plots.forest(pq_effects, scale="difference");""",
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
if multipico is not None:
    import pandas as pd

    from pluralign.describe import relative_difference

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
if multipico is not None:
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
    (
        "code",
        """\
import pandas as pd

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

plots.soft_labels([majority, soft]);""",
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

PLANNING = [
    (
        "md",
        """\
# Planning a study: power and rater allocation

How many raters do we need to detect that men rate toxicity 18 % lower than women? How many
ratings per rater? How many raters per item make a preference label precise?

`pluralign.power` answers by **simulation**: it draws many studies from a `StudyDesign`, fits the
same model we would fit to the real data (the crossed mixed model by default) and counts how
often the effect is detected. Everything here is seeded; the sizes are kept small so the
notebook runs in well under a minute — raise `n_sims` (500+) for real planning.""",
    ),
    (
        "code",
        """\
from pluralign import plots
from pluralign.power import (
    StudyDesign, analytic_power, design_from_study, label_precision, plan_study,
    power_analysis, power_curve,
)""",
    ),
    (
        "md",
        """\
## 1. A design

Raters per group, items, ratings per rater, scale and variance components. Unset SDs,
thresholds and locations are the simulator's defaults (`pluralign.simulate_study`). Effects can
be given as relative differences of the mean rating (`effect_scale="relative"`), as in the
published study, and are converted to the latent scale.""",
    ),
    (
        "code",
        """\
design = StudyDesign(
    {"gender": {"she/her": 150, "he/him": 150}},
    effects={"he/him": -0.18}, effect_scale="relative",
    n_prompts=40, responses_per_prompt=4, items_per_rater=5,
)
print(design)
print("latent shift:", round(design.latent_effects()["he/him"], 3),
      "| difference in rating points:", round(design.point_effects()["he/him"], 3))""",
    ),
    (
        "md",
        """\
## 2. Power of this design with the mixed model

`power_analysis` simulates `n_sims` studies, fits `fit_mixed` (crossed rater and item random
intercepts) to each and reports the detection rate with a Monte-Carlo interval (Wilson),
the bias, RMSE and the coverage of the 95 % interval of the estimate.""",
    ),
    (
        "code",
        """\
res = power_analysis(design, n_sims=30, model="mixed", seed=1, n_jobs=2, progress=False)
res""",
    ),
    (
        "code",
        'res.summary[["level", "truth", "power", "power_ci_low", "power_ci_high", "bias", "rmse", "coverage"]]',
    ),
    ("code", "res.table.head()"),
    (
        "md",
        """\
## 3. A power curve

Every point shares the seed (common random numbers), which keeps the curve smooth.""",
    ),
    (
        "code",
        """\
small = design.with_effect(-0.10)
curve = power_curve(small, "n_raters", [100, 200, 400], n_sims=30, model="mixed", seed=2,
                    n_jobs=2, progress=False)
curve[["value", "power", "power_ci_low", "power_ci_high", "bias", "coverage"]]""",
    ),
    (
        "code",
        """\
ax = plots.power_curve(curve, target=0.8)
ax.set_title("gender effect of -10 % on toxicity");""",
    ),
    (
        "md",
        """\
## 4. Checking the machinery against a closed form

With normal ratings, two groups and no item effects, the variance of the group difference
with `m` ratings per rater is `(σ²_rater + σ²_residual/m)(1/n₁ + 1/n₂)`, which gives power in
closed form. The simulated power (here with the exact rater-means test, which is what the
mixed model reduces to in this case) should agree within Monte-Carlo error.""",
    ),
    (
        "code",
        """\
simple = StudyDesign({"g": {"a": 40, "b": 40}}, effects={"b": 0.4}, scale="normal", intercept=3,
                     item_sd=0, group_item_sd=0, rater_sd=0.5, residual_sd=1.0,
                     n_prompts=6, responses_per_prompt=2, items_per_rater=4)
sim = power_analysis(simple, n_sims=400, model="rater_means", seed=3, progress=False)
print(f"analytic {analytic_power(simple):.3f}  simulated {sim.power:.3f} "
      f"[{sim.power_ci[0]:.3f}, {sim.power_ci[1]:.3f}]")""",
    ),
    (
        "md",
        """\
## 5. The smallest design that reaches 80 % power

`plan_study` evaluates a coarse geometric grid, bisects inside the bracket, and smooths the
Monte-Carlo wiggle with an isotonic (monotone) fit. `criterion="lower"` asks the lower end of the
Monte-Carlo interval to reach the target instead of the estimate (a safer, larger plan).""",
    ),
    (
        "code",
        """\
plan = plan_study(simple, target_power=0.8, vary="n_raters", lower=10, upper=300, n_sims=100,
                  model="rater_means", seed=4, progress=False)
print(plan)
plan.plot();""",
    ),
    (
        "md",
        """\
## 6. Raters per item for precise preference labels

A distribution label `p = P(r_A > r_B) + ½ P(r_A = r_B)` estimated from `n` raters has SD
`sqrt(Var(s)/n)` with `Var(s) = p(1 − p) − ¼ P(=)` ≤ ¼, so `1/(4·SD²)` raters always suffice
(100 for SD 0.05); typical pairs need fewer because ties and lopsided pairs vary less.""",
    ),
    (
        "code",
        """\
label_precision(design, target_sd=0.05, seed=5)[
    ["group", "var_s_median", "raters_needed_median", "raters_needed_q90", "raters_needed_worst"]]""",
    ),
    (
        "md",
        """\
From a pilot study, the same table uses the observed comparisons, and says how precise the
current labels are:""",
    ),
    (
        "code",
        """\
pilot = design.simulate(seed=6)
label_precision(pilot, target_sd=0.1, group={"gender": "she/her"})[
    ["group", "n_pairs", "current_raters_median", "current_sd_median", "raters_needed_q90"]]""",
    ),
    (
        "md",
        """\
## 7. Planning from a pilot

`design_from_study` turns a pilot's fitted variance components and effects into a design (on the
normal scale: the mixed model's own assumptions), which we can then scale up.""",
    ),
    (
        "code",
        """\
pilot_normal = StudyDesign({"gender": {"she/her": 100, "he/him": 100}}, effects={"he/him": -0.3},
                           scale="normal", n_prompts=40).simulate(seed=7)
planned = design_from_study(pilot_normal, term="gender", reference="she/her", n_raters=400)
planned""",
    ),
]

NOTEBOOKS = {
    "01_quickstart.ipynb": QUICKSTART,
    "02_real_data.ipynb": REAL_DATA,
    "03_alignment_pipeline.ipynb": PIPELINE,
    "04_planning_a_study.ipynb": PLANNING,
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
