"""The settings of a study report: what to analyse, and how the Bayesian model is sampled."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pluralign._settings import options

if TYPE_CHECKING:
    from pluralign.models import Priors

#: Models the report can fit.
REPORT_MODELS = ("mixed", "bayes")

#: Ways :func:`pluralign.models.fit_bayes` computes the posterior (its ``method=``).
BAYES_METHODS = ("nuts", "laplace")


def _as_tuple(value: str | Sequence[str] | None, name: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    try:
        return tuple(str(v) for v in value)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of strings, got {value!r}") from None


@dataclass(frozen=True)
class ReportOptions:
    """Settings of :func:`~pluralign.report.write_report` (typed, frozen, validated once).

    Parameters
    ----------
    dimensions : sequence of str, optional
        Dimensions to analyse (default: all of the study's).
    demographics : sequence of str, optional
        Demographics entering the comparisons and models (default: every demographic with 2
        to 12 levels).
    models : sequence of {"mixed", "bayes"}, default ("mixed",)
        Models to fit. ``"bayes"`` fits a Bayesian model of ``bayes_dimension`` (needs the
        ``bayes`` extra) and enables posterior preference labels.
    labels : bool, default True
        Whether to build preference labels and label flips.
    n_boot : int, optional
        Bootstrap resamples of the descriptive and agreement intervals (default
        ``pluralign.options.n_boot`` at run time).
    seed : int, optional
        Seed of every random step (default ``pluralign.options.seed`` at run time).
    formula : str, optional
        Fixed effects of the models, over rater and item columns, e.g. ``"rating ~ gender *
        source_model"`` (default: ``rating ~`` every analysed demographic, crossed with
        ``item_covariates`` when given). Random intercepts for raters and items are always
        added.
    item_covariates : sequence of str, optional
        Columns of the items table (e.g. ``"source_model"``: which LLM wrote the response).
        Without ``formula`` each enters the default formula crossed with every demographic
        (cross-level interactions). Each categorical one also gets the group differences
        *within* each of its levels: descriptive (``relative_difference(..., within=)``) and
        from the mixed model (:func:`pluralign.models.effects_within`). Default: the item
        columns named in ``formula``.
    bayes_dimension : str, optional
        Dimension of the Bayesian model (default: the first analysed dimension).
    bayes_formula : str, optional
        Formula of the Bayesian model (default: the mixed model's).
    family, sampler, draws, tune, chains, method
        Passed to :func:`pluralign.models.fit_bayes` (fewer draws than its defaults: the
        report shows effects, for which 2 × 300 draws suffice; raise them for a final analysis).
        ``method="laplace"`` draws from an embedded Laplace approximation instead of NUTS
        (ordinal and bernoulli families; ``tune`` and ``sampler`` are then not used).
    priors : Priors or mapping, optional
        Prior scales of the Bayesian model (:class:`pluralign.models.Priors`, or a mapping
        of its fields such as ``{"beta_sd": 0.5}``; default ``Priors()``).
    posterior_draws : int, optional
        Posterior draws used by posterior labels (None: all).
    posterior_prompts : int, optional
        Prompts given posterior labels (None: all); bounds their cost on large studies.
    title : str, optional
        Title of the report (default ``"pluralign report: <study name>"``).

    See Also
    --------
    write_report : Writes the report with these settings.
    analyse : Runs the same stages without writing anything.

    Examples
    --------
    >>> opts = ReportOptions(dimensions=["toxicity"], models=("mixed", "bayes"), draws=200)
    >>> opts.models, opts.draws
    (('mixed', 'bayes'), 200)
    >>> opts.replace(labels=False).labels
    False
    >>> ReportOptions(item_covariates="source_model", priors={"beta_sd": 0.5}).priors.beta_sd
    0.5
    """

    dimensions: tuple[str, ...] | None = None
    demographics: tuple[str, ...] | None = None
    models: tuple[str, ...] = ("mixed",)
    labels: bool = True
    n_boot: int | None = None
    seed: int | None = None
    formula: str | None = None
    item_covariates: tuple[str, ...] | None = None
    bayes_dimension: str | None = None
    bayes_formula: str | None = None
    family: str = "ordinal"
    sampler: str = "nutpie"
    draws: int = 300
    tune: int = 300
    chains: int = 2
    method: str = "nuts"
    priors: Priors | None = None
    posterior_draws: int | None = 200
    posterior_prompts: int | None = None
    title: str | None = None

    def __post_init__(self) -> None:
        for name in ("dimensions", "demographics", "models", "item_covariates"):
            object.__setattr__(self, name, _as_tuple(getattr(self, name), name))
        if self.models is None:
            raise ValueError("models must name the models to fit, e.g. ('mixed',) or ()")
        unknown = sorted(set(self.models) - set(REPORT_MODELS))
        if unknown:
            raise ValueError(f"models: unknown {unknown}; choose from {list(REPORT_MODELS)}")
        for name in ("n_boot", "draws", "tune", "chains", "posterior_draws", "posterior_prompts"):
            value = getattr(self, name)
            if value is not None and (int(value) != value or value < 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.method not in BAYES_METHODS:
            raise ValueError(f"method: unknown {self.method!r}; choose from {list(BAYES_METHODS)}")
        for name in ("formula", "bayes_formula"):
            value = getattr(self, name)
            if value is not None and "~" not in str(value):
                raise ValueError(f"{name} must read 'rating ~ ...', got {value!r}")
        if self.priors is not None:
            from pluralign.models import Priors

            if isinstance(self.priors, Mapping):
                unknown = sorted(set(self.priors) - {f.name for f in dataclasses.fields(Priors)})
                if unknown:
                    raise ValueError(
                        f"priors: unknown prior scale(s) {unknown}; known: {list(Priors.scales())}"
                    )
                object.__setattr__(self, "priors", Priors(**self.priors))
            elif not isinstance(self.priors, Priors):
                raise TypeError(
                    f"priors must be a pluralign.models.Priors or a mapping of its fields, "
                    f"got {type(self.priors).__name__}"
                )

    def replace(self, **changes: Any) -> ReportOptions:
        """A copy with some settings changed (validated again)."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise TypeError(f"unknown report option(s) {unknown}; known: {sorted(names)}")
        return dataclasses.replace(self, **changes)

    @property
    def resolved_n_boot(self) -> int:
        """``n_boot``, or ``pluralign.options.n_boot`` when it is None."""
        return options.n_boot if self.n_boot is None else int(self.n_boot)

    @property
    def resolved_seed(self) -> int:
        """``seed``, or ``pluralign.options.seed`` when it is None."""
        return options.seed if self.seed is None else int(self.seed)
