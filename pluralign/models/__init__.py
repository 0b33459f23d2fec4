"""Model layer: crossed mixed-effects and Bayesian ordinal models with one result protocol."""

from pluralign.models._bayes import BayesResult, fit_bayes
from pluralign.models._bayes_model import Priors
from pluralign.models._bayes_workflow import (
    PARETO_K_MAX,
    SENSITIVITY_COLUMNS,
    compare_bayes,
    prior_predictive,
    prior_sensitivity,
)
from pluralign.models._design import Design, build_design
from pluralign.models._effects import adjust_pvalues, compare_groups, contrast_columns
from pluralign.models._mixed import MixedResult, fit_mixed
from pluralign.models._protocol import (
    DIAGNOSTIC_COLUMNS,
    EFFECT_COLUMNS,
    MARGINAL_COLUMNS,
    POSTSTRAT_COLUMNS,
    ModelResult,
)
from pluralign.models._targets import target_cells

__all__ = [
    "DIAGNOSTIC_COLUMNS",
    "EFFECT_COLUMNS",
    "MARGINAL_COLUMNS",
    "PARETO_K_MAX",
    "POSTSTRAT_COLUMNS",
    "SENSITIVITY_COLUMNS",
    "BayesResult",
    "Design",
    "MixedResult",
    "ModelResult",
    "Priors",
    "adjust_pvalues",
    "build_design",
    "compare_bayes",
    "compare_groups",
    "contrast_columns",
    "fit_bayes",
    "fit_mixed",
    "prior_predictive",
    "prior_sensitivity",
    "target_cells",
]
