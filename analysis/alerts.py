"""Drop alerts: each group's arrival against its own baseline (README, *Measures*).

Every vendor × carrier × province × day is tested against the group's own history, and
the alarms are kept few enough to act on:

* **the day test**: the day's first-attempt deliveries against the group's in-control
  baseline (its previous ``baseline`` days without an alarm), with the baseline's own
  uncertainty and the group's day-to-day variation in the test: the day's true rate is
  taken as a beta distribution of the baseline's mean (Jeffreys: (k + ½)/(n + 1)) whose
  variance is the baseline's sampling variance plus the between-day variance τ²
  estimated from the group's in-control history (method of moments over its previous
  ``history`` days, at its 90% upper confidence limit, and no smaller than the typical
  group's relative variance), so the delivered count is beta-binomial and its lower
  tail is the p-value; the null allows a drop of :data:`TOLERANCE` of the minimum (so a
  swing every group shares, such as a holiday's, significant in the large groups, does
  not loosen the false-discovery rule for the others); with hundreds of groups tested
  each day, the days flagged are those whose
  p-value passes the Benjamini-Hochberg false-discovery-rate rule among all groups
  tested that day (``fdr``, 5%), that dropped by at least ``min_drop_pp`` points and
  that held at least ``min_messages`` messages;
* **the drift test**, for slow drifts no single day shows: each vendor's last
  ``drift_days`` days (less the days the day test flagged) pooled against a reference of
  the ``reference_days`` days that raised no alarm and ended ``drift_days`` before them
  (so the drift's own start is not in it; at least half of them with messages, no test
  before that), official rest days left out of both, with the same beta-binomial model
  (the reference's uncertainty and τ²), its own false-discovery rule among the groups
  tested that day and a minimum drop of ``min_drift_pp`` points; a drift advises
  contacting the vendor, never switching;
* **in-control history**: days that raised an alarm of either kind leave the baselines,
  the references and the τ² estimates, so an outage does not lower the bar for the next
  drop; the groups are scanned day by day, each day's tests using the alarms of the days
  before;
* **first attempts, the channel's own failures**: each original counts once, delivered
  or not on its first attempt (resends of a dead number would count its failure again),
  and messages blocked for their wording (a content problem, on the content ledger)
  are left out;
* **a receipt window**: days within ``receipt_window`` (72 h) of the end of the data are
  not tested: their receipts are still arriving, and pending is not failure;
* **canaries** (``is_probe``), a few a day, are pooled over ``canary_days`` (7), need
  ``min_canaries`` (15) and are tested on their own baseline;
* **advice that names who failed**: each vendor's day is tested on its own; where the
  vendors' days are too small, the pooled carrier × province is (``vendor`` = ``All``,
  against the vendors' own baselines weighted by the day's mix). A vendor **known to be
  fine** that day has its own in-control baseline, at least ``min_messages`` messages,
  no alarm, and a 95% Wilson lower bound within ``min_drop_pp`` points of its baseline.
  **Switch channel** only to a vendor known to be fine there that day and measurably
  better than the one that dropped (one-sided two-proportion test at 5%), the one with
  the highest lower bound, and only when the drop is shown beyond ``min_drop_pp`` itself
  (the day test with that null: p < 1% on a drop's second period, p < 0.01% on its
  first, :data:`SWITCH_ALPHA`; a single bad day short of that is the vendor's to
  explain, and is advised **contact the vendor**); **carrier-wide** when another vendor there dropped too (its
  own alarm, or the other vendors together significantly and ``min_drop_pp`` points
  below their baselines) and none is known to be fine; else **no proven alternative**
  where other vendors send there, **contact the vendor** where none does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from statistics import NormalDist

import numpy as np
import pandas as pd

from .kernel import rest_days, row_flags, sum_by, traffic_of, trailing_sum
from .measures import ALL, with_keys
from .stats import (
    beta_binomial_test,
    day_sums,
    two_proportion_test,
    variance_from_sums,
    wilson_interval,
)

#: One-sided false-alarm rate of a 3-sigma limit (the day's lower control limit shown).
ALPHA = NormalDist().cdf(-3)

#: The tests' null hypotheses allow a drop of this share of the minimum drop (a swing every
#: group shares, such as a holiday's, is significant in the large groups but no alarm).
TOLERANCE = 0.3
#: A switch of channel needs the drop shown beyond the minimum itself: at the first level
#: on a drop's second period, at the second on its first.
SWITCH_ALPHA = (0.01, 1e-4)

#: The rules, stated on the alerts sheet and in the README: ``key: default``.
RULES = {"fdr": 0.05, "min_drop_pp": 5.0, "min_messages": 30, "receipt_window": "72h", "canary_days": 7,
         "min_canaries": 15, "baseline": 14, "history": 28, "min_baseline": 200, "drift_days": 7,
         "reference_days": 21, "min_drift_pp": 2.0}
#: How the rules read on a workbook's summary: ``(zh, en)``.
RULES_TEXT = (
    "日检验：每组每日至少 {min_messages} 条，比自身受控基线（前 {baseline} 天中无预警的日子，至少 {min_baseline} 条、"
    "{min_days} 天）低至少 {min_drop_pp:.0f} 个百分点，且在当日所有检验中通过 {fdr:.0%} 错误发现率控制；检验（β-二项分布）"
    "计入基线本身的不确定性和该组的日间波动（按前 {history} 天受控历史估计，取 90% 置信上限，且不低于典型组），"
    "原假设容许下降 {tolerance_pp:.1f} 个百分点（各组共同的小幅波动不触发预警）。漂移检验：最近 {drift_days} 天合并，"
    "与再早 {drift_days} 天之前的 {reference_days} 天受控参照比较，低至少 {min_drift_pp:.0f} 个百分点并通过同样的错误发现率"
    "控制（原假设容许 {drift_tolerance_pp:.1f} 个百分点；法定节假日不计入）。最近 {window} 小时回执未齐，不预警；"
    "探针短信按 {canary_days} 天合并，至少 {min_canaries} 条。只有当同一地区另有平台当日确认正常（有自身基线、至少 "
    "{min_messages} 条、95% 下限不低于其基线 {min_drop_pp:.0f} 个百分点以上）、显著更好，且下降已被证实超过 "
    "{min_drop_pp:.0f} 个百分点（持续第二天时 p < 1%，首日须 p < 0.01%；否则联系平台）时才建议切换，按下限排序；另有平台同降且无平台确认正常时判为运营商侧故障；"
    "否则注明无可证实的替代通道。",
    "Day test: a group-day with at least {min_messages} messages, {min_drop_pp:.0f} points or more below its "
    "in-control baseline (the previous {baseline} days without an alarm, at least {min_baseline} messages on "
    "{min_days} days), passing a {fdr:.0%} false-discovery-rate rule among all tests that day; the test "
    "(beta-binomial) counts the baseline's own uncertainty and the group's day-to-day variation (from its previous "
    "{history} in-control days, at its 90% upper confidence limit and no less than the typical group's), and its "
    "null allows a drop of {tolerance_pp:.1f} points (a small swing every group shares raises no alarm). Drift test: "
    "the last {drift_days} days pooled against the {reference_days} in-control days ending {drift_days} days "
    "before them, {min_drift_pp:.0f} points or more below under the same false-discovery rule (its null allows "
    "{drift_tolerance_pp:.1f} points; official holidays left out). The last {window} hours are not tested "
    "(receipts still arriving); canaries pooled over {canary_days} days, at least {min_canaries}. Switch only to a "
    "vendor known to be fine there that day (its own baseline, at least {min_messages} messages, a 95% lower bound "
    "within {min_drop_pp:.0f} points of its baseline) and measurably better, ranked by that lower bound, and only "
    "when the drop is shown beyond {min_drop_pp:.0f} points (p < 1% on its second day, p < 0.01% on its first; "
    "short of that: contact the vendor); carrier-wide when another vendor dropped too and none "
    "is known to be fine; else no proven alternative.",
)


def rules_text(lang: str = "zh", **rules) -> str:
    """The alert rules in words (:data:`RULES`, overridden by ``rules``)."""
    r = {**RULES, **rules}
    hours = int(pd.Timedelta(r.pop("receipt_window")).total_seconds() // 3600)
    return RULES_TEXT[0 if lang == "zh" else 1].format(
        window=hours, min_days=(r["baseline"] + 1) // 2, tolerance_pp=TOLERANCE * r["min_drop_pp"],
        drift_tolerance_pp=TOLERANCE * r["min_drift_pp"], **r)


#: The alerts' columns, in order (:func:`drop_alerts` describes them).
def _columns(by: list[str]) -> list[str]:
    return [*by, "traffic", "period", "window_days", "submitted", "delivered", "arrival_rate", "baseline", "diff_pp",
            "control_low", "p_value", "q_value", "drift_pp", "detector", "affected", "began", "advice", "switch_to",
            "switch_to_arrival"]


#: Advice codes of the scan, in the order of their integer codes.
ADVICE = ("contact_vendor", "no_alternative", "switch_channel", "carrier_wide")


def drop_alerts(
    log: pd.DataFrame, *, by: Sequence[str] = ("vendor", "carrier", "province"), freq: str = "D", **options
) -> pd.DataFrame:
    """Periods in which a group's arrival dropped below its own baseline.

    Parameters
    ----------
    log : canonical send log.
    by : the groups (any :func:`analysis.arrival_rates` key); ``traffic`` (canary /
        regular) is always added. The default names the vendor that dropped.
    freq : length of a period (``"D"``, ``"h"``, ``"W"`` …); the rules' day counts are
        counts of periods.
    **options : those of :func:`alerts_from_counts`.

    Returns
    -------
    DataFrame, one row per alerted group × period, sorted by period then keys:

    * the keys, ``traffic`` (``canary`` / ``regular``), ``period`` (local start),
      ``window_days`` (days pooled: 1, or ``canary_days`` for canaries);
    * ``submitted``, ``delivered`` (originals, and those delivered on the first
      attempt), ``arrival_rate``, ``baseline`` (in-control, previous ``baseline``
      periods), ``diff_pp`` (arrival − baseline, points), ``control_low`` (the lowest
      arrival the day test accepts on its own: the 3-sigma point of the day's
      beta-binomial distribution, or the baseline less ``min_drop_pp``, whichever is
      lower);
    * ``p_value`` (one-sided, beta-binomial), ``q_value`` (Benjamini-Hochberg over the
      tests of the period) of the test that raised the alarm: the day test's, or the
      drift test's for a drift alone; ``drift_pp`` (the last ``drift_days`` periods
      pooled against their reference, points; missing where not tested);
    * ``detector``: ``p-chart`` (the day test), ``drift`` or ``both``;
    * ``affected``: messages lost against the baseline (submitted × baseline − delivered;
      against the reference for a drift);
    * ``began``: the first period of the episode: of the run of consecutive day-test
      alarms for a sharp drop (a drift alarm before it does not move it), the estimated
      start of the shortfall for a drift (the start of the span of the last
      2 × ``drift_days`` periods with the largest cumulative shortfall);
    * ``advice``: ``switch_channel`` (to ``switch_to``, known to be fine there that
      period and measurably better, the drop shown beyond ``min_drop_pp`` (see the
      module docstring); and contact the vendor), ``carrier_wide`` (another vendor there
      dropped too and none is known to be fine: the carrier's fault; contact the vendors
      and hold campaigns), ``no_alternative`` (contact the vendor; other vendors send
      there but none is proven better) or ``contact_vendor`` (the first day of a drop
      with a proven alternative, no other vendor there, a drift, or a pooled alarm);
    * ``switch_to``, ``switch_to_arrival``: that vendor and its arrival.

    The rules are in ``attrs["rules"]`` (:func:`rules_text` words them).
    """
    return alerts_from_counts(period_counts(log, by=by, freq=freq), by=by, **options)


def alerts_from_counts(
    counts: pd.DataFrame,
    *,
    by: Sequence[str] = ("vendor", "carrier", "province"),
    baseline: int = RULES["baseline"],
    history: int = RULES["history"],
    min_messages: int = RULES["min_messages"],
    min_baseline: int = RULES["min_baseline"],
    fdr: float = RULES["fdr"],
    min_drop_pp: float = RULES["min_drop_pp"],
    receipt_window: str = RULES["receipt_window"],
    canary_days: int = RULES["canary_days"],
    min_canaries: int = RULES["min_canaries"],
    drift_days: int = RULES["drift_days"],
    reference_days: int = RULES["reference_days"],
    min_drift_pp: float = RULES["min_drift_pp"],
) -> pd.DataFrame:
    """:func:`drop_alerts` from :func:`period_counts` (which merge across partitions).

    ``min_baseline``: a group whose in-control baseline holds fewer messages is not
    tested (nor its drift, whose reference needs as many); ``history``: the in-control
    periods the between-day variance is estimated from; ``drift_days``,
    ``reference_days``, ``min_drift_pp``: the drift test's window, reference and
    minimum drop; ``min_canaries``: the least canaries a pooled window needs.
    """
    by = list(by)
    rules = {"fdr": fdr, "min_drop_pp": min_drop_pp, "min_messages": min_messages, "receipt_window": receipt_window,
             "canary_days": canary_days, "min_canaries": min_canaries, "baseline": baseline, "history": history,
             "min_baseline": min_baseline, "drift_days": drift_days, "reference_days": reference_days,
             "min_drift_pp": min_drift_pp}
    counts = _first_attempts(counts)
    counts = _settled(counts, receipt_window)
    counts = _pool_canaries(counts, canary_days)
    table = _period_table(counts, by)
    where = [k for k in by if k not in ("vendor", "channel")] if "vendor" in by else None
    rule = _Rules(baseline=baseline, min_days=(baseline + 1) // 2, tolerance=TOLERANCE, history=history, min_baseline=min_baseline, fdr=fdr, min_drop=min_drop_pp / 100,
                  drift_days=drift_days, reference_days=reference_days, min_drift=min_drift_pp / 100)
    parts = []
    traffic = table["traffic"].astype(object)
    for kind in pd.unique(traffic):
        least = min_canaries if kind == "canary" else min_messages
        part = table[traffic.eq(kind).to_numpy()]
        pooled_days = int(part["window_days"].max()) if len(part) else 1  # a canary period pools a week
        parts.append(_scan_traffic(part, by, where, replace(rule, min_days=-(-rule.min_days // pooled_days)), least))
    cols = _columns(by)
    parts = [p for p in parts if len(p)]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({c: [] for c in cols})
    out = out.sort_values(["period", *by, "traffic"], kind="stable")[cols].reset_index(drop=True)
    out = out.astype({"period": "datetime64[ms]", "began": "datetime64[ms]", "switch_to_arrival": float})
    out.attrs["rules"] = rules
    return out


@dataclass(frozen=True)
class _Rules:
    baseline: int
    min_days: int
    tolerance: float
    history: int
    min_baseline: int
    fdr: float
    min_drop: float
    drift_days: int
    reference_days: int
    min_drift: float


@dataclass
class _Level:
    """One level of groups (each vendor's, or the carrier × province pooled over vendors)
    as groups × periods matrices, and what the scan finds in them."""

    keys: pd.DataFrame
    n: np.ndarray
    k: np.ndarray
    out: dict = field(default_factory=dict)

    @classmethod
    def of(cls, table: pd.DataFrame, keys: list[str], periods: np.ndarray) -> _Level:
        gid = table.groupby(keys, observed=True, dropna=False, sort=True).ngroup().to_numpy()
        first = ~pd.Series(gid).duplicated().to_numpy()
        groups = table.loc[first, keys].set_axis(gid[first]).sort_index().reset_index(drop=True)
        t = np.searchsorted(periods, table["period"].to_numpy())
        shape = (len(groups), len(periods))
        n, k = np.zeros(shape), np.zeros(shape)
        np.add.at(n, (gid, t), table["submitted"].to_numpy(dtype=float))
        np.add.at(k, (gid, t), table["delivered"].to_numpy(dtype=float))
        level = cls(groups, n, k)
        for name, dtype, fill in (("sharp", bool, False), ("drift", bool, False), ("tested", bool, False),
                                  ("skip", bool, False),
                                  ("base", float, np.nan), ("mean", float, np.nan), ("var", float, np.nan),
                                  ("p", float, np.nan), ("q", float, np.nan), ("p_drift", float, np.nan),
                                  ("q_drift", float, np.nan), ("drift_pp", float, np.nan), ("ref", float, np.nan),
                                  ("began", np.int64, -1), ("advice", np.int8, 0), ("switch_to", np.int64, -1),
                                  ("switch_rate", float, np.nan)):
            level.out[name] = np.full(shape, fill, dtype=dtype)
        return level

    def history(self, t: int, days: int, suspect: bool = False):
        """The in-control counts of the ``days`` periods before ``t``: alarms left out,
        and the days of a sharp drop (``skip``: the group's own, or its carrier ×
        province's pooled over vendors)."""
        lo = max(0, t - days)
        keep = ~(self.out["skip"][:, lo:t] | self.out["drift"][:, lo:t])
        if suspect:  # and, for the variance, the days whose own test gave p < 1% (an outage too small to flag)
            keep &= ~(self.out["p"][:, lo:t] < 0.01)
        return self.n[:, lo:t] * keep, self.k[:, lo:t] * keep


def _scan_traffic(table: pd.DataFrame, by: list[str], where: list[str] | None, rule: _Rules,
                  least: int) -> pd.DataFrame:
    """The day and drift tests and the advice of one kind of traffic, period by period."""
    periods = np.sort(pd.unique(table["period"]))
    vendor = _Level.of(table, by, periods)
    pooled = parent = None
    if where is not None:
        sums = table.groupby([*where, "period"], observed=True, dropna=False, sort=False)[
            ["submitted", "delivered"]].sum().reset_index()
        pooled = _Level.of(sums, where, periods)
        parent = _parents(vendor.keys, pooled.keys, where)
        pairs = _pairs(parent)
    levels = [vendor] if pooled is None else [vendor, pooled]
    # official rest periods: their swing is the holiday's, not the channel's, so the drift test leaves them out
    rest = rest_days(pd.DatetimeIndex(periods).normalize())[0] if len(periods) else np.zeros(0, dtype=bool)
    for t in range(len(periods)):  # a loop over periods; every step is vectorised over the groups
        for level in levels:
            _day_model(level, t, rule)
        if pooled is not None:
            _mix(pooled, vendor, parent, t, rule)
        p_all, tested = [], []
        for level in levels:
            n, k = level.n[:, t], level.k[:, t]
            test = level.out["tested"][:, t] = (n >= least) & np.isfinite(level.out["mean"][:, t])
            p = np.full(len(n), np.nan)
            # the null: a drop of at most ``tolerance`` of the minimum (a small swing of every group,
            # significant in the large ones, neither alarms nor loosens the false-discovery rule for the rest)
            p[test] = beta_binomial_test(k[test], n[test], level.out["mean"][test, t] - rule.tolerance * rule.min_drop,
                                         level.out["var"][test, t], exact_above=0.2).pvalue
            level.out["p"][:, t] = p
            with np.errstate(invalid="ignore", divide="ignore"):
                level.out["drift_pp"][:, t] = np.nan
            p_all.append(p)
            tested.append(test)
        q = _bh_one(np.concatenate(p_all))
        start = 0
        for level in levels:
            size = len(level.n)
            level.out["q"][:, t] = q[start:start + size]
            start += size
            with np.errstate(invalid="ignore", divide="ignore"):
                diff = level.k[:, t] / level.n[:, t] - level.out["base"][:, t]
            level.out["sharp"][:, t] = level.out["tested"][:, t] & (level.out["q"][:, t] <= rule.fdr) & (
                diff <= -rule.min_drop + 1e-9)
        for level in levels:
            level.out["skip"][:, t] = level.out["sharp"][:, t]
        if pooled is not None:  # a sharp drop seen only pooled leaves the vendors' windows and baselines too
            vendor.out["skip"][:, t] |= pooled.out["sharp"][parent, t]
        _drift(vendor, t, rule, least, rest)
        for level in levels:
            _began(level, t, rule)
        if pooled is not None:
            _advise(vendor, pooled, parent, pairs, t, rule, least)
    rows = [_rows(vendor, periods, table, by, rule)]
    if pooled is not None:
        extra = _rows(pooled, periods, table, where, rule)
        if len(extra) and len(rows[0]):  # a pooled alarm where no vendor's own days raised one
            seen = rows[0][[*where, "period"]].astype({k: object for k in where}).drop_duplicates().assign(_seen=True)
            extra = extra.astype({k: object for k in where}).merge(seen, on=[*where, "period"], how="left")
            extra = extra[extra["_seen"].isna()].drop(columns="_seen")
        if len(extra):
            rows.append(extra.assign(vendor=ALL))
    rows = [r for r in rows if len(r)]
    if not rows:
        return pd.DataFrame()
    if len(rows) > 1:
        rows = [r.astype({k: object for k in by if k in r}) for r in rows]
    return pd.concat(rows, ignore_index=True)


def _parents(keys: pd.DataFrame, pooled: pd.DataFrame, where: list[str]) -> np.ndarray:
    """The pooled group of each vendor's group."""
    index = pd.MultiIndex.from_frame(pooled[where].astype(object))
    return index.get_indexer(pd.MultiIndex.from_frame(keys[where].astype(object)))


def _pairs(parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every ordered pair (group, another vendor's group in the same carrier × province)."""
    order = np.argsort(parent, kind="stable")
    a, b = [], []
    for h in np.unique(parent):  # a loop over carrier × provinces, once
        members = order[parent[order] == h]
        for g in members:
            others = members[members != g]
            a.append(np.full(len(others), g))
            b.append(others)
    if not a:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(a).astype(np.int64), np.concatenate(b).astype(np.int64)


def _day_model(level: _Level, t: int, rule: _Rules) -> None:
    """Each group's baseline at ``t`` and the day's predictive mean and variance: the
    Jeffreys mean of its in-control baseline, whose variance is the baseline's own plus
    the between-day variance τ² (from its in-control history) that the day adds."""
    n, k = level.history(t, rule.baseline)
    n0, k0 = n.sum(1), k.sum(1)
    tau2 = _upper_tau2(*level.history(t, rule.history, suspect=True)[::-1])
    with np.errstate(invalid="ignore", divide="ignore"):
        s2 = (n * n).sum(1) / (n0 * n0)
        m = (k0 + 0.5) / (n0 + 1)
        var_mean = m * (1 - m) / (n0 + 1) + tau2 * s2
        ok = (n0 >= rule.min_baseline) & ((n > 0).sum(1) >= rule.min_days)
        level.out["base"][:, t] = np.where(ok, k0 / n0, np.nan)
    level.out["mean"][:, t] = np.where(ok, m, np.nan)
    level.out["var"][:, t] = np.where(ok, var_mean + tau2, np.nan)
    level.out.setdefault("_var_mean", np.full(level.n.shape, np.nan))[:, t] = np.where(ok, var_mean, np.nan)
    level.out.setdefault("_tau2", np.zeros(level.n.shape))[:, t] = tau2


def _upper_tau2(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The between-day variance τ² of each row's days (:func:`analysis.stats.between_day_variance`)
    at its upper 90% confidence limit, τ̂²·(D − 1)/χ²(0.10; D − 1) for D days with messages:
    estimated from a few weeks, it is taken as no smaller than the data allow, which
    gives the day's deviation about the heavier tails of a t distribution; and no smaller
    than the typical group's (the median of τ̂²/(μ(1 − μ)) over the rows with at least 2,000
    messages and 7 days, times the row's μ(1 − μ)), which a small group's history cannot show."""
    from scipy import special

    sums = day_sums(k, n, axis=1)
    tau2 = variance_from_sums(*sums)
    df = np.maximum((n > 0).sum(1) - 1, 1)
    upper = tau2 * df / special.chdtri(df, 0.9)
    # no group is taken as quieter than the typical one: the median relative variance
    # τ²/(μ(1 − μ)) of the groups whose history is large enough to show it
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = sums[1] / sums[0]
        relative = tau2 / (mu * (1 - mu))
        shown = (sums[0] >= 2000) & (df >= 6) & np.isfinite(relative)
        floor = float(np.median(relative[shown])) if shown.sum() >= 5 else 0.0
        return np.maximum(upper, np.nan_to_num(floor * mu * (1 - mu)))


def _mix(pooled: _Level, vendor: _Level, parent: np.ndarray, t: int, rule: _Rules) -> None:
    """The pooled group's expectation for the day's vendor mix: each vendor's own baseline
    weighted by its messages (a day on which the weaker vendor carries more is not a
    drop), where every vendor sending that day has one."""
    n = vendor.n[:, t]
    size = len(pooled.n)
    has = np.isfinite(vendor.out["mean"][:, t])
    total = np.bincount(parent, n, size)
    covered = np.bincount(parent, n * has, size)
    ok = (total > 0) & (covered == total)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = n / total[parent]
        mean = np.bincount(parent, np.where(has, w * vendor.out["mean"][:, t], 0), size)
        base = np.bincount(parent, np.where(has, w * vendor.out["base"][:, t], 0), size)
        var_mean = np.bincount(parent, np.where(has, w * w * vendor.out["_var_mean"][:, t], 0), size)
    tau2 = pooled.out["_tau2"][:, t]
    for name, value in (("mean", mean), ("base", base), ("var", var_mean + tau2)):
        pooled.out[name][:, t] = np.where(ok, value, pooled.out[name][:, t])


def _drift(level: _Level, t: int, rule: _Rules, least: int, rest: np.ndarray) -> None:
    """The drift test at ``t``: the last ``drift_days`` periods (less the day test's
    alarms) pooled against the in-control ``reference_days`` periods ending
    ``drift_days`` before them (the drift's own start stays out of its reference); days
    of an official rest period are in neither."""
    w0 = max(0, t - rule.drift_days + 1)
    keep = ~level.out["skip"][:, w0:t + 1] & ~rest[w0:t + 1]
    nw, kw = level.n[:, w0:t + 1] * keep, level.k[:, w0:t + 1] * keep
    r1 = max(0, w0 - rule.drift_days)
    nr, kr = level.history(r1, rule.reference_days)
    workday = ~rest[max(0, r1 - rule.reference_days):r1]
    nr, kr = nr * workday, kr * workday
    nw0, kw0, nr0, kr0 = nw.sum(1), kw.sum(1), nr.sum(1), kr.sum(1)
    tau2 = _upper_tau2(kr, nr)
    days = (nr > 0).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = (kr0 + 0.5) / (nr0 + 1)
        var = m * (1 - m) / (nr0 + 1) + tau2 * ((nr * nr).sum(1) / (nr0 * nr0) + (nw * nw).sum(1) / (nw0 * nw0))
        ref = kr0 / nr0
        shortfall = kw0 / nw0 - ref
    tested = (days >= rule.reference_days // 2) & (nr0 >= rule.min_baseline) & (nw0 >= least) & (
        level.n[:, t] > 0)
    p = np.full(len(nw0), np.nan)
    p[tested] = beta_binomial_test(kw0[tested], nw0[tested], m[tested] - rule.tolerance * rule.min_drift, var[tested],
                                   exact_above=0.2).pvalue
    q = _bh_one(p)
    level.out["p_drift"][:, t], level.out["q_drift"][:, t] = p, q
    level.out["drift_pp"][:, t] = np.where(tested, 100 * shortfall, np.nan)
    level.out["ref"][:, t] = np.where(tested, ref, np.nan)
    level.out["drift"][:, t] = tested & (q <= rule.fdr) & (shortfall <= -rule.min_drift + 1e-9)
    level.out.setdefault("_drift_from", np.full(level.n.shape, -1, dtype=np.int64))
    if level.out["drift"][:, t].any():  # where the shortfall began: the span with the largest cumulative shortfall
        s0 = max(0, t - 2 * rule.drift_days + 1)
        keep = ~level.out["skip"][:, s0:t + 1] & ~rest[s0:t + 1]
        short = np.nan_to_num(ref[:, None] * level.n[:, s0:t + 1] - level.k[:, s0:t + 1]) * keep
        suffix = np.cumsum(short[:, ::-1], axis=1)[:, ::-1]  # suffix[:, j] = shortfall of s0 + j .. t
        best = suffix.shape[1] - 1 - np.argmax(suffix[:, ::-1], axis=1)  # the latest start with the largest sum
        level.out["_drift_from"][:, t] = s0 + best


def _began(level: _Level, t: int, rule: _Rules) -> None:
    """The episode's first period: a run of consecutive alarms shares it, but a sharp
    drop after drift alarms starts an episode of its own (the outage's first day)."""
    sharp, drift = level.out["sharp"][:, t], level.out["drift"][:, t]
    alarm = sharp | drift
    if t == 0:
        prev_alarm = prev_sharp = np.zeros(len(alarm), dtype=bool)
        prev = np.full(len(alarm), -1)
    else:
        prev_sharp = level.out["sharp"][:, t - 1]
        prev_alarm = prev_sharp | level.out["drift"][:, t - 1]
        prev = level.out["began"][:, t - 1]
    fresh_sharp = sharp & ~prev_sharp
    drift_from = level.out.get("_drift_from", np.full(level.n.shape, -1))[:, t]
    began = np.where(prev_alarm & ~fresh_sharp, prev, np.where(sharp, t, np.where(drift_from >= 0, drift_from, t)))
    level.out["began"][:, t] = np.where(alarm, began, -1)


def _advise(vendor: _Level, pooled: _Level, parent: np.ndarray, pairs, t: int, rule: _Rules, least: int) -> None:
    """Each alarm's advice at ``t`` (see the module docstring)."""
    out = vendor.out
    n, k = vendor.n[:, t], vendor.k[:, t]
    g_size, h_size = len(n), len(pooled.n)
    low = wilson_interval(k, n).low
    has = np.isfinite(out["mean"][:, t])
    alarm = out["sharp"][:, t] | out["drift"][:, t]
    with np.errstate(invalid="ignore"):
        fine = has & (n >= least) & ~alarm & (low >= out["base"][:, t] - rule.min_drop - 1e-12)
    a, b = pairs
    advice = np.zeros(g_size, dtype=np.int8)
    switch = np.full(g_size, -1)
    if len(a):
        z = two_proportion_test(k[b], n[b], k[a], n[a]).statistic
        proven = fine[b] & (np.nan_to_num(z) > NormalDist().inv_cdf(0.95))
        order = np.lexsort((-np.nan_to_num(low[b]), a))
        order = order[proven[order]]
        first = order[~pd.Series(a[order]).duplicated().to_numpy()]
        switch[a[first]] = b[first]
        others_fine = np.bincount(a, fine[b], g_size) > 0
        others_present = np.bincount(a, n[b] > 0, g_size) > 0
        others_sharp = np.bincount(a, out["sharp"][b, t], g_size) > 0
        # the other vendors together: below their own baselines, significantly and by min_drop
        use = has[b] & (n[b] > 0)
        no = np.bincount(a, np.where(use, n[b], 0), g_size)
        ko = np.bincount(a, np.where(use, k[b], 0), g_size)
        with np.errstate(invalid="ignore", divide="ignore"):
            mo = np.bincount(a, np.where(use, n[b] * out["mean"][b, t], 0), g_size) / no
            bo = np.bincount(a, np.where(use, n[b] * out["base"][b, t], 0), g_size) / no
            vo = np.bincount(a, np.where(use, n[b] ** 2 * out["var"][b, t], 0), g_size) / no**2
        test = (no >= least) & out["sharp"][:, t]  # needed for the day's sharp drops only
        po = np.full(g_size, np.nan)
        po[test] = beta_binomial_test(ko[test], no[test], mo[test], vo[test], exact_above=0.2).pvalue
        with np.errstate(invalid="ignore", divide="ignore"):
            others_dropped = others_sharp | (test & (po < 0.05) & (ko / no - bo <= -rule.min_drop + 1e-9))
        # switching is costly: only when the drop is shown beyond the minimum itself
        sharp = np.flatnonzero(out["sharp"][:, t] & (switch >= 0))
        beyond = np.ones(g_size)
        beyond[sharp] = beta_binomial_test(k[sharp], n[sharp], out["mean"][sharp, t] - rule.min_drop,
                                           out["var"][sharp, t]).pvalue
        # ... and lasts (the group's previous period was a sharp drop too), unless shown beyond all doubt
        lasting = out["sharp"][:, t - 1] if t else np.zeros(g_size, dtype=bool)
        proven_there = switch >= 0  # until then: contact the vendor, an alternative exists
        switch = np.where((beyond < SWITCH_ALPHA[1]) | ((beyond < SWITCH_ALPHA[0]) & lasting), switch, -1)
        advice = np.select([switch >= 0, proven_there, others_dropped & ~others_fine, others_present], [2, 0, 3, 1],
                           0).astype(np.int8)
    advice = np.where(out["sharp"][:, t], advice, 0)  # a drift: contact the vendor, never switch
    switch = np.where(advice == 2, switch, -1)
    out["advice"][:, t], out["switch_to"][:, t] = advice, switch
    with np.errstate(invalid="ignore", divide="ignore"):
        out["switch_rate"][:, t] = np.where(switch >= 0, k[np.maximum(switch, 0)] / n[np.maximum(switch, 0)], np.nan)
    # a pooled alarm: carrier-wide when at least two vendors send there and none is known to be fine
    present = np.bincount(parent, n > 0, h_size)
    any_fine = np.bincount(parent, fine, h_size) > 0
    pooled.out["advice"][:, t] = np.where(pooled.out["sharp"][:, t] & (present >= 2) & ~any_fine, 3, 0)


def _rows(level: _Level, periods: np.ndarray, table: pd.DataFrame, keys: list[str], rule: _Rules) -> pd.DataFrame:
    """The alarms of one level as rows."""
    from scipy import special

    o = level.out
    alarm = o["sharp"] | o["drift"]
    g, t = np.nonzero(alarm)
    if not len(g):
        return pd.DataFrame()
    n, k = level.n[g, t], level.k[g, t]
    sharp = o["sharp"][g, t]
    drift = o["drift"][g, t]
    base = o["base"][g, t]
    m, var = o["mean"][g, t], o["var"][g, t]
    with np.errstate(invalid="ignore", divide="ignore"):
        s = m * (1 - m) / var - 1
        var_rate = m * (1 - m) * (s + n) / (n * (s + 1))  # the day's rate: its beta-binomial variance
        s_rate = m * (1 - m) / var_rate - 1
        limit = special.betaincinv(m * s_rate, (1 - m) * s_rate, ALPHA)
        low = np.fmin(limit, base - rule.min_drop)
        rate = k / n
        expected = np.where(sharp, base, o["ref"][g, t])
    keys_frame = level.keys.iloc[g].reset_index(drop=True)
    switch = o["switch_to"][g, t]
    names = level.keys["vendor"].astype(object).to_numpy() if "vendor" in level.keys else None
    switch_to = np.where(switch >= 0, names[np.maximum(switch, 0)], None) if names is not None \
        else np.full(len(g), None)
    window = table.groupby("period")["window_days"].max().reindex(periods).to_numpy()[t] if "window_days" in table \
        else np.ones(len(g))
    return keys_frame.assign(
        traffic=table["traffic"].astype(object).iloc[0],
        period=periods[t],
        window_days=np.asarray(window, dtype="int64"),
        submitted=n.astype("int64"),
        delivered=k.astype("int64"),
        arrival_rate=rate,
        baseline=base,
        diff_pp=100 * (rate - base),
        control_low=low,
        p_value=np.where(sharp, o["p"][g, t], o["p_drift"][g, t]),
        q_value=np.where(sharp, o["q"][g, t], o["q_drift"][g, t]),
        drift_pp=o["drift_pp"][g, t],
        detector=np.select([sharp & drift, sharp], ["both", "p-chart"], "drift"),
        affected=np.maximum(0, np.round(n * np.nan_to_num(expected) - k)).astype("int64"),
        began=periods[np.maximum(o["began"][g, t], 0)],
        advice=np.asarray(ADVICE, dtype=object)[o["advice"][g, t]],
        switch_to=switch_to,
        switch_to_arrival=o["switch_rate"][g, t],
    )


def _bh_one(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values of one family (NaN where untested)."""
    q = np.full(len(p), np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if len(ok):
        order = ok[np.argsort(p[ok], kind="stable")]
        raw = p[order] * len(order) / np.arange(1, len(order) + 1)
        q[order] = np.minimum(np.minimum.accumulate(raw[::-1])[::-1], 1.0)
    return q


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
    before it (leaving out the ``skip`` ones)."""
    out = table.copy()
    group = out.groupby([*by, "traffic"], observed=True, dropna=False, sort=False).ngroup().to_numpy()
    keep = 1.0 if skip is None else (~skip).astype(float)  # in-control periods only
    prev_n = trailing_sum(out["submitted"] * keep, group, baseline)
    prev_k = trailing_sum(out["delivered"] * keep, group, baseline)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["baseline"] = np.where(prev_n > 0, prev_k / prev_n, np.nan)
    out["baseline_messages"] = np.nan_to_num(prev_n).astype("int64")
    return out
