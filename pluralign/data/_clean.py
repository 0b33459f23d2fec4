"""Label hygiene: identifiers kept as text, stray whitespace, case variants and placeholders.

Every function works on the distinct values of a column (``pd.factorize``), so that cleaning a
million-row table costs about as much as its few thousand distinct labels. Each returns the
cleaned column and the log entries describing what changed; nothing changes without an entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from pluralign._errors import StudyValidationError
from pluralign.data._log import LogEntry, examples

CaseVariants = str  # "merge" or "raise"
CANDIDATE_SEPARATORS = (";", ",", "|", "/", "+")


def is_text(dtype) -> bool:
    """Whether a column holds text (object or pandas string dtype)."""
    return pd.api.types.is_object_dtype(dtype) or isinstance(dtype, pd.StringDtype)


def folded(values: pd.Series) -> pd.Series:
    """Text stripped and case-folded (other values kept): spellings that count as one answer.

    Examples
    --------
    >>> folded(pd.Series([" She/Her", "she/her", 3])).tolist()
    ['she/her', 'she/her', 3]
    """
    if not is_text(values.dtype):
        return values
    return values.map(lambda v: v.strip().casefold() if isinstance(v, str) else v)


def strip_column_names(frame: pd.DataFrame, table: str) -> tuple[pd.DataFrame, list[LogEntry]]:
    """Column names without surrounding whitespace (``" rating"`` → ``"rating"``), logged."""
    renamed = {c: c.strip() for c in frame.columns if isinstance(c, str) and c != c.strip()}
    if not renamed:
        return frame, []
    entry = LogEntry(
        "strip_whitespace",
        table,
        0,
        "surrounding whitespace removed from column names",
        examples(renamed),
    )
    return frame.rename(columns=renamed), [entry]


def id_text(values: pd.Series, table: str, column: str) -> tuple[pd.Series, list[LogEntry]]:
    """Identifiers as text, never numbers: ``1.0`` → ``"1"``, ``" a "`` → ``"a"``.

    Floats that are whole numbers (a numeric id column with gaps is read as float) are written
    without the ``.0``; surrounding whitespace is removed. Leading zeros are kept: ``"01"`` and
    ``"1"`` stay different ids. Missing ids stay missing.
    """
    changes: list[LogEntry] = []
    if values.dtype.kind == "f":
        finite = values.dropna()
        if len(finite) and bool((finite == np.round(finite)).all()):
            values = values.astype("Int64")
            changes.append(
                LogEntry(
                    "ids_as_text",
                    table,
                    len(finite),
                    f"{column!r} ids stored as whole floats written without '.0' (1.0 → '1')",
                )
            )
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    text = np.array([str(u) for u in uniques], dtype=object)
    stripped = np.array([t.strip() for t in text], dtype=object)
    changed = np.flatnonzero(stripped != text)
    if len(changed):
        n = int(np.isin(codes, changed).sum())
        changes.append(
            LogEntry(
                "strip_whitespace",
                table,
                n,
                f"surrounding whitespace removed from {column!r} ids",
                examples(text[changed]),
            )
        )
    if not changes and is_text(values.dtype):
        return values, changes  # already text, nothing to change
    out = pd.Series(
        np.where(codes >= 0, stripped[np.maximum(codes, 0)] if len(stripped) else None, None),
        index=values.index,
        dtype=object,
    )
    out[codes < 0] = np.nan
    return out, changes


def _canonical(spellings: list[str], counts: list[int], preferred: Iterable[str]) -> str:
    """A declared spelling, else the most frequent, else the first seen."""
    preferred = set(preferred)
    for s in spellings:
        if s in preferred:
            return s
    order = np.argsort(-np.asarray(counts), kind="stable")
    return spellings[int(order[0])]


def clean_labels(
    values: pd.Series,
    table: str,
    column: str,
    *,
    missing: Iterable[str] = (),
    case_variants: CaseVariants = "merge",
    preferred: Iterable[str] = (),
) -> tuple[pd.Series, list[LogEntry]]:
    """Category labels stripped, placeholders made missing and case variants merged (or refused).

    Parameters
    ----------
    values : Series
        A text column (other dtypes are returned unchanged).
    table, column : str
        Where the column comes from (used in log entries and errors).
    missing : iterable of str
        Placeholders meaning unknown; matched after stripping, ignoring case.
    case_variants : {"merge", "raise"}
        Labels equal up to case ("she/her", "She/her"): merge them into the spelling in
        ``preferred`` or else the most frequent one (logged), or raise.
    preferred : iterable of str
        Spellings to keep when merging (declared reference levels, declared scale names).
    """
    if case_variants not in ("merge", "raise"):
        raise ValueError(f"case_variants must be 'merge' or 'raise', got {case_variants!r}")
    if values.dtype.kind in "biufcmM" or values.dtype == bool:
        return values, []
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if not len(uniques):
        return values, []
    is_text = np.array([isinstance(u, str) for u in uniques])
    raw = np.array([str(u) for u in uniques], dtype=object)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    changes: list[LogEntry] = []

    stripped = np.array([t.strip() if s else t for t, s in zip(raw, is_text, strict=True)], object)
    moved = np.flatnonzero(stripped != raw)
    if len(moved):
        changes.append(
            LogEntry(
                "strip_whitespace",
                table,
                int(counts[moved].sum()),
                f"surrounding whitespace removed from {column!r} values",
                examples(raw[moved]),
            )
        )
    folded_missing = {str(m).strip().casefold() for m in missing}
    is_missing = np.array([s.casefold() in folded_missing for s in stripped])
    if is_missing.any():
        changes.append(
            LogEntry(
                "missing_values",
                table,
                int(counts[is_missing].sum()),
                f"placeholder values in {column!r} set to missing",
                examples(sorted(set(stripped[is_missing]))),
            )
        )
    final = stripped.copy()
    keep = np.flatnonzero(~is_missing)
    by_fold: dict[str, list[int]] = {}
    for j in keep:
        by_fold.setdefault(final[j].casefold(), []).append(j)
    merged_rows, merged_examples = 0, []
    for group in by_fold.values():
        spellings = list(dict.fromkeys(final[j] for j in group))  # in order of appearance
        if len(spellings) < 2:
            continue
        per = {s: int(sum(counts[j] for j in group if final[j] == s)) for s in spellings}
        if case_variants == "raise":
            raise StudyValidationError(
                f"{table}.{column}: values that differ only by case: "
                f"{', '.join(f'{s!r} ({per[s]} rows)' for s in spellings)}. "
                f"Fix: recode them to one spelling, or pass case_variants='merge' to merge them "
                "into the most frequent one (logged)"
            )
        keep_as = _canonical(list(per), list(per.values()), preferred)
        for j in group:
            if final[j] != keep_as:
                merged_rows += int(counts[j])
                merged_examples.append(f"{final[j]} → {keep_as}")
                final[j] = keep_as
    if merged_rows:
        changes.append(
            LogEntry(
                "merge_case_variants",
                table,
                merged_rows,
                f"values of {column!r} that differ only by case merged into one spelling",
                examples(sorted(set(merged_examples))),
            )
        )
    if not changes:
        return values, []
    mapped = np.where(is_missing, None, final).astype(object)
    out = pd.Series(mapped[np.maximum(codes, 0)], index=values.index, dtype=object)
    out[codes < 0] = None
    # keep the original objects of non-text values (e.g. numbers in an object column)
    if not is_text.all():
        orig = np.array(uniques, dtype=object)
        restore = ~is_text[np.maximum(codes, 0)] & (codes >= 0)
        out[restore] = orig[codes[restore]]
    return out.astype("string") if is_text.all() else out, changes


def separator_in_values(
    values: pd.Series, column: str, separator: str | None
) -> tuple[str, list[str]] | None:
    """A separator that seems to join several answers in a column, with example values.

    A value counts as joined by ``sep`` when every part around ``sep`` is itself an answer
    given on its own elsewhere in the column ("White,Asian" beside "White" and "Asian"), or
    when it contains ``"|"``. Pronoun labels such as "she/her" are therefore not split: "she"
    and "her" are not answers of their own.
    """
    text = pd.unique(values.dropna().astype(str).str.strip())
    alone = set()
    for v in text:
        parts = [v] if separator is None or separator not in v else v.split(separator)
        alone.update(p.strip() for p in parts)
    for sep in CANDIDATE_SEPARATORS:
        if sep == separator:
            continue
        joined = []
        for v in text:
            if sep not in v:
                continue
            parts = [p.strip() for p in v.split(sep) if p.strip()]
            if len(parts) > 1 and (sep == "|" or all(p in alone and p != v for p in parts)):
                joined.append(v)
        if joined:
            return sep, joined
    return None


def refuse_joined_answers(
    values: pd.Series, column: str, separator: str, *, multiselect: bool
) -> None:
    """Raise when a rater column's values seem to join several answers with another separator.

    In a multi-select column, answers joined by anything but ``separator`` are refused; in a
    single-answer column, joined answers would become new categories ("/" is not counted: it
    belongs to labels such as "she/her").
    """
    if multiselect:
        texts = values.map(lambda v: v if isinstance(v, str) else None).dropna()
        found = separator_in_values(texts, column, separator) if len(texts) else None
        if found is not None:
            sep, joined = found
            raise StudyValidationError(
                f"raters.{column}: multi-select answers seem joined by {sep!r}, not by "
                f"separator={separator!r} (values {examples(joined, 3)}). "
                f"Fix: pass separator={sep!r}"
            )
    elif is_text(values.dtype):
        found = separator_in_values(values, column, None)
        if found is not None and found[0] != "/":
            sep, joined = found
            raise StudyValidationError(
                f"raters.{column}: some values join several answers with {sep!r} "
                f"({examples(joined, 3)}), which would make them new categories. "
                f"Fix: pass multiselect=[{column!r}], separator={sep!r}, or recode them"
            )


def check_levels(
    reference: Mapping[str, str], raters: pd.DataFrame, multiselect: Iterable[str]
) -> list[LogEntry]:
    """Check declared reference levels against the raters table.

    A reference that looks like a misspelling of a demographic column or of an observed level
    (a close match exists) is an error; a level or column that is simply absent (a small or
    filtered study) is logged, and analyses fall back to their default reference.
    """
    import difflib

    multiselect = set(multiselect)
    demographics = [str(c) for c in raters.columns if c != "rater"]
    changes = []
    for col, level in reference.items():
        if col not in demographics:
            close = difflib.get_close_matches(col, demographics, n=1, cutoff=0.6)
            if close:
                raise StudyValidationError(
                    f"reference names {col!r}, which is not a demographic column "
                    f"(did you mean {close[0]!r}?); demographics: {demographics}. Fix the name"
                )
            changes.append(
                LogEntry(
                    "reference_unused",
                    "raters",
                    0,
                    f"reference for {col!r} declared, but the raters table has no such column",
                    repr(level),
                )
            )
            continue
        if col in multiselect:
            seen = {v for t in raters[col] for v in t}
        else:
            seen = set(raters[col].dropna().astype(str))
        if level in seen:
            continue
        folded = [v for v in sorted(seen) if v.casefold() == level.casefold()]
        close = folded or difflib.get_close_matches(level, sorted(seen), n=1, cutoff=0.75)
        if close:
            raise StudyValidationError(
                f"reference[{col!r}] = {level!r} is not a value of raters.{col} (did you mean "
                f"{close[0]!r}?); values: {sorted(seen)[:10]}. Fix: declare one of them"
            )
        changes.append(
            LogEntry(
                "reference_unused",
                "raters",
                0,
                f"declared reference level of {col!r} is not observed; analyses use their "
                "default reference",
                repr(level),
            )
        )
    return changes
