"""Notebooks: one reviewable form, thin, parameterised; the report executes them all."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from analysis import config, simulate_trial
from analysis.report import notebooks, run_report

BOOKS = notebooks()


def test_the_five_notebooks_are_there():
    names = [p.stem for p in BOOKS]
    assert names == ["1.0-quality-overview", "2.0-failure-tracing", "3.0-content-and-send-hours",
                     "4.0-billing-reconciliation", "5.0-channel-trial"]


@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.stem)
def test_notebook_form(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is code[0], "one cell tagged parameters, the first code cell"
    for name in ("week", "vendors", "inputs", "lang", "figures"):  # the 5.0 notebook also takes trial
        assert re.search(rf"^{name} = ", tagged[0].source, re.M), name
    # committed with outputs stripped
    assert all(not c.outputs and c.execution_count is None for c in code)
    # thin: no metric is computed in a notebook
    for c in code:
        assert not re.search(r"groupby|\.mean\(|\.sum\(|value_counts|\.agg\(|pivot", c.source), c.source
        assert "data/" not in c.source, "paths come from analysis.config"


@pytest.fixture(scope="module")
def report(demo, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    folder = Path(demo["files"]["bills"]).parent
    trial = simulate_trial(tmp_path_factory.mktemp("trial"))["file"]
    index = run_report("2025-W19", inputs=[folder], trial=[trial], lang="zh", out=out, timeout=300)
    return out, index


def test_report_executes_every_notebook(report):
    out, index = report
    pages = sorted((out / "html").glob("*.html"))
    assert [p.name for p in pages] == [f"{b.stem}-2025-W19.html" for b in BOOKS]
    text = index.read_text(encoding="utf-8")
    assert all(p.name in text for p in pages)
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert "load_inputs" not in html and "sl.plot" not in html, "no code cells in the report"
        assert "<img" in html or "<table" in html
    executed = sorted((out / "notebooks").glob("*.ipynb"))
    for path in executed:
        nb = nbformat.read(path, as_version=4)
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
        assert not errors
        injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert injected and "2025-W19" in injected[0].source


def test_report_figures_png_and_svg(report):
    out, _ = report
    figures = out / "figures" / "2025-W19"
    png = sorted(p.stem for p in figures.glob("*.png"))
    svg = sorted(p.stem for p in figures.glob("*.svg"))
    assert png == svg and len(png) >= 8
    saved = set()
    for book in BOOKS:
        source = "\n".join(c.source for c in nbformat.read(book, as_version=4).cells)
        saved |= set(re.findall(r'save_figure\(fig, f"([^"{]+)-\{week\}"', source))
    assert {f"{name}-2025-W19" for name in saved} == set(png)


def test_default_paths_come_from_config():
    assert config.NOTEBOOKS == config.PROJECT_ROOT / "notebooks"
    assert all(p.parent == config.NOTEBOOKS for p in BOOKS)
