"""Reading one export file into a raw table: encodings, formats, line numbers.

Every table comes back with a ``_line`` column: the line (CSV, JSON lines, log) or
spreadsheet row the record came from, header included, or for a JSON/XML document the
record's position in it, so a reject can name it. Lines that are not records come back
separately in ``bad`` with their line and reason: a CSV row with the wrong number of
fields, a JSON line that does not parse, a line that does not decode, a title line above
the header.

Formats: CSV (any delimiter, UTF-8 with or without BOM, GBK/GB18030, Big5, UTF-16),
XLSX, Parquet, JSON lines, JSON documents (an array of records, or an API response whose
records sit in a list somewhere inside: ``SmsSendDetailDTOs.SmsSendDetailDTO``,
``Response.PullSmsSendStatusSet``, ``messages`` …; nested objects become dotted
columns, ``notification.messageId``), XML API responses, and gateway logs. Any of them
may be gzip-compressed (``.gz``).
"""

from __future__ import annotations

import codecs
import csv
import functools
import gzip
import io
import itertools
import json
import re
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import charset_normalizer
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq
from tqdm import tqdm

from ..schema import STRING
from .forms import form_records, is_form

SAMPLE_BYTES = 1 << 20
csv.field_size_limit(1 << 20)  # the header sample's fields up to MAX_RECORD_BYTES (not the module's 128 KiB)
_CANDIDATES = ["utf_8", "gb18030", "big5", "utf_16"]

@functools.cache
def _log_line():
    """A line of a log some built-in line layout reads (a gateway's receipt, Jasmin,
    Kannel, a CMPP report object …: :func:`analysis.readers.layouts.line_pattern`)."""
    from .layouts import line_pattern

    return re.compile(line_pattern())


class LoadError(ValueError):
    """An input that cannot be read at all; the message names the file and the problem."""


@dataclass
class RawFile:
    """One file as read: its records, the lines that are not records, and how it was read."""

    path: Path
    frame: pd.DataFrame
    kind: str  # csv, excel, parquet, json, xml, log
    encoding: str | None = None
    bad: list[tuple[int, str, str]] = field(default_factory=list)  # (line, reason, text)
    chunk: int | None = None  # which block of a file read in blocks (read_chunks); None: the whole file
    document: object = field(default=None, repr=False)  # a JSON document, for a layout that says where its records are


#: A compressed input may expand to at most this many times the compressed bytes read so
#: far, past a first :data:`EXPANSION_ALLOWANCE`: exports compress 5 to 30 times, a
#: "gzip bomb" hundreds or thousands of times. The check runs as the stream is read, so
#: a bomb stops after the allowance, whatever its full size.
MAX_EXPANSION = 100
EXPANSION_ALLOWANCE = 64 << 20
#: The longest line or field read (a CSV field, a log or JSON line): 1 MiB. An SMS record
#: is a few hundred bytes; a longer one is damage, and would otherwise be held whole.
MAX_RECORD_BYTES = 1 << 20


def _compressed(path: Path) -> bool:
    return path.suffix.lower() == ".gz"


class _CappedGzip(io.RawIOBase):
    """A gzip file decompressed as a stream that stops with a :class:`LoadError` once the
    output passes :data:`MAX_EXPANSION` times the compressed input read."""

    def __init__(self, path: Path):
        self.path, self._raw = path, open(path, "rb")
        self._gz, self._out = gzip.GzipFile(fileobj=self._raw), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            n = self._gz.readinto(buffer)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise LoadError(f"{self.path}: the gzip file is truncated or corrupt ({exc})") from None
        self._out += n
        if self._out > EXPANSION_ALLOWANCE and self._out > MAX_EXPANSION * self._raw.tell():
            raise LoadError(f"{self.path}: decompresses to more than {MAX_EXPANSION} times its size "
                            f"({self._out / 2**20:,.1f} MiB from {self._raw.tell() / 2**20:,.1f} MiB read): not an export "
                            "but a damaged or hostile archive; unpack it yourself to check it")
        return n

    def close(self) -> None:
        self._gz.close()
        self._raw.close()
        super().close()


def _open(path: Path):
    """The file as a binary stream, decompressed (with the expansion cap) when ``.gz``."""
    return io.BufferedReader(_CappedGzip(path), 1 << 20) if _compressed(path) else open(path, "rb")


def _check_expansion(path: Path) -> None:
    """Decompress a ``.gz`` file as a stream, holding nothing, to check the expansion cap
    before pyarrow reads it (a bomb stops within its first :data:`EXPANSION_ALLOWANCE`)."""
    with _open(path) as fh:
        while fh.read(8 << 20):
            pass


def _regular(path: Path) -> None:
    """Refuse what is not a file or a folder (a FIFO would block the read forever, a
    device such as /dev/zero never ends), whatever its name or a link to it says."""
    import stat

    mode = path.stat().st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise LoadError(f"{path}: {kind}, not an export file: give the export itself")


#: The most a JSON or XML document read whole may hold, decompressed: a document is
#: parsed into Python objects several times its size. An API response is a page of a
#: few hundred records; a larger set of records belongs in JSON lines, read line by line.
MAX_DOCUMENT_BYTES = 64 << 20


def _document(path: Path, what: str) -> bytes:
    """A JSON or XML document's bytes, refused past :data:`MAX_DOCUMENT_BYTES`."""
    data = _read_bytes(path, MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise LoadError(f"{path}: {what} document larger than {MAX_DOCUMENT_BYTES >> 20} MiB, the most read whole: "
                        "write its records as JSON lines, one record per line (for an array: jq -c '.[]' FILE)")
    return data


def _zip_expansion(path: Path) -> None:
    """Refuse a spreadsheet (a zip archive) whose members expand past the gzip rule
    (:data:`MAX_EXPANSION` times the file, after :data:`EXPANSION_ALLOWANCE`), from the
    archive's own directory, before anything is decompressed."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            expanded = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError):
        return  # not a zip archive (an old .xls): the spreadsheet reader says what it is
    size = path.stat().st_size
    if expanded > EXPANSION_ALLOWANCE and expanded > MAX_EXPANSION * size:
        raise LoadError(f"{path}: expands to more than {MAX_EXPANSION} times its size ({expanded / 2**20:,.0f} MiB "
                        f"from {size / 2**20:,.1f} MiB): not an export but a damaged or hostile spreadsheet")


def _read_bytes(path: Path, limit: int | None = None) -> bytes:
    """The file's bytes (decompressed), or its first ``limit`` bytes."""
    with _open(path) as fh:
        return fh.read() if limit is None else fh.read(limit)


def _too_long(path: Path, where: str, what: str = "", limit_of: str = "line") -> LoadError:
    """The one error for a line or field past :data:`MAX_RECORD_BYTES`."""
    return LoadError(f"{path}: {where}: {what}longer than {MAX_RECORD_BYTES >> 20} MiB, the limit for one "
                     f"{limit_of}: the file is damaged or not an export")


def _long_field(path: Path, batch: pa.RecordBatch, *, first_line: int) -> None:
    """Raise a :class:`LoadError` naming the (approximate) line of a field longer than
    :data:`MAX_RECORD_BYTES` in one batch of CSV rows."""
    import pyarrow.compute as pc

    for column in batch.columns:
        lengths = pc.binary_length(column)
        if (pc.max(lengths).as_py() or 0) > MAX_RECORD_BYTES:
            at = pc.index(pc.greater(lengths, MAX_RECORD_BYTES), True).as_py()
            raise _too_long(path, f"line {first_line + at}", "a field ", "field")


def _long_line(path: Path, data: bytes) -> None:
    """Raise a :class:`LoadError` naming the first line longer than :data:`MAX_RECORD_BYTES`."""
    if len(data) <= MAX_RECORD_BYTES:
        return
    breaks = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 0x0A)
    lengths = np.diff(np.concatenate([[-1], breaks, [len(data)]])) - 1
    long = np.flatnonzero(lengths > MAX_RECORD_BYTES)
    if len(long):
        raise _too_long(path, f"line {long[0] + 1}")


def detect_encoding(sample: bytes, *, path: Path | str = "<bytes>") -> str:
    """Encoding of a text export: ``utf-8-sig``, ``utf-8``, ``gb18030`` or what
    charset-normalizer finds. GBK and GB2312 are read as their superset GB18030. A
    UTF-8 file with a few undecodable lines is UTF-8 (those lines are rejected).

    Raises
    ------
    LoadError
        When no encoding decodes the sample.
    """
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if len(sample) >= SAMPLE_BYTES and b"\n" in sample:
        # a sample cut mid-character would fail every multi-byte encoding: end it at a line
        sample = sample[: sample.rfind(b"\n") + 1]
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    lines = sample.splitlines()
    broken = sum(1 for ln in lines if not _decodes(ln, "utf-8"))
    if lines and broken <= max(1, len(lines) // 200) and any(b > 0x7F for b in sample[:65536]):
        # mostly UTF-8 with multi-byte text: the odd bad line is damage, not another encoding
        if sum(1 for ln in lines if not _decodes(ln, "gb18030")) >= broken:
            return "utf-8"
    best = charset_normalizer.from_bytes(sample, cp_isolation=_CANDIDATES).best()
    if best is None:
        try:
            sample.decode("gb18030")
        except UnicodeDecodeError as exc:
            line = sample[: exc.start].count(b"\n") + 1
            raise LoadError(
                f"{path}: line {line}: cannot decode the file: byte 0x{sample[exc.start]:02x} is neither "
                "UTF-8 nor GB18030 text"
            ) from None
        return "gb18030"
    enc = best.encoding.lower().replace("_", "")
    return {"gb18030": "gb18030", "big5": "big5", "utf16": "utf-16", "utf8": "utf-8"}.get(enc, "gb18030")


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
        return True
    except UnicodeDecodeError:
        return False


def read_raw(path: str | Path) -> RawFile:
    """Read one export into a raw table of strings (Parquet and Excel keep their types)."""
    chunks = list(read_chunks(path, rows=None))
    return chunks[0]


#: Rows of a block that :func:`read_chunks` yields from a large CSV or Parquet file (a
#: block of CSV is a whole number of pyarrow's blocks of :data:`BLOCK_BYTES`).
CHUNK_ROWS = 100_000
#: Bytes pyarrow parses at a time (a record longer than this cannot be read). pyarrow's
#: streaming reader holds about 35 times this while it reads (580 MB for 16 MiB blocks,
#: 145 MB for 4 MiB, measured with pyarrow 26), and reads no faster with larger ones.
BLOCK_BYTES = 4 << 20


def read_chunks(path: str | Path, *, rows: int | None = CHUNK_ROWS, lines: bool = False):
    """Read one export as raw tables of about ``rows`` records each (``None``: one table),
    so a file larger than memory can be staged block by block. CSV and Parquet files are
    read in blocks; the other formats (spreadsheets, JSON, XML, form bodies, logs:
    exports of modest size) as one table. Each table's ``chunk`` numbers it (``None``
    for a whole file). ``lines``: a text file is a log whatever its lines look like
    (the user's line layout will read them)."""
    path = Path(path)
    if not path.exists():
        raise LoadError(f"{path}: no such file")
    _regular(path)
    if path.is_dir():
        yield _read_store(path) if _is_store(path) else _read_parquet(path)
        return
    suffixes = [s.lower() for s in path.suffixes]
    ext = suffixes[-2] if suffixes and suffixes[-1] == ".gz" and len(suffixes) > 1 else (suffixes[-1] if suffixes else "")
    if ext in {".parquet", ".pq"}:
        yield from ([_read_parquet(path)] if rows is None else _parquet_chunks(path, rows))
        return
    if ext in {".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"}:
        yield _read_excel(path)
        return
    sample = _read_bytes(path, SAMPLE_BYTES)
    if not sample.strip():
        raise LoadError(f"{path}: the file is empty")
    if len(sample) == SAMPLE_BYTES and b"\n" not in sample and sample.lstrip()[:1] not in (b"{", b"[", b"<"):
        raise _too_long(path, "line 1")
    encoding = detect_encoding(sample, path=path)
    text = sample.decode(encoding, errors="replace").lstrip("\ufeff")
    first = text.lstrip()
    head = text.splitlines()[:20]
    if lines:
        yield _read_log(path, encoding)
    elif ext == ".xml" or first.startswith("<"):
        yield _read_xml(path, encoding)
    elif ext in {".jsonl", ".ndjson", ".json"} or first.startswith(("{", "[")):
        yield _read_json(path, encoding)
    elif is_form(head):
        yield _read_form(path, encoding)
    elif any(_log_line().search(line) for line in head):  # 20 lines: plain re beats a Series
        yield _read_log(path, encoding)
    else:
        yield from _read_csv(path, encoding, text, rows)


def _is_store(path: Path) -> bool:
    """A folder that is the store (a Delta table), or holds one, or a store of an earlier
    version of this package (``send_log`` of Parquet folders)."""
    from ..store import STORE_DIR

    return (path / "_delta_log").exists() or path.name == STORE_DIR or (path / STORE_DIR).exists()


def _read_store(path: Path) -> RawFile:
    """The store as one raw table: its current version's rows, through its log."""
    from ..store import store_table

    frame = store_table(path).to_pandas()
    frame["_line"] = range(1, len(frame) + 1)
    return RawFile(path, frame, "parquet")


def _read_parquet(path: Path) -> RawFile:
    try:
        frame = pq.read_table(path, partitioning="hive").to_pandas()
    except (pa.ArrowInvalid, OSError) as exc:
        raise LoadError(f"{path}: not a readable Parquet file or store ({exc})") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    frame["_line"] = range(1, len(frame) + 1)
    return RawFile(path, frame, "parquet")


def _parquet_chunks(path: Path, rows: int):
    try:
        reader = pq.ParquetFile(path)
        batches = reader.iter_batches(batch_size=rows)
        line = 1
        for i, batch in enumerate(itertools.chain([next(batches, None)], batches)):
            if batch is None and i:
                break
            frame = (batch if batch is not None else reader.schema_arrow.empty_table()).to_pandas()
            frame.columns = [str(c).strip() for c in frame.columns]
            frame["_line"] = range(line, line + len(frame))
            line += len(frame)
            yield RawFile(path, frame, "parquet", chunk=i)
    except (pa.ArrowInvalid, OSError) as exc:
        raise LoadError(f"{path}: not a readable Parquet file ({exc})") from exc


def header_index(rows: list[list]) -> int:
    """Position of the header among the first rows: the first with at least two non-empty
    cells (a title line above it, ``短信发送记录 2025-05``, has one)."""
    for i, row in enumerate(rows[:20]):
        if sum(1 for v in row if v is not None and str(v).strip() and str(v).strip().lower() != "nan") >= 2:
            return i
    return 0


def _titles(rows: list[list], header: int, first_line: int = 1) -> list[tuple[int, str, str]]:
    """The non-empty rows above the header, as ``bad`` entries."""
    out = []
    for i, row in enumerate(rows[:header]):
        text = ",".join(str(v) for v in row if v is not None and str(v).strip() and str(v) != "nan")
        if text:
            out.append((first_line + i, "title line above the header, not a record", text[:200]))
    return out


def _read_excel(path: Path) -> RawFile:
    _zip_expansion(path)
    try:
        grid = pd.read_excel(path, engine="calamine", dtype=object, header=None)
    except Exception as exc:  # calamine raises its own error types
        raise LoadError(f"{path}: not a readable spreadsheet ({exc})") from exc
    rows = grid.head(20).where(grid.head(20).notna(), None).values.tolist()
    at = header_index(rows)
    names = [str(c).strip() if c is not None else f"column{j + 1}" for j, c in enumerate(rows[at] if rows else [])]
    frame = grid.iloc[at + 1:].set_axis(names, axis=1)
    frame = frame.dropna(how="all")
    frame["_line"] = frame.index + 1  # spreadsheet row: the first row is 1
    return RawFile(path, frame.reset_index(drop=True), "excel", bad=_titles(rows, at))


def _delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in [",", "\t", ";", "|"]}
    return max(counts, key=counts.get)


def _read_csv(path: Path, encoding: str, text: str, rows: int | None):
    """The CSV's records in tables of about ``rows`` (all of them for ``None``)."""
    lines = text.splitlines()[:20]
    delim = _delimiter(max(lines, key=lambda ln: sum(ln.count(d) for d in ",\t;|")) if lines else ",")
    try:
        head = list(csv.reader(lines, delimiter=delim))
    except csv.Error as exc:
        raise LoadError(f"{path}: line {len(lines)}: {exc} among the first lines; the header cannot be read") from None
    at = header_index(head)
    names = [n.strip().lstrip("\ufeff") for n in head[at]] if head else []
    if len(set(names)) != len(names):
        raise LoadError(f"{path}: line {at + 1}: repeated column names in the header")
    titles, bad = _titles(head, at), []  # bad: the malformed rows, as pyarrow reports them
    line, chunk, given = at + 2, 0, 0  # the next record's line if no row is skipped as bad
    try:
        for table in _arrow_csv(path, encoding, names, delim, skip=at + 1, bad=bad, rows=rows):
            skipped = sorted(b[0] for b in bad if b[0] >= line)
            numbers = np.arange(line, line + table.num_rows + len(skipped))
            numbers = numbers[~np.isin(numbers, skipped)][: table.num_rows]
            line = int(numbers[-1]) + 1 if len(numbers) else line
            yield _csv_frame(path, table, numbers, encoding, (titles if chunk == 0 else []) + bad[given:], chunk, rows)
            given, chunk = len(bad), chunk + 1
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        if "UTF8" not in str(exc) and not isinstance(exc, UnicodeDecodeError) and "decode" not in str(exc):
            raise LoadError(f"{path}: cannot read as {encoding} CSV: {str(exc).splitlines()[0]}") from exc
        # undecodable bytes: the rest of the file line by line (the blocks yielded stand)
        table, more, physical = _csv_line_by_line(path, encoding, names, delim, skip=line - 1)
        yield _csv_frame(path, table, np.asarray(physical, dtype=np.int64)[: table.num_rows], encoding,
                         (titles if chunk == 0 else []) + more, chunk, rows)


def _csv_frame(path, table, numbers, encoding, bad, chunk, rows) -> RawFile:
    frame = table.to_pandas(types_mapper={pa.string(): STRING, pa.large_string(): STRING}.get)
    frame["_line"] = numbers
    return RawFile(path, frame, "csv", encoding, bad, chunk=None if rows is None else chunk)


def _csv_options(names: list[str], delim: str, skip: int, encoding: str, bad: list):
    def on_bad(row: pacsv.InvalidRow) -> str:
        line = row.number if row.number is not None else -1
        bad.append((line, f"malformed row: {row.actual_columns} fields, expected {row.expected_columns}", row.text))
        return "skip"

    return dict(
        read_options=pacsv.ReadOptions(
            encoding=encoding.replace("utf-8-sig", "utf-8"), column_names=names, skip_rows=skip,
            use_threads=False,  # keeps the line numbers of malformed rows known
            block_size=BLOCK_BYTES,
        ),
        parse_options=pacsv.ParseOptions(delimiter=delim, invalid_row_handler=on_bad),
        convert_options=pacsv.ConvertOptions(column_types={n: pa.large_string() for n in names},
                                             strings_can_be_null=True, null_values=[""]),
    )


def _arrow_csv(path: Path, encoding: str, names: list[str], delim: str, *, skip: int, bad: list, rows: int | None):
    """The CSV through pyarrow, read in blocks of about 16 MB (with a progress bar), as
    tables of about ``rows`` records (one table for ``None``); malformed rows go to ``bad``."""
    size = path.stat().st_size
    if _compressed(path):
        _check_expansion(path)
    # pyarrow reads the file itself (and decompresses .gz): a Python stream handed to it
    # would be read from pyarrow's read-ahead thread, which aborts the process at exit
    try:
        reader = pacsv.open_csv(str(path), **_csv_options(names, delim, skip, encoding, bad))
    except (OSError, EOFError, pa.ArrowInvalid) as exc:
        raise _read_error(path, exc, skip + 1) from None
    read, batches, held = 0, [], 0
    try:
        with tqdm(total=size, unit="B", unit_scale=True, desc=path.name, leave=False,
                  disable=size < (64 << 20) or not sys.stderr.isatty()) as bar:
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except (OSError, EOFError, pa.ArrowInvalid) as exc:
                    raise _read_error(path, exc, skip + 1 + read + len(bad)) from None
                _long_field(path, batch, first_line=skip + 1 + read + len(bad))
                batches.append(batch)
                read += batch.num_rows
                held += batch.num_rows
                bar.update(min(BLOCK_BYTES, size - bar.n))
                if rows is not None and held >= rows:
                    yield pa.Table.from_batches(batches, schema=reader.schema)
                    batches, held = [], 0
    finally:
        reader.close()
    if batches or read == 0 or rows is None:
        yield pa.Table.from_batches(batches, schema=reader.schema)


def _read_error(path: Path, exc: Exception, line: int) -> Exception:
    """What a failed CSV read means, naming the file (and the line where it is known)."""
    if isinstance(exc, pa.ArrowInvalid):
        if "straddl" in str(exc):
            return _too_long(path, f"line {line} (or one within the next {BLOCK_BYTES >> 20} MiB)", "a record ")
        return exc  # a decoding problem: the caller reads the file line by line
    if _compressed(path):
        return LoadError(f"{path}: the gzip file is truncated or corrupt ({exc})")
    return LoadError(f"{path}: cannot read: {exc}")


def _csv_line_by_line(path: Path, encoding: str, names: list[str], delim: str, *, skip: int):
    """The slow path for a file with undecodable lines: each such line is rejected with
    its number and the rest is read as usual."""
    codec = encoding.replace("utf-8-sig", "utf-8")
    kept, physical, bad = [], [], []
    data = _read_bytes(path)
    _long_line(path, data)
    for number, raw in enumerate(data.splitlines(), start=1):
        if number <= skip or not raw.strip():
            continue
        try:
            kept.append(raw.decode(codec).lstrip("\ufeff"))
            physical.append(number)
        except UnicodeDecodeError as exc:
            bad.append((number, f"cannot decode the line as {codec}: byte 0x{raw[exc.start]:02x}",
                        raw.decode(codec, errors="replace")[:200]))
    buffer = io.BytesIO("\n".join(kept).encode("utf-8"))
    rows_bad: list = []
    table = pacsv.read_csv(buffer, **_csv_options(names, delim, 0, "utf-8", rows_bad))
    # malformed rows are numbered within the buffer: map them back to the file's lines
    dropped = {n for n, _, _ in rows_bad}
    bad += [(physical[n - 1], reason, text) for n, reason, text in rows_bad]
    physical = [p for i, p in enumerate(physical, start=1) if i not in dropped]
    return table, bad, physical


# --------------------------------------------------------------------------- JSON and XML


def _json_value(v):
    """A JSON scalar as the text the file has: ``true`` not ``True``, ``3`` not ``3.0``."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, dict)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


def _flatten(record: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in record.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = _json_value(v)
    return out


def records_at(document, path: str) -> list[dict] | None:
    """The records at a dotted ``path`` of a JSON document (``Response.PullSmsSendStatusSet``;
    ``.`` the document itself): a list's objects, or an object as one record; ``None``
    where the path is not in the document."""
    node = document
    if path not in (".", ""):
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
    if isinstance(node, list):
        return [r for r in node if isinstance(r, dict)]
    return [node] if isinstance(node, dict) else None


def document_frame(records: list[dict]) -> pd.DataFrame:
    """Records of a JSON document as a raw table (one per record, numbered from 1)."""
    return _frame(records, range(1, len(records) + 1))


def records_of(document) -> list[dict]:
    """The records of a JSON document: the document itself when it is an array, else the
    first non-empty list of objects found inside (breadth first), else none when it holds
    an empty list (a page with no results), else the document as one record."""
    if isinstance(document, list):
        return [r for r in document if isinstance(r, dict)]
    queue, empty = [document], False
    while queue:
        node = queue.pop(0)
        for value in node.values():
            if isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
                return value
            empty |= isinstance(value, list) and not value
        queue.extend(v for v in node.values() if isinstance(v, dict))
    return [] if empty else [document]


def _frame(records: list[dict], lines) -> pd.DataFrame:
    frame = pd.DataFrame.from_records([_flatten(r) for r in records]) if records else pd.DataFrame()
    frame = frame.astype(STRING) if len(frame.columns) else frame
    frame["_line"] = list(lines)
    frame.attrs["nested"] = nested_keys(records[:200])
    return frame


def nested_keys(records: list) -> list[str]:
    """The dotted paths inside the lists of the records (``statuses.recipients``,
    ``recipients.items.status``): kept as JSON text in the table until a layout explodes
    them, but named among its headers for telling the layout."""
    found: dict[str, None] = {}

    def walk(value, prefix: str, in_list: bool) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{prefix}{k}.", in_list)
        elif isinstance(value, list):
            for item in value[:20]:
                if in_list or prefix:
                    found.setdefault(prefix.rstrip("."), None)
                walk(item, prefix, True)
        elif in_list:
            found.setdefault(prefix.rstrip("."), None)

    for r in records:
        if isinstance(r, dict):
            for k, v in r.items():
                if isinstance(v, list | dict):
                    walk(v, f"{k}.", False)
    return list(found)


def _read_json(path: Path, encoding: str) -> RawFile:
    data = _read_bytes(path, MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:  # JSON lines, or a document too large to read whole
        first = data[:MAX_RECORD_BYTES + 1].split(b"\n", 1)[0]
        if len(first) > MAX_RECORD_BYTES or not _json_object(first, encoding):
            _document(path, "a JSON")  # the error
        data = _read_bytes(path)
    try:
        text = data.decode(encoding).lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        raise LoadError(f"{path}: byte {exc.start}: not valid {encoding} text") from exc
    try:  # one document: an array of records or an API response
        document = json.loads(text)
        if isinstance(document, (dict, list)):
            records = records_of(document)
            return RawFile(path, _frame(records, range(1, len(records) + 1)), "json", encoding, document=document)
    except RecursionError:
        raise LoadError(f"{path}: JSON nested deeper than any export ({sys.getrecursionlimit():,} levels or more): "
                        "damaged or not an export") from None
    except ValueError:
        pass
    _long_line(path, data)  # not one document: JSON lines, each a record
    try:  # JSON lines, fast
        table = _flat_table(pajson.read_json(io.BytesIO(text.encode("utf-8"))))
        frame = _stringify(table.to_pandas())
        line_no = (pd.Series(text.splitlines(), dtype=object).str.strip() != "").to_numpy().nonzero()[0] + 1
        frame["_line"] = line_no[: len(frame)]
        return RawFile(path, frame, "json", encoding)
    except pa.ArrowInvalid:
        pass
    records, line_no, bad = [], [], []
    for i, line in enumerate(text.splitlines(), start=1):  # slow path only for broken files
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
            records.append(obj)
            line_no.append(i)
        except ValueError as exc:
            bad.append((i, f"malformed JSON line: {exc}", line[:200]))
    return RawFile(path, _frame(records, line_no), "json", encoding, bad)


def _json_object(line: bytes, encoding: str) -> bool:
    """Whether a line is one JSON object (a record of JSON lines)."""
    try:
        return isinstance(json.loads(line.decode(encoding, errors="replace")), dict)
    except (ValueError, RecursionError):
        return False


def _flat_table(table: pa.Table) -> pa.Table:
    while any(pa.types.is_struct(t) for t in table.schema.types):
        table = table.flatten()
    return table


def _stringify(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if col == "_line" or pd.api.types.is_datetime64_any_dtype(out[col]):
            continue
        s = out[col]
        if pd.api.types.is_bool_dtype(s.dtype):
            s = s.map({True: "true", False: "false"})
        elif pd.api.types.is_float_dtype(s.dtype):
            s = s.map(lambda v: None if pd.isna(v) else (str(int(v)) if float(v).is_integer() else repr(float(v))))
        out[col] = s.astype(object).where(s.notna()).astype(STRING)
    return out


def _read_xml(path: Path, encoding: str) -> RawFile:
    from defusedxml import ElementTree

    try:
        root = ElementTree.fromstring(_document(path, "an XML"))
    except LoadError:
        raise
    except Exception as exc:  # defusedxml raises its own errors for entity tricks
        raise LoadError(f"{path}: not readable XML ({exc})") from None

    def tag(e) -> str:
        return e.tag.rsplit("}", 1)[-1]

    # a record is an element whose children are all leaves; the response's envelope has a
    # non-leaf child (the list of records), so it is not one
    elements = [e for e in root.iter() if len(e) and all(len(c) == 0 for c in e)]
    records = [{tag(c): (c.text or "").strip() or None for c in e} for e in elements]
    return RawFile(path, _frame(records, range(1, len(records) + 1)), "xml", encoding)


def records_json(frame: pd.DataFrame):
    """Raw rows as JSON text (one string per row), for the rejects file."""

    if frame.empty:
        return np.array([], dtype=object)
    body = frame.drop(columns=["_line"], errors="ignore").astype(str)
    return np.array(body.to_json(orient="records", lines=True, force_ascii=False).splitlines(), dtype=object)


# --------------------------------------------------------------------------- logs


def _read_form(path: Path, encoding: str) -> RawFile:
    """Url-encoded records, one per line (a callback's form body, or the URL it went to):
    a column per field name."""
    log = _read_log(path, encoding)
    frame = form_records(log.frame["text"]).assign(_line=log.frame["_line"].to_numpy())
    return RawFile(path, frame.reset_index(drop=True), "form", encoding)


def _read_log(path: Path, encoding: str) -> RawFile:
    data = _read_bytes(path)
    _long_line(path, data)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise LoadError(f"{path}: byte {exc.start}: not valid {encoding} text") from exc
    lines = pd.Series(text.splitlines(), dtype=STRING)
    frame = pd.DataFrame({"text": lines, "_line": range(1, len(lines) + 1)})
    frame = frame[lines.str.strip().fillna("") != ""].reset_index(drop=True)
    return RawFile(path, frame, "log", encoding)
