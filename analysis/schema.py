"""The canonical send log: columns, dtypes, display labels and vocabularies.

Everything after the load boundary trusts this schema. Column names are English
snake_case; the Chinese and English display labels used by Excel and charts live in
:data:`LABELS` and nowhere else.
"""

from __future__ import annotations

import pandas as pd

DEFAULT_TZ = "Asia/Shanghai"

#: Canonical status vocabulary (DESIGN.md section 4). ``pending``: no final receipt yet.
STATUSES = ["delivered", "failed", "expired", "rejected", "unknown", "pending"]
#: Statuses that are a final receipt (everything but ``pending``).
FINAL_STATUSES = STATUSES[:-1]

#: Failure-reason vocabulary (DESIGN.md section 5); the raw code is kept beside it.
FAILURE_REASONS = [
    "empty_number",
    "unreachable",
    "blacklisted",
    "content_blocked",
    "expired",
    "flow_controlled",
    "platform_rejected",
    "unknown",
]

CATEGORIES = ["verification", "notification", "marketing"]

STRING = pd.StringDtype("pyarrow")


def time_dtype(tz: str = DEFAULT_TZ) -> pd.DatetimeTZDtype:
    """Dtype of ``submit_time`` and ``done_time``: tz-aware, millisecond resolution."""
    return pd.DatetimeTZDtype("ms", tz)


#: Column -> dtype of the canonical send log, in column order. ``None`` marks the
#: timestamp columns, whose dtype depends on the time zone (see :func:`time_dtype`).
COLUMNS: dict[str, object] = {
    "vendor": "category",
    "channel": "category",
    "message_id": STRING,
    "phone": STRING,
    "country": "category",
    "carrier": "category",
    "province": "category",
    "city": "category",
    "template_id": "category",
    "category": pd.CategoricalDtype(CATEGORIES),
    "content": STRING,
    "segments": "Int16",
    "submit_time": None,
    "done_time": None,
    "status": pd.CategoricalDtype(STATUSES),
    "status_code": STRING,
    "error_code": STRING,
    "failure_reason": pd.CategoricalDtype(FAILURE_REASONS),
    "attempt": "Int16",
    "is_probe": "bool",
    "fee": "float64",
}

#: Display labels of every column and vocabulary value: ``LABELS[lang][key]``.
LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "vendor": "平台",
        "channel": "通道",
        "message_id": "消息ID",
        "phone": "手机号",
        "country": "国家",
        "carrier": "运营商",
        "province": "省份",
        "city": "城市",
        "template_id": "模板ID",
        "category": "短信类型",
        "content": "短信内容",
        "segments": "计费条数",
        "submit_time": "提交时间",
        "done_time": "回执时间",
        "status": "状态",
        "status_code": "状态码",
        "error_code": "错误码",
        "failure_reason": "失败原因",
        "attempt": "发送次数",
        "is_probe": "探针",
        "fee": "费用",
        # statuses
        "delivered": "成功",
        "failed": "失败",
        "expired": "过期",
        "rejected": "拒绝",
        "unknown": "未知",
        "pending": "等待回执",
        # failure reasons
        "empty_number": "空号",
        "unreachable": "关机/不可达",
        "blacklisted": "黑名单",
        "content_blocked": "内容或签名拦截",
        "flow_controlled": "流控",
        "platform_rejected": "平台拒绝",
        # categories
        "verification": "验证码",
        "notification": "通知",
        "marketing": "营销",
    },
    "en": {
        "vendor": "Vendor",
        "channel": "Channel",
        "message_id": "Message ID",
        "phone": "Phone",
        "country": "Country",
        "carrier": "Carrier",
        "province": "Province",
        "city": "City",
        "template_id": "Template ID",
        "category": "Category",
        "content": "Content",
        "segments": "Segments",
        "submit_time": "Submit time",
        "done_time": "Receipt time",
        "status": "Status",
        "status_code": "Status code",
        "error_code": "Error code",
        "failure_reason": "Failure reason",
        "attempt": "Attempt",
        "is_probe": "Probe",
        "fee": "Fee",
        "delivered": "Delivered",
        "failed": "Failed",
        "expired": "Expired",
        "rejected": "Rejected",
        "unknown": "Unknown",
        "pending": "Pending",
        "empty_number": "Empty number",
        "unreachable": "Powered off / unreachable",
        "blacklisted": "Blacklisted",
        "content_blocked": "Content or signature blocked",
        "flow_controlled": "Flow-controlled",
        "platform_rejected": "Rejected by platform",
        "verification": "Verification",
        "notification": "Notification",
        "marketing": "Marketing",
    },
}


def label(key: str, lang: str = "zh") -> str:
    """Display label of a column or vocabulary value; the key itself when unlabelled."""
    return LABELS[lang].get(key, key)


def empty_log(tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """An empty canonical send log with every column and dtype."""
    return conform(pd.DataFrame({c: pd.Series([], dtype=object) for c in COLUMNS}), tz=tz)


def conform(frame: pd.DataFrame, *, tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Cast a frame that already holds canonical values to the canonical dtypes.

    Columns missing from ``frame`` are added empty; extra columns are dropped; the
    column order is that of :data:`COLUMNS`. Values must already be canonical
    (statuses from :data:`STATUSES`, timestamps tz-aware …): this is the last step of
    loading, not a parser.
    """
    out = {}
    n = len(frame)
    for col, dtype in COLUMNS.items():
        values = frame[col] if col in frame else pd.Series(pd.NA, index=frame.index, dtype=object)
        if dtype is None:
            values = pd.to_datetime(values) if values.dtype == object else values
            if values.dt.tz is None:
                values = values.dt.tz_localize(tz)
            out[col] = values.dt.tz_convert(tz).astype(time_dtype(tz))
        elif col == "is_probe":
            out[col] = values.fillna(False).astype(bool) if n else values.astype(bool)
        elif isinstance(dtype, pd.CategoricalDtype):
            out[col] = values.astype(object).astype(dtype)
        elif dtype == "category":
            out[col] = values.astype(STRING).astype("category")
        elif dtype in ("Int16", "float64"):
            out[col] = pd.to_numeric(values.astype(object), errors="coerce").astype(dtype)
        else:
            out[col] = values.astype(dtype)
    return pd.DataFrame(out, index=pd.RangeIndex(n))


def validate(log: pd.DataFrame) -> None:
    """Raise ``ValueError`` unless ``log`` has exactly the canonical columns and dtypes."""
    if list(log.columns) != list(COLUMNS):
        raise ValueError(f"not a canonical send log: columns {list(log.columns)}")
    for col, dtype in COLUMNS.items():
        got = log[col].dtype
        if dtype is None:
            ok = isinstance(got, pd.DatetimeTZDtype)
        elif isinstance(dtype, pd.CategoricalDtype):
            ok = isinstance(got, pd.CategoricalDtype) and list(got.categories) == list(dtype.categories)
        elif dtype == "category":
            ok = isinstance(got, pd.CategoricalDtype)
        else:
            ok = got == dtype
        if not ok:
            raise ValueError(f"column {col!r} has dtype {got}, expected {dtype}")
