"""The study report: self-contained HTML, a markdown twin, every section, the cleaning counts."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from pluralign.data import Scale, Study
from pluralign.report import ReportOptions, analyse, write_report
from pluralign.report._render import (
    Figure,
    Note,
    Section,
    Table,
    Text,
    render_html,
    render_markdown,
)

SECTIONS = (
    "Data",
    "Descriptive differences",
    "Model effects",
    "Agreement",
    "Preference labels",
    "Training",
)


def _study(seed: int = 0) -> Study:
    """Two prompts × 3 responses, 60 raters, two dimensions, gender shifts toxicity by +1."""
    rng = np.random.default_rng(seed)
    n = 60
    raters = pd.DataFrame(
        {
            "rater": [f"r{i}" for i in range(n)],
            "gender": np.where(np.arange(n) % 2 == 0, "she/her", "he/him"),
            "race": rng.choice(["White", "Black", "White;Asian", "Prefer not to say"], n),
        }
    )
    items = pd.DataFrame(
        {
            "item": [f"i{k}" for k in range(6)],
            "prompt_id": [f"p{k // 3}" for k in range(6)],
            "prompt": [f"prompt {k // 3}" for k in range(6)],
            "response": [f"response {k}" for k in range(6)],
        }
    )
    item_level = np.array([1.0, 2.0, 3.0, 1.5, 2.5, 3.5])
    rows = []
    for i, r in enumerate(raters["rater"]):
        shift = 1.0 if raters.loc[i, "gender"] == "she/her" else 0.0
        u = rng.normal(0, 0.3)
        for k in range(6):
            tox = np.clip(np.rint(item_level[k] + shift + u + rng.normal(0, 0.5)), 1, 5)
            helpful = np.clip(np.rint(5 - item_level[k] + rng.normal(0, 0.6)), 1, 5)
            rows += [(r, f"i{k}", "toxicity", tox), (r, f"i{k}", "helpfulness", helpful)]
    ratings = pd.DataFrame(rows, columns=["rater", "item", "dimension", "rating"])
    # three invalid rows: out of scale, missing, duplicate
    bad = pd.DataFrame(
        [("r0", "i0", "toxicity", 9.0), ("r1", "i1", "helpfulness", np.nan)],
        columns=ratings.columns,
    )
    ratings = pd.concat([ratings.iloc[1:], bad, ratings.iloc[[5]]], ignore_index=True)
    scales = {
        "toxicity": Scale("toxicity", 1, 5, more_is_better=False),
        "helpfulness": Scale("helpfulness", 1, 5, more_is_better=True),
    }
    return Study.from_frames(
        ratings,
        raters,
        items=items,
        scales=scales,
        multiselect=["race"],
        drop_invalid=True,
        name="small",
    )


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    study = _study()
    with _no_failures():
        path = write_report(study, out=out, demographics=["gender"], seed=3, n_boot=100)
    return study, out, path


class _no_failures:
    """Fail the test if a report stage failed (failures are warned as PluralignWarning)."""

    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings(record=True)
        self.caught = self._cm.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)
        failed = [str(w.message) for w in self.caught if " failed: " in str(w.message)]
        assert not failed, failed
        return False


def test_study_log_has_cleaning(written):
    study, _, _ = written
    log = study.log
    assert log.loc[log["step"] == "drop_invalid", "n_rows"].sum() == 3
    assert log.loc[log["step"] == "missing_values", "n_rows"].sum() > 0


def test_html_is_self_contained(written):
    _, out, path = written
    assert path == out / "report.html"
    html = path.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<link" not in html and "<script" not in html
    assert html.count('src="data:image/png;base64,') >= 1


def test_markdown_twin_has_sections_and_counts(written):
    study, out, _ = written
    md = (out / "report.md").read_text()
    for title in SECTIONS:
        assert f"## {title}" in md, title
    assert f"| ratings | {study.n_ratings} |" in md
    assert "| raters | 60 |" in md
    assert "**3 rating row(s) removed**" in md
    assert "drop_invalid" in md and "missing_values" in md
    for caption in (
        "Labels by method",
        "Label flips between each group and everyone",
        "Krippendorff's alpha",
        "Linear mixed model diagnostics",
    ):
        assert caption in md, caption
    figures = re.findall(r"\]\((figures/[^)]+\.png)\)", md)
    assert "figures/mixed_effects.png" in figures
    for fig in figures:
        assert (out / fig).is_file()


def test_html_has_sections(written):
    _, _, path = written
    html = path.read_text()
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in html


def test_effects_recover_the_simulated_shift(written):
    _, out, _ = written
    eff = pd.read_csv(out / "mixed_effects.csv")
    row = eff[(eff["dimension"] == "toxicity") & (eff["term"] == "gender")].iloc[0]
    # she/her rate toxicity one point higher (before rounding/clipping to the scale)
    sign = 1 if row["level"] == "she/her" else -1
    assert 0.6 < sign * row["estimate"] < 1.3
    assert row["ci_low"] < row["estimate"] < row["ci_high"]


def test_missing_stage_becomes_a_note_not_a_crash(tmp_path):
    a = analyse(_study(), demographics=["gender"], models=(), labels=False, n_boot=20)
    titles = [s.title for s in a.sections]
    assert titles[:2] == ["Data", "Descriptive differences"]
    assert "Preference labels" not in titles


def test_unknown_demographic_is_an_error():
    with pytest.raises(KeyError, match="income"):
        analyse(_study(), demographics=["income"])


def test_write_report_is_the_function_and_report_the_subpackage():
    import types

    import pluralign

    assert isinstance(pluralign.report, types.ModuleType)
    assert pluralign.write_report is write_report
    assert pluralign.ReportOptions is ReportOptions


def test_report_options_validate_and_shortcuts_override():
    with pytest.raises(ValueError, match="unknown \\['glm'\\]"):
        ReportOptions(models=("mixed", "glm"))
    with pytest.raises(ValueError, match="draws must be a positive integer"):
        ReportOptions(draws=0)
    with pytest.raises(TypeError, match="unknown report option"):
        ReportOptions().replace(bogus=1)
    assert ReportOptions(models="bayes").models == ("bayes",)
    with pytest.raises(ValueError, match="method: unknown 'vi'"):
        ReportOptions(method="vi")
    with pytest.raises(ValueError, match=r"unknown prior scale\(s\) \['beta'\]"):
        ReportOptions(priors={"beta": 1.0})
    with pytest.raises(ValueError, match="rating ~"):
        ReportOptions(formula="gender")
    with pytest.raises(TypeError, match="unknown report option"):
        analyse(_study(), draw=10)
    base = ReportOptions(demographics=["gender"], labels=False, models=(), n_boot=20, seed=5)
    a = analyse(_study(), settings=base, dimensions=["toxicity"])
    assert a.dimensions == ["toxicity"] and a.seed == 5 and a.settings.n_boot == 20
    assert a.results["describe"]["dimension"].unique().tolist() == ["toxicity"]


def test_bayesian_settings_reach_fit_bayes(monkeypatch):
    import pluralign.models
    from pluralign.models import Priors

    seen = {}

    def fake_fit_bayes(study, formula, dimension, **kwargs):
        seen.update(formula=formula, dimension=dimension, **kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr(pluralign.models, "fit_bayes", fake_fit_bayes)
    opts = ReportOptions(
        demographics=["gender"], models=("bayes",), labels=False, n_boot=20, seed=7,
        bayes_dimension="helpfulness", family="gaussian", sampler="pymc", draws=50, tune=60,
        chains=3, method="laplace", priors={"beta_sd": 0.5, "sigma_rater": 2},
    )  # fmt: skip
    with pytest.warns(Warning, match="stop here"):
        a = analyse(_study(), settings=opts)
    assert seen == {
        "formula": "rating ~ gender",
        "dimension": "helpfulness",
        "family": "gaussian",
        "sampler": "pymc",
        "draws": 50,
        "tune": 60,
        "chains": 3,
        "method": "laplace",
        "priors": Priors(beta_sd=0.5, sigma_rater=2.0),
        "seed": 7,
        "progressbar": False,
    }
    assert any("Bayesian model failed" in p for p in a.problems)


@pytest.mark.slow
def test_demo_fast_writes_the_report(tmp_path):
    pytest.importorskip("pymc", reason="the demo's Bayesian stage needs the bayes extra")
    pytest.importorskip("trl", reason="the demo's training stage needs the train extra")
    from pluralign.report import run_demo

    with _no_failures():
        path = run_demo(tmp_path, seed=1, fast=True)
    html = path.read_text()
    md = (tmp_path / "report.md").read_text()
    for title in (*SECTIONS, "About this run"):
        assert f"## {title}" in md, title
    assert "Skipped:" not in md  # with every extra installed, every stage runs
    assert "posterior" in md and "Training grid results" in md
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert (tmp_path / "study" / "study.json").is_file()
    assert (tmp_path / "training").is_dir()


def test_renderers_escape_and_format():
    s = Section("A & B", "ab")
    s.add(Text("x < y and `code`")).add(Note("careful", "warning"))
    s.add(Table(pd.DataFrame({"a": [0.123456, np.nan], "b": ["p|q", None]}), "cap"))
    s.add(Figure(b"\x89PNG", "fig", "f1"))
    html = render_html("T", "sub", [s])
    assert "A &amp; B" in html and "x &lt; y" in html and "<code>code</code>" in html
    assert "0.123" in html and 'class="note warning"' in html
    md = render_markdown("T", "sub", [s])
    assert "p\\|q" in md and "![fig](figures/f1.png)" in md and "> **Warning:** careful" in md


def test_analysis_scripts_write_figures_and_tables(tmp_path, monkeypatch):
    import importlib
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "analysis"))
    study_dir = _study().to_parquet(tmp_path / "study")
    args = ["--by", "gender", "--dimension", "toxicity", "--no-labels", "--seed", "1"]
    for script, out in (("figures", "figs"), ("tables", "tabs")):
        module = importlib.import_module(script)
        assert module.main([str(study_dir), "--out", str(tmp_path / out), *args]) == 0
    figs = {p.name for p in (tmp_path / "figs").iterdir()}
    assert {"mixed_effects.png", "relative_difference.png", "agreement.png"} <= figs
    tabs = {p.name for p in (tmp_path / "tabs").iterdir()}
    assert {
        "data_log.csv",
        "mixed_difference.csv",
        "results_mixed_effects.csv",
        "tables.md",
    } <= tabs
    log = pd.read_csv(tmp_path / "tabs" / "data_log.csv")
    assert log.loc[log["step"] == "drop_invalid", "n_rows"].sum() == 3


@pytest.mark.parametrize("module", ["_options", "_report", "_coverage", "_analysis"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    mod = importlib.import_module(f"pluralign.report.{module}")
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# ---------------------------------------------------------------- interval notes
def _blocks(sections, kind):
    return [(s.anchor, b) for s in sections for b in s.blocks if isinstance(b, kind)]


def test_every_interval_table_and_every_figure_says_what_its_intervals_cover(written):
    from pluralign.report import analyse
    from pluralign.report._coverage import CALIBRATION

    a = analyse(_study(), demographics=["gender"], seed=3, n_boot=30)
    figures = _blocks(a.sections, Figure)
    assert len(figures) >= 4
    for anchor, fig in figures:
        assert fig.note, (anchor, fig.name)
    interval = re.compile(r"\[-?[\d.]+, -?[\d.]+\]")
    tables = _blocks(a.sections, Table)
    with_ci = [
        (anchor, t)
        for anchor, t in tables
        if any(c.endswith(("ci_low", "ci_high")) for c in t.frame.columns)
        or t.frame.astype(str).apply(lambda col: col.str.contains(interval)).any().any()
    ]
    assert {t.name for _, t in with_ci} >= {
        "describe_relative",
        "mixed_difference",
        "agreement_alpha",
        "divergence_top",
    }
    for anchor, t in with_ci:
        assert t.note.startswith("Intervals: 95% "), (anchor, t.name)
    notes = {t.name: t.note for _, t in tables}
    assert "two-way cluster-robust" in notes["describe_relative"]
    assert "Holm over every row of one dimension's model" in notes["mixed_difference"]
    diff, null = CALIBRATION["mixed_difference"], CALIBRATION["mixed_null"]
    assert f"covered the truth in {diff.observed:.1%} of {diff.n_sims}" in notes["mixed_difference"]
    assert "bootstrap" in notes["agreement_alpha"]
    alpha = CALIBRATION["agreement_alpha"]
    assert f"{alpha.observed:.1%} of {alpha.n_sims}" in notes["agreement_alpha"]
    assert "Benjamini–Hochberg over the items" in notes["divergence_top"]
    # a rejection rate, not coverage
    assert f"covered the truth in {null.observed:.1%}" not in notes["mixed_difference"]
    assert (
        f"LMM Wald z test of a demographic without effect at level 0.05: {null.observed:.1%}"
        in (notes["mixed_difference"])
    )
    # the notes reach both renderings
    _, out, _ = written
    md = (out / "report.md").read_text()
    assert md.count("Intervals: 95% two-way cluster-robust") >= 2
    assert 'class="scope"' in (out / "report.html").read_text()


def test_bayesian_note_says_hdi_and_not_adjusted():
    from pluralign.report._coverage import interval_note
    from pluralign.report._stage_models import BAYES_ADJUSTMENT

    note = interval_note("HDIs", BAYES_ADJUSTMENT, "bayes_hdi")
    assert "not p-values" in note and "not adjusted" in note and "96.7% of 30" in note


def test_calibration_constants_agree_with_the_benchmark_results():
    from pathlib import Path

    from pluralign.report._coverage import CALIBRATION

    results = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
    if not any(results.glob("calibration_*.csv")):
        pytest.skip(f"no calibration results in {results}")
    for key, cal in CALIBRATION.items():
        path = results / f"{cal.source}.csv"
        assert path.is_file(), (key, path)
        table = pd.read_csv(path)
        row = table[
            (table["quantity"] == cal.quantity)
            & (table["kind"] == cal.kind)
            & np.isclose(table["nominal"], cal.nominal)
        ]
        if cal.setting is not None:
            row = row[row["setting"] == cal.setting]
        assert len(row) == 1, (key, len(row))
        assert row["observed"].item() == pytest.approx(cal.observed, abs=5e-4), key
        assert int(row["n_sims"].item()) == cal.n_sims, key


# ---------------------------------------------------------------- item covariates
def test_item_covariates_give_cross_level_effects_and_contrasts_within():
    from pluralign.data import simulate_study

    study = simulate_study(n_raters=150, n_prompts=30, seed=2, dimensions=["toxicity"]).study
    with _no_failures():
        a = analyse(
            study, demographics=["ideology"], item_covariates="source_model", labels=False,
            n_boot=20, seed=1,
        )  # fmt: skip
    assert a.formula == "rating ~ ideology * source_model" and a.within == ["source_model"]
    names = {t.name for _, t in _blocks(a.sections, Table)}
    assert {
        "describe_within_source_model",
        "mixed_coefficients",
        "mixed_within_source_model",
    } <= names
    eff = a.results["mixed_effects"]
    assert "ideology:source_model" in set(eff["term"])
    # identity link: the contrast on LLM m's responses is the ideology coefficient plus the
    # interaction coefficient of m (the coefficient alone on the reference LLM's)
    coef = a.results["mixed"]["toxicity"].summary().set_index("parameter")["estimate"]
    ew = a.results["mixed_within_source_model"]
    assert len(ew) == 2 * 3
    for row in ew.itertuples():
        main = f"ideology[T.{row.level}]"
        expected = coef[main] + coef.get(f"{main}:source_model[T.{row.source_model}]", 0.0)
        assert row.difference == pytest.approx(expected, abs=1e-6), row
    # the descriptive counterpart: one row per LLM and group
    rd = a.results["describe_within_source_model"]
    assert set(rd["source_model"]) == set(study.items["source_model"])
    with pytest.raises(KeyError, match="not a column of the items table"):
        analyse(study, item_covariates="llm", labels=False, models=())
