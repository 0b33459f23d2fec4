"""Effects of rater gender and race on POPQUORN offensiveness ratings (linear mixed model).

    python analysis/popquorn_effects.py --out DIR [--data PATH] [--formula "rating ~ gender + race"]

Prints the contrasts (each level against the largest group) with confidence intervals and
Holm-adjusted p-values, and writes them with the forest plot, the marginal means and the
diagnostics to DIR.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from _common import data_dir


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--data", type=Path, default=None, help="folder holding popquorn/ (default: shared/data)"
    )
    p.add_argument("--formula", default="rating ~ gender + race")
    args = p.parse_args(argv)
    folder = data_dir(args.data, "popquorn")
    if folder is None:
        return 1
    from pluralign import plots
    from pluralign.data import load_popquorn
    from pluralign.models import fit_mixed

    study = load_popquorn(folder)
    print(study)
    print(study.log.to_string(index=False), "\n")
    fit = fit_mixed(study, args.formula, dimension="offensiveness")
    effects = fit.effects()
    args.out.mkdir(parents=True, exist_ok=True)
    cols = ["term", "level", "reference", "estimate", "ci_low", "ci_high", "relative_pct", "cohens_d",
            "p_value", "p_adjusted"]  # fmt: skip
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(f"Linear mixed model {args.formula!r} with crossed rater and comment intercepts")
        print("(estimate: difference in offensiveness, 1..5 scale, against the reference group)\n")
        print(effects[cols].round(3).to_string(index=False))
    effects.to_csv(args.out / "popquorn_effects.csv", index=False)
    terms = [t.strip() for t in args.formula.split("~")[1].split("+")]
    means = pd.concat([fit.marginal_means(by=t).assign(by=t) for t in terms], ignore_index=True)
    means.to_csv(args.out / "popquorn_marginal_means.csv", index=False)
    fit.diagnostics().to_csv(args.out / "popquorn_diagnostics.csv", index=False)
    ax = plots.forest(effects, scale="difference", title="POPQUORN offensiveness")
    plots.savefig(ax.figure, args.out / "popquorn_effects", formats=("png", "svg"))
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
