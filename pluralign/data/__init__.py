"""Data layer: the Study model, validation, readers, public-data loaders and the simulator."""

from pluralign.data._io import read_study, split_flat, wide_to_long
from pluralign.data._scale import AGREEMENT_3, AGREEMENT_5, BINARY, Scale
from pluralign.data._study import LogEntry, Study, slug

__all__ = [
    "AGREEMENT_3",
    "AGREEMENT_5",
    "BINARY",
    "LogEntry",
    "Scale",
    "Study",
    "read_study",
    "slug",
    "split_flat",
    "wide_to_long",
]
