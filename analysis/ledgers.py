"""The three weekly ledgers (三本台账), billing reconciliation and alerts, as tidy frames.

Column names are English snake_case; :mod:`analysis.excel` applies the Chinese or English
display labels when it writes a workbook.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd

from .measures import (
    ALL,
    TARGET,
    arrival_rates,
    billing_reconciliation,
    effective_cost,
    failure_reasons,
    iso_weeks,
    matched_modes,
    open_rates,
    repeat_failures,
    trailing_sum,
)
from .monitor import drop_alerts

#: Sheets of a ledger workbook, in order.
SHEETS = ("summary", "quality", "trend", "failures", "repeat_failures", "content", "billing", "cost", "alerts")


def quality_ledger(
    log: pd.DataFrame,
    *,
    by: Sequence[str] = ("vendor", "carrier"),
    target: float = TARGET,
    baseline: int = 8,
) -> pd.DataFrame:
    """Quality monitoring (质量监测表): one row per week × group, with totals.

    Parameters
    ----------
    log : canonical send log (with :func:`analysis.attach_events` columns for the
        complaint and unsubscribe rates).
    by : the group levels; totals are added for every prefix (``vendor`` = ``All`` …).
    target : the arrival target.
    baseline : how many earlier weeks of the group form its control limits.

    Returns
    -------
    DataFrame sorted by ``week`` then the keys (totals, ``All``, first):

    * ``week`` and the keys; the :func:`analysis.arrival_rates` columns;
    * ``arrival_change_pp``: arrival minus the group's previous week, in points;
    * ``target``, ``meets_target`` (arrival ≥ target);
    * ``control_low``, ``control_high``: p-chart limits, p̄ ± 3·√(p̄(1 − p̄)/n), from
      the pooled arrival of the group's ``baseline`` previous weeks; ``in_control``
      (arrival ≥ control_low; missing in a group's first week).
    """
    by = list(by)
    parts = []
    for depth in range(len(by) + 1):
        level = arrival_rates(log, by=["week", *by[:depth]])
        parts.append(level.assign(**{k: ALL for k in by[depth:]}))
    q = pd.concat(parts, ignore_index=True)
    for k in by:
        q[k] = q[k].astype(object)
    q["_total"] = sum((q[k] != ALL).astype(int) for k in by) if by else 0
    q = q.sort_values([*by, "week"], kind="stable")
    group = q.groupby(by, sort=False, dropna=False).ngroup().to_numpy() if by else np.zeros(len(q))
    q["arrival_change_pp"] = 100 * (q["arrival_rate"] - trailing_sum(q["arrival_rate"], group, 1))
    prev_n = trailing_sum(q["submitted"], group, baseline)
    prev_k = trailing_sum(q["delivered"], group, baseline)
    p0 = pd.Series(np.where(prev_n > 0, prev_k / np.where(prev_n > 0, prev_n, 1), np.nan), index=q.index)
    half = 3 * np.sqrt(p0 * (1 - p0) / q["submitted"].where(q["submitted"] > 0))
    q["target"] = target
    q["meets_target"] = q["arrival_rate"] >= target
    q["control_low"] = (p0 - half).clip(lower=0)
    q["control_high"] = (p0 + half).clip(upper=1)
    q["in_control"] = (q["arrival_rate"] >= q["control_low"]).astype("boolean").where(p0.notna())
    q = q.sort_values(["week", "_total", *by], kind="stable").drop(columns="_total")
    return q[["week", *by, *[c for c in q.columns if c not in {"week", *by}]]].reset_index(drop=True)


def failure_ledger(log: pd.DataFrame, *, by: Sequence[str] = ("carrier", "province")) -> pd.DataFrame:
    """Failure tracing (问题溯源表): failures by week × carrier × province × reason.

    Returns
    -------
    DataFrame, the :func:`analysis.failure_reasons` columns with ``week`` first, sorted by
    week then ``failed`` descending; ``share`` is the group's share of the week's failures
    in ``share_of_week``.
    """
    f = failure_reasons(log, by=["week", *by])
    if f.empty:
        return f.assign(share_of_week=pd.Series(dtype=float))
    f["share_of_week"] = f["failed"] / f.groupby("week", observed=True)["failed"].transform("sum")
    return f.sort_values(["week", "failed", *by], ascending=[True, False, *[True] * len(by)], kind="stable").reset_index(drop=True)


def content_ledger(log: pd.DataFrame, *, min_delivered: int = 30) -> pd.DataFrame:
    """Content optimization (内容优化表): each template / copy variant per week.

    Parameters
    ----------
    log : canonical send log (with the click columns of :func:`analysis.attach_events`
        for the click and conversion figures; NaN without).
    min_delivered : an hour needs this many delivered messages to be a best send hour.

    Returns
    -------
    DataFrame sorted by week, ``category``, ``template_id``:

    * ``week``, ``template_id``, ``category``, ``content`` (the most sent text);
    * ``sent``, ``delivered``, ``arrival_rate``, ``arrival_low``, ``arrival_high``;
    * ``blocked`` (failure reason ``content_blocked``) and ``blocked_rate`` (/ sent);
    * ``clicks`` (click events), ``opened`` (delivered with a click),
      ``click_through_rate`` = opened / delivered, ``click_through_low`` / ``_high``;
    * ``conversions``, ``conversion_rate`` = converted / delivered, ``conversion_low``,
      ``conversion_high``;
    * ``best_send_hour``, ``best_hour_rate``: the send hour with the highest
      click-through among hours with at least ``min_delivered`` delivered.
    """
    keys = ["week", "template_id", "category"]
    d = log.assign(week=iso_weeks(log["submit_time"]), template_id=log["template_id"].astype(object).fillna("—"),
                   category=log["category"].astype(object))
    rates = arrival_rates(d, by=keys)[[*keys, "submitted", "delivered", "arrival_rate", "arrival_low", "arrival_high"]]
    blocked = d["failure_reason"].astype(object).eq("content_blocked").to_numpy(dtype=bool)
    clicks = d["clicks"].to_numpy() if "clicks" in d else np.zeros(len(d))
    sums = d[keys].assign(blocked=blocked, clicks=clicks).groupby(keys, observed=True, dropna=False)[["blocked", "clicks"]].sum()
    text = d.dropna(subset=["content"]).groupby(keys, observed=True, dropna=False)["content"].agg(
        lambda s: s.value_counts().index[0])
    out = rates.merge(sums.reset_index(), on=keys, how="left").merge(text.rename("content").reset_index(), on=keys, how="left")
    out = out.rename(columns={"submitted": "sent"})
    out["blocked_rate"] = out["blocked"] / out["sent"]
    if "clicked" in d:
        o = open_rates(d, by=keys).rename(columns=lambda c: c.replace("open_", "click_through_"))
        out = out.merge(o.drop(columns="delivered"), on=keys, how="left")
        hours = open_rates(d, by=[*keys, "hour"])
        hours = hours[hours["delivered"] >= min_delivered].sort_values(
            [*keys, "open_rate", "hour"], ascending=[True, True, True, False, True], kind="stable")
        best = hours.groupby(keys, observed=True, dropna=False).head(1)[[*keys, "hour", "open_rate"]]
        out = out.merge(best.rename(columns={"hour": "best_send_hour", "open_rate": "best_hour_rate"}), on=keys, how="left")
    else:
        out["clicks"] = np.nan
        for c in ("opened", "click_through_rate", "click_through_low", "click_through_high", "conversions",
                  "conversion_rate", "conversion_low", "conversion_high", "best_send_hour", "best_hour_rate"):
            out[c] = np.nan
    cols = [*keys, "content", "sent", "delivered", "arrival_rate", "arrival_low", "arrival_high", "blocked",
            "blocked_rate", "clicks", "opened", "click_through_rate", "click_through_low", "click_through_high",
            "conversions", "conversion_rate", "conversion_low", "conversion_high", "best_send_hour", "best_hour_rate"]
    return out.sort_values(["week", "category", "template_id"], kind="stable")[cols].reset_index(drop=True)


def weekly_ledgers(
    log: pd.DataFrame,
    week: str,
    *,
    bill: pd.DataFrame | None = None,
    accounting: pd.DataFrame | None = None,
    prices: dict[str, float] | None = None,
    modes: dict[str, str] | None = None,
    inputs: Sequence[str] = (),
) -> dict[str, pd.DataFrame]:
    """Every sheet of one week's ledger workbook, as tidy frames.

    Parameters
    ----------
    log : the whole send log available (earlier weeks give the baselines), with
        :func:`analysis.attach_events` columns when there are events.
    week : ISO week, ``"2025-W18"``.
    bill : vendor bills, for the billing sheet.
    accounting : per-input row accounting (``LoadResult.summary``).
    prices, modes : contract prices and billing modes per vendor.
    inputs : the input paths, recorded on the summary sheet.

    Returns
    -------
    dict with keys :data:`SHEETS`: ``summary`` (row accounting per input; the period,
    version and inputs in ``attrs``), ``quality``, ``trend`` (arrival per carrier, all
    vendors, for every week up to this one), ``failures``, ``repeat_failures``
    (numbers failing at least twice in the week, unmasked), ``content``, ``billing``
    (the months the week touches), ``cost`` (the week's cost per delivered message and
    per click, vendor × carrier: :func:`analysis.effective_cost`), ``alerts`` (drops that started or lasted in the week).
    """
    from . import __version__

    weeks = iso_weeks(log["submit_time"])
    if week not in set(weeks.astype(object).dropna()):
        found = ", ".join(sorted(weeks.astype(object).dropna().unique())) or "none"
        raise ValueError(f"no messages in week {week} (weeks in the input: {found})")
    in_week = weeks.eq(week).to_numpy(dtype=bool)
    this = log[in_week]
    start = datetime.strptime(f"{week}-1", "%G-W%V-%u").date()
    end = datetime.strptime(f"{week}-7", "%G-W%V-%u").date()
    months = sorted({start.strftime("%Y-%m"), end.strftime("%Y-%m")})
    billing = billing_reconciliation(log, bill, prices=prices, modes=modes)
    alerts = drop_alerts(log)
    alerts = alerts[iso_weeks(alerts["period"].dt.tz_localize(log["submit_time"].dt.tz)).eq(week).to_numpy(dtype=bool)]
    summary = _accounting(accounting)
    summary.attrs = {
        "week": week,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "messages": int(in_week.sum()),
        "inputs": "; ".join(map(str, inputs)),
        "generated": datetime.now().astimezone().isoformat(timespec="seconds"),
        "version": __version__,
    }
    quality = quality_ledger(log)
    trend = pd.concat([arrival_rates(log, by=["week", "carrier"]), arrival_rates(log, by=["week"]).assign(carrier=ALL)])
    trend = trend[trend["week"].astype(object).le(week)].sort_values(["week", "carrier"], kind="stable")
    return {
        "summary": summary,
        "quality": _only(quality, week),
        "trend": trend[["week", "carrier", "submitted", "delivered", "arrival_rate", "arrival_low", "arrival_high"]]
        .reset_index(drop=True),
        "failures": _only(failure_ledger(log), week),
        "repeat_failures": repeat_failures(this),
        "content": _only(content_ledger(log), week),
        "billing": billing[billing["month"].isin(months)].reset_index(drop=True),
        "cost": effective_cost(this, bill, prices=prices, modes={**matched_modes(billing), **(modes or {})},
                               by=["vendor", "carrier"]),
        "alerts": alerts.reset_index(drop=True),
    }


def _only(frame: pd.DataFrame, week: str) -> pd.DataFrame:
    return frame[frame["week"].astype(object).eq(week)].reset_index(drop=True)


ACCOUNTING = ["file", "layout", "vendor", "encoding", "rows_read", "loaded", "rejected", "duplicates"]


def _accounting(accounting: pd.DataFrame | None) -> pd.DataFrame:
    if accounting is None or accounting.empty:
        return pd.DataFrame({c: pd.Series(dtype=object if i < 4 else "int64") for i, c in enumerate(ACCOUNTING)})
    acc = accounting.reindex(columns=ACCOUNTING).copy()
    total = {c: (int(acc[c].sum()) if c in ACCOUNTING[4:] else None) for c in ACCOUNTING}
    total["file"] = ALL
    out = pd.concat([acc, pd.DataFrame([total])], ignore_index=True)
    for c in ACCOUNTING[4:]:
        out[c] = out[c].astype("int64")
    return out

