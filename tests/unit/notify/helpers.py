"""Small builders shared by the notification tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from tapewatch.notify.rules import Rule, RuleFields, create_rule
from tapewatch.service.actors import SYSTEM
from tapewatch.store.models import DeliveryRow


def add_rule(engine: Engine, name: str, *destinations: str, **fields: Any) -> Rule:
    """A rule as the system actor; no cooldown unless asked, so tests see every send."""
    fields.setdefault("cooldown_s", 0)
    return create_rule(engine, SYSTEM, name, RuleFields(destinations=list(destinations), **fields))


def logged(engine: Engine) -> list[tuple[int, str, str]]:
    """The delivery log as (rule id, alert id, status), in insertion order."""
    table = DeliveryRow.__table__
    query = select(table.c.rule_id, table.c.alert_id, table.c.status).order_by(table.c.id)
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]
