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
from pluralign.models._effects import (
    ESTIMAND_WEIGHTS,
    Contrast,
    adjust_pvalues,
    compare_groups,
    contrast_columns,
    design_contrasts,
    format_tail,
    tail_probability,
)
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
    RANDOM_EFFECT_COLUMNS,
    RATING_CONTRAST_COLUMNS,
    SLOPE_TEST_COLUMNS,
    TERM_COLUMNS,
    VARIANCE_COLUMNS,
    ModelResult,
)
from pluralign.models._slope_test import random_slope_test
from pluralign.models._within import WITHIN_EFFECT_COLUMNS, effects_within

__all__ = [
    "BAYES_SUMMARY_COLUMNS",
    "COMPARE_COLUMNS",
    "CONTRAST_TEST_COLUMNS",
    "DIAGNOSTIC_COLUMNS",
    "EFFECT_COLUMNS",
    "EFFECT_SCALES",
    "ESTIMAND_WEIGHTS",
    "LRT_COLUMNS",
    "MARGINAL_COLUMNS",
    "MIXED_SUMMARY_COLUMNS",
    "PARETO_K_MAX",
    "POSTSTRAT_COLUMNS",
    "RANDOM_EFFECT_COLUMNS",
    "RATING_CONTRAST_COLUMNS",
    "SENSITIVITY_COLUMNS",
    "SLOPE_TEST_COLUMNS",
    "TERM_COLUMNS",
    "VARIANCE_COLUMNS",
    "VARIANCE_PARTITION_COLUMNS",
    "WITHIN_EFFECT_COLUMNS",
    "BayesResult",
    "Contrast",
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
    "design_contrasts",
    "effects_within",
    "fit_bayes",
    "fit_mixed",
    "fixed_terms",
    "format_tail",
    "preference_from_probs",
    "prior_predictive",
    "prior_sensitivity",
    "random_slope_test",
    "tail_probability",
    "variance_partition",
]
