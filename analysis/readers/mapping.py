"""A user-supplied column mapping for any other layout.

A mapping is a dict, or a TOML / JSON file, such as::

    vendor = "acme"            # written into the vendor column
    source_tz = "UTC"          # zone of naive timestamps (default: the tz argument)
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
in ``[status]`` are tried as canonical words, then become ``unknown``.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pandas as pd

from ..codes import CANONICAL_STATUS_ALIASES, map_status
from ..schema import COLUMNS, STATUSES
from ._files import LoadError
from ._layout import Layout
from .canonical import stage as stage_canonical


def load_mapping(mapping: dict | str | Path) -> dict:
    """Read and check a mapping (dict, ``.toml`` or ``.json`` file)."""
    if not isinstance(mapping, dict):
        path = Path(mapping)
        try:
            text = path.read_text(encoding="utf-8")
            mapping = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except (OSError, ValueError) as exc:
            raise LoadError(f"{path}: cannot read the column mapping: {exc}") from exc
    columns = mapping.get("columns", {})
    unknown = set(columns) - set(COLUMNS)
    if unknown:
        raise LoadError(f"column mapping names unknown canonical columns: {sorted(unknown)}")
    bad = {v for v in mapping.get("status", {}).values() if v not in STATUSES}
    if bad:
        raise LoadError(f"column mapping maps to unknown statuses {sorted(bad)}; use {STATUSES}")
    for need in ["phone", "submit_time"]:
        if need not in columns:
            raise LoadError(f"column mapping must name the {need!r} column")
    return mapping


def mapping_layout(mapping: dict | str | Path) -> Layout:
    """A :class:`Layout` that reads a table through a column mapping."""
    m = load_mapping(mapping)
    rename = {src.lower(): dst for dst, src in m.get("columns", {}).items()}
    status_map = {**CANONICAL_STATUS_ALIASES, **{str(k): v for k, v in m.get("status", {}).items()}}
    source_tz = m.get("source_tz")

    def stage(raw: pd.DataFrame, tz: str) -> pd.DataFrame:
        missing = set(rename) - set(raw.columns)
        if missing:
            raise LoadError(f"the export lacks the mapped columns {sorted(missing)}")
        renamed = raw.rename(columns=rename)
        status_raw = renamed["status"] if "status" in renamed else pd.Series(pd.NA, index=raw.index)
        renamed = renamed.assign(status=pd.Series(pd.NA, index=raw.index, dtype=object))
        out = stage_canonical(renamed, tz, source_tz=source_tz)
        out["status"] = map_status(status_raw.astype("string[pyarrow]"), status_map)
        if "status_code" not in renamed:
            out["status_code"] = status_raw.astype("string[pyarrow]")
        return out

    return Layout("mapping", m.get("vendor", "custom"), frozenset(rename), stage)
