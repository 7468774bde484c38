"""Alembic's entry point: migrate the connection `tapewatch.store.schema.upgrade` hands over.

Tapewatch runs migrations itself whenever it opens a database, so there is no
alembic.ini to keep: the connection comes in `config.attributes["connection"]`.
`render_as_batch` lets the same migration alter tables on SQLite, which cannot
ALTER most things in place.
"""

from __future__ import annotations

from alembic import context

from tapewatch.store.models import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
