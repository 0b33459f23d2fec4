"""Write a simulated study (and its ground truth) to a folder that the other scripts read.

python analysis/simulate.py --out study/ [--seed 0] [--n-raters 1095]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import _common  # noqa: F401  (environment defaults)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-raters", type=int, default=None, help="default: the simulator's (1,095)")
    args = p.parse_args(argv)
    from pluralign.data import simulate_study

    design = {} if args.n_raters is None else {"n_raters": args.n_raters}
    sim = simulate_study(seed=args.seed, **design)
    sim.study.to_parquet(args.out)
    sim.truth.fixed_effects.to_csv(args.out / "truth_fixed_effects.csv", index=False)
    print(sim.study)
    print(f"study written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
