"""What a planned study looks like (``StudyDesign``) and how one random study is drawn from it.

The data-generating model is a crossed latent-variable model for one rated dimension::

    y*_{ji} = intercept + beta[g(j)] + u_j + v_i + w_{g(j), i} + e_{ji}
    u_j ~ N(0, rater_sd²),  v_i ~ N(0, item_sd²),  w_{g,i} ~ N(0, group_item_sd²),  e ~ N(0, residual_sd²)

Rater ``j`` belongs to group ``g(j)`` of one demographic and rates ``items_per_rater`` items.
Designs may give items covariates, as the simulator does: the response's source model ``m(i)``
(equal shares, the first the reference) and its length ``x_i`` in words, ``N(150, 50²)``, with
main effects and interactions with the demographic::

    ... + gamma[m(i)] + delta z_i + theta[g(j), m(i)] + kappa[g(j)] z_i,   z_i = (x_i - 150) / 50

On the ``"normal"`` scale the rating is ``y*`` itself with ``e ~ N(0, residual_sd²)``; on an
ordinal scale (``"5-point"``, ``"binary"``) ``e`` is standard logistic (a cumulative-logit model)
and the rating is ``y*`` cut at the thresholds ``cutpoints``. A design is a thin description of
sizes and effects: :meth:`StudyDesign.kernel_inputs` turns it into the arrays of
:func:`pluralign.data.simulate_ratings`, the generative kernel that
:func:`pluralign.data.simulate_study` uses too (same item assignment, ids and rating draws).
Defaults (SDs, thresholds, locations, mean ratings) are the simulator's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize

from pluralign._numeric import expected_ordinal_rating
from pluralign.data import (
    CUTPOINTS_2,
    CUTPOINTS_5,
    GAUSSIAN_MEAN,
    LENGTH_MEAN,
    LENGTH_SD,
    LOCATION,
    LogEntry,
    Scale,
    SimulationDesign,
    Study,
    simulate_ratings,
)

if TYPE_CHECKING:
    from pluralign.models import ModelResult

ScaleKind = Literal["5-point", "binary", "normal"]
EffectScale = Literal["latent", "relative"]

#: Thresholds of the latent variable used by default for each ordinal scale (the simulator's).
DEFAULT_CUTPOINTS: dict[str, tuple[float, ...]] = {
    "5-point": tuple(CUTPOINTS_5),
    "binary": tuple(CUTPOINTS_2),
}
_SCALE_RANGE = {"5-point": (1, 5), "binary": (0, 1)}


def _simulator_sd(component: str, family: str, dimension: str) -> float:
    return SimulationDesign(family=family).sd(component, dimension)


def _freeze_groups(groups: Mapping) -> dict[str, dict[str, int]]:
    if not isinstance(groups, Mapping) or len(groups) != 1:
        raise ValueError(
            "groups must map ONE demographic to the number of raters per level, e.g. "
            "{'gender': {'she/her': 300, 'he/him': 300}}; "
            f"got {groups!r}"
        )
    ((term, counts),) = groups.items()
    if not isinstance(counts, Mapping) or len(counts) < 2:
        raise ValueError(
            f"groups[{term!r}] must map at least two levels to rater counts, got {counts!r}"
        )
    out = {}
    for level, n in counts.items():
        if int(n) != n or n < 1:
            raise ValueError(f"groups[{term!r}][{level!r}] must be a positive integer, got {n!r}")
        out[str(level)] = int(n)
    return {str(term): out}


@dataclass(frozen=True)
class StudyDesign:
    """A planned rating study: who rates, how much, on which scale, and the assumed truth.

    Parameters
    ----------
    groups : mapping
        One demographic mapped to the number of raters per level, e.g.
        ``{"gender": {"she/her": 300, "he/him": 300}}``. The first level is the reference.
    effects : mapping of str to float
        True difference of each level from the reference (levels left out: 0). On
        ``effect_scale="latent"`` it is a shift of the latent variable (rating points on the
        ``"normal"`` scale); on ``"relative"`` it is a relative difference of the expected
        rating, ``E[rating | level] / E[rating | reference] - 1`` (0.1 = 10 % higher).
    effect_scale : {"latent", "relative"}
        Unit of ``effects``.
    n_prompts, responses_per_prompt : int
        Items are ``n_prompts × responses_per_prompt`` responses grouped by prompt.
    items_per_rater : int
        Ratings per rater. Raters visit ``ceil(items_per_rater / responses_per_prompt)``
        distinct prompts and rate all responses of each (the last visit takes the remainder),
        so with ``items_per_rater`` a multiple of ``responses_per_prompt`` every rater rates
        whole prompts; prompts and responses are rated about equally often
        (:func:`pluralign.data.assign_items`).
    scale : {"5-point", "binary", "normal"}
        Observed rating scale.
    intercept : float, optional
        Latent mean of the reference group (default: the simulator's location of
        ``dimension`` on ordinal scales, its mean rating on the normal scale).
    rater_sd, item_sd, residual_sd : float, optional
        Standard deviations of rater intercepts, item intercepts and residuals (latent units;
        rating points on the normal scale). Defaults: the simulator's for the scale's family.
        ``residual_sd`` only applies to the normal scale (the ordinal residual is standard
        logistic, SD π/√3).
    group_item_sd : float, optional
        The misspecification the generator carries on purpose: SD of group × item deviations
        ``w_{g,i}`` (each group rates each item a little differently), which the fitted models
        (crossed rater and item intercepts) omit. The group contrast then contains
        ``mean_i(w_{g,i} − w_{ref,i})``, with variance about ``2 group_item_sd² / n_items``
        when every item is rated by both groups, which the model's standard error leaves out:
        intervals undercover and tests are liberal when that term is not small next to the
        model's SE², i.e. with few items (see ``docs/power.md``). Default: the simulator's
        (0.35 latent, 0.2 rating points); 0 turns it off.
    cutpoints : tuple of float, optional
        Latent thresholds of an ordinal scale (default: :data:`DEFAULT_CUTPOINTS`).
    dimension : str
        Name of the rated dimension.
    source_models : tuple of str, optional
        Item covariate ``source_model``: the LLMs that wrote the responses, in equal shares
        (assigned at random), the first the reference. Default: none (no such column).
    source_model_effects : mapping of str to float, optional
        Latent shift of each non-reference source model (rating points on the normal scale).
    length_effect : float, optional
        Item covariate ``length`` (words, ``N(150, 50²)`` rounded, at least 10): latent shift
        per 50 words (one nominal SD). Default ``None``: no length column.
    source_model_interactions : mapping, optional
        Demographic × source model: ``{level: {model: shift}}``, the shift of a non-reference
        level's raters on a non-reference model's responses beyond the reference level's
        (the interaction coefficient; other cells 0).
    length_interactions : mapping of str to float, optional
        Demographic × length: ``{level: change}``, the change of the length slope (per 50
        words) of a non-reference level's raters.
    test : str, optional
        The model term whose contrasts are tested (default: the demographic, ``term``): also
        ``"source_model"``, ``"length"``, ``"{term}:source_model"`` or ``"{term}:length"``
        when the design has that covariate (:attr:`tests`). The fitted formula
        (:attr:`formula`) holds the demographic, every item covariate and the tested
        interaction. Item effects are latent shifts whatever ``effect_scale`` is; the
        demographic's ``effects`` are its shifts on the reference model's responses of average
        length.

    Examples
    --------
    >>> d = StudyDesign({"gender": {"she/her": 30, "he/him": 30}}, effects={"he/him": 0.3},
    ...                 scale="normal", n_prompts=10, responses_per_prompt=2, items_per_rater=4)
    >>> d.n_raters, d.n_items, d.reference, d.contrasts
    (60, 20, 'she/her', [('gender', 'he/him', 'she/her')])
    >>> d.with_n_raters(90).groups
    {'gender': {'she/her': 45, 'he/him': 45}}

    Power to detect that he/him raters rate one model's responses differently:

    >>> d = StudyDesign(source_models=("model_a", "model_b"),
    ...                 source_model_interactions={"he/him": {"model_b": 0.3}},
    ...                 test="gender:source_model", scale="normal")
    >>> d.formula, d.contrasts
    ('rating ~ gender + source_model + gender:source_model', [('gender:source_model', 'he/him:model_b', 'she/her:model_a')])
    >>> sorted(d.simulate(seed=1).items.columns)
    ['item', 'prompt', 'prompt_id', 'response', 'source_model']
    """

    groups: Mapping[str, Mapping[str, int]] = field(
        default_factory=lambda: {"gender": {"she/her": 300, "he/him": 300}}
    )
    effects: Mapping[str, float] = field(default_factory=dict)
    effect_scale: EffectScale = "latent"
    n_prompts: int = 250
    responses_per_prompt: int = 4
    items_per_rater: int = 5
    scale: ScaleKind = "5-point"
    intercept: float | None = None
    rater_sd: float | None = None
    item_sd: float | None = None
    group_item_sd: float | None = None
    residual_sd: float | None = None
    cutpoints: tuple[float, ...] | None = None
    dimension: str = "toxicity"
    source_models: tuple[str, ...] = ()
    source_model_effects: Mapping[str, float] = field(default_factory=dict)
    length_effect: float | None = None
    source_model_interactions: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    length_interactions: Mapping[str, float] = field(default_factory=dict)
    test: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", _freeze_groups(self.groups))
        self._check_item_covariates()
        levels = self.levels
        eff = {str(k): float(v) for k, v in dict(self.effects).items()}
        unknown = [k for k in eff if k not in levels]
        if unknown:
            raise ValueError(
                f"effects names levels {unknown} that are not in groups[{self.term!r}] {levels}"
            )
        if eff.get(self.reference, 0.0) != 0.0:
            raise ValueError(
                f"effects[{self.reference!r}] must be 0: it is the reference level of {self.term!r}"
            )
        object.__setattr__(self, "effects", eff)
        if self.effect_scale not in ("latent", "relative"):
            raise ValueError(
                f"effect_scale must be 'latent' or 'relative', got {self.effect_scale!r}"
            )
        if self.scale not in ("5-point", "binary", "normal"):
            raise ValueError(f"scale must be '5-point', 'binary' or 'normal', got {self.scale!r}")
        for name in ("n_prompts", "responses_per_prompt", "items_per_rater"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
            object.__setattr__(self, name, int(v))
        if self.items_per_rater > self.n_items:
            raise ValueError(
                f"items_per_rater ({self.items_per_rater}) exceeds the number of items "
                f"({self.n_items} = n_prompts × responses_per_prompt); add prompts or rate fewer"
            )
        family = "gaussian" if self.scale == "normal" else "ordinal"
        if self.scale != "normal" and self.residual_sd is not None:
            raise ValueError(
                "residual_sd only applies to scale='normal'; ordinal ratings have a standard "
                "logistic residual (set the other SDs relative to it)"
            )
        for name in ("rater_sd", "item_sd", "group_item_sd", "residual_sd"):
            v = getattr(self, name)
            if v is None:
                if name == "residual_sd" and family == "ordinal":
                    continue
                v = _simulator_sd(name[:-3], family, self.dimension)
            v = float(v)
            if not np.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
            object.__setattr__(self, name, v)
        if self.scale == "normal" and self.residual_sd == 0:
            raise ValueError("residual_sd must be > 0 on the normal scale")
        if self.intercept is None:
            default = (
                GAUSSIAN_MEAN.get(self.dimension, 3.0)
                if self.scale == "normal"
                else LOCATION.get(self.dimension, 0.0)
            )
            object.__setattr__(self, "intercept", float(default))
        if self.scale == "normal":
            if self.cutpoints is not None:
                raise ValueError("cutpoints only apply to ordinal scales ('5-point', 'binary')")
        else:
            cuts = DEFAULT_CUTPOINTS[self.scale] if self.cutpoints is None else self.cutpoints
            cuts = tuple(float(c) for c in cuts)
            lo, hi = _SCALE_RANGE[self.scale]
            if len(cuts) != hi - lo or np.any(np.diff(cuts) <= 0):
                raise ValueError(
                    f"cutpoints of a {self.scale} scale must be {hi - lo} increasing numbers, got {cuts}"
                )
            object.__setattr__(self, "cutpoints", cuts)
        if self.effect_scale == "relative" and self.scale == "normal" and self.intercept == 0:
            raise ValueError(
                "relative effects need a non-zero mean rating: set intercept (the reference mean) "
                "or use effect_scale='latent'"
            )

    def _check_item_covariates(self) -> None:
        models = tuple(str(m) for m in self.source_models)
        if len(models) == 1 or len(set(models)) != len(models):
            raise ValueError(
                f"source_models must be at least two distinct names (the first the reference), "
                f"got {list(models)}"
            )
        object.__setattr__(self, "source_models", models)

        def shifts(spec, what: str, allowed: list[str]) -> dict[str, float]:
            out = {str(k): float(v) for k, v in dict(spec).items()}
            bad = [k for k in out if k not in allowed]
            if bad:
                raise ValueError(f"{what} names {bad}; allowed: {allowed}")
            if not all(np.isfinite(list(out.values()))):
                raise ValueError(f"{what} must be finite numbers, got {out}")
            return out

        object.__setattr__(
            self,
            "source_model_effects",
            shifts(self.source_model_effects, "source_model_effects", list(models[1:])),
        )
        inter = dict(self.source_model_interactions)
        bad = [k for k in inter if str(k) not in self.levels[1:]]
        if bad:
            raise ValueError(
                f"source_model_interactions names levels {bad}; allowed: the non-reference "
                f"levels of {self.term!r} {self.levels[1:]}"
            )
        object.__setattr__(
            self,
            "source_model_interactions",
            {
                str(lv): shifts(spec, f"source_model_interactions[{lv!r}]", list(models[1:]))
                for lv, spec in inter.items()
            },
        )
        if self.length_effect is not None:
            object.__setattr__(self, "length_effect", float(self.length_effect))
            if not np.isfinite(self.length_effect):
                raise ValueError(f"length_effect must be finite, got {self.length_effect}")
        elif self.length_interactions:
            raise ValueError(
                "length_interactions need a length column: set length_effect (0 for none)"
            )
        object.__setattr__(
            self,
            "length_interactions",
            shifts(self.length_interactions, "length_interactions", self.levels[1:]),
        )
        test = self.term if self.test is None else str(self.test)
        if test not in self.tests:
            raise ValueError(f"test must be one of the design's terms {self.tests}, got {test!r}")
        object.__setattr__(self, "test", test)

    # ------------------------------------------------------------------ facts
    @property
    def has_item_covariates(self) -> bool:
        """Whether items carry a source model or a length."""
        return bool(self.source_models) or self.length_effect is not None

    @property
    def tests(self) -> list[str]:
        """The terms a power analysis of this design can test (see ``test``)."""
        out = [self.term]
        if self.source_models:
            out += ["source_model", f"{self.term}:source_model"]
        if self.length_effect is not None:
            out += ["length", f"{self.term}:length"]
        return out

    @property
    def formula(self) -> str:
        """The model fitted to each simulated study: the demographic, every item covariate and
        the tested interaction (``"rating ~ gender"`` without item covariates)."""
        terms = [self.term]
        if self.source_models:
            terms.append("source_model")
        if self.length_effect is not None:
            terms.append("length")
        if ":" in self.test:
            terms.append(self.test)
        return "rating ~ " + " + ".join(terms)

    @property
    def term(self) -> str:
        """The demographic whose levels are compared."""
        return next(iter(self.groups))

    @property
    def levels(self) -> list[str]:
        """Levels of :attr:`term`, reference first."""
        return list(self.groups[self.term])

    @property
    def reference(self) -> str:
        return self.levels[0]

    @property
    def counts(self) -> dict[str, int]:
        """Raters per level."""
        return dict(self.groups[self.term])

    @property
    def n_raters(self) -> int:
        return int(sum(self.counts.values()))

    @property
    def n_items(self) -> int:
        return self.n_prompts * self.responses_per_prompt

    @property
    def contrasts(self) -> list[tuple[str, str, str]]:
        """``(term, level, reference)`` of every contrast of the tested term (:attr:`test`), as
        the fitted model names them."""
        models, ref = self.source_models, self.reference
        if self.test == "source_model":
            return [("source_model", m, models[0]) for m in models[1:]]
        if self.test == "length":
            return [("length", "length", "")]
        if self.test == f"{self.term}:source_model":
            return [
                (self.test, f"{lv}:{m}", f"{ref}:{models[0]}")
                for m in models[1:]
                for lv in self.levels[1:]
            ]
        if self.test == f"{self.term}:length":
            return [(self.test, lv, f"{ref}:") for lv in self.levels[1:]]
        return [(self.term, lv, ref) for lv in self.levels[1:]]

    @property
    def rating_scale(self) -> Scale:
        """The :class:`~pluralign.data.Scale` of simulated ratings (normal: a nominal 1..5 range)."""
        lo, hi = _SCALE_RANGE.get(self.scale, (1, 5))
        return Scale(self.dimension, lo, hi)

    @property
    def random_sd(self) -> float:
        """SD of the normal random effects (rater, item, group × item) of one rating."""
        return float(np.sqrt(self.rater_sd**2 + self.item_sd**2 + self.group_item_sd**2))

    def key(self) -> str:
        """A short stable hash of the design (used to key cached simulations)."""
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    # ------------------------------------------------------------------ effect units
    def mean_rating(self, latent_mean: float) -> float:
        """Expected rating (marginal over all random effects) at a latent group mean."""
        if self.scale == "normal":
            return float(latent_mean)
        lo = _SCALE_RANGE[self.scale][0]
        return float(
            expected_ordinal_rating(latent_mean, self.random_sd, np.asarray(self.cutpoints), lo)
        )

    def latent_effects(self) -> dict[str, float]:
        """Latent shift of every level (reference 0), converting relative effects if needed."""
        out = {lv: 0.0 for lv in self.levels}
        if self.effect_scale == "latent":
            out.update(self.effects)
            return out
        m0 = self.mean_rating(self.intercept)
        lo, hi = _SCALE_RANGE.get(self.scale, (-np.inf, np.inf))
        for lv, rel in self.effects.items():
            target = (1 + rel) * m0
            if self.scale == "normal":
                out[lv] = target - self.intercept
                continue
            if not lo < target < hi:
                raise ValueError(
                    f"a relative effect of {rel:+.3f} for {lv!r} asks for a mean rating of "
                    f"{target:.3f}, outside the open scale range ({lo}, {hi})"
                )
            span = 50 * max(self.random_sd, 2.0)
            out[lv] = optimize.brentq(
                lambda d, t=target: self.mean_rating(self.intercept + d) - t, -span, span
            )
        return out

    def point_effects(self) -> dict[str, float]:
        """Difference of expected ratings, level − reference, in rating points (the estimand
        of a Gaussian mixed model; marginal over the random effects)."""
        lat = self.latent_effects()
        m0 = self.mean_rating(self.intercept)
        return {lv: self.mean_rating(self.intercept + d) - m0 for lv, d in lat.items()}

    def _interaction_table(self) -> np.ndarray:
        """``theta[level, model]``: demographic × source-model shifts (reference row and
        column 0)."""
        tab = np.zeros((len(self.levels), len(self.source_models)))
        for lv, spec in self.source_model_interactions.items():
            for m, v in spec.items():
                tab[self.levels.index(lv), self.source_models.index(m)] = v
        return tab

    def test_effects(self, scale: Literal["latent", "point"] = "latent") -> dict[str, float]:
        """True value of every contrast of the tested term (:attr:`contrasts`), keyed by level.

        ``"latent"``: latent units (a cumulative-logit model's scale; rating points on the
        normal scale). ``"point"``: rating points, the estimand of a Gaussian mixed model.
        Without item covariates these are :meth:`latent_effects` and :meth:`point_effects`.
        With them, each contrast is the model's: a demographic or source-model contrast
        averaged over the other factor (source models in equal shares, raters in the design's
        shares), a length slope per word, an interaction coefficient. Rating points have no
        closed form on an ordinal scale with item covariates: NaN there.

        Examples
        --------
        >>> d = StudyDesign(source_models=("model_a", "model_b"),
        ...                 source_model_interactions={"he/him": {"model_b": 0.3}},
        ...                 test="gender:source_model", scale="normal")
        >>> d.test_effects()
        {'he/him:model_b': 0.3}
        """
        if scale not in ("latent", "point"):
            raise ValueError(f"scale must be 'latent' or 'point', got {scale!r}")
        if not self.has_item_covariates:
            return self.latent_effects() if scale == "latent" else self.point_effects()
        levels = [lv for _, lv, _ in self.contrasts]
        if scale == "point" and self.scale != "normal":
            return dict.fromkeys(levels, np.nan)
        lat = self.latent_effects()
        share = np.array(list(self.counts.values()), dtype=float) / self.n_raters
        if self.source_models:
            theta = self._interaction_table()
            gamma = np.array([self.source_model_effects.get(m, 0.0) for m in self.source_models])
        kappa = np.array([self.length_interactions.get(lv, 0.0) for lv in self.levels])
        if self.test == self.term:
            extra = theta.mean(axis=1) if self.source_models else np.zeros(len(self.levels))
            return {lv: lat[lv] + extra[k] for k, lv in enumerate(self.levels)}
        if self.test == "source_model":
            marg = gamma + share @ theta
            return {m: float(marg[k]) for k, m in enumerate(self.source_models) if k}
        if self.test == "length":
            return {"length": float((self.length_effect + share @ kappa) / LENGTH_SD)}
        if self.test == f"{self.term}:source_model":
            return {
                f"{lv}:{m}": float(theta[i, k])
                for k, m in enumerate(self.source_models)
                for i, lv in enumerate(self.levels)
                if i and k
            }
        return {lv: float(kappa[i] / LENGTH_SD) for i, lv in enumerate(self.levels) if i}

    # ------------------------------------------------------------------ variations
    def replace(self, **changes: Any) -> StudyDesign:
        """A copy with some fields changed (validated again).

        Besides the fields, ``n_raters=`` rescales every group keeping their shares.
        """
        n = changes.pop("n_raters", None)
        d = dataclasses.replace(self, **changes)
        return d.with_n_raters(n) if n is not None else d

    def with_n_raters(self, n_raters: int) -> StudyDesign:
        """The same design with ``n_raters`` raters split like the current groups
        (largest-remainder rounding, at least one rater per level)."""
        n_raters = int(n_raters)
        counts = self.counts
        if n_raters < len(counts):
            raise ValueError(
                f"n_raters={n_raters} is smaller than the number of levels {len(counts)}"
            )
        share = np.array(list(counts.values()), dtype=float)
        share /= share.sum()
        raw = share * n_raters
        base = np.maximum(np.floor(raw).astype(int), 1)
        while base.sum() > n_raters:  # only when the floor of 1 pushed us over
            base[np.argmax(base)] -= 1
        rest = n_raters - base.sum()
        order = np.argsort(-(raw - np.floor(raw)), kind="stable")
        base[order[:rest]] += 1
        new = {self.term: dict(zip(counts, (int(b) for b in base), strict=True))}
        return dataclasses.replace(self, groups=new)

    def with_effect(self, effect: float | Mapping[str, float]) -> StudyDesign:
        """The same design with another effect size of the tested term (:attr:`test`).

        A float sets the first contrast (first non-reference level; first non-reference model;
        the length slope), a mapping sets contrasts by their ``level`` as in :attr:`contrasts`
        (``{"he/him:model_b": 0.2}`` for ``test="gender:source_model"``). For the demographic a
        mapping replaces ``effects`` as a whole; item terms keep the contrasts not named.
        """
        first = self.contrasts[0][1]
        given = dict(effect) if isinstance(effect, Mapping) else {first: float(effect)}
        if self.test == self.term:
            eff = given if isinstance(effect, Mapping) else {**self.effects, **given}
            return dataclasses.replace(self, effects=eff)
        known = [lv for _, lv, _ in self.contrasts]
        unknown = [k for k in given if k not in known]
        if unknown:
            raise ValueError(f"effect names contrasts {unknown} of {self.test!r}; known: {known}")
        if self.test == "source_model":
            return dataclasses.replace(
                self, source_model_effects={**self.source_model_effects, **given}
            )
        if self.test == "length":
            return dataclasses.replace(self, length_effect=given["length"])
        if self.test == f"{self.term}:length":
            return dataclasses.replace(
                self, length_interactions={**self.length_interactions, **given}
            )
        inter = {lv: dict(spec) for lv, spec in self.source_model_interactions.items()}
        for key, v in given.items():
            lv, m = key.split(":", 1)
            inter.setdefault(lv, {})[m] = float(v)
        return dataclasses.replace(self, source_model_interactions=inter)

    # ------------------------------------------------------------------ simulation
    def draw_item_covariates(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """The items' covariates: ``source`` (code of the source model, equal shares in random
        order) and ``length`` (words); empty without item covariates.

        Examples
        --------
        >>> d = StudyDesign(source_models=("model_a", "model_b"), n_prompts=4)
        >>> cov = d.draw_item_covariates(np.random.default_rng(0))
        >>> sorted(cov), np.bincount(cov["source"]).tolist()
        (['source'], [8, 8])
        """
        out: dict[str, np.ndarray] = {}
        if self.source_models:
            out["source"] = rng.permutation(np.arange(self.n_items) % len(self.source_models))
        if self.length_effect is not None:
            out["length"] = np.maximum(
                10.0, np.round(LENGTH_MEAN + LENGTH_SD * rng.standard_normal(self.n_items))
            )
        return out

    def kernel_inputs(self, covariates: Mapping[str, np.ndarray] | None = None) -> dict:
        """The design as arguments of :func:`pluralign.data.simulate_ratings` (without ``rng``).

        Raters are ordered by level (reference first); the latent fixed part is
        ``intercept + latent effect`` of the rater's level; every level deviates from everyone
        on each item by ``N(0, group_item_sd²)``; raters rate whole prompts. ``covariates``
        (:meth:`draw_item_covariates`) add the item covariates' effects and interactions.
        """
        counts = np.array(list(self.counts.values()))
        group = np.repeat(np.arange(len(counts)), counts)
        effects = self.latent_effects()
        beta = np.array([effects[lv] for lv in self.levels])
        inputs = {
            "fixed": (self.intercept + beta[group])[:, None],
            "n_prompts": self.n_prompts,
            "responses_per_prompt": self.responses_per_prompt,
            "items_per_rater": self.items_per_rater,
            "responses_per_visit": min(self.items_per_rater, self.responses_per_prompt),
            "rater_sd": self.rater_sd,
            "item_sd": self.item_sd,
            "group_item_sd": self.group_item_sd,
            "groups": {self.term: (group, len(counts))},
        }
        if covariates:
            inputs.update(self._covariate_inputs(group, covariates))
        if self.scale == "normal":
            inputs.update(family="gaussian", residual_sd=self.residual_sd)
        else:
            inputs.update(
                family="ordinal",
                cutpoints=np.asarray(self.cutpoints)[None, :],
                minimum=float(_SCALE_RANGE[self.scale][0]),
            )
        return inputs

    def _covariate_inputs(self, group: np.ndarray, cov: Mapping[str, np.ndarray]) -> dict:
        """``item_fixed``, ``features`` and ``loadings`` of :func:`simulate_ratings`."""
        item_fixed = np.zeros(self.n_items)
        features, loadings = [], []
        if "source" in cov:
            src = cov["source"]
            gamma = np.array([self.source_model_effects.get(m, 0.0) for m in self.source_models])
            item_fixed += gamma[src]
            features.append(np.eye(len(self.source_models))[src][:, 1:])
            loadings.append(self._interaction_table()[group][:, 1:])
        if "length" in cov:
            z = (cov["length"] - LENGTH_MEAN) / LENGTH_SD
            kappa = np.array([self.length_interactions.get(lv, 0.0) for lv in self.levels])
            item_fixed += self.length_effect * z
            features.append(z[:, None])
            loadings.append(kappa[group][:, None])
        return {
            "item_fixed": item_fixed[:, None],
            "features": np.hstack(features),
            "loadings": np.hstack(loadings)[:, :, None],
        }

    def simulate(
        self, seed: int | np.random.Generator | np.random.SeedSequence | None = None
    ) -> Study:
        """Draw one study from the design (through :func:`pluralign.data.simulate_ratings`).

        Examples
        --------
        >>> d = StudyDesign({"gender": {"she/her": 10, "he/him": 10}}, n_prompts=4,
        ...                 responses_per_prompt=3, items_per_rater=3)
        >>> s = d.simulate(seed=1)
        >>> s.n_raters, s.n_ratings, sorted(s.ratings["rating"].unique().tolist())[:1]
        (20, 60, [1.0])
        """
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        # item covariates from a stream of their own: the other draws do not move with them
        cov = self.draw_item_covariates(rng.spawn(1)[0]) if self.has_item_covariates else None
        inputs = self.kernel_inputs(cov)
        group = inputs["groups"][self.term][0]
        draw = simulate_ratings(rng=rng, **inputs)
        log: tuple[LogEntry, ...] = ()
        if self.scale == "normal":
            log = (
                LogEntry(
                    "continuous",
                    "ratings",
                    0,
                    "continuous ratings: scale range and integer checks skipped",
                ),
            )
        raters = pd.DataFrame(
            {"rater": draw.rater_ids, self.term: np.array(self.levels, dtype=object)[group]}
        )
        prompt = np.arange(self.n_items) // self.responses_per_prompt
        items = pd.DataFrame(
            {
                "item": draw.item_ids,
                "prompt_id": draw.prompt_ids[prompt],
                "prompt": [f"prompt {p}" for p in prompt],
                "response": [f"response {i}" for i in range(self.n_items)],
            }
        )
        reference = {self.term: self.reference}
        if cov and "source" in cov:
            items["source_model"] = np.array(self.source_models, dtype=object)[cov["source"]]
            reference["source_model"] = self.source_models[0]
        if cov and "length" in cov:
            items["length"] = cov["length"]
        return Study(
            draw.ratings_frame([self.dimension]),
            raters,
            items,
            {self.dimension: self.rating_scale},
            log_entries=log,
            name="simulated design",
            metadata={
                "design": self.key(),
                "simulated": True,
                "family": "gaussian" if self.scale == "normal" else "ordinal",
            },
            reference=reference,
        )


def design_from_study(
    study: Study,
    fit: ModelResult | None = None,
    *,
    term: str | None = None,
    dimension: str | None = None,
    reference: str | None = None,
    **changes,
) -> StudyDesign:
    """A normal-scale design whose truth is a pilot study's fitted mixed model.

    The pilot's variance components (rater, item, residual), intercept and group
    coefficients become the design's SDs and latent effects (in rating points, so
    ``scale="normal"``: the Gaussian mixed model's own data-generating assumption); its
    rater counts per level, prompts, responses per prompt and median ratings per rater
    become the design's sizes. ``group_item_sd`` is 0 because the crossed model does not
    estimate it (pass ``group_item_sd=`` to assume some). Any field can be overridden through
    ``changes`` (e.g. ``n_raters=2000`` to plan a larger study with the pilot's truth).

    Parameters
    ----------
    study : Study
        The pilot.
    fit : MixedResult, optional
        ``fit_mixed(study, "rating ~ term", dimension)``; fitted here when omitted.
    term : str, optional
        The compared demographic (default: the first term of ``fit``'s formula, else the
        study's first demographic).
    dimension : str, optional
        Default: the fit's (or the study's) first dimension.
    reference : str, optional
        Reference level when the model is fitted here (default: fit_mixed's, the most
        frequent level).
    **changes
        Overrides of :class:`StudyDesign` fields, and ``n_raters``.

    Returns
    -------
    StudyDesign

    Examples
    --------
    >>> from pluralign.data import simulate_study
    >>> pilot = simulate_study(n_raters=200, seed=1, dimensions=["toxicity"], family="gaussian",
    ...                        missing_share=0.0).study
    >>> d = design_from_study(pilot, term="gender")
    >>> d.scale, d.term, d.n_raters == pilot.n_raters
    ('normal', 'gender', True)
    """
    from pluralign.models import fit_mixed

    if fit is not None and term is None:
        term = fit.formula.split("~", 1)[1].split("+")[0].strip() if "~" in fit.formula else None
    if term is None:
        term = study.demographics[0]
    if fit is None:
        dim = study.dimensions[0] if dimension is None else dimension
        fit = fit_mixed(
            study,
            f"rating ~ {term}",
            dimension=dim,
            progressbar=False,
            reference=None if reference is None else {term: reference},
        )
    dim = fit.dimensions[0] if dimension is None else dimension
    tab = fit.summary()
    tab = tab[tab["dimension"] == dim]
    var = dict(
        zip(
            tab.loc[tab["kind"] == "variance", "parameter"],
            tab.loc[tab["kind"] == "variance", "estimate"],
            strict=True,
        )
    )
    if "residual" not in var:
        raise ValueError(
            "design_from_study needs a Gaussian mixed-model fit (it has no residual variance)"
        )
    fixed = tab[tab["kind"] == "fixed"].set_index("parameter")["estimate"]
    prefix = f"{term}[T."
    effects = {p[len(prefix) : -1]: float(v) for p, v in fixed.items() if p.startswith(prefix)}
    if not effects:
        raise ValueError(
            f"the fit has no coefficients of {term!r} (formula {fit.formula!r}); fit "
            f"'rating ~ {term}' or name the term"
        )
    reference = fit.references.get(term, reference)
    raters = study.rater_table()
    ratings = study.ratings[study.ratings["dimension"] == dim]
    rated = raters[raters["rater"].isin(set(ratings["rater"]))]
    counts = rated[term].dropna().astype(str).value_counts()
    if reference is None:
        reference = next(lv for lv in counts.index if lv not in effects)
    order = [reference, *[lv for lv in counts.index if lv != reference]]
    n_prompts = int(
        study.items.loc[study.items["item"].isin(set(ratings["item"])), "prompt_id"].nunique()
    )
    n_items = int(ratings["item"].nunique())
    fields = {
        "groups": {term: {lv: int(counts[lv]) for lv in order}},
        "effects": {lv: effects.get(lv, 0.0) for lv in order[1:]},
        "effect_scale": "latent",
        "scale": "normal",
        "n_prompts": max(n_prompts, 1),
        "responses_per_prompt": max(1, round(n_items / max(n_prompts, 1))),
        "items_per_rater": int(ratings.groupby("rater").size().median()),
        "intercept": float(fixed.get("Intercept", np.nan)),
        "rater_sd": float(np.sqrt(var.get("rater", 0.0))),
        "item_sd": float(np.sqrt(var.get("item", 0.0))),
        "group_item_sd": 0.0,
        "residual_sd": float(np.sqrt(var["residual"])),
        "dimension": dim,
    }
    n_raters = changes.pop("n_raters", None)
    fields.update(changes)
    design = StudyDesign(**fields)
    return design.with_n_raters(n_raters) if n_raters is not None else design
