"""Default paths. Every default location is built here from the project root (or the
``SMS_LEDGER_HOME`` environment variable), never from the working directory."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(os.environ.get("SMS_LEDGER_HOME", Path(__file__).resolve().parent.parent))
DATA = PROJECT_ROOT / "data"
RAW = DATA / "raw"
DEMO_RAW = RAW / "demo"  # the only parts of data/raw the package writes (the demo generator)
DEMO_TRIAL = RAW / "demo-trial"
INTERIM = DATA / "interim"
SAMPLE = DATA / "sample"
REPORTS = PROJECT_ROOT / "reports"
NOTEBOOKS = PROJECT_ROOT / "notebooks"
DEMO_EVENTS = ("clicks.csv", "replies.csv", "complaints.csv", "bills.csv")
#: Scratch stores of exports handed to ``weekly`` are ``$TMPDIR/.sms-ledger-<pid>-…``
#: (:func:`analysis.atomic.new_scratch`).
SCRATCH = "sms-ledger"


def default_inputs() -> list[Path]:
    """What the notebooks read when not told otherwise: the ingested store (or the demo's
    raw exports when nothing was ingested) and the demo's event files."""
    log = [INTERIM] if (INTERIM / "send_log").exists() else [DEMO_RAW]
    events = [DEMO_RAW / name for name in DEMO_EVENTS if (DEMO_RAW / name).exists()] if log[0] != DEMO_RAW else []
    return [*log, *events]


def default_trial() -> list[Path]:
    """The demo's channel trial, when it has been written (``make demo``)."""
    return [DEMO_TRIAL / "trial.csv"] if (DEMO_TRIAL / "trial.csv").exists() else []


def lang_suffix(lang: str) -> str:
    """What an output's file name carries for its language: nothing for Chinese (the
    default), ``-en`` for English, so both can sit side by side."""
    return "" if lang == "zh" else f"-{lang}"
