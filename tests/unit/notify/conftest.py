"""Fixtures for the notification tests: a database on SQLite and on the real PostgreSQL, and local endpoints."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from sqlalchemy import Engine

from tapewatch.cli.app import user_errors
from tapewatch.cli.notify import register
from tapewatch.config import NotifySettings
from tapewatch.store.alert_store import AlertStore, open_engine
from unit.store.test_store import BACKENDS, postgres_schema

from .endpoints import Mailbox, WebhookServer, smtp_server, webhook_server


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh, migrated database: a SQLite file, or a new schema on the PostgreSQL server."""
    if request.param == "sqlite":
        opened = open_engine(tmp_path / "notify.db")
        yield opened
        opened.dispose()
        return
    with postgres_schema() as url:
        opened = open_engine(url)
        yield opened
        opened.dispose()


@pytest.fixture
def store(engine: Engine) -> AlertStore:
    return AlertStore(engine)


@pytest.fixture
def settings() -> NotifySettings:
    """Fast retries (the waits are real sleeps), a console link, no lookback surprises."""
    return NotifySettings(
        retries=2, retry_initial_s=0.01, retry_max_s=0.02, console_url="https://tw.example.com"
    )


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    with webhook_server() as server:
        yield server


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


@pytest.fixture
def cli() -> typer.Typer:
    """The notify commands on a small app of their own, registered as `tapewatch` registers them."""
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """A stand-in for the `tapewatch` app (cli/app.py registers the same way)."""

    register(app, user_errors)
    return app
