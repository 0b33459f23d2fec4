"""The Examples sections of the data and describe modules run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "pluralign.data._study",
    "pluralign.data._io",
    "pluralign.data._scale",
    "pluralign.data._simulate",
    "pluralign.data._generate",
    "pluralign._numeric",
    "pluralign.data._loaders",
    "pluralign.describe._bootstrap",
    "pluralign.describe._groups",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} example(s) failed in {name}"
