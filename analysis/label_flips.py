"""How many preference labels flip between labelling methods and between rater groups.

On the default simulated study (1,095 raters, 250 prompts × 4 responses, 5 dimensions, seed
2024) every pair of responses to the same prompt is labelled by majority, by distribution
(hard side of p) — each with same-rater comparisons where a rater saw both responses
(``comparison="auto"``) and with item-level (cross) comparisons only — and, when the Bayesian
model is available, by the posterior of ``fit_bayes``; then by women vs men, liberals vs conservatives and Black vs White raters. A *flip* is a pair
whose preferred response differs; pairs with ``p = 0.5`` exactly (undecided) or dropped (ties
under majority, no comparisons in a group) are counted but not compared. As a yardstick, each
group comparison is repeated with the group labels shuffled among the same raters, which
gives the flips expected from sampling noise alone.

The posterior labels come from ``fit_bayes(study, "rating ~ gender + ideology + race",
group_item="gender")``: women and men get their own view of each item, while ideology and race
groups differ only through their fixed effects (a shift of the whole latent scale, which can
flip a pair only through the nonlinearity of the ordinal link and the multi-dimension score).

Run::

    python analysis/label_flips.py                 # with the posterior part (~30 min on 2 cores)
    python analysis/label_flips.py --no-posterior  # labels from ratings only (seconds)
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from pluralign._errors import DroppedRowsWarning
from pluralign.data import Study, simulate_study
from pluralign.labels import PreferenceLabels, preference_labels

GROUP_PAIRS = [
    ("gender", "she/her", "he/him"),
    ("ideology", "liberal", "conservative"),
    ("race", "Black", "White"),
]
COLUMNS = ["kind", "comparison", "method", "label_a", "label_b", "n_pairs", "n_labelled_a",
           "n_labelled_b", "n_both", "n_undecided", "n_compared", "n_flips", "share_flipped"]  # fmt: skip


def hard_side(labels: PreferenceLabels) -> pd.Series:
    """1 if A is preferred, 0 if B, NaN when p = 0.5 exactly; indexed by (item_a, item_b)."""
    t = labels.table.set_index(["item_a", "item_b"])["p_a"]
    return pd.Series(np.where(t > 0.5, 1.0, np.where(t < 0.5, 0.0, np.nan)), index=t.index)


def compare(kind, what, method, name_a, la, name_b, lb, n_pairs) -> dict:
    a, b = hard_side(la), hard_side(lb)
    both = a.index.intersection(b.index)
    a, b = a.loc[both], b.loc[both]
    decided = a.notna() & b.notna()
    flips = int((a[decided] != b[decided]).sum())
    return {
        "kind": kind, "comparison": what, "method": method, "label_a": name_a, "label_b": name_b,
        "n_pairs": n_pairs, "n_labelled_a": len(la), "n_labelled_b": len(lb),
        "n_both": len(both), "n_undecided": int((~decided).sum()),
        "n_compared": int(decided.sum()), "n_flips": flips,
        "share_flipped": flips / max(int(decided.sum()), 1),
    }  # fmt: skip


def shuffled(study: Study, column: str, a: str, b: str, rng: np.random.Generator) -> Study:
    """The study with ``column`` permuted among the raters of groups a and b."""
    raters = study.raters.copy()
    if column in study.multiselect:
        member = raters[column].map(lambda t: a in t or b in t)
    else:
        member = raters[column].isin([a, b]).fillna(False)
    idx = np.flatnonzero(member.to_numpy(dtype=bool))
    values = raters[column].to_numpy(dtype=object).copy()
    values[idx] = values[rng.permutation(idx)]
    raters[column] = values
    return study.replace(raters=raters)


def try_posterior(study: Study, draws: int, seed: int):
    """A ``fit_bayes`` fit with gender-specific item views, or why it failed (no bayes extra)."""
    try:
        from pluralign.models import fit_bayes

        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = fit_bayes(
                study,
                "rating ~ gender + ideology + race",
                group_item="gender",
                draws=draws,
                tune=draws,
                chains=2,
                seed=seed,
                progressbar=False,
            )
        print(f"fit_bayes: {time.perf_counter() - t0:.0f} s for {len(fit.dimensions)} dimensions")
        return fit, ""
    except Exception as exc:  # report and go on with the rating-based methods
        return None, f"{type(exc).__name__}: {exc}"


#: Labelling variants: (name, method, comparison). "auto" uses same-rater comparisons where a
#: target rater saw both responses; "cross" always aggregates item-level ratings.
VARIANTS = [
    ("majority", "majority", "auto"),
    ("distribution", "distribution", "auto"),
    ("majority (cross)", "majority", "cross"),
    ("distribution (cross)", "distribution", "cross"),
]


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="analysis/output/label_flips.csv")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--draws", type=int, default=200, help="fit_bayes draws (and tune)")
    parser.add_argument(
        "--posterior-draws", type=int, default=100, help="posterior draws used per pair probability"
    )
    parser.add_argument("--no-posterior", action="store_true")
    args = parser.parse_args(argv)

    study = simulate_study(seed=args.seed).study
    k = study.items.groupby("prompt_id").size()
    n_pairs = int((k * (k - 1) // 2).sum())
    print(study)
    fit, why = (
        (None, "skipped (--no-posterior)")
        if args.no_posterior
        else try_posterior(study, args.draws, args.seed)
    )
    variants = list(VARIANTS)
    if fit is not None:
        variants.append(("posterior", "posterior", "auto"))
    else:
        print(f"posterior labels not computed: {why}")

    def make(s: Study, variant, group=None) -> PreferenceLabels:
        name, method, comparison = variant
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DroppedRowsWarning)  # counts are in .dropped
            out = preference_labels(s, method, group=group, fit=fit, seed=args.seed,
                                    comparison=comparison, n_draws=args.posterior_draws)  # fmt: skip
        print(f"  {name} labels for {out.group}: {len(out)} pairs, "
              f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
        return out

    rows = []
    overall = {v[0]: make(study, v) for v in variants}
    names = list(overall)
    for i, m1 in enumerate(names):
        for m2 in names[i + 1 :]:
            rows.append(
                compare("method", f"{m1} vs {m2}", "", m1, overall[m1], m2, overall[m2], n_pairs)
            )
    for g, (column, a, b) in enumerate(GROUP_PAIRS):
        sh = shuffled(study, column, a, b, np.random.default_rng([args.seed, g]))
        for v in variants:
            la, lb = make(study, v, {column: a}), make(study, v, {column: b})
            rows.append(compare("group", f"{column}: {a} vs {b}", v[0], a, la, b, lb, n_pairs))
            if v[1] != "posterior":  # the model's labels do not depend on who rated what
                sa, sb = make(sh, v, {column: a}), make(sh, v, {column: b})
                rows.append(
                    compare("shuffled groups", f"{column}: {a} vs {b}", v[0], a, sa, b, sb, n_pairs)
                )
    table = pd.DataFrame(rows, columns=COLUMNS)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(
            table.drop(columns=["n_pairs"]).to_string(
                index=False, float_format=lambda x: f"{x:.3f}"
            )
        )
    print(f"{n_pairs} candidate pairs; written to {out}")
    return table


if __name__ == "__main__":
    main()
