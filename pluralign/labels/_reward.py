"""A text-level reward for a target group: predicted ratings of new text, combined into one scalar."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.model_selection import GroupShuffleSplit
from sklearn.pipeline import FeatureUnion, Pipeline

from pluralign._settings import options
from pluralign.data import Population, PopulationSpec, Study, slug

if TYPE_CHECKING:
    from pluralign.models import ModelResult
from pluralign.labels._posterior import _patterns
from pluralign.labels._score import Dimensions, ScoreSpec, Weights, score_spec

#: Columns of :attr:`RatingReward.heldout_`.
HELDOUT_COLUMNS = (
    "group", "dimension", "n_train", "n_test", "pearson", "spearman", "rmse", "rmse_constant",
    "r2",
)  # fmt: skip


def completion_text(completion: str | Mapping | Sequence[Mapping]) -> str:
    """Text of a completion: a string, or chat messages (``[{"role", "content"}, ...]``).

    For chat messages the assistant turns are joined; if there are none, every turn's content.

    Examples
    --------
    >>> completion_text([{"role": "assistant", "content": "Hi."}])
    'Hi.'
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        completion = [completion]
    if isinstance(completion, Sequence):
        msgs = [m for m in completion if isinstance(m, Mapping)]
        if len(msgs) != len(completion):
            raise TypeError("chat completions must be lists of {'role', 'content'} dicts")
        turns = [m for m in msgs if m.get("role") == "assistant"] or msgs
        return "\n".join(_content(m.get("content", "")) for m in turns)
    raise TypeError(
        f"a completion must be text or a list of chat messages, got {type(completion).__name__}"
    )


def _content(content: str | list) -> str:
    # multimodal-style content: a list of {"type": "text", "text": ...} parts
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return str(content)


#: Ridge penalties searched by efficient leave-one-out cross-validation when ``ridge=None``.
RIDGE_PENALTIES = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def _features():
    return FeatureUnion([
        ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=2, sublinear_tf=True)),
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2,
                                 sublinear_tf=True, max_features=50_000)),
    ])  # fmt: skip


def _ridge(ridge: float | None):
    return RidgeCV(alphas=RIDGE_PENALTIES) if ridge is None else Ridge(alpha=ridge)


def _fit(means: pd.DataFrame, dimensions: Sequence[str], ridge: float | None):
    """TF-IDF features fitted once on the distinct texts, then one ridge per dimension."""
    unique = means.drop_duplicates("item")
    features = _features()
    X = features.fit_transform(unique["text"])
    row = pd.Series(np.arange(len(unique)), index=unique["item"].to_numpy())
    models = {}
    for d in dimensions:
        m = means[means["dimension"] == d]
        regression = _ridge(ridge).fit(
            X[row.loc[m["item"]].to_numpy()], m["mean"], sample_weight=m["n"].to_numpy(float)
        )
        models[d] = Pipeline([("features", features), ("ridge", regression)])
    return models


def item_means(study: Study, target: Population, dimensions: Sequence[str]) -> pd.DataFrame:
    """Target group's mean rating of each item per dimension (post-stratified for frames).

    Returns ``item, dimension, mean, n``: for a frame, the share-weighted mix of the cells'
    item means over the cells that rated the item (shares renormalised).
    """
    r = study.ratings[study.ratings["dimension"].isin(dimensions)]
    cell_of = target.members(study)
    r = r[r["rater"].isin(cell_of.index)].copy()
    r["cell"] = cell_of.reindex(r["rater"]).to_numpy()
    cell = r.groupby(["dimension", "item", "cell"], sort=False)["rating"].agg(["mean", "size"])
    cell = cell.reset_index()
    cell["share"] = target.shares[cell["cell"].to_numpy(dtype=int)]
    cell["wm"] = cell["share"] * cell["mean"]
    out = cell.groupby(["dimension", "item"], sort=False).agg(
        wm=("wm", "sum"), share=("share", "sum"), n=("size", "sum")
    )
    out["mean"] = out["wm"] / out["share"]
    return out.reset_index()[["item", "dimension", "mean", "n"]]


def model_item_means(
    fit, study: Study, target: Population, dimensions: Sequence[str]
) -> pd.DataFrame:
    """Expected rating of each item for a random rater of the target, from a Bayesian fit.

    The target's demographic patterns and their probabilities are those used by
    :func:`posterior_pair_probabilities`; ``fit.predict`` gives each pattern's posterior-mean
    expected rating of each fitted item (item and group-item effects included, the rater
    effect integrated out), mixed by pattern probability. Returns ``item, dimension, mean, n``
    (``n`` = the item's number of observed ratings, used as regression weight).
    """
    missing = [d for d in dimensions if d not in getattr(fit, "fits", {})]
    if missing:
        raise KeyError(f"dimensions {missing} were not fitted; fitted: {list(fit.fits)}")
    pats, pi = _patterns(fit, list(dimensions), target)
    frames = []
    for d in dimensions:
        items = pd.Series(fit.fits[d].design.item_levels.astype(str), name="item")
        rows = pats.assign(_j=np.arange(len(pats))).merge(items.to_frame(), how="cross")
        pred = fit.predict(rows.assign(dimension=d))
        pred["w"] = pi[pred["_j"].to_numpy()] * pred["prediction"]
        mean = pred.groupby("item", sort=False)["w"].sum() / pi.sum()
        n = study.ratings[study.ratings["dimension"] == d].groupby("item").size()
        frames.append(
            pd.DataFrame(
                {
                    "item": mean.index,
                    "dimension": d,
                    "mean": mean.to_numpy(),
                    "n": n.reindex(mean.index, fill_value=1).to_numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


class RatingReward:
    """Predicted ratings of new text for a target group, combined into a reward.

    Built by :func:`reward_function`. Calling it follows TRL's reward-function signature
    ``reward(prompts, completions, **kwargs) -> list[float]``: completions may be strings or
    chat messages; the prompt is not used (the predictor reads the response text).

    Attributes
    ----------
    __name__ : str
        Name shown in TRL's logs (``rating_reward_<group>``).
    target : Population
        Whose ratings the predictors learned.
    heldout_ : DataFrame
        Held-out accuracy per group × dimension (columns :data:`HELDOUT_COLUMNS`; see
        :func:`reward_function`).
    models_ : dict
        Fitted scikit-learn pipeline per dimension.
    spec : ScoreSpec
        Dimensions, weights and signs of the combination.
    fit : BayesResult or None
        The model whose expected ratings were the training targets, if any.

    See Also
    --------
    reward_function : builds it.
    pluralign.train.train_grpo : GRPO with it as a reward function.

    Examples
    --------
    >>> from pluralign.data import simulate_study
    >>> study = simulate_study(n_raters=100, n_prompts=30, seed=1,
    ...                        dimensions=["toxicity"]).study
    >>> reward = reward_function(study, group={"gender": "she/her"}, heldout=0.0)
    >>> reward
    <RatingReward for 'gender=she/her': dimensions ['toxicity']>
    >>> reward.__name__
    'rating_reward_gender_she_her'
    >>> list(reward.score(["Thanks, here is a plan."]).columns)
    ['toxicity', 'reward']
    >>> "<table" in reward._repr_html_()
    True
    """

    def __init__(
        self,
        study: Study,
        target: Population,
        spec: ScoreSpec,
        models: dict,
        heldout: pd.DataFrame,
        ridge: float | None,
        seed: int,
        fit: ModelResult | None = None,
    ) -> None:
        self.study = study
        self.fit = fit
        self.target = target
        self.spec = spec
        self.models_ = models
        self.heldout_ = heldout
        self.ridge = ridge
        self.seed = seed
        self._other: dict[str, RatingReward] = {}
        self.__name__ = f"rating_reward_{slug(target.label)}"

    def __repr__(self) -> str:
        return f"<RatingReward for {self.target.label!r}: dimensions {list(self.spec.dimensions)}>"

    def _repr_html_(self) -> str:
        weights = pd.DataFrame(
            {"dimension": self.spec.dimensions, "weight": self.spec.weights,
             "coefficient": self.spec.coef}
        )  # fmt: skip
        parts = [
            f"<p><b>{html.escape(repr(self).strip('<>'))}</b></p>",
            weights.to_html(index=False),
        ]
        if len(self.heldout_):
            parts += ["<p>Held-out accuracy (<code>.heldout_</code>):</p>",
                      self.heldout_.to_html(index=False)]  # fmt: skip
        return "\n".join(parts)

    def predict(self, texts: Sequence) -> pd.DataFrame:
        """Predicted mean rating per dimension (clipped to each scale)."""
        texts = [completion_text(t) for t in texts]
        X = self.models_[self.spec.dimensions[0]].named_steps["features"].transform(texts)
        out = {}
        for d, lo, rng in zip(self.spec.dimensions, self.spec.mins, self.spec.ranges, strict=True):
            out[d] = np.clip(self.models_[d].named_steps["ridge"].predict(X), lo, lo + rng)
        return pd.DataFrame(out)

    def score(self, texts: Sequence, group: PopulationSpec = None) -> pd.DataFrame:
        """Predicted ratings per dimension and the combined ``reward`` for each text.

        ``group=None`` uses this reward's target; another group fits (once) a predictor for it.
        """
        if group is not None:
            population = Population.parse(group)
            key = population.cells.to_json()
            if key not in self._other:
                self._other[key] = reward_function(
                    self.study if self.fit is None else self.fit,
                    group=population,
                    dimensions=list(self.spec.dimensions),
                    weights=dict(zip(self.spec.dimensions, self.spec.weights, strict=True)),
                    seed=self.seed,
                    heldout=0.0,
                    ridge=self.ridge,
                    study=self.study,
                )
            return self._other[key].score(texts)
        pred = self.predict(texts)
        pred["reward"] = self.spec.score(pred[list(self.spec.dimensions)].to_numpy())
        return pred

    def __call__(self, prompts=None, completions=None, **kwargs) -> list[float]:
        if completions is None:
            raise TypeError("the reward needs completions=[...] (TRL passes them by keyword)")
        return [float(x) for x in self.score(list(completions))["reward"]]


def reward_function(
    study_or_fit: Study | ModelResult,
    *,
    group: PopulationSpec = None,
    dimensions: Dimensions = None,
    weights: Weights = None,
    seed: int | None = None,
    heldout: float = 0.2,
    ridge: float | None = None,
    study: Study | None = None,
) -> RatingReward:
    """A reward for new text: predicted ratings of a target group, combined with weights.

    For each dimension a text regressor — TF-IDF of word 1–2-grams and character 2–5-grams,
    then ridge regression (weighted by the number of ratings, penalty chosen by
    cross-validation) — learns the target group's mean
    rating of each response text. The reward of a text is the combined score of its predicted
    ratings, ``Σ_d w_d · desirability_d · (r̂_d − min_d) / (max_d − min_d)`` (the score used by
    :func:`preference_labels`; higher is better).

    Accuracy is measured first on a held-out share of *prompts* (all responses of a prompt on
    one side): Pearson and Spearman correlations of predictions with held-out item means, RMSE,
    and the RMSE of the constant predictor (the training mean) with ``r2 = 1 − SSE/SSE_const``.
    The returned predictors are then refit on every item.

    Parameters
    ----------
    study_or_fit : Study or BayesResult
        A Study (targets: the target group's observed item means), or a fit of
        :func:`~pluralign.models.fit_bayes` (targets: the model's expected rating of each item
        for a random rater of the target, which shrinks the noise of few ratings per item;
        pass the fitted study as ``study=`` for the texts).
    group : None, mapping, DataFrame or Population
        Target population (post-stratified item means for a frame).
    dimensions, weights
        As in :func:`preference_labels`.
    seed : int, optional
        Seed of the held-out split (default ``options.seed``).
    heldout : float, default 0.2
        Share of prompts held out for the accuracy table (0 to skip).
    study : Study, optional
        The study a fitted model was fitted to (needed with a fit).
    ridge : float, optional
        Ridge penalty; by default chosen per dimension from ``RIDGE_PENALTIES`` by leave-one-out
        cross-validation on the training items (noisier targets, e.g. small groups, get more
        shrinkage).

    Returns
    -------
    RatingReward

    See Also
    --------
    RatingReward : the returned reward and its accuracy table.
    preference_labels : the same combined score on observed ratings.

    Examples
    --------
    >>> from pluralign.data import simulate_study
    >>> study = simulate_study(n_raters=150, n_prompts=40, seed=1,
    ...                        dimensions=["toxicity", "helpfulness"]).study
    >>> reward = reward_function(study, group={"gender": "she/her"}, seed=1)
    >>> len(reward(prompts=["Hi"] * 2, completions=["Thanks, here is a plan.", "Idiot."]))
    2
    """
    fit = None
    if isinstance(study_or_fit, Study):
        study = study_or_fit
    else:
        fit = study_or_fit
        if not isinstance(study, Study):
            raise TypeError(
                "reward_function needs a Study, or a fitted model together with the study it was "
                "fitted to (reward_function(fit, ..., study=study)) for the response texts"
            )
    seed = options.seed if seed is None else int(seed)
    spec = score_spec(study, dimensions, weights)
    target = Population.parse(group)
    if fit is None:
        means = item_means(study, target, spec.dimensions)
    else:
        means = model_item_means(fit, study, target, spec.dimensions)
    texts = study.items.set_index("item")
    means["text"] = texts["response"].reindex(means["item"]).to_numpy()
    means["prompt_id"] = texts["prompt_id"].reindex(means["item"]).to_numpy()

    for d in spec.dimensions:
        n_rated = int((means["dimension"] == d).sum())
        if n_rated < 5:
            raise ValueError(
                f"too few rated items ({n_rated}) of {d!r} for {target.label!r} to train on"
            )
    rows = []
    if heldout and 0 < heldout < 1:
        split = GroupShuffleSplit(n_splits=1, test_size=heldout, random_state=seed)
        tr, te = next(split.split(means, groups=means["prompt_id"]))
        train, test = means.iloc[tr], means.iloc[te]
        fitted = _fit(train, spec.dimensions, ridge)
        for d in spec.dimensions:
            m_tr, m_te = train[train["dimension"] == d], test[test["dimension"] == d]
            pred = fitted[d].predict(m_te["text"])
            y = m_te["mean"].to_numpy()
            const = float(np.average(m_tr["mean"], weights=m_tr["n"]))
            sse, sse0 = ((y - pred) ** 2).sum(), ((y - const) ** 2).sum()
            rows.append({
                "group": target.label, "dimension": d, "n_train": len(m_tr), "n_test": len(m_te),
                "pearson": stats.pearsonr(pred, y).statistic,
                "spearman": stats.spearmanr(pred, y).statistic,
                "rmse": float(np.sqrt(sse / len(y))), "rmse_constant": float(np.sqrt(sse0 / len(y))),
                "r2": float(1 - sse / sse0),
            })  # fmt: skip
    models = _fit(means, spec.dimensions, ridge)
    heldout_table = pd.DataFrame(rows, columns=list(HELDOUT_COLUMNS))
    return RatingReward(study, target, spec, models, heldout_table, ridge, seed, fit)
