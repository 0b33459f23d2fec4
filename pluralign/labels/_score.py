"""The combined score of several rating dimensions: one rule for every labels and reward function.

For chosen dimensions ``d`` with weights ``w_d``, a rater's score of an item is
``S = Σ_d w_d · desirability_d · (r_d − min_d) / (max_d − min_d)``, where ``desirability_d`` is
``Scale.desirability`` (+1 when a higher rating is better, e.g. helpfulness; −1 when worse, e.g.
toxicity). Higher ``S`` is better. A dimension without a declared direction
(``Scale.more_is_better=None``) takes part only with an explicit weight, whose sign then says
which way is better; without one it is an error, never a silent +1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pluralign.data import Scale, Study

#: What ``dimensions=`` and ``weights=`` may be.
Dimensions = str | Sequence[str] | None
Weights = Mapping[str, float] | Sequence[float] | None


@dataclass(frozen=True, eq=False)
class ScoreSpec:
    """Dimensions and signed coefficients ``c_d = w_d · desirability_d`` of the combined score.

    The score of ratings ``r_d`` is ``S = Σ_d c_d (r_d − min_d) / (max_d − min_d)``. Built by
    :func:`score_spec`.

    Attributes
    ----------
    dimensions : tuple of str
    weights : tuple of float
        The weights as given (or equal, summing to 1).
    coef : tuple of float
        ``c_d``: the weight signed by the dimension's desirability.
    mins, ranges : tuple of float
        Each dimension's scale minimum and ``max − min``.

    Examples
    --------
    >>> import numpy as np
    >>> from pluralign.data import Scale
    >>> spec = score_spec({"toxicity": Scale("toxicity", 1, 5, more_is_better=False),
    ...                    "helpfulness": Scale("helpfulness", 1, 5, more_is_better=True)})
    >>> spec.bounds, spec.describe_scales()
    ((-0.5, 0.5), 'toxicity:1..5;helpfulness:1..5')
    >>> scores = spec.score(np.array([[1, 5], [3, 3]]))  # rows: (toxicity, helpfulness)
    >>> scores.tolist(), spec.normalised(scores).tolist()
    ([0.5, 0.0], [1.0, 0.5])
    """

    dimensions: tuple[str, ...]
    weights: tuple[float, ...]
    coef: tuple[float, ...]
    mins: tuple[float, ...]
    ranges: tuple[float, ...]

    @property
    def bounds(self) -> tuple[float, float]:
        """Smallest and largest attainable score."""
        c = np.asarray(self.coef)
        return float(np.minimum(c, 0).sum()), float(np.maximum(c, 0).sum())

    @property
    def slopes(self) -> np.ndarray:
        """Change of the score per rating point of each dimension, ``c_d / (max_d − min_d)``."""
        return np.asarray(self.coef) / np.asarray(self.ranges)

    def score(self, ratings: np.ndarray) -> np.ndarray:
        """Score of rating vectors (rows × dimensions, on the original scales)."""
        x = (np.asarray(ratings, dtype=float) - np.asarray(self.mins)) / np.asarray(self.ranges)
        return x @ np.asarray(self.coef)

    def normalised(self, s: np.ndarray) -> np.ndarray:
        """Score mapped onto [0, 1] (0 = worst attainable, 1 = best)."""
        lo, hi = self.bounds
        return (np.asarray(s, dtype=float) - lo) / (hi - lo)

    def describe_scales(self) -> str:
        """``"toxicity:1..5;helpfulness:1..5"``: the scales the score was computed on."""
        return ";".join(
            f"{d}:{m:g}..{m + r:g}"
            for d, m, r in zip(self.dimensions, self.mins, self.ranges, strict=True)
        )


def _scales(source: Study | Mapping[str, Scale]) -> dict[str, Scale]:
    if isinstance(source, Study):
        return {d: source.scale(d) for d in source.dimensions}
    return dict(source)


def score_spec(
    source: Study | Mapping[str, Scale], dimensions: Dimensions = None, weights: Weights = None
) -> ScoreSpec:
    """Resolve ``dimensions`` and ``weights`` into a :class:`ScoreSpec`.

    Parameters
    ----------
    source : Study or mapping dimension → Scale
        Where the scales come from (a fitted model's scales for posterior labels).
    dimensions : str or list of str, optional
        Default: every dimension with a declared direction (``Scale.desirability`` ≠ 0), or the
        keys of ``weights`` when it is a mapping.
    weights : mapping or sequence of float, optional
        Default: equal, summing to 1. A dimension without a declared direction needs an
        explicit weight; its sign is then the weight's sign.

    Raises
    ------
    KeyError
        If a dimension is unknown.
    ValueError
        If no dimension has a direction, a weight is missing or every weight is zero, or an
        undirected dimension has no explicit weight.

    Examples
    --------
    >>> from pluralign.data import Scale
    >>> scales = {"toxicity": Scale("toxicity", 1, 5, more_is_better=False),
    ...           "helpfulness": Scale("helpfulness", 1, 5, more_is_better=True)}
    >>> score_spec(scales).coef
    (-0.5, 0.5)
    >>> score_spec({"d": Scale("d", 1, 5)}, "d")
    Traceback (most recent call last):
    ...
    ValueError: dimension 'd' has no declared direction (Scale.more_is_better is None); declare it or pass an explicit weight (its sign says which way is better)
    """
    scales = _scales(source)
    if dimensions is None and isinstance(weights, Mapping):
        dimensions = list(weights)
    if dimensions is None:
        dims = [d for d, s in scales.items() if s.desirability != 0]
        if not dims:
            raise ValueError(
                "no dimension has a declared direction (Scale.more_is_better); pass dimensions= "
                "and weights= (a positive weight means higher ratings are better)"
            )
    else:
        dims = [dimensions] if isinstance(dimensions, str) else list(dimensions)
    unknown = [d for d in dims if d not in scales]
    if unknown:
        raise KeyError(f"unknown dimension(s) {unknown}; known: {sorted(scales)}")
    if weights is None:
        w = np.full(len(dims), 1.0 / len(dims))
    elif isinstance(weights, Mapping):
        missing = [d for d in dims if d not in weights]
        if missing:
            raise ValueError(
                f"weights lacks the dimensions {missing}; give a weight for each of {dims}"
            )
        w = np.array([float(weights[d]) for d in dims])
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != (len(dims),):
            raise ValueError(f"{len(w)} weights given for {len(dims)} dimensions {dims}")
    coef = []
    for d, wd in zip(dims, w, strict=True):
        des = scales[d].desirability
        if des == 0:
            if weights is None:
                raise ValueError(
                    f"dimension {d!r} has no declared direction (Scale.more_is_better is None); "
                    "declare it or pass an explicit weight (its sign says which way is better)"
                )
            des = 1
        coef.append(float(wd * des))
    if not np.any(coef):
        raise ValueError("every weight is zero")
    mins = tuple(float(scales[d].min) for d in dims)
    ranges = tuple(float(scales[d].max - scales[d].min) for d in dims)
    return ScoreSpec(tuple(dims), tuple(float(x) for x in w), tuple(coef), mins, ranges)


def score_table(study: Study, spec: ScoreSpec) -> tuple[pd.DataFrame, int]:
    """One row per (rater, item) with every dimension of ``spec`` rated: ratings and ``S``.

    Returns the table and the number of (rater, item) rows left out as incomplete.
    """
    r = study.ratings[study.ratings["dimension"].isin(spec.dimensions)]
    wide = r.pivot(index=["rater", "item"], columns="dimension", values="rating")
    wide = wide.reindex(columns=list(spec.dimensions))
    complete = wide.notna().all(axis=1)
    n_incomplete = int((~complete).sum())
    wide = wide[complete]
    out = wide.reset_index()
    # rounded so that equal scores reached by different float paths compare as ties
    out["S"] = np.round(spec.score(wide.to_numpy()), 10)
    return out, n_incomplete
