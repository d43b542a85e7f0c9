"""The demo data: the loader recovers what the simulation injected."""

import json
from pathlib import Path

import pandas as pd
from conftest import demo_files

from analysis import load_send_log


def test_demo_loads_and_accounts_for_every_row(demo):
    res = load_send_log(demo_files(demo))
    s = res.summary
    assert (s.loaded + s.rejected + s.duplicates == s.rows_read).all()
    # the injected malformed rows: sci-notation phone, bad date, short row + one log noise line
    reasons = res.rejects["reason"]
    assert reasons.str.startswith("precision lost").sum() == 1
    assert reasons.str.contains("unreadable time").sum() == 1
    assert reasons.str.startswith("malformed row").sum() == 1
    assert reasons.eq("not a send or delivery-receipt line").sum() == 1
    assert len(res.rejects) == 4
    # overlapping Aliyun exports: exactly the overlap is duplicate
    assert s.duplicates.sum() == demo["duplicates"]["aliyun_overlap_rows"]
    # one message per simulated message (Twilio slice included), nothing lost; the
    # malformed rows are extra copies with their own ids, all rejected
    assert len(res.log) == demo["messages"]["total"] + 400


def test_demo_truths_survive_loading(demo):
    log = load_send_log(demo_files(demo)).log
    gw = log[log["vendor"].eq("gateway")]
    assert int((gw["attempt"] > 1).sum()) == demo["messages"]["resends"]
    assert int(log["is_probe"].sum()) == demo["canaries"]
    m3 = log[log["template_id"].isin(["M3", "SMS_M3"])]
    assert (m3["failure_reason"].eq("content_blocked").sum() / len(m3)) > 0.5
    out = demo["outage"]
    hit = log[log["carrier"].eq(out["carrier"]) & log["province"].eq(out["province"])
              & log["submit_time"].between(pd.Timestamp(out["start"], tz="Asia/Shanghai"),
                                           pd.Timestamp(out["end"], tz="Asia/Shanghai"), inclusive="left")]
    assert len(hit) == out["messages"]


def test_truth_manifest_written(demo):
    path = Path(demo["files"]["bills"]).parent / "truth.json"
    assert json.loads(path.read_text(encoding="utf-8"))["billing"]["modes"]["aliyun"] == "submission"
