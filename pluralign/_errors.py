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


class DesignError(StudyValidationError):
    """The study's design cannot support the analysis asked for.

    For example a model of one rater, one item, constant ratings, or a factor with one level;
    the message names the dimension or variable and what to change.
    """
