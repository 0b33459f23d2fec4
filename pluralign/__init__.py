"""pluralign: how who rates changes what an aligned model learns.

The public API is listed in ``__all__``; every name is imported from the module that defines it.
"""

from pluralign._errors import (
    ConvergenceWarning,
    DroppedRowsWarning,
    PluralignWarning,
    StudyValidationError,
)
from pluralign._settings import DEFAULTS, Defaults
from pluralign.data import (
    AGREEMENT_3,
    AGREEMENT_5,
    BINARY,
    LogEntry,
    Scale,
    Study,
    read_study,
    wide_to_long,
)

__version__ = "0.1.0"

__all__ = [
    "AGREEMENT_3",
    "AGREEMENT_5",
    "BINARY",
    "DEFAULTS",
    "ConvergenceWarning",
    "Defaults",
    "DroppedRowsWarning",
    "LogEntry",
    "PluralignWarning",
    "Scale",
    "Study",
    "StudyValidationError",
    "__version__",
    "read_study",
    "wide_to_long",
]
