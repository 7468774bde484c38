"""Alerts as the API shows them: the detection plus its workflow state, listed, fetched or newly stored.

List items, the detail page and the live feed all use `AlertItem`, so a
console renders an alert the same way wherever it came from.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from pydantic import Field
from sqlalchemy import Connection, Engine, select

from tapewatch.errors import NotFoundError
from tapewatch.records import Alert
from tapewatch.service.audit import AuditEntry, history
from tapewatch.store.alert_store import ALERT_FIELDS, ALERTS, alert_conditions

STATE_FIELDS = ("status", "case_id", "disposition", "reason", "updated_at")
ITEM_COLUMNS = [ALERTS.c[name] for name in (*ALERT_FIELDS, *STATE_FIELDS)]
HISTORY_LIMIT = 200


class AlertItem(Alert):
    """An alert's fields and its place in the workflow (new → acknowledged → in_case → closed)."""

    timing: dict[str, Any] = Field(default_factory=dict, exclude=True)  # a live run's, never stored
    status: str
    case_id: int | None = None
    disposition: str | None = None
    reason: str | None = None
    updated_at: datetime | None = None


class AlertDetail(AlertItem):
    """One alert with its audit history (newest first): who acknowledged, grouped, closed it, and why."""

    history: list[AuditEntry]


def alert_page(
    engine: Engine,
    *,
    limit: int,
    offset: int,
    **filters: str | Collection[str] | datetime | None,
) -> list[AlertItem]:
    """Up to `limit` alerts matching `AlertStore.list`'s filters, in its order (newest first), each
    with its workflow state: one query."""
    query = (
        select(*ITEM_COLUMNS)
        .where(*alert_conditions(**filters))  # type: ignore[arg-type]
        .order_by(ALERTS.c.detected_at.desc(), ALERTS.c.id)
        .limit(limit)
        .offset(offset)
    )
    with engine.connect() as conn:
        return [AlertItem.model_validate(row._asdict()) for row in conn.execute(query).all()]


def alert_item(db: Engine | Connection, alert_id: str) -> AlertItem:
    """One alert by id, or NotFoundError (on a connection already open, if given one)."""
    if isinstance(db, Engine):
        with db.connect() as conn:
            return alert_item(conn, alert_id)
    row = db.execute(select(*ITEM_COLUMNS).where(ALERTS.c.id == alert_id)).first()
    if row is None:
        raise NotFoundError(f"alert {alert_id}: no such alert")
    return AlertItem.model_validate(row._asdict())


def alert_detail(engine: Engine, alert_id: str) -> AlertDetail:
    """One alert with every audit entry about it, read over one connection."""
    with engine.connect() as conn:
        item = alert_item(conn, alert_id)
        # Every audited change of an alert also stamps its updated_at (Workflow._set_alerts), so an
        # alert never touched has no history: most alerts, and one query saved for each of them.
        entries = [] if item.updated_at is None else history(conn, "alert", alert_id, limit=HISTORY_LIMIT)
        return AlertDetail(**item.model_dump(), history=entries)


def stored_since(conn: Connection, since: datetime | None) -> list[tuple[datetime, AlertItem]]:
    """Alerts stored (inserted) after `since`, oldest insertion first, with their insertion times."""
    query = select(ALERTS.c.created_at, *ITEM_COLUMNS).order_by(ALERTS.c.created_at, ALERTS.c.id)
    if since is not None:
        query = query.where(ALERTS.c.created_at > since)
    found = []
    for row in conn.execute(query):
        values = row._asdict()
        created = values.pop("created_at")
        found.append((created, AlertItem.model_validate(values)))
    return found
