"""What a vendor layout is, and the helpers its staging function uses.

A layout turns a raw table (lower-cased header names, a ``_line`` column) into a
*staged* table: canonical column names, canonical statuses, parsed timestamps, raw
phone strings, and a ``_reject`` reason where a value could not be read. The loader then
finishes every layout the same way (phones, failure reasons, segments, enrichment,
merging receipts into submissions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from ..normalize import parse_times
from ..schema import STRING


@dataclass(frozen=True)
class Layout:
    """One export layout.

    Attributes
    ----------
    name : str
        Layout name, e.g. ``aliyun_report``; ``vendor=`` accepts it or the vendor.
    vendor : str
        Vendor written into the ``vendor`` column.
    required : frozenset of str
        Lower-case headers whose presence identifies the layout.
    stage : callable
        ``stage(raw, tz) -> DataFrame`` of staged columns.
    intl_phones : bool
        Bare digit strings are international numbers without ``+``.
    """

    name: str
    vendor: str
    required: frozenset[str]
    stage: Callable[[pd.DataFrame, str], pd.DataFrame]
    intl_phones: bool = False

    def matches(self, headers: set[str]) -> bool:
        return self.required <= headers


def col(raw: pd.DataFrame, name: str) -> pd.Series:
    """Column ``name`` of the raw table as strings, all-missing when absent."""
    if name in raw:
        s = raw[name]
        if pd.api.types.is_datetime64_any_dtype(s):
            return s
        return s.astype(STRING).str.strip().replace("", pd.NA)
    return pd.Series(pd.NA, index=raw.index, dtype=STRING)


def first_reason(*reasons: pd.Series) -> pd.Series:
    """Row-wise first non-missing reason."""
    out = reasons[0].astype(object)
    for r in reasons[1:]:
        out = out.where(out.notna(), r.astype(object))
    return out


def staged(raw: pd.DataFrame, tz: str, *, times: dict[str, tuple[pd.Series, dict]] | None = None, **columns) -> pd.DataFrame:
    """Build a staged frame: ``columns`` as given, ``times`` parsed with their options.

    ``times`` maps ``submit_time`` / ``done_time`` to ``(raw_series, parse_times kwargs)``;
    unreadable values put a reason (naming the column) into ``_reject``.
    """
    out = pd.DataFrame(index=raw.index)
    reasons = []
    for name, (values, opts) in (times or {}).items():
        parsed, reason = parse_times(values, tz=tz, **opts)
        out[name] = parsed
        reasons.append(reason.where(reason.isna(), name + ": " + reason.astype(str)))
    for name, values in columns.items():
        out[name] = values
    out["_reject"] = first_reason(*reasons) if reasons else pd.Series(pd.NA, index=raw.index, dtype=object)
    out["_line"] = raw["_line"].to_numpy()
    return out


def to_number(s: pd.Series) -> pd.Series:
    """Numbers from strings; unreadable values become missing."""
    return pd.to_numeric(s, errors="coerce")
