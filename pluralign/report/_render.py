"""A small document model rendered twice: self-contained HTML and a markdown twin.

Hand-written rather than a template engine so that reports need only the core dependencies
(jinja2 arrives with the docs tools, not with ``pluralign``).
"""

from __future__ import annotations

import base64
import html
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

_INLINE_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def _inline_html(text: str) -> str:
    out = html.escape(text)
    out = _INLINE_CODE.sub(r"<code>\1</code>", out)
    return _BOLD.sub(r"<strong>\1</strong>", out)


@dataclass(frozen=True)
class Text:
    """A paragraph; ``**bold**`` and ``code`` in backticks are rendered in HTML too."""

    text: str


@dataclass(frozen=True)
class Note:
    """A highlighted remark: ``kind`` is "info", "warning" or "skipped"."""

    text: str
    kind: str = "info"


@dataclass(frozen=True)
class Table:
    """A table with a caption; floats are shown with ``digits`` decimals; ``name`` names its file.

    ``note`` is the line shown under it: what its intervals cover and how its tests are
    adjusted for multiplicity.
    """

    frame: pd.DataFrame
    caption: str = ""
    digits: int = 3
    max_rows: int = 40
    name: str = ""
    note: str = ""


@dataclass(frozen=True)
class Figure:
    """A rendered figure: PNG bytes, a caption and a note on its intervals (as for Table)."""

    png: bytes
    caption: str
    name: str
    note: str = ""


@dataclass
class Section:
    """A titled part of the report holding blocks in order."""

    title: str
    anchor: str
    blocks: list = field(default_factory=list)

    def add(self, block) -> Section:
        self.blocks.append(block)
        return self


def figure_from_matplotlib(fig, caption: str, name: str, dpi: int = 110, note: str = "") -> Figure:
    """Render a matplotlib figure to PNG bytes and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return Figure(buf.getvalue(), caption, name, note)


def _format_frame(table: Table) -> pd.DataFrame:
    df = table.frame.head(table.max_rows).copy()
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_float_dtype(s):
            df[col] = s.map(lambda v, d=table.digits: "" if pd.isna(v) else _fmt_float(v, d))
        elif pd.api.types.is_bool_dtype(s):
            df[col] = s.map(lambda v: "yes" if v else "no")
        else:
            df[col] = s.map(lambda v: "" if _is_missing(v) else _fmt_obj(v))
    return df


def _is_missing(v) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _fmt_obj(v) -> str:
    if isinstance(v, tuple | list):
        return "; ".join(map(str, v))
    if isinstance(v, float):
        return _fmt_float(v, 3)
    return str(v)


def _fmt_float(v: float, digits: int) -> str:
    if v != 0 and (abs(v) < 10 ** (-digits) or abs(v) >= 1e6):
        return f"{v:.{digits}g}" if abs(v) >= 1e6 else f"{v:.2e}"
    return f"{v:.{digits}f}"


def _truncation_note(table: Table) -> str:
    n = len(table.frame)
    return f" (first {table.max_rows} of {n} rows)" if n > table.max_rows else ""


# ---------------------------------------------------------------- HTML
_CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1d2330;
background:#f6f7f9;line-height:1.5}
header{background:#23395d;color:#fff;padding:1.6em 2.4em}
header h1{margin:0 0 .2em 0;font-size:1.7em}
header p{margin:0;opacity:.85}
nav{background:#fff;border-bottom:1px solid #dde1e7;padding:.6em 2.4em;position:sticky;top:0}
nav a{margin-right:1.2em;color:#23395d;text-decoration:none;font-size:.92em}
main{max-width:1280px;margin:0 auto;padding:1em 2.4em 3em}
section{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:.4em 1.6em 1.2em;margin:1.4em 0}
h2{color:#23395d;border-bottom:2px solid #e6eaf0;padding-bottom:.2em}
table{border-collapse:collapse;font-size:.84em;margin:.4em 0 1em;display:block;overflow-x:auto}
th,td{border:1px solid #dde1e7;padding:.25em .6em;text-align:left;white-space:nowrap}
th{background:#eef1f5;white-space:normal;vertical-align:bottom}
.num{text-align:right;font-variant-numeric:tabular-nums}
caption{caption-side:top;text-align:left;font-weight:600;padding:.3em 0;color:#394356;
white-space:normal;max-width:1100px}
figure{margin:1em 0}
figure img{max-width:100%;border:1px solid #eef1f5}
figcaption{font-size:.88em;color:#4b5568}
code{background:#eef1f5;padding:0 .25em;border-radius:3px}
.note{padding:.5em .9em;border-left:4px solid #4a7bd0;background:#eef3fc;margin:.8em 0}
.note.warning{border-color:#d08a1e;background:#fdf5e8}
.note.skipped{border-color:#8a93a3;background:#f1f2f4;color:#4b5568}
.scope{font-size:.82em;color:#4b5568;margin:-.6em 0 1.2em;max-width:1100px}
figcaption .scope{display:block;margin:.2em 0 0}
footer{color:#6b7585;font-size:.8em;text-align:center;padding-bottom:2em}
"""


def render_html(title: str, subtitle: str, sections: list[Section], footer: str = "") -> str:
    """The whole report as one HTML string; figures are embedded as base64 PNG."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{html.escape(title)}</h1><p>{_inline_html(subtitle)}</p></header>",
        "<nav>"
        + "".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in sections)
        + "</nav><main>",
    ]
    for s in sections:
        parts.append(f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>')
        for b in s.blocks:
            parts.append(_block_html(b))
        parts.append("</section>")
    parts.append(f"</main><footer>{_inline_html(footer)}</footer></body></html>")
    return "\n".join(parts)


def _block_html(b) -> str:
    if isinstance(b, Text):
        return f"<p>{_inline_html(b.text)}</p>"
    if isinstance(b, Note):
        return f'<div class="note {html.escape(b.kind)}">{_inline_html(b.text)}</div>'
    if isinstance(b, Table):
        df = _format_frame(b)
        numeric = [
            pd.api.types.is_numeric_dtype(b.frame[c]) and not pd.api.types.is_bool_dtype(b.frame[c])
            for c in b.frame.columns
        ]
        cls = ['class="num"' if n else "" for n in numeric]
        head = "".join(
            f"<th {k}>{html.escape(str(c).replace('_', ' '))}</th>"
            for c, k in zip(df.columns, cls, strict=True)
        )
        rows = "".join(
            "<tr>"
            + "".join(f"<td {k}>{html.escape(str(v))}</td>" for v, k in zip(r, cls, strict=True))
            + "</tr>"
            for r in df.itertuples(index=False)
        )
        cap = html.escape(b.caption + _truncation_note(b))
        note = f'<p class="scope">{_inline_html(b.note)}</p>' if b.note else ""
        return (
            f"<table><caption>{cap}</caption><thead><tr>{head}</tr></thead><tbody>{rows}</tbody>"
            f"</table>{note}"
        )
    if isinstance(b, Figure):
        data = base64.b64encode(b.png).decode("ascii")
        note = f'<span class="scope">{_inline_html(b.note)}</span>' if b.note else ""
        return (
            f'<figure><img alt="{html.escape(b.caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_inline_html(b.caption)}{note}</figcaption></figure>"
        )
    raise TypeError(f"unknown report block {type(b).__name__}")


# ---------------------------------------------------------------- markdown
def _md_cell(v: str) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def render_markdown(
    title: str,
    subtitle: str,
    sections: list[Section],
    figure_dir: str = "figures",
    footer: str = "",
) -> str:
    """The report as markdown; figures are referenced as ``figure_dir/NAME.png``."""
    lines = [f"# {title}", "", subtitle, ""]
    for s in sections:
        lines += [f"## {s.title}", ""]
        for b in s.blocks:
            if isinstance(b, Text):
                lines += [b.text, ""]
            elif isinstance(b, Note):
                prefix = {"warning": "**Warning:** ", "skipped": "**Skipped:** "}.get(b.kind, "")
                lines += [f"> {prefix}{b.text}", ""]
            elif isinstance(b, Table):
                df = _format_frame(b)
                if b.caption:
                    lines += [f"*{b.caption}{_truncation_note(b)}*", ""]
                lines.append("| " + " | ".join(_md_cell(c) for c in df.columns) + " |")
                lines.append("|" + "|".join("---" for _ in df.columns) + "|")
                for r in df.itertuples(index=False):
                    lines.append("| " + " | ".join(_md_cell(v) for v in r) + " |")
                lines.append("")
                if b.note:
                    lines += [b.note, ""]
            elif isinstance(b, Figure):
                lines += [f"![{b.caption}]({figure_dir}/{b.name}.png)", "", f"*{b.caption}*", ""]
                if b.note:
                    lines += [b.note, ""]
    if footer:
        lines += ["---", "", footer, ""]
    return "\n".join(lines)


def write_figures(sections: list[Section], directory: Path) -> list[Path]:
    """Write every figure of the report as a PNG file (for the markdown twin)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for s in sections:
        for b in s.blocks:
            if isinstance(b, Figure):
                p = directory / f"{b.name}.png"
                p.write_bytes(b.png)
                paths.append(p)
    return paths
