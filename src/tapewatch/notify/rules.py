"""Notification rules: which alerts go where, managed by admins, every change audited.

A rule matches an alert when every filter it sets matches (an empty filter
matches anything): the typology is one of `typologies`, the severity is at
least `min_severity`, the venue is one of `venues` and the symbol one of
`symbols` (a watchlist; venues and symbols compare without regard to case).
Destinations are checked when written, so a typo fails at once rather than at
the first alert; outside this module they are only ever shown masked.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any, get_args

from pydantic import BaseModel, Field
from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from tapewatch.errors import ConflictError, InputError, NotFoundError
from tapewatch.notify import destinations
from tapewatch.records import Alert, Typology
from tapewatch.service import audit
from tapewatch.service.actors import Actor
from tapewatch.store.models import SEVERITIES, DeliveryRow, NotificationRuleRow, utc_now

RULES = NotificationRuleRow.__table__
DELIVERIES = DeliveryRow.__table__
TYPOLOGIES: tuple[str, ...] = get_args(Typology)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.@-]{0,63}$")
LIST_FIELDS = ("typologies", "venues", "symbols", "destinations")
FILTER_MAX = 1000
"""Entries in one filter list: a watchlist of a few hundred symbols is expected, not a whole venue."""


class RuleFields(BaseModel):
    """A rule's settings as written: everything but the name has a default, for creation."""

    enabled: bool = True
    typologies: list[str] = Field(default_factory=list, description="empty: every typology")
    min_severity: str = Field("low", description="low, medium, high or critical")
    venues: list[str] = Field(default_factory=list, description="empty: every venue")
    symbols: list[str] = Field(default_factory=list, description="a watchlist; empty: every symbol")
    destinations: list[str] = Field(default_factory=list, description="Apprise URLs or env:NAME")
    cooldown_s: float = Field(900.0, description="per venue, symbol and typology; 0: none")


class RuleChanges(BaseModel):
    """A partial update: only the fields given change (a masked destination keeps its stored URL)."""

    name: str | None = None
    enabled: bool | None = None
    typologies: list[str] | None = None
    min_severity: str | None = None
    venues: list[str] | None = None
    symbols: list[str] | None = None
    destinations: list[str] | None = None
    cooldown_s: float | None = None


class Rule(RuleFields):
    """A stored rule as anyone may see it: destinations masked."""

    id: int
    name: str
    created_at: datetime
    updated_at: datetime


class RoutingRule(Rule):
    """A rule with its real destinations, for the notifier only: never returned by the API or printed."""

    def matches(self, alert: Alert) -> bool:
        """Whether the alert passes every filter this rule sets."""
        return (
            (not self.typologies or alert.typology in self.typologies)
            and SEVERITIES.index(alert.severity) >= SEVERITIES.index(self.min_severity)
            and (not self.venues or alert.venue.casefold() in {v.casefold() for v in self.venues})
            and (not self.symbols or alert.symbol.casefold() in {s.casefold() for s in self.symbols})
        )


def create_rule(engine: Engine, actor: Actor, name: str, fields: RuleFields) -> Rule:
    """A new rule (admin only); names are unique."""
    actor.require("admin")
    name = _check_name(name)
    values = _checked(name, fields.model_dump())
    now = utc_now()
    try:
        with engine.begin() as conn:
            rule_id = conn.execute(
                insert(RULES)
                .values(name=name, created_at=now, updated_at=now, **values)
                .returning(RULES.c.id)
            ).scalar_one()
            audit.record(conn, actor, "rule.create", "rule", rule_id, name=name, **_for_audit(values))
    except IntegrityError:
        raise ConflictError(f"rule '{name}' already exists") from None
    return get_rule(engine, rule_id)


def update_rule(engine: Engine, actor: Actor, rule_id: int, changes: RuleChanges) -> Rule:
    """Change the fields given (admin only); a destination sent back masked keeps the stored URL."""
    actor.require("admin")
    wanted = changes.model_dump(exclude_unset=True)
    with engine.begin() as conn:
        current = _load(conn, rule_id)
        name = _check_name(wanted.pop("name")) if wanted.get("name") is not None else current.name
        if "destinations" in wanted and wanted["destinations"] is not None:
            wanted["destinations"] = _unmask(wanted["destinations"], current.destinations)
        values = _checked(name, {key: value for key, value in wanted.items() if value is not None})
        if name != current.name:
            values["name"] = name
        if not values:
            return _public(current)
        try:
            conn.execute(update(RULES).where(RULES.c.id == rule_id).values(updated_at=utc_now(), **values))
        except IntegrityError:
            raise ConflictError(f"rule '{name}' already exists") from None
        details = {"name": name, **_for_audit(values)}
        if name != current.name:
            details["old_name"] = current.name
        audit.record(conn, actor, "rule.update", "rule", rule_id, **details)
    return get_rule(engine, rule_id)


def delete_rule(engine: Engine, actor: Actor, rule_id: int, purge: bool = False) -> Rule:
    """Delete a rule (admin only); one with deliveries in the log only with `purge`, which drops those too.

    The delivery log is the record of what was sent, so losing it takes asking:
    disabling a rule (`enabled=false`) stops it and keeps its history.
    """
    actor.require("admin")
    with engine.begin() as conn:
        rule = _load(conn, rule_id)
        logged = conn.execute(
            select(func.count()).select_from(DELIVERIES).where(DELIVERIES.c.rule_id == rule_id)
        ).scalar_one()
        if logged and not purge:
            raise ConflictError(
                f"rule '{rule.name}' has {logged} deliveries in the log: disable it instead "
                "(enabled=false), or delete it with purge to drop its deliveries too"
            )
        conn.execute(delete(DELIVERIES).where(DELIVERIES.c.rule_id == rule_id))
        conn.execute(delete(RULES).where(RULES.c.id == rule_id))
        audit.record(conn, actor, "rule.delete", "rule", rule_id, name=rule.name, deliveries_dropped=logged)
    return _public(rule)


def get_rule(engine: Engine, rule_id: int) -> Rule:
    return _public(routing_rule(engine, rule_id))


def routing_rule(engine: Engine, rule_id: int) -> RoutingRule:
    """One rule with its real destinations (to send a test through it), enabled or not."""
    with engine.connect() as conn:
        return _load(conn, rule_id)


def find_rule(engine: Engine, name_or_id: str) -> Rule:
    """A rule by its name, or by its id when no rule has that name (for the command line)."""
    with engine.connect() as conn:
        row = conn.execute(select(RULES).where(RULES.c.name == name_or_id)).first()
        if row is None and name_or_id.isdigit():
            row = conn.execute(select(RULES).where(RULES.c.id == int(name_or_id))).first()
    if row is None:
        raise NotFoundError(f"rule '{name_or_id}': no such rule (expected a rule name or id)")
    return _public(RoutingRule.model_validate(row._asdict()))


def list_rules(engine: Engine) -> list[Rule]:
    """Every rule, by name, destinations masked."""
    return [_public(rule) for rule in routing_rules(engine, enabled_only=False)]


def routing_rules(engine: Engine, enabled_only: bool = True) -> list[RoutingRule]:
    """Rules with their real destinations, for the notifier."""
    query = select(RULES).order_by(RULES.c.name)
    if enabled_only:
        query = query.where(RULES.c.enabled.is_(True))
    with engine.connect() as conn:
        return [RoutingRule.model_validate(row._asdict()) for row in conn.execute(query)]


def _load(conn: Connection, rule_id: int) -> RoutingRule:
    row = conn.execute(select(RULES).where(RULES.c.id == rule_id)).first()
    if row is None:
        raise NotFoundError(f"rule {rule_id}: no such rule")
    return RoutingRule.model_validate(row._asdict())


def _public(rule: RoutingRule) -> Rule:
    shown = rule.model_dump()
    shown["destinations"] = [destinations.mask(d) for d in rule.destinations]
    return Rule.model_validate(shown)


def _check_name(name: str) -> str:
    name = name.strip()
    if not NAME_PATTERN.match(name):
        raise InputError(
            f"rule name '{name}': expected 1–64 letters, digits, spaces or _.@-, starting with a letter or digit"
        )
    return name


def _checked(name: str, values: dict[str, Any]) -> dict[str, Any]:
    """The values, cleaned, or an InputError naming the rule and the field that is wrong."""
    where = f"rule '{name}'"
    for field in LIST_FIELDS:
        if field in values:
            values[field] = _clean_list(where, field, values[field])
    if "min_severity" in values and values["min_severity"] not in SEVERITIES:
        raise InputError(
            f"{where}: min_severity '{values['min_severity']}': expected one of {', '.join(SEVERITIES)}"
        )
    unknown = [t for t in values.get("typologies", []) if t not in TYPOLOGIES]
    if unknown:
        raise InputError(f"{where}: typology '{unknown[0]}': expected one of {', '.join(TYPOLOGIES)}")
    if "cooldown_s" in values and not (math.isfinite(values["cooldown_s"]) and values["cooldown_s"] >= 0):
        raise InputError(f"{where}: cooldown_s {values['cooldown_s']}: expected a number of seconds ≥ 0")
    if "destinations" in values:
        values["destinations"] = _check_destinations(where, values["destinations"])
    return values


def _clean_list(where: str, field: str, items: list[str]) -> list[str]:
    cleaned = list(dict.fromkeys(item.strip() for item in items if item.strip()))
    if len(cleaned) > FILTER_MAX:
        raise InputError(f"{where}: {field}: {len(cleaned)} entries; expected at most {FILTER_MAX}")
    too_long = [item for item in cleaned if len(item) > 64 and field != "destinations"]
    if too_long:
        raise InputError(f"{where}: {field} entry '{too_long[0][:70]}…': expected at most 64 characters")
    return cleaned


def _check_destinations(where: str, wanted: list[str]) -> list[str]:
    if not wanted:
        raise InputError(f"{where}: destinations: none given; expected at least one {destinations.EXPECTED}")
    checked = []
    for destination in wanted:
        try:
            checked.append(destinations.check(destination))
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
    masked = [destinations.mask(d) for d in checked]
    twins = [m for m in masked if masked.count(m) > 1]
    if twins:
        raise InputError(
            f"{where}: two destinations both show as '{twins[0]}' once masked; "
            "expected destinations that differ in more than their secrets (one rule per secret)"
        )
    return checked


def _unmask(wanted: list[str], stored: list[str]) -> list[str]:
    """Destinations as given, except that one equal to a stored destination's masked form is that one."""
    by_mask = {destinations.mask(d): d for d in stored}
    return [by_mask.get(d.strip(), d) for d in wanted]


def _for_audit(values: dict[str, Any]) -> dict[str, Any]:
    """What changed, for the audit log: destinations masked, never their secrets."""
    if "destinations" not in values:
        return values
    return {**values, "destinations": [destinations.mask(d) for d in values["destinations"]]}
