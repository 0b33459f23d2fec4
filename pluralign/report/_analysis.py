"""What the report's stages share: the Analysis they fill, the models' formula, table and figure helpers."""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pluralign._errors import ConvergenceWarning, PluralignWarning
from pluralign._settings import options
from pluralign.data import Study
from pluralign.report._options import ReportOptions
from pluralign.report._render import Figure, Note, Section

#: Most levels a demographic may have to enter the default model formula.
MAX_LEVELS = 12

#: Most groups of a demographic for which agreement between every pair of groups is shown.
MAX_BETWEEN = 4

#: Fewest raters of a group drawn in figures (smaller groups stay in the tables).
MIN_GROUP = 10


@dataclass
class Analysis:
    """What the stages computed, passed from stage to stage and kept for the caller.

    Attributes
    ----------
    study : Study
    dimensions, demographics : list of str
        What was analysed.
    formula : str
        Fixed effects of the models (``settings.formula``, or built from the demographics and
        ``settings.item_covariates``).
    within : list of str
        Categorical item columns within whose levels group differences are shown.
    seed : int
        Seed of every random step.
    settings : ReportOptions
        The settings the stages read (models, bootstrap size, Bayesian sampling, labels).
    sections : list of Section
        Rendered report parts, in order.
    results : dict
        Named results (``"mixed"``, ``"bayes"``, ``"agreement"``, ``"labels"``, ``"training"``...).
    problems : list of str
        Stages that were skipped or failed, with the reason.
    timings : dict
        Wall time (seconds) of each part of each stage.
    """

    study: Study
    dimensions: list[str]
    demographics: list[str]
    seed: int
    settings: ReportOptions = field(default_factory=ReportOptions)
    formula: str = ""
    within: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    results: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.formula:
            self.formula, self.within = model_formula(self.study, self.demographics, self.settings)

    def section(self, title: str, anchor: str) -> Section:
        s = Section(title, anchor)
        self.sections.append(s)
        return s

    def run(self, section: Section, what: str, fn: Callable[[], None]) -> bool:
        """Run one part of a stage; a missing optional extra or a failure becomes a visible note.

        Rows dropped and convergence problems that the called functions warn about are shown
        as notes in the section (the report is their record).
        """
        t0 = time.perf_counter()
        ok = False
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PluralignWarning)
            try:
                fn()
                ok = True
            except ImportError as exc:
                msg = f"{what} skipped: {exc}"
                section.add(Note(msg, "skipped"))
            except Exception as exc:  # shown in the report and warned, never hidden
                msg = f"{what} failed: {type(exc).__name__}: {exc}"
                section.add(Note(msg, "warning"))
        self.timings[what] = self.timings.get(what, 0.0) + time.perf_counter() - t0
        ours = []
        for w in caught:
            if issubclass(w.category, PluralignWarning):
                kind = "warning" if issubclass(w.category, ConvergenceWarning) else "info"
                ours.append((str(w.message), kind))
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        for text, kind in merge_by_dimension(ours, self.dimensions):
            section.add(Note(f"{what}: {text}", kind))
        if not ok:
            if " failed: " in msg:
                warnings.warn(msg, PluralignWarning, stacklevel=2)
            self.problems.append(msg)
        return ok


# ---------------------------------------------------------------- helpers
#: Longest note shown in full; longer ones are cut (the full text is in the warning).
MAX_NOTE = 600


def merge_by_dimension(
    messages: Sequence[tuple[str, str]], dimensions: Sequence[str]
) -> list[tuple[str, str]]:
    """One note per message that repeats for several dimensions, naming them once.

    ``messages`` are ``(text, kind)`` pairs; texts that differ only by the dimension they name
    (``dimension 'toxicity': ...`` or ``toxicity: ...``) are shown once, followed by the
    dimensions they concern. Exact repeats are dropped and notes over :data:`MAX_NOTE`
    characters are cut.

    Examples
    --------
    >>> merge_by_dimension([("a: 3 dropped", "info"), ("b: 3 dropped", "info")], ["a", "b", "c"])
    [('3 dropped (in a, b)', 'info')]
    """

    patterns = [
        (d, re.compile(rf"^(?:dimension '{re.escape(d)}'|{re.escape(d)}): "))
        for d in sorted(dimensions, key=len, reverse=True)
    ]
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for text, kind in messages:
        named, key = "", text
        for d, pattern in patterns:
            if pattern.search(text):
                named, key = d, pattern.sub("", text)
                break
        seen = groups.setdefault((key, kind), [])
        if (named, text) not in seen:
            seen.append((named, text))
    out = []
    for (key, kind), seen in groups.items():
        dims = [d for d, _ in seen if d]
        where = "every dimension" if set(dims) == set(dimensions) else ", ".join(dims)
        text = f"{key} (in {where})" if len(seen) > 1 and dims else seen[0][1]
        if len(text) > MAX_NOTE:
            text = text[: MAX_NOTE - 1].rstrip() + "… (cut; the warning has the full text)"
        out.append((text, kind))
    return out


def _default_demographics(study: Study) -> list[str]:
    table = study.rater_table("collapsed")
    out = []
    for col in study.demographics:
        n = table[col].nunique(dropna=True)
        if 2 <= n <= MAX_LEVELS:
            out.append(col)
    return out


def _formula_variables(formula: str) -> list[str]:
    from formulaic import Formula

    rhs = formula.split("~", 1)[1]
    return sorted(Formula(rhs).required_variables)


def crossed_with(formula: str, within: str, names: Sequence[str]) -> list[str]:
    """The ``names`` that share an interaction term with ``within`` in ``formula``.

    Examples
    --------
    >>> crossed_with("rating ~ gender + ideology * source_model", "source_model",
    ...              ["gender", "ideology"])
    ['ideology']
    """
    from formulaic import Formula

    terms = [{str(f) for f in term.factors} for term in Formula(formula.split("~", 1)[1])]
    return [n for n in names if any({n, within} <= t for t in terms)]


def model_formula(
    study: Study, demographics: Sequence[str], settings: ReportOptions
) -> tuple[str, list[str]]:
    """The models' fixed-effect formula and the categorical item columns to compare within.

    Without ``settings.formula``: ``rating ~`` the demographics, crossed with
    ``settings.item_covariates`` when given (``rating ~ (gender + race) * source_model``).
    The item columns compared within are ``settings.item_covariates``, else the item columns
    the formula names; numeric ones (e.g. a response length) enter the model but have no levels
    to compare within.
    """
    item_cols = [c for c in study.items.columns if c not in ("item", "prompt_id")]
    covariates = list(settings.item_covariates or ())
    for c in covariates:
        if c not in item_cols:
            raise KeyError(
                f"item_covariates: {c!r} is not a column of the items table (it has {item_cols})"
            )
    if settings.formula:
        formula = settings.formula
        if not covariates:
            covariates = [v for v in _formula_variables(formula) if v in item_cols]
    else:

        def sum_of(names: Sequence[str]) -> str:
            return " + ".join(names) if len(names) == 1 else f"({' + '.join(names)})"

        if demographics and covariates:
            rhs = f"{sum_of(demographics)} * {sum_of(covariates)}"
        else:
            rhs = " + ".join([*demographics, *covariates]) or "1"
        formula = f"rating ~ {rhs}"
    within = [
        c
        for c in covariates
        if not pd.api.types.is_numeric_dtype(study.items[c])
        and not pd.api.types.is_bool_dtype(study.items[c])
    ]
    return formula, within


def _as_study(study: Study | str | Path) -> Study:
    if isinstance(study, Study):
        return study
    from pluralign.data import read_study

    return read_study(study)


def wide_intervals(
    df: pd.DataFrame,
    value: str,
    low: str,
    high: str,
    index: Sequence[str],
    *,
    digits: int = 2,
    p: str | None = None,
    alpha: float | None = None,
) -> pd.DataFrame:
    """One row per ``index`` combination, one column per dimension: ``"estimate [low, high]"``.

    With ``p`` (a p-value column), estimates with ``p < alpha`` get a ``*``. An estimate
    without an interval (e.g. a group of one rater) reads ``"value (no interval)"``.
    """
    alpha = 1 - options.ci_prob if alpha is None else alpha

    def cell(r) -> str:
        if pd.isna(r[value]):
            return ""
        if pd.isna(r[low]) or pd.isna(r[high]):
            txt = f"{r[value]:.{digits}f} (no interval)"
        else:
            txt = f"{r[value]:.{digits}f} [{r[low]:.{digits}f}, {r[high]:.{digits}f}]"
        if p is not None and pd.notna(r[p]) and r[p] < alpha:
            txt += " *"
        return txt

    d = df.assign(_cell=df.apply(cell, axis=1))
    dims = list(pd.unique(d["dimension"]))
    out = d.pivot_table(
        index=list(index), columns="dimension", values="_cell", aggfunc="first", sort=False
    )
    return out.reindex(columns=dims).reset_index().rename_axis(columns=None).fillna("")


def _diagnostics_table(diag: pd.DataFrame) -> pd.DataFrame:
    """Diagnostics of several dimensions side by side: one row per check, one column per dimension."""
    d = diag.copy()
    d["cell"] = d["value"].map(lambda v: f"{v:.3g}") + np.where(d["ok"].astype(bool), "", " ✗")
    dims = list(pd.unique(d["dimension"]))
    out = d.pivot_table(
        index=["check", "parameter"],
        columns="dimension",
        values="cell",
        aggfunc="first",
        sort=False,
    )
    notes = d.groupby(["check", "parameter"], sort=False)["note"].first()
    out = out.reindex(columns=dims).join(notes.rename("criterion"))
    return out.reset_index().rename_axis(columns=None).fillna("")


def _figure(fig, caption: str, name: str, note: str = "") -> Figure:
    from pluralign.report._render import figure_from_matplotlib

    return figure_from_matplotlib(fig, caption, name, note=note)


def _plot(
    s: Section,
    draw: Callable,
    data,
    caption: str,
    fig_name: str,
    *,
    note: str = "",
    clear_ylabel: bool = False,
    **kw,
) -> None:
    """Draw ``data`` with the :mod:`pluralign.plots` function ``draw`` and add the figure to ``s``."""
    from matplotlib.axes import Axes

    out = draw(data, **kw)
    fig = out.figure if isinstance(out, Axes) else out  # plots return an Axes or a Figure
    if clear_ylabel:
        for ax in fig.axes:
            ax.set_ylabel("")
    s.add(_figure(fig, caption, fig_name, note))
