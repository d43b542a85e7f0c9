"""Template wording and send-window checks, judged beside what the logs show.

The word lists (promissory words, the Advertising Law's absolute terms, unsubscribe
instructions) are data: ``analysis/data/wording.toml``, extended by a user's file of the
same shape.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from datetime import time
from pathlib import Path

import numpy as np
import pandas as pd

from .kernel import LINK
from .normalize import count_segments

WORDING = Path(__file__).parent / "data" / "wording.toml"
SIGNATURE = re.compile(r"^\s*【[^】]{2,16}】|【[^】]{2,16}】\s*$")

#: Windows each industry avoids for sends (README, *Channel trial, alerts, wording and send windows*).
INDUSTRY_WINDOWS: dict[str, list[tuple[str, str]]] = {
    "finance": [("09:30", "11:30")],
    "ecommerce": [("12:00", "13:30")],
}
#: Hours marketing may be sent by default (platforms differ: Tencent 8-22, Huawei IoT 8-21,
#: Qiniu 8-20, by their documentation). Verification and notification are not restricted.
MARKETING_HOURS = ("08:00", "21:00")


def load_words(extra: str | Path | Mapping | None = None) -> dict[str, dict[str, list[str]]]:
    """The word lists: the package's file merged with ``extra`` (a TOML path or a dict of
    the same shape; its words are added, not substituted)."""
    with WORDING.open("rb") as fh:
        words = tomllib.load(fh)
    if extra is not None:
        if not isinstance(extra, Mapping):
            with Path(extra).open("rb") as fh:
                extra = tomllib.load(fh)
        for section, lists in extra.items():
            for key, values in lists.items():
                merged = words.setdefault(section, {}).setdefault(key, [])
                merged.extend(v for v in values if v not in merged)
    return words


#: What the checks say: ``key: (zh, en)`` format strings.
TEXTS = {
    "promissory": ("承诺性用语：{words}", "promissory words: {words}"),
    "absolute": ("绝对化用语：{words}", "absolute terms: {words}"),
    "no_signature": ("开头或结尾没有【签名】", "no signature in brackets at the start or end"),
    "no_unsubscribe": ("营销短信没有退订提示（如“回T退订”“拒收请回复R”）",
                       "marketing without an unsubscribe instruction (such as: reply T to opt out)"),
    "segments": ("按 {n} 条计费", "billed as {n} segments"),
    "avoid": ("避开 {start}–{end}", "avoid {start}–{end}"),
    "marketing_hours": ("营销短信在 {start}–{end} 以外发送", "marketing outside {start}–{end}"),
}


def _say(key: str, lang: str, **values) -> str:
    return TEXTS[key][0 if lang == "zh" else 1].format(**values)


def check_templates(
    log_or_templates: pd.DataFrame, *, words: str | Path | Mapping | None = None, lang: str = "zh"
) -> pd.DataFrame:
    """Check each template's wording, with its observed blocked and rejected rate.

    Parameters
    ----------
    log_or_templates : the canonical send log (each template's most sent text is
        checked, and its outcomes counted), or a frame of ``template_id``, ``content`` and
        optionally ``category``.
    words : extra word lists (see :func:`load_words`).
    lang : language of the ``issues`` (``zh`` or ``en``).

    Returns
    -------
    DataFrame, one row per template sorted by ``issues`` count descending then
    ``template_id``: ``template_id``, ``category``, ``content``, ``chars``, ``segments``,
    ``signature`` (bool), ``links`` (count), ``promissory`` and ``absolute`` (the words
    found, ``;``-joined), ``unsubscribe`` (bool: an opt-out instruction is present),
    ``issues`` (what to fix, ``;``-joined), ``sent``, ``blocked_rate`` (content or
    signature blocked / sent) and ``rejected_rate`` (rejected or blocked / sent); the last
    three are missing when only templates were given.
    """
    lists = load_words(words)
    t = _templates(log_or_templates)
    text = t["content"].fillna("").astype(str)
    promissory = _found(text, lists["promissory"]["words"])
    absolute = _found(text, lists["absolute"]["words"], allow=lists["absolute"].get("allow", []))
    unsub = text.apply(lambda s: any(p in s for p in lists["unsubscribe"]["patterns"]))
    out = t.assign(
        chars=text.str.len(),
        segments=count_segments(text.astype(object)).astype("Int64"),
        signature=text.str.contains(SIGNATURE),
        links=text.str.count(LINK),
        promissory=promissory,
        absolute=absolute,
        unsubscribe=unsub,
    )
    marketing = out["category"].astype(object).eq("marketing")
    sep = "；" if lang == "zh" else "; "
    issues = [
        (out["promissory"].ne(""), out["promissory"].map(lambda w: _say("promissory", lang, words=w))),
        (out["absolute"].ne(""), out["absolute"].map(lambda w: _say("absolute", lang, words=w))),
        (~out["signature"], pd.Series(_say("no_signature", lang), index=out.index)),
        (marketing & ~out["unsubscribe"], pd.Series(_say("no_unsubscribe", lang), index=out.index)),
        (out["segments"].fillna(1).gt(1), out["segments"].map(lambda n: _say("segments", lang, n=n))),
    ]
    found = [[str(msg.iloc[i]) for flag, msg in issues if bool(flag.iloc[i])] for i in range(len(out))]
    out["issues"] = pd.Series([sep.join(f) for f in found], index=out.index, dtype=object)
    n_issues = pd.Series([len(f) for f in found], index=out.index)
    out = out.assign(_n=n_issues).sort_values(["_n", "template_id"], ascending=[False, True], kind="stable")
    cols = ["template_id", "category", "content", "chars", "segments", "signature", "links", "promissory",
            "absolute", "unsubscribe", "issues", "sent", "blocked_rate", "rejected_rate"]
    return out.reindex(columns=cols).reset_index(drop=True)


def _templates(frame: pd.DataFrame) -> pd.DataFrame:
    if "status" not in frame:  # a list of templates
        t = frame.copy()
        if "category" not in t:
            from .normalize import infer_categories

            t["category"] = infer_categories(t["content"].astype(object))
        return t.assign(template_id=t["template_id"].astype(object) if "template_id" in t else t.index.astype(str))
    key = frame["template_id"].astype(object).fillna(frame["content"].astype(object))
    status = frame["status"].astype(object)
    reason = frame["failure_reason"].astype(object)
    d = pd.DataFrame({
        "template_id": key, "category": frame["category"].astype(object), "content": frame["content"].astype(object),
        "blocked": reason.eq("content_blocked").to_numpy(dtype=bool),
        "rejected": (status.eq("rejected") | reason.eq("content_blocked")).to_numpy(dtype=bool),
    }).dropna(subset=["template_id"])
    g = d.groupby("template_id", sort=True)
    out = pd.DataFrame({
        "category": g["category"].agg(lambda s: s.mode().iloc[0] if s.notna().any() else None),
        "content": g["content"].agg(lambda s: s.value_counts().index[0] if s.notna().any() else None),
        "sent": g.size(),
        "blocked_rate": g["blocked"].mean(),
        "rejected_rate": g["rejected"].mean(),
    })
    return out.reset_index()


def _found(text: pd.Series, words: Sequence[str], *, allow: Sequence[str] = ()) -> pd.Series:
    """The words of ``words`` in each text (``;``-joined), ignoring those only inside an
    allowed word."""
    words = sorted(set(words), key=len, reverse=True)
    allowed = re.compile("|".join(map(re.escape, allow))) if allow else None

    def hits(s: str) -> str:
        if allowed is not None:
            s = allowed.sub("\u0000", s)
        found = []
        for w in words:  # longest first; a word found is blanked so its parts are not counted again
            if w in s:
                found.append(w)
                s = s.replace(w, "\u0000")
        return ";".join(found)

    return text.map(hits)


def check_send_windows(
    log: pd.DataFrame,
    *,
    industry: str | None = None,
    avoid: Sequence[tuple[str, str]] | None = None,
    marketing_hours: tuple[str, str] = MARKETING_HOURS,
    lang: str = "zh",
) -> pd.DataFrame:
    """Sends that break the send windows: an industry's windows to avoid and marketing
    outside the allowed hours. Verification codes are never flagged: the user triggers
    them, so their send time is not the company's choice.

    Parameters
    ----------
    log : canonical send log.
    industry : a key of :data:`INDUSTRY_WINDOWS` (``finance``, ``ecommerce``) whose windows
        to avoid; ``avoid`` gives them directly (``[("09:30", "11:30")]``).
    marketing_hours : allowed ``(start, end)`` for marketing, local time, end excluded.
    lang : language of the ``rule``.

    Returns
    -------
    DataFrame, one row per rule × vendor × template that broke it, sorted by ``messages``
    descending: ``rule`` (``avoid 09:30–11:30`` or ``marketing outside 08:00–21:00``),
    ``vendor``, ``template_id``, ``category``, ``messages``, ``share`` (of the template's
    sends), ``first``, ``last``.
    """
    if industry and industry not in INDUSTRY_WINDOWS:
        raise ValueError(f"unknown industry {industry!r}: one of {', '.join(INDUSTRY_WINDOWS)} or pass avoid=")
    windows = list(avoid or []) + (INDUSTRY_WINDOWS[industry] if industry else [])
    t = log["submit_time"]
    minutes = (t.dt.hour * 60 + t.dt.minute).to_numpy(dtype=float, na_value=np.nan)
    category = log["category"].astype(object)
    chosen = category.ne("verification").to_numpy(dtype=bool)  # the company picks these send times
    rules: list[tuple[str, np.ndarray]] = []
    for start, end in windows:
        a, b = _minutes(start), _minutes(end)
        rules.append((_say("avoid", lang, start=start, end=end), chosen & (minutes >= a) & (minutes < b)))
    a, b = _minutes(marketing_hours[0]), _minutes(marketing_hours[1])
    marketing = category.eq("marketing").to_numpy(dtype=bool)
    rules.append((_say("marketing_hours", lang, start=marketing_hours[0], end=marketing_hours[1]),
                  marketing & ~((minutes >= a) & (minutes < b))))
    key = log["template_id"].astype(object).fillna("—")
    totals = key.value_counts()
    parts = []
    for name, hit in rules:
        if not hit.any():
            continue
        d = log[hit]
        g = d.groupby([d["vendor"].astype(str), key[hit]], sort=True)
        part = pd.DataFrame({"messages": g.size(), "first": g["submit_time"].min(), "last": g["submit_time"].max(),
                             "category": g["category"].agg(lambda s: s.astype(object).mode().iloc[0]
                                                           if s.notna().any() else None)})
        part.index.names = ["vendor", "template_id"]
        parts.append(part.reset_index().assign(rule=name))
    cols = ["rule", "vendor", "template_id", "category", "messages", "share", "first", "last"]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    out = pd.concat(parts, ignore_index=True)
    out["share"] = out["messages"] / out["template_id"].map(totals)
    return out.sort_values(["messages", "rule"], ascending=[False, True], kind="stable")[cols].reset_index(drop=True)


def _minutes(hhmm: str) -> int:
    t = time.fromisoformat(hhmm if len(hhmm) > 2 else f"{int(hhmm):02d}:00")
    return t.hour * 60 + t.minute
