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
from analysis.schema import validate

TZ = "Asia/Shanghai"


def ts(text):
    return pd.Timestamp(text, tz=TZ)


def by_id(log):
    return log.set_index("message_id")


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


def test_tencent_receipts_join_submissions_and_orphans_are_reported(fixtures):
    res = load_send_log([fixtures / "tencent_submissions.csv", fixtures / "tencent_pull.csv"])
    log = by_id(res.log)
    assert res.summary.iloc[0].encoding == "utf-8-sig"
    assert log.loc["t1", "status"] == "delivered" and log.loc["t1", "done_time"] == ts("2025-05-06 09:00:05")
    assert log.loc["t2", "failure_reason"] == "blacklisted" and log.loc["t2", "error_code"] == "1015"
    assert log.loc["t3", "status"] == "pending"  # no receipt yet
    assert log.loc["t3", "carrier"] == "Virtual (China Telecom)"
    (orphan,) = res.rejects.itertuples()
    assert orphan.line == 4 and "receipt without a submission" in orphan.reason
    assert '"serialno":"t9"' in orphan.record  # the raw row is kept with its reason
    assert "t9" not in log.index


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
    assert log.loc["0A0000002", "done_time"] == ts("2025-05-06 09:02")  # scts in UTC


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
    assert set(read_send_log(tmp_path / "nv.csv", vendor="huawei")["vendor"]) == {"huawei"}
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
