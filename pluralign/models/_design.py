"""Fixed-effect design matrices and random-effect codes shared by every model.

A :class:`Design` holds, for one rated dimension, the fixed-effect matrix ``X`` (treatment
contrasts against user-chosen reference levels, built by formulaic), the response, and the rater
and item random effects as integer codes (never as dense indicator matrices). Models
(:func:`~pluralign.models.fit_mixed`, :func:`~pluralign.models.fit_bayes`) and the effect /
post-stratification helpers all work from it, so they agree on contrasts and reference levels.

Formula variables come from two tables: rater-level columns (the raters table: demographics,
or their indicator columns) and item-level columns (the items table: ``source_model``, a topic,
a length). Cross-level interactions such as ``gender * source_model`` or ``ideology * length``
are ordinary formula terms. A name present in both tables is ambiguous and refused.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pluralign._errors import DroppedRowsWarning
from pluralign.models._protocol import TERM_COLUMNS
from pluralign.models._random import RandomTerm

#: Random-effect terms ``(expr | group)`` / ``(expr || group)`` (lme4 style), removed before
#: formulaic reads the fixed part. Intercepts alone, ``(1|rater)`` and ``(1|item)``, mean the
#: default crossed intercepts; any other term makes the written terms the random structure.
_RANDOM_TERM = re.compile(r"\+?\s*\(\s*([^()|]+?)\s*(\|\|?)\s*([^()|]+?)\s*\)")
#: Grouping factors a random term may name.
_GROUPS = ("rater", "item")

#: Variables that are not covariates (they may not appear as fixed effects).
_RESERVED = ("rater", "item", "dimension")

#: How numeric covariates may be transformed before entering ``X`` (``scale_numeric=``).
SCALINGS = ("none", "center", "standardize")


@dataclass(frozen=True)
class Design:
    """Everything a model needs for one dimension, coded once.

    Attributes
    ----------
    formula : str
        Fixed-effect formula as given (random terms removed), e.g. ``"rating ~ gender + ideology"``.
    dimension : str
        The rated dimension.
    response : str
        Response column (``"rating"``).
    X : ndarray of shape (n, p)
        Fixed-effect design, intercept first, treatment contrasts.
    columns : list of str
        Column names of ``X`` (formulaic names, e.g. ``"gender[T.he/him]"``).
    terms : dict
        Formula term → list of ``(level, column index of X)`` for its non-reference levels.
        Interaction terms are named ``"gender:race"`` with levels ``"he/him:Black"``; numeric
        variables have one entry ``(name, index)``.
    references : dict
        Reference level of each categorical variable.
    levels : dict
        Levels of each categorical variable, reference first.
    y : ndarray of shape (n,)
        Ratings.
    rater_codes, item_codes : ndarray of int
        Codes ``0..n_raters-1`` and ``0..n_items-1`` of each row.
    rater_levels, item_levels : ndarray
        Rater and item identifiers in code order.
    data : DataFrame
        The rows used (ratings joined to demographics), after dropping rows with missing covariates.
    n_dropped : int
        Rows dropped because a covariate was missing.
    variables : list of str
        Demographic variables used by the formula.
    numeric : list of str
        Variables entered as numbers (not categorical).
    random : tuple of RandomTerm
        Random terms written in the formula beyond the default intercepts (e.g.
        ``(1 + gender | item)``), coded for the rows used; empty for the default
        ``(1|rater) + (1|item)``.
    sources : dict
        Table each variable comes from: ``"raters"`` or ``"items"``.
    numeric_scaling : dict
        Numeric variable → ``(center, scale)``: the variable enters ``X`` as
        ``(value - center) / scale`` (``(0.0, 1.0)`` when not transformed). Centre and scale are
        computed once per unit of the variable's table (each rater, or each item, of the rows
        used counts once; population SD), so a coefficient is per unit of the variable
        (``"none"``), per unit at its mean (``"center"``) or per SD (``"standardize"``).
    """

    formula: str
    dimension: str
    response: str
    X: np.ndarray
    columns: list[str]
    terms: dict[str, list[tuple[str, int]]]
    references: dict[str, str]
    levels: dict[str, list[str]]
    y: np.ndarray
    rater_codes: np.ndarray
    rater_levels: np.ndarray
    item_codes: np.ndarray
    item_levels: np.ndarray
    data: pd.DataFrame
    n_dropped: int
    variables: list[str] = field(default_factory=list)
    numeric: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    numeric_scaling: dict[str, tuple[float, float]] = field(default_factory=dict)
    _spec: Any = field(default=None, repr=False, compare=False)
    random: tuple[RandomTerm, ...] = ()

    @property
    def has_random_terms(self) -> bool:
        """Whether the formula's random terms replace the default ``(1|rater) + (1|item)``."""
        return bool(self.random)

    @property
    def known_levels(self) -> dict[str, list[str] | None]:
        """Levels of each variable (``None`` for numeric ones), as :meth:`Population.check
        <pluralign.data.Population.check>` takes them.

        Examples
        --------
        >>> build_design(_example_study(), "rating ~ gender").known_levels
        {'gender': ['she/her', 'he/him']}
        """
        out: dict[str, list[str] | None] = dict(self.levels)
        out.update({v: None for v in self.numeric})
        return out

    @property
    def n(self) -> int:
        """Number of rows used."""
        return len(self.y)

    @property
    def n_raters(self) -> int:
        return len(self.rater_levels)

    @property
    def n_items(self) -> int:
        return len(self.item_levels)

    def prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Coerce the design variables of ``frame`` to the fitted categories (a copy).

        Raises
        ------
        KeyError
            If a variable of the formula is missing from ``frame``.
        ValueError
            If a value is not a level seen in the fitted data.
        """
        missing = [v for v in self.variables if v not in frame.columns]
        if missing:
            raise KeyError(
                f"columns {missing} of the formula {self.formula!r} are missing from the frame "
                f"(it has {list(frame.columns)}); add them"
            )
        out = frame.copy()
        for v in self.variables:
            if v in self.numeric:
                center, scale = self.numeric_scaling.get(v, (0.0, 1.0))
                out[v] = (pd.to_numeric(out[v], errors="raise").astype(float) - center) / scale
                continue
            values = out[v].astype("string")
            unknown = sorted(set(values.dropna()) - set(self.levels[v]))
            if unknown:
                raise ValueError(
                    f"{v}: levels {unknown} were not in the fitted data; known levels are "
                    f"{self.levels[v]}"
                )
            if values.isna().any():
                raise ValueError(f"{v}: missing values in the frame; every row needs a level")
            out[v] = pd.Categorical(values.astype(object), categories=self.levels[v])
        return out

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Fixed-effect design ``X`` of new rows or demographic cells (same contrasts as the fit).

        Examples
        --------
        >>> import pandas as pd
        >>> d = build_design(_example_study(), "rating ~ gender", dimension="toxicity")
        >>> d.transform(pd.DataFrame({"gender": ["he/him", "she/her"]})).tolist()
        [[1.0, 1.0], [1.0, 0.0]]
        """
        prepared = self.prepare(frame)
        mm = self._spec.get_model_matrix(prepared, na_action="raise")
        return np.asarray(mm, dtype=float)


def random_terms(formula: str) -> list[tuple[str, bool, str]]:
    """The random terms of a formula as ``(expr, correlated, group)``; empty for the default.

    Intercept-only terms ``(1|rater)`` / ``(1|item)`` alone mean the default crossed intercepts
    (both, always) and give ``[]``; as soon as one term has slopes, the terms written are the
    whole random structure, as in lme4.

    Examples
    --------
    >>> random_terms("rating ~ gender + (1|rater) + (1|item)")
    []
    >>> random_terms("rating ~ gender + (1|rater) + (1 + gender || item)")
    [('1', True, 'rater'), ('1 + gender', False, 'item')]
    """
    found = []
    for m in _RANDOM_TERM.finditer(formula):
        expr, bar, group = m.group(1).strip(), m.group(2), m.group(3).strip()
        if group not in _GROUPS:
            raise ValueError(
                f"formula {formula!r}: random term ({expr} {bar} {group}) groups by {group!r}; "
                f"the grouping factor must be one of {list(_GROUPS)}"
            )
        found.append((" ".join(expr.split()), bar == "|", group))
    if all(expr == "1" for expr, _, _ in found):
        return []
    return found


def _parse(formula: str) -> tuple[str, str]:
    """Split off lme4-style random terms; return (fixed formula, response)."""
    if "~" not in formula:
        raise ValueError(f"formula {formula!r} needs a response: write e.g. 'rating ~ gender'")
    fixed = _RANDOM_TERM.sub("", formula).strip()
    if "|" in fixed:
        raise ValueError(
            f"formula {formula!r}: random terms are written (expr | rater) or (expr | item), "
            "e.g. (1 + gender | item); fix the unmatched '|'"
        )
    lhs, rhs = fixed.split("~", 1)
    if not rhs.strip():
        fixed = f"{lhs.strip()} ~ 1"
    return fixed, lhs.strip()


def fixed_terms(formula: str) -> list[str]:
    """The fixed-effect terms of a formula as formulaic reads it (no intercept, no random terms).

    Examples
    --------
    >>> fixed_terms("rating ~ gender * race + age + (1|rater)")
    ['gender', 'race', 'age', 'gender:race']
    """
    from formulaic import Formula

    fixed, _ = _parse(formula)
    return [str(t) for t in Formula(fixed).rhs if str(t) != "1"]


def fitted_dimensions(
    dimensions: Sequence[str], dimension: str | Sequence[str] | None, owner: str = "the fit"
) -> list[str]:
    """The dimensions a ``dimension=`` argument names among a fit's: one, several, or all (None).

    :meth:`pluralign.data.Study.resolve_dimensions` for a fitted model, which holds the names
    of its dimensions but not the study; ``owner`` names the fit in the ``KeyError`` raised for
    a dimension it lacks.

    Examples
    --------
    >>> fitted_dimensions(["toxicity", "quality"], "quality"), fitted_dimensions(["toxicity"], None)
    (['quality'], ['toxicity'])
    """
    if dimension is None:
        return list(dimensions)
    dims = [dimension] if isinstance(dimension, str) else list(dimension)
    unknown = [d for d in dims if d not in dimensions]
    if unknown:
        raise KeyError(f"unknown dimension {unknown[0]!r}; {owner} has {list(dimensions)}")
    return dims


def one_dimension(dims: Sequence[str], owner: str) -> str:
    """The one dimension a ``dimension=`` argument names, resolved by
    :meth:`~pluralign.data.Study.resolve_dimensions` or :func:`fitted_dimensions` (None names
    the only one there is).

    ``owner`` names what has the dimensions in the error message (``"the study"``, ``"the fit"``).

    Examples
    --------
    >>> one_dimension(fitted_dimensions(["toxicity"], None), "the fit")
    'toxicity'
    """
    if len(dims) != 1:
        raise ValueError(f"{owner} has several dimensions {list(dims)}; pass dimension=...")
    return dims[0]


def build_design(
    study,
    formula: str = "rating ~ gender",
    *,
    dimension: str | None = None,
    reference: Mapping[str, str] | None = None,
    coding: str = "collapsed",
    allow_random: bool = False,
    scale_numeric: str | Mapping[str, str] = "none",
) -> Design:
    """Code a study for one dimension: fixed effects by formulaic, random effects as integer codes.

    Parameters
    ----------
    study : Study
        The rating study.
    formula : str
        Wilkinson formula for the fixed effects with ``rating`` as response, e.g.
        ``"rating ~ gender + ideology"`` or ``"rating ~ gender * race"`` (interactions). Random
        intercepts ``(1|rater)`` and ``(1|item)`` are the default random structure; writing
        them in the formula changes nothing. Random slopes, e.g.
        ``"rating ~ gender + (1|rater) + (1 + gender|item)"`` (correlated) or
        ``(1 + gender || item)`` (uncorrelated), replace the default with the terms written
        (``allow_random=True`` only; they are coded in :attr:`Design.random`).
    dimension : str, optional
        Dimension to code; may be omitted when the study has only one.
    reference : mapping, optional
        Reference level per categorical variable, e.g. ``{"gender": "she/her"}``. Default:
        :meth:`Study.reference_level <pluralign.data.Study.reference_level>` among the raters
        of the rows used (the declared ``study.reference``, else the level with the most
        raters, ties broken alphabetically), the same rule as
        :func:`pluralign.describe.relative_difference`; for an item-level variable, the
        declared ``study.reference`` else the level with the most items (ties alphabetical).
    coding : {"collapsed", "indicators"}
        How multi-select demographics enter: one collapsed category per rater (several values
        become ``options.multi_label``), or 0/1 indicator columns named ``{column}_{value}``
        (e.g. ``race_Black``; use those names in the formula). 0/1 indicators are entered as
        categorical with reference ``"0"``.
    allow_random : bool, default False
        Whether the calling model fits random terms beyond the default intercepts; when False
        such terms raise a ValueError saying which models fit them.
    scale_numeric : {"none", "center", "standardize"} or mapping, default "none"
        Transformation of numeric variables before they enter ``X``, for all of them or per
        variable (``{"length": "standardize"}``): ``"center"`` subtracts the mean, so main
        effects of the terms interacting with it are at its mean rather than at 0;
        ``"standardize"`` also divides by the SD, so its coefficient is per SD. Means and SDs
        are over the raters (rater-level variables) or items (item-level variables) of the
        rows used, each counted once, population SD; they are kept in
        ``Design.numeric_scaling`` and applied to any frame passed to :meth:`Design.transform`.

    Returns
    -------
    Design

    Warns
    -----
    DroppedRowsWarning
        When rows with a missing covariate are dropped (their number is in ``Design.n_dropped``).

    Examples
    --------
    >>> d = build_design(_example_study(), "rating ~ gender", dimension="toxicity",
    ...                  reference={"gender": "she/her"})
    >>> d.columns, d.references
    (['Intercept', 'gender[T.he/him]'], {'gender': 'she/her'})
    >>> d.terms
    {'gender': [('he/him', 1)]}
    """
    from formulaic import Formula, model_matrix

    fixed, response = _parse(formula)
    rterms = random_terms(formula)
    if rterms and not allow_random:
        raise ValueError(
            f"formula {formula!r}: random slopes are fitted by fit_mixed (family 'gaussian' or "
            "'binomial'); this model takes only the default (1|rater) + (1|item)"
        )
    if response != "rating":
        raise ValueError(f"the response must be 'rating' (got {response!r}); write 'rating ~ ...'")
    dimension = one_dimension(study.resolve_dimensions(dimension), "the study")
    data = study.data(dimension=dimension, coding=coding)
    variables = sorted(
        set(Formula(fixed).rhs.required_variables).union(
            *(Formula(expr).required_variables for expr, _, _ in rterms)
        )
    )
    data, sources = _join_items(study, data, variables, coding)
    scalings = _scalings(scale_numeric, variables)
    keep = data[variables].notna().all(axis=1) if variables else pd.Series(True, index=data.index)
    n_dropped = int((~keep).sum())
    if n_dropped:
        counts = {v: int(data[v].isna().sum()) for v in variables if data[v].isna().any()}
        warnings.warn(
            f"{dimension}: dropped {n_dropped} of {len(data)} ratings with a missing covariate "
            f"(missing per column: {counts})",
            DroppedRowsWarning,
            stacklevel=2,
        )
    data = data[keep.to_numpy()].reset_index(drop=True)
    if data.empty:
        raise ValueError(f"{dimension}: no rows left after dropping missing covariates")

    reference = dict(reference or {})
    unknown_ref = sorted(set(reference) - set(variables))
    if unknown_ref:
        raise KeyError(f"reference names {unknown_ref}, which are not in the formula {fixed!r}")
    unknown_scale = sorted(set(scalings) - set(variables))
    if unknown_scale:
        raise KeyError(
            f"scale_numeric names {unknown_scale}, which are not in the formula {fixed!r}"
        )
    references: dict[str, str] = {}
    levels: dict[str, list[str]] = {}
    numeric: list[str] = []
    numeric_scaling: dict[str, tuple[float, float]] = {}
    frame = data.copy()
    for v in variables:
        col = frame[v]
        is_indicator = pd.api.types.is_numeric_dtype(col) and set(pd.unique(col)) <= {0, 1}
        if pd.api.types.is_numeric_dtype(col) and not is_indicator:
            numeric.append(v)
            unit = "rater" if sources[v] == "raters" else "item"
            center, scale = _center_scale(data, v, unit, scalings.get(v, "none"), dimension)
            numeric_scaling[v] = (center, scale)
            frame[v] = (col.astype(float) - center) / scale
            continue
        if not isinstance(scale_numeric, str) and scalings.get(v, "none") != "none":
            raise ValueError(
                f"scale_numeric: {v!r} is categorical, only numeric variables can be scaled"
            )
        values = col.astype("Int64").astype("string") if is_indicator else col.astype("string")
        found = sorted(set(values))
        if len(found) < 2 and sources[v] == "items":
            raise ValueError(
                f"{dimension}: item variable {v!r} has a single level {found} among the items "
                f"rated; its effect cannot be estimated. Fix: remove {v!r} from the formula"
            )
        if v in reference:
            ref = str(reference[v])
            if ref not in found:
                raise ValueError(
                    f"reference level {ref!r} of {v!r} is not among its levels {found}"
                )
        elif is_indicator:
            ref = "0"
        elif sources[v] == "items":
            ref = _item_reference(study, data, v)
        else:
            ref = study.reference_level(v, raters=pd.unique(data["rater"]))
        levels[v] = [ref] + [x for x in found if x != ref]
        references[v] = ref
        frame[v] = pd.Categorical(values.astype(object), categories=levels[v])

    mm = model_matrix(fixed, frame, na_action="raise")
    rhs = mm.rhs
    columns = list(rhs.columns)
    if not columns or columns[0] != "Intercept":
        raise ValueError(f"formula {fixed!r} must keep the intercept (remove '- 1' / '0 +')")
    X = np.asarray(rhs, dtype=float)
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise ValueError(
            f"{dimension}: the fixed-effect design of {fixed!r} is rank deficient (some level or "
            "combination of levels has no ratings); merge rare levels or drop the interaction"
        )
    terms: dict[str, list[tuple[str, int]]] = {}
    for struct in rhs.model_spec.structure:
        name = str(struct.term)
        if name == "1":
            continue
        entries = []
        for colname in struct.columns:
            parts = re.findall(r"\[(?:T\.)?(.*?)\]", colname)
            level = ":".join(parts) if parts else colname
            entries.append((level, columns.index(colname)))
        terms[name] = entries

    raters, rater_levels = pd.factorize(data["rater"], sort=True)
    items, item_levels = pd.factorize(data["item"], sort=True)
    codes = {"rater": (raters, rater_levels), "item": (items, item_levels)}
    random = tuple(_random_term(expr, corr, group, frame, codes) for expr, corr, group in rterms)
    return Design(
        formula=fixed,
        dimension=str(dimension),
        response=response,
        X=X,
        columns=columns,
        terms=terms,
        references=references,
        levels=levels,
        y=data["rating"].to_numpy(dtype=float),
        rater_codes=raters.astype(np.int64),
        rater_levels=np.asarray(rater_levels),
        item_codes=items.astype(np.int64),
        item_levels=np.asarray(item_levels),
        data=data,
        n_dropped=n_dropped,
        variables=variables,
        numeric=numeric,
        sources=sources,
        numeric_scaling=numeric_scaling,
        _spec=rhs.model_spec,
        random=random,
    )


def _random_term(expr: str, correlated: bool, group: str, frame: pd.DataFrame, codes) -> RandomTerm:
    """Code one random term: its columns (treatment contrasts as the fixed part) per row."""
    from formulaic import model_matrix

    mm = model_matrix(f"~ {expr}", frame, na_action="raise")
    columns = tuple(str(c) for c in mm.columns)
    if not columns:
        raise ValueError(f"random term ({expr} | {group}) has no columns")
    codes_, levels = codes[group]
    return RandomTerm(
        group=group,
        expr=expr,
        correlated=correlated,
        columns=columns,
        values=np.asarray(mm, dtype=float),
        codes=np.asarray(codes_, dtype=np.int64),
        levels=np.asarray(levels),
    )


def _join_items(
    study, data: pd.DataFrame, variables: Sequence[str], coding: str
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Add the item-level formula variables to the rows; say which table each variable is from."""
    rater_cols = {c for c in data.columns if c not in (*_RESERVED, "rating")}
    item_cols = {c for c in study.items.columns if c != "item"}
    sources: dict[str, str] = {}
    for v in variables:
        if v in _RESERVED or v == "rating":
            raise ValueError(f"{v!r} cannot be a fixed effect: it is a random effect / key")
        if v in rater_cols and v in item_cols:
            raise ValueError(
                f"formula variable {v!r} is a column of both the raters table and the items "
                f"table; rename one of them (e.g. 'rater_{v}' or 'item_{v}') so the formula "
                "says which is meant"
            )
        if v in rater_cols:
            sources[v] = "raters"
        elif v in item_cols:
            sources[v] = "items"
        else:
            raise KeyError(
                f"formula variable {v!r} is neither a column of the raters table "
                f"{sorted(rater_cols)} nor of the items table {sorted(item_cols)}"
                + (
                    " (multi-select indicators need coding='indicators')"
                    if coding != "indicators"
                    else ""
                )
            )
    from_items = [v for v in variables if sources[v] == "items"]
    if from_items:
        items = study.items[["item", *from_items]]
        data = data.merge(items, on="item", how="left", validate="many_to_one")
    return data, sources


def _scalings(scale_numeric, variables: Sequence[str]) -> dict[str, str]:
    """``scale_numeric`` as variable → method (a plain string applies to every variable)."""
    if scale_numeric is None:
        return {}
    if isinstance(scale_numeric, str):
        spec = dict.fromkeys(variables, scale_numeric)
    else:
        spec = {str(k): v for k, v in dict(scale_numeric).items()}
    for v, how in spec.items():
        if how not in SCALINGS:
            raise ValueError(f"scale_numeric for {v!r} must be one of {SCALINGS}, got {how!r}")
    return spec


def _center_scale(
    data: pd.DataFrame, v: str, unit: str, how: str, dimension: str
) -> tuple[float, float]:
    """Centre and scale of a numeric variable, one value per rater or item of the rows used."""
    if how == "none":
        return 0.0, 1.0
    per_unit = data.drop_duplicates(unit)[v].astype(float)
    center = float(per_unit.mean())
    if how == "center":
        return center, 1.0
    scale = float(per_unit.std(ddof=0))
    if not np.isfinite(scale) or scale == 0:
        raise ValueError(
            f"{dimension}: {v!r} takes a single value over the {unit}s used; it cannot be "
            "standardized (and has no effect to estimate): remove it from the formula"
        )
    return center, scale


def _item_reference(study, data: pd.DataFrame, v: str) -> str:
    """Reference level of an item-level variable: the declared one, else the most items."""
    values = data.drop_duplicates("item")[v].astype(str)
    counts = values.value_counts()
    declared = study.reference.get(v)
    if declared is not None and str(declared) in counts.index:
        return str(declared)
    return sorted(counts.index[counts == counts.max()])[0]


def term_table(designs: Mapping[str, Design]) -> pd.DataFrame:
    """One row per coefficient of each formula term of each dimension's design (TERM_COLUMNS).

    Each row is one estimand under treatment contrasts: a categorical main effect compares its
    level with ``reference`` with every other categorical variable of an interaction at its
    reference level and every numeric one at 0 (its mean when centred); a numeric main effect
    is the slope per unit (per SD when standardized) at the reference levels; an interaction row
    is the change of that contrast or slope between ``level`` and ``reference`` of the other
    variables. ``attrs["sources"]`` says which table (raters or items) each variable comes from
    and ``attrs["numeric_scaling"]`` holds each numeric variable's ``(center, scale)``.

    Examples
    --------
    >>> d = build_design(_example_study(), "rating ~ gender", reference={"gender": "she/her"})
    >>> term_table({"toxicity": d}).iloc[0].tolist()
    ['toxicity', 'gender', 'he/him', 'she/her', 'gender[T.he/him]', 'categorical']
    """
    rows = []
    sources: dict[str, dict[str, str]] = {}
    scaling: dict[str, dict[str, tuple[float, float]]] = {}
    for dim, d in designs.items():
        sources[dim] = dict(d.sources)
        scaling[dim] = dict(d.numeric_scaling)
        for term, entries in d.terms.items():
            parts = term.split(":")
            if len(parts) > 1:
                kind = "interaction"
                reference = ":".join(d.references[v] for v in parts if v in d.references)
            elif term in d.numeric:
                kind, reference = "numeric", ""
            else:
                kind, reference = "categorical", d.references.get(term, "")
            for level, idx in entries:
                rows.append((dim, term, level, reference, d.columns[idx], kind))
    out = pd.DataFrame(rows, columns=list(TERM_COLUMNS))
    out.attrs["sources"] = sources
    out.attrs["numeric_scaling"] = scaling
    return out


def _example_study():
    """A tiny study used in docstring examples."""
    from pluralign.data import Scale, Study

    ratings = pd.DataFrame(
        {
            "rater": ["a", "a", "b", "b", "c", "c"],
            "item": ["i", "j", "i", "j", "i", "j"],
            "dimension": "toxicity",
            "rating": [1.0, 2.0, 3.0, 4.0, 2.0, 2.0],
        }
    )
    raters = pd.DataFrame({"rater": ["a", "b", "c"], "gender": ["she/her", "he/him", "she/her"]})
    return Study.from_frames(ratings, raters, scales={"toxicity": Scale("toxicity", 1, 5)})
