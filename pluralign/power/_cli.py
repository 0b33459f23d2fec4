"""``pluralign power ...``: power analysis and study planning from the command line.

Mount with ``app.add_typer(power_app, name="power")``: ``pluralign power run`` estimates the
power of one design, ``pluralign power plan`` finds the smallest design for a target power.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from pluralign.power._design import StudyDesign

power_app = typer.Typer(
    help="Simulation-based power analysis and rater-allocation planning.", no_args_is_help=True
)


def _design(
    term: str,
    groups: str,
    effect: float,
    effect_scale: str,
    scale: str,
    n_prompts: int,
    responses_per_prompt: int,
    items_per_rater: int,
    dimension: str,
) -> StudyDesign:
    counts = {}
    for part in groups.split(","):
        level, _, n = part.partition("=")
        if not n:
            raise typer.BadParameter(
                f"--groups: expected LEVEL=N pairs such as 'she/her=300,he/him=300', got {part!r}"
            )
        counts[level.strip()] = int(n)
    d = StudyDesign(
        {term: counts},
        effect_scale=effect_scale,
        scale=scale,
        n_prompts=n_prompts,
        responses_per_prompt=responses_per_prompt,
        items_per_rater=items_per_rater,
        dimension=dimension,
    )
    return d.with_effect(effect)


_GROUPS_HELP = "Raters per level, reference first: LEVEL=N,..."

# Options shared by `run` and `plan` (typer reads them from these annotations).
Term = Annotated[str, typer.Option(help="Demographic compared.")]
Groups = Annotated[str, typer.Option(help=_GROUPS_HELP)]
Effect = Annotated[float, typer.Option(help="Effect of the second level vs the reference.")]
EffectScale = Annotated[
    str, typer.Option(help="'relative' (fraction of the mean rating) or 'latent'.")
]
ScaleOpt = Annotated[str, typer.Option(help="'5-point', 'binary' or 'normal'.")]
Prompts = Annotated[int, typer.Option(help="Prompts (items = prompts × responses).")]
Responses = Annotated[int, typer.Option(help="Responses per prompt.")]
ItemsPerRater = Annotated[int, typer.Option(help="Items each rater rates.")]
Dimension = Annotated[str, typer.Option(help="Dimension name (sets simulator defaults).")]
Alpha = Annotated[float, typer.Option(help="Test level.")]
NSims = Annotated[int, typer.Option(help="Simulated studies per design.")]
Model = Annotated[str, typer.Option(help="'mixed', 'bayes' or 'rater_means'.")]
Seed = Annotated[int | None, typer.Option(help="Root seed (default: the package default).")]
NJobs = Annotated[int, typer.Option(help="Worker processes (-1: all cores).")]
Cache = Annotated[
    Path | None, typer.Option(help="Folder of finished simulations (resumable runs).")
]
Backend = Annotated[
    str | None,
    typer.Option(
        help="Where simulations run: a joblib backend ('loky' processes, 'threading') or "
        "'dask' (with --client). Default: this process, or local processes with --n-jobs."
    ),
]
Client = Annotated[
    str | None,
    typer.Option(
        help="Address of a Dask scheduler (tcp://host:8786): run the simulations on that "
        "cluster (needs pluralign[dask]); results equal a serial run's."
    ),
]
FailedFits = Annotated[
    str,
    typer.Option(
        help="'miss': a failed fit counts as a non-detection; 'exclude': left out of power."
    ),
]


#: Options of the simulations that `run` and `plan` share, in the order they are passed.
_SIMULATION = ("alpha", "n_sims", "model", "seed", "n_jobs", "backend", "cache", "failed_fits")


@contextmanager
def _simulation_options(client: str | None, *values: Any) -> Iterator[dict[str, Any]]:
    """The keyword arguments of the simulations (:data:`_SIMULATION`, in order), with a Dask
    client connected to ``client`` (a scheduler address) while they are used."""
    options = dict(zip(_SIMULATION, values, strict=True))
    if client is None:
        yield options
        return
    from pluralign._compat import require

    distributed = require("distributed", purpose="running power simulations on a Dask cluster")
    with distributed.Client(client) as connected:
        yield {**options, "client": connected}


@power_app.command("run")
def cli_power(
    term: Term = "gender",
    groups: Groups = "she/her=300,he/him=300",
    effect: Effect = -0.1,
    effect_scale: EffectScale = "relative",
    scale: ScaleOpt = "5-point",
    n_prompts: Prompts = 250,
    responses_per_prompt: Responses = 4,
    items_per_rater: ItemsPerRater = 5,
    dimension: Dimension = "toxicity",
    alpha: Alpha = 0.05,
    n_sims: NSims = 200,
    model: Model = "mixed",
    seed: Seed = None,
    n_jobs: NJobs = 1,
    backend: Backend = None,
    client: Client = None,
    cache: Cache = None,
    failed_fits: FailedFits = "miss",
    out: Annotated[
        Path | None, typer.Option(help="Write the summary table to this CSV file.")
    ] = None,
) -> None:
    """Estimate the power of one design by simulation."""
    from pluralign.power._analysis import power_analysis

    d = _design(
        term,
        groups,
        effect,
        effect_scale,
        scale,
        n_prompts,
        responses_per_prompt,
        items_per_rater,
        dimension,
    )
    sims = (alpha, n_sims, model, seed, n_jobs, backend, cache, failed_fits)
    with _simulation_options(client, *sims) as options:
        res = power_analysis(d, **options)
    typer.echo(repr(res))
    typer.echo(res.summary.to_string(index=False))
    if out is not None:
        res.summary.to_csv(out, index=False)
        typer.echo(f"summary written to {out}")


@power_app.command("plan")
def cli_plan(
    term: Term = "gender",
    groups: Groups = "she/her=300,he/him=300",
    effect: Effect = -0.1,
    effect_scale: EffectScale = "relative",
    scale: ScaleOpt = "5-point",
    n_prompts: Prompts = 250,
    responses_per_prompt: Responses = 4,
    items_per_rater: ItemsPerRater = 5,
    dimension: Dimension = "toxicity",
    target_power: Annotated[float, typer.Option(help="Power to reach.")] = 0.8,
    vary: Annotated[
        str, typer.Option(help="'n_raters', 'items_per_rater' or 'n_prompts'.")
    ] = "n_raters",
    lower: Annotated[int | None, typer.Option(help="Smallest value searched.")] = None,
    upper: Annotated[int | None, typer.Option(help="Largest value searched.")] = None,
    criterion: Annotated[
        str, typer.Option(help="'estimate' or 'lower' (MC lower bound).")
    ] = "estimate",
    alpha: Alpha = 0.05,
    n_sims: NSims = 200,
    model: Model = "mixed",
    seed: Seed = None,
    n_jobs: NJobs = 1,
    backend: Backend = None,
    client: Client = None,
    cache: Cache = None,
    failed_fits: FailedFits = "miss",
    out: Annotated[
        Path | None, typer.Option(help="Write the evaluated curve to this CSV file.")
    ] = None,
) -> None:
    """Find the smallest design whose power reaches the target."""
    from pluralign.power._planning import plan_study

    d = _design(
        term,
        groups,
        effect,
        effect_scale,
        scale,
        n_prompts,
        responses_per_prompt,
        items_per_rater,
        dimension,
    )
    sims = (alpha, n_sims, model, seed, n_jobs, backend, cache, failed_fits)
    search = dict(target_power=target_power, vary=vary, lower=lower, upper=upper)
    with _simulation_options(client, *sims) as options:
        plan = plan_study(d, criterion=criterion, **search, **options)
    typer.echo(repr(plan))
    typer.echo(
        plan.curve[["value", "power", "power_ci_low", "power_ci_high", "power_monotone"]].to_string(
            index=False
        )
    )
    if out is not None:
        plan.curve.to_csv(out, index=False)
        typer.echo(f"curve written to {out}")
