"""The PyMC model behind :func:`~pluralign.models.fit_bayes`, its samplers and its diagnostics.

Model (one rated dimension, rater ``r``, item ``i``, rating ``y``)::

    λ_r  = x_r' β_r + σ_rater · z_r               # rater-level columns: R × p_r
    η_ri = λ_r + v_ri' β_v + σ_item · z_i (+ σ_gi · w[g(r), i])
    ordinal:    P(y ≤ k) = logistic(c_k − η)       # K−1 ordered cutpoints, no intercept
    bernoulli:  P(y = 1) = logistic(α + η)
    gaussian:   y ~ Normal(α + η, σ_residual)

Random effects are non-centred and indexed by integer codes (never a dense indicator matrix).
Item effects ``z_item`` (and each group's item deviations ``w[g, ·]``) are zero-sum
(``pm.ZeroSumNormal``): the mean item effect is otherwise confounded with the cutpoints (or the
intercept), and that ridge is what makes a naive fit mix badly. The constraint only moves the
sample mean of the item effects, O(σ_item/√n_items), into the cutpoints. The columns of the
fixed-effect design that are constant within each rater (demographics) enter once per rater
(``x_r' β_r``, R × p_r) and are gathered per rating together with the rater effect; the columns
that vary within a rater (item covariates such as ``source_model`` or ``length`` and their
interactions with demographics) enter per rating (``v_ri' β_v``, n × p_v).

The cumulative-logit log-likelihood is written out instead of ``pm.OrderedLogistic`` (which
builds an n × K probability matrix)::

    log P(y = k | η) = log σ(c_k − η) + log σ(η − c_{k−1}) + log(1 − exp(c_{k−1} − c_k))

where the last term depends on the cutpoints only and is summed once per category with the
category counts (a sufficient statistic); ``c_0 = −∞`` and ``c_K = +∞`` are replaced by ±50.

Priors (weakly informative; logit scale for ordinal and bernoulli), the defaults of
:class:`Priors`:

* ``β ~ Normal(0, 1)``: an odds ratio beyond e² ≈ 7.4 between demographic groups is unlikely;
* cutpoints ``c ~ Normal(0, 3)``, ordered (initialised at the empirical cumulative logits);
  bernoulli intercept ``α ~ Normal(0, 2.5)``;
* ``σ_rater, σ_item ~ HalfNormal(1)``, group-specific item deviations ``σ_gi ~ HalfNormal(0.5)``;
* gaussian: everything scaled by the rating SD ``s_y``: ``α ~ Normal(ȳ, 2.5 s_y)``,
  ``β ~ Normal(0, s_y)``, ``σ_* ~ HalfNormal(s_y)``.

After sampling, the same likelihood is evaluated in NumPy for every rating and draw
(:func:`attach_predictive`): the pointwise log-likelihood (``log_likelihood`` group, for
``arviz.loo``) and one simulated rating per draw (``posterior_predictive`` group).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd

from pluralign._compat import require
from pluralign._errors import ConvergenceWarning
from pluralign._settings import options

#: Stand-in for ±∞ cutpoints in the ordinal log-likelihood (logistic(50) = 1 − 2e-22).
_BIG = 50.0

#: Thresholds of the convergence checks (Vehtari et al. 2021, "Rank-normalization, folding,
#: and localization: an improved R-hat").
RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100
BFMI_MIN = 0.3

#: Parameters reported in summaries and checked by the diagnostics, in this order.
POPULATION_VARS = (
    "beta",
    "cutpoints",
    "intercept",
    "sigma_rater",
    "sigma_item",
    "sigma_group_item",
    "sigma_residual",
)
RANDOM_VARS = ("z_rater", "z_item", "z_group_item")


@dataclass(frozen=True)
class ModelData:
    """Arrays of one dimension, coded for the sampler.

    ``coef_names`` names the fixed-effect coefficients (the design's columns without the
    intercept), in the order of ``beta``. ``X_rater`` holds, for each rater, the columns that are
    constant within raters (R × p_r); ``X_obs`` the other columns, per rating (n × p_v: item
    covariates and their interactions), and ``obs_cols`` their positions in ``coef_names``
    (``X_rater`` holds the remaining positions, in order). ``y`` is the category code ``0..K-1``
    (ordinal, bernoulli) or the rating (gaussian); ``group_codes`` is the code of each rater's
    group for group-specific item deviations.
    """

    family: str
    y: np.ndarray
    rater_codes: np.ndarray
    item_codes: np.ndarray
    X_rater: np.ndarray
    coef_names: list[str]
    n_raters: int
    n_items: int
    rater_ids: np.ndarray | None = None
    item_ids: np.ndarray | None = None
    n_categories: int = 0
    group_codes: np.ndarray | None = None
    group_names: list[str] | None = None
    X_obs: np.ndarray | None = None
    obs_cols: np.ndarray | None = None

    @property
    def n_coef(self) -> int:
        """Number of fixed-effect coefficients (both parts)."""
        return self.X_rater.shape[1] + (0 if self.X_obs is None else self.X_obs.shape[1])

    @property
    def rater_cols(self) -> np.ndarray:
        """Positions in ``coef_names`` of the columns of ``X_rater``."""
        obs = np.array([], dtype=np.int64) if self.obs_cols is None else self.obs_cols
        return np.setdiff1d(np.arange(self.n_coef), obs)

    def design_matrix(self) -> np.ndarray:
        """The fixed-effect design per rating (n × p, columns in ``coef_names`` order)."""
        X = np.empty((len(self.y), self.n_coef))
        X[:, self.rater_cols] = self.X_rater[self.rater_codes]
        if self.X_obs is not None:
            X[:, self.obs_cols] = self.X_obs
        return X


@dataclass(frozen=True)
class Priors:
    """Prior scales of :func:`~pluralign.models.fit_bayes` (the defaults are weakly informative).

    Every field is the SD of a normal prior or the scale of a half-normal prior. For the ordinal
    and bernoulli families they are on the logit scale; for the gaussian family they are
    multiplied by the SD of the ratings (and the intercept prior is centred on their mean)
    unless ``scale_gaussian=False``, in which case they are in rating points.

    Attributes
    ----------
    beta_sd : float, default 1.0
        ``β ~ Normal(0, beta_sd)``: demographic effects (log cumulative odds ratios).
    cutpoint_sd : float, default 3.0
        Ordered cutpoints ``c ~ Normal(0, cutpoint_sd)`` (ordinal).
    intercept_sd : float, default 2.5
        Intercept ``α ~ Normal(0, intercept_sd)`` (bernoulli) or ``Normal(ȳ, intercept_sd)``
        (gaussian).
    sigma_rater, sigma_item : float, default 1.0
        ``σ_rater ~ HalfNormal(sigma_rater)``, ``σ_item ~ HalfNormal(sigma_item)``.
    sigma_group_item : float, default 0.5
        ``σ_group_item ~ HalfNormal(sigma_group_item)`` (with ``group_item=``).
    sigma_residual : float, default 1.0
        ``σ_residual ~ HalfNormal(sigma_residual)`` (gaussian).
    scale_gaussian : bool, default True
        Gaussian family: multiply every scale by the SD of the ratings.

    Examples
    --------
    >>> Priors().beta_sd
    1.0
    >>> Priors(beta_sd=0.1).scaled(2.0).beta_sd
    0.2
    """

    beta_sd: float = 1.0
    cutpoint_sd: float = 3.0
    intercept_sd: float = 2.5
    sigma_rater: float = 1.0
    sigma_item: float = 1.0
    sigma_group_item: float = 0.5
    sigma_residual: float = 1.0
    scale_gaussian: bool = True

    def __post_init__(self) -> None:
        for name in self.scales():
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not ok or not math.isfinite(value) or value <= 0:
                raise ValueError(
                    f"Priors.{name} must be a positive finite number (a prior SD or scale), "
                    f"got {value!r}"
                )
            object.__setattr__(self, name, float(value))

    @classmethod
    def scales(cls) -> tuple[str, ...]:
        """Names of the prior scales (every field but ``scale_gaussian``)."""
        return tuple(f.name for f in fields(cls) if f.name != "scale_gaussian")

    def scaled(self, factor: float, which: tuple[str, ...] | None = None) -> Priors:
        """These priors with the scales ``which`` (default: all) multiplied by ``factor``."""
        which = self.scales() if which is None else tuple(which)
        unknown = sorted(set(which) - set(self.scales()))
        if unknown:
            raise ValueError(f"unknown prior scale(s) {unknown}; known: {list(self.scales())}")
        return replace(self, **{n: getattr(self, n) * factor for n in which})


def _initial_cutpoints(y: np.ndarray, k: int) -> np.ndarray:
    counts = np.bincount(y, minlength=k) + 0.5
    cum = np.cumsum(counts)[:-1] / counts.sum()
    return np.log(cum / (1 - cum))


def initial_values(md: ModelData) -> dict[str, np.ndarray]:
    """Starting values: cutpoints (or intercept) at the empirical cumulative logits."""
    if md.family == "ordinal":
        return {"cutpoints": _initial_cutpoints(md.y.astype(np.int64), md.n_categories)}
    if md.family == "bernoulli":
        return {"intercept": -_initial_cutpoints(md.y.astype(np.int64), 2)[0]}
    return {"intercept": np.asarray(float(np.mean(md.y)))}


def build_model(md: ModelData, priors: Priors | None = None):
    """The PyMC model of one dimension (see the module docstring) with ``priors`` (default
    :class:`Priors`)."""
    pr = Priors() if priors is None else priors
    pm = require("pymc", "Bayesian models")
    pt = require("pytensor.tensor", "Bayesian models")

    coords = {
        "coef": md.coef_names,
        "rater": np.arange(md.n_raters) if md.rater_ids is None else md.rater_ids.astype(str),
        "item": np.arange(md.n_items) if md.item_ids is None else md.item_ids.astype(str),
    }
    if md.family == "ordinal":
        coords["cut"] = np.arange(md.n_categories - 1)
    if md.group_codes is not None:
        coords["group"] = md.group_names
    scale = 1.0
    if md.family == "gaussian" and pr.scale_gaussian:
        scale = float(np.std(md.y)) or 1.0
    with pm.Model(coords=coords) as model:
        lam = pt.zeros(md.n_raters)
        beta = None
        if md.n_coef:
            beta = pm.Normal("beta", 0.0, pr.beta_sd * scale, dims="coef")
        if md.X_rater.shape[1]:
            beta_r = beta if md.X_obs is None else beta[md.rater_cols]
            lam = pt.dot(md.X_rater, beta_r)
        sigma_rater = pm.HalfNormal("sigma_rater", pr.sigma_rater * scale)
        z_rater = pm.Normal("z_rater", 0.0, 1.0, dims="rater")
        lam = lam + sigma_rater * z_rater
        sigma_item = pm.HalfNormal("sigma_item", pr.sigma_item * scale)
        z_item = pm.ZeroSumNormal("z_item", sigma=1.0, dims="item")
        eta = lam[md.rater_codes] + sigma_item * z_item[md.item_codes]
        if md.X_obs is not None:
            eta = eta + pt.dot(md.X_obs, beta[md.obs_cols])
        if md.group_codes is not None:
            sigma_gi = pm.HalfNormal("sigma_group_item", pr.sigma_group_item * scale)
            z_gi = pm.ZeroSumNormal("z_group_item", sigma=1.0, dims=("group", "item"))
            flat = md.group_codes[md.rater_codes] * md.n_items + md.item_codes
            eta = eta + sigma_gi * z_gi.flatten()[flat]

        if md.family == "gaussian":
            intercept = pm.Normal("intercept", float(np.mean(md.y)), pr.intercept_sd * scale)
            sigma_res = pm.HalfNormal("sigma_residual", pr.sigma_residual * scale)
            pm.Normal("y", intercept + eta, sigma_res, observed=md.y)
            return model
        y = md.y.astype(np.int64)
        k = md.n_categories
        if md.family == "ordinal":
            cut = pm.Normal(
                "cutpoints",
                0.0,
                pr.cutpoint_sd,
                dims="cut",
                transform=pm.distributions.transforms.ordered,
            )
        else:
            intercept = pm.Normal("intercept", 0.0, pr.intercept_sd)
            cut = -intercept[None]
        upper = pt.concatenate([cut, [_BIG]])[y]
        lower = pt.concatenate([[-_BIG], cut])[y]
        counts = np.bincount(y, minlength=k)
        loglik = -pt.sum(pt.softplus(eta - upper)) - pt.sum(pt.softplus(lower - eta))
        if k > 2:
            loglik = loglik + pt.sum(counts[1:-1] * pt.log1mexp(cut[:-1] - cut[1:]))
        pm.Potential("loglik", loglik)
    return model


# ------------------------------------------------------------------ pointwise likelihood
#: Most (draw, rating) values computed at once in :func:`attach_predictive` (bounds memory:
#: 2**22 float64 values = 32 MB per temporary array).
BLOCK_VALUES = 2**22


@dataclass(frozen=True)
class ParameterDraws:
    """The draws that the likelihood needs, chains stacked, **draws last** (S columns), float32.

    Draws last makes gathering the effects of a block of ratings a copy of whole rows; single
    precision halves the memory traffic and runs the exponentials vectorised (the results are
    stored as float32 anyway: ~1e-6 absolute error on log-likelihoods of order 1).
    ``rater`` is ``x_r' β + σ_rater z_r`` (R × S), ``item`` ``σ_item z_i`` (I × S),
    ``group_item`` ``σ_gi w[g, i]`` flattened to row ``g · I + i`` (G·I × S) or None,
    ``cutpoints`` (K−1 × S; ``−α`` for bernoulli), ``intercept`` and ``sigma_residual`` (S,)
    for the gaussian family; ``beta_obs`` the coefficients of ``ModelData.X_obs`` (p_v × S) or
    None.
    """

    rater: np.ndarray
    item: np.ndarray
    group_item: np.ndarray | None
    cutpoints: np.ndarray | None
    intercept: np.ndarray | None
    sigma_residual: np.ndarray | None
    beta_obs: np.ndarray | None = None

    @property
    def n(self) -> int:
        return self.rater.shape[1]


def parameter_draws(ds, md: ModelData) -> ParameterDraws:
    """Pull the draws of a posterior (or prior) ``xarray.Dataset`` of :func:`build_model`."""

    def get(name: str) -> np.ndarray | None:
        if name not in ds:
            return None
        arr = np.asarray(ds[name].values, dtype=float)
        return arr.reshape((-1, *arr.shape[2:]))

    s_r = get("sigma_rater")
    rater = s_r[:, None] * get("z_rater")
    beta = get("beta")
    if beta is not None and md.X_rater.shape[1]:
        rater = rater + beta[:, md.rater_cols] @ md.X_rater.T
    beta_obs = None
    if beta is not None and md.X_obs is not None:
        beta_obs = beta[:, md.obs_cols].T
    item = get("sigma_item")[:, None] * get("z_item")
    z_gi = get("z_group_item")
    group_item = None
    if z_gi is not None:
        group_item = (get("sigma_group_item")[:, None, None] * z_gi).reshape(len(s_r), -1)
        group_item = group_item.T
    cut = get("cutpoints")
    intercept = get("intercept")
    if md.family == "bernoulli":
        cut = -intercept[:, None]

    def rows(arr: np.ndarray | None) -> np.ndarray | None:
        return None if arr is None else np.ascontiguousarray(arr.T, dtype=np.float32)

    def vec(arr: np.ndarray | None) -> np.ndarray | None:
        return None if arr is None else arr.astype(np.float32)

    return ParameterDraws(
        rows(rater),
        rows(item),
        None if group_item is None else group_item.astype(np.float32),
        rows(cut),
        vec(intercept),
        vec(get("sigma_residual")),
        None if beta_obs is None else beta_obs.astype(np.float32),
    )


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    """``log σ(x) = min(x, 0) − log1p(exp(−|x|))``, stable for any ``x``.

    Examples
    --------
    >>> log_sigmoid(np.array([-800.0, 0.0, 800.0])).tolist()
    [-800.0, -0.6931471805599453, 0.0]
    """
    out = np.minimum(x, 0)
    out -= np.log1p(np.exp(-np.abs(x)))
    return out


def linear_predictor(d: ParameterDraws, md: ModelData, rows: slice | np.ndarray) -> np.ndarray:
    """``η`` of the ratings ``rows`` under every draw: (n × S)."""
    r = md.rater_codes[rows]
    i = md.item_codes[rows]
    eta = d.rater[r] + d.item[i]
    if d.beta_obs is not None:
        eta += md.X_obs[rows].astype(np.float32) @ d.beta_obs
    if d.group_item is not None:
        eta += d.group_item[md.group_codes[r] * md.n_items + i]
    return eta


def pointwise_log_likelihood(
    d: ParameterDraws, md: ModelData, rows: slice | np.ndarray
) -> np.ndarray:
    """Log-likelihood of each rating in ``rows`` under each draw: (n × S), float32.

    Ordinal and bernoulli: ``log[σ(c_k − η) − σ(c_{k−1} − η)]``, evaluated stably as
    ``log σ(c_k − η) + log σ(η − c_{k−1}) + log(1 − exp(c_{k−1} − c_k))`` (the first term drops
    for the top category, the second for the bottom one, the third for both); gaussian: the
    normal log density.
    """
    eta = linear_predictor(d, md, rows)
    y = md.y[rows]
    if md.family == "gaussian":
        sd = d.sigma_residual[None, :]
        z = (y.astype(np.float32)[:, None] - d.intercept[None, :] - eta) / sd
        return -0.5 * z**2 - np.log(sd) - np.float32(0.5 * math.log(2 * math.pi))
    y = y.astype(np.int64)
    cut = d.cutpoints
    top = cut.shape[0]
    out = np.empty_like(eta)
    for k in range(top + 1):
        sel = np.flatnonzero(y == k)
        if not sel.size:
            continue
        e = eta[sel]
        if k == 0:
            out[sel] = log_sigmoid(cut[0] - e)
        elif k == top:
            out[sel] = log_sigmoid(e - cut[top - 1])
        else:
            gap = np.log(-np.expm1(cut[k - 1] - cut[k]))
            out[sel] = log_sigmoid(cut[k] - e) + log_sigmoid(e - cut[k - 1]) + gap
    return out


def predictive_draws(
    d: ParameterDraws, md: ModelData, rows: slice | np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One simulated rating per draw for each rating in ``rows``: (n × S).

    Category codes ``0..K−1`` (ordinal, bernoulli: the number of cutpoints below
    ``η + logistic noise``) or ratings (gaussian).
    """
    eta = linear_predictor(d, md, rows)
    if md.family == "gaussian":
        noise = rng.standard_normal(eta.shape, dtype=np.float32)
        return d.intercept[None, :] + eta + d.sigma_residual[None, :] * noise
    u = np.maximum(rng.random(eta.shape, dtype=np.float32), np.float32(1e-30))
    eta += np.log(u) - np.log1p(-u)  # standard logistic noise (inverse CDF)
    codes = np.zeros(eta.shape, dtype=np.int8)
    for k in range(d.cutpoints.shape[0]):
        codes += eta > d.cutpoints[k]
    return codes


def _rating_dtype(levels: np.ndarray):
    """Smallest integer type holding the rating values, or float32 when they are not integers."""
    levels = np.asarray(levels, dtype=float)
    if levels.size and np.allclose(levels, np.round(levels)):
        for dtype in (np.int8, np.int16, np.int32):
            info = np.iinfo(dtype)
            if levels.min() >= info.min and levels.max() <= info.max:
                return dtype
    return np.float32


def attach_predictive(
    idata,
    md: ModelData,
    levels: np.ndarray,
    frame: pd.DataFrame | None = None,
    *,
    log_likelihood: bool = True,
    predictive: bool = True,
    group: str = "posterior",
    seed: int | None = None,
):
    """Add pointwise log-likelihood and predictive ratings to ``idata`` (in place; returned).

    Parameters
    ----------
    idata : arviz.InferenceData
        Holds the ``group`` (``"posterior"`` or ``"prior"``) of :func:`build_model`.
    md : ModelData
    levels : ndarray
        Rating value of each category (ordinal, bernoulli); ignored for gaussian.
    frame : DataFrame, optional
        Rater demographics, one row per rating in model order: stored as coordinates of the
        ``obs`` dimension of ``observed_data`` (what :func:`pluralign.plots.ppc` groups by).
    log_likelihood : bool
        Add the ``log_likelihood`` group (posterior only): variable ``rating`` (chain, draw,
        obs), float32.
    predictive : bool
        Add ``posterior_predictive`` (or ``prior_predictive``): variable ``rating`` in rating
        units, one simulated rating per draw and observed rating.
    seed : int, optional
        Seed of the simulated ratings (``options.seed`` when None).
    """
    xr = require("xarray")
    ds = getattr(idata, group)
    n_chain, n_draw = ds.sizes["chain"], ds.sizes["draw"]
    chain_draw = {"chain": ds["chain"].values, "draw": ds["draw"].values}
    n = len(md.y)
    gaussian = md.family == "gaussian"
    levels = np.asarray(levels, dtype=float)
    dtype = np.float32 if gaussian else _rating_dtype(levels)
    obs_coords = {
        "obs": np.arange(n),
        "rater": ("obs", np.asarray(md.rater_ids)[md.rater_codes].astype(str)),
        "item": ("obs", np.asarray(md.item_ids)[md.item_codes].astype(str)),
    }
    add = {}
    if frame is not None or not hasattr(idata, "observed_data"):
        observed = md.y.astype(float) if gaussian else levels[md.y.astype(np.int64)]
        coords = dict(obs_coords)
        if frame is not None:
            if len(frame) != n:
                raise ValueError(f"frame has {len(frame)} rows for {n} ratings")
            for col in frame.columns:
                if col not in coords:
                    coords[col] = ("obs", frame[col].to_numpy())
        add["observed_data"] = xr.Dataset(
            {"rating": ("obs", observed.astype(dtype))}, coords=coords
        )
    # filled ratings-first (n × S, contiguous blocks of rows), exposed as (chain, draw, obs) views
    want_ll = log_likelihood and group == "posterior"
    d = parameter_draws(ds, md) if want_ll or predictive else None
    ll = np.empty((n, d.n), dtype=np.float32) if want_ll else None
    pp = np.empty((n, d.n), dtype=dtype) if predictive else None
    rng = np.random.default_rng(options.seed if seed is None else seed)
    step = max(1, BLOCK_VALUES // (d.n if d is not None else 1))
    for start in range(0, n if d is not None else 0, step):
        rows = slice(start, min(n, start + step))
        if ll is not None:
            ll[rows] = pointwise_log_likelihood(d, md, rows)
        if pp is not None:
            sim = predictive_draws(d, md, rows, rng)
            pp[rows] = sim if gaussian else levels[sim]
    dims = ("chain", "draw", "obs")
    coords = {**chain_draw, **obs_coords}
    for name, arr in (("log_likelihood", ll), (f"{group}_predictive", pp)):
        if arr is not None:
            view = arr.reshape(n, n_chain, n_draw).transpose(1, 2, 0)
            add[name] = xr.Dataset({"rating": (dims, view)}, coords=coords)
    for name in add:
        if hasattr(idata, name):
            del idata[name]
    if add:
        idata.add_groups(add)
    return idata


def sample(
    model,
    *,
    sampler: str,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    progressbar: bool,
    low_rank: bool = True,
    initvals: dict | None = None,
    backend: str = "jax",
):
    """Run a NUTS sampler on ``model`` and return an ``InferenceData`` (posterior + sample stats)."""
    cores = max(1, min(chains, os.cpu_count() or 1))
    if sampler == "nutpie":
        nutpie = require("nutpie", "the nutpie sampler")
        # JAX (default) compiles in ~2 s; numba compiles in ~10-20 s but then runs the chains
        # in parallel outside the GIL (cheaper per draw on large data).
        if backend not in ("jax", "numba"):
            raise ValueError(f"backend must be 'jax' or 'numba', got {backend!r}")
        extra = {"gradient_backend": "jax"} if backend == "jax" else {}
        compiled = nutpie.compile_pymc_model(
            model, backend=backend, initial_points=initvals, **extra
        )
        return nutpie.sample(
            compiled,
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores,
            seed=seed,
            progress_bar=progressbar,
            low_rank_modified_mass_matrix=low_rank,
            save_warmup=False,
        )
    pm = require("pymc", "Bayesian models")
    if sampler == "numpyro":
        require("numpyro", "the numpyro sampler")
        jax = require("jax")
        from pymc.sampling.jax import sample_numpyro_nuts

        method = "parallel" if jax.local_device_count() >= chains else "sequential"
        with model:
            return sample_numpyro_nuts(
                draws=draws,
                tune=tune,
                chains=chains,
                random_seed=seed,
                progressbar=progressbar,
                chain_method=method,
                initvals=initvals,
                idata_kwargs={"log_likelihood": False},
            )
    if sampler == "pymc":
        with model:
            return pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                cores=cores,
                random_seed=seed,
                progressbar=progressbar,
                compute_convergence_checks=False,
                initvals=initvals,
            )
    raise ValueError(f"sampler must be 'nutpie', 'numpyro' or 'pymc', got {sampler!r}")


def _worst(values, var: str, larger_is_worse: bool) -> tuple[str, float]:
    """The worst element of a diagnostic (an xarray DataArray), named by its coordinates."""
    arr = np.asarray(values.values)
    if arr.ndim == 0:
        return var, float(arr)
    flat = arr.ravel()
    finite = np.where(np.isfinite(flat), flat, -np.inf if larger_is_worse else np.inf)
    j = int(np.argmax(finite) if larger_is_worse else np.argmin(finite))
    idx = np.unravel_index(j, arr.shape)
    labels = []
    for dim, i in zip(values.dims, idx, strict=True):
        coord = values.coords[dim].values if dim in values.coords else None
        labels.append(str(coord[i]) if coord is not None else str(i))
    return f"{var}[{','.join(labels)}]", float(flat[j])


def diagnose(idata, dimension: str, chains: int) -> pd.DataFrame:
    """Convergence checks of one fit: worst R-hat, bulk and tail ESS per parameter, divergences, BFMI.

    Returns rows ``dimension, check, parameter, value, ok, note`` (DIAGNOSTIC_COLUMNS).
    """
    az = require("arviz")
    post = idata.posterior
    names = [v for v in (*POPULATION_VARS, *RANDOM_VARS) if v in post]
    n_chains = post.sizes["chain"]
    ess_min = ESS_PER_CHAIN_MIN * n_chains
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rhat = az.rhat(post, var_names=names)
        bulk = az.ess(post, var_names=names, method="bulk")
        tail = az.ess(post, var_names=names, method="tail")
    for v in names:
        par, val = _worst(rhat[v], v, True)
        if n_chains < 2:  # between-chain variance needs two chains: not computable, not OK
            par, val, ok = v, float("nan"), False
            note = "not computable from one chain: run chains >= 2 to check convergence"
        else:
            ok = bool(np.isfinite(val) and val <= RHAT_MAX)
            note = f"rank-normalised split R-hat <= {RHAT_MAX}"
        rows.append((dimension, "r_hat", par, val, ok, note))
        for check, table in (("ess_bulk", bulk), ("ess_tail", tail)):
            par, val = _worst(table[v], v, False)
            rows.append(
                (
                    dimension,
                    check,
                    par,
                    val,
                    bool(val >= ess_min),
                    f">= {ESS_PER_CHAIN_MIN} per chain ({ess_min})",
                )
            )
    stats = getattr(idata, "sample_stats", None)
    if stats is not None and "diverging" in stats:
        n_div = int(np.asarray(stats["diverging"]).sum())
        rows.append(
            (
                dimension,
                "divergences",
                "",
                float(n_div),
                n_div == 0,
                "divergent transitions after warm-up",
            )
        )
    if stats is not None and "energy" in stats:
        bfmi = np.atleast_1d(az.bfmi(idata))
        j = int(np.argmin(bfmi))
        rows.append(
            (
                dimension,
                "bfmi",
                f"chain {j}",
                float(bfmi[j]),
                bool(bfmi[j] >= BFMI_MIN),
                f"energy Bayesian fraction of missing information >= {BFMI_MIN}",
            )
        )
    return pd.DataFrame(rows, columns=["dimension", "check", "parameter", "value", "ok", "note"])


def warn_if_failed(diag: pd.DataFrame, stacklevel: int = 3) -> None:
    """Emit one ConvergenceWarning naming every failed check and parameter."""
    failed = diag[~diag["ok"]]
    if failed.empty:
        return
    parts = [
        f"{r.dimension}: {r.check} {r.parameter or ''} = {r.value:.4g}".replace("  ", " ")
        for r in failed.itertuples()
    ]
    advice = []
    if failed["check"].astype(str).str.startswith("laplace_").any():
        advice.append(
            "the Laplace approximation's own checks failed: refit with method='nuts' (the exact "
            "posterior) before interpreting the results"
        )
    if (~failed["check"].astype(str).str.startswith("laplace_")).any():
        advice.append("run longer (more tune/draws or chains) before interpreting the results")
    text = "; ".join(advice)
    warnings.warn(
        "posterior sampling did not pass its checks ("
        + "; ".join(parts)
        + "). "
        + text[0].upper()
        + text[1:]
        + "; see result.diagnostics().",
        ConvergenceWarning,
        stacklevel=stacklevel,
    )
