"""plots.soft_labels

Preference labels of every pair of responses to a prompt: a majority vote is nearly always 0 or
1, while the share of raters preferring a response (`method="distribution"`) keeps their
disagreement. The report's *Label figure*.
"""

from pluralign import plots, preference_labels, simulate_study

study = simulate_study(n_raters=150, n_prompts=20, seed=5).study
dims = ["toxicity", "helpfulness"]
labels = [preference_labels(study, method=m, dimensions=dims) for m in ("majority", "distribution")]
plots.soft_labels(labels)
