"""pluralign: how who rates changes what an aligned model learns.

The public API is listed in ``__all__``; every name is imported from the module that defines
it. Layers, in the order data flows: :mod:`pluralign.data` (studies, loaders, simulator),
:mod:`pluralign.describe`, :mod:`pluralign.models`, :mod:`pluralign.labels`,
:mod:`pluralign.train`, :mod:`pluralign.plots`, :mod:`pluralign.report` and
:mod:`pluralign.power`. ``import pluralign`` needs only the core dependencies: the Bayesian
models (``pluralign[bayes]``) and training (``pluralign[train]``) import their extras when called.
"""

from pluralign import plots
from pluralign._errors import (
    ConvergenceWarning,
    DesignError,
    DroppedRowsWarning,
    PluralignWarning,
    StudyValidationError,
)
from pluralign._settings import Options, option_context, options
from pluralign.data import (
    AGREEMENT_3,
    AGREEMENT_5,
    BINARY,
    EVERYONE,
    LogEntry,
    Population,
    Scale,
    SimulatedStudy,
    SimulationDesign,
    SimulationTruth,
    Study,
    add_text_features,
    load_multipico,
    load_popquorn,
    read_study,
    simulate_study,
    wide_to_long,
)
from pluralign.describe import group_means, relative_difference
from pluralign.labels import (
    PreferenceLabels,
    RatingReward,
    agreement,
    desirability_labels,
    group_divergence,
    item_disagreement,
    label_flips,
    most_contested,
    preference_labels,
    rescale,
    reward_function,
)
from pluralign.models import (
    BayesResult,
    MixedResult,
    ModelResult,
    compare_groups,
    fit_bayes,
    fit_mixed,
)
from pluralign.power import (
    PowerResult,
    StudyDesign,
    StudyPlan,
    design_from_study,
    label_precision,
    plan_study,
    power_analysis,
    power_curve,
)
from pluralign.report import ReportOptions, run_demo, write_report
from pluralign.train import (
    TrainResult,
    load_model,
    load_smollm2,
    run_grid,
    tiny_model,
    train_dpo,
    train_grpo,
)

__version__ = "0.1.0"

__all__ = [
    "AGREEMENT_3",
    "AGREEMENT_5",
    "BINARY",
    "EVERYONE",
    "BayesResult",
    "ConvergenceWarning",
    "DesignError",
    "DroppedRowsWarning",
    "LogEntry",
    "MixedResult",
    "ModelResult",
    "Options",
    "PluralignWarning",
    "Population",
    "PowerResult",
    "PreferenceLabels",
    "RatingReward",
    "ReportOptions",
    "Scale",
    "SimulatedStudy",
    "SimulationDesign",
    "SimulationTruth",
    "Study",
    "StudyDesign",
    "StudyPlan",
    "StudyValidationError",
    "TrainResult",
    "__version__",
    "add_text_features",
    "agreement",
    "compare_groups",
    "design_from_study",
    "desirability_labels",
    "fit_bayes",
    "fit_mixed",
    "group_divergence",
    "group_means",
    "item_disagreement",
    "label_flips",
    "label_precision",
    "load_model",
    "load_multipico",
    "load_popquorn",
    "load_smollm2",
    "most_contested",
    "option_context",
    "options",
    "plan_study",
    "plots",
    "power_analysis",
    "power_curve",
    "preference_labels",
    "read_study",
    "relative_difference",
    "rescale",
    "reward_function",
    "run_demo",
    "run_grid",
    "simulate_study",
    "tiny_model",
    "train_dpo",
    "train_grpo",
    "wide_to_long",
    "write_report",
]
