"""Gateway logs of SMPP / CMPP delivery receipts, one receipt per line::

    2025-05-01 09:00:03 dest=13800138000 id:0123456789 sub:001 dlvrd:001
    submit date:2505010900 done date:2505010901 stat:DELIVRD err:000 text:...

The handset number is taken from around the receipt text (``dest=…``, ``phone:…`` or
a bare 11-15 digit number before ``id:``). ``sub`` and ``dlvrd`` are unreliable and
ignored. Receipts arrive out of order (ENROUTE after DELIVRD): the loader keeps the
final state. The dates are the SMSC's local time (``tz``).
"""

from __future__ import annotations

import pandas as pd

from ..codes import SMPP_STATUS, map_status
from ._layout import Layout, col, staged

_RECEIPT = (
    r"id:\s*(?P<id>\S+).*?"
    r"submit date:\s*(?P<submit>\d{10,12})\s+"
    r"done date:\s*(?P<done>\d{10,12})\s+"
    r"stat:\s*(?P<stat>\S+)"
    r"(?:\s+err:\s*(?P<err>\S+))?"
)
_PHONE = r"(?:dest(?:ination)?(?:_addr)?|phone|mobile|msisdn|to)\s*[=:]\s*(?P<p1>\+?\d{6,15})|(?:^|[\s,;|])(?P<p2>\+?\d{11,15})(?=[\s,;|])"


def stage(raw: pd.DataFrame, tz: str) -> pd.DataFrame:
    text = col(raw, "text")
    parts = text.str.extract(_RECEIPT)
    before = text.str.split("id:", n=1, regex=False).str[0]
    phone = before.str.extract(_PHONE)
    stat = parts["stat"].astype("string[pyarrow]")
    err = parts["err"].astype("string[pyarrow]")
    status = map_status(stat, SMPP_STATUS, upper=True)
    # CMPP extended codes (MK:0001 ...) sit in the Stat field itself: a failure
    extended = stat.str.contains(":", regex=False).fillna(False) | stat.str.upper().isin(["DBBLACK", "MBBLACK"]).fillna(False)
    status = status.where(~extended, "failed")
    out = staged(
        raw,
        tz,
        times={
            "submit_time": (parts["submit"], {"form": "yymmddhhmm"}),
            "done_time": (parts["done"], {"form": "yymmddhhmm"}),
        },
        message_id=parts["id"].astype("string[pyarrow]"),
        phone=phone["p1"].fillna(phone["p2"]).astype("string[pyarrow]"),
        status=status,
        status_code=stat,
        error_code=err.mask(err.str.fullmatch("0+").fillna(False)),
    )
    not_receipt = parts["id"].isna()
    out["_reject"] = out["_reject"].where(~not_receipt, "not a delivery receipt line")
    # receipts rarely carry the real submission time to the second; keep it as given
    return out


LAYOUTS = [Layout("gateway_dlr", "gateway", frozenset({"text"}), stage)]
