"""Click, reply, complaint and bill files, and their join to the send log."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import make_log

from analysis import LoadError, attach_events, load_inputs, read_events
from analysis.events import event_kind, is_unsubscribe


def _write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def test_kinds_from_headers():
    assert event_kind(["vendor", "period", "billed_count", "unit_price", "amount"]) == "bill"
    assert event_kind(["phone", "reply_time", "text"]) == "replies"
    assert event_kind(["message_id", "phone", "complaint_time"]) == "complaints"
    assert event_kind(["message_id", "event_time", "event"]) == "clicks"
    assert event_kind(["手机号", "回复时间", "回复内容"]) == "replies"
    assert event_kind(["message_id", "phone", "submit_time", "status"]) is None


def test_replies_in_gbk_with_a_bad_row(tmp_path):
    p = _write(tmp_path / "mo.csv", "手机号,回复时间,回复内容\n13800138000,2025-05-06 12:01:00,退订\n"
               "13800138001,not a time,T\n13800138002,2025-05-06 12:03:00,好的\n", "gbk")
    r = read_events(p)
    assert r.log.attrs["kind"] == "replies"
    assert r.log["phone"].tolist() == ["+8613800138000", "+8613800138002"]
    assert r.log["unsubscribe"].tolist() == [True, False]
    assert r.rejects["line"].tolist() == [3]
    s = r.summary.iloc[0]
    assert s["rows_read"] == 3 == s["loaded"] + s["rejected"] + s["duplicates"]


def test_bill_and_duplicates(tmp_path):
    p = _write(tmp_path / "bill.csv", "vendor,period,billed_count,unit_price,amount\n"
               "Aliyun,2025-05,\"1,200\",0.045,54\nAliyun,2025-05,\"1,200\",0.045,54\ntencent,2025/04,80,0.04,\n")
    r = read_events(p)
    assert r.log["billed_count"].tolist() == [1200, 80]
    assert r.log["period"].tolist() == ["2025-05", "2025-04"]
    assert r.log["amount"].iloc[1] == pytest.approx(3.2)  # count × price when the amount is blank
    assert r.summary["duplicates"].iloc[0] == 1


def test_not_an_event_file(tmp_path):
    p = _write(tmp_path / "x.csv", "a,b\n1,2\n")
    with pytest.raises(LoadError, match="x.csv: not a click, reply, complaint or bill file"):
        read_events(p)


@pytest.mark.parametrize("text,expected", [
    ("T", True), (" td ", True), ("退订", True), ("回复退订", True), ("R", True), ("拒收", True),
    ("STOP", True), ("n", True), ("好的", False), ("TEST", False), (None, False),
])
def test_unsubscribe_words(text, expected):
    assert bool(is_unsubscribe(pd.Series([text], dtype=object)).iloc[0]) is expected


def test_attach_by_id_and_by_phone_within_the_window():
    log = make_log([
        {"vendor": "a", "message_id": "m1", "phone": "+8613800000001", "submit": "2025-05-06 10:00"},
        {"vendor": "a", "message_id": "m2", "phone": "+8613800000002", "submit": "2025-05-06 10:00"},
        {"vendor": "b", "message_id": "m1", "phone": "+8613800000003", "submit": "2025-05-06 10:00"},
        {"vendor": "a", "message_id": "m4", "phone": "+8613800000004", "submit": "2025-05-01 10:00"},
    ])
    tz = "Asia/Shanghai"
    clicks = pd.DataFrame({"message_id": ["m1", "m1", None, "zz"], "vendor": ["b", "b", None, "a"],
                           "phone": [None, None, "+8613800000002", None], "template_id": [None, None, None, None],
                           "event_time": pd.to_datetime(["2025-05-06 10:05"] * 4).tz_localize(tz),
                           "event": ["click", "conversion", "click", "click"]})
    replies = pd.DataFrame({"phone": ["+8613800000001", "+8613800000004"],
                            "reply_time": pd.to_datetime(["2025-05-06 11:00", "2025-05-06 11:00"]).tz_localize(tz),
                            "text": ["TD", "TD"], "unsubscribe": [True, True]})
    complaints = pd.DataFrame({"message_id": [None], "phone": ["+8613800000002"],
                               "complaint_time": pd.to_datetime(["2025-05-07 09:00"]).tz_localize(tz)})
    out = attach_events(log, clicks=clicks, replies=replies, complaints=complaints)
    assert out["clicks"].tolist() == [0, 1, 1, 0]  # (vendor, id) keeps vendor b's m1 apart
    assert out["converted"].tolist() == [False, False, True, False]
    assert out["unsubscribed"].tolist() == [True, False, False, False]  # m4 was sent 5 days earlier
    assert out["complained"].tolist() == [False, True, False, False]
    assert list(log.columns) == [c for c in out.columns if c in log.columns]  # input untouched
    assert "clicks" not in log


def test_demo_events_join(demo, demo_inputs):
    log = demo_inputs.log
    clicks = pd.read_csv(demo["files"]["clicks"])
    assert int(log["clicks"].sum()) == int(clicks["event"].eq("click").sum())
    assert int(log["converted"].sum()) == int(clicks.loc[clicks["event"].eq("conversion"), "message_id"].nunique())
    complaints = pd.read_csv(demo["files"]["complaints"])
    assert int(log["complained"].sum()) == complaints["message_id"].nunique()
    # every unsubscribe reply lands on a delivered message to that phone
    replies = pd.read_csv(demo["files"]["replies"], dtype=str)
    unsub = replies[replies["text"].isin(["T", "TD", "退订", "R", "拒收"])]
    phones = log.loc[log["unsubscribed"], "phone"].str.replace("+86", "", regex=False)
    assert set(phones) == set(unsub["phone"])


def test_load_inputs_accounts_for_every_file(demo, demo_inputs):
    s = demo_inputs.summary
    assert (s["rows_read"] == s["loaded"] + s["rejected"] + s["duplicates"]).all()
    kinds = set(s["layout"])
    assert {"clicks_file", "replies_file", "complaints_file", "bill_file"} <= kinds
    assert len(demo_inputs.bill) == len(pd.read_csv(demo["files"]["bills"]))


def test_load_inputs_without_a_send_log(demo):
    with pytest.raises(LoadError, match="no send log among the inputs"):
        load_inputs([demo["files"]["clicks"]])


def test_split_inputs_reads_only_each_file_head(tmp_path, monkeypatch):
    """Sorting inputs by kind peeks at headers: a gigabyte export is not read whole to find its kind."""
    from pathlib import Path

    from analysis.events import split_inputs

    mo = _write(tmp_path / "mo.csv", "手机号,回复时间,回复内容\n" + "13800138000,2025-05-06 12:01:00,好的\n" * 5000, "gbk")
    log = _write(tmp_path / "log.csv", "message_id,phone,submit_time,status\n" + "m,13800138000,2025-05-06 12:00:00,DELIVRD\n" * 5000)
    assert mo.stat().st_size > 65536 and log.stat().st_size > 65536

    def whole(self):
        raise AssertionError(f"{self} read whole")

    monkeypatch.setattr(Path, "read_bytes", whole)
    sends, events = split_inputs([mo, log])
    assert sends == [log]
    assert events == {"replies": [mo]}
