import re

import numpy as np
import pandas as pd
import phonenumbers
import pytest
from phonenumbers import carrier as pn_carrier
from phonenumbers import geocoder

from analysis.enrichment import (
    PROVINCES,
    enrich,
    normalize_carriers,
    normalize_provinces,
    prefix_table,
)


def _phonenumbers_says(prefix):
    """Independent lookup straight from phonenumbers, for comparison."""
    n = phonenumbers.parse(prefix + "0000", "CN")
    return pn_carrier.name_for_number(n, "en"), geocoder.description_for_number(n, "en")


def test_sampled_prefixes_agree_with_phonenumbers():
    rng = np.random.default_rng(3)
    blocks = ["134", "135", "136", "137", "138", "139", "150", "158", "130", "131", "186", "133", "153", "189", "177"]
    prefixes = [b + f"{x:04d}" for b, x in zip(rng.choice(blocks, 300), rng.integers(0, 10_000, 300), strict=True)]
    table = prefix_table(prefixes)
    for p in prefixes:
        name, where = _phonenumbers_says(p)
        row = table.loc[p]
        if p.startswith("1349"):
            assert row["carrier"] == "Satellite"
            continue
        if not name:
            assert pd.isna(row["carrier"])
            continue
        assert row["carrier"] == name
        parts = [s.strip() for s in where.split(",")]
        if parts[-1] in PROVINCES:
            assert row["province"] == parts[-1]
            assert row["city"] == (parts[0] if len(parts) > 1 else parts[-1])
        else:
            assert pd.isna(row["province"])


@pytest.mark.parametrize(
    "prefix, carrier",
    [("1700123", "Virtual (China Telecom)"), ("1703123", "Virtual (China Mobile)"), ("1704123", "Virtual (China Unicom)"),
     ("1711234", "Virtual (China Unicom)"), ("1621234", "Virtual (China Telecom)"), ("1651234", "Virtual (China Mobile)"),
     ("1671234", "Virtual (China Unicom)"), ("1921234", "China Broadnet"), ("1349123", "Satellite")],
)
def test_virtual_operators_broadnet_and_satellite(prefix, carrier):
    row = prefix_table([prefix]).loc[prefix]
    assert row["carrier"] == carrier
    assert pd.isna(row["province"])  # phonenumbers has no region for these: unknown, not guessed


def test_173_is_not_geocoded_to_beijing():
    row = prefix_table(["1731234"]).loc["1731234"]
    assert _phonenumbers_says("1731234")[1] == "Beijing"  # the known phonenumbers error
    assert row["carrier"] == "China Telecom" and pd.isna(row["province"])


def test_export_values_win_and_input_is_unchanged():
    log = pd.DataFrame({
        "phone": pd.array(["+8613800138000", "+8613912345678", "+447911123456", None], dtype="string[pyarrow]"),
        "carrier": [None, "China Unicom", None, None],  # a ported number: the export knows better
        "province": [None, None, None, None],
        "city": [None, None, None, None],
    })
    before = log.copy()
    out = enrich(log)
    pd.testing.assert_frame_equal(log, before)
    assert out["carrier"].tolist()[:2] == ["China Mobile", "China Unicom"]
    assert out["province"].tolist()[:2] == ["Beijing", "Jiangsu"]
    assert pd.isna(out.loc[2, "carrier"]) and pd.isna(out.loc[3, "carrier"])


def test_export_names_normalise():
    assert normalize_carriers(pd.Series(["移动", "CMCC", "中国联通", "电信", "Vodafone"])).tolist() == [
        "China Mobile", "China Mobile", "China Unicom", "China Telecom", "Vodafone"]
    assert normalize_provinces(pd.Series(["广东", "广东省", "广西壮族自治区", "guangdong", "Atlantis"])).tolist() == [
        "Guangdong", "Guangdong", "Guangxi", "Guangdong", "Atlantis"]


def test_enrich_equals_the_prefix_table_for_new_and_cached_prefixes(tmp_path, monkeypatch):
    """Numbers whose prefixes the cache does not hold yet are classified and found; a
    second call finds them in the loaded table. Either way each row is its prefix's row
    of :func:`prefix_table` (checked against phonenumbers above)."""
    from analysis import enrichment

    monkeypatch.setenv("SMS_LEDGER_CACHE", str(tmp_path))
    enrichment._loaded_table.cache_clear()
    try:
        rng = np.random.default_rng(5)
        first = [f"+86{p}{rng.integers(0, 10**4):04d}" for p in rng.integers(1300000, 2000000, 300)]
        more = [f"+86{p}{rng.integers(0, 10**4):04d}" for p in rng.integers(1300000, 2000000, 300)]
        odd = ["+447911123456", None, "+8612800138000", "+861380013800", "+86138001380000", "+8613800138x00",
               "+86１3800138000", "8613800138000", ""]  # not a +86 mobile of 11 ASCII digits
        for phones in (first, first + more + odd):
            log = pd.DataFrame({"phone": pd.array(phones, dtype="string[pyarrow]"),
                                "carrier": None, "province": None, "city": None})
            out = enrich(log)
            prefixes = [p[3:10] if p and re.fullmatch(r"\+861[3-9]\d{9}", p, flags=re.ASCII) else None
                        for p in phones]
            table = prefix_table([p for p in prefixes if p])
            for col in ("carrier", "province", "city"):
                want = [table.loc[p, col] if p else None for p in prefixes]
                got = out[col].astype(object).tolist()
                assert [None if pd.isna(v) else v for v in got] == [None if pd.isna(v) else v for v in want], col
    finally:
        enrichment._loaded_table.cache_clear()
