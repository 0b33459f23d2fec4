"""Describe layer: group means and differences with two-way (rater × item) intervals."""

from pluralign.describe._bootstrap import (
    bootstrap_group_sums,
    bootstrap_totals,
    cluster_weights,
    percentile_interval,
)
from pluralign.describe._groups import (
    CI_METHODS,
    COHENS_D_DEFINITION,
    GROUP_MEANS_COLUMNS,
    RELATIVE_DIFFERENCE_COLUMNS,
    group_means,
    relative_difference,
)
from pluralign.describe._twoway import cluster_counts, twoway_variance

__all__ = [
    "CI_METHODS",
    "COHENS_D_DEFINITION",
    "GROUP_MEANS_COLUMNS",
    "RELATIVE_DIFFERENCE_COLUMNS",
    "bootstrap_group_sums",
    "bootstrap_totals",
    "cluster_counts",
    "cluster_weights",
    "group_means",
    "percentile_interval",
    "relative_difference",
    "twoway_variance",
]
