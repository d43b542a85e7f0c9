"""The project's own canonical layout (CSV, XLSX, Parquet, or the ingested store).

Headers may be the canonical snake_case names or their Chinese / English display
labels (a hand-kept sheet in the layout this project writes).
"""

from __future__ import annotations

import pandas as pd

from ..codes import CANONICAL_STATUS_ALIASES, map_status
from ..schema import COLUMNS, LABELS, TIME_SOURCES
from ._layout import Layout, col, staged, to_number

_TRUE = {"true", "1", "yes", "y", "是", "t"}


def stage(raw: pd.DataFrame, tz: str, source_tz: str | None = None) -> pd.DataFrame:
    given = col(raw, "time_source").str.lower()
    source = given.where(given.isin(list(TIME_SOURCES)), "submission").fillna("submission")
    out = staged(
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
        segments=to_number(col(raw, "segments")),
        status=map_status(col(raw, "status"), CANONICAL_STATUS_ALIASES),
        status_code=col(raw, "status_code"),
        error_code=col(raw, "error_code"),
        failure_reason=col(raw, "failure_reason"),
        attempt=to_number(col(raw, "attempt")),
        is_probe=col(raw, "is_probe").str.lower().isin(_TRUE).fillna(False),
        fee=to_number(col(raw, "fee")),
        currency=col(raw, "currency"),
    )
    out["time_source"] = source
    # a send time that was only the receipt's time is derived again when the messages meet
    out["submit_time"] = out["submit_time"].where(source.ne("receipt").to_numpy())
    return out


def _spellings(column: str) -> tuple[str, ...]:
    return (column, *(LABELS[lang][column] for lang in LABELS if column in LABELS[lang]))


LAYOUTS = [
    Layout(
        "canonical",
        "canonical",
        fields={c: _spellings(c) for c in COLUMNS},
        required=frozenset({"phone", "submit_time"}),
        stage=stage,
        title="this project's canonical layout (CSV, XLSX, Parquet, the store; zh/en labels as headers)",
    )
]
