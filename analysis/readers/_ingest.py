"""Ingest exports of any size into the store, in bounded memory.

:func:`load_send_log` holds its whole input in memory; this is its streamed counterpart
for the store, with the same rules and the same accounting:

1. **stage** -- each file is read and staged block by block (:data:`CHUNK_ROWS` rows),
   and each block's rows are written to a spill file, ordered by a hash of the phone
   number (:data:`FINE` buckets). An input larger than :data:`PARALLEL_BYTES` is staged
   on the worker processes, a block each, while this process reads the next. Rows with no phone (receipts that name only a message
   id) are held aside; they are few;
2. **store** -- the store's partitions the rows can touch are staged the same way, as
   the oldest rows (the inputs are newer);
3. **merge** -- the spilled rows are cut into units of whole buckets of at most
   :data:`UNIT_ROWS` rows. Every row of a phone number falls in one unit, and with it
   every message, resend chain and phone-and-time link of that number; a row with no
   phone joins the unit that holds its message id. Each unit is merged into messages
   (:func:`merge_staged`, as in memory) on the worker processes, one unit per process at a
   time, and written to a spill file of the store's schema;
4. **commit** -- the units' messages stream into one Delta commit that replaces the
   partitions read and adds the new ones (:func:`analysis.store.commit_tables`).

The spill lives beside the store (``<root>/.ingest-<pid>-…``) and is removed when the
ingest ends; one left by a killed run is removed by the next.
"""

from __future__ import annotations

import pickle
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..schema import DEFAULT_TZ, STRING, validate
from ..workers import release_memory
from ._assemble import (
    Staging,
    concat_rejects,
    file_counts,
    late_rejects,
    merge_staged,
    read_batches,
    stage_block,
    stage_files,
    store_blocks,
    summarize,
    touched,
    with_records,
)
from ._files import read_chunks

#: Hash buckets of the phone number that the spill files are ordered by; units are runs of
#: whole buckets.
FINE = 1024
#: Buckets written as one record batch of a spill file: a unit reads the batches of its
#: buckets (from disk, not memory-mapped: a mapped file's pages would count as the
#: worker's memory while its rows are in use).
GROUP = 8
#: Rows a unit of the merge holds at most (but for one bucket larger than this): about
#: 600 MB of a worker's memory at its peak.
UNIT_ROWS = 150_000
#: Inputs larger than this (bytes, all files) are staged on the worker processes, one
#: block each, while this process reads the next.
PARALLEL_BYTES = 64 << 20
#: What this process may hold while it reads blocks for the workers before it gives
#: freed memory back (giving it back after every block cost a quarter of the 10 M-row
#: ingest's kernel time in page faults).
READER_BYTES = 1 << 30
#: What a process that stages blocks or merges units may hold before it gives freed
#: memory back (about what a unit's merge needs at its peak anyway).
WORKER_BYTES = 600 << 20
#: Order of the store's rows: before every input row (the later row wins a merge).
_STORE_ORDER = -(1 << 62)


@dataclass
class Spill:
    """Staged rows written to disk as they are staged (a :class:`Staging`'s ``sink``).

    ``files`` holds each spill file with the offsets of its :data:`FINE` buckets and how
    much to add to its rows' file numbers (``_file``: the files of a Dask worker's spill
    come after those before it);
    ``orphans`` the rows with no phone; ``vendors``, ``months`` and ``ids`` what the rows
    can touch in the store (:func:`analysis.store.partitions_for`); ``keys`` the
    ``(vendor, month)`` partitions their messages can land in. Picklable: a Dask worker
    spills its files and the client merges the spills (:meth:`extend`)."""

    folder: Path
    tz: str = DEFAULT_TZ
    order: int = 0
    files: list = field(default_factory=list)
    orphans: list = field(default_factory=list)
    vendors: set = field(default_factory=set)
    months: set = field(default_factory=set)
    ids: list = field(default_factory=list)
    keys: set = field(default_factory=set)

    def __call__(self, st: pd.DataFrame) -> None:
        if "phone" not in st:  # no layout's column at all (a block whose every line was rejected)
            st["phone"] = pd.Series(pd.NA, index=st.index, dtype=STRING)
        st["_order"] = np.arange(self.order, self.order + len(st), dtype=np.int64)
        self.order += len(st)
        vendors, keys, ids = touched(st, tz=self.tz)
        self.vendors |= vendors
        self.months |= {m for _, m in keys}
        self.keys |= keys  # a message's month is that of one of its rows' times
        if len(ids):
            self.ids.append(ids)
        orphan = (st["_reject"].isna() & st["phone"].isna()).to_numpy()
        if orphan.any():
            self.orphans.append(st[orphan])
            st = st[~orphan]
        from ..kernel import phone_keys

        bucket = phone_keys(st["phone"]) % FINE  # equal numbers, equal keys: one bucket
        order = np.argsort(bucket, kind="stable")
        offsets = np.concatenate([[0], np.cumsum(np.bincount(bucket, minlength=FINE))])
        path = self.folder / f"staged-{uuid.uuid4().hex}.arrow"
        _write_runs(_arrow_of(st), order, offsets[::GROUP], path)  # a batch per group of buckets
        self.files.append((path, offsets, 0))
        del st
        release_memory(above=WORKER_BYTES)  # else what the blocks freed stays with this process and grows

    def extend(self, other: Spill, *, shift: int = 0) -> Spill:
        """Add another spill's rows after this one's (a Dask worker's), their file numbers
        raised by ``shift`` (:meth:`Staging.extend`'s)."""
        self.files += [(path, offsets, s + shift) for path, offsets, s in other.files]
        self.orphans += [o.assign(_file=o["_file"] + shift) for o in other.orphans]
        self.ids += other.ids
        for name in ("vendors", "months", "keys"):
            getattr(self, name).update(getattr(other, name))
        return self

    def rows(self) -> np.ndarray:
        """Rows spilled in each bucket."""
        return sum((np.diff(o) for _, o, _ in self.files), np.zeros(FINE, dtype=np.int64))


def _arrow_of(frame: pd.DataFrame) -> pa.Table:
    """Staged rows as Arrow (a column of mixed Python values, as text)."""
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        mixed = {c: frame[c].map(lambda v: v if v is None or v is pd.NA or isinstance(v, str) else str(v))
                 for c in frame.columns if frame[c].dtype == object}
        return pa.Table.from_pandas(frame.assign(**mixed), preserve_index=False)


def _write_runs(table: pa.Table, order: np.ndarray, bounds: np.ndarray, path: Path) -> None:
    """Write ``table``'s rows in ``order`` to ``path`` (Arrow IPC), a record batch for
    each run between consecutive ``bounds`` (perhaps empty), so a reader takes a run by
    its batch."""
    table = table.take(order).combine_chunks()
    with _arrow_sink(path) as sink, pa.ipc.new_file(sink, table.schema) as writer:
        for start, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            part = table.slice(start, stop - start)  # one chunk
            writer.write_batch(pa.RecordBatch.from_arrays([c.chunk(0) for c in part.columns], schema=table.schema))


def _arrow_sink(path: Path):
    """A buffered file to write Arrow IPC to (unbuffered, each column's buffers of each
    batch are a write of their own)."""
    return pa.output_stream(str(path), buffer_size=1 << 20)


def stage_to_spill(item: tuple[int, list], *, folder: Path, tz: str = DEFAULT_TZ, workers: int = 1,
                   **options) -> tuple[Staging, Spill]:
    """Stage files ``item = (order, paths)`` into a :class:`Spill` in ``folder``, their
    rows numbered from ``order`` (later files higher). With ``workers`` > 1 this process
    reads the blocks and the worker processes stage and spill them (:func:`spill_block`),
    in the order read. Options as :func:`stage_files`'s."""
    order, paths = item
    spill = Spill(Path(folder), tz=tz, order=order)
    if workers <= 1:
        return stage_files(paths, tz=tz, sink=spill, **options), spill
    from .. import workers as pool
    from .mapping import mapping_layout

    vendor, mapping, source_tz = (options.get(k) for k in ("vendor", "mapping", "source_tz"))
    layout = mapping_layout(mapping) if mapping is not None else None
    staging = Staging(skip_unknown=frozenset(Path(p) for p in options.get("skip_unknown", ())), sink=spill)
    started, reading = time.perf_counter(), [0.0]

    def blocks():
        lines = layout is not None and layout.declaration is not None and layout.declaration.format == "lines"
        for batch in read_batches(paths, blocks=True, progress=options.get("progress", False), reading=reading,
                                  lines=lines):
            block = staging.prepare(batch, layout, vendor=vendor)
            if block is not None:  # sent as bytes: the block's frame is freed now, not when its result is back
                yield pickle.dumps((block, spill.order), protocol=pickle.HIGHEST_PROTOCOL)
                spill.order += len(block.raw.frame)
                del block, batch

    for rejects, part in pool.stream(spill_block, blocks(), workers=workers, folder=spill.folder, tz=tz,
                                     vendor=vendor, source_tz=source_tz):
        if rejects is not None:
            staging.rejects.append(rejects)
        spill.extend(part)
        release_memory(above=READER_BYTES)  # the blocks sent are freed: give their memory back when it adds up
    staging.stages["read"] = reading[0]
    staging.stages["stage"] = time.perf_counter() - started - reading[0]
    return staging, spill


def spill_block(item: bytes, *, folder: Path, tz: str, vendor, source_tz) -> tuple:
    """Stage a block (:func:`stage_block`) and spill its rows, numbered from ``order``
    (``item``: ``(block, order)`` pickled). Returns the rows rejected while staging and
    the block's :class:`Spill`, for this process to add to its own."""
    block, order = pickle.loads(item)
    st, rejects = stage_block(block, vendor=vendor, tz=tz, source_tz=source_tz)
    part = Spill(Path(folder), tz=tz, order=order)
    part(st)
    return rejects, part


def spill_folder(root: str | Path):
    """A scratch folder for an ingest's spill beside the store, removed when done, and
    the folders of ingests that were killed (their process is gone) removed first."""
    from ..store import scratch_folder

    return scratch_folder(root, "ingest")


@dataclass
class Ingested:
    """What an ingest did: ``summary`` and ``rejects`` as :class:`LoadResult`'s (the
    store's rows read back are the summary's last file), ``partitions`` (the store's
    files merged and replaced), ``messages`` (rows written), ``stages`` (seconds per
    stage: read, stage, store, merge, finish, commit)."""

    summary: pd.DataFrame
    rejects: pd.DataFrame
    partitions: list
    messages: int
    stages: dict


def ingest_files(paths, root: str | Path, *, vendor: str | None = None, mapping=None, tz: str = DEFAULT_TZ,
                 source_tz: str | None = None, resend_window: str = "30min", skip_unknown=(),
                 progress: bool = False, workers: int | None = None, note: dict | None = None,
                 on_commit: Callable[[Ingested], None] | None = None) -> Ingested:
    """Merge export files of any size into the store under ``root`` in one commit, in
    bounded memory (see the module's text). Options as :func:`load_send_log`'s;
    ``workers`` (default: one per CPU for a large input) stage the blocks and merge the
    units; ``note`` is kept with the version beside the row accounting; ``on_commit`` is
    called with the result while the store's lock is still held (to write the rejects
    beside it)."""
    paths = list(paths)
    with spill_folder(root) as folder:
        staging, spill = stage_to_spill((0, paths), folder=folder, tz=tz, vendor=vendor, mapping=mapping,
                                        source_tz=source_tz, skip_unknown=skip_unknown, progress=progress,
                                        workers=staging_workers(paths) if workers is None else workers)
        return merge_spill(staging, spill, root, vendor=vendor, tz=tz, source_tz=source_tz,
                           resend_window=resend_window, progress=progress, workers=workers, note=note,
                           on_commit=on_commit)


def staging_workers(paths) -> int:
    """Processes to stage ``paths`` on (:func:`stage_to_spill`): one per CPU for an input
    larger than :data:`PARALLEL_BYTES`, else this one. A Parquet file counts what it
    decodes to (its footer's uncompressed size: a 10 M-row export is 5 times its file)."""
    from .. import workers as pool

    size = sum(_decoded_size(Path(p)) for p in paths if Path(p).is_file())
    return pool.default() if size > PARALLEL_BYTES else 1


def _decoded_size(path: Path) -> int:
    if path.suffix.lower() in {".parquet", ".pq"}:
        import pyarrow.parquet as pq

        try:
            meta = pq.ParquetFile(path).metadata
            return sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        except (pa.ArrowInvalid, OSError):  # not Parquet after all: reading it says so
            pass
    return path.stat().st_size


def merge_spill(staging: Staging, spill: Spill, root: str | Path, *, vendor: str | None = None, tz: str = DEFAULT_TZ,
                source_tz: str | None = None, resend_window: str = "30min", progress: bool = False,
                workers: int | None = None, note: dict | None = None,
                on_commit: Callable[[Ingested], None] | None = None) -> Ingested:
    """Steps 2 to 4 of an ingest (see the module's text) for files staged into ``spill``
    (:func:`stage_to_spill`, here or on a Dask cluster), under the store's lock."""
    from ..store import commit_tables, partitions_for, store_lock, store_path

    stages = dict(staging.stages)
    with store_lock(root):
        clock = time.perf_counter()
        store = store_path(root)
        ids = pa.concat_arrays(spill.ids) if spill.ids else None
        partitions = partitions_for(store, spill.vendors, spill.months, ids) if store.is_dir() else []
        store_file = None
        if partitions:
            store_file = len(staging.infos)
            spill.order = _STORE_ORDER
            staging.sink = spill
            for raw in store_blocks(store, partitions):
                staging.add([raw], None, vendor=vendor, tz=tz, source_tz=source_tz)
        stages["store"] = time.perf_counter() - clock
        clock = time.perf_counter()
        units = _units(spill)
        shared = {"files": spill.files, "tz": tz, "window": resend_window, "folder": spill.folder}
        if workers is None:
            from .. import workers as pool

            workers = pool.default() if sum(u[3] for u in units) > UNIT_ROWS else 1
        merged = _run_units(units, workers=workers, progress=progress, **shared)
        stages["merge"] = time.perf_counter() - clock
        busy = {k: sum(m["seconds"][k] for m in merged) for k in ("merge", "finish")}
        if sum(busy.values()):  # the wall time split as the workers' time was
            stages["finish"] = stages["merge"] * busy["finish"] / sum(busy.values())
            stages["merge"] -= stages["finish"]
        late = pd.concat([m["late"] for m in merged], ignore_index=True) if merged else pd.DataFrame()
        rejects = staging.rejects + (with_records(late, staging.infos, _raw_lines(staging.infos, store, partitions,
                                                                                   store_file)) if len(late) else [])
        rejects = concat_rejects(rejects)
        summary = summarize(staging.infos, [m["counts"] for m in merged], [m["pairs"] for m in merged], rejects)
        messages = sum(m["rows"] for m in merged)
        result = Ingested(summary, rejects.drop(columns="_file"), partitions, messages, stages)
        if messages or partitions:  # every row rejected: nothing to store, the rejects say why
            inputs = summary.drop(index=store_file) if store_file is not None else summary
            account = {k: int(inputs[k].sum()) for k in ("rows_read", "loaded", "rejected", "duplicates")}
            clock = time.perf_counter()
            keys = {(p.vendor, p.month) for p in partitions} | spill.keys
            commit_tables(_commit_groups(merged), root, keys=keys if store.is_dir() else None, rows=messages,
                          note={"operation": "ingest", **(note or {}), **account})
            stages["commit"] = time.perf_counter() - clock
        if on_commit is not None:
            on_commit(result)
    return result


def _units(spill: Spill) -> list[tuple]:
    """Runs of whole buckets of at most :data:`UNIT_ROWS` rows: ``(index, first bucket,
    end bucket, rows, orphans)``; the rows with no phone go with the unit holding their
    message id, or to a last unit of their own."""
    counts = spill.rows()
    units, lo, held = [], 0, 0
    for b in range(FINE):
        if held and held + counts[b] > UNIT_ROWS:
            units.append([len(units), lo, b, held, None])
            lo, held = b, 0
        held += int(counts[b])
    if held:
        units.append([len(units), lo, FINE, held, None])
    if spill.orphans:
        orphans = pd.concat(spill.orphans, ignore_index=True)
        mine = _orphan_units(orphans, spill.files, units)
        for unit in units:
            rows = mine == unit[0]
            if rows.any():
                unit[4], unit[3] = orphans[rows], unit[3] + int(rows.sum())
        rest = orphans[mine < 0]
        if len(rest):
            units.append([len(units), 0, 0, len(rest), rest])
    return [tuple(u) for u in units]


def _orphan_units(orphans: pd.DataFrame, files: list, units: list) -> np.ndarray:
    """The unit each row without a phone joins: the one holding the message of its id
    (where the id went to several numbers, in several units, the one sent last at or
    before the row's time, as :func:`message_keys` chooses in memory); -1 for none."""
    from ._assemble import _row_times, nearest_before

    named = orphans["vendor"].astype(str) + "\x1f" + orphans["message_id"].astype(str)
    found = []
    for unit in units:
        rows = _unit_rows(files, unit[1], unit[2], columns=["vendor", "message_id", "submit_time", "done_time",
                                                               "_reject"])
        key = rows["vendor"].astype(str) + "\x1f" + rows["message_id"].astype(str)
        hit = (key.isin(named) & rows["_reject"].isna()).to_numpy()
        if hit.any():
            found.append(pd.DataFrame({"key": key[hit].to_numpy(), "t": _row_times(rows[hit]), "unit": unit[0]}))
    out = np.full(len(orphans), -1, dtype=np.int64)
    if not found:
        return out
    cands = pd.concat(found, ignore_index=True)
    codes, _ = pd.factorize(pd.concat([named, cands["key"]], ignore_index=True))
    at = nearest_before(codes[:len(named)], _row_times(orphans), codes[len(named):], cands["t"].to_numpy())
    has_id = orphans["message_id"].notna().to_numpy() & (at >= 0)
    out[has_id] = cands["unit"].to_numpy()[at[has_id]]
    return out


def _unit_rows(files: list, lo: int, hi: int, *, columns: list | None = None) -> pd.DataFrame:
    """The spilled rows of buckets ``lo`` to ``hi`` (excluded), from every spill file,
    in their order (joined and sorted in Arrow, then made one frame per schema: the files
    of one layout share one)."""
    by_schema: dict[pa.Schema, list[pa.Table]] = {}
    first, last = lo // GROUP, (hi - 1) // GROUP  # the batches holding buckets lo to hi - 1
    for path, offsets, shift in files:
        start, stop = int(offsets[lo]), int(offsets[hi])
        if stop > start:
            reader = pa.ipc.open_file(str(path))
            batches = [reader.get_batch(g) for g in range(first, last + 1)]
            base = int(offsets[first * GROUP])
            table = pa.Table.from_batches(batches, schema=reader.schema).slice(start - base, stop - start)
            table = table.select(columns) if columns else table
            if shift and "_file" in table.column_names:
                at = table.column_names.index("_file")
                table = table.set_column(at, table.field(at), pc.add(table["_file"], shift))
            by_schema.setdefault(table.schema, []).append(table)
    joined = [pa.concat_tables(tables) for tables in by_schema.values()]
    parts = [(t.sort_by("_order") if "_order" in t.column_names else t).to_pandas() for t in joined]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns or [])


def _run_units(units: list, *, workers: int, progress: bool, **shared) -> list[dict]:
    from tqdm import tqdm

    from .. import workers as pool

    with tqdm(total=len(units), desc="merging", unit="unit", disable=None if progress and len(units) > 1 else True) as bar:
        if workers > 1 and len(units) > 1:  # this process keeps what staging left: workers only
            pool.release_memory()
            out = pool.run(merge_unit, units, workers=min(workers, len(units)), bar=bar, sizes=[u[3] for u in units],
                           here=False, **shared)
            pool.stop()  # the commit needs their memory (delta-rs holds each partition's rows until it writes it)
            return out
        out = []
        for unit in units:
            out.append(merge_unit(unit, **shared))
            bar.update()
        return out


def merge_unit(unit: tuple, *, files: list, tz: str, window: str, folder: Path) -> dict:
    """Merge one unit's staged rows into messages (:func:`merge_staged`) and write them in
    the store's schema to a spill file. Returns its path, its messages, its late rejects,
    its per-file counts and the seconds of merging and finishing."""
    from ..store import store_arrow

    index, lo, hi, _, orphans = unit
    seconds, clock = {"merge": 0.0, "finish": 0.0}, [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        seconds[name] += now - clock[0]
        clock[0] = now

    parts = [_unit_rows(files, lo, hi)] if hi > lo else []
    st = pd.concat([*parts, *([orphans] if orphans is not None else [])], ignore_index=True)
    if not st["_order"].is_monotonic_increasing:  # the store's rows first, then the files in order
        st = st.sort_values("_order", kind="stable", ignore_index=True)
    log, st = merge_staged(st, tz=tz, window=window, lap=lap)
    validate(log)
    path = Path(folder) / f"unit-{index:05d}.arrow"
    partitions = _write_partitions(store_arrow(log), path)
    counts, pairs = file_counts(st)
    out = {"path": path, "rows": len(log), "partitions": partitions, "late": late_rejects(st), "counts": counts,
           "pairs": pairs, "seconds": seconds}
    del log, st
    release_memory(above=WORKER_BYTES)  # as in staging: a worker's memory stays that of one unit
    lap("finish")
    return out


def _write_partitions(table: pa.Table, path: Path) -> list[tuple]:
    """Write a unit's messages to ``path`` as one record batch per ``(vendor, month)``
    partition (in their order: the commit reads a partition's rows of every unit, a
    group of partitions at a time); returns each batch's partition and rows."""
    if not table.num_rows:  # no message (its columns may be of the null type)
        with _arrow_sink(path) as sink, pa.ipc.new_file(sink, table.schema):
            return []
    vendors, months = (pc.dictionary_encode(table[c]).combine_chunks() for c in ("vendor", "month"))
    code = vendors.indices.to_numpy().astype(np.int64) * len(months.dictionary) + months.indices.to_numpy()
    order = np.argsort(code, kind="stable")
    present, sizes = np.unique(code, return_counts=True)
    _write_runs(table, order, np.concatenate([[0], np.cumsum(sizes)]), path)
    return [((vendors.dictionary[c // len(months.dictionary)].as_py(), months.dictionary[c % len(months.dictionary)].as_py()),
             n) for c, n in zip(present.tolist(), sizes.tolist(), strict=True)]


def _commit_groups(merged: list[dict]) -> Iterator[Iterator[pa.Table]]:
    """The units' messages for the commit, in groups of whole partitions
    (:func:`analysis.store.commit_groups`): each group's rows of every unit in turn, read
    from the unit's file batch by batch."""
    from ..store import commit_groups

    rows: dict = {}
    for m in merged:
        for key, n in m["partitions"]:
            rows[key] = rows.get(key, 0) + n

    def of(group: set) -> Iterator[pa.Table]:
        for m in merged:
            wanted = [i for i, (key, _) in enumerate(m["partitions"]) if key in group]
            if wanted:
                with pa.OSFile(str(m["path"])) as f:  # not memory-mapped: read pages would count as ours
                    reader = pa.ipc.open_file(f)
                    yield pa.Table.from_batches([reader.get_batch(i) for i in wanted], schema=reader.schema)

    return (of(set(group)) for group in commit_groups(rows))


def _raw_lines(infos: list[dict], store: Path, partitions: list, store_file: int | None):
    """``raw_of(fileno, lines)`` for :func:`with_records`: the files read again, block by
    block, for the few rows rejected while merging."""
    def raw_of(fileno: int, lines: np.ndarray) -> pd.DataFrame:
        blocks = store_blocks(store, partitions) if fileno == store_file else read_chunks(infos[fileno]["file"])
        wanted = set(lines.tolist())
        found = [b.frame[b.frame["_line"].isin(wanted)] for b in blocks]
        rows = pd.concat(found, ignore_index=True).set_index("_line")
        return rows.loc[lines].reset_index()

    return raw_of


