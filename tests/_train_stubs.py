"""Stand-ins for pluralign.labels in the training tests: pair labels and a keyword judge."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

TOXIC_WORDS = ("idiot", "stupid", "pathetic", "dumb", "fool", "worthless", "loser", "whining", "silly")


def keyword_judge(texts, group=None):
    """Toxicity = share of words that are insults; a second dimension counts caring words."""
    rows = []
    for t in texts:
        words = [w.strip(".,!?;:'\"").lower() for w in t.split()] or [""]
        tox = sum(any(k in w for k in TOXIC_WORDS) for w in words) / len(words)
        care = sum(w in {"sorry", "understand", "feelings", "valid", "care"} for w in words) / len(words)
        rows.append({"toxicity": tox, "emotional_awareness": care})
    return pd.DataFrame(rows)


class StubLabels:
    def __init__(self, table):
        self.table = table

    def to_dataset(self):
        import datasets

        cols = ["prompt", "chosen", "rejected", "p_chosen"]
        return datasets.Dataset.from_pandas(self.table[cols], preserve_index=False)


def stub_preference_labels(study, method="distribution", group=None, dimensions=None, weights=None,
                           fit=None, seed=None):
    """Pairs within a prompt; p = share of (rater-mean) comparisons where A is less toxic than B."""
    r = study.ratings[study.ratings["dimension"] == "toxicity"]
    if group:
        raters = study.raters
        keep = raters.loc[np.logical_and.reduce([raters[k] == v for k, v in group.items()]), "rater"]
        r = r[r["rater"].isin(keep)]
    mean = r.groupby("item")["rating"].mean()
    items = study.items.set_index("item")
    rows = []
    for pid, part in items.groupby("prompt_id"):
        for a, b in itertools.combinations(part.index, 2):
            if a not in mean or b not in mean:
                continue
            d = mean[b] - mean[a]  # > 0: a less toxic
            p = 1 / (1 + np.exp(-2 * d)) if method == "distribution" else float(d > 0) + 0.5 * (d == 0)
            chosen, rejected, pc = (a, b, p) if p >= 0.5 else (b, a, 1 - p)
            rows.append({"prompt": part.loc[a, "prompt"], "chosen": items.loc[chosen, "response"],
                         "rejected": items.loc[rejected, "response"], "p_chosen": pc})
    return StubLabels(pd.DataFrame(rows))


class StubReward:
    def __call__(self, prompts, completions, **kwargs):
        return (-keyword_judge(completions)["toxicity"]).tolist()

    def score(self, texts, group=None):
        return keyword_judge(texts, group)


def stub_reward_function(study_or_fit, group=None, dimensions=None, weights=None, seed=None):
    return StubReward()
