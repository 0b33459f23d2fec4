"""Shared command-line options of the analysis scripts."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

for _var, _value in (
    ("OMP_NUM_THREADS", "1"),
    ("MPLBACKEND", "Agg"),
    ("HF_HUB_OFFLINE", "1"),
    ("HF_DATASETS_OFFLINE", "1"),
):
    os.environ.setdefault(_var, _value)

#: Where the public data sets are looked for: ``shared/data`` beside the repository.
DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


def study_parser(description: str) -> argparse.ArgumentParser:
    """Options of the scripts that analyse one study file or folder."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "study",
        type=Path,
        help="study folder written by Study.to_parquet, or a table read_study can read",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder (created if needed)")
    p.add_argument(
        "--dimension",
        action="append",
        dest="dimensions",
        default=None,
        help="dimension to analyse (repeatable; default: all)",
    )
    p.add_argument(
        "--by",
        action="append",
        dest="demographics",
        default=None,
        help="demographic to compare (repeatable; default: those with 2..12 levels)",
    )
    p.add_argument(
        "--models",
        nargs="+",
        default=["mixed"],
        choices=["mixed", "bayes"],
        help="models to fit (default: mixed)",
    )
    p.add_argument("--no-labels", action="store_true", help="skip preference labels")
    p.add_argument("--seed", type=int, default=None, help="seed of every random step")
    return p


def analyse_from_args(args: argparse.Namespace):
    """Read the study and run the report stages (nothing is written yet)."""
    from pluralign.data import read_study
    from pluralign.report import analyse

    study = read_study(args.study)
    return analyse(
        study,
        dimensions=args.dimensions,
        demographics=args.demographics,
        models=tuple(args.models),
        labels=not args.no_labels,
        seed=args.seed,
    )


def data_dir(path: Path | None, name: str) -> Path | None:
    """The folder of a public data set, or None (with the reason printed) when it is absent."""
    base = path if path is not None else DATA_DIR
    folder = base / name if (base / name).is_dir() else base
    if not folder.is_dir():
        print(f"{name} data not found at {folder}; pass --data PATH to the folder holding it")
        return None
    return folder
