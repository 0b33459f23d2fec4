"""The generative kernel of every simulated rating study (arrays in, arrays out).

Both :func:`pluralign.data.simulate_study` (many demographics and dimensions, texts, calibrated
published effects) and the power layer's ``StudyDesign`` (one demographic, one dimension)
describe a study and hand its arrays to :func:`simulate_ratings`, so there is one way to assign
items to raters, one id format and one way to draw latent ratings and map them to the scale::

    eta[r, i, d] = fixed[r, d]                        # demographic effects (and intercept)
                   + u[r, d]                           # rater effect, correlated across d
                   + item_fixed[i, d] + v[i, d]        # item covariates and item latent trait
                   + sum_g w_g[level_g(r), i, d]       # group x item deviations
                   + sum_k loadings[r, k, d] * features[i, k]   # demographic x item-feature
    ordinal:   P(rating <= minimum + k) = logistic(cutpoints[d, k] - eta)
    gaussian:  rating = eta + N(0, residual_sd[d]^2)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from math import comb
from typing import Literal

import numpy as np
import pandas as pd
from scipy import special

Family = Literal["ordinal", "gaussian"]


def entity_ids(prefix: str, n: int) -> np.ndarray:
    """The id format of every simulated table: ``prefix`` + zero-padded 0-based number.

    Examples
    --------
    >>> entity_ids("r", 12).tolist()[:3]
    ['r00', 'r01', 'r02']
    """
    width = len(str(max(int(n) - 1, 0)))
    return np.array([f"{prefix}{k:0{width}d}" for k in range(int(n))], dtype=object)


def draw_ratings(
    eta: np.ndarray,
    rng: np.random.Generator,
    *,
    family: Family = "ordinal",
    cutpoints: np.ndarray | None = None,
    minimum: float = 1.0,
    residual_sd: float | np.ndarray = 1.0,
) -> np.ndarray:
    """Draw ratings given latent linear predictors (vectorised).

    Parameters
    ----------
    eta : array
        Latent linear predictor of each rating.
    rng : numpy.random.Generator
    family : {"ordinal", "gaussian"}
        ``"ordinal"``: cumulative logit, ``P(rating <= minimum + k) = logistic(c_k - eta)``;
        ``"gaussian"``: ``rating = eta + N(0, residual_sd)`` (continuous).
    cutpoints : array, shape (n_thresholds,) or (..., n_thresholds)
        Increasing cutpoints, broadcastable against ``eta[..., None]`` (ordinal only).
    minimum : float
        Lowest scale point (ordinal only).
    residual_sd : float or array
        Residual standard deviation (gaussian only).

    Returns
    -------
    ndarray of float

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> r = draw_ratings(np.zeros(5), rng, cutpoints=np.array([-1.0, 0.0, 1.0]))
    >>> bool(np.isin(r, [1, 2, 3, 4]).all())
    True
    """
    eta = np.asarray(eta, dtype=float)
    if family == "gaussian":
        return eta + rng.normal(0.0, 1.0, size=eta.shape) * residual_sd
    if family != "ordinal":
        raise ValueError(f"family must be 'ordinal' or 'gaussian', got {family!r}")
    if cutpoints is None:
        raise ValueError("the ordinal family needs cutpoints")
    c = np.asarray(cutpoints, dtype=float)
    if np.any(np.diff(c, axis=-1) <= 0):
        raise ValueError("cutpoints must be strictly increasing")
    p_le = special.expit(c - eta[..., None])  # P(Y <= min + k)
    u = rng.random(eta.shape)
    return minimum + (u[..., None] > p_le).sum(-1).astype(float)


# ---------------------------------------------------------------------------------- assignment
def assign_items(
    n_raters: int,
    n_prompts: int,
    responses_per_prompt: int,
    items_per_rater: int,
    responses_per_visit: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Rater and item index of every rater × item pair (item ``p * responses_per_prompt + k``
    is response ``k`` of prompt ``p``).

    Each rater visits ``ceil(items_per_rater / responses_per_visit)`` distinct prompts and rates
    ``responses_per_visit`` distinct responses of each (the last visit takes the remainder), so
    same-rater pairs of responses to one prompt exist. Prompts are spread evenly: visit ``j`` of
    every rater is read from a sequence of concatenated random permutations of the prompts (so
    each prompt is visited equally often, ±1); a rater who would see a prompt twice swaps that
    visit with another rater's visit of the same round. Within a prompt, successive visits take
    successive subsets of responses from a shuffled list, so every response and every pair of
    responses is rated about equally often.

    Examples
    --------
    >>> r, i = assign_items(6, 3, 2, 2, 2, np.random.default_rng(0))
    >>> np.bincount(i).tolist()  # 6 raters rate one whole prompt each: 2 visits per prompt
    [2, 2, 2, 2, 2, 2]
    """
    n, P, K, per = n_raters, n_prompts, responses_per_prompt, responses_per_visit
    n_vis = -(-items_per_rater // per)
    if n_vis > P or per > K:
        raise ValueError(
            f"{n_vis} prompt visits of {per} responses do not fit {P} prompts of {K} responses"
        )
    counts = np.full(n_vis, per)
    counts[-1] = items_per_rater - per * (n_vis - 1)
    seq = np.concatenate([rng.permutation(P) for _ in range(-(-n * n_vis // P))])[: n * n_vis]
    prompt = seq.reshape(n_vis, n).T.copy()  # (n, v)
    for _ in range(200):
        srt = np.sort(prompt, axis=1)
        bad_rows = np.flatnonzero((np.diff(srt, axis=1) == 0).any(axis=1))
        if bad_rows.size == 0:
            break
        for r in bad_rows:
            row = prompt[r]
            _, first = np.unique(row, return_index=True)
            repeated = np.setdiff1d(np.arange(n_vis), first)
            if repeated.size == 0:  # fixed by an earlier swap in this round
                continue
            j = int(repeated[0])
            r2 = int(rng.integers(n))
            prompt[r, j], prompt[r2, j] = prompt[r2, j], prompt[r, j]
    else:  # pragma: no cover - tiny designs only: fall back to distinct random prompts
        for r in range(n):
            if np.unique(prompt[r]).size < n_vis:
                prompt[r] = rng.choice(P, size=n_vis, replace=False)
    resp_perm = np.argsort(rng.random((P, K)), axis=-1)
    cols = np.concatenate([[0], np.cumsum(counts)])
    item = np.empty((n, items_per_rater), dtype=np.int64)
    for c in np.unique(counts):
        js = np.flatnonzero(counts == c)
        pc = prompt[:, js].ravel()  # rater-major
        combos = _subsets(K, int(c), rng)
        start = rng.integers(len(combos), size=P)
        chosen = combos[(start[pc] + _visit_rank(pc)) % len(combos)]  # (m, c)
        chosen = resp_perm[pc[:, None], chosen] + pc[:, None] * K
        chosen = chosen.reshape(n, js.size, int(c))
        for k, j in enumerate(js):
            item[:, cols[j] : cols[j + 1]] = chosen[:, k]
    rater = np.repeat(np.arange(n), items_per_rater)
    return rater, item.ravel()


def _visit_rank(prompt: np.ndarray) -> np.ndarray:
    """How many earlier visits (in array order) went to the same prompt."""
    by_prompt = np.argsort(prompt, kind="stable")
    sorted_p = prompt[by_prompt]
    first = np.searchsorted(sorted_p, sorted_p, side="left")
    rank = np.empty_like(prompt)
    rank[by_prompt] = np.arange(prompt.size) - first
    return rank


_MAX_SUBSETS = 5000


def _subsets(k: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """All ``size``-subsets of ``range(k)`` in random order (random ones if there are too many)."""
    if comb(k, size) <= _MAX_SUBSETS:
        out = np.array(list(combinations(range(k), size)), dtype=np.int64).reshape(-1, size)
        return out[rng.permutation(len(out))]
    return np.sort(np.argsort(rng.random((_MAX_SUBSETS, k)), axis=1)[:, :size], axis=1)


# ---------------------------------------------------------------------------------- kernel
@dataclass(frozen=True)
class LatentRatings:
    """What :func:`simulate_ratings` drew: who rated what, the ratings and every random effect.

    Attributes
    ----------
    rater, item : ndarray, shape (pairs,)
        Rater and item index of each rater × item pair (rater-major).
    rating : ndarray, shape (pairs, n_dimensions)
    rater_effect : ndarray, shape (n_raters, n_dimensions)
    item_trait : ndarray, shape (n_items, n_dimensions)
        Standardised item latent traits; the item effect is ``item_sd * item_trait``.
    item_effect : ndarray, shape (n_items, n_dimensions)
    group_item : dict of str to ndarray, shape (n_levels, n_items, n_dimensions)
        Group × item deviations per demographic.
    rater_ids, item_ids, prompt_ids : ndarray of str
        Ids in the one simulated format (:func:`entity_ids`); item ``i`` belongs to prompt
        ``i // responses_per_prompt``.

    Examples
    --------
    >>> import numpy as np
    >>> draw = simulate_ratings(np.zeros((4, 1)), np.random.default_rng(0), n_prompts=2,
    ...                         responses_per_prompt=2, items_per_rater=2, responses_per_visit=2,
    ...                         rater_sd=0.5, item_sd=1.0, cutpoints=np.array([[-1.0, 1.0]]))
    >>> isinstance(draw, LatentRatings), draw.rater_effect.shape
    (True, (4, 1))
    """

    rater: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    rater_effect: np.ndarray
    item_trait: np.ndarray
    item_effect: np.ndarray
    group_item: dict[str, np.ndarray]
    rater_ids: np.ndarray
    item_ids: np.ndarray
    prompt_ids: np.ndarray

    def ratings_frame(self, dimensions: Sequence[str]) -> pd.DataFrame:
        """The long ratings table ``rater, item, dimension, rating``."""
        n_pairs, n_dims = self.rating.shape
        return pd.DataFrame(
            {
                "rater": np.repeat(self.rater_ids[self.rater], n_dims),
                "item": np.repeat(self.item_ids[self.item], n_dims),
                "dimension": np.tile(np.array(list(dimensions), dtype=object), n_pairs),
                "rating": self.rating.ravel(),
            }
        )


def simulate_ratings(
    fixed: np.ndarray,
    rng: np.random.Generator,
    *,
    n_prompts: int,
    responses_per_prompt: int,
    items_per_rater: int,
    responses_per_visit: int,
    rater_sd: float | np.ndarray,
    item_sd: float | np.ndarray,
    group_item_sd: float | np.ndarray = 0.0,
    groups: Mapping[str, tuple[np.ndarray, int]] | None = None,
    rater_corr: float = 0.0,
    trait_corr: np.ndarray | None = None,
    prompt_share: float = 0.0,
    item_fixed: np.ndarray | None = None,
    loadings: np.ndarray | None = None,
    features: np.ndarray | None = None,
    family: Family = "ordinal",
    cutpoints: np.ndarray | None = None,
    minimum: float = 1.0,
    residual_sd: float | np.ndarray = 1.0,
) -> LatentRatings:
    """Draw one rating study from its arrays (the model is in this module's docstring).

    Parameters
    ----------
    fixed : ndarray, shape (n_raters, n_dimensions)
        Latent fixed part of each rater (demographic effects, and the intercept if any).
    rng : numpy.random.Generator
    n_prompts, responses_per_prompt, items_per_rater, responses_per_visit : int
        Sizes; items are the responses of the prompts (see :func:`assign_items`).
    rater_sd, item_sd, group_item_sd : float or ndarray, shape (n_dimensions,)
        Standard deviations of rater effects, item traits and group × item deviations.
    groups : mapping, optional
        ``{demographic: (level code per rater, number of levels)}``: the demographics whose
        groups deviate from everyone on each item (``N(0, group_item_sd²)`` per level × item).
    rater_corr : float
        Correlation of a rater's effects across dimensions.
    trait_corr : ndarray, shape (n_dimensions, n_dimensions), optional
        Correlation of item traits across dimensions (default: independent).
    prompt_share : float
        Share of item-trait variance common to the responses of one prompt.
    item_fixed : ndarray, shape (n_items, n_dimensions), optional
        Fixed item part (effects of item covariates).
    loadings, features : ndarray, shapes (n_raters, n_features, n_dimensions) and
        (n_items, n_features), optional
        Demographic × item-feature interactions: ``sum_k loadings[r, k, d] * features[i, k]``.
    family : {"ordinal", "gaussian"}
    cutpoints : ndarray, shape (n_dimensions, n_thresholds)
        Increasing cutpoints of the cumulative logit (ordinal only).
    minimum : float
        Lowest scale point (ordinal only).
    residual_sd : float or ndarray, shape (n_dimensions,)
        Residual SD (gaussian only).

    Returns
    -------
    LatentRatings

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> draw = simulate_ratings(np.zeros((4, 1)), rng, n_prompts=2, responses_per_prompt=2,
    ...                         items_per_rater=2, responses_per_visit=2, rater_sd=0.5,
    ...                         item_sd=1.0, cutpoints=np.array([[-1.0, 1.0]]))
    >>> draw.ratings_frame(["toxicity"]).shape, draw.item_ids.tolist()
    ((8, 4), ['i0', 'i1', 'i2', 'i3'])
    """
    fixed = np.asarray(fixed, dtype=float)
    n, D = fixed.shape
    P, K = int(n_prompts), int(responses_per_prompt)
    n_items = P * K
    rsd = np.broadcast_to(np.asarray(rater_sd, dtype=float), (D,))
    isd = np.broadcast_to(np.asarray(item_sd, dtype=float), (D,))
    gsd = np.broadcast_to(np.asarray(group_item_sd, dtype=float), (D,))

    # raters: effects correlated across dimensions
    R = np.full((D, D), float(rater_corr))
    np.fill_diagonal(R, 1.0)
    u = rng.standard_normal((n, D)) @ np.linalg.cholesky(R).T * rsd

    # items: correlated latent traits with a prompt-level share
    L = np.linalg.cholesky(np.eye(D) if trait_corr is None else np.asarray(trait_corr))
    z_prompt = rng.standard_normal((P, D)) @ L.T
    z_resp = rng.standard_normal((n_items, D)) @ L.T
    z = np.sqrt(prompt_share) * np.repeat(z_prompt, K, axis=0) + np.sqrt(1 - prompt_share) * z_resp
    v = z * isd

    # group × item deviations
    groups = dict(groups or {})
    w = {
        g: rng.standard_normal((n_levels, n_items, D)) * gsd for g, (_, n_levels) in groups.items()
    }

    # who rates what, and the ratings
    r_idx, i_idx = assign_items(n, P, K, int(items_per_rater), int(responses_per_visit), rng)
    item_part = v if item_fixed is None else v + np.asarray(item_fixed, dtype=float)
    eta = fixed[r_idx] + u[r_idx] + item_part[i_idx]  # (pairs, D)
    for g, dev in w.items():
        eta += dev[np.asarray(groups[g][0])[r_idx], i_idx]
    if loadings is not None and features is not None:
        eta += np.einsum("pkd,pk->pd", loadings[r_idx], np.asarray(features)[i_idx])
    if family == "gaussian":
        y = draw_ratings(eta, rng, family="gaussian", residual_sd=residual_sd)
    else:
        cut = np.asarray(cutpoints, dtype=float)
        y = draw_ratings(eta, rng, cutpoints=cut.reshape(-1, cut.shape[-1]), minimum=minimum)
    return LatentRatings(
        rater=r_idx,
        item=i_idx,
        rating=y,
        rater_effect=u,
        item_trait=z,
        item_effect=v,
        group_item=w,
        rater_ids=entity_ids("r", n),
        item_ids=entity_ids("i", n_items),
        prompt_ids=entity_ids("p", P),
    )
