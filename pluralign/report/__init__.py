"""Report layer: the HTML / markdown study report and the end-to-end demo."""

from pluralign.report._demo import run_demo
from pluralign.report._options import BAYES_METHODS, REPORT_MODELS, ReportOptions
from pluralign.report._report import (
    Analysis,
    analyse,
    save_figures,
    save_tables,
    write,
    write_report,
)

__all__ = [
    "BAYES_METHODS",
    "REPORT_MODELS",
    "Analysis",
    "ReportOptions",
    "analyse",
    "run_demo",
    "save_figures",
    "save_tables",
    "write",
    "write_report",
]
