"""Shared fixtures: small vendor files in tests/fixtures and a small demo data set."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest

FIXTURES = Path(__file__).parent / "fixtures"


#: The caches' folder when this process made it (removed at the end).
_CACHE: list[Path] = []


def pytest_configure(config):
    """The suite's caches (the phone-prefix table, matplotlib's font list) live in a
    temporary folder, not the user's home; subprocesses and pytest-xdist's workers inherit
    it, and it is removed when the run ends."""
    if "SMS_LEDGER_TEST_CACHE" not in os.environ:
        _CACHE.append(Path(tempfile.mkdtemp(prefix="sms-ledger-tests-")))
        os.environ["SMS_LEDGER_TEST_CACHE"] = str(_CACHE[0])
    cache = Path(os.environ["SMS_LEDGER_TEST_CACHE"])
    os.environ.setdefault("SMS_LEDGER_CACHE", str(cache / "sms-ledger"))
    os.environ.setdefault("MPLCONFIGDIR", str(cache / "matplotlib"))


def pytest_unconfigure(config):
    for folder in _CACHE:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> dict:
    """A small demo data set (seeded) and its truth manifest."""
    from analysis import simulate

    out = tmp_path_factory.mktemp("demo")
    return simulate(out, n=20_000, seed=11)


def demo_files(truth: dict) -> list[str]:
    f = truth["files"]
    return [*f["aliyun"], *f["tencent"], *f["gateway"], f["twilio"]]


def make_log(rows: list[dict]) -> pd.DataFrame:
    """A canonical log from short hand-written rows.

    Defaults: vendor ``v``, attempt 1, segments 1, template ``T1``; ``submit`` and
    ``latency`` (seconds) give ``submit_time`` and ``done_time``.
    """
    from analysis.schema import conform

    out = []
    for i, r in enumerate(rows):
        r = dict(r)
        submit = pd.Timestamp(r.pop("submit", "2025-05-06 12:00"))
        latency = r.pop("latency", 5)
        status = r.setdefault("status", "delivered")
        row = {"vendor": "v", "message_id": f"m{i}", "phone": f"+86138000{i:05d}", "template_id": "T1",
               "attempt": 1, "segments": 1, "submit_time": submit,
               "done_time": None if status == "pending" or latency is None else submit + pd.Timedelta(seconds=latency)}
        row.update(r)
        out.append(row)
    frame = pd.DataFrame(out)
    frame["submit_time"] = pd.to_datetime(frame["submit_time"]).dt.tz_localize("Asia/Shanghai")
    frame["done_time"] = pd.to_datetime(frame["done_time"]).dt.tz_localize("Asia/Shanghai")
    return conform(frame)


@pytest.fixture(scope="session")
def demo_inputs(demo):
    """The small demo read with its event files, as ``sms-ledger weekly`` reads it."""
    from analysis import load_inputs

    return load_inputs([Path(demo["files"]["bills"]).parent])
