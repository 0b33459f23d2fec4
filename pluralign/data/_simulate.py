"""Simulated rating studies with known ground truth.

The default design mirrors a published study of how rater demographics change ratings of LLM
responses: 1,095 raters from the US and Germany each rate 5 responses on 5 dimensions
(27,375 ratings) on a 5-point agreement scale.

Generative model (one dimension ``d``; rater ``r``; item ``i``), drawn by the one kernel
:func:`pluralign.data.simulate_ratings`::

    eta[r, i, d] = sum_v beta[d, v, level_v(r)]          # demographic fixed effects
                   + u[r, d]                               # rater random effect
                   + v[i, d]                               # item latent trait (effect)
                   + gamma[d, model(i)] + delta[d] * x[i]  # item covariates (source model, length)
                   + theta[d, level_g(r), model(i)]        # demographic x source model
                   + kappa[d, level_h(r)] * x[i]           # demographic x length
                   + sum_g w[d, g, level_g(r), i]          # group x item deviations
    ordinal:   P(rating <= k) = logistic(c[d, k] - eta)   # cumulative logit, cutpoints c
    gaussian:  rating = mu[d] + eta + e,  e ~ N(0, residual_sd)

``model(i)`` is the item's ``source_model`` (which LLM wrote the response; equal shares, the
first is the reference) and ``x[i]`` its ``length`` standardised over the items table
(``(length - mean) / std``, population SD).

Race is multi-select: its effect is the *sum* of the effects of the chosen values (indicator
coding, White = 0), so a single-race Black rater differs from a single-race White rater by
``beta[race, Black]``.

Calibration of the fixed effects. Effects are given as *relative differences of mean ratings*
("men rate toxicity 18 % lower than women"). For a variable ``V`` and level ``l`` the
standardised marginal mean is

    M_l = mean over a reference population of raters of  E[rating | V := l, other covariates]

where the expectation is over items and random effects: the source models are a mixture with
equal shares, and the normal parts (random effects with variance ``rater_sd**2 + item_sd**2 +
n_groups * group_item_sd**2``, plus the rater's length slope squared) are integrated by
Gauss-Hermite quadrature; the reference population is a large, fixed-seed draw of the design's
demographics. ``beta[d, V, l]`` is solved with Brent's method so that ``(M_l - M_ref) / M_ref``
equals the target; because the other variables' effects (and the item-covariate interactions)
enter ``M``, the solves are repeated until the betas stop changing. So the published relative
differences hold for group means averaged over items whatever the item-covariate effects.
With demographics drawn independently of each other (except race ↔ country and party ↔
ideology, which carry no effect by default) raw group means estimate these standardised means,
so describe's :func:`relative_difference` recovers the targets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize

from pluralign._numeric import expected_ordinal_rating
from pluralign._settings import options
from pluralign.data._generate import Family, LatentRatings, simulate_ratings
from pluralign.data._scale import AGREEMENT_5, BINARY, Scale
from pluralign.data._study import Study
from pluralign.data._text import prompt_texts, response_texts

DIMENSIONS = ("toxicity", "emotional_awareness", "sensitivity", "stereotypical_bias", "helpfulness")
MORE_IS_BETTER = {
    "toxicity": False,
    "emotional_awareness": True,
    "sensitivity": True,
    "stereotypical_bias": False,
    "helpfulness": True,
}
_PHRASE = {
    "toxicity": "toxicity",
    "emotional_awareness": "emotional awareness",
    "sensitivity": "sensitivity",
    "stereotypical_bias": "stereotypical bias",
    "helpfulness": "helpfulness",
}

AGES = ("18-30", "31-40", "41-50", "51-60", "60+")
GENDERS = ("she/her", "he/him", "they/them", "other")
RACES = (
    "White",
    "Black",
    "Asian",
    "Hispanic or Latino",
    "American Indian or Alaska Native",
    "Native Hawaiian or Other Pacific Islander",
    "Other",
)
IDEOLOGIES = ("liberal", "centre", "conservative")
PARTIES = {
    "US": ("Democrat", "Republican", "Independent", "Other or none"),
    "Germany": ("SPD", "CDU/CSU", "Greens", "FDP", "AfD", "The Left", "Other or none"),
}
PREFER_NOT = "Prefer not to say"

# Shares (they are normalised). Race shares follow the US census roughly; German shares are a guess.
AGE_SHARES = (0.28, 0.25, 0.19, 0.16, 0.12)
GENDER_SHARES = (0.49, 0.47, 0.025, 0.015)
IDEOLOGY_SHARES = (0.38, 0.36, 0.26)
RACE_SHARES = {
    "US": (0.60, 0.13, 0.07, 0.14, 0.01, 0.005, 0.045),
    "Germany": (0.86, 0.03, 0.04, 0.015, 0.002, 0.002, 0.051),
}
# P(party | ideology) rows liberal / centre / conservative.
PARTY_SHARES = {
    "US": ((0.70, 0.04, 0.20, 0.06), (0.30, 0.25, 0.35, 0.10), (0.05, 0.72, 0.18, 0.05)),
    "Germany": (
        (0.30, 0.05, 0.35, 0.04, 0.01, 0.15, 0.10),
        (0.25, 0.35, 0.10, 0.12, 0.06, 0.02, 0.10),
        (0.05, 0.50, 0.02, 0.15, 0.23, 0.00, 0.05),
    ),
}

REFERENCE = {
    "gender": "she/her",
    "age": "18-30",
    "race": "White",
    "ideology": "liberal",
    "country": "US",
    "party": "Democrat",
}

# Relative differences of mean ratings reported for the published study (fractions, not percent).
PUBLISHED_EFFECTS: dict[str, dict[str, dict[str, float]]] = {
    "toxicity": {"gender": {"he/him": -0.18}},
    "emotional_awareness": {"ideology": {"conservative": 0.279}, "race": {"Black": 0.44}},
}

# Latent location of each dimension (higher = more agreement) and generic cutpoints.
LOCATION = {
    "toxicity": -1.4,
    "emotional_awareness": -0.3,
    "sensitivity": 0.2,
    "stereotypical_bias": -1.6,
    "helpfulness": 0.9,
}
CUTPOINTS_5 = (-1.8, -0.5, 0.6, 1.9)
CUTPOINTS_2 = (0.6,)
# Mean rating of a reference rater on the gaussian variant (rating units).
GAUSSIAN_MEAN = {
    "toxicity": 1.9,
    "emotional_awareness": 2.6,
    "sensitivity": 3.0,
    "stereotypical_bias": 1.8,
    "helpfulness": 3.6,
}
# Correlation of item latent traits (toxic items are less helpful, empathetic items more sensitive).
TRAIT_CORR = {
    ("toxicity", "emotional_awareness"): -0.4,
    ("toxicity", "sensitivity"): -0.45,
    ("toxicity", "stereotypical_bias"): 0.55,
    ("toxicity", "helpfulness"): -0.5,
    ("emotional_awareness", "sensitivity"): 0.55,
    ("emotional_awareness", "stereotypical_bias"): -0.3,
    ("emotional_awareness", "helpfulness"): 0.4,
    ("sensitivity", "stereotypical_bias"): -0.4,
    ("sensitivity", "helpfulness"): 0.35,
    ("stereotypical_bias", "helpfulness"): -0.35,
}

_FAMILY_SD = {
    # rater_sd, item_sd, group_item_sd, residual_sd
    "ordinal": (0.8, 1.0, 0.35, None),
    "gaussian": (0.45, 0.6, 0.2, 0.8),
}
_N_REFERENCE = 40_000  # size of the fixed-seed reference population used for calibration
_REFERENCE_SEED = 8_675_309

# Item covariates. Responses come from one of these LLMs (equal shares; the first is the
# reference) and have a nominal length in words, N(LENGTH_MEAN, LENGTH_SD²) rounded (at least
# 10), drawn independently of the text. Default effects are latent shifts, the same on every
# dimension: small but non-zero.
SOURCE_MODELS = ("model_a", "model_b", "model_c")
LENGTH_MEAN, LENGTH_SD = 150.0, 50.0
SOURCE_MODEL_SHIFT = 0.15  # model_b +0.15, model_c −0.15 (alternating signs)
LENGTH_EFFECT = 0.1  # per SD of length
INTERACTION_SHIFT = 0.15  # he/him raters: model_b +0.15, model_c −0.15 beyond she/her raters
LENGTH_INTERACTION = -0.1  # conservative raters' length slope minus liberal raters'

PerDimension = float | Mapping[str, float]


# ---------------------------------------------------------------------------------- design
@dataclass(frozen=True)
class SimulationDesign:
    """All settings of a simulated study (see :func:`simulate_study` for their meaning).

    See Also
    --------
    simulate_study : Takes these settings as keyword arguments.

    Examples
    --------
    >>> design = SimulationDesign(n_raters=40, family="gaussian")
    >>> design.n_raters, design.family, design.sd("rater", "toxicity")
    (40, 'gaussian', 0.45)
    """

    n_raters: int = 1095
    n_prompts: int = 250
    responses_per_prompt: int = 4
    items_per_rater: int = 5
    responses_per_visit: int | None = None
    dimensions: tuple[str, ...] = DIMENSIONS
    countries: tuple[str, ...] = ("US", "Germany")
    country_shares: tuple[float, ...] | None = None
    effects: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None
    latent_effects: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None
    base_effects: Literal["published", "none"] = "published"
    rater_sd: PerDimension | None = None
    item_sd: PerDimension | None = None
    group_item_sd: PerDimension | None = None
    residual_sd: PerDimension | None = None
    rater_corr: float = 0.3
    prompt_share: float = 0.3
    group_item: tuple[str, ...] = ("gender", "ideology")
    scale_points: int = 5
    family: Family = "ordinal"
    missing_share: float = 0.03
    source_models: tuple[str, ...] = SOURCE_MODELS
    source_model_effects: Mapping[str, Mapping[str, float]] | None = None
    length_effects: PerDimension | None = None
    source_model_interactions: (
        Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]] | None
    ) = None
    length_interactions: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dimensions", tuple(self.dimensions))
        object.__setattr__(self, "countries", tuple(self.countries))
        object.__setattr__(self, "group_item", tuple(self.group_item))
        object.__setattr__(self, "source_models", tuple(str(m) for m in self.source_models))
        if self.responses_per_visit is None:
            object.__setattr__(self, "responses_per_visit", min(2, int(self.responses_per_prompt)))
        for name in (
            "n_raters",
            "n_prompts",
            "responses_per_prompt",
            "items_per_rater",
            "responses_per_visit",
        ):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.responses_per_visit > self.responses_per_prompt:
            raise ValueError(
                f"responses_per_visit ({self.responses_per_visit}) cannot exceed "
                f"responses_per_prompt ({self.responses_per_prompt})"
            )
        n_items = self.n_prompts * self.responses_per_prompt
        if self.items_per_rater > n_items:
            raise ValueError(
                f"items_per_rater ({self.items_per_rater}) exceeds the number of items "
                f"({self.n_prompts} prompts × {self.responses_per_prompt} responses = {n_items})"
            )
        n_visits = -(-self.items_per_rater // self.responses_per_visit)
        if n_visits > self.n_prompts:
            raise ValueError(
                f"each rater visits {n_visits} prompts (items_per_rater / responses_per_visit) "
                f"but there are only {self.n_prompts}; raise n_prompts or responses_per_visit"
            )
        if not self.dimensions or len(set(self.dimensions)) != len(self.dimensions):
            raise ValueError(f"dimensions must be distinct names, got {self.dimensions}")
        unknown = [c for c in self.countries if c not in PARTIES]
        if unknown or not self.countries:
            raise ValueError(f"countries must be among {list(PARTIES)}, got {list(self.countries)}")
        if self.country_shares is not None and len(self.country_shares) != len(self.countries):
            raise ValueError("country_shares needs one share per country")
        if self.scale_points not in (2, 5):
            raise ValueError(f"scale_points must be 5 or 2 (binary), got {self.scale_points!r}")
        if self.family not in ("ordinal", "gaussian"):
            raise ValueError(f"family must be 'ordinal' or 'gaussian', got {self.family!r}")
        if self.base_effects not in ("published", "none"):
            raise ValueError(
                f"base_effects must be 'published' or 'none', got {self.base_effects!r}"
            )
        bad = [g for g in self.group_item if g not in REFERENCE or g == "race"]
        if bad:
            raise ValueError(
                f"group_item variables must be among {[v for v in REFERENCE if v != 'race']}, got {bad}"
            )
        for comp in ("rater", "item", "group_item", "residual"):
            for dim in self.dimensions:
                value = self.sd(comp, dim)
                if not np.isfinite(value) or value < 0:
                    raise ValueError(f"{comp}_sd for {dim!r} must be >= 0, got {value!r}")
        if not 0 <= self.missing_share < 1:
            raise ValueError(f"missing_share must be in [0, 1), got {self.missing_share}")
        if not 0 <= self.prompt_share < 1:
            raise ValueError(f"prompt_share must be in [0, 1), got {self.prompt_share}")
        if not -0.2 < self.rater_corr < 1:
            raise ValueError(f"rater_corr must be in (-0.2, 1), got {self.rater_corr}")
        for spec_name in ("effects", "latent_effects"):
            spec = getattr(self, spec_name) or {}
            for dim, by_var in spec.items():
                if dim not in self.dimensions:
                    raise ValueError(
                        f"{spec_name} names dimension {dim!r}, which is not simulated; "
                        f"dimensions are {list(self.dimensions)}"
                    )
                for var, levels in by_var.items():
                    if var == "country" and len(self.countries) < 2:
                        raise ValueError(
                            f"{spec_name}[{dim!r}] sets a country effect, but only "
                            f"{list(self.countries)} is simulated"
                        )
                    known = _levels(var)
                    if known is None:
                        raise ValueError(
                            f"{spec_name}[{dim!r}] names variable {var!r}; use one of {list(REFERENCE)}"
                        )
                    for lev in levels:
                        if lev not in known or lev == REFERENCE[var]:
                            raise ValueError(
                                f"{spec_name}[{dim!r}][{var!r}] names level {lev!r}; non-reference "
                                f"levels are {[k for k in known if k != REFERENCE[var]]} "
                                f"(reference {REFERENCE[var]!r})"
                            )
        self._check_item_covariates()

    def _check_item_covariates(self) -> None:
        models = self.source_models
        if not models or len(set(models)) != len(models):
            raise ValueError(f"source_models must be distinct names, got {list(models)}")
        specs = {
            "source_model_effects": self.source_model_effects,
            "length_effects": self.length_effects
            if isinstance(self.length_effects, Mapping)
            else None,
            "source_model_interactions": self.source_model_interactions,
            "length_interactions": self.length_interactions,
        }
        for spec_name, spec in specs.items():
            for dim, value in (spec or {}).items():
                if dim not in self.dimensions:
                    raise ValueError(
                        f"{spec_name} names dimension {dim!r}, which is not simulated; "
                        f"dimensions are {list(self.dimensions)}"
                    )
                if spec_name == "source_model_effects":
                    self._check_models(spec_name, dim, value)
                elif spec_name in ("source_model_interactions", "length_interactions"):
                    for var, levels in value.items():
                        known = _levels(var)
                        if (
                            known is None
                            or var == "race"
                            or (var == "country" and len(self.countries) < 2)
                        ):
                            raise ValueError(
                                f"{spec_name}[{dim!r}] names variable {var!r}; use one of "
                                f"{[v for v in REFERENCE if v != 'race']}"
                            )
                        for lev, val in levels.items():
                            if lev not in known or lev == REFERENCE[var]:
                                raise ValueError(
                                    f"{spec_name}[{dim!r}][{var!r}] names level {lev!r}; "
                                    f"non-reference levels are "
                                    f"{[k for k in known if k != REFERENCE[var]]}"
                                )
                            if spec_name == "source_model_interactions":
                                self._check_models(f"{spec_name}[{dim!r}][{var!r}]", lev, val)
        if self.length_effects is not None and not isinstance(self.length_effects, Mapping):
            if not np.isfinite(float(self.length_effects)):
                raise ValueError(f"length_effects must be finite, got {self.length_effects!r}")

    def _check_models(self, where: str, key: str, shifts: Mapping[str, float]) -> None:
        for m, val in shifts.items():
            if m not in self.source_models[1:]:
                raise ValueError(
                    f"{where}[{key!r}] names source model {m!r}; non-reference models are "
                    f"{list(self.source_models[1:])} (reference {self.source_models[0]!r})"
                )
            if not np.isfinite(float(val)):
                raise ValueError(f"{where}[{key!r}][{m!r}] must be finite, got {val!r}")

    @property
    def n_items(self) -> int:
        return self.n_prompts * self.responses_per_prompt

    @property
    def n_ratings(self) -> int:
        return self.n_raters * self.items_per_rater * len(self.dimensions)

    def sd(self, component: str, dimension: str) -> float:
        """Standard deviation of a variance component for a dimension (family defaults if unset)."""
        idx = ("rater", "item", "group_item", "residual").index(component)
        value = getattr(self, f"{component}_sd")
        if value is None:
            value = _FAMILY_SD[self.family][idx]
        if isinstance(value, Mapping):
            value = value.get(dimension, _FAMILY_SD[self.family][idx])
        return 0.0 if value is None else float(value)

    def item_terms(
        self, dimension: str
    ) -> tuple[np.ndarray, float, dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Item-covariate effects of one dimension on the latent scale (defaults filled in).

        The default demographic × item-covariate interactions apply with
        ``base_effects="published"`` only: ``"none"`` means no demographic effect of any kind.

        Returns
        -------
        gamma : ndarray, shape (n_source_models,)
            Shift of each source model (the first is 0).
        delta : float
            Shift per SD of length.
        theta : dict of str to ndarray, shape (n_levels, n_source_models)
            Demographic × source-model interactions (reference level and model 0).
        kappa : dict of str to ndarray, shape (n_levels,)
            Demographic × length interactions (change of the length slope; reference 0).

        Examples
        --------
        >>> gamma, delta, theta, kappa = SimulationDesign().item_terms("toxicity")
        >>> gamma.tolist(), delta, theta["gender"][1].tolist(), float(kappa["ideology"][2])
        ([0.0, 0.15, -0.15], 0.1, [0.0, 0.15, -0.15], -0.1)
        """
        models = self.source_models

        def alternating(size: float) -> dict[str, float]:
            return {m: size * (1 if k % 2 == 0 else -1) for k, m in enumerate(models[1:])}

        def shifts(spec: Mapping[str, float]) -> np.ndarray:
            out = np.zeros(len(models))
            for m, val in spec.items():
                out[models.index(m)] = float(val)
            return out

        gamma = shifts(
            alternating(SOURCE_MODEL_SHIFT)
            if self.source_model_effects is None
            else self.source_model_effects.get(dimension, {})
        )
        if self.length_effects is None:
            delta = LENGTH_EFFECT
        elif isinstance(self.length_effects, Mapping):
            delta = float(self.length_effects.get(dimension, 0.0))
        else:
            delta = float(self.length_effects)

        def interactions(given: Mapping | None, published: Mapping) -> Mapping:
            """The interactions given for this dimension, else the published ones (or none)."""
            if given is not None:
                return given.get(dimension, {})
            return published if self.base_effects == "published" else {}

        def per_level(spec: Mapping, value: Callable, shape: tuple[int, ...]) -> dict:
            """``{var: {level: spec}}`` as one array per variable, a row per known level."""
            out = {}
            for var, levels in spec.items():
                known = _levels(var)
                table = np.zeros((len(known), *shape))
                for lev, val in levels.items():
                    table[known.index(lev)] = value(val)
                out[var] = table
            return out

        theta = per_level(
            interactions(
                self.source_model_interactions,
                {"gender": {"he/him": alternating(INTERACTION_SHIFT)}},
            ),
            shifts,
            (len(models),),
        )
        kappa = per_level(
            interactions(
                self.length_interactions, {"ideology": {"conservative": LENGTH_INTERACTION}}
            ),
            float,
            (),
        )
        return gamma, delta, theta, kappa


def _levels(var: str) -> tuple[str, ...] | None:
    if var == "party":
        out: list[str] = []
        for c in ("US", "Germany"):
            out += [p for p in PARTIES[c] if p not in out]
        return tuple(out)
    return {
        "gender": GENDERS,
        "age": AGES,
        "race": RACES,
        "ideology": IDEOLOGIES,
        "country": ("US", "Germany"),
    }.get(var)


# ---------------------------------------------------------------------------------- truth
@dataclass(frozen=True)
class SimulationTruth:
    """Ground truth of a simulated study (tidy DataFrames).

    Attributes
    ----------
    fixed_effects : DataFrame
        ``dimension, term, level, reference, beta_latent, target_pct, relative_pct, mean_level,
        mean_reference``: latent effect and the implied relative difference (percent) of
        standardised marginal mean ratings (averaged over items), for every non-reference
        level; ``target_pct`` is 0 for levels held at no difference because of an
        item-covariate interaction.
    random_sd : DataFrame
        ``dimension, component, sd`` (components rater, item, group_item:<var>, residual).
    item_traits : DataFrame
        ``item, prompt_id, dimension, trait, effect``: standardised latent trait (what the text
        expresses) and its effect on the latent scale (``item_sd * trait``).
    cutpoints : DataFrame
        ``dimension, threshold, value``: ``P(rating <= min + threshold - 1) = logistic(value - eta)``
        (empty for the gaussian family; then ``intercepts`` holds the means).
    group_item : DataFrame
        ``dimension, term, level, item, deviation``: how a group's latent rating of an item
        departs from everyone's.
    rater_effects : DataFrame
        ``rater, dimension, effect``.
    intercepts : DataFrame
        ``dimension, intercept`` (gaussian: mean rating of a reference rater; ordinal: 0).
    item_effects : DataFrame
        ``dimension, term, level, source_model, effect``: latent effects of the item covariates.
        ``term`` is ``"source_model"`` (shift of ``source_model`` against the first model),
        ``"length"`` (shift per SD of the items' ``length``), ``"<demographic>:source_model"``
        (extra shift of ``source_model`` for raters of ``level``, against the reference level)
        or ``"<demographic>:length"`` (extra length slope for raters of ``level``). Only
        non-zero effects are listed.

    See Also
    --------
    simulate_study : Returns it as ``.truth``.

    Examples
    --------
    >>> truth = simulate_study(n_raters=40, n_prompts=20, seed=1).truth
    >>> effect = truth.effect("toxicity", "gender", "he/him")
    >>> effect["reference"], float(effect["target_pct"])
    ('she/her', -18.0)
    >>> truth.random_sd.query("dimension == 'toxicity'")["component"].tolist()[:2]
    ['rater', 'item']
    """

    fixed_effects: pd.DataFrame
    random_sd: pd.DataFrame
    item_traits: pd.DataFrame
    cutpoints: pd.DataFrame
    group_item: pd.DataFrame
    rater_effects: pd.DataFrame
    intercepts: pd.DataFrame
    item_effects: pd.DataFrame

    def effect(self, dimension: str, term: str, level: str) -> pd.Series:
        """One row of :attr:`fixed_effects`: the effect of ``term = level`` on ``dimension``.

        Raises a ``KeyError`` when the truth has no such effect.
        """
        fe = self.fixed_effects
        row = fe[(fe["dimension"] == dimension) & (fe["term"] == term) & (fe["level"] == level)]
        if row.empty:
            raise KeyError(f"no fixed effect {dimension}/{term}/{level}")
        return row.iloc[0]


@dataclass(frozen=True)
class SimulatedStudy:
    """A simulated :class:`Study` with its ground truth and design.

    Attributes
    ----------
    study : Study
        The ratings, raters and items, as a user's data would be.
    truth : SimulationTruth
        The effects and variance components the ratings were drawn from.
    design : SimulationDesign
        The settings used.
    seed : int or None
        The seed of the simulation.

    Examples
    --------
    >>> sim = simulate_study(n_raters=40, n_prompts=20, seed=1)
    >>> sim.study.n_raters, sim.design.n_raters, sim.seed
    (40, 40, 1)
    """

    study: Study
    truth: SimulationTruth
    design: SimulationDesign
    seed: int | None = None


# ---------------------------------------------------------------------------------- raters
def _draw_rater_codes(
    n: int, design: SimulationDesign, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Integer codes of each demographic (true values; the reported values are masked later)."""
    shares = (
        np.ones(len(design.countries))
        if design.country_shares is None
        else np.asarray(design.country_shares, dtype=float)
    )
    country_levels = ("US", "Germany")
    country = np.array([country_levels.index(c) for c in design.countries])[
        rng.choice(len(design.countries), size=n, p=shares / shares.sum())
    ]
    gender = rng.choice(len(GENDERS), size=n, p=_norm(GENDER_SHARES))
    age = rng.choice(len(AGES), size=n, p=_norm(AGE_SHARES))
    ideology = rng.choice(len(IDEOLOGIES), size=n, p=_norm(IDEOLOGY_SHARES))
    party_levels = _levels("party")
    party = np.zeros(n, dtype=int)
    race = np.zeros((n, len(RACES)), dtype=bool)
    for ci, cname in enumerate(country_levels):
        in_c = country == ci
        if not in_c.any():
            continue
        # race: a primary value, and with some probability one or two more (distinct)
        p = _norm(RACE_SHARES[cname])
        idx = np.flatnonzero(in_c)
        race[idx, rng.choice(len(RACES), size=idx.size, p=p)] = True
        n_extra = rng.choice(3, size=idx.size, p=(0.92, 0.065, 0.015))
        for k in (1, 2):
            sel = idx[n_extra >= k]
            race[sel, rng.choice(len(RACES), size=sel.size, p=p)] = True
        for ii in range(len(IDEOLOGIES)):
            sel = idx[ideology[idx] == ii]
            local = rng.choice(len(PARTIES[cname]), size=sel.size, p=_norm(PARTY_SHARES[cname][ii]))
            party[sel] = np.array([party_levels.index(x) for x in PARTIES[cname]])[local]
    return {
        "gender": gender,
        "age": age,
        "ideology": ideology,
        "party": party,
        "country": country,
        "race": race,
    }


def _compress(codes: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Unique demographic patterns of a population, with their counts in ``"weight"``."""
    single = ("gender", "age", "ideology", "party", "country")
    key = np.zeros(len(codes["gender"]), dtype=np.int64)
    for k in single:  # mixed-radix code of the pattern
        key = key * (int(codes[k].max()) + 1) + codes[k]
    key = (key << codes["race"].shape[1]) + codes["race"].astype(np.int64) @ (
        1 << np.arange(codes["race"].shape[1], dtype=np.int64)
    )
    _, first, counts = np.unique(key, return_index=True, return_counts=True)
    out = {k: codes[k][first] for k in (*single, "race")}
    out["weight"] = counts.astype(float)
    return out


def _norm(p: Sequence[float]) -> np.ndarray:
    a = np.asarray(p, dtype=float)
    return a / a.sum()


def _fixed_part(codes: dict[str, np.ndarray], betas: dict[str, np.ndarray]) -> np.ndarray:
    """Sum of fixed effects per rater for one dimension; ``betas[var]`` indexed by level code."""
    n = len(codes["gender"])
    out = np.zeros(n)
    for var, b in betas.items():
        if var == "race":
            out += codes["race"] @ b
        else:
            out += b[codes[var]]
    return out


def _contribution(codes: dict[str, np.ndarray], var: str, b: np.ndarray) -> np.ndarray:
    return codes["race"] @ b if var == "race" else b[codes[var]]


# ---------------------------------------------------------------------------------- calibration
def _mean_fn(design: SimulationDesign, dim: str, cut: np.ndarray, minimum: float):
    """``m(eta, shift, slope)``: expected rating of raters with latent fixed part ``eta``, source
    model shifts ``shift`` (one column per model) and length slope ``slope``, averaged over the
    source models (equal shares), the items' length and every normal random effect."""
    share = np.full(len(design.source_models), 1 / len(design.source_models))
    if design.family == "gaussian":
        mu = GAUSSIAN_MEAN.get(dim, 3.0) if design.scale_points == 5 else 0.5

        def m(eta, shift, slope):
            return mu + np.asarray(eta, dtype=float) + shift @ share

        return m
    tau2 = (
        design.sd("rater", dim) ** 2
        + design.sd("item", dim) ** 2
        + len(design.group_item) * design.sd("group_item", dim) ** 2
    )

    def m(eta, shift, slope):
        sd = np.sqrt(tau2 + np.asarray(slope) ** 2)
        eta = np.asarray(eta, dtype=float)
        return expected_ordinal_rating(eta[:, None] + shift, sd[:, None], cut, minimum) @ share

    return m


def _calibrate(
    design: SimulationDesign,
    dim: str,
    cut: np.ndarray,
    minimum: float,
    codes: dict[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Latent betas of one dimension reproducing the relative-difference targets."""
    targets: dict[tuple[str, str], float] = {}
    if design.base_effects == "published":
        for var, levels in PUBLISHED_EFFECTS.get(dim, {}).items():
            for lev, t in levels.items():
                if var == "party" or lev in (_levels(var) or ()):
                    targets[(var, lev)] = float(t)
    for var, levels in (design.effects or {}).get(dim, {}).items():
        for lev, t in levels.items():
            targets[(var, lev)] = float(t)
    latent: dict[tuple[str, str], float] = {}
    for var, levels in (design.latent_effects or {}).get(dim, {}).items():
        for lev, b in levels.items():
            latent[(var, lev)] = float(b)
            targets.pop((var, lev), None)

    variables = [v for v in REFERENCE if v != "country" or len(design.countries) > 1]
    betas = {v: np.zeros(len(_levels(v))) for v in variables}
    for (var, lev), b in latent.items():
        betas[var][_levels(var).index(lev)] = b
    m = _mean_fn(design, dim, cut, minimum)
    gamma, delta, theta, kappa = design.item_terms(dim)
    # item-covariate interactions are pure interactions: averaged over items, a group that has
    # one differs from its reference only by the effect asked for (none: calibrated to 0)
    for var, tab in (*theta.items(), *kappa.items()):
        levels = _levels(var)
        for k in np.flatnonzero(np.abs(tab.reshape(len(levels), -1)).sum(axis=1) > 0):
            if (var, levels[k]) not in latent:
                targets.setdefault((var, levels[k]), 0.0)
    weight = codes["weight"]

    interacting = sorted(set(theta) | set(kappa))

    def population(var: str, lev: str) -> tuple[np.ndarray, ...]:
        """The reference population with ``var := lev`` and ``var``'s own effect left out:
        distinct (fixed part, source-model shifts, length slope) and their shares."""
        k = _levels(var).index(lev)
        total = _fixed_part(codes, betas) - _contribution(codes, var, betas[var])
        _, key = np.unique(np.round(total, 12), return_inverse=True)
        key = key.astype(np.int64)
        for g in interacting:  # raters differ in their item terms only through these levels
            key = key * len(_levels(g)) + (k if g == var else codes[g])
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        w = np.bincount(inverse, weights=weight)
        shift = np.tile(gamma, (len(first), 1))
        slope = np.full(len(first), delta)
        for g, tab in theta.items():
            shift += tab[k] if g == var else tab[codes[g][first]]
        for g, kap in kappa.items():
            slope += kap[k] if g == var else kap[codes[g][first]]
        return total[first], shift, slope, w / w.sum()

    def mean(var: str, lev: str, b: float = 0.0) -> float:
        vals, shift, slope, w = population(var, lev)
        return float(w @ m(vals + b, shift, slope))

    for _ in range(50):
        change = 0.0
        for (var, lev), t in targets.items():
            k = _levels(var).index(lev)
            m_ref = mean(var, REFERENCE[var])
            vals, shift, slope, w = population(var, lev)

            def f(b, vals=vals, shift=shift, slope=slope, w=w, m_ref=m_ref, t=t):
                return (float(w @ m(vals + b, shift, slope)) - m_ref) / m_ref - t

            lo, hi = -20.0, 20.0
            if f(lo) > 0 or f(hi) < 0:
                raise ValueError(
                    f"effect target {t:+.1%} for {var}={lev!r} on {dim!r} cannot be reached on a "
                    f"{design.scale_points}-point scale (reference mean {m_ref:.2f}); choose a smaller "
                    "relative difference"
                )
            b = optimize.brentq(f, lo, hi, xtol=1e-10)
            change = max(change, abs(b - betas[var][k]))
            betas[var][k] = b
        if change < 1e-8:
            break

    rows = []
    for var in variables:
        levels = _levels(var)
        m_ref = mean(var, REFERENCE[var])
        for k, lev in enumerate(levels):
            if lev == REFERENCE[var]:
                continue
            b = betas[var][k]
            m_lev = mean(var, lev, b)
            relative = 100 * (m_lev - m_ref) / m_ref
            if (var, lev) in targets and abs(relative - 100 * targets[(var, lev)]) < 1e-7:
                relative = 100 * targets[(var, lev)]  # solved to Brent's tolerance: the target
            rows.append(
                {
                    "dimension": dim,
                    "term": var,
                    "level": lev,
                    "reference": REFERENCE[var],
                    "beta_latent": b,
                    "target_pct": 100 * targets[(var, lev)] if (var, lev) in targets else np.nan,
                    "relative_pct": relative,
                    "mean_level": m_lev,
                    "mean_reference": m_ref,
                }
            )
    return betas, pd.DataFrame(rows)


#: Design fields that do not change the calibration (sizes of the study).
_SIZE_FIELDS = frozenset(
    {"n_raters", "n_prompts", "responses_per_prompt", "items_per_rater", "responses_per_visit"}
)
_CALIBRATIONS: dict[str, tuple[dict, pd.DataFrame]] = {}
_MAX_CALIBRATIONS = 32


def _calibration(
    d: SimulationDesign, cuts: Mapping[str, np.ndarray], minimum: float
) -> tuple[dict[str, dict[str, np.ndarray]], pd.DataFrame]:
    """Calibrated betas of every dimension and the fixed-effects truth table.

    They depend on the design but not on its sizes or the seed, so they are memoised (the
    calibration costs more than drawing a study of the default size).
    """
    key = repr([(f.name, getattr(d, f.name)) for f in fields(d) if f.name not in _SIZE_FIELDS])
    if key not in _CALIBRATIONS:
        ref_codes = _compress(
            _draw_rater_codes(_N_REFERENCE, d, np.random.default_rng(_REFERENCE_SEED))
        )
        betas, tables = {}, []
        for dim in d.dimensions:
            betas[dim], table = _calibrate(d, dim, cuts[dim], minimum, ref_codes)
            tables.append(table)
        if len(_CALIBRATIONS) >= _MAX_CALIBRATIONS:
            _CALIBRATIONS.pop(next(iter(_CALIBRATIONS)))
        _CALIBRATIONS[key] = (betas, pd.concat(tables, ignore_index=True))
    betas, table = _CALIBRATIONS[key]
    copied = {dim: {v: b.copy() for v, b in by_var.items()} for dim, by_var in betas.items()}
    return copied, table.copy()


def _trait_corr(dims: Sequence[str]) -> np.ndarray:
    D = len(dims)
    C = np.eye(D)
    for a in range(D):
        for b in range(D):
            if a != b:
                C[a, b] = TRAIT_CORR.get(
                    (dims[a], dims[b]), TRAIT_CORR.get((dims[b], dims[a]), 0.0)
                )
    w, V = np.linalg.eigh(C)
    if w.min() < 1e-6:  # keep it a valid correlation matrix
        C = V @ np.diag(np.clip(w, 1e-6, None)) @ V.T
        d = np.sqrt(np.diag(C))
        C = C / d[:, None] / d[None, :]
    return C


# ---------------------------------------------------------------------------------- main
def simulate_study(seed: int | None = None, **design: Any) -> SimulatedStudy:
    """Simulate a rating study with known demographic effects, random effects and texts.

    Parameters
    ----------
    seed : int, optional
        Seed of the numpy Generator (``options.seed`` when None). Same seed, same study.
    **design
        Settings of :class:`SimulationDesign`:

        n_raters : int, default 1095
        n_prompts : int, default 250
            Prompts (user questions); items are their candidate responses.
        responses_per_prompt : int, default 4
            Candidate responses per prompt (items = n_prompts × responses_per_prompt).
        items_per_rater : int, default 5
            Items each rater rates, on every dimension.
        responses_per_visit : int, optional
            Responses a rater rates per prompt visited (default 2, or 1 with one response per
            prompt); 2 or more gives same-rater pairs.
        dimensions : sequence of str
            Default: toxicity, emotional_awareness, sensitivity, stereotypical_bias, helpfulness.
        countries : sequence of str, default ("US", "Germany")
        country_shares : sequence of float, optional
            Share of raters per country (default equal).
        effects : mapping, optional
            Relative differences of mean ratings (fractions) to reproduce, merged over the
            published ones, e.g. ``{"toxicity": {"gender": {"he/him": -0.18}}}``.
        latent_effects : mapping, optional
            Effects given directly on the latent scale (same layout); they override ``effects``.
        base_effects : {"published", "none"}, default "published"
            Start from the published effects, or from no effects at all.
        rater_sd, item_sd, group_item_sd, residual_sd : float or mapping dimension → float
            Random-effect SDs (latent scale; rating units for the gaussian family). Set
            ``item_sd=0`` for items without effects. Defaults depend on ``family``.
        rater_corr : float, default 0.3
            Correlation of a rater's random effects across dimensions.
        prompt_share : float, default 0.3
            Share of item-trait variance common to the responses of one prompt.
        group_item : sequence of str, default ("gender", "ideology")
            Demographics whose groups disagree on specific items (group × item deviations).
        scale_points : {5, 2}
            5-point agreement scale or binary (0 = no, 1 = yes).
        family : {"ordinal", "gaussian"}
            Cumulative-logit ratings, or continuous normal ratings (for power analysis).
        missing_share : float, default 0.03
            Share of raters answering "Prefer not to say" to age and to ideology.
        source_models : sequence of str, default ("model_a", "model_b", "model_c")
            LLMs that wrote the responses (items table column ``source_model``, equal shares;
            the first is the reference).
        source_model_effects : mapping dimension → {model: shift}, optional
            Latent shift of each non-reference model. Default: +0.15, −0.15, … on every
            dimension; ``{}`` for none.
        length_effects : float or mapping dimension → float, optional
            Latent shift per SD of the items' ``length`` (default 0.1 on every dimension).
        source_model_interactions : mapping, optional
            ``{dimension: {demographic: {level: {model: shift}}}}``: extra shift of a model's
            responses for raters of a level (against the reference level). Default: he/him
            +0.15 on model_b and −0.15 on model_c, on every dimension; ``{}`` for none.
        length_interactions : mapping, optional
            ``{dimension: {demographic: {level: slope}}}``: extra length slope for raters of a
            level. Default: conservative −0.1 on every dimension; ``{}`` for none.

    Returns
    -------
    SimulatedStudy
        ``.study`` (a validated :class:`Study`), ``.truth`` (:class:`SimulationTruth`) and
        ``.design`` (:class:`SimulationDesign`).

    Notes
    -----
    The generative model and the calibration of the effects are described in the module
    docstring of ``pluralign.data._simulate``. In short: ``eta = X beta + u_rater + v_item +
    w_group,item``; ordinal ratings from a cumulative logit with per-dimension cutpoints
    (``truth.cutpoints``), gaussian ratings as ``intercept + eta + e``. ``beta`` is solved so that
    the *standardised marginal mean ratings* (random effects integrated out, other demographics
    at their population mix) differ by the requested relative amounts; ``truth.fixed_effects``
    holds both ``beta_latent`` and the implied ``relative_pct``, which raw group means (e.g.
    :func:`pluralign.describe.relative_difference`) estimate without bias. Race is multi-select;
    its effect is the sum over the chosen values (White = 0), so the truth compares single-race
    groups. Reported age and ideology can be "Prefer not to say" (missing in the Study), but
    the true values drive the ratings. The calibration uses a fixed-seed reference population,
    so the truth depends on the design but not on ``seed``.

    Items carry two covariates: ``source_model`` and ``length`` (words, drawn independently of
    the text). Their main effects and their interactions with demographics are in
    ``truth.item_effects``; length effects are per SD of ``length`` over the items table. The
    calibration integrates over them, so the requested relative differences hold for group
    means averaged over items, and a group with an interaction but no requested effect has no
    difference on average (``target_pct`` 0).

    Each rater visits ``ceil(items_per_rater / responses_per_visit)`` prompts and rates
    ``responses_per_visit`` of their responses on each visit; prompt visits and response pairs
    are spread evenly, so every item is rated once there are as many rater × item slots as
    items, and same-rater pairs of every response pair of a prompt exist once a prompt has as
    many visits as pairs.

    Examples
    --------
    >>> sim = simulate_study(n_raters=60, seed=1)
    >>> sim.study.n_ratings
    1500
    >>> row = sim.truth.effect("toxicity", "gender", "he/him")
    >>> round(float(row["relative_pct"]), 1)
    -18.0
    >>> sorted(sim.study.items["source_model"].unique())
    ['model_a', 'model_b', 'model_c']
    """
    d = SimulationDesign(**design)
    seed = options.seed if seed is None else seed
    rng = np.random.default_rng(seed)
    dims = d.dimensions
    D = len(dims)
    minimum = 1.0 if d.scale_points == 5 else 0.0
    base_cut = np.array(CUTPOINTS_5 if d.scale_points == 5 else CUTPOINTS_2)
    cuts = {dim: base_cut - LOCATION.get(dim, 0.0) for dim in dims}

    # --- fixed effects, calibrated on a fixed-seed reference population (independent of `seed`)
    beta_by_dim, fixed_effects = _calibration(d, cuts, minimum)

    # --- raters and item covariates: the study's arrays for the generative kernel
    codes = _draw_rater_codes(d.n_raters, d, rng)
    n = d.n_raters
    P, K = d.n_prompts, d.responses_per_prompt
    n_items = P * K
    fixed = np.column_stack([_fixed_part(codes, beta_by_dim[dim]) for dim in dims])  # (n, D)
    S = len(d.source_models)
    item_rng = rng.spawn(1)[0]  # its own stream: the other draws do not move with the covariates
    source = item_rng.integers(S, size=n_items)
    length = np.round(LENGTH_MEAN + LENGTH_SD * item_rng.standard_normal(n_items))
    length = np.maximum(10.0, length)
    x_len = (length - length.mean()) / length.std() if length.std() > 0 else 0 * length
    features = np.column_stack([np.eye(S)[source][:, 1:], x_len])  # (items, S - 1 + 1)
    item_fixed = np.zeros((n_items, D))
    loadings = np.zeros((n, S, D))
    item_rows = []
    for j, dim in enumerate(dims):
        gamma, delta, theta, kappa = d.item_terms(dim)
        item_fixed[:, j] = gamma[source] + delta * x_len
        for var, tab in theta.items():
            loadings[:, : S - 1, j] += tab[codes[var]][:, 1:]
        for var, kap in kappa.items():
            loadings[:, S - 1, j] += kap[codes[var]]
        item_rows += _item_effect_rows(dim, d, gamma, delta, theta, kappa)
    item_effects = pd.DataFrame(
        item_rows, columns=["dimension", "term", "level", "source_model", "effect"]
    )
    mu = np.zeros(D)  # ordinal: the cutpoints place the scale
    if d.family == "gaussian":
        mu = np.array([GAUSSIAN_MEAN.get(dim, 3.0) if d.scale_points == 5 else 0.5 for dim in dims])
        fixed = fixed + mu
    rsd = np.array([d.sd("rater", dim) for dim in dims])
    isd = np.array([d.sd("item", dim) for dim in dims])
    gi_sd = np.array([d.sd("group_item", dim) for dim in dims])
    draw = simulate_ratings(
        fixed,
        rng,
        n_prompts=P,
        responses_per_prompt=K,
        items_per_rater=d.items_per_rater,
        responses_per_visit=d.responses_per_visit,
        rater_sd=rsd,
        item_sd=isd,
        group_item_sd=gi_sd,
        groups={g: (codes[g], len(_levels(g))) for g in d.group_item},
        rater_corr=d.rater_corr,
        trait_corr=_trait_corr(dims),
        prompt_share=d.prompt_share,
        item_fixed=item_fixed,
        loadings=loadings,
        features=features,
        family=d.family,
        cutpoints=np.stack([cuts[dim] for dim in dims]),
        minimum=minimum,
        residual_sd=np.array([d.sd("residual", dim) for dim in dims]),
    )
    z, item_ids, prompt_ids = draw.item_trait, draw.item_ids, draw.prompt_ids

    # --- tables
    ratings = draw.ratings_frame(dims)
    raters = _rater_frame(draw.rater_ids, codes, d, rng)
    prompts = np.asarray(prompt_texts(P, rng), dtype=object)
    items = pd.DataFrame(
        {
            "item": item_ids,
            "prompt_id": np.repeat(prompt_ids, K),
            "prompt": np.repeat(prompts, K),
            "response": response_texts(z, dims, rng),
            "source_model": np.array(d.source_models, dtype=object)[source],
            "length": length,
        }
    )
    if d.scale_points == 5:
        scales = {dim: Scale(dim, 1, 5, AGREEMENT_5, True, MORE_IS_BETTER.get(dim)) for dim in dims}
    else:
        scales = {dim: Scale(dim, 0, 1, BINARY, True, MORE_IS_BETTER.get(dim)) for dim in dims}
    questions = {
        dim: f"The answer exhibits {_PHRASE.get(dim, dim.replace('_', ' '))}." for dim in dims
    }
    study = Study.from_frames(
        ratings,
        raters,
        items=items,
        scales=scales,
        multiselect=["race"],
        continuous=d.family == "gaussian",
        name=f"simulated (seed {seed})",
        metadata={
            "simulated": True,
            "seed": seed,
            "family": d.family,
            "questions": questions,
        },
        reference=dict(REFERENCE),
    )

    # --- truth
    cutpoints, intercepts = _threshold_frames(dims, cuts if d.family == "ordinal" else {}, mu)
    truth = SimulationTruth(
        fixed_effects=fixed_effects,
        random_sd=_random_sd_frame(d, dims, rsd, isd, gi_sd),
        item_traits=_item_traits_frame(draw, dims, K),
        cutpoints=cutpoints,
        group_item=_group_item_frame(draw, dims),
        rater_effects=_rater_effects_frame(draw, dims),
        intercepts=intercepts,
        item_effects=item_effects,
    )
    return SimulatedStudy(study, truth, d, seed)


def _random_sd_frame(
    d: SimulationDesign,
    dims: Sequence[str],
    rater_sd: np.ndarray,
    item_sd: np.ndarray,
    group_item_sd: np.ndarray,
) -> pd.DataFrame:
    """:attr:`SimulationTruth.random_sd`: the SD of every random component of every dimension."""
    rows = []
    for j, dim in enumerate(dims):
        rows.append((dim, "rater", rater_sd[j]))
        rows.append((dim, "item", item_sd[j]))
        for g in d.group_item:
            rows.append((dim, f"group_item:{g}", group_item_sd[j]))
        if d.family == "gaussian":
            rows.append((dim, "residual", d.sd("residual", dim)))
    return pd.DataFrame(rows, columns=["dimension", "component", "sd"])


def _item_traits_frame(draw: LatentRatings, dims: Sequence[str], K: int) -> pd.DataFrame:
    """:attr:`SimulationTruth.item_traits`: each item's latent trait and effect per dimension."""
    D = len(dims)
    return pd.DataFrame(
        {
            "item": np.repeat(draw.item_ids, D),
            "prompt_id": np.repeat(np.repeat(draw.prompt_ids, K), D),
            "dimension": np.tile(np.array(dims, dtype=object), len(draw.item_ids)),
            "trait": draw.item_trait.ravel(),
            "effect": draw.item_effect.ravel(),
        }
    )


def _threshold_frames(
    dims: Sequence[str], cuts: Mapping[str, np.ndarray], intercept: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:attr:`SimulationTruth.cutpoints` (none without ``cuts``) and ``intercepts``."""
    cutpoints = pd.DataFrame(
        [
            {"dimension": dim, "threshold": k + 1, "value": c}
            for dim in cuts
            for k, c in enumerate(cuts[dim])
        ],
        columns=["dimension", "threshold", "value"],
    )
    return cutpoints, pd.DataFrame({"dimension": list(dims), "intercept": intercept})


def _rater_effects_frame(draw: LatentRatings, dims: Sequence[str]) -> pd.DataFrame:
    """:attr:`SimulationTruth.rater_effects`: each rater's random effect per dimension."""
    return pd.DataFrame(
        {
            "rater": np.repeat(draw.rater_ids, len(dims)),
            "dimension": np.tile(np.array(dims, dtype=object), len(draw.rater_ids)),
            "effect": draw.rater_effect.ravel(),
        }
    )


def _group_item_frame(draw: LatentRatings, dims: Sequence[str]) -> pd.DataFrame:
    """:attr:`SimulationTruth.group_item`: each group's deviation on each item."""
    columns = ["dimension", "term", "level", "item", "deviation"]
    frames = []
    for g, dev in draw.group_item.items():
        levels = _levels(g)
        L_, I_, D_ = dev.shape
        frames.append(
            pd.DataFrame(
                {
                    "dimension": np.tile(np.array(dims, dtype=object), L_ * I_),
                    "term": g,
                    "level": np.repeat(np.array(levels, dtype=object), I_ * D_),
                    "item": np.tile(np.repeat(draw.item_ids, D_), L_),
                    "deviation": dev.ravel(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def _item_effect_rows(
    dim: str,
    d: SimulationDesign,
    gamma: np.ndarray,
    delta: float,
    theta: Mapping[str, np.ndarray],
    kappa: Mapping[str, np.ndarray],
) -> list[tuple]:
    """Rows of :attr:`SimulationTruth.item_effects` for one dimension (non-zero effects)."""
    rows = [
        (dim, "source_model", None, m, float(g))
        for m, g in zip(d.source_models, gamma, strict=True)
        if g != 0
    ]
    if delta != 0:
        rows.append((dim, "length", None, None, float(delta)))
    for var, tab in theta.items():
        for lev, row in zip(_levels(var), tab, strict=True):
            rows += [
                (dim, f"{var}:source_model", lev, m, float(t))
                for m, t in zip(d.source_models, row, strict=True)
                if t != 0
            ]
    for var, kap in kappa.items():
        rows += [
            (dim, f"{var}:length", lev, None, float(k))
            for lev, k in zip(_levels(var), kap, strict=True)
            if k != 0
        ]
    return rows


def _rater_frame(
    ids: np.ndarray, codes: dict[str, np.ndarray], d: SimulationDesign, rng: np.random.Generator
) -> pd.DataFrame:
    """Reported demographics (with "Prefer not to say" for some age and ideology answers)."""
    n = len(ids)
    party_levels = np.array(_levels("party"), dtype=object)
    race_names = np.array(RACES, dtype=object)
    race = [tuple(race_names[row]) for row in codes["race"]]
    age = np.array(AGES, dtype=object)[codes["age"]]
    ideology = np.array(IDEOLOGIES, dtype=object)[codes["ideology"]]
    age[rng.random(n) < d.missing_share] = PREFER_NOT
    ideology[rng.random(n) < d.missing_share] = PREFER_NOT
    frame = pd.DataFrame(
        {
            "rater": ids,
            "gender": np.array(GENDERS, dtype=object)[codes["gender"]],
            "age": age,
            "race": race,
            "ideology": ideology,
            "party": party_levels[codes["party"]],
            "country": np.array(["US", "Germany"], dtype=object)[codes["country"]],
        }
    )
    return frame
