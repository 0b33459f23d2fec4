"""A grid of alignment runs: who labels (group) × scale × label aggregation × optimiser, judged per group.

Each condition trains a fresh model per seed on labels built from the study, generates answers to
held-out prompts, and judges them per rater group and dimension; the table compares the trained
model's mean judged score with the untrained (same seed) model's.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pluralign._compat import tqdm
from pluralign._errors import DroppedRowsWarning
from pluralign._parallel import parallel_map
from pluralign._settings import options
from pluralign.data import Population, Study
from pluralign.labels import preference_labels, rescale, reward_function
from pluralign.train._config import quiet_datasets, turn, uses_chat
from pluralign.train._dpo import train_dpo
from pluralign.train._evaluate import SUMMARY_COLUMNS, generate, judge_scores, summarise_runs
from pluralign.train._grpo import train_grpo

#: Budgets of :func:`run_grid` (override per key through ``config``). Sized for the tiny model on
#: a CPU: enough steps and a large enough learning rate that a random-initialised model's answers
#: move, while a condition × seed takes a few seconds.
GRID_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "dpo": {
        "max_steps": 30,
        "learning_rate": 5e-3,
        "per_device_train_batch_size": 8,
        "beta": 0.1,
        "max_length": 256,
        "lr_scheduler_type": "constant",
    },
    "grpo": {
        "max_steps": 30,
        "learning_rate": 3e-3,
        "per_device_train_batch_size": 8,
        "num_generations": 4,
        "max_completion_length": 24,
        "lr_scheduler_type": "constant",
    },
    "eval": {"n_prompts": 16, "n_generations": 4, "max_new_tokens": 32, "temperature": 1.0},
    "summary": {"n_boot": 1000},
}

#: Columns naming a condition of :func:`run_grid`.
CONDITION_COLUMNS = ("train_group", "scale", "aggregation", "optimizer")

#: Columns of :func:`run_grid`'s table.
GRID_COLUMNS = (*CONDITION_COLUMNS, *SUMMARY_COLUMNS)
SCALES = ("5-point", "binary", "3-point")
AGGREGATIONS = ("majority", "distribution", "posterior")
OPTIMIZERS = ("dpo_soft", "dpo_hard", "grpo")


def _is_margins(value: Any) -> bool:
    """``{"she/her": 0.5, "he/him": 0.5}``: the shares of one margin of a population."""
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value.values())
    )


def _is_label_map(groups: Any) -> bool:
    """A dict label → population (values None, Populations, frames or group mappings).

    A population given as margins (``{"gender": {"she/her": 0.5, ...}}``) is not a label map.
    """
    return isinstance(groups, Mapping) and all(
        v is None
        or isinstance(v, Population | pd.DataFrame)
        or (isinstance(v, Mapping) and not _is_margins(v))
        for v in groups.values()
    )


def _groups(groups: Any) -> dict[str, Population]:
    """Label → Population of each training / judging group (labels: ``Population.label``)."""
    if groups is None or isinstance(groups, Population | pd.DataFrame):
        groups = [groups]
    elif isinstance(groups, Mapping) and not _is_label_map(groups):
        groups = [groups]
    if _is_label_map(groups):
        return {str(k): Population.parse(v) for k, v in groups.items()}
    out: dict[str, Population] = {}
    for g in groups:
        population = Population.parse(g)
        if population.label in out:
            raise ValueError(
                f"two groups are both labelled {population.label!r}; pass groups as a dict "
                "label -> population to tell them apart"
            )
        out[population.label] = population
    return out


def _merge_config(config: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    merged = {k: dict(v) for k, v in GRID_DEFAULTS.items()}
    for key, value in (config or {}).items():
        if key not in merged:
            raise KeyError(f"config has unknown section {key!r}; sections are {sorted(merged)}")
        merged[key].update(value)
    return merged


def _held_out(study: Study, n_prompts: int) -> tuple[Study, list[str]]:
    """Hold out ``n_prompts`` prompts (fixed seed) for evaluation and train on the others."""
    items = study.items.drop_duplicates("item")
    prompt_ids = items["prompt_id"].drop_duplicates().to_numpy()
    if len(prompt_ids) <= n_prompts:
        raise ValueError(
            f"the study has {len(prompt_ids)} prompts; holding out {n_prompts} for evaluation "
            "leaves none to train on: pass eval_prompts or lower config['eval']['n_prompts']"
        )
    rng = np.random.default_rng(options.seed)
    held = set(rng.choice(prompt_ids, size=n_prompts, replace=False).tolist())
    texts = items[items["prompt_id"].isin(held)].drop_duplicates("prompt_id")["prompt"].tolist()
    train_items = items.loc[~items["prompt_id"].isin(held), "item"].tolist()
    return study.subset(items=train_items), texts


def _model_factory(model: Any, study: Study) -> Callable[[int], tuple[Any, Any]]:
    from pluralign.train._models import load_model, tiny_model

    if callable(model):
        return model
    if model == "tiny":
        texts = pd.unique(pd.concat([study.items["prompt"], study.items["response"]])).tolist()
        # a 1024-token vocabulary trained on the study's texts halves sequence lengths (4x faster steps)
        return lambda seed: tiny_model(seed=seed, texts=texts, vocab_size=1024)
    return lambda seed: load_model(model)


def _conversational(dataset: Any) -> Any:
    """Plain-text preference pairs as chat messages, so training matches chat-template generation."""

    def convert(example: dict[str, Any]) -> dict[str, Any]:
        return {
            "prompt": turn(example["prompt"]),
            "chosen": turn(example["chosen"], "assistant"),
            "rejected": turn(example["rejected"], "assistant"),
        }

    if isinstance(dataset[0]["prompt"], str):
        dataset = dataset.map(convert)
    return dataset


def _hard(dataset: Any) -> Any:
    """Hard labels: the more-preferred response becomes ``chosen`` with ``p_chosen = 1``; ties dropped."""
    frame = dataset.to_pandas()
    p = frame["p_chosen"].to_numpy(dtype=float)
    ties = np.isclose(p, 0.5)
    if ties.any():
        warnings.warn(
            f"hard labels: dropped {int(ties.sum())} of {len(frame)} pairs with p_chosen = 0.5 (no "
            "majority)",
            DroppedRowsWarning,
            stacklevel=3,
        )
    swap = p < 0.5
    frame.loc[swap, ["chosen", "rejected"]] = frame.loc[swap, ["rejected", "chosen"]].to_numpy()
    frame["p_chosen"] = 1.0
    return type(dataset).from_pandas(frame[~ties].reset_index(drop=True), preserve_index=False)


def _fingerprint(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=repr)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _slug(values: Sequence[Any]) -> str:
    raw = "__".join(str(v) for v in values)
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in raw)
    return f"{safe[:80]}-{hashlib.sha1(raw.encode()).hexdigest()[:8]}"


def run_grid(
    study: Any,
    *,
    groups: Any = None,
    scales: Sequence[str] = ("5-point",),
    aggregations: Sequence[str] = ("distribution",),
    optimizers: Sequence[str] = ("dpo_soft",),
    model: Any = "tiny",
    eval_prompts: Sequence[str] | None = None,
    judge: Any = None,
    seeds: Sequence[int] = (0, 1),
    out: str | Path | None = None,
    config: Mapping[str, Mapping[str, Any]] | None = None,
    dimensions: Sequence[str] | None = None,
    weights: Mapping[str, float] | None = None,
    fit: Any = None,
    labeller: Callable[..., Any] | None = None,
    rewarder: Callable[..., Any] | None = None,
    progress: bool = True,
    n_jobs: int = 1,
    backend: str | None = None,
    client: Any = None,
) -> pd.DataFrame:
    """Train one model per condition and seed, judge its answers per group, compare with baseline.

    Conditions are the product of ``groups`` (whose ratings make the labels) × ``scales``
    (``"5-point"`` = as rated, ``"binary"``/``"3-point"`` via :func:`pluralign.labels.rescale`) ×
    ``aggregations`` (``"majority"``, ``"distribution"``, ``"posterior"`` preference labels via
    :func:`pluralign.labels.preference_labels`) × ``optimizers`` (``"dpo_soft"``: soft-label DPO
    on ``p_chosen``; ``"dpo_hard"``: DPO on the majority direction with ``p = 1``; ``"grpo"``:
    GRPO on :func:`pluralign.labels.reward_function`, which does not use an aggregation, so GRPO
    runs once per group × scale with aggregation ``"reward"``, or ``"posterior"`` when ``fit`` is
    given).

    Every seed gets its own initial model (``model`` built with that seed), its baseline (the
    untrained model's answers) and the same sampling seed for baseline and trained answers.

    Parameters
    ----------
    study : Study or SimulatedStudy
    groups : population, list of populations, or dict label → population
        Anything :meth:`Population.parse <pluralign.data.Population.parse>` accepts: ``None``
        (everyone), ``{"gender": "she/her"}`` (a group or intersection), margins or a
        post-stratification frame. Tables name each by :attr:`Population.label` (``"everyone"``
        for the whole population) unless a dict gives the labels. Trained models are judged
        for every group listed.
    scales, aggregations, optimizers : sequence of str
    model : "tiny", a path / Hugging Face id in the local cache, or callable ``seed -> (model, tokenizer)``
    eval_prompts : list of str, optional
        Held-out prompts. If None, ``config["eval"]["n_prompts"]`` of the study's prompts are
        held out (fixed seed) and the labels come from the other prompts' items only.
    judge : callable or object with ``.score``, optional
        ``judge(texts, group=spec)`` → scores per text and dimension (see
        :func:`~pluralign.train._evaluate.judge_scores` for accepted shapes). Default: the
        text-level rating predictor ``pluralign.labels.reward_function(train_study,
        dimensions=dimensions).score``.
    seeds : sequence of int
    out : path, optional
        Folder for results: one parquet per finished condition × seed (``runs/``), baselines
        (``baseline/``) and ``summary.parquet``. Finished runs found there are skipped, so an
        interrupted grid resumes; a ``manifest.json`` guards against resuming with other settings.
    config : dict, optional
        Overrides per section of :data:`GRID_DEFAULTS`: ``"dpo"`` and ``"grpo"`` (TRL config
        fields), ``"eval"`` (``n_prompts``, ``n_generations``, ``max_new_tokens``,
        ``temperature``), ``"summary"`` (``n_boot``).
    dimensions, weights :
        Passed to the labels and reward functions (which dimensions make a preference, and their
        weights).
    fit : BayesResult, optional
        Needed for ``"posterior"`` labels.
    labeller, rewarder : callable, optional
        Replace :func:`pluralign.labels.preference_labels` / :func:`pluralign.labels.reward_function`
        (same signatures).
    progress : bool
        Show a progress bar.
    n_jobs : int, default 1
        Worker processes training conditions × seeds side by side (joblib; -1: all cores).
    backend : {"loky", "dask"} or str, optional
        Where the runs happen (a joblib backend; ``"dask"``: the current
        :class:`dask.distributed.Client`). The results do not depend on it: every run is
        seeded by its seed. Finished runs are written to ``out`` by this process, so cluster
        workers need no access to it. Use process workers: concurrent runs in threads of
        one process would share torch's global random state.
    client : dask.distributed.Client, optional
        Run on this Dask cluster (implies ``backend="dask"``).

    Returns
    -------
    DataFrame
        Columns :data:`GRID_COLUMNS`: ``train_group, scale, aggregation, optimizer, dimension,
        group, baseline, trained, change, change_ci_low, change_ci_high, reduction_pct,
        reduction_pct_ci_low, reduction_pct_ci_high, n_seeds, n_generations, ci_prob``.
        ``group`` is the judge's group; ``reduction_pct = -100 · change / |baseline|``; CIs come
        from a bootstrap over seeds and, within seeds, over generations.

    See Also
    --------
    pluralign.labels.preference_labels, pluralign.labels.reward_function : the training signals.
    pluralign.plots.training_results : plots the table.

    Examples
    --------
    >>> from pluralign.data import simulate_study
    >>> study = simulate_study(seed=1, n_raters=200, n_prompts=30).study  # doctest: +SKIP
    >>> table = run_grid(study, groups=[None, {"gender": "she/her"}],
    ...                  optimizers=["dpo_soft", "dpo_hard"], seeds=[0, 1])  # doctest: +SKIP
    """
    study = getattr(study, "study", study)
    if not isinstance(study, Study):
        raise TypeError(f"study must be a Study or SimulatedStudy, got {type(study).__name__}")
    cfg = _merge_config(config)
    for name, values, allowed in (
        ("scales", scales, SCALES),
        ("aggregations", aggregations, AGGREGATIONS),
        ("optimizers", optimizers, OPTIMIZERS),
    ):
        bad = [v for v in values if v not in allowed]
        if bad:
            raise ValueError(f"{name} {bad} not understood; choose from {list(allowed)}")
    if "posterior" in aggregations and fit is None:
        raise ValueError("aggregation 'posterior' needs fit= (a pluralign.models.fit_bayes result)")
    group_map = _groups(groups)

    labeller = labeller or preference_labels
    rewarder = rewarder or reward_function

    if eval_prompts is None:
        train_study, eval_prompts = _held_out(study, int(cfg["eval"]["n_prompts"]))
    else:
        train_study, eval_prompts = study, [str(p) for p in eval_prompts]
    if judge is None:
        judge = rewarder(train_study, dimensions=dimensions, seed=options.seed)

    conditions = []
    for g_label in group_map:
        for scale in scales:
            for opt in optimizers:
                aggs = (
                    aggregations
                    if opt != "grpo"
                    else ["posterior" if fit is not None else "reward"]
                )
                for agg in aggs:
                    cond = dict(zip(CONDITION_COLUMNS, (g_label, scale, agg, opt), strict=True))
                    if cond not in conditions:
                        conditions.append(cond)

    factory = _model_factory(model, train_study)
    ev = cfg["eval"]
    out_dir = Path(out) if out is not None else None
    if out_dir is not None:
        (out_dir / "runs").mkdir(parents=True, exist_ok=True)
        (out_dir / "baseline").mkdir(parents=True, exist_ok=True)
        manifest = {
            "fingerprint": _fingerprint(
                cfg,
                repr(model) if not callable(model) else getattr(model, "__name__", "callable"),
                list(eval_prompts),
                dimensions,
                weights,
                study.n_ratings,
                study.n_items,
            )
        }
        path = out_dir / "manifest.json"
        if path.exists() and json.loads(path.read_text())["fingerprint"] != manifest["fingerprint"]:
            raise ValueError(
                f"{out_dir} holds a grid run with other settings (config, model, prompts or study); "
                "use another out folder or delete it to start afresh"
            )
        path.write_text(json.dumps(manifest))

    def judged(frame: pd.DataFrame) -> pd.DataFrame:
        parts = []
        for label, spec in group_map.items():
            sc = judge_scores(judge, frame["text"].tolist(), spec)
            sc["group"] = label
            parts.append(sc)
        scores = pd.concat(parts, ignore_index=True)
        keyed = frame[["prompt_idx", "gen_idx", "text"]].reset_index(drop=True)
        return scores.join(keyed, on="row").drop(columns="row")

    def evaluate(trained_model: Any, tokenizer: Any, seed: int) -> pd.DataFrame:
        gens = generate(
            trained_model,
            tokenizer,
            eval_prompts,
            n_generations=int(ev["n_generations"]),
            max_new_tokens=int(ev["max_new_tokens"]),
            temperature=float(ev["temperature"]),
            seed=seed,
        )
        return judged(gens)

    def baseline_for(seed: int) -> pd.DataFrame:
        base_model, tok = factory(seed)
        frame = evaluate(base_model, tok, seed)
        frame["seed"] = seed
        return frame

    def train_one(cond: dict[str, Any], seed: int) -> pd.DataFrame:
        spec = group_map[cond["train_group"]]
        data_study = train_study
        if cond["scale"] != "5-point":
            data_study = rescale(train_study, to=cond["scale"], seed=seed)
        policy, tok = factory(seed)
        if cond["optimizer"] == "grpo":
            source = fit if cond["aggregation"] == "posterior" else data_study
            extra = {"study": data_study} if source is fit else {}  # a fit holds no texts
            reward = rewarder(
                source, group=spec, dimensions=dimensions, weights=weights, seed=seed, **extra
            )
            prompts = data_study.items.drop_duplicates("prompt_id")["prompt"].tolist()
            result = train_grpo(
                prompts,
                {"rating": reward},
                model=policy,
                tokenizer=tok,
                config={**cfg["grpo"], "seed": seed},
            )
        else:
            labels = labeller(
                data_study,
                method=cond["aggregation"],
                group=spec,
                dimensions=dimensions,
                weights=weights,
                fit=fit,
                seed=seed,
            )
            dataset = labels.to_dataset() if hasattr(labels, "to_dataset") else labels
            if cond["optimizer"] == "dpo_hard":
                dataset = _hard(dataset)
            dataset = _conversational(dataset) if uses_chat(tok) else dataset
            result = train_dpo(dataset, policy, tok, config={**cfg["dpo"], "seed": seed})
        frame = evaluate(result.model, tok, seed)
        frame["seed"] = seed
        frame["train_loss"] = result.metrics.get("train_loss", np.nan)
        for key, value in cond.items():
            frame[key] = value
        return frame

    with quiet_datasets():  # the grid shows its own progress bar
        runs = _loop(
            seeds,
            conditions,
            out_dir,
            baseline_for,
            train_one,
            progress=progress,
            n_jobs=n_jobs,
            backend=backend,
            client=client,
        )
    scores = pd.concat(runs, ignore_index=True)
    table = summarise_runs(scores, CONDITION_COLUMNS, n_boot=int(cfg["summary"]["n_boot"]))
    table = table[list(GRID_COLUMNS)]
    if out_dir is not None:
        table.to_parquet(out_dir / "summary.parquet", index=False)
    return table


def _call(func: Callable[..., pd.DataFrame], key: tuple, *args: Any) -> tuple[tuple, pd.DataFrame]:
    """``(key, func(*args))``: a task of :func:`parallel_map` that says which one it was."""
    return key, func(*args)


def _loop(
    seeds: Sequence[int],
    conditions: list[dict[str, Any]],
    out_dir: Path | None,
    baseline_for: Callable[[int], pd.DataFrame],
    train_one: Callable[[dict[str, Any], int], pd.DataFrame],
    *,
    progress: bool,
    n_jobs: int = 1,
    backend: str | None = None,
    client: Any = None,
) -> list[pd.DataFrame]:
    """Every condition × seed: load a finished run from ``out_dir`` or train it; pair with baseline.

    Baselines, then runs, go through :func:`parallel_map` (in order when serial); each result is
    written to ``out_dir`` by this process as it arrives, so an interrupted grid resumes.
    """
    files: dict[tuple, Path | None] = {}
    for seed in seeds:
        files["baseline", seed] = (
            out_dir / "baseline" / f"seed{seed}.parquet" if out_dir is not None else None
        )
        for i, cond in enumerate(conditions):
            files[i, seed] = (
                out_dir / "runs" / f"{_slug([*cond.values(), seed])}.parquet"
                if out_dir is not None
                else None
            )
    frames = {k: pd.read_parquet(f) for k, f in files.items() if f is not None and f.exists()}
    bar = tqdm(
        total=len(conditions) * len(seeds),
        initial=sum(1 for k in frames if k[0] != "baseline"),
        disable=not progress,
        desc="grid",
    )

    def run(tasks: list[tuple]) -> None:
        for key, frame in parallel_map(_call, tasks, n_jobs=n_jobs, backend=backend, client=client):
            frames[key] = frame
            if files[key] is not None:
                frame.to_parquet(files[key], index=False)
            if key[0] != "baseline":
                cond = conditions[key[0]]
                bar.set_postfix_str(f"{'/'.join(str(v) for v in cond.values())} seed={key[1]}")
                bar.update(1)

    run([(baseline_for, ("baseline", s), s) for s in seeds if ("baseline", s) not in frames])
    run(
        [
            (train_one, (i, s), cond, s)
            for s in seeds
            for i, cond in enumerate(conditions)
            if (i, s) not in frames
        ]
    )
    bar.close()
    runs = []
    keys = ["seed", "prompt_idx", "gen_idx", "dimension", "group"]
    for seed in seeds:
        baseline = frames["baseline", seed].rename(
            columns={"score": "baseline", "text": "baseline_text"}
        )
        for i in range(len(conditions)):
            frame = frames[i, seed].rename(columns={"score": "trained", "text": "trained_text"})
            runs.append(frame.merge(baseline, on=keys, how="inner"))
    return runs
