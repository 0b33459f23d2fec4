"""Report layer: the HTML / markdown study report and the end-to-end demo."""

from pluralign.report._demo import run_demo
from pluralign.report._report import (
    Analysis,
    analyse,
    report,
    save_figures,
    save_tables,
    write,
)

__all__ = [
    "Analysis",
    "analyse",
    "report",
    "run_demo",
    "save_figures",
    "save_tables",
    "write",
]
