"""Tencent Cloud SMS receipts: pulled status (PullSmsSendStatus) and the callback.

Receipts carry no submission time: they complete a submissions file (joined on the
SerialNo / sid message id). Pulling consumes receipts, so each arrives once."""

from __future__ import annotations

import pandas as pd

from ._layout import Layout, col, staged

_REPORT = {"SUCCESS": "delivered", "FAIL": "failed"}


def _status(report: pd.Series) -> pd.Series:
    s = report.str.upper()
    return s.map(_REPORT).astype(object).where(s.isna() | s.isin(list(_REPORT)), "unknown")


def stage_pull(raw: pd.DataFrame, tz: str) -> pd.DataFrame:
    e164 = col(raw, "phonenumber")
    local = col(raw, "subscribernumber")
    cc = col(raw, "countrycode").str.lstrip("+")
    return staged(
        raw,
        tz,
        times={"done_time": (col(raw, "userreceivetime"), {"form": "unix"})},
        message_id=col(raw, "serialno"),
        phone=e164.fillna("+" + cc + local),
        status=_status(col(raw, "reportstatus")),
        status_code=col(raw, "reportstatus"),
        error_code=col(raw, "description").mask(col(raw, "description").str.upper() == "DELIVRD"),
    )


def stage_callback(raw: pd.DataFrame, tz: str) -> pd.DataFrame:
    cc = col(raw, "nationcode").str.lstrip("+").fillna("86")
    err = col(raw, "errmsg").fillna(col(raw, "description"))  # errmsg holds the code
    return staged(
        raw,
        tz,
        times={"done_time": (col(raw, "user_receive_time"), {})},
        message_id=col(raw, "sid"),
        phone="+" + cc + col(raw, "mobile"),
        status=_status(col(raw, "report_status")),
        status_code=col(raw, "report_status"),
        error_code=err.mask(err.str.upper().isin(["DELIVRD", "用户短信接收成功"])),
    )


LAYOUTS = [
    Layout("tencent_pull", "tencent", frozenset({"serialno", "reportstatus", "userreceivetime"}), stage_pull, intl_phones=True),
    Layout("tencent_callback", "tencent", frozenset({"sid", "report_status", "mobile"}), stage_callback, intl_phones=True),
]
