"""The decision rules against a simulation with its own truth (issue 31).

    .venv/bin/python benchmarks/bench_rules.py [--replicates N] [--seed S] [--trials N]

**Alerts.** Daily first-attempt counts of 3 vendors × 4 carriers × 31 provinces (372
groups), built directly as the count table ``cubes.daily`` holds (``period``, ``vendor``,
``carrier``, ``province``, ``traffic``, ``submitted``, ``delivered``, ``blocked``,
``originals``, ``first_ok``) and handed to :func:`analysis.alerts.alerts_from_counts`:

* volumes: each group's typical day lognormal (median 150, log-sd 1.8) and clipped to
  2–30,000 messages; weekends at 60%, the National Day rest period (1–8 October 2025,
  days 60–67 of the 120 from 2 August) at 140%; each day's volume Poisson
  around that times a lognormal day factor (log-sd 0.2);
* true rates: the carrier's (China Mobile 97.8%, Unicom 96.8%, Telecom 96.2%, virtual
  93%) plus the vendor's shift (0, +0.4, −3 points) plus the group's own (sd 1 point),
  within 80–99.8%; on the logit scale each day adds an AR(1) wander (φ = 0.7, stationary
  sd 0.08) and an independent day-to-day wobble whose sd is the group's own (lognormal,
  median 0.12: about 0.35 points at 97%, 1 point at 90%, up to about three times that);
  weekends lose 0.2 points and the holiday 1 point (as the demo's peaks do);
  delivered ~ Binomial(day volume, true rate);
* scenarios, each replicate a fresh draw of the whole traffic (120 days):
  - ``outage-free``: as above; false-alarm episodes (consecutive alarm days of one
    group, counted by the day they began, pooled ``All`` alarms included) per vendor ×
    carrier × province per month of tested days, the worst carrier × province month,
    and any switch advice;
  - ``one-vendor``: on days 80–81 one vendor in one carrier × province loses 20 points;
    the vendor has at least 50 messages on a typical day and another vendor there at
    least 200. A hit: that vendor alerted on the first day, ``switch_channel`` to another
    vendor on the first or the second (a switch on a drop's first day needs stronger
    evidence), and no other vendor there alerted on either;
  - ``carrier-wide``: every vendor in one carrier × province loses 20 points on days
    80–81 (the carrier × province has at least 100 messages a day, two vendors at least
    30). A hit: alerts there on the first day, every one ``carrier_wide``;
  - ``drift``: one vendor group (at least 300 messages a typical day) loses 5 points
    linearly over days 70–84 and stays 5 points down. A hit: an alarm for it within 7
    days of the day the drift reached 3 points (day 78.4), none before the drift; also
    reported apart for the groups whose true daily rate varies by at most 1 point (sd).

**Trial verdicts.** Each verdict's pass rate at the boundary it tests, by Monte Carlo on
the counts the scorecard's rules take (:mod:`analysis.trial`'s verdict functions, the
ones ``trial_scorecard`` calls): basic arrival at a true 98%; within 10 minutes at a true
99%; each scenario category at a true 98% (the threshold part of parity) and a category
exactly 3 points from the others (its equivalence part, threshold aside); stress rounds
5 points apart; a resend gap of exactly 2 points; a vendor 3 points behind the best
(head to head). Each at several sample sizes; the highest rate is reported.

Prints a table of each target measured against its requirement and the command line.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis.alerts import alerts_from_counts  # noqa: E402
from analysis.kernel import rest_days  # noqa: E402

VENDORS = ("v1", "v2", "v3")
CARRIERS = {"China Mobile": 0.978, "China Unicom": 0.968, "China Telecom": 0.962, "Virtual": 0.93}
CARRIER_SHARE = {"China Mobile": 0.56, "China Unicom": 0.24, "China Telecom": 0.17, "Virtual": 0.03}
VENDOR_SHIFT = {"v1": 0.0, "v2": 0.004, "v3": -0.03}
PROVINCES = tuple(f"P{i:02d}" for i in range(31))
DAYS = 120
START = pd.Timestamp("2025-08-02")  # National Day's rest period (1–8 October 2025) on days 60–67
EVENT_DAY = 80
DRIFT = (70, 84, 0.05)  # start, end of the ramp, depth


def _logit(p):
    return np.log(p / (1 - p))


def _expit(x):
    return 1 / (1 + np.exp(-x))


def traffic(rng: np.random.Generator, days: int = DAYS) -> dict:
    """One draw of the traffic's truth: groups, typical volumes, true daily rates."""
    keys = pd.MultiIndex.from_product([VENDORS, CARRIERS, PROVINCES], names=["vendor", "carrier", "province"])
    groups = keys.to_frame(index=False)
    g = len(groups)
    volume = np.clip(rng.lognormal(np.log(150), 1.8, g), 2, 30_000)
    mean = (groups["carrier"].map(CARRIERS).to_numpy() + groups["vendor"].map(VENDOR_SHIFT).to_numpy()
            + rng.normal(0, 0.01, g))
    mean = np.clip(mean, 0.80, 0.998)
    dates = START + pd.to_timedelta(np.arange(days), unit="D")
    holiday, adjusted = rest_days(dates)
    weekend = np.asarray(dates.day_of_week >= 5) & ~adjusted & ~holiday
    level = volume[:, None] * np.where(weekend, 0.6, 1.0)[None, :] * np.where(holiday, 1.4, 1.0)[None, :]
    level = level * rng.lognormal(0, 0.2, (g, days))
    wobble = rng.lognormal(np.log(0.12), 0.5, g)
    ar = np.zeros((g, days))
    sd_ar = 0.08 * np.sqrt(1 - 0.7**2)
    ar[:, 0] = rng.normal(0, 0.08, g)
    for t in range(1, days):  # the AR(1) wander, a loop over days
        ar[:, t] = 0.7 * ar[:, t - 1] + rng.normal(0, sd_ar, g)
    logit = _logit(mean)[:, None] + ar + rng.normal(0, 1, (g, days)) * wobble[:, None]
    rate = _expit(logit) - 0.002 * weekend[None, :] - 0.01 * holiday[None, :]
    return {"groups": groups, "volume": volume, "level": level, "rate": rate}


def counts(rng: np.random.Generator, truth: dict) -> pd.DataFrame:
    """The daily count table (``cubes.daily``'s columns) drawn from the truth."""
    n = rng.poisson(truth["level"])
    k = rng.binomial(n, truth["rate"])
    g, t = np.nonzero(n > 0)
    groups = truth["groups"]
    return pd.DataFrame({
        "period": (START + pd.to_timedelta(t, unit="D")).as_unit("ms"),
        "vendor": groups["vendor"].to_numpy()[g], "carrier": groups["carrier"].to_numpy()[g],
        "province": groups["province"].to_numpy()[g], "traffic": "regular",
        "submitted": n[g, t], "delivered": k[g, t], "blocked": 0, "originals": n[g, t], "first_ok": k[g, t],
    })


def _drop(truth: dict, rows: np.ndarray, days: slice, points) -> None:
    truth["rate"][rows, days] = np.clip(truth["rate"][rows, days] - points, 0.01, None)


def episodes(alerts: pd.DataFrame) -> pd.DataFrame:
    """One row per alarm episode: a group and the day it began."""
    keys = ["vendor", "carrier", "province"]
    return alerts.assign(**{k: alerts[k].astype(str) for k in keys}).drop_duplicates([*keys, "began"])[
        [*keys, "began", "detector", "advice"]]


def run_outage_free(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    truth = traffic(rng)
    a = alerts_from_counts(counts(rng, truth))
    e = episodes(a)
    tested_days = DAYS - 3 - 14  # the receipt window; no baseline before 14 days
    months = tested_days / 30
    per_month = e.assign(month=pd.to_datetime(e["began"]).dt.to_period("M")).groupby(
        ["carrier", "province", "month"]).size()
    big = truth["volume"] >= 3000
    big_keys = set(map(tuple, truth["groups"].loc[big, ["vendor", "carrier", "province"]].to_numpy()))
    return {"episodes": len(e), "group_months": len(truth["groups"]) * months,
            "big_episodes": int(sum((v, c, p) in big_keys for v, c, p in e[["vendor", "carrier", "province"]].to_numpy())),
            "big_group_months": int(big.sum()) * months,
            "worst": int(per_month.max()) if len(per_month) else 0,
            "switch": int(a["advice"].eq("switch_channel").sum()),
            "drift_episodes": int(e["detector"].eq("drift").sum())}


def _pick(rng, truth, ok) -> int:
    choices = np.flatnonzero(ok)
    return int(rng.choice(choices))


def run_one_vendor(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    truth = traffic(rng)
    groups, volume = truth["groups"], truth["volume"]
    where = groups[["carrier", "province"]].astype(str).agg("|".join, axis=1).to_numpy()
    best_other = np.array([volume[(where == w) & (np.arange(len(volume)) != i)].max() for i, w in enumerate(where)])
    ok = (volume >= 50) & (best_other >= 200)
    g = _pick(rng, truth, ok)
    _drop(truth, np.array([g]), slice(EVENT_DAY, EVENT_DAY + 2), 0.20)
    a = alerts_from_counts(counts(rng, truth))
    day = START + pd.Timedelta(days=EVENT_DAY)
    v, c, p = groups.loc[g, ["vendor", "carrier", "province"]]
    there = a[a["carrier"].astype(str).eq(c) & a["province"].astype(str).eq(p)
              & a["period"].isin([day, day + pd.Timedelta(days=1)])]
    mine = there[there["vendor"].astype(str).eq(v)]
    others = there[~there["vendor"].astype(str).eq(v)]
    first = mine[mine["period"].eq(day)]
    switched = mine["advice"].eq("switch_channel") & ~mine["switch_to"].astype(str).eq(v)
    hit = len(first) == 1 and bool(switched.any()) and others.empty
    return {"hit": hit, "alerted": len(first) == 1, "wrong_vendor": not others.empty,
            "advice": ",".join(mine["advice"]) or "none",
            "first_advice": first["advice"].iloc[0] if len(first) else "none",
            "began_ok": bool(len(first) and (mine["began"] == day).all())}


def run_carrier_wide(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    truth = traffic(rng)
    groups, volume = truth["groups"], truth["volume"]
    where = groups[["carrier", "province"]].astype(str).agg("|".join, axis=1)
    total = pd.Series(volume).groupby(where.to_numpy()).sum()
    enough = pd.Series(volume >= 30).groupby(where.to_numpy()).sum()
    ok = total[(total >= 100) & (enough >= 2)].index
    w = str(rng.choice(np.asarray(ok)))
    rows = np.flatnonzero(where.eq(w).to_numpy())
    _drop(truth, rows, slice(EVENT_DAY, EVENT_DAY + 2), 0.20)
    a = alerts_from_counts(counts(rng, truth))
    day = START + pd.Timedelta(days=EVENT_DAY)
    c, p = w.split("|")
    there = a[a["carrier"].astype(str).eq(c) & a["province"].astype(str).eq(p) & a["period"].eq(day)]
    return {"hit": len(there) > 0 and there["advice"].eq("carrier_wide").all(), "alerted": len(there) > 0,
            "advice": ",".join(sorted(set(there["advice"]))) or "none"}


def run_drift(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    truth = traffic(rng)
    groups, volume = truth["groups"], truth["volume"]
    g = _pick(rng, truth, volume >= 300)
    start, end, depth = DRIFT
    ramp = np.clip((np.arange(DAYS) - start + 1) / (end - start), 0, 1) * depth
    truth["rate"][g] = np.clip(truth["rate"][g] - ramp, 0.01, None)
    a = alerts_from_counts(counts(rng, truth))
    v, c, p = groups.loc[g, ["vendor", "carrier", "province"]]
    mine = a[a["vendor"].astype(str).eq(v) & a["carrier"].astype(str).eq(c) & a["province"].astype(str).eq(p)]
    day = ((mine["period"] - START).dt.days).to_numpy()
    reach = start - 1 + 0.6 * (end - start)  # the day the drift reached 3 points
    first = day[day >= start].min() if (day >= start).any() else np.inf
    return {"hit": bool(first <= reach + 7) and not (day < start).any(), "delay": first - reach,
            "early": bool((day < start).any()), "volume": truth["volume"][g],
            "sd_pp": 100 * np.std(np.diff(truth["rate"][g, :start])) / np.sqrt(2)}


# --------------------------------------------------------------------------- trial


def trial_boundaries(seed: int, runs: int) -> list[dict]:
    """Each trial verdict's pass rate at the boundary it tests."""
    from analysis import trial

    rng = np.random.default_rng(seed)
    out = []

    def rate(name, sizes, draw, verdict):
        worst = (-1.0, None)
        for n in sizes:
            passes = float(np.mean([verdict(*draw(n)) == "pass" for _ in range(runs)]))
            worst = max(worst, (passes, n), key=lambda x: x[0])
        out.append({"verdict": name, "false_pass": worst[0], "at_n": worst[1]})

    rate("basic arrival ≥ 98% (true 98%)", (200, 500, 1000, 3000),
         lambda n: (rng.binomial(n, 0.98), n), lambda k, n: trial.rate_verdict(k, n, 0.98))
    rate("within 10 min ≥ 99% (true 99%)", (300, 1000, 3000, 10000),
         lambda n: (rng.binomial(n, 0.99), n), lambda k, n: trial.rate_verdict(k, n, 0.99))
    rate("scenario: each category ≥ 98% (all true 98%)", (300, 1000, 3000),
         lambda n: (rng.binomial(n, 0.98, 3), np.full(3, n)),
         lambda k, n: trial.parity_verdict(k, n, threshold=0.98, margin=0.03).verdict)
    rate("scenario: within ±3 points (one 3 points apart)", (300, 1000, 3000),
         lambda n: (rng.binomial(n, [0.99, 0.99, 0.96]), np.full(3, n)),
         lambda k, n: trial.parity_verdict(k, n, threshold=0.5, margin=0.03).verdict)
    rate("stress: rounds within 5 points (one 5 points down)", (200, 400, 1000, 3000),
         lambda n: (rng.binomial(n, [0.99, 0.99, 0.94]), np.full(3, n)),
         lambda k, n: trial.spread_verdict(k, n, max_spread=0.05))
    rate("resend gap ≤ 2 points (true 2 points)", (120, 500, 2000, 5000),
         lambda n: (rng.binomial(n, 0.02), n), lambda g, n: trial.gap_verdict(g, n, 0.02))
    rate("head to head: within 3 points of the best (3 behind)", (300, 1000, 3000),
         lambda n: (rng.binomial(n, [0.99, 0.96]), np.full(2, n)),
         lambda k, n: trial.head_to_head(k, n, margin=0.03).verdict[1])
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=40)
    ap.add_argument("--seed", type=int, default=2031)
    ap.add_argument("--trials", type=int, default=4000, help="Monte-Carlo runs per trial boundary and size")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    seeds = [args.seed + i for i in range(args.replicates)]
    free = [run_outage_free(s) for s in seeds]
    one = [run_one_vendor(10_000 + s) for s in seeds]
    wide = [run_carrier_wide(20_000 + s) for s in seeds]
    drift = [run_drift(30_000 + s) for s in seeds]
    rate = sum(r["episodes"] for r in free) / sum(r["group_months"] for r in free)
    big = sum(r["big_episodes"] for r in free) / max(sum(r["big_group_months"] for r in free), 1)
    rows = [
        ("outage-free: false alarm episodes per group per month", f"{rate:.4f}", "≤ 0.02", rate <= 0.02),
        ("  … in groups of ≥ 3,000 messages a day", f"{big:.4f}", "(reported)", None),
        ("  … of them drift-test episodes", f"{sum(r['drift_episodes'] for r in free)}", "(reported)", None),
        ("outage-free: worst carrier × province month (episodes)", f"{max(r['worst'] for r in free)}",
         "(reported)", None),
        ("outage-free: switch advice", f"{sum(r['switch'] for r in free)}", "0",
         sum(r["switch"] for r in free) == 0),
    ]
    hit = np.mean([r["hit"] for r in one])
    rows += [("one-vendor outage: right vendor on day 1, switch to a proven one by day 2", f"{hit:.1%}", "≥ 95%",
              hit >= 0.95),
             ("  … alerted on day 1 / another vendor alerted",
              f"{np.mean([r['alerted'] for r in one]):.1%} / {np.mean([r['wrong_vendor'] for r in one]):.1%}",
              "(reported)", None),
             ("  … day 1's advice", str(pd.Series([r["first_advice"] for r in one]).value_counts().to_dict()),
              "(reported)", None),
             ("  … began on the outage's first day", f"{np.mean([r['began_ok'] for r in one]):.1%}", "(reported)",
              None)]
    misses = pd.Series([r["advice"] for r in one if not r["hit"]]).value_counts().to_dict()
    if misses:
        rows.append(("  … advice where missed", str(misses), "", None))
    hit = np.mean([r["hit"] for r in wide])
    rows += [("carrier-wide outage: carrier_wide, first day", f"{hit:.1%}", "≥ 95%", hit >= 0.95)]
    misses = pd.Series([r["advice"] for r in wide if not r["hit"]]).value_counts().to_dict()
    if misses:
        rows.append(("  … advice where missed", str(misses), "", None))
    hit = np.mean([r["hit"] for r in drift])
    delays = np.array([r["delay"] for r in drift])
    quiet = [r["hit"] for r in drift if r["sd_pp"] <= 1.0]
    rows += [("drift of 5 points over 14 days: alarm within 7 days of 3 points", f"{hit:.1%}", "≥ 95%", hit >= 0.95),
             ("  … days after reaching 3 points: median, 90th pct",
              f"{np.median(delays):.1f}, {np.percentile(delays, 90):.1f}", "(reported)", None),
             ("  … in groups whose true daily rate varies ≤ 1 point (sd)",
              f"{np.mean(quiet):.1%} of {len(quiet)}", "(reported)", None),
             ("  … in the noisier groups", f"{np.mean([r['hit'] for r in drift if r['sd_pp'] > 1.0]):.1%} of "
              f"{sum(r['sd_pp'] > 1.0 for r in drift)}", "(reported)", None)]
    for r in trial_boundaries(args.seed, args.trials):
        rows.append((f"trial false pass: {r['verdict']}", f"{r['false_pass']:.2%} (n={r['at_n']:,})", "≤ 5%",
                     r["false_pass"] <= 0.05))
    width = max(len(r[0]) for r in rows)
    print(f"{'target':<{width}}  {'measured':>22}  {'required':>10}  met")
    for name, value, need, met in rows:
        print(f"{name:<{width}}  {value:>22}  {need:>10}  {'' if met is None else 'yes' if met else 'NO'}")
    print(f"\n{args.replicates} replicates per scenario (seeds {seeds[0]}–{seeds[-1]}, +10,000 one-vendor, "
          f"+20,000 carrier-wide, +30,000 drift), {args.trials:,} Monte-Carlo runs per trial boundary and size; "
          f"{time.perf_counter() - t0:.0f} s")
    print("reproduce: .venv/bin/python benchmarks/bench_rules.py "
          f"--replicates {args.replicates} --seed {args.seed} --trials {args.trials}")


if __name__ == "__main__":
    main()
