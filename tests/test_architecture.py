"""The package's layering: imports flow one way, and private modules stay inside their subpackage.

Data flows data → describe/models → labels → train → plots/report; power sits beside plots,
on top of the analysis layers (it simulates with data, fits with models, labels with labels and
draws its curves with plots). A module may import from its
own layer and the layers before it, never after; it may import another subpackage only
through that subpackage's public ``__init__``. Top-level private modules (``_settings``,
``_errors``, ``_compat``, ``_numeric``) are shared core, importable from anywhere.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pluralign"

#: Rank of each subpackage; a module may import subpackages of equal or lower rank only.
RANK = {
    "data": 0,
    "describe": 1,
    "models": 1,
    "labels": 2,
    "train": 3,
    "plots": 4,
    "power": 4,
    "report": 5,
    "cli": 6,
}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _layer(path: Path) -> str | None:
    rel = path.relative_to(PACKAGE).parts
    if len(rel) == 1:
        stem = rel[0][:-3]
        return "cli" if stem in ("cli", "__main__") else None
    return rel[0]


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, dotted name)`` of every ``pluralign`` import, relative ones resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    pkg = ["pluralign", *path.relative_to(PACKAGE).parts[:-1]]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("pluralign")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - node.level + 1]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            if not mod.startswith("pluralign"):
                continue
            names = [a.name for a in node.names]
            out += [(node.lineno, f"{mod}.{n}") for n in names]
    return out


def _violations() -> list[str]:
    found = []
    for path in _modules():
        here = _layer(path)
        if here is None:
            continue
        rel = path.relative_to(PACKAGE.parent)
        for line, name in _imports(path):
            parts = name.split(".")
            if len(parts) < 2 or parts[1] not in RANK:
                continue
            there = parts[1]
            if there == here:
                continue
            if RANK[there] > RANK[here]:
                found.append(f"{rel}:{line}: upward import of {name} from layer {here!r}")
            if any(p.startswith("_") for p in parts[2:]):
                found.append(f"{rel}:{line}: private name {name} imported across subpackages")
    return found


def test_no_upward_or_private_cross_imports():
    problems = _violations()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from pluralign.report import write_report\n", "upward import"),
        ("from pluralign.models._targets import x\n", "private name"),
    ],
)
def test_the_scan_sees_violations(tmp_path, monkeypatch, source, expected):
    """The scan itself must be able to fail: plant a bad import in a fake data module."""
    fake = tmp_path / "pluralign"
    (fake / "data").mkdir(parents=True)
    (fake / "data" / "_bad.py").write_text(source)
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    assert any(expected in v for v in _violations())
