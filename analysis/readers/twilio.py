"""Twilio: the console's CSV export and the daily bulk export (JSON lines, UTC).

Rows with Direction ``inbound-*`` are replies, not sends: they are rejected from the
send log with that reason (read them as replies instead)."""

from __future__ import annotations

import pandas as pd

from ..codes import TWILIO_STATUS, map_status
from ._layout import Layout, col, staged, to_number


def _stage(raw: pd.DataFrame, tz: str, *, names: dict[str, str]) -> pd.DataFrame:
    def c(key):
        return col(raw, names[key])

    direction = c("direction").str.lower()
    inbound = direction.str.startswith("inbound").fillna(False)
    price = to_number(c("price")).abs()
    err = c("error_code").str.replace(r"\.0$", "", regex=True)
    out = staged(
        raw,
        tz,
        times={
            "submit_time": (c("submit"), {"source_tz": "UTC"}),
            "done_time": (c("done"), {"source_tz": "UTC"}),
        },
        message_id=c("sid"),
        channel=c("channel"),
        phone=c("to"),
        content=c("body"),
        segments=to_number(c("segments")),
        status=map_status(c("status"), TWILIO_STATUS),
        status_code=c("status"),
        error_code=err.mask(err.isin(["0"])),
        fee=price,
    )
    out["_reject"] = out["_reject"].where(~inbound, "inbound message (a reply), not a send")
    return out


def stage_console(raw: pd.DataFrame, tz: str) -> pd.DataFrame:
    names = {"direction": "direction", "price": "price", "error_code": "errorcode", "submit": "sentdate",
             "done": "__none__", "sid": "sid", "channel": "from", "to": "to", "body": "body",
             "segments": "numsegments", "status": "status"}
    return _stage(raw, tz, names=names)


def stage_bulk(raw: pd.DataFrame, tz: str) -> pd.DataFrame:
    names = {"direction": "direction", "price": "price", "error_code": "error_code",
             "submit": "date_created", "done": "date_updated", "sid": "sid",
             "channel": "messaging_service_sid" if "messaging_service_sid" in raw else "from",
             "to": "to", "body": "body", "segments": "num_segments", "status": "status"}
    out = _stage(raw, tz, names=names)
    # date_updated is the last change; it is a receipt time only for a final status
    out["done_time"] = out["done_time"].where(out["status"].ne("pending"))
    return out


LAYOUTS = [
    Layout("twilio_console", "twilio", frozenset({"sid", "to", "status", "sentdate"}), stage_console, intl_phones=True),
    Layout("twilio_bulk", "twilio", frozenset({"sid", "to", "status", "date_created"}), stage_bulk, intl_phones=True),
]
