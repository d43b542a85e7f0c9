"""The kernel every measure is built on: integer-coded keys and fast sums, calendar
codes, resend chains, latencies and their histogram, and the row flags every measure
counts (:func:`row_flags`), and the peak windows of the Chinese calendar. Arrays in,
arrays out; nothing here knows a ledger.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .distinct import Coded, key_codes, pa_array
from .schema import STRING

#: The final statuses that are failures (not ``delivered``, not ``pending``).
FINAL_FAILURES = ("failed", "expired", "rejected", "unknown")
DAY_NS = 86_400 * 10**9
HOUR_NS = 3_600 * 10**9
#: A missing time as int64 nanoseconds.
NAT = np.iinfo(np.int64).min


def iso_weeks(times: pd.Series) -> pd.Series:
    """ISO week label (``"2025-W18"``) of each timestamp, computed once per distinct day."""
    return per_day(times, "%G-W%V")


def per_day(times: pd.Series, fmt: str) -> pd.Series:
    """``times`` formatted with ``fmt``, categorical: each distinct local day is formatted
    once and rows take their label by day number (no per-row strings)."""
    return pd.Series(label_days(*day_codes(local_clock(times)), fmt), index=times.index)


def local_clock(times: pd.Series) -> np.ndarray:
    """Local wall-clock time of each timestamp as int64 nanoseconds (``NAT`` where missing)."""
    local = times.dt.tz_localize(None) if times.dt.tz is not None else times
    return local.to_numpy(dtype="datetime64[ns]").view(np.int64)


def day_codes(clock: np.ndarray) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """The calendar day of each :func:`local_clock` time: integer codes (-1 where missing)
    into the sorted distinct days (naive midnights)."""
    valid = clock != NAT
    day = clock // DAY_NS
    if not valid.any():
        return np.full(len(clock), -1, dtype=np.int64), pd.DatetimeIndex([])
    lo, hi = day[valid].min(), day[valid].max()
    if hi - lo < max(len(day), 4096):  # a dense range of days: index by day number
        days, codes = np.arange(lo, hi + 1), day - lo
    else:
        days, inverse = np.unique(day[valid], return_inverse=True)
        codes = np.zeros(len(day), dtype=np.int64)
        codes[valid] = inverse
    return np.where(valid, codes, -1), pd.DatetimeIndex(days * DAY_NS)


def label_days(codes: np.ndarray, days: pd.DatetimeIndex, fmt: str) -> pd.Categorical:
    """Rows' day ``codes`` into ``days`` (:func:`day_codes`) as labels formatted with
    ``fmt``, each day formatted once."""
    labels, categories = pd.factorize(days.strftime(fmt), sort=True)
    rows = np.where(codes >= 0, labels[np.maximum(codes, 0)], -1) if len(days) else codes
    return pd.Categorical.from_codes(rows, categories=categories)


def trailing_sum(values, groups, window: int) -> np.ndarray:
    """Sum of the ``window`` previous values within each group (rows sorted by group,
    then time); NaN on a group's first row."""
    v = np.asarray(values, dtype=float)
    g = np.asarray(groups)
    n = len(v)
    c = np.concatenate([[0.0], np.cumsum(v)])
    i = np.arange(n)
    new = np.ones(n, dtype=bool)
    new[1:] = g[1:] != g[:-1]
    start = np.maximum.accumulate(np.where(new, i, 0))
    lo = np.maximum(start, i - window)
    return np.where(i > start, c[i] - c[lo], np.nan)


def phone_keys(phone: pd.Series) -> np.ndarray:
    """Each phone number as one int64, equal exactly when the numbers are: an E.164
    number's digits as the number itself (``+8613800138000`` -> 8613800138000), any other
    text (a masked number) a negative 62-bit hash of it, 0 where missing. The store keeps
    them beside the numbers (``phone_key``) so that resend chains are found without
    reading the numbers' text."""
    import pyarrow.compute as pc

    text = pa_array(phone.astype(STRING))
    out = np.zeros(len(text), dtype=np.int64)
    digits = pc.fill_null(pc.match_substring_regex(text, r"^\+[1-9][0-9]{0,17}$"), False).to_numpy(zero_copy_only=False)
    out[digits] = pc.cast(pc.utf8_slice_codeunits(text.filter(digits), 1), "int64").to_numpy()
    other = ~digits & ~pc.is_null(text).to_numpy(zero_copy_only=False)
    if other.any():
        hashed = pd.util.hash_array(np.asarray(text.filter(other).to_pylist(), dtype=object))
        out[other] = -((hashed >> np.uint64(2)).astype(np.int64) | (1 << 61))
    return out


def resend_chains(log: pd.DataFrame) -> pd.Series:
    """Id of the original message each row belongs to (its own id for an original).

    A resend (``attempt`` ≥ 2) belongs to the closest earlier original to the same phone
    with the same text (the template when the text is unknown) through the same vendor:
    the platform sends the same message again, while a new verification code to the
    same phone is the user's new request, an original of its own. The phone is compared
    by its :func:`phone_keys` (the log's ``phone_key`` column where it has one: the store's).
    Returns an int64 Series aligned with ``log``: the positional index of the original.
    """
    n = len(log)
    out = np.arange(n, dtype=np.int64)
    attempt = log["attempt"].to_numpy(dtype="float64", na_value=1)
    if not (attempt > 1).any():
        return pd.Series(out, index=log.index, name="chain")
    import pyarrow as pa
    import pyarrow.compute as pc

    keyed = "phone_key" in log
    phone = pa.array(log["phone_key"].to_numpy(dtype=np.int64, na_value=0)) if keyed else pa_array(log["phone"].astype(STRING))
    resent = (attempt > 1) & (pc.not_equal(phone, 0) if keyed else pc.is_valid(phone)).to_numpy(zero_copy_only=False)
    # only the rows to phones that were resent to need sorting (found by pyarrow's hash set)
    rows = np.flatnonzero(pc.is_in(phone, value_set=pc.unique(phone.filter(resent))).to_numpy(zero_copy_only=False))
    phone = phone.take(rows)
    v = key_codes(log["vendor"]).codes[rows]
    p = phone.to_numpy() if keyed else pc.dictionary_encode(phone).indices.to_numpy(zero_copy_only=False).astype(np.int64)
    tpl, text = key_codes(log["template_id"]).codes[rows], key_codes(log["content"].iloc[rows]).codes
    t = log["submit_time"].to_numpy(dtype="datetime64[ms]").astype(np.int64)[rows]
    k = np.where(text >= 0, text, np.where(tpl >= 0, tpl + text.max(initial=0) + 1, -1))
    order = np.lexsort((t, k, p, v))
    vs, ps, ks = v[order], p[order], k[order]
    same = (vs[1:] == vs[:-1]) & (ps[1:] == ps[:-1]) & (ks[1:] == ks[:-1]) & (ks[1:] >= 0)
    starts = np.concatenate([[True], ~same]) | (attempt[rows][order] <= 1)
    out[rows[order]] = rows[order[starts][np.cumsum(starts) - 1]]
    return pd.Series(out, index=log.index, name="chain")


def latency_seconds(log: pd.DataFrame) -> np.ndarray:
    """Seconds from submission to receipt of each delivered message; NaN where unknown:
    not delivered, no receipt time, a send time that was only the receipt's own
    (``time_source = receipt``), or a receipt stamped before the submission (minute-
    resolution SMPP dates)."""
    submit = log["submit_time"].to_numpy(dtype="datetime64[ms]")
    done = log["done_time"].to_numpy(dtype="datetime64[ms]")
    seconds = (done - submit) / np.timedelta64(1, "s")
    ok = equals(log["status"], "delivered")
    if "time_source" in log:
        ok &= ~equals(log["time_source"], "receipt")
    return np.where(ok & (seconds >= 0), seconds, np.nan)


#: Latency percentiles come from a histogram (see :func:`hist_quantiles`): whole-second bins
#: below ``HIST_EXACT`` seconds, then bins ``HIST_RATIO`` times wider each.
HIST_EXACT = 3600  # whole-second bins below this many seconds


HIST_RATIO = 1.01  # then bins this much wider each


def latency_bins(seconds: np.ndarray) -> np.ndarray:
    """Histogram bin of each latency (-1 where missing or negative)."""
    s = np.asarray(seconds, dtype=float)
    out = np.full(len(s), -1, dtype=np.int64)
    ok = np.isfinite(s) & (s >= 0)
    low = ok & (s < HIST_EXACT)
    out[low] = np.floor(s[low]).astype(np.int64)
    high = ok & ~low
    out[high] = HIST_EXACT + np.floor(np.log(s[high] / HIST_EXACT) / np.log(HIST_RATIO) + 1e-9).astype(np.int64)
    return out


def bin_values(bins: np.ndarray) -> np.ndarray:
    """The lower edge of each bin, in seconds."""
    b = np.asarray(bins, dtype=float)
    return np.where(b < HIST_EXACT, b, HIST_EXACT * HIST_RATIO ** (b - HIST_EXACT))


def hist_quantiles(hist: pd.DataFrame, keys: list[str], qs=(0.5, 0.95)) -> pd.DataFrame:
    """Quantiles per group from a histogram (``keys``, ``bin``, ``n``), interpolated
    between order statistics as pandas does."""
    if hist.empty:
        return pd.DataFrame(columns=[*keys, *[f"q{q}" for q in qs]])
    h = hist.groupby([*keys, "bin"], dropna=False, sort=True)["n"].sum().reset_index()
    h = h[h["n"] > 0]
    gid = h.groupby(keys, dropna=False, sort=False).ngroup().to_numpy() if keys else np.zeros(len(h), int)
    n = h["n"].to_numpy(dtype=np.int64)
    cum = np.cumsum(n)
    totals = np.bincount(gid, weights=n).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(totals)[:-1]])
    values = bin_values(h["bin"].to_numpy())
    first = ~pd.Series(gid).duplicated().to_numpy()
    out = h.loc[first, keys].reset_index(drop=True) if keys else pd.DataFrame(index=[0])
    order = gid[first]
    for q in qs:
        pos = (totals - 1) * q
        lo = np.floor(pos).astype(np.int64)
        frac = pos - lo
        i_lo = np.searchsorted(cum, starts + lo, side="right")
        i_hi = np.searchsorted(cum, starts + np.minimum(lo + 1, totals - 1), side="right")
        val = values[i_lo] + frac * (values[i_hi] - values[i_lo])
        out[f"q{q}"] = val[order]
    return out


#: Seconds within which a message counts as arriving fast (the seed's 10 minutes).
FAST_SECONDS = 600


def traffic_of(log: pd.DataFrame) -> pd.Categorical:
    """``canary`` for the probe messages (``is_probe``), ``regular`` for the others."""
    probe = log["is_probe"].to_numpy(dtype=bool, na_value=False)
    return pd.Categorical.from_codes(np.where(probe, 0, 1), categories=["canary", "regular"])


def row_flags(log: pd.DataFrame) -> dict[str, np.ndarray]:
    """What every measure counts, per row, computed once (the in-memory measures and the
    partial aggregates of :mod:`analysis.cubes` both sum these).

    Returns
    -------
    dict of arrays aligned with ``log``:

    * ``delivered``; ``final``: not pending;
    * ``originals``: an original message (not a resend); ``first_ok``: an original
      delivered on its first attempt; ``any_ok``: an original delivered on any attempt of
      its resend chain (:func:`resend_chains`);
    * ``latency``: seconds from this attempt's submission to its receipt (delivered,
      with a receipt time; :func:`latency_seconds`); ``attempt_timed``: that is known;
      ``attempt_fast``: and at most :data:`FAST_SECONDS`;
    * ``recipient_latency``: on an original, seconds from its submission to the first
      delivery across its attempts: what the recipient waited; ``timed``: an original whose
      outcome is known in time (delivered with a receipt time, or finally not delivered),
      the denominator of within-10-minutes; ``fast``: delivered within
      :data:`FAST_SECONDS` of the original submission.
    """
    n = len(log)
    ok = equals(log["status"], "delivered")
    final = ~equals(log["status"], "pending")
    latency = latency_seconds(log)
    chain = resend_chains(log).to_numpy()
    original = chain == np.arange(n)
    # anything true on any attempt of a chain, counted onto its original
    rescued = np.bincount(chain, weights=ok, minlength=n) > 0
    waiting = np.bincount(chain, weights=~final, minlength=n) > 0
    timed_ok = np.isfinite(latency)
    submit = log["submit_time"].to_numpy(dtype="datetime64[ms]").astype(np.int64).astype(float)
    done = submit + np.nan_to_num(latency) * 1000
    # the first delivery of a chain: its original's own, or an earlier one of its resends
    first_done = np.where(timed_ok, done, np.inf)
    resent = timed_ok & ~original
    np.minimum.at(first_done, chain[resent], done[resent])
    recipient = np.where(original & np.isfinite(first_done), (first_done - submit) / 1000, np.nan)
    return {
        "delivered": ok, "final": final, "originals": original, "first_ok": original & ok, "any_ok": original & rescued,
        "latency": latency, "attempt_timed": timed_ok, "attempt_fast": timed_ok & (latency <= FAST_SECONDS),
        "recipient_latency": recipient,
        "timed": original & (np.isfinite(recipient) | (~rescued & ~waiting)),
        "fast": np.isfinite(recipient) & (recipient <= FAST_SECONDS),
    }


def merge_on(left: pd.DataFrame, right: pd.DataFrame, on: list[str], **kw) -> pd.DataFrame:
    """``left.merge(right, on=on, ...)`` with the key columns of both as plain objects: a
    key that is missing everywhere (no carrier, no template) comes out of a groupby as
    float NaN on one side and None on the other, and must still match."""
    on = list(on)
    fix = {k: object for k in on}
    return left.astype(fix).merge(right.astype(fix), on=on, **kw)


def equals(s: pd.Series, value) -> np.ndarray:
    """``s == value`` as a bool array, by code for a categorical (no object array)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        where = s.cat.categories.get_indexer([value])[0]
        return s.cat.codes.to_numpy() == where if where >= 0 else np.zeros(len(s), dtype=bool)
    return s.eq(value).to_numpy(dtype=bool, na_value=False)


def sum_by(frame, keys: list[str], rows: np.ndarray | None = None) -> pd.DataFrame:
    """Sum the value columns per key combination (missing keys form their own group).

    ``frame`` is a DataFrame or a dict of columns (arrays, Series, scalars repeated, or for
    keys already coded, :class:`Coded`), ``rows`` an optional mask. Keys are turned into
    integer codes, combined into one int64 per row and counted with ``np.bincount`` (into a
    dense array when the key combinations are few, after ``np.unique`` otherwise): no sort
    of the rows, no per-row Python objects. A constant value column is multiplied.
    Text keys come back as plain objects (``None`` where missing); cubes are small.
    """
    cols = dict(frame.items()) if isinstance(frame, pd.DataFrame) else dict(frame)
    if rows is not None:
        cols = {c: v if np.isscalar(v) else v.take(rows) if isinstance(v, Coded) else v[rows]
                for c, v in cols.items()}
    values = [c for c in cols if c not in keys]
    codes, levels = [], []
    for k in keys:
        v = cols[k]
        c, lev = v if isinstance(v, Coded) else key_codes(v if isinstance(v, pd.Series) else pd.Series(v))
        codes.append(c)
        levels.append(lev)
    sizes = [len(lev) + 1 for lev in levels]  # code 0 = missing
    rows_left = len(codes[0]) if codes else next((len(v) for v in cols.values() if not np.isscalar(v)), 0)
    space = float(np.prod([float(x) for x in sizes]))
    combined = np.zeros(rows_left, np.int64)
    if space < 2**62:
        for c, size in zip(codes, sizes, strict=True):  # mixed radix, in place
            combined *= size
            combined += c
            combined += 1
    if space <= max(2 * rows_left, 1 << 16):  # few combinations: count into a dense array, no sort
        present = np.flatnonzero(np.bincount(combined, minlength=int(space)))
        parts = np.unravel_index(present, sizes) if codes else []

        def total(w):
            return np.bincount(combined, weights=w, minlength=int(space))[present]
    else:
        if space < 2**62:
            uniq, inverse = np.unique(combined, return_inverse=True)
            parts = np.unravel_index(uniq, sizes)
        else:  # too many combinations for one int64: factorize the rows' code tuples
            inverse, uniq = pd.MultiIndex.from_arrays([c + 1 for c in codes]).factorize()
            parts = [uniq.get_level_values(i).to_numpy() for i in range(len(keys))]

        def total(w):
            return np.bincount(inverse, weights=w, minlength=len(uniq))
    out = {}
    for k, lev, part in zip(keys, levels, parts, strict=True):
        missing = part == 0
        if len(lev) and (pd.api.types.is_numeric_dtype(lev.dtype) or pd.api.types.is_datetime64_any_dtype(lev.dtype)):
            key = pd.Series(lev.take(np.maximum(part - 1, 0)))
            key = key.where(~missing) if missing.any() else key
            out[k] = key if isinstance(key.dtype, pd.DatetimeTZDtype) else key.to_numpy()
        else:  # text: plain objects, None where missing
            text = np.asarray(lev, dtype=object)
            key = text[np.maximum(part - 1, 0)] if len(text) else np.full(len(part), None, dtype=object)
            out[k] = np.where(missing, None, key) if missing.any() else key
    count = total(None)
    for c in values:
        v = cols[c] if np.isscalar(cols[c]) else np.asarray(cols[c])
        if not np.isscalar(v) and len(v) and v.dtype.kind in "biuf" and v[0] == v.min() == v.max():
            v = v[0]  # a constant column (no clicks, one segment each …): no pass over the rows
        if np.isscalar(v) or v.ndim == 0:
            summed = count * v
        else:
            summed = total(v.astype(np.float64))
        kind = np.asarray(cols[c]).dtype.kind
        out[c] = np.asarray(summed).astype(np.int64) if kind in "biu" else np.asarray(summed, dtype=float)
    return pd.DataFrame(out, columns=[*keys, *values])


#: What the arrival measure sums per group besides the rows (``submitted``): the row
#: flags of :func:`row_flags` and the event flags of :func:`analysis.attach_events`.
ARRIVAL_SUMS = ["delivered", "final", "originals", "first_ok", "any_ok", "timed", "fast", "attempt_timed",
                "attempt_fast", "complained", "unsubscribed"]


#: A link in a message: what a click-through needs (``https://…``, ``www.…``, ``x.cn/…``).
LINK = re.compile(r"(?:https?://|www\.)\S+|\b[a-z0-9-]+\.(?:cn|com|net|top|cc|me|io)(?:/\S*)?", re.I)


def has_link(content: pd.Series) -> np.ndarray:
    """Whether each message's text carries a link (the regex runs once per distinct text)."""
    coded = key_codes(content)
    found = np.array([bool(LINK.search(str(t))) for t in coded.levels], dtype=bool)
    return np.where(coded.codes >= 0, found[np.maximum(coded.codes, 0)] if len(found) else False, False)


#: The weekday peak by default: the seed's three stress rounds, 9:00, 9:30 and 10:00,
#: each with its receipts (start inclusive, end exclusive, local time).
PEAK_HOURS = ("09:00", "10:30")


def rest_days(days: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """Which of ``days`` fall in an official rest period and which are adjusted working
    days (调休).

    A rest period is the whole run of days off around a public holiday, as the State
    Council's schedule publishes it: the statutory days, the days off taken in exchange
    and the weekend days between or beside them (1–5 May 2025, not only 1, 2 and 5 May).
    An adjusted working day is a weekend day worked in exchange. From the ``holidays``
    calendar of China.

    Returns
    -------
    ``(in_rest_period, adjusted_workday)``, boolean arrays aligned with ``days``.
    """
    import holidays

    if not len(days):
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=bool)
    lo, hi = days.min() - pd.Timedelta(days=12), days.max() + pd.Timedelta(days=12)
    span = pd.date_range(lo, hi, freq="D")
    cal = holidays.China(years=sorted(set(span.year)))
    statutory = np.array([d in cal for d in span.date], dtype=bool)
    working = np.array([cal.is_working_day(d) for d in span.date], dtype=bool)
    run = np.cumsum(np.r_[True, working[1:] != working[:-1]])  # runs of working / non-working days
    has_holiday = pd.Series(statutory).groupby(run).transform("any").to_numpy()
    rest = ~working & has_holiday
    adjusted = working & (span.day_of_week >= 5)
    where = span.get_indexer(days)
    return rest[where], adjusted[where]


def peak_windows(log: pd.DataFrame, *, peak: tuple[str, str] = PEAK_HOURS) -> pd.Series:
    """Which window each message was sent in, from the submit time.

    ``holiday`` (any day of an official rest period, bridged days included:
    :func:`rest_days`), ``adjusted_workday`` (a weekend day worked in exchange, 调休),
    ``weekday_peak`` (``peak``, 09:00–10:30 by default, on a working day) or
    ``off_peak``. Returns a categorical Series.
    """
    t = log["submit_time"]
    days = t.dt.tz_localize(None).dt.normalize()
    codes, uniques = pd.factorize(days)
    rest, adjusted = rest_days(pd.DatetimeIndex(uniques))
    kind = np.where(rest, 0, np.where(adjusted, 1, 2))
    day_kind = np.where(codes >= 0, kind[np.maximum(codes, 0)] if len(kind) else 3, 3)
    weekend = (t.dt.day_of_week >= 5).to_numpy(dtype=bool, na_value=False)
    minute = (t.dt.hour * 60 + t.dt.minute).to_numpy(dtype=float, na_value=np.nan)
    start, end = (_clock_minutes(x) for x in peak)
    in_peak = (minute >= start) & (minute < end)
    window = np.where(day_kind == 0, "holiday", np.where(day_kind == 1, "adjusted_workday",
                      np.where((day_kind == 2) & ~weekend & in_peak, "weekday_peak", "off_peak")))
    return pd.Series(pd.Categorical(window, categories=PEAK_WINDOWS), index=log.index, name="window")


def _clock_minutes(hhmm: str) -> int:
    h, _, m = hhmm.partition(":")
    return int(h) * 60 + int(m or 0)


PEAK_WINDOWS = ["weekday_peak", "holiday", "adjusted_workday", "off_peak"]
