"""A user's layout for any export: a file in the layout language
(:mod:`analysis.readers.language`; ``sms-ledger sniff`` drafts one), or a column mapping
of the older, simpler form, which is read as the layout it means.

A column mapping is a dict, or a TOML / JSON file, such as::

    vendor = "acme"            # written into the vendor column
    source_tz = "UTC"          # zone of naive timestamps (default: the log's zone)
    [columns]                  # canonical column = header in the export
    message_id = "MsgID"
    phone = "Mobile"
    submit_time = "SendTime"
    done_time = "ReportTime"
    status = "Result"
    error_code = "Code"
    [status]                   # raw status value = canonical status
    "0" = "delivered"
    "1" = "failed"

Columns not named are looked for under their canonical names. Raw status values not
in ``[status]`` are tried as canonical words, then become ``unknown``. Every key is
checked when the mapping is read; an error names the file and the key.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..schema import COLUMNS, STATUSES
from ._files import LoadError
from ._layout import Layout

_KEYS = {"vendor", "source_tz", "columns", "status"}


def load_mapping(mapping: dict | str | Path) -> dict:
    """Read and check a mapping (dict, ``.toml`` or ``.json`` file)."""
    where = "column mapping"
    if not isinstance(mapping, dict):
        path = Path(mapping)
        where = str(path)
        try:
            text = path.read_text(encoding="utf-8")
            mapping = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except (OSError, ValueError) as exc:
            raise LoadError(f"{path}: cannot read the column mapping: {exc}") from exc
        if not isinstance(mapping, dict):
            raise LoadError(f"{path}: a column mapping is a table of keys, not {type(mapping).__name__}")

    def fail(key: str, problem: str):
        raise LoadError(f"{where}: key {key!r}: {problem}")

    for key in set(mapping) - _KEYS:
        fail(key, f"unknown key; use {', '.join(sorted(_KEYS))}")
    if "vendor" in mapping and (not isinstance(mapping["vendor"], str) or not mapping["vendor"].strip()):
        fail("vendor", "must be a non-empty name")
    if "source_tz" in mapping:
        try:
            ZoneInfo(str(mapping["source_tz"]))
        except (ZoneInfoNotFoundError, ValueError):
            fail("source_tz", f"{mapping['source_tz']!r} is not a time zone (e.g. UTC, Asia/Shanghai)")
    columns = mapping.get("columns", {})
    if not isinstance(columns, dict):
        fail("columns", "must be a table of canonical column = export header")
    for name, header in columns.items():
        if name not in COLUMNS:
            fail(f"columns.{name}", f"not a canonical column; use one of {', '.join(COLUMNS)}")
        if not isinstance(header, str) or not header.strip():
            fail(f"columns.{name}", "must name a header of the export (text)")
    status = mapping.get("status", {})
    if not isinstance(status, dict):
        fail("status", "must be a table of raw value = canonical status")
    for raw, value in status.items():
        if value not in STATUSES:
            fail(f"status.{raw}", f"{value!r} is not a status; use {', '.join(STATUSES)}")
    for need in ["phone", "submit_time"]:
        if need not in columns:
            fail("columns", f"must name the {need!r} column")
    return mapping


def mapping_layout(mapping: dict | str | Path) -> Layout:
    """The :class:`Layout` a user's mapping declares: a file (or dict) in the layout
    language (:mod:`analysis.readers.language`, ``docs/layouts.md``), or a column
    mapping of the older form above, checked by :func:`load_mapping` and read as the
    layout it means. A file of several layouts: the one the file's headers fit is found
    among them when it is read."""
    from .language import declare, from_column_mapping, load_layouts, read_declarations

    tables, where = read_declarations(mapping)
    if len(tables) == 1 and _KEYS & set(tables[0]) and "fields" not in tables[0]:
        return declare(from_column_mapping(load_mapping(mapping)), where=where)
    layouts = load_layouts(mapping)
    if len(layouts) > 1:
        raise LoadError(f"{where}: declares {len(layouts)} layouts ({', '.join(lay.name for lay in layouts)}); "
                        "give --mapping a file of the one this export is in")
    return layouts[0]
