"""Power curves and the smallest design that reaches a target power."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from pluralign.power._analysis import PowerResult, _prepare, execute
from pluralign.power._design import StudyDesign

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: Columns of :func:`power_curve`'s table.
CURVE_COLUMNS = (
    "vary",
    "value",
    "term",
    "level",
    "reference",
    "truth",
    "n_sims",
    "n_failed",
    "power",
    "power_ci_low",
    "power_ci_high",
    "power_excluding_failures",
    "bias",
    "rmse",
    "coverage",
    "n_raters",
    "items_per_rater",
    "n_ratings",
)

_INTEGER_FIELDS = ("n_raters", "items_per_rater", "n_prompts", "responses_per_prompt")


def vary_design(design: StudyDesign, vary: str, value: Any) -> StudyDesign:
    """``design`` with one quantity set: a field name, ``"n_raters"`` (groups rescaled) or
    ``"effect"`` (the first contrast of the tested term, :meth:`StudyDesign.with_effect`)."""
    if vary == "n_raters":
        return design.with_n_raters(int(value))
    if vary == "effect":
        return design.with_effect(float(value))
    names = {f.name for f in dataclasses.fields(design)}
    if vary not in names or vary in ("groups", "effects"):
        raise ValueError(
            f"cannot vary {vary!r}; choose 'n_raters', 'effect' or a field of StudyDesign such as "
            f"'items_per_rater', 'n_prompts', 'rater_sd' (fields: {sorted(names)})"
        )
    if vary in _INTEGER_FIELDS:
        value = int(value)
    return dataclasses.replace(design, **{vary: value})


def _curve_row(vary: str, value: Any, res: PowerResult) -> list[dict]:
    d = res.design
    rows = []
    for r in res.summary.to_dict("records"):
        rows.append(
            {
                "vary": vary,
                "value": value,
                "term": r["term"],
                "level": r["level"],
                "reference": r["reference"],
                "truth": r["truth"],
                "n_sims": r["n_sims"],
                "n_failed": r["n_failed"],
                "power": r["power"],
                "power_ci_low": r["power_ci_low"],
                "power_ci_high": r["power_ci_high"],
                "power_excluding_failures": r["power_excluding_failures"],
                "bias": r["bias"],
                "rmse": r["rmse"],
                "coverage": r["coverage"],
                "n_raters": d.n_raters,
                "items_per_rater": d.items_per_rater,
                "n_ratings": d.n_raters * d.items_per_rater,
            }
        )
    return rows


def power_curve(
    design: StudyDesign,
    vary: str = "n_raters",
    values: Sequence[Any] = (100, 200, 400, 800),
    *,
    effect: float | Mapping[str, float] | None = None,
    alpha: float = 0.05,
    n_sims: int = 200,
    model: Any = "mixed",
    model_options: Mapping[str, Any] | None = None,
    seed: int | None = None,
    n_jobs: int = 1,
    backend: str | None = None,
    client: Any = None,
    progress: bool = True,
    cache: str | Path | None = None,
    failed_fits: Literal["miss", "exclude"] = "miss",
) -> pd.DataFrame:
    """Power over a range of one design quantity.

    Every point uses the same root ``seed`` (common random numbers), so differences between
    neighbouring points are not inflated by independent Monte-Carlo noise and the curve is
    smoother than independent runs would give.

    Parameters
    ----------
    design : StudyDesign
    vary : str, default "n_raters"
        ``"n_raters"`` (all groups rescaled, shares kept), ``"items_per_rater"``,
        ``"n_prompts"``, ``"effect"`` or another numeric field of :class:`StudyDesign`.
    values : sequence
        Values of ``vary``.
    effect, alpha, n_sims, model, model_options, seed, cache, failed_fits
        As in :func:`power_analysis`.
    n_jobs, backend, client, progress
        As in :func:`power_analysis`; the simulations of every point share one pool of
        workers (one Dask cluster), so a curve of few simulations per point still fills it.

    Returns
    -------
    DataFrame
        One row per value and summary row of :func:`power_analysis` (contrasts, then the
        family-wise rows) with CURVE_COLUMNS (``power`` with its Monte-Carlo interval
        ``power_ci_low, power_ci_high``, ``bias``, ``coverage`` ...).

    See Also
    --------
    power_analysis : One design point.
    plan_study : Searches for the smallest design reaching a target.
    pluralign.plots.power_curve : Draws this table.

    Examples
    --------
    >>> d = StudyDesign({"gender": {"she/her": 20, "he/him": 20}}, effects={"he/him": 0.4},
    ...                 scale="normal", intercept=3, item_sd=0)
    >>> curve = power_curve(d, "n_raters", [20, 80], n_sims=40, model="rater_means",
    ...                     progress=False)
    >>> curve[["value", "power", "power_ci_low", "power_ci_high"]].shape
    (2, 4)
    """
    if effect is not None:
        design = design.with_effect(effect)
    options = dict(alpha=alpha, n_sims=n_sims, model=model, model_options=model_options,
                   seed=seed, cache=cache, mc_method="wilson", failed_fits=failed_fits)  # fmt: skip
    runs = [_prepare(vary_design(design, vary, v), effect=None, **options) for v in values]
    execute(runs, n_jobs=n_jobs, backend=backend, client=client, progress=progress)
    rows = []
    for value, run in zip(values, runs, strict=True):
        rows += _curve_row(vary, value, run.result(stacklevel=3))
    return pd.DataFrame(rows, columns=list(CURVE_COLUMNS))


@dataclass(frozen=True)
class StudyPlan:
    """Outcome of :func:`plan_study`: the smallest design found to reach a target power.

    Attributes
    ----------
    design : StudyDesign
        The smallest design found that reaches the target.
    vary : str
        The quantity searched over.
    value : int or float
        Its chosen value.
    power, power_ci_low, power_ci_high : float
        Simulated power of the chosen design with its Monte-Carlo interval.
    target_power : float
    curve : DataFrame
        Every evaluated point of the first contrast (CURVE_COLUMNS plus ``power_monotone``,
        the isotonic fit, and ``power_ci_low_monotone``, its shifted lower bound).
    reached : bool
        False when even the largest allowed value misses the target (``design`` is then
        the largest one).
    criterion : {"estimate", "lower"}
        What had to reach the target: the monotone power estimate or its Monte-Carlo lower end.

    See Also
    --------
    plan_study : Produces it.
    power_curve : Power over a range of one design quantity.
    pluralign.plots.power_curve : The plot behind :meth:`plot`.

    Examples
    --------
    >>> from pluralign.power import StudyDesign, plan_study
    >>> d = StudyDesign({"gender": {"she/her": 20, "he/him": 20}}, scale="normal",
    ...                 intercept=3, item_sd=0)
    >>> plan = plan_study(d, effect=0.5, n_sims=40, model="rater_means", progress=False,
    ...                   lower=10, upper=200)
    >>> plan.reached, plan.design.n_raters == plan.value
    (True, True)
    >>> ax = plan.plot()
    >>> "<table" in plan._repr_html_()
    True
    """

    design: StudyDesign
    vary: str
    value: float
    power: float
    power_ci_low: float
    power_ci_high: float
    target_power: float
    curve: pd.DataFrame
    reached: bool
    criterion: str = "estimate"

    def plot(self, *, ax: Axes | None = None, **kwargs: Any) -> Axes:
        """The evaluated curve (first contrast) with the target line and the chosen value marked.

        Drawn by :func:`pluralign.plots.power_curve`; ``kwargs`` go to it.
        """
        from pluralign.plots import power_curve as draw

        first = self.curve[self.curve["level"] == self.curve["level"].iloc[0]]
        ax = draw(first, ax=ax, target=self.target_power, **kwargs)
        ax.axvline(self.value, color="grey", linestyle=":", linewidth=1)
        return ax

    def _headline(self) -> str:
        status = "reaches" if self.reached else "does NOT reach"
        return (
            f"{self.vary}={self.value} {status} power {self.target_power:.2f} "
            f"(simulated {self.power:.3f} [{self.power_ci_low:.3f}, {self.power_ci_high:.3f}]; "
            f"{len(self.curve)} points evaluated)"
        )

    def __repr__(self) -> str:
        return f"<StudyPlan: {self._headline()}>"

    def _repr_html_(self) -> str:
        from html import escape

        cols = ["value", "power", "power_ci_low", "power_ci_high", "power_monotone"]
        shown = self.curve[cols].round(4).to_html(index=False, border=0)
        return f"<div><p><b>StudyPlan</b> {escape(self._headline())}.</p>{shown}</div>"


def plan_study(
    design: StudyDesign | None = None,
    *,
    effect: float | Mapping[str, float] | None = None,
    target_power: float = 0.8,
    vary: Literal["n_raters", "items_per_rater", "n_prompts"] | str = "n_raters",
    lower: int | None = None,
    upper: int | None = None,
    n_grid: int = 5,
    criterion: Literal["estimate", "lower"] = "estimate",
    alpha: float = 0.05,
    n_sims: int = 200,
    model: Any = "mixed",
    model_options: Mapping[str, Any] | None = None,
    seed: int | None = None,
    n_jobs: int = 1,
    backend: str | None = None,
    client: Any = None,
    progress: bool = True,
    cache: str | Path | None = None,
    failed_fits: Literal["miss", "exclude"] = "miss",
) -> StudyPlan:
    """The smallest design (in ``vary``) whose simulated power reaches ``target_power``.

    Search: power is non-decreasing in the number of raters or ratings, so a coarse
    geometric grid of ``n_grid`` values between ``lower`` and ``upper`` brackets the target,
    and bisection on the integers inside the bracket narrows it to one unit. All points
    share one seed (common random numbers), which makes the simulated curve close to monotone;
    the remaining Monte-Carlo wiggle is removed with an isotonic (monotone) regression over
    every evaluated point, weighted by its number of simulations, and the answer is the
    smallest evaluated value whose monotone power reaches the target.

    Monte-Carlo error: with ``criterion="estimate"`` the monotone power estimate must reach
    the target (the answer is then about equally likely to be slightly too small or too
    large); with ``criterion="lower"`` the lower end of its Monte-Carlo interval must, which
    guards against under-powered plans at the price of a somewhat larger design. More
    ``n_sims`` shrinks both errors (MC SD ≈ 0.028 at 200 simulations near power 0.8).

    Parameters
    ----------
    design : StudyDesign, optional
        Starting design (default ``StudyDesign()``).
    effect : float or mapping, optional
        Effect to detect (design's ``effect_scale``).
    target_power : float, default 0.8
    vary : str, default "n_raters"
        Integer quantity to search: ``"n_raters"``, ``"items_per_rater"``, ``"n_prompts"``.
    lower, upper : int, optional
        Search range (defaults: ``n_raters`` 2 × levels .. 20 × current; ``items_per_rater``
        1 .. number of items; ``n_prompts`` 1 .. 20 × current).
    n_grid : int, default 5
        Points of the coarse grid.
    criterion : {"estimate", "lower"}
    alpha, n_sims, model, model_options, seed, n_jobs, backend, client, progress, cache, failed_fits
        As in :func:`power_analysis` (the points of the coarse grid share one pool of workers).

    Returns
    -------
    StudyPlan
        ``.design``, ``.value``, ``.power`` (+ interval), ``.curve``; ``.plot()`` draws the curve.

    See Also
    --------
    power_curve : Power over a fixed grid of values.
    power_analysis : One design point.

    Examples
    --------
    >>> d = StudyDesign({"gender": {"she/her": 20, "he/him": 20}}, scale="normal",
    ...                 intercept=3, item_sd=0)
    >>> plan = plan_study(d, effect=0.4, n_sims=60, model="rater_means", progress=False,
    ...                   lower=10, upper=400)
    >>> plan.reached and 10 <= plan.value <= 400
    True
    """
    design = StudyDesign() if design is None else design
    if effect is not None:
        design = design.with_effect(effect)
    if not 0 < target_power < 1:
        raise ValueError(f"target_power must be in (0, 1), got {target_power}")
    if criterion not in ("estimate", "lower"):
        raise ValueError(f"criterion must be 'estimate' or 'lower', got {criterion!r}")
    current = design.n_raters if vary == "n_raters" else getattr(design, vary, None)
    if vary not in ("n_raters", "items_per_rater", "n_prompts", "responses_per_prompt"):
        raise ValueError(
            f"plan_study searches an integer quantity: 'n_raters', 'items_per_rater' or 'n_prompts'; got {vary!r}"
        )
    default_lo = {"n_raters": 2 * len(design.levels), "items_per_rater": 1}.get(vary, 1)
    default_hi = {"items_per_rater": design.n_items}.get(vary, 20 * int(current))
    lo = int(default_lo if lower is None else lower)
    hi = int(default_hi if upper is None else upper)
    if vary == "items_per_rater":
        hi = min(hi, design.n_items)
    if not 1 <= lo < hi:
        raise ValueError(f"need 1 <= lower < upper, got lower={lo}, upper={hi}")

    evaluated: dict[int, dict] = {}
    options = dict(alpha=alpha, n_sims=n_sims, model=model, model_options=model_options,
                   seed=seed, cache=cache, mc_method="wilson", failed_fits=failed_fits)  # fmt: skip

    def evaluate(*values: int) -> None:
        values = tuple(v for v in dict.fromkeys(values) if v not in evaluated)
        runs = [_prepare(vary_design(design, vary, v), effect=None, **options) for v in values]
        execute(runs, n_jobs=n_jobs, backend=backend, client=client, progress=progress)
        for v, run in zip(values, runs, strict=True):
            evaluated[v] = _curve_row(vary, v, run.result(stacklevel=4))[0]

    def monotone() -> pd.DataFrame:
        df = pd.DataFrame([evaluated[v] for v in sorted(evaluated)], columns=list(CURVE_COLUMNS))
        iso = IsotonicRegression(increasing=True, y_min=0, y_max=1)
        df["power_monotone"] = iso.fit_transform(
            df["value"], df["power"], sample_weight=df["n_sims"]
        )
        # shift the Monte-Carlo band with the monotone fit (same width as the raw interval)
        df["power_ci_low_monotone"] = np.clip(
            df["power_ci_low"] + df["power_monotone"] - df["power"], 0, 1
        )
        return df

    def reaches(row: pd.Series) -> bool:
        value = row["power_ci_low_monotone"] if criterion == "lower" else row["power_monotone"]
        return bool(value >= target_power)

    grid = np.unique(np.round(np.geomspace(lo, hi, max(n_grid, 2))).astype(int))
    evaluate(*(int(v) for v in grid))
    df = monotone()
    ok = df[df.apply(reaches, axis=1)]
    if ok.empty:
        best = df.iloc[-1]
        return StudyPlan(
            vary_design(design, vary, int(best["value"])),
            vary,
            int(best["value"]),
            float(best["power"]),
            float(best["power_ci_low"]),
            float(best["power_ci_high"]),
            target_power,
            df,
            False,
            criterion,
        )
    # bisection between the largest failing and the smallest reaching evaluated value
    while True:
        first_ok = int(ok["value"].min())
        below = df[df["value"] < first_ok]
        last_bad = int(below["value"].max()) if len(below) else lo - 1
        if first_ok - last_bad <= 1 or (len(below) == 0 and first_ok == lo):
            break
        evaluate((first_ok + last_bad) // 2 if last_bad >= lo else lo)
        df = monotone()
        ok = df[df.apply(reaches, axis=1)]
    best = df[df["value"] == first_ok].iloc[0]
    return StudyPlan(
        vary_design(design, vary, first_ok),
        vary,
        first_ok,
        float(best["power"]),
        float(best["power_ci_low"]),
        float(best["power_ci_high"]),
        target_power,
        df,
        True,
        criterion,
    )
