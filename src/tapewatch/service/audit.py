"""The audit log: every change written in the same transaction as the change itself.

Writing the entry inside the caller's transaction means a change and its record
commit or fail together; the table refuses UPDATE and DELETE (triggers in the
migration), so the history cannot be edited afterwards.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, Engine, insert, select

from tapewatch.service.actors import Actor
from tapewatch.store.models import AuditRow, utc_now

AUDIT = AuditRow.__table__


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    details: dict[str, Any]


def record(
    conn: Connection, actor: Actor, action: str, entity: str, entity_id: str | int, **details: Any
) -> None:
    """Append one entry (call inside the transaction that makes the change)."""
    conn.execute(
        insert(AUDIT).values(
            at=utc_now(),
            actor=actor.name,
            action=action,
            entity=entity,
            entity_id=str(entity_id),
            details=details,
        )
    )


def history(
    db: Engine | Connection, entity: str | None = None, entity_id: str | int | None = None, limit: int = 200
) -> list[AuditEntry]:
    """Entries, newest first, optionally of one record (on a connection already open, if given one)."""
    query = select(AUDIT).order_by(AUDIT.c.id.desc()).limit(limit)
    if entity is not None:
        query = query.where(AUDIT.c.entity == entity)
    if entity_id is not None:
        query = query.where(AUDIT.c.entity_id == str(entity_id))
    if isinstance(db, Connection):
        return [AuditEntry.model_validate(row._asdict()) for row in db.execute(query)]
    with db.connect() as conn:
        return history(conn, entity, entity_id, limit)
