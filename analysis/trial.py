"""The three-stage channel trial, scored vendor by vendor (README, *Channel trial, alerts, wording and send windows*).

* **basic**: at least 10 numbers across China Mobile, China Unicom, China Telecom and a
  virtual operator; at least 99% of the delivered messages within 10 minutes; first-attempt
  arrival at least 98%;
* **stress**: at least three rounds at peak times; rounds shown alike within 5 points
  (two one-sided tests on every pair of rounds); latency that does not blow up;
* **scenario**: verification, marketing and notification arrival equivalent (two
  one-sided tests against a margin) and each at the threshold;
* **resend honesty**: the share of originals that only a resend delivered, at most 2 points;
* **head to head**: the vendors against each other (pairwise tests, Holm-adjusted).

One evidence rule everywhere: a rate passes a threshold when its 95% Wilson lower bound
reaches it and fails when its upper bound is below; a difference passes a margin when its
90% Newcombe interval lies within it (two one-sided tests at 5%). Every verdict is pass,
fail or insufficient and carries its evidence: the interval, and where the sample is too
small to tell, the number of messages that would be needed. The rules are functions of
counts (:func:`rate_verdict`, :func:`parity_verdict`, :func:`spread_verdict`,
:func:`gap_verdict`, :func:`head_to_head`), which ``benchmarks/bench_rules.py`` checks at
their boundaries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import special

from .kernel import peak_windows, row_flags
from .measures import TARGET, arrival_rates, with_rounds
from .stats import holm, newcombe_interval, wilson_interval

STAGES = ("basic", "stress", "scenario")
BASIC_CARRIERS = ("China Mobile", "China Unicom", "China Telecom", "Virtual")
SCENARIOS = ("verification", "notification", "marketing")

COLUMNS = ["vendor", "stage", "criterion", "value", "threshold", "unit", "verdict", "low", "high", "messages",
           "needed", "note"]


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
    ci = 1 - confidence  # the intervals' significance level
    lo, hi = 1, 1
    while _lower(rate, hi, ci) < threshold:
        lo, hi = hi, hi * 2
        if hi > 10**9:
            return math.inf
    while lo < hi:  # the bound rises with n at a fixed rate: bisect
        mid = (lo + hi) // 2
        if _lower(rate, mid, ci) >= threshold:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _lower(rate: float, n: int, alpha: float) -> float:
    return float(wilson_interval(rate * n, n, alpha=alpha).low)


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
    from .readers import LoadError, read_raw

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


#: Verdicts: a criterion passes, fails, or its sample cannot tell.
VERDICTS = ("pass", "fail", "insufficient")

#: The scorecard's notes: ``key: (zh, en)`` format strings.
NOTES = {
    "numbers": ("{n} 个不同号码", "{n} distinct numbers"),
    "carriers_all": ("四类运营商齐全", "all four carrier kinds"),
    "carriers_missing": ("缺少：{missing}", "missing: {missing}"),
    "within": ("{fast:,}/{n:,} 条成功短信在 10 分钟内到达（95% 区间 {low:.1%}–{high:.1%}，要求至少 {share:.0%}；"
               "{coverage:.0%} 的成功短信有回执时间）",
               "{fast:,} of {n:,} delivered messages arrived within 10 minutes (95% interval {low:.1%}–{high:.1%}, "
               "at least {share:.0%} required; receipt times for {coverage:.0%})"),
    "within_none": ("没有带回执时间的成功短信，无法判断速度", "no delivered message has a receipt time: speed unknown"),
    "arrival": ("首发 {k:,}/{n:,} 成功（{rate:.1%}，95% 区间 {low:.1%}–{high:.1%}），补发后 {after:.1%}",
                "first attempt {k:,} of {n:,} delivered ({rate:.1%}, 95% interval {low:.1%}–{high:.1%}), "
                "after resends {after:.1%}"),
    "needed": ("；样本不足以证明 {threshold:.0%}：约需 {needed:,} 条",
               "; too few to show {threshold:.0%}: about {needed:,} messages needed"),
    "never": ("；按 {rate:.1%} 的到达率，任何样本都无法证明 {threshold:.0%}",
              "; at {rate:.1%} no sample can show {threshold:.0%}"),
    "no_messages": ("没有该阶段的发送", "no messages in this stage"),
    "no_stress": ("没有压力测试发送（无高峰时段发送，也无阶段列）",
                  "no stress sends (none at peak times and no stage column)"),
    "rounds": ("{n} 轮，间隔 {gaps} 分钟", "{n} rounds, {gaps} minutes apart"),
    "one_round": ("只有一轮", "one round"),
    "spread": ("各轮首发到达率 {rates}；差异检验 p = {p}", "first-attempt arrival per round {rates}; test of difference p = {p}"),
    "spread_fail": ("；各轮差异显著且超过 {max:.0f} 个百分点", "; the rounds differ significantly and by more than {max:.0f} points"),
    "spread_needed": ("；样本不足以证明各轮相差不超过 {max:.0f} 个百分点：每轮约需 {needed:,} 条",
                      "; too few to show the rounds within {max:.0f} points: about {needed:,} messages per round "
                      "needed"),
    "spread_alike": ("；各轮两两相差的 90% 区间均在 ±{max:.0f} 个百分点内",
                     "; every pair of rounds within ±{max:.0f} points (90% intervals)"),
    "latency": ("首轮时延中位数 {first:.0f} 秒，末轮 {last:.0f} 秒",
                "median latency {first:.0f} s in the first round, {last:.0f} s in the last"),
    "latency_none": ("没有回执时间，无法比较时延", "no receipt times: latency cannot be compared"),
    "parity": ("首发到达率 {rates}；与其余类别的最大差 {diff:.1f} 个百分点（等效界限 ±{margin:.0f}）",
               "first-attempt arrival {rates}; largest difference from the rest {diff:.1f} points "
               "(equivalence margin ±{margin:.0f})"),
    "parity_below": ("；低于 {threshold:.0%}：{cats}", "; below {threshold:.0%}: {cats}"),
    "parity_apart": ("；明显不同：{cats}", "; clearly different: {cats}"),
    "parity_unsure": ("；样本不足以证明各类别一致", "; too few to show the categories alike"),
    "parity_missing": ("；未测试：{missing}", "; not tested: {missing}"),
    "parity_not_shown": ("；样本不足以证明达到 {threshold:.0%}：{cats}", "; too few to show {threshold:.0%}: {cats}"),
    "parity_few": ("至少需要两类：{cats}", "needs at least two of: {cats}"),
    "resend": ("首发 {first:.1%}，补发后 {after:.1%}：{gained:,}/{n:,} 条原始短信靠补发才送达（95% 区间 {low:.1%}–{high:.1%}）",
               "first attempt {first:.1%}, after resends {after:.1%}: {gained:,} of {n:,} originals delivered only by "
               "a resend (95% interval {low:.1%}–{high:.1%})"),
    "resend_inflated": ("（静默补发抬高了平台报告的到达率）", " (silent resends inflate the reported arrival)"),
    "resend_needed": ("；样本不足以证明补发虚增不超过 {max:.0%}：约需 {needed:,} 条原始短信",
                      "; too few to show the inflation within {max:.0%}: about {needed:,} originals needed"),
    "resend_never": ("；按当前补发比例，任何样本都无法证明不超过 {max:.0%}",
                     "; at this share no sample can show it within {max:.0%}"),
    "h2h": ("首发到达率 {rate:.1%}（{k:,}/{n:,}），{m} 家平台中排第 {rank}",
            "first-attempt arrival {rate:.1%} ({k:,} of {n:,}), rank {rank} of {m}"),
    "h2h_alone": ("；没有其他平台可比较", "; no other vendor to compare with"),
    "h2h_worse": ("；明显不如 {other}（多重比较校正后 p = {p}）", "; clearly behind {other} (Holm-adjusted p = {p})"),
    "h2h_unsure": ("；样本不足以证明与其他平台相差不超过 {margin:.0f} 个百分点",
                   "; too few to show it within {margin:.0f} points of every other vendor"),
    "concentration": ("前 {top:.0%} 的客户贡献 {share:.0%} 的发送量", "the top {top:.0%} of customers carry {share:.0%} of volume"),
    "inverted": ("倒金字塔：前 {top:.0%} 的客户贡献 {share:.0%} 的发送量（健康约 {healthy:.0%}）",
                 "inverted pyramid: the top {top:.0%} of customers carry {share:.0%} of volume (healthy: about "
                 "{healthy:.0%})"),
}


def _note(key: str, lang: str, **values) -> str:
    return NOTES[key][0 if lang == "zh" else 1].format(**values)


def _names(keys, lang: str) -> str:
    from .schema import label

    return ("、" if lang == "zh" else ", ").join(label(k, lang) for k in keys)


def trial_scorecard(
    log: pd.DataFrame,
    *,
    threshold: float = TARGET,
    within: str = "10min",
    within_share: float = 0.99,
    min_numbers: int = 10,
    max_spread_pp: float = 5.0,
    min_rounds: int = 3,
    latency_factor: float = 2.0,
    margin_pp: float = 3.0,
    alpha: float = 0.05,
    power: float = 0.8,
    max_resend_gap: float = 0.02,
    confidence: float = 0.95,
    lang: str = "zh",
) -> pd.DataFrame:
    """Score a channel trial, one row per vendor × criterion (thresholds are parameters).

    Every verdict is ``pass``, ``fail`` or ``insufficient`` (the sample cannot tell), and
    agrees with its evidence, by one rule: a rate passes only when its 95% Wilson lower
    bound reaches the threshold and fails only when its upper bound is below it; a
    difference passes a margin only when its 90% Newcombe interval lies within it (two
    one-sided tests at ``alpha``).

    * **numbers**, **carriers** (basic): distinct numbers ≥ ``min_numbers``; all four
      carrier kinds (China Mobile, Unicom, Telecom, a virtual operator).
    * **within_10min** (basic): the share of *delivered* messages with a receipt time
      that reached the recipient within ``within`` of their original submission, across
      attempts, against ``within_share`` (99%: "every message within 10 minutes" as it
      is meant in practice; failures are judged by arrival; the receipt-time coverage is
      in the note).
    * **arrival** (basic): first-attempt arrival (originals delivered on attempt 1 /
      originals; after-resend arrival in the note) against ``threshold``.
    * **rounds**, **round_spread**, **latency** (stress): at least ``min_rounds`` rounds;
      the rounds' first-attempt arrival fails when it differs significantly (chi-square,
      exact when small) *and* by more than ``max_spread_pp`` points, passes when every
      pair of rounds is shown within ±``max_spread_pp`` points, else insufficient (with
      the messages per round that would show it with ``power``); the last round's median
      latency over the first's ≤ ``latency_factor``.
    * **scenario_parity** (scenario): verification, notification and marketing alike:
      each category's first-attempt arrival against the others' within ±``margin_pp``
      points, and every category at ``threshold`` (lower bound). Fail when a category's
      upper bound is below the threshold or its difference lies wholly outside the
      margin (95% interval).
    * **resend_gap** (resend): the originals delivered only by a resend, as a share of
      the originals (after-resend minus first-attempt arrival, in counts), against
      ``max_resend_gap``: pass when its upper bound is at most that, fail when its lower
      bound is above.
    * **head_to_head** (compare): first-attempt arrival over the whole trial against the
      other vendors': fail when another vendor is significantly better (Fisher's exact
      test, Holm-adjusted over the pairs), pass when shown no more than ``margin_pp``
      points behind every other; the value is the vendor's rank (1 the best).

    Returns
    -------
    DataFrame sorted by vendor, then the criteria in order: ``vendor``, ``stage`` (basic
    / stress / scenario / resend / compare), ``criterion``, ``value`` and ``threshold`` in
    ``unit`` (``count``, ``rate``, ``points``, ``factor``, ``rank``), ``verdict``, ``low`` /
    ``high`` (95% interval of a rate), ``messages`` (the sample), ``needed`` (messages, or
    messages per round, that would make an insufficient verdict conclusive; missing when
    no sample can), ``note`` (what was measured, in ``lang``).
    """
    ci = 1 - confidence  # the intervals' significance level
    stage = trial_stages(log)
    rows: list[dict] = []
    for vendor, part in log.groupby(log["vendor"].astype(str), sort=True):
        st = stage.loc[part.index]
        rows += _basic(vendor, part[st.eq("basic").to_numpy()], threshold, within, within_share, min_numbers, ci,
                       lang)
        rows += _stress(vendor, part[st.eq("stress").to_numpy()], max_spread_pp, min_rounds, latency_factor, alpha,
                        power, lang)
        rows += _scenario(vendor, part[st.ne("stress").to_numpy()], threshold, margin_pp, alpha, ci, lang)
        rows += _resend(vendor, part, max_resend_gap, ci, lang)
    rows = _head_to_head(log, rows, margin_pp, alpha, ci, lang)
    return pd.DataFrame(rows, columns=COLUMNS)


def _head_to_head(log, rows, margin_pp, alpha, ci, lang) -> list[dict]:
    """The head-to-head row of every vendor, after its own rows."""
    r = _first_attempt(log.assign(vendor=log["vendor"].astype(str)), ["vendor"])
    k, n = r["first_ok"].to_numpy(), r["originals"].to_numpy()
    h = head_to_head(k, n, margin=margin_pp / 100, alpha=alpha)
    names = r["vendor"].tolist()
    out: list[dict] = []
    for vendor in dict.fromkeys(row["vendor"] for row in rows):
        out += [row for row in rows if row["vendor"] == vendor]
        i = names.index(vendor)
        low, high = (float(x) for x in wilson_interval(k[i], n[i], alpha=ci))
        note = _note("h2h", lang, rank=int(h.rank[i]), m=len(names), rate=k[i] / n[i], k=int(k[i]), n=int(n[i]))
        if len(names) < 2:
            note += _note("h2h_alone", lang)
        elif h.verdict[i] == "fail":
            note += _note("h2h_worse", lang, other=_names([names[h.worse_than[i]]], lang), p=_p_text(h.pvalue[i]))
        elif h.verdict[i] == "insufficient":
            note += _note("h2h_unsure", lang, margin=margin_pp)
        out.append(_row(vendor, "compare", "head_to_head", int(h.rank[i]), 1, "rank", h.verdict[i], note,
                        messages=int(n[i]), low=low, high=high))
    return out


def _row(vendor, stage, criterion, value, threshold, unit, verdict, note, *, messages=0, low=np.nan, high=np.nan,
         needed=np.nan) -> dict:
    return {"vendor": vendor, "stage": stage, "criterion": criterion, "value": value, "threshold": threshold,
            "unit": unit, "verdict": verdict, "low": low, "high": high, "messages": int(messages),
            "needed": needed if np.isfinite(needed) else np.nan, "note": note}


def _first_attempt(part: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Originals and those delivered on the first attempt, per group."""
    r = arrival_rates(part, by=by)
    return r.assign(first_ok=(r["first_attempt_rate"] * r["originals"]).round().fillna(0).astype(int))


def _basic(vendor, part, threshold, within, within_share, min_numbers, ci, lang) -> list[dict]:
    numbers = int(part["phone"].nunique())
    carriers = part["carrier"].astype(object).dropna().astype(str)
    covered = {c for c in BASIC_CARRIERS if c != "Virtual" and c in set(carriers)}
    if carriers.str.startswith("Virtual").any():
        covered.add("Virtual")
    missing = [c for c in BASIC_CARRIERS if c not in covered]
    n = len(part)
    rows = [
        _row(vendor, "basic", "numbers", numbers, min_numbers, "count", "pass" if numbers >= min_numbers else "fail",
             _note("numbers", lang, n=numbers), messages=n),
        _row(vendor, "basic", "carriers", len(covered), len(BASIC_CARRIERS), "count", "fail" if missing else "pass",
             _note("carriers_missing", lang, missing=_names(missing, lang)) if missing
             else _note("carriers_all", lang), messages=n),
    ]
    flags = row_flags(part)  # what the recipient waited: from the original's submission, across attempts
    seconds = flags["recipient_latency"]
    timed = np.isfinite(seconds)
    fast = int((timed & (seconds <= pd.Timedelta(within).total_seconds())).sum())
    k, delivered = int(timed.sum()), int(flags["any_ok"].sum())
    if k:
        low, high = (float(x) for x in wilson_interval(fast, k, alpha=ci))
        verdict = rate_verdict(fast, k, within_share, alpha=ci)
        note = _note("within", lang, fast=fast, n=k, coverage=k / max(delivered, 1), low=low, high=high,
                     share=within_share)
        needed = np.nan
        if verdict == "insufficient":
            needed = messages_needed(within_share, rate=fast / k, confidence=1 - ci)
            note += _note("needed", lang, threshold=within_share, needed=int(needed)) if np.isfinite(needed) \
                else _note("never", lang, rate=fast / k, threshold=within_share)
        rows.append(_row(vendor, "basic", "within_10min", fast / k, within_share, "rate", verdict, note, messages=k,
                         low=low, high=high, needed=needed))
    else:
        rows.append(_row(vendor, "basic", "within_10min", np.nan, within_share, "rate", "insufficient",
                         _note("within_none", lang)))
    if not n:
        rows.append(_row(vendor, "basic", "arrival", np.nan, threshold, "rate", "insufficient",
                         _note("no_messages", lang), needed=messages_needed(threshold, rate=1.0)))
        return rows
    r = _first_attempt(part, []).iloc[0]
    rows.append(_rate_verdict(vendor, "basic", "arrival", int(r["first_ok"]), int(r["originals"]), threshold, ci,
                              lang, after=float(r["after_resend_rate"])))
    return rows


def _rate_verdict(vendor, stage, criterion, k, n, threshold, ci, lang, *, after) -> dict:
    low, high = (float(x) for x in wilson_interval(k, n, alpha=ci))
    rate = k / n
    note = _note("arrival", lang, k=k, n=n, rate=rate, low=low, high=high, after=after)
    needed = np.nan
    verdict = rate_verdict(k, n, threshold, alpha=ci)
    if verdict == "insufficient":
        needed = messages_needed(threshold, rate=rate, confidence=1 - ci)
        note += _note("needed", lang, threshold=threshold, needed=int(needed)) if np.isfinite(needed) \
            else _note("never", lang, rate=rate, threshold=threshold)
    return _row(vendor, stage, criterion, rate, threshold, "rate", verdict, note, messages=n, low=low, high=high,
                needed=needed)


#: Comparisons of rates within this of each other are ties (a gap of exactly 2 points is 2 points).
EPS = 1e-9


def rate_verdict(k, n, threshold: float, *, alpha: float = 0.05) -> str:
    """The evidence rule for a rate against a threshold: ``pass`` when the ``1 − alpha``
    Wilson lower bound of ``k/n`` reaches ``threshold``, ``fail`` when the upper bound is
    below it, else ``insufficient`` (and with no messages).

    Examples
    --------
    >>> rate_verdict(1970, 2000, 0.98), rate_verdict(1990, 2000, 0.98), rate_verdict(10, 10, 0.98)
    ('insufficient', 'pass', 'insufficient')
    """
    if not n:
        return "insufficient"
    low, high = (float(x) for x in wilson_interval(k, n, alpha=alpha))
    return "pass" if low >= threshold - EPS else "fail" if high < threshold - EPS else "insufficient"


def gap_verdict(gained, n, max_gap: float, *, alpha: float = 0.05) -> str:
    """Resend honesty: ``gained`` of ``n`` originals delivered only by a resend (the
    after-resend arrival less the first-attempt arrival, in counts). ``pass`` when the
    gap's upper bound is at most ``max_gap``, ``fail`` when its lower bound is above it.

    Examples
    --------
    >>> gap_verdict(0, 500, 0.02), gap_verdict(100, 1000, 0.02), gap_verdict(20, 1000, 0.02)
    ('pass', 'fail', 'insufficient')
    """
    if not n:
        return "insufficient"
    low, high = (float(x) for x in wilson_interval(gained, n, alpha=alpha))
    return "pass" if high <= max_gap + EPS else "fail" if low > max_gap + EPS else "insufficient"


class Parity(NamedTuple):
    """:func:`parity_verdict`'s decision and its parts, one value per category: the
    difference from the other categories pooled, its ``1 − 2·alpha`` Newcombe interval,
    ``equivalent`` (within the margin), ``apart`` (its ``1 − alpha`` interval beyond the
    margin), ``below`` (Wilson upper bound below the threshold), ``at`` (lower bound at
    or above it)."""

    verdict: str
    diff: np.ndarray
    low: np.ndarray
    high: np.ndarray
    equivalent: np.ndarray
    apart: np.ndarray
    below: np.ndarray
    at: np.ndarray


def parity_verdict(k, n, *, threshold: float, margin: float, alpha: float = 0.05, complete: bool = True) -> Parity:
    """Scenario parity of categories with ``k`` first-attempt deliveries of ``n``: each
    category against the others pooled. ``fail`` when a category is below the threshold
    (upper bound) or clearly apart (its 95% interval beyond ``±margin``); ``pass`` when
    every category is equivalent (90% interval within ``±margin``: two one-sided tests at
    ``alpha``), at the threshold (lower bound) and ``complete``; else ``insufficient``.
    """
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    rest_k, rest_n = k.sum() - k, n.sum() - n
    low, high = newcombe_interval(k, n, rest_k, rest_n, alpha=2 * alpha)
    wide_low, wide_high = newcombe_interval(k, n, rest_k, rest_n, alpha=alpha)
    equivalent = (low > -margin + EPS) & (high < margin - EPS)
    apart = (wide_high < -margin - EPS) | (wide_low > margin + EPS)
    bounds = wilson_interval(k, n, alpha=alpha)
    below, at = bounds.high < threshold - EPS, bounds.low >= threshold - EPS
    if below.any() or apart.any():
        verdict = "fail"
    elif equivalent.all() and at.all() and complete:
        verdict = "pass"
    else:
        verdict = "insufficient"
    return Parity(verdict, k / n - rest_k / rest_n, low, high, equivalent, apart, below, at)


def spread_verdict(k, n, *, max_spread: float, alpha: float = 0.05) -> str:
    """Stress rounds with ``k`` first-attempt deliveries of ``n``: ``fail`` when they
    differ significantly (chi-square, exact when small) *and* by more than
    ``max_spread``; ``pass`` when every pair of rounds is shown within ``±max_spread``
    (the 90% Newcombe interval of each difference inside it: two one-sided tests at
    ``alpha``, all of which must hold); else ``insufficient``.
    """
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    if len(n) < 2 or (n == 0).any():
        return "insufficient"
    rates = k / n
    p = _difference_p(np.vstack([k, n - k]).T)
    if p < alpha and rates.max() - rates.min() > max_spread + EPS:
        return "fail"
    i, j = np.triu_indices(len(n), 1)
    low, high = newcombe_interval(k[i], n[i], k[j], n[j], alpha=2 * alpha)
    return "pass" if ((low > -max_spread + EPS) & (high < max_spread - EPS)).all() else "insufficient"


def equivalence_messages_needed(rate: float, margin: float, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """Messages per group for two one-sided tests at ``alpha`` to show two groups of the
    same true ``rate`` within ``±margin`` with ``power`` (normal approximation:
    2·p(1 − p)·(z₁₋α + z₁₋β/2)² / margin²).

    Examples
    --------
    >>> equivalence_messages_needed(0.99, 0.05)
    68
    """
    if margin <= 0:
        return math.inf
    p = min(max(rate, 1e-6), 1 - 1e-6)
    za, zb = special.ndtri(1 - alpha), special.ndtri(1 - (1 - power) / 2)
    return math.ceil(2 * p * (1 - p) * (za + zb) ** 2 / margin**2)


class HeadToHead(NamedTuple):
    """:func:`head_to_head`, one value per vendor: ``rank`` (1 the highest rate),
    ``verdict``, ``pvalue`` (Holm-adjusted, of the comparison with the best vendor
    significantly better than it; NaN where none is), ``worse_than`` (index of that
    vendor, −1)."""

    rank: np.ndarray
    verdict: np.ndarray
    pvalue: np.ndarray
    worse_than: np.ndarray


def head_to_head(k, n, *, margin: float, alpha: float = 0.05) -> HeadToHead:
    r"""The vendors against each other on ``k`` first-attempt deliveries of ``n``: every
    pair by Fisher's exact test, the p-values Holm-adjusted over the pairs. A vendor
    ``fail``\ s when another is significantly better (adjusted p < ``alpha``), and
    ``pass``\ es when it is shown no more than ``margin`` behind every other (the 90%
    Newcombe lower bound of each difference above ``−margin``); else ``insufficient``
    (so with a single vendor).
    """
    from scipy import stats

    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    m = len(n)
    rates = np.where(n > 0, k / np.where(n > 0, n, 1), np.nan)
    rank = pd.Series(-rates).rank(method="min").to_numpy()
    i, j = np.triu_indices(m, 1)
    p = np.array([stats.fisher_exact([[k[a], n[a] - k[a]], [k[b], n[b] - k[b]]])[1] for a, b in zip(i, j, strict=True)])
    adjusted = holm(p)
    verdict = np.full(m, "insufficient", dtype=object)
    pvalue, worse = np.full(m, np.nan), np.full(m, -1)
    low = np.full((m, m), np.inf)
    if len(i):
        lo_ij = newcombe_interval(k[i], n[i], k[j], n[j], alpha=2 * alpha).low
        lo_ji = newcombe_interval(k[j], n[j], k[i], n[i], alpha=2 * alpha).low
        low[i, j], low[j, i] = lo_ij, lo_ji
    for v in range(m):  # a loop over the vendors of one trial (a handful)
        better = [(adjusted[x], b) for x, (a, b) in enumerate(zip(i, j, strict=True)) if a == v and rates[b] > rates[v]]
        better += [(adjusted[x], a) for x, (a, b) in enumerate(zip(i, j, strict=True)) if b == v and rates[a] > rates[v]]
        shown = [(q, u) for q, u in better if q < alpha]
        if shown:
            verdict[v] = "fail"
            pvalue[v], worse[v] = min(shown)
        elif m > 1 and (np.delete(low[v], v) > -margin + EPS).all():
            verdict[v] = "pass"
    return HeadToHead(rank, verdict, pvalue, worse)


def round_messages_needed(rate: float, difference: float, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """Messages per round for a two-sided two-proportion test at ``alpha`` to tell, with
    ``power``, a round ``difference`` below the others' ``rate`` (Fleiss's formula,
    without continuity correction).

    Examples
    --------
    >>> round_messages_needed(0.99, 0.05)
    211
    """
    p1, p2 = min(rate, 1.0), max(rate - difference, 0.0)
    if difference <= 0:
        return math.inf
    mean = (p1 + p2) / 2
    za, zb = special.ndtri(1 - alpha / 2), special.ndtri(power)
    n = (za * math.sqrt(2 * mean * (1 - mean)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / difference**2
    return math.ceil(n)


def _stress(vendor, part, max_spread_pp, min_rounds, latency_factor, alpha, power, lang) -> list[dict]:
    if part.empty:
        note = _note("no_stress", lang)
        return [_row(vendor, "stress", c, np.nan, t, u, "insufficient", note)
                for c, t, u in (("rounds", min_rounds, "count"), ("round_spread", max_spread_pp, "points"),
                                ("latency", latency_factor, "factor"))]
    with_round = part if "round" in part and part["round"].notna().all() else with_rounds(part, by=["vendor"])
    rounds = _first_attempt(with_round, ["round"])
    starts = with_round.groupby("round")["submit_time"].min().sort_values()
    gaps = starts.diff().dropna().dt.total_seconds() / 60
    n_rounds = len(rounds)
    messages = int(rounds["originals"].sum())
    rows = [_row(vendor, "stress", "rounds", n_rounds, min_rounds, "count", "pass" if n_rounds >= min_rounds else "fail",
                 _note("rounds", lang, n=n_rounds, gaps=", ".join(f"{g:.0f}" for g in gaps)) if len(gaps)
                 else _note("one_round", lang), messages=messages)]
    rates = rounds["first_ok"] / rounds["originals"]
    spread = 100 * (rates.max() - rates.min())
    table = np.vstack([rounds["first_ok"], rounds["originals"] - rounds["first_ok"]]).T
    p = _difference_p(table) if n_rounds > 1 else np.nan
    pooled = rounds["first_ok"].sum() / max(messages, 1)
    verdict = spread_verdict(rounds["first_ok"], rounds["originals"], max_spread=max_spread_pp / 100, alpha=alpha)
    note = _note("spread", lang, rates=", ".join(f"{r:.1%}" for r in rates), p=_p_text(p))
    needed = np.nan
    if verdict == "fail":
        note += _note("spread_fail", lang, max=max_spread_pp)
    elif verdict == "pass":
        note += _note("spread_alike", lang, max=max_spread_pp)
    else:
        needed = equivalence_messages_needed(pooled, max_spread_pp / 100, alpha=alpha, power=power)
        note += _note("spread_needed", lang, needed=int(needed), max=max_spread_pp) if np.isfinite(needed) else ""
    rows.append(_row(vendor, "stress", "round_spread", spread, max_spread_pp, "points", verdict, note,
                     messages=messages, needed=needed))
    first, last = rounds["latency_p50_s"].iloc[0], rounds["latency_p50_s"].iloc[-1]
    if np.isfinite(first) and np.isfinite(last) and first > 0:
        factor = last / first
        rows.append(_row(vendor, "stress", "latency", factor, latency_factor, "factor",
                         "pass" if factor <= latency_factor else "fail",
                         _note("latency", lang, first=first, last=last), messages=messages))
    else:
        rows.append(_row(vendor, "stress", "latency", np.nan, latency_factor, "factor", "insufficient",
                         _note("latency_none", lang), messages=messages))
    return rows


def _p_text(p: float) -> str:
    return "—" if not np.isfinite(p) else "< 0.001" if p < 0.001 else f"{p:.3f}"


def _scenario(vendor, part, threshold, margin_pp, alpha, ci, lang) -> list[dict]:
    cats = part.assign(category=part["category"].astype(object))
    cats = cats[cats["category"].isin(SCENARIOS).to_numpy()]
    r = _first_attempt(cats, ["category"]) if len(cats) else pd.DataFrame(columns=["category", "originals", "first_ok"])
    r = r[r["originals"].gt(0)].set_index("category").reindex([c for c in SCENARIOS if c in set(r["category"])])
    missing = [c for c in SCENARIOS if c not in r.index]
    margin = margin_pp / 100
    if len(r) < 2:
        return [_row(vendor, "scenario", "scenario_parity", np.nan, margin_pp, "points", "insufficient",
                     _note("parity_few", lang, cats=_names(SCENARIOS, lang)), messages=int(r["originals"].sum()))]
    k, n = r["first_ok"].to_numpy(dtype=float), r["originals"].to_numpy(dtype=float)
    rate = k / n
    par = parity_verdict(k, n, threshold=threshold, margin=margin, alpha=alpha, complete=not missing)
    note = _note("parity", lang, rates=", ".join(f"{_names([c], lang)} {x:.1%} ({int(m):,})"
                                                 for c, x, m in zip(r.index, rate, n, strict=True)),
                 diff=100 * np.abs(par.diff).max(), margin=margin_pp)
    verdict = par.verdict
    if par.below.any():
        note += _note("parity_below", lang, threshold=threshold, cats=_names(r.index[par.below], lang))
    if par.apart.any():
        note += _note("parity_apart", lang, cats=_names(r.index[par.apart], lang))
    if verdict == "insufficient":
        if not par.equivalent.all():
            note += _note("parity_unsure", lang)
        if not par.at.all():
            note += _note("parity_not_shown", lang, threshold=threshold, cats=_names(r.index[~par.at], lang))
    if missing:
        note += _note("parity_missing", lang, missing=_names(missing, lang))
    return [_row(vendor, "scenario", "scenario_parity", 100 * float(np.abs(par.diff).max()), margin_pp, "points", verdict,
                 note, messages=int(n.sum()))]


def _resend(vendor, part, max_gap, ci, lang) -> list[dict]:
    r = arrival_rates(part, by=[]).iloc[0]
    n = int(r["originals"])
    if not n or not np.isfinite(r["resend_gap"]):
        return [_row(vendor, "resend", "resend_gap", np.nan, max_gap, "rate", "insufficient", _note("no_messages", lang))]
    # in counts: originals delivered on some attempt but not the first (no float rounding at the threshold)
    gained = int(round(r["after_resend_rate"] * n)) - int(round(r["first_attempt_rate"] * n))
    gap = gained / n
    low, high = (float(x) for x in wilson_interval(gained, n, alpha=ci))
    verdict = gap_verdict(gained, n, max_gap, alpha=ci)
    note = _note("resend", lang, first=r["first_attempt_rate"], after=r["after_resend_rate"], gained=gained, n=n,
                 low=low, high=high)
    needed = np.nan
    if verdict == "fail":
        note += _note("resend_inflated", lang)
    elif verdict == "insufficient":
        needed = _gap_messages_needed(gap, max_gap, ci)
        note += _note("resend_needed", lang, max=max_gap, needed=int(needed)) if np.isfinite(needed) \
            else _note("resend_never", lang, max=max_gap)
    return [_row(vendor, "resend", "resend_gap", gap, max_gap, "rate", verdict, note, messages=n, low=low,
                 high=high, needed=needed)]


def _gap_messages_needed(gap: float, max_gap: float, alpha: float) -> float:
    """Smallest number of originals whose gap's upper bound falls to ``max_gap`` at the
    observed ``gap`` (inf when the gap is not below it)."""
    if gap >= max_gap:
        return math.inf
    return messages_needed(1 - max_gap, rate=1 - gap, confidence=1 - alpha)


def _difference_p(table: np.ndarray) -> float:
    """p-value of "the rows' rates differ": the exact test where a cell expects fewer than
    5 and the tables to enumerate are few, else chi-square."""
    small = _expected(table).min() < 5
    few = np.prod(np.minimum(table.sum(axis=1), table[:, 0].sum()) + 1.0) <= 2e5
    return _exact_homogeneity(table) if small and few else _homogeneity(table)


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
    volumes: pd.DataFrame, *, top: float = 0.10, healthy: float = 0.30, inverted_above: float = 0.50,
    lang: str = "zh",
) -> pd.DataFrame:
    """Platform due diligence: how much of a vendor's volume its biggest customers carry.

    Parameters
    ----------
    volumes : one row per customer with a ``volume`` column (and optionally ``vendor``).
    top : the share of customers that forms the head (default the top 10%).
    healthy : the head's share of volume on a healthy platform (about 30%).
    inverted_above : above this share the pyramid is inverted: a few customers carry
        most of the volume, and the platform stands or falls with them.
    lang : language of the ``note``.

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
        note = _note("inverted" if inverted else "concentration", lang, top=top, share=share, healthy=healthy)
        rows.append({"vendor": vendor, "customers": len(v), "head_customers": head, "volume": float(v.sum()),
                     "head_share": share, "healthy_share": healthy, "inverted": inverted, "note": note})
    return pd.DataFrame(rows)
