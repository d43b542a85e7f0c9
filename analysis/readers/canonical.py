"""The project's own canonical layout (CSV, XLSX, Parquet, or the ingested store).

Headers may be the canonical snake_case names or their Chinese / English display
labels (a hand-kept sheet in the layout this project writes).
"""

from __future__ import annotations

import pandas as pd

from ..codes import CANONICAL_STATUS_ALIASES, map_status
from ..schema import COLUMNS, LABELS
from ._layout import Layout, col, staged, to_number

#: display label (lower case) -> canonical column name
HEADER_ALIASES = {lab.lower(): c for lang in LABELS.values() for c, lab in lang.items() if c in COLUMNS}

_TRUE = {"true", "1", "yes", "y", "是", "t"}


def stage(raw: pd.DataFrame, tz: str, *, source_tz: str | None = None) -> pd.DataFrame:
    raw = raw.rename(columns=lambda c: HEADER_ALIASES.get(c, c))
    status = col(raw, "status")
    attempt = to_number(col(raw, "attempt")) if "attempt" in raw else pd.Series(pd.NA, index=raw.index)
    probe = col(raw, "is_probe").str.lower().isin(_TRUE).fillna(False)
    segments = to_number(col(raw, "segments")) if "segments" in raw else pd.Series(pd.NA, index=raw.index)
    return staged(
        raw,
        tz,
        times={
            "submit_time": (col(raw, "submit_time"), {"source_tz": source_tz}),
            "done_time": (col(raw, "done_time"), {"source_tz": source_tz}),
        },
        vendor=col(raw, "vendor"),
        channel=col(raw, "channel"),
        message_id=col(raw, "message_id"),
        phone=col(raw, "phone"),
        country=col(raw, "country"),
        carrier=col(raw, "carrier"),
        province=col(raw, "province"),
        city=col(raw, "city"),
        template_id=col(raw, "template_id"),
        category=col(raw, "category"),
        content=col(raw, "content"),
        segments=segments,
        status=map_status(status, CANONICAL_STATUS_ALIASES),
        status_code=col(raw, "status_code"),
        error_code=col(raw, "error_code"),
        failure_reason=col(raw, "failure_reason"),
        attempt=attempt,
        is_probe=probe,
        fee=to_number(col(raw, "fee")),
    )


LAYOUTS = [
    Layout(
        "canonical",
        "canonical",
        frozenset({"phone", "submit_time"}),
        stage,
        intl_phones=False,
    )
]
