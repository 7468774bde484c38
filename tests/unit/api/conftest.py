"""Fixtures of the API tests: the app on SQLite and on PostgreSQL (a fresh schema per test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from unit.store.test_store import BACKENDS

from .harness import Api, database, running_api


@pytest.fixture(params=BACKENDS)
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    """The app on SQLite, then on PostgreSQL."""
    with database(request.param, tmp_path) as url, running_api(url, tmp_path) as running:
        yield running


@pytest.fixture
def sqlite_api(tmp_path: Path) -> Iterator[Api]:
    """The app on SQLite only, for what does not depend on the database."""
    with database("sqlite", tmp_path) as url, running_api(url, tmp_path) as running:
        yield running
