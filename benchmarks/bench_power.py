"""Speed of simulation-based power analysis, of ``import pluralign`` and of the first model fit.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_power.py [--n-sims 500] [--quick]
[--check]``

Sections (each prints its rows; the table at the end puts them side by side):

``power``
    ``n_sims`` paper-scale studies (1,095 raters × 5 of 1,000 items, one 5-point dimension)
    fitted with the crossed linear mixed model on ``--n-jobs`` worker processes, by the path
    :func:`pluralign.power.power_analysis` uses (``MixedFitter``: a screening fit with the
    approximate kernel, refitted exactly when a detection or coverage decision is close) and by
    the exact path (``MixedFitter(screen_margin=None)``: every study fitted exactly, with the
    convergence check). The exact path runs ``--old-sims`` simulations and is extrapolated to
    ``n_sims``. The two paths give the same detections and coverage (checked here on the
    common simulations, with the largest difference of the Wald z statistics). Because wall
    time on a shared machine depends on its load, the CPU seconds of ``--cpu-sims``
    simulations in this process are measured too and turned into the time of 500 simulations
    on ``--n-jobs`` idle cores.
``dask``
    The same simulations on a local Dask cluster of ``--n-jobs`` single-threaded worker
    processes (``client=``) against joblib's process pool: wall time, and that the tables are
    identical.
``kernel``
    The fit behind one paper-scale simulation with the crossed system's dense factor (exact;
    what ``fit_mixed`` picks at this size) and its matrix-free iterative one (an approximation),
    CPU seconds and the largest difference of the Wald z statistic.
``import``
    ``import pluralign`` in a fresh interpreter (median of ``--repeats``), against importing
    every public name at once (what ``import pluralign`` did before its names were loaded on
    first use).
``first-call``
    In a fresh interpreter: the first ``fit_mixed`` call against the median of later calls on
    studies of the same size (paper scale and a small study).

``--check`` exits with status 1 when a guard fails: 500 simulations over 60 s (from the CPU time
per simulation), ``import pluralign`` over 1.5 s, or a first call over 2× later calls.
Timings depend on the machine and its load; compare rows of one run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd

from pluralign.power import MixedFitter, StudyDesign, power_analysis

TERM = "gender"
GUARDS = {"power_500_s": 60.0, "import_s": 1.5, "first_call_ratio": 2.0}


def paper_design(quick: bool) -> StudyDesign:
    """Paper scale: 1,095 raters rating 5 of 1,000 items (250 prompts × 4 responses)."""
    d = StudyDesign(effects={"he/him": 0.25})
    return d.with_n_raters(300) if quick else d.with_n_raters(1095)


def cpu_per_sim(fitter, design: StudyDesign, k: int) -> float:
    """CPU seconds of one simulation (draw + fit) in this process: less sensitive to a shared
    machine's load than wall time."""
    seqs = np.random.SeedSequence(7).spawn(k)
    start = time.process_time()
    for ss in seqs:
        fitter(design.simulate(np.random.default_rng(ss)))
    return (time.process_time() - start) / k


def section_power(args) -> list[dict]:
    design = paper_design(args.quick)
    kw = dict(seed=1, progress=False, n_jobs=args.n_jobs)
    t0 = time.perf_counter()
    new = power_analysis(design, n_sims=args.n_sims, model="mixed", **kw)
    new_s = time.perf_counter() - t0
    exact_fitter = MixedFitter(term=TERM, dimension=design.dimension, screen_margin=None)
    t0 = time.perf_counter()
    old = power_analysis(design, n_sims=args.old_sims, model=exact_fitter, **kw)
    old_s = time.perf_counter() - t0
    common = new.table[new.table["sim"] < args.old_sims]
    same = bool(
        np.array_equal(common["detected"].to_numpy(), old.table["detected"].to_numpy())
        and np.array_equal(common["covered"].to_numpy(), old.table["covered"].to_numpy())
    )

    def z(t):
        return (
            2
            * 1.959963984540054
            * t["estimate"].to_numpy()
            / (t["ci_high"] - t["ci_low"]).to_numpy()
        )

    dz = float(np.max(np.abs(z(common) - z(old.table))))
    per_new, per_old = new_s / args.n_sims, old_s / args.old_sims
    cpu_new = cpu_per_sim(MixedFitter(term=TERM, dimension=design.dimension), design, args.cpu_sims)
    cpu_old = cpu_per_sim(exact_fitter, design, min(args.cpu_sims, 5))
    print(
        f"power: {args.n_sims} sims in {new_s:.1f} s wall ({per_new:.3f} s/sim); exact path "
        f"{per_old:.3f} s/sim; same detections and coverage: {same} (max |dz| {dz:.1e}); "
        f"power {new.power:.3f}; CPU per simulation {cpu_new:.3f} s (exact path {cpu_old:.3f} s)"
    )
    return [
        {
            "comparison": f"power, {args.n_sims} sims (n_jobs={args.n_jobs}), wall",
            "new_s": new_s,
            "old_s": per_old * args.n_sims,
            "ratio": per_old / per_new,
            "note": f"old: exact fits, extrapolated from {args.old_sims} sims; same decisions: {same}",
        },
        {
            "comparison": f"power, 500 sims on {args.n_jobs} idle cores (from CPU s/sim)",
            "new_s": 500 * cpu_new / args.n_jobs,
            "old_s": 500 * cpu_old / args.n_jobs,
            "ratio": cpu_old / cpu_new,
            "note": "500 x CPU s per simulation / cores (old: exact fits); guard: new < 60 s",
        },
    ]


def section_kernel(args) -> list[dict]:
    """The crossed-system factor behind a paper-scale fit: dense (exact, what fit_mixed uses at
    this size) against the matrix-free iterative one (an approximation), on the same studies."""
    from pluralign.models import build_design
    from pluralign.models._lmm import fit_lmm

    design = paper_design(args.quick)
    cpu, z = {}, {}
    for method in ("dense", "iterative"):
        start = time.process_time()
        for seed in range(3):
            d = build_design(design.simulate(seed), f"rating ~ {TERM}", dimension=design.dimension)
            f = fit_lmm(d.X, d.y, d.rater_codes, d.item_codes, method=method)
            z[method, seed] = f.beta[1] / np.sqrt(f.vcov[1, 1])
        cpu[method] = (time.process_time() - start) / 3
    dz = max(abs(z["dense", s] - z["iterative", s]) for s in range(3))
    print(
        f"kernel: dense {cpu['dense']:.3f} CPU s/fit, iterative {cpu['iterative']:.3f}; max |dz| {dz:.1e}"
    )
    return [
        {
            "comparison": "paper-scale fit: iterative vs dense factor (CPU s)",
            "new_s": cpu["iterative"],
            "old_s": cpu["dense"],
            "ratio": cpu["dense"] / cpu["iterative"],
            "note": f"approximate: max |z difference| {dz:.1e}",
        }
    ]


def section_dask(args) -> list[dict]:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        print("dask: skipped (pip install 'pluralign[dask]')")
        return []
    design = paper_design(quick=True)
    n = args.dask_sims
    kw = dict(n_sims=n, model="mixed", seed=2, progress=False)
    t0 = time.perf_counter()
    local = power_analysis(design, n_jobs=args.n_jobs, **kw)
    local_s = time.perf_counter() - t0
    with (
        LocalCluster(n_workers=args.n_jobs, threads_per_worker=1, dashboard_address=":0") as c,
        Client(c) as client,
    ):
        client.run(lambda: __import__("pluralign.power"))  # workers start warm, as a pool would
        t0 = time.perf_counter()
        on_dask = power_analysis(design, client=client, **kw)
        dask_s = time.perf_counter() - t0
    timing = ["simulate_s", "fit_s"]
    same = local.table.drop(columns=timing).equals(on_dask.table.drop(columns=timing))
    print(f"dask: {n} sims (300 raters) {dask_s:.1f} s; joblib {local_s:.1f} s; identical: {same}")
    return [
        {
            "comparison": f"Dask LocalCluster vs joblib, {n} sims, 300 raters",
            "new_s": dask_s,
            "old_s": local_s,
            "ratio": local_s / dask_s,
            "note": f"tables identical: {same}",
        }
    ]


def _fresh(code: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True
    )
    return {k: float(v) for k, v in (item.split("=") for item in out.stdout.split())}


IMPORT_LAZY = """
import time
t = time.perf_counter()
import pluralign
print(f"s={time.perf_counter() - t}")
"""

IMPORT_EAGER = """
import time
t = time.perf_counter()
import pluralign
for name in pluralign.__all__:
    getattr(pluralign, name)
print(f"s={time.perf_counter() - t}")
"""

FIRST_CALL = """
import time
from pluralign import fit_mixed
from pluralign.power import StudyDesign
design = StudyDesign().with_n_raters({n_raters})
studies = [design.simulate(seed) for seed in range(4)]
times = []
for study in studies:
    t = time.perf_counter()
    fit_mixed(study, "rating ~ gender", n_draws=1, progressbar=False).effects(scale="link")
    times.append(time.perf_counter() - t)
later = sorted(times[1:])[1]
print(f"first={{times[0]}} later={{later}}")
"""


def section_import(args) -> list[dict]:
    lazy = float(np.median([_fresh(IMPORT_LAZY)["s"] for _ in range(args.repeats)]))
    eager = float(np.median([_fresh(IMPORT_EAGER)["s"] for _ in range(args.repeats)]))
    print(f"import: import pluralign {lazy:.3f} s; every public name {eager:.3f} s")
    return [
        {
            "comparison": "import pluralign (fresh interpreter)",
            "new_s": lazy,
            "old_s": eager,
            "ratio": eager / lazy,
            "note": "old: every public name imported (the former import pluralign); guard < 1.5 s",
        }
    ]


def section_first_call(args) -> list[dict]:
    rows = []
    for n_raters in (120, 300 if args.quick else 1095):
        r = _fresh(FIRST_CALL.format(n_raters=n_raters))
        print(f"first call, {n_raters} raters: {r['first']:.3f} s; later {r['later']:.3f} s")
        rows.append(
            {
                "comparison": f"first fit_mixed / later, {n_raters} raters",
                "new_s": r["first"],
                "old_s": r["later"],
                "ratio": r["first"] / r["later"],
                "note": "guard: ratio < 2 (new_s: first call, old_s: later calls)",
            }
        )
    return rows


SECTIONS = {
    "import": section_import,
    "first-call": section_first_call,
    "dask": section_dask,
    "power": section_power,
    "kernel": section_kernel,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-sims", type=int, default=500)
    ap.add_argument("--old-sims", type=int, default=40)
    ap.add_argument("--cpu-sims", type=int, default=10)
    ap.add_argument("--dask-sims", type=int, default=40)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="300 raters instead of 1,095")
    ap.add_argument("--only", nargs="*", choices=list(SECTIONS), default=list(SECTIONS))
    ap.add_argument("--check", action="store_true", help="exit 1 when a guard fails")
    args = ap.parse_args(argv)
    rows = []
    for name in args.only:
        rows += SECTIONS[name](args)
    table = pd.DataFrame(rows, columns=["comparison", "new_s", "old_s", "ratio", "note"])
    with pd.option_context("display.width", 200, "display.max_colwidth", 80):
        print(table.round(3).to_string(index=False))
    failed = []
    for r in rows:
        c = r["comparison"]
        if "idle cores" in c and r["new_s"] > GUARDS["power_500_s"]:
            failed.append(f"{c}: {r['new_s']:.1f} s > {GUARDS['power_500_s']} s")
        if c.startswith("import") and r["new_s"] > GUARDS["import_s"]:
            failed.append(f"{c}: {r['new_s']:.2f} s > {GUARDS['import_s']} s")
        if c.startswith("first") and r["ratio"] > GUARDS["first_call_ratio"]:
            failed.append(f"{c}: ratio {r['ratio']:.2f} > {GUARDS['first_call_ratio']}")
    for f in failed:
        print(f"GUARD FAILED: {f}")
    return 1 if (failed and args.check) else 0


if __name__ == "__main__":
    raise SystemExit(main())
