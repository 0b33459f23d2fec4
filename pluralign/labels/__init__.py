"""Labels layer: agreement, per-item disagreement, rescaling, preference labels and rewards."""

from pluralign.labels._agreement import AGREEMENT_COLUMNS, agreement
from pluralign.labels._disagreement import (
    DIVERGENCE_COLUMNS,
    ITEM_DISAGREEMENT_COLUMNS,
    group_divergence,
    item_disagreement,
    most_contested,
)
from pluralign.labels._flips import FLIP_COLUMNS, label_flips
from pluralign.labels._posterior import posterior_pair_probabilities
from pluralign.labels._preference import (
    DESIRABILITY_COLUMNS,
    DROPPED_COLUMNS,
    PREFERENCE_COLUMNS,
    DesirabilityLabels,
    PreferenceLabels,
    desirability_labels,
    preference_labels,
)
from pluralign.labels._rescale import category_counts, rescale
from pluralign.labels._reward import (
    HELDOUT_COLUMNS,
    RIDGE_PENALTIES,
    RatingReward,
    completion_text,
    reward_function,
)
from pluralign.labels._score import ScoreSpec, score_spec

__all__ = [
    "AGREEMENT_COLUMNS",
    "DESIRABILITY_COLUMNS",
    "DIVERGENCE_COLUMNS",
    "DROPPED_COLUMNS",
    "FLIP_COLUMNS",
    "HELDOUT_COLUMNS",
    "ITEM_DISAGREEMENT_COLUMNS",
    "PREFERENCE_COLUMNS",
    "RIDGE_PENALTIES",
    "DesirabilityLabels",
    "PreferenceLabels",
    "RatingReward",
    "ScoreSpec",
    "agreement",
    "category_counts",
    "completion_text",
    "desirability_labels",
    "group_divergence",
    "item_disagreement",
    "label_flips",
    "most_contested",
    "posterior_pair_probabilities",
    "preference_labels",
    "rescale",
    "reward_function",
    "score_spec",
]
