"""plots.group_means

Mean rating per group with bootstrap intervals over raters, one panel per dimension: the
report's *Descriptive figure*. The input is the tidy table of
[`pluralign.group_means`](../api/describe.md).
"""

from pluralign import group_means, plots, simulate_study

study = simulate_study(n_raters=150, seed=1).study
means = group_means(study, by="gender", n_boot=200, seed=1)
plots.group_means(means, by="gender")
