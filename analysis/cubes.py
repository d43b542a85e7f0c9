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

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import NamedTuple

import numpy as np
import pandas as pd

from .distinct import Coded, key_codes
from .kernel import (
    ARRIVAL_SUMS,
    FINAL_FAILURES,
    HOUR_NS,
    NAT,
    day_codes,
    has_link,
    label_days,
    latency_bins,
    local_clock,
    peak_windows,
    row_flags,
    sum_by,
    traffic_of,
)
from .schema import STRING

#: What billing and cost count: messages, billable segments, and the export's own prices
#: (``fee``: their sum, ``fee_n``: messages that had one).
BILLING_SUMS = ("submitted", "delivered", "segments_submitted", "segments_delivered", "fee", "fee_n")


class Table(NamedTuple):
    """One table of partial sums: what a partition contributes, summed by ``keys`` (the
    grain); the tables of many partitions merge by summing their ``sums`` again."""

    keys: tuple[str, ...]
    sums: tuple[str, ...]


#: What each cube counts, per partition: the measures (:data:`analysis.ledgers.MEASURES`)
#: name the tables they finish. ``quality``, ``cost`` and ``billing`` are sums of
#: ``daily``'s one pass over the rows, so its pass counts what they need.
#: ``failed`` (the failed messages, for the repeat-failure list) is rows, not sums.
TABLES = {
    "quality": Table(("week", "vendor", "carrier"), ("submitted", *ARRIVAL_SUMS, "accepted")),
    "latency": Table(("week", "vendor", "carrier", "kind", "bin"), ("n",)),
    "daily": Table(("period", "vendor", "carrier", "province", "traffic"),
                   ("submitted", "delivered", "blocked", "originals", "first_ok")),
    "failures": Table(("week", "carrier", "province", "failure_reason", "code"), ("failed",)),
    "content": Table(("week", "template_id", "category", "hour"),
                     ("sent", "delivered", "blocked", "linked", "clicks", "clicked", "conversions")),
    "texts": Table(("week", "template_id", "category", "content"), ("n",)),
    "billing": Table(("vendor", "month"), BILLING_SUMS),
    "cost": Table(("week", "vendor", "carrier"), (*BILLING_SUMS, "clicks")),
    "currencies": Table(("vendor", "currency"), ("n",)),
    # send hours and peak windows, every week (not only the weeks of detail): the
    # arrival and click-through by hour and the peak-window comparison
    "hours": Table(("week", "vendor", "weekday", "hour", "window"),
                   ("submitted", *ARRIVAL_SUMS, "linked", "clicked", "conversions")),
    "windows": Table(("vendor", "window", "kind", "bin"), ("n",)),
}
#: The group keys of each cube.
KEYS = {name: list(t.keys) for name, t in TABLES.items()}
#: The tables summed from the daily pass over the rows.
_OF_DAILY = ("daily", "quality", "cost", "billing")


@dataclass
class Cubes:
    """The count tables of one or many partitions (see :data:`TABLES`), the failed
    messages (for the repeat-failure list), which event columns were present, the weeks
    whose detail they keep (``None``: every week; :func:`partial_cubes`) and which
    tables were made."""

    quality: pd.DataFrame
    latency: pd.DataFrame
    daily: pd.DataFrame
    failures: pd.DataFrame
    content: pd.DataFrame
    texts: pd.DataFrame
    billing: pd.DataFrame
    cost: pd.DataFrame
    currencies: pd.DataFrame
    hours: pd.DataFrame
    windows: pd.DataFrame
    failed: pd.DataFrame
    events: dict = field(default_factory=dict)
    weeks: tuple | None = None
    #: The tables made (the others are empty): :func:`analysis.ledgers.finish` refuses a
    #: measure whose sums were not made.
    made: tuple = ()


@dataclass
class Source:
    """What the ledgers need from the inputs, however they were read.

    Attributes
    ----------
    cubes : the merged partial aggregates.
    messages : ``messages(phones_by_week)`` -> sends per phone for the given phones of
        each week (the second, narrow pass for the repeat-failure list).
    bill, summary, rejects, files : as :class:`analysis.events.Inputs`.
    """

    cubes: Cubes
    messages: Callable[[dict[str, set]], dict[str, pd.Series]]
    bill: pd.DataFrame
    summary: pd.DataFrame
    rejects: pd.DataFrame
    files: list


def partial_cubes(chunk: pd.DataFrame, *, weeks=None, tables=None) -> Cubes:
    """The cubes of one partition of the canonical log (with the columns of
    :func:`analysis.attach_events` for the event counts).

    ``weeks``: the ISO weeks whose detail to keep (default: all): the latency
    histograms, failures, templates, texts and failed messages (for the repeat-failure
    list), which a week's ledger shows for that week only. The counts per day and per
    week (quality, trend, alerts, billing) are kept for every week: they give the
    baselines; so are the send hours and peak windows. ``tables``: the cubes to make
    (names of :data:`TABLES` and ``failed``; default all); the others are left empty.
    """
    wanted = set(TABLES) | {"failed"} if tables is None else set(tables)
    if unknown := wanted - set(TABLES) - {"failed"}:
        raise ValueError(f"no such cube: {', '.join(sorted(unknown))}")
    n = len(chunk)
    flags = row_flags(chunk)
    ok = flags["delivered"]
    seg = chunk["segments"].to_numpy(dtype="float64", na_value=1.0)
    # without the event files, their counts are a constant zero, not columns of zeros
    flag = {c: chunk[c].to_numpy(dtype=bool, na_value=False) if c in chunk else False
            for c in ("complained", "unsubscribed", "clicked", "converted")}
    clicks = chunk["clicks"].to_numpy(dtype=float) if "clicks" in chunk else 0.0
    fee = chunk["fee"].to_numpy(dtype=float, na_value=np.nan) if "fee" in chunk else np.full(n, np.nan)
    # every key as integer codes, made once: no Python strings per row; a row's week is
    # its day's week
    clock = local_clock(chunk["submit_time"])
    day, days = day_codes(clock)
    week = key_codes(pd.Series(label_days(day, days, "%G-W%V")))
    hour = Coded(np.where(clock == NAT, -1, (clock // HOUR_NS) % 24).astype(np.int8), pd.RangeIndex(24))
    del clock
    key = {c: key_codes(chunk[c]) for c in ("vendor", "carrier", "province", "template_id", "category")}
    detail = np.ones(n, dtype=bool) if weeks is None else _among(week, weeks)
    blocked = chunk["failure_reason"].eq("content_blocked").to_numpy(dtype=bool, na_value=False)
    links = None  # which rows' text holds a link, when every row's is looked at (the send hours)
    out = {name: pd.DataFrame(columns=[*table.keys, *table.sums]) for name, table in TABLES.items()}

    arrival = {k: flags[k] if k in flags else flag[k] for k in ARRIVAL_SUMS}
    if daily := [name for name in _OF_DAILY if name in wanted]:
        # one pass over the rows for everything counted per day, vendor, carrier and
        # province: the daily, quality, cost and billing cubes are sums of it
        row = dict(
            submitted=1, blocked=blocked,
            accepted=~chunk["failure_reason"].eq("platform_rejected").to_numpy(dtype=bool, na_value=False),
            **arrival, segments_submitted=seg, segments_delivered=np.where(ok, seg, 0.0), clicks=clicks,
            fee=np.nan_to_num(fee), fee_n=np.isfinite(fee))
        sums = list(dict.fromkeys(c for name in daily for c in TABLES[name].sums))
        fine = sum_by(dict(period=Coded(day, days), vendor=key["vendor"], carrier=key["carrier"],
                           province=key["province"], traffic=traffic_of(chunk), **{c: row[c] for c in sums}),
                      KEYS["daily"])
        fine_days = days.get_indexer(fine["period"])
        fine = fine.assign(week=label_days(fine_days, days, "%G-W%V"), month=label_days(fine_days, days, "%Y-%m"))
        for name in daily:
            columns = [*TABLES[name].keys, *TABLES[name].sums]
            out[name] = fine[columns] if name == "daily" else sum_by(fine[columns], KEYS[name])
    if "latency" in wanted:
        out["latency"] = _histograms(flags, dict(week=week, vendor=key["vendor"], carrier=key["carrier"]), detail)
    if {"hours", "windows"} & wanted:
        window = key_codes(peak_windows(chunk))
        everything = np.ones(n, dtype=bool)
    if "hours" in wanted:
        weekday = np.where(day >= 0, days.day_of_week.to_numpy()[np.maximum(day, 0)] if len(days) else 0, -1)
        # only a delivered message with a link can be clicked (no click events: no links looked for)
        links = has_link(chunk["content"]) if "clicked" in chunk else None
        linked = ok & links if links is not None else False
        out["hours"] = sum_by(dict(week=week, vendor=key["vendor"], weekday=Coded(weekday, pd.RangeIndex(7)), hour=hour,
                                   window=window, submitted=1, **arrival, linked=linked,
                                   clicked=linked & flag["clicked"], conversions=linked & flag["converted"]),
                              KEYS["hours"])
    if "windows" in wanted:
        out["windows"] = _histograms(flags, dict(vendor=key["vendor"], window=window), everything)
    if "content" in wanted:
        linked = np.zeros(n, dtype=bool)  # only a message with a link can be clicked
        linked[detail] = ok[detail] & (links[detail] if links is not None else has_link(chunk["content"][detail]))
        out["content"] = sum_by(dict(week=week, template_id=key["template_id"], category=key["category"], hour=hour,
                                     sent=1, delivered=ok, blocked=blocked, linked=linked, clicks=clicks,
                                     clicked=linked & flag["clicked"], conversions=linked & flag["converted"]),
                                KEYS["content"], detail)
    if "texts" in wanted:
        out["texts"] = sum_by(dict(week=week, template_id=key["template_id"], category=key["category"],
                                   content=chunk["content"], n=1), KEYS["texts"],
                              detail & chunk["content"].notna().to_numpy())
    # the failure keys are made for the failed rows only (a few percent of the partition)
    failed = _among(key_codes(chunk["status"]), FINAL_FAILURES) & detail

    def failed_of(column: str) -> pd.Series:
        return pd.Series(chunk[column].array[failed])

    if "failures" in wanted:
        code = failed_of("error_code").astype(object).fillna(failed_of("status_code").astype(object)).fillna("—")
        reason = failed_of("failure_reason").astype(object).fillna("unknown")
        out["failures"] = sum_by(dict(week=week.take(failed), carrier=key["carrier"].take(failed),
                                      province=key["province"].take(failed), failure_reason=reason, code=code,
                                      failed=1), KEYS["failures"])
    if "failed" not in wanted:
        failed = np.zeros(n, dtype=bool)
    # text as Arrow strings: compact, and partitions concatenate without going to objects
    failed_rows = pd.DataFrame({
        "week": week.levels.take(week.codes[failed]).astype(STRING).array,
        # (a partition read without the numbers' text holds none of those weeks' rows)
        "phone": failed_of("phone").astype(STRING) if "phone" in chunk else pd.Series([], dtype=STRING),
        **{c: failed_of(c).astype(STRING) for c in ("carrier", "province")},
        "failure_reason": failed_of("failure_reason").astype(object).fillna("unknown").astype(STRING),
        "submit_time": failed_of("submit_time")})
    if "currencies" in wanted:
        out["currencies"] = sum_by(dict(vendor=key["vendor"], currency=chunk["currency"] if "currency" in chunk else
                                        pd.Series(pd.NA, index=chunk.index, dtype=STRING), n=1), KEYS["currencies"])
    return Cubes(**out, failed=failed_rows, events={c: c in chunk for c in ("complained", "unsubscribed", "clicked")},
                 weeks=None if weeks is None else tuple(sorted(weeks)), made=tuple(sorted(wanted)))


def _histograms(flags: dict, keys: dict[str, Coded], rows: np.ndarray) -> pd.DataFrame:
    """The two latency histograms of ``rows`` by ``keys`` (``kind``, ``bin``, ``n``):
    what the recipient waited (per original) and each attempt's latency; an undelivered
    message has no bin."""
    hists = []
    for kind, seconds in (("recipient", flags["recipient_latency"]), ("attempt", flags["latency"])):
        bins = latency_bins(seconds[rows])
        h = sum_by({**{k: c.take(rows) for k, c in keys.items()},
                    "bin": Coded(bins, pd.RangeIndex(bins.max(initial=0) + 1)), "n": 1}, [*keys, "bin"])
        hists.append(h[h["bin"].notna()].assign(kind=kind))
    return pd.concat(hists, ignore_index=True)[[*keys, "kind", "bin", "n"]].astype({"bin": np.int64})


def _among(coded: Coded, values) -> np.ndarray:
    """Rows whose value is one of ``values``."""
    found = coded.levels.get_indexer(list(values))
    return np.isin(coded.codes, found[found >= 0])


def merge_cubes(parts: list[Cubes]) -> Cubes:
    """The cubes of many partitions, summed."""
    parts = [p for p in parts if p is not None]
    if not parts:
        raise ValueError("no partitions to merge")
    if len(parts) == 1:
        return parts[0]
    merged = {}
    for f in fields(Cubes):
        if f.name in ("events", "weeks", "made"):
            continue
        frames = [getattr(p, f.name) for p in parts if len(getattr(p, f.name))]
        frame = pd.concat(frames, ignore_index=True) if frames else getattr(parts[0], f.name)
        merged[f.name] = frame if f.name == "failed" else sum_by(frame, KEYS[f.name])
    events = {k: any(p.events.get(k) for p in parts) for k in parts[0].events}
    made = tuple(sorted(set.intersection(*(set(p.made) for p in parts))))
    return Cubes(**merged, events=events, weeks=parts[0].weeks, made=made)
