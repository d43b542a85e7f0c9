"""Read platform exports into the canonical send log, accounting for every row.

``read_send_log`` is the public entry; ``load_send_log`` returns the log together with
the rejected rows and the per-file row accounting. Each input row ends up in exactly
one of three places:

* **loaded** -- it contributed to a message of the log (a submission, a receipt merged
  into its submission, a later receipt of the same message …);
* **rejected** -- kept in ``rejects`` with file, line and reason;
* **duplicate** -- the same record as a row already loaded (a re-exported period, an
  Aliyun receipt push repeated).

``loaded + rejected + duplicates == rows read`` for every file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..codes import classify_failures
from ..enrich import enrich, normalize_carriers, normalize_provinces
from ..normalize import (
    count_segments,
    country_of,
    infer_attempts,
    infer_categories,
    normalize_phones,
)
from ..schema import (
    CATEGORIES,
    DEFAULT_TZ,
    FAILURE_REASONS,
    FINAL_STATUSES,
    LABELS,
    STRING,
    conform,
)
from . import aliyun, canonical, gateway, sns, tencent, twilio, vonage
from ._files import LoadError, RawFile, read_raw
from ._layout import Layout, first_reason
from .mapping import mapping_layout

__all__ = ["LAYOUTS", "LoadError", "LoadResult", "detect_layout", "load_send_log", "read_send_log"]

#: Every known layout, in detection order (most specific first).
LAYOUTS: list[Layout] = [
    *aliyun.LAYOUTS,
    *tencent.LAYOUTS,
    *twilio.LAYOUTS,
    *vonage.LAYOUTS,
    *sns.LAYOUTS,
    *canonical.LAYOUTS,
    *gateway.LAYOUTS,
]

_ACCOUNT = ["rows_read", "loaded", "rejected", "duplicates"]


@dataclass
class LoadResult:
    """A loaded send log with its accounting.

    Attributes
    ----------
    log : DataFrame
        The canonical send log (see :mod:`analysis.schema`).
    rejects : DataFrame
        One row per rejected input row: ``file``, ``line``, ``reason``, ``record``
        (the raw row as JSON).
    summary : DataFrame
        One row per file: ``file``, ``layout``, ``vendor``, ``encoding``,
        ``rows_read``, ``loaded``, ``rejected``, ``duplicates``, ``messages``.
    partitions : list of Path
        The partitions of ``store`` that were read and merged into ``log``.
    """

    log: pd.DataFrame
    rejects: pd.DataFrame
    summary: pd.DataFrame
    partitions: list[Path] = field(default_factory=list)


def detect_layout(headers: Iterable[str], *, vendor: str | None = None) -> Layout:
    """The layout whose required headers are all present (case-insensitive).

    ``vendor`` restricts the choice to that vendor's layouts (or names one layout).
    """
    heads = {h.strip().lower() for h in headers}
    heads |= {canonical.HEADER_ALIASES[h] for h in heads if h in canonical.HEADER_ALIASES}
    pool = LAYOUTS
    if vendor and any(vendor in (lay.name, lay.vendor) for lay in LAYOUTS):
        pool = [lay for lay in LAYOUTS if vendor in (lay.name, lay.vendor)]
    for lay in pool:
        if lay.matches(heads):
            return lay
    if vendor and pool is LAYOUTS:  # a vendor without its own layout: canonical headers
        if canonical.LAYOUTS[0].matches(heads):
            return canonical.LAYOUTS[0]
    wanted = "; ".join(f"{lay.name}: {', '.join(sorted(lay.required))}" for lay in pool)
    raise LoadError(
        f"unrecognised layout (headers: {', '.join(sorted(heads)) or 'none'}); "
        f"expected one of [{wanted}], or pass vendor= or a column mapping"
    )


def read_send_log(
    path_or_paths,
    *,
    vendor: str | None = None,
    mapping: dict | str | Path | None = None,
    tz: str = DEFAULT_TZ,
) -> pd.DataFrame:
    """Read one or more platform exports into the canonical send log.

    Parameters
    ----------
    path_or_paths : path or list of paths
        CSV (UTF-8, UTF-8 with BOM, GBK/GB18030; gzip allowed), XLSX, Parquet (a file or
        the partitioned store ``sms-ledger ingest`` writes), JSON lines, or a gateway log
        of SMPP/CMPP delivery receipts. A folder is read as a Parquet store.
    vendor : str, optional
        Force a vendor (``aliyun``, ``tencent``, ``twilio``, ``vonage``, ``aws_sns``,
        ``gateway``, ``canonical``) or one layout (``aliyun_report`` …). For files in
        the canonical layout without a vendor column, any name is written as vendor.
    mapping : dict or path, optional
        Column mapping for any other layout (see :mod:`analysis.readers.mapping`).
    tz : str
        Time zone of the result, and of naive timestamps in the exports (vendors whose
        exports are in UTC are converted).

    Returns
    -------
    DataFrame
        The canonical send log, one row per message attempt, sorted by
        ``submit_time``, ``vendor``, ``message_id``. Columns and dtypes:
        :data:`analysis.schema.COLUMNS`. Rejected rows and the row accounting are in
        :func:`load_send_log`'s result.

    Raises
    ------
    LoadError
        A file cannot be read at all (missing, undecodable, unknown layout); the
        message names the file.
    """
    return load_send_log(path_or_paths, vendor=vendor, mapping=mapping, tz=tz).log


def load_send_log(
    path_or_paths,
    *,
    vendor: str | None = None,
    mapping: dict | str | Path | None = None,
    tz: str = DEFAULT_TZ,
    resend_window: str = "30min",
    progress: bool = False,
    store: str | Path | None = None,
) -> LoadResult:
    """Like :func:`read_send_log`, returning the rejects and row accounting too.

    ``resend_window`` is the window of resend inference (see
    :func:`analysis.normalize.infer_attempts`); ``progress`` shows a bar over files.
    ``store``: a Parquet store folder (``…/send_log``) to merge with; only its
    partitions the inputs can touch are read (:func:`analysis.store.partitions_for`),
    and the result names them (``partitions``).
    """
    paths = [path_or_paths] if isinstance(path_or_paths, str | Path) else list(path_or_paths)
    if not paths:
        raise LoadError("no input files given")
    layout_override = mapping_layout(mapping) if mapping is not None else None
    staged_parts, rejects, infos, raws = [], [], [], []

    def add(raw: RawFile, layout) -> None:
        fileno = len(infos)
        try:
            st, lay = _stage_file(raw, vendor=vendor, layout=layout, tz=tz)
        except LoadError as exc:
            raise LoadError(f"{raw.path}: {exc}") from None
        st["_file"] = fileno
        staged_parts.append(st)
        raws.append(raw.frame)
        infos.append({"file": str(raw.path), "layout": lay.name, "vendor": lay.vendor,
                      "encoding": raw.encoding, "rows_read": len(raw.frame) + len(raw.bad)})
        for line, reason, text in raw.bad:
            rejects.append({"_file": fileno, "file": str(raw.path), "line": line, "reason": reason, "record": text})
        bad = st["_reject"].notna()
        if bad.any():
            rej = pd.DataFrame({"_file": fileno, "file": str(raw.path), "line": st.loc[bad, "_line"].to_numpy(),
                                "reason": st.loc[bad, "_reject"].astype(str).to_numpy(),
                                "record": _records(raw.frame.loc[bad[bad].index])})
            rejects.append(rej)

    for path in tqdm(paths, desc="reading", unit="file", disable=None if progress else True):
        add(read_raw(path), layout_override)
    partitions = []
    if store is not None and Path(store).is_dir():
        from ..store import partitions_for, read_partitions

        partitions = partitions_for(store, pd.concat(staged_parts, ignore_index=True))
        if partitions:
            add(read_partitions(store, partitions), None)
            staged_parts.insert(0, staged_parts.pop())  # the store's rows come first: the inputs are newer
    staged = pd.concat(staged_parts, ignore_index=True)
    staged["_order"] = np.arange(len(staged))
    log, staged = _assemble(staged, tz=tz, window=resend_window)
    # rows rejected at message level (orphan receipts …)
    late = staged["_reject"].notna() & ~staged["_early"]
    if late.any():
        for fileno, part in staged[late].groupby("_file"):
            raw_rows = raws[fileno].set_index("_line").loc[part["_line"].to_numpy()].reset_index()
            rejects.append(pd.DataFrame({"_file": fileno, "file": infos[fileno]["file"], "line": part["_line"].to_numpy(),
                                         "reason": part["_reject"].astype(str).to_numpy(), "record": _records(raw_rows)}))
    rejects_df = _concat_rejects(rejects)
    summary = _summary(staged, infos, rejects_df)
    return LoadResult(log, rejects_df.drop(columns="_file"), summary, partitions)


def _stage_file(raw: RawFile, *, vendor, layout, tz) -> tuple[pd.DataFrame, Layout]:
    frame = raw.frame
    frame.columns = [c if c == "_line" else str(c).strip().lower() for c in frame.columns]
    if raw.path.is_dir():  # the ingested store is always canonical
        layout, vendor = canonical.LAYOUTS[0], None
    if layout is None:
        layout = gateway.LAYOUTS[0] if raw.kind == "dlr" else detect_layout(
            [c for c in frame.columns if c != "_line"], vendor=vendor
        )
    st = layout.stage(frame, tz)
    vendor_name = layout.vendor
    if layout.name in {"canonical", "mapping"} and vendor and vendor != "canonical":
        vendor_name = vendor  # a vendor without a layout of its own names the file's rows
    given = st["vendor"].astype(STRING) if "vendor" in st else pd.Series(pd.NA, index=st.index, dtype=STRING)
    st["vendor"] = given.fillna(vendor_name)
    phone, reason = normalize_phones(st["phone"], default_plus=layout.intl_phones)
    st["phone"] = phone
    # a missing phone may come from another row of the message (checked when merging)
    st["_reject"] = first_reason(st["_reject"], reason.where(reason.ne("missing phone")))
    st["_early"] = st["_reject"].notna()
    return st, layout


def _records(frame: pd.DataFrame) -> np.ndarray:
    """Raw rows as JSON text, for the rejects file."""
    if frame.empty:
        return np.array([], dtype=object)
    body = frame.drop(columns=["_line"], errors="ignore").astype(str)
    return np.array(body.to_json(orient="records", lines=True, force_ascii=False).splitlines(), dtype=object)


def _concat_rejects(parts: list) -> pd.DataFrame:
    frames = [p if isinstance(p, pd.DataFrame) else pd.DataFrame([p]) for p in parts]
    cols = ["_file", "file", "line", "reason", "record"]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    out = pd.concat(frames, ignore_index=True)[cols]
    out["line"] = out["line"].astype("int64")
    return out.sort_values(["_file", "line"], kind="stable").reset_index(drop=True)


def _message_ids(st: pd.DataFrame) -> pd.Series:
    """Given ids, else a stable hash of what identifies the send."""
    ids = st["message_id"].astype(STRING)
    missing = ids.isna()
    if missing.any():
        basis = st.loc[missing, ["vendor", "phone", "submit_time", "template_id", "content"]].astype(str)
        hashed = pd.util.hash_pandas_object(basis, index=False).map("h{:016x}".format)
        ids = ids.copy()
        ids[missing] = hashed.to_numpy()
        no_basis = missing & (st["phone"].isna() | st["submit_time"].isna())
        ids[no_basis] = pd.NA
    return ids


def _assemble(st: pd.DataFrame, *, tz: str, window: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Staged rows of every file -> canonical log; marks ``_reject`` / ``_dup`` on ``st``."""
    for c in ["submit_time", "done_time"]:
        if c not in st:
            st[c] = pd.Series(pd.NaT, index=st.index, dtype=pd.DatetimeTZDtype("ms", tz))
    for c in ["message_id", "template_id", "content", "status", "phone"]:
        if c not in st:
            st[c] = pd.NA
    st["message_id"] = _message_ids(st)
    ok = st["_reject"].isna()
    st.loc[ok & st["message_id"].isna(), "_reject"] = "no message id, and no phone and submit time to identify it"
    ok = st["_reject"].isna()
    # message-level checks: a message needs a submit time and a phone from some row
    key = ["vendor", "message_id"]
    grp = st[ok].groupby(key, sort=False, observed=True, dropna=False)
    has_submit = grp["submit_time"].transform("count") > 0
    has_phone = grp["phone"].transform("count") > 0
    reason = pd.Series(pd.NA, index=has_submit.index, dtype=object)
    reason[~has_phone] = "no valid phone number for this message"
    reason[~has_submit] = "receipt without a submission: no submit time for this message id"
    st.loc[reason.index, "_reject"] = reason
    ok = st["_reject"].isna()
    # exact repeats of a loaded row
    subset = [c for c in [*key, "phone", "submit_time", "done_time", "status", "status_code", "error_code", "_part"] if c in st]
    st["_dup"] = False
    st.loc[ok, "_dup"] = st.loc[ok].duplicated(subset=subset, keep="first")
    rows = st[ok & ~st["_dup"]].copy()
    rows["_final"] = rows["status"].isin(FINAL_STATUSES)
    rows = rows.sort_values(
        [*key, "_final", "done_time", "_order"], ascending=[True, True, False, False, False],
        na_position="last", kind="stable",
    )
    multi = rows.duplicated(key, keep=False)
    cols = [c for c in rows.columns if not c.startswith("_")]
    merged = rows.loc[multi, cols].groupby(key, sort=False, observed=True).first().reset_index()
    log = pd.concat([rows.loc[~multi, cols], merged], ignore_index=True)
    return _finish(log, tz=tz, window=window), st


def _finish(log: pd.DataFrame, *, tz: str, window: str) -> pd.DataFrame:
    """Vocabularies, failure reasons, segments, enrichment and attempts."""
    log = log.copy()
    log["status"] = log["status"].astype(object).fillna("pending")
    reason = log["failure_reason"].astype(object) if "failure_reason" in log else pd.Series(pd.NA, index=log.index, dtype=object)
    reason = reason.where(reason.isin(FAILURE_REASONS))
    status_parts, reason_parts = [], []
    for vendor, part in log.groupby(log["vendor"].astype(str), sort=False):
        s, r = classify_failures(part["status"], part.get("status_code", pd.Series(pd.NA, index=part.index)),
                                 part.get("error_code", pd.Series(pd.NA, index=part.index)), vendor=vendor)
        status_parts.append(s)
        reason_parts.append(r)
    if status_parts:
        log["status"] = pd.concat(status_parts).reindex(log.index)
        derived = pd.concat(reason_parts).reindex(log.index)
        log["failure_reason"] = reason.where(reason.notna() & derived.notna(), derived)
    for c in ["carrier", "province", "city", "category", "segments", "country", "channel",
              "status_code", "error_code", "attempt", "is_probe", "fee"]:
        if c not in log:
            log[c] = pd.NA
    log["carrier"] = normalize_carriers(log["carrier"])
    log["province"] = normalize_provinces(log["province"])
    cat = log["category"].astype(STRING).str.strip().str.lower()
    by_label = {LABELS[lang][c].lower(): c for lang in LABELS for c in CATEGORIES}
    cat = cat.astype(object).where(cat.isin(CATEGORIES), cat.map(by_label))
    log["category"] = cat.where(cat.notna(), infer_categories(log["content"]))
    seg = pd.to_numeric(log["segments"], errors="coerce").astype("Int16")
    log["segments"] = seg.fillna(count_segments(log["content"]))
    log["country"] = log["country"].astype(object).where(log["country"].notna(), country_of(log["phone"].astype(STRING)))
    log = enrich(log)
    log["submit_time"] = log["submit_time"].astype(pd.DatetimeTZDtype("ms", tz))
    log["attempt"] = pd.to_numeric(log["attempt"], errors="coerce").astype("Int16")
    log["attempt"] = infer_attempts(log, window=window)
    log = conform(log, tz=tz)
    return log.sort_values(["submit_time", "vendor", "message_id"], kind="stable").reset_index(drop=True)


def _summary(st: pd.DataFrame, infos: list[dict], rejects: pd.DataFrame) -> pd.DataFrame:
    info = pd.DataFrame(infos)
    files = pd.Series(range(len(info)))
    loaded = st[st["_reject"].isna() & ~st["_dup"]]
    info["loaded"] = files.map(loaded.groupby("_file").size()).fillna(0).astype(int)
    info["rejected"] = files.map(rejects.groupby("_file").size()).fillna(0).astype(int)
    info["duplicates"] = files.map(st.groupby("_file")["_dup"].sum()).fillna(0).astype(int)
    info["messages"] = files.map(loaded.drop_duplicates(["_file", "vendor", "message_id"]).groupby("_file").size())
    info["messages"] = info["messages"].fillna(0).astype(int)
    vendors = st.groupby("_file")["vendor"].agg(lambda v: ", ".join(sorted(v.dropna().astype(str).unique())))
    info["vendor"] = files.map(vendors).where(lambda v: v.fillna("") != "", info["vendor"])
    return info[["file", "layout", "vendor", "encoding", *_ACCOUNT, "messages"]]
