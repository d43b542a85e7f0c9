"""Tencent Cloud SMS: pulled receipts (PullSmsSendStatus), callback pushes, SendSms
responses (``SendStatusSet``), the send-record query (DescribeSendRecordList) and the
console's send-record export.

Every answer of the API is wrapped in ``{"Response": {...}}``. Receipts and SendSms
responses carry no send time: a receipt alone loads as a message sent at its receipt
time (``time_source = receipt``); a SendSms response joins its receipts by
``SerialNo`` and alone is rejected. Pulling consumes: each receipt comes once. Times are
Beijing time.
"""

from __future__ import annotations

import pandas as pd

from ._layout import TEXT_STATUS, Layout, col, staged, to_number

_REPORT = {"success": "delivered", "fail": "failed", **TEXT_STATUS}
_RECORD_STATUS = {"1": "rejected", "2": "delivered", "3": "pending", "4": "failed"}
_OK_CODES = ["DELIVRD", "用户短信接收成功", "用户接收成功"]
_BEIJING = "Asia/Shanghai"


def _status(report: pd.Series) -> pd.Series:
    s = report.str.lower()
    return s.map(_REPORT).astype(object).where(s.isna() | s.isin(list(_REPORT)), "unknown")


def _code(s: pd.Series) -> pd.Series:
    return s.mask(s.str.upper().isin(_OK_CODES) | s.isin(_OK_CODES))


def _e164(phone: pd.Series, country: pd.Series, local: pd.Series) -> pd.Series:
    """The number in E.164 where the record has it, else country code + local number."""
    e164 = phone.where(phone.str.startswith("+").fillna(False))
    return e164.fillna("+" + country.str.lstrip("+").fillna("86") + local.fillna(phone))


def _receive_time(values: pd.Series) -> tuple[pd.Series, dict]:
    """UserReceiveTime is Unix seconds (text in the 2019 API); 0 means none."""
    numeric = values.str.fullmatch("[0-9]+").fillna(False).all()
    values = values.mask(values.isin(["0"]))
    return values, ({"form": "unix"} if numeric else {"source_tz": _BEIJING})


def stage_pull(raw: pd.DataFrame, tz: str, source_tz=None) -> pd.DataFrame:
    return staged(
        raw,
        tz,
        times={"done_time": _receive_time(col(raw, "received"))},
        time_source="receipt",
        message_id=col(raw, "serial"),
        phone=_e164(col(raw, "phone"), col(raw, "country"), col(raw, "local")),
        status=_status(col(raw, "report")),
        status_code=col(raw, "report"),
        error_code=_code(col(raw, "description")),
    )


def stage_callback(raw: pd.DataFrame, tz: str, source_tz=None) -> pd.DataFrame:
    err = col(raw, "error").fillna(col(raw, "description"))  # errmsg holds the code
    return staged(
        raw,
        tz,
        times={"done_time": (col(raw, "received"), {"source_tz": source_tz})},
        time_source="receipt",
        message_id=col(raw, "serial"),
        phone="+" + col(raw, "country").str.lstrip("+").fillna("86") + col(raw, "phone"),
        status=_status(col(raw, "report")),
        status_code=col(raw, "report"),
        error_code=_code(err),
    )


def stage_send(raw: pd.DataFrame, tz: str, source_tz=None) -> pd.DataFrame:
    code = col(raw, "code")
    ok = code.str.lower().eq("ok").fillna(False)
    out = staged(
        raw,
        tz,
        message_id=col(raw, "serial"),
        phone=col(raw, "phone"),
        segments=to_number(col(raw, "fee")),
        status=pd.Series("pending", index=raw.index, dtype=object).where(ok, "rejected"),
        status_code=code,
        error_code=code.mask(ok),
        currency="CNY",
    )
    out["_alone"] = ("a SendSms response has no send time: load it with its receipts "
                     "(PullSmsSendStatus or callbacks) or use DescribeSendRecordList, which has SendTime")
    return out


def stage_record(raw: pd.DataFrame, tz: str, source_tz=None) -> pd.DataFrame:
    status_code = col(raw, "receipt_code")
    return staged(
        raw,
        tz,
        times={"submit_time": (col(raw, "sent"), {"form": "unix"}),
               "done_time": _receive_time(col(raw, "received"))},
        message_id=col(raw, "serial"),
        phone=col(raw, "phone"),
        content=col(raw, "content"),
        segments=to_number(col(raw, "fee")),
        status=col(raw, "status").map(_RECORD_STATUS).astype(object),
        status_code=col(raw, "status"),
        error_code=_code(status_code.fillna(col(raw, "request_code").mask(col(raw, "request_code").str.lower()
                                                                           .eq("ok")))),
        currency="CNY",
    )


def stage_console(raw: pd.DataFrame, tz: str, source_tz=None) -> pd.DataFrame:
    return staged(
        raw,
        tz,
        times={"submit_time": (col(raw, "sent"), {"source_tz": source_tz}),
               "done_time": (col(raw, "received"), {"source_tz": source_tz})},
        message_id=col(raw, "serial"),
        phone=col(raw, "phone"),
        template_id=col(raw, "template"),
        content=col(raw, "content"),
        segments=to_number(col(raw, "fee")),
        status=_status(col(raw, "report")),
        status_code=col(raw, "report"),
        error_code=_code(col(raw, "code")),
        currency="CNY",
    )


LAYOUTS = [
    Layout(
        "tencent_record", "tencent",
        fields={"serial": ("SerialNo",), "phone": ("PhoneNumber",), "status": ("SendStatus",),
                "sent": ("SendTime",), "received": ("UserReceiveTime",), "request_code": ("RequestCode",),
                "receipt_code": ("StatusCode",), "content": ("Content",), "iso": ("IsoCode",), "fee": ("Fee",)},
        required=frozenset({"serial", "phone", "status", "sent"}),
        stage=stage_record,
        title="Tencent send records (DescribeSendRecordList: send and receive times)",
        intl_phones=True,
    ),
    Layout(
        "tencent_pull", "tencent",
        fields={"serial": ("SerialNo",), "report": ("ReportStatus",),
                "received": ("UserReceiveTime", "UserReceiveUnixTime"), "country": ("CountryCode", "NationCode"),
                "local": ("SubscriberNumber",), "phone": ("PhoneNumber", "PurePhoneNumber"),
                "description": ("Description",), "session": ("SessionContext",)},
        required=frozenset({"serial", "report", "received"}),
        stage=stage_pull,
        title="Tencent pulled receipts (PullSmsSendStatus)",
        intl_phones=True,
    ),
    Layout(
        "tencent_callback", "tencent",
        fields={"serial": ("sid",), "report": ("report_status",), "phone": ("mobile",),
                "country": ("nationcode",), "received": ("user_receive_time",), "error": ("errmsg",),
                "description": ("description",)},
        required=frozenset({"serial", "report", "phone"}),
        stage=stage_callback,
        title="Tencent receipt callbacks (a JSON array per push)",
        intl_phones=True,
        source_tz=_BEIJING,
    ),
    Layout(
        "tencent_send", "tencent",
        fields={"serial": ("SerialNo",), "phone": ("PhoneNumber",), "fee": ("Fee",), "code": ("Code",),
                "message": ("Message",), "session": ("SessionContext",), "iso": ("IsoCode",)},
        required=frozenset({"serial", "phone", "fee", "code"}),
        stage=stage_send,
        title="Tencent SendSms responses (SendStatusSet: no send time)",
        intl_phones=True,
    ),
    Layout(
        "tencent_console", "tencent",
        fields={"phone": ("手机号码", "手机号", "号码"), "sent": ("发送时间", "下发时间"),
                "report": ("回执状态", "接收状态"), "received": ("回执时间", "用户接收时间", "接收时间"),
                "code": ("回执错误码", "回执码", "错误码", "状态码"), "description": ("回执描述", "状态描述"),
                "fee": ("计费条数",), "template": ("模板ID", "模板编号"), "content": ("短信内容", "内容"),
                "serial": ("发送流水号", "流水号", "SerialNo", "Sid")},
        required=frozenset({"phone", "sent", "report"}),
        stage=stage_console,
        title="Tencent console send-record export (Chinese headers)",
        source_tz=_BEIJING,
    ),
]
