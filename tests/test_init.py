"""The public surface: every name in ``analysis.__all__`` is the function or class it
names, imported on first use, even after its module was imported directly."""

import importlib
import pkgutil
import subprocess
import sys
import types

import analysis


def test_every_public_name_resolves_to_an_object_not_a_module():
    for info in pkgutil.walk_packages(analysis.__path__, "analysis."):
        importlib.import_module(info.name)
    for name in analysis.__all__:
        value = getattr(analysis, name)
        assert not isinstance(value, types.ModuleType), name
    assert set(dir(analysis)) == set(analysis.__all__)


def test_import_loads_no_plotting_or_notebook_machinery():
    code = "import sys, analysis.cli, analysis.engine, analysis.ledgers; print(sorted(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for heavy in ("matplotlib", "papermill", "nbconvert", "scipy.stats", "distributed", "phonenumbers.geocoder"):
        assert f"'{heavy}'" not in loaded, heavy
