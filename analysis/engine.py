"""Where the ledgers are computed: in memory, streaming the Parquet store one partition at
a time (in this process and worker processes), or on a Dask cluster over the same store.

Every engine turns each partition (a vendor-month of the store) into
:class:`analysis.cubes.Cubes` with the same function and merges them, so the engines give
the same numbers; only where the work runs differs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from . import config
from .atomic import new_scratch
from .cubes import Cubes, Source, merge_cubes, partial_cubes
from .events import (
    attach_events,
    expand_inputs,
    load_inputs,
    read_event_files,
    split_inputs,
    store_accounting,
)
from .kernel import iso_weeks
from .measures import sends_per_phone
from .readers import LoadError
from .schema import COLUMNS, DEFAULT_TZ, STRING, conform
from .store import StorePart, read_part, store_partitions
from .workers import default as default_workers
from .workers import run as run_pooled

ENGINES = ("pandas", "dask")


_DICTIONARY = ["carrier", "province", "city", "country", "template_id", "category", "status", "failure_reason",
               "channel", "currency", "time_source", "status_code", "error_code"]


#: Columns read together: the peak memory of reading a partition of 300,000 rows is a
#: quarter lower than reading all at once, for about 1 ms more.
READ_GROUP = 6


def read_partition(part: StorePart, *, tz: str = DEFAULT_TZ, columns: list[str] | None = None,
                   filters=None) -> pd.DataFrame:
    """One data file of the store as a canonical log (its vendor from the table's log).

    With ``columns``, only those are read, repeated text comes back categorical (read
    dictionary-encoded, no Python strings per row) and the dtypes are not conformed: the
    fast path the cubes use. ``filters`` are pyarrow row filters.
    """
    path, vendor = part.path, part.vendor
    names = read_part(path, metadata=True).schema.names
    wanted = [c for c in (columns or COLUMNS) if c in names]
    # a few columns at a time (a read's buffers are several times what it returns), one
    # thread per partition (the partitions themselves run in parallel)
    groups = [wanted] if filters is not None else [wanted[i:i + READ_GROUP] for i in range(0, len(wanted), READ_GROUP)]
    frame = pd.DataFrame({c: s for group in groups for c, s in read_part(
        path, columns=group, read_dictionary=[c for c in _DICTIONARY if c in group], filters=filters,
        use_threads=False).to_pandas(types_mapper={pa.string(): STRING, pa.large_string(): STRING}.get).items()},
        columns=wanted)
    frame["vendor"] = pd.Categorical.from_codes(np.zeros(len(frame), dtype=np.int8), categories=[vendor])
    if columns is not None:
        return frame
    return conform(frame, tz=tz)


#: What the cubes read of each partition (and ``message_id`` to join events). The phone
#: numbers' text is read only to join events and where the failed messages of the weeks
#: asked for can be: elsewhere their ``phone_key`` serves (a store from before it: the numbers).
CUBE_COLUMNS = [c for c in COLUMNS if c not in ("message_id", "country", "city", "channel")]


def _cubes_of(part: StorePart, events: dict | None, tz: str, weeks=None, tables=None) -> Cubes:
    keyed = "phone_key" in read_part(part.path, metadata=True).schema.names
    # events are joined by phone too
    text = not keyed or bool(events) or weeks is None or part.month == "unknown" or part.month in _months_of(weeks)
    columns = [c for c in CUBE_COLUMNS if c != "phone" or text] + ["phone_key"] * keyed + ["message_id"] * bool(events)
    frame = read_partition(part, tz=tz, columns=columns)
    frame["submit_time"] = frame["submit_time"].dt.tz_convert(tz)
    frame["done_time"] = frame["done_time"].dt.tz_convert(tz)
    if events:
        frame = attach_events(frame, **{k: v for k, v in events.items() if v is not None})
    return partial_cubes(frame, weeks=weeks, tables=tables)


def _phones_of(part: StorePart, phones_by_week: dict[str, set], tz: str) -> pd.DataFrame:
    wanted = sorted(set().union(*phones_by_week.values()))
    frame = read_partition(part, tz=tz, columns=["phone", "submit_time"], filters=[("phone", "in", wanted)])
    if frame.empty:
        return pd.DataFrame(columns=["week", "phone", "n"])
    t = pd.to_datetime(frame["submit_time"])
    t = t.dt.tz_localize("UTC") if t.dt.tz is None else t
    week = iso_weeks(t.dt.tz_convert(tz)).astype(object)
    out = frame.assign(week=week.to_numpy()).groupby(["week", "phone"]).size().rename("n").reset_index()
    keep = [p in phones_by_week.get(w, ()) for w, p in zip(out["week"], out["phone"], strict=True)]
    return out[keep]


#: A store of fewer rows is aggregated in this process: starting workers would cost more.
POOL_ROWS = 1_000_000


def _run(fn, items: list, *, engine: str, scheduler: str | None, progress: bool, workers: int = 1,
         sizes: list | None = None, **kw) -> list:
    """``fn(item, **kw)`` for every item, in item order: in this process, in this process
    and ``workers - 1`` more (the largest ``sizes`` first), or on a Dask cluster."""
    if engine == "pandas":
        from tqdm import tqdm

        with tqdm(total=len(items), unit="partition", disable=not (progress and sys.stderr.isatty())) as bar:
            if min(workers, len(items)) > 1:
                return run_pooled(fn, items, workers=min(workers, len(items)), bar=bar, sizes=sizes, **kw)
            results = []
            for item in items:
                results.append(fn(item, **kw))
                bar.update()
            return results
    if engine != "dask":
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    from contextlib import nullcontext

    from distributed import Client, LocalCluster

    local = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) \
        if scheduler is None else nullcontext()
    with local as cluster, Client(scheduler or cluster) as client:
        shared = {k: client.scatter(v, broadcast=True) if isinstance(v, (dict, pd.DataFrame)) else v
                  for k, v in kw.items()}
        return client.gather(client.map(fn, items, **shared, pure=False))


def _months_of(weeks) -> set[str]:
    """The months (``YYYY-MM``) the ISO weeks touch, a day either side for time zones."""
    months = set()
    for week in weeks:
        monday = datetime.strptime(f"{week}-1", "%G-W%V-%u")
        months |= {(monday + timedelta(days=d)).strftime("%Y-%m") for d in range(-1, 9)}
    return months


#: Input staged per Dask task: consecutive files up to this size (or one larger file).
CHUNK_BYTES = 64 << 20


def stage_inputs(paths: list, *, folder: Path, engine: str = "pandas", scheduler: str | None = None,
                 progress: bool = False, **options):
    """Read and stage export files into a spill in ``folder``
    (:func:`analysis.readers.stage_to_spill`) in this process, or on a Dask cluster in
    chunks of consecutive files of about :data:`CHUNK_BYTES`, merged in file order: the
    same ``(Staging, Spill)`` either way, ready for :func:`analysis.readers.merge_spill`.
    A remote cluster's workers must see the files and ``folder`` at the same absolute
    paths (a shared disk)."""
    from .readers import stage_to_spill, staging_workers

    if engine == "pandas":  # a large input: this process reads, the worker processes stage
        return stage_to_spill((0, list(paths)), folder=folder, progress=progress, workers=staging_workers(paths),
                              **options)
    given = [str(p) for p in paths]
    absolute = [Path(p).resolve() for p in paths]
    chunks, size = [[]], 0
    for p in absolute:
        if chunks[-1] and size + p.stat().st_size > CHUNK_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(p)
        size += p.stat().st_size
    options["skip_unknown"] = frozenset(Path(p).resolve() for p in options.get("skip_unknown", ()))
    items = [(k << 40, chunk) for k, chunk in enumerate(chunks)]  # row order: the files' order
    staging = spill = None
    for part, part_spill in _run(stage_to_spill, items, engine=engine, scheduler=scheduler, progress=progress,
                                 folder=Path(folder).resolve(), **options):
        if staging is None:
            staging, spill = part, part_spill
        else:
            shift = len(staging.infos)
            staging.extend(part)
            spill.extend(part_spill, shift=shift)
    # the files by the names they were given (the workers saw absolute paths)
    names = dict(zip(map(str, absolute), given, strict=True))
    for info in staging.infos:
        info["file"] = names.get(info["file"], info["file"])
    staging.rejects = [r.assign(file=r["file"].map(lambda f: names.get(f, f))) if isinstance(r, pd.DataFrame)
                       else {**r, "file": names.get(r["file"], r["file"])} for r in staging.rejects]
    return staging, spill


def ledger_source(
    inputs: Iterable | None = None,
    *,
    vendors=None,
    engine: str = "pandas",
    scheduler: str | None = None,
    tz: str = DEFAULT_TZ,
    source_tz: str | None = None,
    vendor: str | None = None,
    mapping=None,
    progress: bool = False,
    workers: int | None = None,
    weeks=None,
    measures=None,
) -> Source:
    """Read the inputs for the ledgers: their partial sums, merged, and what else the
    ledgers need (:class:`analysis.cubes.Source`), for :func:`compute` and
    :func:`analysis.weekly_ledgers`.

    ``inputs``: exports, the store, event files or folders (default:
    :func:`analysis.config.default_inputs`, the store and the demo's event files);
    ``vendors``: only those vendors' messages and bills.

    When every send-log input is the Parquet store, the store is streamed partition by
    partition (``engine="pandas"``: in ``workers`` processes, by default one per CPU up to
    :data:`analysis.workers.MAX_WORKERS` for a store of at least :data:`POOL_ROWS` rows, and this process
    for a smaller one) or on Dask (``engine="dask"``; ``scheduler`` is a cluster address,
    a local cluster by default), with bounded memory. Exports are ingested into a scratch
    store first (:func:`analysis.readers.ingest_files`, streamed, in bounded memory) and
    read the same way; exports given beside a store are merged with it in memory
    (:func:`analysis.load_inputs`). ``weeks``: the ISO weeks
    whose failed messages to keep for the repeat-failure list (default: all); ``measures``:
    the measures the source will be finished into (names of
    :data:`analysis.ledgers.MEASURES`; default the weekly ledgers',
    :data:`~analysis.ledgers.LEDGER_MEASURES`): only their sums are made.

    The worker processes are spawned, as with Dask's local cluster: a script that calls
    this on a large store runs it under ``if __name__ == "__main__":`` (or passes
    ``workers=1``); notebooks and the console command need nothing.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    from .ledgers import LEDGER_MEASURES, tables_of

    tables = (*tables_of(LEDGER_MEASURES if measures is None else measures), "failed")
    if not inputs:
        from .config import default_inputs

        inputs = default_inputs()
    inputs = list(inputs)
    keep = None if not vendors else {str(v).lower() for v in ([vendors] if isinstance(vendors, str) else vendors)}
    files, in_folders = expand_inputs(inputs)
    logs, event_files = split_inputs(files)
    if not logs:
        raise LoadError("no send log among the inputs: give exports or the store (data/interim)")
    stores = [f for f in logs if f.is_dir()]
    exports = [f for f in logs if not f.is_dir()]
    if exports and stores:  # exports beside a store: merged with its rows in memory
        if engine == "dask":
            raise ValueError("--engine dask reads exports or a store, not both: ingest the exports first")
        data = load_inputs(inputs, vendors=vendors, tz=tz, source_tz=source_tz, vendor=vendor, mapping=mapping,
                           progress=progress)
        return Source(cubes=partial_cubes(data.log, weeks=weeks, tables=tables), messages=lambda phones: sends_per_phone(data.log, phones),
                      bill=data.bill, summary=data.summary, rejects=data.rejects, files=data.files)
    if not exports:
        return _store_source(stores, event_files, files, engine=engine, scheduler=scheduler, tz=tz,
                             progress=progress, workers=workers, weeks=weeks, tables=tables, vendors=keep)
    # exports alone: ingested into a scratch store (streamed, in bounded memory), which is
    # then read as any store is; removed when the source is no longer used
    import shutil
    import tempfile
    import weakref

    from .readers import ingest_files
    from .store import store_path

    scratch = new_scratch(tempfile.gettempdir(), config.SCRATCH)  # a killed run's is removed by the next
    try:
        ingested = ingest_files(exports, scratch, vendor=vendor, mapping=mapping, tz=tz, source_tz=source_tz,
                                skip_unknown=in_folders, progress=progress, workers=workers)
        source = _store_source([store_path(scratch)], event_files, files, engine=engine, scheduler=scheduler, tz=tz,
                               progress=progress, workers=workers, weeks=weeks, tables=tables, vendors=keep,
                               ingested=ingested)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    weakref.finalize(source, shutil.rmtree, scratch, True)
    return source


def _store_source(stores: list, event_files: dict, files: list, *, engine, scheduler, tz, progress, workers, weeks,
                  tables=None, vendors=None, ingested=None) -> Source:
    """:func:`ledger_source` of stores (``ingested``: the scratch store of exports, whose
    accounting is the ingest's, not the store's history)."""
    joined, read = read_event_files(event_files, tz=tz)
    events = {k: joined[k] for k in ("clicks", "replies", "complaints") if k in joined} or None
    partitions = [p for s in stores for p in store_partitions(s)]
    if not partitions and ingested is None:
        raise FileNotFoundError(f"{', '.join(map(str, stores))}: the store holds no partitions")
    if vendors:
        partitions = [p for p in partitions if p.vendor.lower() in vendors]
    rows = [p.rows for p in partitions]
    if workers is None:
        workers = default_workers() if sum(rows) >= POOL_ROWS else 1
    if partitions:
        cubes = merge_cubes(_run(_cubes_of, partitions, engine=engine, scheduler=scheduler, progress=progress,
                                 workers=workers, sizes=rows, events=events, tz=tz, weeks=weeks, tables=tables))
    else:  # every row of the exports rejected: ledgers of nothing, the rejects say why
        cubes = partial_cubes(conform(pd.DataFrame(columns=COLUMNS), tz=tz), weeks=weeks, tables=tables)

    def messages_streamed(phones_by_week):
        if not any(phones_by_week.values()):
            return {w: pd.Series(dtype="int64") for w in phones_by_week}
        # a narrow, filtered read of the partitions holding those weeks
        months = _months_of(phones_by_week)
        holding = [p for p in partitions if p.month in months]
        parts = _run(_phones_of, holding, engine=engine, scheduler=scheduler, progress=False,
                     phones_by_week=phones_by_week, tz=tz) or [pd.DataFrame(columns=["week", "phone", "n"])]
        counts = pd.concat(parts, ignore_index=True).groupby(["week", "phone"])["n"].sum()
        return {w: counts.xs(w).astype("int64") if w in counts.index.get_level_values(0) else pd.Series(dtype="int64")
                for w in phones_by_week}

    accounting = store_accounting(stores) if ingested is None else ingested.summary
    summary = pd.concat([accounting, *[r.summary for r in read]], ignore_index=True)
    rejects = pd.concat([*([ingested.rejects] if ingested is not None else []), *[r.rejects for r in read]]
                        or [pd.DataFrame(columns=["file", "line", "reason", "reason_code", "record"])], ignore_index=True)
    bill = joined["bill"]
    if vendors:
        bill = bill[bill["vendor"].astype(str).str.lower().isin(vendors)].reset_index(drop=True)
    return Source(cubes=cubes, messages=messages_streamed, bill=bill, summary=summary, rejects=rejects, files=files)


def compute(measures: Iterable[str], source, *, engine: str = "pandas", scheduler: str | None = None, weeks=None,
            bill: pd.DataFrame | None = None, prices: dict[str, float] | None = None,
            modes: dict[str, str] | None = None, **read) -> dict[str, pd.DataFrame]:
    """Compute measures, the engine chosen at the end: each partition's partial sums,
    merged, then each measure's finish step (:data:`analysis.ledgers.MEASURES`). Only the
    sums the measures need are made.

    Parameters
    ----------
    measures : names of :data:`analysis.ledgers.MEASURES`: the weekly ledgers' ``quality``,
        ``trend``, ``regions``, ``failures``, ``content``, ``billing``, ``cost``,
        ``alerts``; ``latency`` (the histogram); ``peaks`` (peak windows against
        off-peak), ``hours`` and ``weekday_hours`` (arrival and click-through by send
        hour), over every week.
    source : a canonical send log in memory (one partition), the :func:`ledger_source`
        of inputs, or inputs as it reads them (the store, exports, event files,
        folders), streamed partition by partition.
    engine, scheduler : where the partitions are summed (:func:`ledger_source`); a log in
        memory is summed here.
    weeks : ISO weeks whose detail (latency, failures, content) to keep; default all.
    bill, prices, modes : the vendors' bills (default: the bill files among the inputs)
        and contract terms, for ``billing`` and ``cost``.
    **read : :func:`ledger_source`'s reading options (``tz``, ``vendor``, ``workers`` …).

    Returns
    -------
    ``{name: DataFrame}``: each measure's frame, with the columns its finish step lists
    (:func:`analysis.ledgers.quality_ledger`, :func:`~analysis.ledgers.failure_ledger` …).

    Examples
    --------
    >>> compute(["quality"], log)["quality"]  # doctest: +SKIP
    >>> compute(["quality", "failures"], ["data/interim/send_log"], engine="dask")  # doctest: +SKIP
    """
    from .ledgers import MEASURES, finish, tables_of

    names = [measures] if isinstance(measures, str) else list(measures)
    if unknown := [n for n in names if n not in MEASURES]:
        raise ValueError(f"no measure {', '.join(map(repr, unknown))} (measures: {', '.join(MEASURES)})")
    if isinstance(source, pd.DataFrame):
        cubes = partial_cubes(source, weeks=weeks, tables=tables_of(names))
    elif isinstance(source, Source):
        cubes, bill = source.cubes, source.bill if bill is None else bill
    else:
        inputs = [source] if isinstance(source, (str, Path)) else source
        read_from = ledger_source(inputs, engine=engine, scheduler=scheduler, weeks=weeks, measures=names, **read)
        cubes, bill = read_from.cubes, read_from.bill if bill is None else bill
    return {n: finish(n, cubes, bill=bill, prices=prices, modes=modes) for n in names}
