"""Target populations for marginal means and post-stratification, in one canonical form."""

from __future__ import annotations

import pandas as pd

from pluralign.data import Population


def _known_levels(design_or_data) -> dict[str, list[str]] | None:
    """Levels per demographic of a Design (categorical variables) or a data frame."""
    levels = getattr(design_or_data, "levels", None)
    if isinstance(levels, dict):
        out = dict(levels)
        for v in getattr(design_or_data, "numeric", []):
            out[v] = None
        return out
    if isinstance(design_or_data, pd.DataFrame):
        return {
            c: sorted(map(str, pd.unique(design_or_data[c].dropna())))
            for c in design_or_data.columns
            if c != "share"
        }
    return None


def target_cells(target, design_or_data=None) -> pd.DataFrame:
    """The cells of a target population and their population shares.

    Parameters
    ----------
    target : None, mapping or DataFrame
        * ``None``: everyone (one cell with no demographic columns, share 1).
        * a group or intersection, ``{"gender": "she/her", "race": "Black"}`` (one cell, share 1);
        * margins, ``{"gender": {"she/her": 0.51, "he/him": 0.49}}``; several margins (and
          single levels) are combined as if independent: the share of a cell is the product of
          its margins' shares;
        * a post-stratification frame: demographic columns plus ``share`` (joint shares).
    design_or_data : Design or DataFrame, optional
        Used to check that columns and levels exist.

    Returns
    -------
    DataFrame
        Demographic columns plus ``share`` (sums to 1). Demographics of the model that the
        target leaves out are averaged over the fitted data by the models.

    Raises
    ------
    ValueError
        If shares are negative or do not sum to 1, or a level is unknown.

    Examples
    --------
    >>> target_cells({"gender": {"she/her": 0.5, "he/him": 0.5}, "country": "US"})
        gender country  share
    0  she/her      US    0.5
    1   he/him      US    0.5
    """
    known = _known_levels(design_or_data)
    population = Population.parse(target)
    if known is not None:
        population.check(known)
    cells = population.cells.copy()
    for c in population.columns:
        if not (known and known.get(c, "") is None):
            cells[c] = cells[c].astype(str)
    return cells.reset_index(drop=True)
