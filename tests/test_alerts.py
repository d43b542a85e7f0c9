"""Drop alerts: hand-built series, and the demo's outage found (and not invented)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import demo_files, make_log
from scipy import stats

from analysis import drop_alerts, read_send_log, simulate
from analysis.alerts import period_rates


def _days(rates: list[tuple[int, int]], **extra) -> list[dict]:
    """``(submitted, delivered)`` per day from 2025-05-01."""
    rows = []
    for day, (n, k) in enumerate(rates):
        t = pd.Timestamp("2025-05-01 12:00") + pd.Timedelta(days=day)
        rows += [{"submit": t, "status": "delivered" if i < k else "failed", **extra} for i in range(n)]
    return rows


SETTLE = [(100, 95)] * 3  # three ordinary days after the last one tested: the receipt window


def test_p_chart_flags_a_sharp_drop_with_an_exact_test():
    log = make_log(_days([(100, 95)] * 5 + [(100, 70)] + SETTLE, carrier="China Mobile", province="Hebei"))
    a = drop_alerts(log, min_baseline=100)
    assert len(a) == 1
    row = a.iloc[0]
    assert row["period"] == pd.Timestamp("2025-05-06")
    assert row["baseline"] == pytest.approx(0.95)
    assert row["p_value"] == pytest.approx(stats.binom.cdf(70, 100, 0.95))
    assert row["q_value"] == pytest.approx(row["p_value"])  # one group tested that day
    assert row["diff_pp"] == pytest.approx(-25.0)
    assert row["affected"] == 25
    assert row["advice"] == "contact_vendor" and row["began"] == pd.Timestamp("2025-05-06")
    assert a.attrs["rules"]["receipt_window"] == "72h"


def test_cusum_catches_a_slow_drift_no_single_day_shows():
    # 95% for a week, then 91.5% every day: no day passes the p-chart and its 5 points
    log = make_log(_days([(200, 190)] * 7 + [(200, 183)] * 9, carrier="China Unicom", province="Henan"))
    a = drop_alerts(log)
    assert len(a) >= 1 and set(a["detector"]) == {"cusum"}
    assert a["began"].iloc[0] == pd.Timestamp("2025-05-08")
    assert a["advice"].iloc[0] == "contact_vendor"


def test_the_last_days_wait_for_their_receipts():
    # the last two days are mostly pending: not failures, not tested
    rows = _days([(100, 95)] * 10, carrier="China Mobile", province="Hebei")
    for day in (10, 11):
        t = pd.Timestamp("2025-05-01 12:00") + pd.Timedelta(days=day)
        rows += [{"submit": t, "status": "delivered" if i < 60 else "pending", "carrier": "China Mobile",
                  "province": "Hebei"} for i in range(100)]
    log = make_log(rows)
    assert drop_alerts(log, min_baseline=100).empty
    flagged = drop_alerts(log, min_baseline=100, receipt_window="0h")  # without the window: pending as failure
    assert not flagged.empty


def test_a_second_drop_after_an_outage_is_flagged_too():
    # the baseline comes from days without an alarm: the outage does not lower the bar
    days = [(200, 182)] * 14 + [(200, 80)] * 3 + [(200, 182)] * 3 + [(200, 152)] + SETTLE
    a = drop_alerts(make_log(_days(days, carrier="China Mobile", province="Guangdong")))
    flagged = set(a["period"])
    start = pd.Timestamp("2025-05-01")
    assert start + pd.Timedelta(days=14) in flagged  # the outage, on its first day
    second = a[a["period"].eq(start + pd.Timedelta(days=20))]
    assert len(second) == 1 and second["baseline"].iloc[0] == pytest.approx(0.91)
    assert second["p_value"].iloc[0] == pytest.approx(stats.binom.cdf(152, 200, 0.91))


def test_an_alert_names_the_vendor_that_dropped():
    # three vendors in one province; one drops from 95% to 75%: pooled, the drop is diluted
    rows = []
    for vendor, last in (("a", 75), ("b", 95), ("c", 95)):
        rows += _days([(100, 95)] * 5 + [(100, last)] + SETTLE, vendor=vendor, carrier="China Mobile",
                      province="Hebei")
    a = drop_alerts(make_log(rows), min_baseline=100)
    assert a["vendor"].tolist() == ["a"] and a["period"].iloc[0] == pd.Timestamp("2025-05-06")
    assert a["advice"].iloc[0] == "switch_channel" and a["switch_to"].iloc[0] in {"b", "c"}


def test_switch_only_to_a_vendor_measurably_better():
    rows = []
    for vendor, n, last in (("a", 100, 80), ("b", 16, 15)):  # b: 15 of 16 is not measurably above 80 of 100
        rows += _days([(n, round(n * 0.95))] * 5 + [(n, last)] + SETTLE, vendor=vendor, carrier="China Mobile",
                      province="Hebei")
    a = drop_alerts(make_log(rows), min_baseline=60)
    assert a["vendor"].tolist() == ["a"] and a["advice"].iloc[0] == "contact_vendor"
    assert pd.isna(a["switch_to"].iloc[0])


def test_false_discovery_rate_matches_scipy():
    from analysis.alerts import _bh

    rng = np.random.default_rng(5)
    p = rng.uniform(0, 1, 300) ** 3
    period = np.repeat(np.arange(3), 100)
    q = _bh(p, period)
    for d in range(3):
        np.testing.assert_allclose(q[period == d], stats.false_discovery_control(p[period == d], method="bh"))


def test_canaries_pooled_over_a_week():
    rows = _days([(100, 95)] * 52, carrier="China Mobile", province="Hebei")
    # 3 canaries a day, all delivered for five weeks, then none for a week, then a week as usual
    rows += _days([(3, 3)] * 35 + [(3, 0)] * 7 + [(3, 3)] * 10, carrier="China Mobile", province="Hebei",
                  is_probe=True)
    a = drop_alerts(make_log(rows), min_baseline=60)
    assert len(a) >= 1 and a["traffic"].eq("canary").all() and (a["window_days"] == 7).all()
    silent = pd.Timestamp("2025-05-01") + pd.Timedelta(days=35)  # the first day with no canary delivered
    assert a["period"].iloc[0] <= silent < a["period"].iloc[0] + pd.Timedelta(days=7)
    assert (a["submitted"] <= 21).all()


def test_small_periods_and_canaries_apart():
    rows = _days([(100, 95)] * 5 + [(10, 2)] + SETTLE, carrier="China Mobile", province="Hebei")
    rows += _days([(5, 5)] * 9, carrier="China Mobile", province="Hebei", is_probe=True)
    log = make_log(rows)
    assert drop_alerts(log, min_baseline=100).empty  # 10 messages is below min_messages
    rates = period_rates(log)
    assert set(rates["traffic"]) == {"canary", "regular"}
    assert rates.loc[rates["traffic"].eq("canary"), "submitted"].sum() == 45


@pytest.fixture(scope="module")
def demo_log(tmp_path_factory):
    """The demo at 30,000 messages, with the outage."""
    truth = simulate(tmp_path_factory.mktemp("outage"), n=30_000, seed=7)
    return truth, read_send_log(demo_files(truth))


def test_outage_found_on_its_first_day(demo_log):
    truth, log = demo_log
    o = truth["outage"]
    a = drop_alerts(log)
    hit = a[a["carrier"].eq(o["carrier"]) & a["province"].eq(o["province"])]
    start = pd.Timestamp(o["start"])
    first = hit[hit["period"].eq(start.normalize())]
    assert not first.empty, "flagged on its first day"
    assert (first["began"] == start.normalize()).all()
    # every vendor dropped there: no channel to switch to, the carrier is at fault
    assert set(first["advice"]) == {"carrier_wide"} and first["switch_to"].isna().all()


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 11))
def test_no_outage_no_switch_and_at_most_one_alarm_per_group_and_month(seed, tmp_path):
    truth = simulate(tmp_path, n=30_000, seed=seed, outage=False)
    log = read_send_log(demo_files(truth))
    a = drop_alerts(log)
    # an alarm is an episode: consecutive days of one drop share the day it began
    per = a.groupby([a["carrier"].astype(str), a["province"].astype(str), a["period"].dt.to_period("M")])[
        "began"].nunique()
    assert (per <= 1).all(), per[per > 1]
    assert not a["advice"].eq("switch_channel").any()


def test_binomial_tail_and_control_limit_match_scipy_stats():
    """The p-chart's binomial cdf and lower limit (from scipy.special) equal scipy.stats'."""
    from analysis.alerts import ALPHA
    from analysis.stats import binom_cdf, binom_ppf

    rng = np.random.default_rng(3)
    n = rng.integers(1, 20_000, 5_000).astype(float)
    p = rng.uniform(0.5, 1.0, 5_000)
    k = np.floor(rng.random(5_000) * (n + 1))
    np.testing.assert_allclose(binom_cdf(k, n, p), stats.binom.cdf(k, n, p), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(binom_ppf(ALPHA, n, p), stats.binom.ppf(ALPHA, n, p))
