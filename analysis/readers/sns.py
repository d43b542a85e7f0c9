"""AWS SNS daily SMS usage report (CSV, UTC). One row per part of a message: the parts
are loaded as one message whose segments are ``TotalParts`` and fee the parts' sum."""

from __future__ import annotations

import pandas as pd

from ..codes import sns_status
from ._layout import Layout, col, staged, to_number


def stage(raw: pd.DataFrame, tz: str) -> pd.DataFrame:
    status, reason = sns_status(col(raw, "deliverystatus"))
    msg = col(raw, "messageid")
    price = to_number(col(raw, "priceinusd"))
    total_fee = price.groupby(msg.fillna("").to_numpy()).transform("sum").where(msg.notna(), price)
    kind = col(raw, "messagetype").str.lower()
    out = staged(
        raw,
        tz,
        times={"submit_time": (col(raw, "publishtimeutc"), {"source_tz": "UTC"})},
        message_id=msg,
        phone=col(raw, "destinationphonenumber"),
        category=kind.map({"transactional": "notification", "promotional": "marketing"}).astype(object),
        segments=to_number(col(raw, "totalparts")),
        status=status,
        status_code=col(raw, "deliverystatus"),
        failure_reason=reason,
        fee=total_fee,
    )
    out["_part"] = col(raw, "partnumber")
    return out


LAYOUTS = [
    Layout(
        "aws_sns",
        "aws_sns",
        frozenset({"publishtimeutc", "messageid", "destinationphonenumber", "deliverystatus"}),
        stage,
        intl_phones=True,
    )
]
