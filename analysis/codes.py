"""Raw status and error codes mapped to canonical statuses and failure reasons.

Built from the platforms' documented codes (Aliyun, Tencent, Twilio, Vonage, SNS error
code pages) and the community tables of CMPP extended codes. Anything not listed maps to ``unknown`` and the raw code
stays in ``status_code`` / ``error_code`` so it remains visible in failure tracing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .distinct import per_distinct
from .schema import STRING

# --- statuses -------------------------------------------------------------------------

#: SMPP ``stat`` words and the 7-character CMPP Stat (same words).
SMPP_STATUS = {
    "DELIVRD": "delivered",
    "EXPIRED": "expired",
    "DELETED": "failed",
    "UNDELIV": "failed",
    # ACCEPTD: "read manually on the subscriber's behalf" -- final, but not a delivery to
    # the handset, so it is not counted as arrived.
    "ACCEPTD": "unknown",
    "UNKNOWN": "unknown",
    "REJECTD": "rejected",
    "ENROUTE": "pending",
    "FAILED": "failed",  # not an SMPP word, but gateways write it
}

TWILIO_STATUS = {
    "delivered": "delivered",
    "read": "delivered",
    "sent": "pending",  # handed to the carrier, no receipt (yet)
    "queued": "pending",
    "sending": "pending",
    "accepted": "pending",
    "scheduled": "pending",
    "failed": "failed",
    "undelivered": "failed",
    "partially_delivered": "failed",
    "canceled": "rejected",
}

VONAGE_STATUS = {
    "delivered": "delivered",
    "accepted": "pending",
    "buffered": "pending",
    "expired": "expired",
    "failed": "failed",
    "rejected": "rejected",
    "unknown": "unknown",
}

CANONICAL_STATUS_ALIASES = {
    # canonical words map to themselves; Chinese labels of a hand-kept sheet too
    "delivered": "delivered", "成功": "delivered", "success": "delivered",
    "failed": "failed", "失败": "failed", "fail": "failed",
    "expired": "expired", "过期": "expired",
    "rejected": "rejected", "拒绝": "rejected",
    "unknown": "unknown", "未知": "unknown",
    "pending": "pending", "等待回执": "pending", "发送中": "pending",
}

# --- failure reasons --------------------------------------------------------------------

#: Codes every gateway may carry (CMPP extended codes, SMPP words, other platforms'
#: normalised codes). Keys are upper case.
COMMON_REASONS = {
    # empty or invalid number
    **dict.fromkeys(["CB:0001", "CB:0053", "DB:0101", "MK:0001", "MI:0073"], "empty_number"),
    # suspended line, powered off, out of coverage
    **dict.fromkeys(
        ["MK:0005", "MK:0013", "DB:0102", "MK:0010", "MK:0023", "MI:0024", "NE:0105"],
        "unreachable",
    ),
    # blacklists
    **dict.fromkeys(["DB:0144", "DBBLACK", "MBBLACK", "CR:0201", "W-BLACK"], "blacklisted"),
    # spam, content, signature and provincial blocks
    **dict.fromkeys(
        ["MK:0115", "MN:0001", "MB:1041", "MK:0012", "MK:0015", "MK:0036", "CR:0200", "CR:0212"],
        "content_blocked",
    ),
    # daily limit, flow control
    **dict.fromkeys(["DB:0142", "IB:0008"], "flow_controlled"),
    # time-window control and platform refusals
    **dict.fromkeys(["CR:0203", "REJECTD"], "platform_rejected"),
    "EXPIRED": "expired",
    # number ported, and words that say nothing about the cause
    **dict.fromkeys(["NP:1243", "NE:0106", "UNKNOWN", "UNDELIV", "DELETED"], "unknown"),
}

VENDOR_REASONS: dict[str, dict[str, str]] = {
    "twilio": {
        "30003": "unreachable",
        "30005": "empty_number",
        "30006": "unreachable",
        "30007": "content_blocked",
        "30610": "platform_rejected",
    },
    "vonage": {
        "1": "unknown",
        "2": "unreachable",  # absent subscriber, temporary
        "3": "empty_number",  # absent subscriber, permanent
        "4": "blacklisted",  # call barred by user
        "5": "unknown",  # portability error
        "6": "content_blocked",  # anti-spam rejection
        "7": "unreachable",  # handset busy
        "8": "unreachable",  # network error
        "9": "empty_number",  # illegal number
        "10": "content_blocked",  # illegal message
        "11": "unreachable",  # unroutable
        "12": "unreachable",  # destination unreachable
        "13": "content_blocked",  # subscriber age restriction
        "14": "content_blocked",  # number blocked by carrier
    },
    "tencent": {
        "1029": "platform_rejected",  # marketing outside 8:00-22:00
        "1015": "blacklisted",
        "-106": "content_blocked",  # carrier keyword block
        "002": "unreachable",  # off, suspended or out of service
    },
    "aliyun": {
        "-95": "empty_number",  # receipt code of an empty number
        "GL:0000": "flow_controlled",  # frequency limit
        "YX:9403": "blacklisted",
    },
}

#: Fallback reason by canonical status when no code is known.
_DEFAULT_REASON = {
    "failed": "unknown",
    "expired": "expired",
    "rejected": "platform_rejected",
    "unknown": "unknown",
}


def map_status(raw: pd.Series, table: dict[str, str], *, upper: bool = False) -> pd.Series:
    """Map raw status words to canonical statuses; unmapped non-empty words -> ``unknown``.

    Missing raw values stay missing (the caller decides what an absent status means).
    """
    table = {(k.upper() if upper else k.lower()): v for k, v in table.items()}

    def mapped(raw: pd.Series) -> pd.Series:
        key = raw.astype(STRING).str.strip()
        key = key.str.upper() if upper else key.str.lower()
        out = key.map(table)
        return out.where(out.notna() | key.isna(), "unknown").astype(object)

    return per_distinct(mapped, raw)


def classify_failures(
    status: pd.Series,
    status_code: pd.Series,
    error_code: pd.Series,
    *,
    vendor: str | pd.Series | None = None,
) -> tuple[pd.Series, pd.Series]:
    """Failure reason of every non-delivered final row, and the status it implies.

    Looks the error code up in the vendor's table, then both codes in the common
    table of CMPP/SMPP codes, then falls back on the status. A failure whose code says
    *expired* becomes status ``expired``; one whose code says *rejected by platform*
    keeps status ``failed`` unless the status already says ``rejected``. ``vendor``: the
    platform of every row (one name, or a Series of them).

    Returns
    -------
    (status, failure_reason) : two object Series aligned with the input; the reason is
        missing for delivered and pending rows.
    """
    vendors = vendor if isinstance(vendor, pd.Series) else pd.Series(vendor or "", index=status.index, dtype=object)
    return per_distinct(_classify_by_vendor, vendors, status.astype(object), status_code, error_code)


def _classify_by_vendor(vendor: pd.Series, status: pd.Series, status_code: pd.Series, error_code: pd.Series):
    """:func:`_classify` of each vendor's rows with its table (the rows are distinct ones)."""
    new_status, reason = status.copy(), pd.Series(None, index=status.index, dtype=object)
    vendor = vendor.astype(object).fillna("")
    for name in vendor.unique():
        at = vendor.eq(name).to_numpy(dtype=bool)
        s, r = _classify(status[at], status_code[at], error_code[at], table=VENDOR_REASONS.get(str(name), {}))
        new_status[at], reason[at] = s.to_numpy(), r.to_numpy()
    return new_status, reason


def _classify(status: pd.Series, status_code: pd.Series, error_code: pd.Series, *, table: dict):
    err = error_code.astype(STRING).str.strip()
    stat = status_code.astype(STRING).str.strip()
    reason = err.map(table) if table else pd.Series(pd.NA, index=status.index, dtype=object)
    reason = reason.fillna(err.str.upper().map(COMMON_REASONS))
    reason = reason.fillna(stat.str.upper().map(COMMON_REASONS))
    # a code that only says "unknown" yields to what the status itself says
    reason = reason.mask(reason == "unknown").fillna(status.map(_DEFAULT_REASON))
    failing = status.isin(list(_DEFAULT_REASON))
    reason = reason.where(failing).astype(object)
    new_status = status.where(~(failing & (reason == "expired")), "expired")
    return new_status.astype(object), reason


def sns_status(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """AWS SNS usage-report ``DeliveryStatus`` free text -> (status, failure_reason)."""
    t = text.astype(STRING).str.lower().fillna("")
    rules = [
        ("accepted by phone carrier|delivered", "delivered", None),
        ("opted out", "failed", "blacklisted"),
        ("blocked", "failed", "content_blocked"),
        ("invalid", "failed", "empty_number"),
        ("unreachable|unavailable|not reachable|attempting to reach phone", "failed", "unreachable"),
        ("expired|ttl", "expired", "expired"),
        ("rate exceeded|throttl", "failed", "flow_controlled"),
        ("pending|queued", "pending", None),
    ]
    status = np.full(len(t), "unknown", dtype=object)
    reason = np.full(len(t), "unknown", dtype=object)
    done = np.zeros(len(t), dtype=bool)
    for pattern, st, rs in rules:
        hit = t.str.contains(pattern, regex=True).to_numpy(dtype=bool) & ~done
        status[hit] = st
        reason[hit] = rs
        done |= hit
    status[(t == "").to_numpy()] = None
    idx = text.index
    return pd.Series(status, index=idx), pd.Series(reason, index=idx).where(
        pd.Series(status, index=idx).isin(list(_DEFAULT_REASON))
    )
