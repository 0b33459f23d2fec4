"""The Examples sections of the labels layer run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "_agreement",
    "_disagreement",
    "_flips",
    "_kernels",
    "_posterior",
    "_preference",
    "_rescale",
    "_reward",
    "_score",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    module = importlib.import_module(f"pluralign.labels.{name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
