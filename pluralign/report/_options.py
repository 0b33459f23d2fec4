"""The settings of a study report: what to analyse, and how the Bayesian model is sampled."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pluralign._settings import options

#: Models the report can fit.
REPORT_MODELS = ("mixed", "bayes")


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
    bayes_dimension : str, optional
        Dimension of the Bayesian model (default: the first analysed dimension).
    bayes_formula : str, optional
        Formula of the Bayesian model (default: the mixed model's, ``rating ~`` every
        analysed demographic).
    family, sampler, draws, tune, chains
        Passed to :func:`pluralign.models.fit_bayes` (fewer draws than its defaults: the
        report shows effects, for which 2 × 300 draws suffice; raise them for a final analysis).
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
    """

    dimensions: tuple[str, ...] | None = None
    demographics: tuple[str, ...] | None = None
    models: tuple[str, ...] = ("mixed",)
    labels: bool = True
    n_boot: int | None = None
    seed: int | None = None
    bayes_dimension: str | None = None
    bayes_formula: str | None = None
    family: str = "ordinal"
    sampler: str = "nutpie"
    draws: int = 300
    tune: int = 300
    chains: int = 2
    posterior_draws: int | None = 200
    posterior_prompts: int | None = None
    title: str | None = None

    def __post_init__(self) -> None:
        for name in ("dimensions", "demographics", "models"):
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
