import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.normalize import (
    count_segments,
    infer_attempts,
    infer_categories,
    mask_phones,
    normalize_phones,
    parse_times,
)

TZ = "Asia/Shanghai"


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("13800138000", "+8613800138000"),
        ("+86 138-0013-8000", "+8613800138000"),
        ("008613800138000", "+8613800138000"),
        ("8613800138000", "+8613800138000"),
        ("13800138000.0", "+8613800138000"),  # a spreadsheet's number
        ("138****0000", "+86138****0000"),
        ("+447911123456", "+447911123456"),
        ("00447911123456", "+447911123456"),
    ],
)
def test_phones_to_e164(raw, expected):
    phone, reason = normalize_phones(pd.Series([raw]))
    assert phone[0] == expected and pd.isna(reason[0])


@pytest.mark.parametrize("raw", ["1.38001E+10", "1.3800138E+10", "1.38001e10"])
def test_scientific_notation_is_rejected_never_guessed(raw):
    phone, reason = normalize_phones(pd.Series([raw]))
    assert pd.isna(phone[0])
    assert reason[0].startswith("precision lost")


def test_invalid_and_missing_phones_have_reasons():
    # 9905407539 is no Chinese mobile (a landline of area 990 at best) and no number with a
    # "+" before it: an Indian mobile written without its country code cannot be told
    phone, reason = normalize_phones(pd.Series(["12345", None, "9905407539"]))
    assert phone.isna().all()
    assert reason.tolist() == ["invalid phone number: 12345", "missing phone", "invalid phone number: 9905407539"]


@pytest.mark.parametrize(("raw", "region", "international", "e164"), [
    ("447911123456", "CN", False, "+447911123456"),   # no Chinese number; a UK mobile with its country code
    ("34683607594", "CN", False, "+34683607594"),     # a Spanish mobile (the probe)
    ("13800138000", "CN", False, "+8613800138000"),   # a Chinese mobile first
    ("4155550123", "US", False, "+14155550123"),      # national in the layout's region
    ("919876543210", "CN", True, "+919876543210"),    # the vendor writes country codes
    ("911231231231", "CN", True, "+911231231231"),    # any number of the plan when the vendor sent to it
    ("911231231231", "CN", False, None),              # guessed from a bare string: an Indian landline, refused
])
def test_a_bare_number_is_read_in_its_region_or_with_its_country_code(raw, region, international, e164):
    import phonenumbers

    phone, _ = normalize_phones(pd.Series([raw]), region=region, international=international)
    assert (phone[0] if pd.notna(phone[0]) else None) == e164
    if e164:  # the independent check: phonenumbers takes it for a valid or possible number of that country
        number = phonenumbers.parse(e164, None)
        assert phonenumbers.is_possible_number(number)


def test_a_mixed_column_normalises_as_each_value_alone():
    # plain mobiles take a one-pass path and the rest the full one: together, on an index
    # that repeats, each value comes out as it does alone
    raws = ["13800138000", "+86 138-0013-8000", "12345", None, "8613800138000", "138****0000", "+447911123456",
            "1.38001E+10", "+8613900139000"]
    phone, reason = normalize_phones(pd.Series(raws, index=[0, 0, 1, 1, 2, 2, 3, 3, 4]))
    alone = [normalize_phones(pd.Series([r])) for r in raws]
    assert phone.tolist() == [p[0] for p, _ in alone]
    assert [None if pd.isna(r) else r for r in reason] == [None if pd.isna(w[0]) else w[0] for _, w in alone]


@given(
    second=st.sampled_from("3456789"),
    rest=st.text(alphabet="0123456789", min_size=9, max_size=9),
    form=st.sampled_from(["{n}", "+86{n}", "0086{n}", "86{n}", "+86 {a} {b} {c}", "{a}-{b}-{c}"]),
)
def test_any_chinese_mobile_in_any_form_normalises(second, rest, form):
    n = "1" + second + rest
    raw = form.format(n=n, a=n[:3], b=n[3:7], c=n[7:])
    phone, reason = normalize_phones(pd.Series([raw]))
    assert phone[0] == "+86" + n
    assert pd.isna(reason[0])


def test_mask_phones():
    masked = mask_phones(pd.Series(["+8613800138000", "+447911123456", None], dtype="string[pyarrow]"))
    assert masked.tolist()[:2] == ["138****8000", "+44******3456"]
    assert pd.isna(masked[2])


@given(
    t=st.datetimes(min_value=pd.Timestamp("2000-01-01").to_pydatetime(), max_value=pd.Timestamp("2040-01-01").to_pydatetime()),
    form=st.sampled_from(["%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"]),
)
@settings(max_examples=60)
def test_local_times_round_trip(t, form):
    t = t.replace(microsecond=0)
    parsed, reason = parse_times(pd.Series([t.strftime(form)]), tz=TZ)
    assert parsed[0] == pd.Timestamp(t).tz_localize(TZ)
    assert pd.isna(reason[0])


@given(t=st.datetimes(min_value=pd.Timestamp("2001-01-01").to_pydatetime(), max_value=pd.Timestamp("2037-01-01").to_pydatetime()))
@settings(max_examples=60, deadline=None)  # a loaded machine is no parser's fault
def test_utc_forms_convert(t):
    t = pd.Timestamp(t.replace(microsecond=0), tz="UTC")
    expected = t.tz_convert(TZ)
    iso = parse_times(pd.Series([t.strftime("%Y-%m-%dT%H:%M:%SZ")]), tz=TZ)[0][0]
    unix = parse_times(pd.Series([str(int(t.timestamp()))]), tz=TZ, form="unix")[0][0]
    naive_utc = parse_times(pd.Series([t.strftime("%Y-%m-%d %H:%M:%S")]), tz=TZ, source_tz="UTC")[0][0]
    smpp = parse_times(pd.Series([t.strftime("%y%m%d%H%M%S")]), tz=TZ, form="yymmddhhmm", source_tz="UTC")[0][0]
    assert iso == unix == naive_utc == smpp == expected


def test_unreadable_times_have_reasons():
    parsed, reason = parse_times(pd.Series(["2025-13-45 99:00", "", None, "2505061"]), tz=TZ)
    assert parsed.isna().all()
    assert reason[0] == "unreadable time: 2025-13-45 99:00"
    assert pd.isna(reason[1]) and pd.isna(reason[2])
    assert parse_times(pd.Series(["250506090"]), tz=TZ, form="yymmddhhmm")[1][0].startswith("unreadable")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("中" * 70, 1), ("中" * 71, 2), ("中" * 68, 1), ("中" * 134, 2), ("中" * 135, 3), ("中" * 160, 3),
        ("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3),
        ("{" * 80, 1), ("{" * 81, 2),  # extension characters count 2
        ("a" * 69 + "é", 1),  # é is in GSM-7
        ("a" * 70 + "ā", 2),  # ā is not: UCS-2, 71 characters
        ("【签名】" + "中" * 66, 1), ("【签名】" + "中" * 67, 2),  # the signature counts
    ],
)
def test_segments_hand_counted(text, expected):
    assert count_segments(pd.Series([text]))[0] == expected


@given(st.text(alphabet="中文短信验证码abc", min_size=0, max_size=600))
def test_segments_match_the_rule(text):
    n = len(text)
    ascii_only = all(c in "abc" for c in text)
    expected = (1 if n <= 160 else math.ceil(n / 153)) if ascii_only else (1 if n <= 70 else math.ceil(n / 67))
    assert count_segments(pd.Series([text]))[0] == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("😀" * 35, 1), ("😀" * 36, 2),  # an emoji is two UCS-2 units: 70 units, then 72
        ("中" * 69 + "😀", 2),  # 71 units
        ("中" * 66 + "😀", 1),  # 68 units fit one message
        ("a" * 152 + "{" + "a" * 152, 3),  # 306 septets, but "{" cannot straddle parts 1 and 2
        ("a" * 153 + "{" + "a" * 151, 2),  # the same 306 septets, the escape at a part's start
        ("中" * 66 + "😀" + "中" * 66, 3),  # 134 units, the emoji across the first part's end
    ],
)
def test_segments_two_unit_characters(text, expected):
    assert count_segments(pd.Series([text]))[0] == expected


def _reference_segments(text: str) -> int:
    """The encoding rules written out: the text as its units (GSM-7 septets, an escaped
    character as the escape plus itself; else UTF-16 code units), cut into parts of 153
    or 67 units without separating the two units of one character."""
    from analysis.normalize import _GSM7, _GSM7_EXT

    gsm = all(c in _GSM7 or c in _GSM7_EXT for c in text)
    if gsm:
        units = [[0x1B, ord(c)] if c in _GSM7_EXT else [ord(c)] for c in text]
    else:
        data = text.encode("utf-16-le")
        code = [int.from_bytes(data[i:i + 2], "little") for i in range(0, len(data), 2)]
        units, i = [], 0
        while i < len(code):  # a high surrogate and its low one are one character
            width = 2 if 0xD800 <= code[i] < 0xDC00 else 1
            units.append(code[i:i + width])
            i += width
    total = sum(len(u) for u in units)
    if total <= (160 if gsm else 70):
        return 1
    size = 153 if gsm else 67
    parts = [[]]
    for u in units:
        if sum(map(len, parts[-1])) + len(u) > size:
            parts.append([])
        parts[-1].append(u)
    return len(parts)


@given(st.text(alphabet="ab{€|中😀é", min_size=0, max_size=400))
def test_segments_match_a_reference_encoder(text):
    assert count_segments(pd.Series([text]))[0] == _reference_segments(text)


def test_categories_from_wording():
    got = infer_categories(pd.Series(["【A】您的验证码是1234", "【A】大促回T退订", "【A】您的订单已发货", "Reply STOP to opt out", None]))
    assert got.tolist()[:4] == ["verification", "marketing", "notification", "marketing"]


def _log(rows):
    frame = pd.DataFrame(rows, columns=["vendor", "phone", "template_id", "content", "submit_time", "status"])
    frame["submit_time"] = pd.to_datetime(frame["submit_time"]).dt.tz_localize(TZ)
    return frame


def test_resends_inferred_after_failure_within_window():
    log = _log([
        ("v", "+861", "T", None, "2025-05-06 09:00", "failed"),
        ("v", "+861", "T", None, "2025-05-06 09:05", "failed"),    # resend of the first
        ("v", "+861", "T", None, "2025-05-06 09:10", "delivered"),  # resend of that: attempt 3
        ("v", "+861", "T", None, "2025-05-06 09:20", "delivered"),  # previous delivered: new original
        ("v", "+862", "T", None, "2025-05-06 09:00", "failed"),
        ("v", "+862", "T", None, "2025-05-06 09:45", "delivered"),  # 45 min later: outside window
        ("v", "+863", "T", None, "2025-05-06 09:00", "failed"),
        ("v", "+863", "U", None, "2025-05-06 09:01", "delivered"),  # other template
        ("w", "+863", "T", None, "2025-05-06 09:02", "delivered"),  # other vendor
    ])
    before = log.copy()
    assert infer_attempts(log).tolist() == [1, 2, 3, 1, 1, 1, 1, 1, 1]
    assert infer_attempts(log, window="1h").tolist()[5] == 2
    pd.testing.assert_frame_equal(log, before)  # input untouched


def test_given_attempts_are_kept():
    log = _log([("v", "+861", "T", None, "2025-05-06 09:00", "failed"), ("v", "+861", "T", None, "2025-05-06 09:05", "failed")])
    log["attempt"] = pd.array([1, 1], dtype="Int16")
    assert infer_attempts(log).tolist() == [1, 1]


def test_mask_text_phones_inside_free_text():
    from analysis.normalize import mask_text_phones

    text = pd.Series(['{"phone":"13800138000","id":"x"}', "to +8613912345678 and 8613700001111", "+447700900123",
                     "order 2025050612345678 ref", "138****0000 stays", None])
    out = mask_text_phones(text).tolist()
    assert out[0] == '{"phone":"138****8000","id":"x"}'
    assert out[1] == "to +86139****5678 and 86137****1111"
    assert out[2] == "+44******0123"  # as mask_phones hides an E.164 number
    assert out[3] == "order 2025050612345678 ref"  # part of a longer number: not a phone
    assert out[4] == "138****0000 stays" and pd.isna(out[5])


_PART = st.one_of(
    st.tuples(st.integers(1900, 2100), st.integers(0, 13), st.integers(0, 32)).map(lambda d: f"{d[0]:04d}-{d[1]:02d}-{d[2]:02d}"),
    st.sampled_from(["20250228", "2025-2-3", "2025/02/28", "", "x", "2025-059", "2025-W09-5"]),
)
_CLOCK = st.one_of(
    st.just(""),
    st.tuples(st.sampled_from([" ", "T", "  ", "t"]), st.integers(0, 25), st.integers(0, 60), st.integers(0, 61),
              st.sampled_from(["", ".5", ".123", ".123456", ".123456789"]), st.booleans()).map(
        lambda c: f"{c[0]}{c[1]:02d}:{c[2]:02d}" + (f":{c[3]:02d}{c[4]}" if c[5] else "")),
)


@given(st.lists(st.tuples(_PART, _CLOCK).map("".join), min_size=1, max_size=8))
@settings(max_examples=300, deadline=None)
def test_arrow_fast_path_reads_naive_times_as_pandas_does(values):
    """Arrow's cast takes a column only when it reads every value, and then to the times
    pandas' ISO 8601 parser gives (impossible dates, hour 24, one-digit fields, ordinal
    and week dates go to pandas)."""
    from analysis.normalize import _to_datetime

    s = pd.Series(values, dtype="string[pyarrow]", index=range(10, 10 + len(values)))
    want = pd.to_datetime(s, format="ISO8601", errors="coerce").dt.as_unit("us")
    left = want.isna() & s.notna()
    if left.any():
        want[left] = pd.to_datetime(s[left], format="mixed", errors="coerce").dt.as_unit("us")
    pd.testing.assert_series_equal(_to_datetime(s, utc=False), want)


def test_times_pandas_reads_only_with_its_mixed_parser_keep_their_fractions():
    """Every value of the column fails ISO 8601 and the mixed-format parser finds a
    fraction of a second: both parsers' results must fit one column (this crashed)."""
    parsed, reason = parse_times(pd.Series(["20250228  00:00:00.5", "20250301  12:30:00.25"]), tz=TZ)
    assert parsed.tolist() == [pd.Timestamp("2025-02-28 00:00:00.500", tz=TZ),
                               pd.Timestamp("2025-03-01 12:30:00.250", tz=TZ)]
    assert reason.isna().all()


@given(st.text(alphabet="ab{€|é^~", min_size=150, max_size=500))
def test_gsm_segments_match_a_reference_encoder(text):
    assert count_segments(pd.Series([text]))[0] == _reference_segments(text)
