"""Label flips: how often one group's preference labels differ from everyone's."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import pandas as pd

from pluralign._errors import DroppedRowsWarning
from pluralign.data import Study
from pluralign.labels._preference import preference_labels

#: Columns of :func:`label_flips`' table.
FLIP_COLUMNS = ("by", "group", "n_raters", "pairs", "flips", "flip_pct", "mean_abs_diff")


def label_flips(
    study: Study,
    by: str,
    *,
    dimensions: Sequence[str] | None = None,
    method: str = "distribution",
    min_raters: int = 10,
) -> pd.DataFrame:
    """How often a group's preference label differs from everyone's.

    For each level of ``by`` with at least ``min_raters`` raters, labels are built from that
    group's ratings only and compared with everyone's labels, pair by pair. For a
    multi-select demographic a group is every rater who chose the value. A pair
    flips when the group and everyone prefer different responses; exact ties (``p_a = 0.5``)
    on either side are not counted as flips.

    Parameters
    ----------
    study : Study
    by : str
        Demographic column whose groups are compared with everyone.
    dimensions : sequence of str, optional
        Dimensions combined into the preference score (see
        :func:`pluralign.labels.preference_labels`).
    method : {"distribution", "majority"}
        Label method used for both sides.
    min_raters : int
        Smallest group compared.

    Returns
    -------
    DataFrame
        Columns :data:`FLIP_COLUMNS`: ``by, group, n_raters, pairs`` (pairs labelled by both), ``flips, flip_pct,
        mean_abs_diff`` (mean absolute difference of ``p_a``).

    See Also
    --------
    preference_labels : the labels compared.

    Examples
    --------
    >>> from pluralign.data import simulate_study
    >>> study = simulate_study(n_raters=200, n_prompts=30, seed=1).study
    >>> flips = label_flips(study, "gender", dimensions=["toxicity", "helpfulness"])
    >>> bool((flips["flips"] <= flips["pairs"]).all())
    True
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DroppedRowsWarning)
        everyone = preference_labels(study, method=method, dimensions=dimensions).table
        active = study.raters["rater"].isin(study.ratings["rater"]).to_numpy()
        if by in study.multiselect:  # a group is everyone who chose the value
            chosen = study.raters.loc[active, by]
            counts = pd.Series([v for t in chosen for v in t]).value_counts()
        else:
            counts = study.raters.loc[active, by].value_counts()
        rows = []
        for level, n in counts.items():
            if n < min_raters:
                continue
            grp = preference_labels(study, method=method, dimensions=dimensions, group={by: level})
            both = everyone.merge(
                grp.table, on=["prompt_id", "item_a", "item_b"], suffixes=("", "_g")
            )
            decided = (both["p_a"] != 0.5) & (both["p_a_g"] != 0.5)
            flipped = decided & ((both["p_a"] > 0.5) != (both["p_a_g"] > 0.5))
            rows.append(
                {
                    "by": by,
                    "group": str(level),
                    "n_raters": int(n),
                    "pairs": len(both),
                    "flips": int(flipped.sum()),
                    "flip_pct": 100 * flipped.mean() if len(both) else float("nan"),
                    "mean_abs_diff": (both["p_a"] - both["p_a_g"]).abs().mean(),
                }
            )
    return pd.DataFrame(rows, columns=list(FLIP_COLUMNS))
