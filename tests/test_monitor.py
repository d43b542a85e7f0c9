"""Drop alerts: hand-built series, and the demo's outage found (and not invented)."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import demo_files, make_log
from scipy import stats

from analysis import drop_alerts, read_send_log, simulate
from analysis.monitor import period_rates


def _days(rates: list[tuple[int, int]], **extra) -> list[dict]:
    """``(submitted, delivered)`` per day from 2025-05-01."""
    rows = []
    for day, (n, k) in enumerate(rates):
        t = pd.Timestamp("2025-05-01 12:00") + pd.Timedelta(days=day)
        rows += [{"submit": t, "status": "delivered" if i < k else "failed", **extra} for i in range(n)]
    return rows


def test_p_chart_flags_a_sharp_drop_with_an_exact_test():
    log = make_log(_days([(100, 95)] * 5 + [(100, 70)], carrier="China Mobile", province="Hebei"))
    a = drop_alerts(log, min_baseline=100)
    assert len(a) == 1
    row = a.iloc[0]
    assert row["period"] == pd.Timestamp("2025-05-06")
    assert row["baseline"] == pytest.approx(0.95)
    assert row["p_value"] == pytest.approx(stats.binom.cdf(70, 100, 0.95))
    assert row["diff_pp"] == pytest.approx(-25.0)
    assert row["affected"] == 25
    assert row["advice"] == "switch_channel" and row["began"] == pd.Timestamp("2025-05-06")


def test_cusum_catches_a_slow_drift_no_single_day_shows():
    # 95% for a week, then 91-92% every day: no day is beyond the p-chart limit
    log = make_log(_days([(200, 190)] * 7 + [(200, 183)] * 6, carrier="China Unicom", province="Henan"))
    a = drop_alerts(log)
    assert len(a) >= 1 and set(a["detector"]) == {"cusum"}
    assert a["began"].iloc[0] == pd.Timestamp("2025-05-08")
    assert a["advice"].iloc[0] == "contact_vendor"


def test_small_periods_and_canaries_apart():
    rows = _days([(100, 95)] * 5 + [(10, 2)], carrier="China Mobile", province="Hebei")
    rows += _days([(5, 5)] * 6, carrier="China Mobile", province="Hebei", is_probe=True)
    log = make_log(rows)
    assert drop_alerts(log, min_baseline=100).empty  # 10 messages is below min_messages
    rates = period_rates(log)
    assert set(rates["traffic"]) == {"canary", "regular"}
    assert rates.loc[rates["traffic"].eq("canary"), "submitted"].sum() == 30


@pytest.fixture(scope="module")
def demo_logs(tmp_path_factory):
    """The demo at 30,000 messages, with and without the outage (same seed)."""
    out = {}
    for flag in (True, False):
        truth = simulate(tmp_path_factory.mktemp(f"outage-{flag}"), n=30_000, seed=7, outage=flag)
        out[flag] = (truth, read_send_log(demo_files(truth)))
    return out


def test_outage_found_within_a_day_of_its_start(demo_logs):
    truth, log = demo_logs[True]
    o = truth["outage"]
    a = drop_alerts(log)
    hit = a[a["carrier"].eq(o["carrier"]) & a["province"].eq(o["province"])]
    start = pd.Timestamp(o["start"])
    during = hit[hit["period"] >= start.normalize()]
    assert not during.empty
    assert during["period"].iloc[0] - start <= pd.Timedelta(days=1)
    assert during["began"].iloc[0] == start.normalize()
    # every vendor dropped there: no channel to switch to, the carrier is at fault
    day = log[log["carrier"].eq(o["carrier"]) & log["province"].eq(o["province"])
              & log["submit_time"].dt.strftime("%Y-%m-%d").eq(o["start"][:10])]
    per_vendor = day.groupby(day["vendor"].astype(str))["status"].apply(lambda s: (s == "delivered").mean())
    assert (per_vendor < 0.8).all()
    assert during["advice"].iloc[0] == "carrier_wide" and pd.isna(during["switch_to"].iloc[0])


def test_at_most_one_false_alarm_per_group_and_month_without_the_outage(demo_logs):
    _, log = demo_logs[False]
    a = drop_alerts(log)
    per = a.groupby([a["carrier"].astype(str), a["province"].astype(str), a["period"].dt.to_period("M")]).size()
    assert (per <= 1).all()
    # and far fewer alarms than groups × months
    groups = log.groupby(["carrier", "province"], observed=True).ngroups
    assert len(a) <= groups * 2 * 0.05


def test_switch_to_the_vendor_that_kept_delivering():
    rows = []
    for vendor, last in (("a", 60), ("b", 95)):
        rows += _days([(100, 95)] * 5 + [(100, last)], vendor=vendor, carrier="China Mobile", province="Hebei")
    a = drop_alerts(make_log(rows), by=["vendor", "carrier", "province"], min_baseline=100)
    assert a["vendor"].tolist() == ["a"]
    assert a["advice"].iloc[0] == "switch_channel"
    assert a["switch_to"].iloc[0] == "b" and a["switch_to_arrival"].iloc[0] == pytest.approx(0.95)


def test_binomial_tail_and_control_limit_match_scipy_stats():
    """The p-chart's binomial cdf and lower limit (from scipy.special) equal scipy.stats'."""
    import numpy as np

    from analysis.monitor import ALPHA, _binom_cdf, _binom_ppf

    rng = np.random.default_rng(3)
    n = rng.integers(1, 20_000, 5_000).astype(float)
    p = rng.uniform(0.5, 1.0, 5_000)
    k = np.floor(rng.random(5_000) * (n + 1))
    np.testing.assert_allclose(_binom_cdf(k, n, p), stats.binom.cdf(k, n, p), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(_binom_ppf(ALPHA, n, p), stats.binom.ppf(ALPHA, n, p))
