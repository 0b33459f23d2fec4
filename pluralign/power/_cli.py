"""``pluralign power ...``: power analysis and study planning from the command line.

Mount with ``app.add_typer(power_app, name="power")``: ``pluralign power run`` estimates the
power of one design, ``pluralign power plan`` finds the smallest design for a target power.
"""

from __future__ import annotations

from pathlib import Path

import typer

from pluralign.power._design import StudyDesign

power_app = typer.Typer(
    help="Simulation-based power analysis and rater-allocation planning.", no_args_is_help=True
)


def _design(term: str, groups: str, effect: float, effect_scale: str, scale: str, n_prompts: int,
            responses_per_prompt: int, items_per_rater: int, dimension: str) -> StudyDesign:
    counts = {}
    for part in groups.split(","):
        level, _, n = part.partition("=")
        if not n:
            raise typer.BadParameter(f"--groups: expected LEVEL=N pairs such as 'she/her=300,he/him=300', got {part!r}")
        counts[level.strip()] = int(n)
    d = StudyDesign({term: counts}, effect_scale=effect_scale, scale=scale, n_prompts=n_prompts,
                    responses_per_prompt=responses_per_prompt, items_per_rater=items_per_rater,
                    dimension=dimension)
    return d.with_effect(effect)


_TERM = typer.Option("gender", help="Demographic compared.")
_GROUPS = typer.Option("she/her=300,he/him=300", help="Raters per level, reference first: LEVEL=N,...")
_EFFECT = typer.Option(-0.1, help="Effect of the second level vs the reference.")
_EFFECT_SCALE = typer.Option("relative", help="'relative' (fraction of the mean rating) or 'latent'.")
_SCALE = typer.Option("5-point", help="'5-point', 'binary' or 'normal'.")
_N_SIMS = typer.Option(200, help="Simulated studies per design.")
_MODEL = typer.Option("mixed", help="'mixed', 'bayes' or 'rater_means'.")
_SEED = typer.Option(None, help="Root seed (default: the package default).")
_N_JOBS = typer.Option(1, help="Worker processes (-1: all cores).")
_CACHE = typer.Option(None, help="Folder of finished simulations (resumable runs).")
_OUT = typer.Option(None, help="Write the summary table to this CSV file.")


@power_app.command("run")
def cli_power(
    term: str = _TERM,
    groups: str = _GROUPS,
    effect: float = _EFFECT,
    effect_scale: str = _EFFECT_SCALE,
    scale: str = _SCALE,
    n_prompts: int = typer.Option(250, help="Prompts (items = prompts × responses)."),
    responses_per_prompt: int = typer.Option(4, help="Responses per prompt."),
    items_per_rater: int = typer.Option(5, help="Items each rater rates."),
    dimension: str = typer.Option("toxicity", help="Dimension name (sets simulator defaults)."),
    alpha: float = typer.Option(0.05, help="Test level."),
    n_sims: int = _N_SIMS,
    model: str = _MODEL,
    seed: int | None = _SEED,
    n_jobs: int = _N_JOBS,
    cache: Path | None = _CACHE,
    out: Path | None = _OUT,
) -> None:
    """Estimate the power of one design by simulation."""
    from pluralign.power._analysis import power_analysis

    d = _design(term, groups, effect, effect_scale, scale, n_prompts, responses_per_prompt,
                items_per_rater, dimension)
    res = power_analysis(d, alpha=alpha, n_sims=n_sims, model=model, seed=seed, n_jobs=n_jobs,
                         cache=cache)
    typer.echo(repr(res))
    typer.echo(res.summary.to_string(index=False))
    if out is not None:
        res.summary.to_csv(out, index=False)
        typer.echo(f"summary written to {out}")


@power_app.command("plan")
def cli_plan(
    term: str = _TERM,
    groups: str = _GROUPS,
    effect: float = _EFFECT,
    effect_scale: str = _EFFECT_SCALE,
    scale: str = _SCALE,
    n_prompts: int = typer.Option(250, help="Prompts (items = prompts × responses)."),
    responses_per_prompt: int = typer.Option(4, help="Responses per prompt."),
    items_per_rater: int = typer.Option(5, help="Items each rater rates."),
    dimension: str = typer.Option("toxicity", help="Dimension name (sets simulator defaults)."),
    target_power: float = typer.Option(0.8, help="Power to reach."),
    vary: str = typer.Option("n_raters", help="'n_raters', 'items_per_rater' or 'n_prompts'."),
    lower: int | None = typer.Option(None, help="Smallest value searched."),
    upper: int | None = typer.Option(None, help="Largest value searched."),
    criterion: str = typer.Option("estimate", help="'estimate' or 'lower' (MC lower bound)."),
    alpha: float = typer.Option(0.05, help="Test level."),
    n_sims: int = _N_SIMS,
    model: str = _MODEL,
    seed: int | None = _SEED,
    n_jobs: int = _N_JOBS,
    cache: Path | None = _CACHE,
    out: Path | None = typer.Option(None, help="Write the evaluated curve to this CSV file."),
) -> None:
    """Find the smallest design whose power reaches the target."""
    from pluralign.power._planning import plan_study

    d = _design(term, groups, effect, effect_scale, scale, n_prompts, responses_per_prompt,
                items_per_rater, dimension)
    plan = plan_study(d, target_power=target_power, vary=vary, lower=lower, upper=upper,
                      criterion=criterion, alpha=alpha, n_sims=n_sims, model=model, seed=seed,
                      n_jobs=n_jobs, cache=cache)
    typer.echo(repr(plan))
    typer.echo(plan.curve[["value", "power", "ci_low", "ci_high", "power_monotone"]].to_string(index=False))
    if out is not None:
        plan.curve.to_csv(out, index=False)
        typer.echo(f"curve written to {out}")
