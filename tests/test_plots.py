"""Figures of pluralign.plots, drawn from small hand-made frames in the layouts of their inputs."""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.colors import to_hex
from matplotlib.patches import Polygon
from scipy import stats

from pluralign import plots
from pluralign.plots._style import GUIDE, OKABE_ITO, PALETTE, STYLE_RC

DIMS = ["toxicity", "helpfulness", "sensitivity"]
PALETTE_HEX = {c.lower() for c in PALETTE}


@pytest.fixture(autouse=True)
def _close_and_no_show(monkeypatch):
    def _show(*args, **kwargs):
        raise AssertionError("plotting functions must not call plt.show()")

    monkeypatch.setattr(plt, "show", _show)
    yield
    plt.close("all")


def points(ax) -> list[PathCollection]:
    return [c for c in ax.collections if isinstance(c, PathCollection)]


def edge_hex(coll) -> str:
    return to_hex(coll.get_edgecolor()[0])


def tick_texts(ax, axis="y") -> list[str]:
    ticks = ax.get_yticklabels() if axis == "y" else ax.get_xticklabels()
    return [t.get_text() for t in ticks]


# ------------------------------------------------------------------ style, palette, export
def test_palette_is_okabe_ito_and_distinct():
    assert len(PALETTE) == 8 == len(set(PALETTE))
    assert set(PALETTE) == set(OKABE_ITO.values())
    assert plots.colors(10)[8] == PALETTE[0]  # cycles
    assert plots.PALETTE[0] == "#0072B2"


def test_style_is_scoped_to_the_block():
    before = dict(mpl.rcParams)
    with plots.style():
        assert mpl.rcParams["axes.spines.top"] is False
        assert mpl.rcParams["savefig.dpi"] == 300
        assert [to_hex(c["color"]) for c in mpl.rcParams["axes.prop_cycle"]] == [
            to_hex(c) for c in PALETTE
        ]
    with plots.style(**{"font.size": 12.0}):
        assert mpl.rcParams["font.size"] == 12.0
    after = dict(mpl.rcParams)
    assert {k: v for k, v in after.items() if k in STYLE_RC} == {
        k: v for k, v in before.items() if k in STYLE_RC
    }


def test_savefig_writes_vector_and_raster(tmp_path):
    from PIL import Image

    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [0, 1], label="line")
    ax.set_title("résumé α")
    out = plots.savefig(fig, tmp_path / "sub" / "figure.png")
    assert [p.name for p in out] == ["figure.pdf", "figure.png", "figure.svg"]
    assert out[0].read_bytes()[:5] == b"%PDF-"
    svg = out[2].read_text()
    assert "<svg" in svg and "résumé" in svg  # text kept as text
    with Image.open(out[1]) as im:
        assert round(im.info["dpi"][0]) == 300
        assert im.size[0] > 2 * 250  # 2 inches at 300 dpi, cropped tight
    again = plots.savefig(fig, tmp_path / "again", formats=("pdf", "svg"))
    assert again[0].read_bytes() == out[0].read_bytes()  # no creation date: reproducible
    assert again[1].read_text() == svg
    with pytest.raises(ValueError, match="not supported"):
        plots.savefig(fig, tmp_path / "x", formats=("docx",))


# ------------------------------------------------------------------ group means
def _group_frame(groups=("she/her", "he/him", "they/them"), by="gender") -> pd.DataFrame:
    rows = []
    for i, dim in enumerate(DIMS):
        for j, g in enumerate(groups):
            m = 2.0 + 0.3 * i + 0.2 * j
            rows.append(
                {
                    "dimension": dim,
                    by: g,
                    "n_raters": 40 + j,
                    "n_ratings": 200,
                    "mean": m,
                    "ci_low": m - 0.2,
                    "ci_high": m + 0.2,
                }
            )
    return pd.DataFrame(rows)


def test_group_means_panels_labels_and_colours():
    df = _group_frame()
    fig = plots.group_means(df, title="Ratings by gender")
    axes = fig.axes
    assert [a.get_title() for a in axes] == ["Toxicity", "Helpfulness", "Sensitivity"]
    assert fig.get_suptitle() == "Ratings by gender"
    assert tick_texts(axes[0]) == ["she/her (n=40)", "he/him (n=41)", "they/them (n=42)"]
    assert axes[0].get_ylabel() == "Gender"
    assert fig.get_supxlabel() == "Mean rating (95% CI)"
    for ax, dim in zip(axes, DIMS, strict=True):
        pts = points(ax)
        assert len(pts) == 3  # one mark per group
        assert [edge_hex(p) for p in pts] == [c.lower() for c in PALETTE[:3]]
        # the estimate of "he/him" sits on its row at its mean
        row = df[(df["dimension"] == dim) & (df["gender"] == "he/him")].iloc[0]
        x, y = pts[1].get_offsets()[0]
        assert x == pytest.approx(row["mean"]) and y == pytest.approx(1.0)
        lines = [c for c in ax.collections if isinstance(c, LineCollection)]
        seg = lines[1].get_segments()[0]
        assert seg[0][0] == pytest.approx(row["ci_low"]) and seg[1][0] == pytest.approx(
            row["ci_high"]
        )


def test_group_means_hue_order_and_relative_value():
    df = _group_frame()
    df["ideology"] = np.where(df.index % 2 == 0, "liberal", "conservative")
    fig = plots.group_means(df, by="gender", hue="ideology", order=["they/them", "she/her"])
    ax = fig.axes[0]
    assert tick_texts(ax) == ["they/them", "she/her"]
    legend = fig.legends[0]
    assert legend.get_title().get_text() == "Ideology"
    assert [t.get_text() for t in legend.get_texts()] == ["liberal", "conservative"]

    rel = _group_frame()
    rel["relative_pct"] = rel["mean"] * 10 - 25
    rel["relative_ci_low"] = rel["relative_pct"] - 3
    rel["relative_ci_high"] = rel["relative_pct"] + 3
    rel["is_reference"] = rel["gender"] == "she/her"
    fig = plots.group_means(rel, value="relative_pct", show_n=False)
    ax = fig.axes[0]
    assert tick_texts(ax)[0] == "she/her (ref.)"
    assert "% of reference" in fig.get_supxlabel()
    assert any(line.get_xdata()[0] == 0 and line.get_linestyle() == "--" for line in ax.get_lines())


def test_group_means_stacked_demographics_get_headers():
    a = _group_frame(("she/her", "he/him"), by="group").assign(by="gender")
    b = _group_frame(("liberal", "conservative"), by="group").assign(by="ideology")
    fig = plots.group_means(pd.concat([a, b], ignore_index=True), show_n=False)
    ax = fig.axes[0]
    assert tick_texts(ax) == ["Gender", "she/her", "he/him", "Ideology", "liberal", "conservative"]
    assert ax.get_yticklabels()[0].get_fontweight() == "bold"
    # coloured by demographic: two colours, four marks
    assert sorted({edge_hex(p) for p in points(ax)}) == sorted(c.lower() for c in PALETTE[:2])
    assert sum(len(p.get_offsets()) for p in points(ax)) == 4


def test_group_means_draws_on_given_figure_and_checks_columns():
    fig = plt.figure()
    out = plots.group_means(_group_frame(), fig=fig)
    assert out is fig and len(fig.axes) == 3
    with pytest.raises(ValueError, match="lacks column"):
        plots.group_means(_group_frame().drop(columns="mean"))
    with pytest.raises(ValueError, match="not in the data"):
        plots.group_means(_group_frame(), order=["nobody"])


# ------------------------------------------------------------------ forest and adjusted intervals
def _effects(n_levels=4, dims=("toxicity", "helpfulness"), seed=0) -> pd.DataFrame:
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(seed)
    rows = []
    for dim in dims:
        for term, ref, levels in [
            ("gender", "she/her", ["he/him", "they/them"]),
            ("age", "18-30", [f"band{i}" for i in range(n_levels)]),
        ]:
            for lv in levels:
                est, se = rng.normal(0, 0.25), 0.1
                lo, hi = est - 1.959964 * se, est + 1.959964 * se
                rows.append(
                    dict(
                        dimension=dim, term=term, level=lv, reference=ref, estimate=est,
                        ci_low=lo, ci_high=hi, p_value=2 * stats.norm.sf(abs(est / se)),
                        p_direction=np.nan, mean_level=3 + est, mean_reference=3.0,
                        difference=est, difference_ci_low=lo, difference_ci_high=hi,
                        relative_pct=100 * est / 3, relative_ci_low=100 * lo / 3,
                        relative_ci_high=100 * hi / 3, cohens_d=est / 0.8,
                        odds_ratio=np.exp(est), odds_ratio_ci_low=np.exp(lo),
                        odds_ratio_ci_high=np.exp(hi),
                    )
                )  # fmt: skip
    eff = pd.DataFrame(rows)
    eff["p_adjusted"] = multipletests(eff["p_value"], method="holm")[1]
    eff.attrs["correction"] = "holm"
    return eff


def test_adjusted_intervals_bonferroni_by_hand():
    eff = pd.DataFrame(
        {
            "dimension": ["t"], "term": ["g"], "level": ["b"], "reference": ["a"],
            "estimate": [1.0], "ci_low": [1 - 1.959964 * 0.5], "ci_high": [1 + 1.959964 * 0.5],
            "p_value": [0.01], "p_adjusted": [0.05],
        }
    )  # fmt: skip
    out = plots.adjusted_intervals(eff, scale="link")
    half = stats.norm.isf(0.05 / (2 * 5)) * 0.5  # Bonferroni with k = 5 comparisons
    assert out["k"].iloc[0] == pytest.approx(5.0)
    assert out["adj_low"].iloc[0] == pytest.approx(1 - half, rel=1e-6)
    assert out["adj_high"].iloc[0] == pytest.approx(1 + half, rel=1e-6)
    assert not bool(out["significant_adjusted"].iloc[0])  # p_adjusted = 0.05 is not < 0.05


@pytest.mark.parametrize("scale", ["link", "relative", "difference", "odds_ratio", "d"])
def test_adjusted_intervals_agree_with_p_adjusted(scale):
    eff = _effects(n_levels=8, seed=3)
    out = plots.adjusted_intervals(eff, scale=scale)
    null = 1.0 if scale == "odds_ratio" else 0.0
    excludes = (out["adj_low"] > null) | (out["adj_high"] < null)
    assert (excludes == (eff["p_adjusted"] < 0.05)).all()
    assert ((out["adj_high"] - out["adj_low"]) >= (out["ci_high"] - out["ci_low"]) - 1e-12).all()
    assert out["significant_adjusted"].sum() >= 1 and (~out["significant_adjusted"]).sum() >= 1
    if scale == "d":  # d interval = difference interval / standardiser 0.8
        assert out["ci_low"].to_numpy() == pytest.approx(eff["difference_ci_low"] / 0.8)


def test_forest_rows_marks_and_legend():
    eff = _effects()
    ax = plots.forest(eff, title="Effects")
    labels = tick_texts(ax)
    assert labels[:3] == ["gender (vs she/her)", "he/him", "they/them"]
    assert labels[3] == "age (vs 18-30)" and len(labels) == 2 + 1 + 4 + 1
    assert ax.get_yticklabels()[0].get_fontweight() == "bold"
    assert ax.get_xlabel() == "Difference from reference (% of reference mean)"
    pts = points(ax)
    assert len(pts) == 2  # one per dimension
    assert [edge_hex(p) for p in pts] == [c.lower() for c in PALETTE[:2]]
    # filled marks exactly where p_adjusted < .05
    for p, dim in zip(pts, ["toxicity", "helpfulness"], strict=True):
        filled = [to_hex(fc) != "#ffffff" for fc in p.get_facecolors()]
        sub = eff[eff["dimension"] == dim]
        assert filled == (sub["p_adjusted"] < 0.05).tolist()
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[:2] == ["Toxicity", "Helpfulness"]
    assert "95% CI, Holm-adjusted" in texts and "p_adjusted < 0.05" in texts
    null = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert null and null[0].get_xdata()[0] == 0


def test_forest_unadjusted_odds_ratio_and_single_dimension():
    eff = _effects(dims=("toxicity",))
    ax = plots.forest(eff, scale="odds_ratio", adjusted=False)
    assert ax.get_xscale() == "log"
    assert next(ln for ln in ax.get_lines() if ln.get_linestyle() == "--").get_xdata()[0] == 1.0
    assert edge_hex(points(ax)[0]) == "#000000"  # one dimension: black marks
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "p < 0.05" in texts and not any("adjusted" in t for t in texts)
    assert all(t.get_text() for t in ax.get_xticklabels())  # plain numbers on the log axis
    _fig, given = plt.subplots()
    assert plots.forest(eff, scale="d", ax=given) is given
    with pytest.raises(ValueError, match="scale must be one of"):
        plots.forest(eff, scale="percent")


def test_forest_of_bayesian_effects_draws_hdis_and_fills_by_the_null():
    # BayesResult.effects(): HDIs, p_direction; p_value / p_adjusted are NaN
    eff = pd.DataFrame({"dimension": ["toxicity"] * 3, "term": ["gender"] * 3,
        "level": ["he/him", "they/them", "other"], "reference": ["she/her"] * 3,
        "estimate": [0.5, -0.1, -0.6], "ci_low": [0.1, -0.4, -1.0], "ci_high": [0.9, 0.2, -0.2],
        "p_direction": [0.99, 0.7, 0.995], "p_value": np.nan, "p_adjusted": np.nan,
        "odds_ratio": np.exp([0.5, -0.1, -0.6]), "odds_ratio_ci_low": np.exp([0.1, -0.4, -1.0]),
        "odds_ratio_ci_high": np.exp([0.9, 0.2, -0.2])})  # fmt: skip
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "lack p_value/p_adjusted" warning
        ax = plots.forest(eff, scale="odds_ratio")
    filled = [to_hex(fc) != "#ffffff" for fc in points(ax)[0].get_facecolors()]
    assert filled == [True, False, True]  # the HDI excludes an odds ratio of 1
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "95% HDI" in texts and "HDI excludes 1" in texts
    assert not any("adjusted" in t or "p_" in t for t in texts)
    assert len([c for c in ax.collections if isinstance(c, LineCollection)]) == 1  # no widening


# ------------------------------------------------------------------ posterior contrasts
def test_posterior_contrasts_from_inference_data():
    az = pytest.importorskip("arviz")
    rng = np.random.default_rng(1)
    beta = rng.normal([0.4, -0.1], 0.1, size=(2, 500, 2))
    idata = az.from_dict(
        posterior={"beta": beta, "z_rater": rng.normal(size=(2, 500, 40))},
        coords={"level": ["he/him", "they/them"]},
        dims={"beta": ["level"], "z_rater": ["rater"]},
    )
    ax = plots.posterior_contrasts(idata, title="Gender")  # default: the "beta" contrasts
    assert tick_texts(ax) == ["beta[he/him]", "beta[they/them]"]
    texts = [t.get_text() for t in ax.texts]
    p_pos = np.mean(beta[..., 1] > 0)
    assert f"P(>0) = {p_pos:.2f}" in texts and "P(>0) = 1.00" in texts
    hdi = az.hdi(beta[..., 0].ravel(), hdi_prob=0.95)
    bars = [c for c in ax.collections if isinstance(c, LineCollection)]
    seg = bars[0].get_segments()[0]
    assert seg[0][0] == pytest.approx(hdi[0]) and seg[1][0] == pytest.approx(hdi[1])
    assert len([c for c in ax.collections if not isinstance(c, LineCollection)]) == 2  # densities
    assert "95% HDI" in ax.get_xlabel()


def test_posterior_contrasts_from_fit_object_and_limits():
    pytest.importorskip("arviz")
    rng = np.random.default_rng(2)
    draws = pd.DataFrame({"a vs b": rng.normal(0, 1, 400), "c vs b": rng.normal(1, 1, 400)})

    class Fit:
        idata = None

    with pytest.raises(TypeError, match="InferenceData"):
        plots.posterior_contrasts(Fit())
    ax = plots.posterior_contrasts(draws, ref_val=0.5)
    assert tick_texts(ax) == ["a vs b", "c vs b"]
    assert next(ln for ln in ax.get_lines() if ln.get_linestyle() == "--").get_xdata()[0] == 0.5
    with pytest.raises(ValueError, match="max_contrasts"):
        plots.posterior_contrasts({f"c{i}": rng.normal(size=50) for i in range(5)}, max_contrasts=4)


# ------------------------------------------------------------------ disagreement
def _divergence() -> pd.DataFrame:
    pairs = [("she/her", "he/him"), ("she/her", "they/them"), ("he/him", "they/them")]
    rows = [
        {"dimension": "toxicity", "item": f"i{k}", "group_a": a, "group_b": b,
         "jsd": 0.01 * k + 0.1 * p, "ci_low": 0.0, "ci_high": 0.5}
        for k in range(6) for p, (a, b) in enumerate(pairs)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_divergence_heatmap_matrix_sorting_and_limit():
    df = _divergence()
    ax = plots.divergence_heatmap(df, max_items=4)
    image = ax.images[0]
    grid = np.asarray(image.get_array())
    assert grid.shape == (3, 4)
    assert tick_texts(ax, "x") == ["i5", "i4", "i3", "i2"]  # most divisive first
    assert tick_texts(ax) == ["she/her vs he/him", "she/her vs they/them", "he/him vs they/them"]
    assert grid[2, 0] == pytest.approx(0.05 + 0.2)
    assert "4 most divisive of 6" in ax.get_xlabel()
    cbar = ax.figure.axes[-1]
    assert cbar.get_ylabel() == "Jensen–Shannon divergence"
    assert image.norm.vmin == 0.0
    assert len(ax.texts) == 12  # values printed in small grids


def test_divergence_heatmap_clips_negative_corrected_jsd_and_says_so():
    df = _divergence()
    df.loc[df["item"] == "i0", "jsd"] -= 0.15  # bias-corrected JSD below 0
    ax = plots.divergence_heatmap(df)
    image = ax.images[0]
    assert image.norm.vmin == 0.0 and np.nanmin(image.get_array()) < 0
    low = image.cmap(image.norm(-0.05))
    assert to_hex(low) == to_hex(image.cmap(0.0))  # drawn in the colour of 0
    cbar = ax.figure.axes[-1]
    assert "values < 0 drawn as 0" in cbar.get_ylabel()
    assert "-0.15" in [t.get_text() for t in ax.texts]  # annotations keep the sign


def test_divergence_heatmap_missing_cells_and_duplicates():
    df = _divergence().iloc[1:]  # (i0, she/her vs he/him) missing
    ax = plots.divergence_heatmap(df, annotate=False)
    grid = ax.images[0].get_array()
    assert np.ma.is_masked(grid) and grid.mask.sum() == 1
    assert "grey: not estimable" in ax.get_xlabel() and not ax.texts
    with pytest.raises(ValueError, match="duplicated"):
        plots.divergence_heatmap(pd.concat([df, df]))


def test_agreement_blocks_and_guides():
    rows = [("overall", "all", 0.3)] + [
        ("within", g, a) for g, a in [("she/her", 0.6), ("he/him", np.nan)]
    ]
    rows += [("between", "she/her | he/him", 0.55)]
    df = pd.concat(
        [
            pd.DataFrame(rows, columns=["kind", "group", "krippendorff_alpha"]).assign(dimension=d)
            for d in DIMS[:2]
        ],
        ignore_index=True,
    )
    df["ci_low"], df["ci_high"] = df["krippendorff_alpha"] - 0.05, df["krippendorff_alpha"] + 0.05
    ax = plots.agreement(df)
    assert tick_texts(ax) == [
        "Overall", "all", "Within group", "she/her", "he/him (n/a)", "Between groups",
        "she/her | he/him",
    ]  # fmt: skip
    pts = points(ax)
    assert len(pts) == 2 and all(len(p.get_offsets()) == 3 for p in pts)  # NaN alpha not drawn
    assert ax.get_xlabel() == "Krippendorff's α (95% CI)"
    guides = sorted(ln.get_xdata()[0] for ln in ax.get_lines() if ln.get_linestyle() == ":")
    assert guides == [0.667, 0.8]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Toxicity", "Helpfulness"]


def test_agreement_single_dimension_without_guides():
    df = pd.DataFrame(
        {"dimension": "toxicity", "group": [None, "a", "b"], "krippendorff_alpha": [0.2, 0.25, 0.1],
         "ci_low": [0.1, 0.15, 0.0], "ci_high": [0.3, 0.35, 0.2]}
    )  # fmt: skip
    ax = plots.agreement(df)
    assert tick_texts(ax) == ["everyone", "a", "b"]
    assert not [ln for ln in ax.get_lines() if ln.get_linestyle() == ":"]
    assert ax.get_legend() is None


# ------------------------------------------------------------------ soft labels
def _labels_table(seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for method in ["posterior", "majority", "distribution"]:
        for g in ["all", "she/her"]:
            p = {"majority": np.ones(30), "distribution": rng.choice([0.5, 0.75, 1.0], 30)}.get(
                method, 0.5 + 0.5 * rng.beta(4, 2, 30)
            )
            rows.append(pd.DataFrame({"method": method, "group": g, "p_chosen": p, "p_a": 1 - p}))
    return pd.concat(rows, ignore_index=True)


def test_soft_labels_histograms():
    table = _labels_table()

    class Labels:  # what preference_labels returns, reduced to the attribute used
        def __init__(self, t):
            self.table = t

    parts = [Labels(t) for _, t in table.groupby("method", sort=False)]
    fig = plots.soft_labels(parts)
    titles = [a.get_title() for a in fig.axes]
    assert titles == ["Majority (n = 60)", "Distribution (n = 60)", "Posterior (n = 60)"]
    ax = fig.axes[0]
    steps = [p for p in ax.patches if isinstance(p, Polygon)]
    assert len(steps) == 2 and {to_hex(p.get_edgecolor()) for p in steps} == {
        c.lower() for c in PALETTE[:2]
    }
    assert ax.get_xlim() == (0.5, 1.0)  # p_chosen lives in [0.5, 1]
    assert ax.get_xlabel() == "P(chosen response preferred)"
    # all majority labels are 1: the last bin holds every pair of the group
    heights = steps[0].get_xy()[:, 1]
    assert heights.max() == pytest.approx(1.0)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["all", "she/her"]


def test_soft_labels_violins_and_p_a():
    table = _labels_table()
    fig = plots.soft_labels(table, kind="violin", methods=["distribution", "majority"])
    assert [a.get_title().split(" ")[0] for a in fig.axes] == ["Distribution", "Majority"]
    assert tick_texts(fig.axes[0], "x") == ["all", "she/her"]
    majority = fig.axes[1]
    flat = [c for c in majority.collections if isinstance(c, LineCollection)]
    assert len(flat) == 2  # degenerate groups drawn as ticks, not violins
    fig = plots.soft_labels(table, value="p_a")
    assert fig.axes[0].get_xlim() == (0.0, 1.0)
    with pytest.raises(ValueError, match="kind"):
        plots.soft_labels(table, kind="box")


# ------------------------------------------------------------------ training results
def test_training_results_conditions_groups_and_intervals():
    rows = []
    for agg in ["majority", "distribution"]:
        for opt in ["dpo", "grpo"]:
            for dim in DIMS[:2]:
                for g in ["everyone", "gender=she/her"]:
                    c = -0.1 if agg == "majority" else -0.3
                    rows.append(dict(train_group="everyone", scale="5-point", aggregation=agg,
                                     optimizer=opt, dimension=dim, group=g, baseline=3.0,
                                     trained=3 + c, change=c, change_ci_low=c - 0.05,
                                     change_ci_high=c + 0.05, reduction_pct=10.0, n_seeds=2,
                                     n_generations=16, ci_prob=0.9))  # fmt: skip
    df = pd.DataFrame(rows)
    fig = plots.training_results(df, title="Training")
    ax = fig.axes[0]
    assert tick_texts(ax) == [
        "majority · dpo",
        "majority · grpo",
        "distribution · dpo",
        "distribution · grpo",
    ]
    assert ax.get_ylabel() == "Aggregation · Optimizer"
    assert fig.get_supxlabel() == "Change in rating (90% CI)"
    pts = points(ax)
    assert len(pts) == 2 and [edge_hex(p) for p in pts] == [c.lower() for c in PALETTE[:2]]
    segs = next(c for c in ax.collections if isinstance(c, LineCollection)).get_segments()
    assert segs[0][0][0] == pytest.approx(-0.15) and segs[0][1][0] == pytest.approx(-0.05)
    assert fig.legends[0].get_title().get_text() == "Evaluated by"
    with pytest.raises(ValueError, match="repeat"):
        plots.training_results(df, condition="aggregation")


# ------------------------------------------------------------------ power
def test_power_curve_single_and_long_form():
    df = pd.DataFrame(
        {"n_raters": [50, 100, 200, 400, 1600], "power": [0.2, 0.4, 0.7, 0.85, 0.99],
         "power_ci_low": [0.15, 0.33, 0.63, 0.8, 0.97],
         "power_ci_high": [0.25, 0.47, 0.77, 0.9, 1.0]}
    )  # fmt: skip
    ax = plots.power_curve(df)
    band = ax.collections[0].get_paths()[0].vertices[:, 1]  # the Monte-Carlo band of power
    assert band.min() == pytest.approx(0.15) and band.max() == pytest.approx(1.0)
    assert ax.get_xlabel() == "Number of raters" and ax.get_ylabel() == "Power"
    assert ax.get_xscale() == "log" and ax.get_ylim() == (0, 1.02)
    assert "400" in [t.get_text() for t in ax.texts]  # first design reaching 0.8
    assert any(ln.get_linestyle() == "--" and ln.get_ydata()[0] == 0.8 for ln in ax.get_lines())
    assert to_hex(ax.get_lines()[0].get_color()) == PALETTE[0].lower()

    long = pd.concat(
        [
            df.assign(vary="n_raters", level=lv, power=df["power"] * f)
            for lv, f in [("b", 1), ("c", 0.8)]
        ]
    ).rename(columns={"n_raters": "value"})
    _fig, given = plt.subplots()
    ax = plots.power_curve(long, hue="level", ax=given, target=None)
    assert ax is given and ax.get_xlabel() == "Number of raters"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["b", "c", "95% CI"]
    ax = plots.power_curve(long.assign(term="gender"))  # curves found from the table itself
    assert ax.get_legend().get_title().get_text() == "Level"
    assert len(ax.get_lines()) == 2 + 1  # two curves and the target line
    with pytest.raises(ValueError, match="tells the curves"):
        plots.power_curve(pd.concat([df, df]))
    assert len([c for c in ax.collections if c.get_alpha() == 0.2]) == 2  # two CI bands


def test_every_figure_uses_the_style_only_inside(tmp_path):
    spines = mpl.rcParams["axes.spines.top"]
    ax = plots.agreement(
        pd.DataFrame({"dimension": "t", "group": ["a"], "krippendorff_alpha": [0.3]})
    )
    assert not ax.spines["top"].get_visible()
    assert mpl.rcParams["axes.spines.top"] == spines
    _fig, given = plt.subplots()
    plots.agreement(
        pd.DataFrame({"dimension": "t", "group": ["a"], "krippendorff_alpha": [0.3]}), ax=given
    )
    assert given.spines["top"].get_visible() == spines  # a user's axes keep the user's style
    assert plots.savefig(ax.figure, tmp_path / "a", formats=("png",))[0].stat().st_size > 0


def test_palette_colours_only():
    fig = plots.group_means(_group_frame(tuple(f"g{i}" for i in range(10))))
    used = {edge_hex(p) for p in points(fig.axes[0])}
    assert used <= PALETTE_HEX and GUIDE not in used


@pytest.mark.parametrize(
    "module",
    ["_style", "_means", "_effects", "_disagreement", "_labels", "_train", "_power"],
)
def test_docstring_examples_run(module):
    import doctest
    import importlib

    mod = importlib.import_module(f"pluralign.plots.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
