"""Readers: every fixture format, the row-accounting invariant, bad input."""

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import LoadError, load_send_log, read_send_log
from analysis.readers import detect_layout
from analysis.readers._files import detect_encoding
from analysis.schema import conform, validate

TZ = "Asia/Shanghai"


def ts(text):
    return pd.Timestamp(text, tz=TZ)


def by_id(log):
    """The log by message id; Aliyun's request ids (``OutId#phone-hash``) by the request id."""
    return log.assign(message_id=log["message_id"].str.split("#").str[0]).set_index("message_id")


def physical_records(path: Path) -> int:
    """Independent count of records in a fixture: data lines (CSV minus header, log and
    JSON lines that are not blank)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        lines = [ln for ln in fh.read().splitlines() if ln.strip()]
    return len(lines) if path.suffix in {".log", ".gz"} else len(lines) - 1


ALL = ["canonical.csv", "aliyun_details_gbk.csv", "aliyun_report.csv", "tencent_submissions.csv", "tencent_pull.csv",
       "tencent_callback.csv",
       "twilio_console.csv", "twilio_bulk.jsonl.gz", "vonage_submissions.csv", "vonage_dlr.csv", "sns_usage.csv",
       "gateway.log"]


@pytest.mark.parametrize("name", ALL)
def test_rows_add_up_for_every_fixture(fixtures, name):
    res = load_send_log(fixtures / name)
    validate(res.log)
    s = res.summary.iloc[0]
    assert s.rows_read == physical_records(fixtures / name)
    assert s.loaded + s.rejected + s.duplicates == s.rows_read
    assert len(res.rejects) == s.rejected
    assert res.log["message_id"].is_unique


def test_all_fixtures_together_add_up(fixtures):
    res = load_send_log([fixtures / n for n in ALL])
    assert (res.summary.loaded + res.summary.rejected + res.summary.duplicates == res.summary.rows_read).all()
    assert res.summary.rows_read.sum() == sum(physical_records(fixtures / n) for n in ALL)
    validate(res.log)


def test_canonical_csv(fixtures):
    res = load_send_log(fixtures / "canonical.csv")
    s = res.summary.iloc[0]
    # 7 rows: c1 twice (one duplicate), c4 phone in sci notation, c6 bad time
    assert (s.rows_read, s.loaded, s.rejected, s.duplicates) == (7, 4, 2, 1)
    assert res.rejects["line"].tolist() == [5, 8]
    assert res.rejects["reason"].str.startswith("precision lost").iloc[0]
    log = by_id(res.log)
    assert log.loc["c3", "phone"] == "+86138****0000"
    assert log.loc["c5", "phone"] == "+8618612345678" and bool(log.loc["c5", "is_probe"])
    assert log.loc["c2", "failure_reason"] == "empty_number"
    assert log.loc["c1", "vendor"] == "huawei" and log.loc["c1", "fee"] == 0.045


def test_excel_and_parquet_read_like_csv(fixtures, tmp_path):
    csv = read_send_log(fixtures / "canonical.csv")
    frame = pd.read_csv(fixtures / "canonical.csv", dtype=str)
    frame.to_excel(tmp_path / "canonical.xlsx", index=False)
    frame.to_parquet(tmp_path / "canonical.parquet")
    for path in [tmp_path / "canonical.xlsx", tmp_path / "canonical.parquet"]:
        other = read_send_log(path)
        pd.testing.assert_frame_equal(other, csv, check_categorical=False)


def test_a_parquet_export_of_categorical_columns_reads_like_its_text(fixtures, tmp_path):
    """pandas writes a log's vocabulary columns as categoricals: padded, empty and
    missing values and number categories come out as from the same text."""
    frame = pd.read_csv(fixtures / "canonical.csv", dtype=str)
    frame["vendor"] = frame["vendor"].where(frame.index != 1, "  huawei ")  # padded
    frame["category"] = frame["category"].where(frame.index != 2, "")  # empty: missing
    frame["template_id"] = frame["template_id"].where(frame.index != 3)  # missing
    frame.to_csv(tmp_path / "text.csv", index=False)
    typed = frame.astype({c: "category" for c in ("vendor", "category", "template_id", "status", "channel")})
    typed["attempt"] = pd.to_numeric(typed["attempt"]).astype("category")  # number categories
    typed.to_parquet(tmp_path / "typed.parquet")
    assert isinstance(pd.read_parquet(tmp_path / "typed.parquet")["vendor"].dtype, pd.CategoricalDtype)
    pd.testing.assert_frame_equal(read_send_log(tmp_path / "typed.parquet"), read_send_log(tmp_path / "text.csv"),
                                  check_categorical=False)


def test_excel_number_cells_keep_phones(tmp_path):
    frame = pd.DataFrame({"message_id": ["e1"], "phone": [13800138000], "submit_time": [pd.Timestamp("2025-05-06 09:00")],
                          "status": ["delivered"]})
    frame.to_excel(tmp_path / "n.xlsx", index=False)
    log = read_send_log(tmp_path / "n.xlsx")
    assert log.loc[0, "phone"] == "+8613800138000"
    assert log.loc[0, "submit_time"] == ts("2025-05-06 09:00")


def test_chinese_header_labels_are_the_canonical_layout(tmp_path):
    text = "平台,消息ID,手机号,提交时间,状态,短信类型\n某平台,z1,13800138000,2025-05-06 09:00:00,成功,营销\n"
    (tmp_path / "zh.csv").write_bytes(text.encode("gbk"))
    log = read_send_log(tmp_path / "zh.csv")
    assert log.loc[0, "vendor"] == "某平台" and log.loc[0, "status"] == "delivered" and log.loc[0, "category"] == "marketing"


def test_aliyun_details_gbk(fixtures):
    res = load_send_log(fixtures / "aliyun_details_gbk.csv")
    assert res.summary.iloc[0].encoding == "gb18030"
    log = by_id(res.log)
    assert log["status"].astype(str).to_dict() == {"a1": "delivered", "a2": "failed", "a3": "pending", "a4": "expired", "a5": "delivered"}
    assert log.loc["a1", "content"] == "【示例】您的验证码是123456"
    assert log.loc["a1", "done_time"] - log.loc["a1", "submit_time"] == pd.Timedelta(seconds=4)
    assert log.loc["a5", "category"] == "marketing" and log.loc["a1", "category"] == "verification"


def test_aliyun_receipts_complete_details_and_repeats_are_duplicates(fixtures):
    res = load_send_log([fixtures / "aliyun_details_gbk.csv", fixtures / "aliyun_report.csv"])
    log = by_id(res.log)
    assert log.loc["a3", "status"] == "delivered"  # the pending one got its receipt
    assert log.loc["a3", "done_time"] == ts("2025-05-06 09:10:20")
    report = res.summary.iloc[1]
    assert (report.rows_read, report.loaded, report.duplicates) == (3, 2, 1)
    # a receipt without an out_id is its own message (it has a send time)
    assert log.loc["900002", "failure_reason"] == "content_blocked"
    assert len(log) == 6


def test_tencent_receipts_join_submissions_and_a_receipt_alone_is_a_message(fixtures):
    res = load_send_log([fixtures / "tencent_submissions.csv", fixtures / "tencent_pull.csv"])
    log = by_id(res.log)
    assert res.summary.iloc[0].encoding == "utf-8-sig"
    assert log.loc["t1", "status"] == "delivered" and log.loc["t1", "done_time"] == ts("2025-05-06 09:00:05")
    assert log.loc["t1", "submit_time"] == ts("2025-05-06 09:00:00") and log.loc["t1", "time_source"] == "submission"
    assert log.loc["t2", "failure_reason"] == "blacklisted" and log.loc["t2", "error_code"] == "1015"
    assert log.loc["t3", "status"] == "pending"  # no receipt yet
    assert log.loc["t3", "carrier"] == "Virtual (China Telecom)"
    # t9's receipt has no submission: it proves a message, sent at its receipt time at the latest
    assert res.rejects.empty
    assert log.loc["t9", "time_source"] == "receipt" and log.loc["t9", "status"] == "delivered"
    assert log.loc["t9", "submit_time"] == log.loc["t9", "done_time"] == pd.Timestamp(1746493300, unit="s", tz=TZ)


def test_tencent_callback(fixtures):
    res = load_send_log([fixtures / "tencent_submissions.csv", fixtures / "tencent_callback.csv"])
    log = by_id(res.log)
    assert log.loc["t1", "status"] == "delivered" and log.loc["t1", "done_time"] == ts("2025-05-06 09:00:05")
    assert log.loc["t2", "status"] == "failed" and log.loc["t2", "failure_reason"] == "content_blocked"  # -106
    assert res.summary.iloc[1].loaded == 2


def test_twilio_console_and_bulk(fixtures):
    res = load_send_log(fixtures / "twilio_console.csv")
    log = by_id(res.log)
    assert log.loc["SM001", "submit_time"] == ts("2025-05-06 09:00")  # 01:00 UTC
    assert log.loc["SM002", "failure_reason"] == "content_blocked"
    assert log.loc["SM003", "status"] == "pending"  # "sent": no receipt
    assert log.loc["SM001", "fee"] == pytest.approx(0.04)
    assert res.rejects["reason"].tolist() == ["inbound message (a reply), not a send"]
    bulk = by_id(read_send_log(fixtures / "twilio_bulk.jsonl.gz"))
    assert bulk.loc["SM101", "done_time"] - bulk.loc["SM101", "submit_time"] == pd.Timedelta(seconds=7)
    assert bulk.loc["SM102", "failure_reason"] == "unreachable"
    assert pd.isna(bulk.loc["SM103", "done_time"])  # not final: date_updated is no receipt
    assert bulk.loc["SM101", "channel"] == "MG1"


def test_vonage_receipts(fixtures):
    log = by_id(read_send_log([fixtures / "vonage_submissions.csv", fixtures / "vonage_dlr.csv"]))
    assert log.loc["0A0000001", "status"] == "delivered"
    assert log.loc["0A0000002", "failure_reason"] == "content_blocked"  # err-code 6 anti-spam
    assert log.loc["0A0000003", "status"] == "expired"
    # the receipt time is message-timestamp (UTC), not scts (the carrier's local clock)
    assert log.loc["0A0000002", "done_time"] == ts("2025-05-06 09:02:05")


def test_sns_parts_are_one_message(fixtures):
    res = load_send_log(fixtures / "sns_usage.csv")
    log = by_id(res.log)
    assert res.summary.iloc[0].messages == 3 and res.summary.iloc[0].duplicates == 0
    assert log.loc["m-2", "segments"] == 2 and log.loc["m-2", "fee"] == pytest.approx(0.012)
    assert log.loc["m-2", "category"] == "marketing"
    assert log.loc["m-3", "failure_reason"] == "content_blocked"


def test_gateway_log_final_state_wins_over_late_enroute(fixtures):
    res = load_send_log(fixtures / "gateway.log")
    log = by_id(res.log)
    assert log.loc["1000000001", "status"] == "delivered"  # ENROUTE came after DELIVRD
    assert log.loc["1000000002", "failure_reason"] == "empty_number"  # CMPP stat MK:0001
    assert log.loc["1000000003", "failure_reason"] == "blacklisted"
    assert log.loc["1000000003", "phone"] == "+8615012345678"  # a bare number before id:
    assert log.loc["1000000003", "submit_time"] == ts("2025-05-06 09:05:00")  # 12-digit date
    assert log.loc["1000000004", "status"] == "expired"
    assert res.rejects["line"].tolist() == [4]


@given(
    msg_id=st.text(alphabet="0123456789ABCDEF", min_size=6, max_size=20),
    phone=st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True),
    stat=st.sampled_from(["DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "MK:0001", "DB:0144"]),
    t=st.datetimes(min_value=pd.Timestamp("2001-01-01").to_pydatetime(), max_value=pd.Timestamp("2037-01-01").to_pydatetime()),
    twelve=st.booleans(),
)
@settings(max_examples=40, deadline=None)
def test_dlr_line_parser(tmp_path_factory, msg_id, phone, stat, t, twelve):
    t = pd.Timestamp(t.replace(microsecond=0) if twelve else t.replace(second=0, microsecond=0))
    fmt = "%y%m%d%H%M%S" if twelve else "%y%m%d%H%M"
    line = (f"2025-05-06 09:00:00 dest={phone} id:{msg_id} sub:001 dlvrd:001 submit date:{t.strftime(fmt)} "
            f"done date:{t.strftime(fmt)} stat:{stat} err:000 text:hi")
    path = tmp_path_factory.mktemp("dlr") / "x.log"
    path.write_text(line + "\n")
    log = read_send_log(path)
    row = log.iloc[0]
    assert row.message_id == msg_id and row.phone == "+86" + phone
    assert row.submit_time == t.tz_localize(TZ)
    expected = {"DELIVRD": "delivered", "EXPIRED": "expired", "REJECTD": "rejected"}.get(stat, "failed")
    assert row.status == expected


def test_mapping_file_reads_any_layout(fixtures):
    log = by_id(read_send_log(fixtures / "custom.csv", mapping=fixtures / "custom-mapping.toml"))
    assert set(log["vendor"]) == {"acme"}
    assert log.loc["x1", "status"] == "delivered" and log.loc["x1", "submit_time"] == ts("2025-05-06 09:00")
    assert log.loc["x2", "failure_reason"] == "empty_number"
    assert log.loc["x3", "status"] == "unknown" and log.loc["x3", "status_code"] == "9"  # unmapped stays visible


def test_vendor_forces_a_layout_and_a_plain_name_labels_canonical_files(fixtures, tmp_path):
    with pytest.raises(LoadError, match="unrecognised layout"):
        read_send_log(fixtures / "canonical.csv", vendor="aliyun")
    frame = pd.read_csv(fixtures / "canonical.csv", dtype=str).drop(columns="vendor")
    frame.to_csv(tmp_path / "nv.csv", index=False)
    assert set(read_send_log(tmp_path / "nv.csv", vendor="acme-sms")["vendor"]) == {"acme-sms"}  # no layout of its own
    assert detect_layout(["SerialNo", "ReportStatus", "UserReceiveTime"]).name == "tencent_pull"


def test_bad_files_are_one_clear_error(tmp_path):
    with pytest.raises(LoadError, match=r"nope\.csv: no such file"):
        read_send_log(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(LoadError, match="empty"):
        read_send_log(tmp_path / "empty.csv")
    (tmp_path / "odd.csv").write_text("foo,bar\n1,2\n")
    with pytest.raises(LoadError, match=r"odd\.csv: unrecognised layout"):
        read_send_log(tmp_path / "odd.csv")
    (tmp_path / "junk.csv").write_bytes(bytes(range(128, 256)) * 50)
    with pytest.raises(LoadError, match=r"junk\.csv"):
        read_send_log(tmp_path / "junk.csv")


def test_gbk_file_with_a_broken_byte_names_the_file(tmp_path):
    good = b"message_id,phone,submit_time,status,content\n" + "g1,13800138000,2025-05-06 09:00:00,delivered,您好\n".encode("gbk")
    (tmp_path / "broken.csv").write_bytes(good * 30 + b"g2,13800138000,2025-05-06 09:00:00,delivered,\xff\xfe\n")
    with pytest.raises(LoadError, match=r"broken\.csv"):
        read_send_log(tmp_path / "broken.csv")


def test_encoding_detection():
    text = "手机号,内容\n13800138000,【乐享】您的验证码是123456，五分钟内有效\n" * 5
    assert detect_encoding(text.encode("utf-8")) == "utf-8"
    assert detect_encoding(b"\xef\xbb\xbf" + text.encode("utf-8")) == "utf-8-sig"
    assert detect_encoding(text.encode("gbk")) == "gb18030"
    assert detect_encoding(text.encode("gb18030")) == "gb18030"


def test_malformed_json_lines_are_rejected_with_their_line(tmp_path):
    good = {"sid": "SM1", "to": "+447911123456", "status": "delivered", "date_created": "2025-05-06T01:00:00Z"}
    text = json.dumps(good) + "\n{not json\n" + json.dumps({**good, "sid": "SM2"}) + "\n"
    (tmp_path / "t.jsonl").write_text(text)
    res = load_send_log(tmp_path / "t.jsonl")
    assert len(res.log) == 2 and res.rejects["line"].tolist() == [2]
    assert res.summary.iloc[0].rows_read == 3


def test_reading_twice_gives_only_duplicates(fixtures):
    res = load_send_log([fixtures / "canonical.csv", fixtures / "canonical.csv"])
    first, second = res.summary.itertuples()
    assert second.loaded == 0 and second.duplicates == first.loaded + first.duplicates
    assert len(res.log) == 4


@pytest.mark.parametrize("encoding,expected", [("gbk", "gb18030"), ("utf-8", "utf-8")])
def test_encoding_sample_cut_inside_a_character(encoding, expected):
    from analysis.readers._files import SAMPLE_BYTES

    line = "x," + "宝宝用品一站购齐" * 6 + "\n"
    data = ("phone,content\n" + line * (SAMPLE_BYTES // len(line.encode(encoding)) + 10)).encode(encoding)
    for shift in range(4):  # cut the sample at every offset inside a character
        sample = (b"p" * shift + data)[:SAMPLE_BYTES]
        assert detect_encoding(sample) == expected


# --------------------------------------------------------------------------- the vendors' own samples
# Each fixture in tests/fixtures/public is a vendor's published sample or a public gateway
# log (tests/fixtures/README.md says where each comes from); each test checks what the
# sample itself says.

PUBLIC = Path(__file__).parent / "fixtures" / "public"
FIXTURES = PUBLIC.parent


def one(path, **kw):
    res = load_send_log(PUBLIC / path, **kw)
    validate(res.log)
    s = res.summary.iloc[0]
    assert s.loaded + s.rejected + s.duplicates == s.rows_read
    return res


def test_aliyun_query_send_details_json_and_xml():
    res = one("aliyun_query_send_details.json")
    (row,) = res.log.itertuples()
    assert res.summary.iloc[0].layout == "aliyun_details" and res.summary.iloc[0].rows_read == 1
    assert row.phone == "+8615298356881" and row.status == "delivered" and pd.isna(row.error_code)
    assert row.submit_time == ts("2019-01-08 16:44:10") and row.done_time == ts("2019-01-08 16:44:13")
    assert row.template_id == "SMS_122310183" and row.content.startswith("【阿里云】验证码为：123")
    assert row.message_id.startswith("123#")  # OutId names the request; the message is request + phone
    xml = one("aliyun_query_send_details.xml").log
    assert xml.loc[0, "phone"] == "+8615200000000"
    same = ["submit_time", "done_time", "status", "template_id", "content"]
    pd.testing.assert_frame_equal(xml[same], res.log[same])
    # Aliyun's times are Beijing time whatever zone the log is kept in
    utc = one("aliyun_query_send_details.json", tz="UTC").log
    assert utc.loc[0, "submit_time"] == pd.Timestamp("2019-01-08 08:44:10", tz="UTC")


def test_aliyun_sms_report_push_keeps_the_raw_code_and_the_mask(tmp_path):
    res = one("aliyun_sms_report.json")
    (row,) = res.log.itertuples()
    assert row.phone == "+861381111****"  # masked in the sample, kept masked
    assert row.status == "delivered" and row.status_code == "true"  # as the JSON writes it
    assert row.segments == 1 and row.submit_time == ts("2017-01-01 00:00:00")
    # pushes are retried and not idempotent: a repeated push is a duplicate
    record = json.loads((PUBLIC / "aliyun_sms_report.json").read_text())
    (tmp_path / "push.json").write_text(json.dumps(record * 2))
    s = load_send_log(tmp_path / "push.json").summary.iloc[0]
    assert (s.rows_read, s.loaded, s.duplicates, s.messages) == (2, 1, 1, 1)


def test_aliyun_details_and_receipts_without_out_id_meet_on_phone_and_time(tmp_path):
    """Details exported without OutId and SmsReport receipts carrying only biz_id: 40
    messages stay 40 (the 5 pending ones get their receipts)."""
    sample = json.loads((PUBLIC / "aliyun_query_send_details.json").read_text())
    base = sample["SmsSendDetailDTOs"]["SmsSendDetailDTO"][0]
    details, receipts = [], []
    for i in range(40):
        sent = (pd.Timestamp("2019-01-08 16:00:00") + pd.Timedelta(minutes=i)).strftime("%Y-%m-%d %H:%M:%S")
        rec = {k: v for k, v in base.items() if k != "OutId"} | {"PhoneNum": f"1529835{i:04d}", "SendDate": sent}
        if i < 5:  # waiting for their receipts
            rec |= {"SendStatus": 1, "ErrCode": "", "ReceiveDate": ""}
            receipts.append({"phone_number": rec["PhoneNum"], "send_time": sent, "report_time": sent, "success": True,
                             "err_code": "DELIVERED", "err_msg": "用户接收成功", "sms_size": "1",
                             "biz_id": f"1000{i}^0", "out_id": ""})
        details.append(rec)
    page = {**sample, "TotalCount": 40, "SmsSendDetailDTOs": {"SmsSendDetailDTO": details}}
    (tmp_path / "details.json").write_text(json.dumps(page, ensure_ascii=False))
    (tmp_path / "report.json").write_text(json.dumps(receipts))
    res = load_send_log([tmp_path / "details.json", tmp_path / "report.json"])
    assert len(res.log) == 40 and res.rejects.empty
    assert (res.log["status"] == "delivered").sum() == 40
    assert res.summary["loaded"].tolist() == [40, 5]


def test_aliyun_console_export_with_chinese_headers_a_title_and_a_total():
    res = one("aliyun_console_zh.csv")
    s = res.summary.iloc[0]
    assert s.layout == "aliyun_details" and s.encoding == "gb18030"
    assert (s.rows_read, s.loaded, s.rejected) == (5, 3, 2)
    assert res.rejects["line"].tolist() == [1, 6]
    assert res.rejects["reason"].tolist() == ["title line above the header, not a record",
                                              "total row of the export, not a message"]
    log = res.log.set_index("phone")
    assert log["status"].astype(str).tolist() == ["delivered", "failed", "pending"]
    assert log.loc["+8615200000000", "failure_reason"] == "empty_number"  # MK:0001


def test_tencent_pull_response_alone_is_two_messages_sent_at_their_receipt_time():
    res = one("tencent_pull_sms_send_status.json")
    log = res.log.set_index("message_id")
    assert res.summary.iloc[0].layout == "tencent_pull" and len(log) == 2
    received = pd.Timestamp(1620734188, unit="s", tz=TZ)
    row = log.loc["5000:1045710669157053657849499619"]
    assert row.phone == "+8618501234444" and row.status == "delivered"
    assert row.submit_time == row.done_time == received and row.time_source == "receipt"


def test_tencent_callback_push_keeps_the_masked_number():
    (row,) = one("tencent_callback.json").log.itertuples()
    assert row.phone == "+8613*********" and row.status == "delivered"
    assert row.done_time == ts("2015-10-17 08:03:04") and row.time_source == "receipt"


def test_tencent_send_response_alone_is_rejected_and_joins_its_receipts(tmp_path):
    res = one("tencent_send_sms.json")
    assert res.log.empty and len(res.rejects) == 2
    assert res.rejects["reason"].str.contains("no send time").all()
    assert res.rejects["reason"].str.contains("PullSmsSendStatus").all()  # says what to add
    sent = json.loads((PUBLIC / "tencent_send_sms.json").read_text())["Response"]["SendStatusSet"]
    pulled = {"Response": {"PullSmsSendStatusSet": [
        {"Description": "DELIVRD" if i == 0 else "MK:0001", "CountryCode": "86", "SubscriberNumber": s["PhoneNumber"][3:],
         "ReportStatus": "SUCCESS" if i == 0 else "FAIL", "PhoneNumber": s["PhoneNumber"], "SerialNo": s["SerialNo"],
         "UserReceiveTime": 1620734188 + i, "SessionContext": ""} for i, s in enumerate(sent)]}}
    (tmp_path / "pull.json").write_text(json.dumps(pulled))
    both = load_send_log([PUBLIC / "tencent_send_sms.json", tmp_path / "pull.json"])
    log = both.log.set_index("phone")
    assert both.rejects.empty and len(log) == 2
    assert log.loc["+8618511122233", "status"] == "delivered" and log.loc["+8618511122233", "segments"] == 1
    assert log.loc["+8618511122266", "failure_reason"] == "empty_number"
    assert both.summary["loaded"].tolist() == [2, 2]


def test_tencent_send_record_list_has_send_and_receive_times():
    (row,) = one("tencent_describe_send_record_list.json").log.itertuples()
    assert row.phone == "+86136****8015" and row.status == "delivered" and row.time_source == "submission"
    assert row.submit_time == pd.Timestamp(1787902541, unit="s", tz=TZ)
    assert row.done_time - row.submit_time == pd.Timedelta(seconds=30)


def test_twilio_list_page_and_a_third_party_export_read_the_same_message():
    page = one("twilio_messages_page.json")
    assert page.summary.iloc[0].layout == "twilio"
    assert page.rejects["reason"].tolist() == ["inbound message (a reply), not a send"]
    (row,) = page.log.itertuples()
    assert row.message_id == "SMded05904ccb347238880ca9264e8fe1c" and row.phone == "+18182008801"
    assert row.submit_time == pd.Timestamp("2019-05-24 17:44:46", tz="UTC")  # RFC 2822, UTC
    assert row.status == "pending" and row.status_code == "sent"  # handed over, no receipt
    assert row.fee == pytest.approx(0.0075) and row.currency == "USD"
    export = one("twilio_export_thirdparty.csv")
    cols = ["message_id", "phone", "submit_time", "status", "fee"]
    pd.testing.assert_frame_equal(export.log[cols], page.log[cols])
    assert pd.isna(export.log.loc[0, "done_time"])  # its Date Updated is a copy of Date Created


def test_sns_cloudwatch_delivery_logs():
    res = one("sns_cloudwatch_delivery.jsonl")
    log = res.log.set_index("message_id")
    ok, bad = log.loc["34d9b400-c6dd-5444-820d-fbeb0f1f54cf"], log.loc["1077257a-92f3-5ca3-bc97-6a915b310625"]
    assert ok.phone == "+1***5550100" and bad.phone == "+1***5550100"  # masked by AWS, kept masked
    assert ok.submit_time == pd.Timestamp("2016-06-28 00:40:34.558", tz="UTC")
    assert ok.done_time - ok.submit_time == pd.Timedelta(milliseconds=1344)  # until the handset acknowledged
    assert ok.status == "delivered" and ok.time_source == "receipt_submit" and ok.category == "notification"
    assert bad.status == "failed" and bad.failure_reason == "unreachable"
    assert bad.error_code == "Unknown error attempting to reach phone"
    assert ok.fee == pytest.approx(0.00645) and ok.currency == "USD"


def test_vonage_receipts_alone_and_with_their_send_response(tmp_path):
    res = one("vonage_delivery_receipts.json")
    (row,) = res.log.itertuples()  # accepted, then delivered: one message
    assert res.summary.iloc[0].loaded == 2
    assert row.status == "delivered" and row.time_source == "receipt"
    assert row.done_time == pd.Timestamp("2018-10-25 12:10:29", tz="UTC")  # not scts, the carrier's 13:10
    assert row.submit_time == pd.Timestamp("2018-10-25 12:10:26", tz="UTC")  # the first receipt
    send = one("vonage_send_response.json")
    assert send.log.empty and "delivery receipts" in send.rejects.loc[0, "reason"]
    receipt = json.loads((PUBLIC / "vonage_delivery_receipts.json").read_text())[1]
    receipt |= {"messageId": "0C000000217B7F02", "msisdn": "447700900000"}
    (tmp_path / "dlr.json").write_text(json.dumps([receipt]))
    both = load_send_log([PUBLIC / "vonage_send_response.json", tmp_path / "dlr.json"])
    (row,) = both.log.itertuples()
    assert both.rejects.empty and row.status == "delivered" and row.phone == "+447700900000"


def test_jasmin_messages_log():
    res = one("jasmin_messages.log")
    log = res.log.set_index("message_id")
    # SMS-MT and DLR of one message meet although Jasmin writes the id in two cases
    row = log.loc["3F3A6FAC-CC4F-444F-B796-6EB27E95601F"]
    # a bare 11-digit number 1[3-9]… reads as a Chinese mobile (it could be +1 876 …: the
    # gateway did not write the country code)
    assert row.phone == "+8618761234567" and row.status == "delivered" and row.time_source == "submission"
    assert row.submit_time == ts("2017-10-12 06:52:51")  # the SMS-MT line's time
    assert row.done_time == ts("2017-10-18 12:56:33")  # the DLR's 12-digit done date
    assert log.loc["1D6A811", "phone"] == "************" and pd.isna(log.loc["1D6A811", "error_code"])  # err:nul
    # a receipt the SMSC sent as SMS-MO: the handset is its sender
    assert log.loc["1216080510463401720", "phone"] == "+919629033937"
    assert log.loc["1216080510463401720", "status"] == "failed"
    # 9905407539 has no country code: that SMS-MT line is rejected, its DLR loads without a phone
    assert pd.isna(log.loc["1216080510405254850", "phone"])
    assert res.rejects["reason"].tolist() == ["not a send or delivery-receipt line", "invalid phone number: 9905407539"]
    # the gateway's clock in another zone
    utc = one("jasmin_messages.log", source_tz="UTC").log.set_index("message_id")
    assert utc.loc["3F3A6FAC-CC4F-444F-B796-6EB27E95601F", "submit_time"] == ts("2017-10-12 14:52:51")


def test_kannel_access_log():
    res = one("kannel_access.log")
    log = res.log.set_index("message_id")
    assert res.rejects.empty and res.summary.iloc[0].loaded == 9
    row = log.loc["8F3A01"]  # Sent SMS and its Receive DLR, by FID
    assert row.phone == "+919800000000" and row.status == "delivered" and row.content == "Hello"
    assert row.done_time - row.submit_time == pd.Timedelta(seconds=39)  # the DLR line's time: no dates in it
    long = log.loc["S21311249091151177073671043"]  # three parts, FID on the first only
    assert long.segments == 3 and long.content.startswith("Dear Sir/Madam") and long.content.endswith("a From slkjdf")
    assert log.loc["121245073003", "status"] == "failed" and log.loc["121245073003", "phone"] == "+971562173534"
    assert log.loc["171026125222636445993424531920", "phone"] == "+91****"  # masked in the public log


def test_java_cmpp_gateway_report_objects():
    res = one("cmpp_gateway.log")
    log = res.log.set_index("message_id")
    assert len(log) == 3 and res.rejects["reason"].tolist() == ["not a send or delivery-receipt line"]
    assert log.loc["0506090001000101200001", "phone"] == "+8613800138000"
    assert log.loc["0506090002000101200002", "failure_reason"] == "empty_number"  # MK:0001
    assert log.loc["0506090203000101200003", "submit_time"] == ts("2025-05-06 09:02")
    assert log.loc["0506090203000101200003", "done_time"] == ts("2025-05-06 09:03")


def test_a_bad_line_in_a_utf8_file_is_rejected_with_its_number(tmp_path):
    head = "message_id,phone,submit_time,status,content\n"
    good = [f"u{i},13800138000,2025-05-06 09:00:00,delivered,您好{i}\n".encode() for i in range(6000)]
    good[5000] = b"u5000,13800138000,2025-05-06 09:00:00,delivered,\xff\xfe\n"  # physical line 5,002
    (tmp_path / "u.csv").write_bytes(head.encode() + b"".join(good))
    res = load_send_log(tmp_path / "u.csv")
    assert res.summary.iloc[0].encoding == "utf-8"
    assert res.rejects["line"].tolist() == [5002] and "decode" in res.rejects.loc[0, "reason"]
    assert len(res.log) == 5999 and res.log["content"].str.startswith("您好").all()


def test_a_truncated_gzip_names_the_file(tmp_path):
    data = gzip.compress(b"message_id,phone,submit_time,status\n" + b"g,13800138000,2025-05-06 09:00:00,delivered\n" * 5000)
    (tmp_path / "cut.csv.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(LoadError, match=r"cut\.csv\.gz: .*(truncated|corrupt)"):
        read_send_log(tmp_path / "cut.csv.gz")


def test_a_page_with_no_records_reads_as_nothing(tmp_path):
    (tmp_path / "empty.json").write_text(json.dumps(
        {"TotalCount": 0, "Code": "OK", "SmsSendDetailDTOs": {"SmsSendDetailDTO": []}}))
    res = load_send_log([tmp_path / "empty.json", PUBLIC / "aliyun_query_send_details.json"])
    assert res.summary["rows_read"].tolist() == [0, 1] and len(res.log) == 1


def _peak_rss_reading(path: Path) -> tuple[str, int]:
    """Read ``path`` in a fresh process: the error it gave and its peak memory in MB."""
    import subprocess
    import sys

    # VmHWM: this program's own peak (ru_maxrss would count the forking parent's pages)
    code = ("import re, sys\nfrom analysis import LoadError, read_send_log\n"
            "try:\n    read_send_log(sys.argv[1]); print('loaded')\n"
            "except LoadError as exc:\n    print(exc)\n"
            "print(int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) // 1024)\n")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True,
                         timeout=60)
    message, peak = out.stdout.strip().rsplit("\n", 1)
    return message, int(peak)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bomb.csv.gz", "bomb.jsonl.gz", "bomb.log.gz"])
def test_a_gzip_bomb_stops_early_in_bounded_memory(name, tmp_path):
    """1 MB of gzip that expands to 1 GiB of valid-looking rows: refused with the file's
    name, after reading little, far below the memory the expansion would take."""
    import zlib

    from analysis.readers._files import EXPANSION_ALLOWANCE, MAX_EXPANSION

    head, row = {
        "bomb.csv.gz": (b"message_id,phone,submit_time,status\n", b"g,13800138000,2025-05-06 09:00:00,delivered\n"),
        "bomb.jsonl.gz": (b"", b'{"MessageId":"g","To":"+8613800138000","Status":"delivered"}\n'),
        "bomb.log.gz": (b"", b"id:1 sub:001 dlvrd:001 submit date:2505060900 done date:2505060901 stat:DELIVRD\n"),
    }[name]
    block = row * ((1 << 20) // len(row))
    z = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    parts = [z.compress(head)] + [z.compress(block) for _ in range(1024)] + [z.flush()]
    path = tmp_path / name
    path.write_bytes(b"".join(parts))
    assert path.stat().st_size * MAX_EXPANSION < 1 << 30  # it is a bomb by the stated rule
    message, peak = _peak_rss_reading(path)
    assert message.startswith(f"{path}: decompresses to more than {MAX_EXPANSION} times"), message
    assert peak < 200 + 4 * (EXPANSION_ALLOWANCE >> 20), peak  # 1 GiB was never held


@pytest.mark.slow
def test_a_line_bomb_is_refused_at_its_first_line(tmp_path):
    """One 40 MB line with no break: refused naming the line, without holding it; gzipped
    (300 MB in a few hundred KB) it is refused as a bomb before pyarrow reads it."""
    import zlib

    from analysis.readers._files import MAX_EXPANSION

    path = tmp_path / "line.csv"
    with path.open("wb") as fh:
        fh.write(b"message_id,phone,submit_time,status\na,")
        for _ in range(40):
            fh.write(b"1" * (1 << 20))
    message, peak = _peak_rss_reading(path)
    assert message == f"{path}: line 2 (or one within the next 4 MiB): a record longer than 1 MiB, the limit for " \
                      "one line: the file is damaged or not an export"
    assert peak < 500, peak
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    packed = tmp_path / "line.csv.gz"
    with packed.open("wb") as fh:
        fh.write(z.compress(b"message_id,phone,submit_time,status\na,"))
        for _ in range(300):
            fh.write(z.compress(b"1" * (1 << 20)))
        fh.write(z.flush())
    message, peak = _peak_rss_reading(packed)
    assert message.startswith(f"{packed}: decompresses to more than {MAX_EXPANSION} times"), message
    assert peak < 500, peak


@pytest.mark.slow
def test_an_export_that_compresses_well_still_loads(tmp_path):
    """The cap is on the ratio, not the size: a real-looking export at 20× loads whole."""
    import random

    rng = random.Random(3)
    rows = "".join(f"m{i},1380013{rng.randrange(10_000):04d},2025-05-06 09:{i % 60:02d}:00,delivered\n"
                   for i in range(300_000))
    path = tmp_path / "ok.csv.gz"
    path.write_bytes(gzip.compress(("message_id,phone,submit_time,status\n" + rows).encode()))
    assert len(read_send_log(path)) == 300_000


def test_a_record_past_the_cap_names_the_file_and_line(tmp_path):
    from analysis.readers._files import MAX_RECORD_BYTES

    ok = "".join(f"m{i},13800138000,2025-05-06 09:00:00,delivered,hi\n" for i in range(100))
    path = tmp_path / "long.csv"
    path.write_text("message_id,phone,submit_time,status,content\n" + ok + "m100,13800138000,2025-05-06 09:00:00,"
                    "delivered," + "x" * (MAX_RECORD_BYTES + 10) + "\n", encoding="utf-8")
    with pytest.raises(LoadError, match=r"long\.csv: line 102: a field longer than 1 MiB"):
        read_send_log(path)
    log = tmp_path / "long.log"
    log.write_bytes(b"id:1 sub:001 dlvrd:001 submit date:2505060900 done date:2505060901 stat:DELIVRD\n" * 3
                    + b"id:2 stat:DELIVRD text:" + b"y" * (MAX_RECORD_BYTES + 1) + b"\n")
    with pytest.raises(LoadError, match=r"long\.log: line 4: longer than 1 MiB"):
        read_send_log(log)


def test_many_small_files_load_as_one_at_a_time_would(tmp_path):
    """Files sharing a header are staged together: the log, every file's accounting and
    the rejects (file and line) equal what loading each file alone gives."""
    head = "message_id,phone,submit_time,status\n"
    paths = []
    for i in range(40):
        rows = f"m{i},1380013{i:04d},2025-05-06 09:{i % 60:02d}:00,delivered\n"
        if i % 7 == 3:  # a bad phone on the file's third line
            rows += f"b{i},12345,2025-05-06 10:00:00,delivered\n"
        path = tmp_path / f"day{i:02d}.csv"
        path.write_text(head + rows, encoding="utf-8")
        paths.append(path)
    paths.insert(20, PUBLIC / "tencent_pull_sms_send_status.json")  # another layout in between
    together = load_send_log(paths)
    alone = [load_send_log(p) for p in paths]
    expected = conform(pd.concat([r.log for r in alone], ignore_index=True)).sort_values(
        ["submit_time", "vendor", "message_id"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(together.log, expected, check_categorical=False)
    accounts = ["file", "layout", "rows_read", "loaded", "rejected", "duplicates"]
    pd.testing.assert_frame_equal(together.summary[accounts],
                                  pd.concat([r.summary[accounts] for r in alone], ignore_index=True))
    assert together.rejects[["file", "line"]].values.tolist() == [
        [str(tmp_path / f"day{i:02d}.csv"), 3] for i in range(40) if i % 7 == 3]


@pytest.mark.parametrize("body,problem", [
    ('vendor = ""\n[columns]\nphone = "m"\nsubmit_time = "t"\n', "key 'vendor': must be a non-empty name"),
    ('vendor = 3\n[columns]\nphone = "m"\nsubmit_time = "t"\n', "key 'vendor': must be a non-empty name"),
    ('source_tz = "Mars/Olympus"\n[columns]\nphone = "m"\nsubmit_time = "t"\n', "key 'source_tz': 'Mars/Olympus' is not"),
    ('[columns]\nphone = 7\nsubmit_time = "t"\n', "key 'columns.phone': must name a header"),
    ('[columns]\nmobile = "m"\nsubmit_time = "t"\n', "key 'columns.mobile': not a canonical column"),
    ('columns = "m"\n', "key 'columns': must be a table"),
    ('[columns]\nphone = "m"\nsubmit_time = "t"\n[status]\n"0" = "ok"\n', "key 'status.0': 'ok' is not a status"),
    ('[columns]\nphone = "m"\n', "key 'columns': must name the 'submit_time' column"),
    ('colums = {}\n', "key 'colums': unknown key"),
])
def test_a_bad_mapping_names_the_file_and_key(body, problem, tmp_path):
    from analysis.readers.mapping import load_mapping

    path = tmp_path / "odd.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(LoadError) as err:
        load_mapping(path)
    assert str(err.value).startswith(f"{path}: {problem}"), str(err.value)


def test_every_reject_has_a_stable_code(fixtures, tmp_path):
    """Each reject carries the code of its kind beside its words: every reason the
    fixtures produce has a code of its own (none falls to ``other``), and the codes are
    the ones each case calls for."""
    from analysis import read_events
    from analysis.schema import REJECT_CODES

    files = [p for p in [*fixtures.iterdir(), *(fixtures / "public").iterdir()]
             if p.is_file() and p.suffix not in {".md", ".toml"} and p.name != "custom.csv"]
    rejects = pd.concat([load_send_log(f).rejects for f in files], ignore_index=True)
    assert len(rejects) >= 8 and set(rejects["reason_code"]) <= set(REJECT_CODES)
    bad = tmp_path / "bad.csv"
    bad.write_text("message_id,phone,submit_time,status\nm1,12345,2025-05-06 09:00:00,delivered\n"
                   "m2,13800138000,not a time,delivered\nm3,13800138001,2025-05-06 09:00:00,delivered,extra\n"
                   ",,2025-05-06 09:00:00,delivered\n", encoding="utf-8")
    codes = load_send_log(bad).rejects.set_index("line")["reason_code"].to_dict()
    assert codes == {2: "invalid_phone", 3: "unreadable_time", 4: "malformed_row", 5: "no_message_id"}, codes
    clicks = tmp_path / "clicks.csv"
    clicks.write_text("message_id,vendor,click_time\nm1,aliyun,\n", encoding="utf-8")
    assert read_events(clicks).rejects["reason_code"].tolist() == ["no_time"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(alphabet=st.characters(max_codepoint=0x2FF) | st.sampled_from("中文\x00\x1b\x7f\x85\x9f\t\n\r"),
                                              max_size=12)), max_size=30),
       st.integers(0, 5))
def test_control_characters_found_in_the_bytes_as_by_the_pattern(texts, skip):
    import re

    from analysis.readers._assemble import CONTROL, has_control
    from analysis.schema import STRING

    column = pd.Series(texts, dtype=STRING).iloc[skip:]  # a slice: its buffers start elsewhere
    want = [t is not None and re.search(CONTROL, t) is not None for t in texts[skip:]]
    assert has_control(column).tolist() == want


def test_an_unreadable_time_is_rejected_with_its_column_named(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("message_id,phone,submit_time,done_time,status\n"
                    "m1,+8613800138000,2025-05-06 10:00:00,2025-05-06 10:00:05,delivered\n"
                    "m2,+8613800138001,2025-05-06 10:01:00,yesterday-ish,delivered\n"
                    "m3,+8613800138002,2025-02-30 10:02:00,,failed\n", encoding="utf-8")
    res = load_send_log(path)
    assert res.log["message_id"].tolist() == ["m1"]
    assert res.rejects["line"].tolist() == [3, 4]
    assert res.rejects["reason"].tolist() == ["done_time: unreadable time: yesterday-ish",
                                              "submit_time: unreadable time: 2025-02-30 10:02:00"]


def _quiet_day(path: Path, out: Path) -> Path | None:
    """``path`` as its vendor writes it on a day with no messages: a table's header (and
    any title line) with no rows, a JSON response whose list of records is empty; None
    for formats with no header (JSON lines, logs: a quiet day is an empty file)."""
    from analysis.readers import read_raw
    from analysis.readers._files import records_of

    target = out / path.name
    if path.suffix == ".csv":
        header = int(read_raw(path).frame["_line"].min()) - 1
        target.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:header]))
        return target
    if path.suffix == ".json":
        document = json.loads(path.read_text(encoding="utf-8"))
        records = records_of(document)
        if isinstance(document, list):
            document = []
        else:
            records.clear()  # the list inside the response, emptied in place
        target.write_text(json.dumps(document), encoding="utf-8")
        return target
    return None


def _one_record(path: Path) -> bool:
    """A JSON document that is one record (a callback's body): it has no quiet form."""
    from analysis.readers._files import records_of

    document = json.loads(path.read_text(encoding="utf-8"))
    return isinstance(document, dict) and records_of(document)[:1] == [document]


QUIET = [p for p in sorted([*PUBLIC.parent.glob("*.csv"), *PUBLIC.glob("*.csv"), *PUBLIC.glob("*.json")])
         if p.name != "custom.csv" and not (p.suffix == ".json" and _one_record(p))]


@pytest.mark.parametrize("path", QUIET, ids=lambda p: p.name)
def test_an_export_of_a_quiet_day_loads_no_message_and_says_so(path, tmp_path):
    """A header (or an API page) with no rows is a normal export: 0 messages, every row
    read accounted for (a title line above the header rejected as such), in memory and
    through the streamed ingest."""
    from analysis.readers import ingest_files

    empty = _quiet_day(path, tmp_path)
    res = load_send_log(empty)
    assert len(res.log) == 0
    s = res.summary.iloc[0]
    assert s["loaded"] == 0 and s["rows_read"] == s["rejected"] == len(res.rejects)
    assert set(res.rejects["reason_code"]) <= {"title_line"}
    ingested = ingest_files([empty], tmp_path / "store", workers=1)
    assert ingested.messages == 0 and ingested.summary["loaded"].sum() == 0


def test_a_spreadsheet_of_a_quiet_day_loads_no_message(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["message_id", "phone", "submit_time", "status"])
    book.save(tmp_path / "quiet.xlsx")
    res = load_send_log(tmp_path / "quiet.xlsx")
    assert len(res.log) == 0 and res.summary["rows_read"].tolist() == [0]


def _hostile(name: str, folder: Path) -> Path:
    """Inputs that would take the machine down, each made here."""
    import os
    import zipfile

    path = folder / name
    if name == "bomb.xlsx":  # a real workbook whose sheet is 600 MiB of blanks: a few hundred KB on disk
        from openpyxl import Workbook

        book = Workbook()
        book.active.append(["message_id", "phone", "submit_time", "status"])
        book.save(folder / "real.xlsx")
        sheet = "xl/worksheets/sheet1.xml"
        with zipfile.ZipFile(folder / "real.xlsx") as real, \
                zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            for member in real.infolist():
                if member.filename != sheet:
                    archive.writestr(member, real.read(member))
            xml = real.read(sheet)
            head, tail = xml.split(b"</sheetData>")
            with archive.open(sheet, "w", force_zip64=True) as out:
                out.write(head)
                for _ in range(600):
                    out.write(b" " * (1 << 20))
                out.write(b"</sheetData>" + tail)
    elif name == "zero.xlsx":
        path.symlink_to("/dev/zero")
    elif name == "pipe.csv":
        os.mkfifo(path)
    elif name in ("array.json", "document.xml"):  # 300 MB on one line
        one = (b'{"MessageId":"m","To":"+8613800138000","Status":"delivered"},' if name == "array.json" else
               b"<r><MessageId>m</MessageId><To>+8613800138000</To><Status>delivered</Status></r>")
        with path.open("wb") as fh:
            fh.write(b"[" if name == "array.json" else b"<Response><Records>")
            for _ in range(300):
                fh.write(one * ((1 << 20) // len(one)))
            fh.write(b'{"MessageId":"m"}]' if name == "array.json" else b"</Records></Response>")
    elif name == "deep.json":
        path.write_bytes(b'{"a":' * 100_000 + b"1" + b"}" * 100_000)
    elif name == "arrays.jsonl":  # every record a JSON array: none is a record
        path.write_bytes(b"[1, 2]\n[3, 4]\n")
    return path


@pytest.mark.slow  # a fresh process per input, measured
@pytest.mark.parametrize(("name", "message"), [
    ("bomb.xlsx", "expands to more than 100 times its size"),
    ("zero.xlsx", "a device, not an export file"),
    ("pipe.csv", "a FIFO (named pipe), not an export file"),
    ("array.json", "a JSON document larger than 64 MiB, the most read whole"),
    ("document.xml", "an XML document larger than 64 MiB, the most read whole"),
    ("deep.json", "JSON nested deeper than any export"),
])
def test_an_input_that_would_take_the_machine_down_is_one_line_naming_it(name, message, tmp_path):
    """Each stops within 60 s and far below 2 GB, with one line naming the file."""
    path = _hostile(name, tmp_path)
    said, peak = _peak_rss_reading(path)
    assert said.startswith(f"{path}: ") and message in said and "\n" not in said, said
    assert peak < 1024, peak


def test_a_file_of_json_arrays_is_rejected_line_by_line(tmp_path):
    """No record in it: each line rejected with its number, in memory and through the
    streamed ingest (whose block of no record had no phone column)."""
    from analysis.readers import ingest_files

    path = _hostile("arrays.jsonl", tmp_path)
    res = load_send_log(path)
    assert len(res.log) == 0 and res.rejects["line"].tolist() == [1, 2]
    done = ingest_files([path], tmp_path / "store", workers=1)
    assert done.messages == 0 and done.summary["rejected"].tolist() == [2]


# --------------------------------------------------------------------------- more vendors' samples
# Each test checks what the vendor's own sample says (counted by hand, tests/fixtures/README.md).


def utc(text):
    return pd.Timestamp(text, tz="UTC").tz_convert(TZ)


def test_huawei_status_report_form_bodies():
    res = one("huawei_status_report.txt")
    assert res.summary.iloc[0]["layout"] == "huawei_status_report" and res.summary.iloc[0]["vendor"] == "huawei"
    row = res.log.iloc[0]
    assert row.message_id == "b9d9b4fe-ad0e-4a2a-a2c7-445505b674ac_6" and row.status == "delivered"
    assert pd.isna(row.phone) and row.time_source == "receipt"  # no "to" without "extend": loaded without a phone
    assert row.done_time == utc("2018-04-13 06:31:46") and row.segments == 1  # updateTime is UTC, url-decoded
    # the doc's two alternative bodies of one message: one message, the failure code kept
    demo = one("huawei_status_report_demo.txt")
    assert len(demo.log) == 1 and demo.log.iloc[0].status_code == "E200027"
    assert demo.log.iloc[0].failure_reason == "platform_rejected"  # 匹配网关失败, declared with the layout
    assert demo.summary.iloc[0][["rows_read", "loaded"]].tolist() == [2, 2]


def test_yunpian_pushed_reports_and_send_records():
    res = one("yunpian_push.json")
    assert res.summary.iloc[0]["layout"] == "yunpian_report"  # never taken for Tencent's callback
    log = res.log.set_index("message_id")
    assert log.loc["9527", "status"] == "delivered" and log.loc["9528", "status"] == "failed"
    assert log.loc["9528", "error_code"] == "YP:54" and log.loc["9527", "phone"] == "+93701234567"
    assert log.loc["9527", "done_time"] == ts("2014-03-17 22:55:21")
    rec = one("yunpian_get_record.json")
    assert rec.summary.iloc[0]["layout"] == "yunpian_record"
    r = rec.log.set_index("message_id")
    assert set(r["status"]) == {"failed"} and set(r["phone"]) == {"+8613800000000"}
    assert r.loc["1234567890", "submit_time"] == ts("2015-11-02 16:34:56") and r.loc["1234567890", "segments"] == 1
    assert r.loc["1234567890", "content"] == "【云片网】你的验证码是1234" and set(r["error_code"]) == {"1:1"}


def test_montnets_reports_of_one_long_message():
    res = one("montnets_rpt.json")
    assert len(res.log) == 1  # the two parts (pknum 1, 2 of 2) of one message to one number
    row = res.log.iloc[0]
    assert row.status == "delivered" and row.segments == 2 and row.phone == "+8613800138000"
    assert row.submit_time == ts("2016-08-04 17:38:55") and row.done_time == ts("2016-08-04 17:38:59")
    assert res.summary.iloc[0][["rows_read", "loaded", "messages"]].tolist() == [2, 2, 1]


def test_chuanglan_pushed_and_pulled_reports():
    push = one("chuanglan_report.txt").log.iloc[0]
    assert push.message_id == "17041010383624511" and push.status == "delivered" and push.phone == "+8615700000004"
    assert push.done_time == ts("2017-04-10 10:38") and push.segments == 1  # reportTime YYMMddHHmm
    pulled = one("chuanglan_pull_report.json").log.iloc[0]
    assert pulled.status == "rejected" and pulled.status_code == "REJECT"  # Chuanglan's review refused it
    assert pulled.done_time == ts("2018-05-19 16:21")
    intl = one("chuanglan_intl_pull_report.json")
    assert intl.summary.iloc[0]["layout"] == "chuanglan_intl_report" and len(intl.log) == 2
    assert set(intl.log["phone"]) == {"+8618037170702"} and set(intl.log["status"]) == {"delivered"}
    assert one("chuanglan_intl_report.txt").log.iloc[0].channel == "I0123456_1808281142_2188000"


def test_infobip_delivery_reports():
    res = one("infobip_delivery_reports.json")
    log = res.log.set_index("message_id")
    assert len(log) == 2 and set(log["status"]) == {"delivered"} and set(log["currency"]) == {"EUR"}
    row = log.loc["MESSAGE-ID-123-xyz"]
    assert row.phone == "+41793026727" and row.fee == pytest.approx(0.01) and row.segments == 1
    assert row.submit_time == utc("2019-11-09 16:00") and pd.isna(row.error_code)  # NO_ERROR is no error
    hook = one("infobip_delivery_report_webhook.json").log.iloc[0]
    assert hook.done_time == utc("2019-11-09 16:01") and hook.status_code == "DELIVERED_TO_HANDSET"


def test_plivo_message_list():
    res = one("plivo_messages.json")
    log = res.log.set_index("message_id")
    assert len(log) == 20 and log["status"].astype(str).value_counts().to_dict() == {"pending": 12, "delivered": 8}
    row = log.loc["0e4198f3-f04f-47d7-ae61-a152e4f4146a"]
    assert row.phone == "+919876543210" and row.submit_time == pd.Timestamp("2017-05-16 20:52:51+05:30")
    assert row.fee == pytest.approx(0.0025) and row.currency == "USD" and pd.isna(row.error_code)  # 000: delivered


def test_sinch_recipient_and_batch_reports():
    rec = one("sinch_delivery_report_recipient.json").log.iloc[0]
    assert rec.phone == "+44231235674" and rec.status == "pending"  # Dispatched: not final
    assert rec.message_id.startswith("01FC66621XXXXX119Z8PMV1QPQ#")  # the batch and the number
    # a batch report has its recipients but no time: alone it is rejected saying so; with
    # the recipient report it completes that message (the same batch and number)
    batch = one("sinch_delivery_report_batch.json")
    assert batch.log.empty and batch.rejects["reason_code"].tolist() == ["no_time"]
    both = load_send_log([PUBLIC / "sinch_delivery_report_recipient.json", PUBLIC / "sinch_delivery_report_batch.json"])
    assert len(both.log) == 1 and both.log.iloc[0].status == "delivered"
    summary = one("sinch_delivery_report_summary.json")
    assert summary.log.empty and len(summary.rejects) == 1  # no recipient, no time: no message


def test_messagebird_one_message_per_recipient():
    res = one("messagebird_messages.json")
    assert len(res.log) == 2 and set(res.log["status"]) == {"delivered"} and set(res.log["phone"]) == {"+31612345678"}
    row = res.log.sort_values("message_id").iloc[0]
    assert row.message_id.startswith("7d8451f8#") and row.fee == pytest.approx(0.076) and row.currency == "EUR"
    assert row.submit_time == utc("2022-10-12 18:46:22") and row.done_time == utc("2022-10-12 18:46:24")
    assert one("messagebird_messages_failed.json").log.iloc[0].status == "failed"


def test_messagebird_several_recipients_of_one_message(tmp_path):
    """One message to three numbers (the sample's message with two more recipients written
    in its form) is three messages, each with its own status."""
    document = json.loads((PUBLIC / "messagebird_messages.json").read_text(encoding="utf-8"))
    message = document["items"][0]
    first = message["recipients"]["items"][0]
    message["recipients"]["items"] += [{**first, "recipient": 31612345679, "status": "delivery_failed"},
                                       {**first, "recipient": 31612345680, "status": "buffered"}]
    document["items"] = [message]
    (tmp_path / "three.json").write_text(json.dumps(document), encoding="utf-8")
    res = load_send_log(tmp_path / "three.json")
    assert res.summary.iloc[0][["rows_read", "loaded"]].tolist() == [3, 3]
    assert dict(zip(res.log["phone"], res.log["status"], strict=True)) == {
        "+31612345678": "delivered", "+31612345679": "failed", "+31612345680": "pending"}


def test_aws_end_user_messaging_and_pinpoint_events():
    eum = one("aws_eum_sms_events.jsonl").log.iloc[0]
    assert eum.status == "delivered" and eum.phone == "+14255550156" and eum.fee == pytest.approx(0.09582)
    assert eum.submit_time == pd.Timestamp(1686975103170, unit="ms", tz="UTC")  # epoch milliseconds
    assert eum.done_time == pd.Timestamp(1686975103470, unit="ms", tz="UTC")
    pin = one("pinpoint_sms_events.jsonl").log.iloc[0]
    assert pin.message_id == "1111-2222-3333" and pin.status == "delivered"
    assert pin.fee == pytest.approx(0.00645) and pin.category == "notification"  # 645 thousandths of a cent


def test_twilio_event_streams_status_event():
    row = one("twilio_event_streams.json").log.iloc[0]
    # the event's type says delivered; the sample's messageStatus (QUEUED) is kept as the raw code
    assert row.status == "delivered" and row.status_code == "QUEUED" and row.phone == "+12345678901"
    assert row.done_time == utc("2025-01-01 00:00:00") and row.segments == 1


def test_baidu_status_callbacks():
    """A file made from Baidu's documented callback fields (no sample is published)."""
    log = by_id(load_send_log(FIXTURES / "baidu_callback.json").log)
    assert log.loc["b7f0a3d2e1c4-0001", "status"] == "delivered" and log.loc["b7f0a3d2e1c4-0002", "status"] == "failed"
    assert log.loc["b7f0a3d2e1c4-0002", "failure_reason"] == "empty_number"  # MK:0001, the shared CMPP table
    assert log.loc["b7f0a3d2e1c4-0001", "done_time"] == utc("2025-05-06 01:00:06")  # deliverTime is UTC
    assert log.loc["b7f0a3d2e1c4-0002", "segments"] == 2


def test_twilio_status_callback_form_bodies():
    """Form bodies Twilio posts to a StatusCallback URL, one per line (written from the
    documented parameters): status, error code, and RawDlrDoneDate's YYMMDDhhmm."""
    res = load_send_log(FIXTURES / "twilio_status_callback.txt")
    assert res.summary.iloc[0]["layout"] == "twilio_status_callback"
    log = res.log.set_index("phone")
    assert log["status"].astype(str).to_dict() == {"+14155550123": "delivered", "+14155550124": "failed"}
    assert log.loc["+14155550124", "failure_reason"] == "unreachable"  # 30003
    assert log.loc["+14155550123", "done_time"] == ts("2025-05-06 09:00")  # no zone given: the log's
    # "sent" carries no time at all (a body has none but RawDlrDoneDate): rejected, saying so
    assert res.rejects[["line", "reason_code"]].values.tolist() == [[3, "no_time"]]
