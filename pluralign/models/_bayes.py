"""Bayesian mixed models of ratings: cumulative-logit (ordinal), Bernoulli or Gaussian, fitted by NUTS.

:func:`fit_bayes` fits, for each rated dimension, the PyMC model of
:mod:`pluralign.models._bayes_model` (fixed effects of rater and item covariates and their
interactions, crossed rater and item random intercepts, optional group-specific item
deviations) and returns a :class:`BayesResult` that honours the
:class:`~pluralign.models.ModelResult` protocol. All rating-scale quantities (marginal means,
differences, relative differences, post-stratified means) are computed per posterior draw, so
their intervals are proper posterior intervals.

Definitions
-----------
* **Marginal mean** of a cell: the expected rating averaged over the fitted rows after setting
  the cell's demographics in every row (the other demographics keep their observed mix), with
  the rater, item (and group × item) random effects integrated over their normal distribution
  by Gauss–Hermite quadrature: the expected rating of a new rater of that cell on a new item.
* **Cohen's d** (ordinal, bernoulli): the latent-scale effect divided by the latent SD of a
  single rating, ``sqrt(σ²_rater + σ²_item + σ²_group_item + π²/3)`` (π²/3 is the variance of
  the standard logistic error); gaussian: ``sqrt(σ²_rater + σ²_item + σ²_group_item + σ²_residual)``.
  It is averaged over draws.
* Intervals are highest-density intervals (HDI) of the draws; effects report the probability
  of direction ``pd`` and the tail probability ``2 (1 − pd)`` bounded below by ``1 / n_draws``
  (never 0), not p-values, and no multiplicity adjustment.
* Ordinal categories are the declared scale's points: a point nobody used keeps its cutpoint,
  identified by the prior.

One model per dimension: the dimensions have their own scales and cutpoints, so a joint model
would only add cross-dimension rater correlations, at the price of a D-times larger gradient
and one step size shared by all dimensions (slower mixing). Separate fits also let a failed
dimension be rerun alone.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import product
from typing import Any

import numpy as np
import pandas as pd

from pluralign._compat import require
from pluralign._numeric import gauss_hermite
from pluralign._parallel import parallel_map
from pluralign._settings import options
from pluralign.data import Population, Scale, Study
from pluralign.models import _bayes_kernels as K
from pluralign.models._bayes_laplace import laplace_idata
from pluralign.models._bayes_model import (
    POPULATION_VARS,
    ModelData,
    Priors,
    attach_predictive,
    build_model,
    diagnose,
    initial_values,
    sample,
    warn_if_failed,
)
from pluralign.models._design import (
    Design,
    build_design,
    fitted_dimensions,
    fixed_terms,
    one_dimension,
    term_table,
)
from pluralign.models._display import html_summary
from pluralign.models._effects import (
    design_contrasts,
    finish_effects,
    rating_contrast_draws,
    tail_probability,
)
from pluralign.models._protocol import (
    BAYES_SUMMARY_COLUMNS,
    DIAGNOSTIC_COLUMNS,
    EFFECT_SCALES,
    MARGINAL_COLUMNS,
    POSTSTRAT_COLUMNS,
)

FAMILIES = ("ordinal", "bernoulli", "gaussian")
SAMPLERS = ("nutpie", "numpyro", "pymc")
METHODS = ("nuts", "laplace")


# ------------------------------------------------------------------------------ draws
@dataclass(frozen=True)
class Draws:
    """Posterior draws of one dimension, chains stacked: every array has draws first.

    ``cutpoints`` is (S, K-1) for ordinal and (S, 1) = −intercept for bernoulli (so both use
    the cumulative-logit kernels); ``intercept`` is used by the gaussian family.
    """

    beta: np.ndarray
    sigma_rater: np.ndarray
    sigma_item: np.ndarray
    rater_effect: np.ndarray
    item_effect: np.ndarray
    sigma_group_item: np.ndarray | None = None
    group_item: np.ndarray | None = None  # (S, G, I)
    cutpoints: np.ndarray | None = None
    intercept: np.ndarray | None = None
    sigma_residual: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.sigma_rater)

    def take(self, idx: np.ndarray) -> Draws:
        """The subset of draws ``idx``."""
        return Draws(**{k: (None if v is None else v[idx]) for k, v in self.__dict__.items()})

    def tau(self, rater: bool = True, item: bool = True) -> np.ndarray:
        """SD of the random effects that are integrated out (rater and/or item components)."""
        var = np.zeros(self.n)
        if rater:
            var = var + self.sigma_rater**2
        if item:
            var = var + self.sigma_item**2
            if self.sigma_group_item is not None:
                var = var + self.sigma_group_item**2
        return np.sqrt(var)


def _stack(idata, name: str) -> np.ndarray | None:
    post = idata.posterior
    if name not in post:
        return None
    arr = np.asarray(post[name].values)
    return arr.reshape((-1, *arr.shape[2:]))


@dataclass(frozen=True, eq=False)
class DimensionFit:
    """The fitted model of one dimension: its design, data, scale and posterior."""

    dimension: str
    family: str
    design: Design
    data: ModelData
    scale: Scale
    levels: np.ndarray  # rating value of each category (ordinal, bernoulli)
    idata: object
    group_item: str | None
    group_levels: list[str] | None
    seconds: float

    def draws(self) -> Draws:
        """All posterior draws as arrays (chains stacked)."""
        idata = self.idata
        s_r = _stack(idata, "sigma_rater")
        s_i = _stack(idata, "sigma_item")
        beta = _stack(idata, "beta")
        if beta is None:
            beta = np.zeros((len(s_r), 0))
        s_gi = _stack(idata, "sigma_group_item")
        z_gi = _stack(idata, "z_group_item")
        cut = _stack(idata, "cutpoints")
        intercept = _stack(idata, "intercept")
        if self.family == "bernoulli":
            cut = -intercept[:, None]
        return Draws(
            beta=beta,
            sigma_rater=s_r,
            sigma_item=s_i,
            rater_effect=s_r[:, None] * _stack(idata, "z_rater"),
            item_effect=s_i[:, None] * _stack(idata, "z_item"),
            sigma_group_item=s_gi,
            group_item=None if z_gi is None else s_gi[:, None, None] * z_gi,
            cutpoints=cut,
            intercept=intercept,
            sigma_residual=_stack(idata, "sigma_residual"),
        )

    # ---------------------------------------------------------------- rater patterns
    def rater_frame(self) -> pd.DataFrame:
        """Variables of the model (demographics and item columns), one row per fitted rating:
        the mix that marginal means average over."""
        cols = list(self.design.variables)
        if self.group_item and self.group_item not in cols:
            cols.append(self.group_item)
        return self.design.data[cols]

    def patterns(
        self, cell: Mapping[str, object]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Rows of the fitted data with ``cell`` imposed, collapsed to unique demographic patterns.

        Returns ``(X without intercept, weights summing to 1, group codes or None)``.
        """
        frame = self.rater_frame().copy()
        for col, value in cell.items():
            if col not in frame.columns:
                raise KeyError(
                    f"{col!r} is not a variable of the {self.dimension} model; it uses "
                    f"{list(frame.columns)}"
                )
            frame[col] = value
        cols = list(frame.columns)
        if cols:
            counts = frame.astype(str).value_counts(subset=cols, sort=False).reset_index(name="n")
            uniq = counts[cols]
            weights = counts["n"].to_numpy(dtype=float)
        else:
            uniq = frame.iloc[:1]
            weights = np.ones(1)
        for v in self.design.numeric:
            uniq[v] = uniq[v].astype(float)
        X = self.design.transform(uniq)[:, 1:]
        groups = None
        if self.group_item:
            groups = _codes(uniq[self.group_item], self.group_levels, self.group_item)
        return X, weights / weights.sum(), groups

    def cell_mean_draws(self, cells: pd.DataFrame, draws: Draws | None = None) -> np.ndarray:
        """Draws of the marginal mean rating of each cell: (n_draws × n_cells)."""
        d = self.draws() if draws is None else draws
        cells = cells.drop(columns=[c for c in ("share",) if c in cells.columns])
        out = np.empty((d.n, len(cells)))
        for j, (_, row) in enumerate(cells.iterrows()):
            X, w, _ = self.patterns({k: v for k, v in row.items() if pd.notna(v)})
            eta = d.beta @ X.T  # (S, m)
            if self.family == "gaussian":
                out[:, j] = (d.intercept[:, None] + eta) @ w
            else:
                probs = K.integrated_probs(eta, d.cutpoints, d.tau())
                out[:, j] = K.expected_value(probs, self.levels) @ w
        return out


def _codes(values: pd.Series, levels: Sequence[str], name: str) -> np.ndarray:
    cat = pd.Categorical(values.astype(str), categories=list(levels))
    if (cat.codes < 0).any():
        bad = sorted(set(values.astype(str)) - set(levels))
        raise ValueError(f"{name}: unknown levels {bad}; known levels are {list(levels)}")
    return cat.codes.astype(np.int64)


# ------------------------------------------------------------------------------ result
@dataclass(frozen=True, eq=False)
class BayesResult:
    """A fitted Bayesian rating model, one model per dimension (returned by :func:`fit_bayes`).

    Implements :class:`~pluralign.models.ModelResult`: every rating-scale quantity is computed
    per posterior draw and summarised by its highest-density interval. In Jupyter the result
    shows the formula, family, sample sizes, the sampler checks and the link-scale effects.

    Attributes
    ----------
    dimensions : list of str
        The fitted dimensions.
    formula : str
        Fixed-effect formula (with interactions and the group-item variable added).
    family : {"ordinal", "bernoulli", "gaussian"}
        Distribution family of the ratings.
    sampler : str
        NUTS implementation used, or ``"laplace"`` (``method="laplace"``).
    fits : dict of str to DimensionFit
        Per-dimension design, data, posterior and timing.
    settings : mapping
        Sampler settings (draws, tune, chains, seed, low_rank, backend).

    See Also
    --------
    fit_bayes : the function that returns it.
    pluralign.models.MixedResult : same methods, from a frequentist fit.
    pluralign.models.effects_within : demographic contrasts on each level of an item column.

    Examples
    --------
    >>> from pluralign.data import simulate_study
    >>> study = simulate_study(n_raters=40, n_prompts=6, seed=1, dimensions=["toxicity"]).study
    >>> fit = fit_bayes(study, "rating ~ gender", draws=100, tune=100,
    ...                 progressbar=False)  # doctest: +SKIP
    >>> fit.terms[["term", "level", "reference"]]  # doctest: +SKIP
    >>> fit.effects(scale="link")[["level", "estimate", "ci_low", "ci_high"]]  # doctest: +SKIP
    """

    dimensions: list[str]
    formula: str
    family: str
    sampler: str
    fits: dict[str, DimensionFit]
    settings: Mapping[str, object] = field(default_factory=dict)
    _diagnostics: pd.DataFrame = field(default=None, repr=False)

    # ---------------------------------------------------------------- access
    def __repr__(self) -> str:
        bad = int((~self._diagnostics["ok"]).sum())
        return (
            f"<BayesResult {self.family} {self.formula!r}: {self.dimensions}; sampler "
            f"{self.sampler}; {bad} failed diagnostic checks>"
        )

    def _repr_html_(self) -> str:
        first = self.fits[self.dimensions[0]].design
        bad = int((~self._diagnostics["ok"]).sum())
        facts = {
            "formula": self.formula,
            "family": self.family,
            "dimensions": ", ".join(self.dimensions),
            "ratings": ", ".join(str(self.fits[d].design.n) for d in self.dimensions),
            "raters / items": f"{first.n_raters} / {first.n_items}",
            "sampler": f"{self.sampler}: {self.settings.get('chains')} chains × "
            f"{self.settings.get('draws')} draws",
            "converged": "yes" if bad == 0 else f"no: {bad} failed checks (see diagnostics())",
        }
        return html_summary("BayesResult", facts, self.effects(scale="link"))

    @property
    def terms(self) -> pd.DataFrame:
        """One row per coefficient of each formula term, per dimension (TERM_COLUMNS)."""
        return term_table({dim: fit.design for dim, fit in self.fits.items()})

    def dimension_fit(self, dimension: str | None = None) -> DimensionFit:
        """The fitted model of one dimension (optional when the fit has only one).

        Examples
        --------
        >>> fit.dimension_fit("toxicity").design.sources  # doctest: +SKIP
        {'gender': 'raters', 'source_model': 'items'}
        """
        return self.fits[one_dimension(fitted_dimensions(self.dimensions, dimension), "the fit")]

    def design(self, dimension: str | None = None) -> Design:
        """The fixed-effect design of a dimension."""
        return self.dimension_fit(dimension).design

    @property
    def idata(self):
        """ArviZ InferenceData: the single dimension's, or all dimensions' with variables and
        coordinates prefixed ``"{dimension}::"``."""
        if len(self.dimensions) == 1:
            return self.fits[self.dimensions[0]].idata
        az = require("arviz")
        groups: dict[str, list] = {}
        for dim, fit in self.fits.items():
            for g in ("posterior", "sample_stats"):
                if not hasattr(fit.idata, g):
                    continue
                ds = getattr(fit.idata, g)
                ren = {v: f"{dim}::{v}" for v in ds.data_vars}
                ren.update({c: f"{dim}::{c}" for c in ds.dims if c not in ("chain", "draw")})
                groups.setdefault(g, []).append(
                    ds.rename(ren).drop_vars(
                        [c for c in ds.coords if c not in ("chain", "draw") and c not in ds.dims],
                        errors="ignore",
                    )
                )
        xr = require("xarray")
        return az.InferenceData(**{g: xr.merge(v, compat="override") for g, v in groups.items()})

    @property
    def seconds(self) -> dict[str, float]:
        """Wall time of compilation and sampling per dimension."""
        return {d: f.seconds for d, f in self.fits.items()}

    # ---------------------------------------------------------------- protocol
    def cell_mean_draws(self, cells: pd.DataFrame, dimension: str | None = None) -> np.ndarray:
        """Posterior draws of the marginal mean rating of demographic cells: (n_draws × n_cells).

        A demographic the cells leave out keeps its observed mix in the fitted data; random
        effects are integrated (see the module docstring).
        """
        return self.dimension_fit(dimension).cell_mean_draws(cells)

    def marginal_means(
        self, by: str | Sequence[str], *, ci_prob: float | None = None
    ) -> pd.DataFrame:
        """Expected rating per level (or level combination) of ``by``, with HDIs.

        Examples
        --------
        >>> fit.marginal_means("gender")  # doctest: +SKIP
              gender dimension      mean    ci_low   ci_high
        0    she/her  toxicity  2.160462  2.071625  2.263911
        1     he/him  toxicity  1.790307  1.694624  1.871258
        """
        ci_prob = options.ci_prob if ci_prob is None else ci_prob
        by = [by] if isinstance(by, str) else list(by)
        rows = []
        for dim, fit in self.fits.items():
            for v in by:
                if v not in fit.design.levels:
                    raise KeyError(
                        f"marginal_means(by={v!r}): not a categorical variable of the formula "
                        f"{self.formula!r}; categorical variables: {list(fit.design.levels)}"
                    )
            cells = pd.DataFrame(list(product(*[fit.design.levels[v] for v in by])), columns=by)
            draws = fit.cell_mean_draws(cells)
            lo, hi = K.hdi(draws, ci_prob)
            out = cells.copy()
            out["dimension"] = dim
            out["mean"], out["ci_low"], out["ci_high"] = draws.mean(0), lo, hi
            rows.append(out)
        return pd.concat(rows, ignore_index=True)[[*by, *MARGINAL_COLUMNS]]

    def poststratify(self, target: object, *, ci_prob: float | None = None) -> pd.DataFrame:
        """Expected rating of a target population (MRP): per draw, the share-weighted mean of cells.

        ``target``: anything :meth:`Population.parse <pluralign.data.Population.parse>`
        accepts: a post-stratification frame (demographics + ``share``), margins
        ``{"gender": {"she/her": .5, "he/him": .5}}``, a group ``{"gender": "she/her"}`` or
        None (the fitted population). Rater and item random effects are integrated by
        Gauss–Hermite quadrature. Columns: POSTSTRAT_COLUMNS, ``population`` being the
        target's :attr:`~pluralign.data.Population.label`.
        """
        ci_prob = options.ci_prob if ci_prob is None else ci_prob
        population = Population.parse(target)
        rows = []
        for dim, fit in self.fits.items():
            population.check(fit.design.known_levels)
            cells = population.cells.drop(columns="share")
            draws = fit.cell_mean_draws(cells) @ population.shares
            lo, hi = K.hdi(draws, ci_prob)
            rows.append((dim, population.label, float(draws.mean()), float(lo), float(hi)))
        return pd.DataFrame(rows, columns=list(POSTSTRAT_COLUMNS))

    def standardiser(self, dimension: str | None = None) -> np.ndarray:
        """Per-draw latent SD of one rating (Cohen's d denominator; see the module docstring)."""
        fit = self.dimension_fit(dimension)
        d = fit.draws()
        extra = d.sigma_residual**2 if fit.family == "gaussian" else math.pi**2 / 3
        return np.sqrt(d.tau() ** 2 + extra)

    def effects(
        self,
        *,
        multiplicity: str | Sequence[str] | None = None,
        correction: str = "holm",
        ci_prob: float | None = None,
        scale: str = "rating",
        weights: str = "observed",
    ) -> pd.DataFrame:
        """One row per estimand (level vs reference of a term), with EFFECT_COLUMNS.

        Definitions
        -----------
        * ``estimand``: what the row estimates (see
          :func:`~pluralign.models.design_contrasts`): a categorical term's contrast averaged
          over the other variables with ``weights`` (with ``gender * race`` the ``gender`` row
          is the contrast averaged over race, not the coefficient at the reference race);
          interaction rows are their coefficient.
        * ``estimate``: posterior mean of the latent (link-scale) contrast ``L β``,
          ``std_error`` its posterior SD, ``ci_low``/``ci_high`` its HDI.
        * ``p_direction``: probability of direction of the contrast (share of draws on its
          majority side); ``p_tail = 2 (1 − p_direction)``, bounded below by ``1 / n_draws``
          (a value equal to ``attrs["p_tail_floor"]`` reads "< 1/n_draws"). These are
          posterior probabilities, not p-values: ``p_value`` and ``p_adjusted`` are NaN and no
          multiplicity correction is applied.
        * ``odds_ratio`` (ordinal: cumulative odds ratio of a higher rating; bernoulli):
          ``exp`` of the posterior median of the contrast, which is the posterior median of
          the odds ratio, with ``exp`` of the HDI's ends (one summary, transformed).
        * Rating-scale columns are computed per draw from marginal means; ``scale="link"``
          skips them (NaN), which cost a quadrature per draw.

        Parameters
        ----------
        multiplicity, correction
            Accepted for the protocol; a Bayesian table has no adjusted p-values.
        ci_prob : float, optional
            HDI probability (default ``options.ci_prob``).
        scale : {"rating", "link"}, default "rating"
        weights : {"observed", "equal"}, default "observed"
            How contrasts are averaged over the other variables (see
            :func:`~pluralign.models.design_contrasts`).
        """
        if scale not in EFFECT_SCALES:
            raise ValueError(f"scale must be one of {EFFECT_SCALES}, got {scale!r}")
        ci_prob = options.ci_prob if ci_prob is None else ci_prob
        rows = []
        n_draws = 0
        for dim, fit in self.fits.items():
            d = fit.draws()
            n_draws = d.n
            std = self.standardiser(dim)
            contrasts = design_contrasts(fit.design, weights=weights)
            for c in contrasts:
                b = d.beta @ c.L[1:]
                lo, hi = K.hdi(b, ci_prob)
                pdir, ptail = tail_probability(b)
                row = {
                    "dimension": dim,
                    "term": c.term,
                    "level": c.level,
                    "reference": c.reference,
                    "estimand": c.estimand,
                    "estimate": float(b.mean()),
                    "ci_low": float(lo),
                    "ci_high": float(hi),
                    "p_value": np.nan,
                    "p_direction": float(pdir),
                    "cohens_d": float(np.mean(b / std)),
                    "std_error": float(b.std(ddof=1)),
                    "p_tail": float(ptail),
                }
                if fit.family != "gaussian":
                    row.update(
                        odds_ratio=float(np.exp(np.median(b))),
                        odds_ratio_ci_low=float(np.exp(lo)),
                        odds_ratio_ci_high=float(np.exp(hi)),
                    )
                rows.append(row)
            chosen = [j for j, c in enumerate(contrasts) if c.level_cells is not None]
            if chosen and scale == "rating":
                lev, ref = rating_contrast_draws(
                    [contrasts[j] for j in chosen], partial(fit.cell_mean_draws, draws=d)
                )
                first = len(rows) - len(contrasts)
                for k, j in enumerate(chosen):
                    rows[first + j].update(_contrast(lev[:, k], ref[:, k], ci_prob))
        table = finish_effects(pd.DataFrame(rows), multiplicity=multiplicity, correction="none")
        table["p_adjusted"] = np.nan
        table.attrs["correction"] = None
        table.attrs["p_tail_floor"] = 1.0 / n_draws if n_draws else np.nan
        table.attrs["standardiser"] = (
            "sqrt(sigma_rater^2 + sigma_item^2 + sigma_group_item^2 + pi^2/3): latent SD of one "
            "rating on the logit scale"
            if self.family != "gaussian"
            else "sqrt(sigma_rater^2 + sigma_item^2 + sigma_group_item^2 + sigma_residual^2)"
        )
        table.attrs["interval"] = f"{ci_prob:.0%} HDI"
        table.attrs["ci_prob"] = ci_prob
        table.attrs["scale"] = scale
        return table

    def predict(
        self, data: pd.DataFrame | None = None, *, include_random: bool = True, chunk: int = 256
    ) -> pd.DataFrame:
        """Expected rating (posterior mean and HDI) and category probabilities for rows of ``data``.

        ``data`` needs the formula's demographics (and ``dimension`` when the fit has several;
        without it every row is predicted for every dimension). With ``include_random``, the
        effects of known ``rater`` / ``item`` values are used and unknown ones integrated;
        without it all random effects are integrated. Default: the fitted ratings.
        """
        frames = []
        for dim, fit in self.fits.items():
            if data is None:
                rows = fit.design.data
            elif "dimension" in data.columns:
                rows = data[data["dimension"] == dim]
                if rows.empty:
                    continue
            else:
                rows = data.assign(dimension=dim)
            frames.append(_predict_rows(fit, rows.reset_index(drop=True), include_random, chunk))
        return pd.concat(frames, ignore_index=True)

    def diagnostics(self) -> pd.DataFrame:
        """Convergence checks per dimension with DIAGNOSTIC_COLUMNS (failed ones were warned)."""
        return self._diagnostics[list(DIAGNOSTIC_COLUMNS)].copy()

    def summary(self, *, ci_prob: float | None = None) -> pd.DataFrame:
        """Population-level parameters per dimension: mean, sd, HDI, ESS, R-hat.

        Columns: BAYES_SUMMARY_COLUMNS (``arviz.summary``'s, the HDI as ``ci_low, ci_high``).
        R-hat compares chains: from one chain it is not computable and reported as NaN (see
        ``attrs["r_hat_note"]``), never as a passing value.
        """
        az = require("arviz")
        ci_prob = options.ci_prob if ci_prob is None else ci_prob
        frames = []
        one_chain = False
        for dim, fit in self.fits.items():
            names = [v for v in POPULATION_VARS if v in fit.idata.posterior]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                warnings.simplefilter("ignore", UserWarning)
                s = az.summary(fit.idata, var_names=names, hdi_prob=ci_prob)
            if fit.idata.posterior.sizes["chain"] < 2:
                s["r_hat"] = np.nan
                one_chain = True
            s = s.rename(columns=dict(zip(s.columns[2:4], ["ci_low", "ci_high"], strict=True)))
            s.insert(0, "parameter", s.index)
            s.insert(0, "dimension", dim)
            frames.append(s.reset_index(drop=True))
        out = pd.concat(frames, ignore_index=True)[list(BAYES_SUMMARY_COLUMNS)]
        out.attrs["r_hat_note"] = (
            "R-hat not computable from one chain (NaN): run chains >= 2" if one_chain else ""
        )
        return out


def _contrast(lev: np.ndarray, ref: np.ndarray, ci_prob: float) -> dict:
    diff = lev - ref
    rel = 100 * diff / ref
    d_lo, d_hi = K.hdi(diff, ci_prob)
    r_lo, r_hi = K.hdi(rel, ci_prob)
    return {
        "mean_level": float(lev.mean()),
        "mean_reference": float(ref.mean()),
        "difference": float(diff.mean()),
        "difference_ci_low": float(d_lo),
        "difference_ci_high": float(d_hi),
        # point value as EFFECT_COLUMNS defines it (ratio of posterior means); HDI from the draws
        "relative_pct": float(100 * diff.mean() / ref.mean()),
        "relative_ci_low": float(r_lo),
        "relative_ci_high": float(r_hi),
    }


def _predict_rows(
    fit: DimensionFit, rows: pd.DataFrame, include_random: bool, chunk: int
) -> pd.DataFrame:
    d = fit.draws()
    des = fit.design
    X = des.transform(rows)[:, 1:]
    n = len(rows)
    rater_idx = np.full(n, -1)
    item_idx = np.full(n, -1)
    if include_random and "rater" in rows.columns:
        lookup = pd.Series(np.arange(des.n_raters), index=pd.Index(des.rater_levels.astype(str)))
        rater_idx = lookup.reindex(rows["rater"].astype(str)).fillna(-1).to_numpy(dtype=int)
    if include_random and "item" in rows.columns:
        lookup = pd.Series(np.arange(des.n_items), index=pd.Index(des.item_levels.astype(str)))
        item_idx = lookup.reindex(rows["item"].astype(str)).fillna(-1).to_numpy(dtype=int)
    groups = None
    if fit.group_item:
        groups = _codes(rows[fit.group_item], fit.group_levels, fit.group_item)
    ci = options.ci_prob
    mean = np.empty(n)
    lo = np.empty(n)
    hi = np.empty(n)
    probs_out = None if fit.family == "gaussian" else np.empty((n, len(fit.levels)))
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        eta = d.beta @ X[sl].T
        r, i = rater_idx[sl], item_idx[sl]
        kr, ki = r >= 0, i >= 0
        eta[:, kr] += d.rater_effect[:, r[kr]]
        eta[:, ki] += d.item_effect[:, i[ki]]
        if groups is not None:
            eta[:, ki] += d.group_item[:, groups[sl][ki], i[ki]]
        var = np.zeros_like(eta)
        var[:, ~kr] += (d.sigma_rater**2)[:, None]
        item_var = d.sigma_item**2 + (0 if d.sigma_group_item is None else d.sigma_group_item**2)
        var[:, ~ki] += item_var[:, None]
        if fit.family == "gaussian":
            ev = d.intercept[:, None] + eta
        elif not var.any():  # every random effect known: nothing to integrate
            p = K.cumulative_probs(eta, d.cutpoints[:, None, :])
            ev = K.expected_value(p, fit.levels)
            probs_out[sl] = p.mean(0)
        else:
            x, w = gauss_hermite()
            p = np.zeros((*eta.shape, len(fit.levels)))
            sd = np.sqrt(var)
            for xj, wj in zip(x, w, strict=True):
                p += wj * K.cumulative_probs(eta + sd * xj, d.cutpoints[:, None, :])
            ev = K.expected_value(p, fit.levels)
            probs_out[sl] = p.mean(0)
        mean[sl] = ev.mean(0)
        lo[sl], hi[sl] = K.hdi(ev, ci)
    out = rows.copy()
    out["dimension"] = fit.dimension
    out["prediction"], out["ci_low"], out["ci_high"] = mean, lo, hi
    if probs_out is not None:
        for j, level in enumerate(fit.levels):
            out[f"p_{level:g}"] = probs_out[:, j]
    return out


# ------------------------------------------------------------------------------ fitting
def _formula_with(formula: str, interactions, group_item: str | None) -> str:
    add = []
    for inter in interactions or ():
        term = inter if isinstance(inter, str) else ":".join(inter)
        if ":" not in term:
            raise ValueError(
                f"interactions: {inter!r} is not an interaction; give pairs such as "
                "('gender', 'race') or strings such as 'gender:race'"
            )
        add.append(term)
    if group_item and group_item not in fixed_terms(formula):
        add.append(group_item)
    return formula + "".join(f" + {a}" for a in add)


def _model_data(design: Design, family: str, scale: Scale, group_item: str | None):
    """Model inputs of one dimension; ordinal / bernoulli categories are the scale's points."""
    y = design.y
    first = np.unique(design.rater_codes, return_index=True)[1]
    X = design.X[:, 1:]
    # columns constant within every rater (demographics) enter once per rater; the others
    # (item covariates and their interactions with demographics) enter per rating
    per_rater = X[first][design.rater_codes]
    varying = np.flatnonzero(~np.all(np.isclose(per_rater, X), axis=0))
    constant = np.setdiff1d(np.arange(X.shape[1]), varying)
    levels = np.array([])
    n_cat = 0
    if family == "gaussian":
        y_model = y.astype(float)
    else:
        if not np.allclose(y, np.round(y)):
            raise ValueError(
                f"{design.dimension}: family={family!r} needs integer ratings; use family='gaussian' "
                "for averaged or continuous ratings"
            )
        used = np.unique(y)
        # every declared scale point is a category, used or not: an unused point keeps its
        # cutpoint (identified by the prior) instead of merging two categories
        levels = np.asarray(scale.levels, dtype=float)
        outside = sorted(set(used.tolist()) - set(levels.tolist()))
        if outside:
            raise ValueError(
                f"{design.dimension}: ratings {outside[:5]} are not points of the declared scale "
                f"{scale.min}..{scale.max}; fix the ratings or the scale"
            )
        if family == "bernoulli" and len(levels) != 2:
            raise ValueError(
                f"{design.dimension}: family='bernoulli' needs a two-point scale, the scale is "
                f"{scale.min}..{scale.max}; use pluralign.labels.rescale(study, to='binary') or "
                "family='ordinal'"
            )
        if len(used) < 2:
            raise ValueError(f"{design.dimension}: every rating is {used[0]:g}; nothing to model")
        y_model = np.searchsorted(levels, y)
        n_cat = len(levels)
    group_codes = group_names = None
    if group_item:
        if group_item not in design.levels or design.sources.get(group_item) != "raters":
            raise ValueError(
                f"group_item={group_item!r} must be a categorical column of the raters table"
            )
        group_names = list(design.levels[group_item])
        group_codes = _codes(
            design.data[group_item].iloc[first].reset_index(drop=True), group_names, group_item
        )
    md = ModelData(
        family=family,
        y=y_model,
        rater_codes=design.rater_codes,
        item_codes=design.item_codes,
        X_rater=X[first][:, constant],
        coef_names=list(design.columns[1:]),
        n_raters=design.n_raters,
        n_items=design.n_items,
        rater_ids=np.asarray(design.rater_levels),
        item_ids=np.asarray(design.item_levels),
        n_categories=n_cat,
        group_codes=group_codes,
        group_names=group_names,
        X_obs=X[:, varying] if varying.size else None,
        obs_cols=varying if varying.size else None,
    )
    return md, levels, group_names


def _dimension_model(
    study: Study,
    formula: str,
    dimension: str,
    family: str,
    *,
    reference: Mapping[str, str] | None,
    scale_numeric: str | Mapping[str, str],
    group_item: str | None,
) -> tuple[Design, ModelData, np.ndarray, list[str] | None]:
    """Design and model inputs of one dimension (``formula`` with interactions already added)."""
    design = build_design(
        study, formula, dimension=dimension, reference=reference, scale_numeric=scale_numeric
    )
    md, levels, group_names = _model_data(design, family, study.scale(dimension), group_item)
    return design, md, levels, group_names


def _fit_dimension(
    study: Study,
    dim: str,
    model: Mapping[str, Any],
    settings: Mapping[str, Any],
    seed: int,
    progressbar: bool,
) -> tuple[str, DimensionFit, pd.DataFrame]:
    """Posterior, predictive groups and checks of one dimension (a task of ``fit_bayes``)."""
    t0 = time.perf_counter()
    family, group_item = model["family"], model["group_item"]
    design, md, levels, group_names = _dimension_model(
        study,
        model["formula"],
        dim,
        family,
        reference=model["reference"],
        scale_numeric=model["scale_numeric"],
        group_item=group_item,
    )
    idata, checks = _posterior(md, model["priors"], settings, seed=seed, progressbar=progressbar)
    seconds = time.perf_counter() - t0
    attach_predictive(
        idata,
        md,
        levels,
        design.data.drop(columns=["rating", "dimension"], errors="ignore"),
        log_likelihood=bool(settings["log_likelihood"]),
        predictive=bool(settings["posterior_predictive"]),
        seed=seed,
    )
    fit = DimensionFit(
        dim,
        family,
        design,
        md,
        study.scale(dim),
        levels.astype(float),
        idata,
        group_item,
        group_names,
        seconds,
    )
    return dim, fit, diagnose_fit(idata, checks, dim, int(settings["chains"]))


def _posterior(
    md: ModelData,
    priors: Priors | None,
    settings: Mapping[str, object],
    *,
    seed: int,
    progressbar: bool,
):
    """Posterior of one dimension by ``settings["method"]``: ``(idata, Laplace checks or None)``."""
    draws, chains = int(settings["draws"]), int(settings["chains"])
    if settings.get("method", "nuts") == "laplace":
        idata, checks, _ = laplace_idata(md, priors, draws=draws, chains=chains, seed=seed)
        return idata, checks
    idata = sample(
        build_model(md, priors),
        sampler=str(settings.get("sampler", "nutpie")),
        draws=draws,
        tune=int(settings["tune"]),
        chains=chains,
        seed=seed,
        progressbar=progressbar,
        low_rank=bool(settings.get("low_rank", True)),
        initvals=initial_values(md),
        backend=str(settings.get("backend", "jax")),
    )
    return idata, None


def diagnose_fit(idata, checks: pd.DataFrame | None, dimension: str, chains: int) -> pd.DataFrame:
    """The sampler's checks of one dimension, with the Laplace approximation's checks if any."""
    diag = diagnose(idata, dimension, chains)
    if checks is None:
        return diag
    return pd.concat([diag, checks.assign(dimension=dimension)[diag.columns]], ignore_index=True)


def fit_bayes(
    study: Study,
    formula: str = "rating ~ gender",
    *,
    dimension: str | Sequence[str] | None = None,
    family: str = "ordinal",
    sampler: str = "nutpie",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
    seed: int | None = None,
    reference: Mapping[str, str] | None = None,
    scale_numeric: str | Mapping[str, str] = "none",
    interactions: Sequence[str | tuple[str, str]] | None = None,
    group_item: str | None = None,
    progressbar: bool = True,
    low_rank: bool = True,
    backend: str = "jax",
    priors: Priors | None = None,
    log_likelihood: bool = True,
    posterior_predictive: bool = True,
    method: str = "nuts",
    n_jobs: int = 1,
) -> BayesResult:
    """Fit a Bayesian mixed model of ratings with crossed rater and item random intercepts.

    Parameters
    ----------
    study : Study
    formula : str
        Fixed effects, e.g. ``"rating ~ gender + ideology"``; random intercepts for rater and
        item are always included. Columns of the raters table and of the items table
        (categorical, e.g. ``source_model``, or numeric, e.g. ``length``) may be used, also
        crossed with each other (``"rating ~ gender * source_model + ideology * length"``),
        as in :func:`~pluralign.models.fit_mixed`; each row of ``effects()`` names its
        estimand, and :func:`~pluralign.models.effects_within` gives a demographic contrast
        on each level of an item column.
    dimension : str or list of str, optional
        Dimensions to fit (one model each); default every dimension of the study.
    family : {"ordinal", "bernoulli", "gaussian"}
        Cumulative-logit model on the scale points, logistic model of a two-point scale, or a
        normal model of the rating.
    sampler : {"nutpie", "numpyro", "pymc"}
        NUTS implementation: nutpie with a JAX-compiled gradient (fastest on CPU), numpyro via
        PyMC's JAX bridge, or PyMC's own sampler.
    draws, tune, chains : int
        Posterior draws and warm-up iterations per chain, number of chains.
    seed : int, optional
        Sampler seed (``options.seed`` when None); dimension ``j`` uses ``seed + j``.
    reference : mapping, optional
        Reference level per demographic (default:
        :meth:`Study.reference_level <pluralign.data.Study.reference_level>`: the declared
        ``study.reference``, else the level with the most raters).
    scale_numeric : {"none", "center", "standardize"} or mapping, default "none"
        Centre (and scale) numeric covariates before fitting, all or per variable, as in
        :func:`~pluralign.models.fit_mixed`; the centres and scales are in
        ``fit.design(dim).numeric_scaling`` (the prior ``β ~ Normal(0, beta_sd)`` applies to
        the transformed coefficients, so ``"standardize"`` makes it a prior per SD).
    interactions : list, optional
        Demographic × demographic interactions, e.g. ``[("gender", "race")]`` or
        ``["gender:race"]``.
    group_item : str, optional
        A categorical demographic whose groups get their own view of each item: deviations
        ``w[group, item] ~ Normal(0, σ_group_item)`` (zero-sum over items within a group, so
        the variable is added to the fixed effects if absent).
    progressbar : bool
        Show the sampler's progress bar.
    low_rank : bool, default True
        nutpie: adapt a low-rank modified mass matrix (captures the posterior correlation of
        the variance components with the random effects; ~1.5× the ESS per second here).
    backend : {"jax", "numba"}, default "jax"
        nutpie: how the log density and its gradient are compiled. JAX compiles in ~2 s;
        numba takes ~10–20 s to compile but samples the chains in parallel outside the GIL,
        which pays off for long runs on large data.
    priors : Priors, optional
        Prior scales (default :class:`~pluralign.models.Priors`, weakly informative); recorded
        in ``result.settings["priors"]``.
    log_likelihood : bool, default True
        Add the pointwise log-likelihood of every rating and draw (group ``log_likelihood`` of
        each dimension's ``result.fits[dim].idata``, float32, computed from the draws after
        sampling) for ``arviz.loo`` and :func:`~pluralign.models.compare_bayes`.
    posterior_predictive : bool, default True
        Add one simulated rating per draw and rating (group ``posterior_predictive``, with the
        ratings and raters' demographics in ``observed_data``) for :func:`pluralign.plots.ppc`
        and ``arviz.plot_ppc``.
    method : {"nuts", "laplace"}, default "nuts"
        ``"nuts"``: the exact posterior by NUTS (``sampler=``). ``"laplace"`` (ordinal and
        bernoulli, without ``group_item``): independent draws from an embedded Laplace
        approximation, the rater and item effects integrated out as ``fit_mixed(...,
        family="ordinal")`` does, with second-order corrections of the Laplace integral and
        exact one- and two-dimensional integrals per rater, item and rater–item pair (see
        :mod:`pluralign.models._bayes_laplace`). Much cheaper per effective draw; posterior
        means within 0.1 posterior SD of NUTS on POPQUORN and on simulated studies with ~5
        ratings per rater and per item (a failed ``laplace_expansion`` check warns where the
        corrections may not suffice).
        ``draws × chains`` independent draws are returned; ``tune``, ``sampler``, ``low_rank``
        and ``backend`` are not used.
    n_jobs : int, default 1
        Dimensions fitted at once in worker processes (-1: all cores). Pays off with
        ``method="laplace"``, which runs on one core; NUTS already samples its chains in
        parallel. Results do not depend on it (each dimension has its own seed).

    Returns
    -------
    BayesResult
        Every fit is checked (R-hat, bulk and tail ESS, divergences, BFMI); failures raise a
        :class:`~pluralign.ConvergenceWarning` naming the parameters and are listed by
        ``result.diagnostics()``.

    See Also
    --------
    BayesResult : the result and its methods.
    pluralign.models.fit_mixed : frequentist crossed mixed model (faster, no posterior).

    Examples
    --------
    >>> from pluralign.data import simulate_study
    >>> study = simulate_study(n_raters=60, seed=1, dimensions=["toxicity"]).study
    >>> fit = fit_bayes(study, "rating ~ gender", draws=200, tune=200,
    ...                 progressbar=False)  # doctest: +SKIP
    >>> fit.effects()[["term", "level", "estimate", "p_direction"]]  # doctest: +SKIP
    """
    from pluralign.data import check_design

    check_design(study, formula, dimension)
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "laplace" and (family == "gaussian" or group_item):
        raise ValueError(
            "method='laplace' fits the ordinal and bernoulli families without group_item; "
            f"got family={family!r}, group_item={group_item!r}: use method='nuts'"
        )
    for name, value in (("draws", draws), ("tune", tune), ("chains", chains)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    require("pymc", "fit_bayes")
    seed = options.seed if seed is None else int(seed)
    dims = study.resolve_dimensions(dimension)
    full = _formula_with(formula, interactions, group_item)
    settings = {
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "seed": seed,
        "low_rank": low_rank,
        "backend": backend,
        "priors": Priors() if priors is None else priors,
        "log_likelihood": log_likelihood,
        "posterior_predictive": posterior_predictive,
        "method": method,
        "sampler": sampler,
        "scale_numeric": scale_numeric,
    }
    fits: dict[str, DimensionFit] = {}
    diags: dict[str, pd.DataFrame] = {}
    bar = None
    if progressbar and len(dims) > 1:
        from pluralign._compat import tqdm

        bar = tqdm(total=len(dims), desc="fit_bayes dimensions", unit="dim")
    model = {
        "formula": full,
        "family": family,
        "reference": reference,
        "scale_numeric": scale_numeric,
        "group_item": group_item,
        "priors": priors,
    }
    tasks = [
        (study, dim, model, settings, seed + j, progressbar and n_jobs == 1)
        for j, dim in enumerate(dims)
    ]
    for dim, fit, checks in parallel_map(_fit_dimension, tasks, n_jobs=n_jobs):
        fits[dim], diags[dim] = fit, checks
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    fits = {dim: fits[dim] for dim in dims}
    diag = pd.concat([diags[dim] for dim in dims], ignore_index=True)
    warn_if_failed(diag, stacklevel=2)
    return BayesResult(
        dimensions=dims,
        formula=full,
        family=family,
        sampler="laplace" if method == "laplace" else sampler,
        fits=fits,
        settings=settings,
        _diagnostics=diag,
    )
