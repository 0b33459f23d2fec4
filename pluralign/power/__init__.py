"""Power analysis and study planning: how many raters, items and ratings a study needs.

Studies are simulated from a :class:`StudyDesign`, a model is fitted to each, and detection
rates, bias and coverage are counted (:func:`power_analysis`, :func:`power_curve`,
:func:`plan_study`); :func:`label_precision` sizes preference-label precision in closed form.
"""

from pluralign.power._analysis import (
    ALL_LEVELS,
    ANY_LEVEL,
    SIM_COLUMNS,
    SUMMARY_COLUMNS,
    PowerResult,
    power_analysis,
)
from pluralign.power._analytic import analytic_power, group_difference_se
from pluralign.power._cli import cli_plan, cli_power, power_app
from pluralign.power._design import StudyDesign, design_from_study
from pluralign.power._fitters import (
    FIT_COLUMNS,
    BayesFitter,
    MixedFitter,
    RaterMeansFitter,
)
from pluralign.power._planning import (
    CURVE_COLUMNS,
    StudyPlan,
    plan_study,
    power_curve,
)
from pluralign.power._precision import PRECISION_COLUMNS, label_precision

__all__ = [
    "ALL_LEVELS",
    "ANY_LEVEL",
    "CURVE_COLUMNS",
    "FIT_COLUMNS",
    "PRECISION_COLUMNS",
    "SIM_COLUMNS",
    "SUMMARY_COLUMNS",
    "BayesFitter",
    "MixedFitter",
    "PowerResult",
    "RaterMeansFitter",
    "StudyDesign",
    "StudyPlan",
    "analytic_power",
    "cli_plan",
    "cli_power",
    "design_from_study",
    "group_difference_se",
    "label_precision",
    "plan_study",
    "power_analysis",
    "power_app",
    "power_curve",
]
