"""Many small exports: ingest of N one-row CSV files (a year of daily exports, or a folder
an API client filled one response at a time).

    .venv/bin/python benchmarks/bench_small_files.py            # 10,000 files
    .venv/bin/python benchmarks/bench_small_files.py --n 2000

Times ``sms-ledger ingest FOLDER`` in its own process (wall time, peak memory of the
process tree) and checks that every file's row landed in the store.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import CLI, run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="files (default: %(default)s)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sms-ledger-small-"))
    folder = work / "exports"
    folder.mkdir()
    for i in range(args.n):
        (folder / f"day{i:05d}.csv").write_text(
            "message_id,phone,submit_time,status\n"
            f"m{i},1380013{i % 10_000:04d},2025-05-06 09:{i % 60:02d}:00,delivered\n", encoding="utf-8")
    result = run([*CLI, "ingest", str(folder), "--out", str(work / "store")], label=f"ingest {args.n:,} one-row files")
    from analysis import read_store

    stored = len(read_store(work / "store"))
    print(f"{result['what']}: {result['seconds']:.1f} s, {args.n / result['seconds']:,.0f} files/s, "
          f"peak {result['peak_mb']:,} MB; {stored:,} of {args.n:,} rows in the store")
    shutil.rmtree(work, ignore_errors=True)
    if stored != args.n:
        raise SystemExit("rows missing from the store")


if __name__ == "__main__":
    main()
