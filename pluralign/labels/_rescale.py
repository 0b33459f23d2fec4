"""Collapse rating scales: 5-point agreement to binary or 3-point, with a stated neutral rule."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from pluralign._errors import DroppedRowsWarning
from pluralign._settings import options
from pluralign.data import AGREEMENT_3, AGREEMENT_5, BINARY, LogEntry, Scale, Study

Neutral = Literal["drop", "low", "high", "random"]


def _mapping(scale: Scale, to: str, neutral: str | None, threshold: float | None) -> dict:
    """Old scale point → new point (np.nan for neutral points still to be resolved)."""
    t = scale.midpoint if threshold is None else float(threshold)
    if not scale.min <= t <= scale.max:
        raise ValueError(
            f"threshold {t} lies outside the scale of {scale.dimension!r} "
            f"({scale.min}..{scale.max})"
        )
    out = {}
    for x in scale.levels:
        if to == "binary":
            out[int(x)] = 1 if x > t else (0 if x < t else np.nan)
        else:
            out[int(x)] = 3 if x > t else (1 if x < t else 2)
    return out


def rescale(
    study: Study,
    to: Literal["binary", "3-point"] = "binary",
    *,
    neutral: Neutral | None = None,
    threshold: float | None = None,
    dimensions: str | Sequence[str] | None = None,
    seed: int | None = None,
) -> Study:
    """Collapse rating scales to binary (0/1) or 3-point (1/2/3), logging every change.

    Rules. ``to="binary"``: ratings above ``threshold`` become 1 ("Yes"), ratings below it 0
    ("No"); ratings *at* the threshold (the neutral point of an odd scale, e.g. 3 on 1..5) follow
    ``neutral``: ``"drop"`` (default) removes them, ``"low"`` maps them to 0, ``"high"`` to 1,
    ``"random"`` to 0 or 1 with probability ½ each (seeded). Dropped ratings are counted in
    ``study.log`` and warned with :class:`DroppedRowsWarning` — never silently.
    ``to="3-point"``: below the threshold → 1, at it → 2, above → 3 (labels Disagree / Neutral /
    Agree for agreement scales); nothing is dropped.

    Each rescaled dimension gets a new :class:`Scale` with the same direction
    (``higher_is_more``, ``more_is_better``), so desirability is kept.

    Parameters
    ----------
    study : Study
    to : {"binary", "3-point"}, default "binary"
    neutral : {"drop", "low", "high", "random"}, optional
        Binary only: fate of ratings at the threshold (default ``"drop"``).
    threshold : float, optional
        Cut point (default: the scale midpoint, e.g. 3 on 1..5). A threshold between scale
        points (e.g. 3.5) leaves no neutral point.
    dimensions : str or list of str, optional
        Dimensions to rescale (default: all); the others are kept as they are.
    seed : int, optional
        Seed for ``neutral="random"``.

    Returns
    -------
    Study
        With rescaled ratings, new scales and log entries naming the mapping and the counts.

    Examples
    --------
    >>> import pandas as pd
    >>> from pluralign.data import AGREEMENT_5, Scale, Study
    >>> r = pd.DataFrame({"rater": list("abcde"), "item": "i", "dimension": "toxicity",
    ...                   "rating": [1, 2, 3, 4, 5]})
    >>> s = Study.from_frames(r, scales=[Scale("toxicity", 1, 5, AGREEMENT_5)])
    >>> b = rescale(s, "binary", neutral="high")
    >>> b.ratings["rating"].tolist(), b.scale("toxicity").labels
    ([0.0, 0.0, 1.0, 1.0, 1.0], ('No', 'Yes'))
    """
    if to not in ("binary", "3-point"):
        raise ValueError(f"to must be 'binary' or '3-point', got {to!r}")
    if to == "3-point" and neutral not in (None, "keep"):
        raise ValueError("neutral applies to to='binary'; a 3-point scale keeps the neutral point")
    neutral = "drop" if neutral is None and to == "binary" else neutral
    if to == "binary" and neutral not in ("drop", "low", "high", "random"):
        raise ValueError(f"neutral must be 'drop', 'low', 'high' or 'random', got {neutral!r}")
    dims = (
        study.dimensions
        if dimensions is None
        else ([dimensions] if isinstance(dimensions, str) else list(dimensions))
    )
    rng = np.random.default_rng(options.seed if seed is None else seed)

    ratings = study.ratings.copy()
    scales = dict(study.scales)
    keep = np.ones(len(ratings), dtype=bool)
    notes: list[LogEntry] = []
    for dim in dims:
        scale = study.scale(dim)
        if to == "3-point" and scale.n_levels < 3:
            raise ValueError(f"{dim!r} has {scale.n_levels} points; it cannot become 3-point")
        mapping = _mapping(scale, to, neutral, threshold)
        rows = (ratings["dimension"] == dim).to_numpy()
        old = ratings.loc[rows, "rating"].round().astype(int)
        new = np.array(old.map(mapping), dtype=float)
        at = np.isnan(new)
        n_neutral = int(at.sum())
        if to == "binary" and n_neutral:
            if neutral == "low":
                new[at] = 0
            elif neutral == "high":
                new[at] = 1
            elif neutral == "random":
                new[at] = rng.integers(0, 2, n_neutral)
            else:
                idx = np.flatnonzero(rows)[at]
                keep[idx] = False
        ratings.loc[rows, "rating"] = new
        if to == "binary":
            labels = BINARY
            new_scale = Scale(dim, 0, 1, labels, scale.higher_is_more, scale.more_is_better)
        else:
            labels = AGREEMENT_3 if scale.labels == AGREEMENT_5 else ()
            new_scale = Scale(dim, 1, 3, labels, scale.higher_is_more, scale.more_is_better)
        scales[dim] = new_scale
        rule = ", ".join(
            f"{k}→{'neutral' if np.isnan(v) else new_scale.label_of(v)}" for k, v in mapping.items()
        )
        neutral_txt = f"; neutral rule {neutral!r} ({n_neutral} ratings)" if to == "binary" else ""
        notes.append(
            LogEntry(
                "rescale",
                "ratings",
                int(rows.sum()),
                f"{dim}: {scale.min}..{scale.max} → {to} [{rule}]{neutral_txt}",
            )
        )
        if to == "binary" and neutral == "drop" and n_neutral:
            notes.append(
                LogEntry(
                    "rescale_drop_neutral",
                    "ratings",
                    n_neutral,
                    f"{dim}: neutral ratings dropped when collapsing to binary",
                )
            )
    n_drop = int((~keep).sum())
    if n_drop:
        warnings.warn(
            f"rescale: {n_drop} neutral ratings dropped (neutral='drop'); see study.log. "
            "Pass neutral='low', 'high' or 'random' to keep them.",
            DroppedRowsWarning,
            stacklevel=2,
        )
    ratings = ratings[keep].reset_index(drop=True)
    if ratings.empty:
        raise ValueError("rescale drops every rating (all were neutral)")
    kept_dims = set(ratings["dimension"])
    scales = {d: s for d, s in scales.items() if d in kept_dims}
    out = study
    for note in notes:
        out = out.replace(note=note)
    return out.replace(ratings=ratings, scales=scales)


def category_counts(study: Study, dimension: str) -> pd.Series:
    """Number of ratings at each point of a dimension's scale (zeros included).

    Examples
    --------
    >>> import pandas as pd
    >>> from pluralign.data import Scale, Study
    >>> r = pd.DataFrame({"rater": list("ab"), "item": "i", "dimension": "d", "rating": [1, 1]})
    >>> category_counts(Study.from_frames(r, scales=[Scale("d", 1, 3)]), "d").tolist()
    [2, 0, 0]
    """
    scale = study.scale(dimension)
    r = study.ratings.loc[study.ratings["dimension"] == dimension, "rating"].round().astype(int)
    return r.value_counts().reindex(scale.levels, fill_value=0).rename_axis("rating")
