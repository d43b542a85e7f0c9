"""The ingested store: the canonical send log as a Delta Lake table, partitioned by
vendor and month (``<root>/send_log``, read and written with ``deltalake``).

What it guarantees:

* **atomic**: an ingest commits one new table version or nothing; a run killed at any
  moment leaves the table at its last version, and the files an interrupted run wrote
  but never committed are removed by the next write;
* **concurrent-safe**: writers take the store's lock (``filelock``; the operating system
  releases it when a process dies), so two ingests at once run one after the other and
  both land;
* **history and undo**: every ingest is a version with its files and row counts
  (:func:`store_history`); :func:`restore_store` goes back to any version;
* **any vendor name**: partition values live in the table's log, not in folder names,
  so ``my gw``, ``a/b`` or ``阿里`` come back as they went in.

A store written by earlier versions of this package (plain Parquet folders) is converted
on first use, losing nothing (:func:`migrate_store`). The table stays readable by Dask,
Polars, DuckDB, Spark or Trino.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote

import pandas as pd
import pyarrow as pa

from .atomic import disk_full, new_scratch, no_room
from .schema import COLUMNS, DEFAULT_TZ, conform, sort_log

STORE_DIR = "send_log"
PARTITION_BY = ["vendor", "month"]
#: The table's log keeps min/max statistics of these columns only (to skip files), never
#: of phone numbers, message ids or text: the log is plain JSON, often copied around.
TABLE_CONFIGURATION = {"delta.dataSkippingStatsColumns": "submit_time,done_time,status,attempt,carrier,province,"
                                                          "template_id,category"}
#: How the columns with a value per message are encoded: times and phone keys as deltas,
#: ids and numbers plain (a dictionary of nearly unique values only slows reading:
#: measured on the 10M benchmark, reading a partition took a third less time and disk).
_UNIQUE = {"submit_time": "DELTA_BINARY_PACKED", "done_time": "DELTA_BINARY_PACKED",
           "phone_key": "DELTA_BINARY_PACKED", "phone": None, "message_id": None}


def _writer_properties():
    from deltalake import ColumnProperties, WriterProperties

    return WriterProperties(compression="SNAPPY", column_properties={
        c: ColumnProperties(dictionary_enabled=False, encoding=e) for c, e in _UNIQUE.items()})


#: Seconds an ingest waits for another one to finish before it gives up.
LOCK_TIMEOUT = 3600


class StorePart(NamedTuple):
    """One data file of the store, the partition it belongs to and its rows (from the
    table's log)."""

    path: str
    vendor: str
    month: str
    rows: int = 0


def store_path(root: str | Path) -> Path:
    """Folder of the send-log store under ``root`` (e.g. ``data/interim``)."""
    return Path(root) / STORE_DIR


def _store(path: str | Path) -> Path:
    """The table folder, whether given the root (``data/interim``) or the table itself."""
    path = Path(path)
    return path if path.name == STORE_DIR or (path / "_delta_log").exists() else store_path(path)


_LOCKS: dict[str, object] = {}


@contextmanager
def scratch_folder(root: str | Path, kind: str) -> Iterator[Path]:
    """A scratch folder beside the store (on its file system, so its files can be moved
    in; :func:`new_scratch`), removed when done."""
    root = Path(root)
    folder = new_scratch(root, kind)
    try:
        yield folder
    except Exception as exc:  # writing the scratch or the store's files (delta-rs's errors are no OSError)
        if no_room(exc, root):
            raise disk_full(store_path(root)) from None
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def store_lock(root: str | Path, *, timeout: float = LOCK_TIMEOUT):
    """Hold the store's write lock (``<root>/.send_log.lock``); one writer at a time."""
    from filelock import FileLock, Timeout

    table = _store(root)
    table.parent.mkdir(parents=True, exist_ok=True)
    path = str((table.parent / f".{STORE_DIR}.lock").resolve())
    # one lock object per store: it counts re-entries (an ingest holds it and then
    # commits through write_store), where a second object on the same file would wait
    lock = _LOCKS.setdefault(path, FileLock(path))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise TimeoutError(f"{table}: another ingest has held the store for {timeout:.0f} s; "
                           "try again when it has finished") from None
    try:
        yield table
    finally:
        lock.release()


def _table(store: Path, *, version: int | None = None, checked: bool = True):
    """The Delta table (at ``version``, default the latest), converting a plain-Parquet
    store of an earlier version first; ``None`` where there is none. Unless ``checked``
    is false, the table is read only when whole (:func:`_check`): a damaged log or data
    file is a :class:`StoreError`, never fewer or more rows."""
    from deltalake import DeltaTable

    def legacy() -> bool:
        return not (store / "_delta_log").exists() and (store.exists()
                                                        or store.with_name(f".{STORE_DIR}.migrating").exists())

    if legacy():
        with store_lock(store):  # one process converts; another waits, then finds the table
            if legacy():
                migrate_store(store)
    if not (store / "_delta_log").exists():
        return None
    commits = read_log(store)
    if checked:
        damaged = [c for c in commits if c.problem and c.needed]
        if damaged:
            raise StoreError(f"{store}: version {damaged[0].version} is damaged: {damaged[0].problem}; "
                             "`sms-ledger check` says which version is intact and how to go back to it")
    try:
        dt = DeltaTable(str(store)) if version is None else DeltaTable(str(store), version=version)
    except Exception as exc:  # delta-rs's errors: a Rust message, perhaps with a backtrace
        raise StoreError(f"{store}: cannot read the table's log: {one_line(exc)}; "
                         "`sms-ledger check` says which version is intact") from None
    if checked:
        problem = snapshot_problem(store, dt, next((c for c in commits if c.version == dt.version()), None))
        if problem:
            raise StoreError(f"{store}: version {dt.version()}: {problem}; "
                             "`sms-ledger check` says which version is intact and how to go back to it")
    return dt


class StoreError(RuntimeError):
    """A store that cannot be read whole: a commit of its log damaged or missing, a data
    file gone or cut short. The message names the store, the file and the problem, and
    says how to find the intact version (``sms-ledger check``)."""


def one_line(exc: BaseException) -> str:
    """An error's first line, without terminal colour codes (delta-rs's messages carry a
    Rust backtrace)."""
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(exc))
    return next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)


class Commit(NamedTuple):
    """One commit file of the table's log, read: its ``version``, ``path``, ``actions``
    (each line parsed), its ``note`` (what this package wrote with it), the ``problem``
    that makes it unreadable (``None`` when whole), and whether reading the latest
    version ``needed`` it (not when a checkpoint after it stands in for it)."""

    version: int
    path: Path
    actions: list
    note: dict
    problem: str | None
    needed: bool


def read_log(store: Path) -> list[Commit]:
    """Every commit of the table's log, parsed, oldest first, with what is wrong with it:
    a version missing between two others (or after the last checkpoint), an empty file,
    a line that is not JSON, no commit information."""
    log = store / "_delta_log"
    files = {int(p.name[:20]): p for p in log.glob("*.json") if re.fullmatch(r"\d{20}\.json", p.name)}
    checkpoint = max((int(p.name[:20]) for p in log.glob("*.checkpoint*.parquet")), default=-1)
    if not files:
        return []
    first = min(files) if checkpoint < 0 else min(min(files), checkpoint + 1)
    out = []
    for version in range(first, max(files) + 1):
        path = log / f"{version:020d}.json"
        needed = version > checkpoint
        if path not in files.values():
            out.append(Commit(version, path, [], {}, f"{path.name} is missing from the log", needed))
            continue
        actions, problem = [], None
        data = path.read_bytes()
        if not data.strip():
            problem = f"{path.name} is empty"
        for number, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                action = json.loads(line)
            except ValueError:
                problem = problem or f"{path.name}: line {number} is not whole (cut short or damaged)"
                continue
            actions.append(action)
        info = next((a["commitInfo"] for a in actions if isinstance(a, dict) and "commitInfo" in a), None)
        if problem is None and info is None:
            problem = f"{path.name} has no commit information (its first line is missing)"
        try:
            note = json.loads((info or {}).get("sms_ledger") or "{}")
        except ValueError:
            note, problem = {}, problem or f"{path.name}: its note is damaged"
        out.append(Commit(version, path, actions, note, problem, needed))
    return out


def snapshot_problem(store: Path, dt, commit: Commit | None) -> str | None:
    """What is wrong with the data files of the table's version ``dt``: a file its log
    names that is gone or of another size, or rows that do not add up to what the commit
    wrote (its ``rows`` note: a line of the commit file was lost). ``None`` when whole."""
    actions = pa.table(dt.get_add_actions(flatten=True))
    sizes = actions.column("size_bytes").to_pylist()
    for rel, size in zip(actions.column("path").to_pylist(), sizes, strict=True):
        path = store / unquote(rel)
        try:
            found = path.stat().st_size
        except FileNotFoundError:
            return f"its data file {unquote(rel)} is missing"
        if size is not None and found != size:
            return f"its data file {unquote(rel)} is {found:,} bytes where the log says {size:,} (cut short or replaced)"
    counts = actions.column("num_records").to_pylist()
    wrote = (commit.note if commit else {}).get("rows")
    if wrote is not None and None not in counts and sum(counts) != wrote:
        return (f"its files hold {sum(counts):,} messages where the commit wrote {wrote:,}: "
                f"a line of {commit.path.name} was lost")
    return None


def store_partitions(store: str | Path, *, version: int | None = None) -> list[StorePart]:
    """The data files of the store's current version (or ``version``), in vendor and
    month order; the store is checked whole first (:class:`StoreError`)."""
    store = _store(store)
    dt = _table(store, version=version) if store.exists() else None
    if dt is None:
        return []
    actions = pa.table(dt.get_add_actions(flatten=True))
    paths = [str(store / unquote(p)) for p in actions.column("path").to_pylist()]
    parts = [StorePart(p, v, m, n if n is not None else read_part(p, metadata=True).num_rows)  # a writer without stats
             for p, v, m, n in zip(paths, actions.column("partition.vendor").to_pylist(),
                                   actions.column("partition.month").to_pylist(),
                                   actions.column("num_records").to_pylist(), strict=True)]
    return sorted(parts, key=lambda part: (part.vendor, part.month, part.path))


def part_batches(path: str | Path, rows: int, *, drop=()) -> Iterator[pa.RecordBatch]:
    """One data file of the store in record batches of ``rows``, without the columns
    ``drop``; a file that cannot be read is a :class:`StoreError` naming it."""
    import pyarrow.parquet as pq

    try:
        reader = pq.ParquetFile(path)
        columns = [c for c in reader.schema_arrow.names if c not in drop]
        yield from reader.iter_batches(batch_size=rows, columns=columns)
    except (OSError, pa.ArrowException) as exc:
        raise _unreadable(path, exc) from None


def _unreadable(path, exc: BaseException) -> StoreError:
    return StoreError(f"{path}: a data file of the store cannot be read: {one_line(exc)}; "
                      "`sms-ledger check` says which version is intact")


def read_part(path: str | Path, *, columns=None, metadata: bool = False, **options):
    """One data file of the store read with pyarrow (``pq.read_table``'s options), or
    its ``metadata``; a file that cannot be read is a :class:`StoreError` naming it."""
    import pyarrow.parquet as pq

    try:
        return pq.read_metadata(path) if metadata else pq.read_table(path, columns=columns, **options)
    except (OSError, pa.ArrowException) as exc:
        raise _unreadable(path, exc) from None


def store_arrow(log: pd.DataFrame) -> pa.Table:
    """The log as the store's Arrow schema: plain strings (no dictionaries), times in
    microseconds UTC, the ``month`` partition column (of the submit time, local) and
    ``phone_key`` (:func:`analysis.kernel.phone_keys`: the cubes find resend chains by
    it without reading the numbers' text)."""
    from .kernel import per_day, phone_keys

    month = per_day(log["submit_time"], "%Y-%m")
    no_send = month.isna().to_numpy()
    if no_send.any():  # the receipt's month, else unknown
        month = month.astype(object)
        month[no_send] = per_day(log.loc[no_send, "done_time"], "%Y-%m").astype(object).fillna("unknown").to_numpy()
    frame = log[[c for c in COLUMNS if c in log]].assign(phone_key=phone_keys(log["phone"]), month=month)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    fields = []
    for f in table.schema:
        t = f.type
        if pa.types.is_dictionary(t):
            t = t.value_type
        if pa.types.is_large_string(t) or pa.types.is_string(t):
            t = pa.string()
        if pa.types.is_timestamp(t):
            t = pa.timestamp("us", tz="UTC")
        fields.append(pa.field(f.name, t))
    return table.cast(pa.schema(fields))


def _predicate(keys: Iterable[tuple[str, str]]) -> str:
    def quoted(value: str) -> str:
        return "'" + str(value).replace("'", "''") + "'"

    return " OR ".join(f"(vendor = {quoted(v)} AND month = {quoted(m)})" for v, m in sorted(set(keys)))


def write_store(log: pd.DataFrame, root: str | Path, *, replace: list[StorePart] | None = None,
                note: dict | None = None) -> Path:
    """Commit ``log`` to the store under ``root`` as one new version. Returns its folder.

    With ``replace`` (the store's files that were read and merged into ``log``,
    :attr:`analysis.LoadResult.partitions`), the partitions they belong to and the ones
    ``log`` adds are replaced by ``log``'s rows; the others stay as they are. Without it,
    the whole store is replaced. ``note`` (files, row counts) is kept with the version
    and listed by :func:`store_history`.
    """
    table = store_arrow(log)
    keys = {(p.vendor, p.month) for p in replace or ()}
    keys |= set(zip(table.column("vendor").to_pylist(), table.column("month").to_pylist(), strict=True))
    return commit_tables([[table]], root, keys=None if replace is None else keys, rows=table.num_rows, note=note)


def store_schema() -> pa.Schema:
    """The Arrow schema of the store's rows (:func:`store_arrow` of a canonical log)."""
    from .schema import conform

    empty = store_arrow(conform(pd.DataFrame(columns=COLUMNS)))
    return pa.schema([pa.field(f.name, pa.string() if pa.types.is_null(f.type) else f.type) for f in empty.schema])


#: Rows one call of delta-rs's writer is given at most (whole partitions; a partition
#: larger than this is written alone): it holds more the more partitions and rows one
#: call writes (see :func:`commit_tables`).
COMMIT_ROWS = 1_000_000


def commit_groups(rows: dict) -> list[list]:
    """The partitions ``rows`` counts (``{(vendor, month): rows}``) in groups to write one
    after another (:func:`commit_tables`): in partition order, whole partitions of at
    most :data:`COMMIT_ROWS` rows a group, but for a larger partition, alone."""
    groups: list[list] = []
    held = 0
    for key in sorted(rows):
        if not groups or held + rows[key] > COMMIT_ROWS:
            groups.append([])
            held = 0
        groups[-1].append(key)
        held += rows[key]
    return groups


def commit_tables(groups: Iterable[Iterable[pa.Table]], root: str | Path, *, keys: set | None, rows: int,
                  note: dict | None = None) -> Path:
    """Commit the rows of ``groups`` as one new version: they replace the partitions
    ``keys`` names (``(vendor, month)`` pairs, which must hold every row), or the whole
    store for ``None``. ``rows``: how many there are (none: the partitions are emptied).

    Each group is an iterable of tables (:func:`store_arrow` of a log, read one after
    another as they are written, so they need not fit in memory together) and is
    written by a call of delta-rs's writer of its own, into a scratch table beside the
    store; the files are moved into the store and committed together, with the writer's
    statistics, as one transaction. delta-rs holds more the more partitions and rows
    one call writes (with every partition of 10 M rows at once, about 400 MB more than
    reading them), so groups of whole partitions (:func:`commit_groups`) bound it. A
    table from before ``phone_key`` is written in one call that adds the column."""
    from deltalake import CommitProperties, write_deltalake

    schema = store_schema()
    with store_lock(root) as store:
        dt = _table(store) if store.exists() else None
        _remove_uncommitted(store)
        # what history lists (delta-rs's name varies by API), and the rows the version holds
        # (checked whenever it is read: a line of the commit lost would change them)
        note = {"operation": "write", **(note or {}), **_rows_after(dt, keys, rows)}
        commit = CommitProperties(custom_metadata={"sms_ledger": json.dumps(note, ensure_ascii=False)})
        if dt is not None and keys is not None and not (keys and rows):
            if keys:  # every row of those partitions went elsewhere (a later receipt moved them)
                dt.delete(_predicate(keys), commit_properties=commit)
            return store
        if dt is not None and keys is not None and not set(schema.names) <= set(dt.schema().to_arrow().names):
            write_deltalake(str(store), _reader((t for g in groups for t in g), schema), mode="overwrite",
                            predicate=_predicate(keys), partition_by=PARTITION_BY,
                            schema_mode="merge",  # a table from before phone_key gains it
                            commit_properties=commit, writer_properties=_writer_properties())
            return store
        adds: list = []
        try:
            with scratch_folder(store.parent, "commit") as scratch, _native_stderr_held():
                for i, group in enumerate(groups):
                    adds += _write_apart(group, scratch / str(i), store, schema)
                _commit_files(dt, store, adds, keys, schema, commit)
        except BaseException as exc:
            if _version(store) == (None if dt is None else dt.version()):  # no version has them: take them out
                for add in adds:
                    (store / add.path).unlink(missing_ok=True)
            if isinstance(exc, Exception) and not isinstance(exc, OSError | StoreError):
                raise StoreError(f"{store}: the commit failed, nothing was written: {one_line(exc)}") from exc
            raise
    return store


def _rows_after(dt, keys: set | None, rows: int) -> dict:
    """``{"rows": n}``: the rows the table holds once ``rows`` replace the partitions
    ``keys`` names (or the whole table); empty where a file's count is unknown."""
    if dt is None or keys is None:
        return {"rows": rows}
    actions = pa.table(dt.get_add_actions(flatten=True))
    kept = [n for n, v, m in zip(*(actions.column(c).to_pylist() for c in ("num_records", "partition.vendor",
                                                                           "partition.month")), strict=True)
            if (v, m) not in keys]
    return {} if None in kept else {"rows": sum(kept) + rows}


@contextmanager
def _native_stderr_held() -> Iterator[None]:
    """Hold what is written to the process's standard error (its file descriptor, not
    Python's ``sys.stderr``) while delta-rs writes: a failed write of delta-rs prints a
    Rust panic with its backtrace there before its error comes back. Shown again when
    the block succeeds; dropped when it fails, whose error says it in one line."""
    import sys
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    held = tempfile.TemporaryFile()
    os.dup2(held.fileno(), 2)
    failed = True
    try:
        yield
        failed = False
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        if not failed:
            held.seek(0)
            text = held.read()
            if text:
                sys.stderr.write(text.decode("utf-8", errors="replace"))
        held.close()


def _version(store: Path) -> int | None:
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return DeltaTable(str(store)).version()
    except TableNotFoundError:
        return None


def _reader(tables: Iterable[pa.Table], schema: pa.Schema) -> pa.RecordBatchReader:
    return pa.RecordBatchReader.from_batches(
        schema, (b for t in tables for b in t.select(schema.names).cast(schema).to_batches()))


def _write_apart(tables: Iterable[pa.Table], scratch: Path, store: Path, schema: pa.Schema) -> list:
    """Write ``tables`` as a Delta table of their own at ``scratch``, move its files into
    ``store`` (the same relative paths: file names that never repeat) and return their
    add actions, as its log has them (size, partition values, statistics)."""
    from deltalake import write_deltalake
    from deltalake.transaction import AddAction

    write_deltalake(str(scratch), _reader(tables, schema), mode="error", partition_by=PARTITION_BY,
                    configuration=TABLE_CONFIGURATION, writer_properties=_writer_properties())
    adds = []
    for line in (scratch / "_delta_log" / f"{0:020d}.json").read_text(encoding="utf-8").splitlines():
        add = json.loads(line).get("add") if line.strip() else None
        if add:
            rel = unquote(add["path"])  # the log's path is the file's, URL-encoded
            (store / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(scratch / rel, store / rel)  # a rename, unless the store is a mount of its own
            adds.append(AddAction(rel, add["size"], add["partitionValues"], add["modificationTime"], True,
                                  add["stats"]))
    return adds


def _commit_files(dt, store: Path, adds: list, keys: set | None, schema: pa.Schema, commit) -> None:
    """Commit the files ``adds`` names as one version: a new table, the whole table
    replaced (``keys`` ``None``), or the partitions ``keys`` names replaced (their files
    removed)."""
    from deltalake import Schema
    from deltalake.transaction import RemoveAction, create_table_with_add_actions

    if dt is None:
        create_table_with_add_actions(str(store), Schema.from_arrow(schema), adds, mode="error",
                                      partition_by=PARTITION_BY, configuration=TABLE_CONFIGURATION,
                                      commit_properties=commit)
        return
    if keys is None:
        dt.create_write_transaction(adds, mode="overwrite", schema=schema, partition_by=PARTITION_BY,
                                    commit_properties=commit)
        return
    old = pa.table(dt.get_add_actions(flatten=True))
    now = int(pd.Timestamp.now(tz="UTC").timestamp() * 1000)
    removes = [RemoveAction(unquote(path), True, now, size, {"vendor": vendor, "month": month})
               for path, size, vendor, month in zip(*(old.column(c).to_pylist() for c in (
                   "path", "size_bytes", "partition.vendor", "partition.month")), strict=True)
               if (vendor, month) in keys]
    dt.create_write_transaction([*adds, *removes], mode="append", schema=schema, partition_by=PARTITION_BY,
                                commit_properties=commit)


def _remove_uncommitted(store: Path) -> None:
    """Delete the data files no version of the table refers to: what a run killed before
    its commit left behind (the caller holds the lock, so no writer is at work). Never on
    a log that was not read whole: a file a damaged commit names would look unreferenced.
    Not deltalake's ``vacuum(full=True)``: it judges unreferenced files by age too, so a
    fresh leftover would stay, unless every old version's files went with it."""
    commits = read_log(store) if (store / "_delta_log").exists() else []
    if not commits:
        return
    damaged = [c for c in commits if c.problem]
    if damaged:
        raise StoreError(f"{store}: version {damaged[0].version} is damaged: {damaged[0].problem}; nothing was "
                         "written (`sms-ledger check` says which version is intact and how to go back to it)")
    referenced = {unquote(a[kind]["path"]) for c in commits for a in c.actions for kind in ("add", "remove")
                  if kind in a}
    for checkpoint in (store / "_delta_log").glob("*.checkpoint*.parquet"):
        for kind in ("add", "remove"):
            column = read_part(checkpoint, columns=[kind]).column(kind).combine_chunks()
            referenced |= {unquote(a["path"]) for a in column.to_pylist() if a}
    for path in store.rglob("*.parquet"):
        rel = path.relative_to(store).as_posix()
        if not rel.startswith("_delta_log") and rel not in referenced:
            path.unlink()
    for folder in sorted((p for p in store.rglob("*") if p.is_dir() and p.name != "_delta_log"), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


def read_store(root: str | Path, *, tz: str = DEFAULT_TZ, version: int | None = None) -> pd.DataFrame:
    """Read the store under ``root`` (at ``version``, default the latest) back as a
    canonical send log (:func:`store_table`)."""
    frame = store_table(root, version=version).to_pandas()
    frame = frame[[c for c in COLUMNS if c in frame]]
    return sort_log(conform(frame, tz=tz))


def store_table(root: str | Path, *, version: int | None = None) -> pa.Table:
    """The store's rows at ``version`` (default the latest) as Arrow, ``vendor`` from the
    table's log: the files its log names for that version, never others in its folder,
    and only when they are whole (:class:`StoreError` otherwise)."""
    store = _store(root)
    if not store.exists():
        raise FileNotFoundError(f"{store}: no send-log store here (run `sms-ledger ingest` first)")
    tables = [t.select([c for c in t.column_names if c in COLUMNS]).append_column(
        "vendor", pa.array([p.vendor] * t.num_rows, pa.string()))
        for p in store_partitions(store, version=version) for t in [read_part(p.path)]]
    if not tables:
        empty = store_arrow(conform(pd.DataFrame(columns=COLUMNS)))
        return empty.select([c for c in empty.column_names if c in COLUMNS])
    return pa.concat_tables(tables, promote_options="permissive")


def store_history(root: str | Path) -> pd.DataFrame:
    """Every version of the store, newest first.

    Returns
    -------
    DataFrame
        ``version``; ``time`` (when it was committed, local time of the log's zone);
        ``operation`` (``ingest``, ``restore``, ``migrate`` …); ``files`` (the inputs
        of an ingest, the version a restore went back to); ``rows_read``, ``loaded``,
        ``rejected``, ``duplicates`` (an ingest's accounting, else missing); ``rows``
        (messages in the store after it) and ``change`` (``rows`` less the version
        before's: what the version added, or took away).
    """
    from deltalake import DeltaTable

    store = _store(root)
    dt = _table(store) if store.exists() else None
    if dt is None:
        raise FileNotFoundError(f"{store}: no send-log store here (run `sms-ledger ingest` first)")
    out = []
    for h in dt.history():
        note = json.loads(h.get("sms_ledger") or "{}")
        version = int(h["version"])
        stats = pa.table(DeltaTable(str(store), version=version).get_add_actions(flatten=True))
        out.append({
            "version": version,
            "time": pd.Timestamp(h["timestamp"], unit="ms", tz="UTC").tz_convert(DEFAULT_TZ).strftime("%Y-%m-%d %H:%M:%S"),
            "operation": note.get("operation") or str(h.get("operation", "")).lower(),
            "files": "; ".join(note.get("files", [])),
            **{k: note.get(k) for k in _ACCOUNT},
            "rows": int(sum(n or 0 for n in stats.column("num_records").to_pylist())),
        })
    frame = pd.DataFrame(out, columns=["version", "time", "operation", "files", *_ACCOUNT, "rows"])
    frame[list(_ACCOUNT)] = frame[list(_ACCOUNT)].astype("Int64")
    frame = frame.sort_values("version").reset_index(drop=True)
    frame["change"] = frame["rows"].diff().fillna(frame["rows"]).astype("int64")
    return frame.sort_values("version", ascending=False).reset_index(drop=True)


#: An ingest's row accounting, kept with its version.
_ACCOUNT = ("rows_read", "loaded", "rejected", "duplicates")


def restore_store(root: str | Path, version: int | None = None) -> int:
    """Make version ``version`` of the store the current one again (default: the one
    before the latest: undo the last ingest). The restore is a new version, so it can
    be undone too. Returns the new version number."""
    with store_lock(root) as store:
        dt = _table(store) if store.exists() else None
        if dt is None:
            raise FileNotFoundError(f"{store}: no send-log store here (run `sms-ledger ingest` first)")
        latest = dt.version()
        if version is None and latest == 0:
            raise ValueError(f"{store}: nothing to undo: the store has one version, its first ingest (to start "
                             "again, delete the store's folder)")
        target = latest - 1 if version is None else int(version)
        if not 0 <= target < latest:
            raise ValueError(f"{store}: no version {target} to go back to (versions 0 to {latest}; "
                             f"`sms-ledger history` lists them)")
        return _restore(store, dt, target)


def _restore(store: Path, dt, target: int) -> int:
    """Commit version ``target``'s files as a new version of ``dt`` (the lock held)."""
    from deltalake import CommitProperties

    old = _table(store, version=target, checked=False)
    problem = snapshot_problem(store, old, None)
    if problem:
        raise ValueError(f"{store}: version {target} can no longer be restored: {problem} (`sms-ledger vacuum` "
                         "removes the files of old versions)")
    counts = pa.table(old.get_add_actions(flatten=True)).column("num_records").to_pylist()
    rows = {} if None in counts else {"rows": sum(counts)}
    note = {"operation": "restore", "files": [f"version {target}"], **rows}
    try:
        dt.restore(target, commit_properties=CommitProperties(custom_metadata={"sms_ledger": json.dumps(note)}))
    except Exception as exc:  # deltalake's DeltaError
        raise StoreError(f"{store}: could not go back to version {target}: {one_line(exc)}") from None
    return dt.version()


def check_store(root: str | Path) -> pd.DataFrame:
    """Every version of the store with whether it can be read whole, newest first.

    Returns
    -------
    DataFrame
        ``version``; ``time`` (committed, local time); ``operation``; ``files`` (what
        an ingest read); ``rows`` (messages in the store at that version, where it can
        be read); ``state``: ``intact``, or what is wrong (a commit file empty, cut
        short or missing; a data file gone or cut short; a version after a damaged one).
    """
    store = _store(root)
    commits = read_log(store) if (store / "_delta_log").exists() else []
    if not commits:
        raise FileNotFoundError(f"{store}: no send-log store here (run `sms-ledger ingest` first)")
    out, broken = [], None
    for c in commits:
        info = next((a["commitInfo"] for a in c.actions if "commitInfo" in a), {})
        rows, state = None, c.problem
        if state is None and broken is not None and c.needed:
            state = f"unreadable: version {broken} before it is damaged"
        if state is None:
            dt = _table(store, version=c.version, checked=False)
            state = snapshot_problem(store, dt, c)
            counts = pa.table(dt.get_add_actions(flatten=True)).column("num_records").to_pylist()
            rows = None if None in counts else sum(counts)
        if c.problem and c.needed and broken is None:
            broken = c.version
        out.append({"version": c.version,
                    "time": pd.Timestamp(info.get("timestamp", 0), unit="ms", tz="UTC").tz_convert(DEFAULT_TZ).strftime(
                        "%Y-%m-%d %H:%M:%S") if info.get("timestamp") else "",
                    "operation": c.note.get("operation") or str(info.get("operation", "")).lower(),
                    "files": "; ".join(c.note.get("files", [])), "rows": rows, "state": state or "intact"})
    frame = pd.DataFrame(out)
    frame["rows"] = frame["rows"].astype("Int64")
    return frame.sort_values("version", ascending=False).reset_index(drop=True)


def repair_store(root: str | Path) -> str:
    """Make the latest intact version the store again, and say what was done.

    Commits from the first damaged one on are set aside, not deleted, into
    ``<root>/.damaged-<time>/`` (their data files stay where they are until the next
    write removes them as no version's); where the log is whole but the latest
    version's data files are not, the latest version whose files are all there is
    restored as a new version (as ``undo --version`` does)."""
    with store_lock(root) as store:
        commits = read_log(store) if (store / "_delta_log").exists() else []
        if not commits:
            raise FileNotFoundError(f"{store}: no send-log store here (run `sms-ledger ingest` first)")
        damaged = next((c.version for c in commits if c.problem and c.needed), None)
        done = []
        if damaged is not None:
            if damaged == commits[0].version:
                raise StoreError(f"{store}: no intact version: the first one ({damaged}) is damaged; ingest the "
                                 "exports again into a new store")
            aside = store.parent / f".damaged-{pd.Timestamp.now():%Y%m%d-%H%M%S}" / "_delta_log"
            aside.mkdir(parents=True)
            log = store / "_delta_log"
            for f in sorted(log.iterdir()):
                number = re.match(r"(\d{20})\.", f.name)
                if number and int(number.group(1)) >= damaged:
                    shutil.move(f, aside / f.name)
            last = log / "_last_checkpoint"
            if last.exists() and json.loads(last.read_text() or "{}").get("version", -1) >= damaged:
                shutil.move(last, aside / last.name)
            files = sorted({f for c in commits if c.version >= damaged for f in c.note.get("files", [])})
            which = f"version {damaged}" if damaged == commits[-1].version else \
                f"versions {damaged} to {commits[-1].version}"
            done.append(f"set {which} aside in {aside.parent}"
                        + (f" (ingest again what they read: {', '.join(files)})" if files else ""))
        by_version = {c.version: c for c in read_log(store)}

        def problem(v: int | None = None) -> str | None:
            dt = _table(store, version=v, checked=False)
            return snapshot_problem(store, dt, by_version.get(dt.version()))

        dt = _table(store, checked=False)
        if problem():
            intact = next((v for v in range(dt.version() - 1, -1, -1) if not problem(v)), None)
            if intact is None:
                raise StoreError(f"{store}: no intact version: every version misses a data file; ingest the exports "
                                 "again into a new store")
            _restore(store, dt, intact)
            done.append(f"restored version {intact}, whose data files are all there, as version {dt.version()}")
        return "; ".join(done) or "nothing to repair: the store is intact"


def vacuum_store(root: str | Path, *, days: float = 30, dry_run: bool = False) -> tuple[int, int]:
    """Delete the data files only versions older than ``days`` need: every ingest that
    touches a month rewrites its partition and keeps the old file for undo, so a month
    ingested daily holds about 30 copies. Versions from before then can no longer be
    restored. Returns the number of files and bytes removed (or, with ``dry_run``, that
    would be)."""
    with store_lock(root) as store:
        dt = _table(store) if store.exists() else None
        if dt is None:
            raise FileNotFoundError(f"{store}: no send-log store here (run `sms-ledger ingest` first)")
        files = dt.vacuum(retention_hours=int(days * 24), dry_run=True, enforce_retention_duration=False)
        size = sum((store / unquote(f)).stat().st_size for f in files if (store / unquote(f)).exists())
        if files and not dry_run:
            dt.vacuum(retention_hours=int(days * 24), dry_run=False, enforce_retention_duration=False)
        return len(files), size


def migrate_store(store: str | Path) -> Path:
    """Convert a store of plain Parquet folders (``vendor=<v>/month=<m>/part-0.parquet``,
    written by earlier versions) into a Delta table in place, losing nothing: the rows are
    written beside it, checked, and swapped in; a run killed midway starts again."""
    import pyarrow.dataset as ds
    from deltalake import CommitProperties, write_deltalake

    store = _store(store)
    staging = store.with_name(f".{STORE_DIR}.migrating")
    if not store.exists() and staging.exists() and (staging / "_delta_log").exists():
        staging.rename(store)  # killed after the old store was set aside: finish the swap
        return store
    shutil.rmtree(staging, ignore_errors=True)
    files = sorted(store.glob("vendor=*/month=*/*.parquet"))
    legacy = ds.dataset([str(f) for f in files], format="parquet", partitioning="hive",
                        partition_base_dir=str(store)).to_table() if files else None
    frame = legacy.to_pandas() if legacy is not None else pd.DataFrame(columns=COLUMNS)
    if len(frame):  # the old folders kept names percent-encoded ("my%20gw"): decode them
        frame["vendor"] = frame["vendor"].astype(str).map(unquote)
    log = conform(frame[[c for c in COLUMNS if c in frame]])
    table = store_arrow(log)
    write_deltalake(str(staging), table, partition_by=PARTITION_BY, configuration=TABLE_CONFIGURATION,
                    writer_properties=_writer_properties(), commit_properties=CommitProperties(
        custom_metadata={"sms_ledger": json.dumps({"operation": "migrate", "files": [f"{len(files)} Parquet files"]})}))
    from deltalake import DeltaTable

    if DeltaTable(str(staging)).to_pyarrow_table().num_rows != len(log):
        raise RuntimeError(f"{store}: converting the store lost rows; the old store is left as it was")
    aside = store.with_name(f".{STORE_DIR}.legacy")
    shutil.rmtree(aside, ignore_errors=True)
    os.replace(store, aside)
    os.replace(staging, store)
    shutil.rmtree(aside, ignore_errors=True)
    return store


def partitions_for(store: str | Path, vendors: set, months: set, ids: pa.Array | None = None) -> list[StorePart]:
    """The store's files that rows about to be merged can touch: those of ``vendors`` in
    ``months`` (``YYYY-MM``, the months of the rows' submit and receipt times) and the
    months either side, and wherever a receipt without a submit time finds its message
    id (``ids``)."""
    near = set()
    for m in months:
        month = pd.Period(m, "M")
        near |= {str(month - 1), str(month), str(month + 1)}
    found = [p for p in store_partitions(store) if p.vendor in vendors]
    chosen = [p for p in found if p.month in near or p.month == "unknown"]
    if ids is not None and len(ids):
        import pyarrow.compute as pc

        for p in (p for p in found if p not in chosen):
            column = read_part(p.path, columns=["message_id"]).column(0)
            if pc.any(pc.is_in(column, value_set=ids.cast(column.type))).as_py():
                chosen.append(p)
    return sorted(chosen)
