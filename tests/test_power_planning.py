"""Power curves, study planning, label precision and the command line."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from pluralign._errors import DroppedRowsWarning
from pluralign.power import (
    CURVE_COLUMNS,
    PRECISION_COLUMNS,
    StudyDesign,
    analytic_power,
    label_precision,
    plan_study,
    power_curve,
)
from pluralign.power._precision import comparison_variance, raters_needed


@pytest.fixture
def normal_design(normal_power_design):
    def make(n=40, effect=0.35):
        return normal_power_design({"a": n // 2, "b": n - n // 2}, {"b": effect}, items_per_rater=4)

    return make


def test_power_curve_table_and_plot(normal_design):
    curve = power_curve(
        normal_design(),
        "n_raters",
        [20, 60, 160],
        n_sims=80,
        model="rater_means",
        seed=1,
        progress=False,
    )
    assert list(curve.columns) == list(CURVE_COLUMNS)
    assert curve["n_raters"].tolist() == [20, 60, 160]
    exact = [analytic_power(normal_design(n)) for n in (20, 60, 160)]
    assert np.all(
        (curve["power_ci_low"] - 0.06 <= exact) & (np.array(exact) <= curve["power_ci_high"] + 0.06)
    )
    assert curve["power"].is_monotonic_increasing
    from pluralign import plots

    ax = plots.power_curve(curve, target=0.8)
    assert ax.get_ylabel() or ax.get_lines()
    by_items = power_curve(
        normal_design(),
        "items_per_rater",
        [1, 8],
        n_sims=40,
        model="rater_means",
        seed=1,
        progress=False,
    )
    assert by_items["n_ratings"].tolist() == [40, 320]


@pytest.mark.slow
def test_plan_study_finds_the_analytic_sample_size(tmp_path, normal_design):
    base = normal_design()
    # closed-form smallest total n (equal groups) with t-test power >= 0.8
    f = lambda n: analytic_power(normal_design(int(n))) - 0.8  # noqa: E731
    n_star = int(np.ceil(optimize.brentq(f, 10, 2000)))
    plan = plan_study(
        base,
        target_power=0.8,
        vary="n_raters",
        lower=10,
        upper=400,
        n_sims=150,
        model="rater_means",
        seed=2,
        progress=False,
        cache=tmp_path,
    )
    assert plan.reached
    assert plan.value == pytest.approx(n_star, rel=0.2), (plan.value, n_star)
    assert plan.design.n_raters == plan.value
    assert plan.curve["power_monotone"].is_monotonic_increasing
    # neighbours: the plan is the smallest evaluated value reaching the target
    below = plan.curve[plan.curve["value"] < plan.value]
    assert (below["power_monotone"] < 0.8).all()
    lower = plan_study(
        base,
        target_power=0.8,
        lower=10,
        upper=400,
        n_sims=150,
        model="rater_means",
        seed=2,
        progress=False,
        criterion="lower",
        cache=tmp_path,
    )
    assert lower.value >= plan.value
    ax = plan.plot()
    assert ax is not None
    assert "StudyPlan" in repr(plan)


def test_plan_study_reports_unreachable_targets(normal_design):
    plan = plan_study(
        normal_design(effect=0.05),
        target_power=0.9,
        lower=10,
        upper=40,
        n_sims=40,
        model="rater_means",
        seed=1,
        progress=False,
    )
    assert not plan.reached and plan.value == 40


# ---------------------------------------------------------------------------------- labels
def test_comparison_variance_closed_form():
    # no ties: Var = p(1 - p); all ties: 0; worst case 1/4
    assert comparison_variance(np.array(0.3), np.array(0.0)) == pytest.approx(0.21)
    assert comparison_variance(np.array(0.0), np.array(1.0)) == pytest.approx(0.0)
    # hand value: P> = .5, P= = .2 -> p = .6, E[s^2] = .55, Var = .55 - .36 = .19
    assert comparison_variance(np.array(0.5), np.array(0.2)) == pytest.approx(0.19)
    assert raters_needed(0.25, 0.05) == 100
    assert raters_needed(0.19, 0.05) == 76


def test_label_sd_matches_simulated_label_spread():
    """The closed-form SD of a distribution label equals the spread of labels over resampled raters."""
    rng = np.random.default_rng(0)
    p_gt, p_eq, n = 0.45, 0.3, 25
    s = rng.choice([1.0, 0.5, 0.0], p=[p_gt, p_eq, 1 - p_gt - p_eq], size=(20000, n))
    sd_sim = s.mean(axis=1).std()
    assert sd_sim == pytest.approx(
        np.sqrt(comparison_variance(np.array(p_gt), np.array(p_eq)) / n), rel=0.03
    )


def test_label_precision_from_design_and_study():
    d = StudyDesign(
        {"gender": {"she/her": 200, "he/him": 200}},
        n_prompts=50,
        responses_per_prompt=2,
        items_per_rater=2,
    )
    tab = label_precision(d, target_sd=0.05, seed=1)
    assert list(tab.columns) == list(PRECISION_COLUMNS)
    assert tab["group"].tolist() == ["gender=she/her", "gender=he/him"]
    assert (tab["raters_needed_worst"] == 100).all()
    assert (tab["raters_needed_median"] <= 100).all() and (
        tab["raters_needed_q90"] >= tab["raters_needed_median"]
    ).all()
    # the design-based Var(s) agrees with simulated raters comparing the same kind of pairs
    study = d.simulate(seed=4)
    with warnings.catch_warnings():  # pairs seen by fewer than 2 she/her raters are dropped
        warnings.simplefilter("ignore", DroppedRowsWarning)
        emp = label_precision(study, target_sd=0.05, group={"gender": "she/her"})
    assert emp["group"].iloc[0] == "gender=she/her"
    assert emp["current_raters_median"].iloc[0] == pytest.approx(4, abs=2)
    # coarse agreement of the typical per-rater variance (pairs in a prompt share a prompt effect
    # only through item draws here, so the two should be close)
    assert emp["var_s_median"].iloc[0] == pytest.approx(tab["var_s_median"].iloc[0], abs=0.08)
    # about one she/her rater per prompt: many pairs are compared by fewer than 2 and dropped
    sparse = d.replace(groups={"gender": {"she/her": 60, "he/him": 100}}).simulate(seed=4)
    with pytest.warns(DroppedRowsWarning, match="fewer than 2 raters"):
        label_precision(sparse, target_sd=0.05, group={"gender": "she/her"})
    one = label_precision(d, target_sd=0.1, group="he/him", seed=1)
    assert len(one) == 1 and one["raters_needed_worst"].iloc[0] == 25
    with pytest.raises(ValueError, match="group must be a level"):
        label_precision(d, group="they/them")


def test_cli_run_and_plan(tmp_path):
    from typer.testing import CliRunner

    from pluralign.power import power_app

    runner = CliRunner()
    out = tmp_path / "summary.csv"
    res = runner.invoke(
        power_app,
        [
            "run",
            "--groups",
            "a=20,b=20",
            "--term",
            "g",
            "--effect",
            "0.5",
            "--effect-scale",
            "latent",
            "--scale",
            "normal",
            "--n-prompts",
            "6",
            "--responses-per-prompt",
            "2",
            "--n-sims",
            "20",
            "--model",
            "rater_means",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "PowerResult" in res.output
    assert pd.read_csv(out)["n_sims"].iloc[0] == 20
    res = runner.invoke(
        power_app,
        [
            "plan",
            "--groups",
            "a=20,b=20",
            "--term",
            "g",
            "--effect",
            "0.5",
            "--effect-scale",
            "latent",
            "--scale",
            "normal",
            "--n-prompts",
            "6",
            "--responses-per-prompt",
            "2",
            "--n-sims",
            "30",
            "--model",
            "rater_means",
            "--lower",
            "10",
            "--upper",
            "300",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "StudyPlan" in res.output
