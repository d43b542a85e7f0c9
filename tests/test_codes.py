import pandas as pd

from analysis.codes import CODE_TABLES, classify_failures, map_status


def _classify(statuses, errors, vendor=None, stat=None):
    s = pd.Series(statuses, dtype=object)
    e = pd.Series(errors, dtype="string[pyarrow]")
    c = pd.Series(stat if stat is not None else [None] * len(s), dtype="string[pyarrow]")
    st, reason = classify_failures(s, c, e, vendor=vendor)
    return st.tolist(), reason.tolist()


def test_cmpp_extended_codes_map_to_reasons():
    codes = ["MK:0001", "CB:0053", "MK:0005", "MK:0010", "MK:0115", "MB:1041", "DB:0144", "DBBLACK", "DB:0142", "IB:0008", "NP:1243", "ZZ:9999"]
    _, reasons = _classify(["failed"] * len(codes), codes)
    assert reasons == ["empty_number", "empty_number", "unreachable", "unreachable", "content_blocked", "content_blocked",
                       "blacklisted", "blacklisted", "flow_controlled", "flow_controlled", "unknown", "unknown"]


def test_vendor_codes_are_read_in_their_vendors_table():
    assert _classify(["failed"] * 4, ["30003", "30005", "30007", "30610"], "twilio")[1] == [
        "unreachable", "empty_number", "content_blocked", "platform_rejected"]
    # Vonage 3 is "absent subscriber permanent", Tencent 1015 a blacklist
    assert _classify(["failed"], ["3"], "vonage")[1] == ["empty_number"]
    assert _classify(["failed"], ["1015"], "tencent")[1] == ["blacklisted"]
    # the same digits mean nothing for another vendor
    assert _classify(["failed"], ["3"], "twilio")[1] == ["unknown"]


def test_delivered_and_pending_have_no_reason_and_expired_codes_set_status():
    status, reason = _classify(["delivered", "pending", "failed", "rejected"], [None, None, "EXPIRED", None])
    assert status == ["delivered", "pending", "expired", "rejected"]
    assert reason[:2] == [None, None] or all(pd.isna(r) for r in reason[:2])
    assert reason[2:] == ["expired", "platform_rejected"]


def test_unknown_status_word_stays_visible_as_unknown():
    out = map_status(pd.Series(["DELIVRD", "WEIRD", None], dtype="string[pyarrow]"), {"DELIVRD": "delivered"}, upper=True)
    assert out.tolist()[:2] == ["delivered", "unknown"]
    assert pd.isna(out.iloc[2])


def test_sns_free_text():
    texts = pd.Series(["Message has been accepted by phone carrier", "Phone carrier has blocked this message",
                       "Phone is currently unreachable/unavailable", "Phone number is opted out", "Something new"])
    status = CODE_TABLES["sns"].lookup(texts)
    assert status.tolist()[:4] == ["delivered", "failed", "failed", "failed"] and pd.isna(status[4])
    reason = CODE_TABLES["sns_reason"].lookup(texts)
    assert reason.tolist()[1:4] == ["content_blocked", "unreachable", "blacklisted"] and pd.isna(reason[4])
    # as classified: a failure whose text says nothing known is unknown
    _, reasons = _classify(["failed"] * 4, texts.tolist()[1:], "aws_sns")
    assert reasons == ["content_blocked", "unreachable", "blacklisted", "unknown"]


def test_each_rows_vendor_gives_what_that_vendor_alone_gives():
    statuses = ["failed", "failed", "failed", "delivered", "failed", "expired"]
    errors = ["3", "3", "1015", None, "30003", None]
    vendors = ["vonage", "twilio", "tencent", "aliyun", "twilio", None]
    status, reason = classify_failures(pd.Series(statuses, dtype=object), pd.Series([None] * 6, dtype="string[pyarrow]"),
                                       pd.Series(errors, dtype="string[pyarrow]"), vendor=pd.Series(vendors))
    alone = [_classify([s], [e], v) for s, e, v in zip(statuses, errors, vendors, strict=True)]
    assert status.tolist() == [a[0][0] for a in alone]
    assert [None if pd.isna(r) else r for r in reason] == [None if pd.isna(a[1][0]) else a[1][0] for a in alone]
    assert reason.tolist()[:3] == ["empty_number", "unknown", "blacklisted"]
