"""The ``pluralign`` command line: simulate, describe, report, demo and power."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="pluralign: how who rates changes what an aligned model learns.",
    no_args_is_help=True,
    add_completion=False,
)

_NAMED = {"popquorn": "load_popquorn", "multipico": "load_multipico"}


def load(data: str | Path):
    """A Study from a study folder, a table file, or the name of a public data set."""
    from pluralign.data import _loaders, read_study

    key = str(data).lower()
    if key in _NAMED and not Path(data).exists():
        return getattr(_loaders, _NAMED[key])()
    path = Path(data)
    if not path.exists():
        raise typer.BadParameter(
            f"{data}: no such file or folder (give a folder written by Study.to_parquet / "
            f"'pluralign simulate', a CSV/parquet/JSON table, or one of {sorted(_NAMED)})"
        )
    return read_study(path)


def _parse_effects(specs: list[str]) -> dict:
    effects: dict = {}
    for spec in specs:
        where, sep, value = spec.rpartition("=")
        parts = where.split(":", 2)
        if not sep or len(parts) != 3:
            raise typer.BadParameter(
                f"--effect {spec!r}: expected DIMENSION:COLUMN:LEVEL=FRACTION, "
                "e.g. 'toxicity:gender:he/him=-0.18'"
            )
        dim, col, level = parts
        try:
            frac = float(value)
        except ValueError:
            raise typer.BadParameter(f"--effect {spec!r}: {value!r} is not a number") from None
        effects.setdefault(dim, {}).setdefault(col, {})[level] = frac
    return effects


@app.command()
def simulate(
    out: Annotated[
        Path, typer.Option("--out", help="Folder to write the study to (parquet + study.json).")
    ],
    seed: Annotated[int | None, typer.Option(help="Seed (default: the package default).")] = None,
    n_raters: Annotated[int, typer.Option(help="Raters.")] = 1095,
    n_prompts: Annotated[int, typer.Option(help="Prompts (items = prompts × responses).")] = 250,
    responses_per_prompt: Annotated[int, typer.Option(help="Candidate responses per prompt.")] = 4,
    items_per_rater: Annotated[
        int, typer.Option(help="Items each rater rates on every dimension.")
    ] = 5,
    scale_points: Annotated[int, typer.Option(help="5 (agreement scale) or 2 (binary).")] = 5,
    family: Annotated[
        str, typer.Option(help="'ordinal' or 'gaussian' (continuous ratings).")
    ] = "ordinal",
    effect: Annotated[
        list[str] | None,
        typer.Option(
            "--effect",
            help="Relative difference of mean ratings, DIMENSION:COLUMN:LEVEL=FRACTION, e.g. "
            "'toxicity:gender:he/him=-0.18' (repeatable; added to the published effects).",
        ),
    ] = None,
    no_published: Annotated[
        bool, typer.Option("--no-published", help="Start from no demographic effects.")
    ] = False,
    truth: Annotated[
        bool, typer.Option(help="Also write the ground truth as CSV files in OUT/truth.")
    ] = True,
) -> None:
    """Simulate a study with known demographic effects and write it to OUT."""
    from pluralign.data import simulate_study

    try:
        sim = simulate_study(
            seed=seed,
            n_raters=n_raters,
            n_prompts=n_prompts,
            responses_per_prompt=responses_per_prompt,
            items_per_rater=items_per_rater,
            scale_points=scale_points,
            family=family,
            effects=_parse_effects(effect or []),
            base_effects="none" if no_published else "published",
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    path = sim.study.to_parquet(out)
    if truth:
        tdir = path / "truth"
        tdir.mkdir(exist_ok=True)
        for name in ("fixed_effects", "random_sd", "cutpoints", "intercepts", "item_traits"):
            getattr(sim.truth, name).to_csv(tdir / f"{name}.csv", index=False)
    typer.echo(f"{sim.study!r}\nwritten to {path}")


@app.command()
def describe(
    data: Annotated[
        str, typer.Argument(help="Study folder, table file, or 'popquorn' / 'multipico'.")
    ],
    by: Annotated[
        list[str] | None,
        typer.Option("--by", help="Demographic column (repeatable; default gender)."),
    ] = None,
    dimension: Annotated[
        list[str] | None, typer.Option("--dimension", help="Dimension (repeatable; default all).")
    ] = None,
    reference: Annotated[
        str | None, typer.Option(help="Reference group (default: the largest).")
    ] = None,
    means: Annotated[
        bool, typer.Option("--means", help="Group means only, no differences.")
    ] = False,
    crossed: Annotated[bool, typer.Option(help="Cross several --by columns.")] = False,
    coding: Annotated[
        str, typer.Option(help="Multi-select columns: 'collapsed' or 'indicators'.")
    ] = "collapsed",
    n_boot: Annotated[
        int | None, typer.Option(help="Bootstrap resamples (default from options; 0: none).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Bootstrap seed.")] = None,
    out: Annotated[Path | None, typer.Option(help="Also write the table to this CSV file.")] = None,
) -> None:
    """Group means and relative differences (%) with rater-bootstrap intervals."""
    from pluralign.describe import group_means, relative_difference

    study = load(data)
    by = list(by) if by else ["gender"]
    dims = list(dimension) if dimension else None
    try:
        if means:
            table = group_means(
                study,
                by=list(by),
                dimension=dims,
                n_boot=n_boot,
                seed=seed,
                coding=coding,
                crossed=crossed,
            )
            cols = [
                "dimension",
                "by",
                "group",
                "n_raters",
                "n_ratings",
                "mean",
                "ci_low",
                "ci_high",
            ]
        else:
            table = relative_difference(
                study,
                by=list(by),
                reference=reference,
                dimension=dims,
                n_boot=n_boot,
                seed=seed,
                coding=coding,
                crossed=crossed,
            )
            cols = [
                "dimension",
                "by",
                "group",
                "reference",
                "n_raters",
                "mean",
                "difference",
                "relative_pct",
                "relative_ci_low",
                "relative_ci_high",
            ]
    except (KeyError, ValueError) as err:
        raise typer.BadParameter(str(err).strip('"')) from err
    if out is not None:
        table.to_csv(out, index=False)
    shown = table[cols].round(3)
    typer.echo(f"{study!r}\n")
    typer.echo(shown.to_string(index=False))


@app.command()
def report(
    data: Annotated[
        str, typer.Argument(help="Study folder, table file, or 'popquorn' / 'multipico'.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for the report.")],
    dimension: Annotated[
        list[str] | None,
        typer.Option("--dimension", "-d", help="Dimension to analyse (repeat; default: all)."),
    ] = None,
    by: Annotated[
        list[str] | None,
        typer.Option(
            "--by", help="Demographic to analyse (repeat; default: all with 2-12 levels)."
        ),
    ] = None,
    models: Annotated[
        list[str] | None,
        typer.Option("--models", "-m", help="Models to fit: mixed and/or bayes (repeat)."),
    ] = None,
    labels: Annotated[bool, typer.Option(help="Build preference labels.")] = True,
    seed: Annotated[int | None, typer.Option(help="Seed.")] = None,
) -> None:
    """Write the HTML / markdown report of a study."""
    from pluralign.report import write_report

    chosen = tuple(models or ("mixed",))
    unknown = sorted(set(chosen) - {"mixed", "bayes"})
    if unknown:
        raise typer.BadParameter(
            f"--models: unknown model(s) {unknown}; use 'mixed' and/or 'bayes'"
        )
    path = write_report(
        load(data),
        out=out,
        dimensions=dimension or None,
        demographics=by or None,
        models=chosen,
        labels=labels,
        seed=seed,
    )
    typer.echo(f"report written to {path}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo report and data.")],
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    fast: Annotated[bool, typer.Option(help="A smaller, quicker run.")] = False,
) -> None:
    """Run the whole pipeline on a simulated study and write the report."""
    from pluralign.report import run_demo

    run_demo(out, seed=seed, fast=fast)


def _mount_power() -> None:
    try:
        from pluralign.power import _cli as power_cli
    except ImportError:
        power_cli = None
    sub = getattr(power_cli, "power_app", None)
    if sub is not None:
        app.add_typer(sub, name="power")
        return
    fn = getattr(power_cli, "cli_power", None)
    if fn is not None:
        app.command("power")(fn)
        return

    @app.command("power")
    def power() -> None:
        """Power analysis (not available in this installation)."""
        typer.echo("power analysis is not available: pluralign.power.cli_power was not found")
        raise typer.Exit(1)


_mount_power()


if __name__ == "__main__":  # pragma: no cover
    app()
