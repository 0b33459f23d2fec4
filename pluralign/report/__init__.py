"""Report layer: the HTML / markdown study report, the end-to-end demo and label flips."""

from pluralign.report._demo import run_demo
from pluralign.report._report import (
    Analysis,
    analyse,
    label_flips,
    report,
    save_figures,
    save_tables,
    write,
)

__all__ = [
    "Analysis",
    "analyse",
    "label_flips",
    "report",
    "run_demo",
    "save_figures",
    "save_tables",
    "write",
]
