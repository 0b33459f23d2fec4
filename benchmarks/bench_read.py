"""Reading and describing a large study: a 1,000,000-row CSV and parquet file.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_read.py [--rows 1000000] [--repeats 3]``

Prints the best of ``repeats`` wall times of ``read_study`` (a flat CSV and parquet file with
rater demographics on every row, ids as text; a folder written by ``Study.to_parquet``), of
``Study.from_frames`` on the three tables, and of ``group_means`` by gender without and with a
1,000-resample bootstrap. The file has 20,000 raters × 50 items × 1 dimension by default.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pluralign.data import Scale, Study, read_study
from pluralign.describe import group_means


def make_flat(n_rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_raters = max(n_rows // 50, 2)
    rater = np.repeat(np.arange(n_raters), 50)[:n_rows]
    gender = np.array(["she/her", "he/him", "they/them"])[rater % 3]
    race = np.array(["White", "Black", "Asian", "White;Asian"])[rater % 4]
    return pd.DataFrame(
        {
            "rater": [f"r{r:06d}" for r in rater],
            "item": [f"i{i:04d}" for i in rng.integers(0, 5000, n_rows)],
            "dimension": "toxicity",
            "rating": rng.integers(1, 6, n_rows),
            "gender": gender,
            "race": race,
        }
    ).drop_duplicates(["rater", "item"])


def best(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    flat = make_flat(args.rows)
    kw = {
        "demographics": ["gender", "race"],
        "multiselect": ["race"],
        "scales": [Scale("toxicity", 1, 5)],
    }
    with tempfile.TemporaryDirectory() as tmp:
        csv, pq = Path(tmp) / "flat.csv", Path(tmp) / "flat.parquet"
        flat.to_csv(csv, index=False)
        flat.to_parquet(pq, index=False)
        t_csv, study = best(lambda: read_study(csv, **kw), args.repeats)
        t_pq, _ = best(lambda: read_study(pq, **kw), args.repeats)
        folder = study.to_parquet(Path(tmp) / "study")
        t_folder, _ = best(lambda: read_study(folder), args.repeats)
        long = study.ratings.copy()
        raters, items = study.raters.copy(), study.items.copy()
        t_frames, _ = best(
            lambda: Study.from_frames(
                long, raters, items=items, scales=kw["scales"], multiselect=["race"]
            ),
            args.repeats,
        )
    t_means, _ = best(lambda: group_means(study, "gender", n_boot=0), args.repeats)
    t_boot, _ = best(
        lambda: group_means(study, "gender", ci_method="rater-bootstrap", n_boot=1000, seed=0),
        args.repeats,
    )
    print(f"{study!r}")
    print(f"read_study CSV      {t_csv:6.2f} s")
    print(f"read_study parquet  {t_pq:6.2f} s")
    print(f"read_study folder   {t_folder:6.2f} s  (written by Study.to_parquet)")
    print(f"Study.from_frames   {t_frames:6.2f} s  (long ratings + raters + items tables)")
    print(f"group_means         {t_means:6.2f} s")
    print(f"group_means + boot  {t_boot:6.2f} s  (1,000 rater resamples)")


if __name__ == "__main__":
    main()
