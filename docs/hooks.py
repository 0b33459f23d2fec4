"""MkDocs hook: the gallery, drawn while the site is built.

Every ``docs/gallery/*.py`` script (names starting with ``_`` excepted) is run once per build,
in order, in a fresh namespace. Each figure it leaves open becomes a PNG in the built site, and a
page ``gallery/<script>.md`` shows the script's docstring, its figures and its code side by side.
``gallery/index.md`` shows every figure as a thumbnail. Nothing generated is stored in the
repository. A script that raises, or whose model does not converge (pluralign's
``ConvergenceWarning``), fails the strict build; a script may set ``SKIP = "reason"`` (e.g. when a data set is absent) to show the reason
instead of a figure.

With ``PLURALIGN_DOCS_EXECUTE=false`` (as for the notebooks, see ``mkdocs.yml``) the scripts are
not run: each page says so and its figure is an empty placeholder, which checks the site's
structure and links in seconds.
"""

from __future__ import annotations

import ast
import io
import logging
import os
import runpy
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.hooks.gallery")

GALLERY = Path(__file__).resolve().parent / "gallery"
REPO = GALLERY.parents[1]
DPI = 110
#: A 1×1 transparent PNG, the figure of a page whose script was not run.
PLACEHOLDER = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360606060000000050001a5f645400000000049454e44ae426082"
)


def _execute() -> bool:
    return os.environ.get("PLURALIGN_DOCS_EXECUTE", "true").strip().lower() not in {"0", "false"}


def _scripts() -> list[Path]:
    return sorted(p for p in GALLERY.glob("*.py") if not p.name.startswith("_"))


def _parts(script: Path) -> tuple[str, str, str]:
    """Title (first docstring line), the rest of the docstring, and the code after it."""
    source = script.read_text(encoding="utf-8")
    tree = ast.parse(source)
    doc = ast.get_docstring(tree) or script.stem
    title, _, text = doc.partition("\n")
    body = tree.body[1:] if ast.get_docstring(tree) else tree.body
    first = body[0].lineno if body else len(source.splitlines()) + 1
    code = "\n".join(source.splitlines()[first - 1 :]).strip()
    return title.strip(), text.strip(), code


def _run(script: Path) -> tuple[list[bytes], str | None]:
    """Run a script; return its open figures as PNG bytes and its SKIP reason, if any."""
    from pluralign import ConvergenceWarning, PluralignWarning

    plt.close("all")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            namespace = runpy.run_path(str(script), run_name="__main__")
        except Exception as exc:
            raise PluginError(f"gallery script {script.name} failed: {exc!r}") from exc
    for w in caught:
        # a figure drawn from a fit that did not converge fails the strict build; pluralign's
        # notices about the data (rows dropped, sparse levels) are part of the log
        if issubclass(w.category, ConvergenceWarning):
            log.warning(f"gallery script {script.name}: {w.category.__name__}: {w.message}")
        elif issubclass(w.category, PluralignWarning):
            log.info(f"gallery script {script.name}: {w.category.__name__}: {w.message}")
    skip = namespace.get("SKIP")
    pngs = []
    for num in plt.get_fignums():
        buf = io.BytesIO()
        plt.figure(num).savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
        pngs.append(buf.getvalue())
    plt.close("all")
    if not pngs and not skip:
        raise PluginError(f"gallery script {script.name} drew no figure and set no SKIP reason")
    return pngs, skip


def _page(script: Path, title: str, text: str, code: str, images: list[str], skip: str | None):
    shown = "\n".join(f"![{title}]({name}){{ loading=lazy }}" for name in images)
    if skip:
        shown = f'!!! note "Not drawn in this build"\n    {skip}\n'

    return (
        f"# {title}\n\n{text}\n\n"
        f'<div class="gallery-pair" markdown>\n\n<div markdown>\n\n{shown}\n\n</div>\n\n'
        f'<div markdown>\n\n```python title="{script.name}"\n{code}\n```\n\n</div>\n\n</div>\n'
    )


@event_priority(100)  # before mkdocs-jupyter, which renders the notebooks added here
def on_files(files: Files, config) -> Files:
    _add_notebooks(files, config)
    _add_gallery(files, config)
    return files


def _add_notebooks(files: Files, config) -> None:
    """The notebooks of ``notebooks/`` as pages ``notebooks/<name>/``, executed by mkdocs-jupyter.

    Their kernels draw figures inline (Jupyter's default), whatever backend this build uses.
    """
    if os.environ.get("MPLBACKEND", "").lower() == "agg":
        os.environ.pop("MPLBACKEND")
    for nb in sorted((REPO / "notebooks").glob("*.ipynb")):
        files.append(
            File(
                f"notebooks/{nb.name}",
                src_dir=str(REPO),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )


def _add_gallery(files: Files, config) -> None:
    cards = []
    for script in _scripts():
        start = time.perf_counter()
        title, text, code = _parts(script)
        if _execute():
            pngs, skip = _run(script)
        else:
            pngs, skip = [PLACEHOLDER], "This build was made with PLURALIGN_DOCS_EXECUTE=false."
        stem = script.stem
        images = []
        for i, png in enumerate(pngs):
            name = f"{stem}.png" if i == 0 else f"{stem}-{i + 1}.png"
            files.append(File.generated(config, f"gallery/{name}", content=png))
            images.append(name)
        page = _page(script, title, text, code, images, skip)
        files.append(File.generated(config, f"gallery/{stem}.md", content=page))
        summary = text.split("\n\n")[0].replace("\n", " ")
        thumb = f"[![{title}]({images[0]}){{ loading=lazy }}]({stem}.md)" if images else ""
        cards.append(f"-   **[{title}]({stem}.md)**\n\n    {thumb}\n\n    {summary}\n")
        log.info(f"gallery: {script.name} in {time.perf_counter() - start:.1f} s")
    intro = (GALLERY / "_index.md").read_text(encoding="utf-8")
    index = f'{intro}\n<div class="grid cards" markdown>\n\n' + "\n".join(cards) + "\n</div>\n"
    files.append(File.generated(config, "gallery/index.md", content=index))
