"""The study data model: ratings, raters and items, validated, with a log of every cleaning step."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from pluralign._errors import StudyValidationError
from pluralign._settings import options
from pluralign.data import _clean as C
from pluralign.data import _validate as V
from pluralign.data._log import LogEntry, examples
from pluralign.data._scale import Scale

Coding = Literal["collapsed", "indicators", "raw"]

#: log steps that remove rating rows; every other step changes or describes rows
DROP_STEPS = ("drop_invalid", "subset", "filter_raters")


def slug(value: object) -> str:
    """A formula-safe name for a category value (``"Black or African American"`` → ``Black_or_African_American``).

    Runs of characters other than letters and digits become one ``_``; a value with none
    left is ``"missing"``.

    Examples
    --------
    >>> slug("Black or African American"), slug("18-24"), slug(" / ")
    ('Black_or_African_American', '18_24', 'missing')
    """
    s = re.sub(r"[^0-9A-Za-z]+", "_", str(value)).strip("_")
    return s or "missing"


def _as_tuple(value: object, separator: str) -> tuple[str, ...]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ()
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(separator)] if separator else [value.strip()]
    elif isinstance(value, (list, tuple, np.ndarray, set, frozenset)):
        parts = [str(p).strip() for p in value if not (isinstance(p, float) and np.isnan(p))]
    else:
        parts = [str(value).strip()]
    return tuple(p for p in parts if p)


def infer_scales(ratings: pd.DataFrame) -> dict[str, Scale]:
    """Scales spanning the observed integer ratings of each dimension (used when none are declared)."""
    out = {}
    r = pd.to_numeric(ratings["rating"], errors="coerce")
    for dim, vals in r.groupby(ratings["dimension"], sort=False):
        vals = vals.dropna()
        if vals.empty:
            continue
        lo, hi = int(np.floor(vals.min())), int(np.ceil(vals.max()))
        if hi == lo:
            hi = lo + 1
        out[str(dim)] = Scale(str(dim), lo, hi)
    return out


@dataclass(frozen=True, eq=False)
class Study:
    """A rating study: who rated what, how, and on which scale.

    Build it with :meth:`Study.from_frames`, :func:`read_study`, a loader such as
    :func:`load_popquorn`, or :func:`simulate_study`; those validate the tables. The tables
    are not meant to be modified in place: every method returns a new ``Study``.

    Attributes
    ----------
    ratings : DataFrame
        Long table, one row per (rater, item, dimension): ``rater, item, dimension, rating``.
    raters : DataFrame
        One row per rater: ``rater`` and demographic columns. Multi-select demographics
        hold tuples of values (see :meth:`indicators` and :meth:`collapsed`).
    items : DataFrame
        One row per rated response: ``item, prompt_id, prompt, response`` (and optionally ``model``).
    scales : dict of str to Scale
        Scale of each dimension.
    multiselect : tuple of str
        Demographic columns where a rater may choose several values.
    log_entries : tuple of LogEntry
        Every step that removed or changed rows; see :attr:`log`.
    name : str
        Short name used in reports.
    metadata : mapping
        Free-form provenance (source, file); no analysis reads it.
    reference : mapping of str to str
        Declared reference level of each demographic (``{"gender": "she/her"}``); contrasts in
        :func:`~pluralign.describe.relative_difference` and the models use it where given.

    Examples
    --------
    >>> import pandas as pd
    >>> ratings = pd.DataFrame({"rater": ["r1", "r1", "r2"], "item": ["i1", "i2", "i1"],
    ...                         "dimension": "toxicity", "rating": [1, 4, 2]})
    >>> raters = pd.DataFrame({"rater": ["r1", "r2"], "gender": ["he/him", "she/her"]})
    >>> study = Study.from_frames(ratings, raters, scales={"toxicity": Scale("toxicity", 1, 5)})
    >>> study.n_ratings, study.n_raters, study.n_items
    (3, 2, 2)
    """

    ratings: pd.DataFrame
    raters: pd.DataFrame
    items: pd.DataFrame
    scales: Mapping[str, Scale]
    multiselect: tuple[str, ...] = ()
    log_entries: tuple[LogEntry, ...] = ()
    name: str = "study"
    metadata: Mapping[str, object] = field(default_factory=dict)
    reference: Mapping[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_frames(
        cls,
        ratings: pd.DataFrame,
        raters: pd.DataFrame | None = None,
        *,
        items: pd.DataFrame | None = None,
        scales: Mapping[str, Scale] | Iterable[Scale] | None = None,
        multiselect: Sequence[str] = (),
        separator: str = ";",
        missing_values: Iterable[str] | None = None,
        case_variants: Literal["merge", "raise"] = "merge",
        drop_invalid: bool = False,
        continuous: bool = False,
        name: str = "study",
        metadata: Mapping[str, object] | None = None,
        reference: Mapping[str, str] | None = None,
    ) -> Study:
        """Validate three tables and build a Study.

        Parameters
        ----------
        ratings : DataFrame
            Long table with columns ``rater, item, dimension, rating`` (one row per rater ×
            item × dimension). For one column per dimension, use :func:`wide_to_long` first.
        raters : DataFrame, optional
            One row per rater: ``rater`` plus demographic columns. If omitted, raters have no
            demographics.
        items : DataFrame, optional
            One row per item: ``item`` and optionally ``prompt_id, prompt, response, model``.
            Missing text columns are filled (``prompt_id`` = item id, empty texts).
        scales : mapping or list of Scale, optional
            Scale of each dimension; undeclared dimensions get a scale inferred from the
            observed range (logged). A key that names no dimension, or a ``Scale`` whose
            ``dimension`` differs from its key, is an error.
        multiselect : sequence of str
            Demographic columns that may hold several values (a list, or text joined by
            ``separator``).
        separator : str, default ";"
            Separator of multi-select values given as text.
        missing_values : iterable of str, optional
            Demographic placeholders that mean unknown (default: ``options.missing_values``,
            e.g. "Prefer not to say", "DATA_EXPIRED", "CONSENT_REVOKED"), matched after
            stripping whitespace and ignoring case. They become missing values; the number
            replaced per column is logged.
        case_variants : {"merge", "raise"}, default "merge"
            Demographic values or dimension names that differ only by case ("she/her",
            "She/her"): merge them into one spelling (a declared reference level or scale name,
            else the most frequent spelling) and log it, or raise. Surrounding whitespace is
            always removed (logged).
        drop_invalid : bool, default False
            If False, any invalid rating row raises :class:`StudyValidationError`. If True,
            invalid rows (missing or non-numeric ratings, ratings outside the scale, unknown
            rater or item) are dropped, counted and logged; of identical duplicate rows one is
            kept, and every copy of a conflicting duplicate (same rater × item × dimension,
            different ratings) is dropped. Ratings that look shifted against the declared scale
            (0..4 for a 1..5 scale) raise even then, with a hint.
        continuous : bool, default False
            Ratings are continuous scores (e.g. simulated normal ratings): they must be numbers,
            but are not checked against the scale's integer points and range (logged).
        name : str
            Name shown in reports.
        metadata : mapping, optional
            Free-form provenance.
        reference : mapping of str to str, optional
            Declared reference level of each demographic; it must be an observed value.

        Returns
        -------
        Study

        Raises
        ------
        StudyValidationError
            Naming the table, column, offending rows and values, and how to fix them.
        """
        log: list[LogEntry] = []
        missing = tuple(options.missing_values if missing_values is None else missing_values)
        if isinstance(missing_values, str):
            raise TypeError("missing_values must be a sequence of strings, not a string")
        reference = {str(k).strip(): str(v).strip() for k, v in (reference or {}).items()}

        # ---- ratings: structure, identifiers as text, dimension names
        if isinstance(ratings, pd.DataFrame):
            ratings, changes = C.strip_column_names(ratings, "ratings")
            log += changes
        V.check_columns(
            ratings,
            "ratings",
            V.RATING_COLUMNS,
            hint="For one column per dimension use wide_to_long(frame, dimensions=[...]).",
        )
        V.check_not_empty(ratings, "ratings")
        ratings = ratings.reset_index(drop=True).copy()
        for key in ("rater", "item"):
            ratings[key], changes = C.id_text(ratings[key], "ratings", key)
            log += changes

        scales = V.check_scales(scales)
        dimension = ratings["dimension"]
        if not C.is_text(dimension.dtype):
            dimension = dimension.where(dimension.isna(), dimension.astype(str))
        ratings["dimension"], changes = C.clean_labels(
            dimension, "ratings", "dimension", case_variants=case_variants, preferred=scales
        )
        log += changes
        present = list(pd.unique(ratings["dimension"].dropna()))
        V.check_scale_keys(scales, present)
        undeclared = [d for d in present if d not in scales]
        if undeclared:
            inferred = infer_scales(ratings[ratings["dimension"].isin(undeclared)])
            scales.update(inferred)
            log.append(
                LogEntry(
                    "infer_scales",
                    "ratings",
                    0,
                    "scales inferred from observed ratings",
                    examples(f"{d}: {s.min}..{s.max}" for d, s in inferred.items()),
                )
            )

        # ---- raters
        if raters is None:
            raters = pd.DataFrame({"rater": pd.unique(ratings["rater"].dropna())})
        V.check_columns(raters, "raters", [V.RATER_KEY])
        V.check_not_empty(raters, "raters")
        raters = raters.reset_index(drop=True).copy()
        raters, changes = C.strip_column_names(raters, "raters")
        log += changes
        raters["rater"], changes = C.id_text(raters["rater"], "raters", "rater")
        log += changes
        V.raise_problems(V.id_problems(raters, "raters", "rater"))
        multiselect = tuple(multiselect)
        for col in multiselect:
            if col not in raters.columns:
                raise StudyValidationError(
                    f"multiselect names {col!r}, which is not a column of raters "
                    f"({list(raters.columns)}); fix the name or add the column"
                )
        for col in raters.columns:
            if col == "rater":
                continue
            multi = col in multiselect
            C.refuse_joined_answers(raters[col], col, separator, multiselect=multi)
            if multi:  # clean every answer of every rater at once, then regroup them
                raw = raters[col].map(lambda v: _as_tuple(v, separator))
                values = pd.Series([v for t in raw for v in t], dtype=object)
            else:
                values = raters[col]
            cleaned, changes = C.clean_labels(
                values,
                "raters",
                col,
                missing=missing,
                case_variants=case_variants,
                preferred=[reference[col]] if col in reference else [],
            )
            log += changes
            if multi:
                answers = iter(cleaned.tolist())
                raters[col] = raw.map(
                    lambda t, it=answers: tuple(
                        dict.fromkeys(v for v in (next(it) for _ in t) if not pd.isna(v))
                    )
                )
            else:
                raters[col] = cleaned
        log += C.check_levels(reference, raters, multiselect)

        # ---- items
        if items is None:
            items = pd.DataFrame({"item": pd.unique(ratings["item"].dropna())})
        V.check_columns(items, "items", ["item"])
        V.check_not_empty(items, "items")
        items = items.reset_index(drop=True).copy()
        items["item"], changes = C.id_text(items["item"], "items", "item")
        log += changes
        V.raise_problems(V.id_problems(items, "items", "item"))
        if "prompt_id" not in items.columns:
            items["prompt_id"] = items["item"]
        items["prompt_id"], changes = C.id_text(items["prompt_id"], "items", "prompt_id")
        log += changes
        no_prompt = items["prompt_id"].isna()
        if no_prompt.any():
            # never one shared "nan" prompt: an item without prompt_id is its own prompt
            items.loc[no_prompt, "prompt_id"] = items.loc[no_prompt, "item"]
            log.append(
                LogEntry(
                    "missing_values",
                    "items",
                    int(no_prompt.sum()),
                    "items without prompt_id given their own prompt (no preference pairs)",
                    examples(items.loc[no_prompt, "item"]),
                )
            )
        items["prompt_id"] = items["prompt_id"].astype(str)
        for col in ("prompt", "response"):
            if col not in items.columns:
                items[col] = ""
            items[col] = items[col].fillna("").astype(str)

        # ---- ratings: values, duplicates, keys
        problems, ratings = V.ratings_problems(ratings, scales, check_range=not continuous)
        if continuous:
            log.append(
                LogEntry(
                    "continuous",
                    "ratings",
                    0,
                    "continuous ratings: scale range and integer checks skipped",
                )
            )
        problems += V.key_problems(ratings, raters, items)
        if problems:
            if not drop_invalid or any(p.always_raise for p in problems):
                V.raise_problems(problems)
            drop = pd.Index([])
            for p in problems:
                new = p.drop_rows.difference(drop)
                if len(new):
                    log.append(
                        LogEntry(
                            "drop_invalid",
                            "ratings",
                            len(new),
                            f"{p.column}: {p.rule}",
                            examples(p.values),
                        )
                    )
                drop = drop.union(new)
            ratings = ratings.drop(index=drop).reset_index(drop=True)
            if len(ratings) == 0:
                raise StudyValidationError(
                    "ratings: every row was invalid; nothing is left to analyse"
                )
        ratings = ratings[list(V.RATING_COLUMNS)].astype({"rating": float})
        ratings["dimension"] = ratings["dimension"].astype(str)
        left = set(pd.unique(ratings["dimension"]))
        gone = [d for d in scales if d not in left]
        if gone:
            log.append(
                LogEntry(
                    "drop_dimension",
                    "ratings",
                    0,
                    "dimensions without a valid rating left out (with their scales)",
                    examples(gone),
                )
            )
        scales = {d: s for d, s in scales.items() if d in left}
        return cls(
            ratings,
            raters,
            items,
            scales,
            multiselect,
            tuple(log),
            name,
            dict(metadata or {}),
            reference,
        )

    # ------------------------------------------------------------------ basic facts
    @property
    def dimensions(self) -> list[str]:
        """Dimensions in order of first appearance."""
        return list(pd.unique(self.ratings["dimension"]))

    @property
    def demographics(self) -> list[str]:
        """Demographic columns of the raters table."""
        return [c for c in self.raters.columns if c != "rater"]

    @property
    def n_ratings(self) -> int:
        return len(self.ratings)

    @property
    def n_raters(self) -> int:
        return int(self.ratings["rater"].nunique())

    @property
    def n_items(self) -> int:
        return int(self.ratings["item"].nunique())

    @property
    def n_dropped(self) -> int:
        """Rating rows removed by cleaning or selection (the ``n_rows`` of :data:`DROP_STEPS`)."""
        return int(sum(e.n_rows for e in self.log_entries if e.step in DROP_STEPS))

    @property
    def log(self) -> pd.DataFrame:
        """Every cleaning or selection step: ``step, table, n_rows, reason, examples``."""
        cols = [f.name for f in dataclasses.fields(LogEntry)]
        return pd.DataFrame([dataclasses.asdict(e) for e in self.log_entries], columns=cols)

    def __repr__(self) -> str:
        dims = ", ".join(f"{d} ({s.min}..{s.max})" for d, s in self.scales.items())
        return (
            f"<Study {self.name!r}: {self.n_ratings} ratings, {self.n_raters} raters, "
            f"{self.n_items} items; dimensions: {dims}; demographics: {self.demographics}; "
            f"{len(self.log_entries)} log entries>"
        )

    def scale(self, dimension: str) -> Scale:
        """Scale of a dimension, with an error listing the known dimensions."""
        try:
            return self.scales[dimension]
        except KeyError:
            raise KeyError(
                f"unknown dimension {dimension!r}; this study has {self.dimensions}"
            ) from None

    def resolve_dimensions(self, dimension: str | Sequence[str] | None = None) -> list[str]:
        """The dimensions a ``dimension=`` argument names: one, several, or all (None).

        Raises a ``KeyError`` listing the known dimensions for a name the study lacks.

        Examples
        --------
        >>> from pluralign.data import simulate_study
        >>> s = simulate_study(n_raters=20, seed=1).study
        >>> s.resolve_dimensions("toxicity"), s.resolve_dimensions() == s.dimensions
        (['toxicity'], True)
        """
        if dimension is None:
            return self.dimensions
        dims = [dimension] if isinstance(dimension, str) else list(dimension)
        for d in dims:
            self.scale(d)
        return dims

    def _check_demographic(self, column: str) -> None:
        if column not in self.raters.columns:
            raise KeyError(
                f"unknown demographic {column!r}; the raters table has {self.demographics}"
            )

    # ------------------------------------------------------------------ demographic codings
    def indicators(self, column: str) -> pd.DataFrame:
        """One 0/1 column per value of a (multi-select) demographic, indexed by rater.

        Columns are named ``{column}_{value}`` with the value made formula-safe by :func:`slug`.
        A rater with a missing value has 0 in every column.

        Examples
        --------
        >>> import pandas as pd
        >>> r = pd.DataFrame({"rater": ["a", "b"], "race": ["White;Asian", "Black"]})
        >>> s = Study.from_frames(pd.DataFrame({"rater": ["a", "b"], "item": "i",
        ...     "dimension": "d", "rating": [1, 2]}), r, multiselect=["race"])
        >>> s.indicators("race").loc["a"].to_dict()
        {'race_Asian': 1, 'race_Black': 0, 'race_White': 1}
        """
        self._check_demographic(column)
        values = self.raters[column]
        if column in self.multiselect:
            sets = values
        else:
            sets = values.map(lambda v: () if pd.isna(v) else (str(v),))
        levels = sorted({v for t in sets for v in t})
        data = {
            f"{column}_{slug(v)}": sets.map(lambda t, v=v: int(v in t)).to_numpy() for v in levels
        }
        return pd.DataFrame(data, index=pd.Index(self.raters["rater"], name="rater"))

    def collapsed(self, column: str, *, multi_label: str | None = None) -> pd.Series:
        """A single category per rater; several chosen values become ``multi_label``.

        Examples
        --------
        >>> import pandas as pd
        >>> r = pd.DataFrame({"rater": ["a", "b"], "race": ["White;Asian", "Black"]})
        >>> s = Study.from_frames(pd.DataFrame({"rater": ["a", "b"], "item": "i",
        ...     "dimension": "d", "rating": [1, 2]}), r, multiselect=["race"])
        >>> s.collapsed("race").tolist()
        ['Multiracial', 'Black']
        """
        self._check_demographic(column)
        label = options.multi_label if multi_label is None else multi_label
        values = self.raters[column]
        if column in self.multiselect:
            out = values.map(lambda t: pd.NA if len(t) == 0 else (t[0] if len(t) == 1 else label))
        else:
            out = values
        return pd.Series(
            out.to_numpy(),
            index=pd.Index(self.raters["rater"], name="rater"),
            name=column,
            dtype="string",
        )

    def reference_level(self, column: str, *, raters: Iterable | None = None) -> str:
        """The reference level of a demographic: the one rule every contrast follows.

        The declared reference (:attr:`reference`) when it is a level of the raters counted;
        otherwise the level with the most raters, ties broken alphabetically. Multi-select
        columns are counted in their collapsed coding (:meth:`collapsed`).

        Parameters
        ----------
        column : str
            A demographic column.
        raters : iterable, optional
            Count only these rater ids (e.g. those with ratings left in a model); default all.

        Raises
        ------
        ValueError
            If no rater counted has a value of ``column``.

        Examples
        --------
        >>> import pandas as pd
        >>> r = pd.DataFrame({"rater": ["a", "b", "c"], "gender": ["she/her", "he/him", "he/him"]})
        >>> s = Study.from_frames(pd.DataFrame({"rater": ["a", "b", "c"], "item": "i",
        ...     "dimension": "d", "rating": [1, 2, 3]}), r)
        >>> s.reference_level("gender")
        'he/him'
        >>> s.replace(reference={"gender": "she/her"}).reference_level("gender")
        'she/her'
        """
        values = self.collapsed(column)
        if raters is not None:
            values = values[values.index.astype(str).isin(pd.Index(list(raters)).astype(str))]
        counts = values.dropna().astype(str).value_counts()
        if counts.empty:
            raise ValueError(f"{column!r} has no value among the raters counted; no reference")
        declared = self.reference.get(column)
        if declared is not None and str(declared) in counts.index:
            return str(declared)
        return sorted(counts.index[counts == counts.max()])[0]

    def rater_table(
        self, coding: Coding = "collapsed", *, multi_label: str | None = None
    ) -> pd.DataFrame:
        """The raters table with multi-select demographics coded for analysis.

        ``coding="collapsed"`` gives one category per rater (see :meth:`collapsed`);
        ``"indicators"`` replaces each multi-select column by 0/1 indicator columns;
        ``"raw"`` keeps the tuples.
        """
        if coding not in ("collapsed", "indicators", "raw"):
            raise ValueError(f"coding must be 'collapsed', 'indicators' or 'raw', got {coding!r}")
        out = self.raters.set_index("rater")
        if coding == "raw":
            return out.reset_index()
        for col in self.multiselect:
            if coding == "collapsed":
                out[col] = self.collapsed(col, multi_label=multi_label)
            else:
                out = out.drop(columns=col).join(self.indicators(col))
        return out.reset_index()

    def data(
        self,
        dimension: str | Sequence[str] | None = None,
        *,
        coding: Coding = "collapsed",
        with_items: bool = False,
    ) -> pd.DataFrame:
        """Long table of ratings joined to rater demographics (and item columns if asked).

        This is the frame models and descriptive functions work on.
        """
        r = self.ratings
        if dimension is not None:
            r = r[r["dimension"].isin(self.resolve_dimensions(dimension))]
        out = r.merge(self.rater_table(coding), on="rater", how="left", validate="many_to_one")
        if with_items:
            out = out.merge(self.items, on="item", how="left", validate="many_to_one")
        return out.reset_index(drop=True)

    # ------------------------------------------------------------------ selection
    def replace(self, *, note: LogEntry | None = None, **changes: Any) -> Study:
        """A copy with some fields replaced (and a log entry appended)."""
        log = self.log_entries + ((note,) if note is not None else ())
        return dataclasses.replace(self, log_entries=log, **changes)

    def subset(
        self,
        dimensions: str | Sequence[str] | None = None,
        *,
        items: Sequence[str] | None = None,
        raters: Sequence[str] | None = None,
    ) -> Study:
        """Keep only some dimensions, items or raters (their ratings go too; the count is logged).

        Examples
        --------
        >>> from pluralign.data import simulate_study
        >>> s = simulate_study(n_raters=20, seed=1).study
        >>> s.subset(dimensions="toxicity").dimensions
        ['toxicity']
        """
        r = self.ratings
        keep = pd.Series(True, index=r.index)
        what = []
        if dimensions is not None:
            dims = self.resolve_dimensions(dimensions)
            keep &= r["dimension"].isin(dims)
            what.append(f"dimensions={dims}")
        if items is not None:
            keep &= r["item"].isin([str(i) for i in items])
            what.append(f"{len(items)} items")
        if raters is not None:
            keep &= r["rater"].isin([str(i) for i in raters])
            what.append(f"{len(raters)} raters")
        return self._keep(keep, "subset", "; ".join(what))

    def filter_raters(
        self, predicate: Callable[[pd.DataFrame], pd.Series] | None = None, **equals: object
    ) -> Study:
        """Keep raters matching a predicate on the raters table and/or equal to given values.

        Examples
        --------
        >>> from pluralign.data import simulate_study
        >>> s = simulate_study(n_raters=40, seed=1).study
        >>> women = s.filter_raters(gender="she/her")
        >>> set(women.rater_table()["gender"]) == {"she/her"}
        True
        """
        table = self.rater_table("collapsed")
        mask = pd.Series(True, index=table.index)
        for col, value in equals.items():
            self._check_demographic(col)
            values = value if isinstance(value, (list, tuple, set)) else [value]
            if col in self.multiselect:
                m = self.raters[col].map(lambda t, vs=values: any(v in t for v in vs))
            else:
                m = table[col].isin(values)
            mask &= m.fillna(False).to_numpy()
        if predicate is not None:
            mask &= np.asarray(predicate(table), dtype=bool)
        kept = set(table.loc[mask, "rater"])
        if not kept:
            raise ValueError(f"no rater matches {equals or 'the predicate'}")
        desc = ", ".join(f"{k}={v!r}" for k, v in equals.items()) or "predicate"
        study = self._keep(self.ratings["rater"].isin(kept), "filter_raters", desc)
        return study.replace(
            raters=self.raters[self.raters["rater"].isin(kept)].reset_index(drop=True)
        )

    def _keep(self, keep: pd.Series, step: str, desc: str) -> Study:
        n_drop = int((~keep).sum())
        ratings = self.ratings[keep.to_numpy()].reset_index(drop=True)
        if ratings.empty:
            raise ValueError(f"{step}({desc}) leaves no ratings")
        dims = set(pd.unique(ratings["dimension"]))
        note = LogEntry(step, "ratings", n_drop, f"selection: {desc}") if n_drop else None
        return self.replace(
            ratings=ratings,
            scales={d: s for d, s in self.scales.items() if d in dims},
            note=note,
        )

    # ------------------------------------------------------------------ persistence
    def to_parquet(self, directory: str | Path) -> Path:
        """Write the study to a folder (three parquet files and ``study.json``); read it with :func:`read_study`."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        self.ratings.to_parquet(path / "ratings.parquet", index=False)
        raters = self.raters.copy()
        for col in self.multiselect:
            raters[col] = raters[col].map(list)
        raters.to_parquet(path / "raters.parquet", index=False)
        self.items.to_parquet(path / "items.parquet", index=False)
        meta = {
            "name": self.name,
            "scales": [s.to_dict() for s in self.scales.values()],
            "multiselect": list(self.multiselect),
            "log": [dataclasses.asdict(e) for e in self.log_entries],
            "metadata": _jsonable(self.metadata),
            "reference": dict(self.reference),
        }
        (path / "study.json").write_text(json.dumps(meta, indent=2))
        return path


def _jsonable(obj):
    try:
        json.dumps(obj)
        return obj
    except TypeError:
        return {k: str(v) for k, v in dict(obj).items()}
