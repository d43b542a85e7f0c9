"""The three weekly ledgers (三本台账), billing reconciliation and alerts, as tidy frames.

They are built from partial aggregates (:mod:`analysis.cubes`), so the same code serves a
log in memory, a store streamed partition by partition and a Dask cluster. Column names
are English snake_case; :mod:`analysis.excel` applies the Chinese or English display
labels when it writes a workbook.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from .alerts import alerts_from_counts
from .cubes import TABLES, Cubes, Source, partial_cubes
from .kernel import (
    ARRIVAL_SUMS,
    bin_values,
    hist_quantiles,
    iso_weeks,
    merge_on,
    sum_by,
    trailing_sum,
)
from .measures import (
    ALL,
    TARGET,
    arrival_from_sums,
    billing_terms,
    click_through_from_sums,
    compare_windows,
    cost_table,
    failure_table,
    reconcile,
    repeat_candidates,
    repeat_table,
    sends_per_phone,
    vendor_currencies,
    with_interval,
)
from .schema import DEFAULT_TZ
from .stats import two_proportion_test

#: Sheets of a ledger workbook, in order.
SHEETS = ("summary", "quality", "trend", "regions", "failures", "repeat_failures", "content", "billing", "cost",
          "alerts")


def quality_ledger(cubes: Cubes, *, target: float = TARGET, baseline: int = 8) -> pd.DataFrame:
    """Quality monitoring (质量监测表): one row per week × vendor × carrier, with totals.

    Parameters
    ----------
    cubes : merged partial sums (a log's: ``compute(["quality"], log)``), their complaint
        and unsubscribe rates from the :func:`analysis.attach_events` columns.
    target : the arrival target.
    baseline : how many earlier weeks of the group form its control limits.

    Returns
    -------
    DataFrame sorted by ``week`` then the keys (totals, ``All``, first):

    * ``week``, ``vendor``, ``carrier``; the :func:`analysis.arrival_rates` columns
      (latency percentiles from the histogram, see :mod:`analysis.cubes`);
    * ``arrival_change_pp``: arrival minus the group's previous week, in points;
    * ``target``, ``meets_target`` (arrival ≥ target);
    * ``control_low``, ``control_high``: p-chart limits, p̄ ± 3·√(p̄(1 − p̄)/n), from
      the pooled arrival of the group's ``baseline`` previous weeks; ``in_control``
      (arrival ≥ control_low; missing in a group's first week);
    * ``vendor_definition``, ``vendor_success_rate``: where the vendor's own statistics
      call something else "success" (:func:`vendor_success`), that figure, to reconcile
      its claim with the measured arrival.
    """
    by = ["vendor", "carrier"]
    parts = []
    for depth in range(len(by) + 1):
        keys = ["week", *by[:depth]]
        sums = _arrival_sums(cubes.quality[[*keys, *TABLES["quality"].sums]], cubes.latency, keys)
        level = arrival_from_sums(sums, keys, events=_events(cubes))
        if "vendor" in keys:
            level = level.assign(**vendor_success(sums))
        parts.append(level.assign(**{k: ALL for k in by[depth:]}))
    q = pd.concat(parts, ignore_index=True)
    for k in by:
        q[k] = q[k].astype(object)
    q["_total"] = sum((q[k] != ALL).astype(int) for k in by)
    q = q.sort_values([*by, "week"], kind="stable", na_position="last")
    group = q.groupby(by, sort=False, dropna=False).ngroup().to_numpy()
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
    q = q.sort_values(["week", "_total", *by], kind="stable", na_position="last").drop(columns="_total")
    return q[["week", *by, *[c for c in q.columns if c not in {"week", *by}]]].reset_index(drop=True)


def trend_table(cubes: Cubes) -> pd.DataFrame:
    """Arrival per week and carrier across vendors, and in total (``carrier`` = ``All``).

    Returns
    -------
    DataFrame sorted by week and carrier: ``week``, ``carrier``, ``submitted``,
    ``delivered``, ``arrival_rate``, ``arrival_low``, ``arrival_high``.
    """
    by_carrier = sum_by(cubes.quality[["week", "carrier", "submitted", "delivered"]], ["week", "carrier"])
    total = cubes.quality.groupby("week")[["submitted", "delivered"]].sum().reset_index().assign(carrier=ALL)
    t = pd.concat([by_carrier, total], ignore_index=True)
    t["carrier"] = t["carrier"].astype(object)
    t = with_interval(t, "delivered", "submitted", "arrival")
    t = t.sort_values(["week", "carrier"], kind="stable", na_position="last")
    return t[["week", "carrier", "submitted", "delivered", "arrival_rate", "arrival_low", "arrival_high"]].reset_index(drop=True)


#: What each vendor's own statistics count as "success" (their console and API docs), where it is not
#: a delivery receipt: Tencent counts submissions the platform accepted, Aliyun counts
#: deliveries among the messages that got a receipt, Twilio's ``sent`` can be final.
VENDOR_SUCCESS = {"tencent": "submission_success", "aliyun": "responded_success", "twilio": "sent_as_final"}


def vendor_success(sums: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each vendor's success rate under its own definition (:data:`VENDOR_SUCCESS`),
    from summed counts (``vendor``, ``submitted``, ``delivered``, ``final``,
    ``accepted``): ``submission_success`` = accepted / submitted, ``responded_success`` =
    delivered / final, ``sent_as_final`` = (delivered + still pending) / submitted.

    Returns ``{"vendor_definition": …, "vendor_success_rate": …}`` aligned with ``sums``.
    """
    definition = sums["vendor"].astype(object).map(VENDOR_SUCCESS)
    n, k, final = (sums[c].to_numpy(dtype=float) for c in ("submitted", "delivered", "final"))
    accepted = sums["accepted"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.select([definition.eq("submission_success"), definition.eq("responded_success"),
                          definition.eq("sent_as_final")], [accepted / n, k / final, (k + n - final) / n], np.nan)
    return {"vendor_definition": definition.to_numpy(dtype=object), "vendor_success_rate": rate}


def region_table(cubes: Cubes) -> pd.DataFrame:
    """Arrival per week × carrier × province (all vendors), the carrier-by-province view.

    Returns
    -------
    DataFrame sorted by week, carrier, province: ``week``, ``carrier``, ``province``,
    ``submitted``, ``delivered``, ``arrival_rate``, ``arrival_low``, ``arrival_high``.
    """
    daily = cubes.daily.assign(week=iso_weeks(pd.to_datetime(cubes.daily["period"])).astype(object).to_numpy())
    keys = ["week", "carrier", "province"]
    return with_interval(_sorted(sum_by(daily[[*keys, "submitted", "delivered"]], keys), keys), "delivered",
                         "submitted", "arrival")


def failure_ledger(cubes: Cubes, *, top: int = 3) -> pd.DataFrame:
    """Failure tracing (问题溯源表): failures by week × carrier × province × reason.

    Returns
    -------
    DataFrame, the :func:`analysis.failure_reasons` columns with ``week`` first, sorted by
    week then ``failed`` descending, plus ``share_of_week`` (of the week's failures).
    """
    by = ["week", "carrier", "province"]
    daily = cubes.daily.assign(week=iso_weeks(pd.to_datetime(cubes.daily["period"])).astype(object).to_numpy())
    submitted = sum_by(daily[[*by, "submitted"]], by)
    f = failure_table(cubes.failures, submitted, by=by, top=top)
    if f.empty:
        return f.assign(share_of_week=pd.Series(dtype=float))
    f["share_of_week"] = f["failed"] / f.groupby("week")["failed"].transform("sum")
    return f.sort_values(["week", "failed", "carrier", "province"], ascending=[True, False, True, True],
                         kind="stable", na_position="last").reset_index(drop=True)


#: Categories the user triggers (a verification code is sent when asked for): no send
#: hour is chosen for them, so none is recommended.
USER_TRIGGERED = ("verification",)


def content_ledger(cubes: Cubes, *, min_linked: int = 30, alpha: float = 0.05) -> pd.DataFrame:
    """Content optimization (内容优化表): each template / copy variant per week.

    Parameters
    ----------
    cubes : merged partial sums, their click and conversion figures from the click
        columns of :func:`analysis.attach_events` (NaN without).
    min_linked : an hour needs this many delivered messages with a link to be compared.
    alpha : significance of a best send hour, shared among the hours compared.

    Returns
    -------
    DataFrame sorted by week, ``category``, ``template_id``:

    * ``week``, ``template_id``, ``category``, ``content`` (the most sent text);
    * ``sent``, ``delivered``, ``arrival_rate``, ``arrival_low``, ``arrival_high``;
    * ``blocked`` (failure reason ``content_blocked``) and ``blocked_rate`` (/ sent);
    * ``linked`` (delivered with a link), ``clicks`` (click events), ``clicked``
      (delivered with a link and a click), ``click_through_rate`` = clicked / linked,
      ``click_through_low`` / ``_high`` (missing for a template without links);
    * ``conversions``, ``conversion_rate`` = converted / linked, ``conversion_low``,
      ``conversion_high``;
    * ``best_send_hour``, ``best_hour_rate``: the send hour whose click-through beats the
      template's other hours that week significantly (one-sided two-proportion test at
      ``alpha`` divided by the number of hours compared, each with at least
      ``min_linked``); missing when no hour does, and never for a user-triggered
      category (:data:`USER_TRIGGERED`).
    """
    keys = ["week", "template_id", "category"]
    sums = ["sent", "delivered", "blocked", "linked", "clicks", "clicked", "conversions"]
    c = _sorted(sum_by(cubes.content[[*keys, *sums]], keys), keys)
    text = cubes.texts.sort_values(["n", "content"], ascending=[False, True], kind="stable")
    text = text.drop_duplicates(keys)[[*keys, "content"]]
    out = merge_on(c, text, keys, how="left")
    out = with_interval(out, "delivered", "sent", "arrival").assign(blocked_rate=out["blocked"] / out["sent"])
    rates = {"click_through": "clicked", "conversion": "conversions"}
    if cubes.events.get("clicked"):
        out = click_through_from_sums(out)
        out = merge_on(out, _best_hours(cubes.content, keys, min_linked=min_linked, alpha=alpha), keys, how="left")
        out["best_send_hour"] = out["best_send_hour"].astype("Int64")
    else:
        for c_ in ("clicks", "clicked", "conversions", "best_send_hour", "best_hour_rate"):
            out[c_] = np.nan
        for name in rates:
            for suffix in ("rate", "low", "high"):
                out[f"{name}_{suffix}"] = np.nan
    cols = [*keys, "content", "sent", "delivered", "arrival_rate", "arrival_low", "arrival_high", "blocked",
            "blocked_rate", "linked", "clicks", "clicked", "click_through_rate", "click_through_low",
            "click_through_high", "conversions", "conversion_rate", "conversion_low", "conversion_high",
            "best_send_hour", "best_hour_rate"]
    out["template_id"] = out["template_id"].fillna("—")
    return out.sort_values(["week", "category", "template_id"], kind="stable", na_position="last")[cols].reset_index(drop=True)


def _best_hours(content: pd.DataFrame, keys: list[str], *, min_linked: int, alpha: float) -> pd.DataFrame:
    """Per template-week, the hour with the highest click-through if it beats the other
    hours pooled, one-sided, at ``alpha`` / the number of hours compared (Bonferroni: the
    best of many hours is high by chance)."""
    from scipy import special

    hours = content[~content["category"].astype(object).isin(USER_TRIGGERED).to_numpy()]
    hours = sum_by(hours[[*keys, "hour", "linked", "clicked"]], [*keys, "hour"])
    hours = hours[hours["linked"] >= min_linked]
    hours = hours.assign(rate=hours["clicked"] / hours["linked"])
    total = hours.groupby(keys, dropna=False)[["linked", "clicked"]].transform("sum")
    compared = hours.groupby(keys, dropna=False)["hour"].transform("size")
    z, _, _ = two_proportion_test(hours["clicked"], hours["linked"], total["clicked"] - hours["clicked"],
                                  total["linked"] - hours["linked"])
    p = special.ndtr(-np.nan_to_num(z, nan=-np.inf))  # one-sided: this hour above the others
    hours = hours.assign(_p=p, _limit=alpha / compared)
    best = hours.sort_values([*keys, "rate", "hour"], ascending=[True, True, True, False, True], kind="stable")
    best = best.drop_duplicates(keys)
    best = best[(best["_p"] < best["_limit"]).to_numpy()]
    return best[[*keys, "hour", "rate"]].rename(columns={"hour": "best_send_hour", "rate": "best_hour_rate"})


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys, kind="stable", na_position="last").reset_index(drop=True)


def billing_ledger(cubes: Cubes, *, bill: pd.DataFrame | None = None, prices: dict[str, float] | None = None,
                   modes: dict[str, str] | None = None) -> pd.DataFrame:
    """Billing reconciliation (计费核对): per vendor × month, the segments submitted and
    delivered, the amounts under each billing mode and the vendor's bill beside them
    (:func:`analysis.measures.reconcile`, whose columns it returns)."""
    return reconcile(cubes.billing, bill, prices=prices, modes=modes, currencies=vendor_currencies(cubes.currencies))


def cost_ledger(cubes: Cubes, *, bill: pd.DataFrame | None = None, prices: dict[str, float] | None = None,
                modes: dict[str, str] | None = None) -> pd.DataFrame:
    """Cost per delivered message and per click, week × vendor × carrier, at the billing
    terms the reconciliation finds (:func:`billing_ledger`): the
    :func:`analysis.effective_cost` columns with ``week`` first."""
    vendor_mode, price = billing_terms(billing_ledger(cubes, bill=bill, prices=prices, modes=modes),
                                       prices=prices, modes=modes)
    return cost_table(cubes.cost, by=["week", "vendor", "carrier"], modes=vendor_mode, prices=price,
                      clicks=bool(cubes.events.get("clicked")), currencies=vendor_currencies(cubes.currencies))


def latency_ledger(cubes: Cubes) -> pd.DataFrame:
    """Latency distributions per week × vendor × carrier, from the histogram (see
    :mod:`analysis.cubes` for its bound): what the recipient waited per original
    (``kind`` ``recipient``) and each attempt's submission-to-receipt time (``attempt``).

    Returns
    -------
    DataFrame sorted by the keys and ``seconds``: ``week``, ``vendor``, ``carrier``,
    ``kind``, ``seconds`` (the bin's lower edge: whole seconds below an hour),
    ``messages`` (delivered with a receipt time, in that bin).
    """
    keys = ["week", "vendor", "carrier", "kind"]
    h = sum_by(cubes.latency[[*keys, "bin", "n"]], [*keys, "bin"])
    h = h.assign(seconds=bin_values(h["bin"].to_numpy()), messages=h["n"].astype("int64"))
    return _sorted(h, [*keys, "seconds"])[[*keys, "seconds", "messages"]]


def peak_ledger(cubes: Cubes) -> pd.DataFrame:
    """Arrival and latency in each peak window against off-peak, per vendor, over every
    week: the :func:`analysis.peak_variance` columns (by vendor)."""
    keys = ["vendor", "window"]
    sums = _arrival_sums(cubes.hours[[*keys, "submitted", *ARRIVAL_SUMS]], cubes.windows, keys)
    return compare_windows(arrival_from_sums(sums, keys, events=_events(cubes)), ["vendor"])


def hour_ledger(cubes: Cubes) -> pd.DataFrame:
    """Arrival and click-through by send hour, over every week and vendor.

    Returns
    -------
    DataFrame sorted by ``hour``: ``hour``, ``submitted``, ``delivered``,
    ``arrival_rate``, ``arrival_low``, ``arrival_high``, and the
    :func:`analysis.click_through_rates` columns (NaN without click events).
    """
    return _send_hours(cubes, ["hour"])


def weekday_hour_ledger(cubes: Cubes) -> pd.DataFrame:
    """:func:`hour_ledger` by weekday (0 = Monday) × send hour."""
    return _send_hours(cubes, ["weekday", "hour"])


def _send_hours(cubes: Cubes, keys: list[str]) -> pd.DataFrame:
    out = _sorted(sum_by(cubes.hours[[*keys, "submitted", "delivered", "linked", "clicked", "conversions"]], keys), keys)
    out = out[out[keys].notna().all(axis=1)].reset_index(drop=True)  # no send time: no hour
    out = click_through_from_sums(with_interval(out, "delivered", "submitted", "arrival"))
    if not cubes.events.get("clicked"):
        out[["linked", "clicked", "conversions"]] = pd.NA
        out[[c for c in out.columns if c.startswith(("click_through", "conversion_"))]] = np.nan
    return out.astype({k: "int64" for k in keys})


def _arrival_sums(sums: pd.DataFrame, hist: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Row flags summed per ``keys``, with the latency percentiles of their histograms
    (``kind`` ``recipient`` and ``attempt``): what :func:`analysis.measures.arrival_from_sums`
    finishes."""
    out = _sorted(sum_by(sums, keys), keys)
    for kind, prefix in (("recipient", "latency"), ("attempt", "attempt_latency")):
        q = hist_quantiles(hist[hist["kind"].eq(kind)], keys)
        out = merge_on(out, q.rename(columns={"q0.5": f"{prefix}_p50_s", "q0.95": f"{prefix}_p95_s"}), keys, how="left")
    return out


def _events(cubes: Cubes) -> dict[str, bool]:
    return {"complained": cubes.events.get("complained", False), "unsubscribed": cubes.events.get("unsubscribed", False)}


def alert_ledger(cubes: Cubes) -> pd.DataFrame:
    """Drop alerts per day × vendor × carrier × province
    (:func:`analysis.alerts.alerts_from_counts`, whose columns it returns)."""
    return alerts_from_counts(cubes.daily)


class Measure(NamedTuple):
    """A measure, declared: the partial sums it reads (names of
    :data:`analysis.cubes.TABLES`: each states its grain and what it sums per row) and its
    finish step, ``finish(cubes) -> tidy frame``, over their merged sums. A ``billed``
    measure's finish also takes the vendors' bills and contract terms (``bill=``,
    ``prices=``, ``modes=``)."""

    tables: tuple[str, ...]
    finish: Callable[..., pd.DataFrame]
    billed: bool = False


#: Every measure of the ledgers, by name: :func:`analysis.compute` finishes them over a
#: log in memory (one partition), a store streamed or a Dask cluster alike.
MEASURES = {
    "quality": Measure(("quality", "latency"), quality_ledger),
    "latency": Measure(("latency",), latency_ledger),
    "trend": Measure(("quality",), trend_table),
    "regions": Measure(("daily",), region_table),
    "failures": Measure(("daily", "failures"), failure_ledger),
    "content": Measure(("content", "texts"), content_ledger),
    "billing": Measure(("billing", "currencies"), billing_ledger, billed=True),
    "cost": Measure(("billing", "cost", "currencies"), cost_ledger, billed=True),
    "alerts": Measure(("daily",), alert_ledger),
    "peaks": Measure(("hours", "windows"), peak_ledger),
    "hours": Measure(("hours",), hour_ledger),
    "weekday_hours": Measure(("hours",), weekday_hour_ledger),
}
#: The measures of the weekly ledger workbook (:func:`ledgers_of`): what
#: :func:`analysis.ledger_source` reads for by default.
LEDGER_MEASURES = ("quality", "trend", "regions", "failures", "content", "billing", "cost", "alerts")


def tables_of(measures) -> tuple[str, ...]:
    """The partial sums the measures need (names of :data:`analysis.cubes.TABLES`)."""
    return tuple(sorted({t for m in measures for t in MEASURES[m].tables}))


def finish(name: str, cubes: Cubes, *, bill: pd.DataFrame | None = None, prices: dict | None = None,
           modes: dict | None = None) -> pd.DataFrame:
    """The measure ``name`` of :data:`MEASURES` over merged cubes.

    Raises
    ------
    ValueError
        When the cubes were made without the sums the measure needs.
    """
    measure = MEASURES[name]
    if missing := [t for t in measure.tables if t not in cubes.made]:
        raise ValueError(f"the {name!r} measure needs the {', '.join(missing)} sums, which this source was not "
                         f"read for: read it with ledger_source(..., measures=[..., {name!r}])")
    return measure.finish(cubes, bill=bill, prices=prices, modes=modes) if measure.billed else measure.finish(cubes)


def weekly_ledgers(
    source,
    week: str,
    *,
    bill: pd.DataFrame | None = None,
    accounting: pd.DataFrame | None = None,
    prices: dict[str, float] | None = None,
    modes: dict[str, str] | None = None,
    inputs=(),
) -> dict[str, pd.DataFrame]:
    """Every sheet of one week's ledger workbook, as tidy frames.

    Parameters
    ----------
    source : the inputs' :func:`analysis.ledger_source` (the store streamed, or exports),
        or a whole send log in memory (earlier weeks give the baselines), with
        :func:`analysis.attach_events` columns when there are events.
    week : ISO week, ``"2025-W18"``.
    bill : vendor bills, for the billing sheet (a source brings its own).
    accounting : per-input row accounting (``LoadResult.summary``; a source brings its own).
    prices, modes : contract prices and billing modes per vendor.
    inputs : the input paths, recorded on the summary sheet (a source brings its own).

    Returns
    -------
    dict with keys :data:`SHEETS`: ``summary`` (row accounting per input; the period,
    version, inputs and the week's and all weeks' messages in ``attrs``), ``quality``,
    ``trend`` (arrival per carrier, all vendors, and in total, for every week up to this
    one), ``failures``, ``repeat_failures`` (numbers failing at least twice in the week,
    unmasked), ``content``, ``billing`` (the months the week touches), ``cost`` (the
    week's cost per delivered message and per click, vendor × carrier:
    :func:`analysis.effective_cost`), ``alerts`` (drops that started or lasted in the week).
    """
    if isinstance(source, pd.DataFrame):
        log = source
        source = Source(cubes=partial_cubes(log), messages=lambda phones: sends_per_phone(log, phones),
                        bill=bill if bill is not None else pd.DataFrame(), summary=accounting if accounting is not None
                        else pd.DataFrame(), rejects=pd.DataFrame(), files=list(inputs))
    return ledgers_of(source, [week], prices=prices, modes=modes)[week]


def ledgers_of(source, weeks=None, *, prices: dict | None = None, modes: dict | None = None) -> dict[str, dict]:
    """Every sheet of each week's ledger workbook from a source of partial aggregates
    (:func:`analysis.engine.ledger_source`): the one place a week is put together, for the
    console command, the notebooks and the tests alike.

    Parameters
    ----------
    source : :class:`analysis.cubes.Source` (cubes, the second pass for sends per phone,
        bills, accounting, files).
    weeks : ISO weeks to build (default: every week in the source).
    prices, modes : contract prices and billing modes per vendor.

    Returns
    -------
    ``{week: {sheet: DataFrame}}`` (the sheets of :func:`ledgers_from_cubes`).

    Raises
    ------
    ValueError
        When a week asked for has no messages.
    """
    found = sorted(set(source.cubes.quality["week"].dropna()))
    weeks = list(weeks) if weeks else found
    missing = [w for w in weeks if w not in found]
    if missing:
        raise ValueError(f"no messages in week {', '.join(missing)} (weeks in the input: {', '.join(found) or 'none'})")
    if "failed" not in source.cubes.made:
        raise ValueError("this source was read without the failed messages the repeat-failure list needs: "
                         "read it with ledger_source(...) and its default measures")
    kept = source.cubes.weeks
    if kept is not None and set(weeks) - set(kept):
        raise ValueError(f"the source keeps the detail of week {', '.join(kept)} only: read it with "
                         f"weeks={sorted(set(weeks) | set(kept))}")
    from .workers import background

    # the alerts, the slowest sheet, on a worker process (when there is one) meanwhile
    alerts = background(alerts_from_counts, source.cubes.daily)  # the daily counts only: the worker gets a copy
    failed = source.cubes.failed
    # the repeat-failure list's second, narrow pass: sends to the week's failing phones
    messages = source.messages({w: repeat_candidates(failed[failed["week"].eq(w)]) for w in weeks})
    tables = ledger_tables(source.cubes, bill=source.bill, prices=prices, modes=modes, alerts=alerts)
    return {w: ledgers_from_cubes(source.cubes, w, messages=messages.get(w), bill=source.bill,
                                  accounting=source.summary, prices=prices, modes=modes,
                                  inputs=source.files, tables=tables) for w in weeks}


def ledger_tables(
    cubes: Cubes,
    *,
    bill: pd.DataFrame | None = None,
    prices: dict[str, float] | None = None,
    modes: dict[str, str] | None = None,
    alerts=None,
) -> dict:
    """The ledgers of every week at once (computed once, sliced per week by
    :func:`ledgers_from_cubes`). ``alerts``: the future of ``alerts_from_counts(cubes.daily)``
    when it was started already (:func:`analysis.workers.background`)."""
    from .workers import background

    # the alerts, the slowest sheet, on a worker process (when there is one) meanwhile
    pending = alerts or background(alerts_from_counts, cubes.daily)
    tables = {name: finish(name, cubes, bill=bill, prices=prices, modes=modes) for name in LEDGER_MEASURES
              if name != "alerts"}
    alerts = pending.result()
    return {
        **tables,
        "alerts": alerts.assign(_week=iso_weeks(pd.to_datetime(alerts["period"])).astype(object).to_numpy()),
        "alert_rules": alerts.attrs.get("rules", {}),
    }


def ledgers_from_cubes(
    cubes: Cubes,
    week: str,
    *,
    messages: pd.Series | None = None,
    bill: pd.DataFrame | None = None,
    accounting: pd.DataFrame | None = None,
    prices: dict[str, float] | None = None,
    modes: dict[str, str] | None = None,
    inputs=(),
    tables: dict | None = None,
) -> dict[str, pd.DataFrame]:
    """:func:`weekly_ledgers` from merged cubes; ``messages`` are the week's sends per
    phone for the repeat-failure candidates (:func:`analysis.measures.repeat_candidates`);
    ``tables`` the :func:`ledger_tables` of the cubes, when already computed."""
    from . import __version__

    weeks = sorted(set(cubes.quality["week"].dropna()))
    if week not in weeks:
        raise ValueError(f"no messages in week {week} (weeks in the input: {', '.join(weeks) or 'none'})")
    tables = tables or ledger_tables(cubes, bill=bill, prices=prices, modes=modes)
    start = datetime.strptime(f"{week}-1", "%G-W%V-%u").date()
    end = datetime.strptime(f"{week}-7", "%G-W%V-%u").date()
    months = sorted({start.strftime("%Y-%m"), end.strftime("%Y-%m")})
    summary = _accounting(accounting)
    summary.attrs = {
        "week": week,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "messages": int(cubes.quality.loc[cubes.quality["week"].eq(week), "submitted"].sum()),
        "messages_total": int(cubes.quality["submitted"].sum()),
        "inputs": "; ".join(Path(str(p)).name for p in inputs),
        "generated": datetime.now(ZoneInfo(DEFAULT_TZ)).strftime("%Y-%m-%d %H:%M"),  # the log's zone
        "time_zone": DEFAULT_TZ,
        "alert_rules": tables["alert_rules"],
        "version": __version__,
    }
    trend, billing, alerts = tables["trend"], tables["billing"], tables["alerts"]
    failed = cubes.failed[cubes.failed["week"].eq(week)].drop(columns="week")
    return {
        "summary": summary,
        "quality": _only(tables["quality"], week),
        "trend": trend[trend["week"].le(week)].reset_index(drop=True),
        "failures": _only(tables["failures"], week),
        "repeat_failures": repeat_table(failed, messages if messages is not None else pd.Series(dtype="int64")),
        "content": _only(tables["content"], week),
        "regions": _only(tables["regions"], week),
        "billing": billing[billing["month"].isin(months)].reset_index(drop=True),
        "cost": _only(tables["cost"], week).drop(columns="week"),
        "alerts": alerts[alerts["_week"].eq(week)].drop(columns="_week").reset_index(drop=True),
    }


def _only(frame: pd.DataFrame, week: str) -> pd.DataFrame:
    return frame[frame["week"].astype(object).eq(week)].reset_index(drop=True)


ACCOUNTING = ["file", "layout", "vendor", "encoding", "rows_read", "loaded", "rejected", "duplicates"]


def _accounting(accounting: pd.DataFrame | None) -> pd.DataFrame:
    if accounting is None or accounting.empty:
        return pd.DataFrame({c: pd.Series(dtype=object if i < 4 else "int64") for i, c in enumerate(ACCOUNTING)})
    acc = accounting.reindex(columns=ACCOUNTING).copy()
    acc["file"] = acc["file"].map(lambda f: Path(str(f)).name)  # no machine paths in what is shared
    total = {c: (int(acc[c].sum()) if c in ACCOUNTING[4:] else None) for c in ACCOUNTING}
    total["file"] = ALL
    out = pd.concat([acc, pd.DataFrame([total])], ignore_index=True)
    for c in ACCOUNTING[4:]:
        out[c] = out[c].astype("int64")
    return out

