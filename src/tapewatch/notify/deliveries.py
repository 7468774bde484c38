"""The delivery log: one row per alert, rule and destination, which is also what makes sending once.

A send starts by claiming its row (status `sending`); the table's unique key on
(rule, alert, masked destination) lets only one claim win, so a replayed alert,
a follow-up update, a restarted runner or two notifiers side by side never start
the same send twice. The claim is then finished as `sent` or `failed` (after
its retries). Suppressed sends are rows too: `cooldown` (a like alert went out
through the rule shortly before) and `duplicate` (another rule already sent
this alert to the same place).

A claim is a lease: a `sending` row's `created_at` is when it was (last)
claimed, and a claim older than the longest a send can take belongs to a
process that died (kill -9, power loss) part-way. `reclaim` takes such rows
over, one winner per row, so they are sent again: delivery is at least once,
and a receiver that keeps the message's idempotency key sees it once. Only
the holder of the current claim can finish a row, so a process that was merely
slow, not dead, cannot overwrite what its successor recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, Engine, Select, and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from tapewatch.errors import InputError, NotFoundError
from tapewatch.records import Alert
from tapewatch.store.models import AlertRow, DeliveryRow, NotificationRuleRow, utc_now

DELIVERIES = DeliveryRow.__table__
ALERTS = AlertRow.__table__
RULES = NotificationRuleRow.__table__
STATUSES = ("sending", "sent", "failed", "cooldown", "duplicate")
PAGE_MAX = 500


class Delivery(BaseModel):
    """One row of the log, with the rule's name and the alert's market for reading it without joins."""

    id: int
    rule_id: int
    rule: str | None = None
    alert_id: str
    typology: str | None = None
    venue: str | None = None
    symbol: str | None = None
    destination: str
    status: str
    attempts: int
    error: str | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryPage(BaseModel):
    """A page of the log, newest first, and how many rows match in all."""

    items: list[Delivery]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class Claim:
    """A row this process wrote (and, when `sending`, holds): its id and when it was claimed."""

    id: int
    at: datetime


def claim(
    engine: Engine,
    rule_id: int,
    alert_id: str,
    destination: str,
    status: str = "sending",
    error: str | None = None,
) -> Claim | None:
    """Insert the row for (rule, alert, destination); None when one was there already."""
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    now = utc_now()
    stmt = (
        insert(DELIVERIES)
        .values(
            rule_id=rule_id,
            alert_id=alert_id,
            destination=destination,
            status=status,
            attempts=0,
            error=error,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["rule_id", "alert_id", "destination"])
        .returning(DELIVERIES.c.id)
    )
    with engine.begin() as conn:
        delivery_id = conn.execute(stmt).scalar_one_or_none()
    return None if delivery_id is None else Claim(delivery_id, now)


def finish(engine: Engine, held: Claim, status: str, attempts: int, error: str | None) -> bool:
    """Record how a claimed send ended; False (nothing written) when the claim was taken over meanwhile."""
    delivered = utc_now() if status == "sent" else None
    with engine.begin() as conn:
        return bool(
            conn.execute(
                update(DELIVERIES)
                .where(
                    DELIVERIES.c.id == held.id,
                    DELIVERIES.c.status == "sending",
                    DELIVERIES.c.created_at == held.at,
                )
                .values(status=status, attempts=attempts, error=error, delivered_at=delivered)
            ).rowcount
        )


def abandoned(engine: Engine, older_than: timedelta, limit: int = PAGE_MAX) -> list[Delivery]:
    """`sending` rows claimed longer ago than `older_than`: sends whose process stopped part-way."""
    cutoff = utc_now() - older_than
    query = (
        _joined()
        .where(DELIVERIES.c.status == "sending", DELIVERIES.c.created_at < cutoff)
        .order_by(DELIVERIES.c.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [Delivery.model_validate(row._asdict()) for row in conn.execute(query)]


def reclaim(engine: Engine, stale: Delivery) -> Claim | None:
    """Take over an abandoned claim (as `abandoned` returned it); None when another process took it first."""
    now = utc_now()
    with engine.begin() as conn:
        taken = conn.execute(
            update(DELIVERIES)
            .where(
                DELIVERIES.c.id == stale.id,
                DELIVERIES.c.status == "sending",
                DELIVERIES.c.created_at == stale.created_at,
            )
            .values(created_at=now)
        ).rowcount
    return Claim(stale.id, now) if taken else None


def in_cooldown(engine: Engine, rule_id: int, alert: Alert, cooldown_s: float) -> bool:
    """Whether the rule sent a like alert (same venue, symbol, typology) detected within `cooldown_s` of this one.

    Measured on `detected_at`, market time, not on the clock: a replay or a
    backlog after an outage then suppresses exactly what a live run would have.
    The earlier alert must be in the alerts table (the runner reads from it; a
    live sink saves before it notifies).
    """
    if cooldown_s <= 0:
        return False
    window = timedelta(seconds=cooldown_s)
    query = (
        select(DELIVERIES.c.id)
        .join(ALERTS, ALERTS.c.id == DELIVERIES.c.alert_id)
        .where(
            DELIVERIES.c.rule_id == rule_id,
            DELIVERIES.c.status.in_(("sent", "sending")),
            DELIVERIES.c.alert_id != alert.id,
            ALERTS.c.venue == alert.venue,
            ALERTS.c.symbol == alert.symbol,
            ALERTS.c.typology == alert.typology,
            ALERTS.c.detected_at > alert.detected_at - window,
            ALERTS.c.detected_at < alert.detected_at + window,
        )
        .limit(1)
    )
    with engine.connect() as conn:
        return conn.execute(query).first() is not None


def sent_by_other_rule(engine: Engine, rule_id: int, alert_id: str, destination: str) -> str | None:
    """The name of another rule that already sent (or is sending) this alert to this destination."""
    query = (
        select(RULES.c.name)
        .join(DELIVERIES, DELIVERIES.c.rule_id == RULES.c.id)
        .where(
            DELIVERIES.c.alert_id == alert_id,
            DELIVERIES.c.destination == destination,
            DELIVERIES.c.rule_id != rule_id,
            DELIVERIES.c.status.in_(("sent", "sending")),
        )
        .limit(1)
    )
    with engine.connect() as conn:
        return conn.execute(query).scalar_one_or_none()


def get_delivery(engine: Engine, delivery_id: int) -> Delivery:
    with engine.connect() as conn:
        row = conn.execute(_joined().where(DELIVERIES.c.id == delivery_id)).first()
    if row is None:
        raise NotFoundError(f"delivery {delivery_id}: no such delivery")
    return Delivery.model_validate(row._asdict())


def list_deliveries(
    engine: Engine,
    *,
    rule_id: int | None = None,
    alert_id: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> DeliveryPage:
    """The log, newest first, filtered; `since` inclusive and `until` exclusive, on `created_at`."""
    if status is not None and status not in STATUSES:
        raise InputError(f"delivery status '{status}': expected one of {', '.join(STATUSES)}")
    if not 1 <= limit <= PAGE_MAX or offset < 0:
        raise InputError(f"limit {limit}, offset {offset}: expected 1 ≤ limit ≤ {PAGE_MAX} and offset ≥ 0")
    conditions: list[Any] = []
    for column, wanted in (("rule_id", rule_id), ("alert_id", alert_id), ("status", status)):
        if wanted is not None:
            conditions.append(DELIVERIES.c[column] == wanted)
    if since is not None:
        conditions.append(DELIVERIES.c.created_at >= since)
    if until is not None:
        conditions.append(DELIVERIES.c.created_at < until)
    query = _joined().where(*conditions).order_by(DELIVERIES.c.id.desc()).limit(limit).offset(offset)
    count = select(func.count()).select_from(DELIVERIES).where(and_(True, *conditions))
    with engine.connect() as conn:
        items = [Delivery.model_validate(row._asdict()) for row in conn.execute(query)]
        total = conn.execute(count).scalar_one()
    return DeliveryPage(items=items, total=total, limit=limit, offset=offset)


def last_handled_alert(conn: Connection) -> datetime | None:
    """When the newest alert that has any row in the log was stored: where a restarted runner resumes."""
    query = select(func.max(ALERTS.c.created_at)).join(DELIVERIES, DELIVERIES.c.alert_id == ALERTS.c.id)
    return conn.execute(query).scalar_one_or_none()


def _joined() -> Select[Any]:
    return select(
        *DELIVERIES.c,
        RULES.c.name.label("rule"),
        ALERTS.c.typology,
        ALERTS.c.venue,
        ALERTS.c.symbol,
    ).select_from(
        DELIVERIES.outerjoin(RULES, RULES.c.id == DELIVERIES.c.rule_id).outerjoin(
            ALERTS, ALERTS.c.id == DELIVERIES.c.alert_id
        )
    )
