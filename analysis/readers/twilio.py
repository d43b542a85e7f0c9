"""Twilio: the console's CSV export, the daily bulk export (JSON lines, UTC), Messages
list pages from the API (``{"messages": [...], "next_page_uri": ...}``, RFC 2822 dates)
and third-party exporters (``SMS Message SID``, ``Date Created``, ``Y-m-d H:i:s``), one
layout with every spelling.

Rows with Direction ``inbound`` are replies, not sends: they are rejected from the send
log with that reason (read them as replies instead). ``sent`` is handed to the carrier
with no receipt; it stays pending (Twilio's own "sent" can be final)."""

from __future__ import annotations

import pandas as pd

from ..codes import TWILIO_STATUS, map_status
from ._layout import Layout, col, staged, to_number


def stage(raw: pd.DataFrame, tz: str, source_tz=None) -> pd.DataFrame:
    direction = col(raw, "direction").str.lower()
    inbound = direction.str.startswith("inbound").fillna(False)
    err = col(raw, "error_code").str.replace(r"\.0$", "", regex=True)
    status = map_status(col(raw, "status"), TWILIO_STATUS)
    out = staged(
        raw,
        tz,
        times={
            "submit_time": (col(raw, "created").fillna(col(raw, "sent")), {"source_tz": source_tz}),
            "done_time": (col(raw, "updated"), {"source_tz": source_tz}),
        },
        message_id=col(raw, "sid"),
        channel=col(raw, "service").fillna(col(raw, "from")),
        phone=col(raw, "to"),
        content=col(raw, "body"),
        segments=to_number(col(raw, "segments")),
        status=status,
        status_code=col(raw, "status"),
        error_code=err.mask(err.isin(["0"])),
        fee=to_number(col(raw, "price")).abs(),
        currency=col(raw, "price_unit").str.upper(),
    )
    # date_updated is the last change: a receipt time only for a final status, and only
    # after the message was created (an exporter that copies date_created into it says
    # nothing about the receipt)
    final = out["status"].ne("pending") & out["status"].notna()
    out["done_time"] = out["done_time"].where(final & (out["done_time"] > out["submit_time"]))
    out["_reject"] = out["_reject"].where(~inbound, "inbound message (a reply), not a send")
    return out


LAYOUTS = [
    Layout(
        "twilio", "twilio",
        fields={
            "sid": ("Sid", "SMS Message SID", "Message SID", "MessageSid", "SmsSid"),
            "to": ("To",), "from": ("From",), "body": ("Body", "Message Body"), "status": ("Status",),
            "created": ("date_created", "Date Created", "DateCreated"),
            "sent": ("SentDate", "date_sent", "Date Sent", "DateSent"),
            "updated": ("date_updated", "Date Updated", "DateUpdated"),
            "direction": ("Direction",), "segments": ("NumSegments", "num_segments", "Message Segments", "Segments"),
            "error_code": ("ErrorCode", "error_code", "Error Code"), "price": ("Price",),
            "price_unit": ("PriceUnit", "price_unit", "Price Unit"),
            "service": ("messaging_service_sid", "MessagingServiceSid"),
        },
        required=frozenset({"sid", "to", "status"}),
        stage=stage,
        title="Twilio (console CSV, bulk export JSON lines, API list pages, third-party exporters)",
        intl_phones=True,
        source_tz="UTC",
    ),
]
