"""Preference labels for pairs of responses to the same prompt, and unpaired desirability labels.

Definitions (used throughout; see :func:`preference_labels`).

*Score.* The combined score ``S`` of :mod:`pluralign.labels._score` (weighted, signed,
range-normalised ratings; higher is better). A (rater, item) missing one of the dimensions has
no score (counted in ``.dropped``).

*Comparisons.* For a pair (A, B) of items sharing a prompt, when at least ``min_same_rater``
raters of the target group rated both, the comparisons are those raters' own pairs
(``comparison="same_rater"``); otherwise every pair of one rating of A and one of B
(``comparison="cross"``).
"""

from __future__ import annotations

import html
import itertools
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd

from pluralign._compat import require
from pluralign._errors import DroppedRowsWarning
from pluralign.data import Population, PopulationSpec, Study, check_pairs

if TYPE_CHECKING:
    from pluralign.models import ModelResult
from pluralign.labels._kernels import pair_probability
from pluralign.labels._posterior import posterior_pair_probabilities
from pluralign.labels._score import Dimensions, ScoreSpec, Weights, score_spec, score_table

Method = Literal["majority", "distribution", "posterior"]

#: Columns of :attr:`PreferenceLabels.table`.
PREFERENCE_COLUMNS = (
    "prompt_id", "item_a", "item_b", "p_a", "p_sd", "n_comparisons", "comparison", "coverage",
    "n_a", "n_b", "chosen_item", "rejected_item", "p_chosen", "prompt", "chosen", "rejected",
    "group", "dimensions", "weights", "method", "scale",
)  # fmt: skip

#: Columns of :attr:`DesirabilityLabels.table`.
DESIRABILITY_COLUMNS = (
    "prompt_id", "item", "prompt", "completion", "score", "p", "label", "n_ratings",
    "coverage", "group", "dimensions", "weights", "method", "scale",
)  # fmt: skip

#: Columns of the ``.dropped`` table of both label types.
DROPPED_COLUMNS = ("reason", "n", "examples")

#: Rows shown by ``_repr_html_`` in Jupyter.
_HTML_ROWS = 10


# ---------------------------------------------------------------------------- results
def _dataset(frame: pd.DataFrame):
    datasets = require("datasets", "Hugging Face datasets")
    return datasets.Dataset.from_pandas(frame.reset_index(drop=True), preserve_index=False)


def _html(title: str, table: pd.DataFrame, dropped: pd.DataFrame) -> str:
    out = [f"<p><b>{html.escape(title)}</b></p>", table.head(_HTML_ROWS).to_html(index=False)]
    if len(table) > _HTML_ROWS:
        out.append(f"<p>… {len(table) - _HTML_ROWS} more rows in <code>.table</code></p>")
    if len(dropped):
        out.append("<p>Left out (<code>.dropped</code>):</p>")
        out.append(dropped.to_html(index=False))
    return "\n".join(out)


@dataclass(frozen=True, eq=False)
class _Labels:
    """What both label types share: the table, what was left out, and how they were built."""

    table: pd.DataFrame
    dropped: pd.DataFrame
    method: str
    group: str
    dimensions: tuple[str, ...]
    weights: tuple[float, ...]

    #: what one row labels, and the prefix of the ``dropped`` reasons that count such rows
    _unit: ClassVar[str] = ""
    _dropped_prefix: ClassVar[str] = ""

    @property
    def n_dropped(self) -> int:
        """Number of candidates left out (ties, no data from the target group)."""
        units = self.dropped["reason"].str.startswith(self._dropped_prefix)
        return int(self.dropped.loc[units, "n"].sum())

    def __len__(self) -> int:
        return len(self.table)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.method!r} for {self.group!r}: {len(self.table)} "
            f"{self._unit}, {self.n_dropped} dropped; dimensions {list(self.dimensions)}>"
        )

    def _repr_html_(self) -> str:
        return _html(repr(self).strip("<>"), self.table, self.dropped)


@dataclass(frozen=True, eq=False, repr=False)
class PreferenceLabels(_Labels):
    """Preference labels for pairs of responses to the same prompt.

    Built by :func:`preference_labels`; ``to_dataset()`` gives TRL's preference layout for
    :func:`~pluralign.train.train_dpo`.

    Attributes
    ----------
    table : DataFrame
        One row per labelled pair (columns :data:`PREFERENCE_COLUMNS`): ``prompt_id, item_a,
        item_b, p_a`` (probability that A is preferred), ``p_sd`` (posterior SD; NaN
        otherwise), ``n_comparisons, comparison`` ("same_rater", "cross" or "model"),
        ``coverage`` (share of the target population with comparisons of this pair), ``n_a,
        n_b`` (target ratings of each item), ``chosen_item, rejected_item, p_chosen`` (the
        chosen side has ``p ≥ 0.5``), texts ``prompt, chosen, rejected`` and ``group,
        dimensions, weights, method, scale``.
    dropped : DataFrame
        ``reason, n, examples`` for every pair or row that was left out (ties, no data...).
    method : str
    group : str
        The target population's label (:attr:`Population.label`, e.g. ``"everyone"``).
    dimensions : tuple of str
    weights : tuple of float

    See Also
    --------
    preference_labels : builds them.
    DesirabilityLabels : the unpaired form.
    pluralign.train.train_dpo : soft-label DPO on them.

    Examples
    --------
    >>> import pandas as pd
    >>> from pluralign.data import Scale, Study
    >>> r = pd.DataFrame({"rater": ["r1", "r1", "r2", "r2"], "item": ["a", "b"] * 2,
    ...                   "dimension": "toxicity", "rating": [1, 4, 2, 3]})
    >>> items = pd.DataFrame({"item": ["a", "b"], "prompt_id": "p", "prompt": "Q?",
    ...                       "response": ["Kind.", "Rude."]})
    >>> s = Study.from_frames(r, items=items,
    ...                       scales=[Scale("toxicity", 1, 5, more_is_better=False)])
    >>> labels = preference_labels(s)
    >>> labels
    <PreferenceLabels 'distribution' for 'everyone': 1 pairs, 0 dropped; dimensions ['toxicity']>
    >>> labels.table[["chosen", "rejected", "p_chosen"]].values.tolist()
    [['Kind.', 'Rude.', 1.0]]
    >>> "<table" in labels._repr_html_()
    True
    """

    _unit: ClassVar[str] = "pairs"
    _dropped_prefix: ClassVar[str] = "pair"  # candidate pairs left out

    def to_dataset(self) -> Any:
        """A Hugging Face ``datasets.Dataset`` in TRL's preference layout.

        Columns ``prompt, chosen, rejected, p_chosen`` and metadata ``prompt_id, chosen_item,
        rejected_item, n_comparisons, comparison, group, method, dimensions``.
        """
        cols = ["prompt", "chosen", "rejected", "p_chosen", "prompt_id", "chosen_item",
                "rejected_item", "n_comparisons", "comparison", "group", "method", "dimensions"]  # fmt: skip
        return _dataset(self.table[cols])


@dataclass(frozen=True, eq=False, repr=False)
class DesirabilityLabels(_Labels):
    """One desirability label per response (the unpaired, KTO-like form).

    Built by :func:`desirability_labels`; ``to_dataset()`` gives TRL's unpaired layout
    (``prompt, completion, label``).

    Attributes
    ----------
    table : DataFrame
        Columns :data:`DESIRABILITY_COLUMNS`: ``prompt_id, item, prompt, completion, score``
        (mean normalised score in [0, 1]), ``p`` (share of the target's ratings on the
        desirable side of the midpoint, ties half), ``label`` (``p ≥ 0.5``; for
        ``method="majority"``, ``p`` is 0 or 1 and ties are dropped), ``n_ratings, coverage,
        group, dimensions, weights, method, scale``.
    dropped : DataFrame
        ``reason, n, examples`` for every item or row left out.
    method, group : str
    dimensions : tuple of str
    weights : tuple of float

    See Also
    --------
    desirability_labels : builds them.
    PreferenceLabels : the paired form.

    Examples
    --------
    >>> import pandas as pd
    >>> from pluralign.data import Scale, Study
    >>> r = pd.DataFrame({"rater": ["r1", "r2"], "item": "a", "dimension": "toxicity",
    ...                   "rating": [1, 2]})
    >>> s = Study.from_frames(r, scales=[Scale("toxicity", 1, 5, more_is_better=False)])
    >>> labels = desirability_labels(s)
    >>> labels
    <DesirabilityLabels 'distribution' for 'everyone': 1 responses, 0 dropped; dimensions ['toxicity']>
    >>> labels.table[["score", "label"]].values.tolist()
    [[0.875, True]]
    >>> "<table" in labels._repr_html_()
    True
    """

    _unit: ClassVar[str] = "responses"
    _dropped_prefix: ClassVar[str] = "items"  # responses left out

    def to_dataset(self) -> Any:
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


def _item_data(scores: pd.DataFrame, cell_of: pd.Series, spec: ScoreSpec) -> dict[str, _ItemData]:
    s = scores[scores["rater"].isin(cell_of.index)].copy()
    s["cell"] = cell_of.reindex(s["rater"]).to_numpy()
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
    shares: np.ndarray,
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
    *,
    group: PopulationSpec = None,
    dimensions: Dimensions = None,
    weights: Weights = None,
    fit: ModelResult | None = None,
    seed: int | None = None,
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
    group : None, mapping, DataFrame or Population
        Target population (see above and :class:`~pluralign.data.Population`).
    dimensions : str or list of str, optional
        Dimensions combined into the score (default: those with a declared direction; a
        dimension without one needs an explicit weight, see :func:`score_spec`).
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
    target = Population.parse(group)
    cell_of = target.members(study)
    scores, n_incomplete = score_table(study, spec)
    pairs, single = _candidate_pairs(study)
    entries: list[tuple[str, int, list]] = [
        ("rater × item rows without every chosen dimension (not scored)", n_incomplete, []),
    ]
    if target.kind == "poststratified":
        empty = [lab for i, lab in enumerate(target.cell_labels) if i not in set(cell_of)]
        entries.append(("post-stratification cells without raters", len(empty), empty))

    rows = []
    if method == "posterior":
        rows = _posterior_rows(fit, pairs, target, spec.dimensions, weights, seed, n_draws)
        rows["n_comparisons"] = pd.array([pd.NA] * len(rows), dtype="Int64")
        rows["comparison"], rows["coverage"] = "model", 1.0
        data = _item_data(scores, cell_of, spec)
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
        data = _item_data(scores, cell_of, spec)
        no_data, ties = [], []
        for pid, a, b in pairs:
            if a not in data or b not in data:
                no_data.append(f"{a}/{b}")
                continue
            res = _pair_label(
                data[a], data[b], target.shares, spec, method, comparison, min_same_rater, study
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
    table = _finish_pairs(table.reset_index(drop=True), study, target.label, spec, method)
    return PreferenceLabels(table, dropped, method, target.label, spec.dimensions, spec.weights)


def _posterior_rows(fit, pairs, target, dimensions, weights, seed, n_draws) -> pd.DataFrame:
    if fit is None:
        raise ValueError("method='posterior' needs fit=fit_bayes(study, ...)")
    frame = pd.DataFrame(pairs, columns=["prompt_id", "item_a", "item_b"])
    res = posterior_pair_probabilities(
        fit,
        frame[["item_a", "item_b"]],
        target=target,
        dimensions=list(dimensions),
        weights=weights,
        n_draws=n_draws,
        seed=seed,
    )
    res = res.rename(columns={"p": "p_a"})
    return frame.merge(
        res[["item_a", "item_b", "p_a", "p_sd"]], on=["item_a", "item_b"], how="left"
    )


def _finish_pairs(
    table: pd.DataFrame, study: Study, label: str, spec: ScoreSpec, method: str
) -> pd.DataFrame:
    a_wins = table["p_a"] >= 0.5
    table["chosen_item"] = np.where(a_wins, table["item_a"], table["item_b"])
    table["rejected_item"] = np.where(a_wins, table["item_b"], table["item_a"])
    table["p_chosen"] = np.where(a_wins, table["p_a"], 1 - table["p_a"]).astype(float)
    texts = study.items.set_index("item")
    table["prompt"] = texts["prompt"].reindex(table["item_a"]).to_numpy()
    table["chosen"] = texts["response"].reindex(table["chosen_item"]).to_numpy()
    table["rejected"] = texts["response"].reindex(table["rejected_item"]).to_numpy()
    table["group"] = label
    table["dimensions"] = ",".join(spec.dimensions)
    table["weights"] = ",".join(f"{w:g}" for w in spec.weights)
    table["method"] = method
    table["scale"] = spec.describe_scales()
    table["p_a"] = table["p_a"].astype(float)
    return table[list(PREFERENCE_COLUMNS)]


def desirability_labels(
    study: Study,
    method: Literal["distribution", "majority"] = "distribution",
    *,
    group: PopulationSpec = None,
    dimensions: Dimensions = None,
    weights: Weights = None,
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
    target = Population.parse(group)
    scores, n_incomplete = score_table(study, spec)
    data = _item_data(scores, target.members(study), spec)
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
    table["scale"] = spec.describe_scales()
    return DesirabilityLabels(
        table[list(DESIRABILITY_COLUMNS)],
        dropped,
        method,
        target.label,
        spec.dimensions,
        spec.weights,
    )
