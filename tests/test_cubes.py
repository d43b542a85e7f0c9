"""Partial aggregates: merging the partitions' cubes equals the whole's."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.cubes import KEYS, merge_cubes, partial_cubes


def _rows(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.astype({k: object for k in keys}).sort_values(keys, na_position="last", ignore_index=True)


@settings(max_examples=8, deadline=None)
@given(parts=st.integers(2, 6), seed=st.integers(0, 2**32 - 1))
def test_any_split_keeping_a_phones_messages_together_merges_to_the_whole(demo_inputs, parts, seed):
    """Split the log at random into partitions, each phone's messages through a vendor in
    one (a resend chain is never cut, as in the store's vendor partitions): every cube,
    merged, equals the whole's, the chains' counts and latencies included."""
    log = demo_inputs.log.drop(columns=["unsubscribed"])  # replies join by phone across vendors
    group = log.groupby([log["vendor"].astype(str), log["phone"].astype(str)], sort=False).ngroup().to_numpy()
    where = np.random.default_rng(seed).integers(0, parts, group.max() + 1)[group]
    whole = partial_cubes(log)
    merged = merge_cubes([partial_cubes(log[where == i].reset_index(drop=True)) for i in range(parts)
                          if (where == i).any()])
    for name, keys in KEYS.items():
        pd.testing.assert_frame_equal(_rows(getattr(merged, name), keys)[getattr(whole, name).columns],
                                      _rows(getattr(whole, name), keys), check_dtype=False, obj=name)


@settings(max_examples=8, deadline=None)
@given(parts=st.integers(2, 6), seed=st.integers(0, 2**32 - 1))
def test_any_split_at_all_merges_the_per_message_counts(demo_inputs, parts, seed):
    """Split the rows at random, resend chains cut anywhere: what counts each message on
    its own (submitted, delivered, receipts, content blocks, segments, fees, failures,
    templates, each attempt's latency) still merges to the whole's."""
    log = demo_inputs.log.drop(columns=["unsubscribed"])
    where = np.random.default_rng(seed).integers(0, parts, len(log))
    whole = partial_cubes(log)
    merged = merge_cubes([partial_cubes(log[where == i].reset_index(drop=True)) for i in range(parts)
                          if (where == i).any()])
    own = ["submitted", "delivered", "final", "accepted", "blocked", "segments_submitted", "segments_delivered",
           "fee", "fee_n", "attempt_timed", "attempt_fast"]
    for name in ("daily", "quality", "billing", "cost", "failures", "content", "texts"):
        keys, frame = KEYS[name], getattr(whole, name)
        cols = [c for c in frame.columns if c not in keys and (c in own or name in ("failures", "content", "texts"))]
        pd.testing.assert_frame_equal(_rows(getattr(merged, name), keys)[keys + cols], _rows(frame, keys)[keys + cols],
                                      check_dtype=False, obj=name)
    attempt = [c.latency[c.latency["kind"].eq("attempt")] for c in (merged, whole)]
    pd.testing.assert_frame_equal(*(_rows(a, KEYS["latency"]) for a in attempt), check_dtype=False, obj="latency")


def test_merging_partitions_equals_the_whole(demo_inputs):
    log = demo_inputs.log.drop(columns=["unsubscribed"])  # replies join by phone across vendors
    whole = partial_cubes(log)
    parts = merge_cubes([partial_cubes(part) for _, part in log.groupby(log["vendor"].astype(str))])
    for name, keys in KEYS.items():
        a = getattr(whole, name).sort_values(keys, na_position="last").reset_index(drop=True)
        b = getattr(parts, name).sort_values(keys, na_position="last").reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b[a.columns], check_dtype=False, obj=name)
    assert len(whole.failed) == len(parts.failed)
    assert whole.quality["submitted"].sum() == len(log)
