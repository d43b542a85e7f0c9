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


#: The notebooks whose figures all come from merged sums: they stream the store.
STREAMED = ("1.0-quality-overview", "2.0-failure-tracing", "3.0-content-and-send-hours", "4.0-billing-reconciliation")


@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.stem)
def test_ledger_notebooks_stream_the_store(path):
    """The ledger notebooks read the inputs as the console command does (one streamed
    pass, ``ledger_source``), never the whole log in memory; the others read the log for
    their per-row figures."""
    source = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    if path.stem in STREAMED:
        assert "sl.ledger_source(" in source and "load_inputs" not in source and "data.log" not in source
    else:  # per-row figures (wording, send windows, resends, the trial): the log in memory
        assert "sl.load_inputs(" in source


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
    (home / "notebooks").symlink_to(config.PACKAGE_NOTEBOOKS)
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
    from analysis.compliance import load_words

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


#: What an export can carry to attack a spreadsheet or a page (OWASP's CSV-injection list
#: and two XSS classics).
EVIL = ['=HYPERLINK("http://x.example","click")', '+cmd|" /C calc"!A0', "@SUM(1)", "\t=1+1", "\r=2+2",
        "<script>alert(1)</script>", "<img src=x onerror=alert(2)>", "-3+3"]


class _Tags(HTMLParser):
    """Every start tag of a page with its attributes, and the text inside scripts."""

    def __init__(self):
        super().__init__()
        self.tags, self.scripts, self._in = [], [], False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in = tag == "script"

    def handle_endtag(self, tag):
        self._in = False

    def handle_data(self, data):
        if self._in:
            self.scripts.append(data)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A project home whose only export carries EVIL in every text field (vendor names
    included), ingested, then ``weekly`` in Chinese and ``report`` in English."""
    import csv

    home = tmp_path_factory.mktemp("hostile")
    (home / "notebooks").symlink_to(config.PACKAGE_NOTEBOOKS)
    raw = home / "data" / "raw"
    raw.mkdir(parents=True)
    vendors = ['=HYPERLINK("http://x.example","v")', "<img src=x onerror=alert(3)>"]
    rows = []
    for i in range(240):
        evil = EVIL[i % len(EVIL)]
        day = 5 + i % 14  # 2025-05-05 .. 18: W19 and W20
        failed = i % 5 == 0
        rows.append({"vendor": vendors[i % 2], "message_id": f"{evil}{i}", "phone": f"1380013{i:04d}",
                     "channel": evil, "carrier": evil, "province": evil, "city": evil, "template_id": evil,
                     "category": "marketing", "content": f"{evil} 回T退订",
                     "submit_time": f"2025-05-{day:02d} {9 + i % 10:02d}:00:00",
                     "done_time": f"2025-05-{day:02d} {9 + i % 10:02d}:00:07",
                     "status": "failed" if failed else "delivered", "status_code": evil if failed else "DELIVRD",
                     "error_code": evil if failed else ""})
    rows.append({**rows[0], "message_id": "bad", "phone": "=1+1"})  # rejected: its record keeps the text
    with (raw / "hostile.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    _run(home, "ingest", "data/raw/hostile.csv", "--out", "data/interim")
    _run(home, "weekly", "data/interim", "--week", WEEK, "--out", "reports/ledgers")
    _run(home, "report", "--week", WEEK, "--lang", "en")
    return home


@pytest.mark.slow
def test_no_export_text_becomes_a_formula_or_markup(hostile):
    """No ``<f>`` in any sheet of either workbook, no live tag in any page, no CSV cell
    that starts a formula: and the hostile text did reach every one of them, as text."""
    import zipfile

    from analysis.schema import FORMULA_START

    reports = hostile / "reports"
    books = [reports / "ledgers" / f"ledger-{WEEK}.xlsx", reports / "ledgers" / f"ledger-{WEEK}-en.xlsx"]
    for book in books:
        with zipfile.ZipFile(book) as z:
            sheets = {n: z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/sheet")}
        assert not [n for n, xml in sheets.items() if "<f>" in xml or "<f " in xml], book
        wb = load_workbook(book)
        texts = [c for ws in wb.worksheets for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
        risky = [c for c in texts if c.value.startswith(FORMULA_START)]
        assert {c.value for c in risky} >= {'=HYPERLINK("http://x.example","click")', "@SUM(1)"}, book
        assert all(c.data_type == "s" and c.quotePrefix for c in risky), book
        assert any(c.value.startswith("=HYPERLINK") for c in texts if c.parent.title in ("图表", "Charts")), \
            "the charts' data holds the carrier names too"
    pages = [reports / f"report-{WEEK}-en.html", *sorted((reports / "html").glob(f"*-{WEEK}-en.html"))]
    assert len(pages) == 6
    reached = False
    for page in pages:
        html = page.read_text(encoding="utf-8")
        parser = _Tags()
        parser.feed(html)
        assert not [a for t, a in parser.tags if t == "img" and "onerror" in a], page
        assert not [s for s in parser.scripts if "alert(" in s], page
        reached |= "&lt;script&gt;alert(1)&lt;/script&gt;" in html or "&lt;img src=x onerror=alert(" in html
    assert reached, "the hostile text reached the pages, escaped"
    for csv_file in [hostile / "data" / "interim" / "ingest-summary.csv", hostile / "data" / "interim" / "rejects.csv"]:
        import pandas as pd

        frame = pd.read_csv(csv_file, dtype=str, keep_default_na=False)
        cells = frame.to_numpy().ravel().tolist()
        assert not [c for c in cells if c.startswith(FORMULA_START)], csv_file
    summary = pd.read_csv(hostile / "data" / "interim" / "ingest-summary.csv", dtype=str)
    assert summary["vendor"].str.contains("HYPERLINK").any()  # the vendor name is there, quoted
