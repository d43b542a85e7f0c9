"""Aliyun SMS: send details (QuerySendDetails, the console's 发送记录 export), pushed
receipts (SmsReport) and the international webhook.

Aliyun bills on submission. Receipt pushes are retried at 1, 5 and 10 minutes and are not
idempotent, so repeats are expected (they become duplicates). ``OutId`` and ``biz_id``
name a *request*, which a batch send shares between phones: a message is the request id
and the phone. Without either, details and receipts meet on phone and send time.
Domestic times are Beijing time.
"""

from __future__ import annotations

import pandas as pd

from ..codes import SMPP_STATUS, map_status
from ._layout import TEXT_STATUS, Layout, col, staged, to_number

_SEND_STATUS = {"1": "pending", "2": "failed", "3": "delivered", **TEXT_STATUS}
_SUCCESS_CODES = ["DELIVERED", "DELIVRD", "SUCCESS"]


def _with_code_word(status: pd.Series, err: pd.Series) -> pd.Series:
    """A failure whose code says EXPIRED / REJECTD takes that status."""
    word = map_status(err, SMPP_STATUS, upper=True)
    return status.where(~(status.eq("failed") & word.isin(["expired", "rejected"])), word)


def stage_details(raw: pd.DataFrame, tz: str, source_tz=None) -> pd.DataFrame:
    err = col(raw, "error")
    return staged(
        raw,
        tz,
        times={"submit_time": (col(raw, "sent"), {"source_tz": source_tz}),
               "done_time": (col(raw, "received"), {"source_tz": source_tz})},
        message_id=col(raw, "out_id"),
        phone=col(raw, "phone"),
        template_id=col(raw, "template"),
        content=col(raw, "content"),
        segments=to_number(col(raw, "segments")),
        status=_with_code_word(map_status(col(raw, "status"), _SEND_STATUS), err),
        status_code=col(raw, "status"),
        error_code=err.mask(err.str.upper().isin(_SUCCESS_CODES)),
        currency="CNY",
    )


def stage_report(raw: pd.DataFrame, tz: str, source_tz=None) -> pd.DataFrame:
    ok = col(raw, "success").str.lower()
    err = col(raw, "error")
    status = ok.map({"true": "delivered", "1": "delivered", "false": "failed", "0": "failed"}).astype(object)
    return staged(
        raw,
        tz,
        times={"submit_time": (col(raw, "sent"), {"source_tz": source_tz}),
               "done_time": (col(raw, "reported"), {"source_tz": source_tz})},
        message_id=col(raw, "out_id").fillna(col(raw, "biz_id")),
        phone=col(raw, "phone"),
        segments=to_number(col(raw, "segments")),
        status=_with_code_word(status.where(ok.notna()), err),
        status_code=col(raw, "success"),
        error_code=err.mask(err.str.upper().isin(_SUCCESS_CODES)),
        currency="CNY",
    )


def stage_intl(raw: pd.DataFrame, tz: str, source_tz=None) -> pd.DataFrame:
    err = col(raw, "error")
    return staged(
        raw,
        tz,
        times={"submit_time": (col(raw, "sent"), {"source_tz": source_tz}),
               "done_time": (col(raw, "received"), {"source_tz": source_tz})},
        message_id=col(raw, "message_id"),
        phone=col(raw, "phone"),
        segments=to_number(col(raw, "segments")),
        status=map_status(col(raw, "status"), {"1": "delivered", "2": "failed", "6": "expired"}),
        status_code=col(raw, "status"),
        error_code=err.mask(err.str.upper().isin(_SUCCESS_CODES)),
    )


_BEIJING = "Asia/Shanghai"

LAYOUTS = [
    Layout(
        "aliyun_details", "aliyun",
        fields={
            "phone": ("PhoneNum", "手机号码", "手机号", "接收号码", "号码"),
            "status": ("SendStatus", "发送状态"),
            "error": ("ErrCode", "运营商短信错误码", "运营商错误码", "错误码"),
            "template": ("TemplateCode", "模板CODE", "模板ID", "模板编号"),
            "content": ("Content", "短信内容", "内容"),
            "sent": ("SendDate", "发送时间", "发送日期"),
            "received": ("ReceiveDate", "接收时间", "回执时间", "接收日期"),
            "out_id": ("OutId", "外部流水扩展字段", "外部流水号"),
            "segments": ("计费条数", "短信条数"),
        },
        required=frozenset({"phone", "status", "sent"}),
        stage=stage_details,
        title="Aliyun send details (QuerySendDetails JSON/XML, console 发送记录 export)",
        source_tz=_BEIJING,
        id_per_phone=True,
    ),
    Layout(
        "aliyun_report", "aliyun",
        fields={
            "phone": ("phone_number",), "sent": ("send_time",), "reported": ("report_time",),
            "success": ("success",), "error": ("err_code",), "message": ("err_msg",),
            "segments": ("sms_size",), "biz_id": ("biz_id",), "out_id": ("out_id",),
        },
        required=frozenset({"phone", "sent", "reported", "success"}),
        stage=stage_report,
        title="Aliyun pushed receipts (SmsReport, a JSON array per push)",
        source_tz=_BEIJING,
        id_per_phone=True,
    ),
    Layout(
        "aliyun_intl_report", "aliyun",
        fields={
            "phone": ("To",), "status": ("Status",), "message_id": ("MessageId",), "segments": ("SmsSize",),
            "task": ("TaskId",), "sent": ("SendDate",), "received": ("ReceiveDate",), "error": ("ErrorCode",),
            "description": ("ErrorDescription",),
        },
        required=frozenset({"phone", "status", "message_id", "sent", "error"}),
        stage=stage_intl,
        title="Aliyun international webhook receipts",
        intl_phones=True,
    ),
]
