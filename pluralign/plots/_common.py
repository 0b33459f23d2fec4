"""Helpers shared by the plotting functions: input checks, category order, dot-and-interval marks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from pluralign._settings import options
from pluralign.data import EVERYONE as DATA_EVERYONE
from pluralign.plots._style import GUIDE, style

#: Label of rows that belong to no particular group (``group`` missing): the whole population,
#: spelt as in every table (``pluralign.data.EVERYONE``).
EVERYONE = DATA_EVERYONE


def check_frame(df: object, columns: Iterable[str], what: str, source: str) -> pd.DataFrame:
    """Check that ``df`` is a non-empty DataFrame holding ``columns``; say where it should come from."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(
            f"{what} needs a pandas DataFrame (the output of {source}), got {type(df).__name__}"
        )
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"{what}: the frame lacks column(s) {missing}; it has {list(df.columns)}. "
            f"Pass the output of {source}, or rename your columns to match."
        )
    if df.empty:
        raise ValueError(f"{what}: the frame is empty; nothing to draw")
    return df


def ci_prob_of(df: pd.DataFrame, ci_prob: float | None = None) -> float:
    """Interval probability: explicit, else recorded in ``df.attrs``, else the package default."""
    if ci_prob is not None:
        return float(ci_prob)
    return float(df.attrs.get("ci_prob", options.ci_prob))


def pct(prob: float) -> str:
    """``0.95`` → ``"95%"``, ``0.975`` → ``"97.5%"``."""
    return f"{100 * prob:g}%"


def levels(values: pd.Series, order: Sequence[object] | None = None) -> list[object]:
    """Distinct values in ``order`` (if given), else categorical order, else order of appearance."""
    present = list(pd.unique(values))
    if order is not None:
        unknown = [v for v in order if v not in present]
        if unknown:
            raise ValueError(
                f"order names value(s) {unknown} that are not in the data; present: {present}"
            )
        return list(order)
    if isinstance(values.dtype, pd.CategoricalDtype):
        return [v for v in values.cat.categories if v in present]
    return present


def label_values(df: pd.DataFrame, columns: Sequence[str], sep: str = " × ") -> pd.Series:
    """One text label per row joining ``columns``; missing values read as :data:`EVERYONE`."""
    parts = [df[c].astype("object").where(df[c].notna(), EVERYONE).astype(str) for c in columns]
    out = parts[0]
    for p in parts[1:]:
        out = out + sep + p
    return out


def nice(name: object) -> str:
    """``"emotional_awareness"`` → ``"Emotional awareness"``, ``"n_raters"`` → ``"Number of raters"``."""
    text = str(name)
    if text.startswith("n_") and len(text) > 2:
        text = "number of " + text[2:]
    text = text.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def maybe_style(active: bool) -> AbstractContextManager:
    """The publication style if ``active`` (the function made the figure), else no change."""
    return style() if active else contextlib.nullcontext()


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    """``ax``, or the Axes of a new constrained-layout figure of ``figsize`` inches."""
    if ax is not None:
        return ax
    fig = plt.figure(figsize=figsize, layout="constrained")
    return fig.add_subplot()


def panel_grid(
    fig: Figure | None,
    n: int,
    ncols: int | None,
    panel_size: tuple[float, float],
    *,
    sharex: bool | str = False,
    sharey: bool | str = False,
) -> tuple[Figure, list[Axes]]:
    """A grid of ``n`` panels (unused cells removed) on ``fig`` or a new figure."""
    ncols = max(1, min(n, ncols if ncols is not None else 3))
    nrows = int(np.ceil(n / ncols))
    if fig is None:
        fig = plt.figure(
            figsize=(panel_size[0] * ncols + 0.6, panel_size[1] * nrows + 0.5), layout="constrained"
        )
    elif fig.axes:
        raise ValueError("fig already holds axes; pass an empty figure (plt.figure()) or fig=None")
    axes = fig.subplots(nrows, ncols, sharex=sharex, sharey=sharey, squeeze=False).ravel()
    for a in axes[n:]:
        a.remove()
    return fig, list(axes[:n])


def dodge(n: int, width: float = 0.7) -> np.ndarray:
    """Offsets that spread ``n`` marks over ``width`` around a category position."""
    if n <= 1:
        return np.zeros(max(n, 1))
    return (np.arange(n) - (n - 1) / 2) * (width / n)


def dot_interval(
    ax: Axes,
    pos: np.ndarray,
    est: np.ndarray,
    low: np.ndarray | None,
    high: np.ndarray | None,
    *,
    color: str,
    marker: str = "o",
    label: str | None = None,
    horizontal: bool = True,
    filled: np.ndarray | None = None,
    size: float = 22.0,
    linewidth: float = 1.3,
    zorder: float = 3.0,
) -> None:
    """Point estimates with interval lines: horizontal (value on x) or vertical (value on y)."""
    pos = np.asarray(pos, dtype=float)
    est = np.asarray(est, dtype=float)
    if low is not None and high is not None:
        low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
        ok = np.isfinite(low) & np.isfinite(high)
        lines = ax.hlines if horizontal else ax.vlines
        if ok.any():
            lines(pos[ok], low[ok], high[ok], color=color, linewidth=linewidth, zorder=zorder)
    filled = np.ones(len(est), dtype=bool) if filled is None else np.asarray(filled, dtype=bool)
    faces = np.where(filled, color, "white")
    xy = (est, pos) if horizontal else (pos, est)
    ax.scatter(
        *xy,
        s=size,
        marker=marker,
        facecolors=list(faces),
        edgecolors=color,
        linewidths=1.0,
        zorder=zorder + 0.1,
        label=label,
    )


def reference_line(
    ax: Axes, value: float, *, horizontal: bool = False, label: str | None = None
) -> None:
    """A thin grey guide at ``value`` (vertical by default), behind the data."""
    line = ax.axhline if horizontal else ax.axvline
    line(value, color=GUIDE, linewidth=0.8, linestyle="--", zorder=1, label=label)


def categorical_axis(ax: Axes, labels: Sequence[str], *, horizontal: bool = True) -> np.ndarray:
    """Put ``labels`` on the category axis top-to-bottom (horizontal) or left-to-right; return positions."""
    n = len(labels)
    if horizontal:
        pos = np.arange(n)[::-1].astype(float)
        ax.set_yticks(pos, labels)
        ax.set_ylim(-0.6, n - 0.4)
        ax.tick_params(axis="y", length=0)
    else:
        pos = np.arange(n, dtype=float)
        ax.set_xticks(pos, labels)
        ax.set_xlim(-0.6, n - 0.4)
        ax.tick_params(axis="x", length=0)
    return pos


def plain_log_axis(ax: Axes, axis: str = "x", max_ticks: int = 7) -> None:
    """Label a log-scaled axis with plain numbers (0.5, 1, 2) instead of powers of ten."""
    import matplotlib.ticker as mticker

    target = ax.xaxis if axis == "x" else ax.yaxis
    lo, hi = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
    decades = range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
    chosen: list[float] = []
    for steps in (
        (1.0, 2.0, 5.0),
        (1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 7.5),
        (1.0, 1.1, 1.25, 1.5, 2, 3, 5, 6, 7, 8, 9),
    ):
        chosen = sorted({round(s * 10.0**d, 10) for d in decades for s in steps})
        chosen = [c for c in chosen if lo <= c <= hi]
        if len(chosen) >= 3:
            break
    if len(chosen) > max_ticks:
        chosen = chosen[:: int(np.ceil(len(chosen) / max_ticks))]
    target.set_major_locator(mticker.FixedLocator(chosen))
    target.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(mticker.NullFormatter())
