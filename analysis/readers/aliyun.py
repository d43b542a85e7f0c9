"""Aliyun SMS: send details (QuerySendDetails / console 发送记录) and pushed receipts
(SmsReport). Aliyun bills on submission; receipt pushes are retried at 1, 5 and 10
minutes and are not idempotent, so repeats are expected and merged by message id."""

from __future__ import annotations

import pandas as pd

from ..codes import SMPP_STATUS, map_status
from ._layout import Layout, col, staged, to_number

_SEND_STATUS = {"1": "pending", "2": "failed", "3": "delivered"}


def stage_details(raw: pd.DataFrame, tz: str) -> pd.DataFrame:
    err = col(raw, "errcode")
    status = map_status(col(raw, "sendstatus"), _SEND_STATUS)
    # ErrCode of a failure may itself say EXPIRED / REJECTD
    word = map_status(err, SMPP_STATUS, upper=True)
    status = status.where(~(status.eq("failed") & word.isin(["expired", "rejected"])), word)
    return staged(
        raw,
        tz,
        times={"submit_time": (col(raw, "senddate"), {}), "done_time": (col(raw, "receivedate"), {})},
        message_id=col(raw, "outid"),
        phone=col(raw, "phonenum"),
        template_id=col(raw, "templatecode"),
        content=col(raw, "content"),
        status=status,
        status_code=col(raw, "sendstatus"),
        error_code=err.mask(err.str.upper() == "DELIVERED"),
    )


def stage_report(raw: pd.DataFrame, tz: str) -> pd.DataFrame:
    ok = col(raw, "success").str.lower()
    err = col(raw, "err_code")
    status = ok.map({"true": "delivered", "1": "delivered", "false": "failed", "0": "failed"}).astype(object)
    word = map_status(err, SMPP_STATUS, upper=True)
    status = status.where(~(status.eq("failed") & word.isin(["expired", "rejected"])), word)
    out_id = col(raw, "out_id")
    return staged(
        raw,
        tz,
        times={"submit_time": (col(raw, "send_time"), {}), "done_time": (col(raw, "report_time"), {})},
        message_id=out_id.fillna(col(raw, "biz_id")),
        phone=col(raw, "phone_number"),
        segments=to_number(col(raw, "sms_size")),
        status=status.where(ok.notna()),
        status_code=col(raw, "success"),
        error_code=err.mask(err.str.upper().isin(["DELIVERED", "DELIVRD"])),
    )


LAYOUTS = [
    Layout("aliyun_details", "aliyun", frozenset({"phonenum", "sendstatus", "senddate"}), stage_details),
    Layout("aliyun_report", "aliyun", frozenset({"phone_number", "send_time", "report_time", "success"}), stage_report),
]
