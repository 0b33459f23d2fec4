"""The ``pluralign`` command line (typer's CliRunner)."""

from __future__ import annotations

import numpy as np
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


def _flat_csv(path):
    rng = np.random.default_rng(0)
    rows = []
    for r in range(24):
        gender, race = ["she/her", "he/him"][r % 2], ["White", "Black", "Asian"][r % 3]
        for i in range(6):
            score = int(np.clip(round(2 + 0.4 * i + r % 2 + rng.normal(0, 0.7)), 1, 5))
            rows.append((f"{r:03d}", f"c{i}", score, gender, race, f"text {i}", f"p{i // 3}"))
    cols = ["user", "comment", "score", "gender", "race", "response", "prompt_id"]
    pd.DataFrame(rows, columns=cols).to_csv(path, index=False)
    return path


FLAT_ARGS = [
    "--column",
    "user=rater",
    "--column",
    "comment=item",
    "--column",
    "score=rating",
    "--dimension-column",
    "offensiveness",
]


def test_describe_flat_file_with_demographics(tmp_path):
    csv = _flat_csv(tmp_path / "flat.csv")
    res = runner.invoke(app, ["describe", str(csv), *FLAT_ARGS, "--by", "race", "--means"])
    assert res.exit_code == 0, res.output
    # ids keep their leading zeros: 24 raters "000".."023"
    assert "24 raters" in res.output and "demographics: ['gender', 'race']" in res.output
    assert {"Asian", "Black", "White"} <= set(res.output.split())


@pytest.mark.slow
def test_report_flat_file_lists_its_demographics(tmp_path):
    csv = _flat_csv(tmp_path / "flat.csv")
    out = tmp_path / "report"
    res = runner.invoke(app, ["report", str(csv), "--out", str(out), *FLAT_ARGS, "--no-labels"])
    assert res.exit_code == 0, res.output
    text = (out / "report.md").read_text()
    assert "demographics: gender, race" in text and "demographics: none" not in text


def test_user_errors_are_one_line_with_exit_code_2(tmp_path):
    csv = _flat_csv(tmp_path / "flat.csv")
    blocker = tmp_path / "file"
    blocker.write_text("")
    cases = [
        (["describe", str(csv)], "missing column(s) 'rater'"),
        (["describe", str(csv), *FLAT_ARGS, "--by", "sex"], "unknown demographic 'sex'"),
        (["report", str(csv), "--out", str(blocker / "r"), *FLAT_ARGS], "cannot write there"),
        (["report", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "r")], "no such file"),
    ]
    for args, fragment in cases:
        res = runner.invoke(app, args)
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert res.exit_code == 2, res.output
        # one line: in particular the unwritable --out fails before the study is read (which
        # would print its summary first)
        assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], lines


def test_usage_errors_are_one_line_too(tmp_path, capsys):
    from pluralign.cli import main

    for args, fragment in (
        (["report", str(tmp_path)], "Missing option '--out'"),
        (["describe"], "Missing argument 'data'"),
        (["describe", str(tmp_path), "--bogus", "1"], "No such option: --bogus"),
    ):
        assert main(args) == 2
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], err
    assert main(["describe", str(tmp_path / "nope.csv")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_report_passes_formula_item_covariates_and_bayesian_options(tmp_path, monkeypatch):
    import pluralign.report
    from pluralign.models import Priors

    seen = {}

    def fake_write_report(study, *, out, settings):
        seen["settings"] = settings
        return out / "report.html"

    monkeypatch.setattr(pluralign.report, "write_report", fake_write_report)
    study = tmp_path / "s"
    runner.invoke(app, ["simulate", "--out", str(study), "--n-raters", "30", "--no-truth"])
    args = ["report", str(study), "--out", str(tmp_path / "r"), "--by", "ideology"]
    bayes = ["--bayes", "--bayes-method", "laplace", "--draws", "40", "--chains", "1"]
    more = ["--item-covariate", "source_model", "--prior", "beta_sd=0.5", "--no-labels"]
    res = runner.invoke(app, [*args, *bayes, *more, "--n-boot", "30"])
    assert res.exit_code == 0, res.output
    cfg = seen["settings"]
    assert cfg.models == ("mixed", "bayes") and cfg.method == "laplace"
    assert (cfg.draws, cfg.chains, cfg.tune, cfg.n_boot) == (40, 1, 300, 30)
    assert cfg.priors == Priors(beta_sd=0.5) and cfg.item_covariates == ("source_model",)
    assert cfg.demographics == ("ideology",) and not cfg.labels
    res = runner.invoke(app, [*args, "--formula", "rating ~ ideology * source_model"])
    assert res.exit_code == 0 and seen["settings"].formula == "rating ~ ideology * source_model"
    for bad, fragment in (
        (["--prior", "beta_sd"], "expected NAME=SD"),
        (["--prior", "beta=1"], "unknown prior scale(s) ['beta']"),
        (["--bayes-method", "vi"], "method: unknown 'vi'"),
        (["--models", "glm"], "models: unknown ['glm']"),
    ):
        res = runner.invoke(app, [*args, *bad])
        assert res.exit_code == 2 and fragment in res.output, res.output
