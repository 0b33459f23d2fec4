"""Publication figures of rating studies, model effects, disagreement, soft labels and training.

Every function takes a tidy DataFrame (or a fit) produced elsewhere in pluralign, draws on
``ax`` / ``fig`` or a new figure in :func:`style`, never calls ``plt.show()``, and returns the
Axes (single panel) or Figure (small multiples). Colours come from the Okabe–Ito palette.
"""

from pluralign.plots._disagreement import agreement, divergence_heatmap
from pluralign.plots._effects import adjusted_intervals, forest, posterior_contrasts
from pluralign.plots._labels import soft_labels
from pluralign.plots._means import group_means
from pluralign.plots._power import power_curve
from pluralign.plots._ppc import ppc
from pluralign.plots._style import MARKERS, OKABE_ITO, PALETTE, colors, savefig, style
from pluralign.plots._train import training_results

__all__ = [
    "MARKERS",
    "OKABE_ITO",
    "PALETTE",
    "adjusted_intervals",
    "agreement",
    "colors",
    "divergence_heatmap",
    "forest",
    "group_means",
    "posterior_contrasts",
    "power_curve",
    "ppc",
    "savefig",
    "soft_labels",
    "style",
    "training_results",
]
