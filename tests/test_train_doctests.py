"""The Examples sections of the train layer run (tiny local models, a few optimiser steps)."""

from __future__ import annotations

import doctest
import importlib

import pytest

pytest.importorskip("trl")

MODULES = ["_config", "_dpo", "_evaluate", "_grid", "_grpo", "_kernels", "_models"]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    module = importlib.import_module(f"pluralign.train.{name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0
