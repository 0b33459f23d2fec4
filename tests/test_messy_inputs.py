"""Malformed and awkward inputs (the catalogue in ``messy_cases.py``): each gives a clear error,
a repair recorded in ``study.log``, a warning, or is kept exactly as given; no row is lost
without a log entry."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from messy_cases import CASES, Case

from pluralign._errors import PluralignWarning
from pluralign.data import Study

ROOT = Path(__file__).resolve().parents[1]


def _log_text(study: Study) -> str:
    return " ".join(" ".join(map(str, row)) for row in study.log.itertuples(index=False))


def _accounting(case: Case, result: object) -> None:
    if isinstance(result, Study) and case.n_in is not None:
        assert result.n_ratings + result.n_dropped == case.n_in, (
            f"{case.name}: {case.n_in} rows in, {result.n_ratings} kept, "
            f"{result.n_dropped} logged as dropped"
        )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_messy_input(case: Case, tmp_path):
    if case.kind == "error":
        with pytest.raises(case.error) as err:
            case.run(tmp_path)
        msg = str(err.value.args[0]) if isinstance(err.value, KeyError) else str(err.value)
        for fragment in case.fragments:
            assert fragment in msg, f"{fragment!r} not in {msg!r}"
        return
    if case.kind == "warning":
        with pytest.warns(PluralignWarning) as caught:
            result = case.run(tmp_path)
        text = " ".join(str(w.message) for w in caught)
        for fragment in case.fragments:
            assert fragment in text, f"{fragment!r} not in {text!r}"
    elif case.kind == "cli":
        result = case.run(tmp_path)
        assert result.exit_code == 2, result.output
        lines = [ln for ln in result.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
        assert "Traceback" not in result.output
        for fragment in case.fragments:
            assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
        return
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PluralignWarning)
            result = case.run(tmp_path)
    if case.kind == "repair":
        text = _log_text(result)
        for fragment in case.fragments:
            assert fragment in text, f"{fragment!r} not in the log:\n{result.log}"
    _accounting(case, result)
    if case.check is not None:
        assert case.check(result), f"{case.name}: check failed on {result!r}"


def test_catalogue_is_large_and_covers_every_topic():
    assert len(CASES) >= 80
    topics = {c.topic for c in CASES}
    assert topics == {
        "labels",
        "identifiers",
        "scales",
        "duplicates",
        "multi-select",
        "designs",
        "files",
        "command line",
    }
    with_rows = [c for c in CASES if c.kind in ("repair", "kept") and c.topic != "command line"]
    assert all(c.n_in is not None for c in with_rows), [c.name for c in with_rows if c.n_in is None]


def test_docs_table_is_up_to_date():
    """docs/data.md holds the table that benchmarks/messy_table.py writes from the catalogue."""
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "messy_table.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout + res.stderr
