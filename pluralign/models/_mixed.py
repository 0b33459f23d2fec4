"""Mixed models with crossed rater and item random intercepts: ``fit_mixed`` and ``MixedResult``.

The numeric work is in :mod:`pluralign.models._lmm` (linear, lme4's profiled REML/ML) and
:mod:`pluralign.models._glmm` (logistic, Laplace approximation as ``glmer``); this module codes
the study (:func:`~pluralign.models._design.build_design`), fits each dimension and summarises
the fits on the rating scale with the shared helpers of :mod:`pluralign.models._effects`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats
from scipy.special import expit

from pluralign._errors import ConvergenceWarning
from pluralign._numeric import gauss_hermite
from pluralign._settings import options
from pluralign.data import Population, Study
from pluralign.models._clmm_kernels import LATENT_VARIANCE, LINKS
from pluralign.models._design import (
    Design,
    build_design,
    fitted_dimensions,
    one_dimension,
    term_table,
)
from pluralign.models._display import html_summary
from pluralign.models._effects import (
    cell_patterns,
    contrast_columns,
    design_contrasts,
    finish_effects,
    interval,
    rating_contrast_draws,
)
from pluralign.models._glmm import fit_glmm_logit, fit_glmm_terms
from pluralign.models._inference import coefficient_tests, contrast_tests
from pluralign.models._lmm import CrossedFit, LMMFit, fit_lmm, fit_lmm_terms
from pluralign.models._protocol import (
    DIAGNOSTIC_COLUMNS,
    EFFECT_SCALES,
    MARGINAL_COLUMNS,
    MIXED_SUMMARY_COLUMNS,
    POSTSTRAT_COLUMNS,
    RANDOM_EFFECT_COLUMNS,
    VARIANCE_COLUMNS,
)
from pluralign.models._random import RandomStructure

#: Gauss–Hermite nodes/weights (probabilists') for integrating normal random effects.
_GH_X, _GH_W = gauss_hermite(24)
#: Draws are processed in chunks of this many to bound memory of the logit integration.
_CHUNK = 128

FAMILIES = ("gaussian", "binomial", "ordinal")


@dataclass(frozen=True)
class DimensionFit:
    """The fit of one dimension: its design and the numeric estimates."""

    design: Design
    fit: LMMFit

    @property
    def var_rater(self) -> float:
        return self.fit.var1

    @property
    def var_item(self) -> float:
        return self.fit.var2


@dataclass(frozen=True, eq=False)
class MixedResult:
    """Crossed mixed-model fits, one per dimension (returned by :func:`fit_mixed`).

    Implements :class:`~pluralign.models.ModelResult`. Rating-scale quantities (marginal means,
    differences, post-stratified estimates) get intervals by simulating ``n_draws`` coefficient
    vectors from ``N(β̂, V̂)`` (variance components held at their estimates; seeded, so repeated
    calls give the same draws). In Jupyter the result shows the formula, family, sample sizes,
    convergence and the link-scale effects table.

    Attributes
    ----------
    dimensions : list of str
        The fitted dimensions.
    formula : str
        Fixed-effect formula (random terms removed).
    family : {"gaussian", "binomial"}
        Distribution family of the ratings.
    reml : bool
        Whether the linear fits used REML (False for ML and for the binomial family).
    fits : dict of str to DimensionFit
        Design and numeric estimates of each dimension.
    n_draws : int
        Simulated coefficient vectors behind rating-scale intervals.
    seed : int
        Seed of those simulations.
    references : dict of str to str
        Reference level of each categorical variable (of the first dimension).

    See Also
    --------
    fit_mixed : fits it.
    pluralign.models.BayesResult : the Bayesian counterpart, with the same methods.
    pluralign.models.compare_groups : rating-scale comparison of any two populations.

    Examples
    --------
    >>> fit = fit_mixed(_example_study(), "rating ~ gender + ideology",
    ...                 reference={"gender": "she/her", "ideology": "liberal"})
    >>> fit.terms[["term", "level", "reference"]].iloc[0].tolist()
    ['gender', 'he/him', 'she/her']
    >>> link = fit.effects(scale="link")
    >>> bool(link["std_error"].gt(0).all()), bool(link["difference"].isna().all())
    (True, True)
    """

    dimensions: list[str]
    formula: str
    family: str
    reml: bool
    fits: dict[str, DimensionFit]
    n_draws: int
    seed: int
    references: dict[str, str] = field(default_factory=dict)

    # ---------------------------------------------------------------- access
    def __repr__(self) -> str:
        dims = ", ".join(self.dimensions)
        return f"<MixedResult {self.family} {self.formula!r}: {dims}>"

    def _repr_html_(self) -> str:
        first = self.fits[self.dimensions[0]].design
        facts = {
            "formula": self.formula,
            "family": self.family + (" (REML)" if self.reml else ""),
            "dimensions": ", ".join(self.dimensions),
            "ratings": ", ".join(str(self.fits[d].design.n) for d in self.dimensions),
            "raters / items": f"{first.n_raters} / {first.n_items}",
            "converged": _yes_no(all(self.fits[d].fit.converged for d in self.dimensions)),
        }
        return html_summary("MixedResult", facts, self.effects(scale="link"))

    @property
    def terms(self) -> pd.DataFrame:
        """One row per coefficient of each formula term, per dimension (TERM_COLUMNS).

        Examples
        --------
        >>> fit = fit_mixed(_example_study(), "rating ~ gender")
        >>> fit.terms.columns.tolist()
        ['dimension', 'term', 'level', 'reference', 'coefficient', 'kind']
        """
        return term_table({dim: self.design(dim) for dim in self.dimensions})

    def design(self, dimension: str) -> Design:
        """The :class:`Design` of one dimension."""
        return self._fit(dimension).design

    def _fit(self, dimension: str | None) -> DimensionFit:
        return self.fits[one_dimension(self._dims(dimension), "the fit")]

    def _dims(self, dimension) -> list[str]:
        return fitted_dimensions(self.dimensions, dimension)

    @property
    def link(self) -> str:
        """Link of the linear predictor: ``"identity"`` (gaussian) or ``"logit"`` (binomial;
        the ordinal family's ``"logit"`` or ``"probit"``).

        Examples
        --------
        >>> fit_mixed(_example_study(), "rating ~ gender").link
        'identity'
        """
        return "identity" if self.family == "gaussian" else "logit"

    def standardiser(self, dimension: str) -> float:
        """Cohen's d denominator: ``sqrt(σ²_rater + σ²_item + σ²_residual)``.

        For the binomial and ordinal families the residual variance is the latent variance of
        the link (π²/3 for logit, 1 for probit) and d is computed from the link-scale estimate
        (latent-scale d). With random slopes the random part's variance differs between rows
        (``z'Σz``); its mean over the fitted ratings takes the place of ``σ²_rater + σ²_item``
        (the variance of the random part in the data, as for a random-slope R²).
        """
        f = self._fit(dimension)
        resid = f.fit.sigma2 if self.family == "gaussian" else LATENT_VARIANCE[self.link]
        if f.fit.random is None:
            return float(np.sqrt(f.var_rater + f.var_item + resid))
        X = f.design.X
        values = dict(zip(f.design.columns[1:], X[:, 1:].T, strict=True))
        random = float(np.mean(f.fit.random_variance(values, len(X))))
        return float(np.sqrt(random + resid))

    @property
    def _standardiser_definition(self) -> str:
        """How :meth:`standardiser` is defined (``effects().attrs["standardiser_definition"]``)."""
        slopes = any(f.fit.random is not None for f in self.fits.values())
        part = "mean random-effect variance of the ratings" if slopes else "var_rater + var_item"
        if self.family == "gaussian":
            return f"sqrt({part} + var_residual)"
        v = "pi^2/3" if self.link == "logit" else "1"
        return f"sqrt({part} + {v}) on the {self.link} scale"

    def _coefficient_weights(self, L: np.ndarray) -> np.ndarray:
        """Contrast weights over the design's columns as weights over the fitted ``beta``."""
        return L

    def _linear_predictor(self, X: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """``X β`` for design rows ``X`` (intercept column first)."""
        return X @ beta

    def random_effects(self, dimension: str | None = None) -> pd.DataFrame:
        """Conditional modes (BLUPs) of the random effects (RANDOM_EFFECT_COLUMNS).

        One row per level of each random term and each of its coefficients: ``dimension,
        term`` (e.g. ``"(1 + gender | item)"``), ``factor`` (``rater`` / ``item``), ``level``,
        ``coefficient`` (``"Intercept"`` or a slope column such as ``"gender[T.he/him]"``:
        how much that item's he/him − she/her difference departs from the average) and
        ``estimate`` (link scale).

        Examples
        --------
        >>> fit = fit_mixed(_example_study(), "rating ~ gender")
        >>> fit.random_effects()["term"].unique().tolist()
        ['(1 | rater)', '(1 | item)']
        """
        out = []
        for dim in self._dims(dimension):
            f = self._fit(dim)
            if getattr(f.fit, "random", None) is None:
                for name, levels, b in (
                    ("rater", f.design.rater_levels, f.fit.b1),
                    ("item", f.design.item_levels, f.fit.b2),
                ):
                    out.append(
                        pd.DataFrame(
                            {
                                "dimension": dim,
                                "term": f"(1 | {name})",
                                "factor": name,
                                "level": levels,
                                "coefficient": "Intercept",
                                "estimate": b,
                            }
                        )
                    )
                continue
            random = f.fit.random
            assert random is not None  # the intercept-only case continued above
            for k, t in enumerate(random.structure.terms):
                modes = random.modes(k)
                out.append(
                    pd.DataFrame(
                        {
                            "dimension": dim,
                            "term": t.label,
                            "factor": t.group,
                            "level": np.repeat(t.levels, t.q),
                            "coefficient": np.tile(
                                np.asarray(t.columns, dtype=object), len(t.levels)
                            ),
                            "estimate": modes.ravel(),
                        }
                    )
                )
        return pd.concat(out, ignore_index=True)[list(RANDOM_EFFECT_COLUMNS)]

    def variance_components(self, dimension: str | None = None) -> pd.DataFrame:
        """Standard deviations and correlations of every random term (VARIANCE_COLUMNS).

        As lme4's ``VarCorr``: per dimension and term, one ``sd`` row per coefficient and one
        ``cor`` row per pair (correlated terms); the ``sd`` of a slope column such as
        ``gender[T.he/him]`` in ``(1 + gender | item)`` is how much the groups' difference
        varies from item to item beyond its average (the fixed effect). The residual SD of
        the gaussian family is a row of term ``"residual"``.

        Examples
        --------
        >>> fit = fit_mixed(_example_study(), "rating ~ gender")
        >>> fit.variance_components()[["term", "kind", "parameter"]].iloc[0].tolist()
        ['(1 | rater)', 'sd', 'Intercept']
        """
        rows = []
        for dim in self._dims(dimension):
            f = self._fit(dim)
            fit = f.fit
            if getattr(fit, "random", None) is None:
                components = [
                    ("(1 | rater)", "sd", "Intercept", float(np.sqrt(f.var_rater))),
                    ("(1 | item)", "sd", "Intercept", float(np.sqrt(f.var_item))),
                ]
            else:
                components = fit.components()
            for term, kind, parameter, value in components:
                group = term.rstrip(")").split("|")[-1].strip()
                rows.append((dim, term, group, kind, parameter, value))
            if self.family == "gaussian":
                rows.append((dim, "residual", "", "sd", "Residual", float(np.sqrt(fit.sigma2))))
        return pd.DataFrame(rows, columns=list(VARIANCE_COLUMNS))

    # ---------------------------------------------------------------- draws and cells
    def beta_draws(self, dimension: str) -> np.ndarray:
        """``n_draws`` coefficient vectors from ``N(β̂, V̂)`` (seeded per dimension)."""
        f = self._fit(dimension).fit
        idx = self.dimensions.index(dimension)
        rng = np.random.default_rng([self.seed, idx])
        L = np.linalg.cholesky(f.vcov + 1e-14 * np.eye(len(f.beta)))
        return f.beta + rng.standard_normal((self.n_draws, len(f.beta))) @ L.T

    def _cells_design(self, cells: pd.DataFrame, dimension: str):
        """Counterfactual designs: for each cell, the fitted rows' patterns with the cell's values.

        Returns ``(X, W)``: the stacked design of all (cell, pattern) rows and an
        ``n_cells × rows`` matrix of averaging weights (rows of W sum to 1).
        """
        d = self._fit(dimension).design
        cells = cells.drop(columns="share", errors="ignore").reset_index(drop=True)
        extra = [c for c in cells.columns if c not in d.variables]
        if extra:
            raise KeyError(
                f"cells name {extra}, which are not variables of the formula {d.formula!r}; "
                "add them to the formula or leave them out"
            )
        frame, weights = cell_patterns(d, cells)
        n_c = len(cells)
        X = d.transform(frame)
        W = sp.kron(sp.identity(n_c, format="csr"), sp.csr_matrix(weights[None, :]), format="csr")
        return X, W

    def _expected(self, B: np.ndarray, X: np.ndarray, W: np.ndarray, dimension: str) -> np.ndarray:
        """Expected ratings ``(k, n_cells)`` for coefficient rows B (random effects averaged out)."""
        if self.family == "gaussian":
            return np.asarray((W @ (X @ B.T)).T)
        f = self._fit(dimension)
        s = np.sqrt(f.var_rater + f.var_item)
        out = np.empty((B.shape[0], W.shape[0]))
        for start in range(0, B.shape[0], _CHUNK):
            eta = B[start : start + _CHUNK] @ X.T
            p = expit(eta[..., None] + s * _GH_X) @ _GH_W
            out[start : start + _CHUNK] = np.asarray((W @ p.T).T)
        return out

    def _cell_values(self, cells: pd.DataFrame, B: np.ndarray, dimension: str) -> np.ndarray:
        X, W = self._cells_design(cells, dimension)
        return self._expected(B, X, W, dimension)

    def cell_means(self, cells: pd.DataFrame, dimension: str) -> np.ndarray:
        """Plug-in expected rating of each cell (at β̂); see :meth:`cell_mean_draws`."""
        X, W = self._cells_design(cells, dimension)
        return self._expected(self._fit(dimension).fit.beta[None, :], X, W, dimension)[0]

    def cell_mean_draws(self, cells: pd.DataFrame, dimension: str) -> np.ndarray:
        """Draws ``(n_draws, n_cells)`` of the expected rating of demographic cells.

        A cell fixes some demographics (columns of ``cells``); the others keep their observed
        mix: the expected rating is averaged over the fitted rows with the cell's values set
        (counterfactual average). Random effects are at their mean (identity link) or
        integrated over ``N(0, σ²_rater + σ²_item)`` by Gauss–Hermite quadrature (logit link).
        """
        X, W = self._cells_design(cells, dimension)
        return self._expected(self.beta_draws(dimension), X, W, dimension)

    # ---------------------------------------------------------------- protocol
    def effects(
        self,
        *,
        multiplicity: str | Sequence[str] | None = None,
        correction: str = "holm",
        ci_prob: float | None = None,
        scale: str = "rating",
        weights: str = "observed",
        df: str | None = None,
    ) -> pd.DataFrame:
        """One row per estimand (non-reference level of each term) with EFFECT_COLUMNS.

        Definitions
        -----------
        * ``estimand``: every column of a row is about one quantity, named here (see
          :func:`~pluralign.models.design_contrasts`): a categorical term's ``level −
          reference`` contrast averaged over the other variables of the formula with
          ``weights`` ("marginal over race (observed weights)"), as R's emmeans does. In an
          additive model it equals the coefficient; with ``gender * race`` the ``gender`` rows
          are the contrast averaged over race, not the coefficient (the effect at the
          reference race). Interaction rows are their coefficient (difference of differences).
        * ``estimate = L β̂`` on the link scale (rating points for ``gaussian``, log-odds for
          ``binomial``; for ``ordinal`` the latent scale of the cumulative link: a log
          cumulative odds ratio for the logit link, probit units for the probit link,
          positive = higher ratings); ``ci_low/ci_high`` Wald intervals ``estimate ± z·SE`` with ``SE² = L V̂
          L'`` and ``p_value`` the two-sided Wald z test (normal reference distribution, as
          lme4's z for glmer and emmeans' asymptotic df); ``std_error`` and ``statistic`` (z).
        * ``mean_level`` / ``mean_reference``: marginal mean rating of the two sides of the
          estimand (the term set to the level / reference in every fitted row, or in every
          cell of the equal-weight grid; random effects at their mean for the identity link,
          integrated for the logit link, where the "rating" is P(rating = 1); for ``ordinal``
          the population-averaged expected rating ``Σ_k value_k P(rating = k)``).
        * ``difference = mean_level - mean_reference``, ``relative_pct = 100·difference /
          mean_reference``; their intervals are percentiles of ``n_draws`` simulations from
          ``N(β̂, V̂)``.
        * ``cohens_d``: gaussian: ``difference / sqrt(σ²_rater + σ²_item + σ²_residual)``;
          binomial and ordinal: ``estimate / sqrt(σ²_rater + σ²_item + v)`` (latent scale;
          v = π²/3 for logit links, 1 for probit). The standardiser of each dimension is in
          ``result.attrs["standardiser"]``.
        * ``odds_ratio = exp(estimate)`` with its interval (logit links: binomial, ordinal
          logit; NaN otherwise).
        * ``p_adjusted``: ``correction`` over the ``multiplicity`` set (see
          :func:`~pluralign.models.adjust_pvalues`; default every row).

        Interaction terms (``gender:race``) and numeric variables get the link-scale columns
        only; compare intersections on the rating scale with :func:`compare_groups`.

        Parameters
        ----------
        multiplicity : str or sequence of str, optional
            Terms and/or dimensions whose contrasts are adjusted together (default all rows).
        correction : str, default "holm"
            Any ``statsmodels`` ``multipletests`` method, or ``"none"``.
        ci_prob : float, optional
            Interval probability (default ``options.ci_prob``).
        scale : {"rating", "link"}, default "rating"
            ``"link"`` returns the coefficient columns only (estimate, Wald interval and test,
            odds ratios, ``std_error``, ``statistic``): no simulation, about the cost of
            reading the coefficients; the rating-scale columns are NaN.
        weights : {"observed", "equal"}, default "observed"
            How a contrast is averaged over the other variables: their mix in the fitted
            ratings (emmeans' ``weights = "proportional"``), or every combination of the other
            categorical variables' levels alike (emmeans' default ``"equal"``).
        df : {None, "satterthwaite", "kenward-roger"}, default None
            Reference distribution of the coefficient tests and intervals: None gives the
            Wald z test; ``"satterthwaite"`` (linear models only) t tests on Satterthwaite's
            degrees of freedom, as lmerTest; ``"kenward-roger"`` (REML fits) t tests with
            Kenward–Roger's adjusted standard errors and df, as pbkrtest (see
            :func:`~pluralign.models.contrast_test`). The extra columns ``df`` (NaN for z) and
            ``test`` (``"Wald z"``, ``"t (Satterthwaite)"``, ``"t (Kenward-Roger)"``) say which;
            Kenward–Roger's ``std_error`` is the adjusted one.

        Examples
        --------
        >>> fit = fit_mixed(_example_study(), "rating ~ gender + ideology",
        ...                 reference={"gender": "she/her", "ideology": "liberal"})
        >>> eff = fit.effects()
        >>> eff[["term", "level", "reference"]].iloc[0].tolist()
        ['gender', 'he/him', 'she/her']
        >>> eff.attrs["standardiser_definition"]
        'sqrt(var_rater + var_item + var_residual)'
        >>> link = fit.effects(scale="link", multiplicity="gender")
        >>> link.groupby("term")["p_adjusted"].count().to_dict()
        {'gender': 3, 'ideology': 0}
        """
        if scale not in EFFECT_SCALES:
            raise ValueError(f"scale must be one of {EFFECT_SCALES}, got {scale!r}")
        ci_prob = options.ci_prob if ci_prob is None else ci_prob
        z = stats.norm.ppf(0.5 + ci_prob / 2)
        rows = []
        standardisers = {}
        for dim in self.dimensions:
            f = self._fit(dim)
            d, fit = f.design, f.fit
            sd = self.standardiser(dim)
            standardisers[dim] = sd
            contrasts = design_contrasts(d, weights=weights)
            L = np.array([c.L for c in contrasts]).reshape(len(contrasts), len(d.columns))
            tests = contrast_tests(self, dim, self._coefficient_weights(L), df, ci_prob)
            est = tests["estimate"].to_numpy()
            s = tests["std_error"].to_numpy()
            table = pd.DataFrame(
                {
                    "dimension": dim,
                    "term": [c.term for c in contrasts],
                    "level": [c.level for c in contrasts],
                    "reference": [c.reference for c in contrasts],
                    "estimand": [c.estimand for c in contrasts],
                    "estimate": est,
                    "ci_low": tests["ci_low"].to_numpy(),
                    "ci_high": tests["ci_high"].to_numpy(),
                    "p_value": tests["p_value"].to_numpy(),
                    "p_direction": np.nan,
                    "std_error": s,
                    "statistic": tests["statistic"].to_numpy(),
                    "df": tests["df"].to_numpy(),
                    "test": tests["test"].to_numpy(),
                }
            )
            on_scale = [i for i, c in enumerate(contrasts) if c.level_cells is not None]
            if on_scale and scale == "rating":
                chosen = [contrasts[i] for i in on_scale]

                lev_pt, ref_pt = rating_contrast_draws(
                    chosen, partial(self._cell_values, B=fit.beta[None, :], dimension=dim)
                )
                lev, ref = rating_contrast_draws(
                    chosen, partial(self._cell_values, B=self.beta_draws(dim), dimension=dim)
                )
                cols = contrast_columns(
                    lev,
                    ref,
                    ci_prob=ci_prob,
                    level_point=lev_pt[0],
                    reference_point=ref_pt[0],
                    standardiser=sd if self.family == "gaussian" else None,
                )
                cols.index = on_scale
                table = table.join(cols)
            if self.family != "gaussian":  # latent-scale d
                table["cohens_d"] = est / sd
            if self.link == "logit":  # exp(estimate) is an odds ratio
                table["odds_ratio"] = np.exp(est)
                table["odds_ratio_ci_low"] = np.exp(est - z * s)
                table["odds_ratio_ci_high"] = np.exp(est + z * s)
            rows.append(table)
        table = (
            pd.concat(rows, ignore_index=True)
            if rows
            else pd.DataFrame(columns=["dimension", "term", "p_value"])
        )
        out = finish_effects(table, multiplicity=multiplicity, correction=correction)
        out.attrs["standardiser"] = standardisers
        out.attrs["standardiser_definition"] = self._standardiser_definition
        out.attrs["ci_prob"] = ci_prob
        out.attrs["scale"] = scale
        return out

    def marginal_means(
        self, by: str | Sequence[str], *, ci_prob: float | None = None
    ) -> pd.DataFrame:
        """Marginal mean rating per level (combination) of ``by`` (counterfactual average).

        Examples
        --------
        >>> fit = fit_mixed(_example_study(), "rating ~ gender + ideology")
        >>> list(fit.marginal_means("gender").columns)
        ['gender', 'dimension', 'mean', 'ci_low', 'ci_high']
        """
        ci_prob = options.ci_prob if ci_prob is None else ci_prob
        by = [by] if isinstance(by, str) else list(by)
        out = []
        for dim in self.dimensions:
            d = self.design(dim)
            for v in by:
                if v not in d.levels:
                    raise KeyError(
                        f"by={v!r} is not a categorical variable of {d.formula!r} "
                        f"(variables: {sorted(d.levels)})"
                    )
            grid = pd.MultiIndex.from_product([d.levels[v] for v in by], names=by).to_frame(
                index=False
            )
            X, W = self._cells_design(grid, dim)
            point = self._expected(self._fit(dim).fit.beta[None, :], X, W, dim)[0]
            lo, hi = interval(self._expected(self.beta_draws(dim), X, W, dim), ci_prob)
            grid = grid.astype(str)
            grid["dimension"] = dim
            grid["mean"], grid["ci_low"], grid["ci_high"] = point, lo, hi
            out.append(grid)
        return pd.concat(out, ignore_index=True)[[*by, *MARGINAL_COLUMNS]]

    def predict(
        self, data: pd.DataFrame | None = None, *, include_random: bool = True
    ) -> pd.DataFrame:
        """Expected rating of each row (default: the fitted ratings), column ``prediction``.

        ``data`` needs the formula's demographics; ``rater``/``item`` columns (optional) add
        those random effects when ``include_random`` (unknown raters/items get 0, or are
        integrated for the logit link); a ``dimension`` column picks the dimension, otherwise
        every row is predicted for every fitted dimension.
        """
        out = []
        for _, frame, eta, var_left in self._linear_predictors(data, include_random):
            if self.family == "binomial":
                s = np.sqrt(np.maximum(var_left, 0.0))
                pred = expit(eta[:, None] + s[:, None] * _GH_X) @ _GH_W
            else:
                pred = eta
            frame["prediction"] = pred
            out.append(frame)
        return pd.concat(out, ignore_index=True)

    def _linear_predictors(self, data: pd.DataFrame | None, include_random: bool):
        """Per fitted dimension with rows in ``data``: ``(fit, rows, η, variance left)``.

        ``η`` is the linear predictor of each row with the known raters' and items' modes
        (``include_random``); the variance left is that of the random intercepts still to
        integrate (all of it for unknown raters / items). Raises when no row has a fitted
        dimension.
        """
        found = False
        for dim in self.dimensions:
            f = self._fit(dim)
            d, fit = f.design, f.fit
            if data is None:
                frame = d.data.copy()
                X = d.X
            else:
                frame = data if "dimension" not in data.columns else data[data["dimension"] == dim]
                if frame.empty:
                    continue
                frame = frame.copy()
                frame["dimension"] = dim
                X = d.transform(frame)
            eta = self._linear_predictor(X, fit.beta)
            var_left = np.full(len(frame), f.var_rater + f.var_item)
            if include_random:
                for col, levels, b, var in (
                    ("rater", d.rater_levels, fit.b1, f.var_rater),
                    ("item", d.item_levels, fit.b2, f.var_item),
                ):
                    if col not in frame.columns:
                        continue
                    pos = pd.Index(levels.astype(str)).get_indexer(frame[col].astype(str))
                    known = pos >= 0
                    eta = eta + np.where(known, b[np.maximum(pos, 0)], 0.0)
                    var_left = var_left - np.where(known, var, 0.0)
                eta = eta + _slope_part(d, fit, frame, data is None)
            found = True
            yield f, frame, eta, var_left
        if not found:
            raise ValueError(f"no row of data has a fitted dimension {self.dimensions}")

    def poststratify(
        self, target: Population | pd.DataFrame | Mapping | None, *, ci_prob: float | None = None
    ) -> pd.DataFrame:
        """Population-level expected rating for a target population (MRP).

        Each cell's expected rating (:meth:`cell_mean_draws`; demographics the target leaves out
        keep their observed mix) is weighted by the cell's population share; the interval comes
        from the simulated coefficient draws.

        Parameters
        ----------
        target : Population, mapping, DataFrame or None
            Anything :meth:`Population.parse <pluralign.data.Population.parse>` accepts:
            None (everyone), a group, margins or a frame of cells with ``share``.
        ci_prob : float, optional
            Interval probability (default ``options.ci_prob``).

        Returns
        -------
        DataFrame
            POSTSTRAT_COLUMNS: ``dimension, population, estimate, ci_low, ci_high``;
            ``population`` is the target's :attr:`~pluralign.data.Population.label`.

        See Also
        --------
        pluralign.models.compare_groups : the difference between two populations.

        Examples
        --------
        Re-weight the sample to census-like gender and ideology shares (independent margins):

        >>> fit = fit_mixed(_example_study(), "rating ~ gender + ideology")
        >>> census = {"gender": {"she/her": 0.51, "he/him": 0.49},
        ...           "ideology": {"liberal": 0.25, "centre": 0.38, "conservative": 0.37}}
        >>> fit.poststratify(census)[["dimension", "population"]].iloc[0].tolist()
        ['toxicity', 'poststratified[gender,ideology]']

        or give the joint cells directly:

        >>> cells = pd.DataFrame({"gender": ["she/her", "she/her", "he/him", "he/him"],
        ...                       "ideology": ["liberal", "conservative"] * 2,
        ...                       "share": [0.3, 0.2, 0.2, 0.3]})
        >>> est = fit.poststratify(cells)
        """
        ci_prob = options.ci_prob if ci_prob is None else ci_prob
        population = Population.parse(target)
        rows = []
        for dim in self.dimensions:
            population.check(self.design(dim).known_levels)
            share = population.shares
            X, W = self._cells_design(population.cells, dim)
            point = float(self._expected(self._fit(dim).fit.beta[None, :], X, W, dim)[0] @ share)
            draws = self._expected(self.beta_draws(dim), X, W, dim) @ share
            lo, hi = interval(draws, ci_prob)
            rows.append((dim, population.label, point, float(lo), float(hi)))
        return pd.DataFrame(rows, columns=list(POSTSTRAT_COLUMNS))

    def diagnostics(self) -> pd.DataFrame:
        """Convergence, gradient, singular-fit and dropped-row checks per dimension."""
        rows = []
        for dim in self.dimensions:
            f = self._fit(dim)
            fit = f.fit
            rows.append(
                (dim, "converged", "optimizer", float(fit.converged), fit.converged, fit.message)
            )
            rows.append(
                (
                    dim,
                    "gradient",
                    "theta",
                    float(np.max(np.abs(fit.gradient))),
                    fit.converged,
                    f"finite-difference gradient of the deviance at the optimum ({fit.n_evals} evaluations)",
                )
            )
            for name, th, sing in _singular_rows(fit):
                rows.append(
                    (
                        dim,
                        "singular_fit",
                        name,
                        float(th),
                        not sing,
                        "relative SD at the boundary (≈0): a variance at 0 or a correlation "
                        "at ±1, not identified"
                        if sing
                        else "relative SD > 1e-4",
                    )
                )
            rows.append(
                (
                    dim,
                    "dropped_rows",
                    "missing covariates",
                    float(f.design.n_dropped),
                    True,
                    f"{f.design.n_dropped} ratings dropped for missing covariates",
                )
            )
        return pd.DataFrame(rows, columns=list(DIAGNOSTIC_COLUMNS))

    def summary(self, *, df: str | None = None) -> pd.DataFrame:
        """Fixed effects, variance components and fit statistics of every dimension.

        Columns (MIXED_SUMMARY_COLUMNS): ``dimension, kind, parameter, estimate, std_error,
        statistic, p_value``. For the contrasts of formula terms with their levels, use
        :attr:`terms` and ``effects(scale="link")`` rather than parsing ``parameter``.

        Parameters
        ----------
        df : {None, "satterthwaite", "kenward-roger"}, default None
            None: Wald z tests of the fixed effects. ``"satterthwaite"`` or
            ``"kenward-roger"`` (linear models): t tests as lmerTest's ``summary(ddf=...)``
            (Kenward–Roger also adjusts ``std_error``); the columns ``df`` and ``test`` are
            added.
        """
        rows = []
        dfs, labels = [], []
        for dim in self.dimensions:
            f = self._fit(dim)
            d, fit = f.design, f.fit
            tests = coefficient_tests(self, dim, df, options.ci_prob)
            for name, b, s, p in zip(
                d.columns, fit.beta, tests["std_error"], tests["p_value"], strict=True
            ):
                rows.append((dim, "fixed", name, b, s, b / s, p))
            dfs.extend(tests["df"])
            labels.extend(tests["test"])
            rows.extend(random_rows(dim, fit))
            if self.family == "gaussian":
                rows.append((dim, "variance", "residual", fit.sigma2, np.nan, np.nan, np.nan))
            rows.extend(fit_statistic_rows(dim, f))
            n_other = len(rows) - len(dfs)
            dfs.extend([np.nan] * n_other)
            labels.extend([None] * n_other)
        table = pd.DataFrame(rows, columns=list(MIXED_SUMMARY_COLUMNS))
        if df is not None:
            table["df"], table["test"] = dfs, labels
        return table


def fit_mixed(
    study: Study,
    formula: str = "rating ~ gender",
    *,
    dimension: str | Sequence[str] | None = None,
    family: str = "gaussian",
    link: str = "logit",
    reml: bool = True,
    reference: Mapping[str, str] | None = None,
    coding: str = "collapsed",
    scale_numeric: str | Mapping[str, str] = "none",
    n_draws: int = 4000,
    seed: int | None = None,
    progressbar: bool = True,
    approximate: bool = False,
) -> MixedResult:
    """Fit a mixed model with crossed random intercepts for rater and item, per dimension.

    ``rating ~ X β + (1 | rater) + (1 | item)``, fitted separately for each dimension:

    * ``family="gaussian"``: linear mixed model by REML (default) or ML with lme4's algorithm
      (profiled deviance over the relative SDs θ, penalised least squares; Bates et al. 2015).
      Agrees with ``lme4::lmer`` to about 1e-5 relative on coefficients, SEs and variances.
    * ``family="binomial"``: logistic mixed model for 0/1 ratings by the Laplace approximation
      (as ``lme4::glmer`` with ``nAGQ = 1``); ``reml`` is ignored.
    * ``family="ordinal"``: cumulative-link mixed model (``link="logit"`` or ``"probit"``) for
      ordered ratings by the Laplace approximation, as ``ordinal::clmm``; returns an
      :class:`~pluralign.models.OrdinalMixedResult` (see :mod:`pluralign.models._clmm`);
      ``reml`` is ignored.

    Parameters
    ----------
    study : Study
    formula : str
        Fixed effects, e.g. ``"rating ~ gender + ideology"`` or ``"rating ~ gender * race"``;
        ``(1|rater)`` and ``(1|item)`` may be written and are always included. Columns of the
        items table (``source_model``, ``length``) may be used too, also crossed with
        demographics (``"rating ~ gender * source_model"``). Random slopes
        replace that default with the terms written, as in lme4: ``"rating ~ gender +
        (1|rater) + (1 + gender|item)"`` lets the gender difference vary by item (correlated
        with the item intercept; ``||`` for uncorrelated, diagonal terms), so groups that
        disagree on specific items show as the slope's SD in :meth:`MixedResult.variance_components`
        and are tested by :func:`~pluralign.models.random_slope_test`. Every family (the
        ordinal one as ``ordinal::clmm``, whose rating-scale summaries integrate each cell's
        own random-effect variance, slopes included). With slopes in the binomial family, rating-scale summaries integrate over the rater and item *intercept*
        variances only (the link-scale effects are exact).
    dimension : str or list of str, optional
        Dimensions to fit (default: all).
    family : {"gaussian", "binomial", "ordinal"}
    link : {"logit", "probit"}, default "logit"
        Link of the ordinal family (the other families take only their default link).
    reml : bool, default True
    reference : mapping, optional
        Reference level per demographic, e.g. ``{"gender": "she/her"}`` (default:
        :meth:`Study.reference_level <pluralign.data.Study.reference_level>`: the declared
        ``study.reference``, else the level with the most raters).
    coding : {"collapsed", "indicators"}
        Multi-select demographics as one category or as 0/1 indicators (see
        :func:`~pluralign.models._design.build_design`).
    scale_numeric : {"none", "center", "standardize"} or mapping, default "none"
        Centre (and scale) numeric covariates before fitting, all or per variable; the
        centres and scales are in ``fit.design(dim).numeric_scaling`` and
        ``fit.terms.attrs["numeric_scaling"]`` (see
        :func:`~pluralign.models._design.build_design`).
    n_draws : int, default 4000
        Simulated coefficient vectors for rating-scale intervals.
    seed : int, optional
        Seed of those simulations (default ``options.seed``).
    progressbar : bool, default True
        Progress bar over dimensions (shown when there are several).
    approximate : bool, default False
        A cheaper, approximate Gaussian fit for screening many studies (power analysis): the
        crossed system's matrix-free iterative factor at large sizes, a looser optimiser
        tolerance and no finite-difference convergence check (the optimiser's own verdict
        decides ``converged``). Wald z statistics stay within about 10⁻³ of the exact fit's
        at paper scale, 3–5 times faster. Gaussian family with the default random intercepts
        only.

    Returns
    -------
    MixedResult

    See Also
    --------
    MixedResult : the result and its methods.
    pluralign.models.fit_bayes : Bayesian (ordinal) counterpart.
    pluralign.describe.relative_difference : model-free group differences.

    Warns
    -----
    ConvergenceWarning
        If the optimiser fails, the gradient is not ~0, or a fit is singular (lme4's
        ``isSingular``: a variance at 0 or a correlation at ±1), naming the random term.
    DroppedRowsWarning
        If ratings with missing covariates are dropped.

    Notes
    -----
    statsmodels' ``MixedLM`` can fit the same crossed model only as one group holding all
    rows with two variance components (``groups=np.ones(n)``, ``vc_formula={"rater":
    "0 + C(rater)", "item": "0 + C(item)"}``); ``groups=rater`` with an item variance
    component fits items *nested* in raters, a different model whose SEs are too small.

    References
    ----------
    Bates, D., Mächler, M., Bolker, B. & Walker, S. (2015). Fitting linear mixed-effects models
    using lme4. Journal of Statistical Software, 67(1). doi:10.18637/jss.v067.i01

    Examples
    --------
    >>> fit = fit_mixed(_example_study(), "rating ~ gender + ideology",
    ...                 reference={"gender": "she/her"})
    >>> fit.summary().query("kind == 'fixed'")["parameter"].tolist()[:2]
    ['Intercept', 'gender[T.he/him]']

    Let the he/him − she/her difference vary by item (uncorrelated with the item intercept):

    >>> study = _example_study()
    >>> two = study.subset(raters=study.raters.query("gender in ['she/her', 'he/him']")["rater"])
    >>> import warnings
    >>> with warnings.catch_warnings():  # these data have no item-specific gap: singular fit
    ...     warnings.simplefilter("ignore")
    ...     slopes = fit_mixed(two, "rating ~ gender + (1|rater) + (1 + gender||item)",
    ...                        reference={"gender": "she/her"})
    >>> slopes.variance_components().query("kind == 'sd'")["parameter"].tolist()[:3]
    ['Intercept', 'Intercept', 'gender[T.he/him]']

    Who *and* what: a rater column crossed with an item column (the response's length, per SD):

    >>> fit = fit_mixed(_example_study(), "rating ~ ideology * length",
    ...                 scale_numeric="standardize")
    >>> fit.design("toxicity").sources
    {'ideology': 'raters', 'length': 'items'}
    >>> fit.terms.query("kind == 'interaction'")["level"].tolist()
    ['centre', 'conservative']
    """
    from pluralign.data import check_design

    check_design(study, formula, dimension)
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    dims = study.resolve_dimensions(dimension)
    if link != "logit" and family != "ordinal":
        raise ValueError(f"link={link!r} is available for family='ordinal' only")
    if link not in LINKS:
        raise ValueError(f"link must be one of {sorted(LINKS)} for family='ordinal', got {link!r}")
    if approximate and family != "gaussian":
        raise ValueError(
            f"approximate=True is available for family='gaussian' only, not {family!r}"
        )

    if family == "ordinal":  # its result extends MixedResult
        from pluralign.models._clmm import OrdinalMixedResult, fit_ordinal_dimension

        fit_one: Callable[[Design], DimensionFit] = partial(fit_ordinal_dimension, link=link)
        result: type[MixedResult] = OrdinalMixedResult
        extra: dict[str, Any] = {"link": link}
    else:
        fit_one = partial(_fit_dimension, family=family, reml=reml, approximate=approximate)
        result, extra = MixedResult, {}
    return result(
        family=family,
        reml=reml and family == "gaussian",
        **extra,
        **fit_dimensions(
            study,
            formula,
            dims,
            fit_one,
            design={"reference": reference, "coding": coding, "scale_numeric": scale_numeric},
            n_draws=n_draws,
            seed=seed,
            progressbar=progressbar,
            stacklevel=2,
        ),
    )


def _fit_dimension(design: Design, *, family: str, reml: bool, approximate: bool) -> DimensionFit:
    """Fit the linear (``family="gaussian"``) or logistic mixed model to one dimension."""
    if family == "binomial":
        bad = sorted(set(np.unique(design.y)) - {0.0, 1.0})
        if bad:
            raise ValueError(
                f"{design.dimension}: family='binomial' needs 0/1 ratings, found {bad[:5]}; "
                "recode with pluralign.labels.rescale(study, to='binary')"
            )
        if design.has_random_terms:
            fit = fit_glmm_terms(design.X, design.y, RandomStructure(design.random))
        else:
            fit = fit_glmm_logit(design.X, design.y, design.rater_codes, design.item_codes)
    elif design.has_random_terms:
        if approximate:
            raise ValueError("approximate=True fits the default random intercepts only")
        fit = fit_lmm_terms(design.X, design.y, RandomStructure(design.random), reml=reml)
    else:
        fit = fit_lmm(
            design.X,
            design.y,
            design.rater_codes,
            design.item_codes,
            reml=reml,
            approximate=approximate,
        )
    return DimensionFit(design, fit)


def fit_dimensions(
    study,
    formula: str,
    dims: Sequence[str],
    fit_one: Callable[[Design], DimensionFit],
    *,
    design: Mapping[str, Any],
    n_draws: int,
    seed: int | None,
    progressbar: bool,
    stacklevel: int,
) -> dict[str, Any]:
    """Code each dimension (:func:`build_design` with the options ``design``), fit it with
    ``fit_one`` and warn of a fit that did not converge or is singular, naming the random
    term (every family's loop).

    Returns the fields every mixed-model result has (``dimensions``, ``formula``, ``fits``,
    ``n_draws``, ``seed``, ``references``); ``stacklevel`` is the warnings' level as seen
    from the caller.
    """
    from pluralign._compat import tqdm

    fits: dict[str, DimensionFit] = {}
    for dim in tqdm(dims, desc="fit_mixed", disable=not progressbar or len(dims) < 2):
        fitted = fit_one(build_design(study, formula, dimension=dim, allow_random=True, **design))
        fit = fitted.fit
        if not fit.converged:
            warnings.warn(f"{dim}: {fit.message}", ConvergenceWarning, stacklevel=stacklevel + 1)
        for term, sing in fit.singular_terms():
            if sing:
                what = (
                    f"the {term.strip('()').split('|')[-1].strip()} variance is estimated as 0"
                    if term.startswith("(1 |")
                    else "a variance is estimated as 0 or a correlation as ±1"
                )
                warnings.warn(
                    f"{dim}: singular fit of {term}: {what}",
                    ConvergenceWarning,
                    stacklevel=stacklevel + 1,
                )
        fits[dim] = fitted
    first = fits[dims[0]].design
    return {
        "dimensions": list(dims),
        "formula": first.formula,
        "fits": fits,
        "n_draws": int(n_draws),
        "seed": options.seed if seed is None else int(seed),
        "references": dict(first.references),
    }


def _slope_part(d: Design, fit: LMMFit, frame: pd.DataFrame, fitted: bool) -> np.ndarray:
    """Slope modes' contribution ``Σ_j z_j b_j`` (slope columns only; the intercepts are added
    by the caller) for rows of ``frame`` whose rater / item was fitted."""
    out = np.zeros(len(frame))
    random = getattr(fit, "random", None)
    if random is None:
        return out
    from formulaic import model_matrix

    for k, t in enumerate(random.structure.terms):
        slope = [j for j, c in enumerate(t.columns) if c != "Intercept"]
        if not slope or t.group not in frame.columns:
            continue
        if fitted:
            values = t.values
        else:
            values = np.asarray(model_matrix(f"~ {t.expr}", d.prepare(frame)), dtype=float)
        pos = pd.Index(t.levels.astype(str)).get_indexer(frame[t.group].astype(str))
        known = pos >= 0
        modes = random.modes(k)[np.maximum(pos, 0)]
        out += np.where(known, np.sum(values[:, slope] * modes[:, slope], axis=1), 0.0)
    return out


def _singular_rows(fit: LMMFit) -> list[tuple[str, float, bool]]:
    """``(parameter, smallest relative SD, singular)`` per random term for diagnostics()."""
    random = getattr(fit, "random", None)
    if random is None:
        return [("rater", fit.theta[0], fit.singular[0]), ("item", fit.theta[1], fit.singular[1])]
    re = random.structure
    out = []
    for t, s, sing in zip(re.terms, re.theta_slices, fit.singular, strict=True):
        diag = fit.theta[s][re.lower[s] == 0]
        out.append((t.label, float(np.min(diag)), sing))
    return out


def random_rows(dim: str, fit: CrossedFit) -> list[tuple]:
    """Summary rows of the random part of one dimension's fit: the rater and item intercept
    variances, or with general random terms every variance and correlation (:func:`_term_rows`)."""
    if fit.random is None:
        parts = [("variance", "rater", fit.var1), ("variance", "item", fit.var2)]
    else:
        parts = _term_rows(fit)
    return [(dim, *row, np.nan, np.nan, np.nan) for row in parts]


def _term_rows(fit: CrossedFit) -> list[tuple[str, str, float]]:
    """Summary rows ``(kind, parameter, estimate)`` of general random terms.

    Intercept variances are named by their factor (``rater``, ``item``) as in the default
    model; slope variances ``"item: gender[T.he/him]"``; correlations (kind ``correlation``)
    ``"item: cor(Intercept, gender[T.he/him])"``.
    """
    rows = []
    for term, kind, parameter, value in fit.components():
        group = term.rstrip(")").split("|")[-1].strip()
        if kind == "sd":
            name = group if parameter == "Intercept" else f"{group}: {parameter}"
            rows.append(("variance", name, value**2))
        else:
            rows.append(("correlation", f"{group}: cor({parameter})", value))
    return rows


def fit_statistic_rows(dim: str, f: DimensionFit) -> list[tuple]:
    """Summary rows (kind ``"fit"``) of one dimension: log-likelihood, deviance (or REML
    criterion), AIC, BIC and the numbers of ratings, raters and items."""
    fit, d = f.fit, f.design
    crit = "REML criterion" if fit.reml else "deviance"
    return [
        (dim, "fit", name, float(val), np.nan, np.nan, np.nan)
        for name, val in (
            ("logLik", fit.loglik),
            (crit, fit.deviance),
            ("AIC", fit.aic),
            ("BIC", fit.bic),
            ("n_ratings", fit.n),
            ("n_raters", d.n_raters),
            ("n_items", d.n_items),
        )
    ]


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no (see diagnostics())"


def _example_study():
    """A small simulated study (one dimension, no missing demographics) for the examples."""
    from pluralign.data import simulate_study

    return simulate_study(
        n_raters=150,
        n_prompts=20,
        responses_per_prompt=3,
        seed=3,
        dimensions=["toxicity"],
        missing_share=0.0,
    ).study
