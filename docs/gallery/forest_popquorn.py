"""plots.forest on POPQUORN

The same forest plot on real data: the effects of gender and race on how offensive 262 raters
found 1,500 Reddit comments (POPQUORN; Pei and Jurgens, 2023), as differences on the 1–5 scale.
The data set is not shipped with pluralign; the figure is drawn when it is found (see
[Bring your own data](../data.md)).
"""

from pluralign import fit_mixed, load_popquorn, plots

try:
    popquorn = load_popquorn()
except FileNotFoundError:
    SKIP = "POPQUORN was not found where this site was built."
else:
    fit = fit_mixed(popquorn, "rating ~ gender + race", dimension="offensiveness")
    plots.forest(fit.effects(), scale="difference")
