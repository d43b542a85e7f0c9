"""Vectorised normalisation: phones, timestamps, segments, categories, resend attempts.

Each parser returns the parsed values *and* a reason for every value it could not
parse, so the loader can reject those rows with a message instead of guessing.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import phonenumbers

from .schema import STRING

# --- phones -----------------------------------------------------------------------------

_CN_MOBILE = r"1[3-9]\d{9}"
_SCI = r"[0-9.]+[eE][+-]?\d+"
# written out, not \s or \d: pandas runs those through Python's re row by row, these
# classes run in Arrow's RE2
_SPACE = " \t\r\n\x0b\x0c\u00a0\u3000"


def normalize_phones(raw: pd.Series, *, region: str = "CN", international: bool = False
                     ) -> tuple[pd.Series, pd.Series]:
    """Phone numbers to E.164 (``+8613800138000``).

    Accepts 11-digit Chinese mobiles, ``+86`` / ``0086`` / ``86`` prefixes, international
    numbers with ``+`` or ``00``, separators (spaces, dashes, dots, brackets) and the
    ``.0`` a spreadsheet adds to a number. Masked numbers stay masked, never rejected:
    ``138****0000`` -> ``+86138****0000``, ``+1XXX5550100`` -> ``+1***5550100``; a mask
    that hides the country too is kept as written. A number in scientific notation (``1.38001E+10``, what Excel
    shows for a long number) has lost digits and is rejected, never guessed.

    Parameters
    ----------
    raw : Series of str
    region : str
        Region of numbers written without their country code (``CN``: Chinese mobiles;
        ``US``, ``IN`` … read through phonenumbers). A bare digit string that is no valid
        number there, but is one with a ``+`` before it, is an international number
        written without its ``+`` (``34683607594``, a Spanish mobile).
    international : bool
        Bare digit strings carry their country code (Vonage's ``msisdn``, Twilio and
        Plivo exports): read with a ``+`` first, in ``region`` only if that is no number.

    Returns
    -------
    (phone, reason) : Series of str
        ``phone`` is E.164 (missing where rejected); ``reason`` is missing where parsed.
    """
    s = raw.astype(STRING).str.strip()
    plain = s.str.fullmatch(r"(\+?86)?1[3-9][0-9]{9}" if region == "CN" else r"\+861[3-9][0-9]{9}").fillna(
        False).to_numpy(dtype=bool)
    if plain.any():  # the common case at once: a Chinese mobile, bare or with +86 / 86
        out = pd.Series(pd.NA, index=s.index, dtype=STRING)
        out[plain] = "+86" + s[plain].str.slice(-11)
        reason = pd.Series(pd.NA, index=s.index, dtype=object)
        if not plain.all():  # by position: an index may repeat
            rest, why = normalize_phones(raw[~plain], region=region, international=international)
            out[~plain], reason[~plain] = rest.array, why.to_numpy()
        return out, reason
    sci = s.str.fullmatch(_SCI).fillna(False)
    s = s.str.replace(r"\.0+$", "", regex=True).str.replace(f"[{_SPACE}\\-().]", "", regex=True)
    s = s.str.replace(r"^00", "+", regex=True)
    # masks written with X (AWS writes +1XXX5550100, Tencent 13xxxxxxxxx) are masks like *
    xmask = s.str.fullmatch(r"\+?[0-9Xx*]{4,}").fillna(False) & (s.str.count("[Xx*]").fillna(0) >= 2)
    s = s.where(~xmask, s.str.replace("[Xx]", "*", regex=True))
    masked = s.str.contains(r"\*", regex=True).fillna(False)
    # no look-ahead: RE2 (Arrow's regex engine) has none, and pandas would fall back to Python per row
    digits_masked = s.str.replace(r"^\+?(?:86)?(1[3-9*][0-9*]{9})$", r"\1", regex=True)
    out = pd.Series(pd.NA, index=s.index, dtype=STRING)
    # Chinese mobiles with or without a country code
    cn = s.str.fullmatch(rf"(\+?86)?{_CN_MOBILE}").fillna(False) & ~masked
    out[cn] = "+86" + s[cn].str.slice(-11)
    cn_masked = masked & ~s.str.startswith("+").fillna(False) | masked & s.str.startswith("+86").fillna(False)
    cn_masked = cn_masked & digits_masked.str.fullmatch(r"1[3-9*][0-9*]{9}").fillna(False)
    out[cn_masked] = "+86" + digits_masked[cn_masked]
    # any other masked number stays masked as written (never rejected: it was a number)
    other_masked = masked & ~cn_masked
    bare_masked = other_masked & ~s.str.startswith("+").fillna(False) & s.str.fullmatch("[0-9][0-9*]{5,14}").fillna(False)
    out[other_masked] = s[other_masked]
    if international:
        out[bare_masked] = "+" + s[bare_masked]
    cn_masked = cn_masked | other_masked
    rest = ~cn & ~cn_masked & s.notna() & ~sci
    intl = rest & s.str.fullmatch(r"\+\d{7,15}").fillna(False)
    out[intl] = s[intl]
    # international numbers: check each distinct value once with phonenumbers
    if intl.any():
        uniq = out[intl].dropna().unique()
        ok = {v: _possible(v) for v in uniq}
        bad_intl = intl & ~out.map(ok).fillna(False).astype(bool)
        out[bad_intl] = pd.NA
    # bare digit strings: in the region, or with their country code but no "+"
    bare = rest & ~intl & s.str.fullmatch(r"\d{6,15}").fillna(False)
    if bare.any():
        uniq = s[bare].dropna().unique()
        read = {v: _bare_number(v, region, international) for v in uniq}
        out[bare] = s[bare].map(read).astype(STRING)
    reason = pd.Series(pd.NA, index=s.index, dtype=object)
    reason[s.isna()] = "missing phone"
    reason[sci] = "precision lost: phone in scientific notation"
    reason[out.isna() & reason.isna()] = "invalid phone number: " + raw[out.isna() & reason.isna()].astype(str)
    return out, reason


#: Number types that can receive a text (a landline cannot).
_TEXTABLE = {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
             phonenumbers.PhoneNumberType.VOIP, phonenumbers.PhoneNumberType.PERSONAL_NUMBER,
             phonenumbers.PhoneNumberType.PAGER}


def _textable(number) -> bool:
    return phonenumbers.is_valid_number(number) and phonenumbers.number_type(number) in _TEXTABLE


def _bare_number(digits: str, region: str, international: bool) -> str | None:
    """A bare digit string as E.164: a number of ``region`` that can take a text, else
    (or first, when ``international``: the vendor writes the country code) one with a
    ``+`` before it; ``None`` when neither (a landline, a number missing its country
    code)."""
    def in_region():
        try:
            number = phonenumbers.parse(digits, region)
        except phonenumbers.NumberParseException:
            return None
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) if _textable(number) else None

    def with_plus():
        try:
            number = phonenumbers.parse("+" + digits, None)
        except phonenumbers.NumberParseException:
            return None
        # written by a vendor that sends abroad, any number of the plan (it sent to it);
        # guessed from a bare string otherwise, only a number that can take a text
        valid = phonenumbers.is_possible_number(number) if international else _textable(number)
        return "+" + digits if valid else None

    return (with_plus() or in_region()) if international else (in_region() or with_plus())


def _possible(e164: str) -> bool:
    try:
        return phonenumbers.is_possible_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return False


def country_of(phone: pd.Series) -> pd.Series:
    """ISO country code of E.164 numbers (``CN`` for ``+86``), looked up once per code."""
    cn = phone.str.startswith("+86").fillna(False).to_numpy(dtype=bool)
    out = pd.Series("CN", index=phone.index, dtype=object).where(cn)
    other = phone[~cn & phone.notna().to_numpy()]
    if len(other):
        uniq = other.dropna().unique()
        region = {}
        for v in uniq:
            try:
                region[v] = phonenumbers.region_code_for_number(phonenumbers.parse(v.replace("*", "0"), None))
            except phonenumbers.NumberParseException:
                region[v] = None
        out[other.index] = other.map(region)
    return out


def mask_phones(phone: pd.Series) -> pd.Series:
    """Mask numbers for display: ``+8613800138000`` -> ``138****8000``.

    Chinese mobiles show the first three and last four digits; other numbers keep the
    first two digits and the last four (``+44******0123``).
    """
    s = phone.astype(STRING)
    cn = s.str.startswith("+86").fillna(False)
    local = s.str.slice(3)
    masked_cn = local.str.slice(0, 3) + "****" + local.str.slice(-4)
    masked_other = s.str.replace(
        r"^(\+\d\d)(\d+)(\d{4})$", lambda m: m[1] + "*" * len(m[2]) + m[3], regex=True
    )
    return masked_cn.where(cn, masked_other).astype(STRING)


#: A phone number inside free text: a Chinese mobile (with or without +86 / 86) or any
#: E.164 number; the digits around it must not be part of a longer number.
_PHONE_IN_TEXT = re.compile(r"(?<![\d*])(\+?86[- ]?)?(1[3-9]\d)(\d{4})(\d{4})(?!\d)|(?<![\d*])(\+\d{2})(\d{4,9})(\d{4})(?!\d)")


def mask_text_phones(text: pd.Series) -> pd.Series:
    """Mask every phone number inside free text (a rejected row's raw record, an error
    message): ``13800138000`` -> ``138****8000``, ``+447700900123`` -> ``+44******0123``."""
    def mask(m: re.Match) -> str:
        if m.group(2):
            return (m.group(1) or "") + m.group(2) + "****" + m.group(4)
        return m.group(5) + "*" * len(m.group(6)) + m.group(7)

    return text.astype(object).map(lambda t: t if not isinstance(t, str) else _PHONE_IN_TEXT.sub(mask, t))


# --- timestamps ---------------------------------------------------------------------------

_OFFSET = f"(?:Z|[+-][0-9]{{2}}:?[0-9]{{2}}|[{_SPACE}]?UTC|[{_SPACE}]?GMT)$"


def parse_times(
    raw: pd.Series,
    *,
    tz: str,
    source_tz: str | None = None,
    form: str = "text",
) -> tuple[pd.Series, pd.Series]:
    """Parse timestamps of any vendor form to tz-aware times in ``tz``.

    Parameters
    ----------
    raw : Series
    tz : str
        Time zone of the result.
    source_tz : str, optional
        Zone of naive timestamps in the source (``"UTC"`` for Twilio, SNS, Vonage);
        defaults to ``tz``. Timestamps that carry an offset use it.
    form : {"text", "unix", "unix_ms", "yymmddhhmm"} or a strftime pattern
        ``unix``: seconds since the epoch, ``unix_ms`` milliseconds; ``yymmddhhmm``:
        the SMPP / Vonage ``scts`` form with 10 or 12 digits; a pattern such as
        ``%Y/%m/%d %H:%M`` (``%z`` for an offset). ``text``: ISO 8601, RFC 2822 and the
        usual spellings; a bare number is no time in any of them, so a field of epoch
        or SMPP numbers must name its form.

    Returns
    -------
    (times, reason) : the times (``NaT`` where missing or rejected) and a reason where
        a present value could not be parsed.
    """
    source_tz = source_tz or tz
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        return raw.dt.tz_convert(tz).astype(pd.DatetimeTZDtype("ms", tz)), pd.Series(pd.NA, index=raw.index, dtype=object)
    if pd.api.types.is_datetime64_dtype(raw.dtype):
        t = raw.dt.tz_localize(source_tz, ambiguous="NaT", nonexistent="NaT")
        return t.dt.tz_convert(tz).astype(pd.DatetimeTZDtype("ms", tz)), pd.Series(pd.NA, index=raw.index, dtype=object)
    s = raw.astype(STRING).str.strip()
    s = s.mask(s == "")
    if form in ("unix", "unix_ms"):
        num = pd.to_numeric(s, errors="coerce")
        t = pd.to_datetime(num, unit="s" if form == "unix" else "ms", utc=True, errors="coerce")
    elif form == "yymmddhhmm":
        ok = s.str.fullmatch(r"\d{10}(\d{2})?").fillna(False)
        padded = s.where(s.str.len() == 12, s + "00").where(ok)
        t = pd.to_datetime(padded, format="%y%m%d%H%M%S", errors="coerce")
        t = t.dt.tz_localize(source_tz, ambiguous="NaT", nonexistent="NaT")
    elif "%" in form:  # a strftime pattern, an offset (%z) or not
        t = pd.to_datetime(s, format=form, errors="coerce", utc="%z" in form)
        if t.dt.tz is None:
            t = t.dt.tz_localize(source_tz, ambiguous="NaT", nonexistent="NaT")
    else:
        has_offset = s.str.contains(_OFFSET, regex=True).fillna(False)
        t = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ms, UTC]")
        if has_offset.any():
            part = s[has_offset].str.replace(f"[{_SPACE}]?(UTC|GMT)$", "+00:00", regex=True)
            t[has_offset] = _to_datetime(part, utc=True)
        naive = ~has_offset & s.notna()
        if naive.any():
            local = _to_datetime(s[naive], utc=False)
            local = local.dt.tz_localize(source_tz, ambiguous="NaT", nonexistent="NaT")
            t[naive] = local.dt.tz_convert("UTC")
    t = t.dt.tz_convert(tz).astype(pd.DatetimeTZDtype("ms", tz))
    reason = pd.Series(pd.NA, index=s.index, dtype=object)
    bad = t.isna() & s.notna()
    reason[bad] = "unreadable time: " + s[bad].astype(str)
    return t, reason


def _to_datetime(s: pd.Series, *, utc: bool) -> pd.Series:
    """ISO 8601 fast paths, then pandas' mixed-format parser for the leftovers; naive or
    UTC times in microseconds.

    Naive Arrow text is first cast by Arrow, whose ISO 8601 parser takes
    ``YYYY-MM-DD[( |T)hh[:mm[:ss[.ffffff]]]]`` only and refuses an impossible date (a 30
    February) instead of rolling it over: when it refuses any value, the column goes
    to pandas' ISO parser, which reads the same strings to the same times."""
    if not utc and isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow" and len(s):
        import pyarrow as pa
        import pyarrow.compute as pc

        from .distinct import pa_array

        try:
            cast = pc.cast(pa_array(s), pa.timestamp("us"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        else:
            return pd.Series(cast.to_numpy(zero_copy_only=False), index=s.index)
    # in microseconds both (pandas picks each result's unit from its values, and one
    # cannot take the other's finer values)
    t = pd.to_datetime(s, format="ISO8601", utc=utc, errors="coerce").dt.as_unit("us")
    left = t.isna() & s.notna()
    if left.any():
        t[left] = pd.to_datetime(s[left], format="mixed", utc=utc, errors="coerce").dt.as_unit("us")
    return t


# --- segments -------------------------------------------------------------------------------

_GSM7 = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXT = "|^€{}[]~\\"


#: Characters outside the Basic Multilingual Plane: two UTF-16 (UCS-2) code units each (an emoji).
_ASTRAL = "[\U00010000-\U0010FFFF]"


def count_segments(content: pd.Series) -> pd.Series:
    """Billed parts of each text (signature 【…】 included, as written in ``content``).

    GSM-7 text: 160 septets in one part, 153 per part above; ``| ^ € { } [ ] ~ \\`` are
    two septets (escape and character) and are never split across parts. Any other
    character makes the text UCS-2, counted in UTF-16 code units: 70 in one part, 67 per
    part above -- the Chinese domestic rule (68 -> 1, 134 -> 2, 135 -> 3, 160 -> 3); a
    character outside the Basic Multilingual Plane (an emoji) is two units and is never
    split across parts either. Vendors differ on the last point: some count an emoji as
    one character; this counts what the UCS-2 encoding sends (as Twilio and the GSM
    concatenation rules do), which the bill of such vendors can only undercut.

    Returns
    -------
    Series of Int16, missing where ``content`` is missing.
    """
    s = content.astype(STRING)
    gsm_class = "[" + "".join(map(re.escape, _GSM7 + _GSM7_EXT)) + "]*"
    is_gsm = s.str.fullmatch(gsm_class).fillna(False).to_numpy(dtype=bool)
    ext = s.str.count("[" + "".join(map(re.escape, _GSM7_EXT)) + "]").fillna(0).to_numpy()
    astral = s.str.count(_ASTRAL).fillna(0).to_numpy()
    n = s.str.len().to_numpy(dtype="float64", na_value=np.nan)
    units = np.where(is_gsm, n + ext, n + astral)  # septets, or UTF-16 code units
    single, part = np.where(is_gsm, 160, 70), np.where(is_gsm, 153, 67)
    seg = np.where(units <= single, 1, np.ceil(units / part))
    # a two-unit character at a part's end moves to the next part: only texts that have one and
    # need several parts can differ from the plain division, counted by packing them
    doubles = np.where(is_gsm, ext, astral)
    check = np.flatnonzero((doubles > 0) & (units > single))
    if len(check):
        texts = s.to_numpy(dtype=object)
        for i in check:  # a loop over the few long texts with escaped characters or emoji
            seg[i] = _packed_parts(texts[i], bool(is_gsm[i]))
    return pd.Series(seg, index=content.index).astype("Int16").where(s.notna())


def _packed_parts(text: str, gsm: bool) -> int:
    """Parts of a multipart text filled in order, a two-unit character never split."""
    size = 153 if gsm else 67
    parts, used = 1, 0
    for ch in text:
        cost = 2 if (ch in _GSM7_EXT if gsm else ord(ch) > 0xFFFF) else 1
        if used + cost > size:
            parts, used = parts + 1, 0
        used += cost
    return parts


# --- categories -------------------------------------------------------------------------------

_VERIFY = r"验证码|驗證碼|校验码|校驗碼|动态码|動態碼|verification code|\bcode\b|\bOTP\b"
_MARKETING = r"退订|退訂|拒收请回复|拒收請回覆|回T|回TD|\bSTOP\b|unsubscribe"


def infer_categories(content: pd.Series) -> pd.Series:
    """Message category from wording when the export does not give one.

    ``verification`` when the text mentions a code (验证码, OTP …); ``marketing`` when it
    carries an unsubscribe instruction (回T退订, 拒收请回复R, STOP …), which Chinese
    rules require on every commercial message; otherwise ``notification``.
    """
    s = content.astype(STRING)
    verify = s.str.contains(_VERIFY, case=False, regex=True).fillna(False)
    market = s.str.contains(_MARKETING, case=False, regex=True).fillna(False)
    out = pd.Series("notification", index=s.index, dtype=object)
    out[market] = "marketing"
    out[verify] = "verification"
    return out.where(s.notna())


# --- resend attempts ----------------------------------------------------------------------------


def infer_attempts(log: pd.DataFrame, *, window: str | pd.Timedelta = "30min") -> pd.Series:
    """Attempt number of each message: 1 = original, 2+ = resend.

    Where ``attempt`` is given it is kept. Elsewhere a message is a resend when the
    previous message to the same phone with the same text (the template when the text is
    unknown) through the same vendor was not delivered and was submitted at most
    ``window`` earlier: the platform sending the same message again. A new text to the
    same phone (a new verification code the user asked for) is an original; see
    :func:`analysis.measures.user_retries`. Chains count up: original 1, resend 2,
    resend of that 3.

    Returns
    -------
    Series of Int16 aligned with ``log``.
    """
    window = pd.Timedelta(window)
    given = log["attempt"].astype("Int16") if "attempt" in log else pd.Series(pd.NA, index=log.index, dtype="Int16")
    if given.notna().all():  # every attempt given: nothing to infer
        return given
    key_tpl = log["content"].astype(STRING).fillna(log["template_id"].astype(STRING))
    frame = pd.DataFrame(
        {
            "vendor": log["vendor"].astype(STRING),
            "phone": log["phone"].astype(STRING),
            "tpl": key_tpl,
            "t": log["submit_time"],
            "ok": log["status"].astype(object).eq("delivered").to_numpy(dtype=bool),
        },
        index=log.index,
    ).sort_values(["vendor", "phone", "tpl", "t"], kind="stable")
    v, p, k = (frame[c].to_numpy(dtype=object, na_value=None) for c in ["vendor", "phone", "tpl"])
    t = frame["t"].to_numpy(dtype="datetime64[ms]")
    ok = frame["ok"].to_numpy(dtype=bool)
    resend = np.zeros(len(frame), dtype=bool)
    if len(frame) > 1:
        same = (v[1:] == v[:-1]) & (p[1:] == p[:-1]) & (k[1:] == k[:-1])
        gap = t[1:] - t[:-1]
        close = ~np.isnat(gap) & (gap <= window.to_timedelta64())
        resend[1:] = same & ~ok[:-1] & close & (k[1:] != None) & (p[1:] != None)  # noqa: E711
    chain = np.cumsum(~resend)
    inferred = pd.Series(pd.Series(chain).groupby(chain).cumcount().to_numpy() + 1, index=frame.index)
    inferred = inferred.reindex(log.index).astype("Int16")
    return given.fillna(inferred)
