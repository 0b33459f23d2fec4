"""The ``pluralign`` command line (typer's CliRunner)."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from pluralign.cli import app
from pluralign.data import read_study

runner = CliRunner(env={"COLUMNS": "250", "NO_COLOR": "1"})


def test_simulate_then_describe(tmp_path):
    out = tmp_path / "study"
    res = runner.invoke(app, ["simulate", "--out", str(out), "--seed", "3", "--n-raters", "150"])
    assert res.exit_code == 0, res.output
    study = read_study(out)
    assert (study.n_raters, study.n_ratings) == (150, 150 * 25)
    truth = pd.read_csv(out / "truth" / "fixed_effects.csv")
    assert {"beta_latent", "relative_pct"} <= set(truth.columns)

    csv = tmp_path / "rd.csv"
    res = runner.invoke(
        app,
        [
            "describe",
            str(out),
            "--by",
            "gender",
            "--dimension",
            "toxicity",
            "--n-boot",
            "100",
            "--seed",
            "1",
            "--out",
            str(csv),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "he/him" in res.output and "relative_pct" in res.output
    table = pd.read_csv(csv)
    assert set(table["dimension"]) == {"toxicity"}
    assert table.loc[table["group"] == "she/her", "is_reference"].item()

    res = runner.invoke(
        app,
        ["describe", str(out), "--by", "gender", "--by", "ideology", "--means", "--n-boot", "0"],
    )
    assert res.exit_code == 0, res.output
    assert "conservative" in res.output and "ci_low" in res.output


def test_describe_reports_bad_input(tmp_path):
    res = runner.invoke(app, ["describe", str(tmp_path / "nope")])
    assert res.exit_code != 0 and "no such file or folder" in res.output
    out = tmp_path / "s"
    runner.invoke(app, ["simulate", "--out", str(out), "--n-raters", "30", "--no-truth"])
    res = runner.invoke(app, ["describe", str(out), "--by", "sex"])
    assert res.exit_code != 0 and "unknown demographic" in res.output


def test_commands_are_listed():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("simulate", "describe", "report", "demo", "power"):
        assert cmd in res.output
