"""Do raters of different political leaning rate the responses of different LLMs differently?

    python analysis/llm_by_ideology.py --out DIR [--n-raters 600] [--seed 7]

A simulated study in which conservative raters find one LLM's responses less toxic and another's
more toxic than liberal raters do (known truth), analysed three ways: the model-free relative
difference of conservative and liberal raters within each LLM's responses
(``relative_difference(..., within="source_model")``), a linear mixed model with the
cross-level interaction ``ideology * source_model`` and crossed rater and item intercepts (its
coefficients and its contrasts on each LLM's responses, ``effects_within``), and its marginal
means per ideology and LLM. Writes ``llm_by_ideology.png`` (the marginal means)
and the tables as CSV to DIR. The documentation builds its figure with this script.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import _common  # noqa: F401  (offline, single-threaded, Agg backend)
import pandas as pd

#: Latent shifts of conservative raters' ratings of each LLM's responses beyond liberal raters'.
INTERACTION = {"model_b": -0.35, "model_c": 0.35}


def simulate(n_raters: int, seed: int):
    """The worked example's study: toxicity ratings of three LLMs' responses."""
    from pluralign.data import simulate_study

    return simulate_study(
        n_raters=n_raters,
        n_prompts=150,
        items_per_rater=10,
        dimensions=["toxicity"],
        missing_share=0.0,
        source_model_interactions={"toxicity": {"ideology": {"conservative": INTERACTION}}},
        length_interactions={},
        seed=seed,
    )


def analyse(study):
    """Within-LLM relative differences, the interaction model and its marginal means."""
    from pluralign.describe import relative_difference
    from pluralign.models import effects_within, fit_mixed

    reference = {"ideology": "liberal", "source_model": "model_a"}
    within = relative_difference(study, by="ideology", within="source_model", reference="liberal")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        fit = fit_mixed(study, "rating ~ ideology * source_model", reference=reference)
    effects = pd.concat(
        [fit.effects(scale="link"), effects_within(fit, "ideology", "source_model")],
        ignore_index=True,
    )
    means = fit.marginal_means(by=["source_model", "ideology"])
    return within, effects, means


def figure(means: pd.DataFrame):
    """Marginal mean toxicity per LLM (rows) and ideology (colours), with 95 % intervals."""
    from pluralign import plots

    return plots.group_means(
        means,
        by="source_model",
        hue="ideology",
        order=["model_a", "model_b", "model_c"],
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="output folder (created if needed)")
    p.add_argument("--n-raters", type=int, default=600)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    from pluralign import plots

    sim = simulate(args.n_raters, args.seed)
    within, effects, means = analyse(sim.study)
    args.out.mkdir(parents=True, exist_ok=True)
    within.to_csv(args.out / "llm_by_ideology_within.csv", index=False)
    effects.to_csv(args.out / "llm_by_ideology_effects.csv", index=False)
    means.to_csv(args.out / "llm_by_ideology_means.csv", index=False)
    fig = figure(means)
    plots.savefig(fig, args.out / "llm_by_ideology", formats=("png",))
    cols = ["source_model", "group", "mean", "reference", "relative_pct", "relative_ci_low",
            "relative_ci_high"]  # fmt: skip
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(within.query("group == 'conservative'")[cols].round(2).to_string(index=False))
        inter = effects[effects["term"] == "ideology:source_model"]
        print(inter[["level", "reference", "estimate", "ci_low", "ci_high"]].round(3))
        per_llm = effects.dropna(subset=["source_model"])
        print(per_llm[["source_model", "level", "difference", "difference_ci_low",
                       "difference_ci_high"]].round(3).to_string(index=False))  # fmt: skip
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
