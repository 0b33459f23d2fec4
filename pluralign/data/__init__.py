"""Data layer: the Study model, validation, readers, public-data loaders and the simulator."""

from pluralign.data._checks import check_design, check_pairs, thin_groups
from pluralign.data._io import read_study, split_flat, wide_to_long
from pluralign.data._loaders import data_roots, find_data, load_multipico, load_popquorn
from pluralign.data._population import EVERYONE, Population
from pluralign.data._scale import AGREEMENT_3, AGREEMENT_5, BINARY, Scale
from pluralign.data._simulate import (
    DIMENSIONS,
    PUBLISHED_EFFECTS,
    SimulatedStudy,
    SimulationDesign,
    SimulationTruth,
    draw_ratings,
    ordinal_mean,
    simulate_study,
)
from pluralign.data._study import DROP_STEPS, LogEntry, Study, slug

__all__ = [
    "AGREEMENT_3",
    "AGREEMENT_5",
    "BINARY",
    "DIMENSIONS",
    "DROP_STEPS",
    "EVERYONE",
    "PUBLISHED_EFFECTS",
    "LogEntry",
    "Population",
    "Scale",
    "SimulatedStudy",
    "SimulationDesign",
    "SimulationTruth",
    "Study",
    "check_design",
    "check_pairs",
    "data_roots",
    "draw_ratings",
    "find_data",
    "load_multipico",
    "load_popquorn",
    "ordinal_mean",
    "read_study",
    "simulate_study",
    "slug",
    "split_flat",
    "thin_groups",
    "wide_to_long",
]
