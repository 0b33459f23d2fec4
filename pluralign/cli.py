"""The ``pluralign`` command line: simulate, describe, report, demo and power."""

from __future__ import annotations

import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer

app = typer.Typer(
    help="pluralign: how who rates changes what an aligned model learns.",
    no_args_is_help=True,
    add_completion=False,
)

_NAMED = {"popquorn": "load_popquorn", "multipico": "load_multipico"}

#: exceptions that mean the user's input is wrong: one line on stderr, exit code 2
_USER_ERRORS = (ValueError, KeyError, TypeError, FileNotFoundError, PermissionError, OSError)


def fail(message: str) -> NoReturn:
    """Print one line ``Error: ...`` on stderr and exit with code 2."""
    line = " ".join(str(message).strip().strip('"').split())
    typer.echo(f"Error: {line}", err=True)
    raise typer.Exit(2)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    typer.echo(f"Warning: {' '.join(str(message).split())}", err=True)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a user error raised inside the block into one line and exit code 2, no traceback.

    Warnings raised inside the block are printed as one ``Warning: ...`` line each.
    """
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            yield
    except typer.Exit:
        raise
    except typer.BadParameter as err:
        fail(err.message)
    except _USER_ERRORS as err:
        fail(err.args[0] if isinstance(err, KeyError) and err.args else str(err))


def writable(path: Path, *, folder: bool) -> Path:
    """Check, before any computing, that ``path`` (a folder, or a file's folder) can be written."""
    target = path if folder else path.parent
    if path.exists() and folder and not path.is_dir():
        fail(f"--out {path}: a file of that name exists; give a folder")
    if path.exists() and not folder and path.is_dir():
        fail(f"--out {path}: a folder of that name exists; give a file name")
    try:
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target, prefix=".pluralign-write-test-"):
            pass
    except OSError as err:
        fail(f"--out {path}: cannot write there ({err.strerror or err}); choose another folder")
    return path


def _renames(specs: list[str] | None) -> dict[str, str]:
    out = {}
    for spec in specs or []:
        src, sep, dst = spec.partition("=")
        if not sep or not src.strip() or not dst.strip():
            fail(f"--column {spec!r}: expected YOUR_NAME=PLURALIGN_NAME, e.g. 'user_id=rater'")
        out[src.strip()] = dst.strip()
    return out


def load(
    data: str | Path,
    *,
    columns: dict[str, str] | None = None,
    demographics: list[str] | None = None,
    multiselect: list[str] | None = None,
    separator: str = ";",
    dimensions: list[str] | None = None,
    sep: str | None = None,
    encoding: str = "utf-8",
    drop_invalid: bool = False,
):
    """A Study from a study folder, a table file, or the name of a public data set.

    A table file's rater columns are detected (``demographics="auto"``) unless named.
    """
    from pluralign import data as pl_data

    key = str(data).lower()
    if key in _NAMED and not Path(data).exists():
        return getattr(pl_data, _NAMED[key])()
    path = Path(data)
    if not path.exists():
        fail(
            f"{data}: no such file or folder (give a folder written by Study.to_parquet / "
            f"'pluralign simulate', a CSV/parquet/JSON table, or one of {sorted(_NAMED)})"
        )
    if path.is_dir():
        return pl_data.read_study(path)
    dims: str | list[str] | None = None
    if dimensions:
        dims = dimensions[0] if len(dimensions) == 1 else list(dimensions)
    return pl_data.read_study(
        path,
        columns=columns or None,
        dimensions=dims,
        demographics=list(demographics) if demographics else "auto",
        multiselect=list(multiselect or ()),
        separator=separator,
        sep=sep,
        encoding=encoding,
        drop_invalid=drop_invalid,
    )


#: Parameters of a command that describe how to read a table file (see :func:`load_study`).
TABLE_OPTIONS = (
    "column",
    "demographic",
    "multiselect",
    "separator",
    "dimension_column",
    "sep",
    "encoding",
    "drop_invalid",
)


def load_study(data: str, given: dict):
    """:func:`load` with a command's table-file options (``TABLE_OPTIONS``, picked from ``given``).

    A user error is one line and exit code 2.
    """
    o = {name: given[name] for name in TABLE_OPTIONS}
    with user_errors():
        return load(
            data,
            columns=_renames(o["column"]),
            demographics=o["demographic"],
            multiselect=o["multiselect"],
            separator=o["separator"],
            dimensions=o["dimension_column"],
            sep=o["sep"],
            encoding=o["encoding"],
            drop_invalid=o["drop_invalid"],
        )


ColumnOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--column",
        help="Rename a column of a table file, YOUR_NAME=PLURALIGN_NAME (e.g. 'user_id=rater'; "
        "repeatable).",
    ),
]
DemographicOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--demographic",
        help="Rater column of a table file (repeatable; default: every column with one value "
        "per rater).",
    ),
]
MultiselectOpt = Annotated[
    list[str] | None,
    typer.Option("--multiselect", help="Demographic holding several answers (repeatable)."),
]
SeparatorOpt = Annotated[
    str, typer.Option("--separator", help="Separator of multi-select answers.")
]
DimensionsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--dimension-column",
        help="Wide file: a column holding one dimension (repeatable). Long file without a "
        "'dimension' column: the name of its one dimension.",
    ),
]
SepOpt = Annotated[str | None, typer.Option("--sep", help="CSV delimiter (default: detected).")]
EncodingOpt = Annotated[str, typer.Option("--encoding", help="Text encoding of the file.")]
DropOpt = Annotated[
    bool,
    typer.Option("--drop-invalid", help="Drop invalid rating rows (counted in the log)."),
]


def _parse_effects(specs: list[str]) -> dict:
    effects: dict = {}
    for spec in specs:
        where, sep, value = spec.rpartition("=")
        parts = where.split(":", 2)
        if not sep or len(parts) != 3:
            fail(
                f"--effect {spec!r}: expected DIMENSION:COLUMN:LEVEL=FRACTION, "
                "e.g. 'toxicity:gender:he/him=-0.18'"
            )
        dim, col, level = parts
        try:
            frac = float(value)
        except ValueError:
            fail(f"--effect {spec!r}: {value!r} is not a number")
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

    writable(out, folder=True)
    effects = _parse_effects(effect or [])
    try:
        sim = simulate_study(
            seed=seed,
            n_raters=n_raters,
            n_prompts=n_prompts,
            responses_per_prompt=responses_per_prompt,
            items_per_rater=items_per_rater,
            scale_points=scale_points,
            family=family,
            effects=effects,
            base_effects="none" if no_published else "published",
        )
    except ValueError as err:
        fail(str(err))
    path = sim.study.to_parquet(out)
    if truth:
        tdir = path / "truth"
        tdir.mkdir(exist_ok=True)
        for name in ("fixed_effects", "random_sd", "cutpoints", "intercepts", "item_traits"):
            getattr(sim.truth, name).to_csv(tdir / f"{name}.csv", index=False)
    typer.echo(f"{sim.study!r}\nwritten to {path}")


#: Columns of group_means / relative_difference printed by ``describe`` (the CSV has them all).
_SHOWN_MEANS = {"dimension", "by", "group", "n_raters", "n_ratings", "mean", "ci_low", "ci_high"}
_SHOWN_DIFFERENCES = {"dimension", "by", "group", "reference", "n_raters", "mean", "difference"}
_SHOWN_DIFFERENCES |= {"relative_pct", "relative_ci_low", "relative_ci_high"}


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
    column: ColumnOpt = None,
    demographic: DemographicOpt = None,
    multiselect: MultiselectOpt = None,
    separator: SeparatorOpt = ";",
    dimension_column: DimensionsOpt = None,
    sep: SepOpt = None,
    encoding: EncodingOpt = "utf-8",
    drop_invalid: DropOpt = False,
) -> None:
    """Group means and relative differences (%) with rater-bootstrap intervals."""
    from pluralign.describe import group_means, relative_difference

    if out is not None:
        writable(out, folder=False)
    study = load_study(data, locals())
    if not by:
        if "gender" not in study.demographics:
            fail(
                f"--by: name a demographic to describe; this study has {study.demographics} "
                "(the default, gender, is not among them)"
            )
        by = ["gender"]
    by = list(by)
    dims = list(dimension) if dimension else None
    common = {"by": by, "dimension": dims, "n_boot": n_boot, "seed": seed}
    with user_errors():
        if means:
            table = group_means(study, **common, coding=coding, crossed=crossed)
        else:
            table = relative_difference(
                study, **common, reference=reference, coding=coding, crossed=crossed
            )
    if out is not None:
        table.to_csv(out, index=False)
    shown_cols = _SHOWN_MEANS if means else _SHOWN_DIFFERENCES
    shown = table[[c for c in table.columns if c in shown_cols]].round(3)
    typer.echo(f"{study!r}\n")
    typer.echo(shown.to_string(index=False))


def _priors(specs: list[str] | None) -> dict[str, float] | None:
    out: dict[str, float] = {}
    for spec in specs or []:
        name, sep, value = spec.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            fail(f"--prior {spec!r}: expected NAME=SD, e.g. 'beta_sd=0.5' (fields of Priors)")
    return out or None


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
    formula: Annotated[
        str | None,
        typer.Option(
            help="Fixed effects of the models over rater and item columns, e.g. "
            "'rating ~ gender * source_model' (default: every --by demographic, crossed with "
            "each --item-covariate)."
        ),
    ] = None,
    item_covariate: Annotated[
        list[str] | None,
        typer.Option(
            "--item-covariate",
            help="Column of the items table (e.g. source_model) crossed with the demographics; "
            "group differences are also shown within each of its levels (repeatable).",
        ),
    ] = None,
    labels: Annotated[bool, typer.Option(help="Build preference labels.")] = True,
    n_boot: Annotated[
        int | None, typer.Option(help="Bootstrap resamples (default from options).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed.")] = None,
    bayes: Annotated[
        bool, typer.Option("--bayes", help="Also fit the Bayesian model (as --models bayes).")
    ] = False,
    bayes_dimension: Annotated[
        str | None, typer.Option(help="Dimension of the Bayesian model (default: the first).")
    ] = None,
    bayes_formula: Annotated[
        str | None, typer.Option(help="Formula of the Bayesian model (default: the models').")
    ] = None,
    bayes_method: Annotated[
        str, typer.Option(help="'nuts' (exact, sampled) or 'laplace' (approximation).")
    ] = "nuts",
    family: Annotated[
        str, typer.Option(help="Bayesian family: 'ordinal', 'bernoulli' or 'gaussian'.")
    ] = "ordinal",
    sampler: Annotated[
        str, typer.Option(help="NUTS sampler: 'nutpie', 'numpyro' or 'pymc'.")
    ] = "nutpie",
    draws: Annotated[int, typer.Option(help="Posterior draws per chain.")] = 300,
    tune: Annotated[int, typer.Option(help="Warm-up iterations per chain (NUTS).")] = 300,
    chains: Annotated[int, typer.Option(help="Chains.")] = 2,
    prior: Annotated[
        list[str] | None,
        typer.Option(
            "--prior",
            help="Prior scale of the Bayesian model, NAME=SD with NAME a field of "
            "pluralign.models.Priors, e.g. 'beta_sd=0.5' (repeatable).",
        ),
    ] = None,
    column: ColumnOpt = None,
    demographic: DemographicOpt = None,
    multiselect: MultiselectOpt = None,
    separator: SeparatorOpt = ";",
    dimension_column: DimensionsOpt = None,
    sep: SepOpt = None,
    encoding: EncodingOpt = "utf-8",
    drop_invalid: DropOpt = False,
) -> None:
    """Write the HTML / markdown report of a study (a folder, a table file or a data set name)."""
    from pluralign.report import ReportOptions, write_report

    chosen = tuple(dict.fromkeys([*(models or ("mixed",)), *(("bayes",) if bayes else ())]))
    with user_errors():
        settings = ReportOptions(
            dimensions=dimension or None,
            demographics=by or None,
            models=chosen,
            formula=formula,
            item_covariates=item_covariate or None,
            labels=labels,
            n_boot=n_boot,
            seed=seed,
            bayes_dimension=bayes_dimension,
            bayes_formula=bayes_formula,
            method=bayes_method,
            family=family,
            sampler=sampler,
            draws=draws,
            tune=tune,
            chains=chains,
            priors=_priors(prior),
        )
    writable(out, folder=True)
    study = load_study(data, locals())
    with user_errors():
        for name in by or ():
            if name not in study.demographics:
                fail(f"--by {name!r}: not a demographic of this study ({study.demographics})")
        typer.echo(f"{study!r}")
        path = write_report(study, out=out, settings=settings)
    typer.echo(f"report written to {path}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo report and data.")],
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    fast: Annotated[bool, typer.Option(help="A smaller, quicker run.")] = False,
) -> None:
    """Run the whole pipeline on a simulated study and write the report."""
    from pluralign.report import run_demo

    writable(out, folder=True)
    run_demo(out, seed=seed, fast=fast)


def _mount_power() -> None:
    from pluralign.power import power_app

    app.add_typer(power_app, name="power")


_mount_power()


def main(args: list[str] | None = None) -> int:
    """Run the command line; a usage error (unknown option, missing argument) is one line too.

    Returns the exit code: 0 on success, 2 for a user error.
    """
    # typer ships its own copy of click: take its exception classes from typer's public ones
    usage_error = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
    no_args = getattr(sys.modules[usage_error.__module__], "NoArgsIsHelpError", ())
    command = typer.main.get_command(app)
    try:
        code = command.main(args=args, prog_name="pluralign", standalone_mode=False)
    except no_args as err:
        typer.echo(err.ctx.get_help() if err.ctx else str(err))
        return 0
    except usage_error as err:
        where = err.ctx.command_path if err.ctx else "pluralign"
        typer.echo(
            f"Error: {' '.join(err.format_message().split())} (see '{where} --help')", err=True
        )
        return 2
    except typer.Exit as err:
        return err.exit_code
    except typer.Abort:
        typer.echo("Aborted.", err=True)
        return 1
    return code if isinstance(code, int) else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
