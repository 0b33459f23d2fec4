"""Palette, publication style and figure export shared by every pluralign figure."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
from matplotlib.figure import Figure

#: The Okabe–Ito palette (Okabe & Ito 2008), distinguishable under the common colour-vision deficiencies.
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}

#: Order in which categories take colours: strong, well separated hues first, yellow (weak on
#: white paper) and black (reserved for references and single series) last.
PALETTE: tuple[str, ...] = (
    OKABE_ITO["blue"],
    OKABE_ITO["vermillion"],
    OKABE_ITO["bluish_green"],
    OKABE_ITO["orange"],
    OKABE_ITO["reddish_purple"],
    OKABE_ITO["sky_blue"],
    OKABE_ITO["yellow"],
    OKABE_ITO["black"],
)

#: Markers paired with colours so that categories beyond the eight colours stay distinct.
MARKERS: tuple[str, ...] = ("o", "s", "D", "^", "v", "P", "X", "h")

#: Colour of single series, reference lines and annotations.
INK = OKABE_ITO["black"]
#: Colour of guides (reference lines, grids).
GUIDE = "#8C8C8C"
#: Sequential colour map for heat maps (perceptually uniform, colour-blind safe).
SEQUENTIAL_CMAP = "viridis"

#: Publication defaults applied by :func:`style` (sizes in points, for a ~17 cm wide page).
STYLE_RC: dict[str, Any] = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"],
    "font.size": 8.0,
    "axes.titlesize": 9.0,
    "axes.titleweight": "bold",
    "axes.labelsize": 8.0,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "legend.fontsize": 7.5,
    "legend.title_fontsize": 8.0,
    "legend.frameon": False,
    "figure.titlesize": 10.0,
    "figure.titleweight": "bold",
    "figure.labelsize": 8.0,
    "figure.labelweight": "normal",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.8,
    "axes.edgecolor": "#333333",
    "axes.labelcolor": "#222222",
    "axes.prop_cycle": mpl.cycler(color=list(PALETTE)),
    "axes.axisbelow": True,
    "axes.grid": False,
    "grid.color": "#E3E3E3",
    "grid.linewidth": 0.6,
    "xtick.color": "#333333",
    "ytick.color": "#333333",
    "xtick.major.width": 0.8,
    "ytick.major.width": 0.8,
    "xtick.major.size": 3.0,
    "ytick.major.size": 3.0,
    "lines.linewidth": 1.3,
    "lines.markersize": 5.0,
    "patch.linewidth": 0.6,
    "image.cmap": SEQUENTIAL_CMAP,
    "figure.dpi": 100,
    "savefig.dpi": 300,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.03,
    "pdf.fonttype": 42,  # embed TrueType so text stays editable and searchable
    "ps.fonttype": 42,
    "svg.fonttype": "none",  # text as text in SVG
}


@contextlib.contextmanager
def style(**overrides: Any) -> Iterator[None]:
    """Draw with pluralign's publication style inside a ``with`` block.

    Fonts and sizes for print, despined axes, the Okabe–Ito colour cycle, 300 dpi raster
    export and editable text in PDF/SVG. Matplotlib's settings are restored on exit
    (``matplotlib.rc_context``), so nothing changes outside the block. Figures that the
    plotting functions create themselves (``ax=None`` / ``fig=None``) are always drawn in this
    style; wrap your own figure creation in it to match.

    Parameters
    ----------
    **overrides
        rcParams to change on top of the style, e.g. ``{"font.size": 10}`` given as
        ``style(**{"font.size": 10})``.

    Yields
    ------
    None

    See Also
    --------
    savefig : Write a figure as PDF, PNG and SVG.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from pluralign import plots
    >>> with plots.style():
    ...     fig, ax = plt.subplots()
    ...     _ = ax.plot([0, 1], [0, 1])
    >>> ax.spines["top"].get_visible()
    False
    >>> plt.close(fig)
    """
    rc = {**STYLE_RC, **overrides}
    with mpl.rc_context(rc):
        yield


def colors(n: int) -> list[str]:
    """``n`` palette colours, cycling after eight (pair with :data:`MARKERS` to keep them distinct).

    Examples
    --------
    >>> colors(2)
    ['#0072B2', '#D55E00']
    """
    return [PALETTE[i % len(PALETTE)] for i in range(n)]


def color_map(
    levels: Sequence[object], given: Mapping[object, str] | None = None
) -> dict[object, str]:
    """Colour per level: from ``given`` where it names the level, else the palette in order.

    Examples
    --------
    >>> color_map(["a", "b"], {"b": "#000000"})
    {'a': '#0072B2', 'b': '#000000'}
    """
    given = dict(given or {})
    free = iter(c for c in PALETTE * (1 + len(levels) // len(PALETTE)) if c not in given.values())
    return {lev: given[lev] if lev in given else next(free) for lev in levels}


def marker_map(levels: Sequence[object]) -> dict[object, str]:
    """Marker per level; changes only once the eight colours repeat, so each pair is unique.

    Examples
    --------
    >>> marker_map(["a", "b"])
    {'a': 'o', 'b': 'o'}
    """
    return {lev: MARKERS[(i // len(PALETTE)) % len(MARKERS)] for i, lev in enumerate(levels)}


def savefig(
    fig: Figure,
    path: str | Path,
    formats: Sequence[str] = ("pdf", "png", "svg"),
    *,
    dpi: int = 300,
    **kwargs: Any,
) -> list[Path]:
    """Write ``fig`` in several formats: vector (PDF, SVG) and raster (PNG at ``dpi``).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure (for a function that returns an Axes, use ``ax.figure``).
    path : str or Path
        Output path; its suffix, if any, is replaced by each format's. Missing parent
        folders are created.
    formats : sequence of str, default ("pdf", "png", "svg")
        File formats understood by matplotlib.
    dpi : int, default 300
        Resolution of raster formats.
    **kwargs
        Passed to :meth:`matplotlib.figure.Figure.savefig`.

    Returns
    -------
    list of Path
        The files written, in the order of ``formats``.

    Notes
    -----
    Creation dates are left out of the PDF and SVG metadata so that the same figure gives
    the same file on every run. Text stays text (TrueType in PDF, ``<text>`` in SVG).

    Examples
    --------
    >>> import tempfile, matplotlib.pyplot as plt
    >>> from pluralign import plots
    >>> fig, ax = plt.subplots()
    >>> out = plots.savefig(fig, tempfile.mkdtemp() + "/figure", formats=("pdf", "png"))
    >>> [p.suffix for p in out]
    ['.pdf', '.png']
    >>> plt.close(fig)
    """
    if not formats:
        raise ValueError("formats is empty; give at least one, e.g. formats=('pdf', 'png')")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stem = path.with_suffix("") if path.suffix.lstrip(".").lower() in _known_formats(fig) else path
    written = []
    for fmt in formats:
        fmt = fmt.lower().lstrip(".")
        if fmt not in _known_formats(fig):
            raise ValueError(
                f"format {fmt!r} is not supported by matplotlib; use one of "
                f"{sorted(_known_formats(fig))}"
            )
        out = stem.with_name(f"{stem.name}.{fmt}")
        options: dict[str, Any] = {"dpi": dpi, "bbox_inches": "tight", **kwargs}
        if fmt == "pdf":
            options.setdefault("metadata", {"CreationDate": None})
        elif fmt == "svg":
            options.setdefault("metadata", {"Date": None})
        with mpl.rc_context(
            {"pdf.fonttype": 42, "svg.fonttype": "none", "svg.hashsalt": "pluralign"}
        ):
            fig.savefig(out, format=fmt, **options)
        written.append(out)
    return written


def _known_formats(fig: Figure) -> set[str]:
    return set(fig.canvas.get_supported_filetypes())
