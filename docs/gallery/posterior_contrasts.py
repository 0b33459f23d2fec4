"""plots.posterior_contrasts

Posterior densities of each group's contrast with its reference, from a Bayesian
cumulative-logit model with crossed rater and item effects (sampled with nutpie), with the
highest-density interval and the posterior probability that the contrast is above zero.
"""

from pluralign import fit_bayes, plots, simulate_study

study = simulate_study(n_raters=100, n_prompts=10, seed=8, dimensions=["toxicity"]).study
fit = fit_bayes(study, "rating ~ gender", draws=500, tune=700, seed=8, progressbar=False)
plots.posterior_contrasts(fit)
