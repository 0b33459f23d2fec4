"""Reading and writing studies: CSV / parquet / JSON files, flat tables and wide layouts."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pluralign._errors import StudyValidationError
from pluralign.data._scale import Scale
from pluralign.data._study import LogEntry, Study
from pluralign.data._validate import ITEM_COLUMNS, OPTIONAL_ITEM_COLUMNS, check_columns


def wide_to_long(
    frame: pd.DataFrame,
    dimensions: Sequence[str],
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
    demographics: Sequence[str] = (),
    item_columns: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split one flat table (ratings with rater and item attributes repeated) into three tables.

    A rater whose demographics differ between rows, or an item whose text differs, is an
    error naming the id and the column.
    """
    check_columns(flat, "table", ["rater", "item", "dimension", "rating", *demographics])
    if item_columns is None:
        item_columns = [c for c in (*ITEM_COLUMNS[1:], *OPTIONAL_ITEM_COLUMNS) if c in flat.columns]
    ratings = flat[["rater", "item", "dimension", "rating"]]
    raters = _one_row_per(flat, "rater", list(demographics))
    items = _one_row_per(flat, "item", list(item_columns))
    return ratings, raters, items


def _one_row_per(flat: pd.DataFrame, key: str, columns: list[str]) -> pd.DataFrame:
    sub = flat[[key, *columns]].drop_duplicates()
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


def _read_table(path: Path, fmt: str | None = None) -> pd.DataFrame:
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt in ("csv", "txt"):
        return pd.read_csv(path)
    if fmt == "tsv":
        return pd.read_csv(path, sep="\t")
    if fmt in ("parquet", "pq"):
        return pd.read_parquet(path)
    if fmt == "json":
        try:
            return pd.read_json(path)
        except ValueError:
            return pd.read_json(path, lines=True)
    if fmt == "jsonl":
        return pd.read_json(path, lines=True)
    raise ValueError(
        f"cannot read {path}: unknown format {fmt!r}; use .csv, .tsv, .parquet, .json or .jsonl"
    )


def read_study(
    path: str | Path,
    columns: Mapping[str, str] | None = None,
    *,
    dimensions: Sequence[str] | None = None,
    dimension: str | None = None,
    demographics: Sequence[str] = (),
    raters: str | Path | pd.DataFrame | None = None,
    items: str | Path | pd.DataFrame | None = None,
    scales: Mapping[str, Scale] | Iterable[Scale] | None = None,
    format: str | None = None,
    **kwargs,
) -> Study:
    """Read a study from a folder written by :meth:`Study.to_parquet`, or from a table file.

    Parameters
    ----------
    path : str or Path
        A folder written by ``Study.to_parquet`` (round trip), or a CSV / TSV / parquet /
        JSON / JSONL file of ratings (long, or wide with ``dimensions=``) that may also carry
        rater demographics and item texts on every row.
    columns : mapping, optional
        Renames from your column names to pluralign's (``rater, item, dimension, rating,
        prompt_id, prompt, response, model``), e.g. ``{"user_id": "rater"}``.
    dimensions : sequence of str, optional
        Wide layout: the columns holding one dimension each (after renaming).
    dimension : str, optional
        Long layout without a dimension column: the single dimension's name.
    demographics : sequence of str
        Rater columns of the file (after renaming).
    raters, items : path or DataFrame, optional
        Separate rater / item tables (renamed with ``columns`` too).
    scales : mapping or list of Scale, optional
        Declared scales (otherwise inferred and logged).
    **kwargs
        Passed to :meth:`Study.from_frames` (``multiselect``, ``missing_values``, ``drop_invalid``...).

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
    if path.is_dir():
        return _read_folder(path)
    if not path.exists():
        raise FileNotFoundError(f"no study file or folder at {path}")
    columns = dict(columns or {})
    flat = _read_table(path, format).rename(columns=columns)
    if dimensions is not None:
        keep = [c for c in flat.columns if c not in dimensions and c not in ("rater", "item")]
        flat = wide_to_long(flat, dimensions, keep=keep)
    elif dimension is not None:
        if "dimension" in flat.columns:
            raise ValueError("the file has a 'dimension' column; do not pass dimension=")
        flat = flat.assign(dimension=dimension)
    extra_items = [c for c in (*ITEM_COLUMNS[1:], *OPTIONAL_ITEM_COLUMNS) if c in flat.columns]
    ratings, rater_tab, item_tab = split_flat(
        flat, demographics, item_columns=[] if items is not None else extra_items
    )
    if raters is not None:
        rater_tab = raters if isinstance(raters, pd.DataFrame) else _read_table(Path(raters))
        rater_tab = rater_tab.rename(columns=columns)
    elif not demographics:
        rater_tab = None
    if items is not None:
        item_tab = items if isinstance(items, pd.DataFrame) else _read_table(Path(items))
        item_tab = item_tab.rename(columns=columns)
    kwargs.setdefault("name", path.stem)
    return Study.from_frames(ratings, rater_tab, items=item_tab, scales=scales, **kwargs)


def _read_folder(path: Path) -> Study:
    meta_file = path / "study.json"
    if not meta_file.exists():
        raise FileNotFoundError(
            f"{path} is a folder without study.json; read_study expects a folder written by "
            "Study.to_parquet, or a single table file"
        )
    meta = json.loads(meta_file.read_text())
    ratings = pd.read_parquet(path / "ratings.parquet")
    raters = pd.read_parquet(path / "raters.parquet")
    items = pd.read_parquet(path / "items.parquet")
    multiselect = tuple(meta.get("multiselect", ()))
    for col in multiselect:
        raters[col] = raters[col].map(lambda v: tuple(str(x) for x in v) if v is not None else ())
    scales = {d["dimension"]: Scale.from_dict(d) for d in meta["scales"]}
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
