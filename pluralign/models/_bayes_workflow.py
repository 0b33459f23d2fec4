"""The Bayesian workflow around :func:`~pluralign.models.fit_bayes`: prior predictive draws,
prior sensitivity and model comparison by leave-one-out cross-validation (PSIS-LOO).

Every fit carries the pointwise log-likelihood of its ratings (``idata.log_likelihood``) and
simulated ratings (``idata.posterior_predictive``), so ArviZ's own tools (``arviz.loo``,
``arviz.compare``, ``arviz.plot_ppc``) work on it; the functions here add what they lack for
rating studies: one call per dimension, checks that compared fits saw the same ratings, and a
warning naming the fits whose LOO estimate is unreliable.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from pluralign._compat import require
from pluralign._errors import PluralignWarning
from pluralign._settings import options
from pluralign.data import Study
from pluralign.models._bayes import (
    FAMILIES,
    BayesResult,
    DimensionFit,
    _dimension_model,
    _formula_with,
    _posterior,
    diagnose_fit,
)
from pluralign.models._bayes_model import Priors, attach_predictive, build_model, warn_if_failed
from pluralign.models._design import one_dimension

#: Pareto k above which the PSIS-LOO estimate of a rating is unreliable (Vehtari et al. 2017).
PARETO_K_MAX = 0.7

#: Columns of :func:`prior_sensitivity`, in order.
SENSITIVITY_COLUMNS = (
    "dimension",
    "term",
    "level",
    "scale",
    "estimate",
    "sd",
    "ci_low",
    "ci_high",
    "estimate_base",
    "sd_base",
    "shift_sd",
)


def _dimension_fit(fit: BayesResult, dimension: str | None, who: str) -> DimensionFit:
    if not isinstance(fit, BayesResult):
        raise TypeError(f"{who}: expected a BayesResult from fit_bayes, got {type(fit).__name__}")
    try:
        return fit.dimension_fit(dimension)
    except (KeyError, ValueError) as err:
        raise type(err)(f"{who}: {err.args[0]}") from None


# ------------------------------------------------------------------------------ comparison
def compare_bayes(fits: Mapping[str, BayesResult], *, dimension: str | None = None) -> pd.DataFrame:
    """Compare Bayesian fits of the same ratings by PSIS-LOO expected log predictive density.

    Parameters
    ----------
    fits : mapping of str to BayesResult
        Named fits (two or more) of the same ratings, e.g. with and without ``group_item=``;
        each fitted with ``log_likelihood=True`` (the default).
    dimension : str, optional
        The dimension to compare (required when the fits have several).

    Returns
    -------
    DataFrame
        ``arviz.compare``'s table, one row per fit (index ``model``), best first: ``rank``,
        ``elpd_loo``, ``p_loo``, ``elpd_diff`` (to the best), ``weight`` (stacking), ``se``,
        ``dse`` (SE of the difference), ``warning``, ``scale``, and ``n_pareto_k_high``: ratings
        whose Pareto k exceeds :data:`PARETO_K_MAX` (0.7). A difference is clear when
        ``elpd_diff`` is several times ``dse``.

    Warns
    -----
    PluralignWarning
        When a fit has ratings with Pareto k > 0.7 (their LOO estimate is unreliable; with
        few ratings per rater, each rating is influential on its rater's effect).

    See Also
    --------
    arviz.loo, arviz.compare

    References
    ----------
    Vehtari, Gelman and Gabry (2017). Practical Bayesian model evaluation using leave-one-out
    cross-validation and WAIC. *Statistics and Computing* 27, 1413–1432.

    Examples
    --------
    >>> from pluralign.data import simulate_study
    >>> study = simulate_study(n_raters=60, seed=1, dimensions=["toxicity"]).study
    >>> base = fit_bayes(study, "rating ~ gender", progressbar=False)  # doctest: +SKIP
    >>> full = fit_bayes(study, "rating ~ gender", group_item="gender",
    ...                  progressbar=False)  # doctest: +SKIP
    >>> compare_bayes({"base": base, "gender x item": full})  # doctest: +SKIP
    """
    az = require("arviz", "compare_bayes")
    if not isinstance(fits, Mapping) or len(fits) < 2:
        raise ValueError("compare_bayes needs a mapping of two or more named fits")
    loos = {}
    high = {}
    first = None
    kinds = {n: f.family == "gaussian" for n, f in fits.items() if isinstance(f, BayesResult)}
    if len(set(kinds.values())) > 1:
        raise ValueError(
            f"compare_bayes: families { ({n: f.family for n, f in fits.items()}) } mix a density "
            "(gaussian) with category probabilities (ordinal, bernoulli); their log predictive "
            "densities are not on one scale. Compare fits of the same kind."
        )
    for name, fit in fits.items():
        dfit = _dimension_fit(fit, dimension, f"compare_bayes[{name!r}]")
        idata = dfit.idata
        if not hasattr(idata, "log_likelihood"):
            raise ValueError(
                f"compare_bayes: fit {name!r} has no pointwise log-likelihood; refit it with "
                "fit_bayes(..., log_likelihood=True)"
            )
        obs = idata.observed_data
        key = (obs["rating"].values, obs["rater"].values, obs["item"].values)
        if first is None:
            first = (name, key)
        elif not all(
            a.shape == b.shape and np.array_equal(a, b) for a, b in zip(first[1], key, strict=True)
        ):
            raise ValueError(
                f"compare_bayes: fits {first[0]!r} and {name!r} were fitted to different ratings "
                f"({len(first[1][0])} vs {len(key[0])}); LOO compares models of the same data only "
                "(a formula whose variables drop rows with missing values changes the data)"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            loo = az.loo(idata, pointwise=True)
        k = np.asarray(loo.pareto_k)
        high[name] = int(np.sum(k > PARETO_K_MAX))
        loos[name] = loo
    bad = {n: c for n, c in high.items() if c}
    if bad:
        n_obs = len(first[1][0])
        parts = "; ".join(f"{n}: {c} of {n_obs}" for n, c in bad.items())
        warnings.warn(
            f"compare_bayes: ratings with Pareto k > {PARETO_K_MAX} ({parts}); their PSIS-LOO "
            "estimates are unreliable, so read small elpd differences with care (more ratings "
            "per rater, or K-fold cross-validation, give a firmer comparison)",
            PluralignWarning,
            stacklevel=2,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Pareto k: warned above
        warnings.filterwarnings("ignore", message=".*inplace.*")  # arviz on newer pandas
        table = az.compare(loos)
    table["n_pareto_k_high"] = [high[n] for n in table.index]
    table.index.name = "model"
    return table


# ------------------------------------------------------------------------------ priors
def prior_predictive(
    study: Study,
    formula: str = "rating ~ gender",
    dimension: str | None = None,
    *,
    family: str = "ordinal",
    priors: Priors | None = None,
    draws: int = 500,
    seed: int | None = None,
    reference: Mapping[str, str] | None = None,
    scale_numeric: str | Mapping[str, str] = "none",
    interactions: Sequence[str | tuple[str, str]] | None = None,
    group_item: str | None = None,
):
    """Ratings simulated from the priors of a :func:`fit_bayes` model (no fitting).

    Draws the parameters from ``priors`` and one rating per draw for every observed rating
    (same raters, items and demographics), so the implied rating distribution can be checked
    before fitting, e.g. with ``plots.ppc(idata, by="gender", group="prior")``.

    Parameters
    ----------
    study : Study
    formula, family, reference, scale_numeric, interactions, group_item
        As in :func:`fit_bayes`.
    dimension : str, optional
        The dimension (required when the study has several).
    priors : Priors, optional
        Default :class:`Priors`.
    draws : int, default 500
        Prior draws.
    seed : int, optional
        Default ``options.seed``.

    Returns
    -------
    arviz.InferenceData
        Groups ``prior`` (parameters), ``prior_predictive`` (variable ``rating``: chain, draw,
        obs) and ``observed_data`` (the ratings, with the raters' demographics as coordinates).

    Examples
    --------
    >>> from pluralign.data import simulate_study
    >>> study = simulate_study(n_raters=40, seed=1, dimensions=["toxicity"]).study
    >>> idata = prior_predictive(study, "rating ~ gender", draws=100)
    >>> idata.prior_predictive["rating"].shape == (1, 100, len(study.ratings))
    True
    """
    pm = require("pymc", "prior_predictive")
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    if int(draws) != draws or draws < 1:
        raise ValueError(f"draws must be a positive integer, got {draws!r}")
    dimension = one_dimension(study.resolve_dimensions(dimension), "prior_predictive: the study")
    seed = options.seed if seed is None else int(seed)
    full = _formula_with(formula, interactions, group_item)
    design, md, levels, _ = _dimension_model(
        study,
        full,
        dimension,
        family,
        reference=reference,
        scale_numeric=scale_numeric,
        group_item=group_item,
    )
    model = build_model(md, priors)
    forward_log = logging.getLogger("pymc.sampling.forward")  # logs "Sampling: [...]" at INFO
    level = forward_log.level
    forward_log.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            # the likelihood is a Potential, which prior sampling rightly ignores
            warnings.filterwarnings("ignore", message=".*Potential.*", category=UserWarning)
            idata = pm.sample_prior_predictive(
                draws=int(draws),
                model=model,
                random_seed=seed,
                compile_kwargs={"mode": "FAST_COMPILE"},  # a few draws: compiling costs more
            )
    finally:
        forward_log.setLevel(level)
    if "cutpoints" in idata.prior:
        # forward sampling ignores the ordered transform; the ordered prior (a normal density
        # restricted to increasing vectors) is the distribution of the sorted draws
        cut = idata.prior["cutpoints"]
        idata.prior["cutpoints"] = cut.copy(data=np.sort(cut.values, axis=-1))
    return attach_predictive(
        idata,
        md,
        levels,
        design.data.drop(columns=["rating", "dimension"], errors="ignore"),
        log_likelihood=False,
        group="prior",
        seed=seed,
    )


def prior_sensitivity(
    fit: BayesResult,
    scale: Sequence[float] = (0.5, 2.0),
    *,
    which: Sequence[str] | None = None,
    progressbar: bool = False,
) -> pd.DataFrame:
    """Refit with narrower and wider priors and report how each effect moves.

    Each factor in ``scale`` multiplies the prior scales ``which`` (default: all of
    :class:`Priors`) of the fit's priors; the model is refitted with the fit's sampler settings
    and seed, and each fixed effect (latent coefficient) is compared to the original fit.

    Parameters
    ----------
    fit : BayesResult
    scale : sequence of float, default (0.5, 2.0)
        Factors applied to the prior scales.
    which : sequence of str, optional
        Prior scales to change, e.g. ``["beta_sd"]`` (names from ``Priors.scales()``).
    progressbar : bool, default False

    Returns
    -------
    DataFrame
        One row per dimension, effect and factor, with SENSITIVITY_COLUMNS: the refitted
        posterior mean ``estimate``, ``sd`` and HDI (``ci_low``, ``ci_high``; ``options.ci_prob``),
        the original ``estimate_base`` and ``sd_base``, and ``shift_sd = (estimate −
        estimate_base) / sd_base``: a shift well below 1 posterior SD means the prior hardly
        matters.

    Examples
    --------
    >>> from pluralign.data import simulate_study
    >>> study = simulate_study(n_raters=60, seed=1, dimensions=["toxicity"]).study
    >>> fit = fit_bayes(study, "rating ~ gender", progressbar=False)  # doctest: +SKIP
    >>> prior_sensitivity(fit, scale=(0.5, 2.0))  # doctest: +SKIP
    """
    az = require("arviz", "prior_sensitivity")
    if not isinstance(fit, BayesResult):
        raise TypeError(f"prior_sensitivity: expected a BayesResult, got {type(fit).__name__}")
    factors = [float(f) for f in np.atleast_1d(scale)]
    if not factors or any(not np.isfinite(f) or f <= 0 for f in factors):
        raise ValueError(f"scale must hold positive factors, got {scale!r}")
    base_priors = fit.settings.get("priors") or Priors()
    which = None if which is None else tuple(which)
    st = fit.settings
    ci_prob = options.ci_prob
    rows = []
    diags = []
    for j, (dim, dfit) in enumerate(fit.fits.items()):
        entries = [(t, lev, col - 1) for t, e in dfit.design.terms.items() for lev, col in e]
        if not entries:
            continue
        base = _beta_draws(dfit.idata)
        for factor in factors:
            idata, checks = _posterior(
                dfit.data,
                base_priors.scaled(factor, which),
                {**st, "sampler": st.get("sampler", fit.sampler)},
                seed=int(st.get("seed", options.seed)) + j,
                progressbar=progressbar,
            )
            diags.append(
                diagnose_fit(
                    idata, checks, f"{dim} (prior scales ×{factor:g})", int(st.get("chains", 2))
                )
            )
            b = _beta_draws(idata)
            for term, level, c in entries:
                lo, hi = az.hdi(b[:, c], hdi_prob=ci_prob)
                sd0 = float(base[:, c].std(ddof=1))
                rows.append(
                    (
                        dim,
                        term,
                        level,
                        factor,
                        float(b[:, c].mean()),
                        float(b[:, c].std(ddof=1)),
                        float(lo),
                        float(hi),
                        float(base[:, c].mean()),
                        sd0,
                        float((b[:, c].mean() - base[:, c].mean()) / sd0),
                    )
                )
    if diags:
        warn_if_failed(pd.concat(diags, ignore_index=True), stacklevel=2)
    out = pd.DataFrame(rows, columns=list(SENSITIVITY_COLUMNS))
    out.attrs["interval"] = f"{ci_prob:.0%} HDI"
    out.attrs["which"] = list(which or Priors.scales())
    return out


def _beta_draws(idata) -> np.ndarray:
    beta = np.asarray(idata.posterior["beta"].values, dtype=float)
    return beta.reshape(-1, beta.shape[-1])
