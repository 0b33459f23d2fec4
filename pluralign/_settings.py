"""Package-wide options that users can change, globally or for a block of code.

Functions whose interval level, bootstrap size, seed or placeholder values are left as ``None``
read them from :data:`options` at call time, as ArviZ's ``rcParams`` / ``rc_context`` work.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace

_DEFAULT_MISSING = (
    "Prefer not to say",
    "prefer not to say",
    "Prefer not to answer",
    "DATA_EXPIRED",
    "CONSENT_REVOKED",
    "CONSENT REVOKED",
    "",
)


def _check(name: str, value: object) -> object:
    if name == "ci_prob":
        value = float(value)  # type: ignore[arg-type]
        if not 0 < value < 1:
            raise ValueError(f"options.ci_prob must lie in (0, 1); got {value}")
    elif name == "n_boot":
        if int(value) != value or int(value) < 1:  # type: ignore[call-overload]
            raise ValueError(f"options.n_boot must be a positive integer; got {value!r}")
        value = int(value)  # type: ignore[call-overload]
    elif name == "seed":
        if int(value) != value:  # type: ignore[call-overload]
            raise ValueError(f"options.seed must be an integer; got {value!r}")
        value = int(value)  # type: ignore[call-overload]
    elif name == "missing_values":
        if isinstance(value, str):
            raise TypeError("options.missing_values must be a sequence of strings, not a string")
        value = tuple(str(v) for v in value)  # type: ignore[attr-defined]
    elif name in ("multi_label",):
        value = str(value)
    elif name == "progress":
        value = bool(value)
    return value


@dataclass
class Options:
    """Defaults used when a function's argument is left as ``None``.

    Change an option for the session (``pl.options.ci_prob = 0.9``) or for a block of code
    (``with pl.option_context(ci_prob=0.9): ...``). Values are checked when set.

    Attributes
    ----------
    ci_prob : float
        Probability mass of confidence / credible intervals (0.95).
    n_boot : int
        Number of bootstrap resamples (1000: about 25 resamples in each 2.5 % tail).
    seed : int
        Seed used when none is given, so that results are reproducible.
    missing_values : tuple of str
        Demographic placeholder values that mean "unknown"; matched after stripping
        surrounding whitespace and ignoring case.
    multi_label : str
        Collapsed category for raters who chose several values of a multi-select demographic.
    progress : bool
        Show progress bars on long work (bootstrap, sampling, simulation, training).

    Examples
    --------
    >>> import pluralign as pl
    >>> with pl.option_context(ci_prob=0.9):
    ...     pl.options.ci_prob
    0.9
    >>> pl.options.ci_prob
    0.95
    """

    ci_prob: float = 0.95
    n_boot: int = 1000
    seed: int = 20240601
    missing_values: tuple[str, ...] = _DEFAULT_MISSING
    multi_label: str = "Multiracial"
    progress: bool = True

    def __setattr__(self, name: str, value: object) -> None:
        if name not in {f.name for f in fields(Options)}:
            raise AttributeError(
                f"pluralign has no option {name!r}; options are {[f.name for f in fields(Options)]}"
            )
        object.__setattr__(self, name, _check(name, value))

    def reset(self) -> None:
        """Restore every option to its default."""
        for f in fields(Options):
            setattr(self, f.name, f.default)

    def to_dict(self) -> dict[str, object]:
        """The current options as a dict."""
        return {f.name: getattr(self, f.name) for f in fields(Options)}


options = Options()
"""The package's options; see :class:`Options`."""


@contextmanager
def option_context(**changes: object) -> Iterator[Options]:
    """Change options for a block of code, restoring them afterwards.

    Parameters
    ----------
    **changes
        Option names and values, as attributes of :class:`Options`.

    Examples
    --------
    >>> import pluralign as pl
    >>> with pl.option_context(n_boot=500, seed=1):
    ...     pl.options.n_boot
    500
    """
    saved = replace(options)
    try:
        for name, value in changes.items():
            setattr(options, name, value)
        yield options
    finally:
        for f in fields(Options):
            object.__setattr__(options, f.name, getattr(saved, f.name))
