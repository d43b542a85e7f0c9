"""Gateway logs: what SMPP/CMPP gateways write, one record per line.

* **Raw SMPP receipts** (any log line holding the receipt text)::

      2025-05-06 09:00:03 dest=13800138000 id:0123456789 sub:001 dlvrd:001
      submit date:2505060900 done date:2505060901 stat:DELIVRD err:000 text:...

  The phone is taken from around the receipt (``dest=…``, ``phone:…`` or a bare number
  before ``id:``); a receipt without one loads without a phone (carrier unknown).
* **Jasmin** ``messages.log``: ``SMS-MT [cid:…] [queue-msgid:…] [smpp-msgid:…]
  [status:ESME_ROK] … [to:…] [content:…]`` is the submission (the line's time is the
  send time), ``DLR [cid:…] [smpp-msgid:…] [status:DELIVRD] [submit date:…] [done
  date:…] … [err:…]`` its receipt. Jasmin writes the SMSC's id in lower case on one and
  upper case on the other, and Python 3 builds print bytes as ``b'…'``.
* **Kannel** bearerbox access log: ``Sent SMS [SMSC:…] … [FID:…] [from:…] [to:…] …
  [msg:N:text] [udh:…]`` (parts 2+ of a long message have no FID and are joined to part 1
  by their concatenation header) and ``Receive DLR … [FID:…] … [to:…] …
  [msg:N:id:… stat:…]``. Numbers are international without ``+``.
* **Java CMPP/SMGP gateways** printing report objects: ``CmppReportRequestMessage
  [msgId=…, stat=…, submitTime=…, doneTime=…, destterminalId=…]`` (any ``key=value``
  spelling of those fields).

``sub`` and ``dlvrd`` are unreliable and ignored. Receipts arrive out of order (ENROUTE
after DELIVRD): the loader keeps the final state. Ids are compared in upper case. Times are the gateway's and SMSC's clocks
(``source_tz``, the log's zone by default).
"""

from __future__ import annotations

import pandas as pd

from ..codes import SMPP_STATUS, map_status
from ..normalize import parse_times
from ..schema import STRING
from ._layout import Layout, col, staged

_D = "[0-9]"
_TS = rf"^({_D}{{4}}-{_D}{{2}}-{_D}{{2}}[ T]{_D}{{2}}:{_D}{{2}}:{_D}{{2}})"
#: The parts of an SMPP receipt text: id and stat always, the dates and err where given
#: (dates have 10 or 12 digits).
_RECEIPT = {
    "id": r"\bid:[ \t]*([^ \t\]]+)",
    "submit": rf"submit date:[ \t]*({_D}{{10,12}})",
    "done": rf"done date:[ \t]*({_D}{{10,12}})",
    "stat": r"\bstat:[ \t]*([^ \t\]]+)",
    "err": r"\berr:[ \t]*([^ \t\]]+)",
}
_PHONE = (r"(?:dest(?:ination)?(?:_addr)?|phone|mobile|msisdn|to)[ \t]*[=:][ \t]*(?P<p1>\+?[0-9]{6,15})"
          r"|(?:^|[ \t,;|])(?P<p2>\+?[0-9]{11,15})(?:[ \t,;|]|$)")
_KINDS = {
    "jasmin_mt": r"SMS-MT \[cid:",
    "jasmin_api": r"SMS-MT \[uid:",
    "jasmin_dlr": r"\bDLR \[cid:",
    "jasmin_mo_receipt": r"SMS-MO \[.*\bid:[^ \t]+.*\bstat:",
    "jasmin_mo": r"SMS-MO \[",
    "kannel_sent": r"\b(?:Sent SMS|Send SMS) \[",
    "kannel_dlr": r"\bReceive DLR \[",
    "cmpp_report": r"(?i)msg_?id=[^,]+,.*stat=",
    "smpp": r"\bid:[ \t]*[^ \t]+.*\bstat:",
}
_HEX = {f"{i:02X}": i for i in range(256)}
_NOT_A_RECORD = {
    "jasmin_api": "Jasmin HTTP API line: the SMPP client's SMS-MT line of the same message is the record",
    "jasmin_mo": "inbound message (SMS-MO), not a send",
    None: "not a send or delivery-receipt line",
}


def _receipt(text: pd.Series) -> pd.DataFrame:
    """The receipt fields of each line (missing where a line lacks one)."""
    return pd.DataFrame({k: text.str.extract(p, expand=False).astype(STRING) for k, p in _RECEIPT.items()},
                        index=text.index)


def _field(text: pd.Series, name: str, pattern: str = r"[^\]]*") -> pd.Series:
    """The value of a ``[name:value]`` field, without Python's ``b'…'`` / ``'…'`` quotes."""
    value = text.str.extract(rf"\[{name}:({pattern})\]", expand=False).astype(STRING).str.strip()
    return value.str.replace(r"^b?'(.*)'$", r"\1", regex=True).replace("", pd.NA)


def _key(text: pd.Series, name: str, pattern: str = r"[^,\] \t]+") -> pd.Series:
    """The value of a ``name=value`` field (case-insensitive name)."""
    return text.str.extract(rf"(?i)\b{name}=\[?({pattern})", expand=False).astype(STRING).str.strip()


def normalize_ids(ids: pd.Series) -> pd.Series:
    """Gateway message ids as compared: upper case (Jasmin writes the SMSC's id in lower
    case on the submission and in upper case on the receipt)."""
    return ids.astype(STRING).str.upper().replace("", pd.NA)


def _smpp_status(stat: pd.Series) -> pd.Series:
    status = map_status(stat, SMPP_STATUS, upper=True)
    # CMPP extended codes (MK:0001 …) and blacklist words sit in the Stat field itself
    extended = stat.str.contains(":", regex=False).fillna(False) | stat.str.upper().isin(["DBBLACK", "MBBLACK"]).fillna(False)
    return status.where(~extended, "failed")


def _no_error(err: pd.Series) -> pd.Series:
    return err.mask(err.str.fullmatch("0+").fillna(False) | err.str.lower().isin(["nul", "none"]).fillna(False))


def stage(raw: pd.DataFrame, tz: str, source_tz=None) -> pd.DataFrame:
    text = col(raw, "text")
    kind = pd.Series(pd.NA, index=raw.index, dtype=object)
    for name, pattern in _KINDS.items():  # first matching kind wins
        kind = kind.where(kind.notna(), pd.Series(name, index=raw.index).where(
            text.str.contains(pattern, regex=True).fillna(False).to_numpy(dtype=bool)))
    at = text.str.extract(_TS, expand=False)
    opts = {"source_tz": source_tz}
    smsc = {"form": "yymmddhhmm", "source_tz": source_tz}
    parts = []

    def part(name, build):
        rows = kind.eq(name).fillna(False).to_numpy(dtype=bool)
        if rows.any():
            parts.append(build(raw[rows], text[rows], at[rows]))

    def jasmin_mt(r, t, ts):
        st = _field(t, "status")
        ok = st.str.contains("ESME_ROK", regex=False).fillna(False)
        return staged(r, tz, times={"submit_time": (ts, opts)}, message_id=normalize_ids(_field(t, "smpp-msgid")),
                      phone=_field(t, "to"), content=_field(t, "content", r".*?"),
                      status=pd.Series("pending", index=r.index, dtype=object).where(ok, "rejected"),
                      status_code=st, error_code=st.mask(ok))

    def receipt(r, t, ts, ids, stat, err, submit, done, phone):
        submit, done = (d.mask(d.str.fullmatch("0+").fillna(False)) for d in (submit, done))  # 0000000000: none
        out = staged(r, tz, times={"submit_time": (submit, smsc), "done_time": (done, smsc)},
                     time_source="receipt_submit", message_id=normalize_ids(ids), phone=phone,
                     status=_smpp_status(stat), status_code=stat, error_code=_no_error(err))
        return out

    def jasmin_dlr(r, t, ts):
        return receipt(r, t, ts, _field(t, "smpp-msgid"), _field(t, "status"), _field(t, "err"),
                       _field(t, "submit date"), _field(t, "done date"), pd.Series(pd.NA, index=r.index, dtype=STRING))

    def kannel_sent(r, t, ts):
        udh = _field(t, "udh").str.extract(r"^[0-9]+:050003([0-9A-Fa-f]{2})([0-9A-Fa-f]{2})([0-9A-Fa-f]{2})$")
        fid, to = _field(t, "FID"), _field(t, "to")
        # parts 2+ of a long message: the FID of part 1 with the same number and reference
        ref = to.fillna("") + "/" + udh[0].fillna("")
        fid = fid.where(fid.notna() | udh[0].isna(), fid.groupby(ref.to_numpy()).ffill())
        failed = t.str.contains("FAILED Send", regex=False).fillna(False)
        out = staged(r, tz, times={"submit_time": (ts, opts)}, message_id=normalize_ids(fid), phone=to,
                     content=_field(t, "msg", r".*?").str.replace(r"^[0-9]+:", "", regex=True),
                     segments=udh[1].str.upper().map(_HEX),
                     status=pd.Series("pending", index=r.index, dtype=object).where(~failed, "rejected"),
                     status_code=pd.Series(pd.NA, index=r.index, dtype=STRING).where(~failed, "FAILED"))
        # a part of a long message is loaded into its message, not a duplicate of part 1
        out["_part"] = udh[2].str.upper().map(_HEX).astype(STRING)
        return out

    def kannel_dlr(r, t, ts):
        rc = _receipt(_field(t, "msg", r".*?"))
        out = receipt(r, t, ts, _field(t, "FID").fillna(rc["id"]), rc["stat"], rc["err"], rc["submit"], rc["done"],
                      _field(t, "to"))
        # a receipt text without its dates: Kannel's own time of the receipt
        stamped, _ = parse_times(ts, tz=tz, source_tz=source_tz)
        out["done_time"] = out["done_time"].fillna(stamped)
        return out

    def cmpp(r, t, ts):
        phone = _key(t, "dest_?terminal_?id", r"[+0-9*]+")
        return receipt(r, t, ts, _key(t, "msg_?id"), _key(t, "stat"), pd.Series(pd.NA, index=r.index, dtype=STRING),
                       _key(t, "submit_?time", "[0-9]+"), _key(t, "done_?time", "[0-9]+"), phone)

    def jasmin_mo_receipt(r, t, ts):  # a receipt the SMSC sent as a deliver_sm: the handset is "from"
        rc = _receipt(_field(t, "content", r".*?"))
        return receipt(r, t, ts, rc["id"], rc["stat"], rc["err"], rc["submit"], rc["done"], _field(t, "from"))

    def smpp(r, t, ts):
        rc = _receipt(t)
        near = t.str.split("id:", n=1, regex=False).str[0].str.extract(_PHONE)
        return receipt(r, t, ts, rc["id"], rc["stat"], rc["err"], rc["submit"], rc["done"],
                       near["p1"].fillna(near["p2"]).astype(STRING))

    part("jasmin_mt", jasmin_mt)
    part("jasmin_dlr", jasmin_dlr)
    part("jasmin_mo_receipt", jasmin_mo_receipt)
    part("kannel_sent", kannel_sent)
    part("kannel_dlr", kannel_dlr)
    part("cmpp_report", cmpp)
    part("smpp", smpp)
    other = ~kind.isin(["jasmin_mt", "jasmin_dlr", "jasmin_mo_receipt", "kannel_sent", "kannel_dlr", "cmpp_report",
                        "smpp"]).to_numpy(dtype=bool)
    if other.any():
        rest = staged(raw[other], tz)
        rest["_reject"] = kind[other].map(_NOT_A_RECORD).fillna(_NOT_A_RECORD[None]).to_numpy()
        parts.append(rest)
    out = pd.concat(parts).reindex(raw.index) if parts else staged(raw, tz)
    return out


LAYOUTS = [Layout("gateway_log", "gateway", {"text": ()}, frozenset({"text"}), stage,
                  title="SMPP/CMPP gateway logs (raw receipts, Jasmin, Kannel, Java CMPP report objects)",
                  intl_phones=True)]
