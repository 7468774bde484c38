"""Command-line options that every command spells the same way, defined once.

Kept import-light (typer only): every command module imports it while the CLI
starts, before any command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from tapewatch.config import Settings

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML settings file (default: $TAPEWATCH_CONFIG or ./tapewatch.toml)."),
]
DbOption = Annotated[
    str | None, typer.Option("--db", help="Database: SQLite path or URL (default: store.db, ~/.tapewatch).")
]


def settings_and_engine(db: str | None, config: Path | None) -> tuple[Settings, Engine]:
    """The settings (`--config`) and the database (`--db`, else store.db, else the default), opened."""
    from tapewatch.config import load_settings
    from tapewatch.store.alert_store import default_db_path, open_engine

    settings = load_settings(config)
    return settings, open_engine(db or settings.store.db or default_db_path())
