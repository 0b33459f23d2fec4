"""Target populations: everyone, one group or intersection, or post-stratification shares.

One value type used by the models (marginal means, post-stratified predictions), the labels
(whose ratings count), the training grid and power analysis, so that a population is parsed
once and spelled the same way in every table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import product
from typing import TYPE_CHECKING, Literal, TypeAlias

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from pluralign.data._study import Study

#: The label of the whole population in every table.
EVERYONE = "everyone"

#: Tolerance on the sum of population shares.
_SHARE_TOL = 1e-6


def _fmt(levels: Mapping) -> str:
    return " & ".join(f"{k}={v}" for k, v in levels.items())


@dataclass(frozen=True, eq=False)
class Population:
    """A target population: everyone, a group (or intersection), or post-stratification shares.

    Build one with :meth:`parse` (or pass any accepted form wherever a function takes
    ``target=`` or ``group=``).

    Attributes
    ----------
    kind : {"everyone", "group", "poststratified"}
        ``"group"`` is one cell (a single group or an intersection); ``"poststratified"`` is
        several cells with population shares.
    cells : DataFrame
        Demographic columns plus ``share`` (sums to 1); no demographic column for everyone.

    Examples
    --------
    >>> Population.parse({"gender": "she/her", "race": "Black"}).label
    'gender=she/her & race=Black'
    >>> Population.parse(None).label
    'everyone'
    >>> Population.parse({"gender": {"she/her": 0.5, "he/him": 0.5}, "country": "US"}).cells
        gender country  share
    0  she/her      US    0.5
    1   he/him      US    0.5
    """

    kind: Literal["everyone", "group", "poststratified"]
    cells: pd.DataFrame

    # ------------------------------------------------------------------ construction
    @classmethod
    def everyone(cls) -> Population:
        """The whole population (every rater)."""
        return cls("everyone", pd.DataFrame({"share": [1.0]}))

    @classmethod
    def group(cls, **levels: str) -> Population:
        """One group or an intersection, e.g. ``Population.group(gender="she/her")``."""
        return cls.parse(dict(levels))

    @classmethod
    def parse(cls, spec: object) -> Population:
        """Turn any accepted form into a Population.

        Parameters
        ----------
        spec : None, Population, mapping or DataFrame
            * ``None``: everyone;
            * a group or intersection, ``{"gender": "she/her", "race": "Black"}``;
            * margins, ``{"gender": {"she/her": 0.51, "he/him": 0.49}}``; several margins (and
              single levels) are crossed as if independent: a cell's share is the product of
              its margins' shares;
            * a post-stratification frame: demographic columns plus ``share`` (joint shares).

        Raises
        ------
        ValueError
            If shares are negative, do not sum to 1, or cells repeat.
        TypeError
            If ``spec`` is of another type.
        """
        if spec is None:
            return cls.everyone()
        if isinstance(spec, Population):
            return spec
        if isinstance(spec, pd.DataFrame):
            return cls._from_frame(spec)
        if isinstance(spec, Mapping):
            if not spec:
                raise ValueError("an empty mapping names no group; pass None for everyone")
            if not any(isinstance(v, Mapping) for v in spec.values()):
                for col, v in spec.items():
                    if isinstance(v, (list, tuple, set, frozenset, np.ndarray)):
                        raise ValueError(
                            f"target[{col!r}]: give one level (a group) or a mapping "
                            f"level -> share, not a list ({v!r})"
                        )
                cells = pd.DataFrame([{**{str(k): str(v) for k, v in spec.items()}, "share": 1.0}])
                return cls("group", cells)
            return cls._from_margins(spec)
        raise TypeError(
            "a target population must be None (everyone), a mapping ({'gender': 'she/her'} or "
            "{'gender': {'she/her': 0.5, 'he/him': 0.5}}) or a DataFrame with a 'share' column; "
            f"got {type(spec).__name__}"
        )

    @classmethod
    def _from_margins(cls, spec: Mapping) -> Population:
        margins: list[tuple[str, dict[str, float]]] = []
        for col, level in spec.items():
            if isinstance(level, Mapping):
                shares = {str(k): float(v) for k, v in level.items()}
                if any(v < 0 for v in shares.values()):
                    raise ValueError(f"target[{col!r}]: shares must be non-negative")
                total = sum(shares.values())
                if abs(total - 1) > _SHARE_TOL:
                    raise ValueError(
                        f"target[{col!r}]: shares sum to {total:.6g}, not 1; normalise them"
                    )
                margins.append((str(col), shares))
            elif isinstance(level, (list, tuple, set, frozenset, np.ndarray)):
                raise ValueError(
                    f"target[{col!r}]: give one level (a group) or a mapping level -> share, "
                    f"not a list ({level!r})"
                )
            else:
                margins.append((str(col), {str(level): 1.0}))
        rows = []
        for combo in product(*[list(m.items()) for _, m in margins]):
            share = float(np.prod([s for _, s in combo]))
            rows.append(
                {**{c: lv for (c, _), (lv, _) in zip(margins, combo, strict=True)}, "share": share}
            )
        cells = pd.DataFrame(rows)
        cells = cells[cells["share"] > 0].reset_index(drop=True)
        return cls("poststratified" if len(cells) > 1 else "group", cells)

    @classmethod
    def _from_frame(cls, frame: pd.DataFrame) -> Population:
        if "share" not in frame.columns:
            raise ValueError(
                "a post-stratification frame needs a 'share' column (population share of each "
                f"cell) besides demographic columns; it has {list(frame.columns)}"
            )
        cols = [c for c in frame.columns if c != "share"]
        if not cols:
            raise ValueError("the post-stratification frame has no demographic columns")
        cells = frame.reset_index(drop=True).copy()
        share = pd.to_numeric(cells["share"], errors="coerce")
        if share.isna().any() or (share < 0).any():
            raise ValueError("post-stratification shares must be non-negative numbers")
        total = float(share.sum())
        if abs(total - 1) > _SHARE_TOL:
            raise ValueError(
                f"post-stratification shares sum to {total:.6g}, not 1; normalise them "
                "(frame['share'] /= frame['share'].sum())"
            )
        if cells[cols].duplicated().any():
            raise ValueError(
                f"the post-stratification frame repeats cells of {cols}; aggregate them first"
            )
        for c in cols:
            if not pd.api.types.is_numeric_dtype(cells[c]):
                cells[c] = cells[c].astype(str)
        cells["share"] = share.astype(float)
        cells = cells[cells["share"] > 0].reset_index(drop=True)
        return cls("poststratified", cells)

    # ------------------------------------------------------------------ facts
    @property
    def columns(self) -> list[str]:
        """Demographic columns the population is defined on."""
        return [c for c in self.cells.columns if c != "share"]

    @property
    def shares(self) -> np.ndarray:
        """Population share of each cell."""
        return self.cells["share"].to_numpy(dtype=float)

    @property
    def cell_labels(self) -> tuple[str, ...]:
        """Description of each cell (``"gender=she/her & race=Black"``)."""
        if self.kind == "everyone":
            return (EVERYONE,)
        return tuple(_fmt(row) for row in self.cells[self.columns].to_dict("records"))

    @property
    def label(self) -> str:
        """How the population is spelled in every result table."""
        if self.kind == "everyone":
            return EVERYONE
        if self.kind == "group":
            return self.cell_labels[0]
        return f"poststratified[{','.join(self.columns)}]"

    @property
    def levels(self) -> dict[str, str]:
        """The levels of a group (empty for everyone; an error for post-stratification)."""
        if self.kind == "poststratified":
            raise ValueError(f"{self.label} has several cells, not one group")
        if self.kind == "everyone":
            return {}
        return {c: self.cells[c].iloc[0] for c in self.columns}

    def __repr__(self) -> str:
        return f"Population({self.label!r}, {len(self.cells)} cell(s))"

    def check(self, known: Mapping[str, list[str] | None]) -> Population:
        """Check that columns and levels exist; ``known`` maps column → levels (None: numeric).

        Returns the population itself, so that calls chain.
        """
        for col in self.columns:
            if col not in known:
                raise KeyError(
                    f"the target names {col!r}, which is not a variable here; "
                    f"known: {sorted(known)}"
                )
            if known[col] is None:
                continue
            bad = sorted(set(map(str, self.cells[col])) - {str(v) for v in known[col]})
            if bad:
                raise ValueError(
                    f"target: {col} levels {bad} are unknown; known levels: {list(known[col])}"
                )
        return self

    def members(self, study: Study) -> pd.Series:
        """Cell number (0..n_cells-1) of each rater of ``study`` in the population.

        Indexed by rater id; raters outside the population are absent. A single group follows
        :meth:`Study.filter_raters` (a multi-select value matches every rater who chose it,
        alone or with others); cells of a post-stratified population use the collapsed coding
        (:meth:`Study.collapsed`), so that cells are disjoint and shares add up.
        """
        raters = pd.Index(study.raters["rater"], name="rater")
        if self.kind == "everyone":
            return pd.Series(0, index=raters)
        for col in self.columns:
            if col not in study.raters.columns:
                raise KeyError(
                    f"the target names the demographic {col!r}, which the raters table lacks; "
                    f"it has {study.demographics}"
                )
        table = study.rater_table("collapsed")
        if self.kind == "group":
            mask = np.ones(len(table), dtype=bool)
            for col, value in self.levels.items():
                if col in study.multiselect:
                    m = study.raters[col].map(lambda t, v=value: v in t)
                else:
                    m = table[col].astype("string") == str(value)
                mask &= m.fillna(False).to_numpy(dtype=bool)
            if not mask.any():
                raise ValueError(f"no rater belongs to the group {self.label}")
            return pd.Series(0, index=raters[mask])
        keys = table.set_index("rater")[self.columns].astype("string")
        cell_of = pd.Series(-1, index=keys.index)
        for i, row in enumerate(self.cells[self.columns].itertuples(index=False)):
            match = np.ones(len(keys), dtype=bool)
            for col, value in zip(self.columns, row, strict=True):
                match &= (keys[col] == str(value)).fillna(False).to_numpy(dtype=bool)
            cell_of[match] = i
        return cell_of[cell_of >= 0].astype(int)


#: What a ``target=`` / ``group=`` argument may be: anything :meth:`Population.parse` accepts.
PopulationSpec: TypeAlias = Population | Mapping | pd.DataFrame | None
