"""Target groups: everyone, one group or intersection, or a post-stratification frame.

Every labels function takes ``group`` in one of these forms and turns it into *cells*: sets of
raters with a population share. ``None`` is one cell holding every rater; a mapping of
demographics to single values (``{"gender": "she/her", "race": "Black"}``) is one cell; a
post-stratification frame (demographic columns and ``share``) or a mapping of one or more
demographics to level shares (``{"gender": {"she/her": 0.5, "he/him": 0.5}}``, crossed
assuming independence) gives one cell per row, and results are share-weighted mixes of the
cell results.

Membership follows :meth:`Study.filter_raters` for a single group (a multi-select value matches
every rater who chose it, alone or with others). Cells of a frame use the collapsed coding
(``Study.collapsed``: several chosen values become one category such as "Multiracial"), so
that cells are disjoint and shares add up.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pluralign.data import Study

#: Type of the ``group`` / ``target`` argument.
GroupSpec = Mapping | pd.DataFrame | None


@dataclass(frozen=True, eq=False)
class Target:
    """Resolved target population.

    Attributes
    ----------
    label : str
        Short description used in result tables (``"all"``, ``"gender=she/her"``, ...).
    kind : str
        ``"all"``, ``"group"`` or ``"poststratified"``.
    cell_of : Series
        Cell number (0..n_cells-1) of each rater in the target, indexed by rater id; raters
        outside the target are absent.
    shares : ndarray
        Population share of each cell (sums to 1).
    cell_labels : tuple of str
        Description of each cell.
    """

    label: str
    kind: str
    cell_of: pd.Series
    shares: np.ndarray
    cell_labels: tuple[str, ...]

    @property
    def n_cells(self) -> int:
        return len(self.shares)


def _fmt(levels: Mapping) -> str:
    return " & ".join(f"{k}={v}" for k, v in levels.items())


def _check_columns(study: Study, columns) -> None:
    for col in columns:
        if col not in study.raters.columns:
            raise KeyError(
                f"group names the demographic {col!r}, which the raters table lacks; "
                f"it has {study.demographics}"
            )


def _group_mask(study: Study, levels: Mapping) -> pd.Series:
    """Raters matching a group mapping, with the semantics of ``Study.filter_raters``."""
    table = study.rater_table("collapsed")
    mask = pd.Series(True, index=table.index)
    for col, value in levels.items():
        values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
        if col in study.multiselect:
            m = study.raters[col].map(lambda t, vs=values: any(v in t for v in vs))
        else:
            m = table[col].isin(values)
        mask &= m.fillna(False).to_numpy(dtype=bool)
    return pd.Series(mask.to_numpy(), index=pd.Index(table["rater"], name="rater"))


def _frame_from_level_shares(group: Mapping) -> pd.DataFrame:
    """``{"gender": {"she/her": .5, ...}, "age": "18-30"}`` → a frame of crossed cells."""
    fixed = {k: v for k, v in group.items() if not isinstance(v, Mapping)}
    varying = {k: dict(v) for k, v in group.items() if isinstance(v, Mapping)}
    rows = []
    for combo in itertools.product(*(d.items() for d in varying.values())):
        row = dict(fixed)
        share = 1.0
        for col, (level, s) in zip(varying, combo, strict=True):
            row[col] = level
            share *= float(s)
        row["share"] = share
        rows.append(row)
    return pd.DataFrame(rows)


def resolve_target(study: Study, group: GroupSpec) -> Target:
    """Turn a ``group`` argument into cells of raters with shares.

    Parameters
    ----------
    study : Study
    group : None, mapping or DataFrame
        See the module docstring.

    Returns
    -------
    Target

    Examples
    --------
    >>> import pandas as pd
    >>> from pluralign.data import Study
    >>> r = pd.DataFrame({"rater": ["a", "b"], "item": "i", "dimension": "d", "rating": [1, 2]})
    >>> s = Study.from_frames(r, pd.DataFrame({"rater": ["a", "b"], "gender": ["he/him", "she/her"]}))
    >>> resolve_target(s, {"gender": "she/her"}).cell_of.to_dict()
    {'b': 0}
    """
    if group is None:
        raters = pd.Index(study.raters["rater"], name="rater")
        return Target("all", "all", pd.Series(0, index=raters), np.ones(1), ("all",))
    if isinstance(group, Mapping) and any(isinstance(v, Mapping) for v in group.values()):
        group = _frame_from_level_shares(group)
    if isinstance(group, Mapping):
        if not group:
            raise ValueError("group is an empty mapping; pass None for everyone")
        _check_columns(study, group)
        mask = _group_mask(study, group)
        label = _fmt(group)
        if not mask.any():
            raise ValueError(f"no rater belongs to the group {label}")
        return Target(
            label, "group", pd.Series(0, index=mask.index[mask.to_numpy()]), np.ones(1), (label,)
        )
    if isinstance(group, pd.DataFrame):
        if "share" not in group.columns:
            raise ValueError(
                "a post-stratification frame needs a 'share' column (population share of each "
                f"cell) besides demographic columns; got columns {list(group.columns)}"
            )
        cols = [c for c in group.columns if c != "share"]
        if not cols:
            raise ValueError("the post-stratification frame has no demographic columns")
        _check_columns(study, cols)
        shares = pd.to_numeric(group["share"], errors="coerce").to_numpy(dtype=float)
        if np.isnan(shares).any() or (shares < 0).any():
            raise ValueError("post-stratification shares must be non-negative numbers")
        if not np.isclose(shares.sum(), 1.0, atol=1e-6):
            raise ValueError(
                f"post-stratification shares sum to {shares.sum():.6g}, not 1; normalise them "
                "(frame['share'] /= frame['share'].sum())"
            )
        if group.duplicated(cols).any():
            raise ValueError(f"the post-stratification frame repeats cells of {cols}")
        table = study.rater_table("collapsed").set_index("rater")
        keys = table[cols].astype("string")
        cell_of = pd.Series(-1, index=table.index)
        labels = []
        for i, row in enumerate(group[cols].itertuples(index=False)):
            levels = dict(zip(cols, row, strict=True))
            match = np.ones(len(table), dtype=bool)
            for col, value in levels.items():
                match &= (keys[col] == str(value)).fillna(False).to_numpy(dtype=bool)
            cell_of[match] = i
            labels.append(_fmt(levels))
        cell_of = cell_of[cell_of >= 0]
        return Target(
            f"poststratified[{','.join(cols)}]",
            "poststratified",
            cell_of.astype(int),
            shares / shares.sum(),
            tuple(labels),
        )
    raise TypeError(
        "group must be None, a mapping such as {'gender': 'she/her'}, or a post-stratification "
        f"frame with a 'share' column; got {type(group).__name__}"
    )
