"""What a layout is, and the helpers its staging uses.

A :class:`Layout` is what the layout language declares
(:mod:`analysis.readers.language`, built in under ``analysis/layouts/`` or a user's
``--mapping``): the fields it reads, each with the header spellings that name it
(English and Chinese, the vendor's console and API spellings, third-party exporters'),
the fields whose presence identifies it, and its staging. The staging turns a raw table
(plus a ``_line`` column) into a *staged* table: canonical column names and statuses,
parsed timestamps, raw phone strings, and a ``_reject`` reason where a value could not
be read. The loader (:mod:`analysis.readers._assemble`) finishes every layout the same
way: phones, failure reasons, segments, enrichment, merging receipts into submissions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa

from ..distinct import per_distinct
from ..schema import STRING


def header_key(header) -> str:
    """A header as compared with a layout's spellings: lower case, without a byte-order
    mark, spaces, underscores or dashes (``PhoneNum`` = ``phone_num`` = ``Phone Num``)."""
    return re.sub(r"[\s_\-]+", "", str(header).lstrip("\ufeff").strip().lower())


@dataclass(frozen=True)
class Layout:
    """One export layout.

    Attributes
    ----------
    name : str
        Layout name, e.g. ``aliyun_report``; ``vendor=`` accepts it or the vendor.
    vendor : str
        Vendor written into the ``vendor`` column.
    fields : mapping of str to tuple of str
        Each field the layout reads, with the header spellings that name it (compared
        through :func:`header_key`). The field name itself is always accepted.
    required : frozenset of str
        Fields whose presence identifies the layout.
    stage : callable
        ``stage(raw, tz, source_tz) -> DataFrame`` of staged columns, ``raw`` renamed to
        the field names.
    title : str
        What a user holds, for messages and the README (``Aliyun send details …``).
    intl_phones : bool
        Bare digit strings are international numbers without ``+``.
    source_tz : str, optional
        Zone of the layout's naive timestamps when the vendor fixes it (``UTC`` for
        Twilio); None: the SMSC's or the log's zone (``source_tz=`` of the loader).
    id_per_phone : bool
        Its message id names a request, which a batch shares between phones (Aliyun's
        ``OutId`` / ``biz_id``): the message is the id and the phone.
    region : str
        Region of numbers written without their country code (``CN``).
    declaration : Declaration, optional
        What the layout language said (:mod:`analysis.readers.language`): its stage
        reads the table as it came, headers matched by the declaration itself.
    """

    name: str
    vendor: str
    fields: Mapping[str, tuple[str, ...]]
    required: frozenset[str]
    stage: Callable[..., pd.DataFrame]
    title: str = ""
    intl_phones: bool = False
    source_tz: str | None = None
    id_per_phone: bool = False
    region: str = "CN"
    declaration: object = field(default=None, repr=False, compare=False)
    _keys: dict = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        keys = {}
        for name, spellings in self.fields.items():  # a declared layout's field names are no spellings
            for s in (spellings if self.declaration is not None else (name, *spellings)):
                keys.setdefault(header_key(s), name)
        object.__setattr__(self, "_keys", keys)

    def header_map(self, headers: Iterable) -> dict | None:
        """``{raw header: field}`` when every required field is among ``headers``, else
        None. The first header naming a field wins."""
        found: dict = {}
        taken: set = set()
        for h in headers:
            name = self._keys.get(header_key(h))
            if name is not None and name not in taken:
                found[h] = name
                taken.add(name)
        return found if self.required <= taken else None

    def matches(self, headers: Iterable) -> bool:
        return self.header_map(headers) is not None

    def known(self, headers: Iterable) -> int:
        """How many of ``headers`` the layout knows (any field's spelling)."""
        return sum(header_key(h) in self._keys for h in headers)

    def rename(self, raw: pd.DataFrame) -> pd.DataFrame:
        """``raw`` with the headers it recognises renamed to its field names (a declared
        layout reads the table as it came)."""
        if self.declaration is not None:
            return raw
        mapping = self.header_map([c for c in raw.columns if c != "_line"]) or {}
        return raw.rename(columns=mapping)[[*mapping.values(), "_line"]]


def col(raw: pd.DataFrame, name: str) -> pd.Series:
    """Column ``name`` of the raw table as strings, all-missing when absent (a
    categorical column of a Parquet export: its categories cleaned once, then taken by
    code, a tenth of the time of casting every value)."""
    if name not in raw:
        return pd.Series(pd.NA, index=raw.index, dtype=STRING)
    s = raw[name]
    if pd.api.types.is_datetime64_any_dtype(s):
        return s
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = s.cat.codes.to_numpy()
        words = pa.array(_cleaned(pd.Series(s.cat.categories)).array)
        return pd.Series(pd.arrays.ArrowStringArray(words.take(pa.array(codes, mask=codes < 0))), index=s.index,
                         name=s.name)
    return _cleaned(s)


def _cleaned(s: pd.Series) -> pd.Series:
    return s.astype(STRING).str.strip().replace("", pd.NA)


def first_reason(*reasons: pd.Series) -> pd.Series:
    """Row-wise first non-missing reason."""
    out = reasons[0].astype(object)
    for r in reasons[1:]:
        out = out.where(out.notna(), r.astype(object))
    return out


def staged(raw: pd.DataFrame, tz: str, *, time_source: str = "submission", **columns) -> pd.DataFrame:
    """A staged frame of ``columns`` as given, with ``time_source`` (what the
    ``submit_time`` of these records is, :data:`analysis.schema.TIME_SOURCES`), no
    reject reason yet, and the rows' ``_line``."""
    out = pd.DataFrame(index=raw.index)
    for name, values in columns.items():
        out[name] = values
    out["time_source"] = time_source
    out["_reject"] = pd.Series(pd.NA, index=raw.index, dtype=object)
    out["_line"] = raw["_line"].to_numpy()
    return out


def to_number(s: pd.Series) -> pd.Series:
    """Numbers from strings; unreadable values become missing."""
    return per_distinct(lambda v: pd.to_numeric(v, errors="coerce"), s)
