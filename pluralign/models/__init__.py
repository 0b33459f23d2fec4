"""Model layer: crossed mixed-effects and Bayesian ordinal models with one result protocol."""

from pluralign.models._bayes import BayesResult, fit_bayes
from pluralign.models._bayes_kernels import cumulative_probs, preference_from_probs
from pluralign.models._bayes_model import Priors
from pluralign.models._bayes_workflow import (
    PARETO_K_MAX,
    SENSITIVITY_COLUMNS,
    compare_bayes,
    prior_predictive,
    prior_sensitivity,
)
from pluralign.models._clmm import OrdinalMixedResult
from pluralign.models._design import Design, build_design, fixed_terms
from pluralign.models._effects import adjust_pvalues, compare_groups, contrast_columns
from pluralign.models._inference import (
    CONTRAST_TEST_COLUMNS,
    LRT_COLUMNS,
    VARIANCE_PARTITION_COLUMNS,
    compare,
    contrast_test,
    variance_partition,
)
from pluralign.models._mixed import MixedResult, fit_mixed
from pluralign.models._protocol import (
    BAYES_SUMMARY_COLUMNS,
    COMPARE_COLUMNS,
    DIAGNOSTIC_COLUMNS,
    EFFECT_COLUMNS,
    EFFECT_SCALES,
    MARGINAL_COLUMNS,
    MIXED_SUMMARY_COLUMNS,
    POSTSTRAT_COLUMNS,
    TERM_COLUMNS,
    ModelResult,
)

__all__ = [
    "BAYES_SUMMARY_COLUMNS",
    "COMPARE_COLUMNS",
    "CONTRAST_TEST_COLUMNS",
    "DIAGNOSTIC_COLUMNS",
    "EFFECT_COLUMNS",
    "EFFECT_SCALES",
    "LRT_COLUMNS",
    "MARGINAL_COLUMNS",
    "MIXED_SUMMARY_COLUMNS",
    "PARETO_K_MAX",
    "POSTSTRAT_COLUMNS",
    "SENSITIVITY_COLUMNS",
    "TERM_COLUMNS",
    "VARIANCE_PARTITION_COLUMNS",
    "BayesResult",
    "Design",
    "MixedResult",
    "ModelResult",
    "OrdinalMixedResult",
    "Priors",
    "adjust_pvalues",
    "build_design",
    "compare",
    "compare_bayes",
    "compare_groups",
    "contrast_columns",
    "contrast_test",
    "cumulative_probs",
    "fit_bayes",
    "fit_mixed",
    "fixed_terms",
    "preference_from_probs",
    "prior_predictive",
    "prior_sensitivity",
    "variance_partition",
]
