"""The store: exact round trip, one commit per ingest, faults that leave it at the
version before or after, two real processes at once, any vendor name, history and undo,
and the conversion of an old Parquet store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from analysis import read_send_log, read_store, write_store
from analysis.cli import main
from analysis.schema import conform, validate
from analysis.store import StoreError, restore_store, store_history, store_partitions, store_path

SMS_LEDGER = str(Path(sys.executable).with_name("sms-ledger"))


def _canonical(path: Path, rows: list[list[str]]) -> Path:
    head = "vendor,message_id,phone,template_id,submit_time,done_time,status\n"
    path.write_text(head + "".join(",".join(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _month(path: Path, vendor: str, prefix: str, n: int, day: str = "2025-05-06") -> Path:
    return _canonical(path, [[vendor, f"{prefix}{i:06d}", f"1380013{i % 10000:04d}", "T1", f"{day} 09:{i % 60:02d}:00",
                              f"{day} 09:{i % 60:02d}:09", "delivered"] for i in range(n)])


def _files(store: Path) -> set[str]:
    return {p.relative_to(store).as_posix() for p in store.rglob("*") if p.is_file()}


def test_store_round_trip_is_exact(fixtures, tmp_path):
    log = read_send_log([fixtures / "canonical.csv", fixtures / "gateway.log", fixtures / "twilio_console.csv"])
    path = write_store(log, tmp_path)
    assert (path / "_delta_log").is_dir()
    assert {p.vendor for p in store_partitions(path)} == {"gateway", "huawei", "twilio"}
    back = read_store(tmp_path)
    validate(back)
    pd.testing.assert_frame_equal(back, log, check_categorical=False)


def test_write_replaces_atomically(fixtures, tmp_path):
    write_store(read_send_log(fixtures / "canonical.csv"), tmp_path)
    write_store(read_send_log(fixtures / "gateway.log"), tmp_path)
    assert set(read_store(tmp_path)["vendor"]) == {"gateway"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".send_log.lock", "send_log"]  # no temp folders left
    assert set(read_store(tmp_path, version=0)["vendor"]) == set(read_send_log(fixtures / "canonical.csv")["vendor"])


@pytest.mark.parametrize("step", ["write_deltalake", "remove_uncommitted", "transaction"])
def test_a_failing_step_leaves_the_version_before(step, tmp_path, monkeypatch):
    """Make each write step fail in turn (the transaction after the files were moved
    in): the store is the version before, nothing lost, no file of the failed run left."""
    import deltalake

    from analysis import store as store_module

    out = tmp_path / "s"
    jan = _month(tmp_path / "jan.csv", "tencent", "a", 50, "2025-01-10")
    assert main(["ingest", str(jan), "--out", str(out)]) == 0
    before = read_store(out)
    may = _month(tmp_path / "may.csv", "tencent", "b", 50)

    def boom(*args, **kwargs):
        raise OSError(f"injected failure in {step}")

    files = _files(store_path(out))
    if step == "write_deltalake":
        monkeypatch.setattr(deltalake, "write_deltalake", boom)
    elif step == "transaction":
        monkeypatch.setattr(deltalake.DeltaTable, "create_write_transaction", boom)
    else:
        monkeypatch.setattr(store_module, "_remove_uncommitted", boom)
    assert main(["ingest", str(may), "--out", str(out)]) == 2
    monkeypatch.undo()
    pd.testing.assert_frame_equal(read_store(out), before)
    assert store_history(out)["version"].max() == 0
    assert _files(store_path(out)) == files and not list(out.glob(".commit-*"))
    assert main(["ingest", str(may), "--out", str(out)]) == 0  # a re-run completes it
    assert len(read_store(out)) == 100


@pytest.mark.slow
def test_killed_mid_ingest_leaves_the_last_version_and_no_litter(tmp_path):
    """kill -9 a real ingest at several moments: the store is the version before or after."""
    out = tmp_path / "s"
    first = _month(tmp_path / "first.csv", "tencent", "a", 2_000, "2025-04-08")
    assert main(["ingest", str(first), "--out", str(out)]) == 0
    before = read_store(out)
    big = _month(tmp_path / "big.csv", "tencent", "b", 60_000, "2025-04-09")
    outcomes = set()
    for delay in (0.5, 1.0, 1.5, 2.0, 3.0, 4.5):
        proc = subprocess.Popen([SMS_LEDGER, "ingest", str(big), "--out", str(out)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        now = read_store(out)
        assert len(now) in (len(before), len(before) + 60_000), delay
        assert len(read_send_log(out)) == len(read_send_log(store_path(out))) == len(now), delay  # not the litter
        outcomes.add(len(now))
        if len(now) > len(before):
            assert main(["undo", "--out", str(out)]) == 0
    # the next write removes what a killed run wrote and never committed
    assert main(["ingest", str(first), "--out", str(out)]) == 0
    store = store_path(out)
    live = {Path(p.path).relative_to(store).as_posix() for p in store_partitions(store)}
    data = {f for f in _files(store) if not f.startswith("_delta_log")}
    history = store_history(out)
    assert data >= live and not [f for f in data - live if not _referenced(store, f)]
    assert len(history) >= 2


def _referenced(store: Path, rel: str) -> bool:
    """A file an earlier version still refers to (kept for undo), not litter."""
    from urllib.parse import unquote

    text = "".join(p.read_text(encoding="utf-8") for p in (store / "_delta_log").glob("*.json"))
    return any(unquote(part) == rel for part in __import__("re").findall(r'"path":"([^"]+)"', text))


@pytest.mark.slow
def test_two_ingests_at_once_both_land(tmp_path):
    """Two real `sms-ledger ingest` processes into one store: both sets of rows are there."""
    out = tmp_path / "s"
    a = _month(tmp_path / "a.csv", "tencent", "a", 20_000)
    b = _month(tmp_path / "b.csv", "tencent", "b", 20_000)  # the same vendor and month: the same partition
    procs = [subprocess.Popen([SMS_LEDGER, "ingest", str(f), "--out", str(out)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for f in (a, b)]
    codes = [p.wait(timeout=600) for p in procs]
    assert codes == [0, 0], [p.stderr.read() for p in procs]
    log = read_store(out)
    assert len(log) == 40_000 and log["message_id"].is_unique
    assert len(store_history(out)) == 2


@pytest.mark.parametrize("vendor", ["my gw", "a/b", "x%y=z", "阿里短信", "o'brien"])
def test_any_vendor_name_round_trips_and_merges(vendor, tmp_path):
    out = tmp_path / "s"
    mapping = tmp_path / "m.toml"
    mapping.write_text(f'vendor = "{vendor}"\nsource_tz = "Asia/Shanghai"\n[columns]\nmessage_id = "id"\n'
                       'phone = "mobile"\nsubmit_time = "sent"\nstatus = "state"\n', encoding="utf-8")
    for name, ids in (("one.csv", ("m1", "m2")), ("two.csv", ("m3", "m4"))):
        (tmp_path / name).write_text("id,mobile,sent,state\n" + "".join(
            f"{i},1380013800{k},2025-05-06 09:00:0{k},delivered\n" for k, i in enumerate(ids)), encoding="utf-8")
        assert main(["ingest", str(tmp_path / name), "--mapping", str(mapping), "--out", str(out)]) == 0
    log = read_store(out)
    assert set(log["vendor"]) == {vendor} and len(log) == 4  # merged, not replaced
    bills = tmp_path / "bills.csv"
    bills.write_text(f"vendor,period,billed_count,unit_price,amount\n\"{vendor}\",2025-05,4,0.05,0.20\n", encoding="utf-8")
    assert main(["weekly", str(out), str(bills), "--week", "2025-W19", "--out", str(tmp_path / "r"), "--lang",
                 "en"]) == 0
    from analysis import read_ledger

    book = read_ledger(tmp_path / "r" / "ledger-2025-W19-en.xlsx")
    assert vendor in set(book["billing"]["vendor"]) and book["billing"]["billed_count"].sum() == 4


def test_history_and_undo(tmp_path, capsys):
    out = tmp_path / "s"
    jan = _month(tmp_path / "jan.csv", "tencent", "a", 10, "2025-01-10")
    wrong = _month(tmp_path / "wrong.csv", "aliyun", "w", 7)
    assert main(["ingest", str(jan), "--out", str(out)]) == 0
    assert main(["ingest", str(wrong), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["history", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "wrong.csv" in printed and "jan.csv" in printed
    h = store_history(out)
    assert h.iloc[0]["files"] == "wrong.csv" and h.iloc[0]["change"] == 7 and h.iloc[0]["rows"] == 17
    assert h.iloc[0][["rows_read", "loaded", "rejected", "duplicates"]].tolist() == [7, 7, 0, 0]
    assert main(["undo", "--out", str(out)]) == 0
    assert set(read_store(out)["vendor"]) == {"tencent"}
    undone = store_history(out).iloc[0]
    assert undone["operation"] == "restore" and undone["change"] == -7 and undone["rows"] == 10
    assert restore_store(out, 1) == 3  # and back again: the undo is a version too
    assert len(read_store(out)) == 17
    assert main(["ingest", str(jan), "--out", str(out)]) == 0  # again: a version that adds nothing
    again = store_history(out).iloc[0]
    assert again["change"] == 0 and again["rows"] == 17 and again["files"] == "jan.csv"
    assert again[["rows_read", "loaded", "duplicates"]].tolist() == [10, 0, 10]  # the store's own rows not counted
    with pytest.raises(ValueError, match="no version 9"):
        restore_store(out, 9)


def test_an_old_parquet_store_is_converted_losing_nothing(demo, tmp_path):
    """A store of the previous layout (hive folders, percent-encoded names) is converted
    on first use: every row, every vendor, the same frame."""
    from conftest import demo_files

    log = read_send_log(demo_files(demo))
    log = conform(pd.concat([log, log.head(3).assign(vendor="my gw", message_id=["x1", "x2", "x3"])],
                            ignore_index=True))
    old = tmp_path / "interim" / "send_log"
    frame = log.assign(month=log["submit_time"].dt.strftime("%Y-%m"), vendor=log["vendor"].astype(str))
    ds.write_dataset(pa.Table.from_pandas(frame, preserve_index=False), old, format="parquet",
                     partitioning=ds.partitioning(pa.schema([("vendor", pa.string()), ("month", pa.string())]),
                                                  flavor="hive"), basename_template="part-{i}.parquet")
    assert (old / "vendor=my%20gw").exists() and not (old / "_delta_log").exists()
    back = read_store(tmp_path / "interim")
    assert (old / "_delta_log").exists()
    expected = log.sort_values(["submit_time", "vendor", "message_id"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(back, expected, check_categorical=False)
    assert store_history(tmp_path / "interim").iloc[-1]["operation"] == "migrate"
    assert not [p for p in old.parent.iterdir() if p.name.startswith(".send_log.") and p.name != ".send_log.lock"]


@pytest.mark.slow
def test_no_stale_lock_after_a_killed_ingest(tmp_path):
    """The lock dies with its process: the next ingest does not wait."""
    out = tmp_path / "s"
    big = _month(tmp_path / "big.csv", "tencent", "b", 40_000)
    proc = subprocess.Popen([SMS_LEDGER, "ingest", str(big), "--out", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    small = _month(tmp_path / "small.csv", "aliyun", "s", 5)
    start = time.monotonic()
    assert main(["ingest", str(small), "--out", str(out)]) == 0
    assert time.monotonic() - start < 60


@pytest.mark.slow
def test_two_processes_opening_an_old_store_convert_it_once(tmp_path):
    """Two real processes read a store of the previous layout at the same moment: both
    get every row, and the store is converted once."""
    log = read_send_log(Path(__file__).parent / "fixtures" / "canonical.csv")
    old = tmp_path / "interim" / "send_log"
    frame = log.assign(month=log["submit_time"].dt.strftime("%Y-%m"), vendor=log["vendor"].astype(str))
    ds.write_dataset(pa.Table.from_pandas(frame, preserve_index=False), old, format="parquet",
                     partitioning=ds.partitioning(pa.schema([("vendor", pa.string()), ("month", pa.string())]),
                                                  flavor="hive"), basename_template="part-{i}.parquet")
    code = "import sys; from analysis import read_store; print(len(read_store(sys.argv[1])))"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "interim")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    assert [int(o.strip()) for o, _ in outs] == [len(log), len(log)]
    history = store_history(tmp_path / "interim")
    assert history["operation"].tolist() == ["migrate"] and history["rows"].tolist() == [len(log)]


def test_a_table_from_before_phone_key_reads_the_same_and_gains_it(fixtures, tmp_path):
    """A table written before ``phone_key`` existed gives the same ledgers' sums; the next
    ingest adds the column to the partitions it rewrites and loses no row."""
    from deltalake import write_deltalake

    from analysis.engine import ledger_source
    from analysis.store import PARTITION_BY, TABLE_CONFIGURATION, store_arrow

    log = read_send_log([fixtures / "canonical.csv", fixtures / "gateway.log"])
    new, old = tmp_path / "new", tmp_path / "old"
    write_store(log, new)
    write_deltalake(str(store_path(old)), store_arrow(log).drop_columns(["phone_key"]), partition_by=PARTITION_BY,
                    configuration=TABLE_CONFIGURATION)
    assert "phone_key" not in pq.read_schema(store_partitions(old)[0].path).names
    a, b = ledger_source([new], workers=1).cubes, ledger_source([old], workers=1).cubes
    for name in ("quality", "latency", "failures", "daily"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), obj=name)
    more = _month(tmp_path / "more.csv", "huawei", "m", 5)  # into a partition the old table has
    assert main(["ingest", str(more), "--out", str(old)]) == 0
    rewritten = [p for p in store_partitions(old) if p.vendor == "huawei"]
    assert rewritten and all("phone_key" in pq.read_schema(p.path).names for p in rewritten)
    assert len(read_store(old)) == len(log) + 5


def test_the_table_log_holds_no_phone_number(fixtures, tmp_path):
    """The Delta log is plain JSON: its per-file statistics leave out phones, ids and text."""
    log = read_send_log([fixtures / "canonical.csv", fixtures / "gateway.log", fixtures / "twilio_console.csv"])
    write_store(log, tmp_path)
    text = "".join(p.read_text(encoding="utf-8") for p in (store_path(tmp_path) / "_delta_log").glob("*.json"))
    phones = {p for p in log["phone"].dropna().astype(str)}
    assert phones and not [p for p in phones if p in text or p.removeprefix("+86") in text]
    assert "numRecords" in text and "submit_time" in text  # the statistics that skip files are kept


def test_vacuum_frees_superseded_files_and_says_what_cannot_be_restored(tmp_path, capsys):
    """Re-ingesting a month rewrites its partition and keeps the old file for undo;
    vacuum removes exactly those files (the store reads the same), recent versions stay
    restorable by default, and restoring a vacuumed version is a clear error."""
    from analysis.store import vacuum_store

    out = tmp_path / "s"
    may = _month(tmp_path / "may.csv", "tencent", "a", 30)
    more = _month(tmp_path / "more.csv", "tencent", "b", 20)
    assert main(["ingest", str(may), "--out", str(out)]) == 0
    assert main(["ingest", str(more), "--out", str(out)]) == 0  # the same partition, rewritten
    store = store_path(out)
    live = {Path(p.path) for p in store_partitions(store)}
    on_disk = {p for p in store.rglob("*.parquet") if "_delta_log" not in p.parts}
    assert len(on_disk - live) == 1  # the version-0 file, kept for undo
    before = read_store(out)
    assert vacuum_store(out) == (0, 0)  # the default keeps the last 30 days restorable
    assert main(["vacuum", "--out", str(out), "--days", "0", "--dry-run"]) == 0
    assert "would remove 1 files" in capsys.readouterr().out
    gone = sum(p.stat().st_size for p in on_disk - live)
    assert vacuum_store(out, days=0) == (1, gone)
    assert {p for p in store.rglob("*.parquet") if "_delta_log" not in p.parts} == live
    pd.testing.assert_frame_equal(read_store(out), before)
    with pytest.raises(ValueError, match="version 0 can no longer be restored"):
        restore_store(out, 0)
    history = store_history(out)  # the vacuum is in the history too, changing no row
    assert history["operation"].tolist()[:2] == ["vacuum end", "vacuum start"]
    assert history["change"].tolist()[:2] == [0, 0] and history["rows"].iloc[0] == 50
    assert restore_store(out, 1) == 4 and len(read_store(out)) == 50  # the live version stays restorable


def test_commit_groups_are_whole_partitions_in_order_of_at_most_the_bound(monkeypatch):
    from analysis import store as store_module

    monkeypatch.setattr(store_module, "COMMIT_ROWS", 100)
    rows = {("b", "2025-02"): 30, ("a", "2025-01"): 60, ("a", "2025-02"): 50, ("c", "2025-01"): 250,
            ("c", "2025-02"): 10}
    assert store_module.commit_groups(rows) == [[("a", "2025-01")], [("a", "2025-02"), ("b", "2025-02")],
                                                [("c", "2025-01")], [("c", "2025-02")]]


def test_an_ingest_committed_in_groups_is_the_ingest_committed_at_once(tmp_path, monkeypatch):
    """Groups of a few partitions, a writer call each (counted), make the store, the
    files' statistics in the log and the history that one call makes."""
    import deltalake

    from analysis import store as store_module

    files = [_month(tmp_path / f"{v.replace('/', '_')}{m}.csv", v, f"{v}{m}-", 300 + 40 * m, f"2025-0{m}-10")
             for v in ("tencent", "aliyun", "a/b") for m in (1, 2, 3)]
    calls = []
    real = deltalake.write_deltalake
    monkeypatch.setattr(deltalake, "write_deltalake", lambda *a, **k: calls.append(1) or real(*a, **k))

    def ingest(out: Path, bound: int):
        monkeypatch.setattr(store_module, "COMMIT_ROWS", bound)
        calls.clear()
        assert main(["ingest", *map(str, files[:5]), "--out", str(out)]) == 0
        assert main(["ingest", *map(str, files[3:]), "--out", str(out)]) == 0  # replaces two partitions
        return len(calls)

    assert ingest(tmp_path / "once", 10**9) == 2  # one call per ingest
    assert ingest(tmp_path / "grouped", 700) > 4
    pd.testing.assert_frame_equal(read_store(tmp_path / "grouped"), read_store(tmp_path / "once"))

    def actions(out: Path) -> pd.DataFrame:
        table = pa.table(deltalake.DeltaTable(str(store_path(out))).get_add_actions(flatten=True)).to_pandas()
        kept = [c for c in table.columns if c.startswith(("partition.", "min.", "max.", "null_count.")) or c == "num_records"]
        assert "min.submit_time" in kept and not [c for c in kept if "phone" in c or "message_id" in c]
        return table[kept].sort_values(["partition.vendor", "partition.month"]).reset_index(drop=True)

    grouped = actions(tmp_path / "grouped")
    pd.testing.assert_frame_equal(grouped, actions(tmp_path / "once"))
    log = read_store(tmp_path / "grouped")  # the statistics are the rows' own
    log["month"] = log["submit_time"].dt.strftime("%Y-%m")
    truth = log.groupby(["vendor", "month"], observed=True).agg(n=("submit_time", "size"), first=("submit_time", "min"),
                                                                 last=("done_time", "max"))
    at = grouped.set_index(["partition.vendor", "partition.month"])
    assert sorted(at.index) == sorted(truth.index) and len(at) == 9
    assert (at["num_records"] == truth.loc[at.index, "n"].to_numpy()).all()
    assert (pd.to_datetime(at["min.submit_time"], utc=True) == truth.loc[at.index, "first"].dt.tz_convert("UTC").to_numpy()).all()
    assert (pd.to_datetime(at["max.done_time"], utc=True) == truth.loc[at.index, "last"].dt.tz_convert("UTC").to_numpy()).all()
    pd.testing.assert_frame_equal(store_history(tmp_path / "grouped").drop(columns="time"),
                                  store_history(tmp_path / "once").drop(columns="time"))


def _two_versions(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """A store of two ingests (two vendors, two months); returns it and version 0's rows."""
    out = tmp_path / "s"
    assert main(["ingest", str(_month(tmp_path / "a.csv", "tencent", "a", 300, "2025-04-08")), "--out", str(out)]) == 0
    first = read_store(out)
    b = _month(tmp_path / "b.csv", "aliyun", "b", 200, "2025-05-06")
    assert main(["ingest", str(b), str(_month(tmp_path / "c.csv", "tencent", "c", 100)), "--out", str(out)]) == 0
    assert len(read_store(out)) == 600
    return out, first


def _latest_commit(out: Path) -> Path:
    return max((store_path(out) / "_delta_log").glob("*.json"))


def _newest_data_file(out: Path) -> Path:
    return next(Path(p.path) for p in store_partitions(out) if p.vendor == "aliyun")


#: Ways a store gets damaged: the latest commit file emptied or its last line cut, a data
#: file deleted or cut short.
DAMAGE = {
    "empty commit": lambda out: _latest_commit(out).write_bytes(b""),
    "last line cut": lambda out: _latest_commit(out).write_bytes(
        b"\n".join(_latest_commit(out).read_bytes().splitlines()[:-1]) + b"\n"),
    "half a line cut": lambda out: _latest_commit(out).write_bytes(_latest_commit(out).read_bytes()[:-40]),
    "data file deleted": lambda out: _newest_data_file(out).unlink(),
    "data file cut short": lambda out: _newest_data_file(out).write_bytes(_newest_data_file(out).read_bytes()[:500]),
}


@pytest.mark.slow  # real processes
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_store_is_an_error_and_check_takes_it_back_to_its_intact_version(damage, tmp_path):
    """Whatever is damaged, no read gives fewer or more rows: every entry point stops
    with one line naming the store; an ingest deletes nothing; `check` names the intact
    version and `check --repair` makes it the store again, which ingests go on from."""
    from analysis import LoadError, load_inputs

    out, first = _two_versions(tmp_path)
    DAMAGE[damage](out)
    files = _files(store_path(out))
    for read in (read_store, read_send_log, lambda o: read_send_log(store_path(o)), lambda o: load_inputs([o])):
        with pytest.raises((StoreError, LoadError), match=str(store_path(out))):
            read(out)
    for command in (["weekly", str(out), "--week", "2025-W19", "--out", str(tmp_path / "r")],
                    ["ingest", str(tmp_path / "a.csv"), "--out", str(out)], ["history", "--out", str(out)]):
        done = subprocess.run([SMS_LEDGER, *command], capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert done.stderr.startswith(f"sms-ledger: error: {store_path(out)}") and done.stderr.count("\n") == 1, \
            done.stderr
        assert "\x1b" not in done.stderr
    assert _files(store_path(out)) == files  # nothing written, nothing removed
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())
    check = subprocess.run([SMS_LEDGER, "check", "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert check.returncode == 1 and "the latest intact version is 0 (300 messages)" in check.stdout, check.stdout
    repair = subprocess.run([SMS_LEDGER, "check", "--repair", "--out", str(out)], capture_output=True, text=True,
                            timeout=120)
    assert repair.returncode == 0 and "the store is intact" in repair.stdout, repair.stdout + repair.stderr
    pd.testing.assert_frame_equal(read_store(out), first)
    assert main(["ingest", str(tmp_path / "b.csv"), "--out", str(out)]) == 0
    assert len(read_store(out)) == 500 and len(read_send_log(out)) == 500


def test_every_read_goes_through_the_tables_log(tmp_path):
    """Files in the store's folder that no version names (what an ingest killed before
    its commit leaves, versions undone) are never read: each public entry point gives
    the version's rows."""
    from analysis import compute, load_inputs
    from analysis.engine import ledger_source

    out, first = _two_versions(tmp_path)
    assert main(["undo", "--out", str(out)]) == 0
    stray = store_path(out) / "vendor=tencent" / "month=2025-04" / "part-killed-00000.snappy.parquet"
    stray.write_bytes(Path(store_partitions(out)[0].path).read_bytes())  # a whole file no version names
    for name, rows in {"read_store": len(read_store(out)), "read_send_log root": len(read_send_log(out)),
                       "read_send_log table": len(read_send_log(store_path(out))),
                       "load_inputs": len(load_inputs([out]).log),
                       "ledger_source": int(compute(["hours"], ledger_source([out], measures=["hours"]))["hours"]["submitted"].sum())
                       }.items():
        assert rows == len(first) == 300, name


def _on_a_small_disk(mb: float, commands: list[list[str]], disk: Path) -> tuple[list, list[str]]:
    """Run ``commands`` one after another with ``disk`` a file system of ``mb`` MB of its
    own (a tmpfs mounted in a mount namespace of their own: no root needed, nothing left
    mounted); returns each one's (exit code, standard error) and the files left on it."""
    import shlex

    disk.mkdir(exist_ok=True)
    script = f"mount -t tmpfs -o size={int(mb * 1024)}k tmpfs {shlex.quote(str(disk))} || exit 99\n"
    for i, command in enumerate(commands):
        script += f"{shlex.join(command)} > /dev/null 2> {disk}/.err{i}; echo \"rc $?\"; cat {disk}/.err{i}; " \
                  f"rm {disk}/.err{i}; echo '--'\n"
    script += f"find {shlex.quote(str(disk))} -mindepth 1\n"
    done = subprocess.run(["unshare", "-Urm", "sh", "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    *runs, left = done.stdout.split("--\n")
    results = [(int(r.split("\n", 1)[0].split()[1]), r.split("\n", 1)[1]) for r in runs]
    return results, [line for line in left.splitlines() if line]


@pytest.mark.slow  # real processes on small disks
def test_a_full_disk_is_one_line_and_leaves_nothing_behind(tmp_path):
    """An ingest onto disks too small for its scratch, its commit, or neither: it lands
    whole or stops with one line saying the disk is full, leaving no scratch and no file
    no version names; `weekly` onto a full disk says so in one line, without a traceback."""
    rows = _month(tmp_path / "mid.csv", "tencent", "m", 40_000)
    disk = tmp_path / "disk"
    outcomes = set()
    for mb in (2, 6, 12, 16, 17, 18, 19, 24):
        [(code, err)], left = _on_a_small_disk(mb, [[SMS_LEDGER, "ingest", str(rows), "--out", str(disk / "s")]], disk)
        outcomes.add(code)
        names = {Path(p).relative_to(disk).as_posix() for p in left}
        if code == 0:
            assert "s/send_log/_delta_log/00000000000000000000.json" in names, (mb, names)
            continue
        assert code == 2 and err == f"sms-ledger: error: {disk / 's' / 'send_log'}: no space left on the disk " \
            f"({err.split('(')[1].split(')')[0]}): nothing was written; free some space and run again\n", (mb, err)
        assert names <= {"s", "s/.send_log.lock"}, (mb, names)
    assert outcomes == {0, 2}
    store = tmp_path / "store"
    assert main(["ingest", str(rows), "--out", str(store)]) == 0
    [(code, err)], left = _on_a_small_disk(0.004, [[SMS_LEDGER, "weekly", str(store), "--week", "2025-W19", "--out",
                                                   str(disk / "r")]], disk)
    assert code == 2 and err.startswith(f"sms-ledger: error: {disk / 'r'}") and err.count("\n") == 1, err
    assert "no space left on the disk" in err and {Path(p).name for p in left} <= {"r"}, (err, left)
