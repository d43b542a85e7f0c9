"""A user-supplied column mapping for any other layout.

A mapping is a dict, or a TOML / JSON file, such as::

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

import pandas as pd

from ..codes import CANONICAL_STATUS_ALIASES, map_status
from ..schema import COLUMNS, STATUSES, STRING
from ._files import LoadError
from ._layout import Layout
from .canonical import stage as stage_canonical

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
    """A :class:`Layout` that reads a table through a column mapping."""
    m = load_mapping(mapping)
    columns = m.get("columns", {})
    status_map = {**CANONICAL_STATUS_ALIASES, **{str(k): v for k, v in m.get("status", {}).items()}}

    def stage(raw: pd.DataFrame, tz: str, source_tz=None) -> pd.DataFrame:
        status_raw = raw["status"].astype(STRING) if "status" in raw else pd.Series(pd.NA, index=raw.index, dtype=STRING)
        out = stage_canonical(raw.drop(columns=["status"], errors="ignore"), tz, source_tz=source_tz)
        out["status"] = map_status(status_raw, status_map)
        if "status_code" not in raw:
            out["status_code"] = status_raw
        return out

    fields = {c: ((columns[c],) if c in columns else ()) for c in COLUMNS}
    return Layout("mapping", m.get("vendor", "custom").strip(), fields, frozenset(columns), stage,
                  title="a column mapping (TOML/JSON) for any other layout", source_tz=m.get("source_tz"))
