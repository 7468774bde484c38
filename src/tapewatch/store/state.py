"""Bookmarks that long-running processes keep in the database, so a restart resumes where they were."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from tapewatch.store.models import ServiceStateRow, utc_now

STATE = ServiceStateRow.__table__


def read_state(engine: Engine, name: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        return conn.execute(select(STATE.c.value).where(STATE.c.name == name)).scalar()


def write_state(engine: Engine, name: str, value: dict[str, Any]) -> None:
    """Insert or replace the bookmark (portable: update, else insert, retrying once on a race)."""
    for _ in range(2):
        with engine.begin() as conn:
            changed = conn.execute(
                update(STATE).where(STATE.c.name == name).values(value=value, updated_at=utc_now())
            ).rowcount
            if changed:
                return
            try:
                with conn.begin_nested():
                    conn.execute(STATE.insert().values(name=name, value=value, updated_at=utc_now()))
                return
            except IntegrityError:
                continue  # someone inserted it between our update and insert: update it now
