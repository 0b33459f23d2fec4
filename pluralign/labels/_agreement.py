"""Inter-rater agreement: Krippendorff's alpha overall, within and between demographic groups."""

from __future__ import annotations

import itertools
from typing import Literal

import krippendorff
import numpy as np
import pandas as pd

from pluralign._compat import tqdm
from pluralign._settings import options
from pluralign.data import EVERYONE, Study
from pluralign.describe import percentile_interval
from pluralign.labels._kernels import (
    LEVELS_OF_MEASUREMENT,
    alpha_from_coincidences,
    coincidences,
    cross_coincidences,
    weighted_counts,
)

#: Columns of :func:`agreement`'s table.
AGREEMENT_COLUMNS = (
    "dimension", "by", "kind", "group", "krippendorff_alpha", "krippendorff_alpha_ci_low",
    "krippendorff_alpha_ci_high",
    "n_raters", "n_items", "n_ratings", "level", "cluster",
)  # fmt: skip


def rating_codes(study: Study, dimension: str) -> pd.DataFrame:
    """Ratings of one dimension with integer codes: ``rater, item, u`` (unit), ``v`` (value index)."""
    scale = study.scale(dimension)
    r = study.ratings[study.ratings["dimension"] == dimension].reset_index(drop=True)
    v = r["rating"].to_numpy() - scale.min
    if not np.allclose(v, np.round(v)):
        bad = r.loc[~np.isclose(v, np.round(v)), "rating"].unique()[:5]
        raise ValueError(
            f"dimension {dimension!r}: agreement needs ratings on the scale points "
            f"{scale.min}..{scale.max}; found non-integer ratings {list(bad)}"
        )
    out = r[["rater", "item"]].copy()
    out["u"] = pd.factorize(r["item"])[0]
    out["v"] = np.round(v).astype(int)
    return out


def _alpha_reference(W: np.ndarray, levels: np.ndarray, level: str) -> float:
    """Alpha from the ``krippendorff`` package (NaN when it is undefined)."""
    if (W.sum(axis=1) >= 2).sum() == 0:
        return float("nan")
    if np.count_nonzero(W[W.sum(axis=1) >= 2].sum(axis=0)) < 2:
        return float("nan")  # every pairable value identical: expected disagreement is zero
    return float(
        krippendorff.alpha(value_counts=W, value_domain=levels, level_of_measurement=level)
    )


def agreement(
    study: Study,
    by: str | None = None,
    *,
    level: Literal["nominal", "ordinal", "interval", "ratio"] = "ordinal",
    dimension: str | list[str] | None = None,
    between: bool = True,
    cluster: Literal["item", "rater", "both"] = "both",
    n_boot: int | None = None,
    ci_prob: float | None = None,
    seed: int | None = None,
    progressbar: bool = False,
) -> pd.DataFrame:
    """Krippendorff's alpha overall, within each demographic group and between groups.

    *Within* a group, alpha uses only that group's ratings. *Between* two groups ``A | B`` is
    the cross-group alpha: the observed disagreement comes only from pairs of ratings of the
    same item by one rater of ``A`` and one rater of ``B`` (each item with raters from both
    groups contributes its ``m_A + m_B`` values, spread over those cross pairs, as in
    Krippendorff's coincidence matrix), and the expected disagreement from the margins of that
    coincidence matrix. This is the cross-replication reliability of Wong, Paritosh and Aroyo
    (2021) in Krippendorff's form. We chose it over alpha on group-level item summaries because
    it is on the same scale as the within-group alphas: when the groups rate like one
    population, the between alpha equals the within alphas; when they disagree systematically
    about the same items, it falls below them. Alpha on group means would instead measure
    agreement of two averaged "super raters", which grows with group size.

    Parameters
    ----------
    study : Study
    by : str, optional
        Demographic column; groups use the collapsed coding (``Study.collapsed``), so a
        multi-select value chosen with others counts as e.g. "Multiracial". Raters with a
        missing value take part only in the overall row.
    level : {"nominal", "ordinal", "interval", "ratio"}, default "ordinal"
        Level of measurement (Krippendorff's difference function).
    dimension : str or list of str, optional
        Dimensions to analyse (default: all).
    between : bool, default True
        Add a row per pair of groups.
    cluster : {"both", "item", "rater"}, default "both"
        Bootstrap unit: raters and items independently (the default: both are samples, and
        this is the interval that covers the population's alpha in simulation, 95 % for a 95 %
        interval; see the validity page), items only (Hayes and Krippendorff's unit bootstrap:
        the raters are held fixed, so it describes these raters and covers the population's
        alpha less often, 89 % in the same simulation), or raters only (within each group of
        ``by``, so group sizes stay fixed; copies of a rater are not paired with each other).
    n_boot : int, optional
        Number of bootstrap resamples (default ``options.n_boot``; 0 for no intervals).
    ci_prob : float, optional
        Probability of the percentile interval (default ``options.ci_prob``).
    seed : int, optional
        Seed of the bootstrap (default ``options.seed``).
    progressbar : bool, default False

    Returns
    -------
    DataFrame
        One row per dimension × (overall | group | pair of groups): ``dimension, by, kind``
        ("overall" / "within" / "between"), ``group`` ("everyone", a level, or "A | B"),
        ``krippendorff_alpha, krippendorff_alpha_ci_low, krippendorff_alpha_ci_high, n_raters,
        n_items`` (pairable items), ``n_ratings, level, cluster`` (:data:`AGREEMENT_COLUMNS`).

    References
    ----------
    Krippendorff, K. (2011). Computing Krippendorff's alpha-reliability.
    Hayes, A. F. and Krippendorff, K. (2007). Answering the call for a standard reliability
    measure for coding data. Communication Methods and Measures 1(1).
    Wong, K., Paritosh, P. and Aroyo, L. (2021). Cross-replication reliability: an empirical
    approach to interpreting inter-rater reliability. ACL 2021.

    Examples
    --------
    >>> import pandas as pd
    >>> from pluralign.data import Scale, Study
    >>> ratings = pd.DataFrame({"rater": ["a", "b", "a", "b", "a", "b"],
    ...     "item": ["i1", "i1", "i2", "i2", "i3", "i3"], "dimension": "toxicity",
    ...     "rating": [1, 1, 1, 2, 2, 2]})
    >>> study = Study.from_frames(ratings, scales=[Scale("toxicity", 1, 2)])
    >>> round(agreement(study, level="nominal", n_boot=0)["krippendorff_alpha"].item(), 4)
    0.4444
    """
    if level not in LEVELS_OF_MEASUREMENT:
        raise ValueError(f"level must be one of {LEVELS_OF_MEASUREMENT}, got {level!r}")
    if cluster not in ("item", "rater", "both"):
        raise ValueError(f"cluster must be 'item', 'rater' or 'both', got {cluster!r}")
    n_boot = options.n_boot if n_boot is None else int(n_boot)
    ci_prob = options.ci_prob if ci_prob is None else float(ci_prob)
    rng = np.random.default_rng(options.seed if seed is None else seed)
    dims = study.resolve_dimensions(dimension)

    group_of = None
    groups: list[str] = []
    if by is not None:
        group_of = study.collapsed(by)
        groups = sorted(group_of.dropna().unique().tolist())

    rows = []
    for dim in dims:
        scale = study.scale(dim)
        levels = scale.levels
        V = len(levels)
        codes = rating_codes(study, dim)
        n_units = int(codes["u"].max()) + 1
        rater_idx, raters = pd.factorize(codes["rater"])
        u, v = codes["u"].to_numpy(), codes["v"].to_numpy()
        if group_of is not None:
            g_of_rater = group_of.reindex(raters).to_numpy(dtype=object)
            g = np.array([groups.index(x) if isinstance(x, str) else -1 for x in g_of_rater])
        else:
            g = np.full(len(raters), -1)
        g_rating = g[rater_idx]

        # ---- row definitions: (kind, label, mask of ratings or pair of masks)
        specs: list[tuple[str, str, object]] = [("overall", EVERYONE, np.ones(len(u), bool))]
        for k, name in enumerate(groups):
            specs.append(("within", name, g_rating == k))
        if between:
            for (ka, a), (kb, b) in itertools.combinations(enumerate(groups), 2):
                specs.append(("between", f"{a} | {b}", (g_rating == ka, g_rating == kb)))

        def estimates(wr, a_u, specs=specs, u=u, v=v, n_units=n_units, V=V, levels=levels):
            out = []
            for kind, _, mask in specs:
                if kind == "between":
                    ma, mb = mask
                    A, _ = weighted_counts(u[ma], v[ma], n_units, V, None if wr is None else wr[ma])
                    B, _ = weighted_counts(u[mb], v[mb], n_units, V, None if wr is None else wr[mb])
                    coinc, _ = cross_coincidences(A, B, a_u)
                else:
                    W, S = weighted_counts(
                        u[mask], v[mask], n_units, V, None if wr is None else wr[mask]
                    )
                    coinc, _ = coincidences(W, S, a_u)
                out.append(alpha_from_coincidences(coinc, levels, level))
            return np.array(out)

        point = estimates(None, None)
        # reference package for overall / within rows (the kernel reproduces it; see tests)
        for i, (kind, _, mask) in enumerate(specs):
            if kind != "between":
                W, _ = weighted_counts(u[mask], v[mask], n_units, V)
                point[i] = _alpha_reference(W, levels, level)

        boot = np.full((n_boot, len(specs)), np.nan)
        strata = [np.flatnonzero(g == k) for k in np.unique(g)]
        for b in tqdm(range(n_boot), desc=f"bootstrap {dim}", disable=not progressbar):
            wr = a_u = None
            if cluster in ("rater", "both"):
                w_rater = np.zeros(len(raters))
                for idx in strata:
                    w_rater[idx] = np.bincount(
                        rng.integers(0, len(idx), len(idx)), minlength=len(idx)
                    )
                wr = w_rater[rater_idx]
            if cluster in ("item", "both"):
                a_u = np.bincount(rng.integers(0, n_units, n_units), minlength=n_units).astype(
                    float
                )
            boot[b] = estimates(wr, a_u)

        ci_low, ci_high = percentile_interval(boot, ci_prob)
        for i, (kind, label, mask) in enumerate(specs):
            m = (mask[0] | mask[1]) if kind == "between" else mask
            if kind == "between":
                A, _ = weighted_counts(u[mask[0]], v[mask[0]], n_units, V)
                B, _ = weighted_counts(u[mask[1]], v[mask[1]], n_units, V)
                pairable = (A.sum(1) > 0) & (B.sum(1) > 0)
            else:
                W, _ = weighted_counts(u[m], v[m], n_units, V)
                pairable = W.sum(1) >= 2
            in_pairable = m & pairable[u]
            rows.append({
                "dimension": dim, "by": by or "", "kind": kind, "group": label,
                "krippendorff_alpha": point[i], "krippendorff_alpha_ci_low": float(ci_low[i]),
                "krippendorff_alpha_ci_high": float(ci_high[i]),
                "n_raters": int(np.unique(rater_idx[in_pairable]).size),
                "n_items": int(pairable.sum()), "n_ratings": int(in_pairable.sum()),
                "level": level, "cluster": cluster if n_boot else "",
            })  # fmt: skip
    return pd.DataFrame(rows, columns=list(AGREEMENT_COLUMNS))
