"""Command-line options that every command spells the same way, defined once.

Kept import-light (typer only): every command module imports it while the CLI
starts, before any command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML settings file (default: $TAPEWATCH_CONFIG or ./tapewatch.toml)."),
]
DbOption = Annotated[
    str | None, typer.Option("--db", help="Database: SQLite path or URL (default: store.db, ~/.tapewatch).")
]
