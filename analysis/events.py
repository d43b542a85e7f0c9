"""The other inputs: click / conversion events, inbound replies, complaints, vendor bills.

:func:`read_events` reads any of them (CSV in any encoding, XLSX, Parquet) with the same
row accounting as the send log; :func:`attach_events` joins clicks, replies and complaints
to the log by message id, or by phone (and template) within a time window.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .normalize import normalize_phones, parse_times
from .readers import LoadError, LoadResult, detect_encoding, detect_layout, read_raw, records_json
from .schema import DEFAULT_TZ, STRING, reason_codes

#: Columns of each kind, with the header spellings accepted for them.
KINDS: dict[str, dict[str, tuple[str, ...]]] = {
    "bill": {
        "vendor": ("vendor", "平台", "供应商"),
        "period": ("period", "month", "账期", "月份"),
        "billed_count": ("billed_count", "计费条数", "billed"),
        "unit_price": ("unit_price", "单价", "price"),
        "amount": ("amount", "金额", "total"),
        "currency": ("currency", "币种", "货币"),
    },
    "replies": {
        "phone": ("phone", "mobile", "手机号", "from"),
        "reply_time": ("reply_time", "mo_time", "回复时间", "time"),
        "text": ("text", "content", "回复内容", "body"),
    },
    "complaints": {
        "message_id": ("message_id", "消息id", "msg_id"),
        "phone": ("phone", "mobile", "手机号"),
        "complaint_time": ("complaint_time", "投诉时间", "time"),
    },
    "clicks": {
        "message_id": ("message_id", "消息id", "msg_id"),
        "vendor": ("vendor", "平台"),
        "phone": ("phone", "mobile", "手机号"),
        "template_id": ("template_id", "模板id", "template"),
        "event_time": ("event_time", "click_time", "点击时间", "time"),
        "event": ("event", "event_type", "事件"),
    },
}
#: The headers that make a file one kind (checked in this order).
_SIGNS = {
    "bill": {"billed_count", "计费条数"},
    "complaints": {"complaint_time", "投诉时间"},
    "replies": {"reply_time", "mo_time", "回复时间", "回复内容"},
    "clicks": {"event_time", "click_time", "点击时间", "event", "event_type"},
}
_TIME = {"replies": "reply_time", "complaints": "complaint_time", "clicks": "event_time"}

#: Reply texts counted as an unsubscribe (after trimming, case-insensitive), and words
#: that make any reply containing them one.
UNSUBSCRIBE_REPLIES = ("T", "TD", "R", "N", "STOP", "UNSUBSCRIBE", "退订", "拒收", "退")
UNSUBSCRIBE_WORDS = ("退订", "拒收")


def event_kind(headers) -> str | None:
    """``bill``, ``complaints``, ``replies``, ``clicks``, or None for anything else."""
    heads = {str(h).strip().lower() for h in headers}
    for kind, signs in _SIGNS.items():
        if heads & signs:
            return kind
    return None


def read_events(path: str | Path, *, tz: str = DEFAULT_TZ) -> LoadResult:
    """Read a click, reply, complaint or bill file; the kind is told by its headers.

    Returns
    -------
    LoadResult
        ``log`` holds the rows read, with the columns of their kind (``kind`` in
        ``log.attrs``):

        * clicks: ``message_id``, ``vendor``, ``phone``, ``template_id``, ``event_time``,
          ``event`` (``click`` or ``conversion``);
        * replies: ``phone``, ``reply_time``, ``text``, ``unsubscribe`` (bool);
        * complaints: ``message_id``, ``phone``, ``complaint_time``;
        * bill: ``vendor``, ``period`` (``YYYY-MM``), ``billed_count``, ``unit_price``,
          ``amount``.

        ``rejects`` and ``summary`` account for every row as for the send log.
    """
    raw = read_raw(path)
    frame = raw.frame
    kind = event_kind(frame.columns)
    if kind is None:
        raise LoadError(f"{path}: not a click, reply, complaint or bill file (headers: {', '.join(map(str, frame.columns))})")
    lower = {str(c).strip().lower(): c for c in frame.columns}
    cols = {}
    for name, spellings in KINDS[kind].items():
        src = next((lower[s] for s in spellings if s in lower), None)
        cols[name] = frame[src].astype(STRING).str.strip() if src is not None else pd.Series(pd.NA, index=frame.index, dtype=STRING)
    out = pd.DataFrame(cols, index=frame.index)
    reason = pd.Series(pd.NA, index=frame.index, dtype=STRING)
    if "phone" in out:
        phone, why = normalize_phones(out["phone"])
        out["phone"] = phone
        reason = reason.fillna(why.where(out["phone"].isna() & cols["phone"].notna()))
    if kind in _TIME:
        times, why = parse_times(out[_TIME[kind]], tz=tz)
        out[_TIME[kind]] = times
        reason = reason.fillna(why).fillna(pd.Series("missing time", index=out.index, dtype=STRING).where(times.isna()))
    if kind == "bill":
        out = _bill(out)
        reason = reason.fillna(pd.Series("unreadable number", index=out.index, dtype=STRING).where(out["billed_count"].isna()))
    elif kind == "clicks":
        if out["message_id"].isna().all() and out["phone"].isna().all():
            raise LoadError(f"{path}: a click file needs message_id or phone")
        out["event"] = out["event"].str.lower().fillna("click").where(lambda e: e.isin(["click", "conversion"]), "click")
        reason = reason.fillna(
            pd.Series("no message id or phone", index=out.index, dtype=STRING).where(out["message_id"].isna() & out["phone"].isna())
        )
    elif kind == "replies":
        out["unsubscribe"] = is_unsubscribe(out["text"])
    bad = reason.notna().to_numpy()
    dup = out.duplicated().to_numpy() & ~bad
    lines = raw.frame["_line"] if "_line" in raw.frame else pd.Series(np.arange(len(frame)) + 2, index=frame.index)
    rejects = pd.DataFrame({"file": str(path), "line": lines[bad].to_numpy(), "reason": reason[bad].to_numpy(),
                            "record": records_json(frame[bad])})
    for line, why, text in raw.bad:
        rejects.loc[len(rejects)] = [str(path), line, why, text]
    rejects.insert(3, "reason_code", reason_codes(rejects["reason"]))
    log = out[~bad & ~dup].reset_index(drop=True)
    log.attrs["kind"] = kind
    summary = pd.DataFrame([{
        "file": str(path), "layout": f"{kind}_file", "vendor": ", ".join(sorted(log["vendor"].dropna().unique())) or None if "vendor" in log else None,
        "encoding": raw.encoding, "rows_read": len(frame) + len(raw.bad), "loaded": len(log),
        "rejected": len(rejects), "duplicates": int(dup.sum()), "messages": len(log),
    }])
    return LoadResult(log=log, rejects=rejects, summary=summary)


def _bill(out: pd.DataFrame) -> pd.DataFrame:
    num = {c: pd.to_numeric(out[c].str.replace(",", "", regex=False), errors="coerce").astype("float64")
           for c in ("billed_count", "unit_price", "amount")}
    period = pd.to_datetime(out["period"].str.replace("/", "-", regex=False).str.slice(0, 7), format="%Y-%m", errors="coerce")
    return pd.DataFrame({
        "vendor": out["vendor"].str.lower(),
        "period": pd.Series(period.dt.strftime("%Y-%m"), index=out.index, dtype=STRING).fillna(out["period"]),
        "billed_count": num["billed_count"].round().astype("Int64"),
        "unit_price": num["unit_price"],
        "amount": num["amount"].fillna(num["billed_count"] * num["unit_price"]),
        "currency": out["currency"].str.upper(),
    })


def is_unsubscribe(text: pd.Series) -> pd.Series:
    """True where a reply asks to stop: ``T``, ``TD``, ``退订``, ``R``, ``拒收``, ``STOP``, ``N`` …"""
    t = text.astype(STRING).str.strip().str.upper()
    words = "|".join(map(re.escape, UNSUBSCRIBE_WORDS))
    return (t.isin(UNSUBSCRIBE_REPLIES) | t.str.contains(words, regex=True)).fillna(False).astype(bool)


def attach_events(
    log: pd.DataFrame,
    *,
    clicks: pd.DataFrame | None = None,
    replies: pd.DataFrame | None = None,
    complaints: pd.DataFrame | None = None,
    window: str | pd.Timedelta = "72h",
) -> pd.DataFrame:
    """The log with per-message event columns, for the open, conversion, complaint and
    unsubscribe rates.

    Clicks and complaints join by ``(vendor, message_id)`` (``message_id`` alone when the
    file has no vendor); without an id, by phone (and template when given) to the latest
    message sent at most ``window`` before the event. Replies join by phone to the latest
    delivered message at most ``window`` before the reply.

    Returns
    -------
    DataFrame: ``log`` plus, for each input given,

    * clicks: ``clicks`` (click events, Int32), ``clicked`` (bool), ``converted`` (bool);
    * replies: ``unsubscribed`` (bool): an unsubscribe reply was attributed to the message;
    * complaints: ``complained`` (bool).
    """
    window = pd.Timedelta(window)
    out = log.copy()
    pos = pd.Series(np.arange(len(log)), index=log.index)
    if clicks is not None:
        hit = _match(log, clicks, "event_time", window)
        is_click = clicks["event"].eq("click").to_numpy(dtype=bool)
        out["clicks"] = _count(hit[is_click], len(log)).astype("int32")
        out["clicked"] = out["clicks"] > 0
        out["converted"] = _count(hit[~is_click], len(log)) > 0
    if replies is not None:
        unsub = replies[replies["unsubscribe"].to_numpy(dtype=bool)]
        delivered = log["status"].astype(object).eq("delivered").to_numpy(dtype=bool)
        hit = _asof(log[delivered], pos[delivered], unsub, "reply_time", window, keys=["phone"])
        out["unsubscribed"] = _count(hit, len(log)) > 0
    if complaints is not None:
        out["complained"] = _count(_match(log, complaints, "complaint_time", window), len(log)) > 0
    return out


def _count(hit: np.ndarray, n: int) -> np.ndarray:
    hit = hit[hit >= 0]
    return np.bincount(hit, minlength=n)[:n]


def _match(log: pd.DataFrame, events: pd.DataFrame, time_col: str, window: pd.Timedelta) -> np.ndarray:
    """Row position in ``log`` of each event (-1 when it matches nothing)."""
    pos = pd.Series(np.arange(len(log)), index=log.index)
    hit = np.full(len(events), -1, dtype=np.int64)
    has_id = events["message_id"].notna().to_numpy() if "message_id" in events else np.zeros(len(events), bool)
    if has_id.any():
        keys = ["vendor", "message_id"] if "vendor" in events and events["vendor"].notna().any() else ["message_id"]
        left = events.loc[has_id, keys].astype(object).reset_index(drop=True)
        right = log[keys].astype(object).assign(_pos=pos.to_numpy()).drop_duplicates(keys)
        found = left.merge(right, on=keys, how="left")["_pos"]
        hit[has_id] = found.fillna(-1).to_numpy(dtype=np.int64)
        hit = _match_request(log, pos, events, hit, has_id, keys)
    rest = ~has_id & events["phone"].notna().to_numpy()
    if rest.any():
        keys = ["phone", "template_id"] if "template_id" in events and events.loc[rest, "template_id"].notna().all() else ["phone"]
        hit[rest] = _asof(log, pos, events[rest], time_col, window, keys=keys)
    return hit


def _match_request(log, pos, events, hit, has_id, keys) -> np.ndarray:
    """Events whose id names a request (Aliyun's OutId, shared by a batch: the message id
    is ``request#phone-hash``) meet the message of that request and the event's phone,
    or without a phone the request's only message."""
    left_over = has_id & (hit < 0)
    if not left_over.any() or not log["message_id"].astype(STRING).str.contains("#", regex=False).any():
        return hit
    request = log["message_id"].astype(STRING).str.split("#", n=1).str[0]
    right = log[keys].astype(object).assign(message_id=request.astype(object).to_numpy(), _pos=pos.to_numpy(),
                                            phone=log["phone"].astype(object).to_numpy())
    ev = events.loc[left_over].reset_index(drop=True)
    with_phone = ev["phone"].notna().to_numpy() if "phone" in ev else np.zeros(len(ev), bool)
    found = np.full(len(ev), -1, dtype=np.int64)
    if with_phone.any():
        on = [*keys, "phone"]
        m = ev.loc[with_phone, on].astype(object).merge(right.drop_duplicates(on), on=on, how="left")["_pos"]
        found[with_phone] = m.fillna(-1).to_numpy(dtype=np.int64)
    if (~with_phone).any():
        only = right[~right.duplicated(keys, keep=False)]  # requests with one message
        m = ev.loc[~with_phone, keys].astype(object).merge(only[[*keys, "_pos"]], on=keys, how="left")["_pos"]
        found[~with_phone] = m.fillna(-1).to_numpy(dtype=np.int64)
    hit = hit.copy()
    hit[left_over] = found
    return hit


def _asof(log, pos, events, time_col, window, *, keys) -> np.ndarray:
    """Position of the latest ``log`` row with the same keys sent at most ``window`` before."""
    if not len(events) or not len(log):
        return np.full(len(events), -1, dtype=np.int64)
    left = events[keys].astype(object).reset_index(drop=True)
    left["t"] = _utc(events[time_col])
    left["_i"] = np.arange(len(events))
    right = log[keys].astype(object).reset_index(drop=True)
    right["t"] = _utc(log["submit_time"])
    right["_pos"] = pos.to_numpy()
    left = left.dropna(subset=["t"]).sort_values("t")
    right = right.dropna(subset=["t"]).sort_values("t")
    m = pd.merge_asof(left, right, on="t", by=keys, direction="backward", tolerance=window)
    hit = np.full(len(events), -1, dtype=np.int64)
    hit[m["_i"].to_numpy()] = m["_pos"].fillna(-1).to_numpy(dtype=np.int64)
    return hit


def _utc(t: pd.Series) -> pd.Series:
    return t.dt.tz_convert("UTC").astype("datetime64[ns, UTC]").reset_index(drop=True)


@dataclass
class Inputs:
    """Everything read for a report: the send log with events joined, and the accounting.

    Attributes
    ----------
    log : canonical send log plus the :func:`attach_events` columns of the event files.
    bill : vendor bills (empty when none was given).
    summary : row accounting per input file (``LoadResult.summary`` columns).
    rejects : rejected rows of every input (file, line, reason, reason_code, record).
    files : the input files, after expanding folders.
    """

    log: pd.DataFrame
    bill: pd.DataFrame
    summary: pd.DataFrame
    rejects: pd.DataFrame
    files: list[Path]

    @property
    def has_clicks(self) -> bool:
        """Click events were given and joined (the click-through sections need them)."""
        return "clicked" in self.log

    @property
    def has_bill(self) -> bool:
        return len(self.bill) > 0


_SUFFIXES = {".csv", ".txt", ".tsv", ".xlsx", ".xlsm", ".xls", ".parquet", ".pq", ".jsonl", ".ndjson", ".json", ".xml",
             ".gz", ".log"}


def load_inputs(
    paths=None,
    *,
    vendors=None,
    tz: str = DEFAULT_TZ,
    source_tz: str | None = None,
    vendor: str | None = None,
    mapping=None,
    progress: bool = False,
) -> Inputs:
    """Read send-log exports, stores and event files together, telling them apart by
    their headers, and join the events to the log.

    ``paths`` may hold export files, the Parquet store (``data/interim``) and folders
    (every export in them). Click, reply, complaint and bill files are recognised by
    their headers (:func:`event_kind`); everything else is read as a send log
    (:func:`analysis.load_send_log`). With no ``paths``, :func:`analysis.config.default_inputs`
    (the store and the demo's event files). ``vendors`` keeps only those vendors' messages
    and bills; ``vendor``, ``mapping`` and ``source_tz`` are those of :func:`analysis.load_send_log`.
    """
    from .readers import load_send_log

    if not paths:
        from .config import default_inputs

        paths = default_inputs()
    files, in_folders = expand_inputs(paths)
    logs, events = split_inputs(files)
    if not logs:
        raise LoadError("no send log among the inputs: give exports or the store (data/interim)")
    result = load_send_log(logs, vendor=vendor, mapping=mapping, tz=tz, source_tz=source_tz, progress=progress,
                           skip_unknown=in_folders)
    summary = result.summary
    stores = [f for f in logs if f.is_dir()]
    if stores and len(stores) == len(logs) and len(store_accounting(stores)):
        summary = store_accounting(stores)
    joined, read = read_event_files(events, tz=tz)
    log = attach_events(result.log, clicks=joined.get("clicks"), replies=joined.get("replies"),
                        complaints=joined.get("complaints"))
    summary = pd.concat([summary, *[r.summary for r in read]], ignore_index=True)
    rejects = pd.concat([result.rejects, *[r.rejects for r in read]], ignore_index=True)
    bill = joined["bill"]
    if vendors:
        keep = {str(v).lower() for v in ([vendors] if isinstance(vendors, str) else vendors)}
        log = log[log["vendor"].astype(str).str.lower().isin(keep).to_numpy()].reset_index(drop=True)
        bill = bill[bill["vendor"].astype(str).str.lower().isin(keep)].reset_index(drop=True)
    return Inputs(log=log, bill=bill, summary=summary, rejects=rejects, files=files)


def split_inputs(files: list[Path]) -> tuple[list[Path], dict[str, list[Path]]]:
    """Send-log inputs (exports and stores), and event files by kind (told by headers)."""
    logs, events = [], {}
    for f in files:
        kind = None if f.is_dir() else _peek_kind(f)
        if kind is None:
            logs.append(f)
        else:
            events.setdefault(kind, []).append(f)
    return logs, events


def read_event_files(events: dict[str, list[Path]], *, tz: str = DEFAULT_TZ) -> tuple[dict, list[LoadResult]]:
    """Read event files by kind; returns each kind's rows stacked (``bill`` always
    present, empty without a bill) and every file's :class:`LoadResult`."""
    read = {kind: [read_events(f, tz=tz) for f in paths] for kind, paths in events.items()}
    joined = {kind: pd.concat([r.log for r in results], ignore_index=True) for kind, results in read.items()}
    joined.setdefault("bill", pd.DataFrame(columns=list(KINDS["bill"])))
    return joined, [r for results in read.values() for r in results]


def store_accounting(stores: list[Path]) -> pd.DataFrame:
    """The ingest's own row accounting beside each store, when ``sms-ledger ingest``
    wrote it (empty otherwise)."""
    found = [s.parent / "ingest-summary.csv" for s in stores if (s.parent / "ingest-summary.csv").exists()]
    return pd.concat([pd.read_csv(p) for p in found], ignore_index=True) if found else pd.DataFrame()


def expand_inputs(paths) -> tuple[list[Path], frozenset[Path]]:
    """The files among ``paths``, folders expanded (the store of a folder that holds one,
    else every export in it), and which of them were found in a folder: those are skipped
    with a note, not an error, when they are not exports (a manifest, notes)."""
    from .store import store_path

    if isinstance(paths, (str, Path)):
        paths = [paths]
    out, found = [], set()
    for p in map(Path, paths):
        if not p.exists():
            raise LoadError(f"{p}: no such file or folder")
        if p.is_dir():
            if store_path(p).exists():
                out.append(store_path(p))
            elif p.name == "send_log" or any(p.glob("*/*.parquet")) or any(p.glob("*.parquet")):
                out.append(p)
            else:
                members = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in _SUFFIXES)
                if not members:
                    raise LoadError(f"{p}: no exports and no store in this folder")
                out.extend(members)
                found.update(members)
        else:
            out.append(p)
    return out, frozenset(found)


def _peek_kind(path: Path) -> str | None:
    """The event kind of a file from its header line, without reading it all."""
    suffix = path.suffix.lower()
    try:
        if suffix in {".xlsx", ".xlsm", ".xls"}:
            heads = pd.read_excel(path, nrows=0, engine="calamine").columns
        elif suffix in {".parquet", ".pq"}:
            import pyarrow.parquet as pq

            heads = pq.read_schema(path).names
        elif suffix in {".gz", ".jsonl", ".ndjson", ".log", ".json", ".xml"}:
            return None
        else:
            with open(path, "rb") as fh:  # the head only: an export can be gigabytes
                sample = fh.read(65536)
            text = sample.decode(detect_encoding(sample, path=path), errors="replace").lstrip("\ufeff")
            first = text.splitlines()[0] if text.strip() else ""
            heads = re.split(r"[,\t;|]", first)
    except (OSError, ValueError, LoadError):
        return None
    heads = [h.strip().strip('"') for h in map(str, heads)]
    try:  # a send log's headers can hold an event word (计费条数 in a console export)
        detect_layout(heads)
        return None
    except LoadError:
        return event_kind(heads)
