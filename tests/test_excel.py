"""Ledger workbooks: layout, formats, masking, formula safety, atomic writes, round trip."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import Workbook, load_workbook

from analysis import ledger_history, read_ledger, weekly_ledgers, write_ledger
from analysis.excel import MONEY_COLUMNS, SHEET_NAMES
from analysis.schema import header


@pytest.fixture(scope="module")
def ledgers(demo, demo_inputs):
    return weekly_ledgers(demo_inputs.log, "2025-W18", bill=demo_inputs.bill, accounting=demo_inputs.summary)


@pytest.fixture(scope="module")
def books(ledgers, tmp_path_factory):
    out = tmp_path_factory.mktemp("books")
    return {lang: write_ledger(ledgers, out / f"ledger-{lang}.xlsx", lang=lang) for lang in ("zh", "en")}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_sheets_headers_and_formats(ledgers, books, lang):
    wb = load_workbook(books[lang])
    names = SHEET_NAMES[lang]
    assert wb.sheetnames == [names[k] for k in
                             ("summary", "quality", "trend", "regions", "failures", "repeat_failures", "content",
                              "billing", "cost", "alerts", "charts")]
    ws = wb[names["quality"]]
    headers = [c.value for c in ws[1]]
    assert headers == [header(c, lang) for c in ledgers["quality"].columns]
    assert headers[4] == ("成功数" if lang == "zh" else "Delivered")  # a count, not the status 成功
    col = {c: i + 1 for i, c in enumerate(ledgers["quality"].columns)}
    assert ws.cell(2, col["arrival_rate"]).number_format == "0.00%"
    assert ws.cell(2, col["submitted"]).number_format == "#,##0"
    assert ws.cell(2, col["arrival_rate"]).value == pytest.approx(ledgers["quality"]["arrival_rate"].iloc[0])
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref.startswith("A1:")
    rules = [r for cf in ws.conditional_formatting for r in cf.rules]
    assert rules, "targets missed are coloured"
    assert ws.column_dimensions["A"].width >= 10
    assert ws.page_setup.orientation == "landscape" and ws.print_title_rows == "$1:$1"
    yes_no = {"是", "否"} if lang == "zh" else {"Yes", "No"}
    assert {ws.cell(r, col["meets_target"]).value for r in range(2, ws.max_row + 1)} <= yes_no  # not TRUE/FALSE
    assert len(wb[names["charts"]]._charts) == 2
    total = "合计" if lang == "zh" else "All"
    assert ws.cell(2, col["vendor"]).value == total
    if lang == "zh":
        carriers = {ws.cell(r, col["carrier"]).value for r in range(2, ws.max_row + 1)}
        assert "中国移动" in carriers


def _all_strings(path) -> set[str]:
    wb = load_workbook(path)
    return {c.value for ws in wb.worksheets for row in ws.iter_rows() for c in row if isinstance(c.value, str)}


def test_phones_masked_unless_asked(ledgers, books, tmp_path):
    phones = ledgers["repeat_failures"]["phone"]
    assert len(phones)
    strings = _all_strings(books["zh"])
    assert not any(p in strings or p.removeprefix("+86") in strings for p in phones)
    masked = [s for s in strings if "****" in s]
    assert len(masked) >= len(phones)
    full = write_ledger(ledgers, tmp_path / "full.xlsx", unmask=True)
    assert set(phones) <= _all_strings(full)


def test_formula_looking_text_is_stored_as_text(ledgers, tmp_path):
    evil = ['=HYPERLINK("http://x.example","click")', "+8613800138000", "-1+2", "@SUM(A1:A2)"]
    content = ledgers["content"].head(4).copy()
    content["content"] = evil[: len(content)]
    content["template_id"] = ["=1+1", "+T", "-T", "@T"][: len(content)]
    path = write_ledger({**ledgers, "content": content}, tmp_path / "evil.xlsx", lang="en")
    with zipfile.ZipFile(path) as z:
        xml = "".join(z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/sheet"))
    assert "<f>" not in xml  # no formula anywhere in the workbook
    ws = load_workbook(path)["Content"]
    cells = [c for row in ws.iter_rows(min_row=2) for c in row if isinstance(c.value, str) and c.value[:1] in "=+-@"]
    assert len(cells) >= 2 * len(content)
    assert all(c.data_type == "s" and c.quotePrefix for c in cells)
    back = read_ledger(path)["content"]
    assert back["content"].tolist() == evil[: len(content)]


def _norm(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for c in out.columns:
        s = out[c]
        if isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            out[c] = s.astype(object).where(s.notna(), None)
        elif pd.api.types.is_bool_dtype(s.dtype) or isinstance(s.dtype, pd.BooleanDtype):
            out[c] = s.astype("boolean")
        elif pd.api.types.is_datetime64_any_dtype(s.dtype):
            out[c] = s.astype("datetime64[ns, Asia/Shanghai]" if getattr(s.dt, "tz", None) else "datetime64[ns]")
        else:
            out[c] = s.astype("float64")
    return out.reset_index(drop=True)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_round_trip(ledgers, books, lang, tmp_path):
    path = write_ledger(ledgers, tmp_path / "rt.xlsx", lang=lang, unmask=True)
    back = read_ledger(path)
    assert set(back) == set(ledgers)
    for key, frame in ledgers.items():
        assert list(back[key].columns) == list(frame.columns), key
        money = [c for c in frame.columns if c in MONEY_COLUMNS]  # written to the cent
        frame = frame.assign(**{c: frame[c].astype(float).round(2) for c in money})
        pd.testing.assert_frame_equal(_norm(back[key]), _norm(frame), check_exact=False, rtol=1e-12, obj=key)
    meta = back["summary"].attrs
    for k in ("week", "start", "end", "messages", "version"):
        assert meta[k] == ledgers["summary"].attrs[k]
    assert meta["masked"] is False and meta["time_zone"] == "Asia/Shanghai"


def test_reads_a_hand_kept_ledger(tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.title = "质量监测"
    ws["A1"] = "2025年第18周 质量监测（手工）"
    ws.append([])
    ws.append(["周次", "平台", "运营商", "提交量", "成功", "到达率", "备注"])
    ws.append(["2025-W18", "阿里云", "中国移动", "1,000", 985, "98.5%", "ok"])
    ws.append(["2025-W18", "aliyun", "合计", 2000, 1900, 0.95, None])
    ws.append([])
    ws.append(["另: 下周复核"])
    wb.save(tmp_path / "hand.xlsx")
    q = read_ledger(tmp_path / "hand.xlsx")["quality"]
    assert list(q.columns) == ["week", "vendor", "carrier", "submitted", "delivered", "arrival_rate", "备注"]
    assert q["submitted"].tolist() == [1000, 2000]
    assert q["arrival_rate"].tolist() == pytest.approx([0.985, 0.95])
    assert q["carrier"].tolist() == ["China Mobile", "All"]


def test_failed_write_leaves_the_old_workbook(ledgers, tmp_path, monkeypatch):
    path = write_ledger(ledgers, tmp_path / "ledger.xlsx")
    before = path.read_bytes()

    def broken(self, data):  # the disk fills halfway through the workbook's bytes
        import errno

        with open(self, "wb") as fh:
            fh.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", broken)
    with pytest.raises(OSError, match=f"{path}: no space left on the disk"):
        write_ledger(ledgers, path, lang="en")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ledger.xlsx"]


def test_history_stacks_weeks(demo_inputs, tmp_path):
    paths = []
    for week in ("2025-W17", "2025-W18", "2025-W18"):
        led = weekly_ledgers(demo_inputs.log, week, bill=demo_inputs.bill)
        paths.append(write_ledger(led, tmp_path / f"{week}-{len(paths)}.xlsx", lang="en" if len(paths) else "zh"))
    hist = ledger_history(paths)
    q = hist["quality"]
    assert sorted(q["week"].unique()) == ["2025-W17", "2025-W18"]
    n18 = len(weekly_ledgers(demo_inputs.log, "2025-W18")["quality"])
    assert (q["week"] == "2025-W18").sum() == n18  # the repeated week is kept once
    assert np.all(np.diff(q["week"].str[-2:].astype(int)) >= 0)


def test_styled_tables_for_notebooks(ledgers):
    from analysis import styled

    q = ledgers["quality"]
    html = styled(q, lang="zh", columns=["vendor", "carrier", "arrival_rate", "meets_target"]).to_html()
    first = q.iloc[0]
    assert "到达率" in html and "合计" in html
    assert f"{first['arrival_rate']:.2%}" in html
    assert ">否<" in html or ">是<" in html
    rf = ledgers["repeat_failures"]
    shown = styled(rf, lang="en").to_html()
    assert rf["phone"].iloc[0] not in shown and "****" in shown
    # template text wraps (Chinese between characters) by a rule that outranks the table's
    # one-line rule: scoped to its column under the table's id, not to one cell
    content = ledgers["content"][["template_id", "content", "sent"]]
    html = styled(content, lang="en").to_html()
    import re

    table_id = re.search(r'<table id="(T_\w+)"', html).group(1)
    j = list(content.columns).index("content")
    rule = re.search(rf"#{table_id} td\.col{j} \{{([^}}]*)\}}", html)
    assert rule and "white-space: normal" in rule.group(1) and "word-break: normal" in rule.group(1), html[:600]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_sheet_prints_at_a_legible_scale(books, lang):
    """No sheet is squeezed onto one page wide: each printed page, its repeated key
    columns included, holds at most PAGE_UNITS of column width, and one page fewer would
    not do; a sheet on several pages across repeats its key columns on each."""
    from openpyxl.utils import column_index_from_string, get_column_letter

    from analysis.excel import PAGE_UNITS

    wide = 0
    for ws in load_workbook(books[lang]).worksheets:
        if ws.title in ("概览", "Summary"):
            assert ws.page_setup.fitToWidth == 1  # the page an analyst reads out
            continue
        if ws.max_column < 2 or ws.title in ("图表", "Charts"):
            continue
        widths = [ws.column_dimensions[get_column_letter(j)].width or 10 for j in range(1, ws.max_column + 1)]
        pages = ws.page_setup.fitToWidth
        keys = 0
        if ws.print_title_cols:
            keys = column_index_from_string(ws.print_title_cols.split(":")[1].strip("$"))
        body, key_width = sum(widths) - sum(widths[:keys]), sum(widths[:keys])
        assert body / pages + key_width <= PAGE_UNITS + 1e-9 or pages == 1 and sum(widths) <= PAGE_UNITS, ws.title
        if pages > 1:
            wide += 1
            assert keys >= 1, f"{ws.title}: the row's keys on every page"
            assert body / (pages - 1) + key_width > PAGE_UNITS, f"{ws.title}: one page fewer would do"
    assert wide >= 1  # the quality sheet is one of them


def test_no_count_is_formatted_as_a_rate(ledgers):
    """Every integer column of every ledger table (counts) gets a number format without a
    percent sign: a count of 1,929 never reads 192900.00%."""
    from analysis.excel import number_format

    checked = 0
    for key, frame in ledgers.items():
        if not isinstance(frame, pd.DataFrame):
            continue
        for col in frame.columns:
            s = frame[col]
            if pd.api.types.is_integer_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
                assert "%" not in (number_format(col) or ""), f"{key}.{col}: {number_format(col)}"
                checked += 1
    assert checked >= 20
    assert number_format("linked_a") == "#,##0" and number_format("click_through_a") == "0.00%"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_long_summary_text_wraps_within_the_tables(books, lang):
    """The alert rules and the key points wrap across the tables' width (merged, wrapped,
    the row tall enough) instead of running off the page, which would shrink it to fit."""
    from analysis.excel import SUMMARY_LINE_UNITS, _text_width

    ws = load_workbook(books[lang]).worksheets[0]
    long = [c for row in ws.iter_rows() for c in row if isinstance(c.value, str) and _text_width(c.value) > SUMMARY_LINE_UNITS]
    assert long, "the alert rules are long in both languages"
    merged = {r.coord.split(":")[0]: r for r in ws.merged_cells.ranges}
    for c in long:
        assert c.coordinate in merged and c.alignment.wrap_text, c.value[:60]
        assert ws.row_dimensions[c.row].height >= 15 * 2
