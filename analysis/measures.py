"""Measures on the canonical send log (their definitions: README, *Measures*).

Every function takes the canonical log (optionally with the event columns added by
:func:`analysis.attach_events`) and returns a new tidy frame, one row per group, sorted by
the group keys. Groups are named with ``by``: any log column (``vendor``, ``channel``,
``carrier``, ``province``, ``city``, ``template_id``, ``category`` …) or a derived time key:

* ``week`` (ISO week of the submit time, ``"2025-W18"``), ``month`` (``"2025-05"``),
  ``day`` (date), ``hour`` (0–23), ``weekday`` (0 = Monday);
* ``period``: the submit time floored to ``freq`` (any pandas frequency, ``"D"``,
  ``"W"``, ``"h"``, ``"15min"`` …), as a local time.

Times are local to the log's time zone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .distinct import key_codes
from .kernel import (
    ARRIVAL_SUMS,
    FINAL_FAILURES,
    PEAK_WINDOWS,
    equals,
    has_link,
    hist_quantiles,
    iso_weeks,
    latency_bins,
    merge_on,
    peak_windows,
    per_day,
    row_flags,
)
from .stats import critical_z, two_proportion_test, wilson_interval

#: The arrival target the ledgers and the trial check against.
TARGET = 0.98
TIME_KEYS = ("week", "month", "day", "hour", "weekday", "period")
#: Marker of a total row in a ledger (``合计`` / ``All`` on display).
ALL = "All"


# --------------------------------------------------------------------------- keys


def in_week(log: pd.DataFrame, week: str) -> pd.DataFrame:
    """The rows of ``log`` submitted in ISO week ``week`` (``"2025-W19"``)."""
    return log[iso_weeks(log["submit_time"]).eq(week).to_numpy(dtype=bool)]


def with_keys(log: pd.DataFrame, by: Sequence[str], *, freq: str | None = None) -> pd.DataFrame:
    """``log`` with the derived time keys in ``by`` added as columns."""
    t = log["submit_time"]
    derived = {}
    for key in by:
        if key in log.columns:
            continue
        if key == "week":
            derived[key] = iso_weeks(t)
        elif key == "month":
            derived[key] = per_day(t, "%Y-%m")
        elif key == "day":
            derived[key] = t.dt.tz_localize(None).dt.normalize()
        elif key == "hour":
            derived[key] = t.dt.hour.astype("Int8")
        elif key == "weekday":
            derived[key] = t.dt.day_of_week.astype("Int8")
        elif key == "period":
            if freq is None:
                raise ValueError("the 'period' key needs a frequency: freq='D', 'W', 'h' …")
            local = t.dt.tz_localize(None)
            derived[key] = local.dt.to_period(freq).dt.start_time if freq[:1] in "WMQY" else local.dt.floor(freq)
        else:
            raise KeyError(f"unknown grouping key {key!r}: use a log column or one of {', '.join(TIME_KEYS)}")
    return log.assign(**derived) if derived else log


def _grouped(frame: pd.DataFrame, by: Sequence[str]):
    return frame.groupby(list(by), observed=True, dropna=False, sort=True) if by else frame.groupby(
        np.zeros(len(frame), dtype=np.int8), sort=False
    )


def _finish(out: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    out = out.reset_index(drop=not by)
    if not by:
        out = out.drop(columns=[c for c in out.columns if c == "index"])
    return out


# --------------------------------------------------------------------------- resends


def user_retries(log: pd.DataFrame, *, window: str | pd.Timedelta = "30min") -> np.ndarray:
    """Originals that are a user's new request after a failure: a message with a new text
    (a new verification code) to the same phone, template and vendor within ``window`` of
    one that was not delivered. Not a platform resend (same text), so not in the resend
    gap; counted apart by :func:`resend_honesty`. Boolean array aligned with ``log``."""
    n = len(log)
    out = np.zeros(n, dtype=bool)
    if n < 2:
        return out
    v, p, tpl = (key_codes(log[c]).codes for c in ("vendor", "phone", "template_id"))
    text = key_codes(log["content"]).codes
    t = log["submit_time"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    order = np.lexsort((t, tpl, p, v))
    vs, ps, ks, xs, ts = v[order], p[order], tpl[order], text[order], t[order]
    ok = equals(log["status"], "delivered")[order]
    original = log["attempt"].to_numpy(dtype="float64", na_value=1)[order] <= 1
    limit = pd.Timedelta(window).total_seconds() * 1000
    after = np.zeros(n, dtype=bool)
    after[1:] = ((vs[1:] == vs[:-1]) & (ps[1:] == ps[:-1]) & (ks[1:] == ks[:-1]) & (ks[1:] >= 0) & (ps[1:] >= 0)
                 & ~ok[:-1] & (ts[1:] - ts[:-1] <= limit) & (xs[1:] != xs[:-1]))
    out[order] = after & original
    return out


def resend_honesty(log: pd.DataFrame, *, by: Sequence[str] = ("vendor",), window: str = "30min") -> pd.DataFrame:
    """Platform resends and users' new requests, apart.

    Returns
    -------
    DataFrame, one row per group: ``originals``, ``first_attempt_rate``,
    ``after_resend_rate``, ``resend_gap`` (the platform's silent resends of the same
    text: :func:`resend_chains`), ``resends`` (resend attempts), ``user_retries``
    (originals that are a user's new request after a failure: :func:`user_retries`) and
    ``user_retry_share`` (of the originals not delivered on the first attempt).
    """
    by = list(by)
    d = with_keys(log, by)
    rates = arrival_rates(d, by=by)
    work = (d[by] if by else pd.DataFrame(index=d.index)).assign(
        resends=d["attempt"].to_numpy(dtype="float64", na_value=1) > 1, user_retries=user_retries(d, window=window))
    counts = _finish(_grouped(work, by)[["resends", "user_retries"]].sum(), by)
    out = merge_on(rates[[*by, "originals", "first_attempt_rate", "after_resend_rate", "resend_gap"]], counts, by,
                   how="left") if by else pd.concat([rates[["originals", "first_attempt_rate", "after_resend_rate",
                                                              "resend_gap"]], counts], axis=1)
    failed_first = out["originals"] * (1 - out["first_attempt_rate"])
    with np.errstate(invalid="ignore", divide="ignore"):
        out["user_retry_share"] = out["user_retries"] / failed_first.where(failed_first > 0)
    return out


# --------------------------------------------------------------------------- arrival


# --------------------------------------------------------------------------- latency histogram


def arrival_rates(
    log: pd.DataFrame, *, by: Sequence[str] = ("vendor",), freq: str | None = None, exact: bool = False
) -> pd.DataFrame:
    """Arrival, resend inflation, latency, complaints and unsubscribes per group.

    Parameters
    ----------
    log : canonical send log (with ``complained`` / ``unsubscribed`` from
        :func:`analysis.attach_events` for the complaint and unsubscribe rates).
    by : group keys (see the module docstring); ``[]`` for one overall row.
    freq : frequency of the ``period`` key.
    exact : latency percentiles from the latencies themselves; by default they come from
        the histogram the ledgers use (:func:`hist_quantiles`: exact for whole seconds
        below an hour, otherwise at most max(1 s, 1%) low), so that this function and
        the ledgers give the same figures.

    Returns
    -------
    DataFrame, one row per group, sorted by the keys, with columns:

    * the keys;
    * ``submitted``: rows (attempts, resends included); ``delivered``;
    * ``arrival_rate`` = delivered / submitted (pending counts as not delivered),
      ``arrival_low``, ``arrival_high``: 95% Wilson interval;
    * ``receipt_coverage``: share with a final status (not pending);
    * ``originals``: attempt-1 messages; ``first_attempt_rate``: originals delivered on
      attempt 1 / originals; ``after_resend_rate``: originals delivered on any attempt /
      originals; each with its 95% Wilson interval (``first_attempt_low`` /
      ``_high``, ``after_resend_low`` / ``_high``); ``resend_gap`` = after − first (the
      resend inflation);
    * what the recipient saw, across attempts (:func:`row_flags`): ``latency_p50_s``,
      ``latency_p95_s``: seconds from the original submission to the first delivery;
      ``within_10min_rate``: originals delivered within 10 minutes / originals whose
      outcome is known in time (a delivery without a receipt time is left out, not
      counted late);
    * per attempt, beside it: ``attempt_within_10min_rate`` (attempts delivered within
      10 minutes / delivered attempts with a receipt time), ``attempt_latency_p50_s``,
      ``attempt_latency_p95_s``; ``receipt_time_coverage``: delivered attempts with a
      receipt time / delivered;
    * ``complaints``, ``complaint_rate`` = complaints / delivered; ``unsubscribes``,
      ``unsubscribe_rate`` = unsubscribe replies / delivered (NaN without the events).

    Examples
    --------
    >>> from analysis import simulate, read_send_log  # doctest: +SKIP
    >>> arrival_rates(log, by=["week", "vendor"])  # doctest: +SKIP
    """
    by = list(by)
    d = with_keys(log, by, freq=freq)
    work = d[by].copy() if by else pd.DataFrame(index=d.index)
    work = work.assign(**row_flags(d), complained=_flag(d, "complained"), unsubscribed=_flag(d, "unsubscribed"))
    out = _aggregate(work, by, exact=exact)
    return arrival_from_sums(out, by, events={"complained": "complained" in d, "unsubscribed": "unsubscribed" in d})


def _flag(d: pd.DataFrame, col: str) -> np.ndarray:
    if col in d:
        return d[col].to_numpy(dtype=bool, na_value=False)
    return np.zeros(len(d), dtype=bool)


def _aggregate(work: pd.DataFrame, by: list[str], *, exact: bool = False) -> pd.DataFrame:
    """Sums and latency quantiles (from the histogram, or ``exact``) per group, keyed by
    integer group ids (quantiles of groups with a missing key do not align on a MultiIndex)."""
    gid = _grouped(work, by).ngroup().to_numpy()
    g = work.groupby(gid, sort=True)
    sums = g[ARRIVAL_SUMS].sum()
    sums.insert(0, "submitted", g.size())
    for column, prefix in (("recipient_latency", "latency"), ("latency", "attempt_latency")):
        if exact:
            q = g[column].quantile([0.5, 0.95]).unstack().reindex(index=sums.index, columns=[0.5, 0.95])
        else:
            bins = latency_bins(work[column].to_numpy(dtype=float))
            hist = pd.DataFrame({"_g": gid, "bin": bins, "n": 1})[bins >= 0]
            q = hist_quantiles(hist, ["_g"]).set_index("_g").reindex(sums.index)
            q = q.rename(columns={"q0.5": 0.5, "q0.95": 0.95})
        sums[f"{prefix}_p50_s"] = q[0.5]
        sums[f"{prefix}_p95_s"] = q[0.95]
    if by:
        first = ~pd.Series(gid).duplicated().to_numpy()
        keys = work.loc[first, by].set_axis(gid[first])
        # sorted by the keys (a groupby's group numbers need not follow its sort order)
        sums = pd.concat([keys, sums], axis=1).sort_values(by, kind="stable", na_position="last")
    return sums.reset_index(drop=True)


def arrival_from_sums(out: pd.DataFrame, by: list[str], *, events: dict[str, bool]) -> pd.DataFrame:
    """The :func:`arrival_rates` columns from summed row flags (``submitted``,
    and the others of :data:`ARRIVAL_SUMS`, with the latency
    percentiles): the one finish step of the in-memory measure and the ledgers' partial
    aggregates alike. ``events``: whether complaints and unsubscribes were joined."""
    n = out["submitted"].to_numpy(dtype=float)
    k = out["delivered"].to_numpy(dtype=float)
    o = out["originals"].to_numpy(dtype=float)
    low, high = wilson_interval(k, n)
    first_low, first_high = wilson_interval(out["first_ok"].to_numpy(dtype=float), o)
    after_low, after_high = wilson_interval(out["any_ok"].to_numpy(dtype=float), o)
    with np.errstate(invalid="ignore", divide="ignore"):
        res = out.assign(
            arrival_rate=k / n,
            arrival_low=low,
            arrival_high=high,
            receipt_coverage=out["final"] / n,
            first_attempt_rate=out["first_ok"] / o,
            first_attempt_low=first_low,
            first_attempt_high=first_high,
            after_resend_rate=out["any_ok"] / o,
            after_resend_low=after_low,
            after_resend_high=after_high,
            within_10min_rate=out["fast"] / out["timed"],
            attempt_within_10min_rate=out["attempt_fast"] / out["attempt_timed"],
            receipt_time_coverage=out["attempt_timed"] / k,
            complaint_rate=(out["complained"] / k) if events["complained"] else np.nan,
            unsubscribe_rate=(out["unsubscribed"] / k) if events["unsubscribed"] else np.nan,
        )
    res["resend_gap"] = res["after_resend_rate"] - res["first_attempt_rate"]
    res = res.rename(columns={"complained": "complaints", "unsubscribed": "unsubscribes"})
    for col, known in (("complaints", events["complained"]), ("unsubscribes", events["unsubscribed"])):
        res[col] = res[col].astype("Int64") if known else pd.array([pd.NA] * len(res), dtype="Int64")
    counts = ["submitted", "delivered", "originals"]
    res[counts] = res[counts].astype("int64")
    return res[by + _ARRIVAL_COLUMNS]


_ARRIVAL_COLUMNS = [
    "submitted",
    "delivered",
    "arrival_rate",
    "arrival_low",
    "arrival_high",
    "receipt_coverage",
    "originals",
    "first_attempt_rate",
    "first_attempt_low",
    "first_attempt_high",
    "after_resend_rate",
    "after_resend_low",
    "after_resend_high",
    "resend_gap",
    "within_10min_rate",
    "latency_p50_s",
    "latency_p95_s",
    "attempt_within_10min_rate",
    "attempt_latency_p50_s",
    "attempt_latency_p95_s",
    "receipt_time_coverage",
    "complaints",
    "complaint_rate",
    "unsubscribes",
    "unsubscribe_rate",
]


# --------------------------------------------------------------------------- failures


def failure_reasons(log: pd.DataFrame, *, by: Sequence[str] = ("carrier", "province"), top: int = 3) -> pd.DataFrame:
    """Failed messages by group and failure reason, with the raw codes behind them.

    A failure is a final status other than delivered (failed, expired, rejected, unknown).

    Returns
    -------
    DataFrame, one row per group × ``failure_reason`` that has failures, sorted by the
    keys then by ``failed`` descending:

    * the keys, ``failure_reason``;
    * ``failed``: failed messages; ``share``: of the group's failures;
    * ``submitted``: messages in the group; ``failure_rate`` = failed / submitted;
    * ``top_codes``: the ``top`` most frequent raw codes, ``"MK:0115 ×120; …"``.
    """
    by = list(by)
    d = with_keys(log, by)
    failed = d["status"].astype(object).isin(FINAL_FAILURES).to_numpy(dtype=bool)
    submitted = _grouped(d.assign(_n=1), by)["_n"].size().rename("submitted").reset_index() if by else \
        pd.DataFrame({"submitted": [len(d)]})
    f = d.loc[failed, by].assign(
        code=d.loc[failed, "error_code"].astype(object).fillna(d.loc[failed, "status_code"].astype(object)).fillna("—"),
        failure_reason=d.loc[failed, "failure_reason"].astype(object).fillna("unknown"),
    )
    codes = f.groupby([*by, "failure_reason", "code"], observed=True, dropna=False).size().rename("failed").reset_index()
    return failure_table(codes, submitted, by=by, top=top)


def failure_table(codes: pd.DataFrame, submitted: pd.DataFrame, *, by: list[str], top: int = 3) -> pd.DataFrame:
    """:func:`failure_reasons` from counts: ``codes`` (``by`` keys, ``failure_reason``,
    ``code``, ``failed``) and ``submitted`` (``by`` keys, ``submitted``)."""
    keys = [*by, "failure_reason"]
    columns = [*keys, "failed", "share", "submitted", "failure_rate", "top_codes"]
    codes = codes[codes["failed"] > 0]
    if codes.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    ordered = codes.sort_values([*keys, "failed", "code"], ascending=[True] * len(keys) + [False, True], kind="stable")
    out = ordered.groupby(keys, observed=True, dropna=False, sort=False)["failed"].sum().reset_index()
    # "code ×n; code ×n" of each group's top codes: groups are contiguous, in the order of `out`
    ranked = ordered.groupby(keys, dropna=False, sort=False).head(top)
    group = ranked.groupby(keys, dropna=False, sort=False).ngroup().to_numpy()
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    text = (ranked["code"].astype(str) + " ×" + ranked["failed"].astype(str)).to_numpy(dtype=object)
    sep = np.full(len(text), "; ", dtype=object)
    sep[starts] = ""
    out["top_codes"] = np.add.reduceat(sep + text, starts)
    group_failed = out.groupby(by, dropna=False, observed=True)["failed"].transform("sum") if by else out["failed"].sum()
    out["share"] = out["failed"] / group_failed
    if by:
        out["submitted"] = merge_on(out, submitted, by, how="left")["submitted"].to_numpy()
    else:
        out["submitted"] = int(submitted["submitted"].sum())
    out["failure_rate"] = out["failed"] / out["submitted"]
    out = out.sort_values([*by, "failed"], ascending=[True] * len(by) + [False], kind="stable")
    return out[columns].reset_index(drop=True)


def repeat_failures(log: pd.DataFrame, *, min_failures: int = 2) -> pd.DataFrame:
    """Numbers that failed at least ``min_failures`` times: list-cleaning candidates.

    Returns
    -------
    DataFrame sorted by ``failures`` descending, then ``phone``:
    ``phone`` (E.164, unmasked: mask before sharing), ``carrier``, ``province``,
    ``failures``, ``messages`` (all sends to the number), ``reasons`` (distinct failure
    reasons, ``;``-joined), ``first_failure``, ``last_failure``.
    """
    d = log[log["phone"].notna()]
    failed = d["status"].astype(object).isin(FINAL_FAILURES).to_numpy(dtype=bool)
    rows = pd.DataFrame({
        "phone": d["phone"].astype(object).to_numpy()[failed],
        "carrier": d["carrier"].astype(object).to_numpy()[failed],
        "province": d["province"].astype(object).to_numpy()[failed],
        "failure_reason": d["failure_reason"].astype(object).fillna("unknown").to_numpy()[failed],
        "submit_time": d["submit_time"][failed].reset_index(drop=True),
    })
    candidates = repeat_candidates(rows, min_failures=min_failures)
    messages = d.loc[d["phone"].isin(candidates), "phone"].astype(object).value_counts()
    return repeat_table(rows, messages, min_failures=min_failures)


def sends_per_phone(log: pd.DataFrame, phones_by_week: dict[str, set]) -> dict[str, pd.Series]:
    """Messages sent to each given phone in each given ISO week: ``{week: Series}``."""
    weeks = iso_weeks(log["submit_time"]).astype(object)
    return {week: log.loc[weeks.eq(week).to_numpy(dtype=bool) & log["phone"].isin(phones).to_numpy(), "phone"]
            .astype(object).value_counts() for week, phones in phones_by_week.items()}


def repeat_candidates(failed_rows: pd.DataFrame, *, min_failures: int = 2) -> set:
    """Phones among ``failed_rows`` with at least ``min_failures`` failures."""
    counts = failed_rows["phone"].value_counts()
    return set(counts[counts >= min_failures].index)


def repeat_table(failed_rows: pd.DataFrame, messages: pd.Series, *, min_failures: int = 2) -> pd.DataFrame:
    """:func:`repeat_failures` from the failed messages (``phone``, ``carrier``,
    ``province``, ``failure_reason``, ``submit_time``) and the sends per phone."""
    columns = ["phone", "carrier", "province", "failures", "messages", "reasons", "first_failure", "last_failure"]
    f = failed_rows[failed_rows["phone"].isin(repeat_candidates(failed_rows, min_failures=min_failures))]
    if f.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    f = f.sort_values("submit_time", kind="stable")
    g = f.groupby("phone")
    out = pd.DataFrame({
        "carrier": g["carrier"].first(),
        "province": g["province"].first(),
        "failures": g.size(),
        "reasons": f.drop_duplicates(["phone", "failure_reason"]).sort_values("failure_reason")
        .groupby("phone")["failure_reason"].agg("; ".join),
        "first_failure": g["submit_time"].min(),
        "last_failure": g["submit_time"].max(),
    })
    out["messages"] = messages.reindex(out.index).fillna(out["failures"]).astype("int64")
    out = out.reset_index().sort_values(["failures", "phone"], ascending=[False, True], kind="stable")
    return out[columns].reset_index(drop=True)


# --------------------------------------------------------------------------- peak times


def peak_variance(log: pd.DataFrame, *, by: Sequence[str] = ("vendor",)) -> pd.DataFrame:
    """Arrival and latency in each peak window against off-peak sends of the same group.

    Returns
    -------
    DataFrame, one row per group × ``window`` (:func:`analysis.peak_windows`;
    ``weekday_peak``, ``holiday``, ``adjusted_workday``, ``off_peak``), sorted by the
    keys then window (:func:`compare_windows`).
    """
    by = list(by)
    return compare_windows(arrival_rates(log.assign(window=peak_windows(log)), by=[*by, "window"]), by)


def compare_windows(rates: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Each peak window's arrival against off-peak's in the same group: the finish of
    :func:`peak_variance` and of the ``peaks`` measure alike.

    ``rates``: :func:`arrival_rates` columns per ``by`` × ``window``. Returns them with
    ``diff_pp`` (arrival minus off-peak arrival, in percentage points), ``z``,
    ``p_value`` (pooled two-proportion test against off-peak), ``cohens_h`` (the effect
    size) and ``latency_p50_change_s`` (median latency minus off-peak's), NaN on the
    ``off_peak`` row; sorted by the keys then window.
    """
    rates = rates.assign(window=pd.Categorical(rates["window"].astype(str), categories=PEAK_WINDOWS))
    base = rates[rates["window"].eq("off_peak")].drop(columns="window")
    base = base[[*by, "submitted", "delivered", "arrival_rate", "latency_p50_s"]].rename(
        columns=lambda c: c if c in by else f"base_{c}")
    m = merge_on(rates, base, by, how="left") if by else rates.assign(**{c: base[c].iloc[0] if len(base) else np.nan for c in base})
    z, p, h = two_proportion_test(m["delivered"], m["submitted"], m["base_delivered"], m["base_submitted"])
    off = m["window"].eq("off_peak").to_numpy()
    m["diff_pp"] = np.where(off, np.nan, 100 * (m["arrival_rate"] - m["base_arrival_rate"]))
    m["z"], m["p_value"], m["cohens_h"] = (np.where(off, np.nan, x) for x in (z, p, h))
    m["latency_p50_change_s"] = np.where(off, np.nan, m["latency_p50_s"] - m["base_latency_p50_s"])
    m = m.sort_values([*by, "window"], kind="stable").reset_index(drop=True)
    return m.drop(columns=[c for c in m.columns if c.startswith("base_")])


def round_spread(log: pd.DataFrame, *, by: Sequence[str] = ("vendor",), gap: str = "10min") -> pd.DataFrame:
    """Spread of arrival across repeated send rounds (a stress test's rounds).

    Rounds come from a ``round`` column when the log has one, else each burst of sends
    separated from the previous one by more than ``gap`` is a round (per group).

    Returns
    -------
    DataFrame, one row per group, sorted by the keys: ``rounds``, ``submitted``,
    ``min_arrival``, ``max_arrival``, ``spread_pp`` (max − min, percentage points),
    ``first_p50_s`` / ``last_p50_s`` (median latency of the first and last round),
    ``latency_change_s``.
    """
    by = list(by)
    per_round = arrival_rates(with_rounds(log, by=by, gap=gap), by=[*by, "round"])
    g = _grouped(per_round, by)
    out = pd.DataFrame({
        "rounds": g.size(),
        "submitted": g["submitted"].sum(),
        "min_arrival": g["arrival_rate"].min(),
        "max_arrival": g["arrival_rate"].max(),
        "first_p50_s": g["latency_p50_s"].first(),
        "last_p50_s": g["latency_p50_s"].last(),
    })
    out["spread_pp"] = 100 * (out["max_arrival"] - out["min_arrival"])
    out["latency_change_s"] = out["last_p50_s"] - out["first_p50_s"]
    out = _finish(out, by)
    return out[[*by, "rounds", "submitted", "min_arrival", "max_arrival", "spread_pp",
                "first_p50_s", "last_p50_s", "latency_change_s"]]


def with_rounds(log: pd.DataFrame, *, by: Sequence[str] = ("vendor",), gap: str = "10min") -> pd.DataFrame:
    """``log`` with a ``round`` column (1, 2, …): given, or inferred from send bursts."""
    if "round" in log and log["round"].notna().all():
        return log
    by = list(by)
    order = log.sort_values([*by, "submit_time"], kind="stable")
    t = order["submit_time"]
    new = t.diff().gt(pd.Timedelta(gap)).to_numpy(dtype=bool, copy=True)
    if by:
        key = order[by].astype(object).to_numpy()
        changed = np.ones(len(order), dtype=bool)
        changed[1:] = (key[1:] != key[:-1]).any(axis=1)
        new |= changed
        starts = pd.Series(new.astype(int), index=order.index).groupby([order[c] for c in by], observed=True, dropna=False).cumsum()
    else:
        new[:1] = True
        starts = pd.Series(np.cumsum(new), index=order.index)
    return log.assign(round=starts.reindex(log.index).astype("int64"))


# --------------------------------------------------------------------------- send hours


def click_through_rates(log: pd.DataFrame, *, by: Sequence[str] = ("hour",)) -> pd.DataFrame:
    """Click-through: delivered messages with a link that were clicked at least once /
    delivered messages with a link (a message without a link cannot be clicked).

    Needs the ``clicked`` (and for conversions ``converted``) columns of
    :func:`analysis.attach_events`.

    Returns
    -------
    DataFrame, one row per group, sorted by the keys: ``linked`` (delivered with a link),
    ``clicked``, ``click_through_rate``, ``click_through_low``, ``click_through_high``
    (95% Wilson), ``conversions``, ``conversion_rate`` (= converted / linked),
    ``conversion_low``, ``conversion_high``.
    """
    if "clicked" not in log:
        raise ValueError("click-through needs click events: log = attach_events(log, clicks=…)")
    by = list(by)
    d = with_keys(log, by)
    linked = equals(d["status"], "delivered") & has_link(d["content"])
    work = (d[by] if by else pd.DataFrame(index=d.index)).assign(
        linked=linked, clicked=linked & _flag(d, "clicked"), conversions=linked & _flag(d, "converted"))
    return click_through_from_sums(_finish(_grouped(work, by)[["linked", "clicked", "conversions"]].sum(), by))


def click_through_from_sums(out: pd.DataFrame) -> pd.DataFrame:
    """The :func:`click_through_rates` columns from summed ``linked``, ``clicked`` and
    ``conversions``: the finish of the in-memory measure and the ``hours`` measures alike."""
    return with_interval(with_interval(out, "clicked", "linked", "click_through"), "conversions", "linked", "conversion")


def with_interval(out: pd.DataFrame, k: str, n: str, name: str) -> pd.DataFrame:
    """``out`` with the rate ``k / n`` as ``{name}_rate`` (missing where ``n`` is 0) and
    its 95% Wilson interval, ``{name}_low`` and ``{name}_high``: every rate's finish."""
    low, high = wilson_interval(out[k], out[n])
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = out[k] / out[n].where(out[n] > 0)
    return out.assign(**{f"{name}_rate": rate, f"{name}_low": low, f"{name}_high": high})


def click_through_lift(log: pd.DataFrame, a=15, b=20, *, by: Sequence[str] = ()) -> pd.DataFrame:
    """Lift of the click-through of send hour(s) ``a`` over ``b``: rate_a / rate_b − 1.

    ``log``: a canonical log with click events, or its counts per send hour (the
    ``hours`` measure, or :func:`click_through_rates` by ``[*by, "hour"]``: ``hour``,
    ``linked``, ``clicked``). ``a`` and ``b`` are an hour or a ``(start, end)`` pair of
    hours (end excluded).

    Returns
    -------
    DataFrame, one row per group: ``hour_a`` (the hours compared, ``"15:00–16:00"``),
    ``linked_a`` (delivered with a link), ``click_through_a``, ``hour_b``, ``linked_b``,
    ``click_through_b``,
    ``lift``, ``lift_low``, ``lift_high`` (95% interval from the log of the rate ratio),
    ``p_value`` (two-proportion test).
    """
    by = list(by)
    hours = log if {"hour", "linked", "clicked"} <= set(log.columns) else click_through_rates(log, by=[*by, "hour"])
    side = np.where(_in_hours(hours["hour"], a), "a", np.where(_in_hours(hours["hour"], b), "b", None))
    rates = hours.assign(side=side)[pd.notna(side)]
    wide = rates.pivot_table(index=by or None, columns="side", values=["linked", "clicked"], aggfunc="sum", observed=True) \
        if by else rates.groupby("side")[["linked", "clicked"]].sum().unstack().to_frame().T
    wide.columns = [f"{v}_{s}" for v, s in wide.columns]
    for col in ("linked_a", "clicked_a", "linked_b", "clicked_b"):
        if col not in wide:
            wide[col] = 0
    ka, na, kb, nb = (wide[c].to_numpy(dtype=float) for c in ("clicked_a", "linked_a", "clicked_b", "linked_b"))
    with np.errstate(invalid="ignore", divide="ignore"):
        ra, rb = ka / na, kb / nb
        se = np.sqrt(1 / ka - 1 / na + 1 / kb - 1 / nb)
        ratio = ra / rb
        p = two_proportion_test(ka, na, kb, nb).pvalue
        z = critical_z()
        out = pd.DataFrame({
            "hour_a": _hours_text(a), "linked_a": na.astype(int), "click_through_a": ra,
            "hour_b": _hours_text(b), "linked_b": nb.astype(int), "click_through_b": rb,
            "lift": ratio - 1, "lift_low": ratio * np.exp(-z * se) - 1, "lift_high": ratio * np.exp(z * se) - 1,
            "p_value": p,
        }, index=wide.index)
    return out.reset_index() if by else out.reset_index(drop=True)


def _hour_span(spec) -> tuple[int, int]:
    return (int(spec), int(spec) + 1) if np.isscalar(spec) else (int(spec[0]), int(spec[1]))


def _hours_text(spec) -> str:
    lo, hi = _hour_span(spec)
    return f"{lo:02d}:00–{hi:02d}:00"


def _in_hours(hour: pd.Series, spec) -> np.ndarray:
    lo, hi = _hour_span(spec)
    h = hour.to_numpy(dtype=float, na_value=np.nan)
    return (h >= lo) & (h < hi)


# --------------------------------------------------------------------------- billing

#: When each platform bills (its pricing documentation). The mode is a per-vendor setting: give
#: ``modes=`` for any other vendor (its contract mode is unknown until then).
BILLING_MODES = {
    "aliyun": "submission",
    "tencent": "submission",
    "vonage": "submission",
    "twilio": "submission",
    "aws_sns": "submission",
    "huawei": "delivery",
}


def _billing_frame(log: pd.DataFrame) -> pd.DataFrame:
    ok = log["status"].astype(object).eq("delivered").to_numpy(dtype=bool)
    seg = log["segments"].astype("float64").fillna(1).to_numpy()
    return pd.DataFrame({
        "vendor": log["vendor"].astype(object).to_numpy(),
        "month": with_keys(log, ["month"])["month"].astype(object).to_numpy(),
        "delivered": ok,
        "segments_submitted": seg,
        "segments_delivered": np.where(ok, seg, 0.0),
        "fee": log["fee"].fillna(0.0).to_numpy(dtype=float),
        "fee_n": log["fee"].notna().to_numpy(dtype=bool),
    }, index=log.index)


def billing_reconciliation(
    log: pd.DataFrame,
    bill: pd.DataFrame | None = None,
    *,
    prices: dict[str, float] | None = None,
    modes: dict[str, str] | None = None,
    tolerance: float = 0.005,
) -> pd.DataFrame:
    """Segments billed on submission vs on delivery, and the vendor's bill against both.

    Parameters
    ----------
    log : canonical send log.
    bill : the vendors' bills (:func:`analysis.read_events` of a bill file): ``vendor``,
        ``period`` (``YYYY-MM``), ``billed_count``, ``unit_price``, ``amount``.
    prices : contract price per segment per vendor, where the bill gives none.
    modes : contract billing mode per vendor (``submission`` / ``delivery``); defaults
        from :data:`BILLING_MODES`.
    tolerance : relative difference within which a bill matches a mode.

    Returns
    -------
    DataFrame, one row per vendor × ``month`` (``YYYY-MM`` of submit time; the bill's
    ``period``), sorted by both:

    * ``currency``: of the money columns, from the export (Twilio ``PriceUnit``, SNS
      USD …), else the bill, else :data:`DEFAULT_CURRENCY`;
    * ``submitted``, ``delivered``: messages;
    * ``segments_submitted``, ``segments_delivered``: billable parts of each (segments of
      a message without content count 1); ``gap_segments`` = submitted − delivered;
    * ``unit_price``: the bill's, else ``prices``, else what the export's own prices come
      to per submitted segment; ``amount_submission``, ``amount_delivery``,
      ``gap_amount``: money at that price;
    * ``export_amount``: the sum of the export's own per-message prices (SNS
      ``PriceInUSD``, Twilio ``Price`` …; NaN when it has none);
    * ``billed_count``, ``billed_amount``: from the bill (NaN without one);
      ``bill_vs_submission``, ``bill_vs_delivery``: billed − each count;
    * ``billing_mode``: which count the bill matches (``submission``, ``delivery``,
      ``either`` when both are equal, ``neither``; missing without a bill);
    * ``contract_mode`` (``modes`` or :data:`BILLING_MODES`; missing when unknown),
      ``overcharge``: billed amount minus the amount under the contract mode (positive =
      billed too much).
    """
    f = _billing_frame(log)
    g = f.groupby(["vendor", "month"], dropna=False)
    out = g[["delivered", "segments_submitted", "segments_delivered", "fee", "fee_n"]].sum()
    out.insert(0, "submitted", g.size())
    used = log[["vendor", "currency"]].astype(object).value_counts(dropna=True).rename("n").reset_index()
    return reconcile(out.reset_index(), bill, prices=prices, modes=modes, currencies=vendor_currencies(used),
                     tolerance=tolerance)


#: The currency of a vendor whose export and bill name none (domestic platforms bill in yuan).
DEFAULT_CURRENCY = "CNY"


def vendor_currencies(counts: pd.DataFrame) -> dict[str, str]:
    """Each vendor's currency: the one most of its messages name (``vendor``, ``currency``,
    ``n`` counts, as the cubes keep them)."""
    named = counts[counts["currency"].notna()]
    if named.empty:
        return {}
    top = named.sort_values("n", ascending=False, kind="stable").drop_duplicates("vendor")
    return dict(zip(top["vendor"].astype(str), top["currency"].astype(str), strict=True))


def reconcile(
    counts: pd.DataFrame,
    bill: pd.DataFrame | None = None,
    *,
    prices: dict[str, float] | None = None,
    modes: dict[str, str] | None = None,
    currencies: dict[str, str] | None = None,
    tolerance: float = 0.005,
) -> pd.DataFrame:
    """:func:`billing_reconciliation` from counts per vendor and month (``vendor``,
    ``month``, ``submitted``, ``delivered``, ``segments_submitted``, ``segments_delivered``);
    ``currencies``: each vendor's currency (:func:`vendor_currencies`)."""
    out = counts
    bill_currency: dict = {}
    if bill is not None and len(bill):
        b = bill.rename(columns={"period": "month"}).groupby(["vendor", "month"], as_index=False).agg(
            billed_count=("billed_count", "sum"), billed_amount=("amount", "sum"), bill_price=("unit_price", "last"))
        out = merge_on(out, b, ["vendor", "month"], how="outer")
        if "currency" in bill:
            bill_currency = bill.dropna(subset=["currency"]).groupby("vendor")["currency"].last().to_dict()
    else:
        out = out.assign(billed_count=np.nan, billed_amount=np.nan, bill_price=np.nan)
    prices = prices or {}
    fee = out["fee"].astype(float) if "fee" in out else pd.Series(np.nan, index=out.index)
    fee_n = out["fee_n"].fillna(0) if "fee_n" in out else pd.Series(0, index=out.index)
    # the export's own prices (SNS PriceInUSD, Twilio Price …), where it has them
    out["export_amount"] = fee.where(fee_n > 0)
    realized = out["export_amount"] / out["segments_submitted"].where(out["segments_submitted"] > 0)
    out["unit_price"] = (out["bill_price"].astype(float).fillna(out["vendor"].map(prices).astype(float))
                         .fillna(realized))
    for c in ("submitted", "delivered", "segments_submitted", "segments_delivered"):
        out[c] = out[c].fillna(0).astype("int64")
    out["gap_segments"] = out["segments_submitted"] - out["segments_delivered"]
    out["amount_submission"] = out["segments_submitted"] * out["unit_price"]
    out["amount_delivery"] = out["segments_delivered"] * out["unit_price"]
    out["gap_amount"] = out["amount_submission"] - out["amount_delivery"]
    billed = out["billed_count"].astype(float)
    out["bill_vs_submission"] = billed - out["segments_submitted"]
    out["bill_vs_delivery"] = billed - out["segments_delivered"]
    tol = np.maximum(0.5, tolerance * billed.to_numpy())
    sub = np.abs(out["bill_vs_submission"].to_numpy(dtype=float)) <= tol
    dlv = np.abs(out["bill_vs_delivery"].to_numpy(dtype=float)) <= tol
    mode = np.select([sub & dlv, sub, dlv], ["either", "submission", "delivery"], "neither").astype(object)
    out["billing_mode"] = np.where(billed.isna(), None, mode)
    out["contract_mode"] = out["vendor"].map({**BILLING_MODES, **(modes or {})})
    expected = np.select([out["contract_mode"].eq("delivery"), out["contract_mode"].eq("submission")],
                         [out["amount_delivery"], out["amount_submission"]], np.nan)
    out["overcharge"] = out["billed_amount"].astype(float) - expected
    out["currency"] = out["vendor"].map({**bill_currency, **(currencies or {})}).astype(object).fillna(DEFAULT_CURRENCY)
    columns = ["vendor", "month", "currency", "submitted", "delivered", "segments_submitted", "segments_delivered",
               "gap_segments", "unit_price", "amount_submission", "amount_delivery", "gap_amount", "export_amount",
               "billed_count", "billed_amount", "bill_vs_submission", "bill_vs_delivery", "billing_mode",
               "contract_mode", "overcharge"]
    return out.sort_values(["vendor", "month"], kind="stable")[columns].reset_index(drop=True)


def matched_modes(reconciliation: pd.DataFrame) -> dict[str, str]:
    """The billing mode each vendor's bills match most often (``submission`` /
    ``delivery``), from :func:`billing_reconciliation`; vendors whose bills match
    neither or both are left out."""
    found = reconciliation[reconciliation["billing_mode"].isin(["submission", "delivery"])]
    if found.empty:
        return {}
    return found.groupby("vendor")["billing_mode"].agg(lambda m: m.mode().iloc[0]).to_dict()


def billing_terms(reconciliation: pd.DataFrame, *, prices=None, modes=None) -> tuple[dict, dict]:
    """Each vendor's billing mode (given, else what its bills match, else
    :data:`BILLING_MODES`) and price per segment (the bill's, else given)."""
    mode = {**BILLING_MODES, **matched_modes(reconciliation), **(modes or {})}
    price = reconciliation.dropna(subset=["unit_price"]).groupby("vendor")["unit_price"].last().to_dict()
    return mode, {**(prices or {}), **price}


def effective_cost(
    log: pd.DataFrame,
    bill: pd.DataFrame | None = None,
    *,
    prices: dict[str, float] | None = None,
    modes: dict[str, str] | None = None,
    by: Sequence[str] = ("vendor", "carrier"),
) -> pd.DataFrame:
    """Cost per delivered message (and per click): what one arrival really costs.

    Each vendor's billing mode is ``modes[vendor]``, else the mode its bill matches
    (:func:`billing_reconciliation` of ``log``; pass ``modes`` when ``log`` is a slice
    of the billed months), else :data:`BILLING_MODES`, else submission (the
    mode that never understates cost); its price comes from the bill, else ``prices``.

    Returns
    -------
    DataFrame, one row per group, sorted by the keys: ``currency`` (with ``vendor`` among
    the keys), ``submitted``, ``delivered``, ``arrival_rate``, ``billed_segments``,
    ``unit_price``, ``billing_mode``, ``cost``,
    ``cost_per_submitted``, ``cost_per_delivered``, ``clicks`` and ``cost_per_click``
    (NaN without click events).
    """
    by = list(by)
    rec = billing_reconciliation(log, bill, prices=prices, modes=modes)
    vendor_mode, price = billing_terms(rec, prices=prices, modes=modes)
    d = with_keys(log, by)
    f = _billing_frame(d)
    keys = list(dict.fromkeys([*by, "vendor"]))
    work = pd.concat([d[[k for k in by if k != "vendor"]], f[["vendor", "delivered", "segments_submitted",
                                                               "segments_delivered", "fee", "fee_n"]]], axis=1)
    work["clicks"] = d["clicks"].to_numpy() if "clicks" in d else 0
    g = _grouped(work, keys)
    counts = g[["delivered", "segments_submitted", "segments_delivered", "clicks", "fee", "fee_n"]].sum()
    counts.insert(0, "submitted", g.size())
    used = log[["vendor", "currency"]].astype(object).value_counts(dropna=True).rename("n").reset_index()
    return cost_table(_finish(counts, keys), by=by, modes=vendor_mode, prices=price, clicks="clicks" in d,
                      currencies=vendor_currencies(used))


def cost_table(counts: pd.DataFrame, *, by: list[str], modes: dict, prices: dict, clicks: bool,
               currencies: dict | None = None) -> pd.DataFrame:
    """:func:`effective_cost` from counts per ``by`` keys and vendor (``submitted``,
    ``delivered``, ``segments_submitted``, ``segments_delivered``, ``clicks``)."""
    mode = counts["vendor"].map(modes).fillna("submission")
    price = counts["vendor"].map(prices).astype(float)
    work = counts.assign(billed=np.where(mode.eq("delivery"), counts["segments_delivered"], counts["segments_submitted"]))
    work["cost"] = work["billed"] * price
    if "fee" in work:  # no price known: what the export says each message cost
        work["cost"] = work["cost"].fillna(work["fee"].where(work["fee_n"] > 0))
    g = work.groupby(by, dropna=False, sort=True) if by else work.groupby(np.zeros(len(work)))
    out = g[["submitted", "delivered", "billed", "clicks"]].sum()
    out["cost"] = g["cost"].sum(min_count=1)
    out = _finish(out, by).rename(columns={"billed": "billed_segments"})
    if "vendor" in by:
        out["unit_price"] = out["vendor"].map(prices).astype(float)
        out["billing_mode"] = out["vendor"].map(modes).fillna("submission")
        out["currency"] = out["vendor"].map(currencies or {}).astype(object).fillna(DEFAULT_CURRENCY)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["arrival_rate"] = out["delivered"] / out["submitted"]
        out["cost_per_submitted"] = out["cost"] / out["submitted"]
        out["cost_per_delivered"] = out["cost"] / out["delivered"].where(out["delivered"] > 0)
        out["cost_per_click"] = out["cost"] / out["clicks"].where(out["clicks"] > 0)
    if not clicks:
        out["clicks"] = pd.NA
        out["cost_per_click"] = np.nan
    cols = [*by, "currency", "submitted", "delivered", "arrival_rate", "billed_segments", "unit_price", "billing_mode",
            "cost", "cost_per_submitted", "cost_per_delivered", "clicks", "cost_per_click"]
    return out[[c for c in cols if c in out]].reset_index(drop=True)
