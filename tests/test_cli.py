"""The ``pluralign`` command line (typer's CliRunner)."""

from __future__ import annotations

import pandas as pd
import pytest
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


def test_simulate_with_effects(tmp_path):
    out = tmp_path / "e"
    args = ["simulate", "--out", str(out), "--n-raters", "40", "--no-published"]
    res = runner.invoke(app, [*args, "--effect", "helpfulness:age:60+=-0.1"])
    assert res.exit_code == 0, res.output
    fe = pd.read_csv(out / "truth" / "fixed_effects.csv")
    row = fe[(fe["dimension"] == "helpfulness") & (fe["level"] == "60+")].iloc[0]
    assert row["relative_pct"] == pytest.approx(-10)
    assert fe.loc[fe["level"] != "60+", "beta_latent"].abs().max() < 1e-12
    res = runner.invoke(app, [*args, "--effect", "toxicity:gender=-0.1"])
    assert res.exit_code != 0 and "DIMENSION:COLUMN:LEVEL=FRACTION" in res.output
    res = runner.invoke(app, [*args, "--effect", "toxicity:sex:male=-0.1"])
    assert res.exit_code != 0 and "variable 'sex'" in res.output


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


def test_describe_named_data_set(shared_data, monkeypatch):
    monkeypatch.setenv("PLURALIGN_DATA", str(shared_data))
    res = runner.invoke(app, ["describe", "popquorn", "--by", "gender", "--n-boot", "50"])
    assert res.exit_code == 0, res.output
    assert "offensiveness" in res.output and "Non-binary" in res.output
