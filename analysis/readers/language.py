"""The layout language: every vendor layout, built in or the user's, is a declaration.

A declaration is a table (a TOML file of ``[[layout]]`` tables, or a dict) that says
where the records are, which of their fields hold which canonical column and how to read
each value. The built-in layouts are files of declarations under ``analysis/layouts/``,
read by the same :func:`declare` as a user's ``--mapping``: a user's mapping can do
anything a built-in can, and adding a vendor is a file of declarations and a fixture.
``docs/layouts.md`` documents every key with an example per input form.

A layout (every key but ``name``, ``vendor`` and ``fields`` may be left out)::

    [[layout]]
    name = "acme_receipt"              # what --layout takes and the summary shows
    vendor = "acme"                    # written into the vendor column
    title = "Acme receipt webhooks"    # what a user holds, for messages
    role = "receipt"                   # submission | receipt | both (default both)
    identify = ["message_id", "status", "done_time"]   # fields whose presence tells it
    records = "data.reports"           # where the records sit in a JSON/XML document
    explode = "recipients"             # a list in each record: one record per element
    timezone = "UTC"                   # zone of times written without an offset
    phone_region = "CN"                # region of numbers written without a country code
    international_numbers = true       # bare digit strings carry their country code
    identity = "id"                    # or "request": an id a batch shares; message = id + phone
    currency = "USD"
    [layout.fields]                    # canonical column = where its value comes from
    message_id = ["MsgId", "消息ID"]    # header spellings (dotted paths in JSON), first found
    phone = "Mobile"
    done_time = { from = "DoneTime", format = "epoch_ms" }
    status = { from = "Result", map = { "0" = "delivered", "1" = "failed" }, else = "unknown" }
    error_code = { from = "Code", ok = ["0", "000"] }
    [[layout.reject]]                  # rows that are not sends, with the reason
    field = "direction"
    matches = "^inbound"
    reason = "inbound message (a reply), not a send"
    [layout.reasons]                   # the vendor's error codes -> failure reasons
    "E100" = "blacklisted"

A field's value is taken from the first of its sources that is present on the row
(``from``: a header, a dotted path, or a template such as ``"+{CountryCode}{Number}"``),
then read by its options (:data:`FIELD_KEYS`). Text files whose records are lines
(gateway logs, web-server logs of receipt callbacks) declare ``format = "lines"`` and
``[[layout.lines]]``: a regular expression with named groups per kind of line, each kind
with its own fields.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from ..normalize import parse_times
from ..schema import CATEGORIES, COLUMNS, FAILURE_REASONS, STATUSES, STRING, TIME_SOURCES
from ._files import LoadError
from ._layout import Layout, col, first_reason, header_key, staged, to_number

#: The keys of a layout.
LAYOUT_KEYS = {"name", "vendor", "title", "role", "identify", "records", "explode", "timezone", "phone_region",
               "international_numbers", "identity", "currency", "fields", "reject", "reasons", "format", "lines",
               "about"}
#: The keys of a field.
FIELD_KEYS = {
    "from": "where the value comes from: a header (any spelling), a dotted path, or a template with {Header} "
            "parts; a list: the first present",
    "value": "a constant for every row",
    "map": "raw value -> canonical value (compared without case)",
    "codes": "a shared code table by name (smpp, twilio, vonage, text_status, infobip_group, mccmnc …)",
    "else": "the value of a present raw value that map and codes do not name",
    "ok": "raw values that mean no error (dropped from an error code)",
    "missing": "raw values that mean nothing is there (\"0\", \"null\")",
    "extract": "a regular expression whose first group is the value",
    "format": "a time's form: iso, rfc2822, epoch_s, epoch_ms, smpp (YYMMDDhhmm[ss]) or a strftime pattern",
    "timezone": "zone of this time when it has no offset",
    "after": "this value is a duration after that time field (with unit)",
    "unit": "unit of a duration or number: ms, s, min (durations); a number to multiply by",
    "abs": "take the absolute value (a price written negative)",
    "upper": "compare in upper case (ids a gateway writes in both cases)",
    "final_only": "a receipt time only with a final status, after the send time",
    "base": "the base of a number written in another (16 for the hex of a concatenation header)",
    "fill_by": "headers whose equal values on an earlier row give this value where it is missing "
               "(the parts of a long message named by their first part only)",
}
#: Line-layout kinds: their keys.
LINE_KEYS = {"kind", "match", "fields", "role", "reject", "parse"}
#: What a field may be: the canonical columns and ``part`` (a part number of a long
#: message: the parts are one message).
FIELDS = [*COLUMNS, "part"]
ROLES = {"submission": "submission", "receipt": "receipt_submit", "both": "submission"}
TIME_FORMATS = {"iso", "rfc2822", "epoch_s", "epoch_ms", "smpp"}
DURATION_UNITS = {"ms": 1e-3, "s": 1.0, "min": 60.0}
_TEMPLATE = re.compile(r"\{([^{}]+)\}")
#: Words of a yes/no column.
_TRUE = {"true", "1", "yes", "y", "是", "t"}


@dataclass(frozen=True)
class FieldSpec:
    """One field of a declaration, its options checked (:data:`FIELD_KEYS`)."""

    sources: tuple = ()
    value: object = None
    map: Mapping = field(default_factory=dict)
    codes: str | None = None
    otherwise: str | None = None
    ok: tuple = ()
    missing: tuple = ()
    extract: str | None = None
    format: str | None = None
    timezone: str | None = None
    after: str | None = None
    unit: object = None
    absolute: bool = False
    upper: bool = False
    final_only: bool = False
    base: int = 10
    fill_by: tuple = ()
    alternatives: tuple = ()

    def headers(self) -> list[str]:
        """The header spellings it reads (templates' parts included), for detection."""
        out = []
        for alt in self.alternatives or (self,):
            for s in alt.sources:
                parts = _TEMPLATE.findall(s)
                out += parts if parts else [s]
        return out


@dataclass(frozen=True)
class LineKind:
    """One kind of line of a line layout: its pattern, fields and role."""

    kind: str
    match: re.Pattern
    fields: Mapping[str, FieldSpec]
    role: str = "both"
    reject: str | None = None
    parse: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Declaration:
    """What a declaration says, checked; :func:`declare` makes its :class:`Layout`."""

    name: str
    vendor: str
    fields: Mapping[str, FieldSpec]
    title: str = ""
    role: str = "both"
    identify: tuple = ()
    records: str | None = None
    explode: tuple = ()
    timezone: str | None = None
    phone_region: str = "CN"
    international_numbers: bool = False
    identity: str = "id"
    currency: str | None = None
    reject: tuple = ()
    reasons: Mapping[str, str] = field(default_factory=dict)
    format: str = "table"
    lines: tuple = ()


class _Check:
    """Raise one :class:`LoadError` naming the file and the key."""

    def __init__(self, where: str):
        self.where = where

    def fail(self, key: str, problem: str):
        raise LoadError(f"{self.where}: key {key!r}: {problem}")


def read_declarations(source: dict | str | Path) -> tuple[list[dict], str]:
    """The layout tables of a TOML/JSON file or a dict, and where they came from: a file
    holds ``[[layout]]`` tables (and the vendor's shared ``[reasons]``), or one layout at
    its top level."""
    where = "layout declaration"
    if not isinstance(source, dict):
        path = Path(source)
        where = str(path)
        try:
            text = path.read_text(encoding="utf-8")
            source = tomllib.loads(text) if path.suffix.lower() != ".json" else json.loads(text)
        except (OSError, ValueError) as exc:
            raise LoadError(f"{path}: cannot read the layout: {exc}") from exc
        if not isinstance(source, dict):
            raise LoadError(f"{path}: a layout is a table of keys, not {type(source).__name__}")
    if "layout" in source:
        tables = source["layout"]
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise LoadError(f"{where}: key 'layout': write each layout as a [[layout]] table")
        extra = set(source) - {"layout", "reasons"}
        if extra:
            raise LoadError(f"{where}: key {sorted(extra)[0]!r}: unknown key beside [[layout]] tables")
        shared = source.get("reasons", {})
        return [{"reasons": shared, **t} if shared and "reasons" not in t else t for t in tables], where
    return [source], where


def from_column_mapping(m: dict) -> dict:
    """An older column mapping (canonical column = header, raw status = canonical;
    checked by :func:`analysis.readers.mapping.load_mapping`) as the layout it means:
    unnamed columns are looked for under their canonical names."""
    columns = m.get("columns", {})
    fields = {c: [c] for c in COLUMNS}
    fields.update({c: v for c, v in columns.items()})
    fields["status"] = {"from": columns.get("status", "status"), "map": dict(m.get("status", {})),
                        "codes": "canonical"}
    fields["status_code"] = columns.get("status_code", columns.get("status", "status"))
    out = {"name": "mapping", "vendor": m.get("vendor", "custom"), "fields": fields, "identify": sorted(columns),
           "title": "a column mapping"}
    if "source_tz" in m:
        out["timezone"] = m["source_tz"]
    return out


def declare(table: dict, *, where: str = "layout declaration", name: str | None = None) -> Layout:
    """The :class:`Layout` a declaration table means, every key checked: an unknown key,
    a field that is not a canonical column, a wrong type, an unknown status word, time
    format, zone or code table is a :class:`LoadError` naming ``where`` and the key."""
    return _layout(_declaration(table, where=where, name=name))


def load_layouts(source: dict | str | Path) -> list[Layout]:
    """Every layout a file (or dict) declares (:func:`read_declarations`, :func:`declare`)."""
    tables, where = read_declarations(source)
    names = [t.get("name") for t in tables]
    if len(tables) > 1 and len(set(names)) != len(names):
        raise LoadError(f"{where}: key 'name': two layouts are named {next(n for n in names if names.count(n) > 1)!r}")
    return [declare(t, where=where if len(tables) == 1 else f"{where} [{t.get('name', i)}]")
            for i, t in enumerate(tables)]


def _declaration(table: dict, *, where: str, name: str | None) -> Declaration:
    check = _Check(where)
    for key in set(table) - LAYOUT_KEYS:
        check.fail(key, f"unknown key; a layout has {', '.join(sorted(LAYOUT_KEYS))}")
    vendor = table.get("vendor")
    if not isinstance(vendor, str) or not vendor.strip():
        check.fail("vendor", "must be a non-empty name (written into the vendor column)")
    layout_name = table.get("name", name or "mapping")
    if not isinstance(layout_name, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", layout_name):
        check.fail("name", "must be a name of letters, digits, _ . -")
    role = table.get("role", "both")
    if role not in ROLES:
        check.fail("role", f"{role!r}: use {', '.join(ROLES)}")
    tz = table.get("timezone")
    if tz is not None:
        _zone(tz, check, "timezone")
    region = table.get("phone_region", "CN")
    import phonenumbers

    if not isinstance(region, str) or region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        check.fail("phone_region", f"{region!r} is not a region code (CN, US, IN, ES …)")
    identity = table.get("identity", "id")
    if identity not in ("id", "request"):
        check.fail("identity", "use id (the message id names one message) or request (a batch shares it)")
    fmt = table.get("format", "table")
    if fmt not in ("table", "lines"):
        check.fail("format", "use table (CSV, spreadsheets, JSON, XML, form bodies) or lines")
    fields = _fields(table.get("fields", {}), check, "fields")
    lines = ()
    if fmt == "lines":
        lines = tuple(_line_kind(k, check, i) for i, k in enumerate(_list(table.get("lines"), check, "lines")))
        if not lines:
            check.fail("lines", "a line layout needs at least one [[lines]] kind with a match pattern")
    elif not fields:
        check.fail("fields", "name at least the fields the export has (message_id, phone, times, status …)")
    identify = table.get("identify")
    if identify is None:
        identify = [f for f in ("message_id", "phone", "submit_time", "done_time", "status") if f in fields]
    if not isinstance(identify, list) or any(f not in fields for f in identify):
        bad = [f for f in (identify if isinstance(identify, list) else [identify]) if f not in fields]
        check.fail("identify", f"{bad[0] if bad else identify!r} is not one of its fields")
    reject = tuple(_reject_rule(r, check, f"reject[{i}]") for i, r in enumerate(_list(table.get("reject"), check,
                                                                                      "reject")))
    reasons = table.get("reasons", {})
    if not isinstance(reasons, dict):
        check.fail("reasons", "must be a table of error code = failure reason")
    for code, reason in reasons.items():
        if reason not in FAILURE_REASONS:
            check.fail(f"reasons.{code}", f"{reason!r} is not a failure reason; use {', '.join(FAILURE_REASONS)}")
    for key in ("records", "currency", "title"):
        if key in table and not isinstance(table[key], str):
            check.fail(key, "must be text")
    explode = table.get("explode", [])
    explode = [explode] if isinstance(explode, str) else explode
    if not isinstance(explode, list) or not all(isinstance(e, str) and e for e in explode):
        check.fail("explode", "a dotted path of a list in each record, or a list of them (outer first)")
    return Declaration(
        name=layout_name, vendor=vendor.strip(), fields=fields, title=table.get("title", ""), role=role,
        identify=tuple(identify), records=table.get("records"), explode=tuple(explode), timezone=tz,
        phone_region=region.upper(), international_numbers=bool(table.get("international_numbers", False)),
        identity=identity, currency=table.get("currency"), reject=reject,
        reasons={str(k).upper(): v for k, v in reasons.items()}, format=fmt, lines=lines)


def _list(value, check: _Check, key: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        check.fail(key, f"write each as a [[{key}]] table")
    return value


def _zone(tz, check: _Check, key: str) -> None:
    try:
        ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError):
        check.fail(key, f"{tz!r} is not a time zone (e.g. UTC, Asia/Shanghai)")


def _fields(table, check: _Check, prefix: str) -> dict[str, FieldSpec]:
    if not isinstance(table, dict):
        check.fail(prefix, "must be a table of canonical column = its source")
    out = {}
    seen: dict[str, str] = {}
    for name, spec in table.items():
        key = f"{prefix}.{name}"
        if name not in FIELDS:
            check.fail(key, f"not a canonical column; use one of {', '.join(FIELDS)}")
        out[name] = fs = _field_spec(spec, check, key, name)
        for header in fs.sources:  # one header feeding two times is a receipt-only export's natural mistake
            if name in ("submit_time", "done_time") and seen.get(header_key(header), name) != name and \
                    {name, seen[header_key(header)]} == {"submit_time", "done_time"}:
                check.fail(key, f"{header!r} is already the submit_time: a receipt-only export has a receipt time "
                                "(done_time) and no send time; name it once")
            seen.setdefault(header_key(header), name)
    return out


def _field_spec(spec, check: _Check, key: str, name: str) -> FieldSpec:
    if isinstance(spec, list) and spec and all(isinstance(s, dict) for s in spec):  # alternatives, first present
        alternatives = tuple(_field_spec(s, check, f"{key}[{i}]", name) for i, s in enumerate(spec))
        return FieldSpec(sources=tuple(x for a in alternatives for x in a.sources), alternatives=alternatives)
    if isinstance(spec, str | list):
        spec = {"from": spec}
    if not isinstance(spec, dict):
        check.fail(key, "must be a header, a list of headers, or a table of options")
    for k in set(spec) - set(FIELD_KEYS):
        check.fail(f"{key}.{k}", f"unknown option; a field has {', '.join(FIELD_KEYS)}")
    sources = spec.get("from", [])
    sources = [sources] if isinstance(sources, str) else sources
    if not isinstance(sources, list) or not all(isinstance(s, str) and s.strip() for s in sources):
        check.fail(f"{key}.from", "must name a header (text) or a list of them")
    if "@canonical" in sources:  # this project's own column: its name and its zh / en labels
        from ..schema import LABELS

        at = sources.index("@canonical")
        own = [name, *(LABELS[lang][name] for lang in LABELS if name in LABELS[lang])]
        sources = [*sources[:at], *dict.fromkeys(own), *sources[at + 1:]]
    if not sources and "value" not in spec:
        check.fail(key, "needs from (a header) or value (a constant)")
    mapping = spec.get("map", {})
    if not isinstance(mapping, dict):
        check.fail(f"{key}.map", "must be a table of raw value = canonical value")
    vocab = _vocabulary(name)
    for raw, value in mapping.items():
        if vocab and value not in vocab:
            check.fail(f"{key}.map.{raw}", f"{value!r} is not a {name} word; use {', '.join(vocab)}")
    otherwise = spec.get("else")
    if otherwise is not None and vocab and otherwise not in vocab:
        check.fail(f"{key}.else", f"{otherwise!r} is not a {name} word; use {', '.join(vocab)}")
    codes = spec.get("codes")
    if codes is not None:
        from ..codes import CODE_TABLES

        if codes not in CODE_TABLES:
            check.fail(f"{key}.codes", f"{codes!r} is not a code table; use {', '.join(sorted(CODE_TABLES))}")
    fmt = spec.get("format")
    if fmt is not None and fmt not in TIME_FORMATS and "%" not in str(fmt):
        check.fail(f"{key}.format", f"{fmt!r}: use {', '.join(sorted(TIME_FORMATS))} or a strftime pattern "
                                    "such as %Y/%m/%d %H:%M")
    if spec.get("timezone") is not None:
        _zone(spec["timezone"], check, f"{key}.timezone")
    after = spec.get("after")
    if after is not None and after not in ("submit_time", "done_time"):
        check.fail(f"{key}.after", "must be submit_time or done_time")
    unit = spec.get("unit")
    if after is not None and unit not in DURATION_UNITS:
        check.fail(f"{key}.unit", f"a duration's unit: {', '.join(DURATION_UNITS)}")
    if after is None and unit is not None and not isinstance(unit, int | float):
        check.fail(f"{key}.unit", "a number to multiply by (0.00001 for thousandths of a cent)")
    for k in ("extract",):
        if k in spec:
            try:
                if re.compile(spec[k]).groups < 1:
                    check.fail(f"{key}.{k}", "needs one group (…) around the value")
            except re.error as exc:
                check.fail(f"{key}.{k}", f"not a regular expression: {exc}")
    listed = {}
    for k in ("ok", "missing"):
        v = spec.get(k, [])
        v = [v] if isinstance(v, str | int) else v
        if not isinstance(v, list):
            check.fail(f"{key}.{k}", "must be a list of values")
        listed[k] = tuple(str(x) for x in v)
    base = spec.get("base", 10)
    if base not in (2, 8, 10, 16):
        check.fail(f"{key}.base", "2, 8, 10 or 16")
    fill_by = spec.get("fill_by", [])
    fill_by = [fill_by] if isinstance(fill_by, str) else fill_by
    if not isinstance(fill_by, list) or not all(isinstance(f, str) for f in fill_by):
        check.fail(f"{key}.fill_by", "a header or a list of them")
    return FieldSpec(sources=tuple(sources), value=spec.get("value"), map={str(k): v for k, v in mapping.items()},
                     codes=codes, otherwise=otherwise, ok=listed["ok"], missing=listed["missing"],
                     extract=spec.get("extract"), format=fmt, timezone=spec.get("timezone"), after=after, unit=unit,
                     absolute=bool(spec.get("abs", False)), upper=bool(spec.get("upper", False)),
                     final_only=bool(spec.get("final_only", False)), base=base, fill_by=tuple(fill_by))


def _vocabulary(name: str) -> list[str]:
    return {"status": STATUSES, "category": CATEGORIES, "failure_reason": FAILURE_REASONS,
            "time_source": TIME_SOURCES}.get(name, [])


def _reject_rule(rule: dict, check: _Check, key: str) -> tuple[str, re.Pattern, str]:
    for k in set(rule) - {"field", "matches", "reason"}:
        check.fail(f"{key}.{k}", "unknown key; a rule has field, matches, reason")
    try:
        pattern = re.compile(str(rule.get("matches", "")), re.IGNORECASE)
    except re.error as exc:
        check.fail(f"{key}.matches", f"not a regular expression: {exc}")
    if not rule.get("field") or not rule.get("reason"):
        check.fail(key, "needs field (a header), matches (a pattern) and reason (words)")
    return str(rule["field"]), pattern, str(rule["reason"])


def _line_kind(kind: dict, check: _Check, i: int) -> LineKind:
    key = f"lines[{i}]"
    for k in set(kind) - LINE_KEYS:
        check.fail(f"{key}.{k}", f"unknown key; a kind of line has {', '.join(sorted(LINE_KEYS))}")
    try:
        match = re.compile(str(kind.get("match", "")))
    except re.error as exc:
        check.fail(f"{key}.match", f"not a regular expression: {exc}")
    if not kind.get("match"):
        check.fail(f"{key}.match", "a kind of line needs its pattern")
    role = kind.get("role", "both")
    if role not in ROLES:
        check.fail(f"{key}.role", f"{role!r}: use {', '.join(ROLES)}")
    parse = kind.get("parse", {})
    if not isinstance(parse, dict) or any(p not in PARSERS for p in parse.values()):
        check.fail(f"{key}.parse", f"a table of group = parser, the parsers: {', '.join(PARSERS)}")
    fields = _fields(kind.get("fields", {}), check, f"{key}.fields")
    if not fields and not kind.get("reject"):
        check.fail(key, "needs fields (a record) or reject (words saying why such a line is not one)")
    return LineKind(kind=str(kind.get("kind", f"kind{i}")), match=match, fields=fields, role=role,
                    reject=kind.get("reject"), parse=dict(parse))


# --------------------------------------------------------------------------- the layout


def _layout(d: Declaration) -> Layout:
    specs = [d.fields] if d.format == "table" else [k.fields for k in d.lines]
    spellings: dict[str, tuple] = {}
    for fields in specs:
        for name, spec in fields.items():
            spellings[name] = tuple(dict.fromkeys([*spellings.get(name, ()), *spec.headers()]))
    return Layout(d.name, d.vendor, spellings, frozenset(d.identify), stage=_Stager(d), title=d.title,
                  intl_phones=d.international_numbers, source_tz=d.timezone, id_per_phone=d.identity == "request",
                  region=d.phone_region, declaration=d)


class _Stager:
    """A declaration's staging function (picklable, so blocks stage on workers)."""

    def __init__(self, d: Declaration):
        self.d = d

    def __call__(self, raw: pd.DataFrame, tz: str, source_tz: str | None = None) -> pd.DataFrame:
        if self.d.format == "lines":
            return _stage_lines(raw, tz, source_tz, self.d)
        return _stage_table(raw, tz, source_tz, self.d.fields, self.d, self.d.role)


def _columns(raw: pd.DataFrame) -> dict[str, str]:
    keys: dict[str, str] = {}
    for c in raw.columns:
        if c != "_line":
            keys.setdefault(header_key(c), c)
    return keys


def _text(raw: pd.DataFrame, column: str) -> pd.Series:
    return col(raw, column)


def source_values(raw: pd.DataFrame, spec: FieldSpec, keys: dict[str, str] | None = None) -> pd.Series | None:
    """A field's raw values: the first of its sources present on each row (``None`` when
    no source is in the table at all)."""
    keys = _columns(raw) if keys is None else keys
    out = None
    for source in spec.sources:
        parts = _TEMPLATE.findall(source)
        if parts:
            if not all(header_key(p) in keys for p in parts):
                continue
            values = pd.Series(_TEMPLATE.split(source)[0], index=raw.index, dtype=STRING)
            pieces = _TEMPLATE.split(source)
            for i, p in enumerate(parts):
                values = values + _text(raw, keys[header_key(p)]) + pieces[2 * i + 2]
        elif header_key(source) in keys:
            values = _text(raw, keys[header_key(source)])
        else:
            continue
        out = values if out is None else out.fillna(values) if not pd.api.types.is_datetime64_any_dtype(out) \
            else out.fillna(values)
    return out


def _stage_table(raw: pd.DataFrame, tz: str, source_tz: str | None, fields: Mapping[str, FieldSpec],
                 d: Declaration, role: str) -> pd.DataFrame:
    keys = _columns(raw)
    zone = d.timezone or source_tz
    values: dict[str, pd.Series] = {}
    reasons = []
    for name, spec in fields.items():
        if name in ("submit_time", "done_time"):
            continue
        values[name] = _alternatives(spec, lambda alt, n=name: _value(raw, alt, keys, n))
    if d.currency and "currency" not in values:
        values["currency"] = pd.Series(d.currency, index=raw.index, dtype=object)
    part = values.pop("part", None)
    given_source = values.pop("time_source", None)
    out = staged(raw, tz, time_source=ROLES[role], **values)
    for name in ("submit_time", "done_time"):  # a send time first: a receipt time may be given after it
        spec = fields.get(name)
        if spec is None:
            continue
        parsed, reason = _times(raw, spec, keys, out, tz, zone)
        out[name] = parsed
        reasons.append(reason.where(reason.isna(), name + ": " + reason.astype(str)))
    if "status" in out and "done_time" in fields and any(a.final_only for a in _alts(fields["done_time"])):
        final = out["status"].isin(["delivered", "failed", "expired", "rejected", "unknown"]).to_numpy(dtype=bool)
        later = (out["done_time"] > out["submit_time"]).to_numpy(dtype=bool) if "submit_time" in out else True
        out["done_time"] = out["done_time"].where(final & later)
    if given_source is not None:  # a log of this project's: its own words, a derived send time dropped
        given = given_source.str.lower()
        out["time_source"] = given.where(given.isin(list(TIME_SOURCES)), ROLES[role]).fillna(ROLES[role])
        if "submit_time" in out:
            out["submit_time"] = out["submit_time"].where(out["time_source"].ne("receipt").to_numpy())
    if part is not None:
        out["_part"] = part.astype(STRING)
    if d.reasons and "failure_reason" not in values:  # the vendor's own codes, declared with its layouts
        code = out["error_code"] if "error_code" in out else pd.Series(pd.NA, index=raw.index, dtype=STRING)
        if "status_code" in out:
            code = code.fillna(out["status_code"])
        out["failure_reason"] = code.astype(STRING).str.upper().map(d.reasons).astype(object)
    rules = _reject_rules(raw, d.reject, keys)
    out["_reject"] = first_reason(out["_reject"], *reasons, *([rules] if rules is not None else []))
    if "submit_time" not in fields and "done_time" not in fields and role != "receipt":
        out["_alone"] = _alone(d)
    return out


def _alone(d: Declaration) -> str:
    """Why a record of a layout with no time cannot load alone, and what to load with it."""
    from .layouts import builtin

    receipts = [lay.title or lay.name for lay in builtin() if lay.vendor == d.vendor and lay.declaration.role == "receipt"]
    return (f"a {d.title or d.name} record has no send time: load it with its delivery receipts"
            + (f" ({'; '.join(receipts)})" if receipts else "") + ", which give the time")


def _alts(spec: FieldSpec) -> tuple:
    return spec.alternatives or (spec,)


def _alternatives(spec: FieldSpec, read) -> pd.Series:
    """A field's values from its alternatives: the first that has one, row by row."""
    out = None
    for alt in _alts(spec):
        v = read(alt)
        out = v if out is None else out.where(out.notna(), v)
    return out


def _times(raw: pd.DataFrame, spec: FieldSpec, keys: dict, out: pd.DataFrame, tz: str, zone: str | None):
    """A time field's times and, where a present value could not be read, the reason."""
    times, reason = None, None
    for alt in _alts(spec):
        if alt.after is not None:  # a duration after another time of the row
            base = out[alt.after] if alt.after in out else pd.Series(pd.NaT, index=raw.index)
            amount = to_number(_cleaned(source_values(raw, alt, keys), alt, raw.index))
            t = (base + pd.to_timedelta(amount * DURATION_UNITS[alt.unit], unit="s")).astype(
                pd.DatetimeTZDtype("ms", tz))
            why = pd.Series(pd.NA, index=raw.index, dtype=object)
        else:
            t, why = parse_times(_cleaned(source_values(raw, alt, keys), alt, raw.index), tz=tz,
                                 **_time_options(alt, zone))
        if times is None:
            times, reason = t, why
        else:
            missing = times.isna() & reason.isna()
            times, reason = times.where(~missing, t), reason.where(~missing, why)
    return times, reason


def _time_options(spec: FieldSpec, zone: str | None) -> dict:
    opts = {"source_tz": spec.timezone or zone}
    fmt = spec.format
    if fmt == "epoch_s":
        opts["form"] = "unix"
    elif fmt == "epoch_ms":
        opts["form"] = "unix_ms"
    elif fmt == "smpp":
        opts["form"] = "yymmddhhmm"
    elif fmt and "%" in fmt:
        opts["form"] = fmt
    return opts


def _cleaned(values: pd.Series | None, spec: FieldSpec, index) -> pd.Series:
    """A field's raw text: constant, extracted, ``missing`` values dropped."""
    if values is None:
        if spec.value is not None:
            return pd.Series(str(spec.value), index=index, dtype=STRING)
        return pd.Series(pd.NA, index=index, dtype=STRING)
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    if spec.extract:
        values = values.str.extract(spec.extract, expand=False).astype(STRING).replace("", pd.NA)
    if spec.missing:
        values = values.mask(values.isin(list(spec.missing)))
    if spec.upper:
        values = values.str.upper()
    return values


def _value(raw: pd.DataFrame, spec: FieldSpec, keys: dict, name: str) -> pd.Series:
    """A field's staged values: mapped words, codes with ``ok`` dropped, numbers, flags."""
    values = _cleaned(source_values(raw, spec, keys), spec, raw.index)
    if spec.fill_by:
        values = _filled(raw, values, spec.fill_by, keys)
    if spec.base != 10:
        values = values.map(lambda v: str(int(v, spec.base)) if isinstance(v, str) and _is_int(v, spec.base) else None,
                            na_action="ignore").astype(STRING)
    if spec.map or spec.codes or spec.otherwise is not None:
        return _mapped(values, spec, name)
    if spec.ok:
        ok = values.str.upper().isin([v.upper() for v in spec.ok]).fillna(False).to_numpy(dtype=bool)
        values = values.mask(ok)
    if name in ("segments", "fee", "attempt"):
        number = to_number(values.str.replace(r"\.0+$", "", regex=True) if name != "fee" else values)
        if isinstance(spec.unit, int | float):
            number = number * spec.unit
        return number.abs() if spec.absolute else number
    if name == "is_probe":
        return values.str.lower().isin(_TRUE).fillna(False)
    if name in ("status_code", "error_code"):  # a code read from a float column: 30007.0 is 30007
        return values.str.replace(r"^(-?[0-9]+)\.0+$", r"\1", regex=True)
    if name == "currency":
        return values.str.upper()
    return values


def _is_int(text: str, base: int) -> bool:
    try:
        int(text, base)
        return True
    except ValueError:
        return False


def _filled(raw: pd.DataFrame, values: pd.Series, by: tuple, keys: dict) -> pd.Series:
    """Missing values taken from the last earlier row with the same values of ``by``."""
    group = [_text(raw, keys[header_key(h)]).fillna("") if header_key(h) in keys else
             pd.Series("", index=raw.index) for h in by]
    key = group[0].astype(str)
    for g in group[1:]:
        key = key + "\x1f" + g.astype(str)
    return values.where(values.notna(), values.groupby(key.to_numpy()).ffill())


def _mapped(values: pd.Series, spec: FieldSpec, name: str) -> pd.Series:
    """Raw words through ``map``, then the named code table, then ``else``; a present
    word none names is ``unknown`` for a status, missing otherwise."""
    from ..codes import CODE_TABLES
    from ..distinct import per_distinct

    table = {k.strip().lower(): v for k, v in spec.map.items()}
    codes = CODE_TABLES.get(spec.codes) if spec.codes else None
    fallback = spec.otherwise if spec.otherwise is not None else ("unknown" if name == "status" else None)

    def lookup(words: pd.Series) -> pd.Series:
        key = words.astype(STRING).str.strip().str.lower()
        out = key.map(table).astype(object)
        if codes is not None:
            out = out.where(out.notna(), codes.lookup(words))
        return out.where(out.notna() | key.isna(), fallback)

    return per_distinct(lookup, values)


def _reject_rules(raw: pd.DataFrame, rules, keys: dict) -> pd.Series | None:
    out = None
    for header, pattern, reason in rules:
        if header_key(header) not in keys:
            continue
        text = _text(raw, keys[header_key(header)])
        hit = text.str.contains(pattern.pattern, flags=re.IGNORECASE, regex=True).fillna(False).to_numpy(dtype=bool)
        mine = pd.Series(np.where(hit, reason, None), index=raw.index, dtype=object)
        out = mine if out is None else first_reason(out, mine)
    return out


def explode(frame: pd.DataFrame, paths) -> pd.DataFrame:
    """:func:`explode_one` for each path in turn (outer lists first)."""
    for path in ([paths] if isinstance(paths, str) else paths):
        frame = explode_one(frame, path)
    return frame


def explode_one(frame: pd.DataFrame, path: str) -> pd.DataFrame:
    """One record per element of the list at ``path`` in each record (a JSON list kept as
    text by the reader: ``recipients.items``, ``data.payload.to``), the parent's fields
    beside it and its line; an element's fields become ``<path>.<field>`` (a plain
    element is ``<path>`` itself). A record whose list is empty or missing stays one
    record."""
    keys = _columns(frame)
    column = keys.get(header_key(path))
    if column is None or frame.empty:
        return frame

    def parsed(text):
        if not isinstance(text, str) or not text.startswith("["):
            return [text]
        try:
            items = json.loads(text)
        except ValueError:
            return [text]
        return items if isinstance(items, list) and items else [None]

    lists = frame[column].astype(object).map(parsed)
    rows = frame.drop(columns=column).loc[frame.index.repeat(lists.map(len))].reset_index(drop=True)
    items = [item for value in lists for item in value]
    if any(isinstance(item, dict) for item in items):
        from ._files import _flatten

        flat = pd.DataFrame.from_records([_flatten(item, f"{path}.") if isinstance(item, dict) else {}
                                          for item in items])
        flat = flat.astype(STRING) if len(flat.columns) else flat
        rows = pd.concat([rows, flat], axis=1)
    else:
        rows[path] = pd.Series([None if v is None else str(v) for v in items], dtype=STRING)
    return rows


# --------------------------------------------------------------------------- lines


def _stage_lines(raw: pd.DataFrame, tz: str, source_tz: str | None, d: Declaration) -> pd.DataFrame:
    """Each line of a line layout staged by the first kind whose pattern it matches;
    a line no kind matches is rejected as not a record."""
    text = raw["text"].astype(STRING) if "text" in raw else pd.Series(pd.NA, index=raw.index, dtype=STRING)
    left = np.ones(len(raw), dtype=bool)
    parts = []
    for kind in d.lines:
        hit = left & line_hits(text, kind.match)
        if not hit.any():
            continue
        left &= ~hit
        rows = raw[hit]
        if kind.reject:
            part = staged(rows, tz)
            part["_reject"] = kind.reject
            parts.append(part)
            continue
        if kind.match.groups:
            groups = text[hit].str.extract(kind.match.pattern)
            groups = groups.astype(STRING).apply(lambda s: s.str.strip()).replace("", pd.NA)
        else:
            groups = pd.DataFrame(index=rows.index)
        groups["text"] = text[hit]  # the whole line, as "text"
        for group, parser in kind.parse.items():
            if group in groups:
                parsed = PARSERS[parser](groups[group])
                groups = groups.join(parsed.add_prefix(f"{group}."))
        table = pd.concat([groups, rows[["_line"]]], axis=1)
        parts.append(_stage_table(table, tz, source_tz, kind.fields, d, kind.role))
    if left.any():
        rest = staged(raw[left], tz)
        rest["_reject"] = "not a send or delivery-receipt line"
        parts.append(rest)
    return pd.concat(parts).reindex(raw.index) if parts else staged(raw, tz)


def line_hits(text: pd.Series, pattern: re.Pattern) -> np.ndarray:
    """Which lines the pattern is found in (Arrow's RE2 where it can, no Python per line)."""
    import warnings

    with warnings.catch_warnings():  # named groups are for extracting, not for this test
        warnings.simplefilter("ignore", UserWarning)
        return text.str.contains(pattern.pattern, regex=True).fillna(False).to_numpy(dtype=bool)


def _smpp_receipt(text: pd.Series) -> pd.DataFrame:
    """The fields of an SMPP receipt text (``id:… sub:… dlvrd:… submit date:… done
    date:… stat:… err:… text:…``): id, submit, done, stat, err."""
    d = "[0-9]"
    patterns = {"id": r"\bid:[ \t]*([^ \t\]]+)", "submit": rf"submit date:[ \t]*({d}{{10,12}})",
                "done": rf"done date:[ \t]*({d}{{10,12}})", "stat": r"\bstat:[ \t]*([^ \t\]]+)",
                "err": r"\berr:[ \t]*([^ \t\]]+)"}
    return pd.DataFrame({k: text.str.extract(p, expand=False).astype(STRING) for k, p in patterns.items()},
                        index=text.index)


def _brackets(text: pd.Series) -> pd.DataFrame:
    """``[name:value]`` fields (Jasmin, Kannel), Python's ``b'…'`` quotes removed."""
    found = text.str.extractall(r"\[([A-Za-z][\w\- ]*?):([^\]]*)\]")
    if found.empty:
        return pd.DataFrame(index=text.index)
    found[1] = found[1].str.strip().str.replace(r"^b?'(.*)'$", r"\1", regex=True)
    wide = found.reset_index().drop_duplicates(["level_0", 0]).pivot(index="level_0", columns=0, values=1)
    return wide.reindex(text.index).astype(STRING).replace("", pd.NA)


def _keyvalue(text: pd.Series) -> pd.DataFrame:
    """``name=value`` fields separated by commas or spaces (a Java object printed)."""
    found = text.str.extractall(r"(?:^|[\s,\[])([A-Za-z_][\w]*)=\[?([^,\]\s]*)")
    if found.empty:
        return pd.DataFrame(index=text.index)
    wide = found.reset_index().drop_duplicates(["level_0", 0]).pivot(index="level_0", columns=0, values=1)
    return wide.reindex(text.index).astype(STRING).replace("", pd.NA)


def _form(text: pd.Series) -> pd.DataFrame:
    """A url-encoded body or query string (``a=1&b=2``, or a URL with one)."""
    from .forms import form_records

    return form_records(text)


#: The parsers a line kind may run on a group.
PARSERS = {"smpp_receipt": _smpp_receipt, "brackets": _brackets, "keyvalue": _keyvalue, "form": _form}
