"""The docstrings' examples run."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize("module", ["analysis.distinct", "analysis.stats", "analysis.trial"])
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_the_readme_layout_example_reads_a_file(tmp_path, monkeypatch):
    """The README's developer section: one declaration adds a layout, read as the built-in
    ones are."""
    import re
    from pathlib import Path

    import pandas as pd

    import analysis.readers._assemble as assemble
    from analysis import read_send_log
    from analysis.readers.language import load_layouts

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    code = re.search(r"\*\*Adding a layout\*\*.*?```toml\n(.*?)```", readme, re.S).group(1)
    (tmp_path / "acme.toml").write_text(code, encoding="utf-8")
    monkeypatch.setattr(assemble, "LAYOUTS", [*assemble.LAYOUTS, *load_layouts(tmp_path / "acme.toml")])
    (tmp_path / "acme.csv").write_text("MsgId,Mobile,Result,Code,DoneTime\nA1,13800138000,0,,2025-05-06 01:00:05\n"
                                       "A2,13800138001,1,E7,2025-05-06 01:00:09\n", encoding="utf-8")
    log = read_send_log(tmp_path / "acme.csv").set_index("message_id")
    assert log.loc["A1", "status"] == "delivered" and log.loc["A2", "error_code"] == "E7"
    assert log.loc["A1", "done_time"] == pd.Timestamp("2025-05-06 09:00:05", tz="Asia/Shanghai")
    assert set(log["vendor"]) == {"acme"} and set(log["time_source"]) == {"receipt"}
