"""Random slopes ``(1 + gender | item)``: pluralign against ``lmer``/``glmer``, side by side.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_slopes.py [--repeats 5] [--profile]``

The data are those of ``tests/test_models_slopes.py`` (its ``_study`` is imported, so both
build the same rows): binary gender, 1,920 ratings of 40 items by 160 raters (seed 11); for
the singular fit 1,200 ratings with no slope variance (seed 14); for ``glmer`` 3,000 binary
ratings by 200 raters (seed 12). Each model's rows are written to CSV and fitted by
``fit_mixed`` (CPU seconds in this process around the call, design included) and by lme4
(CPU seconds measured inside R around the ``lmer``/``glmer`` call, default controls), each
side one warm-up and then the median of ``--repeats`` fits, in one run so that both sides see
the same machine load. lme4's ``||`` with a factor does not drop the correlation, so the
uncorrelated model is written there as ``(1 | item) + (0 + he | item)`` with a 0/1 column.

Printed per model: both times and their ratio (< 1: pluralign faster), pluralign's deviance
evaluations, and the deviance difference (ours − lme4, relative). ``--profile`` also prints a
cProfile of one pluralign fit of each model.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_models_slopes import _study  # the tests' own data

from pluralign.models import fit_mixed

REF = {"gender": "she/her"}
SLOPES = "rating ~ gender + (1|rater) + (1 + gender|item)"
UNCORRELATED = "rating ~ gender + (1|rater) + (1 + gender||item)"

#: (name, data, pluralign formula, lme4 formula, family)
MODELS = [
    ("lmer (1 + gender | item)", "gauss", SLOPES, "rating ~ gender + (1 | rater) + (1 + gender | item)", "gaussian"),
    ("lmer (1 + gender || item)", "gauss", UNCORRELATED, "rating ~ gender + (1 | rater) + (1 | item) + (0 + he | item)", "gaussian"),
    ("lmer singular (no slope variance)", "singular", SLOPES, "rating ~ gender + (1 | rater) + (1 + gender | item)", "gaussian"),
    ("glmer (1 + gender | item)", "binary", SLOPES, "rating ~ gender + (1 | rater) + (1 + gender | item)", "binomial"),
]  # fmt: skip

R_TIME = r"""
suppressMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], stringsAsFactors = FALSE)
d$gender <- relevel(factor(d$gender), "she/her")
d$he <- as.numeric(d$gender == "he/him")
f <- as.formula(args[3])
reps <- as.integer(args[5])
fit <- function() if (args[4] == "gaussian") lmer(f, d, REML = TRUE) else
  glmer(f, d, family = binomial)
m <- fit()  # warm-up
cpu <- numeric(reps)
for (k in seq_len(reps)) {
  t0 <- proc.time()
  m <- fit()
  dt <- proc.time() - t0
  cpu[k] <- dt[["user.self"]] + dt[["sys.self"]]
}
write.csv(data.frame(cpu = median(cpu), deviance = -2 * as.numeric(logLik(m))), args[2],
          row.names = FALSE)
"""


def studies():
    """The three data sets of ``tests/test_models_slopes.py``."""
    return {
        "gauss": _study(11),
        "binary": _study(12, binary=True, n_raters=200, per_rater=15),
        "singular": _study(14, sd_slope=0.0, n_raters=120, n_items=30, per_rater=10),
    }


def _fit(study, formula, family):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_mixed(study, formula, family=family, reference=REF, progressbar=False)


def time_ours(study, formula, family, repeats):
    """Median CPU seconds of ``fit_mixed`` after one warm-up, and the last fit."""
    fit = _fit(study, formula, family)
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fit = _fit(study, formula, family)
        times.append(time.process_time() - t0)
    return float(np.median(times)), fit


def time_lme4(data: pd.DataFrame, formula: str, family: str, repeats: int, tmp: Path):
    """Median CPU seconds of ``lmer``/``glmer`` inside R after one warm-up, and its deviance."""
    data.to_csv(tmp / "d.csv", index=False)
    (tmp / "time.R").write_text(R_TIME)
    files = [str(tmp / name) for name in ("time.R", "d.csv", "out.csv")]
    proc = subprocess.run(
        ["Rscript", *files, formula, family, str(repeats)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"Rscript failed: {proc.stderr[-500:]}")
    out = pd.read_csv(tmp / "out.csv")
    return float(out["cpu"].iloc[0]), float(out["deviance"].iloc[0])


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed fits per side (median)")
    parser.add_argument("--profile", action="store_true", help="cProfile one fit of each model")
    parser.add_argument("--no-r", action="store_true", help="time pluralign only")
    args = parser.parse_args(argv)
    data = studies()
    rows = []
    print(f"load average before: {Path('/proc/loadavg').read_text().split()[:3]}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, key, formula, r_formula, family in MODELS:
            ours, fit = time_ours(data[key], formula, family, args.repeats)
            f = fit.fits["toxicity"]
            row = {
                "model": name,
                "ratings": f.fit.n,
                "pluralign_s": ours,
                "lme4_s": np.nan,
                "ratio": np.nan,
                "evaluations": f.fit.n_evals,
                "deviance_rel_diff": np.nan,
            }
            if not args.no_r:
                cols = ["rater", "item", "gender", "rating"]
                theirs, dev = time_lme4(
                    f.design.data[cols], r_formula, family, args.repeats, Path(tmp)
                )
                row.update(
                    lme4_s=theirs,
                    ratio=ours / theirs,
                    deviance_rel_diff=(f.fit.deviance - dev) / abs(dev),
                )
            rows.append(row)
            print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in row.items()), flush=True)  # fmt: skip
            if args.profile:
                prof = cProfile.Profile()
                prof.runcall(_fit, data[key], formula, family)
                pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    print(f"load average after: {Path('/proc/loadavg').read_text().split()[:3]}")
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200):
        print(f"\nCPU seconds, median of {args.repeats} (ratio < 1: pluralign faster)")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return table


if __name__ == "__main__":
    if os.environ.get("OMP_NUM_THREADS") != "1":
        print("note: set OMP_NUM_THREADS=1 for timings comparable with R's single thread")
    main()
