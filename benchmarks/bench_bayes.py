"""Speed and calibration of ``fit_bayes`` (the Bayesian section of ``bench_models.py``).

Run alone: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_bayes.py [--quick]
[--parts ours,five,ablation,baseline,clmm,coverage,laplace,laplace_marginal,five_laplace,
coverage_laplace]
[--coverage-studies 20] [--with-bambi]``.

``--parts laplace --with-bambi`` is the side-by-side comparison of ``fit_bayes`` (NUTS and
``method="laplace"``) with bambi 0.17.2 + numpyro on one simulated paper dimension (1,056
raters × 5 items, 1,000 items: 5,280 ratings) and on the real POPQUORN offensiveness ratings
(1–5; 13,036 ratings, 262 raters, 1,500 items), in one run. bambi runs in its **own** virtual
environment ``benchmarks/.venv-bambi`` (ignored by git; created on first use with
``bambi==0.17.2 pymc==5.28.5 numpyro "matplotlib<3.11"``) through a subprocess, so it never
touches pluralign's environment. Every run reports the minimum bulk ESS and maximum R-hat over
*all* parameters (random effects included) and ESS per second of wall time.

Parts (paper scale: 1,095 raters × 5 items, 1,000 items, 5 dimensions = 27,375 ratings; one
dimension = 5,475 ratings):

* ``ours``: ``fit_bayes`` ordinal on one dimension (default settings), wall time, min bulk ESS
  over *every* parameter (random effects included), max R-hat, ESS/s;
* ``five``: all five dimensions in one call;
* ``ablation``: what each speed idea buys, on the same data and draws: naive model
  (``pm.OrderedLogistic``, free item effects) with nutpie/JAX, then the written-out likelihood
  with zero-sum item effects, then low-rank mass-matrix adaptation (= ``fit_bayes``), the numba
  backend, and numpyro;
* ``baseline``: bambi (cumulative family, same formula, draws and chains) when it is installed;
  bambi is not a dependency and its requirements (``formulae<0.7``, ``arviz_plots``,
  ``sparse``) are not part of the environment, so otherwise the same model is written by hand
  the way bambi writes it (``OrderedLogistic``, non-centred intercepts, PyMC's own NUTS) and
  labelled "bambi-equivalent";
* ``clmm``: R ``ordinal::clmm`` (Laplace) on the same rows, wall time;
* ``coverage``: share of 90% HDIs of the fixed effects covering the simulated truth over
  ``--coverage-studies`` simulated studies (300 raters each).

Measured on the 2-core development machine, one paper-scale dimension. Rows marked "idle" ran
with load average < 1; the others while the machine was shared (load 3.5–13: wall times
inflated, CPU seconds steadier). The PyMC baseline needs a compile cache to be this fast.

==========================================================  ======  =====  ========  =====
run                                                         wall s  CPU s  min ESS   R-hat
==========================================================  ======  =====  ========  =====
fit_bayes default, 2 × (1000 tune + 1000 draws), idle           49     78       495  1.009
bambi-equivalent, PyMC NUTS, 2 × (500 + 500), idle              30     49       246  1.033
naive model, nutpie JAX, 2 × (500 + 500), shared               105     27       236  1.025
+ written-out likelihood, zero-sum items (500 + 500), shared    96     22       178  1.019
+ low-rank mass matrix (500 + 500), shared                     129     35       184  1.024
same, numba backend, compile included (500 + 500), shared      212     37       182  1.019
same model, numpyro (500 + 500), shared                        157     44       270  1.038
all five dimensions, fit_bayes default, idle                   231    373  320–495  ≤1.013
R ordinal::clmm (Laplace), shared                              614    313         –      –
==========================================================  ======  =====  ========  =====

90% HDI coverage of the fixed effects over 20 simulated studies: 87 of 100 intervals.

``--check`` exits with status 1 when a guard of the speed goals fails (``guards``: Laplace at
least 5× bambi + numpyro's minimum ESS per second on each data set, five paper-scale dimensions
under 60 s with every check passed). ``--parts laplace,five_laplace --with-bambi`` is the run
behind the tables of
docs/benchmarks.md ("Approximate posterior"): ``method="laplace"`` against bambi + numpyro on both
data sets, its posterior means against NUTS, and five paper-scale dimensions with ``n_jobs=2``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from pluralign.data._simulate import simulate_study
from pluralign.models import _bayes_model as M
from pluralign.models._bayes import _model_data, fit_bayes
from pluralign.models._design import build_design

FORMULA = "rating ~ gender"
REF = {"gender": "she/her"}


def _ess_rhat(idata) -> tuple[float, float, float]:
    """Min bulk ESS and max R-hat over every parameter; min bulk ESS of population parameters."""
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ess = az.ess(idata.posterior)
        rhat = az.rhat(idata.posterior)
    ess_all = min(float(ess[v].min()) for v in ess.data_vars)
    rhat_all = max(float(rhat[v].max()) for v in rhat.data_vars)
    pop = [
        v
        for v in ess.data_vars
        if not str(v).startswith(("z_", "zi", "zr", "u_", "v_")) and "offset" not in str(v)
    ]
    ess_pop = min(float(ess[v].min()) for v in pop) if pop else np.nan
    return ess_all, rhat_all, ess_pop


def cpu_seconds() -> float:
    """CPU time of this process (all threads) and its finished children (PyMC's chain processes, R)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class Clock:
    """Wall and CPU seconds of a block (the machine is shared: CPU time is the steadier measure)."""

    def __enter__(self):
        self.t0, self.c0 = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t0
        self.cpu = cpu_seconds() - self.c0


def timed_fit(study, **kwargs):
    """``fit_bayes(study, **kwargs)`` (``FORMULA``, seed 1, quiet unless given) and its Clock."""
    kwargs = {"formula": FORMULA, "seed": 1, "progressbar": False, **kwargs}
    with Clock() as clock, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_bayes(study, **kwargs)
    return clock, fit


def _row(label, seconds, idata, note="", cpu=None):
    ess, rhat, ess_pop = _ess_rhat(idata)
    stats = getattr(idata, "sample_stats", None)
    div = int(np.asarray(stats["diverging"]).sum()) if stats and "diverging" in stats else -1
    return {
        "comparison": label,
        "seconds": seconds,
        "min_ess_bulk": ess,
        "max_rhat": rhat,
        "min_ess_bulk_population": ess_pop,
        "ess_per_s": ess / seconds,
        "cpu_s": cpu,
        "ess_per_cpu_s": ess / cpu if cpu else np.nan,
        "divergences": div,
        "note": note,
    }


BAMBI_VENV = Path(__file__).resolve().parent / ".venv-bambi"
BAMBI_REQUIREMENTS = ["bambi==0.17.2", "pymc==5.28.5", "numpyro", "matplotlib<3.11"]

BAMBI_SCRIPT = r"""
import json, sys, time, warnings
import arviz as az, bambi as bmb, numpy as np, pandas as pd
warnings.simplefilter("ignore")
data_path, out_path, method, draws, tune, chains = sys.argv[1:7]
data = pd.read_csv(data_path)
data["rating"] = pd.Categorical(data["rating"].astype(int), ordered=True)
t0 = time.perf_counter()
model = bmb.Model("rating ~ gender + (1|rater) + (1|item)", data, family="cumulative")
idata = model.fit(draws=int(draws), tune=int(tune), chains=int(chains), random_seed=1,
                  inference_method=method, progressbar=False)
seconds = time.perf_counter() - t0
ess, rhat = az.ess(idata.posterior), az.rhat(idata.posterior)
json.dump({"seconds": seconds,
           "min_ess_bulk": min(float(ess[v].min()) for v in ess.data_vars),
           "max_rhat": max(float(rhat[v].max()) for v in rhat.data_vars)}, open(out_path, "w"))
"""


def bambi_python() -> Path:
    """The interpreter of bambi's own environment, created with its pinned versions if absent."""
    python = BAMBI_VENV / "bin" / "python"
    if not python.exists():
        import sys

        subprocess.run([sys.executable, "-m", "venv", str(BAMBI_VENV)], check=True)
        subprocess.run(
            [str(BAMBI_VENV / "bin" / "pip"), "install", "-q", *BAMBI_REQUIREMENTS], check=True
        )
    return python


def run_bambi(data: pd.DataFrame, label: str, method, draws, tune, chains) -> dict:
    """Fit the same model with bambi in its own environment (a niced subprocess)."""
    python = bambi_python()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data[["rater", "item", "rating", "gender"]].to_csv(tmp / "d.csv", index=False)
        (tmp / "b.py").write_text(BAMBI_SCRIPT)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}
        with Clock() as clock:
            res = subprocess.run(
                [
                    "nice",
                    str(python),
                    str(tmp / "b.py"),
                    str(tmp / "d.csv"),
                    str(tmp / "o.json"),
                    method,
                    str(draws),
                    str(tune),
                    str(chains),
                ],
                capture_output=True,
                text=True,
                env=env,
            )
        if res.returncode:
            print(f"   bambi ({method}) failed:", res.stderr[-800:], flush=True)
            return {}
        r = json.loads((tmp / "o.json").read_text())
    return {
        "comparison": f"bambi 0.17.2 + {method}, {label}",
        "seconds": r["seconds"],
        "min_ess_bulk": r["min_ess_bulk"],
        "max_rhat": r["max_rhat"],
        "ess_per_s": r["min_ess_bulk"] / r["seconds"],
        "cpu_s": clock.cpu,
        "note": "own venv; model build + sampling",
    }


def goal_data(quick: bool) -> list[tuple[str, object]]:
    """The two data sets of the speed goal: one simulated paper dimension and POPQUORN."""
    sim = simulate_study(n_raters=300 if quick else 1056, seed=1, dimensions=["toxicity"]).study
    out = [("simulated paper dimension", sim)]
    try:
        from pluralign.data import load_popquorn

        out.append(("POPQUORN offensiveness", load_popquorn()))
    except (FileNotFoundError, OSError) as exc:
        print(f"   POPQUORN not found ({exc}): real-data comparison skipped", flush=True)
    return out


def _fit_row(study, label, method, draws, tune, chains):
    clock, fit = timed_fit(
        study,
        dimension=study.dimensions[0],
        draws=draws,
        tune=tune,
        chains=chains,
        method=method,
        log_likelihood=False,
        posterior_predictive=False,
    )
    note = "independent draws" if method == "laplace" else "nutpie + JAX"
    return _row(f"fit_bayes {method}, {label}", clock.wall, fit.idata, note, cpu=clock.cpu), fit


def part_laplace(quick, draws, tune, chains, with_bambi, bambi_methods=("numpyro",), report=None):
    """Side by side on each data set: fit_bayes NUTS, fit_bayes Laplace, bambi (own venv)."""
    rows = []
    report = report or (lambda new: None)
    for label, study in goal_data(quick):
        nuts, fit_n = _fit_row(study, label, "nuts", draws, tune, chains)
        lap, fit_l = _fit_row(study, label, "laplace", draws, tune, chains)
        a, b = fit_l.idata.posterior, fit_n.idata.posterior
        gaps = []
        for v in ("beta", "cutpoints", "sigma_rater", "sigma_item"):
            x = np.asarray(a[v]).reshape(a.sizes["chain"] * a.sizes["draw"], -1)
            y = np.asarray(b[v]).reshape(b.sizes["chain"] * b.sizes["draw"], -1)
            gaps.append(np.max(np.abs(x.mean(0) - y.mean(0)) / y.std(0)))
        lap["note"] += f"; means within {max(gaps):.2f} posterior SD of NUTS"
        new = [nuts, lap]
        report(new)
        if with_bambi:
            data = study.data(study.dimensions[0])
            for method in bambi_methods:
                ref = run_bambi(data, label, method, draws, tune, chains)
                if ref:
                    more = [ref]
                    for ours in (nuts, lap):
                        more.append(
                            {
                                "comparison": f"ratio {ours['comparison']} / {method}",
                                "ess_per_s": ours["ess_per_s"] / ref["ess_per_s"],
                                "note": "min-ESS per second, ours over bambi",
                            }
                        )
                    report(more)
                    new.extend(more)
        rows.extend(new)
    return rows


def part_five_laplace(study, draws, chains):
    """All five paper-scale dimensions with method='laplace' in one call."""
    return part_five(study, draws, None, chains, method="laplace")


def paper_study(quick: bool):
    return simulate_study(n_raters=300 if quick else 1095, seed=1).study


# ----------------------------------------------------------------------------- parts
def part_ours(study, draws, tune, chains):
    dim = study.dimensions[0]
    clock, fit = timed_fit(
        study, dimension=dim, reference=REF, draws=draws, tune=tune, chains=chains
    )
    return [
        _row(
            f"fit_bayes ordinal ({dim}, {study.subset(dimensions=dim).n_ratings} ratings)",
            clock.wall,
            fit.idata,
            "nutpie + JAX, zero-sum items, low-rank mass matrix",
            cpu=clock.cpu,
        )
    ], fit


def part_five(study, draws, tune, chains, method="nuts"):
    """All five paper-scale dimensions in one call: a row per dimension and one for the call
    (``method="laplace"``: two dimensions at a time in worker processes, ``n_jobs=2``)."""
    kw = {"tune": tune} if method == "nuts" else {"n_jobs": 2}
    clock, fit = timed_fit(study, reference=REF, draws=draws, chains=chains, method=method, **kw)
    label = "ordinal" if method == "nuts" else method
    rows = [
        _row(f"fit_bayes {label}, {d}", fit.seconds[d], fit.fits[d].idata) for d in fit.dimensions
    ]
    failed = int((~fit.diagnostics()["ok"]).sum())
    rows.append(
        {
            "comparison": f"fit_bayes {label}, all {len(fit.dimensions)} dimensions",
            "seconds": clock.wall,
            "cpu_s": clock.cpu,
            "min_ess_bulk": min(r["min_ess_bulk"] for r in rows),
            "max_rhat": max(r["max_rhat"] for r in rows),
            "note": f"{failed} failed checks",
        }
    )
    return rows


def _naive_model(md):
    """The model as bambi writes it: OrderedLogistic likelihood, free non-centred intercepts."""
    import pymc as pm
    import pytensor.tensor as pt

    with pm.Model() as model:
        beta = pm.Normal("beta", 0, 1, shape=md.X_rater.shape[1])
        cut = pm.Normal(
            "cutpoints",
            np.linspace(-2, 2, md.n_categories - 1),
            3,
            shape=md.n_categories - 1,
            transform=pm.distributions.transforms.ordered,
        )
        s_r = pm.HalfNormal("sigma_rater", 1)
        s_i = pm.HalfNormal("sigma_item", 1)
        z_r = pm.Normal("z_rater", 0, 1, shape=md.n_raters)
        z_i = pm.Normal("z_item", 0, 1, shape=md.n_items)
        eta = (pt.dot(md.X_rater, beta) + s_r * z_r)[md.rater_codes] + s_i * z_i[md.item_codes]
        pm.OrderedLogistic("y", eta=eta, cutpoints=cut, observed=md.y)
    return model


def _design_data(study):
    dim = study.dimensions[0]
    design = build_design(study, FORMULA, dimension=dim, reference=REF)
    md, _, _ = _model_data(design, "ordinal", study.scale(dim), None)
    return md


def _nutpie(model, draws, tune, chains, backend="jax", low_rank=False, initvals=None):
    import nutpie

    kw = {"gradient_backend": "jax"} if backend == "jax" else {}
    with Clock() as clock:
        compiled = nutpie.compile_pymc_model(model, backend=backend, initial_points=initvals, **kw)
        idata = nutpie.sample(
            compiled,
            draws=draws,
            tune=tune,
            chains=chains,
            cores=chains,
            seed=1,
            progress_bar=False,
            low_rank_modified_mass_matrix=low_rank,
        )
    return clock, idata


def part_ablation(study, draws, tune, chains):
    md = _design_data(study.subset(dimensions=study.dimensions[0]))
    rows = []
    clock, idata = _nutpie(_naive_model(md), draws, tune, chains)
    rows.append(
        _row("naive (OrderedLogistic, free items), nutpie JAX", clock.wall, idata, cpu=clock.cpu)
    )
    fast = M.build_model(md)
    init = M.initial_values(md)
    clock, idata = _nutpie(fast, draws, tune, chains, initvals=init)
    rows.append(_row("+ written-out likelihood, zero-sum items", clock.wall, idata, cpu=clock.cpu))
    clock, idata = _nutpie(M.build_model(md), draws, tune, chains, low_rank=True, initvals=init)
    rows.append(
        _row("+ low-rank mass matrix (fit_bayes default)", clock.wall, idata, cpu=clock.cpu)
    )
    clock, idata = _nutpie(
        M.build_model(md), draws, tune, chains, backend="numba", low_rank=True, initvals=init
    )
    rows.append(_row("same, numba backend (compile included)", clock.wall, idata, cpu=clock.cpu))
    with Clock() as clock:
        idata = M.sample(
            M.build_model(md),
            sampler="numpyro",
            draws=draws,
            tune=tune,
            chains=chains,
            seed=1,
            progressbar=False,
            initvals=init,
        )
    rows.append(_row("same model, numpyro", clock.wall, idata, cpu=clock.cpu))
    return rows


def part_baseline(study, draws, tune, chains):
    dim = study.dimensions[0]
    one = study.subset(dimensions=dim)
    try:
        import bambi  # noqa: F401
    except ImportError:
        print(
            "   bambi is not installed (its requirements formulae<0.7, arviz_plots and sparse "
            "are not in this environment): using the bambi-equivalent PyMC model instead",
            flush=True,
        )
        import pymc as pm

        md = _design_data(one)
        model = _naive_model(md)
        with Clock() as clock, model:
            idata = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                cores=chains,
                random_seed=1,
                progressbar=False,
                compute_convergence_checks=False,
            )
        return [
            _row(
                "bambi-equivalent model, PyMC NUTS",
                clock.wall,
                idata,
                "bambi not installed",
                cpu=clock.cpu,
            )
        ]
    import bambi as bmb

    data = one.data(dim)[["rater", "item", "rating", "gender"]].copy()
    data["rating"] = pd.Categorical(data["rating"].astype(int), ordered=True)
    with Clock() as clock:
        model = bmb.Model("rating ~ gender + (1|rater) + (1|item)", data, family="cumulative")
        idata = model.fit(draws=draws, tune=tune, chains=chains, random_seed=1, progressbar=False)
    return [_row("bambi cumulative", clock.wall, idata, cpu=clock.cpu)]


R_CLMM = r"""
suppressMessages(library(ordinal))
a <- commandArgs(TRUE)
d <- read.csv(a[1], stringsAsFactors = FALSE)
d$gender <- relevel(factor(d$gender), ref = "she/her")
t0 <- proc.time()[["elapsed"]]
m <- clmm(factor(rating, ordered = TRUE) ~ gender + (1|rater) + (1|item), data = d)
el <- proc.time()[["elapsed"]] - t0
write.csv(data.frame(name = c(names(m$beta), "seconds"), value = c(m$beta, el)), a[2],
          row.names = FALSE)
"""


def part_clmm(study, draws, tune, chains, ours=None):
    if shutil.which("Rscript") is None:
        print("   Rscript not found: clmm skipped", flush=True)
        return []
    dim = study.dimensions[0]
    data = study.data(dim)[["rater", "item", "rating", "gender"]]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data.to_csv(tmp / "d.csv", index=False)
        (tmp / "m.R").write_text(R_CLMM)
        with Clock() as clock:
            res = subprocess.run(
                ["Rscript", str(tmp / "m.R"), str(tmp / "d.csv"), str(tmp / "o.csv")],
                capture_output=True,
                text=True,
            )
        if res.returncode:
            print("   clmm failed:", res.stderr[-500:], flush=True)
            return []
        r = pd.read_csv(tmp / "o.csv").set_index("name")["value"]
    note = ""
    if ours is not None:
        d = ours.fits[dim].draws()
        cols = ours.fits[dim].design.columns[1:]
        z = [
            (d.beta[:, i].mean() - r["gender" + c.split("T.")[1][:-1]]) / d.beta[:, i].std()
            for i, c in enumerate(cols)
        ]
        note = (
            "fixed effects differ from fit_bayes by "
            + ", ".join(f"{v:+.2f}" for v in z)
            + " posterior SD"
        )
    return [
        {
            "comparison": "R ordinal::clmm (Laplace ML)",
            "seconds": clock.wall,
            "cpu_s": clock.cpu,
            "note": note + f"; model fit {r['seconds']:.1f}s",
        }
    ]


def part_coverage(n_studies, draws, tune, chains, prob=0.9, method="nuts"):
    from pluralign.models._bayes_kernels import hdi

    hits, total, secs = 0, 0, []
    for k in range(n_studies):
        sim = simulate_study(n_raters=300, seed=1000 + k, dimensions=["toxicity"], group_item=())
        clock, fit = timed_fit(
            sim.study,
            formula="rating ~ gender + ideology",
            reference={"gender": "she/her", "ideology": "liberal"},
            draws=draws,
            tune=tune,
            chains=chains,
            seed=k,
            method=method,
            log_likelihood=False,
            posterior_predictive=False,
        )
        secs.append(clock.wall)
        fd = fit.fits["toxicity"]
        d = fd.draws()
        truth = sim.truth.fixed_effects.set_index(["term", "level"])["beta_latent"]
        for term, entries in fd.design.terms.items():
            for level, col in entries:
                lo, hi = hdi(d.beta[:, col - 1][:, None], prob)
                hits += int(lo[0] <= truth[(term, level)] <= hi[0])
                total += 1
        print(f"   coverage study {k + 1}/{n_studies}: {hits}/{total}", flush=True)
    return [
        {
            "comparison": f"{prob:.0%} HDI coverage of fixed effects, {n_studies} studies, {method}",
            "coverage": hits / total,
            "n_intervals": total,
            "seconds": float(np.sum(secs)),
            "note": "300 raters x 5 items, gender + ideology (5 coefficients per study)",
        }
    ]


# ----------------------------------------------------------------------------- Laplace error
def _importance(post, x, u, gauss, n, rng):
    """Joint importance-sampling correction with ``n`` draws of ``N(u*, A⁻¹)``: value, effective
    share of the draws and SD of the log weights."""
    lws = []
    for start in range(0, n, 1000):
        k = min(1000, n - start)
        xi = rng.standard_normal((len(gauss.d), k)), rng.standard_normal((len(gauss.L), k))
        e = gauss.transform(*xi)
        lw = post.log_joint(x, u[0][:, None] + e[0], u[1][:, None] + e[1])
        lw -= post.log_joint(x, u[0][:, None], u[1][:, None])[0]
        lws.append(lw + 0.5 * ((xi[0] ** 2).sum(0) + (xi[1] ** 2).sum(0)))
    lw = np.concatenate(lws)
    top = lw.max()
    w = np.exp(lw - top)
    return float(np.log(w.mean()) + top), float(w.sum() ** 2 / (w**2).sum() / n), float(lw.std())


def part_laplace_marginal(quick, draws, tune, chains):
    """Where the Laplace error at paper scale comes from: the log marginal density of σ_rater
    along its conditional-mean line, by plain Laplace, by the importance-sampling correction
    (300 and 4,000 draws) and by the per-unit quadrature, and the posterior mean of σ_rater each
    implies, against NUTS on the same ratings."""
    from pluralign.models._bayes_laplace import BlockGaussian, LaplacePosterior, unit_quadrature

    study = goal_data(quick)[0][1]
    _, fit = _fit_row(study, "simulated paper dimension", "nuts", draws, tune, chains)
    s_nuts = np.asarray(fit.idata.posterior["sigma_rater"]).ravel()
    post = LaplacePosterior(fit.fits[study.dimensions[0]].data)
    x_hat, H, _, _ = post.mode()
    cov = np.linalg.inv(H)
    reg = cov[:, -2] / cov[-2, -2]
    rng = np.random.default_rng(0)
    points = []
    for k in range(-2, 5):
        x = x_hat + reg * k * np.sqrt(cov[-2, -2])
        value, _, u, obs, f = post.at(x)
        gauss = BlockGaussian.build(post.lap.g, post.lap.q, obs.w, np.exp(x[-2:]))
        is300, _, sd300 = _importance(post, x, u, gauss, 300, rng)
        is4000, ess4000, _ = _importance(post, x, u, gauss, 4000, rng)
        points.append(
            {
                "psi": x[-2],
                "laplace": -value,
                "importance 300": is300,
                "importance 4000": is4000,
                "unit quadrature": sum(float(r.sum()) for r in unit_quadrature(post, x, u)[0]),
                "second order, exact units and pairs": post.expansion(x, u, f)[0],
                "ess_share": ess4000,
                "log_weight_sd": sd300,
            }
        )
    table = pd.DataFrame(points)
    grid = np.linspace(table["psi"].min(), table["psi"].max(), 400)
    rows = []
    for how in (
        "laplace",
        "importance 300",
        "importance 4000",
        "unit quadrature",
        "second order, exact units and pairs",
    ):
        log_density = table["laplace"] + (0.0 if how == "laplace" else table[how])
        fitted = np.polyval(np.polyfit(table["psi"], log_density, 3), grid)
        dens = np.exp(fitted - fitted.max())
        mean = float(np.exp(grid) @ dens / dens.sum())
        rows.append(
            {
                "comparison": f"sigma_rater marginal, {how}",
                "estimate": mean,
                "gap_sd": float((mean - s_nuts.mean()) / s_nuts.std()),
                "note": f"NUTS {s_nuts.mean():.3f} ± {s_nuts.std():.3f}; importance draws: "
                f"effective share {table['ess_share'].min():.3f}–{table['ess_share'].max():.3f}, "
                f"log-weight SD {table['log_weight_sd'].min():.1f}–"
                f"{table['log_weight_sd'].max():.1f}",
            }
        )
    return rows


# ----------------------------------------------------------------------------- bench_models
def section_bayes(repeats, quick):
    """fit_bayes ordinal vs the bambi-equivalent PyMC model and R clmm (one paper-scale dimension)."""
    study = paper_study(quick).subset(dimensions="toxicity")
    draws = tune = 200 if quick else 1000
    ours, fit = part_ours(study, draws, tune, 2)
    base = part_baseline(study, draws, tune, 2)
    clmm = part_clmm(study, draws, tune, 2, fit)
    rows = []
    for ref in base + clmm:
        rows.append(
            {
                "comparison": f"fit_bayes vs {ref['comparison']}",
                "ours_s": ours[0]["seconds"],
                "reference_s": ref["seconds"],
                "ratio": ours[0]["seconds"] / ref["seconds"],
                "max_rel_diff": np.nan,
                "note": (
                    f"ESS/s ours {ours[0]['ess_per_s']:.1f} vs {ref.get('ess_per_s', np.nan):.2f}"
                    if "ess_per_s" in ref
                    else ref["note"]
                ),
            }
        )
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--parts", default="ours,five,ablation,baseline,clmm,coverage")
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--coverage-studies", type=int, default=20)
    p.add_argument("--coverage-draws", type=int, default=400)
    p.add_argument("--out", default=None, help="write the rows as JSON here")
    p.add_argument(
        "--with-bambi",
        action="store_true",
        help="part laplace: also run bambi 0.17.2 (numpyro) in benchmarks/.venv-bambi",
    )
    p.add_argument(
        "--bambi-methods", default="numpyro", help="comma-separated, e.g. numpyro,nutpie"
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when a guard of the speed goals fails (see guards())",
    )
    a = p.parse_args(argv)
    parts = a.parts.split(",")
    study = paper_study(a.quick)
    one = study.subset(dimensions="toxicity")
    rows, fit = [], None

    def report(new):
        for r in new:
            print(
                "  ",
                {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()},
                flush=True,
            )
        rows.extend(new)
        if a.out:
            Path(a.out).write_text(json.dumps(rows, indent=1, default=float))

    print(f"load average at start: {os.getloadavg()}", flush=True)
    if "ours" in parts:
        new, fit = part_ours(one, a.draws, a.tune, a.chains)
        report(new)
    if "five" in parts:
        report(part_five(study, a.draws, a.tune, a.chains))
    if "ablation" in parts:
        report(part_ablation(one, a.draws, a.tune, a.chains))
    if "clmm" in parts:
        report(part_clmm(one, a.draws, a.tune, a.chains, fit))
    if "coverage" in parts:
        report(part_coverage(a.coverage_studies, a.coverage_draws, a.coverage_draws, 2))
    if "laplace" in parts:
        part_laplace(
            a.quick,
            a.draws,
            a.tune,
            a.chains,
            a.with_bambi,
            tuple(a.bambi_methods.split(",")),
            report=report,
        )
    if "laplace_marginal" in parts:
        report(part_laplace_marginal(a.quick, a.draws, a.tune, a.chains))
    if "five_laplace" in parts:
        report(part_five_laplace(study, a.draws, a.chains))
    if "coverage_laplace" in parts:
        report(
            part_coverage(
                a.coverage_studies, a.coverage_draws, a.coverage_draws, 2, method="laplace"
            )
        )
    if "baseline" in parts:
        report(part_baseline(one, a.draws, a.tune, a.chains))
        if fit is not None and rows[-1].get("ess_per_s"):
            print(
                f"   ESS/s ratio fit_bayes / baseline: {rows[0]['ess_per_s'] / rows[-1]['ess_per_s']:.1f}"
            )
    print(f"load average at end: {os.getloadavg()}", flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format="{:.3g}".format, max_colwidth=70))
    failed = [g for g in guards(rows) if not g[1]]
    for name, ok, value in guards(rows):
        print(f"guard {'ok  ' if ok else 'FAIL'} {name}: {value}")
    return 1 if (failed and a.check) else 0


def guards(rows: list[dict]) -> list[tuple[str, bool, str]]:
    """The speed goals as pass/fail lines, from the rows of this run (parts present only):
    ``method="laplace"`` at least 5× bambi + numpyro's minimum ESS per second on each data set,
    with every R-hat ≤ 1.01; five paper-scale dimensions under 60 s with every check passed,
    minimum ESS ≥ 400 and R-hat ≤ 1.01."""
    out = []
    by_name = {r.get("comparison", ""): r for r in rows}
    for name, r in by_name.items():
        if name.startswith("ratio fit_bayes laplace"):
            out.append((name, r["ess_per_s"] >= 5.0, f"{r['ess_per_s']:.1f}× (goal ≥ 5×)"))
        if name.startswith("fit_bayes laplace,") and "max_rhat" in r and "dimensions" not in name:
            out.append((f"R-hat, {name}", r["max_rhat"] <= 1.01, f"{r['max_rhat']:.3f}"))
        if name.startswith("fit_bayes laplace, all"):
            ok = (
                r["seconds"] < 60
                and r["min_ess_bulk"] >= 400
                and r["max_rhat"] <= 1.01
                and r["note"].startswith("0 failed")
            )
            out.append(
                (
                    name,
                    ok,
                    f"{r['seconds']:.1f} s, min ESS {r['min_ess_bulk']:.0f}, max R-hat "
                    f"{r['max_rhat']:.3f}, {r['note']} (goal < 60 s, ≥ 400, ≤ 1.01, none)",
                )
            )
    return out


if __name__ == "__main__":
    raise SystemExit(main())
