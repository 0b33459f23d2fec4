"""plots.power_curve

Simulated power to detect that men rate toxicity 18 % lower than women, as the number of raters
grows, with intervals from the finite number of simulated studies and the usual 80 % target.
"""

from pluralign import StudyDesign, plots, power_curve

design = StudyDesign(
    {"gender": {"she/her": 50, "he/him": 50}},
    effects={"he/him": -0.18},
    effect_scale="relative",
    n_prompts=20,
    responses_per_prompt=2,
    items_per_rater=5,
)
curve = power_curve(design, "n_raters", [40, 80, 160], n_sims=20, seed=6, progress=False)
plots.power_curve(curve, target=0.8)
