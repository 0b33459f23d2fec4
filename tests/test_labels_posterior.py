"""Posterior preference probabilities from a fitted Bayesian ordinal model."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pymc")
pytest.importorskip("nutpie")

from pluralign._errors import PluralignWarning
from pluralign.data import simulate_study
from pluralign.labels import posterior_pair_probabilities
from pluralign.models import _bayes_kernels as K
from pluralign.models import fit_bayes

LIGHT_RATERS = 4  # raters kept for the items of the "light" prompt


@pytest.fixture(scope="module")
def labelled():
    """200 raters rate all 20 items (5 prompts × 4); prompt p0's items keep only 4 raters."""
    sim = simulate_study(
        n_raters=120, n_prompts=5, responses_per_prompt=4, items_per_rater=20,
        responses_per_visit=4, seed=3, dimensions=["toxicity", "helpfulness"],
    )  # fmt: skip
    study = sim.study
    items = study.items
    light = set(items.loc[items["prompt_id"] == items["prompt_id"].iloc[0], "item"])
    raters = sorted(study.ratings["rater"].unique())
    keep_raters = set(raters[:LIGHT_RATERS])
    r = study.ratings
    keep = ~r["item"].isin(light) | r["rater"].isin(keep_raters)
    small = study._keep(keep, "subset", "light prompt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_bayes(
            small, "rating ~ gender", draws=250, tune=250, chains=2, seed=5, progressbar=False
        )
    pairs = []
    for _, grp in items.groupby("prompt_id"):
        pairs += list(itertools.combinations(sorted(grp["item"]), 2))
    pairs = pd.DataFrame(pairs, columns=["item_a", "item_b"])
    return small, fit, pairs, light


def _empirical(study, pairs, dim):
    """Same-rater share of raters rating A above B (ties ½)."""
    wide = study.ratings[study.ratings["dimension"] == dim].pivot(
        index="rater", columns="item", values="rating"
    )
    out = []
    for a, b in pairs[["item_a", "item_b"]].itertuples(index=False):
        both = wide[[a, b]].dropna()
        sign = np.sign(both[a] - both[b])
        out.append(float(np.mean((sign > 0) + 0.5 * (sign == 0))) if len(both) else np.nan)
    return np.array(out)


def test_posterior_labels_approach_empirical_with_many_raters(labelled):
    study, fit, pairs, light = labelled
    res = posterior_pair_probabilities(fit, pairs, dimensions="toxicity", weights=[1.0])
    assert list(res.columns) == ["item_a", "item_b", "p", "p_sd"]
    heavy = ~pairs["item_a"].isin(light).to_numpy()
    emp = _empirical(study, pairs, "toxicity")
    # toxicity has desirability -1: p is P(A rated LESS toxic) (+ ties/2); flip to compare
    p_higher = 1 - res["p"].to_numpy()
    err = np.abs(p_higher[heavy] - emp[heavy])
    assert err.mean() < 0.03, err
    assert err.max() < 0.08, err
    assert (res["p_sd"] > 0).all() and (res["p_sd"][heavy] < 0.06).all()


def test_posterior_labels_shrink_when_few_raters(labelled):
    study, fit, pairs, light = labelled
    res = posterior_pair_probabilities(fit, pairs, dimensions="toxicity", weights=[1.0])
    few = pairs["item_a"].isin(light).to_numpy()
    emp = _empirical(study, pairs, "toxicity")
    post = res["p"].to_numpy()
    # few raters: pulled toward the population value 0.5 and less certain than many raters
    assert np.mean(np.abs(post[few] - 0.5)) < np.mean(np.abs(emp[few] - 0.5))
    assert res["p_sd"][few].mean() > 2 * res["p_sd"][~few].mean()


def test_target_mix_is_share_weighted_mix_of_groups(labelled):
    _, fit, pairs, _ = labelled
    kw = dict(dimensions="toxicity", weights=[1.0], n_draws=100, seed=1)
    she = posterior_pair_probabilities(fit, pairs, target={"gender": "she/her"}, **kw)
    he = posterior_pair_probabilities(fit, pairs, target={"gender": "he/him"}, **kw)
    mix = posterior_pair_probabilities(
        fit, pairs, target={"gender": {"she/her": 0.7, "he/him": 0.3}}, **kw
    )
    np.testing.assert_allclose(mix["p"], 0.7 * she["p"] + 0.3 * he["p"], atol=1e-12)
    frame = pd.DataFrame({"gender": ["she/her", "he/him"], "share": [0.7, 0.3]})
    mix2 = posterior_pair_probabilities(fit, pairs, target=frame, **kw)
    np.testing.assert_allclose(mix2["p"], mix["p"], atol=1e-12)


def test_multi_dimension_score(labelled):
    _, fit, pairs, _ = labelled
    kw = dict(n_draws=60, seed=2)
    one = posterior_pair_probabilities(fit, pairs, dimensions="toxicity", weights=[1.0], **kw)
    # a zero weight on helpfulness leaves the toxicity-only probability (exact convolution)
    two = posterior_pair_probabilities(
        fit, pairs, dimensions=["toxicity", "helpfulness"],
        weights={"toxicity": 1.0, "helpfulness": 0.0}, **kw)  # fmt: skip
    np.testing.assert_allclose(two["p"], one["p"], atol=1e-9)
    both = posterior_pair_probabilities(fit, pairs, **kw)  # default: desirability-signed, equal
    assert both["p"].between(0, 1).all()
    # swapping A and B gives 1 - p
    swapped = pairs.rename(columns={"item_a": "item_b", "item_b": "item_a"})[["item_a", "item_b"]]
    back = posterior_pair_probabilities(fit, swapped, **kw)
    np.testing.assert_allclose(back["p"], 1 - both["p"], atol=1e-9)


def test_matches_monte_carlo_of_the_definition(labelled):
    """Brute-force simulation of raters (shared u per dimension) reproduces the exact p."""
    _, fit, pairs, _ = labelled
    a, b = pairs.iloc[5]
    idx_n = 8
    res = posterior_pair_probabilities(
        fit, pairs.iloc[[5]], target={"gender": "he/him"}, n_draws=idx_n, seed=4
    )
    rng = np.random.default_rng(0)
    n_total = fit.fits["toxicity"].draws().n
    idx = np.sort(np.random.default_rng(4).choice(n_total, size=idx_n, replace=False))
    frame = fit.fits["toxicity"].rater_frame().assign(gender="he/him")
    m = 40_000
    p = []
    for s in idx:
        score_a = np.zeros(m)
        score_b = np.zeros(m)
        rows = frame.sample(m, replace=True, random_state=int(rng.integers(1 << 31)))
        for dim, sign in (("toxicity", -1), ("helpfulness", 1)):
            fd = fit.fits[dim]
            d = fd.draws()
            X = fd.design.transform(rows)[:, 1:]
            u = rng.normal(0, d.sigma_rater[s], m)
            items = list(fd.design.item_levels)
            for item, acc in ((a, score_a), (b, score_b)):
                eta = X @ d.beta[s] + u + d.item_effect[s, items.index(item)]
                probs = K.cumulative_probs(eta, d.cutpoints[s])
                r = (rng.random(m)[:, None] > np.cumsum(probs, axis=1)).sum(1)
                acc += 0.5 * sign * r / 4
        p.append(np.mean((score_a > score_b) + 0.5 * (score_a == score_b)))
    assert abs(np.mean(p) - res["p"].iloc[0]) < 0.01


def test_kernels_by_hand():
    pa = np.array([0.2, 0.3, 0.5])
    pb = np.array([0.6, 0.3, 0.1])
    brute = sum(pa[i] * pb[j] * (1.0 if i > j else 0.5 if i == j else 0.0)
                for i in range(3) for j in range(3))  # fmt: skip
    assert K.preference_from_probs(pa, pb) == pytest.approx(brute)
    dist = K.difference_distribution(pa, pb)
    assert dist.sum() == pytest.approx(1)
    assert dist[4] == pytest.approx(pa[2] * pb[0])  # r_A - r_B = +2
    values, probs = K.combine_differences([dist, dist], [1.0, 1.0])
    assert probs.sum() == pytest.approx(1)
    assert len(values) == 9


def test_unknown_item_gives_nan_and_warns(labelled):
    _, fit, pairs, _ = labelled
    extra = pd.concat([pairs.iloc[:2], pd.DataFrame({"item_a": ["nope"], "item_b": ["i05"]})])
    with pytest.warns(PluralignWarning, match="nope"):
        res = posterior_pair_probabilities(fit, extra, n_draws=20, seed=1)
    assert res["p"].iloc[:2].notna().all() and np.isnan(res["p"].iloc[2])
