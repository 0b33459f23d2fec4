"""How many raters per item and group make a preference label precise enough.

Distribution labels
-------------------
For two responses A and B of one prompt, a group's distribution label is
``p = P(r_A > r_B) + ½ P(r_A = r_B)``, estimated from the ``n`` raters of the group who rated
both as the mean of ``s_j = 1[r_A > r_B] + ½ 1[r_A = r_B]``. Raters are independent draws from
the group, so ``s_j`` are i.i.d. with values in {0, ½, 1} (a three-category multinomial) and

    E[s] = P> + ½ P=,   E[s²] = P> + ¼ P=,
    Var(s) = P> + ¼ P= − p² = p(1 − p) − ¼ P=,
    SD(p̂) = sqrt(Var(s) / n).

So ``n ≥ Var(s) / target_sd²`` raters per item reach the target; since ``Var(s) ≤ p(1 − p) ≤ ¼``,
``n ≥ 1 / (4 target_sd²)`` is enough for every pair whatever the design (ties only help).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
from scipy import special, stats

from pluralign._errors import DroppedRowsWarning
from pluralign._numeric import gauss_hermite
from pluralign._settings import options
from pluralign.data import Study
from pluralign.power._design import StudyDesign

#: Columns of :func:`label_precision`'s table.
PRECISION_COLUMNS = (
    "group",
    "method",
    "target_sd",
    "n_pairs",
    "var_s_median",
    "var_s_q90",
    "raters_needed_median",
    "raters_needed_q90",
    "raters_needed_worst",
    "current_raters_median",
    "current_sd_median",
    "share_below_target",
)


def raters_needed(var_s: np.ndarray | float, target_sd: float) -> np.ndarray:
    """Smallest ``n`` with ``sqrt(var_s / n) <= target_sd`` (at least 1)."""
    var_s = np.asarray(var_s, dtype=float)
    return np.maximum(np.ceil(var_s / target_sd**2 - 1e-9), 1).astype(int)


def comparison_variance(p_greater: np.ndarray, p_equal: np.ndarray) -> np.ndarray:
    """``Var(s)`` of one rater's comparison score from ``P(r_A > r_B)`` and ``P(r_A = r_B)``."""
    p = p_greater + 0.5 * p_equal
    return np.clip(p_greater + 0.25 * p_equal - p**2, 0.0, 0.25)


def _pair_probabilities(
    design: StudyDesign, level: str, n_pairs: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """P(r_A > r_B), P(r_A = r_B) for random pairs of responses under the design, for a random
    rater of ``level`` (rater intercept integrated out by Gauss–Hermite quadrature; the two
    responses' item and group × item effects are drawn independently, i.e. pairs of unrelated
    responses — responses of one prompt that share a prompt effect are more alike)."""
    d = design
    beta = d.latent_effects()[level]
    sd_item = np.sqrt(d.item_sd**2 + d.group_item_sd**2)
    va, vb = rng.normal(0, sd_item, n_pairs), rng.normal(0, sd_item, n_pairs)
    if d.scale == "normal":
        if d.residual_sd == 0:
            raise ValueError("label precision needs residual_sd > 0")
        pg = stats.norm.cdf((va - vb) / (np.sqrt(2) * d.residual_sd))
        return pg, np.zeros(n_pairs)
    x, w = gauss_hermite(32)
    u = d.rater_sd * x  # nodes of N(0, rater_sd²)
    cuts = np.concatenate([[-np.inf], np.asarray(d.cutpoints), [np.inf]])

    def cat_probs(v):  # pairs × nodes × categories
        m = d.intercept + beta + v[:, None, None] + u[None, :, None]
        cdf = special.expit(cuts[None, None, :] - m)  # cumulative logit: P(rating <= k)
        return np.diff(cdf, axis=-1)

    pa, pb = cat_probs(va), cat_probs(vb)
    cb_below = np.cumsum(pb, axis=-1) - pb  # P(r_B < category)
    pg = np.sum(pa * cb_below, axis=-1) @ w
    pe = np.sum(pa * pb, axis=-1) @ w
    return pg, pe


def _summary_row(
    group: str, method: str, target_sd: float, var_s: np.ndarray, n_current: np.ndarray | None
) -> dict:
    need = raters_needed(var_s, target_sd)
    row = {
        "group": group,
        "method": method,
        "target_sd": target_sd,
        "n_pairs": len(var_s),
        "var_s_median": float(np.median(var_s)),
        "var_s_q90": float(np.quantile(var_s, 0.9)),
        "raters_needed_median": int(np.ceil(np.median(need))),
        "raters_needed_q90": int(np.ceil(np.quantile(need, 0.9))),
        "raters_needed_worst": int(raters_needed(0.25, target_sd)),
        "current_raters_median": np.nan,
        "current_sd_median": np.nan,
        "share_below_target": np.nan,
    }
    if n_current is not None:
        sd = np.sqrt(var_s / n_current)
        row.update(
            current_raters_median=float(np.median(n_current)),
            current_sd_median=float(np.median(sd)),
            share_below_target=float(np.mean(sd <= target_sd)),
        )
    return row


def _group_mask(study: Study, group: Mapping[str, str]) -> set[str]:
    table = study.rater_table()
    mask = pd.Series(True, index=table.index)
    for col, value in group.items():
        if col not in table.columns:
            raise KeyError(
                f"unknown demographic {col!r}; the raters table has {study.demographics}"
            )
        mask &= (table[col] == value).fillna(False)
    return set(table.loc[mask, "rater"])


def _study_pairs(study: Study, dimension: str, raters: set[str] | None) -> pd.DataFrame:
    r = study.ratings[study.ratings["dimension"] == dimension]
    if raters is not None:
        r = r[r["rater"].isin(raters)]
    r = r.merge(study.items[["item", "prompt_id"]], on="item")
    pairs = r.merge(r, on=["rater", "prompt_id"], suffixes=("_a", "_b"))
    pairs = pairs[pairs["item_a"] < pairs["item_b"]]
    diff = np.sign(pairs["rating_a"].to_numpy() - pairs["rating_b"].to_numpy())
    pairs = pairs.assign(gt=diff > 0, eq=diff == 0)
    return (
        pairs.groupby(["item_a", "item_b"])
        .agg(n=("rater", "size"), p_greater=("gt", "mean"), p_equal=("eq", "mean"))
        .reset_index()
    )


def label_precision(
    source: StudyDesign | Study,
    method: Literal["distribution", "posterior"] = "distribution",
    *,
    target_sd: float = 0.05,
    group: Mapping[str, str] | str | None = None,
    dimension: str | None = None,
    n_pairs: int = 2000,
    seed: int | None = None,
    n_values: Sequence[int] | None = None,
    n_sims: int = 5,
    fit_options: Mapping | None = None,
) -> pd.DataFrame:
    """Raters per item (per group) needed for a preference label SD below ``target_sd``.

    Parameters
    ----------
    source : StudyDesign or Study
        A planned design (pairs of responses are drawn from its item distribution) or a pilot
        study (every within-prompt pair its raters compared, with plug-in probabilities).
    method : {"distribution", "posterior"}
        ``"distribution"``: closed form for distribution labels (module docstring):
        ``SD(p̂) = sqrt(Var(s)/n)`` with ``Var(s) = p(1−p) − ¼P(=)``. ``"posterior"``:
        simulation — for each ``n`` in ``n_values`` raters per item and group, simulate
        ``n_sims`` studies from the design, fit :func:`pluralign.models.fit_bayes` and read the
        posterior SD of pair probabilities (:func:`pluralign.labels.posterior_pair_probabilities`);
        only for a design, and slow.
    target_sd : float, default 0.05
        Wanted standard deviation of a label ``p``.
    group : mapping or str, optional
        A group (``{"gender": "she/her"}``; for a design also just the level). Default: every
        level of the design's demographic, or all raters of a study.
    dimension : str, optional
        Dimension of a study (default: its first).
    n_pairs : int
        Pairs drawn from a design.
    seed : int, optional
        Seed of the pairs drawn from a design and of the simulated studies
        (``options.seed`` when None).
    n_values : sequence of int, optional
        ``method="posterior"``: raters per item and group to try (default 5, 10, 20, 40).
    n_sims : int, default 5
        ``method="posterior"``: studies simulated per value of ``n_values``.
    fit_options : mapping, optional
        ``method="posterior"``: options of :func:`pluralign.models.fit_bayes` (default 200
        draws and 200 tuning steps on 2 chains).

    Returns
    -------
    DataFrame
        One row per group with PRECISION_COLUMNS: ``raters_needed_median`` / ``_q90`` (for the
        median / 90th-percentile pair), ``raters_needed_worst`` (``1/(4 target_sd²)``, any
        pair), and for a study the current raters per pair, current SD and share of pairs
        already below the target. ``method="posterior"`` returns instead one row per value of
        ``n_values`` (raters per item and group): ``raters_per_item, sd_median, sd_q90,
        share_below_target, reaches_target`` (median posterior SD of the pair probabilities
        at most ``target_sd``).

    Examples
    --------
    >>> d = StudyDesign({"gender": {"she/her": 100, "he/him": 100}})
    >>> tab = label_precision(d, target_sd=0.05, seed=1)
    >>> tab[["group", "raters_needed_median", "raters_needed_worst"]].shape
    (2, 3)
    >>> int(tab["raters_needed_worst"].iloc[0])
    100
    """
    if not 0 < target_sd < 0.5:
        raise ValueError(f"target_sd must be in (0, 0.5), got {target_sd}")
    seed = options.seed if seed is None else seed
    rng = np.random.default_rng(seed)
    if method == "posterior":
        if not isinstance(source, StudyDesign):
            raise ValueError("method='posterior' plans from a StudyDesign (it simulates studies)")
        return _posterior_precision(source, target_sd, group, n_values, n_sims, seed, fit_options)
    if method != "distribution":
        raise ValueError(f"method must be 'distribution' or 'posterior', got {method!r}")

    if isinstance(source, StudyDesign):
        d = source
        if group is None:
            levels = d.levels
        elif isinstance(group, str):
            levels = [group]
        else:
            levels = [group[d.term]] if d.term in group and len(group) == 1 else None
        if levels is None or any(lv not in d.levels for lv in levels):
            raise ValueError(
                f"group must be a level of {d.term!r} {d.levels} (or {{{d.term!r}: level}}); got {group!r}"
            )
        rows = []
        for lv in levels:
            pg, pe = _pair_probabilities(d, lv, n_pairs, rng)
            rows.append(
                _summary_row(f"{d.term}={lv}", method, target_sd, comparison_variance(pg, pe), None)
            )
        return pd.DataFrame(rows, columns=list(PRECISION_COLUMNS))

    study = source
    dim = study.dimensions[0] if dimension is None else dimension
    if isinstance(group, str):
        raise ValueError("for a study, give the group as a mapping such as {'gender': 'she/her'}")
    raters = None if group is None else _group_mask(study, group)
    label = "everyone" if group is None else ", ".join(f"{k}={v}" for k, v in group.items())
    pairs = _study_pairs(study, dim, raters)
    few = pairs["n"] < 2
    if few.any():
        warnings.warn(
            f"{int(few.sum())} of {len(pairs)} response pairs were compared by fewer than 2 raters "
            f"of {label} and are left out (their variance cannot be estimated)",
            DroppedRowsWarning,
            stacklevel=2,
        )
        pairs = pairs[~few]
    if pairs.empty:
        raise ValueError(
            f"no rater of {label} rated two responses of the same prompt on {dim!r}; "
            "distribution labels need within-prompt comparisons"
        )
    n = pairs["n"].to_numpy()
    # plug-in Var(s) with the n/(n-1) small-sample correction (unbiased for each pair)
    var_s = (
        comparison_variance(pairs["p_greater"].to_numpy(), pairs["p_equal"].to_numpy())
        * n
        / (n - 1)
    )
    return pd.DataFrame(
        [_summary_row(label, method, target_sd, var_s, n)], columns=list(PRECISION_COLUMNS)
    )


def _posterior_precision(design, target_sd, group, n_values, n_sims, seed, fit_options):
    """Simulation: posterior SD of pair probabilities as raters per item grow (slow; Bayes)."""
    from pluralign.labels import posterior_pair_probabilities
    from pluralign.models import fit_bayes

    n_values = list(n_values or (5, 10, 20, 40))
    level = (
        design.levels[1]
        if group is None
        else (group if isinstance(group, str) else group[design.term])
    )
    opts = {"draws": 200, "tune": 200, "chains": 2, "progressbar": False, **dict(fit_options or {})}
    family = {"normal": "gaussian", "binary": "bernoulli"}.get(design.scale, "ordinal")
    ss = np.random.SeedSequence(seed).spawn(len(n_values) * n_sims)
    rows = []
    for i, n in enumerate(n_values):
        # n raters of each level rate each item: raters = n × items / items_per_rater per level
        per_level = int(np.ceil(n * design.n_items / design.items_per_rater))
        d = design.replace(groups={design.term: dict.fromkeys(design.levels, per_level)})
        sds = []
        for j in range(n_sims):
            study = d.simulate(np.random.default_rng(ss[i * n_sims + j]))
            fit = fit_bayes(
                study,
                formula=f"rating ~ {d.term}",
                family=family,
                seed=int(ss[i * n_sims + j].generate_state(1)[0]),
                **opts,
            )
            items = study.items
            pairs = items.merge(items, on="prompt_id", suffixes=("_a", "_b"))
            pairs = pairs[pairs["item_a"] < pairs["item_b"]][["item_a", "item_b"]]
            # the posterior SD does not depend on which way is better: weight +1
            post = posterior_pair_probabilities(
                fit, pairs, target={d.term: level}, dimensions=[d.dimension], weights=[1.0], seed=j
            )
            sds.append(post["p_sd"].to_numpy())
        sd = np.concatenate(sds)
        rows.append(
            {
                "group": f"{d.term}={level}",
                "method": "posterior",
                "target_sd": target_sd,
                "raters_per_item": n,
                "sd_median": float(np.median(sd)),
                "sd_q90": float(np.quantile(sd, 0.9)),
                "share_below_target": float(np.mean(sd <= target_sd)),
                "reaches_target": bool(np.median(sd) <= target_sd),
            }
        )
    return pd.DataFrame(rows)
