"""``sms-ledger``: the console command.

Errors print as one line (``sms-ledger: error: …``) and exit with status 2; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import config

if TYPE_CHECKING:  # pandas is imported where it is used: worker processes start before it
    import pandas as pd

EPILOG = """examples:
  sms-ledger init                               make this folder a project (data/, reports/ go here)
  sms-ledger demo                               demo data, ingest, and the demo week's report
  sms-ledger ingest data/raw/*.csv --out data/interim
  sms-ledger ingest export.csv --vendor aliyun  force a vendor layout
  sms-ledger ingest odd.csv --mapping odd.toml  read any other layout via a column mapping
  sms-ledger history                            the store's versions, one per ingest
  sms-ledger undo                               take back the last ingest
  sms-ledger check                              is the store whole? which version is intact?
  sms-ledger vacuum --days 30                   free the disk versions older than 30 days hold
  sms-ledger weekly data/raw/demo --week 2025-W18
                                                write reports/ledgers/ledger-2025-W18.xlsx
  sms-ledger weekly data/interim clicks.csv bills.csv --all-weeks --lang en
  sms-ledger report --week 2025-W19             workbook, figures and HTML report of a week
  sms-ledger trial data/raw/demo-trial/trial.csv
                                                channel trial scorecard, vendors side by side
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

    init = sub.add_parser(
        "init", help="make a folder an SMS Ledger project (where the commands read and write)",
        description="Write sms-ledger.toml (the project marker) and the data/raw, data/interim and reports folders "
        "into FOLDER. Every command run in that folder or below it then reads and writes there: the store in "
        "data/interim, reports in reports/. Without a marker, the folder a command runs in is the project; "
        "SMS_LEDGER_HOME overrides both.")
    init.add_argument("folder", nargs="?", type=Path, default=Path("."), help="the project folder (default: here)")

    ingest = sub.add_parser(
        "ingest",
        help="load raw exports into the store (one undoable version per ingest)",
        description="Read platform exports (CSV/XLSX/Parquet/JSON lines/gateway DLR logs, any "
        "encoding), merge them with the store partitions they touch and commit the canonical send "
        "log to the store (a Delta Lake table partitioned by vendor and month) as one new version, "
        "plus rejects.csv (phones masked) and ingest-summary.csv. Two ingests at once run one after "
        "the other; an interrupted one leaves the store as it was. Running it twice on the same "
        "input changes nothing; `sms-ledger undo` takes an ingest back.",
    )
    ingest.add_argument("raw", nargs="+", type=Path, metavar="RAW",
                        help="export files, or folders of them (files that are not exports are skipped, with a note)")
    ingest.add_argument("--out", type=Path, default=config.interim(), help="store folder (default: %(default)s)")
    ingest.add_argument("--unmask", action="store_true", help="keep full phone numbers in rejects.csv")
    _engine_options(ingest, "where the files are read and staged: this machine (this process reads; its worker "
                    "processes, one per core, stage an input over 64 MB), or a Dask cluster for many files "
                    "(merging and the commit stay on this machine)", "; its workers must see the files at the same paths")
    _load_options(ingest)

    history = sub.add_parser(
        "history", help="list the store's versions (one per ingest)",
        description="List every version of the store, newest first: when, what it did (ingest, restore, migrate), "
        "the files an ingest read with its row accounting, the messages in the store after it and the change.")
    history.add_argument("--out", type=Path, default=config.interim(), help="store folder (default: %(default)s)")
    undo = sub.add_parser(
        "undo", help="take back the last ingest (or go back to --version)",
        description="Make an earlier version of the store the current one again: by default the one before the "
        "latest, which takes back the last ingest. The undo is itself a version, so it can be undone.")
    undo.add_argument("--out", type=Path, default=config.interim(), help="store folder (default: %(default)s)")
    undo.add_argument("--version", type=int, help="the version to go back to (see `sms-ledger history`)")

    check = sub.add_parser(
        "check", help="say whether the store can be read whole, and which version is intact",
        description="Read every version of the store's log and the data files each needs: a commit file that is "
        "empty, cut short or missing, a data file gone or cut short. Lists every version with its state and says "
        "which is the latest intact one. With --repair, makes that version the store again: damaged commits are set "
        "aside (not deleted) in a .damaged-<time> folder beside the store. Exits 1 while the store is damaged.")
    check.add_argument("--out", type=Path, default=config.interim(), help="store folder (default: %(default)s)")
    check.add_argument("--repair", action="store_true", help="make the latest intact version the store again")

    vacuum = sub.add_parser(
        "vacuum", help="free the disk old versions hold (they can no longer be restored)",
        description="Every ingest that touches a month rewrites its partition and keeps the old files, so that "
        "`sms-ledger undo` can go back; a month ingested daily holds about 30 copies. Delete the files only "
        "versions older than --days need: those versions can no longer be restored.")
    vacuum.add_argument("--out", type=Path, default=config.interim(), help="store folder (default: %(default)s)")
    vacuum.add_argument("--days", type=float, default=30, help="keep every version of the last DAYS days "
                        "restorable (default: %(default)s)")
    vacuum.add_argument("--dry-run", action="store_true", help="only say what would be removed")

    weekly = sub.add_parser(
        "weekly",
        help="write the weekly ledger workbook(s)",
        description="Build the three weekly ledgers (quality monitoring, failure tracing, content "
        "optimization) plus billing reconciliation and drop alerts, and write them as an Excel "
        "workbook per week: ledger-<week>.xlsx (ledger-<week>-en.xlsx in English). INPUT may be raw exports, the store "
        "(data/interim) and folders; click, reply, complaint and bill files among them are "
        "recognised by their headers and joined in. Earlier weeks in the input give the "
        "baselines and week-on-week changes. Phone numbers are masked unless --unmask.",
        epilog="example: sms-ledger weekly data/interim data/raw/demo/clicks.csv "
        "data/raw/demo/bills.csv --week 2025-W18 --lang en",
    )
    weekly.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="exports, the store, event files or folders")
    which = weekly.add_mutually_exclusive_group(required=True)
    which.add_argument("--week", help="ISO week to report, e.g. 2025-W18")
    which.add_argument("--all-weeks", action="store_true", help="write one workbook per week found")
    weekly.add_argument("--lang", choices=["zh", "en"], default="zh", help="headers and values (default: %(default)s)")
    weekly.add_argument("--out", type=Path, default=config.reports() / "ledgers", help="output folder (default: %(default)s)")
    weekly.add_argument("--unmask", action="store_true", help="write phone numbers in full (personal data!)")
    weekly.add_argument("--price", action="append", default=[], metavar="VENDOR=PRICE",
                        help="contract price per segment where the bill gives none (repeatable)")
    weekly.add_argument("--billing-mode", action="append", default=[], metavar="VENDOR=MODE",
                        help="contract billing mode, submission or delivery (repeatable)")
    _engine_options(weekly, "pandas streams the store one partition at a time; dask runs the same on a cluster")
    _load_options(weekly)

    report = sub.add_parser(
        "report",
        help="write the week's review report (workbook, figures, HTML)",
        description="Write the week's ledger workbook, execute the notebooks in notebooks/ with "
        "the week's parameters and render them to HTML without code cells, with their figures "
        "as PNG and SVG, behind a front page with the week's key points: reports/ledgers/ledger-<week>.xlsx, "
        "reports/html/, reports/figures/<week>/ and reports/report-<week>.html (with -en in every name for "
        "--lang en, so both languages sit side by side). Without INPUT: the ingested store and the demo's "
        "event files.",
    )
    report.add_argument("inputs", nargs="*", type=Path, metavar="INPUT", help="exports, the store, event files or folders")
    report.add_argument("--week", required=True, help="ISO week to report, e.g. 2025-W18")
    report.add_argument("--lang", choices=["zh", "en"], default="zh", help="labels (default: %(default)s)")
    report.add_argument("--vendors", default="", help="only these vendors, comma-separated (default: all)")
    report.add_argument("--trial", nargs="*", type=Path, default=[], metavar="TRIAL",
                        help="channel-trial logs for the trial section (default: none, the section says so)")
    report.add_argument("--out", type=Path, default=config.reports(), help="reports folder (default: %(default)s)")
    report.add_argument("--industry", choices=["finance", "ecommerce"],
                        help="the send windows this industry avoids, for the send-window check (default: none)")
    report.add_argument("--timeout", type=int, default=600, help="seconds allowed per notebook cell (default: %(default)s)")

    trial = sub.add_parser(
        "trial",
        help="score a channel trial, vendors side by side",
        description="Score a three-stage channel trial (basic, stress, scenario, and resend honesty) "
        "for every vendor in the input, with the evidence behind each verdict and the sample "
        "sizes a conclusive trial needs; check the templates' wording and the send windows. "
        "Writes trial-scorecard.xlsx and the side-by-side chart (PNG, SVG). Stages and rounds "
        "come from 'stage' and 'round' columns when the export has them, otherwise from the "
        "send time (peak windows are the stress test) and the category.",
        epilog="example: sms-ledger trial data/raw/demo-trial/trial.csv --lang en",
    )
    trial.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="trial send logs (any layout)")
    trial.add_argument("--lang", choices=["zh", "en"], default="zh", help="labels (default: %(default)s)")
    trial.add_argument("--out", type=Path, default=config.reports() / "trial", help="output folder (default: %(default)s)")
    trial.add_argument("--threshold", type=float, default=0.98, help="arrival to prove (default: %(default)s)")
    trial.add_argument("--confidence", type=float, default=0.95, help="confidence of the bounds (default: %(default)s)")
    trial.add_argument("--industry", choices=["finance", "ecommerce"], help="send windows this industry avoids")
    trial.add_argument("--marketing-hours", default="08:00-21:00", metavar="HH:MM-HH:MM",
                       help="hours marketing may be sent (default: %(default)s)")
    _load_options(trial)

    demo = sub.add_parser(
        "demo",
        help="generate the demo data set, ingest it and write the demo week's report",
        description="Write the seeded demo data set (several vendor formats, with a truth manifest) "
        "into data/raw/demo, ingest it into data/interim, print the summary and write the "
        "demo week's workbook, figures and HTML report into reports/.",
    )
    demo.add_argument("--n", type=int, default=60_000, help="original messages to simulate (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default: %(default)s)")
    demo.add_argument("--raw", type=Path, default=config.demo_raw(), help="where to write the demo exports")
    demo.add_argument("--out", type=Path, default=config.interim(), help="store folder (default: %(default)s)")
    demo.add_argument("--reports", type=Path, default=config.reports(), help="reports folder (default: %(default)s)")
    return parser


def _engine_options(p: argparse.ArgumentParser, engine_help: str, scheduler_note: str = "") -> None:
    p.add_argument("--engine", choices=["pandas", "dask"], default="pandas",
                   help=f"{engine_help} (default: %(default)s)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help=f"Dask scheduler address, e.g. tcp://10.0.0.5:8786{scheduler_note} (default: a local cluster)")


def _load_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vendor", help="force a vendor or layout (aliyun, tencent, twilio, vonage, aws_sns, gateway, canonical …)")
    p.add_argument("--mapping", type=Path, help="column mapping (TOML/JSON) for any other layout")
    p.add_argument("--tz", default="Asia/Shanghai", help="time zone of the log (default: %(default)s)")
    p.add_argument("--source-tz", metavar="ZONE",
                   help="zone of the clock in gateway logs (the SMSC's), canonical files and mappings, where the "
                   "vendor does not fix one (default: --tz; Twilio, SNS and Vonage are UTC, Aliyun and Tencent Beijing)")


def ingest(raw: list[Path], out: Path, *, vendor=None, mapping=None, tz="Asia/Shanghai", source_tz=None,
           unmask: bool = False, engine: str = "pandas", scheduler: str | None = None) -> pd.DataFrame:
    """Merge ``raw`` exports into the store under ``out`` (one commit); returns the
    per-file summary, with the seconds of each stage (the commit included) in its
    ``attrs["stages"]``. Phone numbers in ``rejects.csv`` are masked unless ``unmask``.
    ``engine="dask"`` reads and stages the files on a Dask cluster (``scheduler``, or a
    local one); merging them into messages and the commit run here."""
    # staged outside the store's lock (here or on a Dask cluster) into a spill beside the
    # store; then, under the lock, merged with the store's partitions the new rows can
    # touch (overlaps become duplicates, later receipts complete earlier submissions) and
    # committed in one version that replaces only those partitions
    from .engine import stage_inputs
    from .events import expand_inputs
    from .readers import merge_spill, spill_folder

    files, in_folders = expand_inputs(raw)  # a folder of exports: its members (others skipped, said)

    def write_rejects(result) -> None:  # under the lock, after the commit: never describes a run that did not land
        rejects_path = out / "rejects.csv"
        rejects = mask_record_phones(result.rejects) if not unmask else result.rejects
        if rejects_path.exists():
            import pandas as pd

            rejects = pd.concat([pd.read_csv(rejects_path, dtype=str), rejects.astype(str)], ignore_index=True)
            rejects = rejects.drop_duplicates(["file", "line", "reason"])
        _atomic_csv(rejects, rejects_path)
        _atomic_csv(result.summary, out / "ingest-summary.csv")

    with spill_folder(out) as folder:
        staging, spill = stage_inputs(files, folder=folder, engine=engine, scheduler=scheduler, progress=True,
                                      vendor=vendor, mapping=mapping, tz=tz, source_tz=source_tz,
                                      skip_unknown=in_folders)
        result = merge_spill(staging, spill, out, vendor=vendor, tz=tz, source_tz=source_tz, progress=True,
                             note={"files": [Path(f).name for f in files]}, on_commit=write_rejects)
    summary = result.summary
    summary.attrs["stages"] = result.stages  # seconds per stage, printed by the command
    return summary


def weekly(
    inputs: list[Path],
    out: Path,
    *,
    week: str | None = None,
    lang: str = "zh",
    unmask: bool = False,
    prices: dict | None = None,
    modes: dict | None = None,
    engine: str = "pandas",
    scheduler: str | None = None,
    **load,
) -> dict[str, tuple[Path, dict]]:
    """Write the ledger workbook of ``week`` (every week when None); returns each week's
    workbook path and sheets."""
    from .engine import ledger_source
    from .excel import write_ledger
    from .ledgers import ledgers_of

    source = ledger_source(inputs, engine=engine, scheduler=scheduler, progress=True, weeks=[week] if week else None,
                           **load)
    rejects = None
    if len(source.rejects):
        out.mkdir(parents=True, exist_ok=True)
        rejects = out / "rejects.csv"
        shown = source.rejects.drop(columns=["_file"], errors="ignore")
        _atomic_csv(shown if unmask else mask_record_phones(shown), rejects)
        print(f"{len(source.rejects):,} rows rejected: reasons in {rejects}", file=sys.stderr)
    found = sorted(set(source.cubes.quality["week"].dropna()))
    if not found or (week and week not in found):
        raise ValueError(_nothing_in(week, found, source.summary, rejects))
    books = ledgers_of(source, [week] if week else found, prices=prices, modes=modes)
    return {w: (write_ledger(books[w], out / f"ledger-{w}{config.lang_suffix(lang)}.xlsx", lang=lang, unmask=unmask),
                books[w]) for w in _progress(list(books), "weeks")}


def _nothing_in(week, found, summary: pd.DataFrame, rejects) -> str:
    """Why there is no ledger to write: the week is not in the input, or nothing loaded."""
    read = int(summary["rows_read"].sum()) if "rows_read" in summary else 0
    rejected = int(summary["rejected"].sum()) if "rejected" in summary else 0
    where = f" (reasons in {rejects})" if rejects else ""
    if not found:
        return f"no messages in the input: {read:,} rows read, {rejected:,} rejected{where}"
    return (f"no messages in week {week} (weeks in the input: {', '.join(found)}); {read:,} rows read, "
            f"{rejected:,} rejected{where}")


def report(inputs: list[Path], out: Path, *, week: str, lang: str = "zh", vendors=(), trial=(), industry="",
           timeout: int = 600) -> Path:
    """The week's workbook, then the executed notebooks as HTML behind a front page with
    the week's key points; returns the front page."""
    from .config import default_inputs
    from .report import run_report

    inputs = list(inputs) or default_inputs()
    written = weekly(inputs, out / "ledgers", week=week, lang=lang)
    workbook, ledgers = written[week]
    print(f"workbook: {workbook}")
    index = run_report(week, inputs=inputs, trial=trial, vendors=vendors, lang=lang, out=out, timeout=timeout,
                       progress=True, ledgers=ledgers, industry=industry)
    print(f"pages:    {out / 'html'}")
    print(f"figures:  {out / 'figures' / (week + config.lang_suffix(lang))}")
    return index


def run_trial(inputs: list[Path], out: Path, *, lang: str = "zh", threshold: float = 0.98,
              confidence: float = 0.95, industry=None, marketing_hours=("08:00", "21:00"), **load):
    """Score the trial and write its workbook and chart; returns (workbook path, scorecard)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .compliance import check_send_windows, check_templates
    from .excel import write_ledger
    from .plots import plot_scorecard, save_figure
    from .trial import load_trial, plan_trial, trial_scorecard

    log = load_trial(inputs, **load)
    scorecard = trial_scorecard(log, threshold=threshold, confidence=confidence, lang=lang)
    frames = {
        "scorecard": scorecard,
        "plan": plan_trial(threshold=threshold, confidence=confidence),
        "wording": check_templates(log, lang=lang),
        "send_windows": check_send_windows(log, industry=industry, marketing_hours=marketing_hours, lang=lang),
    }
    name = f"trial-scorecard{config.lang_suffix(lang)}"
    book = write_ledger(frames, out / f"{name}.xlsx", lang=lang)
    ax = plot_scorecard(scorecard, lang=lang)
    save_figure(ax.figure, name, out)
    plt.close(ax.figure)
    return book, scorecard


def check(out: Path, *, repair: bool = False) -> int:
    """``sms-ledger check``: print every version's state; 0 when the store is intact."""
    from .store import check_store, repair_store, store_path

    if repair:
        print(f"store: {repair_store(out)}")
    versions = check_store(out)
    shown = versions.astype(object).where(versions.notna(), "")
    print(f"store: {store_path(out) if store_path(out).exists() else out}")
    print(shown.to_string(index=False))
    intact = versions[versions["state"].eq("intact")]
    if versions["state"].iloc[0] == "intact":
        print(f"\nthe store is intact: version {versions['version'].iloc[0]}, {versions['rows'].iloc[0]:,} messages")
        return 0
    if intact.empty:
        print("\nno version is intact: ingest the exports again into a new store")
    else:
        best = intact.iloc[0]
        print(f"\nthe latest intact version is {best['version']} ({best['rows']:,} messages); "
              f"`sms-ledger check --repair{'' if out == config.interim() else f' --out {out}'}` makes it the store again")
    return 1


def _print_scorecard(scorecard: pd.DataFrame, lang: str = "zh") -> None:
    from .schema import label

    shown = scorecard.assign(**{c: scorecard[c].map(lambda v: label(v, lang)) for c in ("stage", "criterion", "verdict")})
    wide = shown.pivot_table(index=["stage", "criterion"], columns="vendor", values="verdict", aggfunc="first",
                             sort=False)
    print(wide.rename_axis(index=[None, None], columns=None).to_string())


def _progress(items: list, unit: str):
    if len(items) < 2:
        return items
    from tqdm import tqdm

    return tqdm(items, unit=unit, disable=not sys.stderr.isatty())


def _pairs(items: list[str], what: str, cast=str) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"{what} must look like VENDOR=VALUE, not {item!r}")
        try:
            out[key.strip().lower()] = cast(value.strip())
        except ValueError:
            raise ValueError(f"{what} {item!r}: {value!r} is not a valid value") from None
    return out


def _mode(value: str) -> str:
    if value not in {"submission", "delivery"}:
        raise ValueError("a billing mode is submission or delivery")
    return value


def _atomic_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write a CSV under a temporary name and move it into place; no text cell starts
    with what a spreadsheet takes for a formula (``= + - @``, tab, CR): such cells are
    prefixed with an apostrophe."""
    import pandas as pd

    from .atomic import write_atomic
    from .schema import FORMULA_START

    safe = frame.copy()
    for c in safe.columns:
        if safe[c].dtype == object or pd.api.types.is_string_dtype(safe[c].dtype):
            text = safe[c].astype("string")
            risky = text.str.startswith(FORMULA_START).fillna(False).to_numpy(dtype=bool)
            safe[c] = text.where(~risky, "'" + text)
    write_atomic(path, lambda tmp: safe.to_csv(tmp, index=False, encoding="utf-8-sig"))


def mask_record_phones(rejects: pd.DataFrame) -> pd.DataFrame:
    """Rejected rows with the phone numbers in their raw record masked."""
    from .normalize import mask_text_phones

    if rejects.empty or "record" not in rejects:
        return rejects
    return rejects.assign(record=mask_text_phones(rejects["record"]))


#: Past this many files, the printed summary has one line per layout instead of per file.
SUMMARY_FILES = 30


def _print_summary(summary: pd.DataFrame, out: Path) -> None:
    cols = ["file", "layout", "vendor", "rows_read", "loaded", "rejected", "duplicates", "messages"]
    show = summary[cols].copy()
    show["file"] = show["file"].map(lambda p: Path(p).name)
    total = show[["rows_read", "loaded", "rejected", "duplicates"]].sum()
    if len(show) > SUMMARY_FILES:  # many files: one line per layout and vendor (every file in ingest-summary.csv)
        counts = ["rows_read", "loaded", "rejected", "duplicates", "messages"]
        show = (show.assign(vendor=show["vendor"].fillna("")).groupby(["layout", "vendor"], sort=True)
                .agg(files=("file", "size"), **{c: (c, "sum") for c in counts}).reset_index())
        print(f"{len(summary):,} files, by layout (each file in {out / 'ingest-summary.csv'}):")
    print(show.to_string(index=False))
    print(
        f"\nrows read {total.rows_read:,} = loaded {total.loaded:,} + rejected {total.rejected:,}"
        f" + duplicates {total.duplicates:,}"
    )
    print(f"store: {out / 'send_log'}   rejects: {out / 'rejects.csv'}")
    if stages := summary.attrs.get("stages"):  # where the time went, so the slowest stage is visible
        rows = int(summary["rows_read"].sum())
        print("time: " + " · ".join(f"{name} {sec:.1f} s" + (f" ({rows / sec:,.0f} rows/s)" if sec >= 0.1 else "")
                                    for name, sec in stages.items()))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _end_cleanly_on_signals()
    import tempfile

    from .atomic import sweep_scratch

    sweep_scratch(tempfile.gettempdir(), config.SCRATCH)  # what a killed run left (it can hold phone numbers)
    if args.command in ("weekly", "report", "ingest") and getattr(args, "engine", "pandas") == "pandas":
        if args.command == "ingest":  # its merge runs on workers only: this process keeps what staging left
            from . import workers

            _start_workers(args.raw, processes=workers.default() + 1)
        else:
            _start_workers(args.inputs or config.default_inputs())
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())  # memory freed between partitions goes back at once
    import warnings

    # a note for the user (a file skipped, a zone assumed) is one line, not Python's warning format
    warnings.formatwarning = lambda message, category, *a, **k: f"sms-ledger: note: {message}\n"
    try:
        if args.command == "ingest":
            summary = ingest(args.raw, args.out, vendor=args.vendor, mapping=args.mapping, tz=args.tz,
                             source_tz=args.source_tz, unmask=args.unmask, engine=args.engine, scheduler=args.scheduler)
            _print_summary(summary, args.out)
        elif args.command == "history":
            from .store import store_history

            history = store_history(args.out)
            print(history.astype(object).where(history.notna(), "").to_string(index=False))
        elif args.command == "init":
            marker = config.init_project(args.folder)
            print(f"project: {marker.parent}\n  exports:  {marker.parent / 'data' / 'raw'}\n"
                  f"  store:    {marker.parent / 'data' / 'interim'}\n  reports:  {marker.parent / 'reports'}")
        elif args.command == "check":
            return check(args.out, repair=args.repair)
        elif args.command == "vacuum":
            from .store import vacuum_store

            files, size = vacuum_store(args.out, days=args.days, dry_run=args.dry_run)
            verb = "would remove" if args.dry_run else "removed"
            print(f"store: {verb} {files:,} files ({size / 2**20:,.1f} MB) only versions older than {args.days:g} "
                  "days need" + ("" if args.dry_run or not files else "; those versions can no longer be restored"))
        elif args.command == "undo":
            from .store import restore_store

            version = restore_store(args.out, args.version)
            print(f"store: now version {version}, the same rows as version "
                  f"{args.version if args.version is not None else version - 2}")
        elif args.command == "weekly":
            paths = weekly(
                args.inputs, args.out, week=args.week, lang=args.lang, unmask=args.unmask,
                prices=_pairs(args.price, "--price", float), modes=_pairs(args.billing_mode, "--billing-mode", _mode),
                engine=args.engine, scheduler=args.scheduler, vendor=args.vendor, mapping=args.mapping, tz=args.tz,
                source_tz=args.source_tz,
            )
            for path, _ in paths.values():
                print(f"wrote {path}")
        elif args.command == "report":
            index = report(args.inputs, args.out, week=args.week, lang=args.lang, trial=args.trial,
                           industry=args.industry or "",
                           vendors=[v.strip() for v in args.vendors.split(",") if v.strip()], timeout=args.timeout)
            print(f"report:   {index}")
        elif args.command == "trial":
            start, sep, end = args.marketing_hours.partition("-")
            if not sep:
                raise ValueError(f"--marketing-hours must look like 08:00-21:00, not {args.marketing_hours!r}")
            book, scorecard = run_trial(args.inputs, args.out, lang=args.lang, threshold=args.threshold,
                                        confidence=args.confidence, industry=args.industry,
                                        marketing_hours=(start, end), vendor=args.vendor, mapping=args.mapping,
                                        tz=args.tz, source_tz=args.source_tz)
            _print_scorecard(scorecard, args.lang)
            print(f"scorecard: {book}")
        elif args.command == "demo":
            from .readers import read_send_log
            from .simulation import simulate
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
            week = truth["outage"]["week"]
            events = [truth["files"][k] for k in ("clicks", "replies", "complaints", "bills")]
            from .simulation import simulate_trial

            trial_truth = simulate_trial(args.raw.parent / f"{args.raw.name}-trial")
            print(f"\nreport of {week}, the week of the injected outage (executing the notebooks) …")
            index = report([args.out, *map(Path, events)], args.reports, week=week, trial=[Path(trial_truth["file"])])
            print(f"report:   {index}")
            print("open the notebooks: make lab")
    except Exception as exc:  # one clear line unless --debug
        if args.debug:
            raise
        print(f"sms-ledger: error: {exc}", file=sys.stderr)
        return 2
    finally:
        from . import workers

        workers.stop()  # their work is done: the command ends now, not when they have torn down
    return 0


def _end_cleanly_on_signals() -> None:
    """A terminate or hang-up signal ends the command as an error would: scratch files
    (which can hold phone numbers) are removed, the store's lock released, the workers
    ended. Only ``kill -9`` escapes; the next command removes what it left."""
    import signal
    import threading

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, stop)


#: A store of at least this many bytes of data files (about a million messages) is
#: aggregated by worker processes (:data:`analysis.engine.POOL_ROWS`).
POOL_BYTES = 32 << 20


def _start_workers(inputs: list[Path], *, processes: int | None = None) -> None:
    """Start the worker processes now (``processes`` in all, this one included; default
    one per CPU) when an input is a large store or export: they import the package while
    this process reads the inputs (:mod:`analysis.workers`)."""
    from . import workers

    for path in inputs:
        table = path / "send_log" if (path / "send_log" / "_delta_log").is_dir() else path
        if (table / "_delta_log").is_dir():
            size = sum(f.stat().st_size for f in table.rglob("*.parquet"))
        else:
            size = path.stat().st_size if path.is_file() else 0
        if size >= POOL_BYTES:
            workers.start(processes or workers.default())
            return


def _print_log_overview(log: pd.DataFrame) -> None:
    import pandas as pd

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
