"""Data layer: the Study model, validation, readers, public-data loaders and the simulator."""

from pluralign._numeric import ordinal_mean
from pluralign.data._checks import check_design, check_pairs, thin_groups
from pluralign.data._features import TEXT_FEATURES, add_text_features
from pluralign.data._generate import (
    LatentRatings,
    assign_items,
    draw_ratings,
    entity_ids,
    simulate_ratings,
)
from pluralign.data._io import read_study, split_flat, wide_to_long
from pluralign.data._loaders import data_roots, find_data, load_multipico, load_popquorn
from pluralign.data._log import LogEntry
from pluralign.data._population import EVERYONE, Population, PopulationSpec
from pluralign.data._scale import AGREEMENT_3, AGREEMENT_5, BINARY, Scale
from pluralign.data._simulate import (
    CUTPOINTS_2,
    CUTPOINTS_5,
    DIMENSIONS,
    GAUSSIAN_MEAN,
    LENGTH_MEAN,
    LENGTH_SD,
    LOCATION,
    PUBLISHED_EFFECTS,
    SOURCE_MODELS,
    SimulatedStudy,
    SimulationDesign,
    SimulationTruth,
    simulate_study,
)
from pluralign.data._study import DROP_STEPS, Study, slug

__all__ = [
    "AGREEMENT_3",
    "AGREEMENT_5",
    "BINARY",
    "CUTPOINTS_2",
    "CUTPOINTS_5",
    "DIMENSIONS",
    "DROP_STEPS",
    "EVERYONE",
    "GAUSSIAN_MEAN",
    "LENGTH_MEAN",
    "LENGTH_SD",
    "LOCATION",
    "PUBLISHED_EFFECTS",
    "SOURCE_MODELS",
    "TEXT_FEATURES",
    "LatentRatings",
    "LogEntry",
    "Population",
    "PopulationSpec",
    "Scale",
    "SimulatedStudy",
    "SimulationDesign",
    "SimulationTruth",
    "Study",
    "add_text_features",
    "assign_items",
    "check_design",
    "check_pairs",
    "data_roots",
    "draw_ratings",
    "entity_ids",
    "find_data",
    "load_multipico",
    "load_popquorn",
    "ordinal_mean",
    "read_study",
    "simulate_ratings",
    "simulate_study",
    "slug",
    "split_flat",
    "thin_groups",
    "wide_to_long",
]
