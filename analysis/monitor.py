"""Drop alerts: each group's arrival against its own baseline (DESIGN.md section 5).

Two detectors run per group (carrier × province by default) and per traffic stream
(canary messages, ``is_probe``, have their own baseline, apart from regular traffic):

* a p-chart: a period whose delivered count is improbably low for the group's trailing
  baseline (one-sided exact binomial test, ``alpha`` ≈ the 3-sigma rate);
* a one-sided CUSUM on the standardised shortfall, which adds up small drops that no
  single period shows (a slow drift).
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
import pandas as pd

from .measures import merge_on, sum_by, trailing_sum, with_keys

#: One-sided false-alarm rate of a 3-sigma limit.
ALPHA = NormalDist().cdf(-3)



def drop_alerts(
    log: pd.DataFrame, *, by: Sequence[str] = ("carrier", "province"), freq: str = "D", **options
) -> pd.DataFrame:
    """Periods in which a group's arrival dropped below its own baseline.

    Parameters
    ----------
    log : canonical send log.
    by : the groups (any :func:`analysis.arrival_rates` key); ``traffic`` (canary /
        regular) is always added.
    freq : length of a period (``"D"``, ``"h"``, ``"W"`` …).
    **options : those of :func:`alerts_from_counts`:

        * ``baseline`` (14): number of earlier periods pooled into the baseline;
        * ``min_messages`` (20): a period with fewer messages is not tested;
        * ``min_baseline`` (200): nor is one whose baseline holds fewer messages;
        * ``alpha`` (the 3-sigma rate): one-sided significance of the p-chart;
        * ``cusum_k``, ``cusum_h`` (0.5, 5): CUSUM allowance and decision limit, in
          standard errors;
        * ``switch_pp`` (10): a drop of at least this many points advises switching
          channel; smaller ones advise contacting the vendor.

    Returns
    -------
    DataFrame, one row per alerted group × period, sorted by period then keys:

    * the keys, ``traffic`` (``canary`` / ``regular``), ``period`` (local start);
    * ``submitted``, ``delivered``, ``arrival_rate``, ``baseline``, ``diff_pp``
      (arrival − baseline, points), ``control_low`` (lowest arrival the p-chart accepts);
    * ``p_value`` (exact binomial, one-sided), ``cusum`` (standard errors);
    * ``detector``: ``p-chart``, ``cusum`` or ``both``;
    * ``affected``: messages lost against the baseline (submitted × baseline − delivered);
    * ``began``: estimated start of the drop: where the CUSUM run behind the first of
      a group's consecutive alarms began;
    * ``advice``: ``switch_channel`` (to ``switch_to``, and contact the vendor),
      ``carrier_wide`` (a drop of ``switch_pp`` or more that every other vendor with
      traffic there shows too: the carrier's fault, no channel to switch to; contact the
      vendors and hold campaigns)
      or ``contact_vendor`` (a smaller drop);
    * ``switch_to``, ``switch_to_arrival``: the vendor that delivered best to the same
      group in the same period (another vendor when ``by`` holds ``vendor``), with at
      least half ``min_messages`` messages and no drop of its own beyond ``switch_pp`` below
      the group's baseline; missing when none qualifies.
    """
    return alerts_from_counts(period_counts(log, by=by, freq=freq), by=by, **options)


def alerts_from_counts(
    counts: pd.DataFrame,
    *,
    by: Sequence[str] = ("carrier", "province"),
    baseline: int = 14,
    min_messages: int = 20,
    min_baseline: int = 200,
    alpha: float = ALPHA,
    cusum_k: float = 0.5,
    cusum_h: float = 5.0,
    switch_pp: float = 10.0,
) -> pd.DataFrame:
    """:func:`drop_alerts` from :func:`period_counts` (which merge across partitions)."""
    by = list(by)
    periods = _rates(counts, by=by, baseline=baseline)
    periods.loc[periods["baseline_messages"] < min_baseline, "baseline"] = np.nan
    keys = [*by, "traffic"]
    p0 = periods["baseline"].to_numpy(dtype=float)
    n = periods["submitted"].to_numpy(dtype=float)
    k = periods["delivered"].to_numpy(dtype=float)
    tested = (n >= min_messages) & np.isfinite(p0) & (p0 > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_value = np.where(tested, _binom_cdf(k, n, np.nan_to_num(p0)), np.nan)
        low = np.where(tested, _binom_ppf(alpha, n, np.nan_to_num(p0)) / n, np.nan)
        se = np.sqrt(p0 * (1 - p0) / n)
        zshort = np.where(tested & (se > 0), (p0 - k / n) / se, 0.0)
    periods["p_value"] = p_value
    periods["control_low"] = low
    periods["cusum"], periods["began"] = _cusum(periods, keys, zshort, cusum_k, cusum_h)
    pchart = p_value < alpha
    cusum = periods["cusum"].to_numpy() > cusum_h
    periods["detector"] = np.select([pchart & cusum, pchart, cusum], ["both", "p-chart", "cusum"], "")
    alarm = (pchart | cusum) & tested
    periods["began"] = _run_start(periods, keys, alarm)
    alerts = periods[alarm].copy()
    alerts["diff_pp"] = 100 * (alerts["arrival_rate"] - alerts["baseline"])
    alerts["affected"] = np.maximum(0, np.round(alerts["submitted"] * alerts["baseline"] - alerts["delivered"])).astype("int64")
    alerts["advice"] = np.where(alerts["diff_pp"] <= -switch_pp, "switch_channel", "contact_vendor")
    alerts = _switch_to(alerts, counts, by=by, min_messages=min_messages, switch_pp=switch_pp)
    cols = [*keys, "period", "submitted", "delivered", "arrival_rate", "baseline", "diff_pp", "control_low",
            "p_value", "cusum", "detector", "affected", "began", "advice", "switch_to", "switch_to_arrival"]
    return alerts.sort_values(["period", *keys], kind="stable")[cols].reset_index(drop=True)


def traffic_of(log: pd.DataFrame) -> pd.Categorical:
    """``canary`` for the probe messages (``is_probe``), ``regular`` for the others."""
    probe = log["is_probe"].to_numpy(dtype=bool, na_value=False)
    return pd.Categorical.from_codes(np.where(probe, 0, 1), categories=["canary", "regular"])


def period_counts(log: pd.DataFrame, *, by: Sequence[str] = ("carrier", "province"), freq: str = "D") -> pd.DataFrame:
    """Submitted and delivered per group, vendor, ``traffic`` (canary / regular) and
    ``period``: the counts alerts are computed from; they add up across partitions."""
    keys = list(dict.fromkeys([*by, "vendor"]))
    traffic = traffic_of(log)
    d = with_keys(log, [*keys, "period"], freq=freq)
    ok = d["status"].eq("delivered").to_numpy(dtype=bool, na_value=False)
    cols = {**{k: d[k] for k in keys}, "traffic": traffic, "period": d["period"], "submitted": 1, "delivered": ok}
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
    return _rates(period_counts(log, by=by, freq=freq), by=list(by), baseline=baseline)


def _rates(counts: pd.DataFrame, *, by: list[str], baseline: int) -> pd.DataFrame:
    keys = [*by, "traffic"]
    out = counts.groupby([*keys, "period"], dropna=False, sort=True)[["submitted", "delivered"]].sum().reset_index()
    out["arrival_rate"] = out["delivered"] / out["submitted"]
    group = out.groupby(keys, observed=True, dropna=False, sort=False).ngroup().to_numpy()
    prev_n = trailing_sum(out["submitted"], group, baseline)
    prev_k = trailing_sum(out["delivered"], group, baseline)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["baseline"] = np.where(prev_n > 0, prev_k / prev_n, np.nan)
    out["baseline_messages"] = np.nan_to_num(prev_n).astype("int64")
    return out


def _cusum(periods: pd.DataFrame, keys: list[str], z: np.ndarray, k: float, h: float) -> tuple[np.ndarray, np.ndarray]:
    """One-sided CUSUM of ``z`` within each group (rows sorted by group then period),
    restarted after each alarm, and the period at which the current run began."""
    group = periods.groupby(keys, observed=True, dropna=False, sort=False).ngroup().to_numpy()
    period = periods["period"].to_numpy()
    s = np.zeros(len(z))
    began = period.copy()
    for i in range(len(z)):  # runs over groups × periods (aggregates), never over messages
        fresh = i == 0 or group[i] != group[i - 1]
        prev = 0.0 if fresh or s[i - 1] > h else s[i - 1]
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


def _switch_to(alerts: pd.DataFrame, counts: pd.DataFrame, *, by: list[str], min_messages: int,
               switch_pp: float) -> pd.DataFrame:
    """Add the best-delivering healthy vendor for each alert's group and period; where a
    switch was advised but every vendor dropped, the fault is the carrier's."""
    where = [k for k in by if k not in ("vendor", "channel")]
    alt = counts.groupby([*where, "period", "vendor"], dropna=False, sort=False)[["submitted", "delivered"]].sum()
    alt = alt.reset_index().assign(switch_to_arrival=lambda f: f["delivered"] / f["submitted"])
    alt = alt[alt["submitted"] >= max(1, min_messages // 2)].rename(columns={"vendor": "switch_to"})
    alt = alt.drop(columns=["submitted", "delivered"])
    a = alerts.reset_index(drop=True).astype({k: object for k in where})
    a["_row"] = np.arange(len(a))
    m = merge_on(a[["_row", *where, "period", *(["vendor"] if "vendor" in by else [])]], alt, [*where, "period"])
    if "vendor" in by:
        m = m[m["switch_to"] != m["vendor"].astype(str)]
    m = m.merge(a[["_row", "baseline"]], on="_row")
    vendors = m.groupby("_row").size()  # alerts with other vendors to compare with
    compared = set(vendors[vendors >= (1 if "vendor" in by else 2)].index)
    m = m[m["switch_to_arrival"] >= m["baseline"] - switch_pp / 100]  # only a vendor that did not drop too
    best = m.sort_values(["_row", "switch_to_arrival"], ascending=[True, False]).drop_duplicates("_row")
    out = alerts.reset_index(drop=True)
    pick = best.set_index("_row")
    out["switch_to"] = pick["switch_to"].reindex(range(len(out))).to_numpy()
    out["switch_to_arrival"] = pick["switch_to_arrival"].reindex(range(len(out))).to_numpy()
    nowhere = out["advice"].eq("switch_channel") & out["switch_to"].isna() & np.isin(np.arange(len(out)), list(compared))
    out.loc[nowhere, "advice"] = "carrier_wide"
    return out


# scipy.stats.binom's cdf and ppf from scipy.special (scipy.stats takes half a second to import)
def _binom_cdf(k: np.ndarray, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    from scipy import special

    return special.bdtr(k.astype(np.int64), n.astype(np.int64), p)


def _binom_ppf(q: float, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    from scipy import special

    n = n.astype(np.int64)
    k = np.ceil(special.bdtrik(q, n, p))
    below = np.maximum(k - 1, 0)
    return np.where(special.bdtr(below.astype(np.int64), n, p) >= q, below, k)
