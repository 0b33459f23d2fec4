"""Bayesian mixed models (placeholder, being written)."""


def fit_bayes(*args, **kwargs):
    raise NotImplementedError("fit_bayes is not available yet")


class BayesResult:
    pass
