"""The study report: its stages (data, descriptive differences, agreement, labels, training; the
models are in ``_stage_models``) and the functions that run them and write the report."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from pluralign._errors import DroppedRowsWarning
from pluralign._settings import options
from pluralign.data import Study
from pluralign.labels import label_flips
from pluralign.report._analysis import (
    MAX_BETWEEN,
    MIN_GROUP,
    Analysis,
    _as_study,
    _default_demographics,
    _plot,
    crossed_with,
    wide_intervals,
)
from pluralign.report._coverage import interval_note
from pluralign.report._options import ReportOptions
from pluralign.report._render import (
    Note,
    Section,
    Table,
    Text,
    render_html,
    render_markdown,
    write_figures,
)
from pluralign.report._stage_models import stage_models

#: Label methods shown in the report, in order (``posterior`` needs a Bayesian fit).
LABEL_METHODS = ("majority", "distribution", "posterior")

#: The note under the label tables and figure.
LABEL_NOTE = (
    "No intervals and no tests: p_chosen is a share of raters (distribution), 0 or 1 "
    "(majority) or a posterior probability (posterior), so nothing is adjusted for "
    "multiplicity."
)

#: What the training intervals are and why they are not checked (the note under them).
TRAINING_INTERVALS = (
    "bootstrap intervals of the change over seeds and generations",
    "no tests, so nothing is adjusted for multiplicity; with few seeds these intervals are "
    "rough and no simulation has checked their coverage",
)


# ---------------------------------------------------------------- stages
def stage_data(a: Analysis) -> None:
    """Counts, scales, rater composition and the cleaning log."""
    st = a.study
    s = a.section("Data", "data")
    n_prompts = st.items.loc[st.items["item"].isin(st.ratings["item"]), "prompt_id"].nunique()
    counts = pd.DataFrame(
        {
            "quantity": ["ratings", "raters", "items (responses)", "prompts", "dimensions"],
            "count": [st.n_ratings, st.n_raters, st.n_items, n_prompts, len(st.dimensions)],
        }
    )
    s.add(Table(counts, "Size of the study", name="data_counts"))
    per_dim = (
        st.ratings.groupby("dimension", sort=False)
        .agg(
            ratings=("rating", "size"),
            raters=("rater", "nunique"),
            items=("item", "nunique"),
            mean=("rating", "mean"),
            sd=("rating", "std"),
        )
        .reset_index()
    )
    per_dim["scale"] = per_dim["dimension"].map(lambda d: f"{st.scales[d].min}..{st.scales[d].max}")
    per_dim["direction"] = per_dim["dimension"].map(
        lambda d: {1: "higher is better", -1: "higher is worse", 0: "undeclared"}[
            st.scales[d].desirability
        ]
    )
    s.add(Table(per_dim, "Ratings per dimension", name="data_dimensions"))
    comp = []
    table = st.rater_table("collapsed")
    table = table[table["rater"].isin(st.ratings["rater"])]
    for col in a.demographics:
        vc = table[col].value_counts(dropna=False)
        for level, n in vc.items():
            comp.append(
                {
                    "demographic": col,
                    "level": "(missing)" if pd.isna(level) else str(level),
                    "raters": int(n),
                    "share": n / len(table),
                }
            )
    if comp:
        s.add(
            Table(
                pd.DataFrame(comp),
                "Raters by demographic (multi-select values collapsed)",
                name="data_raters",
                max_rows=80,
            )
        )
    for col in st.multiselect:
        s.add(
            Note(
                f"`{col}` is multi-select: raters who chose several values are grouped as "
                f"`{options.multi_label}` in models and tables."
            )
        )
    log = st.log
    dropped = log.loc[log["table"] == "ratings", "n_rows"].sum() if len(log) else 0
    if len(log):
        s.add(
            Text(
                f"Cleaning: {len(log)} step(s) recorded in the study log; "
                f"**{int(dropped)} rating row(s) removed** in total. Each step says what was "
                "changed and why."
            )
        )
        s.add(Table(log, "Cleaning and selection log (study.log)", name="data_log", max_rows=60))
    else:
        s.add(
            Text(
                "Cleaning: the study log is empty: no row was removed or changed "
                "(**0 rating row(s) removed**)."
            )
        )


def _relative_wide(rd: pd.DataFrame, index: list[str]) -> pd.DataFrame:
    """Relative differences of the non-reference groups, one column per dimension."""
    shown = rd[~rd["is_reference"].astype(bool)]
    return wide_intervals(
        shown, "relative_pct", "relative_ci_low", "relative_ci_high", index, digits=1
    )


def _describe_note() -> str:
    return interval_note(
        "two-way cluster-robust t intervals (rater × item)",
        "no tests here, so nothing is adjusted for multiplicity",
        "describe_two_way",
    )


def stage_describe(a: Analysis) -> None:
    """Relative differences of mean ratings between demographic groups (within item levels too)."""
    s = a.section("Descriptive differences", "describe")
    s.add(
        Text(
            "Raw mean ratings of each group compared with the reference group, in percent of the "
            "reference mean counted from a rating of 0 (a ratio of means depends on where the "
            "scale starts; describe.csv also has the difference in percent of the scale's range "
            "and Cohen's d, which do not). Intervals are two-way cluster-robust (raters and "
            "items both sampled; Cameron, Gelbach & Miller 2011), t intervals. These raw means "
            "ignore who rated which item; the models below adjust for that."
        )
    )

    def run():
        from pluralign import plots
        from pluralign.describe import relative_difference

        frames = [
            relative_difference(a.study, by=demo, dimension=a.dimensions) for demo in a.demographics
        ]
        rd = pd.concat(frames, ignore_index=True)
        a.results["describe"] = rd
        s.add(
            Table(
                _relative_wide(rd, ["by", "group", "reference"]),
                "Difference of group means from the reference group, percent of the reference "
                f"mean counted from 0 ({options.ci_prob:.0%} two-way interval)",
                max_rows=80,
                name="describe_relative",
                note=_describe_note(),
            )
        )
        fig_data = rd.assign(group=rd["by"].astype(str) + ": " + rd["group"].astype(str))
        a.run(
            s,
            "Descriptive figure",
            lambda: _plot(
                s,
                plots.group_means,
                fig_data,
                "Group means relative to the reference group (percent, counted from 0), with "
                "two-way intervals",
                "relative_difference",
                note=_describe_note(),
                by="group",
                value="relative_pct",
                show_n=False,
                clear_ylabel=True,
            ),
        )

    a.run(s, "Descriptive differences", run)
    for within in a.within:
        a.run(
            s,
            f"Descriptive differences within {within}",
            partial(_describe_within, a, s, within),
        )


def _describe_within(a: Analysis, s: Section, within: str) -> None:
    """The group differences on the responses of each level of an item column."""
    from pluralign.describe import relative_difference

    # the demographics the models cross with this item column (all, if none is crossed)
    demos = crossed_with(a.formula, within, a.demographics) or a.demographics
    rd = pd.concat(
        [
            relative_difference(a.study, by=demo, dimension=a.dimensions, within=within)
            for demo in demos
        ],
        ignore_index=True,
    )
    a.results[f"describe_within_{within}"] = rd
    s.add(
        Text(
            f"The same differences on the items of each level of `{within}` (an item column): "
            "does a group rate some items' responses differently from others'?"
        )
    )
    s.add(
        Table(
            _relative_wide(rd, [within, "by", "group", "reference"]),
            f"Difference of group means from the reference group within each level of {within}, "
            f"percent of the reference mean ({options.ci_prob:.0%} two-way interval)",
            max_rows=80,
            name=f"describe_within_{within}",
            note=_describe_note(),
        )
    )


def stage_agreement(a: Analysis) -> None:
    """Krippendorff's alpha overall, within and between the groups of each demographic."""
    n_boot = a.settings.resolved_n_boot
    s = a.section("Agreement", "agreement")
    s.add(
        Text(
            "Krippendorff's alpha (ordinal) overall, within each group and between pairs of groups "
            f"(cross-group alpha, for demographics with at most {MAX_BETWEEN} groups), with bootstrap "
            f"intervals over raters and items ({n_boot} resamples). "
            "Lower agreement between groups than within them means the groups see the items "
            "differently."
        )
    )

    note = interval_note(
        f"percentile bootstrap intervals, raters and items resampled ({n_boot} resamples)",
        "no tests here, so nothing is adjusted for multiplicity",
        "agreement_alpha",
    )

    def run():
        from pluralign import plots
        from pluralign.labels import agreement

        levels = a.study.rater_table("collapsed")
        frames = [
            agreement(
                a.study,
                by=demo,
                dimension=a.dimensions,
                n_boot=n_boot,
                seed=a.seed,
                between=demo is not None and levels[demo].nunique() <= MAX_BETWEEN,
            )
            for demo in (a.demographics or [None])
        ]
        ag = pd.concat(frames, ignore_index=True)
        # the overall rows repeat once per demographic
        overall = ag["kind"] == "overall"
        ag = pd.concat(
            [ag[overall].drop_duplicates("dimension").assign(by=""), ag[~overall]],
            ignore_index=True,
        )
        a.results["agreement"] = ag
        table = wide_intervals(
            ag,
            "krippendorff_alpha",
            "krippendorff_alpha_ci_low",
            "krippendorff_alpha_ci_high",
            ["by", "kind", "group"],
        )
        n = ag.groupby(["by", "kind", "group"], sort=False)["n_raters"].max().reset_index()
        table = table.merge(n, on=["by", "kind", "group"], how="left")
        s.add(
            Table(
                table,
                f"Krippendorff's alpha [{options.ci_prob:.0%} bootstrap interval]; n_raters: raters "
                "of the group (or pair of groups)",
                max_rows=80,
                name="agreement_alpha",
                note=note,
            )
        )
        # the figure: overall and groups of at least MIN_GROUP raters, within groups only
        big = ag["kind"].eq("overall") | (ag["kind"].eq("within") & (ag["n_raters"] >= MIN_GROUP))
        fig_data = ag[big].assign(group=ag["group"].where(ag["kind"] != "overall", None))
        a.run(
            s,
            "Agreement figure",
            lambda: _plot(
                s,
                plots.agreement,
                fig_data,
                f"Krippendorff's alpha overall and within groups of at least {MIN_GROUP} raters",
                "agreement",
                note=note,
            ),
        )

    a.run(s, "Agreement", run)
    if a.demographics:
        a.run(s, "Disagreement on items", lambda: _disagreement(a, s))


#: Fewest ratings from each group for an item to enter the divergence test.
MIN_ITEM_RATINGS = 3

#: Relabellings of the divergence test (smallest p-value 1 / (N + 1)).
N_PERM = 4999


def _disagreement(a: Analysis, s: Section) -> None:
    """Items on which the largest groups of the first demographic rate differently (JSD test)."""
    from pluralign import plots
    from pluralign.labels import group_divergence

    demo = a.demographics[0]
    sizes = a.study.rater_table("collapsed")[demo].value_counts()
    big = [str(g) for g, n in sizes.items() if n >= MIN_GROUP][:3]
    if len(big) < 2:
        s.add(
            Note(
                f"Disagreement on items: `{demo}` has fewer than 2 groups of {MIN_GROUP} raters.",
                "skipped",
            )
        )
        return
    pairs = [(g, h) for i, g in enumerate(big) for h in big[i + 1 :]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DroppedRowsWarning)  # counted in the text below
        div = group_divergence(
            a.study,
            demo,
            dimension=a.dimensions,
            groups=pairs,
            min_ratings=MIN_ITEM_RATINGS,
            n_perm=N_PERM,
            n_boot=a.settings.resolved_n_boot,
            seed=a.seed,
        )
    a.results["divergence"] = div
    dropped = div.attrs.get("dropped", 0)
    s.add(
        Text(
            f"Disagreement on items: for each item rated at least {MIN_ITEM_RATINGS} times by "
            f"both groups of a pair of `{demo}` groups ({', '.join(f'{g} vs {h}' for g, h in pairs)}), "
            "the Jensen–Shannon divergence between the two groups' ratings, corrected for its "
            "small-sample bias (so it scatters around 0, below 0 too, when groups agree), and a "
            f'permutation test of "the groups rate the item alike" ({len(div)} item × pair rows; '
            f"{dropped} left out for too few ratings)."
        )
    )
    if div.empty:
        return
    note = interval_note(
        "bias-corrected percentile bootstrap intervals of the JSD",
        f"p_adjusted: Benjamini–Hochberg over the items of each dimension × pair ({N_PERM} "
        "relabellings per test)",
        ("jsd_interval", "jsd_interval_shifted", "jsd_bh"),
    )
    top = div.sort_values(["p_adjusted", "jsd"], ascending=[True, False]).head(10)
    cols = ["dimension", "group_a", "group_b", "item", "n_a", "n_b", "mean_a", "mean_b", "jsd"]
    s.add(
        Table(
            top[[*cols, "ci_low", "ci_high", "p_value", "p_adjusted"]],
            "The 10 item × pair rows with the strongest evidence of disagreement",
            name="divergence_top",
            note=note,
        )
    )
    first = div[div["dimension"] == a.dimensions[0]]
    if len(first):
        _plot(
            s,
            plots.divergence_heatmap,
            first,
            f"Bias-corrected divergence between groups of {demo} on the most divisive items "
            f"of {a.dimensions[0]}",
            "divergence",
            note=note,
        )


def _label_dimensions(a: Analysis) -> list[str]:
    """Dimensions with a declared direction (the others cannot say which response is better)."""
    return [d for d in a.dimensions if a.study.scale(d).desirability != 0]


def stage_labels(a: Analysis, methods: Sequence[str] = LABEL_METHODS) -> None:
    """Preference labels built from ratings by each method, and how they flip between groups.

    ``a.settings.posterior_draws`` and ``posterior_prompts`` bound the cost of posterior labels
    (posterior draws used; number of prompts labelled, None for all).
    """
    posterior_draws = a.settings.posterior_draws
    posterior_prompts = a.settings.posterior_prompts
    s = a.section("Preference labels", "labels")
    s.add(
        Text(
            "Every pair of responses to the same prompt gets a label from the raters' scores "
            "(the direction-weighted mean of the dimensions used). `majority`: a hard label, the "
            "response most raters prefer; `distribution`: the share of raters preferring it (a soft "
            "label); `posterior`: the Bayesian model's probability that the population prefers it."
        )
    )
    dims = _label_dimensions(a)
    if not dims:
        s.add(
            Note(
                "No analysed dimension declares whether higher ratings are better "
                "(Scale.more_is_better), so responses cannot be ranked.",
                "skipped",
            )
        )
        return
    s.add(Text(f"Dimensions combined into the score: {', '.join(f'`{d}`' for d in dims)}."))

    def run():
        from pluralign import plots
        from pluralign.labels import preference_labels

        rows, tables = [], {}
        for method in methods:
            fit = None
            use = dims
            source = a.study
            if method == "posterior":
                if "bayes" not in a.results:
                    s.add(
                        Note(
                            "Posterior labels need a Bayesian fit (models=('mixed', 'bayes')).",
                            "skipped",
                        )
                    )
                    continue
                fit = a.results["bayes"]
                use = [d for d in fit.dimensions if d in dims] or list(fit.dimensions)
                # the model knows only items rated on its dimension(s)
                rated = a.study.ratings.loc[a.study.ratings["dimension"].isin(use), "item"]
                items = a.study.items[a.study.items["item"].isin(rated)]
                prompts = list(pd.unique(items["prompt_id"]))
                if posterior_prompts is not None and len(prompts) > posterior_prompts:
                    keep = prompts[:posterior_prompts]
                    items = items[items["prompt_id"].isin(keep)]
                    s.add(
                        Note(
                            f"Posterior labels are computed for the first {posterior_prompts} of "
                            f"{len(prompts)} prompts, with {posterior_draws} posterior draws, to "
                            "keep this run short."
                        )
                    )
                source = a.study.subset(dimensions=use, items=list(items["item"]))
                source = source.replace(items=items.reset_index(drop=True))
            extra = {"n_draws": posterior_draws} if method == "posterior" else {}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DroppedRowsWarning)  # counted in the table below
                lab = preference_labels(
                    source, method=method, dimensions=use, fit=fit, seed=a.seed, **extra
                )
            t = lab.table
            tables[method] = lab
            p = t["p_chosen"].astype(float)
            rows.append(
                {
                    "method": method,
                    "dimensions": ", ".join(use),
                    "pairs": len(t),
                    "prompts": t["prompt_id"].nunique(),
                    "mean p_chosen": p.mean(),
                    "share p ≥ 0.8": (p >= 0.8).mean(),
                    "share p < 0.6": (p < 0.6).mean(),
                    "pairs dropped": lab.n_dropped,
                }
            )
            if len(lab.dropped):
                a.results.setdefault("labels_dropped", []).append(lab.dropped.assign(method=method))
        a.results["labels"] = tables
        s.add(Table(pd.DataFrame(rows), "Labels by method", name="labels_summary", note=LABEL_NOTE))
        if "labels_dropped" in a.results:
            dropped = pd.concat(a.results["labels_dropped"], ignore_index=True)
            s.add(
                Table(
                    dropped[["method", "reason", "n", "examples"]],
                    "Pairs or rows left out",
                    name="labels_dropped",
                )
            )
        a.run(
            s,
            "Label figure",
            lambda: _plot(
                s,
                plots.soft_labels,
                list(tables.values()),
                "Confidence of the labels: probability that the chosen response is preferred",
                "soft_labels",
                note=LABEL_NOTE,
            ),
        )
        method, first = next(iter(tables.items()))
        cols = [
            c
            for c in (
                "prompt_id",
                "item_a",
                "item_b",
                "p_a",
                "p_sd",
                "n_comparisons",
                "comparison",
                "chosen_item",
                "p_chosen",
            )
            if c in first.table.columns
        ]
        s.add(
            Table(
                first.table[cols],
                f"Example labels ({method})",
                max_rows=8,
                name="labels_examples",
                note=LABEL_NOTE,
            )
        )

    a.run(s, "Preference labels", run)
    if "labels" in a.results:
        a.run(s, "Label flips", lambda: _flips(a, s, dims))


def _flips(a: Analysis, s: Section, dims: list[str]) -> None:
    fl = pd.concat(
        [label_flips(a.study, demo, dimensions=dims) for demo in a.demographics], ignore_index=True
    )
    a.results["flips"] = fl
    s.add(
        Text(
            "Label flips: for each group (10 raters or more), labels from that group's ratings alone "
            "(`distribution` method) compared pair by pair with everyone's. A flip is a pair where "
            "the group prefers the other response."
        )
    )
    s.add(
        Table(
            fl,
            "Label flips between each group and everyone",
            max_rows=60,
            name="label_flips",
            note="No intervals and no tests: flips are counts of pairs, so nothing is adjusted "
            "for multiplicity; a small group flips more pairs by chance alone.",
        )
    )


def stage_training(
    a: Analysis, training: pd.DataFrame | None, runner: Callable[[], pd.DataFrame] | None = None
) -> None:
    """Results of the training grid (``pluralign.train.run_grid``), given or produced by ``runner``."""
    s = a.section("Training", "training")
    if runner is not None:
        got = {}

        def run():
            got["grid"] = runner()

        if not a.run(s, "Tiny-model training", run):
            return
        training = got["grid"]
    if training is None:
        s.add(Note("No training results were given (pass `training=run_grid(...)`).", "skipped"))
        return
    a.results["training"] = training
    level = training["ci_prob"].iloc[0] if "ci_prob" in training.columns else None
    note = interval_note(*TRAINING_INTERVALS, ci_prob=level)
    s.add(
        Text(
            "Each condition trains a model on labels made one way (which raters, scale, aggregation, "
            "optimiser) and judges its answers to held-out prompts per group and dimension: "
            "`baseline` is the untrained model's mean judged rating, `trained` the trained model's, "
            "`change` their difference with a bootstrap interval (over seeds and generations). The "
            "`reward` row is the combined score used to build the labels (higher is better)."
        )
    )
    cols = [
        c
        for c in (
            "train_group",
            "scale",
            "aggregation",
            "optimizer",
            "dimension",
            "group",
            "baseline",
            "trained",
            "change",
            "change_ci_low",
            "change_ci_high",
            "n_seeds",
            "n_generations",
        )
        if c in training.columns
    ]
    s.add(
        Table(
            training[cols] if cols else training,
            "Training grid results",
            max_rows=60,
            name="training_grid",
            note=note,
        )
    )
    from pluralign import plots

    a.run(
        s,
        "Training figure",
        lambda: _plot(
            s,
            plots.training_results,
            training,
            "Change of the judged rating after training, by training condition and judging group",
            "training",
            note=note,
        ),
    )


# ---------------------------------------------------------------- entry point
def _settings(settings: ReportOptions | None, shortcuts: dict) -> ReportOptions:
    base = ReportOptions() if settings is None else settings
    if not isinstance(base, ReportOptions):
        raise TypeError(f"settings must be a ReportOptions, got {type(base).__name__}")
    return base.replace(**shortcuts) if shortcuts else base


def analyse(
    study: Study | str | Path,
    *,
    settings: ReportOptions | None = None,
    training: pd.DataFrame | None = None,
    **shortcuts,
) -> Analysis:
    """Run every report stage and return what they computed, without writing files.

    Parameters
    ----------
    study : Study or path
        The study, or a path that :func:`pluralign.read_study` reads.
    settings : ReportOptions, optional
        What to analyse and how (default ``ReportOptions()``).
    training : DataFrame, optional
        Output of :func:`pluralign.train.run_grid`, shown as the training section.
    **shortcuts
        Fields of :class:`ReportOptions` overriding ``settings`` (e.g. ``models=("mixed",)``).

    Returns
    -------
    Analysis
        The sections, named results, problems and timings; :func:`write` renders it.

    See Also
    --------
    write_report : Runs this and writes the report.
    save_tables, save_figures : Write its tables and figures one file each.

    Examples
    --------
    >>> from pluralign.data import simulate_study
    >>> study = simulate_study(n_raters=60, seed=1).study
    >>> a = analyse(study, dimensions=["toxicity"], labels=False, n_boot=20)
    >>> [s.anchor for s in a.sections]
    ['data', 'describe', 'models', 'agreement', 'training']
    """
    cfg = _settings(settings, shortcuts)
    study = _as_study(study)
    dims = list(cfg.dimensions) if cfg.dimensions else study.dimensions
    for d in dims:
        study.scale(d)
    demos = list(cfg.demographics) if cfg.demographics is not None else _default_demographics(study)
    for d in demos:
        if d not in study.demographics:
            raise KeyError(f"unknown demographic {d!r}; the raters table has {study.demographics}")
    a = Analysis(study, dims, demos, cfg.resolved_seed, cfg)
    stage_data(a)
    stage_describe(a)
    stage_models(a)
    stage_agreement(a)
    if cfg.labels:
        stage_labels(a)
    stage_training(a, training)
    return a


def write(a: Analysis, out: str | Path, *, title: str | None = None) -> Path:
    """Write ``report.html`` (self-contained) and ``report.md`` (+ ``figures/``) into ``out``.

    ``title`` defaults to ``a.settings.title``, else ``"pluralign report: <study name>"``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    title = title or a.settings.title or f"pluralign report: {a.study.name}"
    st = a.study
    subtitle = (
        f"{st.n_ratings:,} ratings by {st.n_raters:,} raters of {st.n_items:,} items; "
        f"dimensions: {', '.join(a.dimensions)}; demographics: {', '.join(a.demographics) or 'none'}; "
        f"seed {a.seed}."
    )
    if a.problems:
        summary = Section("Stages skipped or failed", "problems")
        for p in a.problems:
            summary.add(Note(p, "warning" if " failed: " in p else "skipped"))
        sections = [summary, *a.sections]
    else:
        sections = a.sections
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    from pluralign import __version__

    footer = f"Generated by pluralign {__version__} on {stamp}."
    html_path = out / "report.html"
    html_path.write_text(render_html(title, subtitle, sections, footer), encoding="utf-8")
    write_figures(sections, out / "figures")
    (out / "report.md").write_text(
        render_markdown(title, subtitle, sections, "figures", footer), encoding="utf-8"
    )
    saved = ("mixed_effects", "bayes_effects", "describe", "agreement", "divergence", "flips")
    for name in (*saved, "training"):
        obj = a.results.get(name)
        if isinstance(obj, pd.DataFrame):
            obj.to_csv(out / f"{name}.csv", index=False)
    return html_path


def save_figures(a: Analysis, out: str | Path) -> list[Path]:
    """Write every figure of an analysis as ``out/NAME.png``; returns the paths."""
    return write_figures(a.sections, Path(out))


def save_tables(a: Analysis, out: str | Path) -> list[Path]:
    """Write every table of an analysis as ``out/NAME.csv``, all of them in ``tables.md``, and the
    full result frames behind them as ``out/results_NAME.csv``."""
    from pluralign.data import slug

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths, md = [], []
    for s in a.sections:
        for b in s.blocks:
            if isinstance(b, Table):
                name = b.name or f"{s.anchor}_{slug(b.caption).lower()}"[:60]
                path = out / f"{name}.csv"
                b.frame.to_csv(path, index=False)
                paths.append(path)
                full = dataclasses.replace(b, max_rows=len(b.frame))
                md.append(
                    render_markdown(
                        b.caption, f"`{path.name}`", [Section(s.title, s.anchor, [full])]
                    )
                )
    (out / "tables.md").write_text("\n\n".join(md), encoding="utf-8")
    paths.append(out / "tables.md")
    for key, obj in a.results.items():  # the full results behind the formatted tables
        if isinstance(obj, pd.DataFrame):
            path = out / f"results_{key}.csv"
            obj.to_csv(path, index=False)
            paths.append(path)
    return paths


def write_report(
    study: Study | str | Path,
    *,
    out: str | Path,
    settings: ReportOptions | None = None,
    training: pd.DataFrame | None = None,
    **shortcuts: Any,
) -> Path:
    """Write a self-contained HTML report of a study, and a markdown twin.

    Sections: data summary (counts, composition and every cleaning step from ``study.log``),
    descriptive differences between groups, model effects with diagnostics, inter-rater
    agreement, preference labels (summary by method and label flips between groups) and
    training results. A stage whose optional extra is missing, or that fails, is shown as a
    note in the report (and failures are warned) instead of stopping the report.

    Parameters
    ----------
    study : Study or path
        The study, or a path that :func:`pluralign.read_study` reads.
    out : str or Path
        Folder to write ``report.html``, ``report.md``, ``figures/*.png`` and result CSVs into.
    settings : ReportOptions, optional
        What to analyse and how: dimensions, demographics, models, labels, bootstrap size,
        seed and the Bayesian model's sampling (default ``ReportOptions()``).
    training : DataFrame, optional
        Output of :func:`pluralign.train.run_grid`, shown as the training section.
    **shortcuts
        Fields of :class:`ReportOptions` overriding ``settings``, e.g.
        ``dimensions=["toxicity"]``, ``models=("mixed", "bayes")``, ``draws=500``.

    Returns
    -------
    Path
        The HTML report.

    See Also
    --------
    ReportOptions : Every setting, documented.
    analyse : The same stages without writing files.
    run_demo : The whole pipeline on a simulated study.

    Examples
    --------
    >>> import tempfile
    >>> from pluralign.data import simulate_study
    >>> study = simulate_study(n_raters=60, seed=1).study
    >>> path = write_report(study, out=tempfile.mkdtemp(), dimensions=["toxicity"],
    ...                     labels=False, n_boot=20)
    >>> path.name
    'report.html'
    """
    a = analyse(study, settings=settings, training=training, **shortcuts)
    return write(a, out)
