"""Measures against hand counts, scipy, numpy and DuckDB."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import make_log

from analysis import (
    arrival_rates,
    billing_reconciliation,
    click_through_lift,
    click_through_rates,
    compute,
    effective_cost,
    failure_reasons,
    peak_variance,
    repeat_failures,
    round_spread,
    wilson_interval,
)
from analysis.kernel import resend_chains
from analysis.measures import resend_honesty
from analysis.normalize import infer_attempts
from analysis.stats import two_proportion_test

# --------------------------------------------------------------------------- arrival


@pytest.fixture
def small_log():
    # vendor a: 4 originals; m1 failed then resent (delivered), m3 pending
    return make_log([
        {"vendor": "a", "carrier": "China Mobile", "latency": 30},
        {"vendor": "a", "carrier": "China Mobile", "status": "failed", "phone": "+8613800000001",
         "submit": "2025-05-06 12:00"},
        {"vendor": "a", "carrier": "China Mobile", "attempt": 2, "phone": "+8613800000001",
         "submit": "2025-05-06 12:05", "latency": 900},
        {"vendor": "a", "carrier": "China Unicom", "latency": 120},
        {"vendor": "a", "carrier": "China Unicom", "status": "pending"},
        {"vendor": "b", "carrier": "China Telecom", "latency": 10},  # a carrier with one message
    ])


def test_arrival_rates_by_hand(small_log):
    r = arrival_rates(small_log, by=["vendor"]).set_index("vendor")
    a = r.loc["a"]
    assert a["submitted"] == 5 and a["delivered"] == 3
    assert a["arrival_rate"] == pytest.approx(3 / 5)
    assert a["receipt_coverage"] == pytest.approx(4 / 5)
    assert a["originals"] == 4
    assert a["first_attempt_rate"] == pytest.approx(2 / 4)
    assert a["after_resend_rate"] == pytest.approx(3 / 4)
    assert a["resend_gap"] == pytest.approx(1 / 4)
    # what the recipients waited: 30 s, 120 s, and 1,200 s for m1 (failed at 12:00, resent at
    # 12:05, delivered 900 s later); the pending one is not known yet
    assert a["within_10min_rate"] == pytest.approx(2 / 3)
    assert a["latency_p50_s"] == pytest.approx(np.percentile([30, 1200, 120], 50))
    assert a["latency_p95_s"] == pytest.approx(np.percentile([30, 1200, 120], 95))
    # per attempt, beside it: 30 s, 900 s and 120 s
    assert a["attempt_within_10min_rate"] == pytest.approx(2 / 3)
    assert a["attempt_latency_p50_s"] == pytest.approx(np.percentile([30, 900, 120], 50))
    assert a["receipt_time_coverage"] == 1.0
    low, high = wilson_interval(3, 5)
    assert (a["arrival_low"], a["arrival_high"]) == pytest.approx((float(low), float(high)))
    # first-attempt (2 of 4 originals) and after-resend (3 of 4) arrival with their Wilson
    # intervals, from the closed form: (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)
    z = 1.959963984540054
    for k, col in ((2, "first_attempt"), (3, "after_resend")):
        p, n = k / 4, 4
        centre, half = p + z * z / (2 * n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        assert (a[f"{col}_low"], a[f"{col}_high"]) == pytest.approx(((centre - half) / (1 + z * z / n),
                                                                    (centre + half) / (1 + z * z / n)))
    b = r.loc["b"]
    assert b["submitted"] == 1 and b["arrival_rate"] == 1.0 and 0 < b["arrival_low"] < 1
    assert pd.isna(a["complaint_rate"]) and pd.isna(a["complaints"])  # no complaint events given


def test_a_delivery_without_receipt_time_is_not_counted_late():
    # 10 delivered fast, 1 delivered with no receipt time: 10 of 10 timed, coverage 10/11
    rows = [{"latency": 20} for _ in range(10)] + [{"latency": None}]
    r = arrival_rates(make_log(rows), by=[]).iloc[0]
    assert r["within_10min_rate"] == 1.0 and r["attempt_within_10min_rate"] == 1.0
    assert r["receipt_time_coverage"] == pytest.approx(10 / 11)


def test_a_new_code_is_the_users_request_not_a_platform_resend():
    # an honest vendor: 10 failures, 8 of them followed 40 s later by a new code the user
    # asked for; no resend of the same text
    rows = []
    for i in range(50):
        phone = f"+86138000{i:05d}"
        failed = i < 10
        rows.append({"phone": phone, "submit": "2025-05-06 12:00", "content": f"您的验证码是{100000 + i}",
                     "status": "failed" if failed else "delivered"})
        if failed and i < 8:
            rows.append({"phone": phone, "submit": "2025-05-06 12:00:40", "content": f"您的验证码是{200000 + i}"})
    log = make_log(rows)
    log["attempt"] = infer_attempts(log.assign(attempt=pd.NA))
    assert (log["attempt"] == 1).all(), "new texts are originals"
    r = resend_honesty(log, by=[]).iloc[0]
    assert r["resend_gap"] == 0 and r["resends"] == 0
    assert r["user_retries"] == 8 and r["user_retry_share"] == pytest.approx(8 / 10)
    # the same text again is the platform's resend
    again = make_log(rows[:1] + [{"phone": rows[0]["phone"], "submit": "2025-05-06 12:03",
                                  "content": rows[0]["content"]}])
    assert infer_attempts(again.assign(attempt=pd.NA)).tolist() == [1, 2]


def test_arrival_rates_overall_and_time_keys(small_log):
    overall = arrival_rates(small_log, by=[])
    assert len(overall) == 1 and overall["submitted"].iloc[0] == 6
    by_hour = arrival_rates(small_log, by=["week", "hour"])
    assert by_hour["week"].tolist() == ["2025-W19"]
    assert by_hour["hour"].tolist() == [12]
    daily = arrival_rates(small_log, by=["period"], freq="D")
    assert daily["period"].tolist() == [pd.Timestamp("2025-05-06")]


def test_all_pending_and_empty():
    pending = make_log([{"status": "pending"}, {"status": "pending"}])
    r = arrival_rates(pending, by=["vendor"]).iloc[0]
    assert r["arrival_rate"] == 0 and r["receipt_coverage"] == 0 and np.isnan(r["latency_p50_s"])
    empty = arrival_rates(pending.iloc[:0], by=["vendor"])
    assert empty.empty and "arrival_rate" in empty


def test_arrival_leaves_input_unchanged(small_log):
    before = small_log.copy()
    arrival_rates(small_log, by=["vendor", "carrier"])
    pd.testing.assert_frame_equal(small_log, before)


def test_unknown_key_is_a_clear_error(small_log):
    with pytest.raises(KeyError, match="unknown grouping key 'nope'"):
        arrival_rates(small_log, by=["nope"])


def test_resend_chains_link_to_the_original(small_log):
    chain = resend_chains(small_log)
    assert chain.tolist() == [0, 1, 1, 3, 4, 5]


def test_arrival_rates_equal_the_ledgers_with_millisecond_receipts(demo_inputs):
    """With receipt times to the millisecond, the in-memory measure and the quality ledger
    (partial aggregates) agree column by column, p50 and p95 included; ``exact=True``
    gives the latencies' own percentiles, within the histogram's stated bound above."""
    log = demo_inputs.log.copy()
    ms = pd.to_timedelta(np.random.default_rng(3).integers(0, 1000, len(log)), unit="ms")
    log["done_time"] = log["done_time"] + ms
    keys = ["week", "vendor", "carrier"]
    ours = arrival_rates(log, by=keys)
    ours = ours.astype({k: object for k in keys}).set_index(keys)
    ledger = compute(["quality"], log)["quality"]
    ledger = ledger[(ledger["vendor"] != "All") & (ledger["carrier"] != "All")].set_index(keys).loc[ours.index]
    shared = [c for c in ours.columns if c in ledger.columns]
    assert {"latency_p50_s", "latency_p95_s", "attempt_latency_p95_s", "first_attempt_rate"} <= set(shared)
    for col in shared:
        np.testing.assert_array_equal(ours[col].to_numpy(dtype=float), ledger[col].to_numpy(dtype=float), err_msg=col)
    exact = arrival_rates(log, by=keys, exact=True).astype({k: object for k in keys}).set_index(keys)
    gap = exact["latency_p50_s"] - ours["latency_p50_s"]
    assert (gap > 0).mean() > 0.5  # the histogram's lower edges: a little low, as stated
    assert (gap.dropna() <= np.maximum(1.0, 0.01 * exact["latency_p50_s"].dropna()) + 1e-9).all()


def test_arrival_matches_duckdb_on_demo(demo_inputs):
    # a second engine: the resend chains by an ASOF join, latency percentiles by DuckDB
    log = demo_inputs.log
    ours = arrival_rates(log, by=["vendor", "carrier"])
    frame = pd.DataFrame({
        "vendor": log["vendor"].astype(str), "carrier": log["carrier"].astype(object),
        "phone": log["phone"].astype(str), "key": log["content"].astype(object).fillna(log["template_id"].astype(object)),
        "attempt": log["attempt"].astype(int), "t": log["submit_time"].dt.tz_localize(None),
        "done": log["done_time"].dt.tz_localize(None), "status": log["status"].astype(str),
        "receipt_only": log["time_source"].astype(str).eq("receipt"),
    }).reset_index(drop=True)
    frame["rid"] = np.arange(len(frame))
    con = duckdb.connect()
    con.register("frame", frame)
    theirs = con.sql("""
        with f as (
            select *, status = 'delivered' as ok,
                   case when status = 'delivered' and not receipt_only and done >= t
                        then epoch(done - t) end as lat
            from frame),
        linked as (
            select r.rid, o.rid as orig from (select * from f where attempt > 1) r
            asof join (select * from f where attempt = 1) o
            on r.vendor = o.vendor and r.phone = o.phone and r.key = o.key and r.t >= o.t),
        chains as (
            select f.*, coalesce(l.orig, f.rid) as orig from f left join linked l using (rid)),
        per_original as (
            select orig, min(t + to_seconds(lat)) filter (where lat is not null) as first_done,
                   bool_or(ok) as rescued, bool_or(status = 'pending') as waiting
            from chains group by orig),
        originals as (
            select f.vendor, f.carrier, epoch(p.first_done - f.t) as wait, p.rescued, p.waiting
            from f join per_original p on p.orig = f.rid
            where f.rid not in (select rid from linked))
        select a.vendor, a.carrier, a.submitted, a.delivered, a.attempt_p50, a.attempt_p95, a.attempt_fast,
               a.attempt_timed, b.p50, b.p95, b.fast, b.timed
        from (select vendor, carrier, count(*) as submitted, sum(ok::int) as delivered,
                     quantile_cont(lat, 0.5) as attempt_p50, quantile_cont(lat, 0.95) as attempt_p95,
                     count(lat) filter (where lat <= 600) as attempt_fast, count(lat) as attempt_timed
              from f group by all) a
        join (select vendor, carrier, quantile_cont(wait, 0.5) as p50, quantile_cont(wait, 0.95) as p95,
                     count(wait) filter (where wait <= 600) as fast,
                     count(*) filter (where wait is not null or (not rescued and not waiting)) as timed
              from originals group by all) b
        on a.vendor = b.vendor and a.carrier is not distinct from b.carrier
    """).df()
    m = ours.merge(theirs, on=["vendor", "carrier"], how="outer", suffixes=("", "_db"), indicator=True)
    assert (m["_merge"] == "both").all() and len(m) == len(ours)
    assert (m["submitted"] == m["submitted_db"]).all()
    assert (m["delivered"] == m["delivered_db"]).all()
    np.testing.assert_allclose(m["within_10min_rate"], m["fast"] / m["timed"])
    np.testing.assert_allclose(m["latency_p50_s"], m["p50"])
    np.testing.assert_allclose(m["latency_p95_s"], m["p95"])
    np.testing.assert_allclose(m["attempt_within_10min_rate"], m["attempt_fast"] / m["attempt_timed"])
    np.testing.assert_allclose(m["attempt_latency_p50_s"], m["attempt_p50"])
    np.testing.assert_allclose(m["receipt_time_coverage"], m["attempt_timed"] / m["delivered"])
    # the gateway's resends make the recipient wait longer than any one attempt shows
    gw = m[m["vendor"].eq("gateway")]
    assert (gw["latency_p95_s"] > gw["attempt_latency_p95_s"]).any()


def test_resend_inflation_found_on_demo(demo_inputs, demo):
    r = arrival_rates(demo_inputs.log[~demo_inputs.log["is_probe"]], by=["vendor"]).set_index("vendor")
    truth = demo["silent_resends"]
    gw = r.loc["gateway"]
    assert gw["first_attempt_rate"] == pytest.approx(truth["first_attempt_arrival"], abs=0.01)
    assert gw["after_resend_rate"] == pytest.approx(truth["after_resend_arrival"], abs=0.01)
    assert gw["resend_gap"] > 0.05
    assert (r.drop(index="gateway")["resend_gap"].abs() < 0.005).all()


# --------------------------------------------------------------------------- failures


def test_failure_reasons_by_hand():
    log = make_log([
        {"carrier": "China Mobile", "status": "failed", "failure_reason": "empty_number", "error_code": "MK:0001"},
        {"carrier": "China Mobile", "status": "failed", "failure_reason": "empty_number", "error_code": "MK:0001"},
        {"carrier": "China Mobile", "status": "failed", "failure_reason": "empty_number", "error_code": "MK:0012"},
        {"carrier": "China Mobile", "status": "expired", "failure_reason": "expired", "status_code": "EXPIRED"},
        {"carrier": "China Mobile"},
        {"carrier": "China Unicom"},
        {"carrier": "China Unicom", "status": "pending"},
    ])
    f = failure_reasons(log, by=["carrier"])
    assert f["carrier"].tolist() == ["China Mobile", "China Mobile"]
    empty = f.iloc[0]
    assert (empty["failure_reason"], empty["failed"], empty["submitted"]) == ("empty_number", 3, 5)
    assert empty["share"] == pytest.approx(3 / 4) and empty["failure_rate"] == pytest.approx(3 / 5)
    assert empty["top_codes"] == "MK:0001 ×2; MK:0012 ×1"
    assert f.iloc[1]["top_codes"] == "EXPIRED ×1"


def test_week_without_failures_gives_an_empty_table():
    f = failure_reasons(make_log([{}, {}]), by=["carrier"])
    assert f.empty and list(f.columns[:2]) == ["carrier", "failure_reason"]


def test_repeat_failures():
    phone = "+8613900000001"
    log = make_log([
        {"phone": phone, "status": "failed", "failure_reason": "empty_number"},
        {"phone": phone, "status": "failed", "failure_reason": "unreachable", "submit": "2025-05-07 10:00"},
        {"phone": phone},
        {"phone": "+8613900000002", "status": "failed"},
    ])
    r = repeat_failures(log)
    assert r["phone"].tolist() == [phone]
    assert (r["failures"].iloc[0], r["messages"].iloc[0]) == (2, 3)
    assert r["reasons"].iloc[0] == "empty_number; unreachable"


# --------------------------------------------------------------------------- peak times


def test_peak_variance_against_off_peak():
    peak = [{"submit": "2025-05-06 09:10", "status": "delivered" if i < 6 else "failed"} for i in range(10)]
    off = [{"submit": "2025-05-06 15:00", "status": "delivered" if i < 18 else "failed"} for i in range(20)]
    r = peak_variance(make_log(peak + off), by=[]).set_index("window")
    assert r.loc["weekday_peak", "diff_pp"] == pytest.approx(100 * (0.6 - 0.9))
    _, p, _ = two_proportion_test(6, 10, 18, 20)
    assert r.loc["weekday_peak", "p_value"] == pytest.approx(float(p))
    assert np.isnan(r.loc["off_peak", "diff_pp"])


def test_round_spread_from_bursts():
    rows = []
    for start, ok in (("2025-05-06 09:00", 10), ("2025-05-06 09:30", 9), ("2025-05-06 10:00", 7)):
        rows += [{"submit": pd.Timestamp(start) + pd.Timedelta(seconds=i), "status": "delivered" if i < ok else "failed"}
                 for i in range(10)]
    r = round_spread(make_log(rows)).iloc[0]
    assert r["rounds"] == 3
    assert r["spread_pp"] == pytest.approx(30.0)


# --------------------------------------------------------------------------- send hours


def test_click_through_rates_and_lift_by_hand():
    link = "【商城】会员日八折 https://s.lx.cn/m 回T退订"
    rows = [{"submit": "2025-05-06 15:00", "clicked": i < 30, "content": link} for i in range(100)]
    rows += [{"submit": "2025-05-06 20:00", "clicked": i < 20, "content": link} for i in range(100)]
    rows += [{"submit": "2025-05-06 20:00", "status": "failed", "clicked": False, "content": link}]
    # delivered without a link: cannot be clicked, not in the denominator
    rows += [{"submit": "2025-05-06 15:00", "clicked": False, "content": "【商城】您的验证码是123456"}] * 50
    log = make_log(rows).assign(clicked=[r["clicked"] for r in rows])
    r = click_through_rates(log).set_index("hour")
    assert r.loc[15, "click_through_rate"] == pytest.approx(0.30) and r.loc[15, "linked"] == 100
    assert r.loc[20, "linked"] == 100
    lift = click_through_lift(log, 15, 20).iloc[0]
    assert (lift["hour_a"], lift["hour_b"]) == ("15:00–16:00", "20:00–21:00")
    assert lift["lift"] == pytest.approx(0.5)
    se = np.sqrt(1 / 30 - 1 / 100 + 1 / 20 - 1 / 100)
    assert lift["lift_low"] == pytest.approx(1.5 * np.exp(-1.959964 * se) - 1, rel=1e-5)


def test_click_peak_found_on_demo(demo_inputs, demo):
    lift = click_through_lift(demo_inputs.log, 15, 20).iloc[0]
    assert lift["lift"] > 0
    assert lift["lift_low"] <= demo["click_by_hour"]["lift_15_vs_20"] <= lift["lift_high"]


# --------------------------------------------------------------------------- billing


def test_billing_by_hand():
    log = make_log([
        {"vendor": "a", "segments": 2}, {"vendor": "a", "segments": 1, "status": "failed"},
        {"vendor": "b", "segments": 1}, {"vendor": "b", "segments": 3, "status": "failed"},
    ])
    bill = pd.DataFrame({"vendor": ["a", "b"], "period": ["2025-05", "2025-05"], "billed_count": [3, 1],
                         "unit_price": [0.05, 0.04], "amount": [0.15, 0.04]})
    r = billing_reconciliation(log, bill, modes={"a": "delivery", "b": "delivery"}).set_index("vendor")
    assert r.loc["a", "segments_submitted"] == 3 and r.loc["a", "segments_delivered"] == 2
    assert r.loc["a", "gap_amount"] == pytest.approx(0.05)
    assert r.loc["a", "billing_mode"] == "submission" and r.loc["b", "billing_mode"] == "delivery"
    assert r.loc["a", "overcharge"] == pytest.approx(0.15 - 0.10)
    assert r.loc["b", "overcharge"] == pytest.approx(0.0)
    cost = effective_cost(log, bill, by=["vendor"]).set_index("vendor")
    assert cost.loc["a", "cost_per_delivered"] == pytest.approx(0.15 / 1)  # billed on submission
    assert cost.loc["b", "cost_per_delivered"] == pytest.approx(0.04 / 1)


def test_billing_mode_of_each_demo_vendor(demo_inputs, demo):
    r = billing_reconciliation(demo_inputs.log, demo_inputs.bill).dropna(subset=["billing_mode"])
    found = r.groupby("vendor")["billing_mode"].agg(set).to_dict()
    assert found == {v: {m} for v, m in demo["billing"]["modes"].items()}
