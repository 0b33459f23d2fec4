"""Reading and writing studies: CSV / parquet / JSON files, flat tables and wide layouts."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pluralign._errors import StudyValidationError
from pluralign.data._clean import folded
from pluralign.data._log import LogEntry
from pluralign.data._scale import Scale
from pluralign.data._study import Study
from pluralign.data._validate import (
    ITEM_COLUMNS,
    OPTIONAL_ITEM_COLUMNS,
    RATING_COLUMNS,
    check_columns,
)


def wide_to_long(
    frame: pd.DataFrame,
    dimensions: str | Sequence[str],
    *,
    rater: str = "rater",
    item: str = "item",
    keep: Sequence[str] = (),
) -> pd.DataFrame:
    """Turn one column per dimension into the long ``rater, item, dimension, rating`` layout.

    Rows whose rating is missing for a dimension stay as missing ratings, so validation
    reports them (or, with ``drop_invalid=True``, drops and logs them).

    Parameters
    ----------
    frame : DataFrame
        One row per rater × item, with a column for each dimension.
    dimensions : sequence of str
        The dimension columns.
    rater, item : str
        Names of the rater and item id columns in ``frame``.
    keep : sequence of str
        Other columns to carry along (e.g. demographics, texts).

    Examples
    --------
    >>> import pandas as pd
    >>> wide = pd.DataFrame({"rater": ["a"], "item": ["i"], "toxicity": [2], "helpfulness": [5]})
    >>> wide_to_long(wide, ["toxicity", "helpfulness"])[["dimension", "rating"]].values.tolist()
    [['toxicity', 2], ['helpfulness', 5]]
    """
    if isinstance(dimensions, str):
        dimensions = [dimensions]
    check_columns(frame, "wide table", [rater, item, *dimensions, *keep])
    long = frame.melt(
        id_vars=[rater, item, *keep],
        value_vars=list(dimensions),
        var_name="dimension",
        value_name="rating",
    ).rename(columns={rater: "rater", item: "item"})
    order = {d: i for i, d in enumerate(dimensions)}
    long["_row"] = np.tile(np.arange(len(frame)), len(dimensions))
    long = long.sort_values(
        ["_row", "dimension"], key=lambda s: s.map(order) if s.name == "dimension" else s
    )
    return long.drop(columns="_row").reset_index(drop=True)


def split_flat(
    flat: pd.DataFrame,
    *,
    demographics: Sequence[str] = (),
    item_columns: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split one flat table (ratings with rater and item attributes repeated) into three tables.

    A rater whose demographics differ between rows, or an item whose text differs, is an
    error naming the id and the column.

    Parameters
    ----------
    flat : DataFrame
        Columns ``rater, item, dimension, rating``, the ``demographics`` and item columns.
    demographics : sequence of str
        Rater columns (one value per rater; values differing only by surrounding whitespace or
        case count as one, cleaned later by :meth:`Study.from_frames`).
    item_columns : sequence of str, optional
        Item columns (default: the known item columns present, e.g. ``prompt_id, response``).

    Returns
    -------
    ratings, raters, items : DataFrame
        The tables :meth:`Study.from_frames` takes.

    Raises
    ------
    StudyValidationError
        When a rater's or item's attributes differ between rows.

    Examples
    --------
    >>> flat = pd.DataFrame({"rater": ["a", "a", "b"], "item": ["i1", "i2", "i1"],
    ...                      "dimension": "toxicity", "rating": [1, 2, 3],
    ...                      "gender": ["she/her", "she/her", "he/him"]})
    >>> ratings, raters, items = split_flat(flat, demographics=["gender"])
    >>> raters.values.tolist(), items["item"].tolist()
    ([['a', 'she/her'], ['b', 'he/him']], ['i1', 'i2'])
    """
    check_columns(flat, "table", ["rater", "item", "dimension", "rating", *demographics])
    if item_columns is None:
        item_columns = [c for c in (*ITEM_COLUMNS[1:], *OPTIONAL_ITEM_COLUMNS) if c in flat.columns]
    ratings = flat[["rater", "item", "dimension", "rating"]]
    raters = _one_row_per(flat, "rater", list(demographics), loose=True)
    items = _one_row_per(flat, "item", list(item_columns))
    return ratings, raters, items


def _one_row_per(
    flat: pd.DataFrame, key: str, columns: list[str], *, loose: bool = False
) -> pd.DataFrame:
    sub = flat[[key, *columns]].drop_duplicates()
    sub = sub[sub[key].notna()]  # rows without an id are reported by the ratings checks
    if loose and columns:
        # demographic values that differ only by surrounding whitespace or case are one
        # answer (cleaned, and logged, by Study.from_frames)
        sub = sub.loc[~sub.apply(folded).duplicated()]
    dup = sub[key].duplicated(keep=False)
    if dup.any():
        bad = sub[dup].sort_values(key)
        varying = [c for c in columns if bad.groupby(key)[c].nunique(dropna=False).gt(1).any()]
        first = bad[key].iloc[0]
        raise StudyValidationError(
            f"{key}s table: {key} {first!r} (and {bad[key].nunique() - 1} more) has different values "
            f"of {varying} on different rows: {bad[bad[key] == first][varying].to_dict('records')[:3]}. "
            f"Fix: one value per {key}, or give a separate {key}s table"
        )
    return sub.reset_index(drop=True)


ID_COLUMNS = ("rater", "item", "prompt_id")
_SNIFF = (",", "\t", ";", "|")
_FORMATS = {
    "csv": "csv",
    "txt": "csv",
    "tsv": "tsv",
    "tab": "tsv",
    "parquet": "parquet",
    "pq": "parquet",
    "json": "json",
    "jsonl": "jsonl",
    "ndjson": "jsonl",
}


def _sniff_format(head: bytes) -> str | None:
    """The format the first bytes of a file show, whatever its extension."""
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\xd0\xcf\x11\xe0"):
        return "excel"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        return "jsonl" if b"}\n{" in text.replace(b"\r", b"") else "json"
    return None


def _detect_sep(text: str) -> str:
    """The delimiter of a delimited text file: the candidate splitting the first lines evenly."""
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    if len(lines) > 1:
        lines = lines[:-1]  # the last line of the sample may be cut
    best, best_n = ",", 0
    for sep in _SNIFF:
        counts = {ln.count(sep) for ln in lines}
        n = min(ln.count(sep) for ln in lines) if lines else 0
        if len(counts) == 1 and n > best_n:
            best, best_n = sep, n
    return best


def _read_table(
    path: Path,
    fmt: str | None = None,
    *,
    sep: str | None = None,
    encoding: str = "utf-8",
    ids: Sequence[str] = ID_COLUMNS,
) -> pd.DataFrame:
    """Read one table file; id columns (``ids``, as named in the file) are read as text."""
    if path.is_dir():
        raise StudyValidationError(f"{path} is a folder; give a table file")
    size = path.stat().st_size
    if size == 0:
        raise StudyValidationError(f"{path}: the file is empty (0 bytes); nothing to read")
    with path.open("rb") as fh:
        head = fh.read(65536)
    ext = path.suffix.lstrip(".").lower()
    given = (fmt or "").lower() or None
    sniffed = _sniff_format(head)
    kind = _FORMATS.get(given or ext)
    if given and kind is None:
        raise StudyValidationError(
            f"format={fmt!r} is not supported; use 'csv', 'tsv', 'parquet', 'json' or 'jsonl'"
        )
    if sniffed == "excel":
        raise StudyValidationError(
            f"{path}: this is an Excel workbook; save it as CSV (or read it with "
            "pandas.read_excel and pass the tables to Study.from_frames)"
        )
    if kind is None:
        if sniffed is None:
            raise StudyValidationError(
                f"cannot read {path}: unknown format {ext!r}; use .csv, .tsv, .parquet, .json or "
                "(for another extension) format='csv'"
            )
        kind = sniffed
    if (
        given is None
        and sniffed is not None
        and sniffed != kind
        and not ({sniffed, kind} <= {"json", "jsonl"})
    ):
        raise StudyValidationError(
            f"{path}: the extension says {kind} but the content is {sniffed}; rename the file "
            f"or pass format={sniffed!r}"
        )
    if kind in ("csv", "tsv"):
        return _read_delimited(
            path, head, "\t" if kind == "tsv" and sep is None else sep, encoding, ids
        )
    if kind == "parquet":
        if sniffed != "parquet":
            raise StudyValidationError(
                f"{path}: not a parquet file (it does not start with the parquet magic bytes); "
                "check the extension or pass format="
            )
        try:
            return pd.read_parquet(path)
        except Exception as err:  # pyarrow raises several types
            raise StudyValidationError(f"{path}: cannot read the parquet file ({err})") from None
    return _read_json(path, kind, encoding, ids)


def _decode_error(path: Path, encoding: str, err: UnicodeDecodeError) -> StudyValidationError:
    return StudyValidationError(
        f"{path}: bytes at position {err.start} cannot be decoded as {encoding} "
        f"({err.object[max(err.start - 10, 0) : err.end + 10]!r}). Fix: pass the file's "
        "encoding, e.g. read_study(path, encoding='latin-1') or encoding='cp1252'"
    )


def _read_delimited(
    path: Path, head: bytes, sep: str | None, encoding: str, ids: Sequence[str]
) -> pd.DataFrame:
    try:
        sample = head.decode(encoding, errors="strict" if len(head) < 65536 else "ignore")
    except UnicodeDecodeError as err:
        raise _decode_error(path, encoding, err) from None
    except LookupError:
        raise StudyValidationError(f"encoding={encoding!r} is not a known encoding") from None
    if not sample.strip():
        raise StudyValidationError(f"{path}: the file holds only whitespace; nothing to read")
    if sep is None:
        sep = _detect_sep(sample)
    try:
        header = pd.read_csv(path, sep=sep, encoding=encoding, nrows=0)
        header.columns = [str(c).strip() for c in header.columns]
        dtype = {c: str for c in header.columns if c in set(ids)}
        frame = pd.read_csv(
            path,
            sep=sep,
            encoding=encoding,
            dtype=dtype or None,
            header=0,
            names=list(header.columns),
        )
    except UnicodeDecodeError as err:
        raise _decode_error(path, encoding, err) from None
    except pd.errors.ParserError as err:
        raise StudyValidationError(
            f"{path}: cannot parse the table with separator {sep!r} ({str(err).strip()}). "
            "Fix: pass sep=',' (or ';', '\\t', '|') matching the file, and quote fields that "
            "contain it"
        ) from None
    except pd.errors.EmptyDataError:
        raise StudyValidationError(f"{path}: the file has no header row; nothing to read") from None
    if frame.shape[1] == 1 and len(frame):
        raise StudyValidationError(
            f"{path}: only one column ({frame.columns[0]!r}) was found with separator {sep!r}; "
            "Fix: pass the file's separator, e.g. sep=';'"
        )
    if frame.empty:
        raise StudyValidationError(f"{path}: the file has a header but no rows")
    return frame


def _read_json(path: Path, kind: str, encoding: str, ids: Sequence[str]) -> pd.DataFrame:
    try:
        text = path.read_text(encoding=encoding)
    except UnicodeDecodeError as err:
        raise _decode_error(path, encoding, err) from None
    except LookupError:
        raise StudyValidationError(f"encoding={encoding!r} is not a known encoding") from None
    text = text.lstrip("\ufeff")
    try:
        if kind == "jsonl":
            records = [json.loads(ln) for ln in text.splitlines() if ln.strip()]
        else:
            records = json.loads(text)
    except json.JSONDecodeError as err:
        raise StudyValidationError(
            f"{path}: malformed JSON at line {err.lineno}, column {err.colno}: {err.msg}. "
            "Fix: repair the file; JSON holds a list of records [{...}, ...] or, as .jsonl, "
            "one record per line"
        ) from None
    if isinstance(records, dict):
        if records and all(isinstance(v, list) for v in records.values()):
            records = pd.DataFrame(records).to_dict("records")
        else:
            raise StudyValidationError(
                f"{path}: the JSON holds one object, not a table; write a list of records "
                "[{'rater': ..., 'item': ..., 'dimension': ..., 'rating': ...}, ...]"
            )
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise StudyValidationError(
            f"{path}: the JSON is not a list of records (objects); write "
            "[{'rater': ..., 'item': ..., 'dimension': ..., 'rating': ...}, ...]"
        )
    if not records:
        raise StudyValidationError(f"{path}: the JSON list is empty; nothing to read")
    frame = pd.DataFrame.from_records(records)
    for col in frame.columns:
        if col in set(ids):
            frame[col] = frame[col].map(lambda v: v if v is None else str(v))
    return frame


def _as_dimensions(dimensions: str | Sequence[str] | None) -> list[str] | str | None:
    if dimensions is None or isinstance(dimensions, str):
        return dimensions
    return [str(d) for d in dimensions]


def read_study(
    path: str | Path,
    *,
    columns: Mapping[str, str] | None = None,
    dimensions: str | Sequence[str] | None = None,
    demographics: Sequence[str] | str = (),
    raters: str | Path | pd.DataFrame | None = None,
    items: str | Path | pd.DataFrame | None = None,
    scales: Mapping[str, Scale] | Iterable[Scale] | None = None,
    format: str | None = None,
    sep: str | None = None,
    encoding: str = "utf-8",
    **kwargs: Any,
) -> Study:
    """Read a study from a folder written by :meth:`Study.to_parquet`, or from a table file.

    Identifiers (``rater``, ``item``, ``prompt_id``) are read as text in every format, so
    ``"01"`` and ``"1"`` stay different raters and ``"001"`` never becomes ``1``.

    Parameters
    ----------
    path : str or Path
        A folder written by ``Study.to_parquet`` (round trip), or a CSV / TSV / parquet /
        JSON / JSONL file of ratings (long, or wide with several ``dimensions``) that may also
        carry rater demographics and item texts on every row.
    columns : mapping, optional
        Renames from your column names to pluralign's (``rater, item, dimension, rating,
        prompt_id, prompt, response, model``), e.g. ``{"user_id": "rater"}``.
    dimensions : str or sequence of str, optional
        Columns holding one dimension each (wide layout, after renaming). A single name that
        is not a column of a long file without a ``dimension`` column names its one dimension.
    demographics : sequence of str or "auto"
        Rater columns of the file (after renaming). ``"auto"`` takes every other column that
        holds one value per rater (logged). Columns of the file that are not read are logged.
    raters, items : path or DataFrame, optional
        Separate rater / item tables (renamed with ``columns`` too).
    scales : mapping or list of Scale, optional
        Declared scales (otherwise inferred and logged).
    format : str, optional
        File format when the extension does not say it (``"csv"``, ``"tsv"``, ``"parquet"``,
        ``"json"``, ``"jsonl"``).
    sep : str, optional
        Delimiter of a CSV file (default: detected among ",", tab, ";" and "|").
    encoding : str, default "utf-8"
        Text encoding of CSV and JSON files.
    **kwargs
        Passed to :meth:`Study.from_frames` (``multiselect``, ``missing_values``,
        ``case_variants``, ``drop_invalid``...).

    Returns
    -------
    Study

    Raises
    ------
    StudyValidationError
        For an empty, undecodable, malformed or mislabelled file, naming the fix.
    FileNotFoundError
        When nothing exists at ``path``.

    Examples
    --------
    >>> import tempfile
    >>> from pluralign.data import simulate_study
    >>> s = simulate_study(n_raters=30, seed=2).study
    >>> d = s.to_parquet(tempfile.mkdtemp())
    >>> read_study(d).n_ratings == s.n_ratings
    True
    """
    path = Path(path)
    if "dimension" in kwargs:
        raise TypeError("read_study(dimension=...) is now dimensions=... (a name or a list)")
    if path.is_dir():
        return _read_folder(path)
    if not path.exists():
        raise FileNotFoundError(f"no study file or folder at {path}")
    columns = dict(columns or {})
    back = {}
    for src, dst in columns.items():
        back.setdefault(dst, []).append(src)
    ids = [*ID_COLUMNS, *(s for k in ID_COLUMNS for s in back.get(k, []))]
    flat = _read_table(path, format, sep=sep, encoding=encoding, ids=ids).rename(columns=columns)
    dims = _as_dimensions(dimensions)
    if isinstance(dims, str):
        if dims in flat.columns:
            dims = [dims]
        elif "dimension" in flat.columns:
            raise StudyValidationError(
                f"dimensions={dims!r}: the file has a 'dimension' column and no column "
                f"{dims!r}; leave dimensions out (or name the columns of a wide file)"
            )
        else:
            flat = flat.assign(dimension=dims)
    if isinstance(dims, list):
        if "dimension" in flat.columns:
            raise StudyValidationError(
                f"dimensions={dims}: the file already has a 'dimension' column (long layout); "
                "leave dimensions out"
            )
        keep = [c for c in flat.columns if c not in dims and c not in ("rater", "item")]
        flat = wide_to_long(flat, dims, keep=keep)
    extra_items = [c for c in (*ITEM_COLUMNS[1:], *OPTIONAL_ITEM_COLUMNS) if c in flat.columns]
    known = {*RATING_COLUMNS, *extra_items}
    notes = []
    if isinstance(demographics, str):
        if demographics != "auto":
            demographics = [demographics]
        else:
            check_columns(flat, "table", ["rater"])
            demographics = _rater_columns(flat, [c for c in flat.columns if c not in known])
            notes.append(
                LogEntry(
                    "detect_demographics",
                    "raters",
                    0,
                    "columns constant within each rater taken as demographics",
                    ", ".join(map(repr, demographics)) or "none",
                )
            )
    unused = [c for c in flat.columns if c not in known and c not in set(demographics)]
    if unused:
        notes.append(
            LogEntry(
                "unused_columns",
                "ratings",
                0,
                "columns of the file not read (name them in demographics= to use them)",
                ", ".join(map(repr, unused)),
            )
        )
    ratings, rater_tab, item_tab = split_flat(
        flat,
        demographics=demographics,
        item_columns=[] if items is not None else extra_items,
    )

    def side_table(source: str | Path | pd.DataFrame) -> pd.DataFrame:
        """A separate raters or items table, read like the file and renamed with ``columns``."""
        if not isinstance(source, pd.DataFrame):
            source = _read_table(Path(source), sep=sep, encoding=encoding, ids=ids)
        return source.rename(columns=columns)

    if raters is not None:
        rater_tab = side_table(raters)
    elif not demographics:
        rater_tab = None
    if items is not None:
        item_tab = side_table(items)
    kwargs.setdefault("name", path.stem)
    study = Study.from_frames(ratings, rater_tab, items=item_tab, scales=scales, **kwargs)
    for note in notes:
        study = study.replace(note=note)
    return study


def _rater_columns(flat: pd.DataFrame, candidates: list[str]) -> list[str]:
    """Columns with one value per rater (up to whitespace and case): the rater's attributes."""
    out = []
    keyed = flat[flat["rater"].notna()]
    for col in candidates:
        pairs = keyed[["rater", col]].drop_duplicates()  # small: one row per rater and value
        values = folded(pairs[col])
        if values.groupby(pairs["rater"], sort=False).nunique(dropna=False).le(1).all():
            out.append(col)
    return out


_FOLDER_FILES = ("ratings.parquet", "raters.parquet", "items.parquet")


def _read_folder(path: Path) -> Study:
    meta_file = path / "study.json"
    if not meta_file.exists():
        raise FileNotFoundError(
            f"{path} is a folder without study.json; read_study expects a folder written by "
            "Study.to_parquet, or a single table file"
        )
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise StudyValidationError(
            f"{meta_file}: not valid JSON ({err}); write the folder again with Study.to_parquet"
        ) from None
    if not isinstance(meta, dict):
        raise StudyValidationError(f"{meta_file}: expected a JSON object with 'scales'")
    absent = [f for f in _FOLDER_FILES if not (path / f).exists()]
    if absent:
        raise StudyValidationError(
            f"{path}: the study folder lacks {absent}; a folder written by Study.to_parquet "
            f"holds {list(_FOLDER_FILES)} and study.json. Fix: write it again"
        )
    if "scales" not in meta:
        raise StudyValidationError(
            f"{meta_file}: field 'scales' is missing (a list of scales, e.g. "
            '[{"dimension": "toxicity", "min": 1, "max": 5}]). Fix: add it or write the folder '
            "again with Study.to_parquet"
        )
    ratings = pd.read_parquet(path / "ratings.parquet")
    raters = pd.read_parquet(path / "raters.parquet")
    items = pd.read_parquet(path / "items.parquet")
    for name, frame, need in (
        ("ratings.parquet", ratings, ("rater", "item", "dimension", "rating")),
        ("raters.parquet", raters, ("rater",)),
        ("items.parquet", items, ("item", "prompt_id")),
    ):
        lacking = [c for c in need if c not in frame.columns]
        if lacking:
            raise StudyValidationError(
                f"{path / name}: missing column(s) {lacking}. Fix: write the folder again with "
                "Study.to_parquet"
            )
    multiselect = tuple(meta.get("multiselect", ()))
    for col in multiselect:
        raters[col] = raters[col].map(lambda v: tuple(str(x) for x in v) if v is not None else ())
    try:
        scales = {d["dimension"]: Scale.from_dict(d) for d in meta["scales"]}
    except (KeyError, TypeError, ValueError) as err:
        raise StudyValidationError(
            f"{meta_file}: a scale entry is malformed ({err!r}); each needs 'dimension', 'min' "
            "and 'max'"
        ) from None
    ratings = ratings.astype({"rater": str, "item": str, "dimension": str, "rating": float})
    raters["rater"] = raters["rater"].astype(str)
    items["item"] = items["item"].astype(str)
    items["prompt_id"] = items["prompt_id"].astype(str)
    log = tuple(LogEntry(**e) for e in meta.get("log", []))
    return Study(
        ratings,
        raters,
        items,
        scales,
        multiselect,
        log,
        meta.get("name", "study"),
        meta.get("metadata", {}),
        meta.get("reference", {}),
    )
