"""Exceptions and warnings raised by pluralign."""

from __future__ import annotations


class StudyValidationError(ValueError):
    """Raised when study tables do not satisfy the data model.

    The message names the table and column, shows a few offending rows or values,
    and says how to fix the input.
    """


class PluralignWarning(UserWarning):
    """Base class of pluralign's warnings."""


class ConvergenceWarning(PluralignWarning):
    """A model did not converge, or its sampler diagnostics are poor (R-hat, ESS, divergences)."""


class DroppedRowsWarning(PluralignWarning):
    """Rows were removed while cleaning or preparing data; see ``Study.log``."""
