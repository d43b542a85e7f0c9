"""Commit benchmark: the memory the store's commit (delta-rs's writer) holds.

    .venv/bin/python benchmarks/bench_commit.py STORE                  # 2.5, 5 and 10 M rows
    .venv/bin/python benchmarks/bench_commit.py STORE --rows 1000000   # fewer

STORE is a store folder holding at least that many rows (``bench_scale.py --work DIR``
leaves one in ``DIR/parquet``). Each run, in a process of its own, reads the store's
first N rows back and commits them into a new store with
:func:`analysis.store.commit_tables`, as an ingest does, fed in one of two orders:

* ``interleaved``: as the merge's units come, each about 3,000 rows of every partition;
* ``partition``: one partition after another.

It prints the process's peak resident memory and that of the same reading without the
commit, so the difference is the commit's.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def batches(store: Path, rows: int, order: str):
    """The store's first ``rows`` rows as tables in the store's Arrow schema (the store's
    files are listed now: the commit consumes the tables inside delta-rs's runtime,
    which cannot open a table itself)."""
    from analysis.store import store_partitions

    return _tables(store_partitions(store), rows, order)


def _tables(parts: list, rows: int, order: str):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from analysis.store import store_schema

    schema = store_schema()

    def of(part, batch):
        t = pa.Table.from_batches([batch])
        n = len(t)
        t = t.append_column("vendor", pa.array([part.vendor] * n)).append_column("month", pa.array([part.month] * n))
        return t.select(schema.names).cast(schema)

    readers = [(p, pq.ParquetFile(p.path).iter_batches(batch_size=3000)) for p in parts]
    sent = 0
    if order == "partition":
        for part, it in readers:
            for b in it:
                if sent >= rows:
                    return
                sent += b.num_rows
                yield of(part, b)
        return
    while readers and sent < rows:
        unit, alive = [], []
        for part, it in readers:
            b = next(it, None)
            if b is not None:
                alive.append((part, it))
                unit.append(of(part, b))
        readers = alive
        if unit:
            table = pa.concat_tables(unit)
            sent += len(table)
            yield table


def child(store: Path, rows: int, order: str, commit: bool) -> None:
    from analysis.store import commit_tables

    t0 = time.perf_counter()
    tables = batches(store, rows, order)
    if commit:
        with tempfile.TemporaryDirectory() as out:
            commit_tables(tables, out, keys=None, rows=rows)
    else:
        for _ in tables:
            pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"{peak} {time.perf_counter() - t0:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store", type=Path, help="a store folder (or its send_log table)")
    parser.add_argument("--rows", type=int, nargs="+", default=[2_500_000, 5_000_000, 10_000_000])
    parser.add_argument("--child", nargs=3, metavar=("ROWS", "ORDER", "COMMIT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        rows, order, commit = args.child
        return child(args.store, int(rows), order, commit == "1")
    print("| rows | order | reading only: peak MB | with the commit: peak MB | the commit's | seconds |")
    print("|---:|---|---:|---:|---:|---:|")
    for rows in args.rows:
        for order in ("interleaved", "partition"):
            out = {}
            for commit in ("0", "1"):
                done = subprocess.run([sys.executable, __file__, str(args.store), "--child", str(rows), order, commit],
                                      cwd=ROOT, capture_output=True, text=True, check=True)
                out[commit] = done.stdout.split()
            base, full = int(out["0"][0]), int(out["1"][0])
            print(f"| {rows:,} | {order} | {base:,} | {full:,} | {full - base:,} | {out['1'][1]} |", flush=True)


if __name__ == "__main__":
    main()
