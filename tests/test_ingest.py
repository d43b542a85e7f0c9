"""The streamed ingest (analysis.readers._ingest): files staged in blocks, spilled by a
hash of the phone number and merged unit by unit must give exactly the store, summary
and rejects that merging everything in memory gives."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from conftest import FIXTURES, demo_files

from analysis import load_send_log, read_store
from analysis.readers import _assemble, _files, _ingest, ingest_files, read_chunks
from analysis.store import store_path, write_store

ACCOUNT = ["rows_read", "loaded", "rejected", "duplicates", "messages", "control_chars"]


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few thousand rows and units of 2,000, so the demo's files are read
    in many blocks and merged in many units."""
    monkeypatch.setattr(_files, "BLOCK_BYTES", 1 << 15)
    for module in (_files, _assemble):
        monkeypatch.setattr(module, "CHUNK_ROWS", 3000)
    monkeypatch.setattr(_ingest, "UNIT_ROWS", 2000)
    units, real = [], _ingest._units

    def spy(spill):
        made = real(spill)
        units.extend(made)
        return made

    monkeypatch.setattr(_ingest, "_units", spy)
    return units


def _inputs(demo) -> list[str]:
    fixtures = sorted(str(p) for p in FIXTURES.glob("*.csv") if p.name != "custom.csv")
    return [*demo_files(demo), *fixtures, str(FIXTURES / "gateway.log")]


def _same(result, reference, tmp_path: Path) -> None:
    write_store(reference.log, tmp_path / "reference", replace=reference.partitions)
    pd.testing.assert_frame_equal(read_store(tmp_path / "streamed"), read_store(tmp_path / "reference"))
    got, want = result.summary.reset_index(drop=True), reference.summary.reset_index(drop=True)
    assert got[ACCOUNT].equals(want[ACCOUNT]) and got["layout"].equals(want["layout"])
    assert (got["rows_read"] == got["loaded"] + got["rejected"] + got["duplicates"]).all()
    key = ["file", "line", "reason"]
    pd.testing.assert_frame_equal(result.rejects.sort_values(key, ignore_index=True),
                                  reference.rejects.sort_values(key, ignore_index=True))


@pytest.mark.slow  # the whole demo, twice
def test_streamed_ingest_equals_the_in_memory_load(demo, tmp_path, small_blocks):
    files = _inputs(demo)
    reference = load_send_log(files)
    result = ingest_files(files, tmp_path / "streamed", workers=1)
    assert len(small_blocks) > 5  # merged in many units, each file in many blocks
    assert len(list(read_chunks(demo_files(demo)[0], rows=3000))) > 1
    assert result.messages == len(reference.log)
    _same(result, reference, tmp_path)


@pytest.mark.slow  # the whole demo, twice
def test_streamed_ingest_merges_with_the_store_as_the_in_memory_load(demo, tmp_path, small_blocks):
    files = demo_files(demo)
    first, second = files[::2], files[1::2]  # receipts in one half, their submissions in the other
    ingest_files(first, tmp_path / "streamed", workers=1)
    result = ingest_files(second, tmp_path / "streamed", workers=1)
    write_store(load_send_log(first).log, tmp_path / "reference", replace=[])
    reference = load_send_log(second, store=store_path(tmp_path / "reference"))
    assert result.partitions and len(result.partitions) == len(reference.partitions)
    _same(result, reference, tmp_path)


def test_receipts_without_a_phone_find_their_message_in_any_unit(tmp_path, small_blocks):
    n = 9000
    ids = [f"t{i}" for i in range(n)]
    sent = pd.date_range("2025-05-06 08:00", periods=n, freq="7s", tz="Asia/Shanghai")
    pd.DataFrame({"vendor": "tencent", "message_id": ids, "phone": [f"+8613{i:09d}" for i in range(n)],
                  "template_id": "888", "submit_time": sent.strftime("%Y-%m-%d %H:%M:%S"), "status": ""}).to_csv(
        tmp_path / "sent.csv", index=False)
    # Tencent's pulled receipts name the message by SerialNo alone (no phone column)
    pd.DataFrame({"UserReceiveTime": ((sent - pd.Timestamp(0, tz="UTC")) // pd.Timedelta("1s") + 5)[::-1], "SerialNo": ids[::-1],
                  "ReportStatus": "SUCCESS"}).to_csv(tmp_path / "receipts.csv", index=False)
    files = [tmp_path / "sent.csv", tmp_path / "receipts.csv"]
    result = ingest_files(files, tmp_path / "streamed", workers=1)
    assert len(small_blocks) > 3
    log = read_store(tmp_path / "streamed")
    assert len(log) == n and (log["status"] == "delivered").all()  # every receipt met its submission
    assert ((log["done_time"] - log["submit_time"]).dt.total_seconds() == 5).all()
    assert result.summary["loaded"].tolist() == [n, n]
    _same(result, load_send_log(files), tmp_path)


@pytest.mark.slow  # worker processes
def test_blocks_staged_on_the_workers_as_here(tmp_path, small_blocks, monkeypatch):
    """Worker processes stage the blocks this process reads: the same store, accounting
    and rejects (a malformed row, a bad phone, receipts with no phone) as staging here."""
    from analysis import workers

    sent_blocks, stream = [], workers.stream

    def spy(fn, items, **kw):
        for out in stream(fn, items, **kw):
            sent_blocks.append(fn.__name__)
            yield out

    monkeypatch.setattr(workers, "stream", spy)

    n = 8000
    ids = [f"w{i}" for i in range(n)]
    sent = pd.date_range("2025-05-06 08:00", periods=n, freq="5s", tz="Asia/Shanghai")
    phones = [f"+8613{i:09d}" for i in range(n)]
    phones[17] = "12345"  # rejected while staging
    lines = [f"tencent,{m},{p},888,{t:%Y-%m-%d %H:%M:%S}" for m, p, t in zip(ids, phones, sent, strict=True)]
    lines.insert(40, "tencent,broken")  # malformed: rejected by the reader
    (tmp_path / "sent.csv").write_text("vendor,message_id,phone,template_id,submit_time\n" + "\n".join(lines) + "\n")
    pd.DataFrame({"UserReceiveTime": ((sent - pd.Timestamp(0, tz="UTC")) // pd.Timedelta("1s") + 3), "SerialNo": ids,
                  "ReportStatus": "SUCCESS"}).to_csv(tmp_path / "receipts.csv", index=False)
    files = [tmp_path / "sent.csv", tmp_path / "receipts.csv"]
    here = ingest_files(files, tmp_path / "here", workers=1)
    assert not sent_blocks
    there = ingest_files(files, tmp_path / "there", workers=2)
    assert len(sent_blocks) > 3 and set(sent_blocks) == {"spill_block"}  # every block went to a worker
    pd.testing.assert_frame_equal(read_store(tmp_path / "there"), read_store(tmp_path / "here"))
    pd.testing.assert_frame_equal(there.summary, here.summary)
    pd.testing.assert_frame_equal(there.rejects, here.rejects)
    assert set(here.rejects["line"]) == {19, 42} and here.summary["rows_read"].sum() == 2 * n + 1


@pytest.mark.slow
def test_streamed_ingest_on_two_processes(demo, tmp_path, small_blocks):
    files = demo_files(demo)
    result = ingest_files(files, tmp_path / "streamed", workers=2)
    assert len(small_blocks) > 5
    _same(result, load_send_log(files), tmp_path)


def test_a_killed_ingests_spill_is_removed_by_the_next(demo, tmp_path):
    root = tmp_path / "s"
    dead = root / ".ingest-999999999-dead"  # no such process
    (dead).mkdir(parents=True)
    (dead / "staged-x.arrow").write_bytes(b"left behind")
    mine = root / f".ingest-{os.getpid()}-live"  # a running ingest's: kept
    mine.mkdir()
    ingest_files([FIXTURES / "canonical.csv"], root, workers=1)
    assert not dead.exists() and mine.exists()
    assert not [p for p in root.glob(".ingest-*") if p != mine]  # its own spill is gone too


def test_blocks_read_as_the_whole_file(tmp_path, monkeypatch):
    monkeypatch.setattr(_files, "BLOCK_BYTES", 1 << 12)
    path = tmp_path / "mixed.csv"
    good = "".join(f"{i},x{i}\n" for i in range(3000))
    path.write_bytes(("title line\na,b\n" + good + "1,2,3\n" + good).encode() + b"5,\xff\xfe\n" + good.encode())
    whole = _files.read_raw(path)
    blocks = list(read_chunks(path, rows=50))
    assert len(blocks) > 5 and [b.chunk for b in blocks] == list(range(len(blocks)))
    joined = pd.concat([b.frame for b in blocks], ignore_index=True)
    pd.testing.assert_frame_equal(joined, whole.frame)
    assert sorted(x for b in blocks for x in b.bad) == sorted(whole.bad)
    # the malformed row, the undecodable one and the title by their lines; records by theirs
    lines = {line: reason for line, reason, _ in whole.bad}
    assert set(lines) == {1, 3003, 6004}
    assert joined["_line"].iloc[3000] == 3004 and len(joined) == 9000


def test_a_parquet_input_is_staged_on_the_workers_by_what_it_decodes_to(tmp_path, monkeypatch):
    """Parquet compresses a log several times over: its footer's uncompressed size, not
    the file's, decides whether staging is worth the workers."""
    import pyarrow.parquet as pq

    from analysis import workers

    path = tmp_path / "log.parquet"
    pd.DataFrame({"phone": ["13800138000"] * 50_000, "message_id": [f"m{i}" for i in range(50_000)]}).to_parquet(path)
    meta = pq.ParquetFile(path).metadata
    decoded = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    assert decoded > path.stat().st_size * 3 // 2  # a file smaller than what it holds
    monkeypatch.setattr(workers, "default", lambda: 2)
    monkeypatch.setattr(_ingest, "PARALLEL_BYTES", (path.stat().st_size + decoded) // 2)
    assert _ingest.staging_workers([path]) == 2
    text = tmp_path / "log.csv"
    text.write_bytes(b"x" * path.stat().st_size)  # a CSV of the Parquet's size: its bytes are what it holds
    assert _ingest.staging_workers([text]) == 1


def _fixture_inputs() -> list[Path]:
    """Every export fixture, the vendors' published samples included (``custom.csv`` is
    read with its mapping)."""
    return sorted(p for p in [*FIXTURES.iterdir(), *(FIXTURES / "public").iterdir()]
                  if p.is_file() and p.suffix not in {".md", ".toml"})


def _stored(root: Path) -> pd.DataFrame:
    """The store's messages (none when no ingest stored any: an export whose rows were
    all rejected writes no store)."""
    from analysis.schema import empty_log

    return read_store(root) if store_path(root).exists() else empty_log()


def _options(path: Path) -> dict:
    return {"mapping": FIXTURES / "custom-mapping.toml"} if path.name == "custom.csv" else {}


@pytest.mark.parametrize("path", _fixture_inputs(), ids=lambda p: p.name)
def test_every_fixture_ingested_twice_leaves_the_store_unchanged(path, tmp_path):
    """The second ingest of the same export changes no row of the store (phone-less
    receipts, merged receipts and submissions included) and holds the messages the
    in-memory load of the export gives."""
    opts = _options(path)
    ingest_files([path], tmp_path, workers=1, **opts)
    first = _stored(tmp_path)
    again = ingest_files([path], tmp_path, workers=1, **opts)
    pd.testing.assert_frame_equal(_stored(tmp_path), first)
    assert len(first) == len(load_send_log(path, **opts).log)
    inputs = again.summary.iloc[:1]  # the export; the store's rows read back come after it
    assert (inputs["loaded"] + inputs["rejected"] + inputs["duplicates"] == inputs["rows_read"]).all()


#: Exports of one vendor that name the same messages: submissions and their receipts.
RELATED = [("tencent_submissions.csv", "tencent_pull.csv"), ("tencent_submissions.csv", "tencent_callback.csv"),
           ("vonage_submissions.csv", "vonage_dlr.csv"), ("aliyun_details_gbk.csv", "aliyun_report.csv"),
           ("public/aliyun_query_send_details.json", "public/aliyun_sms_report.json"),
           ("public/tencent_console_zh.csv", "public/tencent_pull_sms_send_status.json")]


@pytest.mark.parametrize(("a", "b"), RELATED, ids=lambda name: Path(name).stem)
def test_related_exports_give_one_store_in_either_order(a, b, tmp_path):
    """Submissions then receipts, receipts then submissions, both at once, and all of it
    again: the same messages, row for row, as the in-memory load of both."""
    a, b = FIXTURES / a, FIXTURES / b
    for name, order in {"ab": [[a], [b]], "ba": [[b], [a]], "both": [[a, b]]}.items():
        for files in order:
            ingest_files(files, tmp_path / name, workers=1)
    want = read_store(tmp_path / "both")
    write_store(load_send_log([a, b]).log, tmp_path / "memory")
    pd.testing.assert_frame_equal(read_store(tmp_path / "memory"), want)
    for name in ("ab", "ba"):
        pd.testing.assert_frame_equal(read_store(tmp_path / name), want, obj=name)
        ingest_files([a, b], tmp_path / name, workers=1)
        pd.testing.assert_frame_equal(read_store(tmp_path / name), want, obj=f"{name} again")


def test_a_send_response_joins_the_receipts_already_in_the_store(tmp_path):
    """A SendSms response has no time: alone it is rejected with a reason that says to
    load it with its receipts; ingested after them, it completes their messages."""
    send, pull = FIXTURES / "public/tencent_send_sms.json", FIXTURES / "public/tencent_pull_sms_send_status.json"
    alone = ingest_files([send], tmp_path / "alone", workers=1)
    assert alone.messages == 0 and set(alone.rejects["reason_code"]) == {"submission_alone"}
    ingest_files([pull], tmp_path / "later", workers=1)
    ingest_files([send], tmp_path / "later", workers=1)
    write_store(load_send_log([send, pull]).log, tmp_path / "memory")
    pd.testing.assert_frame_equal(read_store(tmp_path / "later"), read_store(tmp_path / "memory"))


def _gateway_rows(path: Path, rows: list[tuple]) -> Path:
    pd.DataFrame(rows, columns=["vendor", "message_id", "phone", "submit_time", "done_time", "status"]).to_csv(
        path, index=False)
    return path


def test_an_id_a_gateway_reused_for_another_number_is_another_message(tmp_path, small_blocks):
    """Gateways restart their sequences: one id sent to two numbers a month apart is two
    messages; a receipt that names only the id joins the one sent last before it. The
    same in memory, streamed in many units, and over two ingests."""
    n = 3000  # ids GA0 … GA2999, each used in April and again in May for other numbers
    ids = [f"GA{i:08d}" for i in range(n)]
    april = [("gw", m, f"+8613800{i:06d}", "2025-04-06 09:00:00", "", "pending") for i, m in enumerate(ids)]
    may = [("gw", m, f"+8613900{i:06d}", "2025-05-06 09:00:00", "", "pending") for i, m in enumerate(ids)]
    # receipts without a phone: the first half for April's messages, the second for May's
    receipts = [("gw", m, "", "", "2025-04-06 09:00:07" if i < n // 2 else "2025-05-06 09:00:07",
                 "delivered") for i, m in enumerate(ids)]
    files = [_gateway_rows(tmp_path / "april.csv", april), _gateway_rows(tmp_path / "may.csv", may),
             _gateway_rows(tmp_path / "receipts.csv", receipts)]
    memory = load_send_log(files).log
    assert len(memory) == 2 * n
    delivered = memory[memory["status"].eq("delivered")]
    assert len(delivered) == n and delivered["phone"].nunique() == n
    late = delivered["submit_time"].dt.month.eq(5)
    assert late.sum() == n - n // 2 and (delivered["phone"].str.startswith("+86139") == late).all()
    ingest_files(files, tmp_path / "streamed", workers=1)
    assert len(small_blocks) > 2
    write_store(memory, tmp_path / "memory")
    pd.testing.assert_frame_equal(read_store(tmp_path / "streamed"), read_store(tmp_path / "memory"))
    ingest_files(files[:2], tmp_path / "twice", workers=1)
    ingest_files(files[2:], tmp_path / "twice", workers=1)
    pd.testing.assert_frame_equal(read_store(tmp_path / "twice"), read_store(tmp_path / "memory"))


@pytest.mark.slow  # the demo, three ingests
def test_the_demo_ingested_again_changes_no_row(demo, tmp_path):
    """A retry of an ingest that had in fact landed (the seven exports again, and again
    in the other order) leaves every message as it was."""
    files = demo_files(demo)
    ingest_files(files, tmp_path, workers=1)
    first = read_store(tmp_path)
    ingest_files(files, tmp_path, workers=1)
    pd.testing.assert_frame_equal(read_store(tmp_path), first)
    ingest_files(files[::-1], tmp_path, workers=1)
    pd.testing.assert_frame_equal(read_store(tmp_path), first)
