"""AWS SNS: the daily SMS usage report (CSV, UTC) and CloudWatch delivery-status logs.

The usage report has one row per part of a message: the parts are loaded as one message
whose segments are ``TotalParts`` and fee the parts' sum. A CloudWatch log entry is a
receipt that states the publish time (``notification.timestamp``, UTC) and how long the
handset took to acknowledge (``dwellTimeMsUntilDeviceAck``). Prices are in US dollars."""

from __future__ import annotations

import pandas as pd

from ..codes import sns_status
from ._layout import Layout, col, staged, to_number
from .vonage import MCCMNC


def stage_usage(raw: pd.DataFrame, tz: str, source_tz=None) -> pd.DataFrame:
    status, reason = sns_status(col(raw, "status"))
    msg = col(raw, "message_id")
    price = to_number(col(raw, "price"))
    total_fee = price.groupby(msg.fillna("").to_numpy()).transform("sum").where(msg.notna(), price)
    kind = col(raw, "kind").str.lower()
    out = staged(
        raw,
        tz,
        times={"submit_time": (col(raw, "published"), {"source_tz": source_tz})},
        message_id=msg,
        phone=col(raw, "phone"),
        category=kind.map({"transactional": "notification", "promotional": "marketing"}).astype(object),
        segments=to_number(col(raw, "parts")),
        status=status,
        status_code=col(raw, "status"),
        failure_reason=reason,
        fee=total_fee,
        currency="USD",
    )
    out["_part"] = col(raw, "part")
    return out


def stage_cloudwatch(raw: pd.DataFrame, tz: str, source_tz=None) -> pd.DataFrame:
    response = col(raw, "response")
    status, reason = sns_status(response)
    outcome = col(raw, "status").str.upper()
    # the entry's own verdict wins: SUCCESS with an unrecognised text is still delivered
    status = status.where(~outcome.eq("SUCCESS").fillna(False), "delivered")
    failed = outcome.eq("FAILURE").fillna(False) & ~status.isin(["failed", "expired", "rejected"])
    status = status.where(~failed, "failed")
    reason = reason.where(~status.eq("delivered")).where(~failed | reason.notna(), "unknown")
    out = staged(
        raw,
        tz,
        times={"submit_time": (col(raw, "published"), {"source_tz": source_tz})},
        time_source="receipt_submit",
        message_id=col(raw, "message_id"),
        phone=col(raw, "phone"),
        carrier=(col(raw, "mcc") + col(raw, "mnc").str.zfill(2)).map(MCCMNC).astype(object),
        category=col(raw, "kind").str.lower().map({"transactional": "notification", "promotional": "marketing"})
        .astype(object),
        status=status,
        status_code=col(raw, "status"),
        error_code=response.where(~status.eq("delivered")),
        failure_reason=reason,
        fee=to_number(col(raw, "price")),
        currency="USD",
    )
    ack = pd.to_timedelta(to_number(col(raw, "ack_ms")), unit="ms")
    out["done_time"] = (out["submit_time"] + ack).where(status.eq("delivered"))
    return out


LAYOUTS = [
    Layout(
        "aws_sns", "aws_sns",
        fields={"published": ("PublishTimeUTC",), "message_id": ("MessageId",), "phone": ("DestinationPhoneNumber",),
                "kind": ("MessageType",), "status": ("DeliveryStatus",), "price": ("PriceInUSD",),
                "part": ("PartNumber",), "parts": ("TotalParts",)},
        required=frozenset({"published", "message_id", "phone", "status"}),
        stage=stage_usage,
        title="AWS SNS daily SMS usage report (CSV)",
        intl_phones=True,
        source_tz="UTC",
    ),
    Layout(
        "aws_sns_cloudwatch", "aws_sns",
        fields={"message_id": ("notification.messageId",), "published": ("notification.timestamp",),
                "phone": ("delivery.destination",), "status": ("status",), "response": ("delivery.providerResponse",),
                "price": ("delivery.priceInUSD",), "kind": ("delivery.smsType",), "mcc": ("delivery.mcc",),
                "mnc": ("delivery.mnc",), "dwell_ms": ("delivery.dwellTimeMs",),
                "ack_ms": ("delivery.dwellTimeMsUntilDeviceAck",), "carrier_name": ("delivery.phoneCarrier",)},
        required=frozenset({"message_id", "published", "phone", "status"}),
        stage=stage_cloudwatch,
        title="AWS SNS CloudWatch delivery-status logs (JSON)",
        intl_phones=True,
        source_tz="UTC",
    ),
]
