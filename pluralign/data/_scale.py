"""Rating scales: range, ordered labels and direction of each dimension."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AGREEMENT_5 = ("Strongly disagree", "Disagree", "Neutral", "Agree", "Strongly agree")
AGREEMENT_3 = ("Disagree", "Neutral", "Agree")
BINARY = ("No", "Yes")


@dataclass(frozen=True)
class Scale:
    """The rating scale of one dimension.

    Parameters
    ----------
    dimension : str
        Name of the rated dimension, e.g. ``"toxicity"``.
    min, max : int
        Lowest and highest rating; ratings are integers ``min..max``.
    labels : tuple of str, optional
        Ordered labels of the ``max - min + 1`` points, lowest first.
    higher_is_more : bool, default True
        Whether a higher rating means *more* of the dimension (e.g. "strongly agree that the
        answer is toxic" = more toxic).
    more_is_better : bool or None, default None
        Whether more of the dimension is desirable (False for toxicity and bias, True for
        helpfulness); None when it is not a value judgement.

    Examples
    --------
    >>> s = Scale("toxicity", 1, 5, AGREEMENT_5, more_is_better=False)
    >>> s.n_levels, s.desirability
    (5, -1)
    """

    dimension: str
    min: int
    max: int
    labels: tuple[str, ...] = ()
    higher_is_more: bool = True
    more_is_better: bool | None = None

    def __post_init__(self) -> None:
        if int(self.min) != self.min or int(self.max) != self.max:
            raise ValueError(
                f"scale of {self.dimension!r}: min and max must be integers, got "
                f"{self.min!r} and {self.max!r}"
            )
        if self.max <= self.min:
            raise ValueError(
                f"scale of {self.dimension!r}: max ({self.max}) must exceed min ({self.min})"
            )
        object.__setattr__(self, "min", int(self.min))
        object.__setattr__(self, "max", int(self.max))
        object.__setattr__(self, "labels", tuple(self.labels))
        if self.labels and len(self.labels) != self.n_levels:
            raise ValueError(
                f"scale of {self.dimension!r}: {len(self.labels)} labels given for "
                f"{self.n_levels} points ({self.min}..{self.max}); give one label per point"
            )

    @property
    def n_levels(self) -> int:
        """Number of scale points."""
        return self.max - self.min + 1

    @property
    def levels(self) -> np.ndarray:
        """The scale points ``min..max``."""
        return np.arange(self.min, self.max + 1)

    @property
    def is_binary(self) -> bool:
        """True for a two-point scale."""
        return self.n_levels == 2

    @property
    def midpoint(self) -> float:
        """Centre of the scale (the neutral point of an odd agreement scale)."""
        return (self.min + self.max) / 2

    @property
    def desirability(self) -> int:
        """+1 if a higher rating is better, -1 if worse, 0 if no direction is declared."""
        if self.more_is_better is None:
            return 0
        return 1 if self.more_is_better == self.higher_is_more else -1

    def label_of(self, value: float) -> str:
        """Label of a scale point (the number as text when no labels are declared)."""
        if not self.labels:
            return f"{value:g}"
        return self.labels[round(value) - self.min]

    def to_dict(self) -> dict:
        """Plain-dict form used when a study is saved."""
        return {
            "dimension": self.dimension,
            "min": self.min,
            "max": self.max,
            "labels": list(self.labels),
            "higher_is_more": self.higher_is_more,
            "more_is_better": self.more_is_better,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Scale:
        """Inverse of :meth:`to_dict`."""
        return cls(
            dimension=d["dimension"],
            min=d["min"],
            max=d["max"],
            labels=tuple(d.get("labels") or ()),
            higher_is_more=d.get("higher_is_more", True),
            more_is_better=d.get("more_is_better"),
        )
