"""Drop alerts: hand-built series, and the demo's outage found (and not invented)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import demo_files, make_log
from scipy import stats

from analysis import drop_alerts, read_send_log, simulate
from analysis.alerts import alerts_from_counts, period_rates
from analysis.stats import wilson_interval


def _days(rates: list[tuple[int, int]], start: str = "2025-05-01", **extra) -> list[dict]:
    """``(submitted, delivered)`` per day from ``start``."""
    rows = []
    for day, (n, k) in enumerate(rates):
        t = pd.Timestamp(start + " 12:00") + pd.Timedelta(days=day)
        rows += [{"submit": t, "status": "delivered" if i < k else "failed", **extra} for i in range(n)]
    return rows


def _counts(rates: list[tuple[int, int]], start: str = "2025-07-01", **keys) -> pd.DataFrame:
    """The daily count table alerts take (``cubes.daily``'s columns), one group."""
    keys = {"vendor": "v", "carrier": "China Mobile", "province": "Hebei", **keys}
    n, k = (np.array(x) for x in zip(*rates, strict=True))
    return pd.DataFrame({"period": pd.date_range(start, periods=len(rates), freq="D").as_unit("ms"), **keys,
                         "traffic": "regular", "submitted": n, "delivered": k, "blocked": 0, "originals": n,
                         "first_ok": k})


SETTLE = [(100, 95)] * 3  # three ordinary days after the last one tested: the receipt window
#: Two holiday-free weeks (July): a baseline needs seven in-control days, a drift's reference more.
JULY = "2025-07-01"


def _day_p(k: int, n: int, k0: int, n0: int, tau2: float = 0.0, s2: float = 0.0) -> float:
    """The day test's p-value computed independently with scipy.stats.betabinom: the
    Jeffreys mean of the baseline, its variance plus the between-day variance, the null
    allowing a drop of TOLERANCE × 5 points."""
    from analysis.alerts import TOLERANCE

    m0 = (k0 + 0.5) / (n0 + 1)
    var = m0 * (1 - m0) / (n0 + 1) + tau2 * s2 + tau2
    m = m0 - TOLERANCE * 0.05
    s = m * (1 - m) / var - 1
    return float(stats.betabinom.cdf(k, n, m * s, (1 - m) * s))


def test_day_test_flags_a_sharp_drop_with_the_baselines_own_uncertainty():
    log = make_log(_days([(100, 95)] * 14 + [(100, 70)] + SETTLE, start=JULY, carrier="China Mobile",
                         province="Hebei"))
    a = drop_alerts(log, min_baseline=100)
    assert len(a) == 1
    row = a.iloc[0]
    assert row["period"] == pd.Timestamp(JULY) + pd.Timedelta(days=14)
    assert row["baseline"] == pytest.approx(0.95)
    # constant days: no between-day variance; the baseline's 1,400 messages are its uncertainty
    assert row["p_value"] == pytest.approx(_day_p(70, 100, 1330, 1400), rel=1e-6)
    assert row["q_value"] == pytest.approx(row["p_value"])  # one group tested that day
    assert row["diff_pp"] == pytest.approx(-25.0)
    assert row["affected"] == 25 and row["detector"] == "p-chart"
    assert row["advice"] == "contact_vendor" and row["began"] == row["period"]  # alone there: contact it
    assert a.attrs["rules"]["receipt_window"] == "72h"


def test_a_perfect_baseline_is_not_known_exactly():
    # the case: 14 days with every message delivered, then 31 of 33: no alarm, no advice
    rows = _days([(200, 200)] * 14 + [(33, 31)] + SETTLE, start=JULY, vendor="a", carrier="China Mobile",
                 province="Hebei")
    rows += _days([(400, 396)] * 18, start=JULY, vendor="b", carrier="China Mobile", province="Hebei")
    assert drop_alerts(make_log(rows)).empty
    # as a binomial test against a known 100% it was p = 0; here the baseline is a Beta(2800.5, 0.5)
    assert _day_p(31, 33, 2800, 2800) > 0.05


def test_no_baseline_before_seven_in_control_days():
    log = make_log(_days([(400, 380)] * 5 + [(400, 200)] + SETTLE, start=JULY, carrier="China Mobile",
                         province="Hebei"))
    assert drop_alerts(log).empty  # 2,000 messages, but five days cannot show the day-to-day variation


def test_day_to_day_variation_from_the_groups_own_history():
    # the same day (89%, 6 points down, of 5,000 messages) after a steady and after a swinging history
    def day(history):
        return alerts_from_counts(_counts(history + [(5000, 4450)] + [(5000, 4750)] * 3))

    assert len(day([(5000, 4750)] * 14)) == 1
    swinging = [(5000, 4500), (5000, 5000)] * 7  # 90% and 100% by turns: about 5 points of true variation
    assert day(swinging).empty


def test_drift_test_catches_a_slow_drift_no_single_day_shows():
    # 95% for four weeks, then 91.5% every day: no day is 5 points down; the week is 3.5
    days = [(200, 190)] * 28 + [(200, 183)] * 14 + SETTLE
    a = drop_alerts(make_log(_days(days, start=JULY, carrier="China Unicom", province="Henan")))
    assert len(a) >= 1 and set(a["detector"]) == {"drift"}
    first_drop = pd.Timestamp(JULY) + pd.Timedelta(days=28)
    assert a["period"].min() >= first_drop  # nothing before the drift
    assert (a["began"] == first_drop).all()  # one episode, from the drift's first day
    assert a["advice"].eq("contact_vendor").all() and a["switch_to"].isna().all()
    assert (a["drift_pp"] <= -2 + 1e-9).all()


def test_a_drop_below_the_drift_minimum_is_no_drift():
    # a 1-point dip for two weeks in a large group: significant, but below the 2-point minimum
    days = [(20_000, 19_400)] * 28 + [(20_000, 19_200)] * 14 + [(20_000, 19_400)] * 3
    assert alerts_from_counts(_counts(days)).empty


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
    a = drop_alerts(make_log(_days(days, start=JULY, carrier="China Mobile", province="Guangdong")))
    flagged = set(a["period"])
    start = pd.Timestamp(JULY)
    assert start + pd.Timedelta(days=14) in flagged  # the outage, on its first day
    second = a[a["period"].eq(start + pd.Timedelta(days=20))]
    assert len(second) == 1 and second["baseline"].iloc[0] == pytest.approx(0.91)
    # its baseline: the 11 in-control days of the previous 14 (the outage's 3 left out)
    assert second["p_value"].iloc[0] == pytest.approx(_day_p(152, 200, 11 * 182, 11 * 200), rel=1e-6)
    assert second["began"].iloc[0] == start + pd.Timedelta(days=20)  # its own episode


def test_an_alert_names_the_vendor_that_dropped():
    # three vendors in one province; one drops from 95% to 75% for two days: pooled, the drop is diluted
    rows = []
    for vendor, n, last in (("a", 100, 75), ("b", 400, 380), ("c", 400, 380)):
        rows += _days([(n, round(n * 0.95))] * 14 + [(n, last)] * 2 + SETTLE, start=JULY, vendor=vendor,
                      carrier="China Mobile", province="Hebei")
    a = drop_alerts(make_log(rows), min_baseline=100)
    first = pd.Timestamp(JULY) + pd.Timedelta(days=14)
    assert a["vendor"].tolist() == ["a", "a"] and a["period"].tolist() == [first, first + pd.Timedelta(days=1)]
    # 20 points down on 100 messages is shown beyond the 5-point minimum at once: switch from the first day
    assert a["advice"].tolist() == ["switch_channel"] * 2 and set(a["switch_to"]) <= {"b", "c"}
    assert a["switch_to_arrival"].iloc[0] == pytest.approx(0.95)
    assert (a["began"] == first).all()


def test_a_single_bad_day_short_of_proof_is_for_the_vendor_to_explain():
    # 84 of 100 after 95%: an alarm, but not shown 5 points down at 0.01% (nor 1%): contact the vendor
    def advice(days):
        rows = _days([(100, 95)] * 14 + days + SETTLE, start=JULY, vendor="a", carrier="China Mobile",
                      province="Hebei")
        for vendor in ("b", "c"):
            rows += _days([(400, 380)] * (14 + len(days) + 3), start=JULY, vendor=vendor, carrier="China Mobile",
                          province="Hebei")
        return drop_alerts(make_log(rows), min_baseline=100)["advice"].tolist()

    assert advice([(100, 84)]) == ["contact_vendor"]
    # the same shortfall again the next day, shown beyond 5 points at 1% over the two: switch then
    assert stats.binom.cdf(80, 100, 0.90) < 0.01 < stats.binom.cdf(84, 100, 0.90)
    assert advice([(100, 84), (100, 80)]) == ["contact_vendor", "switch_channel"]


def test_switch_only_to_a_proven_vendor_ranked_by_its_lower_bound():
    # a drops; b sends 17 messages, all delivered, with no history; c sends 400 at 99% with its own baseline
    rows = _days([(100, 95)] * 14 + [(100, 70)] * 2 + SETTLE, start=JULY, vendor="a", carrier="China Mobile",
                 province="Hebei")
    rows += _days([(17, 17)] * 2, start="2025-07-15", vendor="b", carrier="China Mobile", province="Hebei")
    rows += _days([(400, 396)] * 19, start=JULY, vendor="c", carrier="China Mobile", province="Hebei")
    a = drop_alerts(make_log(rows), min_baseline=100)
    row = a[a["vendor"].eq("a")].iloc[1]
    assert row["advice"] == "switch_channel" and row["switch_to"] == "c"
    # c's 95% lower bound that day (Wilson) is above b's: b has 17 messages and no record
    assert wilson_interval(396, 400).low > wilson_interval(17, 17).low


def test_no_proven_alternative():
    rows = []
    for vendor, n, last in (("a", 100, 80), ("b", 16, 15)):  # b: 15 of 16 proves nothing
        rows += _days([(n, round(n * 0.95))] * 14 + [(n, last)] + SETTLE, start=JULY, vendor=vendor,
                      carrier="China Mobile", province="Hebei")
    a = drop_alerts(make_log(rows), min_baseline=60)
    assert a["vendor"].tolist() == ["a"] and a["advice"].iloc[0] == "no_alternative"
    assert pd.isna(a["switch_to"].iloc[0])


def test_carrier_wide_needs_another_vendor_down_and_none_known_fine():
    def advice(b_last, b_n=400):
        rows = _days([(400, 380)] * 14 + [(400, 240)] * 2 + [(400, 380)] * 3, start=JULY, vendor="a",
                     carrier="China Mobile", province="Hebei")
        rows += _days([(b_n, round(b_n * 0.95))] * 14 + [(b_n, b_last)] * 2 + [(b_n, round(b_n * 0.95))] * 3,
                      start=JULY, vendor="b", carrier="China Mobile", province="Hebei")
        a = drop_alerts(make_log(rows))
        return a.loc[a["vendor"].eq("a"), "advice"].iloc[1]  # the drop's second day

    assert advice(250) == "carrier_wide"  # b dropped as well
    assert advice(380) == "switch_channel"  # b is fine and proven
    # b: 37 of 40 (2.5 points down, "looks fine": the case) is neither known to be fine nor dropped
    assert advice(37, b_n=40) == "no_alternative"
    assert wilson_interval(37, 40).low < 0.95 - 0.05


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


@pytest.mark.slow
def test_decision_rules_on_traffic_with_its_own_truth():
    """A small version of benchmarks/bench_rules.py: 372 groups of very unequal volume,
    weekly and holiday swings, overdispersed days; the issue's targets on a few
    replicates (the benchmark measures them on 40)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
    import bench_rules as bench

    free = [bench.run_outage_free(seed) for seed in (1, 2, 3)]
    assert sum(r["episodes"] for r in free) / sum(r["group_months"] for r in free) <= 0.02
    assert sum(r["switch"] for r in free) == 0
    assert sum(bench.run_one_vendor(10_000 + seed)["hit"] for seed in range(5)) >= 4
    assert sum(bench.run_carrier_wide(20_000 + seed)["hit"] for seed in range(5)) >= 4
    assert sum(bench.run_drift(30_000 + seed)["hit"] for seed in range(5)) >= 4
