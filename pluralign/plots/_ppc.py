"""Posterior (or prior) predictive check of the rating distribution per demographic group."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from pluralign.models import BayesResult
from pluralign.plots import _common as C
from pluralign.plots._style import INK, color_map

#: Label of raters whose value of the grouping variable is missing.
MISSING = "(missing)"

#: Most (draw, rating) values counted at once (bounds memory on large fits).
_BLOCK = 2**22


def _idata_of(fit: Any, dimension: str | None):
    if isinstance(fit, BayesResult):
        try:
            dfit = fit.dimension_fit(dimension)
        except (KeyError, ValueError) as err:
            raise type(err)(f"ppc: {err.args[0]}") from None
        return dfit.idata, dfit.dimension
    if hasattr(fit, "observed_data"):
        return fit, dimension
    raise TypeError(
        "ppc needs a BayesResult (pluralign.models.fit_bayes) or an InferenceData from "
        f"pluralign.models.prior_predictive, got {type(fit).__name__}"
    )


def predictive_shares(
    observed: np.ndarray, simulated: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[object], np.ndarray]:
    """Share of each rating category per group: observed, and per predictive draw.

    ``observed`` (N,), ``simulated`` (S, N), ``groups`` (N,) labels. Simulated ratings that are
    not observed categories (gaussian family) count towards the nearest category. Returns
    ``(categories (K,), observed shares (G, K), group labels (G), draw shares (S, G, K))``.

    Examples
    --------
    >>> cats, obs, labels, sim = predictive_shares(
    ...     np.array([1, 2, 2, 1]), np.array([[1, 1, 2, 2]]), np.array(["a", "a", "b", "b"]))
    >>> obs.tolist(), sim[0].tolist()
    ([[0.5, 0.5], [0.5, 0.5]], [[1.0, 0.0], [0.0, 1.0]])
    """
    cats = np.unique(observed)
    k = len(cats)
    labels = C.levels(pd.Series(groups))
    g = pd.Categorical(groups, categories=labels).codes.astype(np.int64)
    n_g = np.bincount(g, minlength=len(labels)).astype(float)

    def code(values: np.ndarray) -> np.ndarray:
        if k == 1:
            return np.zeros(values.shape, dtype=np.int64)
        mids = (cats[:-1] + cats[1:]) / 2
        return np.searchsorted(mids, values).astype(np.int64)

    obs = np.bincount(g * k + code(observed), minlength=len(labels) * k).reshape(-1, k)
    s, n = simulated.shape
    out = np.empty((s, len(labels), k))
    step = max(1, _BLOCK // max(n, 1))
    for start in range(0, s, step):
        block = simulated[start : start + step]
        m = len(block)
        flat = (np.arange(m)[:, None] * (len(labels) * k) + g[None, :] * k + code(block)).ravel()
        counts = np.bincount(flat, minlength=m * len(labels) * k)
        out[start : start + m] = counts.reshape(m, len(labels), k)
    return cats, obs / n_g[:, None], labels, out / n_g[None, :, None]


def ppc(
    fit: Any,
    by: str = "gender",
    *,
    dimension: str | None = None,
    group: str = "posterior",
    ci_prob: float | None = None,
    colors: Mapping[object, str] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Predictive check of the rating distribution per group: observed shares vs the model's.

    For each group of ``by`` and each rating category, a bar shows the observed share of the
    group's ratings in that category; a dot and line show the mean and central interval of the
    same share over predictive draws (one simulated rating per draw for every observed rating,
    same raters and items). Bars outside their interval point to a misfit for that group.
    Continuous simulated ratings (``family="gaussian"``) count towards the nearest observed
    rating value.

    Parameters
    ----------
    fit : BayesResult or arviz.InferenceData
        A :func:`~pluralign.models.fit_bayes` result (``posterior_predictive=True``, the
        default) or the output of :func:`~pluralign.models.prior_predictive`.
    by : str, default "gender"
        Rater demographic that defines the groups (any column of the study's raters).
    dimension : str, optional
        The dimension of a fit with several.
    group : {"posterior", "prior"}, default "posterior"
        Which predictive draws to use.
    ci_prob : float, optional
        Probability of the equal-tailed interval (default ``options.ci_prob``).
    colors : mapping, optional
        Colour per group; others take the Okabe–Ito palette in order.
    ax : Axes, optional
        Axes to draw on (default a new figure in :func:`pluralign.plots.style`).

    Returns
    -------
    matplotlib.axes.Axes
        One bar set (``ax.containers``: a BarContainer) and one dot-and-interval set (an
        ErrorbarContainer) per group, each with one mark per rating category.

    See Also
    --------
    arviz.plot_ppc : Density overlay of the whole rating distribution.

    Examples
    --------
    >>> from pluralign.data import simulate_study
    >>> from pluralign.models import prior_predictive
    >>> import matplotlib.pyplot as plt
    >>> from pluralign import plots
    >>> study = simulate_study(n_raters=40, seed=1, dimensions=["toxicity"]).study
    >>> idata = prior_predictive(study, "rating ~ gender", draws=50)
    >>> ax = plots.ppc(idata, by="gender", group="prior")
    >>> n_groups = len(set(idata.observed_data["gender"].values))
    >>> len(ax.containers) == 2 * n_groups  # bars and dot-intervals per group
    True
    >>> plt.close(ax.figure)
    """
    if group not in ("posterior", "prior"):
        raise ValueError(f"group must be 'posterior' or 'prior', got {group!r}")
    ci_prob = C.ci_prob_of(pd.DataFrame(), ci_prob)
    idata, dim = _idata_of(fit, dimension)
    pred_name = f"{group}_predictive"
    if not hasattr(idata, pred_name):
        how = (
            "fit_bayes(..., posterior_predictive=True)"
            if group == "posterior"
            else "pluralign.models.prior_predictive"
        )
        raise ValueError(f"ppc: the fit has no {pred_name} group; draw it with {how}")
    obs_ds = idata.observed_data
    if by not in obs_ds.coords:
        known = [c for c in obs_ds.coords if c not in ("obs", "rater", "item")]
        raise KeyError(f"ppc(by={by!r}): not a rater demographic of the fit; known: {known}")
    observed = np.asarray(obs_ds["rating"].values, dtype=float)
    sim = np.asarray(getattr(idata, pred_name)["rating"].values, dtype=float)
    sim = sim.reshape(-1, sim.shape[-1])
    groups = pd.Series(obs_ds[by].values, dtype=object).where(lambda s: s.notna(), MISSING)
    cats, obs_share, labels, draws = predictive_shares(observed, sim, groups.to_numpy())
    mean = draws.mean(0)
    lo, hi = np.quantile(draws, [(1 - ci_prob) / 2, (1 + ci_prob) / 2], axis=0)

    made = ax is None
    with C.maybe_style(made):
        ax = C.new_axes(ax, (1.2 + len(cats) * (0.5 + 0.25 * len(labels)), 3.0))
        cmap = color_map(labels, colors)
        width = 0.8 / len(labels)
        offsets = C.dodge(len(labels), 0.8)
        x = np.arange(len(cats), dtype=float)
        for j, lab in enumerate(labels):
            pos = x + offsets[j]
            ax.bar(
                pos,
                obs_share[j],
                width=width * 0.92,
                color=cmap[lab],
                alpha=0.45,
                edgecolor=cmap[lab],
                linewidth=0.8,
                label=str(lab),
                zorder=2,
            )
            ax.errorbar(
                pos,
                mean[j],
                yerr=np.vstack([mean[j] - lo[j], hi[j] - mean[j]]),
                fmt="o",
                color=INK,
                markerfacecolor=cmap[lab],
                markeredgecolor=INK,
                markersize=4,
                elinewidth=1.1,
                capsize=0,
                zorder=3,
            )
        ax.set_xticks(x, [f"{c:g}" for c in cats])
        ax.set_xlabel("Rating")
        ax.set_ylabel("Share of ratings")
        ax.set_ylim(bottom=0)
        handles = [Patch(color=cmap[lab], alpha=0.45, label=str(lab)) for lab in labels]
        handles.append(
            Line2D(
                [],
                [],
                marker="o",
                color=INK,
                markerfacecolor="white",
                markersize=4,
                label=f"{group} predictive mean, {C.pct(ci_prob)} interval",
            )
        )
        ax.legend(handles=handles, title=C.nice(by), frameon=False, fontsize="small")
        if dim is not None:
            ax.set_title(C.nice(dim))
    return ax
