"""Simulation-based power analysis: draw studies from a design, fit a model, count detections."""

from __future__ import annotations

import hashlib
import inspect
import json
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from pluralign._errors import PluralignWarning
from pluralign._parallel import parallel_map
from pluralign._settings import options
from pluralign.power._design import StudyDesign
from pluralign.power._fitters import Fitter, fitter_key, fitter_truth, resolve_fitter

#: Columns of :attr:`PowerResult.table` (one row per simulation and contrast).
SIM_COLUMNS = (
    "sim",
    "term",
    "level",
    "reference",
    "truth",
    "estimate",
    "ci_low",
    "ci_high",
    "p_value",
    "detected",
    "covered",
    "n_warnings",
    "error",
    "simulate_s",
    "fit_s",
)

#: ``level`` of the family-wise rows of :attr:`PowerResult.summary`: the share of simulations
#: detecting at least one level of the factor, and every level of it.
ANY_LEVEL, ALL_LEVELS = "any level", "all levels"

#: How failed fits enter ``power``: as non-detections (``"miss"``) or left out (``"exclude"``).
FAILED_FITS = ("miss", "exclude")

#: Columns of :attr:`PowerResult.summary` (one row per contrast, then the family-wise rows).
SUMMARY_COLUMNS = (
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
    "mean_estimate",
    "bias",
    "bias_se",
    "rmse",
    "sd_estimate",
    "coverage",
    "coverage_ci_low",
    "coverage_ci_high",
)


@dataclass(frozen=True)
class PowerResult:
    """Outcome of :func:`power_analysis`: simulated detection rates of a design's contrasts.

    Attributes
    ----------
    design : StudyDesign
        The design simulated (with the tested effect).
    model : str
        Name of the fitted model.
    alpha : float
        Test level; detection is ``p_value < alpha`` (mixed) or ``1 - alpha`` HDI excluding 0
        (Bayes).
    summary : DataFrame
        SUMMARY_COLUMNS: one row per contrast (level vs reference) with the detection rate
        ``power`` and its Monte-Carlo interval ``power_ci_low, power_ci_high``,
        ``power_excluding_failures``, ``n_failed``, bias, RMSE and interval coverage of the
        estimate; then, for a factor with several non-reference levels, two family-wise rows
        (``level`` = ``"any level"`` / ``"all levels"``): the share of simulations detecting
        at least one / every level.
    table : DataFrame
        One row per simulation × contrast with SIM_COLUMNS.
    timing : dict
        Seconds spent simulating, fitting and in total (wall clock), and the number of
        simulations taken from the cache.
    mc_method : str
        Method of the Monte-Carlo intervals (statsmodels' ``proportion_confint``).
    failed_fits : {"miss", "exclude"}
        How failed fits entered ``power``: as non-detections, or left out.

    See Also
    --------
    power_analysis : Produces it.
    power_curve : Power over a range of one design quantity.
    plan_study : The smallest design reaching a target power.

    Examples
    --------
    >>> from pluralign.power import StudyDesign, power_analysis
    >>> d = StudyDesign({"gender": {"she/her": 20, "he/him": 20}}, scale="normal",
    ...                 intercept=3, item_sd=0, n_prompts=5, responses_per_prompt=2)
    >>> res = power_analysis(d, effect=0.5, n_sims=40, model="rater_means", progress=False)
    >>> lo, hi = res.power_ci
    >>> bool(lo <= res.power <= hi)
    True
    >>> "<table" in res._repr_html_()
    True
    """

    design: StudyDesign
    model: str
    alpha: float
    summary: pd.DataFrame
    table: pd.DataFrame
    timing: Mapping[str, float] = field(default_factory=dict)
    mc_method: str = "wilson"
    failed_fits: str = "miss"

    @property
    def power(self) -> float:
        """Detection rate of the first contrast."""
        return float(self.summary["power"].iloc[0])

    @property
    def power_ci(self) -> tuple[float, float]:
        """Monte-Carlo interval of :attr:`power` (first contrast)."""
        row = self.summary.iloc[0]
        return float(row["power_ci_low"]), float(row["power_ci_high"])

    def _headline(self) -> str:
        r = self.summary.iloc[0]
        return (
            f"{self.model}: power {r['power']:.3f} "
            f"[{r['power_ci_low']:.3f}, {r['power_ci_high']:.3f}] for {r['level']} vs "
            f"{r['reference']} (true {r['truth']:+.3f}); bias {r['bias']:+.4f}, coverage "
            f"{r['coverage']:.3f}; {int(r['n_sims'])} simulations ({int(r['n_failed'])} failed), "
            f"{self.design.n_raters} raters"
        )

    def __repr__(self) -> str:
        return f"<PowerResult {self._headline()}>"

    def _repr_html_(self) -> str:
        from html import escape

        shown = self.summary.round(4).to_html(index=False, na_rep="", border=0)
        return (
            f"<div><p><b>PowerResult</b> {escape(self._headline())}; test level "
            f"{self.alpha:g}, Monte-Carlo intervals: {escape(self.mc_method)}.</p>{shown}</div>"
        )


_WARNINGS_LOCK = threading.Lock()


def _fit_keywords(fitter: Any, seed: int, truth: Mapping[str, float]) -> dict[str, Any]:
    """What a fitter is given beside the study: ``seed=`` (the simulation's own seed, for
    sampling fitters) when it accepts it, and ``truth=`` (the true contrasts, for fitters that
    screen their decisions, :class:`MixedFitter`) when it names it."""
    try:
        params = inspect.signature(fitter).parameters
    except (TypeError, ValueError):
        return {}
    kw: dict[str, Any] = {}
    if "seed" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        kw["seed"] = seed
    if "truth" in params:
        kw["truth"] = dict(truth)
    return kw


def _seed_sequences(seed: int | None, n_sims: int) -> list[np.random.SeedSequence]:
    root = np.random.SeedSequence(options.seed if seed is None else seed)
    return root.spawn(n_sims)  # child i has spawn_key (i,): the same for any n_sims >= i + 1


def _run_one(
    point: int,
    design: StudyDesign,
    fitter: Fitter,
    ss: np.random.SeedSequence,
    index: int,
    truth: Mapping[str, float],
) -> tuple[int, int, list[dict[str, Any]]]:
    """Simulate and fit study ``index`` of design point ``point``; its rows of the table.

    Everything random comes from ``ss`` (the simulation's own seed sequence), so the rows are
    the same wherever the task runs."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(ss)
    study = design.simulate(rng)
    sim_seed = int(ss.generate_state(1)[0])
    t1 = time.perf_counter()
    error = ""
    # catch_warnings swaps process-wide state: fits in threads of one process (a threaded
    # backend, a Dask worker with several threads) take turns, so no warning is lost or
    # counted twice; process workers never wait here
    with _WARNINGS_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = fitter(study, **_fit_keywords(fitter, sim_seed, truth))
        except Exception as exc:  # a failed fit is a result to count, not a crash of the run
            fit, error = None, f"{type(exc).__name__}: {exc}"[:300]
    t2 = time.perf_counter()
    rows = []
    if fit is None:
        for term, lv, ref in design.contrasts:
            rows.append(
                {
                    "sim": index,
                    "term": term,
                    "level": lv,
                    "reference": ref,
                    "truth": truth.get(lv, np.nan),
                    "estimate": np.nan,
                    "ci_low": np.nan,
                    "ci_high": np.nan,
                    "p_value": np.nan,
                    "detected": np.nan,
                    "error": error,
                }
            )
    else:
        for rec in fit.to_dict("records"):
            tr = truth.get(str(rec["level"]), np.nan)
            rows.append(
                {
                    "sim": index,
                    **{
                        k: rec[k]
                        for k in (
                            "term",
                            "level",
                            "reference",
                            "estimate",
                            "ci_low",
                            "ci_high",
                            "p_value",
                        )
                    },
                    "truth": tr,
                    "detected": rec.get("detected", np.nan),
                    "error": "",
                }
            )
    for row in rows:
        row["n_warnings"] = len(caught)
        row["simulate_s"] = t1 - t0
        row["fit_s"] = t2 - t1
    return point, index, rows


def _save(cache_file: Path, rows: list[dict[str, Any]]) -> None:
    tmp = cache_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows, default=_json_default))
    tmp.replace(cache_file)  # atomic: an interrupted run leaves no half-written result


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def _cache_dir(
    cache: str | Path | None, design: StudyDesign, fitter: Fitter, seed: int | None
) -> Path | None:
    if cache is None:
        return None
    key = hashlib.sha256(
        json.dumps(
            [design.key(), fitter_key(fitter), options.seed if seed is None else seed]
        ).encode()
    ).hexdigest()[:16]
    path = Path(cache) / f"power-{key}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _rate(k: int, n: int, method: str) -> tuple[float, float, float]:
    """Share ``k / n`` with its Monte-Carlo interval at ``options.ci_prob`` (NaN when n = 0)."""
    if not n:
        return np.nan, np.nan, np.nan
    lo, hi = proportion_confint(k, n, alpha=1 - options.ci_prob, method=method)
    return k / n, float(lo), float(hi)


def _summarise(table: pd.DataFrame, mc_method: str, failed_fits: str) -> pd.DataFrame:
    rows = []
    for (term, level, ref), g in table.groupby(["term", "level", "reference"], sort=False):
        ok = g[g["error"] == ""]
        n_ok, n_failed = len(ok), len(g) - len(ok)
        k = int(ok["detected"].sum())
        power, lo, hi = _rate(k, len(g) if failed_fits == "miss" else n_ok, mc_method)
        truth = float(g["truth"].iloc[0])
        err = ok["estimate"] - truth
        cov = ok["covered"].dropna()
        coverage, clo, chi = _rate(int(cov.sum()), len(cov), mc_method)
        rows.append(
            {
                "term": term,
                "level": level,
                "reference": ref,
                "truth": truth,
                "n_sims": len(g),
                "n_failed": n_failed,
                "power": power,
                "power_ci_low": lo,
                "power_ci_high": hi,
                "power_excluding_failures": k / n_ok if n_ok else np.nan,
                "mean_estimate": ok["estimate"].mean(),
                "bias": err.mean(),
                "bias_se": ok["estimate"].std(ddof=1) / np.sqrt(n_ok) if n_ok > 1 else np.nan,
                "rmse": float(np.sqrt((err**2).mean())) if n_ok else np.nan,
                "sd_estimate": ok["estimate"].std(ddof=1) if n_ok > 1 else np.nan,
                "coverage": coverage,
                "coverage_ci_low": clo,
                "coverage_ci_high": chi,
            }
        )
    for (term, ref), g in table.groupby(["term", "reference"], sort=False):
        if g["level"].nunique() < 2:
            continue  # one contrast: the family-wise rates are its own
        per_sim = g.groupby("sim")
        failed = per_sim["error"].agg(lambda e: bool((e != "").any()))
        for name, hits in (
            (ANY_LEVEL, per_sim["detected"].any()),
            (ALL_LEVELS, per_sim["detected"].all()),
        ):
            n, n_failed = len(hits), int(failed.sum())
            k = int((hits & ~failed).sum())
            power, lo, hi = _rate(k, n if failed_fits == "miss" else n - n_failed, mc_method)
            rows.append(
                {
                    "term": term,
                    "level": name,
                    "reference": ref,
                    "truth": np.nan,
                    "n_sims": n,
                    "n_failed": n_failed,
                    "power": power,
                    "power_ci_low": lo,
                    "power_ci_high": hi,
                    "power_excluding_failures": k / (n - n_failed) if n > n_failed else np.nan,
                }
            )
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def power_analysis(
    design: StudyDesign,
    *,
    effect: float | Mapping[str, float] | None = None,
    alpha: float = 0.05,
    n_sims: int = 500,
    model: str | Fitter = "mixed",
    model_options: Mapping[str, Any] | None = None,
    seed: int | None = None,
    n_jobs: int = 1,
    backend: str | None = None,
    client: Any = None,
    progress: bool = True,
    cache: str | Path | None = None,
    mc_method: str = "wilson",
    failed_fits: Literal["miss", "exclude"] = "miss",
) -> PowerResult:
    """Estimate power by simulation: draw studies from ``design``, fit ``model``, count detections.

    Parameters
    ----------
    design : StudyDesign
        The planned study (groups, items, scale, variance components, effects).
    effect : float or mapping, optional
        Effect to test, in the design's ``effect_scale``: a float for the first non-reference
        level, or ``{level: size}``. Default: the design's ``effects``. ``0`` gives the
        false-positive rate. For an item term (``design.test``, e.g. a demographic × source
        model interaction) it sets that term's contrasts (:meth:`StudyDesign.with_effect`).
    alpha : float, default 0.05
        Two-sided test level. Built-in models report ``1 - alpha`` intervals, so ``coverage``
        is the coverage of the ``1 - alpha`` interval.
    n_sims : int, default 500
        Number of simulated studies. The Monte-Carlo SD of a power estimate is
        ``sqrt(p(1 - p)/n_sims)`` (≤ 0.022 for 500).
    model : {"mixed", "bayes", "rater_means"} or callable
        ``"mixed"``: :func:`pluralign.models.fit_mixed` (Wald p < alpha), screened by an
        approximate fit and refitted exactly near a decision (:class:`MixedFitter`). ``"bayes"``:
        :func:`pluralign.models.fit_bayes` with few draws (``model_options`` sets ``draws``,
        ``tune``, ``chains``, ``family``); detection means the ``1 - alpha`` HDI excludes 0.
        ``"rater_means"``: t test on rater means (exact without item effects, fast). A
        callable ``fit(study) -> DataFrame`` with columns ``term, level, reference, estimate,
        ci_low, ci_high, p_value`` (and optionally a boolean ``detected``); it is given
        ``seed=`` when it accepts it and ``truth=`` (the true contrasts) when it names it.
    model_options : mapping, optional
        Extra fields of the built-in fitter (e.g. ``{"draws": 200}`` for Bayes).
    seed : int, optional
        Root seed (default ``options.seed``). Simulation ``i`` uses child ``i`` of
        ``SeedSequence(seed).spawn``: independent streams, identical whatever ``n_sims`` or
        ``n_jobs`` is, so results are reproducible and extendable.
    n_jobs : int, default 1
        Parallel worker processes (joblib; -1: all cores).
    backend : {"loky", "threading", "dask"} or str, optional
        Where the simulations run (a joblib backend; default: this process when
        ``n_jobs=1``, local worker processes otherwise). ``"dask"`` sends them to the current
        :class:`dask.distributed.Client` (see the power guide's "Running on a cluster").
    client : dask.distributed.Client, optional
        Run the simulations on this Dask cluster (implies ``backend="dask"``). Results are the
        same as with ``n_jobs=1``: each simulation's seed comes from ``seed`` and its number.
    progress : bool, default True
        Show a progress bar.
    cache : str or Path, optional
        Folder for finished simulations (one JSON file per simulation under a sub-folder keyed
        by design, model and seed). A later call with the same key loads them and only runs
        the missing ones, so an interrupted run resumes and a larger ``n_sims`` extends it.
    mc_method : {"wilson", "beta", ...}
        Method of :func:`statsmodels.stats.proportion.proportion_confint` for the
        Monte-Carlo interval of power and coverage (``"beta"`` = Clopper–Pearson).
    failed_fits : {"miss", "exclude"}, default "miss"
        How a simulation whose fit failed enters ``power``: as a non-detection (a study whose
        analysis fails detects nothing), or left out of the denominator. Both rates are
        reported (``power_excluding_failures``); bias, RMSE and coverage always use the
        successful fits only.

    Returns
    -------
    PowerResult
        ``.power``, ``.power_ci``, ``.summary`` (per contrast, then family-wise) and ``.table``
        (per simulation).

    See Also
    --------
    power_curve : Power over a range of one design quantity.
    plan_study : The smallest design reaching a target power.
    analytic_power : Closed-form power of the rater-means t test.

    Notes
    -----
    Failed fits are counted in ``n_failed`` (a :class:`~pluralign.PluralignWarning` says how
    many). Leaving them out of the denominator, as ``failed_fits="exclude"`` does, overstates
    power when fits fail more often in small or low-signal studies. Warnings raised by fits
    (e.g. convergence) are counted per simulation in ``n_warnings``.

    For a factor with several non-reference levels the summary ends with two family-wise
    rows: ``"any level"`` (at least one level detected in a simulation) and ``"all levels"``
    (every level detected), each contrast tested at ``alpha`` without a multiplicity
    correction.

    Examples
    --------
    >>> d = StudyDesign({"gender": {"she/her": 20, "he/him": 20}}, scale="normal",
    ...                 intercept=3, item_sd=0, n_prompts=5, responses_per_prompt=2)
    >>> res = power_analysis(d, effect=0.5, n_sims=50, model="rater_means", progress=False)
    >>> 0 <= res.power <= 1
    True
    """
    run = _prepare(
        design,
        effect=effect,
        alpha=alpha,
        n_sims=n_sims,
        model=model,
        model_options=model_options,
        seed=seed,
        cache=cache,
        mc_method=mc_method,
        failed_fits=failed_fits,
    )
    execute([run], n_jobs=n_jobs, backend=backend, client=client, progress=progress)
    return run.result(stacklevel=3)


@dataclass
class PowerRun:
    """One design point of a power analysis, ready to run: its simulations not yet done, the
    rows of those done, and what is needed to summarise them. Several runs can share one pool of
    workers (:func:`execute`), as :func:`power_curve` does."""

    design: StudyDesign
    fitter: Fitter
    model_name: str
    truth: Mapping[str, float]
    seqs: list[np.random.SeedSequence]
    cdir: Path | None
    alpha: float
    mc_method: str
    failed_fits: str
    done: dict[int, list[dict]] = field(default_factory=dict)
    todo: list[int] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def n_sims(self) -> int:
        return len(self.seqs)

    def tasks(self, point: int) -> list[tuple]:
        """Arguments of :func:`_run_one` for every simulation still to run."""
        return [(point, self.design, self.fitter, self.seqs[i], i, self.truth) for i in self.todo]

    def result(self, stacklevel: int = 2) -> PowerResult:
        """The :class:`PowerResult` of the finished simulations."""
        return _result(self, stacklevel=stacklevel + 1)


def _prepare(
    design: StudyDesign,
    *,
    effect: float | Mapping[str, float] | None,
    alpha: float,
    n_sims: int,
    model: str | Fitter,
    model_options: Mapping[str, Any] | None,
    seed: int | None,
    cache: str | Path | None,
    mc_method: str,
    failed_fits: str,
) -> PowerRun:
    """Check the arguments, resolve the fitter and load cached simulations of one design point."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if failed_fits not in FAILED_FITS:
        raise ValueError(f"failed_fits must be one of {FAILED_FITS}, got {failed_fits!r}")
    if int(n_sims) != n_sims or n_sims < 1:
        raise ValueError(f"n_sims must be a positive integer, got {n_sims}")
    if effect is not None:
        design = design.with_effect(effect)
    fitter = resolve_fitter(model, design, alpha=alpha, options=model_options)
    model_name = getattr(fitter, "name", None) or getattr(fitter, "__name__", "custom")
    run = PowerRun(
        design=design,
        fitter=fitter,
        model_name=model_name,
        truth=fitter_truth(fitter, design),
        seqs=_seed_sequences(seed, int(n_sims)),
        cdir=_cache_dir(cache, design, fitter, seed),
        alpha=alpha,
        mc_method=mc_method,
        failed_fits=failed_fits,
    )
    if run.cdir is not None:
        for i in range(run.n_sims):
            f = run.cdir / f"sim{i:06d}.json"
            if f.exists():
                run.done[i] = json.loads(f.read_text())
    run.todo = [i for i in range(run.n_sims) if i not in run.done]
    return run


def execute(
    runs: list[PowerRun],
    *,
    n_jobs: int = 1,
    backend: str | None = None,
    client: Any = None,
    progress: bool = True,
) -> None:
    """Run the missing simulations of every run in one pool of workers (:func:`parallel_map`).

    Each run's ``wall_s`` is the wall-clock time of the whole pool.
    """
    from pluralign._compat import tqdm

    names = sorted({r.model_name for r in runs})
    bar = tqdm(
        total=sum(r.n_sims for r in runs),
        initial=sum(len(r.done) for r in runs),
        desc=f"power ({', '.join(names)})",
        disable=not progress,
        leave=False,
    )
    start = time.perf_counter()
    tasks = [t for point, r in enumerate(runs) for t in r.tasks(point)]
    for point, index, rows in parallel_map(
        _run_one, tasks, n_jobs=n_jobs, backend=backend, client=client
    ):
        runs[point].done[index] = rows
        if runs[point].cdir is not None:  # written here: cluster workers need no shared disk
            _save(runs[point].cdir / f"sim{index:06d}.json", rows)
        bar.update()
    bar.close()
    wall = time.perf_counter() - start
    for r in runs:
        r.wall_s = wall


def _result(run: PowerRun, stacklevel: int) -> PowerResult:
    alpha, n_sims, failed_fits = run.alpha, run.n_sims, run.failed_fits
    done = run.done
    table = pd.DataFrame([r for i in sorted(done) for r in done[i]])
    given = pd.to_numeric(table["detected"], errors="coerce").to_numpy(dtype=float)
    by_p = (table["p_value"] < alpha).to_numpy()
    table["detected"] = (
        np.where(np.isnan(given), by_p, given == 1) & (table["error"] == "").to_numpy()
    )
    table["covered"] = np.where(
        (table["error"] == "") & table["truth"].notna(),
        (table["ci_low"] <= table["truth"]) & (table["truth"] <= table["ci_high"]),
        np.nan,
    )
    table = table[list(SIM_COLUMNS)]
    n_failed = int(table.loc[table["error"] != "", "sim"].nunique())
    if n_failed:
        warnings.warn(
            f"{n_failed} of {n_sims} simulated fits failed; "
            + (
                "they count as non-detections in power (power_excluding_failures leaves them out); "
                if failed_fits == "miss"
                else "they are left out of power; "
            )
            + f"see result.table['error'] (first: {table.loc[table['error'] != '', 'error'].iloc[0]})",
            PluralignWarning,
            stacklevel=stacklevel,
        )
    per_sim = table.drop_duplicates("sim")
    timing = {
        "wall_s": run.wall_s,
        "simulate_s": float(per_sim["simulate_s"].sum()),
        "fit_s": float(per_sim["fit_s"].sum()),
        "n_cached": len(done) - len(run.todo),
        "n_run": len(run.todo),
    }
    summary = _summarise(table, run.mc_method, failed_fits)
    return PowerResult(
        run.design, run.model_name, alpha, summary, table, timing, run.mc_method, failed_fits
    )
