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


def write_store(log: pd.DataFrame, root: str | Path, *, replace: list[Path] | None = None) -> Path:
    """Replace the store under ``root`` with ``log`` (atomically). Returns its folder.

    With ``replace`` (the partitions that were read and merged into ``log``,
    :attr:`analysis.LoadResult.partitions`), only those partitions and the ones ``log``
    adds are written; the others stay as they are. Each partition is swapped in whole.
    """
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
    if replace is None or not target.exists():
        if target.exists():
            target.rename(old)
        tmp.rename(target)
    else:  # swap the partitions read for their merged rows, add the new ones
        folders = {p.parent.relative_to(target) for p in replace}
        folders |= {p.relative_to(tmp) for p in tmp.glob("vendor=*/month=*")}
        for folder in sorted(folders):
            if (target / folder).exists():
                (old / folder).parent.mkdir(parents=True, exist_ok=True)
                (target / folder).rename(old / folder)
            if (tmp / folder).exists():
                (target / folder).parent.mkdir(parents=True, exist_ok=True)
                (tmp / folder).rename(target / folder)
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    return target


def store_partitions(store: str | Path) -> list[Path]:
    """The Parquet files of a store folder (``…/send_log``), in vendor and month order."""
    return sorted(Path(store).glob("vendor=*/month=*/*.parquet"))


def partition_key(partition: str | Path) -> tuple[str, str]:
    """(vendor, month) of a partition file, from its folders."""
    partition = Path(partition)
    return partition.parent.parent.name.split("=", 1)[1], partition.parent.name.split("=", 1)[1]


def partitions_for(store: str | Path, staged: pd.DataFrame) -> list[Path]:
    """The partitions of ``store`` that rows about to be merged can touch: the same vendor
    in the months of their submit and receipt times (and the months either side), and
    wherever a receipt without a submit time finds its message id."""
    vendors = set(staged["vendor"].dropna().astype(str))
    months = set()
    for col in ("submit_time", "done_time"):
        if col in staged:
            times = pd.to_datetime(staged[col]).dropna()
            for m in times.dt.strftime("%Y-%m").unique():
                month = pd.Period(m, "M")
                months |= {str(month - 1), str(month), str(month + 1)}
    found = [p for p in store_partitions(store) if partition_key(p)[0] in vendors]
    chosen = [p for p in found if partition_key(p)[1] in months]
    submitted = staged["submit_time"].notna() if "submit_time" in staged else False
    orphans = staged["message_id"].notna() & ~submitted if "message_id" in staged else None
    if orphans is not None and orphans.any():
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        ids = pa.array(staged.loc[orphans, "message_id"].astype(str).unique())
        for p in (p for p in found if p not in chosen):
            column = pq.read_table(p, columns=["message_id"]).column(0)
            if pc.any(pc.is_in(column, value_set=ids.cast(column.type))).as_py():
                chosen.append(p)
    return sorted(chosen)


def read_partitions(store: str | Path, files: list[Path]):
    """Some partitions of a store as one raw table (:class:`analysis.readers.RawFile`)."""
    from .readers._files import RawFile

    frame = ds.dataset([str(f) for f in files], format="parquet", partitioning="hive",
                       partition_base_dir=str(store)).to_table().to_pandas()
    frame["_line"] = range(1, len(frame) + 1)
    return RawFile(Path(store), frame, "parquet")


def read_store(root: str | Path, *, tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Read the whole store under ``root`` back as a canonical send log."""
    path = store_path(root)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no send-log store here (run `sms-ledger ingest` first)")
    frame = ds.dataset(path, format="parquet", partitioning="hive").to_table().to_pandas()
    frame = frame[[c for c in COLUMNS if c in frame]]
    log = conform(frame, tz=tz)
    return log.sort_values(["submit_time", "vendor", "message_id"], kind="stable").reset_index(drop=True)
