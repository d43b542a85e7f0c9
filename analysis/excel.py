"""Ledger workbooks: write the weekly ledgers to Excel, read them (or hand-kept ones) back.

Workbooks carry Chinese or English headers and values, number formats, colours where a
target is missed, frozen headers, filters, fitted columns and native charts. Phone numbers
are masked unless asked otherwise, and text that starts with ``=``, ``+``, ``-`` or ``@`` is
stored as text, never as a formula. The file is written to a temporary name and moved into
place, so an error never leaves half a workbook.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from openpyxl import Workbook, load_workbook
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.formatting.rule import CellIsRule, DataBarRule, FormulaRule
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from .atomic import write_atomic
from .normalize import mask_phones
from .schema import COLUMN_VALUES, DEFAULT_TZ, FORMULA_START, HEADERS, LABELS, header, label

#: Sheet names per language; ``charts`` holds only derived tables and charts.
SHEET_NAMES = {
    "zh": {"summary": "概览", "quality": "质量监测", "trend": "周趋势", "regions": "运营商省份", "failures": "问题溯源",
           "repeat_failures": "重复失败号码", "content": "内容优化", "billing": "计费对账", "cost": "单位成本", "alerts": "预警",
           "scorecard": "通道测试评分", "plan": "样本量规划", "wording": "文案检查", "send_windows": "发送时段检查",
           "concentration": "客户集中度",
           "charts": "图表"},
    "en": {"summary": "Summary", "quality": "Quality", "trend": "Trend", "regions": "By province", "failures": "Failures",
           "repeat_failures": "Repeat failures", "content": "Content", "billing": "Billing", "cost": "Cost", "alerts": "Alerts",
           "scorecard": "Scorecard", "plan": "Sample plan", "wording": "Wording", "send_windows": "Send windows",
           "concentration": "Concentration",
           "charts": "Charts"},
}
TITLE = {"zh": "短信周报台账", "en": "SMS weekly ledger"}
KEY_POINTS = {"zh": "本周要点", "en": "Key points"}
INPUT_FILES = {"zh": "输入文件与行数核对", "en": "Input files and row accounting"}
YES_NO = {"zh": ("是", "否"), "en": ("Yes", "No")}
#: Front-sheet facts, in order.
SUMMARY_KEYS = ("week", "start", "end", "messages", "inputs", "generated", "version", "time_zone", "masked",
                "alert_rules")

_VOCAB_COLUMNS = {"carrier", "province", "status", "failure_reason", "category", "advice", "billing_mode",
                  "stage", "criterion", "unit", "switch_to", "verdict", "layout", "time_source",
                  "contract_mode", "traffic", "detector", "window", "vendor", "file", "reasons", "currency",
                  "encoding", "vendor_definition"}
#: Vocabulary columns that hold lists: their separator (an event file serves several vendors).
_LISTS = {"reasons": "; ", "vendor": ", "}
_INT = {"submitted", "delivered", "originals", "complaints", "unsubscribes", "failed", "failures", "messages",
        "sent", "blocked", "linked", "clicks", "clicked", "conversions", "segments_submitted", "segments_delivered",
        "gap_segments", "billed_count", "billed_segments", "affected", "rows_read", "loaded", "rejected", "duplicates", "hour",
        "best_send_hour", "weekday", "rounds", "customers", "head_customers", "window_days",
        "resends", "user_retries"}
_TIME = {"first_failure", "last_failure", "period", "began"}
_ZONED = {"first_failure", "last_failure"}  # the others are local period starts
_BOOL = {"meets_target", "in_control", "inverted", "signature", "unsubscribe", "masked"}
MONEY_COLUMNS = {"gap_amount", "overcharge", "export_amount", "billed_amount", "amount_submission", "amount_delivery", "cost"}

_RED = PatternFill("solid", start_color="FFC7CE", end_color="FFC7CE")
_AMBER = PatternFill("solid", start_color="FFEB9C", end_color="FFEB9C")
_CENTER = Alignment(horizontal="center")
_GREEN = PatternFill("solid", start_color="C6EFCE", end_color="C6EFCE")
_HEADER = PatternFill("solid", start_color="DDEBF7", end_color="DDEBF7")


_REVERSE_VALUES = {v: k for lang in ("en", "zh") for k, v in LABELS[lang].items()}
_REVERSE_HEADERS = {v: k for table in (LABELS, HEADERS) for lang in ("en", "zh") for k, v in table[lang].items()}
_REVERSE_SHEETS = {v: k for names in SHEET_NAMES.values() for k, v in names.items()}


#: Send hours read as clock times: 15 shows as 15:00.
HOUR_FORMAT = '00":00"'
#: p-values: three places, and "< 0.001" below that (no scientific notation).
P_FORMAT = '[<0.001]"< 0.001";0.000'


def number_format(column: str) -> str | None:
    """Excel number format of a ledger column, from its name."""
    if column in _INT:
        return HOUR_FORMAT if column in {"hour", "best_send_hour"} else "0" if column == "weekday" else "#,##0"
    if column in _TIME:
        return "yyyy-mm-dd hh:mm" if column in _ZONED else "yyyy-mm-dd"
    if column.startswith("bill_vs_"):
        return "#,##0"
    if column.endswith("_pp"):
        return "+0.00;-0.00;0.00"
    if column in {"z", "cohens_h"}:
        return "0.00"
    if column == "value":  # a trial criterion's own unit (count, rate, points, factor)
        return "General"
    if column in {"p_value", "q_value"}:
        return P_FORMAT
    if column == "unit_price" or column.startswith("cost_per_"):
        return "0.0000"
    if column.startswith(("amount", "billed_amount", "cost")) or column in {"gap_amount", "overcharge", "export_amount"}:
        return "#,##0.00"
    if column.endswith("_s"):
        return "#,##0.0"
    if column.startswith(("delivered_", "rounds", "linked_", "clicked_")) or column in {
            "needed", "messages_needed", "all_arrive_needed"}:
        return "#,##0"
    if column.endswith(("_rate", "_low", "_high", "_gap", "_a", "_b", "_arrival", "_share")) or column in {
        "lift", "low", "high", "expected", "confidence",
        "receipt_coverage", "receipt_time_coverage", "share", "share_of_week", "target", "baseline", "threshold"}:
        return "0.00%"
    return None


# --------------------------------------------------------------------------- writing


def write_ledger(
    ledgers: dict[str, pd.DataFrame], path: str | Path, *, lang: str = "zh", unmask: bool = False
) -> Path:
    """Write :func:`analysis.weekly_ledgers` frames to an Excel workbook.

    Parameters
    ----------
    ledgers : dict of frames keyed by sheet (``summary``, ``quality``, ``trend``,
        ``regions``, ``failures``, ``repeat_failures``, ``content``, ``billing``,
        ``cost``, ``alerts``; or a trial's ``scorecard``, ``plan``, ``wording``,
        ``send_windows``).
    path : the ``.xlsx`` to write (replaced atomically, readable by the team: the
        usual permissions of a new file).
    lang : ``zh`` (default) or ``en``: every sheet name, header, value, note and chart
        label in that language.
    unmask : write phone numbers in full (they are masked, ``138****0000``, by default).

    Returns
    -------
    Path of the workbook.
    """
    if lang not in SHEET_NAMES:
        raise ValueError(f"lang must be one of {', '.join(SHEET_NAMES)}, not {lang!r}")
    path = Path(path)
    names = SHEET_NAMES[lang]
    wb = Workbook()
    wb.remove(wb.active)
    meta = {**ledgers["summary"].attrs, "masked": not unmask} if "summary" in ledgers else {"masked": not unmask}
    meta.setdefault("time_zone", DEFAULT_TZ)
    for key in [k for k in names if k in ledgers and k != "charts"]:  # sheets in their set order
        frame = ledgers[key]
        ws = wb.create_sheet(names[key])
        if "phone" in frame and not unmask:
            frame = frame.assign(phone=mask_phones(frame["phone"]))
        if key == "summary":
            header_row, more_headers = _write_summary(ws, frame, meta, ledgers, lang)
        else:
            header_row, more_headers = 1, []
            _write_table(ws, frame, lang, header_row)
        _decorate(ws, frame, key, header_row, more_headers)
    _write_charts(wb, ledgers, lang)
    book = io.BytesIO()  # zipped in memory: a full disk cannot leave openpyxl's archive half-closed
    wb.save(book)
    return write_atomic(path, book.getvalue())


def _write_summary(ws, frame: pd.DataFrame, meta: dict, ledgers: dict, lang: str) -> tuple[int, list[int]]:
    """The first sheet: the week's facts, its key points and each vendor's headline, then
    the input files with their row accounting (the table that reads back as ``summary``).
    Returns the input table's header row and the headline table's."""
    from .summary import headline, key_points

    ws.cell(1, 1, f"{TITLE[lang]} · {meta.get('week', '')}".strip(" ·")).font = Font(bold=True, size=14)
    head = headline(ledgers) if "quality" in ledgers and "summary" in ledgers else None
    # long text (the alert rules, the key points) wraps within the tables' width instead
    # of running off to the right, which would shrink the printed page to fit it
    span = max(len(frame.columns), len(head.columns) if head is not None else 0, 2)

    def wrapped(row: int, first: int, value) -> None:
        cell = ws.cell(row, first)
        _set(cell, value)
        cell.alignment = Alignment(horizontal="left")
        if isinstance(value, str) and _text_width(value) > SUMMARY_LINE_UNITS:
            ws.merge_cells(start_row=row, start_column=first, end_row=row, end_column=span)
            ws.row_dimensions[row].height = 15 * int(np.ceil(_text_width(value) / SUMMARY_LINE_UNITS))
            for c in ws[row][:first]:  # the text and its label at the top of the taller row
                c.alignment = Alignment(horizontal="left", vertical="top", wrap_text=c.column == first)

    row = 3
    for key in SUMMARY_KEYS:
        if key not in meta:
            continue
        ws.cell(row, 1, LABELS[lang][key]).font = Font(bold=True)
        value = meta[key]
        if isinstance(value, (bool, np.bool_)):
            value = YES_NO[lang][0 if value else 1]
        if key == "alert_rules" and isinstance(value, dict):
            from .alerts import rules_text

            value = rules_text(lang, **value)
        wrapped(row, 2, value)
        if key == "messages":
            ws.cell(row, 2).number_format = "#,##0"
        row += 1
    if head is not None:
        row += 1
        ws.cell(row, 1, KEY_POINTS[lang]).font = Font(bold=True, size=12)
        for point in key_points(ledgers, lang):
            row += 1
            wrapped(row, 1, f"• {point}")
        row += 2
        _write_table(ws, head, lang, row)
        headline_row = row
        row += len(head) + 2
    ws.cell(row, 1, INPUT_FILES[lang]).font = Font(bold=True, size=12)
    header_row = row + 1
    _write_table(ws, frame, lang, header_row)
    return header_row, [headline_row] if head is not None else []


def _write_table(ws, frame: pd.DataFrame, lang: str, header_row: int) -> None:
    ws.row_dimensions[header_row].height = 32  # room for a header on two lines
    for j, col in enumerate(frame.columns, start=1):
        c = ws.cell(header_row, j, header(col, lang))
        c.font = Font(bold=True)
        c.fill = _HEADER
        c.alignment = Alignment(wrap_text=True, vertical="center")
        values = _display(frame[col], col, lang)
        fmt = _row_formats(frame, col)
        for i, v in enumerate(values, start=header_row + 1):
            cell = ws.cell(i, j)
            _set(cell, v)
            f = fmt[i - header_row - 1] if isinstance(fmt, list) else fmt
            if f and v is not None:
                cell.number_format = f
            if col in _BOOL or col in {"verdict", "unit"}:
                cell.alignment = _CENTER


def _row_formats(frame: pd.DataFrame, col: str):
    """The number format of a column, or one per row where the unit varies (a trial's
    value and threshold are counts, rates, points, factors or p-values)."""
    if col in {"value", "threshold"} and "unit" in frame:
        return [UNIT_FORMATS.get(u, "General") for u in frame["unit"].astype(object)]
    if col in _TIME and col not in _ZONED:
        t = pd.to_datetime(frame[col])
        has_time = t.notna().any() and (t.dropna().dt.tz_localize(None).dt.normalize()
                                        != t.dropna().dt.tz_localize(None)).any()
        return "yyyy-mm-dd hh:mm" if has_time else "yyyy-mm-dd"
    return number_format(col)


#: Formats of a trial criterion's value and threshold by their ``unit``.
UNIT_FORMATS = {"count": "#,##0", "rate": "0.0%", "points": '0.0" pp"', "factor": '0.00"×"', "p": P_FORMAT}


def _set(cell, value) -> None:
    """Set a cell; text that Excel could take for a formula stays text."""
    cell.value = value
    if isinstance(value, str) and value.startswith(FORMULA_START):
        cell.data_type = "s"
        cell.quotePrefix = True


def _display(s: pd.Series, col: str, lang: str) -> list:
    """A column as the Python values written to the sheet: labels in ``lang`` for
    vocabularies, 是/否 for yes-no columns, money rounded to cents (never -0.00)."""
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_localize(None)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return [None if pd.isna(v) else v.to_pydatetime() for v in s]
    labels = LABELS[lang]
    if col in _VOCAB_COLUMNS:
        if col in _LISTS:
            sep = _LISTS[col]
            return [None if pd.isna(v) else sep.join(labels.get(x, x) for x in str(v).split(sep)) for v in s.astype(object)]
        if col == "file":
            return [None if pd.isna(v) else labels.get(str(v), Path(str(v)).name) for v in s.astype(object)]
        own = {k: pair[0 if lang == "zh" else 1] for k, pair in COLUMN_VALUES.get(col, {}).items()}
        return [None if pd.isna(v) else own.get(str(v), labels.get(str(v), str(v))) for v in s.astype(object)]
    if col == "city" and lang == "zh":
        from .enrichment import city_labels

        return [None if pd.isna(v) else city_labels().get(str(v), str(v)) for v in s.astype(object)]
    yes, no = YES_NO[lang]
    is_bool = col in _BOOL or pd.api.types.is_bool_dtype(s.dtype)
    out = []
    for v in s.astype(object):
        if v is None or v is pd.NA or (isinstance(v, float) and not np.isfinite(v)):
            out.append(None)
        elif is_bool and isinstance(v, (np.bool_, bool)):
            out.append(yes if v else no)
        elif isinstance(v, np.integer) or isinstance(v, int) and not isinstance(v, bool):
            out.append(int(v))
        elif isinstance(v, (np.floating, float)):
            out.append(float(np.round(float(v), 2)) + 0.0 if col in MONEY_COLUMNS else float(v))
        elif isinstance(v, pd.Timestamp):
            out.append(v.tz_localize(None).to_pydatetime() if v.tzinfo else v.to_pydatetime())
        else:
            out.append(v)
    return out


def _decorate(ws, frame: pd.DataFrame, key: str, header_row: int, more_headers=()) -> None:
    """Freeze, filter, fit widths, set up printing and colour what misses a target;
    ``more_headers``: the header rows of other tables on the sheet (their height fitted too)."""
    n = len(frame)
    ncol = max(len(frame.columns), 1)
    last = header_row + max(n, 1)
    ws.freeze_panes = ws.cell(header_row + 1, 1)
    ws.auto_filter.ref = f"A{header_row}:{get_column_letter(ncol)}{last}"
    for j, col in enumerate(frame.columns, start=1):
        letter = get_column_letter(j)
        body = [ws.cell(r, j).value for r in range(header_row + 1, min(last, header_row + 500) + 1)]
        width = max([_width(v, number_format(col)) for v in body] + [_header_width(ws.cell(header_row, j).value)],
                    default=8)
        ws.column_dimensions[letter].width = min(max(width + 2, 10), 60)
    if key == "summary":
        ws.column_dimensions["A"].width = max(ws.column_dimensions["A"].width, 24)
        ws.column_dimensions["B"].width = max(ws.column_dimensions["B"].width, 28)
    for row in (header_row, *more_headers):  # a header wraps at words: tall enough for all its lines
        lines = max(np.ceil(_text_width(str(c.value)) / max((ws.column_dimensions[c.column_letter].width or 10) - 1, 1))
                    for c in ws[row] if c.value is not None)
        ws.row_dimensions[row].height = max(32, 13 * int(lines) + 6)
    # print: landscape, the header row on every page, and as many pages wide as a legible
    # scale needs, the leading key columns (week, vendor, carrier …) repeated on each
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1 if key == "summary" else _pages_wide(ws, frame)  # the summary: one page
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = f"{header_row}:{header_row}"
    keys = _key_columns(frame)
    if ws.page_setup.fitToWidth > 1 and keys:
        ws.print_title_cols = f"A:{get_column_letter(keys)}"
    if not n:
        return
    col = {c: get_column_letter(j) for j, c in enumerate(frame.columns, start=1)}
    rows = f"{header_row + 1}:{last}"

    def span(c):
        a, b = rows.split(":")
        return f"{col[c]}{a}:{col[c]}{b}"

    first = header_row + 1
    target = float(frame["target"].iloc[0]) if "target" in frame and frame["target"].notna().any() else 0.98
    if "arrival_rate" in col and key in {"quality", "content", "trend", "regions"}:
        ws.conditional_formatting.add(span("arrival_rate"), CellIsRule(operator="lessThan", formula=[str(target)], fill=_RED))
    no = YES_NO["zh"][1], YES_NO["en"][1]
    for c in ("meets_target", "in_control"):
        if c in col:
            ws.conditional_formatting.add(span(c), FormulaRule(
                formula=[f'OR({col[c]}{first}="{no[0]}",{col[c]}{first}="{no[1]}")'], fill=_RED))
    if "verdict" in col:
        for value, fill in (("fail", _RED), ("insufficient", _AMBER), ("pass", _GREEN)):
            ws.conditional_formatting.add(span("verdict"), FormulaRule(
                formula=[f'OR({col["verdict"]}{first}="{label(value, "zh")}",{col["verdict"]}{first}="{label(value, "en")}")'],
                fill=fill))
    if "blocked_rate" in col:
        ws.conditional_formatting.add(span("blocked_rate"), CellIsRule(operator="greaterThan", formula=["0.05"], fill=_RED))
    if "overcharge" in col:
        ws.conditional_formatting.add(span("overcharge"), CellIsRule(operator="greaterThan", formula=["0.005"], fill=_RED))
    if "diff_pp" in col:
        ws.conditional_formatting.add(span("diff_pp"), CellIsRule(operator="lessThan", formula=["-10"], fill=_RED))
        ws.conditional_formatting.add(span("diff_pp"), CellIsRule(operator="between", formula=["-10", "0"], fill=_AMBER))
    if key == "failures" and "failed" in col:
        ws.conditional_formatting.add(span("failed"), DataBarRule(start_type="min", end_type="max", color="F4B183"))


#: Column-width units one landscape A4 page holds at a legible scale (about 75%).
PAGE_UNITS = 170
#: Text on the summary sheet longer than this (in column-width units) wraps across the
#: width of its tables.
SUMMARY_LINE_UNITS = 140


def _key_columns(frame: pd.DataFrame) -> int:
    """How many leading columns name the row (text, not numbers): at most three."""
    n = 0
    for c in list(frame.columns)[:3]:
        if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c]):
            break
        n += 1
    return n


def _pages_wide(ws, frame: pd.DataFrame) -> int:
    """Pages across a sheet prints on: one when its columns fit :data:`PAGE_UNITS`,
    else enough that each page, the repeated key columns included, fits it."""
    widths = [ws.column_dimensions[get_column_letter(j)].width or 10 for j in range(1, ws.max_column + 1)]
    if sum(widths) <= PAGE_UNITS:
        return 1
    keys = sum(widths[:_key_columns(frame)])
    return int(np.ceil((sum(widths) - keys) / max(PAGE_UNITS - keys, PAGE_UNITS / 2)))


def _text_width(text: str) -> float:
    """Display width of text: CJK characters are about twice as wide as Latin ones."""
    return sum(2.2 if unicodedata.east_asian_width(ch) in "WF" else 1.1 for ch in text)


def _header_width(value) -> float:
    """A header may wrap, but at word boundaries only: its longest word must fit."""
    if value is None:
        return 0
    text = str(value)
    words = text.split() if " " in text else [text]
    longest = max((_text_width(w) for w in words), default=0)
    return max(longest, min(_text_width(text) / 2, 30))


def _width(value, fmt: str | None) -> float:
    if value is None:
        return 0
    if isinstance(value, float):
        return 9 if fmt and "%" in fmt else len(f"{value:,.2f}")
    if isinstance(value, datetime):
        return 16
    return _text_width(str(value)[:80])


def _write_charts(wb: Workbook, ledgers: dict[str, pd.DataFrame], lang: str) -> None:
    """Native charts: weekly arrival by carrier against the target, and the week's
    failure reasons. Every label goes through the formula-safe writer."""
    trend = ledgers.get("trend")
    failures = ledgers.get("failures")
    if (trend is None or trend.empty) and (failures is None or failures.empty):
        return
    ws = wb.create_sheet(SHEET_NAMES[lang]["charts"])
    labels = LABELS[lang]
    charts = []
    if trend is not None and not trend.empty:
        wide = trend.pivot_table(index="week", columns="carrier", values="arrival_rate", aggfunc="first", observed=True)
        target = float(ledgers["quality"]["target"].iloc[0]) if "quality" in ledgers and len(ledgers["quality"]) \
            else 0.98
        heads = [*(labels.get(c, str(c)) for c in wide.columns), f"{label('target', lang)} {target:.0%}"]
        _set(ws.cell(1, 1), labels["week"])
        for j, name in enumerate(heads, start=2):
            _set(ws.cell(1, j), name)
            ws.cell(1, j).font = Font(bold=True)
        for i, (week, row) in enumerate(wide.iterrows(), start=2):
            _set(ws.cell(i, 1), week)
            for j, v in enumerate([*row, target], start=2):
                c = ws.cell(i, j, None if pd.isna(v) else float(v))
                c.number_format = "0.0%"
        chart = LineChart()
        chart.title = "每周到达率（按运营商，含 98% 目标线）" if lang == "zh" else "Weekly arrival by carrier, with the 98% target"
        chart.y_axis.title = labels["arrival_rate"]
        chart.y_axis.number_format = "0%"
        chart.x_axis.title = labels["week"]
        chart.height, chart.width = 9, 18
        data = Reference(ws, min_col=2, max_col=1 + len(heads), min_row=1, max_row=len(wide) + 1)
        chart.add_data(data, titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=1, min_row=2, max_row=len(wide) + 1))
        for series in chart.series:
            series.smooth = False  # straight lines: a smoothed line overshoots between weeks
        target_line = chart.series[-1]
        target_line.graphicalProperties.line.dashStyle = "dash"
        target_line.graphicalProperties.line.solidFill = "C00000"
        lowest = float(np.nanmin(wide.to_numpy(dtype=float))) if wide.notna().any().any() else target
        chart.y_axis.scaling.min = max(0.0, np.floor(min(lowest, target) * 10 - 0.5) / 10)
        chart.y_axis.scaling.max = 1.0
        charts.append(chart)
    if failures is not None and not failures.empty:
        reasons = failures.groupby("failure_reason", observed=True)["failed"].sum().sort_values(ascending=False)
        top = ws.max_row + 2 if ws.max_row > 1 else 1
        _set(ws.cell(top, 1), labels["failure_reason"])
        _set(ws.cell(top, 2), header("failed", lang))
        for i, (reason, n) in enumerate(reasons.items(), start=top + 1):
            _set(ws.cell(i, 1), labels.get(reason, reason))
            ws.cell(i, 2, int(n)).number_format = "#,##0"
        bar = BarChart()
        bar.type = "bar"
        bar.title = "本周失败原因" if lang == "zh" else "This week's failure reasons"
        bar.height, bar.width = 9, 18
        bar.add_data(Reference(ws, min_col=2, min_row=top, max_row=top + len(reasons)), titles_from_data=True)
        bar.set_categories(Reference(ws, min_col=1, min_row=top + 1, max_row=top + len(reasons)))
        bar.legend = None
        charts.append(bar)
    row = ws.max_row + 2  # the charts below the tables they draw, one under the other
    for chart in charts:
        ws.add_chart(chart, f"A{row}")
        row += 20
    ws.column_dimensions["A"].width = 24
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True


# --------------------------------------------------------------------------- reading


def read_ledger(path: str | Path) -> dict[str, pd.DataFrame]:
    """Read a ledger workbook (written by this project, in either language, or kept by
    hand in the same layout) back into tidy frames.

    Sheets and headers are recognised by their Chinese or English labels (or the
    snake_case names); the header row is the first row that holds at least two known
    column labels, and the table ends at the first empty row. Values shown in Chinese or
    English (carriers, provinces, reasons, ``合计`` …) come back as the package's keys;
    percentages typed as text (``"98.5%"``) become fractions.

    Returns
    -------
    dict of DataFrames keyed ``summary``, ``quality``, ``trend``, ``failures``,
    ``repeat_failures``, ``content``, ``billing``, ``alerts`` (those present). The summary's
    facts (week, period, inputs, version, time zone …) are in ``summary.attrs``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such workbook")
    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        sheets = {}
        meta: dict = {}
        for ws in wb.worksheets:
            key = _REVERSE_SHEETS.get(str(ws.title).strip())
            if key is None or key == "charts":
                continue
            rows = [list(r) for r in ws.iter_rows(values_only=True)]
            # the summary sheet ends with the input files' table, after the key points
            header = _header_row(rows, naming="file" if key == "summary" else None)
            if header is None:
                raise ValueError(f"{path}: sheet {ws.title!r} has no header row with known column labels")
            if key == "summary":
                meta = _facts(rows[:header])
            sheets[key] = _table(rows, header)
    finally:
        wb.close()
    tz = meta.get("time_zone") or DEFAULT_TZ
    out = {key: _typed(frame, tz) for key, frame in sheets.items()}
    if "summary" in out:
        out["summary"].attrs = meta
    return out


def ledger_history(paths: Iterable[str | Path]) -> dict[str, pd.DataFrame]:
    """Stack many weekly workbooks into one frame per sheet, for trends.

    Where two workbooks hold the same week, the one read later wins.

    Returns
    -------
    dict keyed as :func:`read_ledger`; each frame stacks the workbooks, sorted by
    ``week`` (the summary gets a ``week`` column from each workbook's facts).
    """
    parts: dict[str, list[pd.DataFrame]] = {}
    for p in paths:
        book = read_ledger(p)
        week = book["summary"].attrs.get("week") if "summary" in book else None
        for key, frame in book.items():
            if "week" not in frame:
                frame = frame.assign(week=week)
            parts.setdefault(key, []).append(frame)
    out = {}
    for key, frames in parts.items():
        frames = [f for f in frames if len(f)] or frames[:1]
        weeks_seen: set = set()
        kept = []
        for f in reversed(frames):  # the latest workbook of a week wins
            w = set(f["week"].dropna().astype(str))
            if w and w <= weeks_seen:
                continue
            kept.append(f[~f["week"].astype(str).isin(weeks_seen)])
            weeks_seen |= w
        stacked = pd.concat(kept[::-1], ignore_index=True)
        out[key] = stacked.sort_values("week", kind="stable").reset_index(drop=True)
    return out


def _header_row(rows: list[list], *, naming: str | None = None) -> int | None:
    """The first row among the first 80 that holds at least two known column labels (and
    with ``naming``, that column's label)."""
    for i, row in enumerate(rows[:80]):
        keys = {_REVERSE_HEADERS.get(v.strip(), v.strip()) for v in row if isinstance(v, str)}
        known = sum(1 for v in row if isinstance(v, str) and (v.strip() in _REVERSE_HEADERS or v.strip() in _ALL_KEYS))
        if known >= 2 and (naming is None or naming in keys):
            return i
    return None


_ALL_KEYS = set(LABELS["en"])


def _facts(rows: list[list]) -> dict:
    meta = {}
    for row in rows:
        if len(row) >= 2 and isinstance(row[0], str):
            key = _REVERSE_HEADERS.get(row[0].strip(), row[0].strip())
            if key in SUMMARY_KEYS:
                value = row[1]
                meta[key] = value.isoformat() if isinstance(value, datetime) else value
                if key == "masked":
                    meta[key] = _bool(value)
    if "messages" in meta and meta["messages"] is not None:
        meta["messages"] = int(meta["messages"])
    return meta


def _table(rows: list[list], header: int) -> pd.DataFrame:
    heads = rows[header]
    keep = [j for j, h in enumerate(heads) if h is not None and str(h).strip()]
    names = [_REVERSE_HEADERS.get(str(heads[j]).strip(), str(heads[j]).strip()) for j in keep]
    body = []
    for row in rows[header + 1:]:
        cells = [row[j] if j < len(row) else None for j in keep]
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in cells):
            break
        body.append(cells)
    return pd.DataFrame(body, columns=names, dtype=object)


def _typed(frame: pd.DataFrame, tz: str) -> pd.DataFrame:
    out = {}
    for col in frame.columns:
        s = frame[col]
        if col in _VOCAB_COLUMNS:
            if col in _LISTS:
                sep = _LISTS[col]
                s = s.map(lambda v, sep=sep: None if v is None else sep.join(_REVERSE_VALUES.get(x, x)
                                                                              for x in str(v).split(sep)))
            else:
                own = {label: k for k, pair in COLUMN_VALUES.get(col, {}).items() for label in pair}
                s = s.map(lambda v, own=own: None if v is None else own.get(str(v).strip(),
                                                                            _REVERSE_VALUES.get(str(v).strip(), v)))
            out[col] = s.astype(object).where(s.notna(), None)
        elif col in _TIME:
            t = pd.to_datetime(s, errors="coerce")
            out[col] = t.dt.tz_localize(tz) if col in _ZONED else t
        elif col in _BOOL:
            out[col] = s.map(_bool).astype("boolean")
        elif col in _INT:
            out[col] = pd.to_numeric(s.map(_number), errors="coerce").astype("Int64")
        elif number_format(col) is not None:
            out[col] = pd.to_numeric(s.map(_number), errors="coerce").astype(float)
        elif s.map(lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))).all() and s.notna().any():
            out[col] = pd.to_numeric(s, errors="coerce").astype(float)
        else:
            out[col] = s.map(lambda v: v.strip() if isinstance(v, str) else v).astype(object)
    return pd.DataFrame(out, index=frame.index)


def _number(v):
    if isinstance(v, str):
        t = v.strip().replace(",", "")
        if not t:
            return None
        if t.endswith("%"):
            return float(t[:-1]) / 100
        return t
    return v


def _bool(v):
    if v is None:
        return pd.NA
    if isinstance(v, str):
        return v.strip().upper() in {"TRUE", "是", "Y", "YES", "1"}
    return bool(v)


# --------------------------------------------------------------------------- notebooks

def _as_text(value, fmt: str | None) -> str:
    """A cell's value as the workbook would show it under ``fmt``."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M" if fmt and "hh" in fmt else "%Y-%m-%d")
    if fmt == P_FORMAT:
        return "< 0.001" if value < 0.001 else f"{value:.3f}"
    if fmt == HOUR_FORMAT:
        return f"{int(value):02d}:00"
    if fmt and fmt.endswith("%"):
        places = len(fmt.split(".")[1].rstrip("%")) if "." in fmt else 0
        return f"{value:.{places}%}"
    if fmt and '" pp"' in fmt:
        return f"{value:.1f} pp"
    if fmt and "×" in fmt:
        return f"{value:.2f}×"
    if fmt in {"#,##0", "0"}:
        return f"{value:,.0f}" if fmt == "#,##0" else f"{value:.0f}"
    if fmt == "#,##0.00":
        return f"{value:,.2f}"
    if fmt == "#,##0.0":
        return f"{value:,.1f}"
    if fmt == "0.0000":
        return f"{value:.4f}"
    if fmt in {"+0.00;-0.00;0.00"}:
        return f"{value:+.2f}"
    if fmt == "0.00":
        return f"{value:.2f}"
    return f"{value:,.4g}" if isinstance(value, float) else str(value)


def styled(frame: pd.DataFrame, *, lang: str = "zh", columns=None, mask: bool = True):
    """A ledger frame ready to show in a notebook or report: headers and values in
    ``lang``, formatted as the workbook formats them (percentages, thousands, 是/否,
    ``< 0.001``, money to the cent), no index, phones masked, every text escaped (an
    export's ``<script>`` shows as text, never runs).

    Returns a pandas ``Styler``.
    """
    full = frame  # a trial's value is formatted by its unit even when the unit is not shown
    frame = frame if columns is None else frame[list(columns)]
    if "phone" in frame and mask:
        frame = frame.assign(phone=mask_phones(frame["phone"]))
    shown = {}
    for c in frame.columns:
        values = _display(frame[c], c, lang)
        fmts = _row_formats(full, c)
        shown[header(c, lang)] = [_as_text(v, fmts[i] if isinstance(fmts, list) else fmts)
                                  for i, v in enumerate(values)]
    table = pd.DataFrame(shown, index=frame.index, dtype=object)
    numbers = [header(c, lang) for c in frame.columns
               if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]
    text = [h for h in table.columns if h not in numbers]
    prose = [header(c, lang) for c in frame.columns if c in PROSE_COLUMNS]
    styler = (table.style.format(escape="html").format_index(escape="html", axis=1).hide(axis="index")
              .set_table_styles(TABLE_CSS).set_properties(subset=numbers, **{"text-align": "right"})
              .set_properties(subset=text, **{"text-align": "left"}))
    # column-scoped rules (``#T td.colN``) outrank the table's ``td`` rule; per-cell ones do not
    return styler.set_table_styles({h: [{"selector": "td", "props": PROSE_CSS}] for h in prose}, overwrite=False) \
        if prose else styler


#: Report tables: every cell on one line (no date or name broken in two, ``keep-all``)
#: except prose, which wraps within 14 to 28em (Chinese text between characters, a long
#: link anywhere); numbers right-aligned. A table wider than the page scrolls.
TABLE_CSS = [
    {"selector": "th", "props": "white-space: nowrap; text-align: center;"},
    {"selector": "td", "props": "white-space: nowrap; word-break: keep-all; overflow-wrap: break-word; max-width: 28em;"},
]
PROSE_CSS = "white-space: normal; min-width: 14em; max-width: 28em; word-break: normal; overflow-wrap: anywhere;"
#: Columns of sentences (notes, advice, template text): they wrap.
PROSE_COLUMNS = {"content", "note", "issues", "advice", "reasons", "top_codes", "rule"}
