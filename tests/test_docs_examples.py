"""The code in README.md and docs/*.md uses names that exist, with arguments they accept.

The README's example is run end to end. The documentation's snippets refer to files a reader
has (``ratings.csv``), so they are checked statically instead: every ``pluralign`` name they
import or reach through ``pl.`` must exist, and every keyword they pass to a pluralign function
must be one of its parameters. A rename that forgets the documentation fails here.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

import pluralign as pl

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _blocks(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text(encoding="utf-8"))


def _resolve(dotted: str):
    """The object a ``pl.<path>`` name refers to (subpackages are imported on the way)."""
    parts = dotted.split(".")[1:]
    obj, module = pl, "pluralign"
    for part in parts:
        try:
            obj = getattr(obj, part)
        except AttributeError:
            try:
                obj = importlib.import_module(f"{module}.{part}")
            except ModuleNotFoundError:
                raise AttributeError(part) from None
        module = f"{module}.{part}"
    return obj


def _problems(source: str) -> list[str]:
    tree = ast.parse(source)
    aliases: dict[str, str] = {}  # local name -> "pl.<path>"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "pluralign":
                    aliases[a.asname or a.name] = "pl" + a.name[len("pluralign") :]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pluralign"):
            base = "pl" + node.module[len("pluralign") :]
            for a in node.names:
                aliases[a.asname or a.name] = f"{base}.{a.name}"
                try:
                    _resolve(f"{base}.{a.name}")
                except AttributeError:
                    found.append(f"{base}.{a.name} does not exist")
    aliases.setdefault("pl", "pl")

    def dotted(expr: ast.expr) -> str | None:
        parts = []
        while isinstance(expr, ast.Attribute):
            parts.append(expr.attr)
            expr = expr.value
        if isinstance(expr, ast.Name) and expr.id in aliases:
            return ".".join([aliases[expr.id], *reversed(parts)])
        return None

    for node in ast.walk(tree):
        if isinstance(node, (ast.Attribute, ast.Name)) and isinstance(node.ctx, ast.Load):
            name = dotted(node)
            if name is None:
                continue
            try:
                _resolve(name)
            except AttributeError:
                found.append(f"{name} does not exist")
        if isinstance(node, ast.Call):
            name = dotted(node.func)
            if name is None:
                continue
            try:
                target = _resolve(name)
                params = inspect.signature(target).parameters
            except (AttributeError, TypeError, ValueError):
                continue
            if any(p.kind is p.VAR_KEYWORD for p in params.values()):
                continue
            for kw in node.keywords:
                if kw.arg is not None and kw.arg not in params:
                    found.append(f"{name}(... {kw.arg}=...) is not an argument")
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_snippets_use_current_names(page):
    problems = [p for block in _blocks(page) for p in _problems(block)]
    assert not problems, f"{page.name}: " + "; ".join(problems)


def test_the_check_sees_a_renamed_argument():
    assert _problems("import pluralign as pl\npl.fit_mixed(s, 'rating ~ g', nope=1)")
    assert _problems("from pluralign import report_study\n")
    assert not _problems("import pluralign as pl\npl.fit_mixed(s, 'rating ~ g', dimension='x')")


@pytest.mark.slow
def test_readme_example_runs(tmp_path, monkeypatch):
    (code,) = _blocks(ROOT / "README.md")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    assert (tmp_path / "my-report" / "report.html").is_file()
