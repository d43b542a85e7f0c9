"""Notebooks and the review report: one reviewable form, thin, parameterised; the report
command run exactly as the README writes it, in both languages, each output in one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from openpyxl import load_workbook

from analysis import config
from analysis.report import SECTIONS, notebooks

BOOKS = notebooks()
WEEK = "2025-W19"
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
#: Names that stay as they are in a Chinese output: brands, the CUSUM chart, the zone,
#: encodings.
KEEP = {"Twilio", "Vonage", "AWS", "SNS", "CUSUM", "Asia", "Shanghai", "SMS", "UTF", "BOM", "GBK", "Big"}


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
    # one language per report: no prose of either language is written into a notebook
    assert all(c.cell_type == "code" for c in nb.cells), "headings come from sl.heading in the report's language"


def _run(home: Path, *args: str) -> str:
    env = {**os.environ, "SMS_LEDGER_HOME": str(home)}
    sms_ledger = Path(sys.executable).with_name("sms-ledger")
    done = subprocess.run([str(sms_ledger), *args], cwd=home, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def readme(tmp_path_factory):
    """A fresh project home with the demo data ingested, then the README's two commands:
    ``sms-ledger report --week 2025-W19`` and the same with ``--lang en``."""
    from analysis import simulate

    home = tmp_path_factory.mktemp("home")
    (home / "notebooks").symlink_to(config.NOTEBOOKS)
    truth = simulate(home / "data" / "raw" / "demo", n=4000, seed=7)
    f = truth["files"]
    _run(home, "ingest", *f["aliyun"], *f["tencent"], *f["gateway"], f["twilio"], "--out", "data/interim")
    printed = {"zh": _run(home, "report", "--week", WEEK)}
    printed["en"] = _run(home, "report", "--week", WEEK, "--lang", "en")
    return home, truth, printed


def _files(reports: Path, suffix: str) -> dict[str, object]:
    return {
        "index": reports / f"report-{WEEK}{suffix}.html",
        "workbook": reports / "ledgers" / f"ledger-{WEEK}{suffix}.xlsx",
        "pages": [reports / "html" / f"{b.stem}-{WEEK}{suffix}.html" for b in BOOKS],
        "notebooks": [reports / "notebooks" / f"{b.stem}-{WEEK}{suffix}.ipynb" for b in BOOKS],
        "figures": reports / "figures" / f"{WEEK}{suffix}",
    }


@pytest.mark.slow
@pytest.mark.parametrize("lang,suffix", [("zh", ""), ("en", "-en")])
def test_readme_report_command_writes_both_sets(readme, lang, suffix):
    home, _, printed = readme
    files = _files(home / "reports", suffix)
    for key in ("index", "workbook"):
        assert files[key].exists(), files[key]
        assert str(files[key]) in printed[lang], f"the command prints where the {key} went"
    assert all(p.exists() for p in files["pages"] + files["notebooks"])
    assert str(files["figures"]) in printed[lang]
    for path in files["notebooks"]:
        nb = nbformat.read(path, as_version=4)
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
        assert not errors, path
        injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert injected and WEEK in injected[0].source and f'lang = "{lang}"' in injected[0].source
    for page in files["pages"]:
        html = page.read_text(encoding="utf-8")
        assert "load_inputs" not in html and "sl.plot" not in html, "no code cells in the report"
        assert "<img" in html or "<table" in html
        title = re.search(r"<title>(.*?)</title>", html).group(1)
        number = page.name.split("-", 1)[0]
        assert title == f"{SECTIONS[number][0 if lang == 'zh' else 1][0]} · {WEEK}"
    # without --trial the trial section says so, in the report's language
    trial_page = files["pages"][-1].read_text(encoding="utf-8")
    assert ("未提供通道测试数据" if lang == "zh" else "no channel-trial log was given") in trial_page
    mode = files["workbook"].stat().st_mode & 0o777
    assert mode == 0o666 & ~_umask(), oct(mode)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.slow
def test_report_figures_png_and_svg(readme):
    home, _, _ = readme
    for suffix in ("", "-en"):
        figures = home / "reports" / "figures" / f"{WEEK}{suffix}"
        png = sorted(p.stem for p in figures.glob("*.png"))
        svg = sorted(p.stem for p in figures.glob("*.svg"))
        assert png == svg
        saved = set()
        for book in BOOKS:
            source = "\n".join(c.source for c in nbformat.read(book, as_version=4).cells)
            saved |= set(re.findall(r'save_figure\(fig, f"([^"{]+)-\{week\}"', source))
        # every figure a notebook saves, except the trial's scorecard (no --trial given)
        assert {f"{name}-{WEEK}" for name in saved if "scorecard" not in name} == set(png)


class _Text(HTMLParser):
    """The visible text of a page (no style, no script)."""

    def __init__(self):
        super().__init__()
        self.parts, self._skip = [], 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in {"style", "script"}

    def handle_endtag(self, tag):
        self._skip -= tag in {"style", "script"}

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.parts.append(data.strip())


def _data_strings(home: Path) -> set[str]:
    """What an export holds and an output quotes as it is: message text, template ids,
    raw codes, file names, and the wording checks' hits."""
    import pandas as pd

    from analysis import read_store
    from analysis.lint import load_words

    log = read_store(home / "data" / "interim")
    values = set()
    for col in ("content", "template_id", "error_code", "error_message", "signature"):
        if col in log:
            values |= {str(v) for v in log[col].dropna().astype(str).unique()}
    for folder in ("raw/demo", "interim"):
        values |= {path.name for path in (home / "data" / folder).iterdir()}
    words = load_words()
    values |= {w for section in words.values() for ws in section.values() for w in ws}
    return {v for v in values if v and not pd.isna(v)}


def _untranslated(text: str, lang: str, data: set[str]) -> list[str]:
    for value in sorted(data, key=len, reverse=True):
        if len(value) > 1 and value in text:
            text = text.replace(value, " ")
    # links, paths, file names, (masked) phone numbers and the commands an output quotes
    text = re.sub(r"https?://\S+|[\w.-]+(?:/[\w.-]+)+|\S+\.(?:xlsx|csv|html|ipynb)\b|\+?\d[\d*]{6,}|sms-ledger[ \w-]*",
                  " ", text, flags=re.ASCII)
    if lang == "en":
        return CJK.findall(text)
    snake = re.findall(r"\b[a-z]+(?:_[a-z0-9]+)+\b", text)
    words = [w for w in re.findall(r"[A-Za-z]{3,}", text) if w not in KEEP]
    return snake + words


@pytest.mark.slow
@pytest.mark.parametrize("lang,suffix", [("zh", ""), ("en", "-en")])
def test_each_output_in_one_language(readme, lang, suffix):
    home, _, _ = readme
    data = _data_strings(home)
    files = _files(home / "reports", suffix)
    found = {}
    book = load_workbook(files["workbook"])
    for ws in book.worksheets:
        for row in ws.iter_rows(values_only=True):
            for value in row:
                if isinstance(value, str) and (bad := _untranslated(value, lang, data)):
                    found[f"{ws.title}: {value}"] = bad
        if lang == "en":
            assert not CJK.search(ws.title), ws.title
    for page in [files["index"], *files["pages"]]:
        parser = _Text()
        parser.feed(page.read_text(encoding="utf-8"))
        for text in parser.parts:
            if bad := _untranslated(text, lang, data):
                found[f"{page.name}: {text[:120]}"] = bad
    assert not found, "\n".join(f"{k} -> {v}" for k, v in list(found.items())[:30])
