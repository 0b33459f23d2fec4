"""Describe layer: group means and relative differences with rater-clustered bootstrap intervals."""

from pluralign.describe._bootstrap import (
    bootstrap_group_sums,
    bootstrap_totals,
    cluster_weights,
    percentile_interval,
)
from pluralign.describe._groups import (
    GROUP_MEANS_COLUMNS,
    RELATIVE_DIFFERENCE_COLUMNS,
    group_means,
    relative_difference,
)

__all__ = [
    "GROUP_MEANS_COLUMNS",
    "RELATIVE_DIFFERENCE_COLUMNS",
    "bootstrap_group_sums",
    "bootstrap_totals",
    "cluster_weights",
    "group_means",
    "percentile_interval",
    "relative_difference",
]
