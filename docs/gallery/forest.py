"""plots.forest

Each group's difference from its reference level, from a linear mixed model with crossed rater
and item random intercepts, as a relative difference of the mean rating. Thick bars are the
unadjusted intervals, thin bars the intervals adjusted for multiplicity (Holm, across the terms
shown), as [`plots.adjusted_intervals`](../api/plots.md) computes them. The report draws its
*Mixed-model effects* and *Bayesian effects* this way.
"""

from pluralign import fit_mixed, plots, simulate_study

study = simulate_study(n_raters=200, seed=2).study
fit = fit_mixed(study, "rating ~ gender + age", dimension="toxicity")
plots.forest(fit.effects(), scale="relative")
