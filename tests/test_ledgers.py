"""The three ledgers, the billing sheet and alerts: totals, changes, limits and the demo's truths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_log
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import compute, weekly_ledgers
from analysis.cubes import merge_cubes, partial_cubes
from analysis.ledgers import MEASURES, finish
from analysis.measures import ALL


def _quality(log):
    return compute(["quality"], log)["quality"]


def _failure(log):
    return compute(["failures"], log)["failures"]


def _content(log):
    return compute(["content"], log)["content"]


@pytest.fixture(scope="module")
def two_weeks():
    rows = []
    for week_start, (ok_mobile, ok_unicom) in (("2025-04-28 12:00", (9, 5)), ("2025-05-06 12:00", (7, 5))):
        t = pd.Timestamp(week_start)
        rows += [{"vendor": "a", "carrier": "China Mobile", "submit": t, "status": "delivered" if i < ok_mobile else "failed",
                  "failure_reason": None if i < ok_mobile else "unreachable", "error_code": None if i < ok_mobile else "MK:0005"}
                 for i in range(10)]
        rows += [{"vendor": "b", "carrier": "China Unicom", "submit": t, "status": "delivered" if i < ok_unicom else "failed",
                  "failure_reason": None if i < ok_unicom else "empty_number"} for i in range(5)]
    return make_log(rows)


def test_quality_totals_changes_and_limits(two_weeks):
    q = _quality(two_weeks)
    assert list(q.columns[:3]) == ["week", "vendor", "carrier"]
    w19 = q[q["week"].eq("2025-W19")].set_index(["vendor", "carrier"])
    total = w19.loc[(ALL, ALL)]
    assert total["submitted"] == 15 and total["delivered"] == 12
    assert w19.loc[("a", ALL), "submitted"] + w19.loc[("b", ALL), "submitted"] == total["submitted"]
    mobile = w19.loc[("a", "China Mobile")]
    assert mobile["arrival_change_pp"] == pytest.approx(100 * (0.7 - 0.9))
    p0 = 0.9
    assert mobile["control_low"] == pytest.approx(p0 - 3 * np.sqrt(p0 * (1 - p0) / 10))
    assert mobile["meets_target"] == False  # noqa: E712
    assert w19.loc[("b", "China Unicom"), "meets_target"] == True  # noqa: E712
    first = q[q["week"].eq("2025-W18")]
    assert first["in_control"].isna().all() and first["arrival_change_pp"].isna().all()


def test_failure_ledger_shares(two_weeks):
    f = _failure(two_weeks)
    w19 = f[f["week"].eq("2025-W19")]
    assert w19["failed"].tolist() == [3]  # China Mobile unreachable; Unicom had none
    assert w19["share_of_week"].tolist() == [1.0]
    assert w19["top_codes"].iloc[0] == "MK:0005 ×3"


def test_content_ledger_without_clicks(two_weeks):
    c = _content(two_weeks)
    assert c.groupby("week")["sent"].sum().tolist() == [15, 15]
    assert c["click_through_rate"].isna().all()


def test_each_vendors_own_success_beside_the_measured_arrival():
    rows = [{"vendor": "tencent", "status": s, "failure_reason": r}
            for s, r, n in (("delivered", None, 8), ("failed", "platform_rejected", 1), ("failed", "unreachable", 1))
            for _ in range(n)]
    rows += [{"vendor": "aliyun", "status": s} for s, n in (("delivered", 6), ("failed", 2), ("pending", 2))
             for _ in range(n)]
    rows += [{"vendor": "twilio", "status": s} for s, n in (("delivered", 5), ("pending", 3), ("failed", 2))
             for _ in range(n)]
    q = _quality(make_log(rows))
    q = q[q["carrier"].eq(ALL) & q["vendor"].ne(ALL)].set_index("vendor")
    assert q.loc["tencent", "vendor_definition"] == "submission_success"
    assert q.loc["tencent", "vendor_success_rate"] == pytest.approx(9 / 10)   # accepted / submitted
    assert q.loc["aliyun", "vendor_success_rate"] == pytest.approx(6 / 8)     # delivered / with a receipt
    assert q.loc["twilio", "vendor_success_rate"] == pytest.approx(8 / 10)    # "sent" counted as final
    assert (q["arrival_rate"] == [0.6, 0.8, 0.5]).all()  # aliyun, tencent, twilio: what we measure


def _clicks(rows):
    log = make_log([{k: v for k, v in r.items() if k != "clicked"} for r in rows])
    return log.assign(clicked=[r.get("clicked", False) for r in rows], converted=False,
                      clicks=[int(r.get("clicked", False)) for r in rows])


def test_click_through_counts_only_messages_with_a_link():
    link, plain = "【商城】会员日八折 https://s.lx.cn/m 回T退订", "【商城】会员日八折 回T退订"
    rows = [{"template_id": "M1", "category": "marketing", "content": link, "clicked": i < 10} for i in range(50)]
    rows += [{"template_id": "M1", "category": "marketing", "content": plain} for _ in range(50)]
    rows += [{"template_id": "V1", "category": "verification", "content": "【商城】验证码123456"} for _ in range(20)]
    c = _content(_clicks(rows)).set_index("template_id")
    assert c.loc["M1", "linked"] == 50 and c.loc["M1", "click_through_rate"] == pytest.approx(10 / 50)
    assert c.loc["V1", "linked"] == 0 and pd.isna(c.loc["V1", "click_through_rate"])


def test_a_best_send_hour_only_when_it_beats_the_others_significantly():
    from scipy import stats

    link = "【商城】会员日八折 https://s.lx.cn/m 回T退订"

    def hours(rates, n=200, category="marketing", template="M1"):
        return [{"template_id": template, "category": category, "content": link, "submit": f"2025-05-06 {h:02d}:10",
                 "clicked": i < round(n * r)} for h, r in rates.items() for i in range(n)]

    clear = hours({10: 0.08, 12: 0.08, 15: 0.20, 18: 0.08})
    noise = hours({10: 0.09, 12: 0.10, 15: 0.11, 18: 0.09}, template="M2")
    codes = hours({10: 0.0, 12: 0.0, 15: 0.05, 18: 0.0}, category="verification", template="V1")
    c = _content(_clicks(clear + noise + codes)).set_index("template_id")
    assert c.loc["M1", "best_send_hour"] == 15 and c.loc["M1", "best_hour_rate"] == pytest.approx(0.20)
    # the same decision by hand: 15:00 against the other hours pooled, one-sided, alpha / 4 hours
    z = (0.20 - 0.08) / np.sqrt(0.11 * 0.89 * (1 / 200 + 1 / 600))
    assert stats.norm.sf(z) < 0.05 / 4
    assert pd.isna(c.loc["M2", "best_send_hour"]), "the highest of four close hours is noise"
    assert pd.isna(c.loc["V1", "best_send_hour"]), "the user picks when a code is sent"


def test_best_send_hours_on_the_demo_sit_near_the_true_peak(demo_inputs):
    from analysis.simulation import CLICK_BY_HOUR

    c = _content(demo_inputs.log)
    named = c.dropna(subset=["best_send_hour"])
    assert not named["category"].astype(str).eq("verification").any()
    # every hour named clicks at least 80% as well as the true best hour (15:00)
    assert (CLICK_BY_HOUR[named["best_send_hour"].astype(int).to_numpy()] >= 0.8 * CLICK_BY_HOUR.max()).all()


def test_weekly_ledgers_rejects_an_absent_week(two_weeks):
    with pytest.raises(ValueError, match=r"no messages in week 2025-W30 \(weeks in the input: 2025-W18, 2025-W19\)"):
        weekly_ledgers(two_weeks, "2025-W30")


@pytest.fixture(scope="module")
def outage_week(demo, demo_inputs):
    return weekly_ledgers(demo_inputs.log, demo["outage"]["week"], bill=demo_inputs.bill,
                          accounting=demo_inputs.summary)


def test_demo_outage_shows_in_failure_tracing_and_alerts(demo, outage_week):
    o = demo["outage"]
    f = outage_week["failures"]
    top = f.iloc[0]
    assert (top["carrier"], top["province"], top["failure_reason"]) == (o["carrier"], o["province"], "unreachable")
    assert top["top_codes"].startswith("MK:0023")
    a = outage_week["alerts"]
    assert ((a["carrier"] == o["carrier"]) & (a["province"] == o["province"])).any()


def test_demo_resend_gap_in_quality(demo, outage_week):
    q = outage_week["quality"].set_index(["vendor", "carrier"])
    assert q.loc[("gateway", ALL), "resend_gap"] > 0.05
    assert abs(q.loc[("aliyun", ALL), "resend_gap"]) < 0.01


def test_demo_blocked_template_in_content(demo, outage_week):
    c = outage_week["content"]
    blocked = c[c["template_id"].str.endswith(demo["blocked_template"]["template_id"])]
    others = c[~c.index.isin(blocked.index)]
    assert (blocked["blocked_rate"] > 0.5).all()
    assert blocked["arrival_rate"].max() < others["arrival_rate"].min()
    assert "保过" in blocked["content"].iloc[0]


def test_demo_billing_sheet_and_summary(demo, outage_week):
    b = outage_week["billing"]
    assert set(b["month"]) == {"2025-05"}
    modes = b.dropna(subset=["billing_mode"]).set_index("vendor")["billing_mode"].to_dict()
    assert modes == demo["billing"]["modes"]
    s = outage_week["summary"]
    rows = s[s["file"].ne(ALL)]
    assert (rows["rows_read"] == rows["loaded"] + rows["rejected"] + rows["duplicates"]).all()
    assert s.loc[s["file"].eq(ALL), "rows_read"].iloc[0] == rows["rows_read"].sum()
    assert s.attrs["week"] == demo["outage"]["week"] and s.attrs["start"] == "2025-05-05"


def test_demo_cost_per_delivered(demo, demo_inputs, outage_week):
    cost = outage_week["cost"]
    log = demo_inputs.log
    week = log[log["submit_time"].dt.strftime("%G-W%V").eq(demo["outage"]["week"])]
    prices = demo["billing"]["unit_prices"]
    for vendor, mode in demo["billing"]["modes"].items():
        part = week[week["vendor"].eq(vendor)]
        delivered = part["status"].eq("delivered")
        billed = part["segments"].sum() if mode == "submission" else part.loc[delivered, "segments"].sum()
        rows = cost[cost["vendor"].eq(vendor)]
        assert rows["cost"].sum() == pytest.approx(billed * prices[vendor])
        assert rows["delivered"].sum() == delivered.sum()
    aliyun = cost[cost["vendor"].eq("aliyun")]
    assert (aliyun["cost_per_delivered"] >= prices["aliyun"]).all()  # failures are paid for too
    assert aliyun["cost"].sum() / aliyun["delivered"].sum() > prices["aliyun"]


def test_the_exports_own_prices_feed_billing_and_cost(fixtures):
    """SNS writes a price per part (PriceInUSD): the billing and cost sheets use it."""
    from analysis import read_send_log

    raw = pd.read_csv(fixtures / "sns_usage.csv")
    by_hand = raw["PriceInUSD"].sum()  # 0.041 + 2 × 0.006 + 0.006
    sheets = weekly_ledgers(read_send_log(fixtures / "sns_usage.csv"), "2025-W19")
    billing = sheets["billing"].iloc[0]
    assert billing["export_amount"] == pytest.approx(by_hand)
    assert billing["unit_price"] == pytest.approx(by_hand / raw["TotalParts"].groupby(raw["MessageId"]).first().sum())
    cost = sheets["cost"]
    assert cost["cost"].sum() == pytest.approx(by_hand)
    delivered = raw[raw["DeliveryStatus"].str.contains("accepted")]["MessageId"].nunique()
    assert cost["cost_per_delivered"].iloc[0] == pytest.approx(by_hand / delivered)


@settings(max_examples=4, deadline=None)
@given(parts=st.integers(2, 5), seed=st.integers(0, 2**32 - 1))
def test_every_measure_of_merged_partitions_equals_the_whole(demo_inputs, parts, seed):
    """Split the log at random into partitions (each phone's messages through a vendor in
    one, as in the store): every measure finished over the partitions' merged sums equals
    the measure of the whole log in memory, column by column."""
    log = demo_inputs.log.drop(columns=["unsubscribed"])  # replies join by phone across vendors
    group = log.groupby([log["vendor"].astype(str), log["phone"].astype(str)], sort=False).ngroup().to_numpy()
    where = np.random.default_rng(seed).integers(0, parts, group.max() + 1)[group]
    whole = compute(list(MEASURES), log, bill=demo_inputs.bill)
    merged = merge_cubes([partial_cubes(log[where == i].reset_index(drop=True)) for i in range(parts)
                          if (where == i).any()])
    assert set(whole) == set(MEASURES)
    for name, frame in whole.items():
        assert len(frame), name  # the demo has rows for every measure: the comparison is not of empties
        pd.testing.assert_frame_equal(finish(name, merged, bill=demo_inputs.bill), frame, check_dtype=False, obj=name)


def test_compute_makes_only_the_sums_its_measures_need(two_weeks):
    """``compute`` names its measures; a measure it was not asked for is not made, and an
    unknown one is refused by name."""
    out = compute(["trend"], two_weeks)
    assert list(out) == ["trend"]
    cubes = partial_cubes(two_weeks, tables=MEASURES["trend"].tables)
    assert len(cubes.quality) and cubes.latency.empty and cubes.failures.empty and cubes.failed.empty
    with pytest.raises(ValueError, match="no measure 'arrival'"):
        compute(["arrival"], two_weeks)


def test_latency_measure_counts_each_delivered_attempt_in_its_second():
    """Hand count: delivered attempts land in whole-second bins below an hour (above it,
    a bin 1% wide starts at most 1% below the latency); failed and receipt-less ones in
    none."""
    rows = [{"latency": s} for s in (5, 5, 30, 599, 601, 4000)]
    rows += [{"status": "failed", "latency": 9}, {"latency": None}]
    out = compute(["latency"], make_log(rows))["latency"]
    attempt = out[out["kind"].eq("attempt")]
    assert attempt["messages"].sum() == 6
    assert attempt.set_index("seconds")["messages"].loc[[5, 30, 599, 601]].tolist() == [2, 1, 1, 1]
    top = attempt["seconds"].max()
    assert 4000 / 1.01 <= top <= 4000
    # the recipient's wait: the same six originals (no resends here)
    assert out[out["kind"].eq("recipient")]["messages"].sum() == 6


def test_latency_measure_on_the_demo_matches_the_row_latencies(demo_inputs):
    """A second path: each vendor's delivered attempts with a receipt time, and those
    within 10 minutes, counted from the rows' own latencies, equal the histogram's."""
    from analysis.kernel import latency_seconds

    log = demo_inputs.log
    seconds = pd.Series(latency_seconds(log)).set_axis(log["vendor"].astype(str).to_numpy())
    out = compute(["latency"], log)["latency"]
    attempt = out[out["kind"].eq("attempt")].assign(vendor=lambda d: d["vendor"].astype(str))
    timed = attempt.groupby("vendor")["messages"].sum()
    fast = attempt[attempt["seconds"].le(600)].groupby("vendor")["messages"].sum()
    assert timed.to_dict() == seconds.dropna().groupby(level=0).size().to_dict()
    whole = (seconds.dropna() % 1 == 0).all()
    assert whole  # the demo's receipts are whole seconds: the bins are exact
    assert fast.to_dict() == seconds[seconds.le(600)].groupby(level=0).size().to_dict()


def test_send_hour_and_peak_measures_equal_the_in_memory_functions(demo_inputs):
    """The ``peaks``, ``hours`` and ``weekday_hours`` measures (partial sums, merged,
    finished) give what the in-memory functions compute from the rows, column by column;
    the lift from the hour counts is the lift from the log."""
    from analysis import arrival_rates, click_through_lift, click_through_rates, peak_variance

    log = demo_inputs.log
    out = compute(["peaks", "hours", "weekday_hours"], log)
    ours, theirs = out["peaks"], peak_variance(log)
    assert len(ours) == len(theirs) >= 8  # four vendors, every window
    for col in theirs.columns:
        a, b = ours[col], theirs[col]
        if col in ("vendor", "window"):
            assert a.astype(str).tolist() == b.astype(str).tolist(), col
        else:
            np.testing.assert_allclose(a.to_numpy(dtype=float), b.to_numpy(dtype=float), err_msg=col)
    for name, keys in (("hours", ["hour"]), ("weekday_hours", ["weekday", "hour"])):
        frame = out[name].set_index(keys)
        clicks = click_through_rates(log, by=keys).astype({k: "int64" for k in keys}).set_index(keys)
        arrival = arrival_rates(log, by=keys).astype({k: "int64" for k in keys}).set_index(keys)  # sorted by its keys
        assert frame.index.equals(clicks.index) and frame.index.equals(arrival.index), name
        for col in clicks.columns:
            np.testing.assert_allclose(frame[col].to_numpy(dtype=float), clicks[col].to_numpy(dtype=float), err_msg=col)
        for col in ("submitted", "delivered", "arrival_rate", "arrival_low", "arrival_high"):
            np.testing.assert_allclose(frame[col].to_numpy(dtype=float), arrival[col].to_numpy(dtype=float), err_msg=col)
    pd.testing.assert_frame_equal(click_through_lift(out["hours"], 15, 20), click_through_lift(log, 15, 20))


def test_a_measure_whose_sums_were_not_read_is_refused(demo_inputs):
    """A source read for some measures refuses another, by name, instead of finishing
    empty sums into zeros."""
    cubes = partial_cubes(demo_inputs.log, tables=MEASURES["trend"].tables)
    with pytest.raises(ValueError, match="'peaks' measure needs the hours, windows sums"):
        finish("peaks", cubes)
