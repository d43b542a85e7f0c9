"""Vonage (Nexmo) delivery receipts.

Receipts carry no submission time: they complete a submissions file joined on
``messageId``. A long message gives one receipt per part, each with its own message
id, so every part stays its own row (the receipt does not say which parts belong
together)."""

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


def stage(raw: pd.DataFrame, tz: str) -> pd.DataFrame:
    err = col(raw, "err-code")
    return staged(
        raw,
        tz,
        times={
            # receipts carry no submission time; message-timestamp (UTC) is when the
            # receipt was sent, scts (YYMMDDHHMM, UTC) the carrier's completion time
            "done_time": (col(raw, "scts"), {"form": "yymmddhhmm", "source_tz": "UTC"}),

        },
        message_id=col(raw, "messageid"),
        phone=col(raw, "msisdn"),
        channel=col(raw, "to"),
        carrier=col(raw, "network-code").map(MCCMNC).astype(object),
        status=map_status(col(raw, "status"), VONAGE_STATUS),
        status_code=col(raw, "status"),
        error_code=err.mask(err == "0"),
        fee=to_number(col(raw, "price")),
    )


LAYOUTS = [
    Layout("vonage_dlr", "vonage", frozenset({"messageid", "msisdn", "status", "err-code"}), stage, intl_phones=True),
]
