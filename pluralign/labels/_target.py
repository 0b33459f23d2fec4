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

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pluralign.data import Population, Study

#: Type of the ``group`` / ``target`` argument.
GroupSpec = Mapping | pd.DataFrame | None


@dataclass(frozen=True, eq=False)
class Target:
    """Resolved target population.

    Attributes
    ----------
    label : str
        Short description used in result tables (``"everyone"``, ``"gender=she/her"``, ...).
    kind : str
        ``"everyone"``, ``"group"`` or ``"poststratified"``.
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
    >>> from pluralign.data import Population, Study
    >>> r = pd.DataFrame({"rater": ["a", "b"], "item": "i", "dimension": "d", "rating": [1, 2]})
    >>> s = Study.from_frames(r, pd.DataFrame({"rater": ["a", "b"], "gender": ["he/him", "she/her"]}))
    >>> resolve_target(s, {"gender": "she/her"}).cell_of.to_dict()
    {'b': 0}
    """
    population = Population.parse(group)
    if population.kind != "everyone":
        for col in population.columns:
            if col not in study.raters.columns:
                raise KeyError(
                    f"group names the demographic {col!r}, which the raters table lacks; "
                    f"it has {study.demographics}"
                )
    cell_of = population.members(study)
    return Target(
        population.label, population.kind, cell_of, population.shares, population.cell_labels
    )
