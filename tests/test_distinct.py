"""Integer codes and per-distinct steps, against the same step run on every row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.distinct import key_codes, per_distinct
from analysis.schema import STRING

_WORDS = st.one_of(st.none(), st.sampled_from(["a", "b", " B ", "成功", "DELIVRD", ""]))


def _as(dtype: str, values: list) -> pd.Series:
    s = pd.Series(values, dtype=object)
    if dtype == "arrow":
        return s.astype(STRING)
    if dtype == "category":
        return s.astype("category")
    return s


def _step(a: pd.Series, b: pd.Series, c: pd.Series) -> tuple[pd.Series, pd.Series]:
    """A row-wise step of three columns, with two results of different dtypes."""
    text = a.astype(STRING).str.strip().str.lower() + "|" + b.astype(STRING).fillna("-")
    number = pd.to_numeric(c, errors="coerce") * 2
    return text, number


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_WORDS, _WORDS, st.one_of(st.none(), st.sampled_from(["1", "2.5", "x", "1e3"]))),
                max_size=60),
       st.sampled_from(["object", "arrow", "category"]))
def test_per_distinct_equals_the_step_on_every_row(rows, dtype):
    index = pd.Index(np.arange(len(rows)) * 3 + 7)  # not a RangeIndex from 0: results must align
    a, b, c = (_as(dtype, [r[i] for r in rows]).set_axis(index) for i in range(3))
    want = _step(a, b, c)
    got = per_distinct(_step, a, b, c)
    for w, g in zip(want, got, strict=True):
        pd.testing.assert_series_equal(g, w, check_names=False)


@settings(max_examples=150, deadline=None)
@given(st.lists(_WORDS, max_size=40), st.sampled_from(["object", "arrow", "category"]))
def test_one_column_equals_the_step_on_every_row(values, dtype):
    """One column takes its own codes as the distinct rows' numbers (all missing, none
    missing, missing first or last)."""
    s = _as(dtype, values).set_axis(pd.Index(np.arange(len(values)) * 2 + 5))
    seen = []

    def step(v: pd.Series) -> pd.Series:
        seen.append(len(v))
        return v.astype(STRING).str.strip().str.upper().fillna("?")

    pd.testing.assert_series_equal(per_distinct(step, s), step(s), check_names=False)
    assert seen[0] == len(set(values))  # once per distinct value, missing counted once


def test_wide_columns_keep_their_combinations_apart():
    # four columns of 65,535 levels (codes 0 to 65,535 with the missing slot): the first
    # column's code is multiplied by 2**64, which wraps to 0 in int64 unless compacted,
    # so rows 0 and 1 (equal but for the first column) would be taken for one
    n = 1 << 16
    first = pd.Series(np.arange(n))
    rest = [pd.Series(np.concatenate([[0], np.arange(n - 1)])) for _ in range(4)]

    def joined(*c):
        return c[0].astype(str).str.cat([x.astype(str) for x in c[1:]], sep=",")

    got = per_distinct(joined, first, *rest)
    assert got.iloc[0] != got.iloc[1]
    pd.testing.assert_series_equal(got, joined(first, *rest))


def test_the_step_runs_once_per_distinct_row():
    seen = []

    def step(s):
        seen.append(len(s))
        return s
    per_distinct(step, pd.Series(["x", "y", "x", None, None, "y"]))
    assert seen == [3]


@pytest.mark.parametrize("dtype", ["object", "arrow", "category"])
def test_key_codes_take_back_the_values(dtype):
    s = _as(dtype, ["b", None, "a", "b"])
    coded = key_codes(s)
    back = [None if k < 0 else coded.levels[k] for k in coded.codes]
    assert back == ["b", None, "a", "b"]
