"""Posterior probability that a rater of a target population prefers response A to response B.

Definition (for one posterior draw ``s``)
-----------------------------------------
A rater of the target has a demographic pattern ``j`` with probability ``π_j``: each target
cell gets its population share, and the demographics the cell leaves out keep their mix among
the fitted ratings (the same averaging as :meth:`BayesResult.cell_mean_draws`). Given ``j``,
the rater's random intercept ``u_d ~ N(0, σ²_rater,d)`` on each dimension ``d`` is shared by
both items; given ``u``, the two ratings are independent draws from the cumulative-logit model
with the items' effects (and the group's own item deviations) of draw ``s``. With the combined
score ``S = Σ_d w_d · desirability_d · (r_d − min_d) / (max_d − min_d)`` (the definition of
:func:`~pluralign.labels.preference_labels`)::

    p_j(s) = E_u[ P(S_A > S_B | u) + ½ P(S_A = S_B | u) ]
    p(s)   = Σ_j π_j p_j(s)

``p`` is the mean of ``p(s)`` over draws and ``p_sd`` its SD over draws. Because ``p(s)`` mixes
the patterns linearly, the ``p`` of a target is exactly the share-weighted mix of the ``p`` of
its groups. ``u_d`` is integrated by Gauss–Hermite quadrature separately per dimension (the
models of different dimensions are independent), and the distribution of ``S_A − S_B`` is
computed exactly by convolving the per-dimension distributions of ``r_A,d − r_B,d``.
For the gaussian family (one dimension), ``r_A − r_B ~ N(μ_A − μ_B, 2σ²_residual)`` (the rater
intercept cancels) and ``p = Φ((μ_A − μ_B) / (√2 σ_residual))``.

Several dimensions are treated as independent given the rater (one model per dimension), but
one rater's ratings of one response on, say, toxicity and helpfulness are correlated. Measured
on a joint model whose dimensions keep exactly the fitted cumulative-logit margins (5-point
scales, rater SD 0.8, item SD 1.2, the two dimensions' errors of one rating joined by a
Gaussian copula with correlation ρ; score = helpfulness − toxicity, equal weights; 40 pairs):

=========================  =====================  ============
correlation                mean abs(Δp) (max)      effect on p
=========================  =====================  ============
errors ρ = −0.3            0.015 (0.024)           too extreme
errors ρ = −0.6            0.028 (0.045)           too extreme
errors ρ = +0.3            0.020 (0.032)           too moderate
rater intercepts ρ = −0.6  < 0.001 (0.001)         none
=========================  =====================  ============

A negative error correlation between a "bad" and a "good" dimension (a response seen as more
toxic is seen as less helpful: the usual case) adds up in the score, so the true ``p`` is closer
to ½ than the independent one; correlated rater intercepts cancel between the two responses. No
preferred response changed side. Fitted to 400 raters who rated all 12 responses with ρ = −0.6,
the labels were off the truth by 0.024 on average (0.010 from the independent-dimension value
they estimate), and ``p ± 1.96 p_sd`` covered the true ``p`` for 12 of 18 pairs: with many
raters the error is larger than the posterior SD. ``benchmarks/calibration_parts/labels.py``
reproduces these numbers.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.special import ndtr

from pluralign._errors import PluralignWarning
from pluralign._numeric import gauss_hermite
from pluralign.data import Population, PopulationSpec
from pluralign.labels._score import Dimensions, ScoreSpec, Weights, score_spec
from pluralign.models import BayesResult, cumulative_probs, preference_from_probs

#: Upper bound on the number of floats held at once (draws × patterns × pairs × categories²).
_CHUNK_ELEMENTS = 4_000_000


def _fit_spec(fit, dimensions: Dimensions, weights: Weights) -> ScoreSpec:
    """The combined score on the fitted scales (the same rule as every labels function)."""
    scales = {d: fit.fits[d].scale for d in fit.dimensions}
    if dimensions is not None:
        dims = [dimensions] if isinstance(dimensions, str) else list(dimensions)
        unknown = [d for d in dims if d not in fit.fits]
        if unknown:
            raise KeyError(f"dimensions {unknown} were not fitted; fitted: {fit.dimensions}")
    return score_spec(scales, dimensions, weights)


def _item_index(fit_d, items: pd.Series, column: str) -> np.ndarray:
    lookup = pd.Series(
        np.arange(fit_d.design.n_items), index=pd.Index(fit_d.design.item_levels.astype(str))
    )
    idx = lookup.reindex(items.astype(str).to_numpy())
    if idx.isna().any():
        bad = sorted(set(items.astype(str)[idx.isna().to_numpy()]))
        raise KeyError(
            f"{column}: items {bad[:5]}{' …' if len(bad) > 5 else ''} were not rated on "
            f"{fit_d.dimension!r} in the fitted data, so the model has no effect for them"
        )
    return idx.to_numpy(dtype=int)


def _known_levels(design) -> dict[str, list[str] | None]:
    """Levels of each demographic of a fitted design (None for a numeric variable)."""
    return {**design.levels, **dict.fromkeys(design.numeric)}


def _patterns(fit, dims, target) -> tuple[pd.DataFrame, np.ndarray]:
    """Demographic patterns of a rater of the target and their probabilities ``π_j``."""
    base = fit.fits[dims[0]]
    population = Population.parse(target).check(_known_levels(base.design))
    cells = population.cells.copy()
    for c in population.columns:
        if c not in base.design.numeric:
            cells[c] = cells[c].astype(str)
    frame = base.rater_frame()
    parts, probs = [], []
    for _, cell in cells.iterrows():
        rows = frame.copy()
        for col, value in cell.drop("share").items():
            if col not in rows.columns:
                raise KeyError(f"target names {col!r}, which is not a variable of the model")
            rows[col] = value
        cols = list(rows.columns)
        if cols:
            counts = rows.astype(str).value_counts(subset=cols, sort=False).reset_index(name="n")
            parts.append(counts[cols])
            probs.append(cell["share"] * counts["n"].to_numpy(float) / counts["n"].sum())
        else:
            parts.append(rows.iloc[:1])
            probs.append(np.array([cell["share"]]))
    pats = pd.concat(parts, ignore_index=True)
    pi = np.concatenate(probs)
    if len(pats.columns):
        key = pats.astype(str).apply(tuple, axis=1)
        agg = pd.Series(pi).groupby(key.to_numpy(), sort=False).sum()
        first = ~key.duplicated().to_numpy()
        pats = pats[first].reset_index(drop=True)
        pi = agg.reindex(key[first].to_numpy()).to_numpy()
    for v in base.design.numeric:
        pats[v] = pats[v].astype(float)
    return pats, pi


def _prepare(fit_d, pats: pd.DataFrame, idx: np.ndarray, pairs: pd.DataFrame) -> dict:
    """Per-dimension inputs computed once: draws, pattern predictors, item and group indices."""
    d = fit_d.draws().take(idx)
    X = fit_d.design.transform(pats)[:, 1:]
    prep = {
        "draws": d,
        "lin": d.beta @ X.T,  # (S, J)
        "ia": _item_index(fit_d, pairs["item_a"], "item_a"),
        "ib": _item_index(fit_d, pairs["item_b"], "item_b"),
        "group": None,
    }
    if fit_d.group_item:
        # every pattern's level is a fitted level (Population.check in _patterns)
        codes = pd.Categorical(pats[fit_d.group_item].astype(str), categories=fit_d.group_levels)
        prep["group"] = codes.codes.astype(np.int64)
    return prep


def _linear_predictors(prep: dict, sl: slice) -> tuple[np.ndarray, np.ndarray]:
    """``η`` of items A and B for every draw, pattern and pair of the chunk: (S, J, P)."""
    d, lin = prep["draws"], prep["lin"]
    ia, ib = prep["ia"][sl], prep["ib"][sl]
    eta_a = lin[:, :, None] + d.item_effect[:, ia][:, None, :]
    eta_b = lin[:, :, None] + d.item_effect[:, ib][:, None, :]
    if prep["group"] is not None:
        w = d.group_item[:, prep["group"]]  # (S, J, I)
        eta_a = eta_a + w[:, :, ia]
        eta_b = eta_b + w[:, :, ib]
    return eta_a, eta_b


def _diff_support(levels: np.ndarray, coef: float) -> tuple[np.ndarray, np.ndarray]:
    """Values of ``coef·(r_A − r_B)`` over category pairs, merged; and each pair's slot."""
    diff = coef * (levels[:, None] - levels[None, :]).ravel()
    key = np.round(diff / 1e-9).astype(np.int64)
    uniq, inverse = np.unique(key, return_inverse=True)
    return uniq * 1e-9, inverse


def posterior_pair_probabilities(
    fit: BayesResult,
    pairs: pd.DataFrame,
    *,
    target: PopulationSpec = None,
    dimensions: Dimensions = None,
    weights: Weights = None,
    n_draws: int | None = None,
    seed: int | None = None,
) -> pd.DataFrame:
    """Posterior probability that a random rater of ``target`` prefers ``item_a`` to ``item_b``.

    Parameters
    ----------
    fit : BayesResult
        From :func:`~pluralign.models.fit_bayes` (ordinal or bernoulli; gaussian for one
        dimension) with every dimension used.
    pairs : DataFrame
        Columns ``item_a, item_b``; a pair with an item not fitted on a dimension used gets
        NaN (with a warning).
    target : None, mapping, DataFrame or Population
        The rater population: None (the fitted raters), a group ``{"gender": "she/her"}``,
        margins, or a post-stratification frame with ``share`` (see
        :class:`~pluralign.data.Population`); its levels must be levels of the model.
    dimensions, weights
        Dimensions of the combined score and their weights (default: every fitted dimension
        with a declared direction, equal weights); signs come from ``Scale.desirability``,
        by the rule of :func:`~pluralign.labels.preference_labels` (an undirected dimension
        needs an explicit weight).
    n_draws : int, optional
        Posterior draws used (a random subset, without replacement); default all.
    seed : int, optional
        Seed of the draw subset.

    Returns
    -------
    DataFrame
        ``item_a, item_b, p, p_sd``: posterior mean of ``P(S_A > S_B) + ½ P(S_A = S_B)`` for
        a random rater of the target, and its posterior SD (see the module docstring).

    Notes
    -----
    With several dimensions, a rater's ratings of one response are taken as independent across
    dimensions given the rater. When they are correlated (toxicity and helpfulness errors at
    ρ = −0.6), ``p`` is too far from ½ by about 0.03 on average (up to 0.045); with many raters
    this exceeds ``p_sd``. The module docstring gives the measurements.

    Examples
    --------
    >>> from pluralign.data import simulate_study
    >>> from pluralign.models import fit_bayes
    >>> study = simulate_study(n_raters=60, seed=1, dimensions=["toxicity"]).study
    >>> fit = fit_bayes(study, draws=200, tune=200, progressbar=False)  # doctest: +SKIP
    >>> posterior_pair_probabilities(fit, pd.DataFrame({"item_a": ["i0001"],
    ...                              "item_b": ["i0002"]}))  # doctest: +SKIP
    """
    for col in ("item_a", "item_b"):
        if col not in pairs.columns:
            raise KeyError(f"pairs needs columns item_a and item_b; it has {list(pairs.columns)}")
    spec = _fit_spec(fit, dimensions, weights)
    dims, coef = list(spec.dimensions), spec.slopes
    pairs = pairs[["item_a", "item_b"]].reset_index(drop=True)
    all_pairs = pairs
    known = np.ones(len(pairs), dtype=bool)
    for dn in dims:
        levels = set(fit.fits[dn].design.item_levels.astype(str))
        known &= pairs["item_a"].astype(str).isin(levels).to_numpy()
        known &= pairs["item_b"].astype(str).isin(levels).to_numpy()
    if not known.all():
        bad = all_pairs[~known]
        warnings.warn(
            f"{int((~known).sum())} of {len(pairs)} pairs have an item without fitted ratings on "
            f"{dims} (e.g. {bad.iloc[0].tolist()}); their p and p_sd are NaN",
            PluralignWarning,
            stacklevel=2,
        )
        pairs = pairs[known].reset_index(drop=True)
    n_total = fit.fits[dims[0]].draws().n
    rng = np.random.default_rng(seed)
    if n_draws is None or n_draws >= n_total:
        idx = np.arange(n_total)
    else:
        idx = np.sort(rng.choice(n_total, size=int(n_draws), replace=False))
    pats, pi = _patterns(fit, dims, target)
    families = {fit.fits[d].family for d in dims}
    if "gaussian" in families and len(dims) > 1:
        raise NotImplementedError(
            "posterior pair probabilities of several dimensions need ordinal or bernoulli fits"
        )
    n_pairs = len(pairs)
    k_max = max(len(fit.fits[d].levels) for d in dims)
    per_pair = max(1, len(idx) * len(pats) * k_max * k_max * 2)
    step = max(1, _CHUNK_ELEMENTS // per_pair)
    p_draws = np.empty((len(idx), n_pairs))
    x, w = gauss_hermite()
    preps = {dn: _prepare(fit.fits[dn], pats, idx, pairs) for dn in dims}
    for start in range(0, n_pairs, step):
        sl = slice(start, min(n_pairs, start + step))
        values = np.zeros(1)
        probs = None  # (S, J, P, n_values) distribution of S_A − S_B
        for d_name, c in zip(dims, coef, strict=True):
            fd = fit.fits[d_name]
            d = preps[d_name]["draws"]
            eta_a, eta_b = _linear_predictors(preps[d_name], sl)
            if fd.family == "gaussian":
                z = np.sign(c) * (eta_a - eta_b) / (np.sqrt(2.0) * d.sigma_residual[:, None, None])
                p_draws[:, sl] = np.einsum("sjp,j->sp", ndtr(z), pi)
                break
            cut = d.cutpoints[:, None, None, :]
            sd = d.sigma_rater[:, None, None]
            if len(dims) == 1:
                pref = np.zeros(eta_a.shape)
                for xj, wj in zip(x, w, strict=True):
                    pa = cumulative_probs(eta_a + sd * xj, cut)
                    pb = cumulative_probs(eta_b + sd * xj, cut)
                    pref += wj * preference_from_probs(pa, pb)
                if c < 0:
                    pref = 1.0 - pref
                p_draws[:, sl] = np.einsum("sjp,j->sp", pref, pi)
                break
            support, slot = _diff_support(fd.levels, c)
            dist = np.zeros((*eta_a.shape, len(support)))
            scatter = np.zeros((len(slot), len(support)))
            scatter[np.arange(len(slot)), slot] = 1.0
            for xj, wj in zip(x, w, strict=True):
                pa = cumulative_probs(eta_a + sd * xj, cut)
                pb = cumulative_probs(eta_b + sd * xj, cut)
                joint = (pa[..., :, None] * pb[..., None, :]).reshape((*pa.shape[:-1], -1))
                dist += wj * (joint @ scatter)
            if probs is None:
                values, probs = support, dist
            else:
                sums = (values[:, None] + support[None, :]).ravel()
                key = np.round(sums / 1e-9).astype(np.int64)
                uniq, inverse = np.unique(key, return_inverse=True)
                comb = (probs[..., :, None] * dist[..., None, :]).reshape((*probs.shape[:-1], -1))
                onto = np.zeros((len(inverse), len(uniq)))
                onto[np.arange(len(inverse)), inverse] = 1.0
                new = comb @ onto  # sums the probabilities of equal values of S_A − S_B
                values, probs = uniq * 1e-9, new
        else:
            h = np.where(values > 1e-9, 1.0, np.where(values < -1e-9, 0.0, 0.5))
            p_draws[:, sl] = np.einsum("sjpv,v,j->sp", probs, h, pi)
    out = all_pairs.assign(p=np.nan, p_sd=np.nan)
    if len(pairs):
        out.loc[known, "p"] = p_draws.mean(axis=0)
        out.loc[known, "p_sd"] = p_draws.std(axis=0, ddof=1)
    return out
