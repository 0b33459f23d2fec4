"""plots.agreement

Inter-rater agreement (Krippendorff's alpha) overall and within each group, with bootstrap
intervals: the report's *Agreement figure*. Groups that agree more among themselves than with
everyone hold a shared view the overall label may wash out.
"""

from pluralign import agreement, plots, simulate_study

study = simulate_study(n_raters=150, n_prompts=20, seed=3).study
alphas = agreement(study, by="gender", n_boot=100, seed=3)
plots.agreement(alphas)
