"""Commit benchmark: the memory the store's commit (delta-rs's writer) holds.

    .venv/bin/python benchmarks/bench_commit.py STORE                  # 2.5, 5 and 10 M rows
    .venv/bin/python benchmarks/bench_commit.py STORE --rows 1000000   # fewer

STORE is a store folder holding at least that many rows (``bench_scale.py --work DIR``
leaves one in ``DIR/parquet``). Each run, in a process of its own, reads N of the
store's rows back (about 3,000 rows of every partition in turn, as the merge's units
come, until N) and commits them into a new store with
:func:`analysis.store.commit_tables`, in one of two ways:

* ``one call``: every partition given to one call of delta-rs's writer (the commit
  before the grouped one);
* ``grouped``: as an ingest commits, in groups of whole partitions of at most
  :data:`analysis.store.COMMIT_ROWS` rows (:func:`analysis.store.commit_groups`), each
  group's rows in the same turns, one writer call per group, one version.

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


def batches(store: Path, rows: int, how: str):
    """The groups of tables to commit (see the module's text): the store's files are
    listed now (the commit consumes the tables inside delta-rs's runtime, which cannot
    open a table itself)."""
    from analysis.store import commit_groups, store_partitions

    parts = store_partitions(store)
    limits = _limits([p.rows for p in parts], rows)
    chosen = [(p, n) for p, n in zip(parts, limits, strict=True) if n]
    if how == "one call":
        return [_tables(chosen)]
    by_key = {(p.vendor, p.month): (p, n) for p, n in chosen}
    return [_tables([by_key[k] for k in group]) for group in commit_groups({k: n for k, (_, n) in by_key.items()})]


def _limits(sizes: list, rows: int, turn: int = 3000) -> list:
    """Rows taken of each partition when ``turn`` rows of every one are taken in turn
    until ``rows`` are."""
    taken = [0] * len(sizes)
    total = 0
    while total < rows and any(t < s for t, s in zip(taken, sizes, strict=True)):
        for i, size in enumerate(sizes):
            n = min(turn, size - taken[i], rows - total)
            taken[i] += n
            total += n
    return taken


def _tables(chosen: list, turn: int = 3000):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from analysis.store import store_schema

    schema = store_schema()

    def of(part, batch):
        t = pa.Table.from_batches([batch])
        n = len(t)
        t = t.append_column("vendor", pa.array([part.vendor] * n)).append_column("month", pa.array([part.month] * n))
        return t.select(schema.names).cast(schema)

    readers = [[p, n, pq.ParquetFile(p.path).iter_batches(batch_size=turn)] for p, n in chosen]
    while readers:
        unit = []
        for r in readers:
            part, left, it = r
            b = next(it, None) if left else None
            if b is not None:
                b = b.slice(0, left)
                r[1] -= b.num_rows
                unit.append(of(part, b))
        readers = [r for r in readers if r[1]]
        if unit:
            yield pa.concat_tables(unit)


def child(store: Path, rows: int, order: str, commit: bool) -> None:
    from analysis.store import commit_tables

    t0 = time.perf_counter()
    groups = batches(store, rows, order)
    if commit:
        with tempfile.TemporaryDirectory() as out:
            commit_tables(groups, out, keys=None, rows=rows)
    else:
        for group in groups:
            for _ in group:
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
    print("| rows | commit | reading only: peak MB | with the commit: peak MB | the commit's | seconds |")
    print("|---:|---|---:|---:|---:|---:|")
    for rows in args.rows:
        for order in ("one call", "grouped"):
            out = {}
            for commit in ("0", "1"):
                done = subprocess.run([sys.executable, __file__, str(args.store), "--child", str(rows), order, commit],
                                      cwd=ROOT, capture_output=True, text=True, check=True)
                out[commit] = done.stdout.split()
            base, full = int(out["0"][0]), int(out["1"][0])
            print(f"| {rows:,} | {order} | {base:,} | {full:,} | {full - base:,} | {out['1'][1]} |", flush=True)


if __name__ == "__main__":
    main()
