"""The package surface: explicit public API, light import, and errors that name the missing extra."""

import subprocess
import sys

import pytest

import pluralign
from pluralign._compat import require


def test_every_public_name_resolves():
    missing = [name for name in pluralign.__all__ if not hasattr(pluralign, name)]
    assert missing == []
    assert len(set(pluralign.__all__)) == len(pluralign.__all__)


def test_import_loads_no_heavy_extra():
    code = (
        "import sys, pluralign\n"
        "heavy = ['torch', 'trl', 'transformers', 'datasets', 'pymc', 'arviz', 'jax', 'nutpie']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize(
    ("module", "extra"), [("pymc", "bayes"), ("trl", "train"), ("arviz", "bayes")]
)
def test_missing_extra_names_the_extra(monkeypatch, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # makes the import fail
    with pytest.raises(ImportError, match=rf"pluralign\[{extra}\]"):
        require(module, purpose="this test")


def test_fit_bayes_without_pymc_names_the_extra(monkeypatch, small_study):
    monkeypatch.setitem(sys.modules, "pymc", None)
    with pytest.raises(ImportError, match=r"pluralign\[bayes\]"):
        pluralign.fit_bayes(small_study, "rating ~ gender", dimension="toxicity")
