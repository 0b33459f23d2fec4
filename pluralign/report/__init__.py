"""Report layer: the HTML / markdown study report, the end-to-end demo and label flips."""

from pluralign.report._demo import run_demo
from pluralign.report._options import REPORT_MODELS, ReportOptions
from pluralign.report._report import (
    FLIP_COLUMNS,
    Analysis,
    analyse,
    label_flips,
    save_figures,
    save_tables,
    write,
    write_report,
)

__all__ = [
    "FLIP_COLUMNS",
    "REPORT_MODELS",
    "Analysis",
    "ReportOptions",
    "analyse",
    "label_flips",
    "run_demo",
    "save_figures",
    "save_tables",
    "write",
    "write_report",
]
