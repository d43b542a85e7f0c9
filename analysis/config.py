"""Default paths. Every default location is built here from the project root (or the
``SMS_LEDGER_HOME`` environment variable), never from the working directory."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(os.environ.get("SMS_LEDGER_HOME", Path(__file__).resolve().parent.parent))
DATA = PROJECT_ROOT / "data"
RAW = DATA / "raw"
DEMO_RAW = RAW / "demo"  # the only part of data/raw the package writes (the demo generator)
INTERIM = DATA / "interim"
SAMPLE = DATA / "sample"
REPORTS = PROJECT_ROOT / "reports"
