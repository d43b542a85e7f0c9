"""The week on one page: the figures an analyst reads out first in a review, for the
report's front page and the workbook's first sheet alike."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .measures import ALL
from .schema import label

#: A carrier × province needs this many messages in the week to be called the worst.
MIN_REGION_MESSAGES = 100


def headline(ledgers: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Each vendor's week, and all vendors together (``vendor`` = ``All``, first).

    Returns
    -------
    DataFrame: ``vendor``, ``submitted``, ``delivered``, ``arrival_rate``, ``arrival_low``,
    ``arrival_high``, ``first_attempt_rate``, ``after_resend_rate``, ``resend_gap``,
    ``arrival_change_pp`` (against the week before, points), ``meets_target``; the
    quality ledger's rows over every carrier (the target is in the key points).
    """
    q = ledgers["quality"]
    rows = q[q["carrier"].astype(object).eq(ALL)]
    cols = ["vendor", "submitted", "delivered", "arrival_rate", "arrival_low", "arrival_high", "first_attempt_rate",
            "after_resend_rate", "resend_gap", "arrival_change_pp", "meets_target"]
    return rows[cols].reset_index(drop=True)


def worst_region(ledgers: dict[str, pd.DataFrame], *, min_messages: int = MIN_REGION_MESSAGES) -> pd.Series | None:
    """The carrier × province with the lowest arrival among those with at least
    ``min_messages`` messages in the week (fewer cannot be told from noise); None when
    none has that many or the provinces are unknown."""
    r = ledgers.get("regions")
    if r is None or r.empty:
        return None
    r = r[r["province"].notna() & r["carrier"].notna() & (r["submitted"] >= min_messages)]
    if r.empty:
        return None
    return r.sort_values(["arrival_rate", "submitted"], ascending=[True, False], kind="stable").iloc[0]


_TEXT = {
    "zh": {
        "arrival": "{week}（{start} 至 {end}）共提交 {n:,} 条，成功 {k:,} 条，到达率 {rate}（95% 区间 {low}–{high}），"
                   "{target_word}目标 {target}{change}。",
        "met": "达到", "missed": "低于",
        "change": "，较上周 {pp} 个百分点",
        "resend": "首发到达率 {first}，补发后 {after}：静默补发使到达率虚增 {gap} 个百分点。",
        "worst": "到达率最低的地区：{carrier}·{province}，{rate}（{n:,} 条）。",
        "no_worst": "没有一个运营商 × 省份达到 {n} 条，本周不评最差地区。",
        "alerts": "预警 {n} 条，最严重：{where} {day} 到达率 {rate}（基线 {base}），建议：{advice}。",
        "no_alerts": "本周没有预警。",
        "gap": "按提交计费比按成功计费多 {amounts}。",
        "over": "账单比合同计费方式多收 {amounts}。",
        "vendor": "（{vendor}）",
    },
    "en": {
        "arrival": "{week} ({start} to {end}): {n:,} messages submitted, {k:,} delivered, arrival {rate} "
                   "(95% interval {low}–{high}), {target_word} the {target} target{change}.",
        "met": "meeting", "missed": "below",
        "change": ", {pp} points against the week before",
        "resend": "First-attempt arrival {first}, after resends {after}: silent resends inflate arrival by {gap} points.",
        "worst": "Lowest arrival: {carrier}, {province}, {rate} ({n:,} messages).",
        "no_worst": "No carrier and province had {n} messages this week: no worst region named.",
        "alerts": "{n} alerts; the worst: {where} on {day}, arrival {rate} against a baseline of {base}; advice: {advice}.",
        "no_alerts": "No alerts this week.",
        "gap": "Billing on submission costs {amounts} more than billing on delivery.",
        "over": "The bills charge {amounts} more than the contract mode.",
        "vendor": " ({vendor})",
    },
}


def _pct(x) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{x:.1%}"


def money(amount: float, currency: str, lang: str = "zh") -> str:
    """An amount with its currency, never ``-0.00``: ``3.55 元``, ``1.16 美元``,
    ``CNY 3.55``."""
    value = round(float(amount), 2) + 0.0
    if lang == "zh":
        return f"{value:,.2f} {'元' if currency == 'CNY' else label(currency, lang)}"
    return f"{currency} {value:,.2f}"


def key_points(ledgers: dict[str, pd.DataFrame], lang: str = "zh") -> list[str]:
    """The week in a few sentences, in ``lang``: arrival against the target and the week
    before, first-attempt against after-resend arrival, the worst carrier × province,
    the alerts and their advice, the billing gap in money."""
    t = _TEXT[lang]
    facts = ledgers["summary"].attrs
    head = headline(ledgers)
    out = []
    total = head[head["vendor"].astype(object).eq(ALL)]
    if len(total):
        r = total.iloc[0]
        change = r["arrival_change_pp"]
        out.append(t["arrival"].format(
            week=facts.get("week", ""), start=facts.get("start", ""), end=facts.get("end", ""), n=int(r["submitted"]),
            k=int(r["delivered"]), rate=_pct(r["arrival_rate"]), low=_pct(r["arrival_low"]), high=_pct(r["arrival_high"]),
            target_word=t["met"] if r["meets_target"] else t["missed"], target=_pct(ledgers["quality"]["target"].iloc[0]),
            change=t["change"].format(pp=f"{change:+.1f}") if pd.notna(change) else ""))
        if pd.notna(r["first_attempt_rate"]):
            out.append(t["resend"].format(first=_pct(r["first_attempt_rate"]), after=_pct(r["after_resend_rate"]),
                                          gap=f"{100 * r['resend_gap']:.1f}"))
    worst = worst_region(ledgers)
    if worst is not None:
        out.append(t["worst"].format(carrier=label(worst["carrier"], lang), province=label(worst["province"], lang),
                                     rate=_pct(worst["arrival_rate"]), n=int(worst["submitted"])))
    else:
        out.append(t["no_worst"].format(n=MIN_REGION_MESSAGES))
    alerts = ledgers.get("alerts", pd.DataFrame())
    if len(alerts):
        a = alerts.sort_values(["diff_pp", "affected"], ascending=[True, False], kind="stable").iloc[0]
        where = " ".join(label(str(a[k]), lang) for k in ("vendor", "carrier", "province") if k in a and pd.notna(a[k]))
        day = pd.Timestamp(a["period"]).strftime("%Y-%m-%d")
        out.append(t["alerts"].format(n=len(alerts), where=where, day=day, rate=_pct(a["arrival_rate"]),
                                      base=_pct(a["baseline"]), advice=label(str(a["advice"]), lang)))
    else:
        out.append(t["no_alerts"])
    billing = ledgers.get("billing", pd.DataFrame())
    for column, key in (("gap_amount", "gap"), ("overcharge", "over")):
        if column not in billing or billing[column].isna().all():
            continue
        per = billing.dropna(subset=[column]).groupby(["vendor", "currency"], sort=True)[column].sum()
        per = per[per.abs() >= 0.005]
        if len(per):
            amounts = "；".join if lang == "zh" else "; ".join
            out.append(t[key].format(amounts=amounts(
                money(v, cur, lang) + t["vendor"].format(vendor=label(vendor, lang)) for (vendor, cur), v in per.items())))
    return out
