"""Bringing a database to the current schema with Alembic, every time one is opened.

A database made before migrations existed (tables, no `alembic_version`) is
stamped as the baseline and upgraded from there, so nothing stored is lost; one
made by `metadata.create_all` with every current table is stamped as current.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect

from tapewatch.store.models import metadata

MIGRATIONS = Path(__file__).with_name("migrations")
BASELINE = "0001"
"""The revision whose tables the pre-migration versions created with `create_all`."""


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def upgrade(engine: Engine) -> None:
    """Migrate to the newest schema (a no-op when already there)."""
    with engine.begin() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        if current == head_revision():
            return
        config = alembic_config(connection)
        if current is None and inspect(connection).has_table("alerts"):
            complete = set(metadata.tables) <= set(inspect(connection).get_table_names())
            command.stamp(config, "head" if complete else BASELINE)
        command.upgrade(config, "head")
