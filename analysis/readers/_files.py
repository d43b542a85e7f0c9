"""Reading one export file into a raw table: encodings, formats, line numbers.

Every table comes back with a ``_line`` column: the line (CSV, JSON lines, log) or
spreadsheet row the record came from, header included, so a reject can name it.
Malformed records (a CSV row with the wrong number of fields, a JSON line that does not
parse) come back separately in ``bad`` with their line and reason.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import charset_normalizer
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq
from tqdm import tqdm

from ..schema import STRING

SAMPLE_BYTES = 1 << 20
_CANDIDATES = ["utf_8", "gb18030", "big5", "utf_16"]

#: A gateway log line holding an SMPP/CMPP delivery receipt.
DLR_PATTERN = r"\bid:\s*\S+.*\bstat:\s*\S+"


class LoadError(ValueError):
    """An input that cannot be read at all; the message names the file and the problem."""


@dataclass
class RawFile:
    """One file as read: its records, malformed lines, and how it was read."""

    path: Path
    frame: pd.DataFrame
    kind: str  # csv, excel, parquet, jsonl, dlr
    encoding: str | None = None
    bad: list[tuple[int, str, str]] = field(default_factory=list)  # (line, reason, text)


def _open_bytes(path: Path) -> bytes:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        return fh.read(SAMPLE_BYTES)


def detect_encoding(sample: bytes, *, path: Path | str = "<bytes>") -> str:
    """Encoding of a text export: ``utf-8-sig``, ``utf-8``, ``gb18030`` or what
    charset-normalizer finds. GBK and GB2312 are read as their superset GB18030.

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


def read_raw(path: str | Path) -> RawFile:
    """Read one export into a raw table of strings (Parquet and Excel keep their types)."""
    path = Path(path)
    if not path.exists():
        raise LoadError(f"{path}: no such file")
    if path.is_dir():
        return _read_parquet(path)
    suffixes = [s.lower() for s in path.suffixes]
    ext = suffixes[-2] if suffixes and suffixes[-1] == ".gz" and len(suffixes) > 1 else (suffixes[-1] if suffixes else "")
    if ext in {".parquet", ".pq"}:
        return _read_parquet(path)
    if ext in {".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"}:
        return _read_excel(path)
    sample = _open_bytes(path)
    if not sample.strip():
        raise LoadError(f"{path}: the file is empty")
    encoding = detect_encoding(sample, path=path)
    text = sample.decode(encoding, errors="replace")
    first = text.lstrip("\ufeff").lstrip()
    if ext in {".jsonl", ".ndjson", ".json"} or first.startswith("{"):
        return _read_jsonl(path, encoding)
    head = text.splitlines()[:20]
    if any(pd.Series(head, dtype=STRING).str.contains(DLR_PATTERN, regex=True).fillna(False)):
        return _read_dlr(path, encoding)
    return _read_csv(path, encoding, text)


def _read_parquet(path: Path) -> RawFile:
    try:
        frame = pq.read_table(path, partitioning="hive").to_pandas()
    except (pa.ArrowInvalid, OSError) as exc:
        raise LoadError(f"{path}: not a readable Parquet file or store ({exc})") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    frame["_line"] = range(1, len(frame) + 1)
    return RawFile(path, frame, "parquet")


def _read_excel(path: Path) -> RawFile:
    try:
        frame = pd.read_excel(path, engine="calamine", dtype=object)
    except Exception as exc:  # calamine raises its own error types
        raise LoadError(f"{path}: not a readable spreadsheet ({exc})") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = frame.dropna(how="all")
    frame["_line"] = frame.index + 2  # spreadsheet row: header is row 1
    return RawFile(path, frame.reset_index(drop=True), "excel")


def _delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in [",", "\t", ";", "|"]}
    return max(counts, key=counts.get)


def _read_csv(path: Path, encoding: str, text: str) -> RawFile:
    header_line = text.lstrip("\ufeff").splitlines()[0]
    delim = _delimiter(header_line)
    names = next(csv.reader([header_line], delimiter=delim))
    names = [n.strip() for n in names]
    if len(set(names)) != len(names):
        raise LoadError(f"{path}: line 1: repeated column names in the header")
    bad: list[tuple[int, str, str]] = []

    def on_bad(row: pacsv.InvalidRow) -> str:
        line = row.number if row.number is not None else -1
        bad.append((line, f"malformed row: {row.actual_columns} fields, expected {row.expected_columns}", row.text))
        return "skip"

    try:
        # streamed in blocks of about 16 MB: a progress bar for big files, bounded buffers
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(
                encoding=encoding.replace("utf-8-sig", "utf-8"),
                column_names=names,
                skip_rows=1,
                use_threads=False,  # keeps the line numbers of malformed rows known
                block_size=16 << 20,
            ),
            parse_options=pacsv.ParseOptions(delimiter=delim, invalid_row_handler=on_bad),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=True,
                null_values=[""],
            ),
        )
        size = path.stat().st_size
        with tqdm(total=size, unit="B", unit_scale=True, desc=path.name, leave=False,
                  disable=size < (64 << 20) or not sys.stderr.isatty()) as bar:
            batches = []
            for batch in reader:
                batches.append(batch)
                bar.update(min(16 << 20, size - bar.n))
        table = pa.Table.from_batches(batches, schema=reader.schema)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise LoadError(f"{path}: cannot read as {encoding} CSV: {str(exc).splitlines()[0]}") from exc
    frame = table.to_pandas(types_mapper={pa.string(): STRING, pa.large_string(): STRING}.get)
    if encoding == "utf-8-sig" and names and names[0].startswith("\ufeff"):
        frame = frame.rename(columns={names[0]: names[0].lstrip("\ufeff")})
    # physical line of each record: header is line 1; skipped bad rows shift the rest
    bad_lines = sorted(b[0] for b in bad if b[0] > 0)
    lines = pd.Series(range(2, len(frame) + 2 + len(bad_lines)))
    if bad_lines:
        lines = lines[~lines.isin(bad_lines)].reset_index(drop=True)
    frame["_line"] = lines.iloc[: len(frame)].to_numpy()
    return RawFile(path, frame, "csv", encoding, bad)


def _read_jsonl(path: Path, encoding: str) -> RawFile:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise LoadError(f"{path}: byte {exc.start}: not valid {encoding} text") from exc
    try:  # fast path: every line parses
        table = pajson.read_json(io.BytesIO(text.encode("utf-8")))
        frame = table.to_pandas()
        lines = pd.Series(text.splitlines(), dtype=object)
        line_no = (lines.str.strip() != "").to_numpy().nonzero()[0] + 1
        frame["_line"] = line_no[: len(frame)]
        return RawFile(path, _stringify(frame), "jsonl", encoding)
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
    frame = pd.DataFrame.from_records(records)
    frame["_line"] = line_no
    return RawFile(path, _stringify(frame), "jsonl", encoding, bad)


def _stringify(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if col != "_line" and not pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = out[col].astype(object).where(out[col].notna()).astype(STRING)
    return out


def _read_dlr(path: Path, encoding: str) -> RawFile:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            text = fh.read().decode(encoding)
    except UnicodeDecodeError as exc:
        raise LoadError(f"{path}: byte {exc.start}: not valid {encoding} text") from exc
    lines = pd.Series(text.splitlines(), dtype=STRING)
    frame = pd.DataFrame({"text": lines, "_line": range(1, len(lines) + 1)})
    frame = frame[lines.str.strip().fillna("") != ""].reset_index(drop=True)
    return RawFile(path, frame, "dlr", encoding)
