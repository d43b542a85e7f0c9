"""Template wording and send-window checks."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import make_log

from analysis import check_send_windows, check_templates


def _check(texts, **kw):
    frame = pd.DataFrame({"template_id": [f"t{i}" for i in range(len(texts))], "content": texts,
                          "category": kw.pop("category", ["marketing"] * len(texts))})
    return check_templates(frame, **kw).set_index("template_id")


@pytest.mark.parametrize("text,promissory,absolute", [
    ("【学堂】考证冲刺班，保过！国家级名师 回T退订", "保过", "国家级"),
    ("【學堂】考證衝刺班，保過！國家級名師 回T退訂", "保過", "國家級"),  # traditional script
    ("【理财】稳赚不赔，全网第一 拒收请回复R", "稳赚", "第一"),
    ("【商城】最近的订单第一时间发货 回T退订", "", ""),  # 最近 and 第一时间 are ordinary words
    ("【商城】全场最佳 回T退订", "", "最佳"),  # 最佳 found once, not again as 最
])
def test_words_in_both_scripts(text, promissory, absolute):
    row = _check([text]).iloc[0]
    assert row["promissory"] == promissory and row["absolute"] == absolute


def test_signature_unsubscribe_segments_and_links():
    long = "【商城】" + "优惠" * 40 + " https://s.lx.cn/a"
    out = _check(["会员日八折 https://x.cn/a", long + " 回T退订", "【银行】您的验证码是123456"],
                 category=["marketing", "marketing", "verification"], lang="en")
    assert "no signature" in out.loc["t0", "issues"] and "unsubscribe" in out.loc["t0", "issues"]
    assert out.loc["t0", "links"] == 1 and not out.loc["t0", "unsubscribe"]
    assert out.loc["t1", "segments"] == 2 and "billed as 2 segments" in out.loc["t1", "issues"]
    zh = _check(["会员日八折 https://x.cn/a"])  # the default language is the analysts' own
    assert zh.loc["t0", "issues"] == "开头或结尾没有【签名】；营销短信没有退订提示（如“回T退订”“拒收请回复R”）"
    assert out.loc["t2", "issues"] == ""  # verification needs no unsubscribe line
    assert out.index[0] == "t0"  # most issues first


def test_user_word_list_extends_the_package_list(tmp_path):
    words = tmp_path / "words.toml"
    words.write_text('[promissory]\nwords = ["包就业"]\n', encoding="utf-8")
    row = _check(["【学堂】包就业，保过 回T退订"], words=words).iloc[0]
    assert row["promissory"] == "包就业;保过"


def test_observed_block_rate_beside_the_wording(demo_inputs, demo):
    out = check_templates(demo_inputs.log).set_index("template_id")
    blocked = demo["blocked_template"]["template_id"]
    assert out.loc[blocked, "promissory"] == demo["blocked_template"]["word"]
    log = demo_inputs.log
    mine = log[log["template_id"].astype(str).eq(blocked)]
    assert out.loc[blocked, "blocked_rate"] == pytest.approx(mine["failure_reason"].astype(str).eq("content_blocked").mean())
    assert out.loc[blocked, "sent"] == len(mine)
    assert out.loc["V1", "blocked_rate"] == 0


def test_send_windows():
    log = make_log([
        {"submit": "2025-05-06 10:00", "category": "notification", "template_id": "N"},  # finance window
        {"submit": "2025-05-06 10:30", "category": "notification", "template_id": "N"},
        {"submit": "2025-05-06 12:00", "category": "notification", "template_id": "N"},
        {"submit": "2025-05-06 21:30", "category": "marketing", "template_id": "M"},    # late marketing
        {"submit": "2025-05-06 07:59", "category": "marketing", "template_id": "M"},
        {"submit": "2025-05-06 20:59", "category": "marketing", "template_id": "M"},
        {"submit": "2025-05-06 23:00", "category": "verification", "template_id": "V"},  # codes are free
        {"submit": "2025-05-06 10:00", "category": "verification", "template_id": "V"},  # even in a window
    ])
    out = check_send_windows(log, industry="finance", lang="en")
    rules = out.set_index(["rule", "template_id"])["messages"].to_dict()
    assert rules == {("avoid 09:30–11:30", "N"): 2, ("marketing outside 08:00–21:00", "M"): 2}
    assert set(check_send_windows(log, industry="finance")["rule"]) == {"避开 09:30–11:30", "营销短信在 08:00–21:00 以外发送"}
    assert out.set_index("template_id").loc["M", "share"] == pytest.approx(2 / 3)
    wider = check_send_windows(log, marketing_hours=("08:00", "22:00"))
    assert wider["messages"].sum() == 1
    with pytest.raises(ValueError, match="unknown industry"):
        check_send_windows(log, industry="gaming")
