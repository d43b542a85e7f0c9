"""Carrier, province and city of Chinese mobiles from their number prefix.

A Chinese mobile's carrier and home region are fixed by its first seven digits (the
original allocation). Number portability (携号转网, since 2019-12) means the live carrier
can differ: *carrier by prefix is the allocating carrier*, and a carrier column in the
export always wins over it.

Each distinct 7-digit prefix is classified once with ``phonenumbers`` and kept in an
on-disk table (``$SMS_LEDGER_CACHE`` or ``~/.cache/sms-ledger``), so a million numbers
map back with one vectorised lookup. Corrections to ``phonenumbers`` (the carriers' published number ranges):

* virtual operators (170x, 171, 162, 165, 167) are labelled ``Virtual (<host>)`` --
  phonenumbers names only the host network;
* 1349 is the satellite service (no home region);
* where phonenumbers only says "China", or is known to be wrong (every 173 number
  geocodes to Beijing), the province and city are left unknown, never guessed.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc

from .atomic import write_atomic
from .distinct import pa_array, per_distinct
from .schema import CARRIERS, PROVINCES, STRING

#: Virtual-operator prefixes and their host network (the MIIT's 170/171/16x allocations).
VIRTUAL_PREFIXES = {
    **dict.fromkeys(["1700", "1701", "1702", "162"], "China Telecom"),
    **dict.fromkeys(["1703", "1705", "1706", "165"], "China Mobile"),
    **dict.fromkeys(["1704", "1707", "1708", "1709", "171", "167"], "China Unicom"),
}

#: Prefixes whose phonenumbers geocoding is known to be wrong.
UNRELIABLE_REGION_PREFIXES = ("173",)

_CARRIER_ALIASES = {
    **{zh: en for en, zh in CARRIERS.items()},
    "移动": "China Mobile", "中国移动": "China Mobile", "cmcc": "China Mobile", "mobile": "China Mobile",
    "联通": "China Unicom", "中国联通": "China Unicom", "cucc": "China Unicom", "unicom": "China Unicom",
    "电信": "China Telecom", "中国电信": "China Telecom", "ctcc": "China Telecom", "telecom": "China Telecom",
    "广电": "China Broadnet", "中国广电": "China Broadnet", "cbn": "China Broadnet",
    "虚拟运营商": "Virtual", "virtual": "Virtual",
}

_PROVINCE_SUFFIXES = r"(省|市|壮族自治区|回族自治区|维吾尔自治区|自治区|特别行政区)$"


def cache_dir() -> Path:
    """Folder of the prefix table cache (``$SMS_LEDGER_CACHE`` or ``~/.cache/sms-ledger``)."""
    root = os.environ.get("SMS_LEDGER_CACHE") or Path.home() / ".cache" / "sms-ledger"
    return Path(root)


def _classify(prefix: str) -> tuple[str | None, str | None, str | None, str | None]:
    """(carrier, province, city, city_zh) of one 7-digit prefix."""
    # large tables: loaded only to build the prefix cache
    from phonenumbers import carrier as pn_carrier
    from phonenumbers import geocoder

    number = phonenumbers.parse(prefix + "0000", "CN")
    if not phonenumbers.is_valid_number(number):
        return None, None, None, None
    host = pn_carrier.name_for_number(number, "en") or None
    virtual = next((h for p, h in VIRTUAL_PREFIXES.items() if prefix.startswith(p)), None)
    if virtual:
        name = f"Virtual ({virtual})"
    elif prefix.startswith("1349"):
        name = "Satellite"
    else:
        name = host
    if virtual or name == "Satellite" or prefix.startswith(UNRELIABLE_REGION_PREFIXES):
        return name, None, None, None
    en = geocoder.description_for_number(number, "en")
    zh = geocoder.description_for_number(number, "zh")
    parts = [p.strip() for p in en.split(",")]
    province = parts[-1] if parts and parts[-1] in PROVINCES else None
    if province is None:
        return name, None, None, None
    city = parts[0] if len(parts) > 1 else province
    city_zh = zh.removeprefix(PROVINCES[province])
    city_zh = re.sub(r"^(省|市|壮族自治区|回族自治区|维吾尔自治区|自治区)", "", city_zh)
    return name, province, city, (city_zh or PROVINCES[province])


def _cache_file() -> Path:
    return cache_dir() / f"cn-prefixes-{phonenumbers.__version__}.parquet"


@lru_cache(maxsize=1)
def _loaded_table() -> dict:
    path = _cache_file()
    if path.exists():
        try:
            frame = pd.read_parquet(path)
            return {"frame": frame.set_index("prefix")}
        except Exception:  # a corrupt cache is rebuilt, never trusted
            pass
    cols = ["carrier", "province", "city", "city_zh"]
    return {"frame": pd.DataFrame(columns=cols, index=pd.Index([], name="prefix", dtype=object))}


def prefix_table(prefixes=None) -> pd.DataFrame:
    """Carrier, province, city (and Chinese city name) per 7-digit prefix.

    Parameters
    ----------
    prefixes : iterable of str, optional
        Prefixes needed; those not yet in the cache are classified and added. Default:
        every prefix 1300000-1999999 (about 30 s the first time).

    Returns
    -------
    DataFrame indexed by ``prefix`` with columns ``carrier``, ``province``, ``city``,
    ``city_zh`` (missing where unknown).
    """
    if prefixes is None:
        prefixes = [str(p) for p in range(1300000, 2000000)]
    state = _loaded_table()
    table = state["frame"]
    wanted = pd.Index(pd.unique(pd.Series(list(prefixes), dtype=object)))
    missing = wanted.difference(table.index)
    if len(missing):
        rows = [_classify(p) for p in missing]
        new = pd.DataFrame(rows, index=pd.Index(missing, name="prefix"), columns=table.columns)
        table = pd.concat([table, new]) if len(table) else new
        state["frame"] = table
        _save(table)
    return table.loc[wanted]


def _sorted_table() -> tuple[np.ndarray, dict[str, pd.Categorical]]:
    """The loaded table's prefixes as sorted integers, and its ``carrier``, ``province``
    and ``city`` as Categoricals in that order; sorted once per process, again only when
    the table has grown."""
    state = _loaded_table()
    table = state["frame"]
    if state.get("sorted", (None,))[0] is not table:
        keys = table.index.to_numpy(dtype=np.int64)
        order = np.argsort(keys, kind="stable")
        by_col = {col: pd.Categorical(table[col].to_numpy(dtype=object)[order]) for col in ("carrier", "province", "city")}
        state["sorted"] = (table, keys[order], by_col)
    return state["sorted"][1:]


def _prefix_lookup(numbers: np.ndarray) -> dict[str, pd.Categorical]:
    """``carrier``, ``province`` and ``city`` of each prefix in ``numbers`` (7-digit
    prefixes as integers, negative for none), as Categoricals aligned with it: a binary
    search in the loaded table. Prefixes not yet in it are classified and cached first
    (:func:`prefix_table`)."""
    wanted = numbers[numbers >= 0]
    keys, by_col = _sorted_table()
    if not np.isin(wanted, keys).all():
        prefix_table(wanted.astype(str))  # classifies and caches the new ones
        keys, by_col = _sorted_table()
    at = np.searchsorted(keys, numbers).clip(max=len(keys) - 1)
    at = np.where(keys[at] == numbers, at, -1)
    return {col: pd.Categorical.from_codes(np.where(at >= 0, cat.codes[at], -1), cat.categories)
            for col, cat in by_col.items()}


def city_labels() -> dict[str, str]:
    """English city name -> Chinese, from the prefix table (for Chinese output)."""
    table = _loaded_table()["frame"]
    if table.empty:
        table = prefix_table()
    known = table.dropna(subset=["city", "city_zh"])
    return dict(zip(known["city"].astype(str), known["city_zh"].astype(str), strict=True))


def _save(table: pd.DataFrame) -> None:
    path = _cache_file()
    try:
        frame = table.astype(object).reset_index()
        write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))
    except OSError:  # a read-only home only costs speed
        pass


def normalize_carriers(raw: pd.Series) -> pd.Series:
    """Carrier names as exported (移动, CMCC, 中国联通 …) to the canonical English names.

    Unrecognised names (foreign networks) are kept as written.
    """
    return per_distinct(_carriers, raw)


def _carriers(raw: pd.Series) -> pd.Series:
    s = raw.astype(STRING).str.strip()
    mapped = s.str.lower().map({k.lower(): v for k, v in _CARRIER_ALIASES.items()})
    return mapped.fillna(s).astype(object).where(s.notna())


def normalize_provinces(raw: pd.Series) -> pd.Series:
    """Province names (广东, 广东省, 广西壮族自治区, Guangdong) to the English names.

    Unrecognised names are kept as written.
    """
    return per_distinct(_provinces, raw)


def _provinces(raw: pd.Series) -> pd.Series:
    s = raw.astype(STRING).str.strip()
    short = s.str.replace(_PROVINCE_SUFFIXES, "", regex=True)
    by_zh = {zh: en for en, zh in PROVINCES.items()}
    by_en = {en.lower(): en for en in PROVINCES}
    mapped = short.map(by_zh).fillna(s.str.lower().map(by_en))
    return mapped.fillna(s).astype(object).where(s.notna())


def enrich(log: pd.DataFrame) -> pd.DataFrame:
    """Fill ``carrier``, ``province`` and ``city`` of Chinese mobiles from the prefix.

    Values already present (from the export) win; only missing ones are filled.

    Returns
    -------
    DataFrame
        A copy of ``log`` with those three columns filled where the prefix tells.
    """
    out = log.copy(deep=False)  # copy-on-write: the caller's frame is never changed
    cols = ["carrier", "province", "city"]
    absent = {col: log[col].isna().to_numpy(dtype=bool) if col in log else np.ones(len(log), dtype=bool)
              for col in cols}
    text = pa_array(log["phone"].astype(STRING))
    # a Chinese mobile (+861[3-9] and nine more digits) missing one of the three
    mobile = pc.fill_null(pc.and_kleene(
        pc.and_kleene(pc.starts_with(text, "+861"), pc.equal(pc.utf8_length(text), 14)),
        pc.and_kleene(pc.ascii_is_decimal(pc.utf8_slice_codeunits(text, 1)),
                      pc.greater_equal(pc.utf8_slice_codeunits(text, 4, 5), "3"))), False)
    mobile = np.logical_or.reduce(list(absent.values())) & mobile.to_numpy(zero_copy_only=False)
    if not mobile.any():  # nothing to fill
        return out
    # prefixes as integers: hashed to their distinct values, one positional take, no
    # per-row Python
    number = np.full(len(log), -1, dtype=np.int64)
    digits = pc.utf8_slice_codeunits(text.filter(mobile), 3, 10)  # the 7-digit prefix
    number[mobile] = pc.cast(digits, pa.int64()).to_numpy()
    codes, uniq = pd.factorize(number)
    codes = np.where(number >= 0, codes, -1)
    looked_up = _prefix_lookup(uniq)
    for col in cols:
        # categorical result: codes per distinct prefix, taken per row
        per_prefix = looked_up[col]
        row_codes = np.where(codes >= 0, per_prefix.codes[codes.clip(min=0)], -1)
        looked = pd.Series(pd.Categorical.from_codes(row_codes, per_prefix.categories), index=log.index)
        fill = absent[col] & (row_codes >= 0)
        if absent[col].all():
            out[col] = looked
        elif fill.any():
            out[col] = log[col].astype(object).where(~fill, looked.astype(object))
    return out
