"""The docstrings' examples run."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize("module", ["analysis.measures", "analysis.trial"])
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
