"""Package-wide defaults: one frozen object instead of literals scattered through functions."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Defaults:
    """Defaults used when a function's argument is left as ``None``.

    Attributes
    ----------
    ci_prob : float
        Probability mass of confidence / credible intervals.
    n_boot : int
        Number of bootstrap resamples.
    seed : int
        Seed used when none is given, so that results are reproducible.
    missing_values : tuple of str
        Demographic placeholder values that mean "unknown".
    multi_label : str
        Collapsed category for raters who chose several values of a multi-select demographic.
    """

    ci_prob: float = 0.95
    n_boot: int = 1000
    seed: int = 20240601
    missing_values: tuple[str, ...] = (
        "Prefer not to say",
        "prefer not to say",
        "Prefer not to answer",
        "DATA_EXPIRED",
        "CONSENT_REVOKED",
        "CONSENT REVOKED",
        "",
    )
    multi_label: str = "Multiracial"


DEFAULTS = Defaults()
