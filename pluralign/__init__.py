"""pluralign: how who rates changes what an aligned model learns.

The public API is listed in ``__all__``; every name is imported from the module that defines
it. Layers, in the order data flows: :mod:`pluralign.data` (studies, loaders, simulator),
:mod:`pluralign.describe`, :mod:`pluralign.models`, :mod:`pluralign.labels`,
:mod:`pluralign.train`, :mod:`pluralign.plots`, :mod:`pluralign.report` and
:mod:`pluralign.power`. ``import pluralign`` needs only the core dependencies: the Bayesian
models (``pluralign[bayes]``) and training (``pluralign[train]``) import their extras when called.

``import pluralign`` is quick: the names below are imported from their subpackage on first use
(PEP 562), so a script that only plans a study never loads matplotlib, and ``pluralign.plots``
is ready when first touched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pluralign._errors import (
    ConvergenceWarning,
    DesignError,
    DroppedRowsWarning,
    PluralignWarning,
    StudyValidationError,
)
from pluralign._settings import Options, option_context, options

if TYPE_CHECKING:  # the public names and where each is defined; imported on first use below
    from pluralign import plots
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
        Priors,
        compare,
        compare_bayes,
        compare_groups,
        contrast_test,
        effects_within,
        fit_bayes,
        fit_mixed,
        prior_predictive,
        prior_sensitivity,
        variance_partition,
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
    "Priors",
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
    "compare",
    "compare_bayes",
    "compare_groups",
    "contrast_test",
    "design_from_study",
    "desirability_labels",
    "effects_within",
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
    "prior_predictive",
    "prior_sensitivity",
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
    "variance_partition",
    "wide_to_long",
    "write_report",
]


def _sources() -> dict[str, str]:
    """Public name → the subpackage it comes from, read from the ``TYPE_CHECKING`` imports above
    (one list to maintain, as ``lazy_loader.attach_stub`` reads a stub)."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    block = next(
        n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"
    )
    out = {}
    for node in block.body:
        if not isinstance(node, ast.ImportFrom) or node.module is None:
            continue
        for alias in node.names:
            if node.module == "pluralign":
                out[alias.asname or alias.name] = f"pluralign.{alias.name}"  # a subpackage
            else:
                out[alias.asname or alias.name] = node.module
    return out


_SOURCES = _sources()


def __getattr__(name: str):
    module = _SOURCES.get(name)
    if module is None:
        raise AttributeError(f"module 'pluralign' has no attribute {name!r}")
    import importlib

    found = importlib.import_module(module)
    value = found if module == f"pluralign.{name}" else getattr(found, name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
