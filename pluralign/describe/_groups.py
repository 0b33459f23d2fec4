"""Group means and relative differences between demographic groups, with rater-bootstrap CIs."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from pluralign._settings import options
from pluralign.data import Study, thin_groups
from pluralign.describe._bootstrap import bootstrap_totals, percentile_interval, ratio

logger = logging.getLogger("pluralign")

GroupCoding = Literal["collapsed", "indicators"]
CI_METHOD = "rater bootstrap (percentile)"
CROSS = " × "

#: Columns of :func:`group_means`; the ``by`` columns follow ``group``.
GROUP_MEANS_COLUMNS = (
    "dimension",
    "by",  # the grouping column(s), e.g. "gender" or "gender × race"
    "group",  # the group's level(s)
    "n_raters",
    "n_ratings",
    "mean",  # mean of the group's ratings
    "se",  # bootstrap standard error of the mean
    "ci_low",
    "ci_high",  # bootstrap percentile interval of the mean
    "ci_method",
)

#: Columns of :func:`relative_difference`; the ``by`` columns follow ``group``.
RELATIVE_DIFFERENCE_COLUMNS = (
    "dimension",
    "by",
    "group",
    "n_raters",
    "n_ratings",
    "mean",
    "reference",  # the reference group (Study.reference_level unless given)
    "is_reference",
    "mean_reference",
    "n_raters_reference",
    "se",
    "ci_low",
    "ci_high",  # interval of the group's mean
    "difference",  # mean - mean_reference (rating points)
    "difference_ci_low",
    "difference_ci_high",
    "relative_pct",  # 100 * (mean / mean_reference - 1)
    "relative_ci_low",
    "relative_ci_high",
    "ci_method",
)


@dataclass
class _Group:
    by: str
    label: str
    values: dict[str, str]
    member: np.ndarray  # bool over the raters table
    ref: int | None = None  # column of the reference group in the membership matrix
    ref_label: str | None = None
    output: bool = True  # False for reference-only columns ("without value")


def _as_list(by: str | Sequence[str]) -> list[str]:
    if isinstance(by, str):
        return [by]
    out = list(by)
    if not out:
        raise ValueError("by must name at least one demographic column")
    return out


def _levels(values: pd.Series) -> list[str]:
    return sorted({str(v) for v in values.dropna()})


def _default_reference(study: Study, var: str, groups: list[_Group]) -> str:
    """Study.reference_level for one column; crossed cells: the one with most raters."""
    if var in study.raters.columns:
        return study.reference_level(var)
    sizes = [int(g.member.sum()) for g in groups]  # sorted labels: ties go alphabetically
    return groups[int(np.argmax(sizes))].label


def _resolve_reference(reference, var: str, study: Study, groups: list[_Group]) -> str:
    if reference is None:
        return _default_reference(study, var, groups)
    if isinstance(reference, Mapping):
        if var not in reference:
            return _default_reference(study, var, groups)
        ref = reference[var]
    else:
        ref = reference
    if isinstance(ref, (tuple, list)):
        ref = CROSS.join(map(str, ref))
    ref = str(ref)
    labels = [g.label for g in groups]
    if ref not in labels:
        raise ValueError(f"reference {ref!r} is not a group of {var!r}; groups are {labels}")
    return ref


def _groups(
    study: Study,
    by: list[str],
    coding: GroupCoding,
    crossed: bool,
    reference,
    need_reference: bool,
) -> tuple[list[_Group], dict[str, int]]:
    for var in by:
        study._check_demographic(var)
    if coding not in ("collapsed", "indicators"):
        raise ValueError(f"coding must be 'collapsed' or 'indicators', got {coding!r}")
    table = study.rater_table("collapsed")
    missing: dict[str, int] = {}
    out: list[_Group] = []
    if crossed and len(by) > 1:
        if coding == "indicators" and any(v in study.multiselect for v in by):
            raise ValueError(
                "crossed groups need one category per rater; use coding='collapsed' for the "
                f"multi-select column(s) {[v for v in by if v in study.multiselect]}"
            )
        vals = table[by].astype("string")
        ok = vals.notna().all(axis=1).to_numpy()
        missing[CROSS.join(by)] = int((~ok).sum())
        keys = vals.astype(object).agg(tuple, axis=1)
        name = CROSS.join(by)
        block = []
        for key in sorted({k for k, good in zip(keys, ok, strict=True) if good}):
            member = ok & (keys == key).to_numpy()
            block.append(_Group(name, CROSS.join(key), dict(zip(by, key, strict=True)), member))
        out += _with_reference(block, name, reference, study, need_reference)
        _link(out)
        return out, missing
    for var in by:
        if var in study.multiselect and coding == "indicators":
            raw = study.raters[var]
            has_any = raw.map(len).gt(0).to_numpy()
            missing[var] = int((~has_any).sum())
            for value in sorted({v for t in raw for v in t}):
                member = raw.map(lambda t, v=value: v in t).to_numpy(dtype=bool)
                without = has_any & ~member
                g = _Group(var, value, {var: value}, member, ref_label=f"not {value}")
                ref = _Group(var, f"not {value}", {var: f"not {value}"}, without, output=False)
                out += [g, ref]
            continue
        col = table[var].astype("string")
        missing[var] = int(col.isna().sum())
        block = [
            _Group(var, lev, {var: lev}, (col == lev).fillna(False).to_numpy(dtype=bool))
            for lev in _levels(col)
        ]
        out += _with_reference(block, var, reference, study, need_reference)
    _link(out)
    return out, missing


def _link(groups: list[_Group]) -> None:
    """Point each group at the membership column of its reference group."""
    where = {(g.by, g.label): j for j, g in enumerate(groups)}
    for g in groups:
        if g.ref_label is not None:
            g.ref = where[(g.by, g.ref_label)]


def _with_reference(
    block: list[_Group], var: str, reference, study: Study, need_reference: bool
) -> list[_Group]:
    if not block:
        raise ValueError(f"{var!r} has no non-missing values; nothing to group by")
    if need_reference:
        ref = _resolve_reference(reference, var, study, block)
        for g in block:
            g.ref_label = ref
    return block


def _compute(
    study: Study,
    by: str | Sequence[str],
    dimension: str | Sequence[str] | None,
    ci_prob: float | None,
    n_boot: int | None,
    seed: int | None,
    coding: GroupCoding,
    crossed: bool,
    reference,
    relative: bool,
) -> pd.DataFrame:
    by_list = _as_list(by)
    ci_prob = options.ci_prob if ci_prob is None else float(ci_prob)
    n_boot = options.n_boot if n_boot is None else int(n_boot)
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")
    seed = options.seed if seed is None else seed
    rng = np.random.default_rng(seed)
    groups, missing = _groups(study, by_list, coding, crossed, reference, relative)
    dims = (
        study.dimensions
        if dimension is None
        else ([dimension] if isinstance(dimension, str) else list(dimension))
    )
    for d in dims:
        study._check_dimension(d)

    rater_ids = pd.Index(study.raters["rater"])
    membership = np.column_stack([g.member for g in groups]).astype(float)
    ratings = study.ratings
    codes_all = rater_ids.get_indexer(ratings["rater"])
    values_all = ratings["rating"].to_numpy(dtype=float)
    dim_all = ratings["dimension"].to_numpy()
    n, G = len(rater_ids), len(groups)
    # per-rater rating sums and counts of each dimension, and the raters who rated any of them
    sums = np.zeros((n, len(dims)))
    counts = np.zeros((n, len(dims)))
    for k, dim in enumerate(dims):
        mask = dim_all == dim
        sums[:, k] = np.bincount(codes_all[mask], weights=values_all[mask], minlength=n)
        counts[:, k] = np.bincount(codes_all[mask], minlength=n)
    rated = counts.sum(axis=1) > 0
    # one table of group sums and counts per dimension; resampled together (same raters drawn
    # for every dimension, so intervals of different dimensions come from one bootstrap)
    table = np.hstack(
        [sums[:, [k]] * membership for k in range(len(dims))]
        + [counts[:, [k]] * membership for k in range(len(dims))]
    )[rated]
    point = table.sum(axis=0)
    boot = bootstrap_totals(table, n_boot, rng) if n_boot > 0 else None
    half = G * len(dims)
    miss_by_var = {}
    for var in missing:
        if CROSS in var:
            cols = var.split(CROSS)
            miss_by_var[var] = study.rater_table("collapsed")[cols].isna().any(axis=1).to_numpy()
        elif var in study.multiselect:
            miss_by_var[var] = study.raters[var].map(len).eq(0).to_numpy()
        else:
            miss_by_var[var] = study.raters[var].isna().to_numpy()
    rows = []
    excluded: dict[str, dict[str, int]] = {}
    for k, dim in enumerate(dims):
        active = counts[:, k] > 0
        cols = slice(k * G, (k + 1) * G)
        s_g, n_g = point[cols], point[half:][cols]
        r_g = membership[active].sum(axis=0)
        mean = ratio(s_g, n_g)
        if boot is not None:
            boot_mean = ratio(boot[:, cols], boot[:, half:][:, cols])
            lo, hi = percentile_interval(boot_mean, ci_prob)
            se = np.nanstd(boot_mean, axis=0, ddof=1) if n_boot > 1 else np.full(G, np.nan)
        else:
            boot_mean = None
            lo = hi = se = np.full(G, np.nan)
        # raters of this dimension without a value for the grouping variable
        excluded[dim] = {var: int((miss & active).sum()) for var, miss in miss_by_var.items()}
        if relative and boot_mean is not None:
            ref_idx = np.array([g.ref if g.ref is not None else j for j, g in enumerate(groups)])
            boot_diff = boot_mean - boot_mean[:, ref_idx]
            boot_rel = 100 * (ratio(boot_mean, boot_mean[:, ref_idx]) - 1)
            d_lo, d_hi = percentile_interval(boot_diff, ci_prob)
            r_lo, r_hi = percentile_interval(boot_rel, ci_prob)
        for j, g in enumerate(groups):
            if not g.output:
                continue
            row = {
                "dimension": dim,
                "by": g.by,
                "group": g.label,
                **g.values,
                "n_raters": int(r_g[j]),
                "n_ratings": int(n_g[j]),
                "mean": mean[j],
            }
            if relative:
                ref = g.ref
                is_ref = ref == j
                row.update(
                    {
                        "reference": g.ref_label,
                        "is_reference": bool(is_ref),
                        "mean_reference": mean[ref],
                        "n_raters_reference": int(r_g[ref]),
                    }
                )
            row.update({"se": se[j], "ci_low": lo[j], "ci_high": hi[j]})
            if relative:
                diff = mean[j] - mean[ref]
                rel = 100 * (mean[j] / mean[ref] - 1) if mean[ref] else np.nan
                zero = is_ref or boot_mean is None
                row.update(
                    {
                        "difference": diff,
                        "difference_ci_low": np.nan if zero else d_lo[j],
                        "difference_ci_high": np.nan if zero else d_hi[j],
                        "relative_pct": rel,
                        "relative_ci_low": np.nan if zero else r_lo[j],
                        "relative_ci_high": np.nan if zero else r_hi[j],
                    }
                )
            row["ci_method"] = CI_METHOD if n_boot > 0 else "none"
            rows.append(row)
    out = thin_groups(pd.DataFrame(rows))
    n_excl = {d: {k: v for k, v in e.items() if v} for d, e in excluded.items()}
    n_excl = {d: e for d, e in n_excl.items() if e}
    if n_excl:
        logger.info("raters without a value of the grouping column(s) were left out: %s", n_excl)
    out.attrs.update(
        {
            "ci_prob": ci_prob,
            "n_boot": n_boot,
            "seed": seed,
            "coding": coding,
            "crossed": bool(crossed and len(by_list) > 1),
            "excluded_raters": n_excl,
        }
    )
    return out


#: Joins dimension and item level in the keys used while describing within item levels (it
#: shows in warnings as "toxicity @ source_model=model_a / gender / other").
_WITHIN_SEP = " @ "


def _within_levels(study: Study, within: str) -> pd.Series:
    """Level of the items-table column ``within`` for every item (as text; missing → NA)."""
    if within in study.raters.columns:
        raise ValueError(
            f"within={within!r} is a rater column; within= takes an items-table column "
            f"(e.g. 'source_model'); put demographics in by="
        )
    if within not in study.items.columns or within == "item":
        raise KeyError(
            f"within={within!r} is not a column of the items table "
            f"{[c for c in study.items.columns if c != 'item']}"
        )
    return study.items.set_index("item")[within].astype("string")


def _compute_within(study: Study, within: str, dimension, **kwargs) -> pd.DataFrame:
    """:func:`_compute` per level of an item column: one joint rater bootstrap over all levels.

    Each (dimension, level) pair is described as its own dimension of a temporary study, so
    every level's interval comes from the same resampled raters, then the key is split back.
    """
    levels_of = _within_levels(study, within)
    dims = (
        study.dimensions
        if dimension is None
        else ([dimension] if isinstance(dimension, str) else list(dimension))
    )
    for d in dims:
        study._check_dimension(d)
    ratings = study.ratings[study.ratings["dimension"].isin(dims)]
    level = levels_of.reindex(ratings["item"].astype(str)).to_numpy()
    missing = pd.isna(level)
    n_missing = int(missing.sum())
    if n_missing:
        logger.info("%d ratings of items without a value of %r were left out", n_missing, within)
    ratings = ratings[~missing].copy()
    level = level[~missing].astype(str)
    if ratings.empty:
        raise ValueError(f"no rated item has a value of {within!r}")
    sep = f"{_WITHIN_SEP}{within}="
    keys = ratings["dimension"].astype(str).to_numpy(dtype=object) + sep + level
    ratings["dimension"] = keys
    order = sorted(set(keys), key=lambda k: (dims.index(k.split(sep)[0]), k))
    scales = {k: study.scales[k.split(sep)[0]] for k in order}
    temp = study.replace(ratings=ratings.reset_index(drop=True), scales=scales)
    out = _compute(temp, dimension=order, **kwargs)
    split = out["dimension"].str.split(sep, n=1, expand=True, regex=False)
    out["dimension"] = split[0].to_numpy()
    out.insert(out.columns.get_loc("dimension") + 1, within, split[1].to_numpy())
    out.attrs["within"] = within
    out.attrs["excluded_ratings"] = n_missing
    return out.reset_index(drop=True)


def group_means(
    study: Study,
    by: str | Sequence[str],
    *,
    dimension: str | Sequence[str] | None = None,
    ci_prob: float | None = None,
    n_boot: int | None = None,
    seed: int | None = None,
    coding: GroupCoding = "collapsed",
    crossed: bool = False,
    within: str | None = None,
) -> pd.DataFrame:
    """Mean rating of each demographic group, with rater-clustered bootstrap intervals.

    The mean of a group is the mean of all its ratings (raters with more ratings weigh more).
    Intervals are percentile intervals of a bootstrap that resamples *raters* with replacement
    (all of a rater's ratings go together), never single ratings.

    Parameters
    ----------
    study : Study
    by : str or sequence of str
        Demographic column(s). Several columns are described one after the other (rows labelled
        by ``by``), or as crossed cells with ``crossed=True``.
    dimension : str or sequence of str, optional
        Dimensions to describe (default: all).
    ci_prob : float, optional
        Interval probability (default ``options.ci_prob``).
    n_boot : int, optional
        Bootstrap resamples (default ``options.n_boot``); 0 skips the intervals.
    seed : int, optional
        Seed of the bootstrap (default ``options.seed``).
    coding : {"collapsed", "indicators"}
        Multi-select columns: ``"collapsed"`` gives one category per rater (several values →
        ``options.multi_label``); ``"indicators"`` gives one group per value holding every rater
        who chose it (groups overlap).
    crossed : bool, default False
        With several ``by`` columns: one group per combination of their values.
    within : str, optional
        A categorical column of the items table (e.g. ``"source_model"``): describe the
        ratings of each of its levels separately. A column named after ``within`` follows
        ``dimension``; the groups are the same raters' groups in every level and every
        level's interval comes from one rater bootstrap. Ratings of items without a value are
        left out (counted in ``attrs["excluded_ratings"]``).

    Returns
    -------
    DataFrame
        GROUP_MEANS_COLUMNS: ``dimension, by, group, <by columns>, n_raters, n_ratings, mean,
        se, ci_low, ci_high, ci_method``; ``.attrs`` holds ``ci_prob``, ``n_boot``, ``seed`` and the number of raters
        left out per dimension because their value is missing (``excluded_raters``).

    See Also
    --------
    relative_difference : Differences from a reference group.

    Examples
    --------
    >>> from pluralign.data import simulate_study
    >>> study = simulate_study(n_raters=100, seed=1).study
    >>> gm = group_means(study, by="gender", dimension="toxicity", n_boot=200, seed=0)
    >>> gm[["group", "n_raters"]].values.tolist()[:2]
    [['he/him', 41], ['other', 3]]
    >>> by_model = group_means(study, by="gender", dimension="toxicity", n_boot=0,
    ...                        within="source_model")
    >>> sorted(by_model["source_model"].unique())
    ['model_a', 'model_b', 'model_c']
    """
    if within is not None:
        return _compute_within(
            study,
            within,
            dimension,
            by=by,
            ci_prob=ci_prob,
            n_boot=n_boot,
            seed=seed,
            coding=coding,
            crossed=crossed,
            reference=None,
            relative=False,
        )
    return _compute(study, by, dimension, ci_prob, n_boot, seed, coding, crossed, None, False)


def relative_difference(
    study: Study,
    by: str | Sequence[str],
    *,
    reference: str | Sequence[str] | Mapping[str, str] | None = None,
    dimension: str | Sequence[str] | None = None,
    ci_prob: float | None = None,
    n_boot: int | None = None,
    seed: int | None = None,
    coding: GroupCoding = "collapsed",
    crossed: bool = False,
    within: str | None = None,
) -> pd.DataFrame:
    """Difference and relative difference (percent) of group means from a reference group.

    ``relative_pct = 100 * (mean_group / mean_reference - 1)`` on the rating scale, e.g.
    "men rate toxicity 18 % lower than women". Intervals come from the same rater-clustered
    bootstrap as :func:`group_means`; group and reference means are computed on the same
    resamples, so the interval of a difference accounts for their covariance.

    Parameters
    ----------
    study : Study
    by : str or sequence of str
        Demographic column(s), described separately (or crossed, see ``crossed``).
    reference : str, sequence or mapping, optional
        Reference group: a level (one ``by`` column), a mapping ``{column: level}``, or for
        crossed cells a tuple of levels. Default:
        :meth:`Study.reference_level <pluralign.data.Study.reference_level>` (the declared
        ``study.reference``, else the level with the most raters, ties broken alphabetically;
        the models follow the same rule); crossed cells: the cell with the most raters.
        For multi-select columns with ``coding="indicators"`` each value is compared with the
        raters who did not choose it (reference ``"not <value>"``) and ``reference`` is ignored.
    dimension, ci_prob, n_boot, seed, coding, crossed
        As in :func:`group_means`.
    within : str, optional
        A categorical column of the items table (e.g. ``"source_model"``): one difference per
        level, "men rate model A's responses 20 % less toxic, model B's 5 %". The reference
        group is the same in every level; see :func:`group_means`.

    Returns
    -------
    DataFrame
        RELATIVE_DIFFERENCE_COLUMNS: ``dimension, by, group, <by columns>, n_raters,
        n_ratings, mean, reference,
        is_reference, mean_reference, n_raters_reference, se, ci_low, ci_high, difference,
        difference_ci_low, difference_ci_high, relative_pct, relative_ci_low,
        relative_ci_high, ci_method`` (the reference group's own row has zero difference and no
        interval).

    See Also
    --------
    group_means : The group means alone.
    pluralign.models.fit_mixed : The same contrasts adjusted for other demographics and items.

    Examples
    --------
    >>> from pluralign.data import simulate_study
    >>> study = simulate_study(n_raters=200, seed=1).study
    >>> rd = relative_difference(study, by="gender", dimension="toxicity", n_boot=200, seed=0)
    >>> bool(rd.set_index("group").loc["she/her", "is_reference"])
    True

    Within the responses of each LLM:

    >>> per_model = relative_difference(study, by="gender", dimension="toxicity", n_boot=200,
    ...                                 seed=0, within="source_model")
    >>> per_model.query("group == 'he/him'")[["source_model", "reference"]].values.tolist()
    [['model_a', 'she/her'], ['model_b', 'she/her'], ['model_c', 'she/her']]
    """
    if within is not None:
        return _compute_within(
            study,
            within,
            dimension,
            by=by,
            ci_prob=ci_prob,
            n_boot=n_boot,
            seed=seed,
            coding=coding,
            crossed=crossed,
            reference=reference,
            relative=True,
        )
    return _compute(study, by, dimension, ci_prob, n_boot, seed, coding, crossed, reference, True)
