"""Partial aggregates that merge: the ledgers of a year of logs, one partition at a time.

Each partition of the send log (a vendor-month of the Parquet store, or any chunk) becomes
a few small count tables, :class:`Cubes`; cubes of many partitions are summed
(:func:`merge_cubes`) and the weekly ledgers are built from the sum
(:func:`analysis.ledgers.ledgers_from_cubes`). Memory is bounded by one partition plus the
cubes, whatever the number of partitions, and the same code runs in one process or on a
Dask cluster (:mod:`analysis.engine`).

Latency percentiles come from a histogram: one bin per whole second below one hour, then
bins 1% wide. **Error bound:** p50 and p95 are exact when latencies are whole seconds
below an hour (what delivery receipts carry); otherwise each order statistic is at most
1 second low below an hour and 1% low above, so a percentile (interpolated between two
of them) is at most max(1 s, 1% of the order statistic above it) low.

Resend chains and event joins are made within a partition: a resend that crosses a
month boundary, or a reply attributed to a message in another partition, is not linked.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from .measures import _per_day, iso_weeks, resend_chains, sum_by
from .monitor import period_counts
from .schema import STRING

HIST_EXACT = 3600  # whole-second bins below this many seconds
HIST_RATIO = 1.01  # then bins this much wider each

FAILED = ("failed", "expired", "rejected", "unknown")

#: The group keys of each cube (the other columns are summed).
KEYS = {
    "quality": ["week", "vendor", "carrier"],
    "latency": ["week", "vendor", "carrier", "bin"],
    "daily": ["period", "vendor", "carrier", "province", "traffic"],
    "failures": ["week", "carrier", "province", "failure_reason", "code"],
    "content": ["week", "template_id", "category", "hour"],
    "texts": ["week", "template_id", "category", "content"],
    "billing": ["vendor", "month"],
    "cost": ["week", "vendor", "carrier"],
}


@dataclass
class Cubes:
    """The count tables of one or many partitions (see :data:`KEYS`), the failed
    messages (for the repeat-failure list) and which event columns were present."""

    quality: pd.DataFrame
    latency: pd.DataFrame
    daily: pd.DataFrame
    failures: pd.DataFrame
    content: pd.DataFrame
    texts: pd.DataFrame
    billing: pd.DataFrame
    cost: pd.DataFrame
    failed: pd.DataFrame
    events: dict = field(default_factory=dict)


def latency_bins(seconds: np.ndarray) -> np.ndarray:
    """Histogram bin of each latency (-1 where missing or negative)."""
    s = np.asarray(seconds, dtype=float)
    out = np.full(len(s), -1, dtype=np.int64)
    ok = np.isfinite(s) & (s >= 0)
    low = ok & (s < HIST_EXACT)
    out[low] = np.floor(s[low]).astype(np.int64)
    high = ok & ~low
    out[high] = HIST_EXACT + np.floor(np.log(s[high] / HIST_EXACT) / np.log(HIST_RATIO) + 1e-9).astype(np.int64)
    return out


def bin_values(bins: np.ndarray) -> np.ndarray:
    """The lower edge of each bin, in seconds."""
    b = np.asarray(bins, dtype=float)
    return np.where(b < HIST_EXACT, b, HIST_EXACT * HIST_RATIO ** (b - HIST_EXACT))


def hist_quantiles(hist: pd.DataFrame, keys: list[str], qs=(0.5, 0.95)) -> pd.DataFrame:
    """Quantiles per group from a histogram (``keys``, ``bin``, ``n``), interpolated
    between order statistics as pandas does."""
    if hist.empty:
        return pd.DataFrame(columns=[*keys, *[f"q{q}" for q in qs]])
    h = hist.groupby([*keys, "bin"], dropna=False, sort=True)["n"].sum().reset_index()
    h = h[h["n"] > 0]
    gid = h.groupby(keys, dropna=False, sort=False).ngroup().to_numpy() if keys else np.zeros(len(h), int)
    n = h["n"].to_numpy(dtype=np.int64)
    cum = np.cumsum(n)
    totals = np.bincount(gid, weights=n).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(totals)[:-1]])
    values = bin_values(h["bin"].to_numpy())
    first = ~pd.Series(gid).duplicated().to_numpy()
    out = h.loc[first, keys].reset_index(drop=True) if keys else pd.DataFrame(index=[0])
    order = gid[first]
    for q in qs:
        pos = (totals - 1) * q
        lo = np.floor(pos).astype(np.int64)
        frac = pos - lo
        i_lo = np.searchsorted(cum, starts + lo, side="right")
        i_hi = np.searchsorted(cum, starts + np.minimum(lo + 1, totals - 1), side="right")
        val = values[i_lo] + frac * (values[i_hi] - values[i_lo])
        out[f"q{q}"] = val[order]
    return out


def partial_cubes(chunk: pd.DataFrame, *, events: dict | None = None) -> Cubes:
    """The cubes of one partition of the canonical log.

    ``events`` (``clicks``, ``replies``, ``complaints`` frames) are joined to the
    partition first (:func:`analysis.attach_events`) unless it already has their columns.
    """
    if events and not {"clicks", "complained", "unsubscribed"} & set(chunk.columns):
        from .events import attach_events

        chunk = attach_events(chunk, **{k: v for k, v in events.items() if v is not None})
    t = chunk["submit_time"]
    status = chunk["status"]
    ok = status.eq("delivered").to_numpy(dtype=bool, na_value=False)
    failed = status.isin(FAILED).to_numpy(dtype=bool)
    latency = (chunk["done_time"] - t).dt.total_seconds().to_numpy(dtype=float, na_value=np.nan)
    latency = np.where(ok, latency, np.nan)
    chain = resend_chains(chunk).to_numpy()
    original = chain == np.arange(len(chunk))
    rescued = np.zeros(len(chunk), dtype=bool)
    np.logical_or.at(rescued, chain, ok)
    seg = chunk["segments"].astype("float64").fillna(1).to_numpy()
    flag = {c: chunk[c].to_numpy(dtype=bool, na_value=False) if c in chunk else np.zeros(len(chunk), bool)
            for c in ("complained", "unsubscribed", "clicked", "converted")}
    clicks = chunk["clicks"].to_numpy(dtype=float) if "clicks" in chunk else np.zeros(len(chunk))
    # group keys stay categorical (integer codes): no Python strings per row
    week, vendor, carrier, province = iso_weeks(t), _cat(chunk["vendor"]), _cat(chunk["carrier"]), _cat(chunk["province"])
    template, category = _cat(chunk["template_id"]), _cat(chunk["category"])

    def frame(**cols) -> dict:
        return cols

    quality = sum_by(frame(
        week=week, vendor=vendor, carrier=carrier, submitted=1, delivered=ok,
        final=status.ne("pending").to_numpy(dtype=bool, na_value=True), originals=original,
        first_ok=original & ok, any_ok=original & rescued, fast=ok & (latency <= 600),
        complained=flag["complained"], unsubscribed=flag["unsubscribed"]), KEYS["quality"])
    bins = latency_bins(latency)
    latency_cube = sum_by(frame(week=week, vendor=vendor, carrier=carrier, bin=bins, n=1), KEYS["latency"], bins >= 0)
    daily = period_counts(chunk, by=["carrier", "province"], freq="D")
    # the failure keys are made for the failed rows only (a few percent of the partition)
    gone = chunk[failed]
    code = gone["error_code"].fillna(gone["status_code"]).fillna("—")
    reason = gone["failure_reason"].astype(object).fillna("unknown")
    failures = sum_by(frame(week=week[failed], carrier=carrier[failed], province=province[failed],
                            failure_reason=reason, code=code, failed=1), KEYS["failures"])
    blocked = chunk["failure_reason"].eq("content_blocked").to_numpy(dtype=bool, na_value=False)
    content = sum_by(frame(week=week, template_id=template, category=category, hour=t.dt.hour.to_numpy(), sent=1,
                         delivered=ok, blocked=blocked, clicks=clicks, opened=ok & flag["clicked"],
                         conversions=ok & flag["converted"]), KEYS["content"])
    texts = sum_by(frame(week=week, template_id=template, category=category, content=chunk["content"], n=1),
                 KEYS["texts"], chunk["content"].notna().to_numpy())
    billing = sum_by(frame(vendor=vendor, month=_per_day(t, "%Y-%m"), submitted=1, delivered=ok,
                         segments_submitted=seg, segments_delivered=np.where(ok, seg, 0.0)), KEYS["billing"])
    cost = sum_by(frame(week=week, vendor=vendor, carrier=carrier, submitted=1, delivered=ok, segments_submitted=seg,
                      segments_delivered=np.where(ok, seg, 0.0), clicks=clicks), KEYS["cost"])
    # text as Arrow strings: compact, and partitions concatenate without going to objects
    failed_rows = pd.DataFrame({
        "week": week[failed].astype(STRING), "phone": gone["phone"].astype(STRING),
        "carrier": gone["carrier"].astype(STRING), "province": gone["province"].astype(STRING),
        "failure_reason": reason.astype(STRING), "submit_time": gone["submit_time"]}).reset_index(drop=True)
    return Cubes(quality=quality, latency=latency_cube, daily=daily, failures=failures, content=content, texts=texts,
                 billing=billing, cost=cost, failed=failed_rows,
                 events={c: c in chunk for c in ("complained", "unsubscribed", "clicked")})


def _cat(s: pd.Series) -> pd.Series:
    return s if isinstance(s.dtype, pd.CategoricalDtype) else s.astype("category")


def merge_cubes(parts: list[Cubes]) -> Cubes:
    """The cubes of many partitions, summed."""
    parts = [p for p in parts if p is not None]
    if not parts:
        raise ValueError("no partitions to merge")
    if len(parts) == 1:
        return parts[0]
    merged = {}
    for f in fields(Cubes):
        if f.name == "events":
            continue
        frames = [getattr(p, f.name) for p in parts if len(getattr(p, f.name))]
        frame = pd.concat(frames, ignore_index=True) if frames else getattr(parts[0], f.name)
        merged[f.name] = frame if f.name == "failed" else sum_by(frame, KEYS[f.name])
    events = {k: any(p.events.get(k) for p in parts) for k in parts[0].events}
    return Cubes(**merged, events=events)
