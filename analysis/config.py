"""Default paths. Every default location is in the *project folder*, the one the user
works in, as git, dbt and kedro do: the nearest folder, from the working directory up,
that holds a ``sms-ledger.toml`` (``sms-ledger init`` writes one), else the working
directory itself; ``SMS_LEDGER_HOME`` overrides it. Never the folder the package is
installed in (for a wheel, site-packages).

::

    <project>/sms-ledger.toml     the marker (sms-ledger init)
    <project>/data/raw/           exports as received (the demo writes data/raw/demo)
    <project>/data/interim/       the store, rejects.csv, ingest-summary.csv
    <project>/reports/            workbooks, figures, the HTML report
    <project>/notebooks/          the report's notebooks, when the project has its own

Paths are found when asked (functions, not constants), so a process that changes its
working directory gets that folder's.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The file that marks a project folder.
MARKER = "sms-ledger.toml"
DEMO_EVENTS = ("clicks.csv", "replies.csv", "complaints.csv", "bills.csv")
#: Scratch stores of exports handed to ``weekly`` are ``$TMPDIR/.sms-ledger-<pid>-…``
#: (:func:`analysis.atomic.new_scratch`).
SCRATCH = "sms-ledger"
#: The notebooks that ship with the package (the report's sections).
PACKAGE_NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"


def project_root(start: str | Path | None = None) -> Path:
    """The project folder: ``SMS_LEDGER_HOME``, else the nearest folder from ``start``
    (default: the working directory) up that holds :data:`MARKER`, else ``start``."""
    if os.environ.get("SMS_LEDGER_HOME"):
        return Path(os.environ["SMS_LEDGER_HOME"])
    here = Path(start or Path.cwd()).resolve()
    return next((folder for folder in (here, *here.parents) if (folder / MARKER).is_file()), here)


def data() -> Path:
    return project_root() / "data"


def raw() -> Path:
    return data() / "raw"


def demo_raw() -> Path:
    """Where the demo writes its exports (the only part of data/raw the package writes)."""
    return raw() / "demo"


def demo_trial() -> Path:
    return raw() / "demo-trial"


def interim() -> Path:
    """The store's folder (``send_log``) and the ingest's rejects and summary."""
    return data() / "interim"


def reports() -> Path:
    return project_root() / "reports"


def notebooks() -> Path:
    """The report's notebooks: the project's own ``notebooks/`` when it holds numbered
    ones (``1.0-…``), else those that ship with the package."""
    own = project_root() / "notebooks"
    return own if any(own.glob("[0-9]*.ipynb")) else PACKAGE_NOTEBOOKS


def default_inputs() -> list[Path]:
    """What ``report`` and the notebooks read when not told otherwise: the project's
    store with the demo's event files, or the demo's raw exports when nothing was
    ingested. A project with neither is an error that says what to do."""
    store, demo = interim(), demo_raw()
    if (store / "send_log").exists():
        return [store, *[demo / name for name in DEMO_EVENTS if (demo / name).exists()]]
    if demo.exists():
        return [demo]
    raise FileNotFoundError(f"{store}: no store in this project ({project_root()}): run `sms-ledger ingest EXPORTS` "
                            "here first, or give the inputs")


def default_trial() -> list[Path]:
    """The demo's channel trial, when it has been written (``make demo``)."""
    trial = demo_trial() / "trial.csv"
    return [trial] if trial.exists() else []


def lang_suffix(lang: str) -> str:
    """What an output's file name carries for its language: nothing for Chinese (the
    default), ``-en`` for English, so both can sit side by side."""
    return "" if lang == "zh" else f"-{lang}"


#: What ``sms-ledger init`` writes into the marker.
MARKER_TEXT = """\
# An SMS Ledger project: sms-ledger commands run in this folder or below it read and
# write here (SMS_LEDGER_HOME overrides it).
#   data/raw/       exports as received (never written but by the demo: data/raw/demo)
#   data/interim/   the store (send_log, a Delta Lake table), rejects.csv, ingest-summary.csv
#   reports/        ledgers/*.xlsx, figures/, html/, report-<week>.html
#   notebooks/      your own copies of the report's notebooks, if you want to change them
"""


def init_project(folder: str | Path) -> Path:
    """Make ``folder`` a project: the marker and the data and reports folders (nothing
    that exists is changed). Returns the marker's path."""
    folder = Path(folder).resolve()
    for sub in ("data/raw", "data/interim", "reports"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    marker = folder / MARKER
    if not marker.exists():
        marker.write_text(MARKER_TEXT, encoding="utf-8")
    return marker
