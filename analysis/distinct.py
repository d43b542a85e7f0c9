"""Integer codes of a column's distinct values, and row-wise steps run once per
distinct value (:func:`per_distinct`): the cost of normalising an export is that of
its distinct codes, statuses, names and numbers, not of its rows. The lowest layer:
numpy, pandas and pyarrow only.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd


class Coded(NamedTuple):
    """A key column as integer ``codes`` (-1 for missing) into its distinct ``levels``."""

    codes: np.ndarray
    levels: pd.Index

    def take(self, rows) -> Coded:
        """The rows selected by a mask or positions."""
        return Coded(self.codes[rows], self.levels)


def key_codes(s: pd.Series) -> Coded:
    """A key column as :class:`Coded`, without building Python strings per row (Arrow
    text is hashed by pyarrow)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes, uniques = s.cat.codes.to_numpy(), s.cat.categories
    elif isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow" and len(s):
        import pyarrow.compute as pc

        encoded = pc.dictionary_encode(pa_array(s))
        codes = encoded.indices.fill_null(-1).to_numpy().astype(np.int64)
        uniques = pd.Index(encoded.dictionary.to_pandas(types_mapper=lambda _: s.dtype))
    else:
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
        codes = np.asarray(codes, dtype=np.int64)
    return Coded(codes, pd.Index(uniques))


def per_distinct(fn, *columns: pd.Series):
    """``fn(*columns)`` computed once per distinct row of the columns and taken back to
    every row: a row-wise step at the cost of its distinct values (codes, statuses,
    carrier names and numbers repeat in every export).

    ``fn`` takes Series (the distinct rows, missing values included, on a fresh
    index) and returns a Series or a tuple of them aligned with its input; the result
    has the same shape, aligned with ``columns``.

    Examples
    --------
    >>> per_distinct(lambda v: v.str.upper(), pd.Series(["a", "b", "a"])).tolist()
    ['A', 'B', 'A']
    """
    index = columns[0].index
    if len(columns) == 1 and not isinstance(columns[0].dtype, pd.CategoricalDtype):
        # one column's codes already number its values in the order they first appear
        inverse = key_codes(columns[0]).codes
        first = _first_of(inverse)
        if (inverse < 0).any():  # missing values: a code of their own, last
            first = np.append(first, np.argmax(inverse < 0))
            inverse = np.where(inverse < 0, len(first) - 1, inverse)
    else:
        inverse = combine_codes(*(key_codes(c).codes for c in columns))
        first = _first_of(inverse)
    out = fn(*(c.iloc[first].reset_index(drop=True) for c in columns))

    def back(r: pd.Series) -> pd.Series:
        return r.iloc[inverse].set_axis(index)

    return tuple(back(r) for r in out) if isinstance(out, tuple) else back(out)


def combine_codes(*codes: np.ndarray) -> np.ndarray:
    """One code per distinct row of several code columns (each -1 for missing, a value of
    its own), numbered in the order the rows first appear.

    Examples
    --------
    >>> combine_codes(np.array([0, 0, 1, 0]), np.array([2, -1, 2, 2])).tolist()
    [0, 1, 2, 0]
    """
    combined = np.zeros(len(codes[0]), dtype=np.int64)
    for c in codes:
        width = int(c.max(initial=-1)) + 2
        if combined.max(initial=0) >= (1 << 62) // width:  # keep the mixed-radix code in int64
            combined = pd.factorize(combined)[0].astype(np.int64)
        combined = combined * width + (c + 1)
    return pd.factorize(combined)[0].astype(np.int64)  # hashed; in the order they first appear


def _first_of(codes: np.ndarray) -> np.ndarray:
    """Where each code first appears, for codes numbered in the order they first appear
    (missing ones, -1, are not counted)."""
    before = np.maximum.accumulate(np.concatenate([[-1], codes[:-1]]))
    return np.flatnonzero(codes > before)


def pa_array(s: pd.Series):
    """The pyarrow array behind an Arrow-backed Series (one chunk)."""
    import pyarrow as pa

    arr = pa.array(s.array)
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
