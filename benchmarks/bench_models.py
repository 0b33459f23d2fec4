"""Speed and agreement of pluralign's models against reference implementations.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_models.py [--repeats 3] [--quick]``

Each comparison is one function ``section_*`` returning rows for the final table
(``comparison, ours_s, reference_s, ratio, max_rel_diff, note``); ``main`` runs the sections in
order and prints the ratio table. To add a comparison (e.g. Bayesian models against brms or
cmdstan), write another ``section_*`` function below the marked place and append it to
``SECTIONS``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from pluralign.data._simulate import simulate_study
from pluralign.models import fit_mixed

REF = {"gender": "she/her", "ideology": "liberal"}
FORMULA = "rating ~ gender + ideology"

R_LMER = r"""
suppressMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], stringsAsFactors = FALSE)
d$gender <- relevel(factor(d$gender), "she/her")
d$ideology <- relevel(factor(d$ideology), "liberal")
family <- args[3]
reps <- as.integer(args[4])
times <- numeric(reps)
for (k in seq_len(reps)) {
  t0 <- proc.time()[["elapsed"]]
  if (family == "gaussian") {
    m <- lmer(rating ~ gender + ideology + (1 | rater) + (1 | item), d, REML = TRUE)
    se <- sqrt(diag(as.matrix(vcov(m))))
  } else {
    m <- glmer(rating ~ gender + ideology + (1 | rater) + (1 | item), d, family = binomial)
    se <- sqrt(diag(as.matrix(vcov(m, use.hessian = TRUE))))
  }
  times[k] <- proc.time()[["elapsed"]] - t0
}
vc <- as.data.frame(VarCorr(m))
out <- rbind(
  data.frame(name = paste0("beta:", names(fixef(m))), value = unname(fixef(m))),
  data.frame(name = paste0("se:", names(fixef(m))), value = unname(se)),
  data.frame(name = paste0("var:", vc$grp), value = vc$vcov),
  data.frame(name = "seconds", value = median(times))
)
write.csv(out, args[2], row.names = FALSE)
"""


def _run_r(script: str, data: pd.DataFrame, *args: str, row: dict) -> pd.Series | None:
    """Run an R script on ``data`` (``Rscript fit.R d.csv out.csv *args``); its ``name, value``
    table, or None with the error added to ``row["note"]``."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data.to_csv(tmp / "d.csv", index=False)
        (tmp / "fit.R").write_text(script)
        proc = subprocess.run(
            ["Rscript", str(tmp / "fit.R"), str(tmp / "d.csv"), str(tmp / "out.csv"), *args],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            row["note"] += f"; R failed: {proc.stderr[-300:]}"
            return None
        return pd.read_csv(tmp / "out.csv").set_index("name")["value"]


def _r_name(column: str) -> str:
    return "(Intercept)" if column == "Intercept" else column.replace("[T.", "").replace("]", "")


def _time(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def _timed_fit(study, formula, family, reference, repeats, label):
    """Time fit_mixed on the study's first dimension: ``(fit, its dimension's fit, row)``.

    ``row`` is the table row with the reference side still empty (a note when Rscript is
    missing).
    """
    dim = study.dimensions[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours_s, fit = _time(
            lambda: fit_mixed(
                study,
                formula,
                dimension=dim,
                family=family,
                reference=reference,
                progressbar=False,
            ),
            repeats,
        )
    f = fit.fits[dim]
    row = {
        "comparison": label,
        "ours_s": ours_s,
        "reference_s": np.nan,
        "ratio": np.nan,
        "max_rel_diff": np.nan,
        "note": f"{f.fit.n} ratings, {f.design.n_raters} raters, {f.design.n_items} items",
    }
    if shutil.which("Rscript") is None:
        row["note"] += "; Rscript missing"
    return fit, f, row


def _against_lme4(study, family, repeats, label):
    """Fit with fit_mixed and lme4 on identical rows; return one table row."""
    _, f, row = _timed_fit(study, FORMULA, family, REF, repeats, label)
    if shutil.which("Rscript") is None:
        return row
    data = f.design.data[["rater", "item", "gender", "ideology", "rating"]]
    r = _run_r(R_LMER, data, family, str(repeats), row=row)
    if r is None:
        return row
    names = [_r_name(c) for c in f.design.columns]
    ours = np.concatenate([f.fit.beta, f.fit.se, [f.var_rater, f.var_item]])
    theirs = np.concatenate(
        [
            r[[f"beta:{n}" for n in names]],
            r[[f"se:{n}" for n in names]],
            [r["var:rater"], r["var:item"]],
        ]
    )
    scale = np.maximum(
        np.abs(theirs), np.concatenate([r[[f"se:{n}" for n in names]], np.zeros(len(names) + 2)])
    )
    row["reference_s"] = float(r["seconds"])
    row["ratio"] = row["ours_s"] / row["reference_s"]
    row["max_rel_diff"] = float(np.max(np.abs(ours - theirs) / scale))
    return row


# ----------------------------------------------------------------------------- sections
def section_lmer_paper_scale(repeats, quick):
    """fit_mixed (gaussian, REML) vs lme4::lmer at paper scale: 27,375 ratings in one dimension."""
    n_raters = 300 if quick else 1095
    study = simulate_study(
        n_raters=n_raters, items_per_rater=25, dimensions=["toxicity"], seed=1
    ).study
    return [_against_lme4(study, "gaussian", repeats, "fit_mixed vs lmer (27,375 ratings, 1 dim)")]


def section_lmer_default_study(repeats, quick):
    """fit_mixed vs lmer on each dimension of the default simulated study (5,475 ratings each)."""
    study = simulate_study(n_raters=300 if quick else 1095, seed=1).study
    dims = study.dimensions[:1] if quick else study.dimensions
    return [
        _against_lme4(study.subset(dimensions=d), "gaussian", repeats, f"fit_mixed vs lmer ({d})")
        for d in dims
    ]


def section_glmer(repeats, quick):
    """fit_mixed (binomial, Laplace) vs lme4::glmer on binary ratings."""
    study = simulate_study(
        scale_points=2,
        n_raters=300 if quick else 1095,
        items_per_rater=10,
        dimensions=["helpfulness"],
        seed=1,
    ).study
    return [_against_lme4(study, "binomial", repeats, "fit_mixed binomial vs glmer")]


R_SLOPES = r"""
suppressMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], stringsAsFactors = FALSE)
d$gender <- relevel(factor(d$gender), "she/her")
f <- as.formula(args[3])
t0 <- proc.time()[["elapsed"]]
m <- if (args[4] == "gaussian") lmer(f, d, REML = TRUE) else glmer(f, d, family = binomial)
seconds <- proc.time()[["elapsed"]] - t0
se <- if (isGLMM(m)) sqrt(diag(as.matrix(vcov(m, use.hessian = TRUE)))) else
  sqrt(diag(as.matrix(vcov(m))))
vc <- as.data.frame(VarCorr(m))
vc <- vc[vc$grp != "Residual", ]
key <- ifelse(is.na(vc$var2), paste0("sd:", vc$grp, ":", vc$var1),
              paste0("cor:", vc$grp, ":", vc$var1, ":", vc$var2))
out <- rbind(
  data.frame(name = paste0("beta:", names(fixef(m))), value = unname(fixef(m))),
  data.frame(name = paste0("se:", names(fixef(m))), value = unname(se)),
  data.frame(name = key, value = vc$sdcor),
  data.frame(name = c("deviance", "seconds"), value = c(-2 * as.numeric(logLik(m)), seconds))
)
write.csv(out, args[2], row.names = FALSE)
"""


def _slopes_against_lme4(study, formula, family, label):
    """Random-slope fit (one run each side): agreement of β, SEs, SDs/correlations, deviance."""
    fit, f, row = _timed_fit(study, formula, family, {"gender": "she/her"}, 1, label)
    if shutil.which("Rscript") is None:
        return row
    r = _run_r(
        R_SLOPES, f.design.data[["rater", "item", "gender", "rating"]], formula, family, row=row
    )
    if r is None:
        return row
    names = [_r_name(c) for c in f.design.columns]
    vc = fit.variance_components(study.dimensions[0])
    vc = vc[vc["term"] != "residual"]
    keys, ours_vc = [], []
    for factor, kind, parameter, value in vc[
        ["factor", "kind", "parameter", "estimate"]
    ].itertuples(index=False):
        parts = [_r_name(p) for p in parameter.split(", ")]
        keys.append(f"{kind}:{factor}:" + ":".join(parts))
        ours_vc.append(value)
    diffs = {
        "beta": np.abs(f.fit.beta - r[[f"beta:{n}" for n in names]].to_numpy())
        / np.maximum(
            np.abs(r[[f"beta:{n}" for n in names]].to_numpy()),
            r[[f"se:{n}" for n in names]].to_numpy(),
        ),
        "se": np.abs(f.fit.se / r[[f"se:{n}" for n in names]].to_numpy() - 1),
        "sdcor": np.abs(np.asarray(ours_vc) - r[keys].to_numpy())
        / np.maximum(np.abs(r[keys].to_numpy()), 0.05),
        "deviance": np.atleast_1d(abs(f.fit.deviance - r["deviance"]) / abs(r["deviance"])),
    }
    row["reference_s"] = float(r["seconds"])
    row["ratio"] = row["ours_s"] / row["reference_s"]
    row["max_rel_diff"] = float(max(np.max(v) for v in diffs.values()))
    row["note"] += "; " + ", ".join(f"{k} {np.max(v):.1e}" for k, v in diffs.items())
    return row


def section_random_slopes(repeats, quick):
    """Random slopes (1 + gender | item) against lmer and glmer (one timed run each)."""
    gauss = simulate_study(
        n_raters=150 if quick else 400,
        n_prompts=60,
        items_per_rater=10,
        dimensions=["toxicity"],
        seed=4,
    ).study
    binary = simulate_study(
        scale_points=2,
        n_raters=150 if quick else 400,
        n_prompts=30,
        items_per_rater=10,
        dimensions=["helpfulness"],
        seed=5,
        missing_share=0.0,
    ).study
    formula = "rating ~ gender + (1|rater) + (1 + gender|item)"
    return [
        _slopes_against_lme4(gauss, formula, "gaussian", "fit_mixed slopes vs lmer"),
        _slopes_against_lme4(binary, formula, "binomial", "fit_mixed slopes vs glmer"),
    ]


# ----------------------------------------------------------------------------- add here
# Bayesian comparisons (fit_bayes vs brms / cmdstan / nutpie settings) go here: write
# ``def section_bayes_...(repeats, quick) -> list[dict]`` returning rows with the same keys
# and add it to SECTIONS.

from bench_bayes import section_bayes  # noqa: E402  (Bayesian section, benchmarks/bench_bayes.py)

SECTIONS = [
    section_lmer_paper_scale,
    section_lmer_default_study,
    section_glmer,
    section_random_slopes,
    section_bayes,
]


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions (median)")
    parser.add_argument("--quick", action="store_true", help="small data, for a smoke run")
    args = parser.parse_args(argv)
    rows = []
    for section in SECTIONS:
        print(f"== {section.__doc__.splitlines()[0]}", flush=True)
        new = section(args.repeats, args.quick)
        for row in new:
            print(
                f"   {row['comparison']}: ours {row['ours_s']:.2f}s, reference "
                f"{row['reference_s']:.2f}s, max rel diff {row['max_rel_diff']:.1e} ({row['note']})",
                flush=True,
            )
        rows.extend(new)
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print("\nours / reference wall time (ratio < 1: pluralign faster)")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return table


if __name__ == "__main__":
    main()
