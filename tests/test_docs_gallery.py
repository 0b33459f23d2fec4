"""The gallery hook of the documentation build: a script's figures become pages; a failing
script fails the build; the notebooks' source script and the stored notebooks agree."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def hooks():
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e '.[dev]')")
    return _load(ROOT / "docs" / "hooks.py", "pluralign_docs_hooks")


def test_script_figure_becomes_png_and_page(hooks, tmp_path):
    script = tmp_path / "line.py"
    script.write_text(
        '"""plots.line\n\nA line.\n"""\n\nimport matplotlib.pyplot as plt\n\nplt.plot([0, 1], [1, 0])\n'
    )
    title, text, code = hooks._parts(script)
    assert (title, text) == ("plots.line", "A line.")
    assert code.startswith("import matplotlib.pyplot as plt") and '"""' not in code
    pngs, skip = hooks._run(script)
    assert skip is None and len(pngs) == 1 and pngs[0].startswith(b"\x89PNG")
    page = hooks._page(script, title, text, code, ["line.png"], skip)
    assert "![plots.line](line.png)" in page and "plt.plot([0, 1], [1, 0])" in page


def test_failing_script_fails_the_build(hooks, tmp_path):
    from mkdocs.exceptions import PluginError

    script = tmp_path / "broken.py"
    script.write_text('"""broken"""\n\nraise ValueError("no such column")\n')
    with pytest.raises(PluginError, match=r"broken\.py.*no such column"):
        hooks._run(script)
    silent = tmp_path / "silent.py"
    silent.write_text('"""silent"""\n\nx = 1\n')
    with pytest.raises(PluginError, match="drew no figure"):
        hooks._run(silent)


def test_skip_reason_is_shown(hooks, tmp_path):
    script = tmp_path / "absent.py"
    script.write_text('"""absent"""\n\nSKIP = "data set not found"\n')
    pngs, skip = hooks._run(script)
    assert pngs == [] and skip == "data set not found"
    assert "data set not found" in hooks._page(script, "absent", "", "", [], skip)


def test_every_plotting_function_has_a_gallery_page():
    from pluralign import plots

    drawn = {p.stem for p in (ROOT / "docs" / "gallery").glob("[!_]*.py")}
    helpers = {"adjusted_intervals", "colors", "savefig", "style"}  # tables and styling
    functions = {n for n in plots.__all__ if n.islower() and n not in helpers}
    assert functions <= drawn, sorted(functions - drawn)


def test_notebooks_match_their_source_and_set_nothing_up():
    nbformat = pytest.importorskip("nbformat")
    make = _load(ROOT / "analysis" / "make_notebooks.py", "pluralign_make_notebooks")
    for name, cells in make.NOTEBOOKS.items():
        stored = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        assert [c.source for c in stored.cells] == [src for _, src in cells], name
        code = "\n".join(src for kind, src in cells if kind == "code")
        assert "os.environ" not in code and "filterwarnings" not in code, name
    assert sorted(make.NOTEBOOKS) == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
