"""Raw status and error codes mapped to canonical statuses and failure reasons.

The code tables every vendor shares (SMPP/CMPP words and extended codes, SNS's texts,
MCC-MNC networks), named by the layouts that read them (``codes = "smpp"``); each
vendor's own error codes are declared with its layouts (``[reasons]`` in
``analysis/layouts/<vendor>.toml``). Anything not listed maps to ``unknown`` and the raw
code stays in ``status_code`` / ``error_code`` so it remains visible in failure tracing.
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

#: Status words of console exports and API fields, Chinese and English.
TEXT_STATUS = {
    "发送成功": "delivered", "成功": "delivered", "接收成功": "delivered", "用户接收成功": "delivered",
    "已送达": "delivered", "送达": "delivered", "success": "delivered", "delivered": "delivered",
    "发送失败": "failed", "失败": "failed", "接收失败": "failed", "fail": "failed", "failed": "failed",
    "等待回执": "pending", "发送中": "pending", "待回执": "pending", "pending": "pending",
}

#: Chinese networks by MCC+MNC (the live carrier an export names, which wins over the
#: number's prefix: numbers move between carriers); other networks are left to the prefix.
MCCMNC = {
    **dict.fromkeys(["46000", "46002", "46004", "46007", "46008"], "China Mobile"),
    **dict.fromkeys(["46001", "46006", "46009"], "China Unicom"),
    **dict.fromkeys(["46003", "46005", "46011"], "China Telecom"),
    "46015": "China Broadnet",
}

#: The SNS usage report's and delivery logs' free texts: the first pattern found gives
#: the status and the failure reason.
SNS_TEXTS = [
    ("accepted by phone carrier|delivered", "delivered", None),
    ("opted out", "failed", "blacklisted"),
    ("blocked", "failed", "content_blocked"),
    ("invalid", "failed", "empty_number"),
    ("unreachable|unavailable|not reachable|attempting to reach phone", "failed", "unreachable"),
    ("expired|ttl", "expired", "expired"),
    ("rate exceeded|throttl", "failed", "flow_controlled"),
    ("pending|queued", "pending", None),
]


class CodeTable:
    """A shared code table a layout names (``codes = "smpp"``): exact words (compared
    without case) and, for what they do not name, patterns in order."""

    def __init__(self, words: dict[str, str], patterns: list[tuple[str, str]] = ()):
        self.words = {k.strip().lower(): v for k, v in words.items()}
        self.patterns = list(patterns)

    def lookup(self, raw: pd.Series) -> pd.Series:
        """The value of each raw word, missing where the table names none."""
        key = raw.astype(STRING).str.strip().str.lower()
        out = key.map(self.words).astype(object)
        for pattern, value in self.patterns:
            hit = out.isna() & key.str.contains(pattern, regex=True).fillna(False)
            out[hit.to_numpy(dtype=bool)] = value
        return out


def _mccmnc(raw: pd.Series) -> pd.Series:
    """MCC + MNC as one code: ``46000``, and ``4600`` (a one-digit MNC) read as ``46000``."""
    code = raw.astype(STRING).str.replace(r"[^0-9]", "", regex=True)
    code = code.where(code.str.len() != 4, code.str.slice(0, 3) + "0" + code.str.slice(3))
    return code.map(MCCMNC).astype(object)


class _Carriers(CodeTable):
    def lookup(self, raw: pd.Series) -> pd.Series:
        return _mccmnc(raw)


#: The code tables a layout may name (``codes = "…"``), shared by every vendor that writes
#: the same words.
CODE_TABLES: dict[str, CodeTable] = {
    # SMPP stat words and CMPP's 7-character Stat; a CMPP extended code (MK:0001 …) or a
    # blacklist word in the Stat field is a failure
    "smpp": CodeTable(SMPP_STATUS, [(r":", "failed"), (r"^(?:db|mb)black$", "failed")]),
    "twilio": CodeTable(TWILIO_STATUS),
    "vonage": CodeTable(VONAGE_STATUS),
    "canonical": CodeTable(CANONICAL_STATUS_ALIASES),
    "text_status": CodeTable(TEXT_STATUS),
    "sns": CodeTable({}, [(pattern, status) for pattern, status, _ in SNS_TEXTS]),
    "sns_reason": CodeTable({}, [(pattern, reason) for pattern, status, reason in SNS_TEXTS if reason]),
    "mccmnc": _Carriers({}),
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

    Looks the error code up in the vendor's table (the ``reasons`` its layouts declare,
    ``analysis/layouts/<vendor>.toml``), a free-text code by its words (SNS's provider
    responses), then both codes in the common table of CMPP/SMPP codes, then falls back
    on the status. A failure whose code says *expired* becomes status ``expired``, one
    whose code is the SMPP word ``REJECTD`` status ``rejected``. ``vendor``: the
    platform of every row (one name, or a Series of them).

    Returns
    -------
    (status, failure_reason) : two object Series aligned with the input; the reason is
        missing for delivered and pending rows.
    """
    vendors = vendor if isinstance(vendor, pd.Series) else pd.Series(vendor or "", index=status.index, dtype=object)
    return per_distinct(_classify_by_vendor, vendors, status.astype(object), status_code, error_code)


def vendor_reasons(vendor: str) -> dict[str, str]:
    """A vendor's error codes -> failure reasons: the ``reasons`` its layouts declare
    (upper-case codes)."""
    from .readers.layouts import reasons_of

    return reasons_of(vendor)


def _classify_by_vendor(vendor: pd.Series, status: pd.Series, status_code: pd.Series, error_code: pd.Series):
    """:func:`_classify` of each vendor's rows with its table (the rows are distinct ones)."""
    new_status, reason = status.copy(), pd.Series(None, index=status.index, dtype=object)
    vendor = vendor.astype(object).fillna("")
    for name in vendor.unique():
        at = vendor.eq(name).to_numpy(dtype=bool)
        s, r = _classify(status[at], status_code[at], error_code[at], table=vendor_reasons(str(name)))
        new_status[at], reason[at] = s.to_numpy(), r.to_numpy()
    return new_status, reason


def _classify(status: pd.Series, status_code: pd.Series, error_code: pd.Series, *, table: dict):
    err = error_code.astype(STRING).str.strip()
    stat = status_code.astype(STRING).str.strip()
    reason = err.str.upper().map(table) if table else pd.Series(pd.NA, index=status.index, dtype=object)
    # a free-text code (SNS's provider responses) by its words
    reason = reason.fillna(CODE_TABLES["sns_reason"].lookup(err.where(err.str.contains(" ").fillna(False))))
    reason = reason.fillna(err.str.upper().map(COMMON_REASONS))
    reason = reason.fillna(stat.str.upper().map(COMMON_REASONS))
    # a code that only says "unknown" yields to what the status itself says
    reason = reason.mask(reason == "unknown").fillna(status.map(_DEFAULT_REASON))
    failing = status.isin(list(_DEFAULT_REASON))
    reason = reason.where(failing).astype(object)
    new_status = status.where(~(failing & (reason == "expired")), "expired")
    # a failure whose code is the SMPP word REJECTD takes that status
    said = CODE_TABLES["smpp"].words
    word = err.str.lower().map(said).fillna(stat.str.lower().map(said))
    new_status = new_status.where(~(new_status.eq("failed") & word.eq("rejected")), "rejected")
    return new_status.astype(object), reason
