"""Validation of the three study tables, with errors that say what is wrong and how to fix it.

Structural checks (presence, types, nulls, uniqueness) are pandera schemas; the checks pandera
cannot express (per-dimension scale ranges, keys shared across tables) are written here.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
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
    #: rows that ``drop_invalid=True`` removes (default: ``rows``)
    drop: pd.Index | None = None
    #: raise even with ``drop_invalid=True`` (dropping would hide a coding error)
    always_raise: bool = field(default=False)

    @property
    def drop_rows(self) -> pd.Index:
        return self.rows if self.drop is None else self.drop

    def message(self) -> str:
        shown = ", ".join(repr(v) for v in self.values[:N_SHOWN])
        more = f" (and {len(self.values) - N_SHOWN} more)" if len(self.values) > N_SHOWN else ""
        rows = ", ".join(str(r) for r in list(self.rows)[:N_SHOWN])
        return (
            f"{self.table}.{self.column}: {self.rule} in {len(self.rows)} row(s) "
            f"(rows {rows}; values {shown}{more}). Fix: {self.fix}."
        )


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
        strict=False,
    )


def check_scales(scales) -> dict[str, Scale]:
    """Declared scales as a dict keyed by dimension; a key must equal its Scale's dimension."""
    if scales is None:
        return {}
    if isinstance(scales, Scale):
        scales = [scales]
    if not isinstance(scales, Mapping):
        out = {}
        for s in scales:
            if not isinstance(s, Scale):
                raise StudyValidationError(
                    f"scales: expected Scale objects, got {type(s).__name__} ({s!r}). "
                    "Fix: scales=[Scale('toxicity', 1, 5)]"
                )
            if s.dimension in out:
                raise StudyValidationError(
                    f"scales: dimension {s.dimension!r} is declared twice; declare it once"
                )
            out[s.dimension] = s
        return out
    out = {}
    for dim, s in scales.items():
        if not isinstance(s, Scale):
            raise StudyValidationError(
                f"scales[{dim!r}]: expected a Scale, got {type(s).__name__}. "
                f"Fix: scales={{'{dim}': Scale('{dim}', 1, 5)}}"
            )
        if s.dimension != dim:
            raise StudyValidationError(
                f"scales[{dim!r}] is the scale of dimension {s.dimension!r}; a scale must be "
                f"stored under its own dimension. Fix: scales={{{s.dimension!r}: Scale("
                f"{s.dimension!r}, ...)}} or Scale({dim!r}, {s.min}, {s.max}, ...)"
            )
        out[str(dim)] = s
    return out


def check_scale_keys(scales: Mapping[str, Scale], dimensions: Iterable[str]) -> None:
    """Raise if a declared scale names no dimension of the ratings, with a did-you-mean."""
    dims = [str(d) for d in dimensions]
    unknown = [d for d in scales if d not in dims]
    if not unknown:
        return
    parts = []
    for d in unknown:
        folded = [x for x in dims if x.casefold() == d.strip().casefold()]
        close = folded or difflib.get_close_matches(d, dims, n=1, cutoff=0.6)
        parts.append(f"{d!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise StudyValidationError(
        f"scales: {', '.join(parts)} names no dimension of the ratings; dimensions are {dims}. "
        "Fix: key each scale by a dimension name as spelled in ratings.dimension"
    )


def _shift_hint(values: pd.Series, scale: Scale, n_bad: int) -> str:
    """A hint when ratings look like the declared scale moved by one (0..4 for 1..5)."""
    v = values.dropna()
    if v.empty or n_bad < max(2, 0.01 * len(v)) or not (v == v.round()).all():
        return ""
    for shift in (-1, 1):
        if v.min() >= scale.min + shift and v.max() <= scale.max + shift:
            lo, hi = scale.min + shift, scale.max + shift
            op = "add 1 to" if shift < 0 else "subtract 1 from"
            return (
                f"the ratings span {int(v.min())}..{int(v.max())}, which looks like the "
                f"{scale.min}..{scale.max} scale coded as {lo}..{hi}: {op} the ratings, or "
                f"declare Scale({scale.dimension!r}, {lo}, {hi})"
            )
    return ""


def duplicate_problems(ratings: pd.DataFrame) -> list[Problem]:
    """Identical duplicate rows and conflicting duplicates (same key, different ratings), apart."""
    keys = ["rater", "item", "dimension"]
    # one integer per key combination (hashing three text columns at once is much slower)
    combined = np.zeros(len(ratings), dtype=np.int64)
    for k in keys:
        codes, uniques = pd.factorize(ratings[k], use_na_sentinel=False)
        combined = combined * (len(uniques) + 1) + codes
    dup = pd.Series(pd.Series(combined).duplicated(keep=False).to_numpy(), index=ratings.index)
    if not dup.any():
        return []
    sub = ratings.loc[dup, [*keys, "rating"]]
    n_values = sub.groupby(keys, sort=False, dropna=False)["rating"].transform(
        lambda r: r.astype(str).nunique(dropna=False)
    )
    conflict = n_values > 1
    problems = []
    same = sub[~conflict]
    if len(same):
        extra = same.index[same.duplicated(keys, keep="first")]
        problems.append(
            Problem(
                "ratings",
                "+".join(keys),
                "identical duplicate rows",
                same.index,
                tuple(same[keys].astype(str).agg("/".join, axis=1)),
                "remove the repeated rows (drop_invalid=True keeps one copy and logs the rest)",
                drop=extra,
            )
        )
    clash = sub[conflict]
    if len(clash):
        shown = clash.groupby(keys, sort=False)["rating"].agg(lambda r: list(r))
        values = tuple(f"{'/'.join(map(str, k))}: ratings {v}" for k, v in shown.items())
        problems.append(
            Problem(
                "ratings",
                "+".join(keys),
                "conflicting duplicates (same rater, item and dimension, different ratings)",
                clash.index,
                values,
                "decide which rating is right and keep only that row "
                "(drop_invalid=True drops every copy and logs them)",
            )
        )
    return problems


def ratings_problems(
    ratings: pd.DataFrame, scales: Mapping[str, Scale], check_range: bool = True
) -> tuple[list[Problem], pd.DataFrame]:
    """Problems of the ratings table and the table with ``rating`` made numeric where possible."""
    problems = _schema_problems(ratings, "ratings", ratings_schema())
    rating = ratings["rating"]
    if rating.dtype == object or isinstance(rating.dtype, pd.StringDtype):
        rating = rating.map(lambda v: v.strip() if isinstance(v, str) else v)
    numeric = pd.to_numeric(rating, errors="coerce")
    out = ratings.assign(rating=numeric)
    # a copy with a missing rating is reported as missing, not as a conflicting answer
    problems += duplicate_problems(out[out["rating"].notna()])
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
            hint = _shift_hint(r, scale, int(mask.sum()))
            fix = hint or (
                f"recode the ratings or declare the scale, e.g. "
                f"scales={{'{dim}': Scale('{dim}', min, max)}}"
            )
            bad_range.append(
                Problem(
                    "ratings",
                    "rating",
                    f"values outside the {dim!r} scale {scale.min}..{scale.max} (integers)",
                    grp.index[mask],
                    tuple(r[mask].tolist()),
                    fix,
                    always_raise=bool(hint),
                )
            )
    return problems + bad_range, out


def key_problems(ratings: pd.DataFrame, raters: pd.DataFrame, items: pd.DataFrame) -> list[Problem]:
    problems = []
    for key, table in (("rater", raters), ("item", items)):
        unknown = ~ratings[key].isin(table[key])
        if unknown.any():
            vals = tuple(pd.unique(ratings.loc[unknown, key]).tolist())
            fix = (
                f"add these {key}s to the {key}s table or remove their ratings "
                "(drop_invalid=True drops and logs them)"
            )
            known = {str(k).lstrip("0") or "0": k for k in table[key].dropna()}
            zeros = [(v, known.get(str(v).lstrip("0") or "0")) for v in vals[:50]]
            zeros = [(v, k) for v, k in zeros if k is not None and v == v and k != v]
            if zeros:
                v, k = zeros[0]
                fix = (
                    f"ids are compared as text and differ in leading zeros ({v!r} in ratings, "
                    f"{k!r} in the {key}s table); write them the same way in both tables "
                    "(read files with the id columns as text)"
                )
            problems.append(
                Problem(
                    "ratings",
                    key,
                    f"{key} ids not found in the {key}s table",
                    ratings.index[unknown],
                    vals,
                    fix,
                    always_raise=bool(zeros),
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
    """Raise one StudyValidationError listing every problem (nothing when there is none)."""
    if problems:
        raise StudyValidationError("\n".join(p.message() for p in problems))
