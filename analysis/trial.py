"""The three-stage channel trial, scored vendor by vendor (DESIGN.md section 6).

* **basic**: at least 10 numbers across China Mobile, China Unicom, China Telecom and a
  virtual operator; every message within 10 minutes; arrival at least 98%;
* **stress**: at least three rounds at peak times; round-to-round arrival within 5 points;
  latency that does not blow up;
* **scenario**: verification, marketing and notification arrival alike (chi-square test of
  homogeneity, or the exact Freeman-Halton test when a cell expects fewer than 5);
* **resend honesty**: first-attempt arrival beside after-resend arrival.

Every verdict carries its evidence: the 95% lower bound, and where the sample is too small
to show the threshold, the number of messages that would be needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import special

from .measures import (
    TARGET,
    arrival_rates,
    latency_seconds,
    peak_windows,
    wilson_interval,
    with_rounds,
)

STAGES = ("basic", "stress", "scenario")
BASIC_CARRIERS = ("China Mobile", "China Unicom", "China Telecom", "Virtual")
SCENARIOS = ("verification", "notification", "marketing")

COLUMNS = ["vendor", "stage", "criterion", "value", "threshold", "passed", "low", "high", "messages",
           "evidence", "needed", "note"]


def messages_needed(threshold: float = TARGET, *, rate: float = 1.0, confidence: float = 0.95) -> float:
    """Smallest number of messages whose Wilson lower bound reaches ``threshold`` when the
    observed arrival is ``rate``; ``inf`` when ``rate`` does not exceed the threshold.

    Examples
    --------
    >>> messages_needed(0.98)          # every message arriving
    189
    >>> messages_needed(0.98, rate=0.995)
    335
    """
    if rate <= threshold:
        return math.inf
    z = float(special.ndtri(0.5 + confidence / 2))
    lo, hi = 1, 1
    while _lower(rate, hi, z) < threshold:
        lo, hi = hi, hi * 2
        if hi > 10**9:
            return math.inf
    while lo < hi:  # the bound rises with n at a fixed rate: bisect
        mid = (lo + hi) // 2
        if _lower(rate, mid, z) >= threshold:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _lower(rate: float, n: int, z: float) -> float:
    low, _ = wilson_interval(rate * n, n, z=z)
    return float(low)


def plan_trial(
    *,
    threshold: float = TARGET,
    expected: float = 0.995,
    confidence: float = 0.95,
    carriers: Sequence[str] = BASIC_CARRIERS,
) -> pd.DataFrame:
    """Messages per carrier a trial needs to show ``threshold`` with ``confidence``.

    Returns
    -------
    DataFrame, one row per carrier: ``carrier``, ``threshold``, ``confidence``,
    ``expected`` (the arrival assumed), ``messages_needed`` (at that arrival; missing when
    it does not exceed the threshold), ``all_arrive_needed`` (if every message arrives:
    the least any trial can send).
    """
    need = messages_needed(threshold, rate=expected, confidence=confidence)
    need = need if np.isfinite(need) else np.nan
    best = messages_needed(threshold, rate=1.0, confidence=confidence)
    return pd.DataFrame({
        "carrier": list(carriers), "threshold": threshold, "confidence": confidence, "expected": expected,
        "messages_needed": need, "all_arrive_needed": best,
    })


TRIAL_COLUMNS = {"stage": ("stage", "阶段", "测试阶段"), "round": ("round", "轮次"), "scenario": ("scenario", "场景")}


def load_trial(paths, **load) -> pd.DataFrame:
    """Read trial send logs (any layout :func:`analysis.load_inputs` reads), keeping the
    ``stage``, ``round`` and ``scenario`` columns a trial export may carry (joined back by
    message id)."""
    from .events import load_inputs
    from .readers import LoadError
    from .readers._files import read_raw

    if paths is None or (not isinstance(paths, (str, Path)) and not len(paths)):
        raise LoadError("no trial logs given (the demo's is written by `make demo`: data/raw/demo-trial)")
    data = load_inputs(paths, **load)
    log = data.log
    extra = []
    for path in data.files:
        if path.is_dir():
            continue
        frame = read_raw(path).frame
        lower = {str(c).strip().lower(): c for c in frame.columns}
        ids = next((lower[k] for k in ("message_id", "消息id", "sid", "messageid", "bizid") if k in lower), None)
        found = {name: lower[s] for name, spellings in TRIAL_COLUMNS.items() for s in spellings if s in lower}
        if ids is not None and found:
            part = frame[[ids, *found.values()]].rename(columns={ids: "message_id", **{v: k for k, v in found.items()}})
            extra.append(part.astype(str).replace({"": None, "nan": None, "<NA>": None}))
    if extra:
        cols = pd.concat(extra, ignore_index=True).drop_duplicates("message_id", keep="last")
        log = log.merge(cols, on="message_id", how="left", validate="many_to_one")
        if "round" in log:
            log["round"] = pd.to_numeric(log["round"], errors="coerce").astype("Int64")
    return log


def trial_stages(log: pd.DataFrame) -> pd.Series:
    """Each message's trial stage: the ``stage`` column where given, else inferred:
    sends in a peak window (:func:`analysis.peak_windows`) are ``stress``, other
    verification codes ``basic``, the rest ``scenario``."""
    if "stage" in log and log["stage"].notna().all():
        return log["stage"].astype(str).str.lower()
    peak = peak_windows(log).astype(str).ne("off_peak").to_numpy()
    verification = log["category"].astype(object).eq("verification").to_numpy(dtype=bool)
    inferred = np.where(peak, "stress", np.where(verification, "basic", "scenario"))
    given = log["stage"].astype(object).str.lower() if "stage" in log else pd.Series(None, index=log.index, dtype=object)
    return given.where(given.notna(), pd.Series(inferred, index=log.index))


def trial_scorecard(
    log: pd.DataFrame,
    *,
    threshold: float = TARGET,
    within: str = "10min",
    min_numbers: int = 10,
    max_spread_pp: float = 5.0,
    min_rounds: int = 3,
    latency_factor: float = 2.0,
    alpha: float = 0.05,
    max_resend_gap: float = 0.02,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Score a channel trial, one row per vendor × criterion (thresholds are parameters).

    Returns
    -------
    DataFrame sorted by vendor, then the criteria in order:

    * ``vendor``, ``stage`` (basic / stress / scenario / resend), ``criterion``;
    * ``value`` and ``threshold`` (their meaning per criterion is in ``note``), ``passed``;
    * ``low``, ``high``: 95% interval of a rate criterion; ``messages``: sample size;
    * ``evidence``: ``conclusive`` when the interval lies on one side of the threshold,
      ``too small`` when the sample cannot show it, ``test`` for a significance test;
    * ``needed``: messages that would make a rate verdict conclusive at the observed rate
      (missing when no sample can: the observed rate is at or below the threshold);
    * ``note``: what was measured, in words (the missing carriers, the lagging category …).

    Criteria: ``numbers``, ``carriers``, ``within_10min``, ``arrival`` (basic);
    ``rounds``, ``round_spread``, ``latency`` (stress); ``homogeneity`` (scenario);
    ``resend_gap`` (resend).
    """
    z = float(special.ndtri(0.5 + confidence / 2))
    stage = trial_stages(log)
    rows: list[dict] = []
    for vendor, part in log.groupby(log["vendor"].astype(str), sort=True):
        st = stage.loc[part.index]
        rows += _basic(vendor, part[st.eq("basic").to_numpy()], threshold, within, min_numbers, z)
        rows += _stress(vendor, part[st.eq("stress").to_numpy()], max_spread_pp, min_rounds, latency_factor, alpha)
        rows += _scenario(vendor, part[st.ne("stress").to_numpy()], alpha)
        rows += _resend(vendor, part, max_resend_gap)
    return pd.DataFrame(rows, columns=COLUMNS)


def _rate_row(vendor, stage, criterion, k, n, threshold, z, note) -> dict:
    low, high = (float(x) for x in wilson_interval(k, n, z=z)) if n else (np.nan, np.nan)
    value = k / n if n else np.nan
    passed = bool(n) and value >= threshold
    if threshold >= 1:  # "every message": a count, shown with its lower bound
        evidence, needed = "count", np.nan
        if n:
            note += f"; lower bound {low:.1%}"
    elif not n:
        evidence, needed = "too small", messages_needed(threshold, rate=1.0, confidence=2 * special.ndtr(z) - 1)
    elif low >= threshold or high < threshold:
        evidence, needed = "conclusive", np.nan
    else:
        evidence = "too small"
        needed = messages_needed(threshold, rate=value, confidence=2 * special.ndtr(z) - 1)
    if evidence == "too small" and np.isfinite(needed):
        note += f"; lower bound {low:.1%} cannot show {threshold:.0%}: about {int(needed)} messages needed"
    elif evidence == "too small" and n:
        note += f"; lower bound {low:.1%}, and at {value:.1%} no sample can show {threshold:.0%}"
    return {"vendor": vendor, "stage": stage, "criterion": criterion, "value": value, "threshold": threshold,
            "passed": passed, "low": low, "high": high, "messages": int(n), "evidence": evidence,
            "needed": needed if np.isfinite(needed) else np.nan, "note": note}


def _basic(vendor, part, threshold, within, min_numbers, z) -> list[dict]:
    numbers = int(part["phone"].nunique())
    carriers = part["carrier"].astype(object).dropna().astype(str)
    covered = {c for c in BASIC_CARRIERS if c != "Virtual" and c in set(carriers)}
    if carriers.str.startswith("Virtual").any():
        covered.add("Virtual")
    missing = [c for c in BASIC_CARRIERS if c not in covered]
    ok = part["status"].astype(object).eq("delivered").to_numpy(dtype=bool)
    fast = ok & (latency_seconds(part) <= pd.Timedelta(within).total_seconds())
    n = len(part)
    base = {"vendor": vendor, "stage": "basic", "low": np.nan, "high": np.nan, "evidence": "count", "needed": np.nan}
    return [
        {**base, "criterion": "numbers", "value": numbers, "threshold": min_numbers, "passed": numbers >= min_numbers,
         "messages": n, "note": f"{numbers} distinct numbers"},
        {**base, "criterion": "carriers", "value": len(covered), "threshold": len(BASIC_CARRIERS),
         "passed": not missing, "messages": n,
         "note": "all four carrier kinds" if not missing else "missing: " + ", ".join(missing)},
        _rate_row(vendor, "basic", "within_10min", int(fast.sum()), n, 1.0, z,
                  f"{int(fast.sum())} of {n} arrived within {within}"),
        _rate_row(vendor, "basic", "arrival", int(ok.sum()), n, threshold, z, f"{int(ok.sum())} of {n} delivered"),
    ]


def _stress(vendor, part, max_spread_pp, min_rounds, latency_factor, alpha) -> list[dict]:
    base = {"vendor": vendor, "stage": "stress", "low": np.nan, "high": np.nan, "needed": np.nan}
    if part.empty:
        note = "no stress sends (none at peak times and no stage column)"
        return [{**base, "criterion": c, "value": np.nan, "threshold": t, "passed": False, "messages": 0,
                 "evidence": "too small", "note": note}
                for c, t in (("rounds", min_rounds), ("round_spread", max_spread_pp), ("latency", latency_factor))]
    rounds = arrival_rates(with_rounds(part, by=["vendor"]), by=["round"])
    starts = with_rounds(part, by=["vendor"]).groupby("round")["submit_time"].min().sort_values()
    gaps = starts.diff().dropna().dt.total_seconds() / 60
    n_rounds = len(rounds)
    spread = 100 * (rounds["arrival_rate"].max() - rounds["arrival_rate"].min())
    table = np.vstack([rounds["delivered"], rounds["submitted"] - rounds["delivered"]]).T
    p = _homogeneity(table) if n_rounds > 1 else np.nan
    first, last = rounds["latency_p50_s"].iloc[0], rounds["latency_p50_s"].iloc[-1]
    factor = last / first if first and first > 0 else np.nan
    gap_note = ", ".join(f"{g:.0f}" for g in gaps) + " min apart" if len(gaps) else "one round"
    rates = ", ".join(f"{r:.1%}" for r in rounds["arrival_rate"])
    return [
        {**base, "criterion": "rounds", "value": n_rounds, "threshold": min_rounds, "passed": n_rounds >= min_rounds,
         "messages": int(rounds["submitted"].sum()), "evidence": "count", "note": gap_note},
        {**base, "criterion": "round_spread", "value": spread, "threshold": max_spread_pp,
         "passed": bool(n_rounds > 1 and spread <= max_spread_pp), "messages": int(rounds["submitted"].sum()),
         "evidence": "test", "note": f"arrival per round {rates}; homogeneity p = {p:.3g}"
         + ("" if np.isnan(p) or p >= alpha else " (the rounds differ)")},
        {**base, "criterion": "latency", "value": factor, "threshold": latency_factor,
         "passed": bool(np.isfinite(factor) and factor <= latency_factor), "messages": int(rounds["submitted"].sum()),
         "evidence": "count", "note": f"median latency {first:.0f} s in the first round, {last:.0f} s in the last"},
    ]


def _scenario(vendor, part, alpha) -> list[dict]:
    cats = part["category"].astype(object)
    ok = part["status"].astype(object).eq("delivered").to_numpy(dtype=bool)
    rows = []
    for c in SCENARIOS:
        m = cats.eq(c).to_numpy(dtype=bool)
        if m.any():
            rows.append((c, int(ok[m].sum()), int(m.sum())))
    base = {"vendor": vendor, "stage": "scenario", "criterion": "homogeneity", "threshold": alpha, "low": np.nan,
            "high": np.nan, "needed": np.nan, "messages": sum(r[2] for r in rows)}
    missing = [c for c in SCENARIOS if c not in {r[0] for r in rows}]
    if len(rows) < 2:
        return [{**base, "value": np.nan, "passed": False, "evidence": "too small",
                 "note": "needs at least two of: " + ", ".join(SCENARIOS)}]
    table = np.array([[k, n - k] for _, k, n in rows])
    expected_small = _expected(table).min() < 5
    p = _exact_homogeneity(table) if expected_small else _homogeneity(table)
    lag = min(rows, key=lambda r: r[1] / r[2])
    rates = ", ".join(f"{c} {k / n:.1%} ({n})" for c, k, n in rows)
    note = f"{rates}; {'exact' if expected_small else 'chi-square'} p = {p:.3g}"
    if p < alpha:
        note += f"; {lag[0]} lags"
    if missing:
        note += "; not tested: " + ", ".join(missing)
    return [{**base, "value": p, "passed": bool(p >= alpha and not missing), "evidence": "test", "note": note}]


def _resend(vendor, part, max_gap) -> list[dict]:
    r = arrival_rates(part, by=[]).iloc[0]
    gap = float(r["resend_gap"]) if pd.notna(r["resend_gap"]) else np.nan
    return [{"vendor": vendor, "stage": "resend", "criterion": "resend_gap", "value": gap, "threshold": max_gap,
             "passed": bool(np.isfinite(gap) and gap <= max_gap), "low": np.nan, "high": np.nan,
             "messages": int(r["originals"]), "evidence": "count", "needed": np.nan,
             "note": f"first attempt {r['first_attempt_rate']:.1%}, after resends {r['after_resend_rate']:.1%}"
             + (" (silent resends inflate the reported arrival)" if gap > max_gap else "")}]


def _expected(table: np.ndarray) -> np.ndarray:
    return np.outer(table.sum(axis=1), table.sum(axis=0)) / max(table.sum(), 1)


def _homogeneity(table: np.ndarray) -> float:
    table = table[table.sum(axis=1) > 0]
    if (table.sum(axis=0) == 0).any() or len(table) < 2:
        return 1.0
    from scipy import stats

    return float(stats.chi2_contingency(table, correction=False)[1])


def _exact_homogeneity(table: np.ndarray) -> float:
    """Freeman-Halton exact test of a k × 2 table (successes, failures): the probability,
    under equal rates, of a table no more likely than the one observed."""
    n = table.sum(axis=1)
    k_total = int(table[:, 0].sum())
    observed = _log_prob(table[:, 0], n, k_total)
    total = 0.0
    for ks in _splits(k_total, n):
        lp = _log_prob(ks, n, k_total)
        if lp <= observed + 1e-9:
            total += math.exp(lp)
    return float(min(1.0, total))


def _splits(k: int, n: np.ndarray):
    if len(n) == 1:
        if 0 <= k <= n[0]:
            yield (k,)
        return
    for first in range(max(0, k - int(n[1:].sum())), min(k, int(n[0])) + 1):
        for rest in _splits(k - first, n[1:]):
            yield (first, *rest)


def _log_prob(ks, n, k_total) -> float:
    from scipy.special import gammaln

    def log_comb(a, b):
        return gammaln(a + 1) - gammaln(b + 1) - gammaln(a - b + 1)

    return float(sum(log_comb(int(ni), int(ki)) for ni, ki in zip(n, ks, strict=True))
                 - log_comb(int(n.sum()), k_total))


def customer_concentration(
    volumes: pd.DataFrame, *, top: float = 0.10, healthy: float = 0.30, inverted_above: float = 0.50
) -> pd.DataFrame:
    """Platform due diligence: how much of a vendor's volume its biggest customers carry.

    Parameters
    ----------
    volumes : one row per customer with a ``volume`` column (and optionally ``vendor``).
    top : the share of customers that forms the head (default the top 10%).
    healthy : the head's share of volume on a healthy platform (about 30%).
    inverted_above : above this share the pyramid is inverted: a few customers carry
        most of the volume, and the platform stands or falls with them.

    Returns
    -------
    DataFrame, one row per vendor (one row without a ``vendor`` column): ``customers``,
    ``head_customers``, ``volume``, ``head_share``, ``healthy_share``, ``inverted``,
    ``note``.
    """
    if "volume" not in volumes:
        raise ValueError("customer volumes need a 'volume' column (one row per customer)")
    groups = volumes.groupby("vendor", sort=True) if "vendor" in volumes else [("all", volumes)]
    rows = []
    for vendor, part in groups:
        v = np.sort(pd.to_numeric(part["volume"], errors="coerce").fillna(0).to_numpy())[::-1]
        head = max(1, math.ceil(top * len(v)))
        share = float(v[:head].sum() / v.sum()) if v.sum() else np.nan
        inverted = bool(share > inverted_above)
        note = (f"inverted pyramid: the top {top:.0%} of customers carry {share:.0%} of volume (healthy: about "
                f"{healthy:.0%})" if inverted else f"the top {top:.0%} of customers carry {share:.0%} of volume")
        rows.append({"vendor": vendor, "customers": len(v), "head_customers": head, "volume": float(v.sum()),
                     "head_share": share, "healthy_share": healthy, "inverted": inverted, "note": note})
    return pd.DataFrame(rows)
