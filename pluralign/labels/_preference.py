"""Preference labels for pairs of responses to the same prompt, and unpaired desirability labels.

Definitions (used throughout; see :func:`preference_labels`).

*Score.* For chosen dimensions ``d`` with weights ``w_d``, a rater's score of an item is
``S = Σ_d w_d · desirability_d · (r_d − min_d) / (max_d − min_d)``, where ``desirability_d`` is
``Scale.desirability`` (+1 when a higher rating is better, e.g. helpfulness; −1 when worse, e.g.
toxicity). Higher ``S`` is better. A (rater, item) missing one of the dimensions has no score
(counted in ``.dropped``).

*Comparisons.* For a pair (A, B) of items sharing a prompt, when at least ``min_same_rater``
raters of the target group rated both, the comparisons are those raters' own pairs
(``comparison="same_rater"``); otherwise every pair of one rating of A and one of B
(``comparison="cross"``).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from pluralign._compat import require
from pluralign._errors import DroppedRowsWarning
from pluralign.data import Study, check_pairs
from pluralign.labels._kernels import pair_probability
from pluralign.labels._target import GroupSpec, Target, resolve_target

Method = Literal["majority", "distribution", "posterior"]

PREFERENCE_COLUMNS = (
    "prompt_id", "item_a", "item_b", "p_a", "p_sd", "n_comparisons", "comparison", "coverage",
    "n_a", "n_b", "chosen_item", "rejected_item", "p_chosen", "prompt", "chosen", "rejected",
    "group", "dimensions", "weights", "method", "scale",
)  # fmt: skip

DROPPED_COLUMNS = ("reason", "n", "examples")


# ---------------------------------------------------------------------------- scores
@dataclass(frozen=True, eq=False)
class ScoreSpec:
    """Dimensions and signed coefficients ``c_d = w_d · desirability_d`` of the combined score."""

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

    def score(self, ratings: np.ndarray) -> np.ndarray:
        """Score of rating vectors (rows × dimensions, on the original scales)."""
        x = (np.asarray(ratings, dtype=float) - np.asarray(self.mins)) / np.asarray(self.ranges)
        return x @ np.asarray(self.coef)

    def normalised(self, s: np.ndarray) -> np.ndarray:
        """Score mapped onto [0, 1] (0 = worst attainable, 1 = best)."""
        lo, hi = self.bounds
        return (np.asarray(s, dtype=float) - lo) / (hi - lo)

    def describe_scales(self, study: Study) -> str:
        return ";".join(f"{d}:{study.scale(d).min}..{study.scale(d).max}" for d in self.dimensions)


def score_spec(
    study: Study,
    dimensions: str | Sequence[str] | None = None,
    weights: Mapping[str, float] | Sequence[float] | None = None,
) -> ScoreSpec:
    """Resolve ``dimensions`` and ``weights`` into a :class:`ScoreSpec`.

    Default dimensions: every dimension with a declared direction (``Scale.desirability`` ≠ 0),
    or the keys of ``weights`` when it is a mapping. Default weights: equal, summing to 1.
    A dimension without a declared direction needs an explicit weight; its sign is then the
    weight's sign.
    """
    if dimensions is None and isinstance(weights, Mapping):
        dimensions = list(weights)
    if dimensions is None:
        dims = [d for d in study.dimensions if study.scale(d).desirability != 0]
        if not dims:
            raise ValueError(
                "no dimension has a declared direction (Scale.more_is_better); pass dimensions= "
                "and weights= (a positive weight means higher ratings are better)"
            )
    else:
        dims = [dimensions] if isinstance(dimensions, str) else list(dimensions)
    for d in dims:
        study.scale(d)
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
        des = study.scale(d).desirability
        if des == 0:
            if weights is None:
                raise ValueError(
                    f"dimension {d!r} has no declared direction (Scale.more_is_better is None); "
                    "declare it or pass an explicit weight (its sign says which way is better)"
                )
            des = 1
        coef.append(wd * des)
    if not np.any(coef):
        raise ValueError("every weight is zero")
    mins = tuple(float(study.scale(d).min) for d in dims)
    ranges = tuple(float(study.scale(d).max - study.scale(d).min) for d in dims)
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


# ---------------------------------------------------------------------------- results
def _dataset(frame: pd.DataFrame):
    datasets = require("datasets", "Hugging Face datasets")
    return datasets.Dataset.from_pandas(frame.reset_index(drop=True), preserve_index=False)


@dataclass(frozen=True, eq=False)
class PreferenceLabels:
    """Preference labels for pairs of responses to the same prompt.

    Attributes
    ----------
    table : DataFrame
        One row per labelled pair: ``prompt_id, item_a, item_b, p_a`` (probability that A is
        preferred), ``p_sd`` (posterior SD; NaN otherwise), ``n_comparisons, comparison``
        ("same_rater", "cross" or "model"), ``coverage`` (share of the target population with
        comparisons of this pair), ``n_a, n_b`` (target ratings of each item), ``chosen_item,
        rejected_item, p_chosen`` (the chosen side has ``p ≥ 0.5``), texts ``prompt, chosen,
        rejected`` and ``group, dimensions, weights, method, scale``.
    dropped : DataFrame
        ``reason, n, examples`` for every pair or row that was left out (ties, no data...).
    method, group : str
    dimensions : tuple of str
    weights : tuple of float
    """

    table: pd.DataFrame
    dropped: pd.DataFrame
    method: str
    group: str
    dimensions: tuple[str, ...]
    weights: tuple[float, ...]

    @property
    def n_dropped(self) -> int:
        """Number of candidate pairs left out (ties, no comparisons in the target group)."""
        pair_reasons = self.dropped["reason"].str.startswith("pair")
        return int(self.dropped.loc[pair_reasons, "n"].sum())

    def __len__(self) -> int:
        return len(self.table)

    def __repr__(self) -> str:
        return (
            f"<PreferenceLabels {self.method!r} for {self.group!r}: {len(self.table)} pairs, "
            f"{self.n_dropped} dropped; dimensions {list(self.dimensions)}>"
        )

    def to_dataset(self):
        """A Hugging Face ``datasets.Dataset`` in TRL's preference layout.

        Columns ``prompt, chosen, rejected, p_chosen`` and metadata ``prompt_id, chosen_item,
        rejected_item, n_comparisons, comparison, group, method, dimensions``.
        """
        cols = ["prompt", "chosen", "rejected", "p_chosen", "prompt_id", "chosen_item",
                "rejected_item", "n_comparisons", "comparison", "group", "method", "dimensions"]  # fmt: skip
        return _dataset(self.table[cols])


@dataclass(frozen=True, eq=False)
class DesirabilityLabels:
    """One desirability label per response (the unpaired, KTO-like form).

    Attributes
    ----------
    table : DataFrame
        ``prompt_id, item, prompt, completion, score`` (mean normalised score in [0, 1]),
        ``p`` (share of the target's ratings on the desirable side of the midpoint, ties
        half), ``label`` (``p ≥ 0.5``; for ``method="majority"``, ``p`` is 0 or 1 and ties are
        dropped), ``n_ratings, coverage, group, dimensions, weights, method, scale``.
    dropped : DataFrame
    """

    table: pd.DataFrame
    dropped: pd.DataFrame
    method: str
    group: str
    dimensions: tuple[str, ...]
    weights: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.table)

    def to_dataset(self):
        """``datasets.Dataset`` with ``prompt, completion, label`` (bool), ``p`` and metadata."""
        cols = ["prompt", "completion", "label", "p", "score", "prompt_id", "item", "n_ratings",
                "group", "method", "dimensions"]  # fmt: skip
        return _dataset(self.table[cols])


def _dropped_frame(entries: list[tuple[str, int, list]]) -> pd.DataFrame:
    rows = [{"reason": r, "n": n, "examples": ", ".join(map(str, ex[:5]))}
            for r, n, ex in entries if n]  # fmt: skip
    return pd.DataFrame(rows, columns=list(DROPPED_COLUMNS))


def _warn_dropped(dropped: pd.DataFrame, what: str) -> None:
    if len(dropped):
        text = "; ".join(f"{r.n} {r.reason}" for r in dropped.itertuples())
        warnings.warn(f"{what}: {text} (see .dropped)", DroppedRowsWarning, stacklevel=3)


# ---------------------------------------------------------------------------- per-item data
@dataclass
class _ItemData:
    raters: np.ndarray
    cells: np.ndarray
    S: np.ndarray
    R: np.ndarray  # ratings (n × dimensions)


def _item_data(scores: pd.DataFrame, target: Target, spec: ScoreSpec) -> dict[str, _ItemData]:
    s = scores[scores["rater"].isin(target.cell_of.index)].copy()
    s["cell"] = target.cell_of.reindex(s["rater"]).to_numpy()
    s = s.sort_values(["item", "rater"], kind="stable")
    out = {}
    dims = list(spec.dimensions)
    for item, g in s.groupby("item", sort=False):
        out[item] = _ItemData(
            g["rater"].to_numpy(),
            g["cell"].to_numpy(dtype=int),
            g["S"].to_numpy(dtype=float),
            g[dims].to_numpy(dtype=float),
        )
    return out


def _modal_ratings(dist: np.ndarray, levels: np.ndarray) -> float:
    """Modal rating of a distribution; several tied modes give their mean."""
    top = np.isclose(dist, dist.max())
    return float(levels[top].mean())


def _pair_label(
    da: _ItemData,
    db: _ItemData,
    target: Target,
    spec: ScoreSpec,
    method: str,
    comparison: str,
    min_same_rater: int,
    study: Study,
) -> dict | None:
    """Label of one pair (p_a, counts), or None when no target cell has comparisons."""
    common, ia, ib = np.intersect1d(da.raters, db.raters, return_indices=True)
    if comparison == "auto":
        mode = "same_rater" if len(common) >= max(1, min_same_rater) else "cross"
    else:
        mode = comparison
    shares = target.shares
    vals, used, n_total = [], [], 0
    if mode == "same_rater":
        diff = da.S[ia] - db.S[ib]
        cells = da.cells[ia]
        for c in np.unique(cells):
            d = diff[cells == c]
            wins, ties, losses = (d > 0).sum(), (d == 0).sum(), (d < 0).sum()
            n = len(d)
            vals.append((wins + ties / 2) / n if method == "distribution" else (wins - losses) / n)
            used.append(c)
            n_total += n
        if not used:
            return None
        w = shares[used]
        stat = float(np.dot(w, vals) / w.sum())
    else:
        cells = np.intersect1d(np.unique(da.cells), np.unique(db.cells))
        if not len(cells):
            return None
        w = shares[cells]
        n_total = int(sum((da.cells == c).sum() * (db.cells == c).sum() for c in cells))
        if method == "distribution":
            for c in cells:
                wins, ties, losses = pair_probability(da.S[da.cells == c], db.S[db.cells == c])
                vals.append((wins + ties / 2) / (wins + ties + losses))
            stat = float(np.dot(w, vals) / w.sum())
        else:
            # item-level majority: post-stratified modal rating of each dimension, then the score
            modal = []
            for d in (da, db):
                m = []
                for j, dim in enumerate(spec.dimensions):
                    levels = study.scale(dim).levels.astype(float)
                    dist = np.zeros(len(levels))
                    for c, wc in zip(cells, w, strict=True):
                        x = d.R[d.cells == c, j]
                        dist += wc * (x[:, None] == levels[None, :]).mean(axis=0)
                    m.append(_modal_ratings(dist, levels))
                modal.append(spec.score(np.array([m]))[0])
            stat = float(np.sign(round(modal[0] - modal[1], 12)))
        used = list(cells)
    coverage = float(shares[used].sum())
    if method == "distribution":
        p_a = stat
    else:
        p_a = 1.0 if stat > 1e-12 else (0.0 if stat < -1e-12 else np.nan)
    return {"p_a": p_a, "n_comparisons": int(n_total), "comparison": mode, "coverage": coverage}


def _candidate_pairs(study: Study) -> tuple[list[tuple[str, str, str]], list]:
    """Every pair of items sharing a prompt, and the prompts with a single item."""
    pairs, single = [], []
    for pid, g in study.items.groupby("prompt_id", sort=False):
        items = g["item"].tolist()
        if len(items) < 2:
            single.append(pid)
            continue
        pairs.extend((pid, a, b) for a, b in itertools.combinations(items, 2))
    return pairs, single


# ---------------------------------------------------------------------------- public
def preference_labels(
    study: Study,
    method: Method = "distribution",
    group: GroupSpec = None,
    dimensions: str | Sequence[str] | None = None,
    weights: Mapping[str, float] | Sequence[float] | None = None,
    fit=None,
    seed: int | None = None,
    *,
    comparison: Literal["auto", "same_rater", "cross"] = "auto",
    min_same_rater: int = 1,
    n_draws: int | None = None,
) -> PreferenceLabels:
    """Preference labels for every pair of responses that share a prompt.

    Methods (each on the combined score ``S`` of the module docstring, within the target group):

    - ``"distribution"`` keeps disagreement: ``p_a`` is the share of comparisons favouring A,
      ties counted half. Same-rater comparisons: ``p_a = (#raters with S_A > S_B +
      ½ #ties) / #raters``. Cross comparisons: ``p_a = P(S_A > S_B) + ½ P(S_A = S_B)`` over every
      pair of one rating of A and one of B (the common-language effect size).
    - ``"majority"`` gives hard 0/1 labels. Same-rater comparisons: a majority vote of the
      raters' own preferences (a rater's tie abstains). Cross comparisons: aggregate first —
      each item's majority rating is its modal rating on each dimension (several tied modes
      give their mean), combined into ``S``; the item with the higher ``S`` wins. Ties are
      dropped, counted in ``.dropped`` and warned (:class:`DroppedRowsWarning`).
    - ``"posterior"`` asks a fitted Bayesian model (``fit``, from ``fit_bayes``) for
      ``P(A preferred)`` through :func:`posterior_pair_probabilities`; ``p_sd`` is its
      posterior SD.

    Groups. ``group=None`` uses every rater, a mapping (``{"gender": "she/her"}``, or an
    intersection) one group; a post-stratification frame (demographic columns + ``share``) gives
    the share-weighted mix of the cells' results: for ``"distribution"`` the mix of the cell
    labels ``Σ_c share_c p_c``; for ``"majority"`` the mix of the cells' vote margins
    (same-rater) or the modal rating of the share-weighted mix of the cells' rating
    distributions (cross). Cells without comparisons of a pair are left out and the shares
    renormalised; ``coverage`` is the share that remained.

    Parameters
    ----------
    study : Study
        Items must carry ``prompt_id``; pairs are all pairs of items with the same prompt.
    method : {"majority", "distribution", "posterior"}, default "distribution"
    group : None, mapping or DataFrame
        Target population (see above).
    dimensions : str or list of str, optional
        Dimensions combined into the score (default: those with a declared direction).
    weights : mapping or sequence of float, optional
        Weight of each dimension (default equal, summing to 1). The sign of a dimension comes
        from ``Scale.desirability``; a negative weight reverses it.
    fit : BayesResult, optional
        Needed for ``method="posterior"``.
    seed : int, optional
        Passed to :func:`posterior_pair_probabilities`.
    comparison : {"auto", "same_rater", "cross"}, default "auto"
        ``"auto"`` uses same-rater comparisons when at least ``min_same_rater`` target raters
        rated both items, else cross comparisons.
    min_same_rater : int, default 1
    n_draws : int, optional
        Posterior draws used by ``method="posterior"`` (default: all).

    Returns
    -------
    PreferenceLabels

    See Also
    --------
    desirability_labels : the unpaired form for studies with one response per prompt.

    Examples
    --------
    >>> import pandas as pd
    >>> from pluralign.data import Scale, Study
    >>> r = pd.DataFrame({"rater": ["r1", "r1", "r2", "r2", "r3", "r3"],
    ...     "item": ["a", "b"] * 3, "dimension": "toxicity", "rating": [1, 4, 2, 2, 5, 1]})
    >>> items = pd.DataFrame({"item": ["a", "b"], "prompt_id": "p", "prompt": "Q?",
    ...                       "response": ["A.", "B."]})
    >>> s = Study.from_frames(r, items=items,
    ...                       scales=[Scale("toxicity", 1, 5, more_is_better=False)])
    >>> labels = preference_labels(s, "distribution")
    >>> labels.table[["item_a", "item_b", "p_a", "chosen"]].values.tolist()
    [['a', 'b', 0.5, 'A.']]
    """
    if method not in ("majority", "distribution", "posterior"):
        raise ValueError(
            f"method must be 'majority', 'distribution' or 'posterior', got {method!r}"
        )
    if comparison not in ("auto", "same_rater", "cross"):
        raise ValueError(f"comparison must be 'auto', 'same_rater' or 'cross', got {comparison!r}")
    check_pairs(study)
    spec = score_spec(study, dimensions, weights)
    target = resolve_target(study, group)
    scores, n_incomplete = score_table(study, spec)
    pairs, single = _candidate_pairs(study)
    entries: list[tuple[str, int, list]] = [
        ("rater × item rows without every chosen dimension (not scored)", n_incomplete, []),
    ]
    if target.kind == "poststratified":
        empty = [lab for i, lab in enumerate(target.cell_labels) if i not in set(target.cell_of)]
        entries.append(("post-stratification cells without raters", len(empty), empty))

    rows = []
    if method == "posterior":
        rows = _posterior_rows(fit, pairs, group, spec, weights, seed, n_draws)
        rows["n_comparisons"] = pd.array([pd.NA] * len(rows), dtype="Int64")
        rows["comparison"], rows["coverage"] = "model", 1.0
        data = _item_data(scores, target, spec)
        rows["n_a"] = [len(data[a].S) if a in data else 0 for a in rows["item_a"]]
        rows["n_b"] = [len(data[b].S) if b in data else 0 for b in rows["item_b"]]
        no_p = rows["p_a"].isna()
        entries.append(
            (
                "pairs without a posterior probability",
                int(no_p.sum()),
                rows.loc[no_p, "item_a"].tolist(),
            )
        )
        table = rows[~no_p]
    else:
        data = _item_data(scores, target, spec)
        no_data, ties = [], []
        for pid, a, b in pairs:
            if a not in data or b not in data:
                no_data.append(f"{a}/{b}")
                continue
            res = _pair_label(
                data[a], data[b], target, spec, method, comparison, min_same_rater, study
            )
            if res is None:
                no_data.append(f"{a}/{b}")
                continue
            if np.isnan(res["p_a"]):
                ties.append(f"{a}/{b}")
                continue
            rows.append(
                {
                    "prompt_id": pid,
                    "item_a": a,
                    "item_b": b,
                    "p_sd": np.nan,
                    "n_a": len(data[a].S),
                    "n_b": len(data[b].S),
                    **res,
                }
            )
        entries.append(("pairs without comparisons in the target group", len(no_data), no_data))
        entries.append(("pairs tied under the majority rule", len(ties), ties))
        table = pd.DataFrame(
            rows,
            columns=[
                "prompt_id",
                "item_a",
                "item_b",
                "p_sd",
                "n_a",
                "n_b",
                "p_a",
                "n_comparisons",
                "comparison",
                "coverage",
            ],
        )
    dropped = _dropped_frame(entries)
    _warn_dropped(dropped, f"preference_labels({method!r})")
    entries_single = _dropped_frame(
        [("prompts with a single response (no pair; see desirability_labels)", len(single), single)]
    )
    dropped = (
        pd.concat([dropped, entries_single], ignore_index=True) if len(entries_single) else dropped
    )
    table = _finish_pairs(table.reset_index(drop=True), study, target, spec, method)
    return PreferenceLabels(table, dropped, method, target.label, spec.dimensions, spec.weights)


def _posterior_rows(fit, pairs, group, spec, weights, seed, n_draws) -> pd.DataFrame:
    if fit is None:
        raise ValueError("method='posterior' needs fit=fit_bayes(study, ...)")
    try:
        from pluralign.labels._posterior import posterior_pair_probabilities
    except ImportError as exc:
        raise ImportError(
            "method='posterior' needs pluralign.labels.posterior_pair_probabilities, which is "
            f"not available in this installation ({exc}); use method='distribution' instead"
        ) from exc
    frame = pd.DataFrame(pairs, columns=["prompt_id", "item_a", "item_b"])
    w = dict(zip(spec.dimensions, spec.weights, strict=True)) if weights is not None else None
    res = posterior_pair_probabilities(
        fit,
        frame[["item_a", "item_b"]],
        group,
        list(spec.dimensions),
        w,
        n_draws=n_draws,
        seed=seed,
    )
    res = res.rename(columns={"p": "p_a", "p_sd": "p_sd"})
    return frame.merge(
        res[["item_a", "item_b", "p_a", "p_sd"]], on=["item_a", "item_b"], how="left"
    )


def _finish_pairs(
    table: pd.DataFrame, study: Study, target: Target, spec: ScoreSpec, method: str
) -> pd.DataFrame:
    a_wins = table["p_a"] >= 0.5
    table["chosen_item"] = np.where(a_wins, table["item_a"], table["item_b"])
    table["rejected_item"] = np.where(a_wins, table["item_b"], table["item_a"])
    table["p_chosen"] = np.where(a_wins, table["p_a"], 1 - table["p_a"]).astype(float)
    texts = study.items.set_index("item")
    table["prompt"] = texts["prompt"].reindex(table["item_a"]).to_numpy()
    table["chosen"] = texts["response"].reindex(table["chosen_item"]).to_numpy()
    table["rejected"] = texts["response"].reindex(table["rejected_item"]).to_numpy()
    table["group"] = target.label
    table["dimensions"] = ",".join(spec.dimensions)
    table["weights"] = ",".join(f"{w:g}" for w in spec.weights)
    table["method"] = method
    table["scale"] = spec.describe_scales(study)
    table["p_a"] = table["p_a"].astype(float)
    return table[list(PREFERENCE_COLUMNS)]


def desirability_labels(
    study: Study,
    method: Literal["distribution", "majority"] = "distribution",
    group: GroupSpec = None,
    dimensions: str | Sequence[str] | None = None,
    weights: Mapping[str, float] | Sequence[float] | None = None,
) -> DesirabilityLabels:
    """One desirability label per response, for unpaired (KTO-like) training.

    Each (rater, item) score ``S`` (see :func:`preference_labels`) is mapped onto [0, 1]
    (0 = worst attainable, 1 = best). ``score`` is the target group's mean of it; ``p`` is the
    share of ratings on the desirable side (> ½), ratings exactly at ½ counted half;
    ``label = p ≥ 0.5``. ``method="majority"`` makes ``p`` hard (1 if more ratings are
    desirable than undesirable, 0 if fewer) and drops ties (counted in ``.dropped``). A
    post-stratification frame mixes the cells' ``score`` and ``p`` by share.

    Parameters
    ----------
    study : Study
    method : {"distribution", "majority"}, default "distribution"
    group, dimensions, weights
        As in :func:`preference_labels`.

    Returns
    -------
    DesirabilityLabels

    Examples
    --------
    >>> import pandas as pd
    >>> from pluralign.data import Scale, Study
    >>> r = pd.DataFrame({"rater": ["r1", "r2", "r3"], "item": "a", "dimension": "toxicity",
    ...                   "rating": [1, 3, 5]})
    >>> s = Study.from_frames(r, scales=[Scale("toxicity", 1, 5, more_is_better=False)])
    >>> desirability_labels(s).table[["score", "p", "label"]].values.tolist()
    [[0.5, 0.5, True]]
    """
    if method not in ("distribution", "majority"):
        raise ValueError(f"method must be 'distribution' or 'majority', got {method!r}")
    spec = score_spec(study, dimensions, weights)
    target = resolve_target(study, group)
    scores, n_incomplete = score_table(study, spec)
    data = _item_data(scores, target, spec)
    rows, no_data, ties = [], [], []
    for item in study.items["item"]:
        d = data.get(item)
        if d is None:
            no_data.append(item)
            continue
        g = spec.normalised(d.S)
        cells = np.unique(d.cells)
        w = target.shares[cells]
        sc, pp, margin = [], [], []
        for c in cells:
            x = g[d.cells == c]
            mid = np.isclose(x, 0.5)
            up, down = ((x > 0.5) & ~mid).mean(), ((x < 0.5) & ~mid).mean()
            sc.append(x.mean())
            pp.append(up + mid.mean() / 2)
            margin.append(up - down)
        p = float(np.dot(w, pp) / w.sum())
        if method == "majority":
            m = float(np.dot(w, margin) / w.sum())
            if abs(m) < 1e-12:
                ties.append(item)
                continue
            p = 1.0 if m > 0 else 0.0
        rows.append(
            {
                "item": item,
                "score": float(np.dot(w, sc) / w.sum()),
                "p": p,
                "n_ratings": len(g),
                "coverage": float(w.sum()),
            }
        )
    entries = [
        ("rater × item rows without every chosen dimension (not scored)", n_incomplete, []),
        ("items without ratings from the target group", len(no_data), no_data),
        ("items tied under the majority rule", len(ties), ties),
    ]
    dropped = _dropped_frame(entries)
    _warn_dropped(dropped, f"desirability_labels({method!r})")
    table = pd.DataFrame(rows, columns=["item", "score", "p", "n_ratings", "coverage"])
    table["label"] = table["p"] >= 0.5
    table = table.merge(
        study.items[["item", "prompt_id", "prompt", "response"]], on="item", how="left"
    ).rename(columns={"response": "completion"})
    table["group"] = target.label
    table["dimensions"] = ",".join(spec.dimensions)
    table["weights"] = ",".join(f"{w:g}" for w in spec.weights)
    table["method"] = method
    table["scale"] = spec.describe_scales(study)
    cols = ["prompt_id", "item", "prompt", "completion", "score", "p", "label", "n_ratings",
            "coverage", "group", "dimensions", "weights", "method", "scale"]  # fmt: skip
    return DesirabilityLabels(
        table[cols], dropped, method, target.label, spec.dimensions, spec.weights
    )
