"""Ledger workbooks: write the weekly ledgers to Excel, read them (or hand-kept ones) back.

Workbooks carry Chinese or English headers and values, number formats, colours where a
target is missed, frozen headers, filters, fitted columns and native charts. Phone numbers
are masked unless asked otherwise, and text that starts with ``=``, ``+``, ``-`` or ``@`` is
stored as text, never as a formula. The file is written to a temporary name and moved into
place, so an error never leaves half a workbook.
"""

from __future__ import annotations

import os
import tempfile
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

from .normalize import mask_phones
from .schema import DEFAULT_TZ, LABELS

#: Sheet names per language; ``charts`` holds only derived tables and charts.
SHEET_NAMES = {
    "zh": {"summary": "概览", "quality": "质量监测", "trend": "周趋势", "failures": "问题溯源",
           "repeat_failures": "重复失败号码", "content": "内容优化", "billing": "计费对账", "cost": "单位成本", "alerts": "预警",
           "scorecard": "通道测试评分", "plan": "样本量规划", "wording": "文案检查", "send_windows": "发送时段检查",
           "concentration": "客户集中度",
           "charts": "图表"},
    "en": {"summary": "Summary", "quality": "Quality", "trend": "Trend", "failures": "Failures",
           "repeat_failures": "Repeat failures", "content": "Content", "billing": "Billing", "cost": "Cost", "alerts": "Alerts",
           "scorecard": "Scorecard", "plan": "Sample plan", "wording": "Wording", "send_windows": "Send windows",
           "concentration": "Concentration",
           "charts": "Charts"},
}
TITLE = {"zh": "短信台账", "en": "SMS ledger"}
#: Front-sheet facts, in order.
SUMMARY_KEYS = ("week", "start", "end", "messages", "inputs", "generated", "version", "time_zone", "masked")

_VOCAB_COLUMNS = {"carrier", "province", "status", "failure_reason", "category", "advice", "billing_mode",
                  "stage", "criterion", "evidence", "rule", "switch_to",
                  "contract_mode", "traffic", "detector", "window", "vendor", "file", "reasons"}
_INT = {"submitted", "delivered", "originals", "complaints", "unsubscribes", "failed", "failures", "messages",
        "sent", "blocked", "clicks", "opened", "conversions", "segments_submitted", "segments_delivered",
        "gap_segments", "billed_count", "billed_segments", "affected", "rows_read", "loaded", "rejected", "duplicates", "hour",
        "best_send_hour", "weekday", "rounds", "customers", "head_customers"}
_TIME = {"first_failure", "last_failure", "period", "began"}
_ZONED = {"first_failure", "last_failure"}  # the others are local period starts
_BOOL = {"meets_target", "in_control", "passed", "inverted"}
_TEXT_START = ("=", "+", "-", "@")

_RED = PatternFill("solid", start_color="FFC7CE", end_color="FFC7CE")
_AMBER = PatternFill("solid", start_color="FFEB9C", end_color="FFEB9C")
_HEADER = PatternFill("solid", start_color="DDEBF7", end_color="DDEBF7")


_REVERSE_VALUES = {v: k for lang in ("en", "zh") for k, v in LABELS[lang].items()}
_REVERSE_HEADERS = {v: k for lang in ("en", "zh") for k, v in LABELS[lang].items()}
_REVERSE_SHEETS = {v: k for names in SHEET_NAMES.values() for k, v in names.items()}


def number_format(column: str) -> str | None:
    """Excel number format of a ledger column, from its name."""
    if column in _INT:
        return "0" if column in {"hour", "best_send_hour", "weekday"} else "#,##0"
    if column in _TIME:
        return "yyyy-mm-dd hh:mm"
    if column.startswith("bill_vs_"):
        return "#,##0"
    if column.endswith("_pp") or column in {"cusum"}:
        return "+0.00;-0.00;0.00"
    if column in {"z", "cohens_h"}:
        return "0.00"
    if column in {"value", "threshold"}:  # a trial criterion's own unit (count, rate, points, p)
        return "General"
    if column == "p_value":
        return "0.0E+00"
    if column == "unit_price" or column.startswith("cost_per_"):
        return "0.0000"
    if column.startswith(("amount", "billed_amount", "cost")) or column in {"gap_amount", "overcharge", "export_amount"}:
        return "#,##0.00"
    if column.endswith("_s"):
        return "#,##0.0"
    if column.startswith(("delivered_", "rounds")) or column in {"needed", "messages_needed", "all_arrive_needed"}:
        return "#,##0"
    if column.endswith(("_rate", "_low", "_high", "_gap", "_a", "_b", "_arrival", "_share")) or column in {
        "lift", "low", "high", "expected", "confidence",
        "receipt_coverage", "share", "share_of_week", "target", "baseline"}:
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
        ``failures``, ``repeat_failures``, ``content``, ``billing``, ``alerts``).
    path : the ``.xlsx`` to write (replaced atomically).
    lang : ``zh`` (default) or ``en`` headers, sheet names and values.
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
    for key, frame in ledgers.items():
        if key not in names or key == "charts":
            continue
        ws = wb.create_sheet(names[key])
        if "phone" in frame and not unmask:
            frame = frame.assign(phone=mask_phones(frame["phone"]))
        if key == "summary":
            header_row = _write_summary(ws, frame, meta, lang)
        else:
            header_row = 1
            _write_table(ws, frame, lang, header_row)
        _decorate(ws, frame, key, header_row)
    _write_charts(wb, ledgers, lang)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".xlsx", dir=path.parent)
    os.close(fd)
    try:
        wb.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _write_summary(ws, frame: pd.DataFrame, meta: dict, lang: str) -> int:
    ws.cell(1, 1, f"{TITLE[lang]} {meta.get('week', '')}".strip()).font = Font(bold=True, size=14)
    row = 3
    for key in SUMMARY_KEYS:
        if key not in meta:
            continue
        ws.cell(row, 1, LABELS[lang][key]).font = Font(bold=True)
        value = meta[key]
        if isinstance(value, (bool, np.bool_)):
            value = bool(value)
        _set(ws.cell(row, 2), value)
        row += 1
    header_row = row + 1
    _write_table(ws, frame, lang, header_row)
    return header_row


def _write_table(ws, frame: pd.DataFrame, lang: str, header_row: int) -> None:
    for j, col in enumerate(frame.columns, start=1):
        c = ws.cell(header_row, j, LABELS[lang].get(col, col))
        c.font = Font(bold=True)
        c.fill = _HEADER
        c.alignment = Alignment(wrap_text=True, vertical="center")
        values = _display(frame[col], col, lang)
        fmt = number_format(col)
        for i, v in enumerate(values, start=header_row + 1):
            cell = ws.cell(i, j)
            _set(cell, v)
            if fmt and v is not None:
                cell.number_format = fmt


def _set(cell, value) -> None:
    """Set a cell; text that Excel could take for a formula stays text."""
    cell.value = value
    if isinstance(value, str) and value.startswith(_TEXT_START):
        cell.data_type = "s"
        cell.quotePrefix = True


def _display(s: pd.Series, col: str, lang: str) -> list:
    """A column as the Python values written to the sheet."""
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_localize(None)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return [None if pd.isna(v) else v.to_pydatetime() for v in s]
    if col in _VOCAB_COLUMNS:
        labels = LABELS[lang]
        if col == "reasons":
            return [None if pd.isna(v) else "; ".join(labels.get(x, x) for x in str(v).split("; ")) for v in s]
        return [None if pd.isna(v) else labels.get(str(v), str(v)) for v in s.astype(object)]
    out = []
    for v in s.astype(object):
        if v is None or v is pd.NA or (isinstance(v, float) and not np.isfinite(v)):
            out.append(None)
        elif isinstance(v, (np.bool_, bool)):
            out.append(bool(v))
        elif isinstance(v, np.integer):
            out.append(int(v))
        elif isinstance(v, np.floating):
            out.append(float(v))
        elif isinstance(v, pd.Timestamp):
            out.append(v.tz_localize(None).to_pydatetime() if v.tzinfo else v.to_pydatetime())
        else:
            out.append(v)
    return out


def _decorate(ws, frame: pd.DataFrame, key: str, header_row: int) -> None:
    """Freeze, filter, fit widths and colour what misses a target."""
    n = len(frame)
    ncol = max(len(frame.columns), 1)
    last = header_row + max(n, 1)
    ws.freeze_panes = ws.cell(header_row + 1, 1)
    ws.auto_filter.ref = f"A{header_row}:{get_column_letter(ncol)}{last}"
    ws.row_dimensions[header_row].height = 32
    for j, col in enumerate(frame.columns, start=1):
        letter = get_column_letter(j)
        cells = [ws.cell(r, j).value for r in range(header_row, min(last, header_row + 500) + 1)]
        width = max((_width(v, number_format(col)) for v in cells), default=8)
        ws.column_dimensions[letter].width = min(max(width + 2, 8), 60)
    if not n:
        return
    col = {c: get_column_letter(j) for j, c in enumerate(frame.columns, start=1)}
    rows = f"{header_row + 1}:{last}"

    def span(c):
        a, b = rows.split(":")
        return f"{col[c]}{a}:{col[c]}{b}"

    first = header_row + 1
    target = float(frame["target"].iloc[0]) if "target" in frame and frame["target"].notna().any() else 0.98
    if "arrival_rate" in col and key in {"quality", "content", "trend"}:
        ws.conditional_formatting.add(span("arrival_rate"), CellIsRule(operator="lessThan", formula=[str(target)], fill=_RED))
    for c in ("meets_target", "in_control"):
        if c in col:
            ws.conditional_formatting.add(span(c), FormulaRule(formula=[f"{col[c]}{first}=FALSE"], fill=_RED))
    if "blocked_rate" in col:
        ws.conditional_formatting.add(span("blocked_rate"), CellIsRule(operator="greaterThan", formula=["0.05"], fill=_RED))
    if "overcharge" in col:
        ws.conditional_formatting.add(span("overcharge"), CellIsRule(operator="greaterThan", formula=["0.005"], fill=_RED))
    if "diff_pp" in col:
        ws.conditional_formatting.add(span("diff_pp"), CellIsRule(operator="lessThan", formula=["-10"], fill=_RED))
        ws.conditional_formatting.add(span("diff_pp"), CellIsRule(operator="between", formula=["-10", "0"], fill=_AMBER))
    if key == "failures" and "failed" in col:
        ws.conditional_formatting.add(span("failed"), DataBarRule(start_type="min", end_type="max", color="F4B183"))


def _width(value, fmt: str | None) -> int:
    if value is None:
        return 0
    if isinstance(value, float):
        return 9 if fmt and "%" in fmt else len(f"{value:,.2f}")
    if isinstance(value, datetime):
        return 16
    text = str(value)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text[:80])


def _write_charts(wb: Workbook, ledgers: dict[str, pd.DataFrame], lang: str) -> None:
    """Native charts: weekly arrival by carrier, and the week's failure reasons."""
    trend = ledgers.get("trend")
    failures = ledgers.get("failures")
    if (trend is None or trend.empty) and (failures is None or failures.empty):
        return
    ws = wb.create_sheet(SHEET_NAMES[lang]["charts"])
    labels = LABELS[lang]
    col = 1
    if trend is not None and not trend.empty:
        wide = trend.pivot_table(index="week", columns="carrier", values="arrival_rate", aggfunc="first", observed=True)
        ws.cell(1, col, LABELS[lang]["week"]).font = Font(bold=True)
        for j, carrier in enumerate(wide.columns, start=col + 1):
            ws.cell(1, j, labels.get(carrier, carrier)).font = Font(bold=True)
        for i, (week, row) in enumerate(wide.iterrows(), start=2):
            ws.cell(i, col, week)
            for j, v in enumerate(row, start=col + 1):
                c = ws.cell(i, j, None if pd.isna(v) else float(v))
                c.number_format = "0.00%"
        chart = LineChart()
        chart.title = "每周到达率（按运营商）" if lang == "zh" else "Weekly arrival by carrier"
        chart.y_axis.title = LABELS[lang]["arrival_rate"]
        chart.y_axis.number_format = "0%"
        chart.height, chart.width = 9, 18
        data = Reference(ws, min_col=col + 1, max_col=col + len(wide.columns), min_row=1, max_row=len(wide) + 1)
        chart.add_data(data, titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=col, min_row=2, max_row=len(wide) + 1))
        ws.add_chart(chart, "H2")
    if failures is not None and not failures.empty:
        reasons = failures.groupby("failure_reason", observed=True)["failed"].sum().sort_values(ascending=False)
        top = max(len(trend) if trend is not None else 0, 1) + 20
        ws.cell(top, 1, LABELS[lang]["failure_reason"]).font = Font(bold=True)
        ws.cell(top, 2, LABELS[lang]["failed"]).font = Font(bold=True)
        for i, (reason, n) in enumerate(reasons.items(), start=top + 1):
            ws.cell(i, 1, labels.get(reason, reason))
            ws.cell(i, 2, int(n)).number_format = "#,##0"
        bar = BarChart()
        bar.type = "bar"
        bar.title = "失败原因" if lang == "zh" else "Failure reasons"
        bar.height, bar.width = 9, 18
        bar.add_data(Reference(ws, min_col=2, min_row=top, max_row=top + len(reasons)), titles_from_data=True)
        bar.set_categories(Reference(ws, min_col=1, min_row=top + 1, max_row=top + len(reasons)))
        bar.legend = None
        ws.add_chart(bar, "H22")
    ws.column_dimensions["A"].width = 24


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
            header = _header_row(rows)
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


def _header_row(rows: list[list]) -> int | None:
    for i, row in enumerate(rows[:50]):
        known = sum(1 for v in row if isinstance(v, str) and (v.strip() in _REVERSE_HEADERS or v.strip() in _ALL_KEYS))
        if known >= 2:
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
            if col == "reasons":
                s = s.map(lambda v: None if v is None else "; ".join(_REVERSE_VALUES.get(x, x) for x in str(v).split("; ")))
            else:
                s = s.map(lambda v: None if v is None else _REVERSE_VALUES.get(str(v).strip(), v))
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

_PY_FORMATS = {
    "0.00%": "{:.2%}", "#,##0": "{:,.0f}", "0": "{:.0f}", "#,##0.00": "{:,.2f}", "0.0000": "{:.4f}",
    "#,##0.0": "{:,.1f}", "+0.00;-0.00;0.00": "{:+.2f}", "0.00": "{:.2f}", "General": "{:.4g}", "0.0E+00": "{:.1e}", "yyyy-mm-dd hh:mm": "{:%Y-%m-%d %H:%M}",
}


def styled(frame: pd.DataFrame, *, lang: str = "zh", columns=None, mask: bool = True):
    """A ledger frame ready to show in a notebook or report: labelled headers and values
    in ``lang``, the workbook's number formats, no index, phones masked.

    Returns a pandas ``Styler``.
    """
    frame = frame if columns is None else frame[list(columns)]
    if "phone" in frame and mask:
        frame = frame.assign(phone=mask_phones(frame["phone"]))
    shown = pd.DataFrame({c: _display(frame[c], c, lang) for c in frame.columns}, index=frame.index)
    shown = shown.astype(object)
    yes, no = ("是", "否") if lang == "zh" else ("yes", "no")
    for c in frame.columns:
        if c in _BOOL or pd.api.types.is_bool_dtype(frame[c].dtype):
            shown[c] = shown[c].map(lambda v: None if v is None else (yes if v else no))
    formats = {LABELS[lang].get(c, c): _PY_FORMATS[number_format(c)] for c in frame.columns
               if number_format(c) in _PY_FORMATS}
    shown.columns = [LABELS[lang].get(c, c) for c in frame.columns]
    return shown.style.format(formats, na_rep="—").hide(axis="index")
