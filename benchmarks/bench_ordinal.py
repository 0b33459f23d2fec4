"""Speed and agreement of the ordinal mixed model against ``ordinal::clmm``.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ordinal.py [--repeats 3] [--paper-clmm]``

Fits ``fit_mixed(study, formula, family="ordinal")`` and R's ``clmm`` (cumulative logit, crossed
rater and item intercepts, Laplace) on identical rows and prints, per data set, the wall and CPU
time of each side (R's measured inside R around the ``clmm`` call), their ratio and the largest
relative differences of coefficients and cutpoints, standard errors and variance components.

Data: POPQUORN offensiveness (60 raters, about 3,000 ratings) and MultiPICo irony (0/1, 400
items) when the real data are found (``PLURALIGN_DATA``), and one simulated dimension at paper
scale (5,475 ratings, 1,095 raters, 1,000 items; ``simulate_study(seed=1)``), fitted by
pluralign alone unless ``--paper-clmm`` (clmm needs 5-10 minutes there), and the paper's
27,375 ratings as one dimension (25 items per rater), pluralign alone.
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

from pluralign.data import load_multipico, load_popquorn, simulate_study
from pluralign.models import fit_mixed

R_CLMM = r"""
suppressMessages(library(ordinal))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], stringsAsFactors = FALSE)
refs <- strsplit(strsplit(args[3], ";")[[1]], "=")
for (r in refs) d[[r[1]]] <- relevel(factor(d[[r[1]]]), r[2])
d$rater <- factor(d$rater); d$item <- factor(d$item)
d$rating <- factor(d$rating, ordered = TRUE)
f <- as.formula(paste(args[4], "+ (1 | rater) + (1 | item)"))
reps <- as.integer(args[5])
wall <- cpu <- numeric(reps)
for (k in seq_len(reps)) {
  t0 <- proc.time()
  m <- clmm(f, data = d, link = "logit")
  dt <- proc.time() - t0
  wall[k] <- dt[["elapsed"]]; cpu[k] <- dt[["user.self"]] + dt[["sys.self"]]
}
est <- c(m$alpha, m$beta)
se <- sqrt(diag(vcov(m)))[names(est)]
out <- rbind(
  data.frame(name = paste0("est:", names(est)), value = unname(est)),
  data.frame(name = paste0("se:", names(est)), value = unname(se)),
  data.frame(name = c("var:rater", "var:item", "loglik", "wall", "cpu"),
             value = c(VarCorr(m)$rater[1], VarCorr(m)$item[1], logLik(m),
                       median(wall), median(cpu)))
)
write.csv(out, args[2], row.names = FALSE)
"""


def _r_name(column: str) -> str:
    return column.replace("[T.", "").replace("]", "")


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


def _ours(study, formula, reference, repeats):
    walls, cpus, fit = [], [], None
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = fit_mixed(
                study, formula, family="ordinal", reference=reference, progressbar=False
            )
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return float(np.median(walls)), float(np.median(cpus)), fit


def compare(label, study, formula, reference, repeats, *, run_r=True):
    """One table row: pluralign (and clmm) on the same rows."""
    wall, cpu, fit = _ours(study, formula, reference, repeats)
    f = fit.fits[fit.dimensions[0]]
    row = {
        "data": label,
        "ratings": f.fit.n,
        "raters": f.design.n_raters,
        "items": f.design.n_items,
        "ours_wall_s": wall,
        "ours_cpu_s": cpu,
        "converged": f.fit.converged,
    }
    if not run_r or shutil.which("Rscript") is None:
        return row
    variables = list(f.design.variables)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        f.design.data[["rater", "item", *variables, "rating"]].to_csv(tmp / "d.csv", index=False)
        (tmp / "fit.R").write_text(R_CLMM)
        refs = ";".join(f"{k}={v}" for k, v in f.design.references.items())
        proc = subprocess.run(
            [
                "Rscript",
                *(str(tmp / name) for name in ("fit.R", "d.csv", "out.csv")),
                refs,
                formula,
                str(repeats),
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            print(proc.stderr[-2000:])
            return row
        r = pd.read_csv(tmp / "out.csv").set_index("name")["value"]
    names = [*f.cutpoint_names, *[_r_name(c) for c in f.design.columns[1:]]]
    est = np.concatenate([f.fit.cutpoints, f.fit.beta])
    se = np.concatenate([f.fit.cutpoint_se, f.fit.se])
    r_est = r[[f"est:{n}" for n in names]].to_numpy()
    r_se = r[[f"se:{n}" for n in names]].to_numpy()
    row.update(
        clmm_wall_s=r["wall"],
        clmm_cpu_s=r["cpu"],
        speedup_wall=r["wall"] / wall,
        speedup_cpu=r["cpu"] / cpu,
        rel_coef=_rel(est, r_est),
        rel_se=_rel(se, r_se),
        rel_var=_rel([f.var_rater, f.var_item], [r["var:rater"], r["var:item"]]),
        loglik_diff=f.fit.loglik - r["loglik"],
    )
    return row


def _cases(paper_clmm: bool):
    """``(label, study, formula, reference, run R)`` of each benchmark row (real data first,
    when it is there)."""
    cases = []
    try:
        pop = load_popquorn()
        pico = load_multipico()
    except FileNotFoundError as err:
        print(f"real data not found, skipping it: {err}")
    else:
        cases += [
            (
                "POPQUORN offensiveness, 60 raters",
                pop.subset(raters=sorted(pop.raters["rater"].astype(str))[:60]),
                "rating ~ gender + education",
                {"gender": "Woman", "education": "College degree"},
                True,
            ),
            (
                "MultiPICo irony (0/1), 400 items",
                pico.subset(items=sorted(pico.items["item"].astype(str))[:400]),
                "rating ~ gender + age",
                {"gender": "Male"},
                True,
            ),
        ]
    ref = {"gender": "she/her", "ideology": "liberal"}
    formula = "rating ~ gender + ideology"
    paper = simulate_study(seed=1).study.subset(dimensions="toxicity")
    dense = simulate_study(seed=1, items_per_rater=25, dimensions=["toxicity"]).study
    return [
        *cases,
        ("simulated paper scale, toxicity", paper, formula, ref, paper_clmm),
        ("simulated, one dimension, 25 items per rater", dense, formula, ref, False),
    ]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--paper-clmm", action="store_true", help="also run clmm at paper scale")
    args = ap.parse_args(argv)
    rows = []
    for label, data, formula, reference, run_r in _cases(args.paper_clmm):
        rows.append(compare(label, data, formula, reference, args.repeats, run_r=run_r))
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    return table


if __name__ == "__main__":
    main()
