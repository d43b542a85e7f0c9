from pathlib import Path

import pandas as pd
import pytest

from analysis import read_store
from analysis.cli import main


def test_ingest_twice_changes_nothing(fixtures, tmp_path, capsys):
    raw = [str(fixtures / n) for n in ["canonical.csv", "tencent_submissions.csv", "tencent_pull.csv", "gateway.log"]]
    assert main(["ingest", *raw, "--out", str(tmp_path)]) == 0
    first = read_store(tmp_path)
    summary = pd.read_csv(tmp_path / "ingest-summary.csv")
    assert (summary.loaded + summary.rejected + summary.duplicates == summary.rows_read).all()
    rejects = pd.read_csv(tmp_path / "rejects.csv")
    assert len(rejects) == summary.rejected.sum() == 3  # 2 canonical, 1 log noise
    assert main(["ingest", *raw, "--out", str(tmp_path)]) == 0
    pd.testing.assert_frame_equal(read_store(tmp_path), first)
    assert len(pd.read_csv(tmp_path / "rejects.csv")) == 3
    again = pd.read_csv(tmp_path / "ingest-summary.csv").set_index("file")
    assert again.loc[str(fixtures / "canonical.csv"), "loaded"] == 0  # all already in the store
    out = capsys.readouterr().out
    assert "rows read" in out and "= loaded" in out


def test_ingest_adds_later_receipts_to_earlier_submissions(fixtures, tmp_path):
    assert main(["ingest", str(fixtures / "tencent_submissions.csv"), "--out", str(tmp_path)]) == 0
    assert set(read_store(tmp_path)["status"]) == {"pending"}
    assert main(["ingest", str(fixtures / "tencent_pull.csv"), "--out", str(tmp_path)]) == 0
    status = read_store(tmp_path).set_index("message_id")["status"].astype(str).to_dict()
    assert status == {"t1": "delivered", "t2": "failed", "t3": "pending", "t9": "delivered"}  # t9: a receipt alone


def test_submissions_ingested_after_their_receipts_become_one_message(fixtures, tmp_path):
    assert main(["ingest", str(fixtures / "tencent_pull.csv"), "--out", str(tmp_path)]) == 0
    alone = read_store(tmp_path).set_index("message_id")
    assert set(alone["time_source"]) == {"receipt"} and len(alone) == 3
    assert main(["ingest", str(fixtures / "tencent_submissions.csv"), "--out", str(tmp_path)]) == 0
    log = read_store(tmp_path).set_index("message_id")
    assert sorted(log.index) == ["t1", "t2", "t3", "t9"]  # one message each, never two
    assert log.loc["t1", "time_source"] == "submission"
    assert log.loc["t1", "submit_time"] == pd.Timestamp("2025-05-06 09:00:00", tz="Asia/Shanghai")
    assert log.loc["t1", "done_time"] - log.loc["t1", "submit_time"] == pd.Timedelta(seconds=5)
    assert log.loc["t9", "time_source"] == "receipt"  # still no submission


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["ingest", str(tmp_path / "missing.csv"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "missing.csv: no such file" in err and "Traceback" not in err
    (tmp_path / "odd.csv").write_text("a,b\n1,2\n")
    assert main(["ingest", str(tmp_path / "odd.csv"), "--out", str(tmp_path)]) == 2
    assert "odd.csv: unrecognised layout" in capsys.readouterr().err
    with pytest.raises(Exception, match="no such file"):
        main(["--debug", "ingest", str(tmp_path / "missing.csv")])


def test_help_explains_itself(capsys):
    with pytest.raises(SystemExit):
        main(["ingest", "--help"])
    out = capsys.readouterr().out
    assert "--vendor" in out and "--mapping" in out and "Parquet" in out


@pytest.mark.slow
def test_demo_command(tmp_path, capsys):
    assert main(["demo", "--n", "3000", "--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "interim"),
                 "--reports", str(tmp_path / "reports")]) == 0
    out = capsys.readouterr().out
    assert "send log by vendor" in out
    log = read_store(tmp_path / "interim")
    assert set(log["vendor"]) == {"aliyun", "tencent", "gateway", "twilio"}
    ledger = tmp_path / "reports" / "ledgers" / "ledger-2025-W19.xlsx"
    assert ledger.exists() and str(ledger) in out
    index = tmp_path / "reports" / "report-2025-W19.html"
    assert index.exists() and str(index) in out
    assert len(list((tmp_path / "reports" / "figures" / "2025-W19").glob("*.svg"))) >= 8


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_weekly_from_the_store_and_event_files(demo, tmp_path, capsys):
    from pathlib import Path

    from conftest import demo_files
    from openpyxl import load_workbook

    from analysis import read_ledger

    store = tmp_path / "interim"
    assert main(["ingest", *demo_files(demo), "--out", str(store)]) == 0
    folder = Path(demo["files"]["bills"]).parent
    events = [str(folder / f) for f in ("clicks.csv", "replies.csv", "complaints.csv", "bills.csv")]
    out = tmp_path / "ledgers"
    assert main(["weekly", str(store), *events, "--week", "2025-W18", "--lang", "en", "--out", str(out),
                 "--price", "twilio=0.3"]) == 0
    path = out / "ledger-2025-W18-en.xlsx"  # the language in the name: the Chinese one can sit beside it
    assert f"wrote {path}" in capsys.readouterr().out
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())  # the team can open it
    assert load_workbook(path).sheetnames[:2] == ["Summary", "Quality"]
    book = read_ledger(path)
    assert book["summary"].attrs["week"] == "2025-W18"
    assert book["quality"]["complaint_rate"].notna().all()
    billing = book["billing"].set_index("vendor")
    assert (billing.loc["twilio", "unit_price"] == 0.3).all()  # W18 spans April and May
    # the same on a local Dask cluster
    assert main(["weekly", str(store), *events, "--week", "2025-W18", "--lang", "en", "--out", str(tmp_path / "dask"),
                 "--price", "twilio=0.3", "--engine", "dask"]) == 0
    on_dask = read_ledger(tmp_path / "dask" / "ledger-2025-W18-en.xlsx")
    for key in ("quality", "failures", "content", "billing", "alerts"):
        pd.testing.assert_frame_equal(on_dask[key], book[key], obj=key)


def test_workers_start_first_for_a_large_store_only(fixtures, tmp_path, monkeypatch):
    """``weekly`` on a store of at least POOL_BYTES starts the worker processes before it
    reads anything; on a small store or raw exports it starts none."""
    from analysis import cli, workers

    started = []
    monkeypatch.setattr(workers, "start", lambda n: started.append(n) or 0)
    store = tmp_path / "interim"
    assert main(["ingest", str(fixtures / "canonical.csv"), "--out", str(store)]) == 0
    week = ["--week", "2025-W19", "--out", str(tmp_path / "l")]
    assert main(["weekly", str(store), *week]) == 0
    assert main(["weekly", str(fixtures / "canonical.csv"), *week]) == 0
    assert started == []
    monkeypatch.setattr(cli, "POOL_BYTES", 1)
    assert main(["weekly", str(store), *week]) == 0
    assert started == [workers.default()]


def test_weekly_all_weeks_from_raw_exports(demo, tmp_path):
    from pathlib import Path

    out = tmp_path / "ledgers"
    assert main(["weekly", str(Path(demo["files"]["bills"]).parent), "--all-weeks", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.glob("ledger-*.xlsx")) == [f"ledger-{w}.xlsx" for w in demo["period"]["weeks"]]
    rejects = pd.read_csv(out / "rejects.csv")
    assert len(rejects) >= demo["malformed"]["rows"]


def test_weekly_errors(demo, tmp_path, capsys):
    from pathlib import Path

    folder = str(Path(demo["files"]["bills"]).parent)
    assert main(["weekly", folder, "--week", "2025-W30", "--out", str(tmp_path)]) == 2
    assert "no messages in week 2025-W30" in capsys.readouterr().err
    assert main(["weekly", folder, "--week", "2025-W18", "--price", "aliyun", "--out", str(tmp_path)]) == 2
    assert "--price must look like VENDOR=VALUE" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.xlsx"))
    with pytest.raises(SystemExit):
        main(["weekly", folder])  # --week or --all-weeks is required


def test_trial_command(tmp_path, capsys):
    from openpyxl import load_workbook

    from analysis import read_ledger, simulate_trial

    truth = simulate_trial(tmp_path / "raw")
    out = tmp_path / "trial"
    assert main(["trial", truth["file"], "--out", str(out), "--lang", "en", "--industry", "finance"]) == 0
    printed = capsys.readouterr().out
    assert "Not enough evidence" in printed and "Fail" in printed and "scorecard:" in printed
    assert "pass (too small)" not in printed.lower()
    book = out / "trial-scorecard-en.xlsx"
    assert load_workbook(book).sheetnames == ["Scorecard", "Sample plan", "Wording", "Send windows"]
    sc = read_ledger(book)["scorecard"]
    for verdict, key in (("fail", "fails"), ("insufficient", "insufficient")):
        found = {v: sorted(sc.loc[sc["vendor"].eq(v) & sc["verdict"].eq(verdict), "criterion"])
                 for v in ("alpha", "beta", "gamma")}
        assert found == {v: sorted(c) for v, c in truth[key].items()}, verdict
    assert (out / "trial-scorecard-en.png").exists() and (out / "trial-scorecard-en.svg").exists()
    assert main(["trial", truth["file"], "--out", str(out), "--marketing-hours", "8"]) == 2
    assert "--marketing-hours must look like" in capsys.readouterr().err


def _canonical(path, rows):
    head = "vendor,message_id,phone,template_id,submit_time,done_time,status\n"
    path.write_text(head + "".join(",".join(r) + "\n" for r in rows))
    return str(path)


def test_ingest_rewrites_only_the_partitions_it_touches(tmp_path):
    """A month already in the store is neither read nor rewritten by an ingest of another
    month, a late receipt months later still finds its submission by id, and the store
    equals the one ingested in one go."""
    from analysis.store import store_partitions

    jan = _canonical(tmp_path / "jan.csv", [
        ["tencent", "a1", "13800138000", "T1", "2025-01-10 09:00:00", "", "pending"],
        ["tencent", "a2", "13800138001", "T1", "2025-01-10 09:00:00", "2025-01-10 09:00:09", "delivered"]])
    may = _canonical(tmp_path / "may.csv", [
        ["tencent", "b1", "13800138002", "T1", "2025-05-06 09:00:00", "2025-05-06 09:00:03", "delivered"]])
    late = tmp_path / "late.csv"  # Tencent's pulled receipt for a1, four months on: no submit time
    late.write_text("UserReceiveTime,CountryCode,SubscriberNumber,PhoneNumber,SerialNo,ReportStatus,Description\n"
                    "1746583200,86,13800138000,+8613800138000,a1,FAIL,1015\n")
    store = tmp_path / "s"
    assert main(["ingest", jan, "--out", str(store)]) == 0
    (january,) = store_partitions(store / "send_log")
    before = Path(january.path).stat().st_mtime_ns
    assert main(["ingest", may, "--out", str(store)]) == 0
    assert Path(january.path).stat().st_mtime_ns == before  # not rewritten
    assert january in store_partitions(store / "send_log")  # and still the live file
    summary = pd.read_csv(store / "ingest-summary.csv")
    assert (summary.loaded + summary.rejected + summary.duplicates == summary.rows_read).all()
    assert main(["ingest", str(late), "--out", str(store)]) == 0
    status = read_store(store).set_index("message_id")["status"].astype(str).to_dict()
    assert status == {"a1": "failed", "a2": "delivered", "b1": "delivered"}
    whole = tmp_path / "w"
    assert main(["ingest", jan, may, str(late), "--out", str(whole)]) == 0
    pd.testing.assert_frame_equal(read_store(store), read_store(whole))


PUBLIC = sorted((__import__("pathlib").Path(__file__).parent / "fixtures" / "public").iterdir())


def _weeks_of(path) -> list[str]:
    from analysis import load_send_log

    log = load_send_log(path).log
    return sorted(set(log["submit_time"].dt.strftime("%G-W%V")))


@pytest.mark.parametrize("path", PUBLIC, ids=lambda p: p.name)
def test_weekly_runs_on_each_vendors_data_alone(path, tmp_path, capsys):
    from analysis import read_ledger

    weeks = _weeks_of(path)
    code = main(["weekly", str(path), "--all-weeks", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    if not weeks:  # nothing but submissions without a time: a clear error, the reasons on disk
        assert code == 2 and "no messages in the input" in err and "rejected" in err
        assert (tmp_path / "rejects.csv").exists()
        return
    assert code == 0, err
    books = sorted(tmp_path.glob("ledger-*.xlsx"))
    assert [b.stem.split("-", 1)[1] for b in books] == weeks
    quality = read_ledger(books[0])["quality"]
    assert int(quality.loc[quality["vendor"].eq("All"), "submitted"].sum()) > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tencent_pull_sms_send_status.json", "kannel_access.log", "twilio_messages_page.json"])
def test_report_runs_on_each_vendors_data_alone(name, tmp_path):
    path = next(p for p in PUBLIC if p.name == name)
    (week,) = _weeks_of(path)[-1:]
    assert main(["report", str(path), "--week", week, "--out", str(tmp_path)]) == 0
    pages = sorted((tmp_path / "html").glob("*.html"))
    assert len(pages) == 5
    trial = (tmp_path / "html" / f"5.0-channel-trial-{week}.html").read_text(encoding="utf-8")
    assert "未提供通道测试数据" in trial  # the trial section says no trial was given
    content = (tmp_path / "html" / f"3.0-content-and-send-hours-{week}.html").read_text(encoding="utf-8")
    assert "没有点击记录" in content


@pytest.mark.slow
def test_report_when_no_click_matches_a_message(tmp_path):
    path = next(p for p in PUBLIC if p.name == "twilio_messages_page.json")
    (tmp_path / "clicks.csv").write_text("message_id,vendor,event_time,event\nnope,twilio,2019-05-24 18:00:00,click\n")
    assert main(["report", str(path), str(tmp_path / "clicks.csv"), "--week", "2019-W21",
                 "--out", str(tmp_path / "out")]) == 0


def test_control_characters_are_removed_counted_and_weekly_still_runs(tmp_path):
    """A NUL or ESC in a template no longer breaks every workbook of its week: removed at
    ingest and counted per file in the summary."""
    rows = [["tencent", f"c{i}", f"1380013{i:04d}", "T1", "2025-05-06 09:00:00", "2025-05-06 09:00:05", "delivered"]
            for i in range(6)]
    path = Path(_canonical(tmp_path / "ctl.csv", rows))
    text = path.read_text(encoding="utf-8").replace("\nc0", "\nc\x000").replace(",T1,", ",T\x1b1,", 2)
    path.write_text(text, encoding="utf-8")
    out = tmp_path / "s"
    assert main(["ingest", str(path), "--out", str(out)]) == 0
    summary = pd.read_csv(out / "ingest-summary.csv")
    assert summary["control_chars"].tolist() == [2]  # two rows had a field cleaned
    log = read_store(out)
    assert set(log["template_id"].astype(str)) == {"T1"} and "c0" in set(log["message_id"])
    assert not log["message_id"].str.contains("[\x00-\x1f]", regex=True).any()
    assert main(["weekly", str(out), "--week", "2025-W19", "--out", str(tmp_path / "r")]) == 0


def test_rejects_are_masked_in_every_file_unless_asked(tmp_path, capsys):
    """A rejected row's raw record keeps its phone masked, in the store's rejects.csv and
    in the one weekly writes beside the workbook; --unmask keeps the number."""
    phone = "13912345678"
    path = Path(_canonical(tmp_path / "r.csv", [
        ["tencent", "ok", "13800138000", "T1", "2025-05-06 09:00:00", "2025-05-06 09:00:05", "delivered"],
        ["tencent", "bad", phone, "T1", "not a time", "", "delivered"]]))
    out = tmp_path / "s"
    assert main(["ingest", str(path), "--out", str(out)]) == 0
    stored = (out / "rejects.csv").read_text(encoding="utf-8-sig")
    assert "139****5678" in stored and phone not in stored
    reports = tmp_path / "reports"
    assert main(["weekly", str(path), "--week", "2025-W19", "--out", str(reports)]) == 0
    beside = (reports / "rejects.csv").read_text(encoding="utf-8-sig")
    assert "139****5678" in beside and phone not in beside
    assert str(reports / "rejects.csv") in capsys.readouterr().err  # the command says where it went
    assert main(["ingest", str(path), "--out", str(tmp_path / "u"), "--unmask"]) == 0
    assert phone in (tmp_path / "u" / "rejects.csv").read_text(encoding="utf-8-sig")


def test_ingest_says_where_its_time_went(fixtures, tmp_path, capsys):
    import time

    from analysis.cli import ingest

    raw = [fixtures / "canonical.csv", fixtures / "gateway.log"]
    started = time.perf_counter()
    summary = ingest(raw, tmp_path)
    wall = time.perf_counter() - started
    stages = summary.attrs["stages"]
    assert list(stages) == ["read", "stage", "store", "merge", "finish", "commit"]
    assert all(s >= 0 for s in stages.values()) and sum(stages.values()) <= wall
    capsys.readouterr()
    assert main(["ingest", *map(str, raw), "--out", str(tmp_path)]) == 0
    assert "time: read " in capsys.readouterr().out


@pytest.mark.slow  # real processes killed
def test_a_killed_weekly_leaves_no_scratch_behind(tmp_path):
    """`weekly` on exports stages them in a scratch store under $TMPDIR (full phone
    numbers): a terminated run removes it; one killed with -9 cannot, and the next
    command removes it as it starts."""
    import os
    import signal
    import subprocess
    import sys
    import time

    export = tmp_path / "may.csv"
    export.write_text("vendor,message_id,phone,template_id,submit_time,done_time,status\n" + "".join(
        f"tencent,m{i},1380013{i % 10000:04d},T1,2025-05-06 09:{i % 60:02d}:00,2025-05-06 09:{i % 60:02d}:07,"
        "delivered\n" for i in range(60_000)), encoding="utf-8")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    sms_ledger = str(Path(sys.executable).with_name("sms-ledger"))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        proc = subprocess.Popen([sms_ledger, "weekly", str(export), "--week", "2025-W19", "--out", str(tmp_path / "r")],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not list(scratch.glob(".sms-ledger-*/send_log")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(scratch.glob(".sms-ledger-*")), "no scratch store was made"
        proc.send_signal(sig)
        proc.wait(timeout=60)
        left = list(scratch.glob(".sms-ledger-*"))
        if sig == signal.SIGTERM:
            assert proc.returncode == 128 + signal.SIGTERM and not left, left
    assert left, "a killed run cannot remove its scratch"
    subprocess.run([sms_ledger, "history", "--out", str(tmp_path / "none")], env=env, capture_output=True, timeout=60)
    assert not list(scratch.glob(".sms-ledger-*"))


@pytest.mark.slow  # real processes, run from folders of their own
def test_commands_read_and_write_in_the_folder_they_run_in(tmp_path, monkeypatch):
    """The project is the folder a command runs in, or the nearest one above it holding
    sms-ledger.toml (`sms-ledger init`): the store, the workbooks and the history are
    there, never in the package's own folder."""
    import os
    import subprocess
    import sys

    import analysis
    from analysis import config

    clone = Path(analysis.__file__).resolve().parent.parent
    before = {p: sorted(os.listdir(p)) for p in (clone / "reports", clone / "data" / "interim") if p.exists()}
    env = {k: v for k, v in os.environ.items() if k != "SMS_LEDGER_HOME"}
    sms_ledger = str(Path(sys.executable).with_name("sms-ledger"))
    fixtures = Path(__file__).parent / "fixtures"

    def run(*args, cwd):
        done = subprocess.run([sms_ledger, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (args, done.stderr)
        return done.stdout

    mine = tmp_path / "mine"
    mine.mkdir()
    run("ingest", str(fixtures / "canonical.csv"), cwd=mine)
    assert (mine / "data" / "interim" / "send_log" / "_delta_log").is_dir()
    run("weekly", "data/interim", "--all-weeks", cwd=mine)
    assert list((mine / "reports" / "ledgers").glob("ledger-*.xlsx"))
    assert "canonical.csv" in run("history", cwd=mine)
    # a project marked by `init`, used from a folder below it
    project = tmp_path / "project"
    run("init", str(project), cwd=tmp_path)
    assert (project / config.MARKER).is_file() and (project / "data" / "raw").is_dir()
    below = project / "exports" / "may"
    below.mkdir(parents=True)
    run("ingest", str(fixtures / "canonical.csv"), cwd=below)
    assert (project / "data" / "interim" / "send_log").is_dir() and not (below / "data").exists()
    assert "canonical.csv" in run("history", cwd=below)
    after = {p: sorted(os.listdir(p)) for p in before}
    assert after == before  # nothing written into the package's folder
    # `report` and the notebooks without inputs: the project's store, never another's
    monkeypatch.delenv("SMS_LEDGER_HOME", raising=False)
    monkeypatch.chdir(below)
    assert config.default_inputs() == [project / "data" / "interim"]
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="no store in this project"):
        config.default_inputs()
