"""The ingested store: the canonical send log as Parquet partitioned by vendor and month.

Layout: ``<root>/send_log/vendor=<v>/month=<YYYY-MM>/part-0.parquet``. Writes are
atomic: the new store is written beside the old one and swapped in, so a failure never
leaves a half-written store.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from .schema import COLUMNS, DEFAULT_TZ, conform

STORE_DIR = "send_log"


def store_path(root: str | Path) -> Path:
    """Folder of the send-log store under ``root`` (e.g. ``data/interim``)."""
    return Path(root) / STORE_DIR


def write_store(log: pd.DataFrame, root: str | Path) -> Path:
    """Replace the store under ``root`` with ``log`` (atomically). Returns its folder."""
    target = store_path(root)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{STORE_DIR}.{uuid.uuid4().hex}.tmp")
    frame = log.assign(
        month=log["submit_time"].dt.strftime("%Y-%m").astype("string[pyarrow]"),
        vendor=log["vendor"].astype("string[pyarrow]"),
    )
    table = pa.Table.from_pandas(frame, preserve_index=False)
    ds.write_dataset(
        table,
        tmp,
        format="parquet",
        partitioning=ds.partitioning(pa.schema([("vendor", pa.string()), ("month", pa.string())]), flavor="hive"),
        basename_template="part-{i}.parquet",
        existing_data_behavior="error",
        # row groups of at least 128k rows: few per partition, read with little overhead
        min_rows_per_group=1 << 17,
        max_rows_per_group=1 << 20,
    )
    old = target.with_name(f".{STORE_DIR}.{uuid.uuid4().hex}.old")
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def read_store(root: str | Path, *, tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Read the whole store under ``root`` back as a canonical send log."""
    path = store_path(root)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no send-log store here (run `sms-ledger ingest` first)")
    frame = ds.dataset(path, format="parquet", partitioning="hive").to_table().to_pandas()
    frame = frame[[c for c in COLUMNS if c in frame]]
    log = conform(frame, tz=tz)
    return log.sort_values(["submit_time", "vendor", "message_id"], kind="stable").reset_index(drop=True)
