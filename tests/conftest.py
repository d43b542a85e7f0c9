"""Shared fixtures: small vendor files in tests/fixtures and a small demo data set."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> dict:
    """A small demo data set (seeded) and its truth manifest."""
    from analysis import simulate

    out = tmp_path_factory.mktemp("demo")
    return simulate(out, n=8_000, seed=11)


def demo_files(truth: dict) -> list[str]:
    f = truth["files"]
    return [*f["aliyun"], *f["tencent"], *f["gateway"], f["twilio"]]
