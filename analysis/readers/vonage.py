"""Vonage (Nexmo): delivery-receipt webhooks and SMS API send responses.

A receipt's ``message-timestamp`` is when Vonage pushed it, in UTC: the receipt time.
``scts`` is the carrier's completion time in *its* local clock (a UK carrier writes
13:10 for 12:10 UTC), so it is not used. Receipts carry no send time: alone, a receipt
loads as a message sent at its receipt time; the send response (no time either) joins its
receipts by ``message-id`` and alone is rejected. A long message gives one receipt per
part, each with its own message id, so every part stays its own row."""

from __future__ import annotations

import pandas as pd

from ..codes import VONAGE_STATUS, map_status
from ._layout import Layout, col, staged, to_number

#: Chinese networks by MCC+MNC; other networks are left to the number prefix.
MCCMNC = {
    **dict.fromkeys(["46000", "46002", "46004", "46007", "46008"], "China Mobile"),
    **dict.fromkeys(["46001", "46006", "46009"], "China Unicom"),
    **dict.fromkeys(["46003", "46005", "46011"], "China Telecom"),
    "46015": "China Broadnet",
}


def stage_receipt(raw: pd.DataFrame, tz: str, source_tz=None) -> pd.DataFrame:
    err = col(raw, "error")
    return staged(
        raw,
        tz,
        times={"done_time": (col(raw, "pushed"), {"source_tz": source_tz})},
        time_source="receipt",
        message_id=col(raw, "message_id"),
        phone=col(raw, "msisdn"),
        channel=col(raw, "sender"),
        carrier=col(raw, "network").map(MCCMNC).astype(object),
        status=map_status(col(raw, "status"), VONAGE_STATUS),
        status_code=col(raw, "status"),
        error_code=err.mask(err == "0"),
        fee=to_number(col(raw, "price")),
    )


def stage_send(raw: pd.DataFrame, tz: str, source_tz=None) -> pd.DataFrame:
    code = col(raw, "status")
    ok = code.eq("0").fillna(False)
    out = staged(
        raw,
        tz,
        message_id=col(raw, "message_id"),
        phone=col(raw, "to"),
        carrier=col(raw, "network").map(MCCMNC).astype(object),
        status=pd.Series("pending", index=raw.index, dtype=object).where(ok, "rejected"),
        status_code=code,
        error_code=code.mask(ok),
        fee=to_number(col(raw, "price")),
    )
    out["_alone"] = ("a Vonage send response has no send time: load it with its delivery receipts, "
                     "which give the time")
    return out


LAYOUTS = [
    Layout(
        "vonage_receipt", "vonage",
        fields={"message_id": ("messageId",), "msisdn": ("msisdn",), "sender": ("to",),
                "network": ("network-code",), "price": ("price",), "status": ("status",), "error": ("err-code",),
                "scts": ("scts",), "pushed": ("message-timestamp",), "client_ref": ("client-ref",)},
        required=frozenset({"message_id", "msisdn", "status", "error"}),
        stage=stage_receipt,
        title="Vonage delivery-receipt webhooks",
        intl_phones=True,
        source_tz="UTC",
    ),
    Layout(
        "vonage_send", "vonage",
        fields={"message_id": ("message-id",), "to": ("to",), "status": ("status",),
                "price": ("message-price",), "balance": ("remaining-balance",), "network": ("network",),
                "error_text": ("error-text",)},
        required=frozenset({"message_id", "to", "status"}),
        stage=stage_send,
        title="Vonage SMS API send responses (no send time)",
        intl_phones=True,
    ),
]
