"""Target populations for marginal means and post-stratification, in one canonical form."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import product

import numpy as np
import pandas as pd

#: Tolerance on the sum of target shares.
_SHARE_TOL = 1e-6


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


def _check_levels(cells: pd.DataFrame, known: dict[str, list[str]] | None) -> None:
    if known is None:
        return
    for col in cells.columns:
        if col == "share":
            continue
        if col not in known:
            raise KeyError(
                f"target names {col!r}, which is not a variable of the model; "
                f"known: {sorted(known)}"
            )
        if known[col] is None:  # numeric variable
            continue
        bad = sorted(set(map(str, cells[col])) - set(known[col]))
        if bad:
            raise ValueError(f"target: {col} levels {bad} are unknown; known levels: {known[col]}")


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
    if target is None:
        return pd.DataFrame({"share": [1.0]})
    if isinstance(target, pd.DataFrame):
        if "share" not in target.columns:
            raise ValueError(
                "a target frame needs a 'share' column (population share of each cell); "
                f"it has {list(target.columns)}"
            )
        cells = target.reset_index(drop=True).copy()
        share = pd.to_numeric(cells["share"], errors="coerce")
        if share.isna().any() or (share < 0).any():
            raise ValueError("target 'share' must be non-negative numbers")
        cols = [c for c in cells.columns if c != "share"]
        if cells[cols].duplicated().any():
            raise ValueError(f"target frame has duplicate cells over {cols}; aggregate them first")
        for c in cols:
            if not (known and known.get(c, "") is None):
                cells[c] = cells[c].astype(str)
        cells["share"] = share.astype(float)
    elif isinstance(target, Mapping):
        margins: list[tuple[str, dict[str, float]]] = []
        for col, spec in target.items():
            if isinstance(spec, Mapping):
                shares = {str(k): float(v) for k, v in spec.items()}
                if any(v < 0 for v in shares.values()):
                    raise ValueError(f"target[{col!r}]: shares must be non-negative")
                total = sum(shares.values())
                if abs(total - 1) > _SHARE_TOL:
                    raise ValueError(
                        f"target[{col!r}]: shares sum to {total:.6g}, not 1; normalise them"
                    )
                margins.append((str(col), shares))
            elif isinstance(spec, (list, tuple, set, np.ndarray)):
                raise ValueError(
                    f"target[{col!r}]: give one level (a group) or a mapping level -> share, "
                    f"not a list ({spec!r})"
                )
            else:
                margins.append((str(col), {str(spec): 1.0}))
        rows = []
        for combo in product(*[list(m.items()) for _, m in margins]):
            share = float(np.prod([s for _, s in combo])) if combo else 1.0
            rows.append(
                {**{c: lv for (c, _), (lv, _) in zip(margins, combo, strict=True)}, "share": share}
            )
        cells = pd.DataFrame(rows)
    else:
        raise TypeError(
            "target must be None, a mapping ({'gender': 'she/her'} or "
            "{'gender': {'she/her': 0.5, 'he/him': 0.5}}) or a DataFrame with a 'share' column; "
            f"got {type(target).__name__}"
        )
    total = float(cells["share"].sum())
    if abs(total - 1) > _SHARE_TOL:
        raise ValueError(f"target shares sum to {total:.6g}, not 1; normalise them")
    _check_levels(cells, known)
    cells = cells[cells["share"] > 0].reset_index(drop=True)
    return cells
