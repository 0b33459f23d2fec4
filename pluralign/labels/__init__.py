"""Labels layer: agreement, per-item disagreement, rescaling, preference labels and rewards."""

from pluralign.labels._agreement import agreement
from pluralign.labels._disagreement import group_divergence, item_disagreement, most_contested
from pluralign.labels._posterior import posterior_pair_probabilities
from pluralign.labels._preference import (
    DesirabilityLabels,
    PreferenceLabels,
    desirability_labels,
    preference_labels,
)
from pluralign.labels._rescale import category_counts, rescale
from pluralign.labels._reward import RatingReward, completion_text, reward_function

__all__ = [
    "DesirabilityLabels",
    "PreferenceLabels",
    "RatingReward",
    "agreement",
    "category_counts",
    "completion_text",
    "desirability_labels",
    "group_divergence",
    "item_disagreement",
    "most_contested",
    "posterior_pair_probabilities",
    "preference_labels",
    "rescale",
    "reward_function",
]
