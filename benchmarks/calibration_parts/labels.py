"""Calibration of the labels layer: the disagreement test and the bias-corrected divergence.

Simulator: two groups of raters (``per_group`` each) rate every one of ``n_items`` items on a
5-point scale from a cumulative-logit model, ``latent = η_item + δ·[group B] + u_rater + ε`` with
``η_item ~ N(0, 1.2²)``, ``u_rater ~ N(0, 0.5²)`` and logistic ``ε`` (cutpoints −1.5, −0.5,
0.5, 1.5). Within an item the ratings of different raters are independent draws from the
group's marginal distribution ``P_g(k | item) = E_u[P(k | η + δ_g + u)]`` (computed by
Gauss–Hermite quadrature), so the true divergence of an item is the JSD between the two groups'
marginal distributions; it is 0 when ``δ = 0``.

Rows: the per-item permutation test's rejection rate and Benjamini–Hochberg's family-wise
rejection rate when the groups agree (``δ = 0``), and the coverage of the interval of the
bias-corrected JSD when they agree and when they differ (``δ = 1`` and ``δ = 2``).

Soft labels: the ``distribution`` method's ``p`` is reported without an interval (``p_sd`` is
NaN for it), so it has no coverage row.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon

from pluralign._numeric import gauss_hermite
from pluralign.data import Scale, Study
from pluralign.labels import group_divergence
from pluralign.models import cumulative_probs

CUTPOINTS = np.array([-1.5, -0.5, 0.5, 1.5])
ITEM_SD, RATER_SD = 1.2, 0.5
ALPHA = 0.05


def simulate(
    rng: np.random.Generator, *, n_items: int = 20, per_group: int = 10, shift: float = 0.0
) -> tuple[Study, pd.Series]:
    """A two-group study and the true JSD of each item (indexed by item id)."""
    n_raters = 2 * per_group
    group_b = np.arange(n_raters) >= per_group
    eta = rng.normal(0, ITEM_SD, n_items)
    u = rng.normal(0, RATER_SD, n_raters)
    latent = eta[None, :] + shift * group_b[:, None] + u[:, None]
    latent = latent + rng.logistic(size=(n_raters, n_items))
    rating = 1 + (latent[..., None] > CUTPOINTS).sum(axis=-1)
    raters = pd.DataFrame({
        "rater": [f"r{k:03d}" for k in range(n_raters)],
        "gender": np.where(group_b, "she/her", "he/him"),
    })  # fmt: skip
    items = [f"i{j:03d}" for j in range(n_items)]
    ratings = pd.DataFrame({
        "rater": np.repeat(raters["rater"].to_numpy(), n_items),
        "item": np.tile(items, n_raters), "dimension": "toxicity", "rating": rating.ravel(),
    })  # fmt: skip
    study = Study.from_frames(ratings, raters, scales=[Scale("toxicity", 1, 5)])
    return study, pd.Series(true_jsd(eta, shift), index=items)


def marginal_probs(eta: np.ndarray) -> np.ndarray:
    """Rating distribution of a random rater: ``E_u[P(k | η + u)]`` (items × 5)."""
    x, w = gauss_hermite()
    p = cumulative_probs(eta[:, None] + RATER_SD * x[None, :], CUTPOINTS)  # items × nodes × 5
    return (p * w[None, :, None]).sum(axis=1)


def true_jsd(eta: np.ndarray, shift: float) -> np.ndarray:
    """JSD between the two groups' marginal rating distributions of each item (he/him, she/her)."""
    return jensenshannon(marginal_probs(eta), marginal_probs(eta + shift), base=2, axis=-1) ** 2


def divergence_run(
    n_sims: int, seed: int, *, shift: float, n_items: int = 20, n_perm: int = 9999
) -> dict[str, float]:
    """Rejection and coverage shares over ``n_sims`` simulated studies."""
    rng = np.random.default_rng(seed)
    reject, any_flag, covered, n_tests = 0, 0, 0, 0
    for s in range(n_sims):
        study, truth = simulate(rng, n_items=n_items, shift=shift)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = group_divergence(
                study, "gender", groups=("he/him", "she/her"), n_perm=n_perm, n_boot=200,
                seed=seed + s, ci_prob=0.95,
            )  # fmt: skip
        t = truth.reindex(out["item"]).to_numpy()
        reject += int((out["p_value"] <= ALPHA).sum())
        any_flag += int((out["p_adjusted"] <= ALPHA).any())
        covered += int(((out["ci_low"] <= t) & (t <= out["ci_high"])).sum())
        n_tests += len(out)
    return {
        "reject": reject / n_tests,
        "any_flag": any_flag / n_sims,
        "coverage": covered / n_tests,
        "n_tests": n_tests,
    }


def run(quick: bool, seed: int) -> list[dict]:
    n_sims = 10 if quick else 500
    design = "2 groups × 10 raters, 20 items, 5-point ordinal with rater intercepts"
    null = divergence_run(n_sims, seed, shift=0.0)
    alt = divergence_run(n_sims, seed + 1, shift=1.0)
    far = divergence_run(n_sims, seed + 2, shift=2.0)
    return [
        {
            "quantity": "item disagreement, permutation test of the JSD (labels shuffled "
            "within item), per item",
            "kind": "null rejection",
            "nominal": ALPHA,
            "observed": null["reject"],
            "n_sims": null["n_tests"],
            "setting": f"{design}; identical distributions ({n_sims} studies)",
        },
        {
            "quantity": "any item flagged, Benjamini–Hochberg over the 20 items",
            "kind": "null rejection",
            "nominal": ALPHA,
            "observed": null["any_flag"],
            "n_sims": n_sims,
            "setting": f"{design}; identical distributions",
        },
        {
            "quantity": "bias-corrected JSD (plug-in − permutation-null mean), bootstrap "
            "percentile interval less both biases",
            "kind": "coverage",
            "nominal": 0.95,
            "observed": null["coverage"],
            "n_sims": null["n_tests"],
            "setting": f"{design}; identical distributions, true JSD 0 ({n_sims} studies)",
        },
        {
            "quantity": "bias-corrected JSD (plug-in − permutation-null mean), bootstrap "
            "percentile interval less both biases",
            "kind": "coverage",
            "nominal": 0.95,
            "observed": alt["coverage"],
            "n_sims": alt["n_tests"],
            "setting": f"{design}; group B shifted by 1 logit ({n_sims} studies)",
        },
        {
            "quantity": "bias-corrected JSD (plug-in − permutation-null mean), bootstrap "
            "percentile interval less both biases",
            "kind": "coverage",
            "nominal": 0.95,
            "observed": far["coverage"],
            "n_sims": far["n_tests"],
            "setting": f"{design}; group B shifted by 2 logits ({n_sims} studies)",
        },
    ]


# --------------------------------------------------------------------------------------------
# Posterior labels with correlated dimensions
#
# posterior_pair_probabilities treats a rater's ratings of one response on different
# dimensions as independent given the rater's intercepts (one model per dimension). Here the
# truth correlates them: the logistic errors of toxicity and helpfulness of one rating share a
# Gaussian copula with correlation ``rho_error`` (each dimension's marginal model stays the
# cumulative-logit model that is fitted), and the rater intercepts correlate with ``rho_rater``.

TOX_HELP = ("toxicity", "helpfulness")


def joint_pair_probabilities(
    eta_a: np.ndarray,
    eta_b: np.ndarray,
    *,
    rho_error: float,
    rho_rater: float = 0.0,
    rater_sd: float = 0.8,
    n_mc: int = 200_000,
    seed: int = 0,
) -> np.ndarray:
    """P(S_A > S_B) + ½ P(S_A = S_B) for a random rater, S = helpfulness − toxicity (rescaled).

    ``eta_a, eta_b``: (pairs × 2) latent item effects of (toxicity, helpfulness). Monte Carlo with
    ``n_mc`` raters; the same seed gives common random numbers across correlations.
    """
    from scipy.special import logit, ndtr

    rng = np.random.default_rng(seed)
    n_pairs = len(eta_a)

    def correlated(rho: float, shape: tuple[int, ...]) -> np.ndarray:
        z = rng.standard_normal((*shape, 2))
        return np.stack([z[..., 0], rho * z[..., 0] + np.sqrt(1 - rho**2) * z[..., 1]], axis=-1)

    u = rater_sd * correlated(rho_rater, (n_mc, 1))
    out = np.empty(n_pairs)
    for k in range(n_pairs):
        score = []
        for eta in (eta_a[k], eta_b[k]):
            err = logit(ndtr(correlated(rho_error, (n_mc,))))
            r = (eta + u[:, 0] + err)[..., None] > CUTPOINTS
            r = r.sum(axis=-1)
            score.append(r[:, 1] - r[:, 0])  # helpfulness up, toxicity down, equal weights
        out[k] = np.mean(score[0] > score[1]) + 0.5 * np.mean(score[0] == score[1])
    return out


def simulate_correlated(
    rng: np.random.Generator,
    *,
    n_raters: int,
    n_prompts: int = 3,
    per_prompt: int = 4,
    rho_error: float,
    rater_sd: float = 0.8,
) -> tuple[Study, pd.DataFrame]:
    """Every rater rates every response on both dimensions; pairs are responses of one prompt."""
    from itertools import combinations

    from scipy.special import logit, ndtr

    n_items = n_prompts * per_prompt
    trait = np.array([[1.0, -0.6], [-0.6, 1.0]]) * ITEM_SD**2  # toxic responses help less
    eta = rng.multivariate_normal([0.0, 0.0], trait, n_items)
    u = rater_sd * rng.standard_normal((n_raters, 2))
    z = rng.standard_normal((n_raters, n_items, 2))
    z[..., 1] = rho_error * z[..., 0] + np.sqrt(1 - rho_error**2) * z[..., 1]
    latent = eta[None] + u[:, None, :] + logit(ndtr(z))
    rating = 1 + (latent[..., None] > CUTPOINTS).sum(axis=-1)  # raters × items × 2
    raters = pd.DataFrame({"rater": [f"r{k:04d}" for k in range(n_raters)],
                           "gender": np.where(np.arange(n_raters) % 2, "she/her", "he/him")})  # fmt: skip
    items = pd.DataFrame({"item": [f"i{j:03d}" for j in range(n_items)],
                          "prompt_id": [f"p{j // per_prompt}" for j in range(n_items)]})  # fmt: skip
    ratings = pd.DataFrame({
        "rater": np.repeat(raters["rater"].to_numpy(), n_items * 2),
        "item": np.tile(np.repeat(items["item"].to_numpy(), 2), n_raters),
        "dimension": np.tile(TOX_HELP, n_raters * n_items), "rating": rating.ravel(),
    })  # fmt: skip
    scales = [Scale("toxicity", 1, 5, more_is_better=False),
              Scale("helpfulness", 1, 5, more_is_better=True)]  # fmt: skip
    study = Study.from_frames(ratings, raters, items, scales=scales)
    pairs = [
        (a, b) for _, grp in items.groupby("prompt_id") for a, b in combinations(grp["item"], 2)
    ]
    pairs = pd.DataFrame(pairs, columns=["item_a", "item_b"])
    index = {item: j for j, item in enumerate(items["item"])}
    pairs["eta_a"] = [eta[index[a]] for a in pairs["item_a"]]
    pairs["eta_b"] = [eta[index[b]] for b in pairs["item_b"]]
    return study, pairs


def correlated_dimensions_error(
    *, rho_error: float = -0.6, n_raters: int = 400, seed: int = 0, draws: int = 500
) -> pd.DataFrame:
    """Posterior labels fitted to correlated dimensions against the truth, per pair.

    Returns ``item_a, item_b, p, p_sd`` (posterior labels), ``p_true`` (joint model) and
    ``p_independent`` (the same marginal models with independent dimensions: what the
    posterior label estimates).
    """
    from pluralign.labels import posterior_pair_probabilities
    from pluralign.models import fit_bayes

    rng = np.random.default_rng(seed)
    study, pairs = simulate_correlated(rng, n_raters=n_raters, rho_error=rho_error)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_bayes(study, "rating ~ 1", draws=draws, tune=draws, seed=seed, progressbar=False)
    out = posterior_pair_probabilities(fit, pairs[["item_a", "item_b"]])
    ea, eb = np.stack(pairs["eta_a"]), np.stack(pairs["eta_b"])
    out["p_true"] = joint_pair_probabilities(ea, eb, rho_error=rho_error, seed=seed + 1)
    out["p_independent"] = joint_pair_probabilities(ea, eb, rho_error=0.0, seed=seed + 1)
    return out


if __name__ == "__main__":  # python benchmarks/calibration_parts/labels.py
    rng = np.random.default_rng(1)
    trait = np.array([[1.0, -0.6], [-0.6, 1.0]]) * ITEM_SD**2
    ea, eb = rng.multivariate_normal([0, 0], trait, 40), rng.multivariate_normal([0, 0], trait, 40)
    base = joint_pair_probabilities(ea, eb, rho_error=0.0, seed=5)
    print("rho_error rho_rater mean|dp| max|dp| mean|p-.5| (truth / independent)")
    for rho_e, rho_u in [(-0.3, 0.0), (-0.6, 0.0), (0.3, 0.0), (0.0, -0.6), (-0.6, -0.6)]:
        t = joint_pair_probabilities(ea, eb, rho_error=rho_e, rho_rater=rho_u, seed=5)
        d = np.abs(t - base)
        print(f"{rho_e:5.1f} {rho_u:5.1f} {d.mean():.3f} {d.max():.3f} "
              f"{np.abs(t - 0.5).mean():.3f} / {np.abs(base - 0.5).mean():.3f}")  # fmt: skip
    res = correlated_dimensions_error()
    z = (res["p_true"] - res["p"]) / res["p_sd"]
    print(res.round(3).to_string())
    print("mean |p - p_true|", np.abs(res["p"] - res["p_true"]).mean().round(3),
          "mean |p - p_independent|", np.abs(res["p"] - res["p_independent"]).mean().round(3),
          "share |p_true - p| <= 1.96 p_sd", np.mean(np.abs(z) <= 1.96).round(2))  # fmt: skip
