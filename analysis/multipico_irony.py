"""Irony in MultiPICo by annotator gender and age: shares per group and a logit mixed model.

    python analysis/multipico_irony.py --out DIR [--data PATH] [--language en ...]

Age (years) is grouped in bands 18-29, 30-39, 40-49, 50-59, 60+. Prints the relative difference
of the share of replies called ironic, and the odds ratios of the mixed model with crossed
annotator and reply intercepts.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from _common import data_dir

AGE_BINS = [0, 29, 39, 49, 59, 200]
AGE_BANDS = ["18-29", "30-39", "40-49", "50-59", "60+"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--data", type=Path, default=None, help="folder holding multipico/ (default: shared/data)"
    )
    p.add_argument(
        "--language",
        action="append",
        dest="languages",
        default=None,
        help="language code to keep (repeatable; default: all nine)",
    )
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    folder = data_dir(args.data, "multipico")
    if folder is None:
        return 1
    from pluralign import plots
    from pluralign.data import load_multipico
    from pluralign.describe import relative_difference
    from pluralign.models import fit_mixed

    study = load_multipico(folder, languages=args.languages)
    bands = pd.cut(study.raters["age"].astype(float), AGE_BINS, labels=AGE_BANDS)
    study = study.replace(raters=study.raters.assign(age=bands.astype("string")))
    print(study)
    print(study.log.to_string(index=False), "\n")
    args.out.mkdir(parents=True, exist_ok=True)
    shares = pd.concat(
        [relative_difference(study, by=by, seed=args.seed) for by in ("gender", "age")],
        ignore_index=True,
    )
    shares.to_csv(args.out / "multipico_shares.csv", index=False)
    fit = fit_mixed(study, "rating ~ gender + age", dimension="irony", family="binomial")
    effects = fit.effects()
    effects.to_csv(args.out / "multipico_effects.csv", index=False)
    fit.diagnostics().to_csv(args.out / "multipico_diagnostics.csv", index=False)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print("Share of replies called ironic, relative to the reference group (percent)\n")
        print(
            shares[
                [
                    "by",
                    "group",
                    "n_raters",
                    "mean",
                    "relative_pct",
                    "relative_ci_low",
                    "relative_ci_high",
                ]
            ]
            .round(3)
            .to_string(index=False)
        )
        print(
            "\nLogit mixed model 'rating ~ gender + age' with crossed annotator and reply intercepts\n"
        )
        print(
            effects[
                [
                    "term",
                    "level",
                    "reference",
                    "estimate",
                    "odds_ratio",
                    "odds_ratio_ci_low",
                    "odds_ratio_ci_high",
                    "p_adjusted",
                ]
            ]
            .round(3)
            .to_string(index=False)
        )
    ax = plots.forest(effects, scale="odds_ratio", title="MultiPICo irony")
    plots.savefig(ax.figure, args.out / "multipico_effects", formats=("png", "svg"))
    fig = plots.group_means(shares, by="group", value="relative_pct", title="Irony by group")
    plots.savefig(fig, args.out / "multipico_shares", formats=("png", "svg"))
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
