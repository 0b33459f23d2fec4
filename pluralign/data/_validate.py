"""Validation of the three study tables, with errors that say what is wrong and how to fix it.

Structural checks (presence, types, nulls, uniqueness) are pandera schemas; the checks pandera
cannot express (per-dimension scale ranges, keys shared across tables) are written here.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd
import pandera.errors as pa_errors
import pandera.pandas as pa

from pluralign._errors import StudyValidationError
from pluralign.data._scale import Scale

RATING_COLUMNS = ("rater", "item", "dimension", "rating")
RATER_KEY = "rater"
ITEM_COLUMNS = ("item", "prompt_id", "prompt", "response")
OPTIONAL_ITEM_COLUMNS = ("model",)
N_SHOWN = 5

_FIX = {
    "not_nullable": "remove or fill the missing values (or pass drop_invalid=True to drop and log them)",
    "coerce_dtype": "make the column numeric (e.g. map label text to numbers)",
    "multiple_fields_uniqueness": "remove duplicate rows (or pass drop_invalid=True to keep the first and log the rest)",
    "field_uniqueness": "give every row a distinct id",
}


@dataclass(frozen=True)
class Problem:
    """One violated rule, with the row positions that violate it."""

    table: str
    column: str
    rule: str
    rows: pd.Index
    values: tuple
    fix: str

    def message(self) -> str:
        shown = ", ".join(repr(v) for v in self.values[:N_SHOWN])
        more = f" (and {len(self.values) - N_SHOWN} more)" if len(self.values) > N_SHOWN else ""
        rows = ", ".join(str(r) for r in list(self.rows)[:N_SHOWN])
        return (
            f"{self.table}.{self.column}: {self.rule} in {len(self.rows)} row(s) "
            f"(rows {rows}; values {shown}{more}). Fix: {self.fix}."
        )


def _raise(problems: list[Problem]) -> None:
    if problems:
        raise StudyValidationError("\n".join(p.message() for p in problems))


def check_columns(frame: pd.DataFrame, table: str, required: Iterable[str], hint: str = "") -> None:
    """Raise if required columns are missing, suggesting close matches among those present."""
    if not isinstance(frame, pd.DataFrame):
        raise StudyValidationError(
            f"{table}: expected a pandas DataFrame, got {type(frame).__name__}"
        )
    missing = [c for c in required if c not in frame.columns]
    if not missing:
        return
    present = [str(c) for c in frame.columns]
    parts = []
    for col in missing:
        close = difflib.get_close_matches(col, present, n=1, cutoff=0.6)
        parts.append(f"{col!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise StudyValidationError(
        f"{table}: missing column(s) {', '.join(parts)}; columns present: {present}. "
        f"Fix: rename your columns, e.g. read_study(path, columns={{'your_name': '{missing[0]}'}})"
        + (f". {hint}" if hint else "")
    )


def check_not_empty(frame: pd.DataFrame, table: str) -> None:
    if len(frame) == 0:
        raise StudyValidationError(f"{table}: the table is empty; a study needs at least one row")


def _schema_problems(frame: pd.DataFrame, table: str, schema: pa.DataFrameSchema) -> list[Problem]:
    try:
        schema.validate(frame, lazy=True)
    except pa_errors.SchemaErrors as err:
        cases = err.failure_cases
        problems = []
        cases = cases.assign(
            column=cases["column"].where(
                ~cases["check"].astype(str).str.startswith("multiple_fields_uniqueness"),
                "+".join(schema.unique or []),
            )
        )
        for (column, check), grp in cases.groupby(["column", "check"], sort=False, dropna=False):
            check = str(check)
            if (
                check.startswith("dtype(")
                and (cases["check"].astype(str).str.startswith("coerce")).any()
            ):
                continue  # reported by the coercion failure
            key = check.split("(")[0]
            rule = {
                "not_nullable": "missing values",
                "coerce_dtype": "values that are not numbers",
                "multiple_fields_uniqueness": "duplicate rows",
                "field_uniqueness": "duplicate ids",
            }.get(key, check)
            col = str(column) if column is not None and column == column else "(several)"
            if key == "multiple_fields_uniqueness":
                col = "+".join(schema.unique or [])
            rows = pd.Index(grp["index"].dropna().unique())
            values = tuple(grp["failure_case"].tolist())
            if key == "multiple_fields_uniqueness":
                values = tuple(
                    frame.loc[rows, list(schema.unique)].astype(str).agg("/".join, axis=1)
                )
            problems.append(
                Problem(table, col, rule, rows, values, _FIX.get(key, "correct the values"))
            )
        return problems
    return []


def ratings_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "rater": pa.Column(nullable=False),
            "item": pa.Column(nullable=False),
            "dimension": pa.Column(nullable=False),
            "rating": pa.Column(float, nullable=False, coerce=True),
        },
        unique=["rater", "item", "dimension"],
        strict=False,
    )


def ratings_problems(
    ratings: pd.DataFrame, scales: Mapping[str, Scale], check_range: bool = True
) -> tuple[list[Problem], pd.DataFrame]:
    """Problems of the ratings table and the table with ``rating`` made numeric where possible."""
    problems = _schema_problems(ratings, "ratings", ratings_schema())
    numeric = pd.to_numeric(ratings["rating"], errors="coerce")
    out = ratings.assign(rating=numeric)
    bad_range = []
    if not check_range:
        return problems, out
    for dim, grp in out.groupby("dimension", sort=False):
        scale = scales.get(dim)
        if scale is None:
            continue
        r = grp["rating"]
        mask = r.notna() & ((r < scale.min) | (r > scale.max) | (r != r.round()))
        if mask.any():
            bad_range.append(
                Problem(
                    "ratings",
                    "rating",
                    f"values outside the {dim!r} scale {scale.min}..{scale.max} (integers)",
                    grp.index[mask],
                    tuple(r[mask].tolist()),
                    f"recode the ratings or declare the scale, e.g. scales={{'{dim}': Scale('{dim}', min, max)}}",
                )
            )
    return problems + bad_range, out


def key_problems(ratings: pd.DataFrame, raters: pd.DataFrame, items: pd.DataFrame) -> list[Problem]:
    problems = []
    for key, table in (("rater", raters), ("item", items)):
        unknown = ~ratings[key].isin(table[key])
        if unknown.any():
            vals = tuple(pd.unique(ratings.loc[unknown, key]).tolist())
            problems.append(
                Problem(
                    "ratings",
                    key,
                    f"{key} ids not found in the {key}s table",
                    ratings.index[unknown],
                    vals,
                    f"add these {key}s to the {key}s table or remove their ratings "
                    "(drop_invalid=True drops and logs them)",
                )
            )
    return problems


def id_problems(frame: pd.DataFrame, table: str, key: str) -> list[Problem]:
    problems = []
    nul = frame[key].isna()
    if nul.any():
        problems.append(
            Problem(
                table,
                key,
                "missing ids",
                frame.index[nul],
                (None,) * int(nul.sum()),
                "give every row an id",
            )
        )
    dup = frame[key].duplicated(keep=False) & ~nul
    if dup.any():
        problems.append(
            Problem(
                table,
                key,
                "duplicate ids",
                frame.index[dup],
                tuple(frame.loc[dup, key].tolist()),
                f"keep one row per {key} (a {key}'s attributes must not vary across rows)",
            )
        )
    return problems


def raise_problems(problems: list[Problem]) -> None:
    """Raise one StudyValidationError listing every problem."""
    _raise(problems)
