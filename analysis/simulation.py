"""The demo data set: a realistic multi-vendor month of sends with known injected truths.

``simulate()`` draws one seeded set of messages and writes them in several vendor
formats (Aliyun send details in GBK with an overlapping re-export, Tencent
submissions plus pulled receipts, a CMPP gateway's submissions workbook plus its
delivery-receipt log, a Twilio bulk export), the click, reply and complaint events,
the vendors' monthly bills, and ``truth.json``: what was injected, so that tests can
check that the analysis finds it.

Injected truths
---------------
* carrier and province mix from real number prefixes, an hour-of-day volume curve;
* a provincial outage: China Mobile in Guangdong, 2025-05-07 00:00 to 2025-05-10 00:00;
* silent resends: the gateway resends most failed messages within minutes, which lifts
  its after-resend arrival well above its first-attempt arrival;
* billing: Aliyun and Tencent bill every submitted segment (as their pricing pages say
  they do); the gateway bills delivered ones;
* a blocked template (``M3``, promises "保过") that carriers filter as spam;
* a click-through curve by send hour peaking at 15:00 (about 40% above 20:00);
* the Labor Day holiday (2025-05-01 to 05-05) with a marketing peak;
* canary messages (about 1% of gateway and Tencent volume, ``is_probe``);
* a few malformed Aliyun rows (a phone in scientific notation, an unreadable date, a
  short row) and duplicated rows from overlapping re-exports.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd

from .enrichment import prefix_table

TZ = "Asia/Shanghai"
START = pd.Timestamp("2025-04-14", tz=TZ)  # Monday of ISO week 2025-W16
DAYS = 35  # through Sunday 2025-05-18 (W20)
OUTAGE = {"carrier": "China Mobile", "province": "Guangdong",
          "start": "2025-05-07 00:00", "end": "2025-05-10 00:00", "arrival": 0.45}
HOLIDAY = ("2025-05-01", "2025-05-05")
VENDORS = {"aliyun": 0.40, "tencent": 0.35, "gateway": 0.25}
PRICES = {"aliyun": 0.045, "tencent": 0.042, "gateway": 0.035}
BILLING = {"aliyun": "submission", "tencent": "submission", "gateway": "delivery"}

#: 3-digit blocks by carrier (allocation), sampled to build subscribers.
BLOCKS = {
    "China Mobile": ["134", "135", "136", "137", "138", "139", "150", "151", "152", "157",
                     "158", "159", "182", "183", "187", "188"],
    "China Unicom": ["130", "131", "132", "155", "156", "185", "186"],
    "China Telecom": ["133", "153", "180", "181", "189"],
    "Virtual (China Unicom)": ["171"],
}
CARRIER_MIX = {"China Mobile": 0.56, "China Unicom": 0.24, "China Telecom": 0.17, "Virtual (China Unicom)": 0.03}

TEMPLATES = pd.DataFrame(
    [
        ("V1", "verification", "【乐享商城】您的验证码是{code}，5分钟内有效，请勿泄露。", 0.50),
        ("N1", "notification", "【乐享商城】您的订单已发货，快递单号{code}，点击查看物流 https://s.lx.cn/t", 0.18),
        ("N2", "notification", "【乐享商城】您的账单已出，本期应还{code}元，详情 https://s.lx.cn/b", 0.12),
        ("M1", "marketing", "【乐享商城】会员日全场八折，爆款低至9.9元，戳 https://s.lx.cn/m 回T退订", 0.10),
        ("M2", "marketing", "【乐享商城】母婴专场限时满199减50，宝宝用品一站购齐 https://s.lx.cn/baby 回T退订", 0.07),
        ("M3", "marketing", "【乐享教育】考证冲刺班，保过！不过全额退款，立即报名 https://s.lx.cn/e 回T退订", 0.03),
    ],
    columns=["template_id", "category", "text", "share"],
)
PROBE_TEXT = "【乐享商城】通道监测消息，请忽略。"

#: hour-of-day volume weights (0..23)
HOUR_WEIGHTS = np.array([0.3, 0.2, 0.1, 0.1, 0.1, 0.2, 0.5, 1.2, 2.2, 3.0, 3.2, 2.8,
                         2.2, 2.0, 2.4, 2.6, 2.5, 2.3, 2.1, 2.3, 2.5, 2.0, 1.2, 0.6])
#: click probability of a delivered link message by send hour (peak 15:00)
CLICK_BY_HOUR = 0.06 + 0.06 * np.exp(-0.5 * ((np.arange(24) - 15) / 3.8) ** 2)


def simulate(out_dir: str | Path | None = None, *, n: int = 60_000, seed: int = 7, outage: bool = True) -> dict:
    """Write the demo data set to ``out_dir`` (default ``data/raw/demo``).

    Parameters
    ----------
    out_dir : path, optional
    n : int
        Number of original messages (resends and the Twilio slice come on top).
    seed : int
    outage : bool
        Inject the Guangdong China Mobile outage (turn off to measure false alarms on
        the same data without it).

    Returns
    -------
    dict
        The truth manifest (also written as ``truth.json``), including the paths of the
        files written under ``files``.
    """
    from .config import demo_raw

    out = Path(out_dir) if out_dir is not None else demo_raw()
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    msgs = _draw_messages(rng, n)
    msgs = _deliver(rng, msgs, outage=outage)
    msgs = _resend(rng, msgs, outage=outage)
    files = _write_vendor_files(rng, msgs, out)
    files.update(_write_events(rng, msgs, out))
    files["twilio"] = _write_twilio(rng, out)
    truth = _truth(msgs, files)
    (out / "truth.json").write_text(json.dumps(truth, indent=2, ensure_ascii=False), encoding="utf-8")
    return truth


def _draw_messages(rng: np.random.Generator, n: int) -> pd.DataFrame:
    # subscribers: a pool smaller than n so numbers repeat (repeated failures show)
    n_subs = max(n // 3, 50)
    carriers = rng.choice(list(CARRIER_MIX), size=n_subs, p=list(CARRIER_MIX.values()))
    block = np.empty(n_subs, dtype=object)
    for name, blocks in BLOCKS.items():
        mask = carriers == name
        block[mask] = rng.choice(blocks, size=int(mask.sum()))
    block = block.astype(str)
    body = rng.integers(0, 10_000, size=n_subs).astype(str)
    prefix = np.char.add(block, np.char.zfill(body, 4))
    tail = np.char.zfill(rng.integers(0, 10_000, size=n_subs).astype(str), 4)
    table = prefix_table(pd.unique(prefix))
    subs = pd.DataFrame({"phone": np.char.add(prefix, tail), "prefix": prefix})
    subs = subs.join(table[["carrier", "province"]], on="prefix").drop_duplicates("phone")
    subs["empty"] = rng.random(len(subs)) < 0.015  # numbers that no longer exist
    # messages
    sub_idx = rng.integers(0, len(subs), size=n)
    tpl_idx = rng.choice(len(TEMPLATES), size=n, p=TEMPLATES["share"].to_numpy())
    day = rng.integers(0, DAYS, size=n)
    dates = START + pd.to_timedelta(day, unit="D")
    holiday = (dates >= pd.Timestamp(HOLIDAY[0], tz=TZ)) & (dates <= pd.Timestamp(HOLIDAY[1], tz=TZ))
    tpl = TEMPLATES.iloc[tpl_idx].reset_index(drop=True)
    marketing = tpl["category"].eq("marketing").to_numpy()
    # the holiday lifts marketing volume: redraw some non-holiday marketing days into it
    lift = marketing & ~holiday & (rng.random(n) < 0.12)
    day = np.where(lift, 17 + rng.integers(0, 5, size=n), day)  # 05-01 .. 05-05
    hours_all = rng.choice(24, size=n, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    hours_mkt = rng.choice(np.arange(9, 21), size=n)  # marketing only 09:00-20:59
    hour = np.where(marketing, hours_mkt, hours_all)
    seconds = rng.integers(0, 3600, size=n)
    submit = START + pd.to_timedelta(day * 86400 + hour * 3600 + seconds, unit="s")
    vendor = rng.choice(list(VENDORS), size=n, p=list(VENDORS.values()))
    probe = (vendor != "aliyun") & (rng.random(n) < 0.012)
    s = subs.iloc[sub_idx].reset_index(drop=True)
    code = pd.Series(rng.integers(100000, 999999, size=n).astype(str))
    text = pd.Series(np.where(probe, PROBE_TEXT, tpl["text"].to_numpy()))
    parts = text.str.split("{code}", n=1, regex=False)
    content = parts.str[0] + code.where(parts.str.len() > 1, "") + parts.str[1].fillna("")
    msgs = pd.DataFrame(
        {
            "vendor": vendor,
            "phone": s["phone"].to_numpy(),
            "carrier": s["carrier"].to_numpy(),
            "province": s["province"].to_numpy(),
            "empty": s["empty"].to_numpy(),
            "template_id": np.where(probe, "P1", tpl["template_id"].to_numpy()),
            "category": np.where(probe, "notification", tpl["category"].to_numpy()),
            "content": content.to_numpy(),
            "submit_time": submit,
            "is_probe": probe,
            "attempt": 1,
        }
    )
    msgs = msgs.sort_values("submit_time", kind="stable").reset_index(drop=True)
    msgs["message_id"] = [f"{v[:2].upper()}{i:08d}" for i, v in enumerate(msgs["vendor"])]
    return msgs


def _is_peak(t: pd.Series) -> np.ndarray:
    local = t.dt.tz_convert(TZ)
    weekday_peak = (local.dt.day_of_week < 5) & (local.dt.hour == 9)
    d = local.dt.normalize()
    holiday = (d >= pd.Timestamp(HOLIDAY[0], tz=TZ)) & (d <= pd.Timestamp(HOLIDAY[1], tz=TZ))
    return (weekday_peak | holiday).to_numpy()


def _deliver(rng: np.random.Generator, msgs: pd.DataFrame, *, first: bool = True, outage: bool = True) -> pd.DataFrame:
    """Draw each message's fate: status, error code, latency."""
    n = len(msgs)
    base = msgs["carrier"].map({"China Mobile": 0.978, "China Unicom": 0.968, "China Telecom": 0.962}).fillna(0.93)
    vendor_shift = msgs["vendor"].map({"aliyun": 0.0, "tencent": 0.004, "gateway": -0.10 if first else -0.06})
    p = (base + vendor_shift).to_numpy()
    peak = _is_peak(msgs["submit_time"])
    p = p - 0.012 * peak
    t = msgs["submit_time"]
    outage = outage & (
        msgs["carrier"].eq(OUTAGE["carrier"]) & msgs["province"].eq(OUTAGE["province"])
        & (t >= pd.Timestamp(OUTAGE["start"], tz=TZ)) & (t < pd.Timestamp(OUTAGE["end"], tz=TZ))
    ).to_numpy()
    p = np.where(outage, OUTAGE["arrival"], p)
    blocked = msgs["template_id"].eq("M3").to_numpy()
    p = np.where(blocked, 0.25, p)
    p = np.where(msgs["empty"].to_numpy(), 0.0, p)
    ok = rng.random(n) < p
    # failure codes
    generic = rng.choice(["MK:0005", "MK:0010", "DB:0144", "IB:0008", "UNDELIV"], size=n,
                         p=[0.35, 0.3, 0.1, 0.1, 0.15])
    code = np.where(msgs["empty"].to_numpy(), "MK:0001", generic)
    code = np.where(outage, "MK:0023", code)
    code = np.where(blocked, "MK:0115", code)
    expired = ~ok & (rng.random(n) < 0.08) & ~blocked & ~msgs["empty"].to_numpy()
    status = np.where(ok, "delivered", np.where(expired, "expired", "failed"))
    code = np.where(expired, "EXPIRED", code)
    # latency: lognormal, slower at peak, a tail beyond 10 minutes
    lat = rng.lognormal(np.log(4.0), 1.0, size=n) * np.where(peak, 3.0, 1.0)
    lat = np.where(rng.random(n) < 0.015, rng.uniform(600, 3600, size=n), lat)
    lat = np.where(status == "expired", 48 * 3600.0, lat)
    done = t + pd.to_timedelta(np.round(lat), unit="s")
    # the last two days: some receipts have not come back yet
    recent = (t >= START + pd.Timedelta(days=DAYS - 2)).to_numpy()
    pending = recent & (rng.random(n) < 0.04)
    status = np.where(pending, "pending", status)
    out = msgs.copy()
    out["status"] = status
    out["code"] = np.where(status == "delivered", "DELIVRD", np.where(pending, "", code))
    out["done_time"] = done.where(~pending)
    out["outage"] = outage
    return out


def _resend(rng: np.random.Generator, msgs: pd.DataFrame, *, outage: bool = True) -> pd.DataFrame:
    """The gateway silently resends most failed originals 2-10 minutes later."""
    failed = msgs["vendor"].eq("gateway") & msgs["status"].isin(["failed", "expired"]) & ~msgs["is_probe"]
    pick = failed & (rng.random(len(msgs)) < 0.85)
    again = msgs[pick].copy()
    again["submit_time"] = again["submit_time"] + pd.to_timedelta(rng.integers(120, 600, size=len(again)), unit="s")
    # resends leave the message's own state (an empty number is still empty)
    again = _deliver(rng, again.drop(columns=["status", "code", "done_time", "outage"]), first=False, outage=outage)
    again["attempt"] = 2
    again["origin"] = msgs.loc[pick, "message_id"].to_numpy()
    again["message_id"] = [f"GR{i:08d}" for i in range(len(again))]
    both = pd.concat([msgs, again], ignore_index=True)
    return both.sort_values("submit_time", kind="stable").reset_index(drop=True)


def _local(t: pd.Series) -> pd.Series:
    return t.dt.tz_convert(TZ).dt.strftime("%Y-%m-%d %H:%M:%S")


def _submissions(msgs: pd.DataFrame, vendor: str, **extra) -> pd.DataFrame:
    """A submissions file in the canonical layout (no attempt column: it is inferred)."""
    cols = ["message_id", "phone", "template_id", "category", "content"]
    frame = msgs[cols].reset_index(drop=True).assign(submit_time=_local(msgs["submit_time"]).to_numpy(),
                                                     is_probe=msgs["is_probe"].to_numpy())
    frame.insert(0, "vendor", vendor)
    return frame.assign(**extra)


def _write_vendor_files(rng: np.random.Generator, msgs: pd.DataFrame, out: Path) -> dict:
    files: dict[str, list[str]] = {}
    # --- Aliyun: send details, GBK, two overlapping exports, a few malformed rows
    a = msgs[msgs["vendor"].eq("aliyun")]
    send_status = a["status"].map({"delivered": "3", "pending": "1"}).fillna("2")
    details = pd.DataFrame(
        {
            "PhoneNum": a["phone"].to_numpy(),
            "SendStatus": send_status.to_numpy(),
            "ErrCode": np.where(a["status"].eq("delivered"), "DELIVERED", a["code"]),
            "TemplateCode": ("SMS_" + a["template_id"]).to_numpy(),
            "Content": a["content"].to_numpy(),
            "SendDate": _local(a["submit_time"]).to_numpy(),
            "ReceiveDate": _local(a["done_time"]).fillna("").to_numpy(),
            "OutId": a["message_id"].to_numpy(),
        }
    )
    cut1 = START + pd.Timedelta(days=21)  # first export: W16-W18
    cut0 = START + pd.Timedelta(days=14)  # second export: W18-W20 (W18 overlaps)
    first = details[(a["submit_time"] < cut1).to_numpy()]
    second = details[(a["submit_time"] >= cut0).to_numpy()].copy()
    bad = pd.DataFrame(
        [
            {**second.iloc[0].to_dict(), "PhoneNum": "1.38001E+10", "OutId": "BAD1"},
            {**second.iloc[1].to_dict(), "SendDate": "2025-13-45 99:00", "OutId": "BAD2"},
        ]
    )
    second = pd.concat([second, bad], ignore_index=True)
    p1, p2 = out / "aliyun-details-w16-w18.csv", out / "aliyun-details-w18-w20.csv"
    first.to_csv(p1, index=False, encoding="gb18030")
    text = second.to_csv(index=False, lineterminator="\r\n")
    text += "13800138000,3,DELIVERED\r\n"  # a short row, cut off in the export
    p2.write_bytes(text.encode("gb18030"))
    files["aliyun"] = [str(p1), str(p2)]
    overlap = int(((a["submit_time"] >= cut0) & (a["submit_time"] < cut1)).sum())
    files["_aliyun_overlap_rows"] = overlap
    # --- Tencent: canonical submissions (UTF-8 with BOM) + pulled receipts (Unix time)
    t = msgs[msgs["vendor"].eq("tencent")]
    subs = _submissions(t, "tencent")
    ps = out / "tencent-submissions.csv"
    subs.to_csv(ps, index=False, encoding="utf-8-sig")
    r = t[t["status"].ne("pending")]
    receipts = pd.DataFrame(
        {
            "UserReceiveTime": (r["done_time"] - pd.Timestamp("1970-01-01", tz="UTC"))
            .dt.total_seconds().astype("int64").to_numpy(),
            "CountryCode": "86",
            "SubscriberNumber": r["phone"].to_numpy(),
            "PhoneNumber": ("+86" + r["phone"]).to_numpy(),
            "SerialNo": r["message_id"].to_numpy(),
            "ReportStatus": np.where(r["status"].eq("delivered"), "SUCCESS", "FAIL"),
            "Description": r["code"].to_numpy(),
        }
    )
    pr = out / "tencent-status.csv"
    receipts.to_csv(pr, index=False)
    files["tencent"] = [str(ps), str(pr)]
    # --- Gateway: submissions workbook (no attempt column) + DLR log (out-of-order ENROUTE)
    g = msgs[msgs["vendor"].eq("gateway")]
    gsubs = _submissions(g, "gateway", channel="CMPP-106-01", status="pending")
    pg = out / "gateway-submissions.xlsx"
    gsubs.to_excel(pg, index=False, engine="openpyxl")
    d = g[g["status"].ne("pending")]
    yymm = "%y%m%d%H%M%S"
    sub_s = d["submit_time"].dt.tz_convert(TZ).dt.strftime(yymm)
    done_s = d["done_time"].dt.tz_convert(TZ).dt.strftime(yymm)
    stat = np.where(d["status"].eq("delivered"), "DELIVRD", np.where(d["status"].eq("expired"), "EXPIRED", d["code"]))
    log_time = d["done_time"].dt.tz_convert(TZ).dt.strftime("%Y-%m-%d %H:%M:%S")
    lines = (
        log_time + " INFO dest=" + d["phone"] + " id:" + d["message_id"] + " sub:001 dlvrd:"
        + np.where(d["status"].eq("delivered"), "001", "000") + " submit date:" + sub_s
        + " done date:" + done_s + " stat:" + stat + " err:000 text:" + d["content"].str.slice(0, 20)
    )
    enroute = d[rng.random(len(d)) < 0.1]
    late = (
        (enroute["done_time"] + pd.Timedelta(seconds=3)).dt.tz_convert(TZ).dt.strftime("%Y-%m-%d %H:%M:%S")
        + " INFO dest=" + enroute["phone"] + " id:" + enroute["message_id"] + " sub:001 dlvrd:000 submit date:"
        + enroute["submit_time"].dt.tz_convert(TZ).dt.strftime(yymm) + " done date:"
        + enroute["submit_time"].dt.tz_convert(TZ).dt.strftime(yymm) + " stat:ENROUTE err:000 text:"
    )
    noise = pd.Series(["2025-05-06 03:00:00 WARN link idle, sending active_test"])
    all_lines = pd.concat([lines, late, noise], ignore_index=True)
    pl = out / "gateway-dlr.log"
    pl.write_text("\n".join(all_lines) + "\n", encoding="utf-8")
    files["gateway"] = [str(pg), str(pl)]
    files["_gateway_enroute_lines"] = len(late)
    return files


def _write_events(rng: np.random.Generator, msgs: pd.DataFrame, out: Path) -> dict:
    """Clicks and conversions, unsubscribe replies, complaints, vendor bills."""
    delivered = msgs[msgs["status"].eq("delivered") & msgs["content"].str.contains("https://", regex=False)]
    hour = delivered["submit_time"].dt.tz_convert(TZ).dt.hour.to_numpy()
    clicked = delivered[rng.random(len(delivered)) < CLICK_BY_HOUR[hour]]
    delay = pd.to_timedelta(rng.exponential(1800, size=len(clicked)).round(), unit="s")
    clicks = pd.DataFrame({"message_id": clicked["message_id"].to_numpy(), "vendor": clicked["vendor"].to_numpy(),
                           "event_time": _local(clicked["submit_time"] + delay).to_numpy(), "event": "click"})
    conv = clicks[rng.random(len(clicks)) < 0.2].assign(event="conversion")
    events = pd.concat([clicks, conv], ignore_index=True)
    pe = out / "clicks.csv"
    events.to_csv(pe, index=False)
    mkt = msgs[msgs["status"].eq("delivered") & msgs["category"].eq("marketing")]
    unsub = mkt[rng.random(len(mkt)) < 0.006]
    words = rng.choice(["T", "TD", "退订", "R", "拒收"], size=len(unsub))
    replies = pd.DataFrame({"phone": unsub["phone"].to_numpy(),
                            "reply_time": _local(unsub["done_time"] + pd.Timedelta(minutes=5)).to_numpy(),
                            "text": words})
    other = mkt[rng.random(len(mkt)) < 0.002]
    replies = pd.concat([replies, pd.DataFrame({"phone": other["phone"].to_numpy(),
                                                "reply_time": _local(other["done_time"] + pd.Timedelta(minutes=9)).to_numpy(),
                                                "text": "好的，谢谢"})], ignore_index=True)
    pr = out / "replies.csv"
    replies.to_csv(pr, index=False)
    comp = mkt[rng.random(len(mkt)) < 0.0015]
    complaints = pd.DataFrame({"message_id": comp["message_id"].to_numpy(), "phone": comp["phone"].to_numpy(),
                               "complaint_time": _local(comp["done_time"] + pd.Timedelta(hours=2)).to_numpy()})
    pc = out / "complaints.csv"
    complaints.to_csv(pc, index=False)
    # bills: per vendor and month, billed segments under the vendor's real mode
    seg = np.where(msgs["content"].str.len() > 70, np.ceil(msgs["content"].str.len() / 67), 1)
    b = msgs.assign(segments=seg, month=msgs["submit_time"].dt.tz_convert(TZ).dt.strftime("%Y-%m"))
    rows = []
    for (vendor, month), part in b.groupby(["vendor", "month"]):
        billed = part["segments"] if BILLING[vendor] == "submission" else part.loc[part["status"].eq("delivered"), "segments"]
        count = int(billed.sum())
        rows.append({"vendor": vendor, "period": month, "billed_count": count, "unit_price": PRICES[vendor],
                     "amount": round(count * PRICES[vendor], 2)})
    pb = out / "bills.csv"
    pd.DataFrame(rows).to_csv(pb, index=False)
    return {"clicks": str(pe), "replies": str(pr), "complaints": str(pc), "bills": str(pb)}


def _write_twilio(rng: np.random.Generator, out: Path, n: int = 400) -> str:
    """A small international slice through Twilio (bulk export, gzip JSON lines)."""
    prefixes = rng.choice(["+4479111", "+1415555", "+659123", "+8190123"], size=n)
    phones = np.char.add(prefixes.astype(str), np.char.zfill(rng.integers(0, 10_000, size=n).astype(str), 4))
    created = START + pd.to_timedelta(rng.integers(0, DAYS * 86400, size=n), unit="s")
    status = rng.choice(["delivered", "undelivered", "failed", "sent"], size=n, p=[0.9, 0.06, 0.02, 0.02])
    err = np.where(status == "undelivered", rng.choice(["30003", "30005", "30007"], size=n), None)
    updated = created + pd.to_timedelta(rng.integers(2, 60, size=n), unit="s")
    path = out / "twilio-bulk.jsonl.gz"
    iso = "%Y-%m-%dT%H:%M:%SZ"
    records = pd.DataFrame({
        "sid": [f"SM{i:032x}" for i in range(n)], "account_sid": "AC0", "messaging_service_sid": "MG0",
        "from": "+15005550006", "to": phones, "body": "Your LX code is 123456",
        "num_segments": "1", "status": status, "error_code": err, "direction": "outbound-api",
        "price": "-0.0400", "price_unit": "USD",
        "date_created": created.tz_convert("UTC").strftime(iso), "date_updated": updated.tz_convert("UTC").strftime(iso),
        "date_sent": created.tz_convert("UTC").strftime(iso),
    })
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(records.to_json(orient="records", lines=True))
    return str(path)


def _rate(ok: pd.Series) -> float:
    return float(ok.mean()) if len(ok) else float("nan")


def _truth(msgs: pd.DataFrame, files: dict) -> dict:
    originals = msgs[msgs["attempt"].eq(1)]
    gw = originals[originals["vendor"].eq("gateway") & ~originals["is_probe"]]
    resent = msgs[msgs["attempt"].eq(2)]
    rescued = resent[resent["status"].eq("delivered")]
    outage = msgs[msgs["outage"]]
    return {
        "period": {"start": str(START.date()), "days": DAYS, "weeks": ["2025-W16", "2025-W17", "2025-W18", "2025-W19", "2025-W20"]},
        "messages": {"originals": int(len(originals)), "resends": int(len(resent)), "total": int(len(msgs))},
        "outage": {**OUTAGE, "week": "2025-W19", "messages": int(len(outage)),
                   "observed_arrival": _rate(outage["status"].eq("delivered"))},
        "silent_resends": {
            "vendor": "gateway",
            "first_attempt_arrival": _rate(gw["status"].eq("delivered")),
            "after_resend_arrival": _rate(gw["status"].eq("delivered") | gw["message_id"].isin(rescued["origin"])),
        },
        "billing": {"modes": BILLING, "unit_prices": PRICES},
        "blocked_template": {"template_id": "M3", "word": "保过", "code": "MK:0115",
                             "arrival": _rate(msgs.loc[msgs["template_id"].eq("M3"), "status"].eq("delivered"))},
        "click_by_hour": {"peak_hour": 15, "evening_hour": 20,
                          "lift_15_vs_20": float(CLICK_BY_HOUR[15] / CLICK_BY_HOUR[20] - 1)},
        "holiday": {"start": HOLIDAY[0], "end": HOLIDAY[1]},
        "canaries": int(msgs["is_probe"].sum()),
        "malformed": {"file": files["aliyun"][1], "rows": 3,
                      "reasons": ["precision lost", "unreadable time", "malformed row"]},
        "duplicates": {"aliyun_overlap_rows": files.pop("_aliyun_overlap_rows"),
                       "gateway_enroute_lines": files.pop("_gateway_enroute_lines")},
        "files": files,
    }


# --------------------------------------------------------------------------- channel trial

TRIAL_DAY = pd.Timestamp("2025-06-10 08:00", tz=TZ)  # a Tuesday
_TRIAL_PREFIX = {"China Mobile": "139", "China Unicom": "186", "China Telecom": "189",
                 "Virtual (China Mobile)": "1705"}
_TRIAL_TEXT = {
    "verification": "【乐享商城】您的验证码是{n:06d}，5分钟内有效。",
    "notification": "【乐享商城】您的订单已发货，快递单号{n:06d}。",
    "marketing": "【乐享商城】会员日全场八折 https://s.lx.cn/m 回T退订",
}


def simulate_trial(out_dir: str | Path | None = None) -> dict:
    """Write a three-vendor channel trial with known verdicts to ``out_dir`` (default
    ``data/raw/demo-trial``) as ``trial.csv``: the canonical layout plus ``stage`` and
    ``round`` columns. Counts are fixed, not random, so every verdict is known:

    * ``alpha`` fails nothing and leads the head-to-head; its basic arrival is 100%, but
      24 messages are too few to show 98% (insufficient: 189 needed) or that 99% of
      them arrive within 10 minutes; its scenario categories, 1,000 messages each at
      99–99.6%, are shown at 98% and alike;
    * ``beta`` misses the virtual operator, delivers one message after 15 minutes and
      only 17 of 20 in the basic test, drifts 10 points across stress rounds while
      latency quadruples, and its marketing arrival lags;
    * ``gamma`` silently resends: 10% of originals fail and are resent and delivered, so
      its first-attempt arrival is 90% everywhere; its stable stress rounds are too small
      to tell a 5-point difference at that rate, and its 30 basic messages too few to
      show 99% within 10 minutes;
    * head to head, beta and gamma are measurably behind alpha.

    Returns the truth manifest (also ``truth.json``).
    """
    from .config import demo_trial

    out = Path(out_dir) if out_dir is not None else demo_trial()
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    counter = iter(range(1, 10**6))

    def send(vendor, stage, n, ok, *, at, category="verification", carriers=tuple(_TRIAL_PREFIX), numbers=None,
             latency=8, slow=0, rnd=None, resend=0.0):
        numbers = numbers or n
        failed_idx = set(range(ok, n))
        resent = set(range(int(round(n * resend)))) if resend else set()
        for i in range(n):
            carrier = carriers[i % len(carriers)]
            phone = _TRIAL_PREFIX[carrier] + f"{(i % numbers):0{11 - len(_TRIAL_PREFIX[carrier])}d}"
            t = at + pd.Timedelta(seconds=3 * i)
            fail = i in failed_idx or i in resent
            lat = 900 if i < slow else latency
            k = next(counter)
            base = {"vendor": vendor, "message_id": f"{vendor[:2].upper()}{k:06d}", "phone": phone, "carrier": carrier,
                    "template_id": f"T-{category[:3]}", "category": category,
                    "content": _TRIAL_TEXT[category].format(n=k % 10**6), "submit_time": t,
                    "done_time": t + pd.Timedelta(seconds=lat), "status": "failed" if fail else "delivered",
                    "error_code": "MK:0005" if fail else None, "attempt": 1, "stage": stage, "round": rnd}
            rows.append(base)
            if i in resent:
                k2 = next(counter)
                t2 = t + pd.Timedelta(minutes=2)
                rows.append({**base, "message_id": f"{vendor[:2].upper()}{k2:06d}", "submit_time": t2,
                             "done_time": t2 + pd.Timedelta(seconds=lat), "status": "delivered", "error_code": None,
                             "attempt": 2})

    day = TRIAL_DAY
    # alpha: passes everything
    send("alpha", "basic", 24, 24, at=day, numbers=12)
    for r, ok, lat in ((1, 248, 10), (2, 247, 12), (3, 248, 11)):
        send("alpha", "stress", 250, ok, at=day + pd.Timedelta(minutes=60 + 30 * (r - 1)), rnd=r, latency=lat)
    for c, ok in (("verification", 996), ("notification", 995), ("marketing", 990)):
        send("alpha", "scenario", 1000, ok, at=day + pd.Timedelta(hours=5), category=c)
    # beta: fails basic, stress and scenario
    send("beta", "basic", 20, 17, at=day, numbers=10, carriers=("China Mobile", "China Unicom", "China Telecom"), slow=1)
    for r, ok, lat in ((1, 196, 10), (2, 190, 20), (3, 176, 40)):
        send("beta", "stress", 200, ok, at=day + pd.Timedelta(minutes=60 + 30 * (r - 1)), rnd=r, latency=lat)
    for c, ok in (("verification", 99), ("notification", 98), ("marketing", 80)):
        send("beta", "scenario", 100, ok, at=day + pd.Timedelta(hours=5), category=c)
    # gamma: silent resends everywhere
    send("gamma", "basic", 30, 30, at=day, numbers=15, resend=0.1)
    for r in (1, 2, 3):
        send("gamma", "stress", 200, 200, at=day + pd.Timedelta(minutes=60 + 30 * (r - 1)), rnd=r, resend=0.1)
    for c in SCENARIO_ORDER:
        send("gamma", "scenario", 100, 100, at=day + pd.Timedelta(hours=5), category=c, resend=0.1)
    frame = pd.DataFrame(rows)
    for col in ("submit_time", "done_time"):
        frame[col] = frame[col].dt.strftime("%Y-%m-%d %H:%M:%S")
    frame["round"] = frame["round"].astype("Int64")
    path = out / "trial.csv"
    frame.to_csv(path, index=False, encoding="utf-8")
    truth = {
        "file": str(path),
        "fails": {"alpha": [],
                  "beta": ["carriers", "within_10min", "arrival", "round_spread", "latency", "scenario_parity",
                           "head_to_head"],
                  "gamma": ["arrival", "scenario_parity", "resend_gap", "head_to_head"]},
        "insufficient": {"alpha": ["arrival", "within_10min"], "beta": [], "gamma": ["round_spread", "within_10min"]},
        "too_small": {"alpha": {"arrival": 189}},
        "lagging_category": {"beta": "marketing"},
        "missing_carrier": {"beta": "Virtual"},
    }
    (out / "truth.json").write_text(json.dumps(truth, indent=2, ensure_ascii=False), encoding="utf-8")
    return truth


SCENARIO_ORDER = ("verification", "notification", "marketing")
