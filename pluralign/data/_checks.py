"""Checks that a study's design can support an analysis, before any computing.

A model with one rater, one item, constant ratings or a one-level factor has nothing to
estimate; without these checks it would still report variance components and ``converged=True``.
A group mean from one rater has no between-rater uncertainty a bootstrap could show, so its
interval is withheld. Each check names the dimension, variable or group and what to change.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pluralign._errors import DesignError, PluralignWarning
from pluralign.data._study import Study

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
#: columns of a descriptive table whose interval needs at least two raters in the group
_GROUP_INTERVALS = ("se", "ci_low", "ci_high")
_CONTRAST_INTERVALS = (
    "difference_ci_low",
    "difference_ci_high",
    "relative_ci_low",
    "relative_ci_high",
)


def _variables(study: Study, variables: str | Sequence[str] | None) -> list[str]:
    if variables is None:
        return []
    if isinstance(variables, str):
        rhs = variables.split("~", 1)[-1]
        rhs = re.sub(r"\([^)]*\|[^)]*\)", " ", rhs)  # random-effect terms
        names = _NAME.findall(rhs)
    else:
        names = [str(v) for v in variables]
    demo = set(study.demographics)
    return list(dict.fromkeys(n for n in names if n in demo))


def check_design(
    study: Study,
    variables: str | Sequence[str] | None = None,
    dimension: str | Sequence[str] | None = None,
) -> None:
    """Raise :class:`DesignError` when a model of the study has nothing to estimate.

    For each dimension: at least 2 raters and 2 items (a crossed random-effects model needs
    both to vary), ratings that are not all equal, and at least two observed levels of each
    demographic variable among the raters of that dimension. A level held by a single rater
    gives a warning (its effect cannot be told apart from that rater).

    Parameters
    ----------
    study : Study
        (or a :class:`SimulatedStudy`, whose ``.study`` is checked).
    variables : str or sequence of str, optional
        A model formula (``"rating ~ gender + age"``) or demographic column names.
    dimension : str or sequence of str, optional
        Dimensions to check (default: all).

    Raises
    ------
    DesignError
        Naming the dimension, the variable and the fix.

    Examples
    --------
    >>> import pandas as pd
    >>> from pluralign.data import Study
    >>> r = pd.DataFrame({"rater": ["a", "a"], "item": ["i", "j"], "dimension": "tox",
    ...                   "rating": [1, 2]})
    >>> check_design(Study.from_frames(r), "rating ~ 1")
    Traceback (most recent call last):
    ...
    pluralign._errors.DesignError: dimension 'tox': only 1 rater ('a') ...
    """
    study = getattr(study, "study", study)  # a SimulatedStudy holds its Study
    if not isinstance(study, Study):
        return  # other inputs are checked by the function that receives them
    names = _variables(study, variables)
    table = study.rater_table("collapsed").set_index("rater") if names else None
    for dim in study.resolve_dimensions(dimension):
        r = study.ratings[study.ratings["dimension"] == dim]
        raters = pd.unique(r["rater"])
        if len(raters) < 2:
            raise DesignError(
                f"dimension {dim!r}: only {len(raters)} rater ({', '.join(map(repr, raters))}) "
                "rated it; a model with rater random effects needs at least 2 raters (and "
                "several per group to say anything about groups). Fix: add raters, or describe "
                "the ratings without a model"
            )
        n_items = r["item"].nunique()
        if n_items < 2:
            raise DesignError(
                f"dimension {dim!r}: only {n_items} item was rated; a model with item random "
                "effects needs at least 2 items. Fix: add items"
            )
        values = r["rating"].to_numpy(dtype=float)
        if np.nanmin(values) == np.nanmax(values):
            raise DesignError(
                f"dimension {dim!r}: every rating is {values[0]:g}; there is no variation to "
                "model. Fix: leave this dimension out (dimension=...)"
            )
        if table is None:
            continue
        sub = table.loc[table.index.intersection(pd.Index(raters))]
        for var in names:
            col = sub[var].dropna()
            levels = col.astype(str).value_counts()
            if len(levels) < 2:
                shown = f" ({levels.index[0]!r})" if len(levels) else ""
                raise DesignError(
                    f"dimension {dim!r}: variable {var!r} has {len(levels)} observed level"
                    f"{shown} among its {len(raters)} raters; its effect cannot be estimated. "
                    f"Fix: remove {var!r} from the formula or add raters of other levels"
                )
            numeric = pd.api.types.is_numeric_dtype(col.dtype)
            single = [] if numeric else list(levels.index[levels.to_numpy() == 1])
            if single:
                warnings.warn(
                    f"dimension {dim!r}: level(s) {single} of {var!r} are held by a single "
                    "rater; their effect is confounded with that rater's random effect",
                    PluralignWarning,
                    stacklevel=3,
                )


def thin_groups(table: pd.DataFrame, *, min_raters: int = 2) -> pd.DataFrame:
    """Withhold intervals of groups with fewer than ``min_raters`` raters, with a warning.

    A rater-clustered bootstrap of a group with one rater resamples that one rater every time:
    its interval would have zero width, a confident statement from one person. Its ``se``,
    ``ci_low`` and ``ci_high`` become NaN, as do the contrast intervals of any row whose group
    or reference group is that thin.

    Parameters
    ----------
    table : DataFrame
        A table of :func:`~pluralign.describe.group_means` or
        :func:`~pluralign.describe.relative_difference` (``n_raters`` and interval columns).
    min_raters : int, default 2

    Returns
    -------
    DataFrame
        The same table with those intervals set to NaN.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"dimension": "d", "by": "g", "group": ["x", "y"], "n_raters": [1, 9],
    ...                   "mean": [2.0, 3.0], "ci_low": [2.0, 2.5], "ci_high": [2.0, 3.5]})
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     thin_groups(t)["ci_low"].tolist()
    [nan, 2.5]
    """
    if table.empty or "n_raters" not in table.columns:
        return table
    thin = table["n_raters"].to_numpy() < min_raters
    ref_thin = (
        table["n_raters_reference"].to_numpy() < min_raters
        if "n_raters_reference" in table.columns
        else np.zeros(len(table), dtype=bool)
    )
    if not thin.any() and not ref_thin.any():
        return table
    out = table.copy()
    for col in _GROUP_INTERVALS:
        if col in out.columns:
            out.loc[thin, col] = np.nan
    for col in _CONTRAST_INTERVALS:
        if col in out.columns:
            out.loc[thin | ref_thin, col] = np.nan
    where = out.loc[thin, [c for c in ("dimension", "by", "group") if c in out.columns]]
    shown = sorted({" / ".join(map(str, row)) for row in where.itertuples(index=False)})
    warnings.warn(
        f"group(s) with fewer than {min_raters} raters get no interval (NaN): {shown[:10]}",
        PluralignWarning,
        stacklevel=3,
    )
    return out


def check_pairs(study: Study) -> None:
    """Raise when no two rated items share a prompt, so no preference pair can be formed.

    Examples
    --------
    >>> import pandas as pd
    >>> from pluralign.data import Study
    >>> r = pd.DataFrame({"rater": "a", "item": ["i", "j"], "dimension": "d", "rating": [1, 2]})
    >>> check_pairs(Study.from_frames(r))
    Traceback (most recent call last):
    ...
    pluralign._errors.DesignError: no preference pairs can be formed: ...
    """
    study = getattr(study, "study", study)
    if not isinstance(study, Study):
        return
    rated = study.items[study.items["item"].isin(pd.unique(study.ratings["item"]))]
    sizes = rated.groupby("prompt_id", sort=False)["item"].nunique()
    if not (sizes >= 2).any():
        raise DesignError(
            f"no preference pairs can be formed: each of the {len(sizes)} prompt_id value(s) "
            "has a single rated item, and pairs compare responses to the same prompt. Fix: give "
            "responses to one prompt a shared prompt_id in the items table"
        )
