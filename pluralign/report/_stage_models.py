"""The report's model stage: the linear mixed model (with item covariates and contrasts within
their levels) and the Bayesian model, each table with the note on its intervals."""

from __future__ import annotations

from functools import partial
from typing import Any

import pandas as pd

from pluralign._settings import options
from pluralign.report._analysis import (
    Analysis,
    _diagnostics_table,
    _plot,
    crossed_with,
    wide_intervals,
)
from pluralign.report._coverage import interval_note
from pluralign.report._render import Note, Section, Table, Text

#: How the mixed model's p-values are adjusted (``ModelResult.effects()``'s default).
MIXED_ADJUSTMENT = (
    "* marks a Holm-adjusted Wald p < {alpha:.2g}, Holm over every row of one dimension's model"
)

#: Columns of the Bayesian effects shown in the report (bayes_effects.csv has them all).
BAYES_SHOWN: tuple[str, ...] = ("term", "level", "reference", "estimate", "ci_low", "ci_high")
BAYES_SHOWN += ("p_direction", "p_tail", "odds_ratio", "difference", "relative_pct")

#: How the Bayesian model's probabilities are (not) adjusted.
BAYES_ADJUSTMENT = (
    "p_direction and p_tail are posterior probabilities, not p-values, and are not adjusted "
    "for multiplicity"
)


def _mixed_note(
    calibration: str, interval: str = "Wald intervals (normal reference)", *, figure: bool = False
) -> str:
    """The note under a mixed-model table: Wald or simulation intervals, Holm within a model, and
    the coverage and the null rejection rate of the Wald test in simulation."""
    adjust = MIXED_ADJUSTMENT.format(alpha=1 - options.ci_prob)
    if figure:
        adjust = adjust.replace("* marks", "a filled dot marks") + (
            "; thin lines widen each interval to the Holm-adjusted level"
        )
    return interval_note(interval, adjust, (calibration, "mixed_null"))


def stage_models(a: Analysis) -> None:
    """Mixed-model (and optionally Bayesian) effects of the demographics and item covariates."""
    models = a.settings.models
    s = a.section("Model effects", "models")
    formula = a.formula
    s.add(
        Text(
            f"Formula `{formula}` with crossed random intercepts for raters and items, fitted "
            "separately for each dimension. Effects are contrasts against the reference level; "
            f"intervals are {options.ci_prob:.0%}; p-values are Holm-adjusted within each model."
        )
    )
    if "mixed" in models:
        a.run(s, "Linear mixed model", lambda: _mixed(a, s))
        fits = a.results.get("mixed", {})
        for within in a.within if fits else ():
            a.run(
                s,
                f"Model effects within {within}",
                partial(_mixed_within, a, s, fits, within),
            )
    if "bayes" in models:
        a.run(s, "Bayesian model", lambda: _bayes(a, s))


def _mixed(a: Analysis, s: Section) -> None:
    from pluralign import plots
    from pluralign.models import fit_mixed

    fits, effects, diags = {}, [], []
    for dim in a.dimensions:
        fit = fit_mixed(a.study, a.formula, dimension=dim, seed=a.seed)
        fits[dim] = fit
        effects.append(fit.effects())
        diags.append(fit.diagnostics())
    eff = pd.concat(effects, ignore_index=True)
    eff.attrs = effects[0].attrs
    diag = pd.concat(diags, ignore_index=True)
    a.results["mixed"] = fits
    a.results["mixed_effects"] = eff
    eff = eff.assign(contrast=eff["level"].astype(str) + " vs " + eff["reference"].astype(str))
    rating_scale = eff[eff["difference"].notna()]
    s.add(
        Table(
            wide_intervals(
                rating_scale,
                "difference",
                "difference_ci_low",
                "difference_ci_high",
                ["term", "contrast"],
                p="p_adjusted",
            ),
            "Linear mixed model: difference in expected rating (rating points) with "
            f"{options.ci_prob:.0%} CI, each a contrast averaged over the other "
            "variables in their observed mix (marginal, as emmeans)",
            max_rows=80,
            name="mixed_difference",
            note=_mixed_note("mixed_difference"),
        )
    )
    s.add(
        Table(
            wide_intervals(
                rating_scale,
                "relative_pct",
                "relative_ci_low",
                "relative_ci_high",
                ["term", "contrast"],
                digits=1,
                p="p_adjusted",
            ),
            "Linear mixed model: difference in percent of the reference group's mean",
            max_rows=80,
            name="mixed_relative",
            note=_mixed_note("mixed_relative", "percentile intervals of simulations from N(β̂, V̂)"),
        )
    )
    if eff["difference"].isna().any():  # interactions and numeric terms: link scale only
        s.add(
            Text(
                "Interactions (`a:b`) and numeric variables have no single rating-scale "
                "contrast: their coefficients follow, each one estimand (an interaction is how "
                "much a contrast changes from the reference level of the other variable to "
                "this one, a difference of differences; a main effect in a model with "
                "interactions is the contrast at the other variable's reference level)."
            )
        )
        s.add(
            Table(
                wide_intervals(
                    eff, "estimate", "ci_low", "ci_high", ["term", "contrast"], p="p_adjusted"
                ),
                "Linear mixed model coefficients (rating points)",
                max_rows=80,
                name="mixed_coefficients",
                note=_mixed_note("mixed_difference"),
            )
        )
    _plot(
        s,
        plots.forest,
        rating_scale,
        "Linear mixed model effects in percent of the reference mean: thick lines are "
        f"{options.ci_prob:.0%} CIs, thin lines Holm-adjusted",
        "mixed_effects",
        note=_mixed_note(
            "mixed_relative", "percentile intervals of simulations from N(β̂, V̂)", figure=True
        ),
    )
    s.add(
        Table(
            _diagnostics_table(diag),
            "Linear mixed model diagnostics (value; ✗ = failed)",
            name="mixed_diagnostics",
        )
    )
    bad = diag[~diag["ok"].astype(bool)] if "ok" in diag.columns else diag.iloc[:0]
    if len(bad):
        s.add(Note(f"{len(bad)} diagnostic check(s) failed; see the table.", "warning"))


def _mixed_within(a: Analysis, s: Section, fits: dict, within: str) -> None:
    """Each demographic's contrasts on the items of each level of ``within`` (``effects_within``)."""
    from pluralign.models import effects_within

    demos = crossed_with(a.formula, within, a.demographics)
    if not demos:
        s.add(
            Note(
                f"No demographic interacts with `{within}` in the formula, so the model's "
                f"contrasts are the same on every level of `{within}` (cross them, e.g. "
                f"`gender * {within}`, to let them differ).",
                "skipped",
            )
        )
        return
    ew = pd.concat(
        [effects_within(fit, demo, within) for fit in fits.values() for demo in demos],
        ignore_index=True,
    )
    a.results[f"mixed_within_{within}"] = ew
    ew = ew.assign(contrast=ew["level"].astype(str) + " vs " + ew["reference"].astype(str))
    s.add(
        Text(
            f"Each demographic's contrast on the items of each level of `{within}` (from the model "
            f"with its cross-level interactions; `effects_within`): the expected rating of the "
            f"group minus that of the reference group, both on the items of that `{within}`."
        )
    )
    s.add(
        Table(
            wide_intervals(
                ew,
                "relative_pct",
                "relative_ci_low",
                "relative_ci_high",
                [within, "term", "contrast"],
                digits=1,
                p="p_adjusted",
            ),
            f"Linear mixed model: difference in percent of the reference group's mean within each "
            f"level of {within}",
            max_rows=80,
            name=f"mixed_within_{within}",
            note=interval_note(
                "percentile intervals of simulations from N(β̂, V̂)",
                f"* marks a Holm-adjusted p < {1 - options.ci_prob:.2g}, Holm over the levels of "
                f"one demographic × {within} in one dimension",
                "mixed_relative",
            ),
        )
    )


def _bayes(a: Analysis, s: Section) -> None:
    from pluralign import plots
    from pluralign.models import fit_bayes

    cfg = a.settings
    opts: dict[str, Any] = {
        "family": cfg.family,
        "sampler": cfg.sampler,
        "draws": cfg.draws,
        "tune": cfg.tune,
        "chains": cfg.chains,
        "method": cfg.method,
        "priors": cfg.priors,
    }
    dim = cfg.bayes_dimension or a.dimensions[0]
    bayes_formula = cfg.bayes_formula or a.formula
    fit = fit_bayes(a.study, bayes_formula, dimension=dim, seed=a.seed, progressbar=False, **opts)
    a.results["bayes"] = fit
    eff = fit.effects()
    a.results["bayes_effects"] = eff
    if cfg.method == "laplace":
        how = (
            f"{cfg.chains * cfg.draws} independent draws from an embedded Laplace approximation, "
            "corrected by importance sampling"
        )
    else:
        how = (
            f"NUTS ({cfg.sampler}), {cfg.chains} chains × {cfg.draws} draws after {cfg.tune} tuning"
        )
    priors = cfg.priors
    prior_text = "default priors" if priors is None else f"priors {priors}"
    s.add(
        Text(
            f"Bayesian {cfg.family} model `{bayes_formula}` of `{dim}` with crossed rater and "
            f"item effects ({how}; {prior_text}): link-scale estimates are log-odds of a higher "
            "rating; intervals are highest-density intervals."
        )
    )
    note = interval_note(
        "highest-density intervals (HDI) of the posterior", BAYES_ADJUSTMENT, "bayes_hdi"
    )
    s.add(
        Table(
            eff[[c for c in BAYES_SHOWN if c in eff.columns]],
            f"Bayesian {cfg.family} model of {dim}: log-odds of a higher rating "
            f"({options.ci_prob:.0%} HDI), odds ratio and difference in expected rating; "
            "p_direction is the posterior probability of the estimate's sign and p_tail "
            "= 2 (1 - p_direction), at least 1/draws (read < 1/draws)",
            max_rows=60,
            name="bayes_effects",
            note=note,
        )
    )
    _plot(
        s,
        plots.forest,
        eff,
        f"Bayesian {cfg.family} model of {dim}: cumulative odds ratios with "
        f"{options.ci_prob:.0%} HDIs",
        "bayes_effects",
        note=note,
        scale="odds_ratio",
    )
    diag = fit.diagnostics()
    keep = [c for c in ("check", "parameter", "value", "ok", "note") if c in diag.columns]
    s.add(
        Table(
            diag[keep],
            "Sampler diagnostics: worst parameter of each check (R-hat, effective sample "
            "size, divergences, BFMI)",
            name="bayes_diagnostics",
        )
    )
