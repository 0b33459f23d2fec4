"""plots.ppc

Predictive check: the share of each rating in each group (bars) against the shares the model
predicts (dots with intervals). Here the prior predictive of a cumulative-logit model, which
shows what the priors allow before any data is seen; pass a fitted `fit_bayes` result for the
posterior predictive check.
"""

from pluralign import plots, prior_predictive, simulate_study

study = simulate_study(n_raters=120, seed=9, dimensions=["toxicity"]).study
prior = prior_predictive(study, "rating ~ gender", draws=200, seed=9)
plots.ppc(prior, by="gender", group="prior")
