"""Power analysis: failed fits in the denominator, family-wise power, fitters read the design."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pluralign._errors import PluralignWarning
from pluralign.power import (
    ALL_LEVELS,
    ANY_LEVEL,
    SUMMARY_COLUMNS,
    MixedFitter,
    RaterMeansFitter,
    StudyDesign,
    plan_study,
    power_analysis,
)


@pytest.fixture
def three_groups(normal_power_design):
    def make(effects: dict[str, float], n: int = 30) -> StudyDesign:
        return normal_power_design({"a": n, "b": n, "c": n}, effects)

    return make


def test_failed_fits_count_as_non_detections_unless_excluded(three_groups):
    d = three_groups({"b": 3.0, "c": 3.0})  # a huge effect: every successful fit detects it

    def flaky(study, *, seed):
        if seed % 4 == 0:
            raise RuntimeError("singular fit")
        return RaterMeansFitter("g")(study)

    with pytest.warns(PluralignWarning, match="non-detections"):
        res = power_analysis(d, n_sims=40, model=flaky, seed=3, progress=False)
    n_failed = res.table.loc[res.table["error"] != "", "sim"].nunique()
    assert 0 < n_failed < 40
    row = res.summary.iloc[0]
    assert row["n_sims"] == 40 and row["n_failed"] == n_failed
    assert row["power"] == pytest.approx((40 - n_failed) / 40)
    assert row["power_excluding_failures"] == 1.0
    assert row["power_ci_low"] < row["power"] < row["power_ci_high"] < 1.0
    with pytest.warns(PluralignWarning, match="left out of power"):
        kept = power_analysis(
            d, n_sims=40, model=flaky, seed=3, progress=False, failed_fits="exclude"
        )
    assert kept.summary.iloc[0]["power"] == 1.0
    assert kept.summary.iloc[0]["n_failed"] == n_failed
    with pytest.raises(ValueError, match="failed_fits"):
        power_analysis(d, n_sims=2, model=flaky, progress=False, failed_fits="drop")


def test_family_wise_rows_count_simulations_detecting_any_or_all_levels(three_groups):
    d = three_groups({"b": 0.3, "c": 0.0})
    res = power_analysis(d, n_sims=200, model="rater_means", seed=1, progress=False)
    s = res.summary.set_index("level")
    assert list(res.summary.columns) == list(SUMMARY_COLUMNS)
    assert list(s.index) == ["b", "c", ANY_LEVEL, ALL_LEVELS]
    hits = res.table.pivot(index="sim", columns="level", values="detected").astype(bool)
    assert s.loc[ANY_LEVEL, "power"] == pytest.approx(hits.any(axis=1).mean())
    assert s.loc[ALL_LEVELS, "power"] == pytest.approx(hits.all(axis=1).mean())
    # any level: at least the best single contrast; all levels: at most the worst one
    assert s.loc[ANY_LEVEL, "power"] >= s.loc[["b", "c"], "power"].max()
    assert s.loc[ALL_LEVELS, "power"] <= s.loc[["b", "c"], "power"].min()
    # with c null, "any level" exceeds the power of b by about the false-positive rate of c
    assert s.loc[ANY_LEVEL, "power"] > s.loc["b", "power"]
    assert s.loc[ANY_LEVEL, "power_ci_low"] <= s.loc[ANY_LEVEL, "power"]
    two = power_analysis(
        three_groups({"b": 0.3}).replace(groups={"g": {"a": 30, "b": 30}}),
        n_sims=5,
        model="rater_means",
        progress=False,
    )
    assert list(two.summary["level"]) == ["b"]  # one contrast: no family-wise rows


def test_mixed_fitter_reads_the_model_design(three_groups):
    from pluralign.models import fit_mixed

    d = three_groups({"b": 0.5, "c": -0.2}, n=20)
    study = d.simulate(np.random.default_rng(4))
    out = MixedFitter("g", ci_prob=0.9, screen_margin=None)(study)
    fit = fit_mixed(study, "rating ~ g", n_draws=10)
    eff = fit.effects(ci_prob=0.9)
    assert list(out["level"]) == list(eff["level"]) == ["b", "c"]
    assert (out["reference"] == "a").all()
    np.testing.assert_allclose(out["estimate"], eff["estimate"], rtol=1e-10)
    np.testing.assert_allclose(out["ci_low"], eff["ci_low"], rtol=1e-8)
    np.testing.assert_allclose(out["p_value"], eff["p_value"], rtol=1e-8)
    # the coefficients read directly are the link-scale effects
    link = fit.effects(scale="link", ci_prob=0.9, correction="none")
    cols = ["estimate", "ci_low", "ci_high", "p_value", "std_error"]
    np.testing.assert_allclose(out[cols], link[link["term"] == "g"][cols], rtol=1e-12)
    # a screened fit (the default) is within the approximate fit's tolerance
    screened = MixedFitter("g", ci_prob=0.9)(study)
    np.testing.assert_allclose(screened["estimate"], out["estimate"], rtol=1e-4)


def test_near_decision_flags_statistics_close_to_a_threshold():
    fitter = MixedFitter("g", ci_prob=0.95, screen_margin=0.02)
    q = 1.959963984540054

    def table(estimate, se=1.0):
        return pd.DataFrame(
            {"level": ["b"], "estimate": [estimate], "std_error": [se], "ci_low": [np.nan]}
        )

    assert fitter.near_decision(table(q + 0.01))  # |z| just above the critical value
    assert fitter.near_decision(table(-(q - 0.015) * 0.5, se=0.5))
    assert not fitter.near_decision(table(q + 0.03))
    assert not fitter.near_decision(table(0.4))
    # coverage: the truth 0.01 SE inside the interval's upper end
    assert fitter.near_decision(table(0.4), truth={"b": 0.4 - q + 0.01})
    assert not fitter.near_decision(table(0.4), truth={"b": 0.5})
    assert fitter.near_decision(table(np.nan))  # a failed statistic is refitted exactly


@pytest.mark.slow
def test_screened_mixed_fits_decide_as_exact_fits():
    """Paper-size crossing (600 raters × 1,000 items: the iterative factor screens), an effect
    with power near one half so that many decisions are close: the screened fits detect and
    cover exactly as exact fits; without refits (margin 0) the estimates still differ slightly,
    so the comparison can fail."""
    design = StudyDesign(effects={"he/him": 0.12}).with_n_raters(600)
    kw = dict(n_sims=8, seed=5, progress=False)
    fit = dict(term="gender", dimension=design.dimension)
    exact = power_analysis(design, model=MixedFitter(**fit, screen_margin=None), **kw).table
    screened = power_analysis(design, model=MixedFitter(**fit), **kw).table
    raw = power_analysis(design, model=MixedFitter(**fit, screen_margin=0.0), **kw).table
    assert 0 < exact["detected"].sum() < len(exact)  # both decisions occur
    for col in ("detected", "covered", "n_warnings", "error"):
        assert screened[col].tolist() == exact[col].tolist() == raw[col].tolist()
    for col in ("estimate", "ci_low", "p_value"):
        np.testing.assert_allclose(screened[col], exact[col], rtol=1e-3, atol=1e-5)
    assert not np.array_equal(raw["estimate"], exact["estimate"])  # the approximate fit ran
    z_raw = raw["estimate"] / (raw["ci_high"] - raw["ci_low"]) * 2 * 1.959963984540054
    z_exact = exact["estimate"] / (exact["ci_high"] - exact["ci_low"]) * 2 * 1.959963984540054
    assert np.max(np.abs(z_raw - z_exact)) < 2e-3  # well inside the default margin 0.02


def test_results_render_in_jupyter_and_the_plan_plots_through_plots(three_groups):
    d = three_groups({"b": 0.5}).replace(groups={"g": {"a": 20, "b": 20}})
    res = power_analysis(d, n_sims=20, model="rater_means", seed=2, progress=False)
    html = res._repr_html_()
    assert "<table" in html and "power_excluding_failures" in html
    plan = plan_study(
        d, n_sims=30, model="rater_means", progress=False, lower=10, upper=200, seed=2
    )
    assert "power_monotone" in plan._repr_html_()
    ax = plan.plot()
    flat = [ln for ln in ax.get_lines() if np.ptp(ln.get_ydata()) == 0]
    assert any(np.allclose(ln.get_ydata(), plan.target_power) for ln in flat)  # the target line
    assert ax.get_ylabel() == "Power"
    assert isinstance(plan.curve, pd.DataFrame)


@pytest.mark.parametrize("module", ["_analysis", "_planning"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    mod = importlib.import_module(f"pluralign.power.{module}")
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_bayes_contrasts_bound_the_tail_probability_by_the_draws():
    """Every draw positive: the tail probability is only known to be below 1/draws, so it is
    reported as 1/draws (never 0); detection is the HDI excluding 0."""
    from types import SimpleNamespace

    from pluralign.power._fitters import hdi_contrasts

    rng = np.random.default_rng(1)
    beta = np.column_stack([rng.normal(1.0, 0.1, 400), rng.normal(0.05, 0.1, 400)])
    design = SimpleNamespace(terms={"g": [("b", 1), ("c", 2)]}, references={"g": "a"})
    fit = SimpleNamespace(draws=lambda: SimpleNamespace(beta=beta))
    res = SimpleNamespace(dimensions=["d"], design=lambda dim: design, fits={"d": fit})
    out = hdi_contrasts(res, "g", 0.9).set_index("level")
    assert out.loc["b", "p_value"] == 1 / 400 and out.loc["b", "detected"]
    pos = np.mean(beta[:, 1] > 0)
    assert out.loc["c", "p_value"] == pytest.approx(2 * (1 - max(pos, 1 - pos)))
    assert not out.loc["c", "detected"]
    assert out.loc["c", "ci_low"] < 0 < out.loc["c", "ci_high"]


def test_approximate_fit_is_close_to_the_exact_fit_and_gaussian_only(three_groups):
    from pluralign.models import fit_mixed

    study = three_groups({"b": 0.5, "c": -0.2}, n=20).simulate(np.random.default_rng(4))
    exact = fit_mixed(study, "rating ~ g", n_draws=1).fits["toxicity"].fit
    approx = fit_mixed(study, "rating ~ g", n_draws=1, approximate=True).fits["toxicity"].fit
    assert approx.converged and np.isnan(approx.gradient).all()  # no stencil was evaluated
    assert approx.n_evals < exact.n_evals
    np.testing.assert_allclose(approx.beta, exact.beta, rtol=1e-4)
    np.testing.assert_allclose(np.diag(approx.vcov), np.diag(exact.vcov), rtol=1e-3)
    with pytest.raises(ValueError, match="gaussian"):
        fit_mixed(study, "rating ~ g", family="binomial", approximate=True)
