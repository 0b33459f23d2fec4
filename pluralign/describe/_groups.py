"""Group means and differences between demographic groups, with intervals over raters and items.

Two interval methods (``ci_method=``):

* ``"two-way"`` (default): two-way (rater × item) cluster-robust standard errors of Cameron,
  Gelbach & Miller (2011) on the linearised statistics (see :mod:`pluralign.describe._twoway`),
  with t intervals whose degrees of freedom are the number of raters or items (whichever is
  fewer) of the thinner group, minus one. Both raters and items are treated as samples, so a
  group mean's interval includes the uncertainty from which items happened to be rated.
* ``"rater-bootstrap"``: percentile intervals of a bootstrap that resamples raters and treats
  the rated items as fixed (the estimand is the mean over *these* items). Group differences are
  close to the two-way ones (item effects mostly cancel); group means are too narrow when item
  effects vary.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from pluralign._errors import PluralignWarning
from pluralign._settings import options
from pluralign.data import Study, thin_groups
from pluralign.describe._bootstrap import bootstrap_totals, percentile_interval, ratio
from pluralign.describe._twoway import cluster_counts, twoway_variance

logger = logging.getLogger("pluralign")

GroupCoding = Literal["collapsed", "indicators"]
CiMethod = Literal["two-way", "rater-bootstrap"]
Origin = Literal["zero", "minimum"] | float
CROSS = " × "

#: Interval methods of :func:`group_means` and :func:`relative_difference`, and the label each
#: writes into the ``ci_method`` column.
CI_METHODS = {
    "two-way": "two-way cluster-robust (rater × item), t interval",
    "rater-bootstrap": "rater bootstrap (percentile), items fixed",
}
#: A warning is given when fewer than this share of the bootstrap resamples could be used.
DROPPED_WARNING = 0.95
#: Definition of the ``cohens_d`` column (the models' ``cohens_d`` divides by the same quantity,
#: the SD of one rating within a group, estimated from their variance components).
COHENS_D_DEFINITION = (
    "difference / sqrt((var_group + var_reference) / 2), var = variance of single ratings "
    "within the group (rater, item and residual variation together)"
)

#: Columns of :func:`group_means`; the ``by`` columns follow ``group``.
GROUP_MEANS_COLUMNS = (
    "dimension",
    "by",  # the grouping column(s), e.g. "gender" or "gender × race"
    "group",  # the group's level(s)
    "n_raters",
    "n_ratings",
    "mean",  # mean of the group's ratings
    "se",  # standard error of the mean (two-way cluster-robust, or bootstrap SD)
    "ci_low",
    "ci_high",  # interval of the mean
    "ci_method",  # how the intervals were computed (CI_METHODS)
    "n_boot_used",  # bootstrap resamples in which the group had raters (0: no bootstrap)
)

#: Columns of :func:`relative_difference`; the ``by`` columns follow ``group``.
RELATIVE_DIFFERENCE_COLUMNS = (
    *GROUP_MEANS_COLUMNS[: GROUP_MEANS_COLUMNS.index("mean") + 1],  # dimension ... mean
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
    "relative_pct",  # 100 * difference / (mean_reference - relative_origin)
    "relative_ci_low",
    "relative_ci_high",
    "relative_origin",  # the rating relative_pct counts from (0, or the scale minimum)
    "pct_of_range",  # 100 * difference / (scale max - scale min): free of the origin
    "pct_of_range_ci_low",
    "pct_of_range_ci_high",
    "cohens_d",  # difference / pooled SD of single ratings (COHENS_D_DEFINITION)
    "cohens_d_ci_low",
    "cohens_d_ci_high",
    "ci_method",
    "n_boot_used",  # resamples in which group and reference both had raters (0: no bootstrap)
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


def _origin(origin: Origin, scale) -> float:
    if isinstance(origin, str):
        if origin == "zero":
            return 0.0
        if origin == "minimum":
            return float(scale.min)
        raise ValueError(f"origin must be 'zero', 'minimum' or a number, got {origin!r}")
    return float(origin)


def _missing_by_var(study: Study, missing: dict[str, int]) -> dict[str, np.ndarray]:
    out = {}
    for var in missing:
        if CROSS in var:
            cols = var.split(CROSS)
            out[var] = study.rater_table("collapsed")[cols].isna().any(axis=1).to_numpy()
        elif var in study.multiselect:
            out[var] = study.raters[var].map(len).eq(0).to_numpy()
        else:
            out[var] = study.raters[var].isna().to_numpy()
    return out


def _mean_var(sums: np.ndarray, sums_sq: np.ndarray, counts: np.ndarray):
    """Mean and sample variance (ddof 1) of each group's ratings from their sums and counts."""
    mean = ratio(sums, counts)
    return mean, ratio(sums_sq - counts * np.nan_to_num(mean) ** 2, counts - 1)


def _contrasts(mean, var, ref, origin, span):
    """Contrast statistics of every group with its reference (arrays over groups, or resamples ×
    groups)."""
    m_ref = mean[..., ref]
    diff = mean - m_ref
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = 100 * diff / (m_ref - origin)
        pct = 100 * diff / span
        pooled = np.sqrt((var + var[..., ref]) / 2)
        d = diff / pooled
    return {"difference": diff, "relative": rel, "pct_of_range": pct, "cohens_d": d}


def _twoway_intervals(y, r, i, mk, mean, var, ref, origin, span, ci_prob):
    """Two-way cluster-robust standard errors and t intervals of the mean and the contrasts."""
    n = mk.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        resid = y[:, None] - np.nan_to_num(mean)
        u_mean = np.where(mk > 0, resid / n, 0.0)
        u_var = np.where(mk > 0, (resid**2 - np.nan_to_num(var)) / n, 0.0)
        m_ref, u_ref = mean[ref], u_mean[:, ref]
        diff = mean - m_ref
        pooled = np.sqrt((var + var[ref]) / 2)
        u_diff = u_mean - u_ref
        influence = {
            "mean": u_mean,
            "difference": u_diff,
            "relative": 100
            * (u_mean / (m_ref - origin) - (mean - origin) / (m_ref - origin) ** 2 * u_ref),
            "pct_of_range": 100 * u_diff / span,
            "cohens_d": u_diff / pooled - diff * (u_var + u_var[:, ref]) / (4 * pooled**3),
        }
    names = list(influence)
    u = np.nan_to_num(np.hstack([influence[k] for k in names]), nan=0.0, posinf=0.0, neginf=0.0)
    G = mk.shape[1]
    part = np.maximum(mk, mk[:, ref])  # ratings of the group or its reference
    member_of = np.concatenate([np.arange(G)] + [np.arange(G, 2 * G)] * (len(names) - 1))
    v, _, _ = twoway_variance(u, r, i, member=np.hstack([mk, part]), member_of=member_of)
    # degrees of freedom: the thinner clustering of the thinner group taking part
    n_items = cluster_counts(mk, i)
    thin = np.minimum(cluster_counts(mk, r), n_items)
    df_mean = thin - 1.0
    df_contrast = np.minimum(thin, thin[ref]) - 1.0
    out = {}
    for k, name in enumerate(names):
        se = np.sqrt(v[k * G : (k + 1) * G])
        df = df_mean if name == "mean" else df_contrast
        with np.errstate(invalid="ignore"):
            q = np.where(df >= 1, stats.t.ppf(0.5 + ci_prob / 2, np.maximum(df, 1)), np.nan)
        out[name] = (se, q * se)
    return out, n_items


def _compute(
    study: Study,
    by: str | Sequence[str],
    dimension: str | Sequence[str] | None,
    ci_method: CiMethod,
    ci_prob: float | None,
    n_boot: int | None,
    seed: int | None,
    coding: GroupCoding,
    crossed: bool,
    within: str | None,
    reference=None,
    relative: bool = False,
    origin: Origin = "zero",
) -> pd.DataFrame:
    """The table of :func:`group_means` or (``relative=True``) :func:`relative_difference`.

    The arguments are theirs, in order. With ``within``, each (dimension, item level) pair is
    described as a dimension of its own (see :func:`_levels_as_dimensions`).
    """
    if within is not None:
        study, dimension, n_missing = _levels_as_dimensions(study, within, dimension)
    by_list = _as_list(by)
    if ci_method not in CI_METHODS:
        raise ValueError(f"ci_method must be one of {list(CI_METHODS)}, got {ci_method!r}")
    ci_prob = options.ci_prob if ci_prob is None else float(ci_prob)
    if not 0 < ci_prob < 1:
        raise ValueError(f"ci_prob must be between 0 and 1, got {ci_prob}")
    n_boot = options.n_boot if n_boot is None else int(n_boot)
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")
    bootstrap = ci_method == "rater-bootstrap"
    if not bootstrap:
        n_boot = 0
    seed = options.seed if seed is None else seed
    rng = np.random.default_rng(seed)
    groups, missing = _groups(study, by_list, coding, crossed, reference, relative)
    dims = study.resolve_dimensions(dimension)
    origins = {d: _origin(origin, study.scale(d)) for d in dims}

    rater_ids = pd.Index(study.raters["rater"])
    membership = np.column_stack([g.member for g in groups]).astype(float)
    ref = np.array([g.ref if g.ref is not None else j for j, g in enumerate(groups)])
    ratings = study.ratings
    codes_all = rater_ids.get_indexer(ratings["rater"])
    items_all = pd.factorize(ratings["item"])[0]
    values_all = ratings["rating"].to_numpy(dtype=float)
    dim_all = ratings["dimension"].to_numpy()
    n, G = len(rater_ids), len(groups)
    masks = [dim_all == dim for dim in dims]
    if bootstrap and n_boot > 0:
        # per-rater sums, sums of squares and counts of every group and dimension, resampled
        # together (the same raters drawn for every dimension)
        blocks = []
        for mask in masks:
            c = codes_all[mask]
            y = values_all[mask]
            for w in (y, y**2, np.ones_like(y)):
                blocks.append(np.bincount(c, weights=w, minlength=n)[:, None] * membership)
        table = np.hstack(blocks)
        boot = bootstrap_totals(table[table.any(axis=1)], n_boot, rng)
    rows = []
    excluded: dict[str, dict[str, int]] = {}
    many_dropped: list[str] = []
    one_item: list[str] = []
    miss_by_var = _missing_by_var(study, missing)
    for k, (dim, mask) in enumerate(zip(dims, masks, strict=True)):
        scale = study.scale(dim)
        span = float(scale.max - scale.min)
        o = origins[dim]
        r, i, y = codes_all[mask], items_all[mask], values_all[mask]
        mk = membership[r]
        n_g = mk.sum(axis=0)
        active = np.bincount(r, minlength=n) > 0
        r_g = membership[active].sum(axis=0)
        s_g, ss_g = mk.T @ y, mk.T @ y**2
        mean, var = _mean_var(s_g, ss_g, n_g)
        point = _contrasts(mean, var, ref, o, span)
        stat = {"mean": mean, **point}
        se = np.full(G, np.nan)
        lo = {name: np.full(G, np.nan) for name in stat}
        hi = {name: np.full(G, np.nan) for name in stat}
        used = np.zeros(G, dtype=int)
        used_contrast = np.zeros(G, dtype=int)
        if not bootstrap:
            iv, n_items = _twoway_intervals(y, r, i, mk, mean, var, ref, o, span, ci_prob)
            one_item += [
                f"{dim} / {g.by} / {g.label}"
                for j, g in enumerate(groups)
                if g.output and n_items[j] == 1 and r_g[j] >= 2
            ]
            se = iv["mean"][0]
            for name in stat:
                lo[name] = stat[name] - iv[name][1]
                hi[name] = stat[name] + iv[name][1]
        elif n_boot > 0:
            base = 3 * G * k
            b_s = boot[:, base : base + G]
            b_ss = boot[:, base + G : base + 2 * G]
            b_n = boot[:, base + 2 * G : base + 3 * G]
            b_mean, b_var = _mean_var(b_s, b_ss, b_n)
            reps = {"mean": b_mean, **_contrasts(b_mean, b_var, ref, o, span)}
            for name, rep in reps.items():
                lo[name], hi[name] = percentile_interval(rep, ci_prob)
            used = np.isfinite(b_mean).sum(axis=0)
            used_contrast = (np.isfinite(b_mean) & np.isfinite(b_mean[:, ref])).sum(axis=0)
            with np.errstate(invalid="ignore"):
                se = np.nanstd(b_mean, axis=0, ddof=1) if n_boot > 1 else se
        excluded[dim] = {var_: int((miss & active).sum()) for var_, miss in miss_by_var.items()}
        for j, g in enumerate(groups):
            if not g.output:
                continue
            rj = ref[j]
            is_ref = rj == j
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
                row.update(
                    {
                        "reference": g.ref_label,
                        "is_reference": bool(is_ref),
                        "mean_reference": mean[rj],
                        "n_raters_reference": int(r_g[rj]),
                    }
                )
            row.update({"se": se[j], "ci_low": lo["mean"][j], "ci_high": hi["mean"][j]})
            n_used = int(used[j])
            if relative:
                for name, col in (
                    ("difference", "difference"),
                    ("relative", "relative_pct"),
                    ("pct_of_range", "pct_of_range"),
                    ("cohens_d", "cohens_d"),
                ):
                    row[col] = 0.0 if is_ref else stat[name][j]
                    row[f"{name}_ci_low"] = np.nan if is_ref else lo[name][j]
                    row[f"{name}_ci_high"] = np.nan if is_ref else hi[name][j]
                    if name == "relative":
                        row["relative_origin"] = o
                n_used = min(n_used, int(used_contrast[j]))
            if bootstrap and n_boot > 0 and n_used < DROPPED_WARNING * n_boot:
                many_dropped.append(f"{dim} / {g.by} / {g.label} ({n_boot - n_used} dropped)")
            row["ci_method"] = CI_METHODS[ci_method] if (not bootstrap or n_boot > 0) else "none"
            row["n_boot_used"] = n_used if bootstrap else 0
            rows.append(row)
    out = _withhold_thin(pd.DataFrame(rows))
    if one_item:
        warnings.warn(
            "group(s) whose raters all rated one item get no interval (NaN): nothing shows how "
            f"the mean would change with other items: {one_item[:10]}",
            PluralignWarning,
            stacklevel=3,
        )
    if many_dropped:
        warnings.warn(
            f"more than {1 - DROPPED_WARNING:.0%} of the bootstrap resamples left a group or its "
            f"reference without raters and were dropped (see n_boot_used): {many_dropped[:10]}; "
            "use ci_method='two-way' or merge small groups",
            PluralignWarning,
            stacklevel=3,
        )
    n_excl = {d: {k: v for k, v in e.items() if v} for d, e in excluded.items()}
    n_excl = {d: e for d, e in n_excl.items() if e}
    if n_excl:
        logger.info("raters without a value of the grouping column(s) were left out: %s", n_excl)
    out.attrs.update(
        {
            "ci_prob": ci_prob,
            "ci_method": ci_method,
            "n_boot": n_boot,
            "seed": seed,
            "coding": coding,
            "crossed": bool(crossed and len(by_list) > 1),
            "excluded_raters": n_excl,
        }
    )
    if relative:
        out.attrs["relative_origin"] = origins
        out.attrs["cohens_d_definition"] = COHENS_D_DEFINITION
    return out if within is None else _split_levels(out, within, n_missing)


def _withhold_thin(table: pd.DataFrame) -> pd.DataFrame:
    """Intervals need two raters in the group (and its reference) and two items: NaN otherwise."""
    out = thin_groups(table)
    if "n_raters_reference" in out.columns:
        thin = (out["n_raters"] < 2) | (out["n_raters_reference"] < 2)
        for col in ("pct_of_range", "cohens_d"):
            out.loc[thin, [f"{col}_ci_low", f"{col}_ci_high"]] = np.nan
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


def _levels_as_dimensions(
    study: Study, within: str, dimension: str | Sequence[str] | None
) -> tuple[Study, list[str], int]:
    """A study whose dimensions are the (dimension, level of ``within``) pairs of ``study``.

    Describing them as dimensions of one study makes a rater bootstrap draw the same raters for
    every level; :func:`_split_levels` splits the keys back. Returns the study, its dimensions
    in order and the number of ratings left out because their item has no level.
    """
    levels_of = _within_levels(study, within)
    dims = study.resolve_dimensions(dimension)
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
    return study.replace(ratings=ratings.reset_index(drop=True), scales=scales), order, n_missing


def _split_levels(out: pd.DataFrame, within: str, n_missing: int) -> pd.DataFrame:
    """The ``dimension`` keys of :func:`_levels_as_dimensions` split into dimension and level."""
    split = out["dimension"].str.split(f"{_WITHIN_SEP}{within}=", n=1, expand=True, regex=False)
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
    ci_method: CiMethod = "two-way",
    ci_prob: float | None = None,
    n_boot: int | None = None,
    seed: int | None = None,
    coding: GroupCoding = "collapsed",
    crossed: bool = False,
    within: str | None = None,
) -> pd.DataFrame:
    """Mean rating of each demographic group, with intervals over raters and items.

    The mean of a group is the mean of all its ratings (raters with more ratings weigh more).
    Its estimand is the mean rating of the group's population of raters over the population of
    items the study's items were drawn from. With ``ci_method="two-way"`` (default) the
    interval is ``mean ± t·se`` with the two-way (rater × item) cluster-robust standard error
    of Cameron, Gelbach & Miller (2011): the ratings of one rater, and those of one item, are
    correlated, and both raters and items are samples. ``ci_method="rater-bootstrap"``
    resamples raters only (all of a rater's ratings together), which treats the items as fixed:
    its intervals are too narrow for the population of items when item effects vary.

    Parameters
    ----------
    study : Study
    by : str or sequence of str
        Demographic column(s). Several columns are described one after the other (rows labelled
        by ``by``), or as crossed cells with ``crossed=True``.
    dimension : str or sequence of str, optional
        Dimensions to describe (default: all).
    ci_method : {"two-way", "rater-bootstrap"}, default "two-way"
        How intervals are computed (see above); written into the ``ci_method`` column.
    ci_prob : float, optional
        Interval probability (default ``options.ci_prob``).
    n_boot : int, optional
        Bootstrap resamples for ``ci_method="rater-bootstrap"`` (default ``options.n_boot``);
        0 skips the intervals. Ignored by the two-way method, which needs no resampling.
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
        ``dimension``; the groups are the same raters' groups in every level, and each level
        is described as a dimension of its own (same ``ci_method``; the rater bootstrap draws
        the same raters for every level). Ratings of items without a value are left out
        (counted in ``attrs["excluded_ratings"]``).

    Returns
    -------
    DataFrame
        GROUP_MEANS_COLUMNS: ``dimension, by, group, <by columns>, n_raters, n_ratings, mean,
        se, ci_low, ci_high, ci_method, n_boot_used``. A group with one rater, or rated on one
        item, gets no interval (NaN), with a warning for the former. With the bootstrap,
        resamples in which a group has no rater are left out of its interval and counted in
        ``n_boot_used``; a warning is given when more than 5 % are left out. ``.attrs`` holds
        ``ci_prob``, ``ci_method``, ``n_boot``, ``seed`` and the number of raters left out per
        dimension because their value is missing (``excluded_raters``).

    See Also
    --------
    relative_difference : Differences from a reference group.
    pluralign.models.fit_mixed : Model-based means adjusted for other demographics and items.

    References
    ----------
    Cameron, A. C., Gelbach, J. B. & Miller, D. L. (2011). Robust inference with multiway
    clustering. *Journal of Business & Economic Statistics*, 29(2), 238-249.

    Examples
    --------
    >>> from pluralign.data import simulate_study
    >>> study = simulate_study(n_raters=100, seed=1).study
    >>> gm = group_means(study, by="gender", dimension="toxicity")
    >>> gm[["group", "n_raters"]].values.tolist()[:2]
    [['he/him', 41], ['other', 3]]
    >>> gm["ci_method"].iloc[0]
    'two-way cluster-robust (rater × item), t interval'
    >>> by_model = group_means(study, by="gender", dimension="toxicity", within="source_model")
    >>> sorted(by_model["source_model"].unique())
    ['model_a', 'model_b', 'model_c']
    """
    return _compute(study, by, dimension, ci_method, ci_prob, n_boot, seed, coding, crossed, within)


def relative_difference(
    study: Study,
    by: str | Sequence[str],
    *,
    reference: str | Sequence[str] | Mapping[str, str] | None = None,
    dimension: str | Sequence[str] | None = None,
    origin: Origin = "zero",
    ci_method: CiMethod = "two-way",
    ci_prob: float | None = None,
    n_boot: int | None = None,
    seed: int | None = None,
    coding: GroupCoding = "collapsed",
    crossed: bool = False,
    within: str | None = None,
) -> pd.DataFrame:
    """Differences of group means from a reference group: in rating points, percent and SDs.

    For a group ``g`` with mean ``m_g``, reference mean ``m_ref`` and a scale from ``min`` to
    ``max``:

    * ``difference = m_g - m_ref`` (rating points);
    * ``relative_pct = 100 * (m_g - m_ref) / (m_ref - relative_origin)``, e.g. "men rate
      toxicity 18 % lower than women". A ratio of means depends on where the scale starts:
      means 2.00 vs 1.64 give -18 % coded 1-5 from zero, -36 % coded 0-4 and +9 % reverse-coded.
      The origin is ``origin`` (0 by default, as the models' ``relative_pct``; ``"minimum"``
      counts from the scale's lowest point) and is written into the ``relative_origin`` column;
    * ``pct_of_range = 100 * difference / (max - min)``: the difference as a share of the
      scale's range, the same whatever the coding;
    * ``cohens_d = difference / sqrt((s²_g + s²_ref) / 2)`` with ``s²`` the variance of single
      ratings within a group (rater, item and residual variation together). The models'
      ``cohens_d`` divides by the same quantity estimated from variance components,
      ``sqrt(σ²_rater + σ²_item + σ²_residual)``.

    Every quantity has an interval (``{quantity}_ci_low`` / ``{quantity}_ci_high``; the mean's
    is ``ci_low`` / ``ci_high``) from the method of :func:`group_means`: by default two-way
    (rater × item) cluster-robust standard errors of the linearised statistic (delta method),
    with t intervals; group and reference share raters' and items' clusters, so the interval of
    a difference accounts for their covariance.

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
    dimension : str or sequence of str, optional
        As in :func:`group_means`.
    origin : {"zero", "minimum"} or float, default "zero"
        Rating from which ``relative_pct`` counts: 0, the scale's minimum, or a given value.
    ci_method, ci_prob, n_boot, seed, coding, crossed
        As in :func:`group_means`.
    within : str, optional
        A categorical column of the items table (e.g. ``"source_model"``): one difference per
        level, "men rate model A's responses 20 % less toxic, model B's 5 %". The reference
        group is the same in every level; see :func:`group_means`.

    Returns
    -------
    DataFrame
        RELATIVE_DIFFERENCE_COLUMNS: ``dimension, by, group, <by columns>, n_raters,
        n_ratings, mean, reference, is_reference, mean_reference, n_raters_reference, se,
        ci_low, ci_high, difference, difference_ci_low, difference_ci_high, relative_pct,
        relative_ci_low, relative_ci_high, relative_origin, pct_of_range,
        pct_of_range_ci_low, pct_of_range_ci_high, cohens_d, cohens_d_ci_low,
        cohens_d_ci_high, ci_method, n_boot_used`` (the reference group's own row has zero
        differences and no interval). ``.attrs`` adds ``relative_origin`` (per dimension) and
        ``cohens_d_definition`` to those of :func:`group_means`.

    See Also
    --------
    group_means : The group means alone.
    pluralign.models.fit_mixed : The same contrasts adjusted for other demographics and items.

    References
    ----------
    Cameron, A. C., Gelbach, J. B. & Miller, D. L. (2011). Robust inference with multiway
    clustering. *Journal of Business & Economic Statistics*, 29(2), 238-249.

    Examples
    --------
    >>> from pluralign.data import simulate_study
    >>> study = simulate_study(n_raters=200, seed=1).study
    >>> rd = relative_difference(study, by="gender", dimension="toxicity")
    >>> bool(rd.set_index("group").loc["she/her", "is_reference"])
    True
    >>> float(rd["relative_origin"].iloc[0])
    0.0
    >>> m = relative_difference(study, by="gender", dimension="toxicity", origin="minimum")
    >>> float(m["relative_origin"].iloc[0]), bool(m["pct_of_range"].equals(rd["pct_of_range"]))
    (1.0, True)

    Within the responses of each LLM:

    >>> per_model = relative_difference(study, by="gender", dimension="toxicity",
    ...                                 within="source_model")
    >>> per_model.query("group == 'he/him'")[["source_model", "reference"]].values.tolist()
    [['model_a', 'she/her'], ['model_b', 'she/her'], ['model_c', 'she/her']]
    """
    return _compute(
        study, by, dimension, ci_method, ci_prob, n_boot, seed, coding, crossed, within,
        reference, relative=True, origin=origin,
    )  # fmt: skip
