"""The crossed linear mixed model at scale: pluralign's kernel against ``lme4::lmer``.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_scale.py [--only NAME ...]``

Each scenario simulates one crossed study (``rating ~ group + x + (1|rater) + (1|item)``, a
rater-level group with three levels and a rating-level covariate), fits it with
:func:`pluralign.models._lmm.fit_lmm` and, up to ``--lmer-max`` ratings, with ``lmer`` on the
same rows, and prints the wall times, their ratio and the largest difference of the estimates
(fixed effects in standard errors, variance components relative). The lmer time is that of the
``lmer`` call (R's model set-up included, reading the data and starting R not); CPU
seconds are printed beside wall seconds, as the machine may be shared. The scenarios:

- ``multipico``: MultiPICo's shape (5,959 ratings, 815 raters, 1,344 items), raters and items in
  nine language blocks (each rater rates items of one language);
- ``multipico-random``: the same sizes, randomly crossed;
- ``paper``: 27,375 ratings, 1,095 raters, 1,000 items, randomly crossed;
- ``80k``: 80,000 ratings, 4,000 raters, 20,000 items, randomly crossed;
- ``510k``: 510,000 ratings, 17,000 raters, 100,000 items, randomly crossed (the size of the
  largest public toxicity rating set with rater demographics);
- ``multipico-real``: the real MultiPICo set (``load_multipico()``, binary labels fitted as a
  linear model ``rating ~ gender``), where the data are found.

``--check`` exits with status 1 when a guard of the scaling goals fails (:func:`guards`).
``--compare-exact`` also refits with ``method="exact"`` (dense) where the automatic choice was
iterative, to measure what the stochastic log-determinant costs in accuracy.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pluralign.models._lmm import fit_lmm
from pluralign.models._sparse import CrossedSystem

SCENARIOS = {
    "multipico": (5_959, 815, 1_344, 9),
    "multipico-random": (5_959, 815, 1_344, 1),
    "paper": (27_375, 1_095, 1_000, 1),
    "80k": (80_000, 4_000, 20_000, 1),
    "510k": (510_000, 17_000, 100_000, 1),
    "multipico-real": None,
}

R_LMER = r"""
suppressMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
d$group <- factor(d$group)
d$rater <- factor(d$rater)
d$item <- factor(d$item)
t0 <- proc.time()[["elapsed"]]
cpu0 <- sum(proc.time()[c("user.self", "sys.self")])
form <- if ("x" %in% names(d)) rating ~ group + x + (1 | rater) + (1 | item) else
  rating ~ group + (1 | rater) + (1 | item)
m <- lmer(form, d, REML = TRUE)
seconds <- proc.time()[["elapsed"]] - t0
cpu <- sum(proc.time()[c("user.self", "sys.self")]) - cpu0
vc <- as.data.frame(VarCorr(m))
out <- rbind(
  data.frame(name = paste0("beta", seq_along(fixef(m))), value = unname(fixef(m))),
  data.frame(name = paste0("var:", vc$grp), value = vc$vcov),
  data.frame(name = c("seconds", "cpu"), value = c(seconds, cpu))
)
write.csv(out, args[2], row.names = FALSE)
"""


def simulate_crossed(
    n_ratings: int, n_raters: int, n_items: int, *, blocks: int = 1, seed: int = 0
) -> pd.DataFrame:
    """A crossed rating study: each item rated by about ``n_ratings / n_items`` raters.

    Raters and items are split into ``blocks`` equal blocks (languages); an item's raters are
    drawn from its block. ``blocks=1`` crosses them at random.
    """
    rng = np.random.default_rng(seed)
    item = np.arange(n_ratings) % n_items
    rater_block = np.arange(n_raters) % blocks
    item_block = np.arange(n_items) % blocks
    by_block = [np.flatnonzero(rater_block == b) for b in range(blocks)]
    rater = np.empty(n_ratings, dtype=np.int64)
    for b in range(blocks):
        sel = np.flatnonzero(item_block[item] == b)
        rater[sel] = rng.choice(by_block[b], size=sel.size)
    # codes of the levels that occur (a rater drawn for no item is not in the study)
    _, rater = np.unique(rater, return_inverse=True)
    group = rng.integers(3, size=n_raters)[rater]
    x = rng.normal(size=n_ratings)
    rating = (
        3.0
        + np.array([0.0, -0.3, 0.2])[group]
        + 0.25 * x
        + 0.6 * rng.normal(size=n_raters)[rater]
        + 0.5 * rng.normal(size=n_items)[item]
        + rng.normal(size=n_ratings)
    )
    return pd.DataFrame({"rater": rater, "item": item, "group": group, "x": x, "rating": rating})


def _design(d: pd.DataFrame) -> np.ndarray:
    g = d["group"].to_numpy()
    cols = [np.ones(len(d))] + [g == k for k in range(1, int(g.max()) + 1)]
    if "x" in d:
        cols.append(d["x"].to_numpy())
    return np.column_stack(cols).astype(float)


def load_real_multipico() -> pd.DataFrame | None:
    """The real MultiPICo set (dev and test splits) as rater, item, group (gender), rating."""
    from pluralign.data import load_multipico

    try:
        study = load_multipico()
    except (FileNotFoundError, OSError):
        return None
    d = study.ratings.merge(study.raters[["rater", "gender"]], on="rater").dropna(
        subset=["gender", "rating"]
    )
    return pd.DataFrame(
        {
            "rater": pd.factorize(d["rater"])[0],
            "item": pd.factorize(d["item"])[0],
            "group": pd.factorize(d["gender"], sort=True)[0],
            "rating": d["rating"].to_numpy(dtype=float),
        }
    )


def _ours(d: pd.DataFrame, method: str = "auto"):
    X, y = _design(d), d["rating"].to_numpy()
    t0, c0 = time.perf_counter(), time.process_time()
    fit = fit_lmm(X, y, d["rater"].to_numpy(), d["item"].to_numpy(), method=method)
    return time.perf_counter() - t0, time.process_time() - c0, fit


def _lmer(d: pd.DataFrame, timeout: float) -> pd.Series | None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        d.to_csv(tmp / "d.csv", index=False)
        (tmp / "fit.R").write_text(R_LMER)
        try:
            proc = subprocess.run(
                ["Rscript", str(tmp / "fit.R"), str(tmp / "d.csv"), str(tmp / "out.csv")],
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return None
        if proc.returncode != 0:
            raise RuntimeError(f"lmer failed: {proc.stderr[-500:]}")
        return pd.read_csv(tmp / "out.csv").set_index("name")["value"]


def _diff(fit, ref_beta, ref_var, ref_se) -> tuple[float, float]:
    """Largest |Δβ| / SE and largest relative difference of the three variances."""
    ours_var = np.array([fit.var1, fit.var2, fit.sigma2])
    return (
        float(np.max(np.abs(fit.beta - ref_beta) / ref_se)),
        float(np.max(np.abs(ours_var - ref_var) / ref_var)),
    )


def run(name: str, *, lmer_max: int, timeout: float, compare_exact: bool) -> dict:
    if SCENARIOS[name] is None:
        d = load_real_multipico()
        if d is None:
            return {"scenario": name, "note": "MultiPICo data not found"}
    else:
        n, nr, ni, blocks = SCENARIOS[name]
        d = simulate_crossed(n, nr, ni, blocks=blocks, seed=1)
    method = CrossedSystem(d["rater"].to_numpy(), d["item"].to_numpy()).method
    ours_s, ours_cpu, fit = _ours(d)
    row = {
        "scenario": name,
        "ratings": len(d),
        "raters": int(d["rater"].nunique()),
        "items": int(d["item"].nunique()),
        "method": method,
        "ours_s": ours_s,
        "ours_cpu_s": ours_cpu,
        "lmer_s": np.nan,
        "ratio": np.nan,
        "beta_diff_se": np.nan,
        "var_rel_diff": np.nan,
        "converged": fit.converged,
    }
    if compare_exact and method == "iterative":
        exact_s, _, exact = _ours(d, "exact")
        b, v = _diff(fit, exact.beta, np.array([exact.var1, exact.var2, exact.sigma2]), exact.se)
        row.update(exact_s=exact_s, exact_beta_diff_se=b, exact_var_rel_diff=v)
    if len(d) <= lmer_max and shutil.which("Rscript"):
        r = _lmer(d, timeout)
        if r is None:
            row["lmer_s"] = np.inf
        else:
            ref_beta = r[[f"beta{k + 1}" for k in range(len(fit.beta))]].to_numpy()
            ref_var = np.array([r["var:rater"], r["var:item"], r["var:Residual"]])
            row["beta_diff_se"], row["var_rel_diff"] = _diff(fit, ref_beta, ref_var, fit.se)
            row["lmer_s"] = float(r["seconds"])
            row["lmer_cpu_s"] = float(r["cpu"])
            row["ratio"] = ours_s / row["lmer_s"]
    return row


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=list(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument(
        "--lmer-max", type=int, default=100_000, help="run lmer up to this many ratings"
    )
    parser.add_argument("--lmer-timeout", type=float, default=1200.0, help="seconds")
    parser.add_argument("--compare-exact", action="store_true")
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when a guard fails: a fit not converged, slower than lmer (CPU), or the "
        "510k scenario over 60 s",
    )
    args = parser.parse_args(argv)
    print(f"load average {os.getloadavg()}", flush=True)
    rows = []
    for name in args.only:
        row = run(
            name,
            lmer_max=args.lmer_max,
            timeout=args.lmer_timeout,
            compare_exact=args.compare_exact,
        )
        print(
            "  "
            + ", ".join(
                f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
            ),
            flush=True,
        )
        rows.append(row)
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200):
        print("\nours / lmer wall time (ratio < 1: pluralign faster)")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"load average {os.getloadavg()}", flush=True)
    failed = guards(table)
    for line in failed:
        print("guard FAIL", line)
    if args.check and failed:
        raise SystemExit(1)
    return table


def guards(table: pd.DataFrame) -> list[str]:
    """The scaling goals that a run's table misses: every fit converged; pluralign's CPU time at
    most lmer's wherever lmer ran; the 510,000-rating study under 60 s."""
    out = []
    for row in table.to_dict("records"):
        name = row["scenario"]
        if not row.get("converged", True):
            out.append(f"{name}: not converged")
        lmer_cpu = row.get("lmer_cpu_s", np.nan)
        if np.isfinite(lmer_cpu) and row["ours_cpu_s"] > lmer_cpu:
            out.append(f"{name}: {row['ours_cpu_s']:.2f} CPU s, lmer {lmer_cpu:.2f}")
        if name == "510k" and row["ours_s"] >= 60:
            out.append(f"510k: {row['ours_s']:.1f} s (goal < 60 s)")
    return out


if __name__ == "__main__":
    main()
