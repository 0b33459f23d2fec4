"""Likelihood-ratio test of random slopes: do groups disagree on specific items?

A slope term ``(1 + gender | item)`` says that the gender difference varies from item to item
beyond its average (the fixed effect). :func:`random_slope_test` compares the model with the
term against the same model with ``(1 | item)`` in its place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from pluralign.models._design import _parse, random_terms
from pluralign.models._mixed import fit_mixed
from pluralign.models._protocol import SLOPE_TEST_COLUMNS


def _term_text(expr: str, correlated: bool, group: str) -> str:
    return f"({expr} {'|' if correlated else '||'} {group})"


def chibar_pvalue(statistic: float, df: int) -> float:
    """p of a likelihood ratio for variance parameters on the boundary: the 50:50 mixture of
    χ²(df − 1) and χ²(df) (Stram & Lee, 1994; exact for one added random effect).

    Examples
    --------
    >>> round(chibar_pvalue(3.84, 1), 3)  # half the naive χ²(1) p of 0.05
    0.025
    """
    if statistic <= 0:
        return 1.0
    upper = stats.chi2.sf(statistic, df)
    lower = stats.chi2.sf(statistic, df - 1) if df > 1 else 0.0
    return float(0.5 * upper + 0.5 * lower)


def random_slope_test(
    study,
    formula: str,
    *,
    dimension: str | Sequence[str] | None = None,
    family: str = "gaussian",
    reference: Mapping[str, str] | None = None,
    coding: str = "collapsed",
) -> pd.DataFrame:
    """Test each random-slope term of ``formula`` against the same model without its slopes.

    For every term with slopes, e.g. ``(1 + gender | item)``, the model is refitted with
    ``(1 | item)`` in its place and the two fits compared by a likelihood ratio: REML
    criteria for the gaussian family (the fixed effects are the same), Laplace deviances for
    the binomial and ordinal families (cumulative logit, as ``ordinal::clmm``). Variances sit
    on the boundary of their space under the null, so the p
    value is the 50:50 mixture of χ²(df − 1) and χ²(df) (:func:`chibar_pvalue`), ``df`` being
    the number of variance and correlation parameters the slopes add; it is exact for one
    slope column and an approximation for several.

    Parameters
    ----------
    study : Study
    formula : str
        A formula with random slopes, e.g. ``"rating ~ gender + (1|rater) + (1 + gender|item)"``.
    dimension, family, reference, coding
        As :func:`~pluralign.models.fit_mixed` (family "gaussian", "binomial" or "ordinal").

    Returns
    -------
    DataFrame
        SLOPE_TEST_COLUMNS: ``dimension, term, null_term, statistic, df, p_value``.

    Warns
    -----
    ConvergenceWarning
        As :func:`~pluralign.models.fit_mixed`, for either fit (a singular fit of the slope
        term means its variance is estimated at 0 and the statistic is about 0).

    References
    ----------
    Stram, D. O. & Lee, J. W. (1994). Variance components testing in the longitudinal mixed
    effects model. Biometrics, 50(4), 1171–1177. doi:10.2307/2533455

    Examples
    --------
    >>> from pluralign.models._mixed import _example_study
    >>> study = _example_study()
    >>> two = study.subset(raters=study.raters.query("gender in ['she/her', 'he/him']")["rater"])
    >>> import warnings
    >>> with warnings.catch_warnings():  # no item-specific gap here: the slope SD is 0 (singular)
    ...     warnings.simplefilter("ignore")
    ...     out = random_slope_test(two, "rating ~ gender + (1|rater) + (1 + gender||item)",
    ...                             reference={"gender": "she/her"})
    >>> row = out.iloc[0]
    >>> row["term"], row["null_term"], int(row["df"]), bool(row["p_value"] > 0.2)
    ('(1 + gender || item)', '(1 | item)', 1, True)
    """
    if family not in ("gaussian", "binomial", "ordinal"):
        raise ValueError(
            f"family must be 'gaussian', 'binomial' or 'ordinal' for slope tests, got {family!r}"
        )
    terms = random_terms(formula)
    slopes = [k for k, (expr, _, _) in enumerate(terms) if expr != "1"]
    if not slopes:
        raise ValueError(
            f"formula {formula!r} has no random slopes to test; write e.g. (1 + gender | item)"
        )
    fixed, _ = _parse(formula)
    kw = dict(dimension=dimension, family=family, reference=reference, coding=coding)
    full = fit_mixed(study, formula, n_draws=1, progressbar=False, **kw)
    rows = []
    for k in slopes:
        expr, corr, group = terms[k]
        null_terms = [t if i != k else ("1", True, group) for i, t in enumerate(terms)]
        null_formula = fixed + " + " + " + ".join(_term_text(*t) for t in null_terms)
        null = fit_mixed(study, null_formula, n_draws=1, progressbar=False, **kw)
        for dim in full.dimensions:
            a, b = full.fits[dim].fit, null.fits[dim].fit
            df = len(a.theta) - len(b.theta)
            stat = max(float(b.deviance - a.deviance), 0.0)
            rows.append(
                (
                    dim,
                    _term_text(expr, corr, group),
                    f"(1 | {group})",
                    stat,
                    int(df),
                    chibar_pvalue(stat, int(df)),
                )
            )
    return pd.DataFrame(rows, columns=list(SLOPE_TEST_COLUMNS)).astype({"df": np.int64})
