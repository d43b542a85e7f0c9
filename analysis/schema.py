"""The canonical send log: columns, dtypes, display labels and vocabularies.

Everything after the load boundary trusts this schema. Column names are English
snake_case; the Chinese and English display labels used by Excel and charts live in
:data:`LABELS` and nowhere else.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from .distinct import per_distinct

DEFAULT_TZ = "Asia/Shanghai"
#: What a spreadsheet takes for the start of a formula (OWASP's CSV-injection list): text
#: from an export that starts so is written as text, never as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

#: Canonical status vocabulary (README, *The canonical send log*). ``pending``: no final receipt yet.
STATUSES = ["delivered", "failed", "expired", "rejected", "unknown", "pending"]
#: Statuses that are a final receipt (everything but ``pending``).
FINAL_STATUSES = STATUSES[:-1]

#: Failure-reason vocabulary (README, *Measures*); the raw code is kept beside it.
FAILURE_REASONS = [
    "empty_number",
    "unreachable",
    "blacklisted",
    "content_blocked",
    "expired",
    "flow_controlled",
    "platform_rejected",
    "unknown",
]

CATEGORIES = ["verification", "notification", "marketing"]

#: Where ``submit_time`` comes from, best first: the platform's submission record, the
#: submit date a receipt states (SMPP ``submit date``, SNS ``timestamp``), or the
#: receipt's own time standing in for an unknown send time (latency unknown).
TIME_SOURCES = ["submission", "receipt_submit", "receipt"]

STRING = pd.StringDtype("pyarrow")


def time_dtype(tz: str = DEFAULT_TZ) -> pd.DatetimeTZDtype:
    """Dtype of ``submit_time`` and ``done_time``: tz-aware, millisecond resolution."""
    return pd.DatetimeTZDtype("ms", tz)


#: Column -> dtype of the canonical send log, in column order. ``None`` marks the
#: timestamp columns, whose dtype depends on the time zone (see :func:`time_dtype`).
COLUMNS: dict[str, object] = {
    "vendor": "category",
    "channel": "category",
    "message_id": STRING,
    "phone": STRING,
    "country": "category",
    "carrier": "category",
    "province": "category",
    "city": "category",
    "template_id": "category",
    "category": pd.CategoricalDtype(CATEGORIES),
    "content": STRING,
    "segments": "Int16",
    "submit_time": None,
    "done_time": None,
    "time_source": pd.CategoricalDtype(TIME_SOURCES),
    "status": pd.CategoricalDtype(STATUSES),
    "status_code": STRING,
    "error_code": STRING,
    "failure_reason": pd.CategoricalDtype(FAILURE_REASONS),
    "attempt": "Int16",
    "is_probe": "bool",
    "fee": "float64",
    "currency": "category",
}

#: Display labels of every column and vocabulary value: ``LABELS[lang][key]``.
LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "vendor": "平台",
        "channel": "通道",
        "message_id": "消息ID",
        "phone": "手机号",
        "country": "国家",
        "carrier": "运营商",
        "province": "省份",
        "city": "城市",
        "template_id": "模板ID",
        "category": "短信类型",
        "content": "短信内容",
        "segments": "计费条数",
        "submit_time": "提交时间",
        "done_time": "回执时间",
        "status": "状态",
        "status_code": "状态码",
        "error_code": "错误码",
        "failure_reason": "失败原因",
        "attempt": "发送次数",
        "is_probe": "探针",
        "fee": "费用",
        "currency": "币种",
        "time_source": "发送时间来源",
        # statuses
        "delivered": "成功",
        "failed": "失败",
        "expired": "过期",
        "rejected": "拒绝",
        "unknown": "未知",
        "pending": "等待回执",
        # failure reasons
        "empty_number": "空号",
        "unreachable": "关机/不可达",
        "blacklisted": "黑名单",
        "content_blocked": "内容或签名拦截",
        "flow_controlled": "流控",
        "platform_rejected": "平台拒绝",
        # categories
        "verification": "验证码",
        "notification": "通知",
        "marketing": "营销",
    },
    "en": {
        "vendor": "Vendor",
        "channel": "Channel",
        "message_id": "Message ID",
        "phone": "Phone",
        "country": "Country",
        "carrier": "Carrier",
        "province": "Province",
        "city": "City",
        "template_id": "Template ID",
        "category": "Category",
        "content": "Content",
        "segments": "Segments",
        "submit_time": "Submit time",
        "done_time": "Receipt time",
        "status": "Status",
        "status_code": "Status code",
        "error_code": "Error code",
        "failure_reason": "Failure reason",
        "attempt": "Attempt",
        "is_probe": "Probe",
        "fee": "Fee",
        "currency": "Currency",
        "time_source": "Send time from",
        "delivered": "Delivered",
        "failed": "Failed",
        "expired": "Expired",
        "rejected": "Rejected",
        "unknown": "Unknown",
        "pending": "Pending",
        "empty_number": "Empty number",
        "unreachable": "Powered off / unreachable",
        "blacklisted": "Blacklisted",
        "content_blocked": "Content or signature blocked",
        "flow_controlled": "Flow-controlled",
        "platform_rejected": "Rejected by platform",
        "verification": "Verification",
        "notification": "Notification",
        "marketing": "Marketing",
    },
}


#: Labels of the measure and ledger columns and their vocabularies: ``key: (zh, en)``.
_MEASURE_LABELS = {
    "week": ("周次", "Week"), "month": ("月份", "Month"), "day": ("日期", "Day"), "hour": ("发送小时", "Send hour"),
    "weekday": ("星期", "Weekday"), "period": ("时段", "Period"), "window": ("时间窗口", "Window"),
    "round": ("轮次", "Round"), "submitted": ("提交量", "Submitted"),
    "arrival_rate": ("到达率", "Arrival rate"), "arrival_low": ("到达率下限(95%)", "Arrival low (95%)"),
    "arrival_high": ("到达率上限(95%)", "Arrival high (95%)"), "receipt_coverage": ("回执覆盖率", "Receipt coverage"),
    "originals": ("原始消息数", "Originals"), "first_attempt_rate": ("首发到达率", "First-attempt arrival"),
    "after_resend_rate": ("补发后到达率", "After-resend arrival"), "resend_gap": ("补发虚增", "Resend inflation"),
    "first_attempt_low": ("首发到达率下限(95%)", "First-attempt low (95%)"),
    "first_attempt_high": ("首发到达率上限(95%)", "First-attempt high (95%)"),
    "after_resend_low": ("补发后到达率下限(95%)", "After-resend low (95%)"),
    "after_resend_high": ("补发后到达率上限(95%)", "After-resend high (95%)"),
    "within_10min_rate": ("10分钟内送达率", "Within 10 min"), "latency_p50_s": ("送达时延中位数(秒)", "Latency p50 (s)"),
    "latency_p95_s": ("送达时延P95(秒)", "Latency p95 (s)"), "complaints": ("投诉数", "Complaints"),
    "complaint_rate": ("投诉率", "Complaint rate"), "unsubscribes": ("退订数", "Unsubscribes"),
    "unsubscribe_rate": ("退订率", "Unsubscribe rate"), "arrival_change_pp": ("环比(百分点)", "Change vs last week (pp)"),
    "target": ("目标到达率", "Target"), "meets_target": ("达标", "Meets target"), "control_low": ("控制下限", "Control low"),
    "control_high": ("控制上限", "Control high"), "in_control": ("受控", "In control"),
    "share": ("组内占比", "Share of group"), "failure_rate": ("失败率", "Failure rate"),
    "top_codes": ("主要错误码", "Top codes"), "share_of_week": ("占本周失败", "Share of week"),
    "failures": ("失败次数", "Failures"), "messages": ("消息数", "Messages"), "reasons": ("失败原因列表", "Reasons"),
    "first_failure": ("首次失败", "First failure"), "last_failure": ("最近失败", "Last failure"),
    "sent": ("发送量", "Sent"), "blocked": ("拦截量", "Blocked"), "blocked_rate": ("拦截率", "Blocked rate"),
    "clicks": ("点击数", "Clicks"), "clicked": ("有点击的成功消息", "Delivered with a click"),
    "linked": ("含链接的成功消息", "Delivered with a link"), "click_through_rate": ("点击率", "Click-through rate"),
    "click_through_low": ("点击率下限(95%)", "CTR low (95%)"), "click_through_high": ("点击率上限(95%)", "CTR high (95%)"),
    "conversions": ("转化数", "Conversions"), "conversion_rate": ("转化率", "Conversion rate"),
    "conversion_low": ("转化率下限(95%)", "Conversion low (95%)"), "conversion_high": ("转化率上限(95%)", "Conversion high (95%)"),
    "best_send_hour": ("最佳发送小时", "Best send hour"), "best_hour_rate": ("最佳小时点击率", "Best hour CTR"),
    "segments_submitted": ("提交计费条数", "Segments submitted"), "segments_delivered": ("成功计费条数", "Segments delivered"),
    "gap_segments": ("条数差", "Segment gap"), "unit_price": ("单价", "Unit price"),
    "amount_submission": ("按提交计费金额", "Amount on submission"), "amount_delivery": ("按成功计费金额", "Amount on delivery"),
    "gap_amount": ("提交与成功金额差", "Submitted minus delivered amount"), "billed_count": ("账单条数", "Billed count"),
    "billed_amount": ("账单金额", "Billed amount"), "bill_vs_submission": ("账单减提交", "Bill minus submitted"),
    "bill_vs_delivery": ("账单减成功", "Bill minus delivered"), "billing_mode": ("账单计费方式", "Bill matches"),
    "contract_mode": ("合同计费方式", "Contract mode"), "overcharge": ("多收金额", "Overcharge"),
    "billed_segments": ("计费条数合计", "Billed segments"),
    "export_amount": ("导出记录金额", "Amount in the export"), "cost": ("总费用", "Cost"),
    "cost_per_submitted": ("每条提交成本", "Cost per submitted"), "cost_per_delivered": ("每条到达成本", "Cost per delivered"),
    "cost_per_click": ("每次点击成本", "Cost per click"),
    "traffic": ("流量类型", "Traffic"), "baseline": ("基线到达率", "Baseline"), "diff_pp": ("差值(百分点)", "Difference (pp)"),
    "p_value": ("p值", "p-value"), "q_value": ("q值(错误发现率)", "q-value (FDR)"),
    "window_days": ("合并天数", "Days pooled"), "detector": ("检测方法", "Detector"),
    "affected": ("受影响消息", "Messages affected"), "began": ("开始时间", "Began"), "advice": ("建议", "Advice"),
    "file": ("文件", "File"), "layout": ("格式", "Layout"), "encoding": ("编码", "Encoding"),
    "control_chars": ("清除控制字符的字段", "Fields with control characters removed"),
    "rows_read": ("读取行数", "Rows read"), "loaded": ("已载入", "Loaded"), "duplicates": ("重复", "Duplicates"),
    "start": ("开始日期", "Start"), "end": ("结束日期", "End"), "inputs": ("输入", "Inputs"),
    "generated": ("生成时间", "Generated"), "version": ("版本", "Version"), "time_zone": ("时区", "Time zone"),
    "masked": ("号码脱敏", "Phones masked"), "alert_rules": ("预警规则", "Alert rules"), "lang": ("语言", "Language"),
    "hour_a": ("时段A", "Hours A"), "linked_a": ("时段A含链接成功量", "Delivered with a link (A)"),
    "click_through_a": ("时段A点击率", "Click-through (A)"), "hour_b": ("时段B", "Hours B"),
    "linked_b": ("时段B含链接成功量", "Delivered with a link (B)"), "click_through_b": ("时段B点击率", "Click-through (B)"),
    "lift": ("提升", "Lift"), "lift_low": ("提升下限(95%)", "Lift low (95%)"),
    "lift_high": ("提升上限(95%)", "Lift high (95%)"), "z": ("z值", "z"), "cohens_h": ("效应量h", "Cohen's h"),
    "latency_p50_change_s": ("时延中位数变化(秒)", "Latency p50 change (s)"),
    "rounds": ("轮数", "Rounds"), "min_arrival": ("最低到达率", "Lowest arrival"),
    "max_arrival": ("最高到达率", "Highest arrival"), "spread_pp": ("极差(百分点)", "Spread (pp)"),
    "first_p50_s": ("首轮时延中位数(秒)", "First round p50 (s)"), "last_p50_s": ("末轮时延中位数(秒)", "Last round p50 (s)"),
    "latency_change_s": ("时延变化(秒)", "Latency change (s)"),
    "stage": ("阶段", "Stage"), "criterion": ("指标", "Criterion"), "value": ("数值", "Value"),
    "threshold": ("阈值", "Threshold"), "low": ("下限(95%)", "Low (95%)"),
    "high": ("上限(95%)", "High (95%)"), "needed": ("所需消息数", "Messages needed"),
    "note": ("说明", "Note"), "expected": ("预期到达率", "Expected arrival"), "confidence": ("置信水平", "Confidence"),
    "messages_needed": ("所需消息数(按预期)", "Messages needed (at expected)"),
    "all_arrive_needed": ("所需消息数(全部到达)", "Messages needed (all arrive)"),
    # values
    "basic": ("基础测试", "Basic"), "stress": ("压力测试", "Stress"), "scenario": ("场景测试", "Scenario"),
    "resend": ("补发诚信", "Resend honesty"), "numbers": ("号码数", "Numbers"), "carriers": ("运营商覆盖", "Carriers"),
    "within_10min": ("成功短信10分钟内到达", "Delivered within 10 min"),
    "arrival": ("首发到达", "Arrival, first attempt"),
    "round_spread": ("轮间差异", "Round spread"), "latency": ("时延变化倍数", "Latency factor"),
    "scenario_parity": ("各场景到达一致", "Scenarios alike"), "pass": ("通过", "Pass"), "fail": ("未通过", "Fail"),
    "insufficient": ("证据不足", "Not enough evidence"), "count": ("计数", "Count"), "rate": ("比例", "Rate"),
    "points": ("百分点", "Points"), "factor": ("倍数", "Factor"),
    "Virtual": ("虚拟运营商", "Virtual"),
    "CNY": ("人民币", "CNY"), "USD": ("美元", "USD"), "EUR": ("欧元", "EUR"), "HKD": ("港元", "HKD"),
    "GBP": ("英镑", "GBP"), "JPY": ("日元", "JPY"),
    "utf-8": ("UTF-8", "UTF-8"), "utf-8-sig": ("UTF-8（带BOM）", "UTF-8 with BOM"), "gb18030": ("GB18030", "GB18030"),
    "gbk": ("GBK", "GBK"), "utf-16": ("UTF-16", "UTF-16"), "big5": ("Big5", "Big5"),
    "aliyun": ("阿里云", "Aliyun"), "tencent": ("腾讯云", "Tencent Cloud"), "twilio": ("Twilio", "Twilio"),
    "vonage": ("Vonage", "Vonage"), "aws_sns": ("AWS SNS", "AWS SNS"), "gateway": ("短信网关", "SMS gateway"),
    "huawei": ("华为云", "Huawei Cloud"),
    "All": ("合计", "All"), "submission": ("按提交", "On submission"), "delivery": ("按成功", "On delivery"),
    "either": ("两者相同", "Either"), "neither": ("都不符", "Neither"), "canary": ("探针短信", "Canary"),
    "regular": ("常规", "Regular"), "switch_channel": ("切换通道并联系平台", "Switch channel, contact the vendor"),
    "contact_vendor": ("联系平台核查", "Contact the vendor"),
    "carrier_wide": ("运营商侧故障：各平台同降，联系平台并暂缓大批量发送", "Carrier-wide: every vendor dropped; contact them, hold campaigns"), "weekday_peak": ("工作日高峰", "Weekday peak"),
    "holiday": ("节假日", "Holiday"), "adjusted_workday": ("调休工作日", "Adjusted workday"),
    "off_peak": ("非高峰", "Off-peak"), "p-chart": ("控制图", "p-chart"), "both": ("日检验+漂移检验", "Day and drift tests"),
    "drift": ("漂移检验", "Drift test"), "drift_pp": ("近7天差值(百分点)", "Last 7 days vs reference (pp)"),
    "no_alternative": ("联系平台核查；无可证实的替代通道", "Contact the vendor; no proven alternative"),
    "compare": ("平台对比", "Head to head"), "head_to_head": ("优于或不逊于其他平台", "Against the other vendors"),
    "rank": ("名次", "Rank"),
    # layouts (the summary sheet's input files)
    "aliyun_details": ("阿里云发送详情", "Aliyun send details"), "aliyun_report": ("阿里云回执推送", "Aliyun receipts"),
    "aliyun_intl_report": ("阿里云国际回执", "Aliyun international receipts"),
    "tencent_record": ("腾讯云发送记录", "Tencent send records"), "tencent_pull": ("腾讯云拉取回执", "Tencent pulled receipts"),
    "tencent_callback": ("腾讯云回执回调", "Tencent receipt callbacks"),
    "tencent_send": ("腾讯云发送应答", "Tencent send responses"),
    "tencent_console": ("腾讯云控制台导出", "Tencent console export"),
    "vonage_receipt": ("Vonage回执", "Vonage receipts"), "vonage_send": ("Vonage发送应答", "Vonage send responses"),
    "aws_sns_cloudwatch": ("AWS SNS CloudWatch日志", "AWS SNS CloudWatch logs"),
    "gateway_log": ("网关日志", "Gateway log"), "canonical": ("标准格式", "Canonical layout"),
    "mapping": ("字段映射", "Column mapping"), "skipped": ("已跳过", "Skipped"), "empty": ("无记录", "No records"),
    "store": ("数据仓库", "The store"), "clicks_file": ("点击记录", "Click events"),
    "replies_file": ("上行回复", "Replies"), "complaints_file": ("投诉记录", "Complaint records"), "bill_file": ("账单", "Bill"),
    "currency": ("币种", "Currency"),
    "resends": ("补发次数", "Resends"), "user_retries": ("用户重新获取", "Users' new requests"),
    "user_retry_share": ("失败后用户重新获取占比", "New requests after a failure"),
    "attempt_within_10min_rate": ("单次发送10分钟到达率", "Within 10 min, per attempt"),
    "attempt_latency_p50_s": ("单次时延中位数(秒)", "Latency p50 per attempt (s)"),
    "attempt_latency_p95_s": ("单次时延P95(秒)", "Latency p95 per attempt (s)"),
    "receipt_time_coverage": ("回执时间覆盖率", "Receipt-time coverage"),
    "vendor_definition": ("平台口径", "Vendor's definition"), "vendor_success_rate": ("平台口径成功率", "Vendor's success rate"),
    "submission_success": ("按提交成功计", "Accepted at submission"),
    "responded_success": ("按有回执的成功计", "Delivered among receipts"),
    "sent_as_final": ("已发出即算成功", "Sent counted as final"),
}
#: English province name -> Chinese short name (the display label).
PROVINCES = {
    "Beijing": "北京", "Tianjin": "天津", "Hebei": "河北", "Shanxi": "山西",
    "Inner Mongolia": "内蒙古", "Liaoning": "辽宁", "Jilin": "吉林", "Heilongjiang": "黑龙江",
    "Shanghai": "上海", "Jiangsu": "江苏", "Zhejiang": "浙江", "Anhui": "安徽",
    "Fujian": "福建", "Jiangxi": "江西", "Shandong": "山东", "Henan": "河南",
    "Hubei": "湖北", "Hunan": "湖南", "Guangdong": "广东", "Guangxi": "广西",
    "Hainan": "海南", "Chongqing": "重庆", "Sichuan": "四川", "Guizhou": "贵州",
    "Yunnan": "云南", "Tibet": "西藏", "Shaanxi": "陕西", "Gansu": "甘肃",
    "Qinghai": "青海", "Ningxia": "宁夏", "Xinjiang": "新疆",
    "Hong Kong": "香港", "Macau": "澳门", "Taiwan": "台湾",
}

CARRIERS = {
    "China Mobile": "中国移动",
    "China Unicom": "中国联通",
    "China Telecom": "中国电信",
    "China Broadnet": "中国广电",
    "Virtual (China Mobile)": "虚拟运营商(移动)",
    "Virtual (China Unicom)": "虚拟运营商(联通)",
    "Virtual (China Telecom)": "虚拟运营商(电信)",
    "Satellite": "卫星电话",
}

for _key, _zh in {**PROVINCES, **CARRIERS}.items():
    _MEASURE_LABELS.setdefault(_key, (_zh, _key))
for _key, (_zh, _en) in _MEASURE_LABELS.items():
    if _key in LABELS["zh"] and (LABELS["zh"][_key], LABELS["en"][_key]) != (_zh, _en):
        raise AssertionError(f"label {_key!r} defined twice")  # one key, one meaning
    LABELS["zh"].setdefault(_key, _zh)
    LABELS["en"].setdefault(_key, _en)

#: Values whose label depends on their column (the same word means different things):
#: ``column: {value: (zh, en)}``.
COLUMN_VALUES = {
    "time_source": {"submission": ("提交记录", "Submission record"),
                    "receipt_submit": ("回执所载提交时间", "Submit date in the receipt"),
                    "receipt": ("回执时间(无提交记录)", "Receipt time (no submission)")},
}


#: Column headers that differ from the same key's value label: a count column named like
#: a status (``delivered``: 成功数, the status 成功) and headers that read better spelled out.
HEADERS: dict[str, dict[str, str]] = {"zh": {}, "en": {}}
for _key, (_zh, _en) in {
    "delivered": ("成功数", "Delivered"), "failed": ("失败数", "Failed"), "pending": ("等待回执数", "Pending"),
    "bill_vs_submission": ("账单与按提交之差(条)", "Bill − on submission (segments)"),
    "bill_vs_delivery": ("账单与按成功之差(条)", "Bill − on delivery (segments)"),
    "rule": ("规则", "Rule"), "first": ("首次", "First"), "last": ("最近", "Last"),
    "switch_to": ("可切换平台", "Switch to"), "switch_to_arrival": ("该平台到达率", "Its arrival"),
    "issues": ("问题", "Issues"), "chars": ("字数", "Characters"), "signature": ("有签名", "Signature"),
    "links": ("链接数", "Links"), "promissory": ("承诺性用语", "Promissory words"),
    "absolute": ("绝对化用语", "Absolute terms"), "unsubscribe": ("有退订提示", "Unsubscribe line"),
    "rejected_rate": ("拒绝率", "Rejected rate"), "verdict": ("结论", "Verdict"), "unit": ("单位", "Unit"),
}.items():
    HEADERS["zh"][_key], HEADERS["en"][_key] = _zh, _en


def label(key: str, lang: str = "zh") -> str:
    """Display label of a column or vocabulary value; the key itself when unlabelled."""
    return LABELS[lang].get(key, key)


def header(column: str, lang: str = "zh") -> str:
    """Display header of a column (:data:`HEADERS`, else :func:`label`)."""
    return HEADERS[lang].get(column, LABELS[lang].get(column, column))


def empty_log(tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """An empty canonical send log with every column and dtype."""
    return conform(pd.DataFrame({c: pd.Series([], dtype=object) for c in COLUMNS}), tz=tz)


#: A stable code for every kind of rejected row, beside its reason in words (which names
#: the value): the first pattern a reason matches gives its code, ``other`` if none.
REJECT_CODES = {
    "title_line": r"^title line",
    "total_row": r"^total row",
    "malformed_row": r"^malformed row",
    "malformed_json": r"^malformed JSON",
    "undecodable": r"^cannot decode",
    "inbound": r"inbound message",
    "not_a_record": r"not a send or delivery-receipt line|HTTP API line",
    "submission_alone": r"has no send time: load it with",
    "phone_precision_lost": r"precision lost",
    "invalid_phone": r"invalid phone number",
    "unreadable_time": r"unreadable time",
    "no_time": r"missing time|no send time or receipt time",
    "no_message_id": r"no message id",
    "unreadable_number": r"unreadable number",
}


def reason_codes(reasons: pd.Series) -> pd.Series:
    """The :data:`REJECT_CODES` code of each reject reason (``other`` for a reason no
    pattern matches), so rejects can be counted by kind."""
    text = reasons.astype("string")
    hits = [text.str.contains(pattern, regex=True).fillna(False).to_numpy(dtype=bool)
            for pattern in REJECT_CODES.values()]
    return pd.Series(np.select(hits, list(REJECT_CODES), "other") if hits else "other", index=reasons.index,
                     dtype=object)


def sort_log(log: pd.DataFrame) -> pd.DataFrame:
    """``log`` in the canonical row order: by ``submit_time`` (missing last), then
    ``vendor`` and ``message_id``, ties kept in their order; on a fresh index.

    The same order as ``sort_values(["submit_time", "vendor", "message_id"],
    kind="stable")``: the times are sorted as integers, and only the rows that share a
    time are compared by their text.
    """
    times = log["submit_time"]
    key = np.where(times.isna().to_numpy(), np.iinfo(np.int64).max,
                   times.to_numpy(dtype="datetime64[ms]").view(np.int64))
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    same = sorted_key[1:] == sorted_key[:-1]
    tied = np.concatenate([[False], same]) | np.concatenate([same, [False]])
    if tied.any():  # rows sharing a time: by vendor and id, in their order otherwise
        at = order[tied]
        among = log.iloc[at][["submit_time", "vendor", "message_id"]].reset_index(drop=True)
        order[tied] = at[among.sort_values(["submit_time", "vendor", "message_id"], kind="stable").index.to_numpy()]
    return log.take(order).reset_index(drop=True)


def conform(frame: pd.DataFrame, *, tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Cast a frame that already holds canonical values to the canonical dtypes.

    Columns missing from ``frame`` are added empty; extra columns are dropped; the
    column order is that of :data:`COLUMNS`. Values must already be canonical
    (statuses from :data:`STATUSES`, timestamps tz-aware …): this is the last step of
    loading, not a parser.
    """
    out = {}
    n = len(frame)
    for col, dtype in COLUMNS.items():
        values = frame[col] if col in frame else pd.Series(pd.NA, index=frame.index, dtype=object)
        if dtype is None:
            values = pd.to_datetime(values) if values.dtype == object else values
            if values.dt.tz is None:
                values = values.dt.tz_localize(tz)
            out[col] = values.dt.tz_convert(tz).astype(time_dtype(tz))
        elif col == "is_probe":
            out[col] = values.fillna(False).astype(bool) if n else values.astype(bool)
        elif col == "time_source":  # a log made elsewhere has its send times from submissions
            out[col] = per_distinct(lambda v, dtype=dtype: v.astype(object).where(v.notna(), "submission").astype(dtype),
                                    values)
        elif isinstance(dtype, pd.CategoricalDtype):
            out[col] = per_distinct(lambda v, dtype=dtype: v.astype(object).astype(dtype), values)
        elif dtype == "category":
            out[col] = per_distinct(lambda v: v.astype(STRING).astype("category"), values)
        elif dtype in ("Int16", "float64"):
            out[col] = per_distinct(lambda v, dtype=dtype: pd.to_numeric(v.astype(object), errors="coerce").astype(dtype),
                                    values)
        else:
            out[col] = values.astype(dtype)
    return pd.DataFrame(out, index=pd.RangeIndex(n))


#: What no row of a canonical log may hold, beyond its dtypes: ``{problem: rows that
#: have it}``, a word outside a fixed vocabulary (the categorical dtypes' categories)
#: among them. A receipt stamped before its
#: submission is allowed: minute-resolution SMPP dates make it happen, and its latency
#: counts as unknown.
VALUE_RULES = {
    "no vendor": lambda log: log["vendor"].isna(),
    "no status": lambda log: log["status"].isna(),
    "no time source": lambda log: log["time_source"].isna(),
    "neither a submit nor a receipt time": lambda log: log["submit_time"].isna() & log["done_time"].isna(),
    "attempt missing or below 1": lambda log: log["attempt"].isna() | (log["attempt"] < 1).fillna(False),
    "segments below 1": lambda log: (log["segments"] < 1).fillna(False),
    "a negative fee": lambda log: log["fee"] < 0,
    "a failure reason on a delivered message":
        lambda log: log["status"].eq("delivered").to_numpy(dtype=bool) & log["failure_reason"].notna().to_numpy(),
}


def _outside(column: str):
    """Rows of ``column`` (a fixed vocabulary) holding a word not of it: a categorical of
    other categories passes the dtype check, and would count, say, a ``success`` as not
    delivered."""
    vocabulary = pd.Index(COLUMNS[column].categories)

    def rows_of(log: pd.DataFrame) -> np.ndarray:
        values = log[column]
        if isinstance(values.dtype, pd.CategoricalDtype) and values.cat.categories.isin(vocabulary).all():
            return np.zeros(len(values), dtype=bool)  # every category a word of it: no row to look at
        return (values.notna() & ~values.isin(vocabulary)).to_numpy(dtype=bool)

    return rows_of


VALUE_RULES.update({f"a {c.replace('_', ' ')} outside {', '.join(d.categories)}": _outside(c)
                    for c, d in COLUMNS.items() if isinstance(d, pd.CategoricalDtype)})


def validate(log: pd.DataFrame) -> None:
    """Raise ``ValueError`` unless ``log`` has exactly the canonical columns and dtypes and
    no row has a problem of :data:`VALUE_RULES`; the error lists every problem found, with
    how many rows have it and the first of them. Checked with pandera's lazy validation
    (:func:`log_schema`), which collects every failure before it raises; a log that
    plainly passes (:func:`_plainly_valid`) does not need it."""
    if _plainly_valid(log):
        return
    import pandera.errors

    try:
        log_schema().validate(log, lazy=True)
    except pandera.errors.SchemaErrors as err:
        raise ValueError("not a valid send log: " + "; ".join(_problems(err.failure_cases))) from None


def _plainly_valid(log: pd.DataFrame) -> bool:
    """What :func:`log_schema` accepts, checked at once (2.5 ms for 150,000 rows, where
    pandera takes 33 ms and its import a quarter of a second per process): exactly the
    canonical columns in order, each of its dtype as the schema takes it (any
    categorical for a categorical column, any tz-aware timestamp for the times) and no
    row breaking a rule. A log it refuses goes to pandera, which names its problems."""
    if list(log.columns) != list(COLUMNS):
        return False
    for col, dtype in COLUMNS.items():
        got = log[col].dtype
        if dtype is None:
            ok = isinstance(got, pd.DatetimeTZDtype)
        elif isinstance(dtype, pd.CategoricalDtype) or dtype == "category":
            ok = isinstance(got, pd.CategoricalDtype)
        else:
            ok = got == dtype
        if not ok:
            return False
    return not any(np.asarray(rows_of(log), dtype=bool).any() for rows_of in VALUE_RULES.values())


@functools.cache
def log_schema():
    """The canonical send log as a ``pandera`` schema: :data:`COLUMNS` in order, their
    dtypes (the times any tz-aware timestamp), and :data:`VALUE_RULES` as checks on the
    rows."""
    import pandera.pandas as pa

    def tz_aware(s: pd.Series) -> bool:
        return isinstance(s.dtype, pd.DatetimeTZDtype)

    columns = {c: pa.Column(None, checks=pa.Check(tz_aware, name="not a tz-aware timestamp"), nullable=True)
               if d is None else pa.Column(pd.CategoricalDtype() if d == "category" else d, nullable=True)
               for c, d in COLUMNS.items()}
    rules = [pa.Check(lambda log, rows_of=rows_of: pd.Series(~np.asarray(rows_of(log), dtype=bool), index=log.index),
                      name=rule) for rule, rows_of in VALUE_RULES.items()]
    return pa.DataFrameSchema(columns, checks=rules, strict=True, ordered=True, coerce=False)


def _problems(cases: pd.DataFrame) -> list[str]:
    """pandera's failure cases as one phrase per problem: a column missing, extra, out of
    place or of the wrong dtype, or a value rule with how many rows break it and the
    first (a rule that could not run for a missing column is not repeated)."""
    out = []
    for check, part in cases.groupby("check", dropna=False, sort=False):
        rows = pd.to_numeric(part["index"], errors="coerce").dropna().astype(int).unique()
        if check in VALUE_RULES:
            if len(rows):
                out.append(f"{check}: {len(rows):,} rows (first: row {rows.min()})")
            continue
        for column, case in part.drop_duplicates(["column", "check"])[["column", "failure_case"]].itertuples(index=False):
            if str(check).startswith("dtype("):
                out.append(f"column {column!r} has dtype {case}, expected {check[6:-1]}")
            elif check == "column_in_dataframe":
                out.append(f"column {case!r} is missing")
            elif check == "column_in_schema":
                out.append(f"column {case!r} is not a canonical column")
            elif check == "column_ordered":
                out.append(f"column {case!r} is out of the canonical order")
            else:
                out.append(f"column {column!r}: {check}")
    return out
