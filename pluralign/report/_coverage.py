"""What each interval in the report covers, how its tests are adjusted, and how it did in simulation.

The observed coverages are copied from the calibration runs (``benchmarks/calibration.py``,
tabled in ``docs/validity.md``); the package never reads repository files at run time, and a
test compares this table with ``benchmarks/results/calibration_*.csv`` so that the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pluralign._settings import options


@dataclass(frozen=True)
class Calibration:
    """One row of a calibration run: how often an interval covered the truth in simulation.

    ``source`` is the stem of the results file (``benchmarks/results/<source>.csv``);
    ``quantity``, ``kind``, ``nominal`` and ``setting`` identify its row (``setting`` only where
    ``quantity`` repeats); ``observed`` is the share of simulations covering the truth (or
    rejecting a true null, for ``kind="null rejection"``) among ``n_sims``.
    """

    source: str
    quantity: str
    nominal: float
    observed: float
    n_sims: int
    kind: str = "coverage"
    setting: str | None = None

    def sentence(self) -> str:
        """E.g. "in simulation 95% intervals covered the truth in 94.4% of 500 studies"."""
        if self.kind == "coverage":
            where = f"with {self.setting}" if self.setting else "of this kind"
            return (
                f"in simulation, nominal {self.nominal:.0%} intervals {where} covered the truth "
                f"in {self.observed:.1%} of {self.n_sims} studies"
            )
        return (
            f"in simulation without an effect, {self.quantity} at level {self.nominal:g}: "
            f"{self.observed:.1%} of {self.n_sims} studies"
        )


#: Observed behaviour in simulation of the intervals and tests the report shows (docs/validity.md).
CALIBRATION: dict[str, Calibration] = {
    "describe_two_way": Calibration(
        "calibration_describe",
        "relative difference % (origin 0) (b − a), two-way",
        0.95,
        0.944,
        500,
    ),
    "mixed_difference": Calibration(
        "calibration_models",
        "LMM marginal contrast over race (observed weights), Wald",
        0.95,
        0.954,
        500,
    ),
    "mixed_relative": Calibration(
        "calibration_models",
        "LMM relative difference % (marginal, simulated from N(β̂, V̂))",
        0.95,
        0.954,
        500,
    ),
    "mixed_null": Calibration(
        "calibration_models",
        "LMM Wald z test of a demographic without effect",
        0.05,
        0.058,
        500,
        kind="null rejection",
    ),
    "bayes_hdi": Calibration(
        "calibration_bayes",
        "Bayesian ordinal log-odds ratio, HDI",
        0.95,
        0.967,
        30,
    ),
    "jsd_interval": Calibration(
        "calibration_labels",
        "corrected-JSD interval",
        0.95,
        0.975,
        10000,
        setting="identical groups (true JSD 0)",
    ),
    "jsd_interval_shifted": Calibration(
        "calibration_labels",
        "corrected-JSD interval",
        0.95,
        0.923,
        10000,
        setting="group B shifted +2 logits",
    ),
    "jsd_bh": Calibration(
        "calibration_labels",
        "any item flagged (Benjamini–Hochberg over 20 items)",
        0.05,
        0.04,
        500,
        kind="null rejection",
    ),
    "agreement_alpha": Calibration(
        "calibration_agreement",
        "Krippendorff's alpha (ordinal), bootstrap percentile, raters and items resampled",
        0.95,
        0.952,
        500,
    ),
    "power_wilson": Calibration(
        "calibration_power",
        "power, Monte-Carlo interval (Wilson, 100 simulations a run)",
        0.95,
        0.97,
        500,
    ),
}


def interval_note(
    interval: str,
    adjustment: str,
    calibration: str | Sequence[str] | None = None,
    *,
    ci_prob: float | None = None,
) -> str:
    """The one-line note under a table or figure: interval, multiplicity, simulated coverage.

    Parameters
    ----------
    interval : str
        What the intervals are, without their level, e.g. "two-way cluster-robust t
        intervals (rater × item)"; the level (``options.ci_prob``) is prefixed.
    adjustment : str
        How tests or flags are adjusted for multiplicity, e.g. "p-values Holm-adjusted
        within each model", or "no tests".
    calibration : str or sequence of str, optional
        Keys of :data:`CALIBRATION`: their observed behaviour in simulation is appended.
    ci_prob : float, optional
        Level of the intervals (default ``options.ci_prob``).

    Returns
    -------
    str

    Examples
    --------
    >>> interval_note("HDIs", "no p-values", "bayes_hdi")[:24]
    'Intervals: 95% HDIs; no '
    """
    level = options.ci_prob if ci_prob is None else ci_prob
    text = f"Intervals: {level:.0%} {interval}; {adjustment}"
    if calibration is not None:
        keys = [calibration] if isinstance(calibration, str) else list(calibration)
        sentences = "; ".join(CALIBRATION[k].sentence() for k in keys)
        text += f"; {sentences} (docs/validity.md)"
    return text + "."
