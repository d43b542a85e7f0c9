"""From raw files to the canonical send log: detect each file's layout, stage it, and
assemble the staged rows of every file into messages.

Each input row ends up in exactly one of three places:

* **loaded** -- it contributed to a message of the log (a submission, a receipt merged
  into its submission, a later receipt of the same message, a part of a long message …);
* **rejected** -- kept in ``rejects`` with file, line and reason;
* **duplicate** -- the same record as a row already loaded (a re-exported period, an
  Aliyun receipt push repeated).

``loaded + rejected + duplicates == rows read`` for every file.

A receipt proves a message was sent: a message known only from receipts loads with the
receipt's own submit date where it states one (SMPP ``submit date``, SNS ``timestamp``),
else with the receipt time as its send time (``time_source = receipt``: latency unknown).
When its submission arrives later, the two meet on the message id and the submission's
time wins.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm import tqdm

from ..codes import classify_failures
from ..distinct import combine_codes, key_codes, pa_array, per_distinct
from ..enrichment import enrich, normalize_carriers, normalize_provinces
from ..kernel import day_codes, local_clock
from ..normalize import (
    count_segments,
    country_of,
    infer_attempts,
    infer_categories,
    normalize_phones,
)
from ..schema import (
    CATEGORIES,
    COLUMNS,
    DEFAULT_TZ,
    FAILURE_REASONS,
    FINAL_STATUSES,
    LABELS,
    STRING,
    TIME_SOURCES,
    conform,
    reason_codes,
    sort_log,
    validate,
)
from ._files import CHUNK_ROWS, LoadError, RawFile, read_chunks, records_json
from ._layout import Layout, first_reason
from .layouts import builtin, by_name
from .mapping import mapping_layout

#: Every built-in layout (the declarations in ``analysis/layouts/``).
LAYOUTS: list[Layout] = list(builtin())
#: A weak match: a layout told by fewer than three fields (the canonical layout's phone
#: and submit_time) that knows fewer than this share of a file's headers is not taken
#: for it without being named.
WEAK = 0.5

_ACCOUNT = ["rows_read", "loaded", "rejected", "duplicates"]
_TOTAL_WORDS = {"合计", "总计", "小计", "total", "totals", "sum", "grand total"}
_RANK = {s: i for i, s in enumerate(TIME_SOURCES)}


@dataclass
class LoadResult:
    """A loaded send log with its accounting.

    Attributes
    ----------
    log : DataFrame
        The canonical send log (see :mod:`analysis.schema`).
    rejects : DataFrame
        One row per rejected input row: ``file``, ``line`` (line, spreadsheet row, or
        record number in a JSON/XML document), ``reason`` (in words, naming the value),
        ``reason_code`` (its stable kind, :data:`analysis.schema.REJECT_CODES`), ``record``
        (the raw row as JSON).
    summary : DataFrame
        One row per file: ``file``, ``layout``, ``vendor``, ``encoding``,
        ``rows_read``, ``loaded``, ``rejected``, ``duplicates``, ``messages``.
    partitions : list of StorePart
        The store's files that were read and merged into ``log``.
    stages : dict
        Seconds spent in each stage: ``read`` (the files as raw tables), ``stage``
        (layouts, phones, times), ``store`` (finding and reading the partitions to merge
        with), ``merge`` (message ids, duplicates, receipts into submissions), ``finish``
        (statuses and reasons, segments, carrier and region, resend attempts).
    """

    log: pd.DataFrame
    rejects: pd.DataFrame
    summary: pd.DataFrame
    partitions: list = field(default_factory=list)
    stages: dict = field(default_factory=dict)


def detect_layout(headers: Iterable[str], *, vendor: str | None = None) -> Layout:
    """The layout of a table with these headers. Detection never guesses.

    The candidates are the layouts whose identifying fields are all among the headers
    (any spelling); the one that knows the most of the headers is taken. A tie is an
    error that names the candidates, and so is a weak match (the layout knows fewer than
    half of the headers): choose with ``--layout NAME``. ``vendor`` restricts the choice
    to that vendor's layouts (or names one layout); a vendor with none reads canonical
    headers.

    Raises
    ------
    LoadError
        No layout fits (the message says to draft one with ``sms-ledger sniff``), two
        fit equally, or the best fits weakly (told by fewer than three fields, it knows
        fewer than half of the headers).
    """
    heads = [h for h in headers if h != "_line"]
    pool = [lay for lay in LAYOUTS if lay.declaration.format == "table"]  # a log is told by its lines
    named = [lay for lay in pool if vendor in (lay.name, lay.vendor)] if vendor else []
    pool = named or pool
    canonical = by_name("canonical")
    if vendor and not named and canonical.matches(heads) and not any(lay.matches(heads) for lay in pool):
        return canonical  # a vendor without its own layout: canonical headers
    return choose_layout([(lay, heads) for lay in pool], named=bool(named))


def choose_layout(candidates: list[tuple[Layout, list]], *, named: bool = False) -> Layout:
    """Of layouts each with the headers it would read, the one whose identifying fields
    are all there and that knows the most of them; a tie or a weak match is an error
    (:func:`detect_layout`)."""
    found = sorted(((lay.known(heads), lay, heads) for lay, heads in candidates if lay.matches(heads)),
                   key=lambda x: -x[0])
    heads = candidates[0][1] if candidates else []
    shown = ", ".join(sorted({str(h).strip() for h in heads})) or "none"
    if not found:
        raise LoadError(f"unrecognised layout (headers: {shown}); no layout declares these fields: run `sms-ledger "
                        "sniff FILE` to draft one, then load with --mapping DRAFT.toml")
    score, best, heads = found[0]
    ties = [lay for k, lay, _ in found if k == score]
    if len(ties) > 1:
        raise LoadError(f"fits {len(ties)} layouts equally ({', '.join(f'{lay.name} of {lay.vendor}' for lay in ties)}, "
                        f"each knowing {score} of {len(heads)} headers): never guessed; choose one with --layout NAME")
    if score < WEAK * len(heads) and len(best.required) < 3 and not named:
        shown = ", ".join(sorted({str(h).strip() for h in heads}))
        raise LoadError(f"weakly fits layout {best.name} of {best.vendor} (it knows {score} of {len(heads)} headers: "
                        f"{shown}): never guessed; choose it with --layout {best.name}, or draft a layout with "
                        "`sms-ledger sniff FILE`")
    return best


def detect_line_layout(lines: pd.Series, *, vendor: str | None = None) -> Layout:
    """The line layout whose kinds of line match the most of ``lines``; a tie, or no
    match, is an error (as :func:`detect_layout`)."""
    from .language import line_hits

    pool = [lay for lay in LAYOUTS if lay.declaration.format == "lines"]
    named = [lay for lay in pool if vendor in (lay.name, lay.vendor)] if vendor else []
    pool = named or pool
    text = lines.astype(STRING)
    scores = []
    for lay in pool:
        hit = np.zeros(len(text), dtype=bool)
        for kind in lay.declaration.lines:
            if not kind.reject:
                hit |= line_hits(text, kind.match)
        scores.append((int(hit.sum()), lay))
    scores.sort(key=lambda x: -x[0])
    if not scores or scores[0][0] == 0:
        raise LoadError("unrecognised layout: no line is a record of a known log; run `sms-ledger sniff FILE`")
    ties = [lay for k, lay in scores if k == scores[0][0]]
    if len(ties) > 1:
        raise LoadError(f"fits {len(ties)} log layouts equally ({', '.join(lay.name for lay in ties)}): "
                        "choose one with --layout NAME")
    return scores[0][1]


def layout_named(name: str) -> Layout:
    """A built-in layout by name (``--layout``), or an error listing them."""
    found = by_name(name)
    if found is None:
        raise LoadError(f"no layout named {name!r}; the built-in ones: {', '.join(lay.name for lay in LAYOUTS)}")
    return found


def read_send_log(path_or_paths, *, vendor: str | None = None, mapping: dict | str | Path | None = None,
                  tz: str = DEFAULT_TZ, source_tz: str | None = None) -> pd.DataFrame:
    """Read one or more platform exports into the canonical send log.

    Parameters
    ----------
    path_or_paths : path or list of paths
        CSV (UTF-8, UTF-8 with BOM, GBK/GB18030; gzip allowed), XLSX, Parquet (a file or
        the store ``sms-ledger ingest`` writes), JSON lines, JSON or XML API responses
        saved as they came, or a gateway log. A folder is read as a Parquet store.
    vendor : str, optional
        Force a vendor (``aliyun``, ``tencent``, ``twilio``, ``vonage``, ``aws_sns``,
        ``gateway``, ``canonical``) or one layout (``aliyun_report`` …). For files in
        the canonical layout without a vendor column, any name is written as vendor.
    mapping : dict or path, optional
        Column mapping for any other layout (see :mod:`analysis.readers.mapping`).
    tz : str
        Time zone of the result.
    source_tz : str, optional
        Zone of naive timestamps whose zone the vendor does not fix: gateway logs (the
        SMSC's clock), canonical files and mappings. Default: ``tz``. Vendors with a
        known zone keep it (Twilio, SNS and Vonage UTC; Aliyun and Tencent Beijing).

    Returns
    -------
    DataFrame
        The canonical send log, one row per message attempt, sorted by
        ``submit_time``, ``vendor``, ``message_id``. Columns and dtypes:
        :data:`analysis.schema.COLUMNS`. Rejected rows and the row accounting are in
        :func:`load_send_log`'s result.

    Raises
    ------
    LoadError
        A file cannot be read at all (missing, undecodable, unknown layout); the
        message names the file.
    """
    return load_send_log(path_or_paths, vendor=vendor, mapping=mapping, tz=tz, source_tz=source_tz).log


def load_send_log(
    path_or_paths,
    *,
    vendor: str | None = None,
    mapping: dict | str | Path | None = None,
    tz: str = DEFAULT_TZ,
    source_tz: str | None = None,
    resend_window: str = "30min",
    progress: bool = False,
    store: str | Path | None = None,
    skip_unknown=(),
    staging: Staging | None = None,
) -> LoadResult:
    """Like :func:`read_send_log`, returning the rejects and row accounting too.

    ``resend_window`` is the window of resend inference (see
    :func:`analysis.normalize.infer_attempts`); ``progress`` shows a bar over files.
    ``skip_unknown``: files (found in a folder) that are skipped, with a warning and a
    ``skipped`` row in the summary, when their layout is not recognised.
    ``store``: a Parquet store folder (``…/send_log``) to merge with; only its
    partitions the inputs can touch are read (:func:`analysis.store.partitions_for`),
    and the result names them (``partitions``).
    ``staging``: the files already read and staged (:func:`stage_files`, e.g. on a
    Dask cluster); ``path_or_paths`` then only names them.
    """
    paths = [path_or_paths] if isinstance(path_or_paths, str | Path) else list(path_or_paths)
    if not paths:
        raise LoadError("no input files given")
    stages, clock = {}, time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        stages[name] = stages.get(name, 0.0) + now - clock
        clock = now

    if staging is None:
        staging = stage_files(paths, vendor=vendor, mapping=mapping, tz=tz, source_tz=source_tz,
                              skip_unknown=skip_unknown, progress=progress)
    else:  # the caller's staging stays as it was: the store's rows are added to a copy
        staging = replace(staging, parts=list(staging.parts), rejects=list(staging.rejects),
                          infos=list(staging.infos), raws=list(staging.raws))
    stages.update(staging.stages)  # read and staged here, or on a Dask cluster (their seconds summed)
    clock = time.perf_counter()
    staged_parts, rejects, infos, raws = staging.parts, staging.rejects, staging.infos, staging.raws
    partitions = []
    if store is not None and Path(store).is_dir():
        from ..store import partitions_for

        vendors, keys, ids = touched(pd.concat(staged_parts, ignore_index=True), tz=tz)
        partitions = partitions_for(store, vendors, {m for _, m in keys}, ids)
        if partitions:
            staging.add([_store_rows(Path(store), partitions)], None, vendor=vendor, tz=tz, source_tz=source_tz)
            staged_parts.insert(0, staged_parts.pop())  # the store's rows come first: the inputs are newer
    lap("store")
    staged = pd.concat(staged_parts, ignore_index=True)
    staged["_order"] = np.arange(len(staged))
    log, staged = merge_staged(staged, tz=tz, window=resend_window, lap=lap)
    rejects += with_records(late_rejects(staged), infos,
                             lambda fileno, lines: raws[fileno].set_index("_line").loc[lines].reset_index())
    rejects_df = concat_rejects(rejects)
    counts, pairs = file_counts(staged)
    summary = summarize(infos, [counts], [pairs], rejects_df)
    lap("merge")
    validate(log)  # the load boundary: what every measure may take for granted
    return LoadResult(log, rejects_df.drop(columns="_file"), summary, partitions, stages)


def touched(staged: pd.DataFrame, *, tz: str = DEFAULT_TZ) -> tuple[set, set, pa.Array]:
    """What staged rows can touch in the store (:func:`analysis.store.partitions_for`):
    their vendors; the ``(vendor, month)`` pairs of their submit and receipt times (local
    months, ``YYYY-MM``); and the message ids of the rows without a submit time."""
    vendor_codes, names = key_codes(staged["vendor"])
    names = names.astype(str)
    vendors = set(names[np.unique(vendor_codes[vendor_codes >= 0])])
    keys = set()
    for col in ("submit_time", "done_time"):
        if col not in staged or not pd.api.types.is_datetime64_any_dtype(staged[col]):
            continue
        t = staged[col].dt.tz_convert(tz) if staged[col].dt.tz is not None else staged[col].dt.tz_localize(tz)
        # distinct (vendor, local day) pairs first, then the days' months
        day, calendar = day_codes(local_clock(t))
        pair = vendor_codes.astype(np.int64) * (len(calendar) + 1) + day
        pair = np.unique(pair[(vendor_codes >= 0) & (day >= 0)])
        v, d = np.divmod(pair, len(calendar) + 1)
        keys |= set(zip(names[v], calendar[d].strftime("%Y-%m"), strict=True))
    ids = pa.array([], pa.string())
    if "message_id" in staged:
        submitted = staged["submit_time"].notna() if "submit_time" in staged else False
        orphans = staged["message_id"].notna() & ~submitted
        ids = pa.array(staged.loc[orphans, "message_id"].astype(str).unique(), pa.string())
    return vendors, keys, ids


@dataclass
class Staging:
    """Files read and staged, before their rows are merged into messages: the staged rows
    (``_file`` numbers the file), each file's raw records (for the rejects), its
    accounting so far and its early rejects. Picklable, so files can be staged on other
    machines and the stagings merged (:meth:`extend`).

    With a ``sink`` (a callable), each block's staged rows are handed to it instead of
    kept, and the raw records are not kept: how :func:`analysis.readers.ingest_files`
    stages an input larger than memory."""

    parts: list = field(default_factory=list)
    rejects: list = field(default_factory=list)
    infos: list = field(default_factory=list)
    raws: list = field(default_factory=list)
    stages: dict = field(default_factory=dict)
    skip_unknown: frozenset = frozenset()
    sink: object = None

    def add(self, batch: list[RawFile], layout, *, vendor, tz, source_tz) -> None:
        """Stage files that share one header and format together (their layout follows
        from the header): the cost of many small exports is then the cost of one. A later
        block of a file read in blocks (``chunk`` 1, 2 …) adds to the file staged last."""
        block = self.prepare(batch, layout, vendor=vendor)
        if block is None:
            return
        st, rejects = stage_block(block, vendor=vendor, tz=tz, source_tz=source_tz)
        if rejects is not None:
            self.rejects.append(rejects)
        if self.sink is None:
            self.parts.append(st)
        else:
            self.sink(st)

    def prepare(self, batch: list[RawFile], layout, *, vendor) -> Block | None:
        """The accounting of a batch of files (or a later block of the file staged last)
        and its layout, before it is staged (:func:`stage_block`, here or on a worker);
        ``None`` for a file skipped as not an export."""
        more = bool(batch[0].chunk)  # a later block of the file staged last
        if more and self.infos[-1]["layout"] == "skipped":
            return None
        first = len(self.infos) - 1 if more else len(self.infos)
        frame = batch[0].frame if len(batch) == 1 else pd.concat([r.frame for r in batch], ignore_index=True)
        raw = RawFile(batch[0].path, frame, batch[0].kind, batch[0].encoding, document=batch[0].document)
        try:
            lay = _layout_of(raw, vendor=vendor, layout=layout)
        except LoadError as exc:
            if all(r.path in self.skip_unknown for r in batch) and "unrecognised layout" in str(exc):
                for r in batch:
                    warnings.warn(f"{r.path}: skipped, not an export this project reads", stacklevel=4)
                    self.infos.append({"file": str(r.path), "layout": "skipped", "vendor": None, "encoding": None,
                                       "rows_read": 0})
                    self.raws.append(pd.DataFrame())
                return None
            raise LoadError(f"{batch[0].path}: {exc}") from None
        if lay is not None and lay.declaration is not None and (lay.declaration.explode or lay.declaration.records):
            from .language import explode

            batch = [replace(r, frame=explode(r.frame, lay.declaration.explode)) for r in placed_records(batch, lay)]
            frame = batch[0].frame if len(batch) == 1 else pd.concat([r.frame for r in batch], ignore_index=True)
            raw = RawFile(batch[0].path, frame, batch[0].kind, batch[0].encoding)
        for fileno, r in enumerate(batch, start=first):
            if more:
                self.infos[fileno]["rows_read"] += len(r.frame) + len(r.bad)
            else:
                self.raws.append(r.frame if self.sink is None else None)
                self.infos.append({"file": str(r.path), "layout": lay.name if lay else "empty",
                                   "vendor": lay.vendor if lay else None, "encoding": r.encoding,
                                   "rows_read": len(r.frame) + len(r.bad)})
            for line, reason, text in r.bad:
                self.rejects.append({"_file": fileno, "file": str(r.path), "line": line, "reason": reason,
                                     "record": text})
        return Block(raw, lay, first, [len(r.frame) for r in batch], [str(r.path) for r in batch])

    def extend(self, other: Staging) -> Staging:
        """Append another staging's files after this one's (their numbers shifted)."""
        shift = len(self.infos)
        self.parts += [p.assign(_file=p["_file"] + shift) for p in other.parts]
        self.rejects += [r.assign(_file=r["_file"] + shift) if isinstance(r, pd.DataFrame) else {**r, "_file": r["_file"] + shift}
                         for r in other.rejects]
        self.infos += other.infos
        self.raws += other.raws
        for name, sec in other.stages.items():
            self.stages[name] = self.stages.get(name, 0.0) + sec
        return self


def stage_files(paths, *, vendor: str | None = None, mapping=None, tz: str = DEFAULT_TZ,
                source_tz: str | None = None, skip_unknown=(), progress: bool = False, sink=None) -> Staging:
    """Read and stage ``paths``: the first step of :func:`load_send_log`, which merges
    the result into messages. Options as :func:`load_send_log`'s; the seconds of its
    ``read`` and ``stage`` steps are in the result's ``stages``. With ``sink``, large
    files are read and staged in blocks of :data:`CHUNK_ROWS` rows, each handed to it
    (:class:`Staging`)."""
    layout = mapping_layout(mapping) if mapping is not None else None
    staging = Staging(skip_unknown=frozenset(Path(p) for p in skip_unknown), sink=sink)
    started, reading = time.perf_counter(), [0.0]
    lines = layout is not None and layout.declaration is not None and layout.declaration.format == "lines"
    for batch in read_batches(paths, blocks=sink is not None, progress=progress, reading=reading, lines=lines):
        staging.add(batch, layout, vendor=vendor, tz=tz, source_tz=source_tz)
    staging.stages["read"] = reading[0]
    staging.stages["stage"] = time.perf_counter() - started - reading[0]
    return staging


def read_batches(paths, *, blocks: bool, progress: bool, reading: list, lines: bool = False) -> Iterator[list[RawFile]]:
    """The files read (in blocks of :data:`CHUNK_ROWS` rows if ``blocks``) and batched
    for staging: consecutive small files of one header and format together. The
    seconds spent reading are added to ``reading[0]``."""
    def raws():
        for path in tqdm(paths, desc="reading", unit="file", disable=None if progress else True):
            chunks = read_chunks(path, rows=CHUNK_ROWS if blocks else None, lines=lines)
            while True:
                clock = time.perf_counter()
                raw = next(chunks, None)
                reading[0] += time.perf_counter() - clock
                if raw is None:
                    break
                yield raw

    batch: list[RawFile] = []
    for raw in raws():
        if batch and (_batch_key(raw) != _batch_key(batch[-1]) or sum(len(r.frame) for r in batch) >= CHUNK_ROWS):
            yield batch
            batch = []
        batch.append(raw)
    if batch:
        yield batch


def _batch_key(raw: RawFile) -> tuple:
    """Files staged together: the same format and the same header (never the store, or
    a file with no columns)."""
    heads = tuple(c for c in raw.frame.columns if c != "_line")
    return (raw.kind, heads, id(raw) if raw.path.is_dir() or not heads or raw.chunk is not None else None)


@dataclass
class Block:
    """Rows read and accounted for, to be staged (:meth:`Staging.prepare`): the ``raw``
    rows of one or more files, their ``layout`` (``None`` for a file with no records),
    the ``first`` file's number and each file's rows (``sizes``) and name (``files``)."""

    raw: RawFile
    layout: Layout | None
    first: int
    sizes: list
    files: list


def _layout_of(raw: RawFile, *, vendor, layout) -> Layout | None:
    """The layout of a batch's rows: ``layout`` when given, the store's, or detected
    from the header (and, for a JSON document, from the records where each layout that
    says where its records are finds them)."""
    heads = _heads(raw.frame)
    if not len(raw.frame) and not heads and raw.document is None:  # an API page with no records
        return None
    if raw.path.is_dir():  # the ingested store is always canonical
        return by_name("canonical")
    if layout is not None:
        return layout
    if raw.kind == "log":
        return detect_line_layout(raw.frame["text"], vendor=vendor)
    placed = [lay for lay in LAYOUTS if lay.declaration.records is not None and (
        not vendor or vendor in (lay.name, lay.vendor))]
    if raw.document is None or not placed:
        return detect_layout(heads, vendor=vendor)
    from ._files import document_frame, records_at

    candidates = [(lay, heads) for lay in LAYOUTS if lay.declaration.format == "table" and
                  lay.declaration.records is None and (not vendor or vendor in (lay.name, lay.vendor))]
    for lay in placed:
        records = records_at(raw.document, lay.declaration.records)
        if records:
            candidates.append((lay, _heads(document_frame(records))))
    empty = not len(raw.frame) and not heads  # an API page with no records, unless a layout finds its own
    if empty and not any(lay.matches(h) for lay, h in candidates):
        return None
    return choose_layout(candidates, named=bool(vendor))


def _heads(frame: pd.DataFrame) -> list:
    """A raw table's headers and the paths inside its lists (to be exploded)."""
    heads = [c for c in frame.columns if c != "_line"]
    return heads + [k for k in frame.attrs.get("nested", []) if k not in heads]


def placed_records(batch: list[RawFile], layout: Layout) -> list[RawFile]:
    """The files of a batch read again at the records path their layout declares."""
    from ._files import document_frame, records_at

    if layout is None or layout.declaration is None or layout.declaration.records is None:
        return batch
    return [replace(r, frame=document_frame(records_at(r.document, layout.declaration.records) or []))
            if r.document is not None else r for r in batch]


def stage_block(block: Block, *, vendor, tz, source_tz) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """A block's rows staged in canonical columns (``_file`` numbering its files), and
    the rows rejected while staging (``None`` if none)."""
    raw, layout = block.raw, block.layout
    try:
        st = _stage_file(raw, vendor=None if raw.path.is_dir() else vendor, layout=layout, tz=tz, source_tz=source_tz)
    except LoadError as exc:
        raise LoadError(f"{raw.path}: {exc}") from None
    st["_file"] = np.repeat(np.arange(block.first, block.first + len(block.sizes)), block.sizes)
    bad = st["_reject"].notna().to_numpy()
    if not bad.any():
        return st, None
    filenos = st["_file"].to_numpy()[bad]
    return st, pd.DataFrame({"_file": filenos, "file": [block.files[f - block.first] for f in filenos],
                             "line": st.loc[bad, "_line"].to_numpy(),
                             "reason": st.loc[bad, "_reject"].astype(str).to_numpy(),
                             "record": records_json(raw.frame.loc[st.index[bad]])})


def _stage_file(raw: RawFile, *, vendor, layout: Layout | None, tz, source_tz) -> pd.DataFrame:
    frame = raw.frame
    if layout is None:
        return _empty_stage(frame)
    renamed = layout.rename(frame)
    st = layout.stage(renamed, tz, layout.source_tz or source_tz)
    vendor_name = layout.vendor
    if layout.name in {"canonical", "mapping"} and vendor and vendor != "canonical":
        vendor_name = vendor  # a vendor without a layout of its own names the file's rows
    given = st["vendor"].astype(STRING) if "vendor" in st else pd.Series(pd.NA, index=st.index, dtype=STRING)
    st["vendor"] = given.fillna(vendor_name)
    phone, reason = normalize_phones(st["phone"], region=layout.region, international=layout.intl_phones)
    st["phone"] = phone
    if layout.id_per_phone and "message_id" in st:  # a request id shared by a batch: the message is id + phone
        digest = pd.util.hash_pandas_object(phone.fillna(""), index=False).map("{:016x}".format).astype(STRING) \
            .str.slice(0, 8)  # (an empty block's map gives no strings)
        given = st["message_id"].astype(STRING)
        st["message_id"] = (given + "#" + digest.astype(STRING)).where(phone.notna() & given.notna(), given)
    # a missing phone may come from another row of the message, or stay unknown
    st["_reject"] = first_reason(_total_rows(frame), st["_reject"], reason.where(reason.ne("missing phone")))
    st["_early"] = st["_reject"].notna()
    st["_layout"] = layout.name
    return st


def _empty_stage(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"vendor": pd.Series(dtype=STRING), "_reject": pd.Series(dtype=object),
                         "_early": pd.Series(dtype=bool), "_line": pd.Series(dtype="int64")})


def _total_rows(frame: pd.DataFrame) -> pd.Series:
    """A trailing 合计 / total row of a console export: not a message."""
    heads = [c for c in frame.columns if c != "_line"][:2]
    hit = np.zeros(len(frame), dtype=bool)
    for c in heads:
        if frame[c].dtype == object or isinstance(frame[c].dtype, pd.StringDtype):
            word = frame[c].astype(STRING).str.strip().str.lower().str.rstrip(":：")
            hit |= word.isin(list(_TOTAL_WORDS)).fillna(False).to_numpy(dtype=bool)
    return pd.Series(np.where(hit, "total row of the export, not a message", None), index=frame.index, dtype=object)


def concat_rejects(parts: list) -> pd.DataFrame:
    frames = [p if isinstance(p, pd.DataFrame) else pd.DataFrame([p]) for p in parts]
    cols = ["_file", "file", "line", "reason", "record"]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in [*cols[:4], "reason_code", cols[4]]})
    out = pd.concat(frames, ignore_index=True)[cols]
    out["line"] = out["line"].astype("int64")
    out.insert(4, "reason_code", reason_codes(out["reason"]))
    return out.sort_values(["_file", "line"], kind="stable").reset_index(drop=True)


def _message_ids(st: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Given ids; else the message a phone and a send time identify (with the template
    where the rows of that phone and time name one). Returns the ids and which of them
    were made here."""
    ids = st["message_id"].astype(STRING)
    made = (ids.isna() & st["phone"].notna() & st["submit_time"].notna()).to_numpy(dtype=bool)
    if made.any():
        basis = st.loc[made, ["vendor", "phone", "submit_time"]].astype(str)
        base = pd.util.hash_pandas_object(basis, index=False).map("h{:016x}".format).to_numpy()
        template = st.loc[made, "template_id"].astype(STRING)
        # where one template was sent to that phone at that time, rows without one join it
        by_base = template.groupby(base)
        tpl = template.fillna(by_base.transform("first").where(by_base.transform("nunique").eq(1)))
        ids = ids.copy()
        ids[made] = (pd.Series(base, index=template.index, dtype=STRING) + (":" + tpl).fillna("")).to_numpy()
    return ids, pd.Series(made, index=st.index)


def message_keys(st: pd.DataFrame, ok: np.ndarray) -> np.ndarray:
    """Number each staged row's message: the rows of one vendor, message id and phone.

    Gateways restart their sequences and reuse message ids, so one id with two numbers
    is two messages. A row without a phone (a receipt that names only the id) joins the
    message of its id; where the id went to several numbers, the one sent last at or
    before the row's time (:func:`nearest_before`). Rows not ``ok`` get codes too, which
    mean nothing."""
    vendor, ids, phone = (key_codes(st[c]).codes for c in ("vendor", "message_id", "phone"))
    orphan = ok & (phone < 0) & (ids >= 0)
    if orphan.any():
        group = combine_codes(vendor, ids)
        candidate = ok & (phone >= 0) & (ids >= 0) & np.isin(group, group[orphan])
        if candidate.any():
            t = _row_times(st)
            messages = pd.DataFrame({"g": group[candidate], "p": phone[candidate], "t": t[candidate]}).groupby(
                ["g", "p"], as_index=False, sort=False)["t"].min()
            chosen = nearest_before(group[orphan], t[orphan], messages["g"].to_numpy(), messages["t"].to_numpy())
            phone = phone.copy()
            phone[np.flatnonzero(orphan)[chosen >= 0]] = messages["p"].to_numpy()[chosen[chosen >= 0]]
    return combine_codes(vendor, ids, phone)


def _row_times(st: pd.DataFrame) -> np.ndarray:
    """Each row's send time, else its receipt time, as int64 nanoseconds (NaT's
    minimum where it has neither)."""
    out = np.full(len(st), np.iinfo(np.int64).min, dtype=np.int64)
    for c in ("done_time", "submit_time"):  # the send time wins
        if c in st and pd.api.types.is_datetime64_any_dtype(st[c]):
            values = st[c].to_numpy(dtype="datetime64[ns]").view(np.int64)
            known = ~np.isnat(st[c].to_numpy(dtype="datetime64[ns]"))
            out[known] = values[known]
    return out


def nearest_before(group: np.ndarray, t: np.ndarray, cand_group: np.ndarray, cand_t: np.ndarray) -> np.ndarray:
    """For each row (``group``, time ``t``), the position in the candidates of the one
    of its group at or last before ``t``, else the first after it; -1 where its group has
    no candidate. Times are int64; the smallest int64 means unknown: an unknown row time
    takes the latest candidate, an unknown candidate time comes before every other."""
    out = np.full(len(group), -1, dtype=np.int64)
    if not len(cand_group):
        return out
    unknown = np.iinfo(np.int64).min
    rows = pd.DataFrame({"g": group, "t": np.where(t == unknown, np.iinfo(np.int64).max, t),
                         "row": np.arange(len(group))}).sort_values("t", kind="stable")
    cands = pd.DataFrame({"g": cand_group, "t": cand_t, "at": np.arange(len(cand_group))}).sort_values(
        "t", kind="stable")
    for direction in ("backward", "forward"):
        found = pd.merge_asof(rows, cands, on="t", by="g", direction=direction)
        hit = found["at"].notna().to_numpy() & (out[found["row"].to_numpy()] < 0)
        out[found["row"].to_numpy()[hit]] = found["at"].to_numpy()[hit].astype(np.int64)
    return out


def _link_by_phone_and_time(st: pd.DataFrame, ok: pd.Series, made: pd.Series) -> pd.Series:
    """Rows whose id was made from phone and send time belong to the message with a given
    id of the same vendor, phone and send time, when there is exactly one (an Aliyun
    receipt with ``biz_id`` meets details exported without ``OutId``)."""
    key = ["vendor", "phone", "submit_time"]
    ids = st["message_id"]
    if not made.to_numpy(dtype=bool).any():  # every row named its message: nothing to link
        return ids
    rows = st.loc[ok & st["phone"].notna() & st["submit_time"].notna(), [*key, "message_id"]].astype(object)
    rows["_made"] = made[rows.index].to_numpy()
    given = rows[~rows["_made"]].drop_duplicates()
    if given.empty or not rows["_made"].any():
        return ids
    given = given[~given.duplicated(key, keep=False)]  # one given id at that phone and time
    link = rows[rows["_made"]].drop(columns="_made").drop_duplicates().merge(
        given.drop(columns="_made").rename(columns={"message_id": "_to"}), on=key)
    link = link.drop_duplicates("message_id")[["vendor", "message_id", "_to"]]
    if link.empty:
        return ids
    to = st[["vendor", "message_id"]].astype(object).merge(link, on=["vendor", "message_id"], how="left")["_to"]
    return ids.where(to.isna().to_numpy(), pd.Series(to.to_numpy(), index=ids.index, dtype=STRING))


def store_blocks(store: Path, parts: list) -> Iterator[RawFile]:
    """The store's files that new rows can touch (:class:`analysis.store.StorePart`) as
    one more raw input in blocks, their vendor and month from the table's log."""
    from ..store import part_batches

    line, i = 1, 0
    for part in parts:
        for batch in part_batches(part.path, CHUNK_ROWS, drop=("phone_key",)):  # the key is made again on write
            frame = batch.to_pandas().assign(vendor=part.vendor, month=part.month)
            frame["_line"] = np.arange(line, line + len(frame))
            line += len(frame)
            yield RawFile(store, frame, "parquet", chunk=i)
            i += 1


def _store_rows(store: Path, parts: list) -> RawFile:
    """:func:`store_blocks` as one raw input."""
    frames = [b.frame for b in store_blocks(store, parts)]
    return RawFile(store, pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS), "parquet")


def merge_staged(st: pd.DataFrame, *, tz: str, window: str, lap=lambda name: None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Staged rows of every file -> canonical log; marks ``_reject``, ``_dup`` and
    ``_repeated`` (a message id that more than one loaded row has) on ``st``."""
    for c in ["submit_time", "done_time"]:
        if c not in st:
            st[c] = pd.Series(pd.NaT, index=st.index, dtype=pd.DatetimeTZDtype("ms", tz))
    for c in ["message_id", "template_id", "content", "status", "phone", "_alone"]:
        if c not in st:
            st[c] = pd.NA
    st["_control"] = _strip_control(st)
    st["time_source"] = st["time_source"].fillna("submission") if "time_source" in st else "submission"
    st["message_id"], made = _message_ids(st)
    ok = st["_reject"].isna()
    st.loc[ok & st["message_id"].isna(), "_reject"] = "no message id, and no phone and send time to identify it"
    ok = st["_reject"].isna()
    st["message_id"] = _link_by_phone_and_time(st, ok, made)
    # message-level checks: a message needs a time from some row (a receipt with an id
    # and a time but no phone is a message whose number is unknown); only a message of
    # several rows needs grouping
    st["_mkey"] = message_keys(st, ok.to_numpy(dtype=bool))
    repeated = ok.to_numpy().copy()
    repeated[repeated] = st.loc[repeated, "_mkey"].duplicated(keep=False).to_numpy()
    st["_repeated"] = repeated
    has_time = np.array(st["submit_time"].notna() | st["done_time"].notna(), dtype=bool)
    alone = np.array(st["_alone"], dtype=object)
    if repeated.any():
        grp = st[repeated].groupby("_mkey", sort=False)
        has_time[repeated] = (grp["submit_time"].transform("count") + grp["done_time"].transform("count")) > 0
        alone[repeated] = grp["_alone"].transform("first").astype(object).to_numpy()
    reason = pd.Series(pd.NA, index=st.index, dtype=object)
    reason[~has_time] = pd.Series(alone, index=st.index)[~has_time].fillna("no send time or receipt time for this message")
    st.loc[ok, "_reject"] = reason[ok]
    ok = st["_reject"].isna()
    # exact repeats of a loaded row: only a message of several rows can repeat one (a
    # message is rejected whole, so those still loaded are still several)
    subset = [c for c in ["_mkey", "phone", "submit_time", "done_time", "status", "status_code", "error_code", "_part"]
              if c in st]
    st["_dup"] = False
    among = repeated & ok.to_numpy()
    if among.any():
        st.loc[among, "_dup"] = st.loc[among].duplicated(subset=subset, keep="first")
    kept = (ok & ~st["_dup"]).to_numpy()
    rows = st[kept]
    multi = among[kept]  # still several rows once the repeats are gone?
    multi[multi] = rows.loc[multi, "_mkey"].duplicated(keep=False).to_numpy()
    cols = [c for c in rows.columns if not c.startswith("_")]
    single = rows.loc[~multi, [*cols, "_mkey"]]  # a whole message in one row (the log is sorted when finished)
    several = rows.loc[multi].assign(
        _final=lambda d: d["status"].isin(FINAL_STATUSES),
        _rank=lambda d: d["time_source"].map(_RANK).fillna(0).where(d["submit_time"].notna(), len(_RANK)))
    # the latest final receipt wins; between receipts of one time, the codes decide (not
    # which file came first: ingesting exports in either order gives the same message)
    order = [c for c in ["_mkey", "_final", "done_time", "status_code", "error_code", "_order"] if c in several]
    several = several.sort_values(order, ascending=[True] + [False] * (len(order) - 1), na_position="last",
                                  kind="stable")
    merged = several[[*cols, "_mkey"]].groupby("_mkey", sort=False).first()  # the phone: any row's that has one
    # the send time comes from the best source: submission, a receipt's submit date, none
    best = several.sort_values(["_mkey", "_rank", "_order"], kind="stable").groupby("_mkey", sort=False).first()
    merged["submit_time"] = best["submit_time"].reindex(merged.index)
    merged["time_source"] = best["time_source"].where(best["submit_time"].notna()).reindex(merged.index)
    merged["segments"] = several.groupby("_mkey", sort=False)["segments"].max().reindex(merged.index) \
        if "segments" in several else merged.get("segments")
    if "_part" in several and "fee" in several and several["_part"].notna().any():
        # a long message billed by the part (SNS's usage report): its fee is the parts' sum
        parts = several[several["_part"].notna()].drop_duplicates(["_mkey", "_part"])
        billed = pd.to_numeric(parts["fee"], errors="coerce").groupby(parts["_mkey"].to_numpy()).sum(min_count=1)
        merged["fee"] = billed.reindex(merged.index).where(lambda f: f.notna(), merged["fee"])
    if "_part" in several and several["_part"].notna().any() and several["content"].notna().any():
        # the parts of a long message, in order, are its text
        parts = several[several["_part"].notna()].assign(_n=lambda d: pd.to_numeric(d["_part"], errors="coerce"))
        text = parts.sort_values(["_mkey", "_n"], kind="stable").groupby("_mkey", sort=False)["content"].agg(
            lambda c: "".join(c.dropna().astype(str)) or None).astype(object).reindex(merged.index)
        merged["content"] = merged["content"].astype(object).where(text.isna(), text)
    log = pd.concat([single, merged.reset_index()], ignore_index=True)
    # known only from receipts without a submit date: the earliest receipt is the send time
    no_time = log["submit_time"].isna()
    if no_time.any():
        first_receipt = rows.groupby("_mkey", sort=False)["done_time"].min()
        log.loc[no_time, "submit_time"] = first_receipt.reindex(log.loc[no_time, "_mkey"]).to_numpy()
        log.loc[no_time, "time_source"] = "receipt"
    log = log.drop(columns="_mkey")
    lap("merge")
    log = _finish(log, tz=tz, window=window)
    lap("finish")
    return log, st


def _finish(log: pd.DataFrame, *, tz: str, window: str) -> pd.DataFrame:
    """Vocabularies, failure reasons, segments, enrichment and attempts."""
    log = log.copy(deep=False)  # copy-on-write: the columns set below are new ones
    log["status"] = log["status"].astype(object).fillna("pending")
    given = log["failure_reason"] if "failure_reason" in log else pd.Series(None, index=log.index, dtype=object)
    reason = per_distinct(lambda r: r.astype(object).where(r.isin(FAILURE_REASONS)), given)
    missing = pd.Series(pd.NA, index=log.index)
    status, derived = classify_failures(log["status"], log.get("status_code", missing), log.get("error_code", missing),
                                        vendor=log["vendor"])
    log["status"] = status
    log["failure_reason"] = reason.where(reason.notna() & derived.notna(), derived)
    for c in ["carrier", "province", "city", "category", "segments", "country", "channel",
              "status_code", "error_code", "attempt", "is_probe", "fee", "currency"]:
        if c not in log:
            log[c] = pd.NA
    log["carrier"] = normalize_carriers(log["carrier"])
    log["province"] = normalize_provinces(log["province"])
    cat = per_distinct(_category, log["category"])
    log["category"] = cat.where(cat.notna(), per_distinct(infer_categories, log["content"]))
    seg = per_distinct(lambda s: pd.to_numeric(s, errors="coerce").astype("Int16"), log["segments"])
    log["segments"] = seg.fillna(per_distinct(count_segments, log["content"]))
    log["country"] = log["country"].astype(object).where(log["country"].notna(), country_of(log["phone"].astype(STRING)))
    log = enrich(log)
    log["submit_time"] = log["submit_time"].astype(pd.DatetimeTZDtype("ms", tz))
    log["attempt"] = pd.to_numeric(log["attempt"], errors="coerce").astype("Int16")
    log["attempt"] = infer_attempts(log, window=window)
    log = conform(log, tz=tz)
    return sort_log(log)


def _category(given: pd.Series) -> pd.Series:
    """Categories as written (a code or a zh / en label) -> canonical, else missing."""
    cat = given.astype(STRING).str.strip().str.lower()
    by_label = {LABELS[lang][c].lower(): c for lang in LABELS for c in CATEGORIES}
    return cat.astype(object).where(cat.isin(CATEGORIES), cat.map(by_label))


#: Control characters (C0 but tab and newline, DEL, C1): a NUL or ESC in a template
#: cannot go into a workbook, and no export means them.
CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"


def _strip_control(st: pd.DataFrame) -> np.ndarray:
    """Remove control characters from every text column of the staged rows, in place;
    returns how many fields each row had cleaned (counted per file in the summary)."""
    cleaned = np.zeros(len(st), dtype=np.int64)
    for c in st.columns:  # the phones are normalised already: digits, + and *
        if c.startswith("_") or c == "phone" or not (st[c].dtype == object or pd.api.types.is_string_dtype(st[c].dtype)):
            continue
        text = st[c].astype(STRING)
        hit = has_control(text)
        if hit.any():
            st.loc[hit, c] = text[hit].str.replace(CONTROL, "", regex=True).astype(object)
            cleaned += hit
    return cleaned


def has_control(text: pd.Series) -> np.ndarray:
    """Which texts hold a character of :data:`CONTROL`, found in the UTF-8 bytes of the
    Arrow column at once (one pass over its buffer, not a regex per text): a C0 byte
    but tab, newline and CR, DEL, or a C1 character (``C2 80``–``C2 9F``)."""
    arr = pa_array(text.astype(STRING))
    out = np.zeros(len(arr), dtype=bool)
    _, offsets_buf, data_buf = arr.buffers()
    if data_buf is None or not len(arr):
        return out
    wide = pa.types.is_large_string(arr.type)
    offsets = np.frombuffer(offsets_buf, dtype=np.int64 if wide else np.int32)[arr.offset:arr.offset + len(arr) + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8)[offsets[0]:offsets[-1]]
    bad = (data < 0x20) & (data != 0x09) & (data != 0x0A) & (data != 0x0D) | (data == 0x7F)
    bad[:-1] |= (data[:-1] == 0xC2) & (data[1:] >= 0x80) & (data[1:] <= 0x9F)
    at = np.flatnonzero(bad) + offsets[0]
    if len(at):
        out[np.searchsorted(offsets, at, side="right") - 1] = True
    return out & arr.is_valid().to_numpy(zero_copy_only=False)


def file_counts(st: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per file (``_file``) of merged staged rows (:func:`merge_staged` marks ``_reject``,
    ``_dup`` and ``_repeated``): ``loaded``, ``duplicates``,
    ``messages`` and ``control_chars``; and the (file, vendor) pairs seen. Both add up
    over groups of rows that share no message (:func:`summarize` sums them)."""
    loaded = st[st["_reject"].isna() & ~st["_dup"]]
    counts = pd.DataFrame({
        "loaded": loaded.groupby("_file").size(),
        "duplicates": st.groupby("_file")["_dup"].sum(),
        # a message of one row is one; only those of several rows can be counted twice
        "messages": pd.concat([loaded.loc[~loaded["_repeated"], "_file"], loaded.loc[loaded["_repeated"]].drop_duplicates(
            ["_file", "_mkey"])["_file"]]).value_counts(),
        "control_chars": st.groupby("_file")["_control"].sum(),
    }).fillna(0).astype("int64")
    pairs = st[["_file", "vendor"]].drop_duplicates().dropna().astype({"vendor": str})
    return counts, pairs


def summarize(infos: list[dict], counts: list[pd.DataFrame], pairs: list[pd.DataFrame],
             rejects: pd.DataFrame) -> pd.DataFrame:
    """The per-file summary from the files' infos and the :func:`file_counts` of every
    group of rows merged."""
    info = pd.DataFrame(infos)
    files = pd.Series(range(len(info)))
    total = pd.concat(counts).groupby(level=0).sum() if counts else pd.DataFrame()
    for c in ["loaded", "duplicates", "messages", "control_chars"]:
        info[c] = files.map(total[c]).fillna(0).astype(int) if c in total else 0
    info["rejected"] = files.map(rejects.groupby("_file").size()).fillna(0).astype(int)
    pairs = pd.concat(pairs).drop_duplicates().sort_values(["_file", "vendor"]) if pairs else \
        pd.DataFrame(columns=["_file", "vendor"])
    vendors = pairs.groupby("_file")["vendor"].agg(", ".join)
    info["vendor"] = files.map(vendors).astype(object).where(lambda v: v.fillna("") != "", info["vendor"])
    return info[["file", "layout", "vendor", "encoding", *_ACCOUNT, "messages", "control_chars"]]


def late_rejects(st: pd.DataFrame) -> pd.DataFrame:
    """The rows rejected while merging (a message with no time, no phone …): ``_file``,
    ``line``, ``reason``, their records still to be found (:func:`with_records`)."""
    late = st["_reject"].notna() & ~st["_early"]
    return pd.DataFrame({"_file": st.loc[late, "_file"].to_numpy(), "line": st.loc[late, "_line"].to_numpy(),
                         "reason": st.loc[late, "_reject"].astype(str).to_numpy()})


def with_records(late: pd.DataFrame, infos: list[dict], raw_of) -> list[pd.DataFrame]:
    """:func:`late_rejects` with their files' names and raw records; ``raw_of(fileno,
    lines)`` gives the raw rows at those lines, in that order."""
    out = []
    for fileno, part in late.groupby("_file"):
        raw_rows = raw_of(fileno, part["line"].to_numpy())
        out.append(part.assign(file=infos[fileno]["file"], record=records_json(raw_rows)))
    return out
