"""Closed-form power of a two-group comparison with rater random intercepts (a check on simulation)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import stats

from pluralign.power._design import StudyDesign


def group_difference_se(design: StudyDesign, level: str | None = None) -> float:
    """Standard error of the estimated difference ``level − reference`` under the design.

    With rater intercepts ``u ~ N(0, σ²_u)``, residuals ``e ~ N(0, σ²_e)`` and ``m`` ratings per
    rater, a rater's mean rating is ``μ_g + u_j + ē_j`` with variance ``σ²_u + σ²_e/m``; the
    group difference of the averages of rater means therefore has variance
    ``(σ²_u + σ²_e/m)(1/n₁ + 1/n₂)``. For this balanced design that average is also the
    (RE)ML mixed-model estimate. Item intercepts cancel from the difference only when every
    rater rates every item, so either ``item_sd == 0`` or ``items_per_rater == n_items`` is
    required, and ``group_item_sd`` must be 0.
    """
    if design.scale != "normal":
        raise ValueError(
            "the closed form needs scale='normal' (ordinal ratings have no linear form)"
        )
    if design.group_item_sd != 0:
        raise ValueError("the closed form needs group_item_sd=0")
    if design.item_sd != 0 and design.items_per_rater != design.n_items:
        raise ValueError(
            "the closed form needs item_sd=0, or every rater rating every item "
            "(items_per_rater == n_prompts × responses_per_prompt)"
        )
    level = design.levels[1] if level is None else level
    n1, n2 = design.counts[design.reference], design.counts[level]
    m = design.items_per_rater
    return float(np.sqrt((design.rater_sd**2 + design.residual_sd**2 / m) * (1 / n1 + 1 / n2)))


def analytic_power(
    design: StudyDesign,
    effect: float | None = None,
    *,
    alpha: float = 0.05,
    test: Literal["t", "z"] = "t",
    level: str | None = None,
) -> float:
    """Power of the two-sided test of a group difference, in closed form.

    Parameters
    ----------
    design : StudyDesign
        A normal-scale design without item variation seen by the contrast (see
        :func:`group_difference_se`).
    effect : float, optional
        True difference in rating points (default: the design's effect for ``level``).
    alpha : float, default 0.05
    test : {"t", "z"}
        ``"t"``: the exact test on rater means, noncentral t with ``n₁ + n₂ − 2`` degrees of
        freedom (only two groups are used); ``"z"``: the large-sample Wald test.
    level : str, optional
        Compared level (default: the first non-reference level).

    Returns
    -------
    float

    Examples
    --------
    >>> d = StudyDesign({"g": {"a": 50, "b": 50}}, scale="normal", intercept=3, item_sd=0,
    ...                 group_item_sd=0, rater_sd=0.5, residual_sd=1.0, items_per_rater=4)
    >>> round(analytic_power(d, effect=0.3), 3)
    0.556
    """
    level = design.levels[1] if level is None else level
    delta = design.point_effects()[level] if effect is None else float(effect)
    se = group_difference_se(design, level)
    if test == "z":
        z = stats.norm.ppf(1 - alpha / 2)
        ncp = delta / se
        return float(stats.norm.sf(z - ncp) + stats.norm.cdf(-z - ncp))
    if test != "t":
        raise ValueError(f"test must be 't' or 'z', got {test!r}")
    df = design.counts[design.reference] + design.counts[level] - 2
    q = stats.t.ppf(1 - alpha / 2, df)
    ncp = abs(delta) / se  # the two-sided power is symmetric in the sign of the effect
    upper, lower = stats.nct.sf(q, df, ncp), stats.nct.cdf(-q, df, ncp)
    if not np.isfinite(lower):  # far tail of the noncentral t: numerically 0 (scipy returns NaN)
        lower = 0.0
    return float(upper + lower)
