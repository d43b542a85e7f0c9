"""Scale benchmark: ingest and weekly-ledger build on N messages, against DuckDB and plain pandas.

    .venv/bin/python benchmarks/bench_scale.py              # 10 million messages, one year
    .venv/bin/python benchmarks/bench_scale.py --n 1000000  # smaller

It generates a canonical send log of N messages over a year (4 vendors, a third of the
failures resent a minute later, canaries, failures with raw codes) as CSV and as the
Parquet store, then times, each in its own process (wall time, rows per second, peak
memory of the process tree):

1. pyarrow reading the CSV (all columns as strings): the raw read rate;
2. ingest's CSV read stage (``read_raw``: encoding detection, chunked pyarrow read with
   progress, malformed lines kept), on the same CSV;
3. ``sms-ledger ingest`` of the whole CSV (read, normalise, enrich, merge, deduplicate,
   commit the store), with the seconds of each stage (1 to 3 alternated,
   ``--ingest-repeat`` times: the median of each, and every round's ratios);
4. DuckDB's ``read_csv`` of the same CSV into a table;
5. ``sms-ledger weekly STORE --week W``: the whole ledger build from Parquet, Excel written
   (alternated with 7, ``--repeat`` times: the median of each, and every pair's ratio);
6. ``sms-ledger weekly STORE --all-weeks``: a year streamed partition by partition;
7. DuckDB computing the same aggregates from the same Parquet;
8. ``sms-ledger weekly`` handed the CSV export and a single Parquet export of the same
   log directly (ingested into a scratch store, then streamed), against DuckDB computing
   the same aggregates from each file;
9. plain pandas: default ``read_csv`` (object dtypes) and a per-group ``apply``.

It checks that our aggregates equal DuckDB's and prints the ratios to the targets:
ledger build ≤ 1.2× DuckDB's time and ≤ 2× its memory; ingest's CSV reading ≥ 0.8×
pyarrow's raw CSV read rate; the whole ingest ≥ 0.3× it, under 2 GB; the year streamed
and ``weekly`` on an export under 2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CLI = [PY, "-m", "analysis.cli"]
TZ = "Asia/Shanghai"

DUCKDB_SQL = """
SET TimeZone = 'Asia/Shanghai';
CREATE OR REPLACE VIEW log AS
  SELECT *, strftime(submit_time, '%G-W%V') AS week,
         epoch(done_time) - epoch(submit_time) AS latency
  FROM {source};
CREATE OR REPLACE TABLE quality AS
  SELECT week, vendor, carrier, count(*) AS submitted, sum((status = 'delivered')::INT) AS delivered,
         quantile_cont(latency, 0.5) FILTER (WHERE status = 'delivered') AS p50,
         quantile_cont(latency, 0.95) FILTER (WHERE status = 'delivered') AS p95
  FROM log GROUP BY ALL;
CREATE OR REPLACE TABLE failures AS
  SELECT week, carrier, province, coalesce(failure_reason, 'unknown') AS failure_reason,
         coalesce(error_code, status_code, '—') AS code, count(*) AS failed
  FROM log WHERE status IN ('failed', 'expired', 'rejected', 'unknown') GROUP BY ALL;
CREATE OR REPLACE TABLE content AS
  SELECT week, coalesce(template_id, '—') AS template_id, category, hour(submit_time) AS hour,
         count(*) AS sent, sum((status = 'delivered')::INT) AS delivered
  FROM log GROUP BY ALL;
CREATE OR REPLACE TABLE daily AS
  SELECT date_trunc('day', submit_time) AS day, vendor, carrier, province, is_probe,
         count(*) AS submitted, sum((status = 'delivered')::INT) AS delivered
  FROM log GROUP BY ALL;
"""


def generate(n: int, seed: int = 1) -> pd.DataFrame:
    """A canonical send log of ``n`` messages over 2025, vectorised."""
    from analysis.schema import conform

    rng = np.random.default_rng(seed)
    vendors = np.array(["aliyun", "tencent", "gateway", "twilio"])
    carriers = np.array(["China Mobile", "China Unicom", "China Telecom", "Virtual (China Unicom)"])
    prefixes = np.array(["139", "186", "189", "171"])
    provinces = np.array(["Guangdong", "Beijing", "Shanghai", "Zhejiang", "Sichuan", "Henan", "Hebei", "Hubei"])
    v = rng.choice(4, n, p=[0.35, 0.35, 0.25, 0.05])
    c = rng.choice(4, n, p=[0.55, 0.25, 0.15, 0.05])
    start = pd.Timestamp("2025-01-01", tz=TZ).value // 10**6
    submit = start + np.sort(rng.integers(0, 365 * 86400, n)) * 1000
    ok = rng.random(n) < np.where(v == 2, 0.85, 0.95)
    pending = rng.random(n) < 0.002
    latency = np.minimum(rng.exponential(12, n).astype(np.int64) + 1, 3000) * 1000
    status = np.where(pending, "pending", np.where(ok, "delivered", "failed"))
    codes = np.array(["MK:0001", "MK:0005", "MK:0115", "DB:0144", "IB:0008"])
    reasons = np.array(["empty_number", "unreachable", "content_blocked", "blacklisted", "flow_controlled"])
    fc = rng.choice(5, n)
    templates = np.array(["V1", "N1", "N2", "M1", "M2", "M3"])
    cats = np.array(["verification", "notification", "notification", "marketing", "marketing", "marketing"])
    t = rng.choice(6, n, p=[0.4, 0.2, 0.15, 0.1, 0.1, 0.05])
    number = rng.integers(0, 10**8, n)
    province = rng.choice(8, n)
    attempt = np.ones(n, dtype=np.int16)
    # a third of the failures are resent a minute later (attempt 2, same phone, template, vendor)
    gone = np.flatnonzero(status == "failed")
    original = rng.choice(gone, len(gone) // 3, replace=False)
    resend = rng.choice(np.setdiff1d(np.arange(n), gone), len(original), replace=False)
    for a in (v, c, t, number, province):
        a[resend] = a[original]
    submit[resend], attempt[resend] = submit[original] + 60_000, 2
    order = np.argsort(submit, kind="stable")
    v, c, t, number, province, attempt, submit = (a[order] for a in (v, c, t, number, province, attempt, submit))
    ok, pending, latency, status, fc = (a[order] for a in (ok, pending, latency, status, fc))
    phone = np.char.add(np.char.add("+86", prefixes[c]), np.char.zfill(number.astype(str), 8))
    failed = status == "failed"
    frame = pd.DataFrame({
        "vendor": vendors[v], "message_id": np.char.add("M", np.arange(n).astype(str)), "phone": phone,
        "country": "CN", "carrier": carriers[c], "province": provinces[province],
        "template_id": templates[t], "category": cats[t], "segments": 1,
        "submit_time": pd.to_datetime(submit, unit="ms", utc=True).tz_convert(TZ),
        "done_time": pd.to_datetime(np.where(pending, np.nan, submit + latency), unit="ms", utc=True).tz_convert(TZ),
        "status": status, "status_code": np.where(ok, "DELIVRD", np.where(pending, None, "UNDELIV")),
        "error_code": np.where(failed, codes[fc], None), "failure_reason": np.where(failed, reasons[fc], None),
        "attempt": attempt, "is_probe": rng.random(n) < 0.01,
    })
    return conform(frame)


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc). A child forked a moment ago shows its
    parent's pages as its own until it execs: the tree's memory is sampled often enough
    to catch one (``ctypes.util.find_library`` forked ``ldconfig`` after each block of an
    ingest, until 2026-12-01, which made a 1.3 GB ingest look like 2.2 GB)."""
    out = [pid]
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:  # it has just ended
        return out
    for task in tasks:
        try:
            children = (task / "children").read_text().split()
        except OSError:
            children = []
        for child in children:
            out += _tree(int(child))
    return out


def _rss_kb(pid: int) -> tuple[int, int]:
    """(anonymous + shared-memory, file-backed) resident KB of a process, from
    /proc/PID/status (cheap to read, unlike smaps)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0, 0
    kb = {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in text.splitlines() if ":" in line)
          if k in ("RssAnon", "RssShmem", "RssFile")}
    return kb.get("RssAnon", 0) + kb.get("RssShmem", 0), kb.get("RssFile", 0)


def _tree_kb(pids: list[int]) -> int:
    """Resident memory of processes: each one's own memory, plus the mapped files
    (libraries, shared by the processes) counted once."""
    sizes = [_rss_kb(p) for p in pids]
    return sum(own for own, _ in sizes) + max((files for _, files in sizes), default=0)


# The measured command runs under a small wrapper that reports the largest max RSS among
# its descendants (a child forked from this large process would count its parent's pages).
_WRAP = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:]); "
         "print('PEAK_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
         "sys.exit(p.returncode)")


def run(cmd: list[str], *, label: str) -> dict:
    """Run ``cmd`` in its own process: wall time, and peak memory of the whole process
    tree (worker processes included): the larger of the tree's resident memory
    (:func:`_tree_kb`, sampled every 20 ms) and the largest single process's max RSS."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([PY, "-c", _WRAP, *cmd], cwd=ROOT, stdout=out, stderr=err, text=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        peak_tree, at_peak = 0, []
        while proc.poll() is None:
            pids = _tree(proc.pid)[1:]  # not the wrapper
            if (tree := _tree_kb(pids)) > peak_tree:
                peak_tree, at_peak = tree, [(round(time.perf_counter() - t0, 1), p, *_rss_kb(p)) for p in pids]
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise SystemExit(f"{label} failed:\n{stderr[-2000:]}")
    largest = int(next(line.split()[1] for line in stderr.splitlines()[::-1] if line.startswith("PEAK_KB")))
    return {"what": label, "seconds": round(wall, 2), "peak_mb": round(max(peak_tree, largest) / 1024),
            "stdout": stdout, "tree_mb": round(peak_tree / 1024), "largest_mb": round(largest / 1024),
            "at_peak": at_peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000_000, help="messages (default: %(default)s)")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--repeat", type=int, default=5,
                        help="alternated runs of the ledger build and DuckDB (default: %(default)s)")
    parser.add_argument("--ingest-repeat", type=int, default=3,
                        help="alternated runs of the raw read, the read stage and the ingest (default: %(default)s)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="sms-ledger-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    n = args.n
    csv, export, parquet_root = work / "send_log.csv", work / "send_log.parquet", work / "parquet"
    store = parquet_root / "send_log"
    if args.work and export.exists() and (store / "_delta_log").is_dir():  # made by an earlier run: kept
        import pyarrow.parquet as pq

        times = pq.read_table(export, columns=["submit_time"]).column(0).to_pandas().dt.tz_convert(TZ)
        weeks = sorted(times.dt.strftime("%G-W%V").unique())
        n = len(times)
        print(f"reusing the {n:,} messages in {work}", flush=True)
    else:
        weeks = _generate(n, csv, export, parquet_root)
    week = weeks[-2]
    _measure(args, work, n, csv, export, parquet_root, store, weeks, week)


def _generate(n: int, csv: Path, export: Path, parquet_root: Path) -> list[str]:
    """Write the log of ``n`` messages as the CSV, the Parquet export and the store;
    returns its ISO weeks."""
    print(f"generating {n:,} messages in {csv.parent} …", flush=True)
    t0 = time.perf_counter()
    log = generate(n)
    out = log.assign(submit_time=log["submit_time"].dt.strftime("%Y-%m-%d %H:%M:%S"),
                     done_time=log["done_time"].dt.strftime("%Y-%m-%d %H:%M:%S"))
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pa.Table.from_pandas(out.drop(columns=["failure_reason"]), preserve_index=False)
    pacsv.write_csv(table, csv)
    del table
    import pyarrow.parquet as pq

    # the same log as one canonical Parquet export
    pq.write_table(pa.Table.from_pandas(log.drop(columns=["failure_reason"]), preserve_index=False), export)
    from analysis.store import write_store

    write_store(log, parquet_root)
    weeks = sorted(log["submit_time"].dt.strftime("%G-W%V").unique())
    print(f"  generated in {time.perf_counter() - t0:.0f} s; CSV {csv.stat().st_size / 2**20:,.0f} MB", flush=True)
    return weeks


def _alternated(runs: list, repeat: int) -> list[dict]:
    """Each of ``runs`` (callables returning :func:`run`'s result) called in turn, ``repeat``
    rounds: the median run of each, the first with ``ratios``, its time over each other
    one's in every round (sorted; a list per other run)."""
    rounds = [[r() for r in runs] for _ in range(repeat)]
    medians = [sorted((rnd[i] for rnd in rounds), key=lambda r: r["seconds"])[repeat // 2] for i in range(len(runs))]
    medians[0]["ratios"] = [sorted(round(rnd[0]["seconds"] / rnd[i]["seconds"], 2) for rnd in rounds)
                            for i in range(1, len(runs))]
    return medians


def _emptied(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    return folder


def _measure(args, work: Path, n: int, csv: Path, export: Path, parquet_root: Path, store: Path, weeks: list,
             week: str) -> None:
    for old in ("ingested", "ledgers", "ledgers-all", "ledgers-csv", "ledgers-parquet"):
        shutil.rmtree(work / old, ignore_errors=True)  # each run measures an ingest into an empty store
    # the raw read, ingest's read stage and the whole ingest, alternated (a slow moment of
    # this shared machine falls on all three alike): the median of each, every round's ratio
    raw, stage, ingest = _alternated([
        lambda: run([PY, "-c", f"import pyarrow as pa, pyarrow.csv as c; h=open({str(csv)!r}).readline().strip()"
                     f".split(','); c.read_csv({str(csv)!r}, convert_options=c.ConvertOptions("
                     "column_types={k: pa.string() for k in h}))"],
                    label=f"pyarrow raw CSV read (median of {args.ingest_repeat})"),
        lambda: run([PY, "-c", f"from analysis.readers._files import read_raw; read_raw({str(csv)!r})"],
                    label=f"ingest's CSV read stage (read_raw; median of {args.ingest_repeat})"),
        lambda: run([*CLI, "ingest", str(csv), "--out", str(_emptied(work / "ingested"))],
                    label=f"sms-ledger ingest (CSV, {n:,} rows; median of {args.ingest_repeat})"),
    ], args.ingest_repeat)
    results = [raw, stage, ingest,
               run([PY, "-c", "import duckdb, sys; duckdb.connect().execute(sys.argv[1])",
                    f"CREATE TABLE t AS SELECT * FROM read_csv('{csv}', all_varchar = true)"],
                   label="DuckDB read_csv of the CSV (all columns as text)")]
    # the ledger build against DuckDB, alternated likewise (the store warm for both)
    weekly_run, duck_run = _alternated([
        lambda: run([*CLI, "weekly", str(parquet_root), "--week", week, "--out", str(work / "ledgers")],
                    label=f"sms-ledger weekly {week} (Parquet; median of {args.repeat})"),
        lambda: run([PY, "-c", "import duckdb, sys; duckdb.connect().execute(sys.argv[1])",
                     DUCKDB_SQL.format(source=_parquet_of(store))],
                    label=f"DuckDB, same aggregates (median of {args.repeat})"),
    ], args.repeat)
    results += [
        weekly_run,
        run([*CLI, "weekly", str(parquet_root), "--all-weeks", "--out", str(work / "ledgers-all")],
            label=f"sms-ledger weekly --all-weeks ({len(weeks)} weeks)"),
        duck_run,
        run([*CLI, "weekly", str(csv), "--week", week, "--out", str(work / "ledgers-csv")],
            label=f"sms-ledger weekly {week} on the CSV export"),
        run([PY, "-c", "import duckdb, sys; duckdb.connect().execute(sys.argv[1])",
             DUCKDB_SQL.format(source=f"(SELECT *, NULL::VARCHAR AS failure_reason FROM read_csv('{csv}', "
                                      "timestampformat = '%Y-%m-%d %H:%M:%S'))")],
            label="DuckDB, same aggregates from the CSV"),
        run([*CLI, "weekly", str(export), "--week", week, "--out", str(work / "ledgers-parquet")],
            label=f"sms-ledger weekly {week} on the Parquet export"),
        run([PY, "-c", "import duckdb, sys; duckdb.connect().execute(sys.argv[1])",
             DUCKDB_SQL.format(source=f"(SELECT *, NULL::VARCHAR AS failure_reason FROM read_parquet('{export}'))")],
            label="DuckDB, same aggregates from the Parquet"),
        run([PY, "-c", PLAIN_PANDAS.format(csv=str(csv))], label="plain pandas (object dtypes, apply)"),
    ]
    check = check_equal(store, week)
    report(results, n, csv, check)
    if args.json:
        args.json.write_text(json.dumps({"n": n, "results": [{k: v for k, v in r.items() if k != "stdout"}
                                                              for r in results], "check": check}, indent=2))
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


PLAIN_PANDAS = """
import pandas as pd
df = pd.read_csv({csv!r})
df['submit_time'] = pd.to_datetime(df['submit_time'])
df['week'] = df['submit_time'].dt.strftime('%G-W%V')
df['latency'] = (pd.to_datetime(df['done_time']) - df['submit_time']).dt.total_seconds()
def stats(g):
    ok = g['status'] == 'delivered'
    return pd.Series({{'submitted': len(g), 'delivered': ok.sum(), 'p50': g.loc[ok, 'latency'].median()}})
q = df.groupby(['week', 'vendor', 'carrier']).apply(stats)
f = df[df['status'] == 'failed'].groupby(['week', 'carrier', 'province', 'error_code']).apply(len)
c = df.groupby(['week', 'template_id', 'category']).apply(lambda g: (g['status'] == 'delivered').mean())
"""


def _parquet_of(store: Path) -> str:
    return f"read_parquet('{store}/*/*/*.parquet', hive_partitioning = true)"


def check_equal(store: Path, week: str) -> dict:
    """Our merged aggregates against DuckDB's on the same Parquet."""
    import duckdb

    from analysis.engine import ledger_source
    from analysis.kernel import hist_quantiles

    con = duckdb.connect()
    con.execute(DUCKDB_SQL.format(source=_parquet_of(store)))
    cubes = ledger_source([store]).cubes
    ours = cubes.quality.groupby(["week", "vendor", "carrier"], dropna=False)[["submitted", "delivered"]].sum()
    # DuckDB's query is each attempt's latency: compare it with that histogram (the
    # recipient's latency, across attempts, is checked against DuckDB in tests/test_measures.py)
    attempts = cubes.latency[cubes.latency["kind"] == "attempt"].drop(columns="kind")
    q = hist_quantiles(attempts, ["week", "vendor", "carrier"]).set_index(["week", "vendor", "carrier"])
    ours = ours.join(q).sort_index()
    theirs = con.execute("SELECT * FROM quality").df().set_index(["week", "vendor", "carrier"]).sort_index()
    counts = bool((ours["submitted"] == theirs["submitted"]).all() and (ours["delivered"] == theirs["delivered"]).all())
    p50 = bool(np.allclose(ours["q0.5"], theirs["p50"], equal_nan=True))  # none delivered: none
    p95 = bool(np.allclose(ours["q0.95"], theirs["p95"], equal_nan=True))
    f_ours = cubes.failures.groupby(["week", "carrier", "province", "failure_reason", "code"])["failed"].sum()
    f_theirs = con.execute("SELECT * FROM failures").df().set_index(
        ["week", "carrier", "province", "failure_reason", "code"])["failed"]
    failures = bool(f_ours.sort_index().equals(f_theirs.sort_index().astype(f_ours.dtype)))
    c_ours = cubes.content.groupby(["week", "template_id", "category", "hour"])[["sent", "delivered"]].sum()
    c_theirs = con.execute("SELECT * FROM content").df().set_index(["week", "template_id", "category", "hour"])
    content = bool((c_ours.sort_index().to_numpy() == c_theirs.sort_index()[["sent", "delivered"]].to_numpy()).all())
    return {"quality counts": counts, "p50": p50, "p95": p95, "failures": failures, "content": content}


def report(results: list[dict], n: int, csv: Path, check: dict) -> None:
    raw, stage, ingest, duck_read, weekly, year, duck = results[:7]
    on_csv, duck_csv, on_parquet, duck_parquet, plain = results[7:]
    print(f"\n{n:,} messages; CSV {csv.stat().st_size / 2**20:,.0f} MB\n")
    print("| what | wall (s) | rows/s | peak memory (MB) |\n|---|---:|---:|---:|")
    for r in results:
        print(f"| {r['what']} | {r['seconds']:.1f} | {n / r['seconds']:,.0f} | {r['peak_mb']:,} |")
    print()
    print(f"ledger build / DuckDB time:   {weekly['seconds'] / duck['seconds']:.2f}x  (target ≤ 1.2x; "
          f"each alternated pair: {', '.join(f'{r:.2f}' for r in weekly['ratios'][0])})")
    print(f"ledger build / DuckDB memory: {weekly['peak_mb'] / duck['peak_mb']:.2f}x  (target ≤ 2x)")
    each = [", ".join(f"{r:.2f}" for r in ratios) for ratios in raw["ratios"]]
    print(f"ingest's CSV read stage / pyarrow raw read rate: {raw['seconds'] / stage['seconds']:.2f}x  "
          f"(target ≥ 0.8x; each alternated round: {each[0]})")
    print(f"whole ingest / pyarrow raw read rate: {raw['seconds'] / ingest['seconds']:.2f}x  (target ≥ 0.3x; "
          f"each alternated round: {each[1]}); peak {ingest['peak_mb']:,} MB (target < 2048 MB)")
    stages = next((line for line in ingest["stdout"].splitlines() if line.startswith("time: ")), None)
    if stages:  # the ingest's own account of where its time went: the slowest stage shows
        print(f"ingest stages: {stages.removeprefix('time: ')}")
    print(f"a year streamed (--all-weeks) peak: {year['peak_mb']:,} MB  (target < 2048 MB)")
    for ours, theirs, kind in ((on_csv, duck_csv, "CSV"), (on_parquet, duck_parquet, "Parquet")):
        print(f"weekly on the {kind} export / DuckDB on it: {ours['seconds'] / theirs['seconds']:.1f}x time "
              f"(target ≤ 1.2x), peak {ours['peak_mb']:,} MB (target < 2048 MB)")
    print(f"plain pandas / ledger build time: {plain['seconds'] / weekly['seconds']:.1f}x")
    print("aggregates equal to DuckDB's: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in check.items()))


if __name__ == "__main__":
    main()
