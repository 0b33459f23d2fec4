"""plots.divergence_heatmap

How far apart two groups' rating distributions are on each item (Jensen–Shannon divergence),
for the items where the groups differ most.
"""

from pluralign import group_divergence, plots, simulate_study

study = simulate_study(n_raters=150, n_prompts=15, seed=4).study
divergence = group_divergence(study, by="gender", dimension="toxicity")
plots.divergence_heatmap(divergence, max_items=15)
