"""Fast paths of power analysis: the mixed fitter's cheap link-scale contrasts equal the
rating-scale effects, and on Dask the same seed gives the same simulations, tables and plans as
n_jobs=1."""

import pandas as pd
import pytest

pytest.importorskip("distributed")

from distributed import Client, LocalCluster

from pluralign._parallel import parallel_map
from pluralign.models import fit_mixed
from pluralign.power import (
    FIT_COLUMNS,
    MixedFitter,
    StudyDesign,
    plan_study,
    power_analysis,
    power_app,
    power_curve,
)

#: Columns that differ between runs for reasons other than the statistics (wall-clock time).
TIMING = ["simulate_s", "fit_s"]


@pytest.fixture(scope="module")
def client():
    """Two single-threaded workers in this process: real concurrency, no process start-up."""
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


def normal_design(**kw):
    return StudyDesign(
        {"gender": {"she/her": 12, "he/him": 12}},
        effects={"he/him": 0.4},
        scale="normal",
        intercept=3,
        n_prompts=6,
        responses_per_prompt=2,
        items_per_rater=4,
        **kw,
    )


def rating_scale_fitter(study):
    """The reference path: the full fit read through the rating-scale effects() table."""
    res = fit_mixed(study, "rating ~ gender", progressbar=False)
    eff = res.effects(correction="none")
    return eff.loc[eff["term"] == "gender", list(FIT_COLUMNS)].reset_index(drop=True)


def test_mixed_fitter_fast_path_matches_the_rating_scale_path():
    kw = dict(n_sims=8, seed=4, progress=False)
    design = normal_design(group_item_sd=0.0)
    exact = MixedFitter("gender", dimension=design.dimension, screen_margin=None)
    fast = power_analysis(design, model=exact, **kw).table
    reference = power_analysis(design, model=rating_scale_fitter, **kw).table
    cols = ["estimate", "ci_low", "ci_high", "p_value"]
    pd.testing.assert_frame_equal(fast[cols], reference[cols], rtol=1e-12, atol=0)
    assert fast["detected"].tolist() == reference["detected"].tolist()
    assert 0 < fast["detected"].sum() < 8  # both outcomes occur, so agreement is informative


def test_mixed_power_on_dask_equals_serial(client):
    kw = dict(n_sims=6, model="mixed", seed=5, progress=False)
    serial = power_analysis(normal_design(), **kw)
    on_dask = power_analysis(normal_design(), client=client, **kw)
    pd.testing.assert_frame_equal(
        serial.table.drop(columns=TIMING), on_dask.table.drop(columns=TIMING)
    )
    pd.testing.assert_frame_equal(serial.summary, on_dask.summary)
    # the simulations really differ from one another (a constant table would pass trivially)
    assert serial.table["estimate"].nunique() == 6


def test_curve_and_plan_on_dask_equal_serial(client):
    kw = dict(n_sims=30, model="rater_means", seed=3, progress=False)
    design = normal_design(item_sd=0.0, group_item_sd=0.0)
    curve = power_curve(design, "n_raters", [10, 40], **kw)
    on_dask = power_curve(design, "n_raters", [10, 40], backend="dask", **kw)
    pd.testing.assert_frame_equal(curve, on_dask)
    assert curve["power"].iloc[1] > curve["power"].iloc[0]

    plan = plan_study(design, lower=4, upper=80, n_grid=3, **kw)
    plan_dask = plan_study(design, lower=4, upper=80, n_grid=3, client=client, **kw)
    assert plan.value == plan_dask.value
    pd.testing.assert_frame_equal(plan.curve, plan_dask.curve)


def test_parallel_map_arguments(client):
    assert sorted(parallel_map(pow, [(2, k) for k in range(5)], client=client)) == [
        1,
        2,
        4,
        8,
        16,
    ]
    with pytest.raises(ValueError, match="client= is a Dask client"):
        list(parallel_map(pow, [(2, 1)], client=client, backend="loky"))
    with pytest.raises(ValueError, match="n_jobs"):
        list(parallel_map(pow, [(2, 1)], n_jobs=0))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::pluralign.DroppedRowsWarning")
def test_run_grid_on_dask_equals_serial(tmp_path):
    pytest.importorskip("trl")
    from pluralign.data import simulate_study
    from pluralign.train import run_grid

    study = simulate_study(seed=2, n_raters=60, n_prompts=8).study
    tiny = {
        "dpo": {"max_steps": 2, "per_device_train_batch_size": 4},
        "eval": {"n_prompts": 3, "n_generations": 2, "max_new_tokens": 6},
        "summary": {"n_boot": 100},
    }
    kw = dict(optimizers=["dpo_hard"], aggregations=["majority"], seeds=[0, 1], config=tiny,
              progress=False)  # fmt: skip
    serial = run_grid(study, **kw)
    # one worker thread: runs in threads of one process would share torch's global random state
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as c,
    ):
        on_dask = run_grid(study, client=c, out=tmp_path, **kw)
    pd.testing.assert_frame_equal(serial, on_dask)
    assert len(list((tmp_path / "runs").glob("*.parquet"))) == 2  # written by this process


def test_cli_runs_on_a_dask_scheduler_as_serially(client, tmp_path):
    from typer.testing import CliRunner

    args = ["run", "--groups", "a=12,b=12", "--term", "g", "--effect", "0.4"]
    args += ["--effect-scale", "latent", "--scale", "normal", "--n-prompts", "6"]
    args += ["--responses-per-prompt", "2", "--items-per-rater", "4", "--n-sims", "6"]
    args += ["--seed", "5"]
    runner = CliRunner()
    tables = {}
    for name, extra in {
        "serial": [],
        "dask": ["--client", client.scheduler.address],
        "threads": ["--backend", "threading", "--n-jobs", "2"],
    }.items():
        out = tmp_path / f"{name}.csv"
        res = runner.invoke(power_app, [*args, *extra, "--out", str(out)])
        assert res.exit_code == 0, res.output
        tables[name] = pd.read_csv(out)
    pd.testing.assert_frame_equal(tables["serial"], tables["dask"])
    pd.testing.assert_frame_equal(tables["serial"], tables["threads"])
    assert 0 < tables["serial"]["power"].iloc[0] < 1
