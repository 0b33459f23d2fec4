"""Model layer: crossed mixed-effects and Bayesian ordinal models with one result protocol."""

from pluralign.models._bayes import BayesResult, fit_bayes
from pluralign.models._mixed import MixedResult, fit_mixed
from pluralign.models._protocol import (
    DIAGNOSTIC_COLUMNS,
    EFFECT_COLUMNS,
    MARGINAL_COLUMNS,
    POSTSTRAT_COLUMNS,
    ModelResult,
)

__all__ = [
    "DIAGNOSTIC_COLUMNS",
    "EFFECT_COLUMNS",
    "MARGINAL_COLUMNS",
    "POSTSTRAT_COLUMNS",
    "BayesResult",
    "MixedResult",
    "ModelResult",
    "fit_bayes",
    "fit_mixed",
]
