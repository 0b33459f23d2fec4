"""The PyMC model behind :func:`~pluralign.models.fit_bayes`, its samplers and its diagnostics.

Model (one rated dimension, rater ``r``, item ``i``, rating ``y``)::

    λ_r  = x_r' β + σ_rater · z_r                 # demographics are rater-level: X is R × p
    η_ri = λ_r + σ_item · z_i (+ σ_gi · w[g(r), i])
    ordinal:    P(y ≤ k) = logistic(c_k − η)       # K−1 ordered cutpoints, no intercept
    bernoulli:  P(y = 1) = logistic(α + η)
    gaussian:   y ~ Normal(α + η, σ_residual)

Random effects are non-centred and indexed by integer codes (never a dense indicator matrix).
Item effects ``z_item`` (and each group's item deviations ``w[g, ·]``) are zero-sum
(``pm.ZeroSumNormal``): the mean item effect is otherwise confounded with the cutpoints (or the
intercept), and that ridge is what makes a naive fit mix badly. The constraint only moves the
sample mean of the item effects, O(σ_item/√n_items), into the cutpoints. The fixed effects enter
once per rater (``x_r' β``, R × p) and are gathered per rating together with the rater effect.

The cumulative-logit log-likelihood is written out instead of ``pm.OrderedLogistic`` (which
builds an n × K probability matrix)::

    log P(y = k | η) = log σ(c_k − η) + log σ(η − c_{k−1}) + log(1 − exp(c_{k−1} − c_k))

where the last term depends on the cutpoints only and is summed once per category with the
category counts (a sufficient statistic); ``c_0 = −∞`` and ``c_K = +∞`` are replaced by ±50.

Priors (weakly informative; logit scale for ordinal and bernoulli):

* ``β ~ Normal(0, 1)``: an odds ratio beyond e² ≈ 7.4 between demographic groups is unlikely;
* cutpoints ``c ~ Normal(0, 3)``, ordered (initialised at the empirical cumulative logits);
  bernoulli intercept ``α ~ Normal(0, 2.5)``;
* ``σ_rater, σ_item ~ HalfNormal(1)``, group-specific item deviations ``σ_gi ~ HalfNormal(0.5)``;
* gaussian: everything scaled by the rating SD ``s_y``: ``α ~ Normal(ȳ, 2.5 s_y)``,
  ``β ~ Normal(0, s_y)``, ``σ_* ~ HalfNormal(s_y)``.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pluralign._compat import require
from pluralign._errors import ConvergenceWarning

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

    ``X_rater`` holds the fixed-effect design of each rater without the intercept column;
    ``y`` is the category code ``0..K-1`` (ordinal, bernoulli) or the rating (gaussian);
    ``group_codes`` is the code of each rater's group for group-specific item deviations.
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


def build_model(md: ModelData):
    """The PyMC model of one dimension (see the module docstring)."""
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
    if md.family == "gaussian":
        scale = float(np.std(md.y)) or 1.0
    with pm.Model(coords=coords) as model:
        p = md.X_rater.shape[1]
        if p:
            beta = pm.Normal("beta", 0.0, scale, dims="coef")
            lam = pt.dot(md.X_rater, beta)
        else:
            lam = pt.zeros(md.n_raters)
        sigma_rater = pm.HalfNormal("sigma_rater", scale)
        z_rater = pm.Normal("z_rater", 0.0, 1.0, dims="rater")
        lam = lam + sigma_rater * z_rater
        sigma_item = pm.HalfNormal("sigma_item", scale)
        z_item = pm.ZeroSumNormal("z_item", sigma=1.0, dims="item")
        eta = lam[md.rater_codes] + sigma_item * z_item[md.item_codes]
        if md.group_codes is not None:
            sigma_gi = pm.HalfNormal("sigma_group_item", 0.5 * scale)
            z_gi = pm.ZeroSumNormal("z_group_item", sigma=1.0, dims=("group", "item"))
            flat = md.group_codes[md.rater_codes] * md.n_items + md.item_codes
            eta = eta + sigma_gi * z_gi.flatten()[flat]

        if md.family == "gaussian":
            intercept = pm.Normal("intercept", float(np.mean(md.y)), 2.5 * scale)
            sigma_res = pm.HalfNormal("sigma_residual", scale)
            pm.Normal("y", intercept + eta, sigma_res, observed=md.y)
            return model
        y = md.y.astype(np.int64)
        k = md.n_categories
        if md.family == "ordinal":
            cut = pm.Normal(
                "cutpoints",
                0.0,
                3.0,
                dims="cut",
                transform=pm.distributions.transforms.ordered,
            )
        else:
            intercept = pm.Normal("intercept", 0.0, 2.5)
            cut = -intercept[None]
        upper = pt.concatenate([cut, [_BIG]])[y]
        lower = pt.concatenate([[-_BIG], cut])[y]
        counts = np.bincount(y, minlength=k)
        loglik = -pt.sum(pt.softplus(eta - upper)) - pt.sum(pt.softplus(lower - eta))
        if k > 2:
            loglik = loglik + pt.sum(counts[1:-1] * pt.log1mexp(cut[:-1] - cut[1:]))
        pm.Potential("loglik", loglik)
    return model


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
    warnings.warn(
        "posterior sampling did not pass its checks (" + "; ".join(parts) + "). Run longer "
        "(more tune/draws or chains) before interpreting the results; see result.diagnostics().",
        ConvergenceWarning,
        stacklevel=stacklevel,
    )
