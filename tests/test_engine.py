"""Engines: streaming the store, and Dask on a local distributed cluster, give the pandas numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import demo_files

from analysis.cli import ingest
from analysis.engine import ledger_source, read_partition, store_partitions
from analysis.ledgers import ledgers_of, weekly_ledgers
from analysis.schema import COLUMNS

EVENTS = ("clicks.csv", "replies.csv", "complaints.csv", "bills.csv")


@pytest.fixture(scope="module")
def store(demo, tmp_path_factory):
    out = tmp_path_factory.mktemp("interim")
    ingest([Path(f) for f in demo_files(demo)], out)
    folder = Path(demo["files"]["bills"]).parent
    return [out, *[folder / e for e in EVENTS]]


def _ledgers(source, week):
    return ledgers_of(source, [week])[week]


def test_partitions_read_back_the_store(store):
    parts = store_partitions(store[0] / "send_log")
    assert len(parts) >= 8  # 4 vendors × 2 months
    assert {p.vendor for p in parts} == {"aliyun", "gateway", "tencent", "twilio"}
    frame = read_partition(parts[0])
    assert set(frame["vendor"]) == {parts[0].vendor}


@pytest.mark.slow
def test_dask_on_a_local_cluster_equals_pandas(store):
    pandas_ = _ledgers(ledger_source(store, engine="pandas"), "2025-W19")
    dask_ = _ledgers(ledger_source(store, engine="dask"), "2025-W19")
    for key, frame in pandas_.items():
        pd.testing.assert_frame_equal(dask_[key], frame, obj=key)


@pytest.mark.slow
def test_worker_processes_equal_this_process(store):
    one = _ledgers(ledger_source(store, workers=1), "2025-W19")
    two = _ledgers(ledger_source(store, workers=2), "2025-W19")
    for key, frame in one.items():
        pd.testing.assert_frame_equal(two[key], frame, obj=key)


def test_streaming_the_store_agrees_with_the_log_in_memory(store, demo_inputs):
    streamed = _ledgers(ledger_source(store), "2025-W19")
    memory = weekly_ledgers(demo_inputs.log, "2025-W19", bill=demo_inputs.bill)
    keys = ["week", "vendor", "carrier"]
    a = streamed["quality"].set_index(keys)
    b = memory["quality"].set_index(keys).loc[a.index]
    for col in ("submitted", "delivered", "originals", "complaints"):  # additive and joined by id: identical
        assert (a[col] == b[col]).all(), col
    for col in ("latency_p50_s", "latency_p95_s", "within_10min_rate"):
        pd.testing.assert_series_equal(a[col], b[col], check_dtype=False)
    # resend chains and reply joins stop at partition edges (documented): nearly identical
    assert (a["first_attempt_rate"] - b["first_attempt_rate"]).abs().max() < 0.002
    assert (a["unsubscribes"] - b["unsubscribes"]).abs().max() <= 2
    assert streamed["failures"]["failed"].sum() == memory["failures"]["failed"].sum()
    assert len(streamed["repeat_failures"]) == len(memory["repeat_failures"])


def test_chains_by_phone_key_equal_chains_by_phone_text(store):
    """The store path finds resend chains by ``phone_key`` and reads the numbers' text
    only near the asked week: every cube equals the one made from each partition's
    numbers as text."""
    from analysis.cubes import KEYS, merge_cubes, partial_cubes

    week = "2025-W19"
    parts = store_partitions(store[0] / "send_log")
    streamed = ledger_source([store[0]], weeks=[week], workers=1).cubes
    texts = merge_cubes([partial_cubes(read_partition(p), weeks=[week]) for p in parts])  # conform drops the key
    assert "phone_key" not in read_partition(parts[0])
    def rows(frame):  # the same rows, in whatever order their categories gave
        keys = KEYS.get(name, list(frame.columns))
        return frame.astype({k: object for k in keys}).sort_values(keys, ignore_index=True)

    assert {"quality", "latency", "daily", "failures", "failed"} <= set(streamed.made)
    for name in streamed.made:  # what the ledgers read (the send-hour sums are not)
        pd.testing.assert_frame_equal(rows(getattr(streamed, name)), rows(getattr(texts, name)), obj=name)
    assert streamed.quality["originals"].sum() < streamed.quality["submitted"].sum()  # there are resends


def test_exports_are_streamed_as_their_ingested_store(store, demo):
    """Exports handed to the ledgers are ingested into a scratch store and streamed: the
    ledgers equal those of the store ``sms-ledger ingest`` wrote from the same files."""
    exports = [Path(f) for f in demo_files(demo)] + store[1:]
    direct = ledger_source(exports, workers=1)
    ingested = _ledgers(ledger_source(store, workers=1), "2025-W19")
    for key, frame in _ledgers(direct, "2025-W19").items():
        pd.testing.assert_frame_equal(frame, ingested[key], obj=key)
    logs = direct.summary[direct.summary["file"].isin(demo_files(demo))]  # each export accounted for, as ingested
    assert len(logs) == len(demo_files(demo)) and logs["loaded"].gt(0).all()
    assert (logs["rows_read"] == logs["loaded"] + logs["rejected"] + logs["duplicates"]).all()


@pytest.mark.slow
def test_exports_on_dask_equal_pandas(demo):
    folder = Path(demo["files"]["bills"]).parent
    pandas_ = _ledgers(ledger_source([folder]), "2025-W19")
    dask_ = _ledgers(ledger_source([folder], engine="dask"), "2025-W19")
    for key, frame in pandas_.items():
        pd.testing.assert_frame_equal(dask_[key], frame, obj=key)


def test_dask_reads_exports_or_a_store_not_both(store, demo):
    with pytest.raises(ValueError, match="ingest the exports first"):
        ledger_source([store[0], *demo_files(demo)], engine="dask")


def test_failed_messages_kept_for_the_asked_week_only(store):
    """The store pass keeps the detail (failed messages, latency, templates, failures) of
    the asked week only; the ledgers of that week are the same, and another week's are
    refused."""
    week = "2025-W19"
    narrow = ledger_source(store, weeks=[week])
    assert set(narrow.cubes.failed["week"]) == {week}
    full = ledger_source(store)
    assert len(full.cubes.failed) > len(narrow.cubes.failed)
    a, b = _ledgers(narrow, week), _ledgers(full, week)
    for key, frame in b.items():
        pd.testing.assert_frame_equal(a[key], frame, obj=key)
    assert set(narrow.cubes.latency["week"]) == set(narrow.cubes.content["week"]) == {week}
    assert len(set(full.cubes.latency["week"])) > 1
    with pytest.raises(ValueError, match="keeps the detail of week 2025-W19 only"):
        ledgers_of(narrow, ["2025-W18"])


@pytest.mark.slow
def test_ingest_on_a_local_dask_cluster_equals_one_process(fixtures, tmp_path, monkeypatch):
    """Many files read and staged on a LocalCluster, one file per task (so submissions
    and the receipts that complete them are staged apart), give the single-process
    store, summary and rejects, row for row; a folder member that is not an export is
    skipped in both."""
    from analysis import engine, read_store
    from analysis.cli import main

    folder = tmp_path / "exports"
    folder.mkdir()
    for name in ["canonical.csv", "tencent_submissions.csv", "tencent_pull.csv", "gateway.log", "aliyun_report.csv",
                 "aliyun_details_gbk.csv", "vonage_submissions.csv", "vonage_dlr.csv", "twilio_bulk.jsonl.gz"]:
        (folder / name).write_bytes((fixtures / name).read_bytes())
    for i in range(12):  # a dozen daily exports
        (folder / f"day{i:02d}.csv").write_text("message_id,phone,submit_time,status\n" + "".join(
            f"d{i}-{k},1380013{i:02d}{k:02d},2025-05-{6 + i:02d} 09:{k:02d}:00,delivered\n" for k in range(20)),
            encoding="utf-8")
    (folder / "notes.csv").write_text("what,why\nnothing,here\n", encoding="utf-8")
    monkeypatch.setattr(engine, "CHUNK_BYTES", 1)  # every file its own task
    one, cluster = tmp_path / "one", tmp_path / "cluster"
    assert main(["ingest", str(folder), "--out", str(one)]) == 0
    assert main(["ingest", str(folder), "--out", str(cluster), "--engine", "dask"]) == 0
    pd.testing.assert_frame_equal(read_store(cluster), read_store(one))
    for name in ("ingest-summary.csv", "rejects.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(cluster / name), pd.read_csv(one / name))
    summary = pd.read_csv(one / "ingest-summary.csv")
    assert len(summary) == 22 and (summary.loaded + summary.rejected + summary.duplicates == summary.rows_read).all()
    assert summary.set_index("file").loc[str(folder / "notes.csv"), "layout"] == "skipped"


def test_streamed_ledgers_equal_the_in_memory_ones_with_millisecond_receipts(demo_inputs, tmp_path):
    """Receipt times to the millisecond, through the store and streamed partition by
    partition, give the in-memory week's ledgers column by column, the latency
    percentiles included (one month, so no resend chain crosses a partition edge)."""
    from analysis.store import write_store

    log = demo_inputs.log.drop(columns=[c for c in demo_inputs.log.columns if c not in COLUMNS])
    log = log[log["submit_time"].dt.strftime("%Y-%m").eq("2025-05").to_numpy()].reset_index(drop=True)
    log["done_time"] = log["done_time"] + pd.to_timedelta(np.random.default_rng(5).integers(1, 1000, len(log)), unit="ms")
    write_store(log, tmp_path)
    week = "2025-W19"
    streamed = _ledgers(ledger_source([tmp_path], workers=1), week)
    memory = weekly_ledgers(log, week)
    assert (memory["quality"]["latency_p50_s"] % 1 != 0).any()  # the milliseconds reach the percentiles
    for sheet in ("quality", "trend", "regions", "failures", "content", "cost", "alerts"):
        pd.testing.assert_frame_equal(streamed[sheet], memory[sheet], check_dtype=False, check_categorical=False,
                                      obj=sheet)
