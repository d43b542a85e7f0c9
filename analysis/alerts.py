"""Drop alerts: each group's arrival against its own baseline (README, *Measures*).

Every vendor × carrier × province × day is tested against the group's own baseline, and
the alarms are kept few enough to act on:

* **a p-chart**: the day's delivered count against the baseline (one-sided exact
  binomial test); with hundreds of groups tested each day, the days flagged are those
  whose p-value passes the Benjamini-Hochberg false-discovery-rate rule among all groups
  tested that day (``fdr``, 5%), that dropped by at least ``min_drop_pp`` points and
  that held at least ``min_messages`` messages;
* **a one-sided CUSUM** of the standardised shortfall against the same baseline a week
  earlier (which a slow drift has not yet lowered), for drifts no single day shows (an
  alarm once it passes ``cusum_h`` standard errors; a drift advises contacting the
  vendor, never switching);
* **in-control baselines**: the baseline pools the group's ``baseline`` previous days
  that raised no alarm, so an outage does not lower the bar for the next drop;
* **first attempts, the channel's own failures**: each original counts once, delivered
  or not on its first attempt (resends of a dead number would count its failure again),
  and messages blocked for their wording (a content problem, on the content ledger)
  are left out;
* **a receipt window**: days within ``receipt_window`` (72 h) of the end of the data are
  not tested: their receipts are still arriving, and pending is not failure;
* **canaries** (``is_probe``), a few a day, are pooled over ``canary_days`` (7), need
  ``min_canaries`` (15) and are tested on their own baseline;
* **advice that names who failed**: each vendor's day is tested on its own; where the
  vendors' days are too small, the pooled carrier × province is (``vendor`` = ``All``).
  Switch channel only when another vendor is measurably better in that carrier ×
  province that day (one-sided two-proportion test) and did not drop itself; a
  carrier-wide fault when the pooled carrier × province dropped too and no other vendor
  there is known to be fine; else contact the vendor.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
import pandas as pd

from .kernel import merge_on, row_flags, sum_by, traffic_of, trailing_sum
from .measures import ALL, with_keys
from .stats import binom_cdf, binom_ppf, two_proportion_test

#: Periods between a drift's days and the CUSUM's reference (which they would lower).
DRIFT_LAG = 7
#: One-sided false-alarm rate of a 3-sigma limit (the p-chart's lower control limit).
ALPHA = NormalDist().cdf(-3)

#: The rules, stated on the alerts sheet and in the README: ``key: default``.
RULES = {"fdr": 0.05, "min_drop_pp": 5.0, "min_messages": 30, "receipt_window": "72h", "canary_days": 7,
         "min_canaries": 15, "baseline": 14}
#: How the rules read on a workbook's summary: ``(zh, en)``.
RULES_TEXT = (
    "每组每日至少 {min_messages} 条、比自身受控基线（前 {baseline} 天无预警日）低至少 {min_drop_pp:.0f} 个百分点，"
    "且在当日所有组中通过 {fdr:.0%} 错误发现率控制；最近 {window} 小时回执未齐，不预警；"
    "探针短信按 {canary_days} 天合并，至少 {min_canaries} 条。",
    "a group-day with at least {min_messages} messages, {min_drop_pp:.0f} points or more below its in-control "
    "baseline (the previous {baseline} days without an alarm), passing a {fdr:.0%} false-discovery-rate rule among "
    "all groups tested that day; the last {window} hours are not tested (receipts still arriving); canaries "
    "pooled over {canary_days} days, at least {min_canaries}.",
)


def rules_text(lang: str = "zh", **rules) -> str:
    """The alert rules in words (:data:`RULES`, overridden by ``rules``)."""
    r = {**RULES, **rules}
    hours = int(pd.Timedelta(r.pop("receipt_window")).total_seconds() // 3600)
    return RULES_TEXT[0 if lang == "zh" else 1].format(window=hours, **r)


def drop_alerts(
    log: pd.DataFrame, *, by: Sequence[str] = ("vendor", "carrier", "province"), freq: str = "D", **options
) -> pd.DataFrame:
    """Periods in which a group's arrival dropped below its own baseline.

    Parameters
    ----------
    log : canonical send log.
    by : the groups (any :func:`analysis.arrival_rates` key); ``traffic`` (canary /
        regular) is always added. The default names the vendor that dropped.
    freq : length of a period (``"D"``, ``"h"``, ``"W"`` …).
    **options : those of :func:`alerts_from_counts`.

    Returns
    -------
    DataFrame, one row per alerted group × period, sorted by period then keys:

    * the keys, ``traffic`` (``canary`` / ``regular``), ``period`` (local start),
      ``window_days`` (days pooled: 1, or ``canary_days`` for canaries);
    * ``submitted``, ``delivered``, ``arrival_rate``, ``baseline`` (in-control),
      ``diff_pp`` (arrival − baseline, points), ``control_low`` (lowest arrival a 3-sigma
      p-chart accepts);
    * ``p_value`` (exact binomial, one-sided), ``q_value`` (Benjamini-Hochberg over the
      groups tested in the period), ``cusum`` (standard errors);
    * ``detector``: ``p-chart``, ``cusum`` or ``both``;
    * ``affected``: messages lost against the baseline (submitted × baseline − delivered);
    * ``began``: estimated start of the drop: where the CUSUM run behind the first of
      a group's consecutive alarms began;
    * ``advice``: ``switch_channel`` (to ``switch_to``, measurably better there that
      period, and contact the vendor), ``carrier_wide`` (the carrier × province dropped
      across vendors and none did better: the carrier's fault; contact the vendors and
      hold campaigns) or ``contact_vendor``;
    * ``switch_to``, ``switch_to_arrival``: that vendor and its arrival.

    The rules are in ``attrs["rules"]`` (:func:`rules_text` words them).
    """
    return alerts_from_counts(period_counts(log, by=by, freq=freq), by=by, **options)


def alerts_from_counts(
    counts: pd.DataFrame,
    *,
    by: Sequence[str] = ("vendor", "carrier", "province"),
    baseline: int = RULES["baseline"],
    min_messages: int = RULES["min_messages"],
    min_baseline: int = 200,
    fdr: float = RULES["fdr"],
    min_drop_pp: float = RULES["min_drop_pp"],
    receipt_window: str = RULES["receipt_window"],
    canary_days: int = RULES["canary_days"],
    min_canaries: int = RULES["min_canaries"],
    cusum_k: float = 0.5,
    cusum_h: float = 8.0,
) -> pd.DataFrame:
    """:func:`drop_alerts` from :func:`period_counts` (which merge across partitions).

    ``min_baseline``: a group whose baseline holds fewer messages is not tested;
    ``min_canaries``: the least canaries a pooled window needs to be tested;
    ``cusum_k``, ``cusum_h``: the CUSUM's allowance and decision limit, in standard errors.
    """
    by = list(by)
    rules = {"fdr": fdr, "min_drop_pp": min_drop_pp, "min_messages": min_messages, "receipt_window": receipt_window,
             "canary_days": canary_days, "min_canaries": min_canaries, "baseline": baseline}
    counts = _first_attempts(counts)
    counts = _settled(counts, receipt_window)
    counts = _pool_canaries(counts, canary_days)
    options = dict(baseline=baseline, min_messages=min_messages, min_canaries=min_canaries, min_baseline=min_baseline,
                   fdr=fdr,
                   min_drop_pp=min_drop_pp, cusum_k=cusum_k, cusum_h=cusum_h)
    periods = _tested(counts, by, **options)
    alerts = periods[periods["_alarm"]].copy()
    where = [k for k in by if k not in ("vendor", "channel")]
    # the pooled view's tests join the same family: the false-discovery rule counts both
    family = periods[periods["p_value"].notna()].groupby("period").size()
    pooled = _tested(counts, where, family=family, expected=_mix(periods, where), **options) \
        if "vendor" in by else periods
    if "vendor" in by:  # a drop the vendors' own days are too small to show: the pooled group's alarm
        seen = alerts[[*where, "traffic", "period"]].drop_duplicates().assign(_seen=True)
        extra = merge_on(pooled[pooled["_alarm"]].astype({k: object for k in where}),
                         seen.astype({k: object for k in where}), [*where, "traffic", "period"], how="left")
        extra = extra[extra["_seen"].isna()].drop(columns="_seen").assign(vendor=ALL)
        alerts = pd.concat([alerts.astype({"vendor": object}), extra], ignore_index=True)
    alerts = _advise(alerts, periods, pooled, by=by, where=where, min_messages=min_messages, min_drop_pp=min_drop_pp)
    cols = [*by, "traffic", "period", "window_days", "submitted", "delivered", "arrival_rate", "baseline", "diff_pp",
            "control_low", "p_value", "q_value", "cusum", "detector", "affected", "began", "advice", "switch_to",
            "switch_to_arrival"]
    out = alerts.sort_values(["period", *by, "traffic"], kind="stable")[cols].reset_index(drop=True)
    out = out.astype({"period": "datetime64[ms]", "began": "datetime64[ms]", "switch_to_arrival": float})
    out.attrs["rules"] = rules
    return out


def _first_attempts(counts: pd.DataFrame) -> pd.DataFrame:
    """The counts alerts test: originals and those delivered on the first attempt (a
    resend of a dead number would count its failure twice), less the messages blocked
    for their wording (a content problem, on the content ledger, not the channel's)."""
    if "originals" not in counts:
        return counts
    out = counts.assign(submitted=counts["originals"] - counts.get("blocked", 0), delivered=counts["first_ok"])
    return out.drop(columns=[c for c in ("originals", "first_ok", "blocked") if c in out])


def _settled(counts: pd.DataFrame, receipt_window: str) -> pd.DataFrame:
    """The periods old enough for their receipts to be in: ending at least
    ``receipt_window`` before the end of the data."""
    if counts.empty:
        return counts
    period = pd.to_datetime(counts["period"])
    end = period.max() + pd.Timedelta(days=1)
    return counts[(period + pd.Timedelta(days=1) <= end - pd.Timedelta(receipt_window)).to_numpy()]


def _pool_canaries(counts: pd.DataFrame, days: int) -> pd.DataFrame:
    """Canary counts summed over blocks of ``days`` days (dated by the block's first day)."""
    counts = counts.assign(window_days=1)
    canary = counts["traffic"].astype(object).eq("canary").to_numpy()
    if not canary.any() or days <= 1:
        return counts
    period = pd.to_datetime(counts["period"])
    start = period - pd.to_timedelta((period - pd.Timestamp("2000-01-03")).dt.days % days, unit="D")
    counts.loc[canary, "period"] = start[canary].to_numpy()
    counts.loc[canary, "window_days"] = days
    keys = [c for c in counts.columns if c not in ("submitted", "delivered")]
    return counts.groupby(keys, dropna=False, sort=False, observed=True)[["submitted", "delivered"]].sum().reset_index()


def _mix(periods: pd.DataFrame, where: list[str]) -> pd.DataFrame:
    """The pooled group's expected arrival for the day's vendor mix: each vendor's own
    baseline weighted by its messages (a day on which the weaker vendor carries more is
    not a drop)."""
    p = periods[periods["baseline"].notna()]
    w = p.assign(_w=p["submitted"] * p["baseline"]).groupby([*where, "traffic", "period"], dropna=False,
                                                           observed=True)[["_w", "submitted"]].sum()
    covered = periods.groupby([*where, "traffic", "period"], dropna=False, observed=True)["submitted"].sum()
    w = w[w["submitted"].to_numpy() == covered.reindex(w.index).to_numpy()]  # every vendor has a baseline
    return (w["_w"] / w["submitted"]).rename("expected").reset_index()


def _tested(counts: pd.DataFrame, by: list[str], *, family: pd.Series | None = None,
            expected: pd.DataFrame | None = None, baseline: int,
            min_messages: int, min_canaries: int, min_baseline: int,
            fdr: float, min_drop_pp: float, cusum_k: float, cusum_h: float) -> pd.DataFrame:
    """Every group × period with its in-control baseline, tests and ``_alarm``: a first
    pass finds the sharp drops, a second tests again on baselines without them (so an
    outage does not hide the next drop)."""
    keys = [*by, "traffic"]
    table = _period_table(counts, by)
    alarm = np.zeros(len(table), dtype=bool)
    for _ in range(2):  # once, then once more without the days the first pass found out of control
        periods = _baselines(table, by, baseline, skip=alarm)
        periods.loc[periods["baseline_messages"] < min_baseline, "baseline"] = np.nan
        if expected is not None:  # the vendors' own baselines, weighted by the day's mix
            mixed = merge_on(periods[[*by, "traffic", "period"]].astype({k: object for k in by}),
                             expected.astype({k: object for k in by}), [*by, "traffic", "period"], how="left")
            mixed = mixed["expected"].to_numpy(dtype=float)
            periods["baseline"] = np.where(np.isfinite(mixed), mixed, periods["baseline"])
            periods["reference"] = np.where(np.isfinite(mixed), mixed, periods["reference"])
        p0 = periods["baseline"].to_numpy(dtype=float)
        n = periods["submitted"].to_numpy(dtype=float)
        k = periods["delivered"].to_numpy(dtype=float)
        least = np.where(periods["traffic"].astype(object).eq("canary"), min_canaries, min_messages)
        tested = (n >= least) & np.isfinite(p0) & (p0 > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            p_value = np.full(len(n), np.nan)
            p_value[tested] = binom_cdf(k[tested], n[tested], p0[tested])
            diff = 100 * (k / n - p0)
        q_value = _bh(p_value, periods["period"].to_numpy(), family)
        pchart = tested & (q_value <= fdr) & (diff <= -min_drop_pp)
        if not (pchart & ~alarm).any():
            break
        alarm = pchart  # only sharp drops leave the baseline: a drift's days are compared, not removed
    # the CUSUM adds up what the p-chart does not flag, and starts afresh after a flag
    ref = periods["reference"].to_numpy(dtype=float)
    ref = np.where(np.isfinite(ref), ref, p0)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(ref * (1 - ref) / n)
        zshort = np.where(tested & (se > 0), (ref - k / n) / se, 0.0)
    cusum, began = _cusum(periods, keys, np.where(pchart, 0.0, zshort), cusum_k, cusum_h, reset=pchart)
    drift = tested & (cusum > cusum_h)
    alarm = pchart | drift
    low = np.full(len(n), np.nan)  # the control limit, shown with each alarm (the slow inverse: only there)
    low[alarm] = binom_ppf(ALPHA, n[alarm], p0[alarm]) / n[alarm]
    periods = periods.assign(p_value=p_value, q_value=q_value, control_low=low, cusum=cusum, began=began,
                             diff_pp=diff, _alarm=alarm,
                             detector=np.select([pchart & drift, pchart, drift], ["both", "p-chart", "cusum"], ""))
    # a drift began where its CUSUM run began; a sharp drop on its own day
    periods["began"] = np.where(drift & ~pchart, periods["began"].to_numpy(), periods["period"].to_numpy())
    periods["began"] = _run_start(periods, keys, alarm)
    periods["affected"] = np.maximum(0, np.round(periods["submitted"] * periods["baseline"].fillna(0)
                                                 - periods["delivered"])).astype("int64")
    return periods


def _bh(p: np.ndarray, period: np.ndarray, family: pd.Series | None = None) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values within each period (NaN where untested);
    ``family``: more tests made in each period elsewhere, counted in the family size."""
    q = np.full(len(p), np.nan)
    ok = np.isfinite(p)
    if not ok.any():
        return q
    frame = pd.DataFrame({"p": p[ok], "period": period[ok], "i": np.flatnonzero(ok)}).sort_values(["period", "p"])
    m = frame.groupby("period")["p"].transform("size").to_numpy()
    if family is not None:
        m = m + pd.Series(frame["period"].to_numpy()).map(family).fillna(0).to_numpy(dtype=int)
    rank = frame.groupby("period").cumcount().to_numpy() + 1
    raw = frame["p"].to_numpy() * m / rank
    # the running minimum from the largest p down, within each period
    rev = pd.Series(raw[::-1]).groupby(frame["period"].to_numpy()[::-1]).cummin().to_numpy()[::-1]
    q[frame["i"].to_numpy()] = np.minimum(rev, 1.0)
    return q


def _advise(alerts: pd.DataFrame, periods: pd.DataFrame, pooled: pd.DataFrame, *, by: list[str], where: list[str],
            min_messages: int, min_drop_pp: float) -> pd.DataFrame:
    """Switch only to a vendor measurably better there that period (and not dropped
    itself); a carrier-wide fault when the pooled group dropped too and none was better."""
    out = alerts.reset_index(drop=True)
    out["advice"], out["switch_to"], out["switch_to_arrival"] = "contact_vendor", None, np.nan
    if out.empty or "vendor" not in by:
        return out
    typed = {k: object for k in where}
    # every vendor's day in the same carrier × province: the candidates
    cand = periods[periods["traffic"].astype(object).eq("regular")]
    cand = cand[[*where, "period", "vendor", "submitted", "delivered", "arrival_rate", "diff_pp"]].rename(
        columns={"vendor": "switch_to", "submitted": "_n", "delivered": "_k", "arrival_rate": "switch_to_arrival",
                 "diff_pp": "_diff"}).astype(typed)
    a = out.assign(_row=np.arange(len(out))).astype(typed)
    m = merge_on(a[["_row", *where, "period", "vendor", "submitted", "delivered"]], cand, [*where, "period"])
    m = m[m["switch_to"].astype(str) != m["vendor"].astype(str)]
    # the other vendors there (every vendor, for a pooled alarm): none known to be fine
    fine = m["_diff"].gt(-min_drop_pp)  # missing (too little history) is not known to be fine
    fell = m.assign(_fine=fine).groupby("_row")["_fine"].agg(["any", "size"])
    z, _, _ = two_proportion_test(m["_k"].to_numpy(float), m["_n"].to_numpy(float),
                                  m["delivered"].to_numpy(float), m["submitted"].to_numpy(float))
    better = ((z > NormalDist().inv_cdf(0.95)) & ~(m["_diff"].to_numpy(float) <= -min_drop_pp)
              & (m["_n"].to_numpy(float) >= max(1, min_messages // 2)) & ~m["vendor"].astype(str).eq(ALL).to_numpy())
    drift = out["detector"].eq("cusum").to_numpy()
    best = m[better & ~drift[m["_row"].to_numpy()]]
    best = best.sort_values(["_row", "switch_to_arrival"], ascending=[True, False]).drop_duplicates("_row")
    pick = best.set_index("_row")
    rows = pick.index.to_numpy()
    out.loc[rows, "advice"] = "switch_channel"
    out.loc[rows, "switch_to"] = pick["switch_to"].astype(object).to_numpy()
    out.loc[rows, "switch_to_arrival"] = pick["switch_to_arrival"].to_numpy()
    dropped = pooled[pooled["_alarm"]][[*where, "traffic", "period"]].assign(_pooled=True).astype(typed)
    out = merge_on(out.astype(typed), dropped, [*where, "traffic", "period"], how="left")
    pooled_alarm = out["_pooled"].fillna(False).astype(bool).to_numpy() | out["vendor"].astype(str).eq(ALL).to_numpy()
    need = np.where(out["vendor"].astype(str).eq(ALL), 2, 1)  # a pooled alarm: at least two vendors
    n_other = fell["size"].reindex(range(len(out))).fillna(0).to_numpy()
    all_fell = ~fell["any"].reindex(range(len(out))).fillna(True).astype(bool).to_numpy() & (n_other >= need)
    wide = pooled_alarm & all_fell & out["advice"].eq("contact_vendor").to_numpy() & ~drift
    out.loc[wide, "advice"] = "carrier_wide"
    return out.drop(columns="_pooled")


def period_counts(log: pd.DataFrame, *, by: Sequence[str] = ("vendor", "carrier", "province"),
                  freq: str = "D") -> pd.DataFrame:
    """Submitted, delivered, content-blocked, originals and first-attempt deliveries per
    group, vendor, ``traffic`` (canary / regular) and ``period``: the counts alerts are
    computed from; they add up across partitions."""
    keys = list(dict.fromkeys([*by, "vendor"]))
    traffic = traffic_of(log)
    d = with_keys(log, [*keys, "period"], freq=freq)
    flags = row_flags(d)
    blocked = d["failure_reason"].eq("content_blocked").to_numpy(dtype=bool, na_value=False)
    cols = {**{k: d[k] for k in keys}, "traffic": traffic, "period": d["period"], "submitted": 1,
            "delivered": flags["delivered"], "blocked": blocked, "originals": flags["originals"], "first_ok": flags["first_ok"]}
    return sum_by(cols, [*keys, "traffic", "period"])


def period_rates(
    log: pd.DataFrame, *, by: Sequence[str] = ("carrier", "province"), freq: str = "D", baseline: int = 14
) -> pd.DataFrame:
    """Arrival per group × ``traffic`` × period, with the trailing baseline.

    Returns
    -------
    DataFrame sorted by the keys then ``period``: the keys, ``traffic``, ``period``,
    ``submitted``, ``delivered``, ``arrival_rate``, ``baseline`` (pooled arrival of the
    ``baseline`` previous periods of the group that had messages; NaN for the first),
    ``baseline_messages``.
    """
    return _baselines(_period_table(period_counts(log, by=by, freq=freq), list(by)), list(by), baseline)


def _period_table(counts: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Submitted, delivered and arrival per group × ``traffic`` × period, sorted so."""
    keys = [*by, "traffic"]
    extra = ["window_days"] if "window_days" in counts else []
    out = counts.groupby([*keys, "period", *extra], dropna=False, sort=True, observed=True)[
        ["submitted", "delivered"]].sum().reset_index()
    if "window_days" not in out:
        out["window_days"] = 1
    out["arrival_rate"] = out["delivered"] / out["submitted"]
    return out


def _baselines(table: pd.DataFrame, by: list[str], baseline: int, skip: np.ndarray | None = None) -> pd.DataFrame:
    """:func:`_period_table` with each period's baseline from the ``baseline`` periods
    before it (leaving out the ``skip`` ones) and the CUSUM's lagged ``reference``."""
    out = table.copy()
    group = out.groupby([*by, "traffic"], observed=True, dropna=False, sort=False).ngroup().to_numpy()
    keep = 1.0 if skip is None else (~skip).astype(float)  # in-control periods only
    prev_n = trailing_sum(out["submitted"] * keep, group, baseline)
    prev_k = trailing_sum(out["delivered"] * keep, group, baseline)
    # the CUSUM's reference: the same pool a week earlier, which a slow drift has not reached
    lag_n = np.nan_to_num(trailing_sum(out["submitted"] * keep, group, baseline + DRIFT_LAG)) - np.nan_to_num(
        trailing_sum(out["submitted"] * keep, group, DRIFT_LAG))
    lag_k = np.nan_to_num(trailing_sum(out["delivered"] * keep, group, baseline + DRIFT_LAG)) - np.nan_to_num(
        trailing_sum(out["delivered"] * keep, group, DRIFT_LAG))
    with np.errstate(invalid="ignore", divide="ignore"):
        out["reference"] = np.where(lag_n > 0, lag_k / np.where(lag_n > 0, lag_n, 1), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["baseline"] = np.where(prev_n > 0, prev_k / prev_n, np.nan)
    out["baseline_messages"] = np.nan_to_num(prev_n).astype("int64")
    return out


def _cusum(periods: pd.DataFrame, keys: list[str], z: np.ndarray, k: float, h: float,
           reset: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One-sided CUSUM of ``z`` within each group (rows sorted by group then period),
    restarted after each alarm (and after each ``reset`` row), and the period at which
    the current run began."""
    group = periods.groupby(keys, observed=True, dropna=False, sort=False).ngroup().to_numpy()
    period = periods["period"].to_numpy()
    s = np.zeros(len(z))
    began = period.copy()
    for i in range(len(z)):  # runs over groups × periods (aggregates), never over messages
        fresh = i == 0 or group[i] != group[i - 1]
        prev = 0.0 if fresh or s[i - 1] > h or (reset is not None and reset[i - 1]) else s[i - 1]
        s[i] = max(0.0, prev + z[i] - k)
        if prev > 0 and s[i] > 0:
            began[i] = began[i - 1]
    return s, began


def _run_start(periods: pd.DataFrame, keys: list[str], alarm: np.ndarray) -> np.ndarray:
    """For consecutive alarms in a group, the ``began`` of the first one of the run."""
    began = periods["began"].to_numpy()
    group = periods.groupby(keys, observed=True, dropna=False, sort=False).ngroup().to_numpy()
    same = np.zeros(len(alarm), dtype=bool)
    same[1:] = (group[1:] == group[:-1]) & alarm[:-1]
    first = alarm & ~same
    run = np.cumsum(first) - 1
    starts = began[first]
    return np.where(alarm & (run >= 0), starts[np.maximum(run, 0)] if len(starts) else began, began)
