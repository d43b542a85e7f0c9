"""``sms-ledger``: the console command.

Errors print as one line (``sms-ledger: error: …``) and exit with status 2; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from . import config

EPILOG = """examples:
  sms-ledger demo                               generate the demo data and ingest it
  sms-ledger ingest data/raw/*.csv --out data/interim
  sms-ledger ingest export.csv --vendor aliyun  force a vendor layout
  sms-ledger ingest odd.csv --mapping odd.toml  read any other layout via a column mapping
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sms-ledger",
        description="Prove how well bulk-SMS platforms deliver and what they cost: load every "
        "platform's export into one canonical send log and report on it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ingest = sub.add_parser(
        "ingest",
        help="load raw exports into the Parquet store",
        description="Read platform exports (CSV/XLSX/Parquet/JSON lines/gateway DLR logs, any "
        "encoding), merge them with the existing store and write the canonical send log as "
        "Parquet partitioned by vendor and month, plus rejects.csv and ingest-summary.csv. "
        "Running it twice on the same input changes nothing.",
    )
    ingest.add_argument("raw", nargs="+", type=Path, metavar="RAW", help="export files")
    ingest.add_argument("--out", type=Path, default=config.INTERIM, help="store folder (default: %(default)s)")
    _load_options(ingest)

    demo = sub.add_parser(
        "demo",
        help="generate the demo data set and ingest it",
        description="Write the seeded demo data set (several vendor formats, with a truth manifest) "
        "into data/raw/demo, ingest it into data/interim and print the summary.",
    )
    demo.add_argument("--n", type=int, default=60_000, help="original messages to simulate (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default: %(default)s)")
    demo.add_argument("--raw", type=Path, default=config.DEMO_RAW, help="where to write the demo exports")
    demo.add_argument("--out", type=Path, default=config.INTERIM, help="store folder (default: %(default)s)")
    return parser


def _load_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vendor", help="force a vendor or layout (aliyun, tencent, twilio, vonage, aws_sns, gateway, canonical …)")
    p.add_argument("--mapping", type=Path, help="column mapping (TOML/JSON) for any other layout")
    p.add_argument("--tz", default="Asia/Shanghai", help="time zone of the log (default: %(default)s)")


def ingest(raw: list[Path], out: Path, *, vendor=None, mapping=None, tz="Asia/Shanghai") -> pd.DataFrame:
    """Merge ``raw`` exports into the store under ``out``; returns the per-file summary."""
    from .readers import load_send_log
    from .store import store_path, write_store

    inputs = list(raw)
    store = store_path(out)
    existing = store.exists()
    # the store is read as one more (canonical) input, so overlaps become duplicates
    # and later receipts complete earlier submissions
    sources = [store, *inputs] if existing else inputs
    result = load_send_log(sources, vendor=vendor, mapping=mapping, tz=tz, progress=True)
    out.mkdir(parents=True, exist_ok=True)
    write_store(result.log, out)
    rejects_path = out / "rejects.csv"
    rejects = result.rejects
    if rejects_path.exists():
        rejects = pd.concat([pd.read_csv(rejects_path, dtype=str), rejects.astype(str)], ignore_index=True)
        rejects = rejects.drop_duplicates(["file", "line", "reason"])
    _atomic_csv(rejects, rejects_path)
    _atomic_csv(result.summary, out / "ingest-summary.csv")
    return result.summary


def _atomic_csv(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    frame.to_csv(tmp, index=False, encoding="utf-8-sig")
    tmp.replace(path)


def _print_summary(summary: pd.DataFrame, out: Path) -> None:
    cols = ["file", "layout", "vendor", "rows_read", "loaded", "rejected", "duplicates", "messages"]
    show = summary[cols].copy()
    show["file"] = show["file"].map(lambda p: Path(p).name)
    total = show[["rows_read", "loaded", "rejected", "duplicates"]].sum()
    print(show.to_string(index=False))
    print(
        f"\nrows read {total.rows_read:,} = loaded {total.loaded:,} + rejected {total.rejected:,}"
        f" + duplicates {total.duplicates:,}"
    )
    print(f"store: {out / 'send_log'}   rejects: {out / 'rejects.csv'}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "ingest":
            summary = ingest(args.raw, args.out, vendor=args.vendor, mapping=args.mapping, tz=args.tz)
            _print_summary(summary, args.out)
        elif args.command == "demo":
            from .readers import read_send_log
            from .simulate import simulate
            from .store import store_path

            print(f"writing the demo data set to {args.raw} …")
            truth = simulate(args.raw, n=args.n, seed=args.seed)
            files = [*truth["files"]["aliyun"], *truth["files"]["tencent"], *truth["files"]["gateway"], truth["files"]["twilio"]]
            if store_path(args.out).exists():
                import shutil

                shutil.rmtree(store_path(args.out))
            summary = ingest([Path(f) for f in files], args.out)
            _print_summary(summary, args.out)
            log = read_send_log(store_path(args.out))
            _print_log_overview(log)
    except Exception as exc:  # one clear line unless --debug
        if args.debug:
            raise
        print(f"sms-ledger: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _print_log_overview(log: pd.DataFrame) -> None:
    by = log.groupby("vendor", observed=True)
    table = pd.DataFrame(
        {
            "messages": by.size(),
            "delivered": by["status"].apply(lambda s: int((s == "delivered").sum())),
            "pending": by["status"].apply(lambda s: int((s == "pending").sum())),
            "resends": by["attempt"].apply(lambda s: int((s > 1).sum())),
            "first": by["submit_time"].min().dt.strftime("%Y-%m-%d"),
            "last": by["submit_time"].max().dt.strftime("%Y-%m-%d"),
        }
    )
    print("\nsend log by vendor:")
    print(table.to_string())


if __name__ == "__main__":
    sys.exit(main())
