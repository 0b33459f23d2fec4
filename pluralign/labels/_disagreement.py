"""Per-item disagreement: spread of ratings within an item, and divergence between groups."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy

from pluralign._errors import DroppedRowsWarning
from pluralign._settings import options
from pluralign.data import Population, Study
from pluralign.labels._agreement import rating_codes
from pluralign.labels._preference import PopulationSpec

#: Columns of :func:`item_disagreement`'s table.
ITEM_DISAGREEMENT_COLUMNS = (
    "dimension", "item", "prompt_id", "group", "n", "mean", "variance", "entropy",
    "entropy_norm", "modal", "n_modes", "share_modal",
)  # fmt: skip

#: Columns of :func:`group_divergence`'s table (``ci_low, ci_high``: interval of ``jsd``).
DIVERGENCE_COLUMNS = (
    "dimension", "by", "group_a", "group_b", "item", "prompt_id", "n_a", "n_b",
    "mean_a", "mean_b", "difference", "jsd", "jsd_se", "ci_low", "ci_high",
)  # fmt: skip


def _jsd(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen–Shannon divergence (base 2, in [0, 1]) between matching rows (last axis)."""
    return jensenshannon(p, q, base=2, axis=-1) ** 2


def _dims(study: Study, dimension: str | Sequence[str] | None) -> list[str]:
    if dimension is None:
        return study.dimensions
    dims = [dimension] if isinstance(dimension, str) else list(dimension)
    for d in dims:
        study.scale(d)
    return dims


def _count_matrix(codes: pd.DataFrame, n_values: int, keys: list[str]) -> pd.DataFrame:
    """Rows: unique ``keys`` combinations; columns 0..n_values-1: number of ratings of each value."""
    counts = pd.crosstab([codes[k] for k in keys], codes["v"])
    return counts.reindex(columns=range(n_values), fill_value=0)


def item_disagreement(
    study: Study, *, dimension: str | Sequence[str] | None = None, group: PopulationSpec = None
) -> pd.DataFrame:
    """Spread of the ratings of each item: entropy, variance and share at the modal category.

    Parameters
    ----------
    study : Study
    dimension : str or list of str, optional
        Dimensions (default: all).
    group : mapping or Population, optional
        Only ratings by this group (``{"gender": "she/her"}``); None for everyone.

    Returns
    -------
    DataFrame
        One row per dimension × item: ``dimension, item, prompt_id, group, n`` (ratings),
        ``mean, variance`` (sample variance, ddof=1; NaN for one rating), ``entropy`` (bits),
        ``entropy_norm`` (entropy / log2 of the number of scale points, in [0, 1]), ``modal``
        (most frequent rating; the lowest when several tie), ``n_modes`` and ``share_modal``
        (share of ratings at the modal category, the share agreeing).

    Examples
    --------
    >>> import pandas as pd
    >>> from pluralign.data import Scale, Study
    >>> r = pd.DataFrame({"rater": list("abcd"), "item": "i1", "dimension": "toxicity",
    ...                   "rating": [1, 1, 2, 5]})
    >>> s = Study.from_frames(r, scales=[Scale("toxicity", 1, 5)])
    >>> item_disagreement(s)[["n", "modal", "share_modal", "entropy"]].values.tolist()
    [[4.0, 1.0, 0.5, 1.5]]
    """
    target = Population.parse(group)
    if target.kind == "poststratified":
        raise ValueError(
            "item_disagreement takes one group (a mapping), not a post-stratification frame"
        )
    members = target.members(study)
    frames = []
    for dim in _dims(study, dimension):
        scale = study.scale(dim)
        codes = rating_codes(study, dim)
        codes = codes[codes["rater"].isin(members.index)]
        if codes.empty:
            continue
        counts = _count_matrix(codes, scale.n_levels, ["item"])
        c = counts.to_numpy(dtype=float)
        n = c.sum(axis=1)
        p = c / n[:, None]
        levels = scale.levels.astype(float)
        mean = p @ levels
        var = (c * (levels[None, :] - mean[:, None]) ** 2).sum(axis=1) / np.where(
            n > 1, n - 1, np.nan
        )
        top = c.max(axis=1)
        frames.append(pd.DataFrame({
            "dimension": dim, "item": counts.index.to_numpy(), "group": target.label, "n": n,
            "mean": mean, "variance": var, "entropy": entropy(p, base=2, axis=1),
            "entropy_norm": entropy(p, base=2, axis=1) / np.log2(scale.n_levels),
            "modal": levels[c.argmax(axis=1)], "n_modes": (c == top[:, None]).sum(axis=1),
            "share_modal": top / n,
        }))  # fmt: skip
    out = pd.concat(frames, ignore_index=True)
    out = out.merge(study.items[["item", "prompt_id"]], on="item", how="left")
    return out[list(ITEM_DISAGREEMENT_COLUMNS)]


def group_divergence(
    study: Study,
    by: str = "gender",
    *,
    dimension: str | Sequence[str] | None = None,
    groups: tuple[str, str] | Sequence[tuple[str, str]] | None = None,
    min_ratings: int = 1,
    n_boot: int | None = None,
    ci_prob: float | None = None,
    seed: int | None = None,
) -> pd.DataFrame:
    """Jensen–Shannon divergence between two groups' rating distributions of each item.

    Parameters
    ----------
    study : Study
    by : str, default "gender"
        Demographic column (collapsed coding for multi-select columns).
    dimension : str or list of str, optional
        Dimensions (default: all).
    groups : (a, b) or list of such pairs, optional
        Pairs of levels of ``by`` to compare (default: every pair of observed levels).
    min_ratings : int, default 1
        Items with fewer ratings in either group are left out of that pair (counted in
        ``result.attrs["dropped"]`` and warned).
    n_boot : int, optional
        Bootstrap resamples (default ``options.n_boot``; 0 for none). Ratings are resampled
        with replacement within item × group, i.e. each group's counts are redrawn from a
        multinomial with the observed shares.
    ci_prob, seed : optional
        Interval probability and seed (defaults from ``options``).

    Returns
    -------
    DataFrame
        One row per dimension × pair × item: ``dimension, by, group_a, group_b, item,
        prompt_id, n_a, n_b, mean_a, mean_b, difference`` (mean_a − mean_b), ``jsd`` (base 2, in
        [0, 1]), ``jsd_se, ci_low, ci_high`` (bootstrap standard error and percentile
        interval). The plug-in JSD is biased upwards when groups have few ratings; compare
        items with similar ``n_a, n_b`` or look at ``ci_low``.

    Examples
    --------
    >>> import pandas as pd
    >>> from pluralign.data import Scale, Study
    >>> r = pd.DataFrame({"rater": list("abcd"), "item": "i1", "dimension": "toxicity",
    ...                   "rating": [1, 1, 5, 5]})
    >>> raters = pd.DataFrame({"rater": list("abcd"), "gender": ["he/him"] * 2 + ["she/her"] * 2})
    >>> s = Study.from_frames(r, raters, scales=[Scale("toxicity", 1, 5)])
    >>> group_divergence(s, "gender", n_boot=0)["jsd"].item()
    1.0
    """
    n_boot = options.n_boot if n_boot is None else int(n_boot)
    ci_prob = options.ci_prob if ci_prob is None else float(ci_prob)
    rng = np.random.default_rng(options.seed if seed is None else seed)
    group_of = study.collapsed(by)
    levels_present = sorted(group_of.dropna().unique().tolist())
    if groups is None:
        pairs = list(itertools.combinations(levels_present, 2))
    elif len(groups) == 2 and all(isinstance(x, str) for x in groups):
        pairs = [tuple(groups)]
    else:
        pairs = [tuple(p) for p in groups]
    for pair in pairs:
        for level in pair:
            if level not in levels_present:
                raise ValueError(f"{by}={level!r} has no raters; levels are {levels_present}")
    frames, dropped = [], 0
    for dim in _dims(study, dimension):
        scale = study.scale(dim)
        codes = rating_codes(study, dim)
        codes["g"] = group_of.reindex(codes["rater"]).to_numpy()
        codes = codes.dropna(subset=["g"])
        counts = _count_matrix(codes, scale.n_levels, ["g", "item"])
        for a, b in pairs:
            ca = counts.loc[a] if a in counts.index.get_level_values(0) else counts.iloc[:0]
            cb = counts.loc[b] if b in counts.index.get_level_values(0) else counts.iloc[:0]
            items = ca.index.union(cb.index)
            ca = ca.reindex(items, fill_value=0).to_numpy(dtype=float)
            cb = cb.reindex(items, fill_value=0).to_numpy(dtype=float)
            na, nb = ca.sum(1), cb.sum(1)
            keep = (na >= min_ratings) & (nb >= min_ratings) & (na > 0) & (nb > 0)
            dropped += int((~keep).sum())
            items, ca, cb, na, nb = items[keep], ca[keep], cb[keep], na[keep], nb[keep]
            pa_, pb_ = ca / na[:, None], cb / nb[:, None]
            lv = scale.levels.astype(float)
            row = pd.DataFrame({
                "dimension": dim, "by": by, "group_a": a, "group_b": b, "item": items,
                "n_a": na.astype(int), "n_b": nb.astype(int),
                "mean_a": pa_ @ lv, "mean_b": pb_ @ lv, "jsd": _jsd(pa_, pb_),
            })  # fmt: skip
            row["difference"] = row["mean_a"] - row["mean_b"]
            if n_boot and len(items):
                size = (n_boot, len(items))
                ba = rng.multinomial(na.astype(np.int64), pa_, size=size) / na[None, :, None]
                bb = rng.multinomial(nb.astype(np.int64), pb_, size=size) / nb[None, :, None]
                j = _jsd(ba, bb)
                q = np.quantile(j, [(1 - ci_prob) / 2, 1 - (1 - ci_prob) / 2], axis=0)
                row["jsd_se"], row["ci_low"], row["ci_high"] = j.std(axis=0, ddof=1), q[0], q[1]
            else:
                row["jsd_se"] = row["ci_low"] = row["ci_high"] = np.nan
            frames.append(row)
    out = pd.concat(frames, ignore_index=True)
    out = out.merge(study.items[["item", "prompt_id"]], on="item", how="left")
    out = out[list(DIVERGENCE_COLUMNS)]
    out.attrs["dropped"] = dropped
    if dropped:
        warnings.warn(
            f"group_divergence: {dropped} item × group-pair rows left out because a group had "
            f"fewer than max(1, {min_ratings}) ratings of the item (see result.attrs['dropped'])",
            DroppedRowsWarning,
            stacklevel=2,
        )
    return out


def most_contested(
    study: Study,
    by: str = "gender",
    *,
    n: int = 10,
    dimension: str | Sequence[str] | None = None,
    groups: tuple[str, str] | Sequence[tuple[str, str]] | None = None,
    rank_by: str = "jsd",
    min_ratings: int = 2,
    n_boot: int | None = 0,
    seed: int | None = None,
) -> pd.DataFrame:
    """The items on which groups disagree most, with their texts.

    Parameters
    ----------
    study : Study
    by : str, default "gender"
        Demographic column.
    n : int, default 10
        Number of rows returned (over all dimensions and pairs of groups).
    dimension, groups, min_ratings, n_boot, seed
        As in :func:`group_divergence` (no bootstrap by default).
    rank_by : {"jsd", "ci_low", "abs_difference"}, default "jsd"
        Ranking column; ``"ci_low"`` (needs ``n_boot > 0``) favours items whose divergence is
        large *and* well measured.

    Returns
    -------
    DataFrame
        The top ``n`` rows of :func:`group_divergence` with ``prompt`` and ``response``.

    Examples
    --------
    >>> import pandas as pd
    >>> from pluralign.data import Scale, Study
    >>> r = pd.DataFrame({"rater": list("abcdabcd"), "item": ["i1"] * 4 + ["i2"] * 4,
    ...                   "dimension": "toxicity", "rating": [1, 1, 5, 5, 2, 3, 2, 3]})
    >>> raters = pd.DataFrame({"rater": list("abcd"), "gender": ["he/him"] * 2 + ["she/her"] * 2})
    >>> s = Study.from_frames(r, raters, scales=[Scale("toxicity", 1, 5)])
    >>> most_contested(s, "gender", n=1)["item"].tolist()
    ['i1']
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DroppedRowsWarning)
        div = group_divergence(
            study,
            by,
            dimension=dimension,
            groups=groups,
            min_ratings=min_ratings,
            n_boot=n_boot,
            seed=seed,
        )
    for w in caught:
        warnings.warn(w.message, w.category, stacklevel=2)
    if rank_by == "abs_difference":
        key = div["difference"].abs()
    elif rank_by in ("jsd", "ci_low"):
        if rank_by == "ci_low" and not n_boot:
            raise ValueError("rank_by='ci_low' needs n_boot > 0")
        key = div[rank_by]
    else:
        raise ValueError(f"rank_by must be 'jsd', 'ci_low' or 'abs_difference', got {rank_by!r}")
    top = div.assign(_key=key).sort_values("_key", ascending=False, kind="stable").head(n)
    top = top.drop(columns="_key").merge(
        study.items[["item", "prompt", "response"]], on="item", how="left"
    )
    return top.reset_index(drop=True)
