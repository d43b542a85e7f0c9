"""The kernel: fast sums, trailing sums, resend chains, phone keys, calendar labels and
the latency histogram, each against pandas, a row-by-row walk or numpy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_log
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.kernel import (
    HIST_EXACT,
    HIST_RATIO,
    bin_values,
    hist_quantiles,
    latency_bins,
    peak_windows,
    resend_chains,
    rest_days,
)


def _hist(values):
    bins = latency_bins(np.asarray(values, dtype=float))
    return pd.DataFrame({"g": "a", "bin": bins, "n": 1})


@given(st.lists(st.integers(0, HIST_EXACT - 1), min_size=1, max_size=300))
def test_whole_seconds_below_an_hour_are_exact(values):
    q = hist_quantiles(_hist(values), ["g"]).iloc[0]
    assert q["q0.5"] == pytest.approx(np.percentile(values, 50))
    assert q["q0.95"] == pytest.approx(np.percentile(values, 95))


@settings(max_examples=200)
@given(st.lists(st.floats(0, 7 * 86400, allow_nan=False), min_size=1, max_size=300))
def test_any_latency_within_the_stated_bound(values):
    q = hist_quantiles(_hist(values), ["g"]).iloc[0]
    ordered = np.sort(values)
    for p, col in ((50, "q0.5"), (95, "q0.95")):
        exact = np.percentile(values, p)
        above = ordered[int(np.ceil((len(values) - 1) * p / 100))]  # the order statistic above
        bound = max(1.0, above * (1 - 1 / HIST_RATIO)) + 1e-6
        assert exact - bound - 1e-9 <= q[col] <= exact + 1e-9


def test_bins_round_trip_their_lower_edges():
    b = np.array([0, 59, 3599, 3600, 3700, 4200])
    assert (latency_bins(bin_values(b) + 1e-6) == b).all()
    assert latency_bins(np.array([np.nan, -1.0])).tolist() == [-1, -1]


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 100)), max_size=40), st.integers(1, 5))
def test_trailing_sum_matches_pandas_rolling(rows, window):
    from analysis.kernel import trailing_sum

    frame = pd.DataFrame(rows, columns=["g", "v"]).sort_values("g", kind="stable")
    ours = trailing_sum(frame["v"], frame["g"], window)
    theirs = frame.groupby("g")["v"].transform(lambda s: s.shift().rolling(window, min_periods=1).sum())
    np.testing.assert_allclose(ours, theirs.to_numpy(dtype=float))


@given(st.lists(st.tuples(st.sampled_from(["a", "b", None]), st.integers(0, 400), st.integers(0, 9)), max_size=60),
       st.booleans())
def test_sum_by_matches_pandas_groupby(rows, sparse):
    """Both reductions (dense counting and np.unique for many key combinations) equal a
    pandas groupby that keeps missing keys."""
    from analysis.kernel import sum_by

    frame = pd.DataFrame(rows, columns=["k", "n", "v"]).astype({"k": "str"})
    if sparse:  # a key with more distinct values than rows forces the np.unique path
        frame["n"] = frame["n"] * 10**9
    ours = sum_by({"k": frame["k"], "n": frame["n"].to_numpy(), "v": frame["v"].to_numpy(), "one": 1}, ["k", "n"])
    theirs = frame.groupby(["k", "n"], dropna=False)["v"].agg(["sum", "size"]).reset_index()
    assert len(ours) == len(theirs)
    merged = ours.astype({"k": object}).fillna({"k": "-"}).merge(theirs.astype({"k": object}).fillna({"k": "-"}))
    assert len(merged) == len(theirs)
    assert (merged["v"] == merged["sum"]).all() and (merged["one"] == merged["size"]).all()


@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 1), st.integers(0, 20), st.integers(1, 3)),
                min_size=1, max_size=40))
def test_resend_chains_match_a_row_by_row_walk(rows):
    """Each resend links to its closest earlier message (same vendor, phone, template)
    and through it to the original: checked by walking the rows one by one."""
    frame = pd.DataFrame(rows, columns=["phone", "template", "minute", "attempt"])
    log = make_log([{"phone": f"+861380000000{p}", "template_id": f"T{t}", "submit": f"2025-05-06 10:{m:02d}:00",
                     "attempt": a} for p, t, m, a in rows])
    chain = resend_chains(log).tolist()
    order = sorted(range(len(frame)), key=lambda i: (frame["minute"][i], i))
    expected = {}
    for i in order:
        earlier = [j for j in order[: order.index(i)]
                   if (frame["phone"][j], frame["template"][j]) == (frame["phone"][i], frame["template"][i])]
        expected[i] = i if frame["attempt"][i] <= 1 or not earlier else expected[earlier[-1]]
    assert chain == [expected[i] for i in range(len(frame))]


@given(st.lists(st.one_of(st.none(), st.from_regex(r"\+[1-9][0-9]{0,17}", fullmatch=True),
                          st.from_regex(r"\+?[0-9*]{1,16}", fullmatch=True), st.text(max_size=6)), max_size=30))
def test_phone_keys_are_equal_exactly_when_the_numbers_are(phones):
    """An E.164 number's key is its digits; two keys are equal exactly when the numbers
    are; a missing number is 0."""
    from analysis.kernel import phone_keys
    from analysis.schema import STRING

    keys = phone_keys(pd.Series(phones, dtype=STRING))
    for phone, key in zip(phones, keys, strict=True):
        if phone is None:
            assert key == 0
        elif phone[:1] == "+" and phone[1:].isdigit() and phone[1:2] != "0" and phone.isascii():
            assert key == int(phone[1:])
        else:
            assert key < 0
    pairs = list(zip(phones, keys, strict=True))
    assert all((a == b) == (ka == kb) for a, ka in pairs for b, kb in pairs)


@given(st.lists(st.one_of(st.none(), st.integers(-2 * 10**9, 4 * 10**9)), min_size=1, max_size=50))
def test_week_and_month_labels_match_strftime(seconds):
    """Labels made once per day (dense day range or sparse) equal per-row strftime, NaT kept."""
    from analysis.kernel import iso_weeks, per_day

    t = pd.Series(pd.to_datetime([None if s is None else s for s in seconds], unit="s", utc=True))
    t = t.dt.tz_convert("Asia/Shanghai")
    for ours, fmt in ((iso_weeks(t), "%G-W%V"), (per_day(t, "%Y-%m"), "%Y-%m")):
        theirs = t.dt.strftime(fmt)
        assert ours.astype(object).where(ours.notna(), None).tolist() == \
            theirs.astype(object).where(theirs.notna(), None).tolist()


# --------------------------------------------------------------------------- calendar


def test_peak_windows_use_the_holiday_calendar():
    log = make_log([
        {"submit": "2025-05-01 09:30"},  # Labour Day
        {"submit": "2025-04-27 09:30"},  # Sunday worked in exchange (调休)
        {"submit": "2025-05-06 09:30"},  # ordinary Tuesday, peak hour
        {"submit": "2025-05-06 10:29"},  # the seed's third stress round (10:00) is still peak
        {"submit": "2025-05-06 10:30"},  # same day after the peak
        {"submit": "2025-05-10 09:30"},  # Saturday off
        {"submit": "2025-10-01 09:00"},  # National Day
        {"submit": "2025-05-03 09:30"},  # a Saturday inside the Labour Day rest period
    ])
    assert peak_windows(log).tolist() == ["holiday", "adjusted_workday", "weekday_peak", "weekday_peak", "off_peak",
                                          "off_peak", "holiday", "holiday"]
    assert peak_windows(log, peak=("09:00", "10:00")).iloc[3] == "off_peak"


#: The State Council's published holiday schedules (国务院办公厅关于节假日安排的通知) for
#: 2024, 2025 and 2026: every rest period (first and last day off) and every adjusted
#: working day, typed from the notices, not from the calendar the code uses.
REST_PERIODS = {
    2024: [("2023-12-30", "2024-01-01"), ("2024-02-10", "2024-02-17"), ("2024-04-04", "2024-04-06"),
           ("2024-05-01", "2024-05-05"), ("2024-06-08", "2024-06-10"), ("2024-09-15", "2024-09-17"),
           ("2024-10-01", "2024-10-07")],
    2025: [("2025-01-01", "2025-01-01"), ("2025-01-28", "2025-02-04"), ("2025-04-04", "2025-04-06"),
           ("2025-05-01", "2025-05-05"), ("2025-05-31", "2025-06-02"), ("2025-10-01", "2025-10-08")],
    2026: [("2026-01-01", "2026-01-03"), ("2026-02-15", "2026-02-23"), ("2026-04-04", "2026-04-06"),
           ("2026-05-01", "2026-05-05"), ("2026-06-19", "2026-06-21"), ("2026-09-25", "2026-09-27"),
           ("2026-10-01", "2026-10-07")],
}
ADJUSTED_WORKDAYS = {
    2024: ["2024-02-04", "2024-02-18", "2024-04-07", "2024-04-28", "2024-05-11", "2024-09-14", "2024-09-29",
           "2024-10-12"],
    2025: ["2025-01-26", "2025-02-08", "2025-04-27", "2025-09-28", "2025-10-11"],
    2026: ["2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"],
}


@pytest.mark.parametrize("year", [2024, 2025, 2026])
def test_rest_periods_match_the_published_schedule(year):
    days = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
    rest, adjusted = rest_days(days)
    published = set()
    for first, last in REST_PERIODS[year]:
        published |= {d for d in pd.date_range(first, last, freq="D") if d.year == year}
    assert set(days[rest]) == published
    assert sorted(days[adjusted].strftime("%Y-%m-%d")) == ADJUSTED_WORKDAYS[year]
